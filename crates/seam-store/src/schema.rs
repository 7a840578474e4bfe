//! The columnar layout of each signal, shared by the in-memory head and the Parquet segments, so
//! one scan path reads both.
//!
//! Spans keep every OTLP field. Nested OTLP parts (attributes, events, links, resource, scope) are
//! stored as their protobuf encoding: lossless, fast to write, and still readable by any protobuf
//! decoder; the columns a query filters on are plain typed columns.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BinaryBuilder, FixedSizeBinaryBuilder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use prost::Message;
use seam_model::otlp::common::v1::KeyValueList;
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::{LogBatch, SampleBatch, Signal};

/// Span columns, in order.
pub mod span_col {
    #![allow(missing_docs)]
    pub const TRACE_ID: usize = 0;
    pub const SPAN_ID: usize = 1;
    pub const PARENT_SPAN_ID: usize = 2;
    pub const TRACE_STATE: usize = 3;
    pub const FLAGS: usize = 4;
    pub const NAME: usize = 5;
    pub const KIND: usize = 6;
    pub const START: usize = 7;
    pub const END: usize = 8;
    pub const SERVICE_NAME: usize = 9;
    pub const STATUS_CODE: usize = 10;
    pub const STATUS_MESSAGE: usize = 11;
    pub const ATTRIBUTES: usize = 12;
    pub const DROPPED_ATTRIBUTES: usize = 13;
    pub const EVENTS: usize = 14;
    pub const DROPPED_EVENTS: usize = 15;
    pub const LINKS: usize = 16;
    pub const DROPPED_LINKS: usize = 17;
    pub const RESOURCE: usize = 18;
    pub const RESOURCE_SCHEMA_URL: usize = 19;
    pub const SCOPE: usize = 20;
    pub const SCOPE_SCHEMA_URL: usize = 21;
}

/// Log columns, in order.
pub mod log_col {
    #![allow(missing_docs)]
    pub const STREAM_ID: usize = 0;
    pub const LABELS: usize = 1;
    pub const TIMESTAMP: usize = 2;
    pub const LINE: usize = 3;
    pub const STRUCTURED_METADATA: usize = 4;
    pub const SEVERITY_NUMBER: usize = 5;
    pub const SEVERITY_TEXT: usize = 6;
    pub const TRACE_ID: usize = 7;
    pub const SPAN_ID: usize = 8;
}

/// Sample columns, in order.
pub mod sample_col {
    #![allow(missing_docs)]
    pub const SERIES_ID: usize = 0;
    pub const LABELS: usize = 1;
    pub const TIMESTAMP: usize = 2;
    pub const VALUE: usize = 3;
}

/// The Arrow schema of a signal's rows.
pub fn schema(signal: Signal) -> SchemaRef {
    static SPANS: OnceLock<SchemaRef> = OnceLock::new();
    static LOGS: OnceLock<SchemaRef> = OnceLock::new();
    static SAMPLES: OnceLock<SchemaRef> = OnceLock::new();
    match signal {
        Signal::Traces => SPANS.get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("trace_id", DataType::FixedSizeBinary(16), false),
                Field::new("span_id", DataType::FixedSizeBinary(8), false),
                Field::new("parent_span_id", DataType::Binary, false),
                Field::new("trace_state", DataType::Utf8, false),
                Field::new("flags", DataType::UInt32, false),
                Field::new("name", DataType::Utf8, false),
                Field::new("kind", DataType::Int32, false),
                Field::new("start_time_unix_nano", DataType::Int64, false),
                Field::new("end_time_unix_nano", DataType::Int64, false),
                Field::new("service_name", DataType::Utf8, false),
                Field::new("status_code", DataType::Int32, false),
                Field::new("status_message", DataType::Utf8, false),
                Field::new("attributes_proto", DataType::Binary, false),
                Field::new("dropped_attributes_count", DataType::UInt32, false),
                Field::new("events_proto", DataType::Binary, false),
                Field::new("dropped_events_count", DataType::UInt32, false),
                Field::new("links_proto", DataType::Binary, false),
                Field::new("dropped_links_count", DataType::UInt32, false),
                Field::new("resource_proto", DataType::Binary, false),
                Field::new("resource_schema_url", DataType::Utf8, false),
                Field::new("scope_proto", DataType::Binary, false),
                Field::new("scope_schema_url", DataType::Utf8, false),
            ]))
        }),
        Signal::Logs => LOGS.get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("stream_id", DataType::UInt64, false),
                Field::new("labels", DataType::Utf8, false),
                Field::new("timestamp_ns", DataType::Int64, false),
                Field::new("line", DataType::Utf8, false),
                Field::new("structured_metadata", DataType::Utf8, false),
                Field::new("severity_number", DataType::Int32, false),
                Field::new("severity_text", DataType::Utf8, false),
                Field::new("trace_id", DataType::Binary, false),
                Field::new("span_id", DataType::Binary, false),
            ]))
        }),
        Signal::Metrics => SAMPLES.get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("series_id", DataType::UInt64, false),
                Field::new("labels", DataType::Utf8, false),
                Field::new("timestamp_ms", DataType::Int64, false),
                Field::new("value", DataType::Float64, false),
            ]))
        }),
    }
    .clone()
}

/// A signal's key column (trace, stream or series id) and time column: the order its segments
/// are sorted in, and what a read selects rows by.
pub fn key_time_cols(signal: Signal) -> (usize, usize) {
    match signal {
        Signal::Traces => (span_col::TRACE_ID, span_col::START),
        Signal::Logs => (log_col::STREAM_ID, log_col::TIMESTAMP),
        Signal::Metrics => (sample_col::SERIES_ID, sample_col::TIMESTAMP),
    }
}

/// Events of one span, as stored in `events_proto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredEvents {
    /// The span's events.
    #[prost(message, repeated, tag = "1")]
    pub events: Vec<seam_model::otlp::trace::v1::span::Event>,
}

/// Links of one span, as stored in `links_proto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredLinks {
    /// The span's links.
    #[prost(message, repeated, tag = "1")]
    pub links: Vec<seam_model::otlp::trace::v1::span::Link>,
}

/// Summary of rows turned into a record batch: what the head and the catalog index need.
#[derive(Debug, Default, Clone)]
pub struct RowsSummary {
    /// Smallest row time in nanoseconds.
    pub min_time_ns: i64,
    /// Largest row time in nanoseconds.
    pub max_time_ns: i64,
}

impl RowsSummary {
    fn empty() -> RowsSummary {
        RowsSummary {
            min_time_ns: i64::MAX,
            max_time_ns: i64::MIN,
        }
    }
    fn add(&mut self, t: i64) {
        self.min_time_ns = self.min_time_ns.min(t);
        self.max_time_ns = self.max_time_ns.max(t);
    }
}

/// Converts spans into one record batch of the span schema.
pub fn spans_to_batch(rs: &[ResourceSpans]) -> (RecordBatch, RowsSummary) {
    let n = seam_model::traces::span_count(rs);
    let mut trace_id = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut span_id = FixedSizeBinaryBuilder::with_capacity(n, 8);
    let mut parent = BinaryBuilder::with_capacity(n, n * 8);
    let mut trace_state = StringBuilder::with_capacity(n, 0);
    let mut flags = UInt32Builder::with_capacity(n);
    let mut name = StringBuilder::with_capacity(n, n * 16);
    let mut kind = Int32Builder::with_capacity(n);
    let mut start = Int64Builder::with_capacity(n);
    let mut end = Int64Builder::with_capacity(n);
    let mut service = StringBuilder::with_capacity(n, n * 8);
    let mut status_code = Int32Builder::with_capacity(n);
    let mut status_message = StringBuilder::with_capacity(n, 0);
    let mut attributes = BinaryBuilder::with_capacity(n, n * 64);
    let mut dropped_attributes = UInt32Builder::with_capacity(n);
    let mut events = BinaryBuilder::with_capacity(n, 0);
    let mut dropped_events = UInt32Builder::with_capacity(n);
    let mut links = BinaryBuilder::with_capacity(n, 0);
    let mut dropped_links = UInt32Builder::with_capacity(n);
    let mut resource = BinaryBuilder::with_capacity(n, 0);
    let mut resource_url = StringBuilder::with_capacity(n, 0);
    let mut scope = BinaryBuilder::with_capacity(n, 0);
    let mut scope_url = StringBuilder::with_capacity(n, 0);
    let mut summary = RowsSummary::empty();
    let mut buf = Vec::with_capacity(256);
    for r in rs {
        let service_name = seam_model::traces::service_name(r);
        let resource_bytes = r
            .resource
            .as_ref()
            .map(|x| x.encode_to_vec())
            .unwrap_or_default();
        for s in &r.scope_spans {
            let scope_bytes = s
                .scope
                .as_ref()
                .map(|x| x.encode_to_vec())
                .unwrap_or_default();
            for span in &s.spans {
                // Spans were validated before reaching the store; these appends cannot fail.
                trace_id
                    .append_value(&span.trace_id)
                    .expect("validated trace id");
                span_id
                    .append_value(&span.span_id)
                    .expect("validated span id");
                parent.append_value(&span.parent_span_id);
                trace_state.append_value(&span.trace_state);
                flags.append_value(span.flags);
                name.append_value(&span.name);
                kind.append_value(span.kind);
                let st = clamp_ns(span.start_time_unix_nano);
                start.append_value(st);
                end.append_value(clamp_ns(span.end_time_unix_nano));
                summary.add(st);
                service.append_value(service_name);
                let status = span.status.clone().unwrap_or_default();
                status_code.append_value(status.code);
                status_message.append_value(&status.message);
                buf.clear();
                if !span.attributes.is_empty() {
                    encode_repeated(&mut buf, 1, &span.attributes);
                }
                attributes.append_value(&buf);
                dropped_attributes.append_value(span.dropped_attributes_count);
                buf.clear();
                encode_repeated(&mut buf, 1, &span.events);
                events.append_value(&buf);
                dropped_events.append_value(span.dropped_events_count);
                buf.clear();
                encode_repeated(&mut buf, 1, &span.links);
                links.append_value(&buf);
                dropped_links.append_value(span.dropped_links_count);
                resource.append_value(&resource_bytes);
                resource_url.append_value(&r.schema_url);
                scope.append_value(&scope_bytes);
                scope_url.append_value(&s.schema_url);
            }
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(trace_id.finish()),
        Arc::new(span_id.finish()),
        Arc::new(parent.finish()),
        Arc::new(trace_state.finish()),
        Arc::new(flags.finish()),
        Arc::new(name.finish()),
        Arc::new(kind.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(service.finish()),
        Arc::new(status_code.finish()),
        Arc::new(status_message.finish()),
        Arc::new(attributes.finish()),
        Arc::new(dropped_attributes.finish()),
        Arc::new(events.finish()),
        Arc::new(dropped_events.finish()),
        Arc::new(links.finish()),
        Arc::new(dropped_links.finish()),
        Arc::new(resource.finish()),
        Arc::new(resource_url.finish()),
        Arc::new(scope.finish()),
        Arc::new(scope_url.finish()),
    ];
    let batch =
        RecordBatch::try_new(schema(Signal::Traces), cols).expect("span columns match the schema");
    (batch, summary)
}

/// Writes `items` as a repeated message field, the same bytes a wrapper message would have, without
/// cloning them into one.
fn encode_repeated<M: Message>(buf: &mut Vec<u8>, tag: u32, items: &[M]) {
    for m in items {
        prost::encoding::message::encode(tag, m, buf);
    }
}

/// Decodes a span's attributes column.
pub fn decode_attributes(b: &[u8]) -> Vec<seam_model::otlp::common::v1::KeyValue> {
    KeyValueList::decode(b)
        .map(|l| l.values)
        .unwrap_or_default()
}

fn clamp_ns(t: u64) -> i64 {
    t.min(i64::MAX as u64) as i64
}

/// Converts log streams into one record batch of the log schema.
pub fn logs_to_batch(b: &LogBatch) -> (RecordBatch, RowsSummary) {
    let n = b.entry_count();
    let mut stream_id = UInt64Builder::with_capacity(n);
    let mut labels = StringBuilder::with_capacity(n, n * 32);
    let mut ts = Int64Builder::with_capacity(n);
    let mut line = StringBuilder::with_capacity(n, n * 100);
    let mut md = StringBuilder::with_capacity(n, n * 16);
    let mut sev_num = Int32Builder::with_capacity(n);
    let mut sev_text = StringBuilder::with_capacity(n, 0);
    let mut trace_id = BinaryBuilder::with_capacity(n, 0);
    let mut span_id = BinaryBuilder::with_capacity(n, 0);
    let mut summary = RowsSummary::empty();
    let mut json = String::with_capacity(256);
    for s in &b.streams {
        let set = s.label_set();
        let id = set.fingerprint();
        let text = set.to_string();
        for e in &s.entries {
            stream_id.append_value(id);
            labels.append_value(&text);
            ts.append_value(e.timestamp_ns);
            summary.add(e.timestamp_ns);
            line.append_value(&e.line);
            json.clear();
            write_json_object(&mut json, &e.structured_metadata);
            md.append_value(&json);
            sev_num.append_value(e.severity_number);
            sev_text.append_value(&e.severity_text);
            trace_id.append_value(&e.trace_id);
            span_id.append_value(&e.span_id);
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(stream_id.finish()),
        Arc::new(labels.finish()),
        Arc::new(ts.finish()),
        Arc::new(line.finish()),
        Arc::new(md.finish()),
        Arc::new(sev_num.finish()),
        Arc::new(sev_text.finish()),
        Arc::new(trace_id.finish()),
        Arc::new(span_id.finish()),
    ];
    let batch =
        RecordBatch::try_new(schema(Signal::Logs), cols).expect("log columns match the schema");
    (batch, summary)
}

/// Converts series samples into one record batch of the sample schema.
pub fn samples_to_batch(b: &SampleBatch) -> (RecordBatch, RowsSummary) {
    let n = b.sample_count();
    let mut series_id = UInt64Builder::with_capacity(n);
    let mut labels = StringBuilder::with_capacity(n, n * 32);
    let mut ts = Int64Builder::with_capacity(n);
    let mut value = Float64Builder::with_capacity(n);
    let mut summary = RowsSummary::empty();
    for s in &b.series {
        let set = s.label_set();
        let id = set.fingerprint();
        let text = set.to_string();
        for smp in &s.samples {
            series_id.append_value(id);
            labels.append_value(&text);
            ts.append_value(smp.timestamp_ms);
            summary.add(smp.timestamp_ms.saturating_mul(1_000_000));
            value.append_value(smp.value);
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(series_id.finish()),
        Arc::new(labels.finish()),
        Arc::new(ts.finish()),
        Arc::new(value.finish()),
    ];
    let batch = RecordBatch::try_new(schema(Signal::Metrics), cols)
        .expect("sample columns match the schema");
    (batch, summary)
}

/// Writes labels as a JSON object of strings (`{"k":"v"}`) into `out`, reusing its allocation.
pub fn write_json_object(out: &mut String, labels: &[seam_model::Label]) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, &l.name);
        out.push(':');
        write_json_string(out, &l.value);
    }
    out.push('}');
}

fn write_json_string(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use seam_model::Label;

    #[test]
    fn metadata_json_escapes_like_serde() {
        let labels = vec![Label::new("a", "x\"y\\z\n\u{1}é"), Label::new("b", "")];
        let mut out = String::new();
        write_json_object(&mut out, &labels);
        let back: std::collections::BTreeMap<String, String> = serde_json::from_str(&out).unwrap();
        assert_eq!(back["a"], "x\"y\\z\n\u{1}é");
        assert_eq!(back["b"], "");
    }
}
