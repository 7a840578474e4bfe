//! Encoding the prost OTLP types as JSON, in OTLP/JSON form or in the form Grafana Tempo's
//! query API returns.
//!
//! Both styles follow proto3 JSON: lowerCamelCase names, 64-bit integers as strings, default
//! scalars and empty lists omitted, messages that are present written even when empty (so an
//! unset span status is `"status": {}`, as Tempo writes it), non-finite doubles as "NaN",
//! "Infinity" and "-Infinity".

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::otlp::collector::logs::v1::ExportLogsServiceResponse;
use crate::otlp::collector::metrics::v1::ExportMetricsServiceResponse;
use crate::otlp::collector::trace::v1::ExportTraceServiceResponse;
use crate::otlp::common::v1::{any_value, AnyValue, EntityRef, InstrumentationScope, KeyValue};
use crate::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use crate::otlp::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric, number_data_point,
    AggregationTemporality, Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, SummaryDataPoint,
};
use crate::otlp::resource::v1::Resource;
use crate::otlp::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

/// How ids and enums are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JsonStyle {
    /// The OTLP/JSON wire format: ids as lower-case hex, enums as integers.
    #[default]
    Otlp,
    /// What Grafana Tempo's `/api/traces/{id}` returns (gogo jsonpb): ids as base64 of the raw
    /// bytes, enums by name (e.g. `"kind": "SPAN_KIND_SERVER"`).
    Tempo,
}

/// Encodes resource spans as a JSON array of `resourceSpans` objects.
pub fn encode_resource_spans(rs: &[ResourceSpans], style: JsonStyle) -> Value {
    Value::Array(rs.iter().map(|r| resource_spans(r, style)).collect())
}

/// Encodes resource logs as a JSON array of `resourceLogs` objects.
pub fn encode_resource_logs(rl: &[ResourceLogs], style: JsonStyle) -> Value {
    Value::Array(rl.iter().map(|r| resource_logs(r, style)).collect())
}

/// Encodes resource metrics as a JSON array of `resourceMetrics` objects.
pub fn encode_resource_metrics(rm: &[ResourceMetrics], style: JsonStyle) -> Value {
    Value::Array(rm.iter().map(|r| resource_metrics(r, style)).collect())
}

/// The OTLP/JSON body answering a trace export: `{}` when nothing was rejected, otherwise
/// `{"partialSuccess": {"rejectedSpans": "3", "errorMessage": "..."}}`.
pub fn encode_traces_response(resp: &ExportTraceServiceResponse) -> Value {
    let ps = resp.partial_success.as_ref();
    partial_success(
        ps.map(|p| (p.rejected_spans, p.error_message.as_str())),
        "rejectedSpans",
    )
}

/// The OTLP/JSON body answering a logs export (`rejectedLogRecords`); `{}` when nothing was
/// rejected.
pub fn encode_logs_response(resp: &ExportLogsServiceResponse) -> Value {
    let ps = resp.partial_success.as_ref();
    partial_success(
        ps.map(|p| (p.rejected_log_records, p.error_message.as_str())),
        "rejectedLogRecords",
    )
}

/// The OTLP/JSON body answering a metrics export (`rejectedDataPoints`); `{}` when nothing was
/// rejected.
pub fn encode_metrics_response(resp: &ExportMetricsServiceResponse) -> Value {
    let ps = resp.partial_success.as_ref();
    partial_success(
        ps.map(|p| (p.rejected_data_points, p.error_message.as_str())),
        "rejectedDataPoints",
    )
}

fn partial_success(ps: Option<(i64, &str)>, rejected_key: &str) -> Value {
    match ps {
        Some((rejected, message)) if rejected != 0 || !message.is_empty() => {
            let inner = Out::new(JsonStyle::Otlp)
                .i64(rejected_key, rejected)
                .str("errorMessage", message)
                .done();
            Out::new(JsonStyle::Otlp)
                .put("partialSuccess", inner)
                .done()
        }
        _ => Value::Object(Map::new()),
    }
}

// ---------------------------------------------------------------------------------------------
// The object builder

/// Builds one JSON object, leaving out default values.
struct Out {
    map: Map<String, Value>,
    style: JsonStyle,
}

impl Out {
    fn new(style: JsonStyle) -> Self {
        Out {
            map: Map::new(),
            style,
        }
    }

    fn done(self) -> Value {
        Value::Object(self.map)
    }

    fn put(mut self, key: &str, v: Value) -> Self {
        self.map.insert(key.to_owned(), v);
        self
    }

    fn put_if(self, cond: bool, key: &str, v: impl FnOnce() -> Value) -> Self {
        if cond {
            self.put(key, v())
        } else {
            self
        }
    }

    fn str(self, key: &str, s: &str) -> Self {
        self.put_if(!s.is_empty(), key, || s.into())
    }

    fn bool(self, key: &str, b: bool) -> Self {
        self.put_if(b, key, || Value::Bool(true))
    }

    /// A 32-bit integer, written as a JSON number.
    fn int(self, key: &str, n: impl Into<i64>) -> Self {
        let n = n.into();
        self.put_if(n != 0, key, || n.into())
    }

    /// A 64-bit signed integer, written as a string.
    fn i64(self, key: &str, n: i64) -> Self {
        self.put_if(n != 0, key, || n.to_string().into())
    }

    /// A 64-bit unsigned integer, written as a string.
    fn u64(self, key: &str, n: u64) -> Self {
        self.put_if(n != 0, key, || n.to_string().into())
    }

    fn f64(self, key: &str, x: f64) -> Self {
        self.put_if(x != 0.0, key, || double(x))
    }

    /// An optional double (proto3 `optional`): written whenever present, even when zero.
    fn opt_f64(self, key: &str, x: Option<f64>) -> Self {
        match x {
            Some(x) => self.put(key, double(x)),
            None => self,
        }
    }

    /// A trace or span id: hex in OTLP style, base64 in Tempo style.
    fn id(self, key: &str, b: &[u8]) -> Self {
        let style = self.style;
        self.put_if(!b.is_empty(), key, || match style {
            JsonStyle::Otlp => hex::encode(b).into(),
            JsonStyle::Tempo => BASE64.encode(b).into(),
        })
    }

    /// An enum: its number in OTLP style, its name in Tempo style (the number when unknown).
    fn enumeration(self, key: &str, n: i32, name: Option<&'static str>) -> Self {
        let style = self.style;
        self.put_if(n != 0, key, || match (style, name) {
            (JsonStyle::Tempo, Some(name)) => name.into(),
            _ => n.into(),
        })
    }

    /// A message field that may be absent.
    fn msg<T>(self, key: &str, m: Option<&T>, f: impl Fn(&T, JsonStyle) -> Value) -> Self {
        let style = self.style;
        match m {
            Some(m) => self.put(key, f(m, style)),
            None => self,
        }
    }

    /// A repeated field, omitted when empty.
    fn list<T>(self, key: &str, items: &[T], f: impl Fn(&T, JsonStyle) -> Value) -> Self {
        let style = self.style;
        self.put_if(!items.is_empty(), key, || {
            Value::Array(items.iter().map(|i| f(i, style)).collect())
        })
    }
}

/// A double as proto3 JSON writes it.
fn double(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => "NaN".into(),
        None if x > 0.0 => "Infinity".into(),
        None => "-Infinity".into(),
    }
}

fn double_item(x: &f64, _: JsonStyle) -> Value {
    double(*x)
}

fn u64_item(n: &u64, _: JsonStyle) -> Value {
    n.to_string().into()
}

// ---------------------------------------------------------------------------------------------
// Common messages

fn any_value(v: &AnyValue, style: JsonStyle) -> Value {
    use any_value::Value as V;
    let o = Out::new(style);
    match &v.value {
        Some(V::StringValue(s)) => o.put("stringValue", s.as_str().into()),
        Some(V::BoolValue(b)) => o.put("boolValue", (*b).into()),
        Some(V::IntValue(n)) => o.put("intValue", n.to_string().into()),
        Some(V::DoubleValue(x)) => o.put("doubleValue", double(*x)),
        Some(V::ArrayValue(a)) => {
            let inner = Out::new(style).list("values", &a.values, any_value).done();
            o.put("arrayValue", inner)
        }
        Some(V::KvlistValue(kv)) => {
            let inner = Out::new(style).list("values", &kv.values, key_value).done();
            o.put("kvlistValue", inner)
        }
        Some(V::BytesValue(b)) => o.put("bytesValue", BASE64.encode(b).into()),
        // Profiles-only: treated as absent.
        Some(V::StringValueStrindex(_)) | None => o,
    }
    .done()
}

fn key_value(kv: &KeyValue, style: JsonStyle) -> Value {
    Out::new(style)
        .str("key", &kv.key)
        .msg("value", kv.value.as_ref(), any_value)
        .done()
}

fn resource(r: &Resource, style: JsonStyle) -> Value {
    Out::new(style)
        .list("attributes", &r.attributes, key_value)
        .int("droppedAttributesCount", r.dropped_attributes_count)
        .list("entityRefs", &r.entity_refs, entity_ref)
        .done()
}

fn entity_ref(e: &EntityRef, style: JsonStyle) -> Value {
    Out::new(style)
        .str("schemaUrl", &e.schema_url)
        .str("type", &e.r#type)
        .list("idKeys", &e.id_keys, |s, _| s.as_str().into())
        .list("descriptionKeys", &e.description_keys, |s, _| {
            s.as_str().into()
        })
        .done()
}

fn scope(s: &InstrumentationScope, style: JsonStyle) -> Value {
    Out::new(style)
        .str("name", &s.name)
        .str("version", &s.version)
        .list("attributes", &s.attributes, key_value)
        .int("droppedAttributesCount", s.dropped_attributes_count)
        .done()
}

// ---------------------------------------------------------------------------------------------
// Traces

fn resource_spans(r: &ResourceSpans, style: JsonStyle) -> Value {
    Out::new(style)
        .msg("resource", r.resource.as_ref(), resource)
        .list("scopeSpans", &r.scope_spans, scope_spans)
        .str("schemaUrl", &r.schema_url)
        .done()
}

fn scope_spans(s: &ScopeSpans, style: JsonStyle) -> Value {
    Out::new(style)
        .msg("scope", s.scope.as_ref(), scope)
        .list("spans", &s.spans, span)
        .str("schemaUrl", &s.schema_url)
        .done()
}

fn span(s: &Span, style: JsonStyle) -> Value {
    let kind = span::SpanKind::try_from(s.kind)
        .ok()
        .map(|k| k.as_str_name());
    Out::new(style)
        .id("traceId", &s.trace_id)
        .id("spanId", &s.span_id)
        .str("traceState", &s.trace_state)
        .id("parentSpanId", &s.parent_span_id)
        .int("flags", s.flags)
        .str("name", &s.name)
        .enumeration("kind", s.kind, kind)
        .u64("startTimeUnixNano", s.start_time_unix_nano)
        .u64("endTimeUnixNano", s.end_time_unix_nano)
        .list("attributes", &s.attributes, key_value)
        .int("droppedAttributesCount", s.dropped_attributes_count)
        .list("events", &s.events, event)
        .int("droppedEventsCount", s.dropped_events_count)
        .list("links", &s.links, link)
        .int("droppedLinksCount", s.dropped_links_count)
        .msg("status", s.status.as_ref(), span_status)
        .done()
}

fn event(e: &span::Event, style: JsonStyle) -> Value {
    Out::new(style)
        .u64("timeUnixNano", e.time_unix_nano)
        .str("name", &e.name)
        .list("attributes", &e.attributes, key_value)
        .int("droppedAttributesCount", e.dropped_attributes_count)
        .done()
}

fn link(l: &span::Link, style: JsonStyle) -> Value {
    Out::new(style)
        .id("traceId", &l.trace_id)
        .id("spanId", &l.span_id)
        .str("traceState", &l.trace_state)
        .list("attributes", &l.attributes, key_value)
        .int("droppedAttributesCount", l.dropped_attributes_count)
        .int("flags", l.flags)
        .done()
}

fn span_status(s: &Status, style: JsonStyle) -> Value {
    let code = status::StatusCode::try_from(s.code)
        .ok()
        .map(|c| c.as_str_name());
    Out::new(style)
        .str("message", &s.message)
        .enumeration("code", s.code, code)
        .done()
}

// ---------------------------------------------------------------------------------------------
// Logs

fn resource_logs(r: &ResourceLogs, style: JsonStyle) -> Value {
    Out::new(style)
        .msg("resource", r.resource.as_ref(), resource)
        .list("scopeLogs", &r.scope_logs, scope_logs)
        .str("schemaUrl", &r.schema_url)
        .done()
}

fn scope_logs(s: &ScopeLogs, style: JsonStyle) -> Value {
    Out::new(style)
        .msg("scope", s.scope.as_ref(), scope)
        .list("logRecords", &s.log_records, log_record)
        .str("schemaUrl", &s.schema_url)
        .done()
}

fn log_record(l: &LogRecord, style: JsonStyle) -> Value {
    let severity = SeverityNumber::try_from(l.severity_number)
        .ok()
        .map(|s| s.as_str_name());
    Out::new(style)
        .u64("timeUnixNano", l.time_unix_nano)
        .u64("observedTimeUnixNano", l.observed_time_unix_nano)
        .enumeration("severityNumber", l.severity_number, severity)
        .str("severityText", &l.severity_text)
        .msg("body", l.body.as_ref(), any_value)
        .list("attributes", &l.attributes, key_value)
        .int("droppedAttributesCount", l.dropped_attributes_count)
        .int("flags", l.flags)
        .id("traceId", &l.trace_id)
        .id("spanId", &l.span_id)
        .str("eventName", &l.event_name)
        .done()
}

// ---------------------------------------------------------------------------------------------
// Metrics

fn resource_metrics(r: &ResourceMetrics, style: JsonStyle) -> Value {
    Out::new(style)
        .msg("resource", r.resource.as_ref(), resource)
        .list("scopeMetrics", &r.scope_metrics, scope_metrics)
        .str("schemaUrl", &r.schema_url)
        .done()
}

fn scope_metrics(s: &ScopeMetrics, style: JsonStyle) -> Value {
    Out::new(style)
        .msg("scope", s.scope.as_ref(), scope)
        .list("metrics", &s.metrics, metric)
        .str("schemaUrl", &s.schema_url)
        .done()
}

fn metric(m: &Metric, style: JsonStyle) -> Value {
    use metric::Data;
    let o = Out::new(style)
        .str("name", &m.name)
        .str("description", &m.description)
        .str("unit", &m.unit)
        .list("metadata", &m.metadata, key_value);
    let temporality = |t: i32, o: Out| {
        let name = AggregationTemporality::try_from(t)
            .ok()
            .map(|t| t.as_str_name());
        o.enumeration("aggregationTemporality", t, name)
    };
    match &m.data {
        Some(Data::Gauge(g)) => {
            let inner = Out::new(style).list("dataPoints", &g.data_points, number_point);
            o.put("gauge", inner.done())
        }
        Some(Data::Sum(s)) => {
            let inner = Out::new(style).list("dataPoints", &s.data_points, number_point);
            let inner =
                temporality(s.aggregation_temporality, inner).bool("isMonotonic", s.is_monotonic);
            o.put("sum", inner.done())
        }
        Some(Data::Histogram(h)) => {
            let inner = Out::new(style).list("dataPoints", &h.data_points, histogram_point);
            o.put(
                "histogram",
                temporality(h.aggregation_temporality, inner).done(),
            )
        }
        Some(Data::ExponentialHistogram(h)) => {
            let inner = Out::new(style).list("dataPoints", &h.data_points, exponential_point);
            o.put(
                "exponentialHistogram",
                temporality(h.aggregation_temporality, inner).done(),
            )
        }
        Some(Data::Summary(s)) => {
            let inner = Out::new(style).list("dataPoints", &s.data_points, summary_point);
            o.put("summary", inner.done())
        }
        None => o,
    }
    .done()
}

fn number_point(p: &NumberDataPoint, style: JsonStyle) -> Value {
    use number_data_point::Value as V;
    let o = Out::new(style)
        .list("attributes", &p.attributes, key_value)
        .u64("startTimeUnixNano", p.start_time_unix_nano)
        .u64("timeUnixNano", p.time_unix_nano)
        .list("exemplars", &p.exemplars, exemplar)
        .int("flags", p.flags);
    match p.value {
        Some(V::AsDouble(x)) => o.put("asDouble", double(x)),
        Some(V::AsInt(n)) => o.put("asInt", n.to_string().into()),
        None => o,
    }
    .done()
}

fn histogram_point(p: &HistogramDataPoint, style: JsonStyle) -> Value {
    Out::new(style)
        .list("attributes", &p.attributes, key_value)
        .u64("startTimeUnixNano", p.start_time_unix_nano)
        .u64("timeUnixNano", p.time_unix_nano)
        .u64("count", p.count)
        .opt_f64("sum", p.sum)
        .list("bucketCounts", &p.bucket_counts, u64_item)
        .list("explicitBounds", &p.explicit_bounds, double_item)
        .list("exemplars", &p.exemplars, exemplar)
        .int("flags", p.flags)
        .opt_f64("min", p.min)
        .opt_f64("max", p.max)
        .done()
}

fn exponential_point(p: &ExponentialHistogramDataPoint, style: JsonStyle) -> Value {
    Out::new(style)
        .list("attributes", &p.attributes, key_value)
        .u64("startTimeUnixNano", p.start_time_unix_nano)
        .u64("timeUnixNano", p.time_unix_nano)
        .u64("count", p.count)
        .opt_f64("sum", p.sum)
        .int("scale", p.scale)
        .u64("zeroCount", p.zero_count)
        .msg("positive", p.positive.as_ref(), buckets)
        .msg("negative", p.negative.as_ref(), buckets)
        .int("flags", p.flags)
        .list("exemplars", &p.exemplars, exemplar)
        .opt_f64("min", p.min)
        .opt_f64("max", p.max)
        .f64("zeroThreshold", p.zero_threshold)
        .done()
}

fn buckets(b: &Buckets, style: JsonStyle) -> Value {
    Out::new(style)
        .int("offset", b.offset)
        .list("bucketCounts", &b.bucket_counts, u64_item)
        .done()
}

fn summary_point(p: &SummaryDataPoint, style: JsonStyle) -> Value {
    Out::new(style)
        .list("attributes", &p.attributes, key_value)
        .u64("startTimeUnixNano", p.start_time_unix_nano)
        .u64("timeUnixNano", p.time_unix_nano)
        .u64("count", p.count)
        .f64("sum", p.sum)
        .list("quantileValues", &p.quantile_values, |q, style| {
            Out::new(style)
                .f64("quantile", q.quantile)
                .f64("value", q.value)
                .done()
        })
        .int("flags", p.flags)
        .done()
}

fn exemplar(e: &Exemplar, style: JsonStyle) -> Value {
    use exemplar::Value as V;
    let o = Out::new(style)
        .list("filteredAttributes", &e.filtered_attributes, key_value)
        .u64("timeUnixNano", e.time_unix_nano)
        .id("spanId", &e.span_id)
        .id("traceId", &e.trace_id);
    match e.value {
        Some(V::AsDouble(x)) => o.put("asDouble", double(x)),
        Some(V::AsInt(n)) => o.put("asInt", n.to_string().into()),
        None => o,
    }
    .done()
}
