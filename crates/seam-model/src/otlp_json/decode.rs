//! Decoding OTLP/JSON export requests into the prost types.
//!
//! The body is parsed into a [`serde_json::Value`] first, then walked by small converters
//! (`fn(&Value, &Path) -> R<T>`) that carry the JSON path, so every error names where it happened.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use crate::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use crate::otlp::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, DataPointFlags, Exemplar,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use crate::otlp::resource::v1::Resource;
use crate::otlp::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

/// Why an OTLP/JSON body could not be decoded. The message names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonDecodeError {
    /// The body is not well-formed JSON.
    #[error("invalid JSON at line {line}, column {column} (byte {offset}): {message}")]
    Syntax {
        /// One-based line of the error.
        line: usize,
        /// One-based column (in bytes) of the error; 0 at the start of a line.
        column: usize,
        /// Zero-based byte offset of the error in the body.
        offset: usize,
        /// What the JSON parser found wrong.
        message: String,
    },
    /// Well-formed JSON that does not fit the OTLP schema.
    #[error("{path}: {message}")]
    Field {
        /// The JSON path of the offending value, e.g. `resourceSpans[0].scopeSpans[1].spans[3].traceId`.
        path: String,
        /// What was wrong with it.
        message: String,
    },
}

type R<T> = Result<T, JsonDecodeError>;

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` (the body of `POST /v1/traces`).
pub fn decode_traces(body: &[u8]) -> Result<ExportTraceServiceRequest, JsonDecodeError> {
    let root = parse(body)?;
    let o = Obj::new(&root, &Path::ROOT)?;
    Ok(ExportTraceServiceRequest {
        resource_spans: o.list("resourceSpans", resource_spans)?,
    })
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest` (the body of `POST /v1/logs`).
pub fn decode_logs(body: &[u8]) -> Result<ExportLogsServiceRequest, JsonDecodeError> {
    let root = parse(body)?;
    let o = Obj::new(&root, &Path::ROOT)?;
    Ok(ExportLogsServiceRequest {
        resource_logs: o.list("resourceLogs", resource_logs)?,
    })
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest` (the body of `POST /v1/metrics`).
pub fn decode_metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest, JsonDecodeError> {
    let root = parse(body)?;
    let o = Obj::new(&root, &Path::ROOT)?;
    Ok(ExportMetricsServiceRequest {
        resource_metrics: o.list("resourceMetrics", resource_metrics)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing and paths

fn parse(body: &[u8]) -> R<Value> {
    serde_json::from_slice(body).map_err(|e| syntax_error(body, &e))
}

/// Turns a serde_json error into [`JsonDecodeError::Syntax`], adding the byte offset.
fn syntax_error(body: &[u8], e: &serde_json::Error) -> JsonDecodeError {
    let (line, column) = (e.line(), e.column());
    let line_start = if line <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(body.len(), |(i, _)| i + 1)
    };
    let offset = (line_start + column.saturating_sub(1)).min(body.len());
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    JsonDecodeError::Syntax {
        line,
        column,
        offset,
        message,
    }
}

/// Where a value sits in the document: a linked list of segments living on the stack, formatted
/// only when an error needs it.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    fn key<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            seg: Seg::Key(key),
        }
    }

    fn index(&self, i: usize) -> Path<'_> {
        Path {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }

    fn write_to(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.write_to(out);
        }
        match self.seg {
            Seg::Root => {}
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }

    /// An error at this path.
    fn err(&self, message: impl Into<String>) -> JsonDecodeError {
        let mut path = String::new();
        self.write_to(&mut path);
        if path.is_empty() {
            path.push_str("<root>");
        }
        JsonDecodeError::Field {
            path,
            message: message.into(),
        }
    }

    /// A wrong-type error at this path.
    fn wrong(&self, want: &str, got: &Value) -> JsonDecodeError {
        self.err(format!("expected {want}, got {}", describe(got)))
    }
}

/// A short description of a JSON value for error messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("string {:?}...", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// True when `key` is the proto snake_case spelling of the lowerCamelCase `camel`.
fn is_snake_of(key: &str, camel: &str) -> bool {
    let mut k = key.bytes();
    for c in camel.bytes() {
        if c.is_ascii_uppercase() {
            if k.next() != Some(b'_') || k.next() != Some(c.to_ascii_lowercase()) {
                return false;
            }
        } else if k.next() != Some(c) {
            return false;
        }
    }
    k.next().is_none()
}

/// A JSON object being read, with its path. Field names are given in lowerCamelCase; the proto
/// snake_case spelling is accepted too. Absent and `null` fields read as defaults.
struct Obj<'v, 'p> {
    map: &'v Map<String, Value>,
    path: &'p Path<'p>,
}

impl<'v, 'p> Obj<'v, 'p> {
    fn new(v: &'v Value, path: &'p Path<'p>) -> R<Self> {
        match v {
            Value::Object(map) => Ok(Obj { map, path }),
            _ => Err(path.wrong("an object", v)),
        }
    }

    fn lookup(&self, name: &str) -> Option<(&'v str, &'v Value)> {
        let (k, v) = match self.map.get_key_value(name) {
            Some(kv) => kv,
            None if name.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.map.iter().find(|(k, _)| is_snake_of(k, name))?
            }
            None => return None,
        };
        (!v.is_null()).then_some((k.as_str(), v))
    }

    /// The field converted by `conv`, or `None` when absent or null.
    fn opt<T>(&self, name: &str, conv: impl Fn(&Value, &Path<'_>) -> R<T>) -> R<Option<T>> {
        match self.lookup(name) {
            Some((k, v)) => conv(v, &self.path.key(k)).map(Some),
            None => Ok(None),
        }
    }

    /// The field converted by `conv`, or the default when absent or null.
    fn get<T: Default>(&self, name: &str, conv: impl Fn(&Value, &Path<'_>) -> R<T>) -> R<T> {
        Ok(self.opt(name, conv)?.unwrap_or_default())
    }

    /// The array field with each element converted by `conv`; empty when absent or null.
    fn list<T>(&self, name: &str, conv: impl Fn(&Value, &Path<'_>) -> R<T>) -> R<Vec<T>> {
        let Some((k, v)) = self.lookup(name) else {
            return Ok(Vec::new());
        };
        let path = self.path.key(k);
        let items = v.as_array().ok_or_else(|| path.wrong("an array", v))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| conv(item, &path.index(i)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Scalars

fn string(v: &Value, p: &Path<'_>) -> R<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(p.wrong("a string", v)),
    }
}

fn boolean(v: &Value, p: &Path<'_>) -> R<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(p.wrong("a boolean", v)),
    }
}

/// An integer given as a JSON number or a string (proto3 JSON allows both), range-checked into `T`.
fn integer<T: TryFrom<i128>>(v: &Value, p: &Path<'_>, ty: &str) -> R<T> {
    fn integral(f: f64) -> Option<i128> {
        (f.fract() == 0.0 && f.abs() < 1e20).then_some(f as i128)
    }
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().and_then(integral)),
        Value::String(s) => s
            .parse::<i128>()
            .ok()
            .or_else(|| s.parse::<f64>().ok().and_then(integral)),
        _ => return Err(p.wrong(&format!("{ty} (a number or a string)"), v)),
    };
    let n = n.ok_or_else(|| p.wrong(&format!("an integer ({ty})"), v))?;
    T::try_from(n).map_err(|_| p.err(format!("{n} is out of range for {ty}")))
}

fn uint64(v: &Value, p: &Path<'_>) -> R<u64> {
    integer(v, p, "uint64")
}

fn int64(v: &Value, p: &Path<'_>) -> R<i64> {
    integer(v, p, "int64")
}

fn uint32(v: &Value, p: &Path<'_>) -> R<u32> {
    integer(v, p, "uint32")
}

fn int32(v: &Value, p: &Path<'_>) -> R<i32> {
    integer(v, p, "int32")
}

/// A double: a JSON number, or a string such as "NaN", "Infinity", "-Infinity" or "1.5".
fn double(v: &Value, p: &Path<'_>) -> R<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| p.wrong("a double", v)),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => s.parse().map_err(|_| p.wrong("a double", v)),
        },
        _ => Err(p.wrong("a double (a number or a string)", v)),
    }
}

/// A trace or span id in hex, either case; the empty string is empty bytes. Lengths are left
/// to validation.
fn hex_id(v: &Value, p: &Path<'_>) -> R<Vec<u8>> {
    let Value::String(s) = v else {
        return Err(p.wrong("a hex string", v));
    };
    hex::decode(s).map_err(|e| match e {
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            p.err(format!("invalid hex character {c:?} at position {index}"))
        }
        hex::FromHexError::OddLength => {
            p.err(format!("odd number of hex characters ({})", s.len()))
        }
        other => p.err(format!("invalid hex: {other}")),
    })
}

const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A `bytes` value in base64, standard or URL-safe alphabet, padded or not.
fn base64_bytes(v: &Value, p: &Path<'_>) -> R<Vec<u8>> {
    let Value::String(s) = v else {
        return Err(p.wrong("a base64 string", v));
    };
    let engine = if s.contains(['-', '_']) {
        &B64_URL_SAFE
    } else {
        &B64_STANDARD
    };
    engine
        .decode(s)
        .map_err(|e| p.err(format!("invalid base64: {e}")))
}

/// An enum (or flag) given as an integer, or as the name of one of its values.
fn named<T: TryFrom<i128>>(
    v: &Value,
    p: &Path<'_>,
    ty: &str,
    by_name: impl Fn(&str) -> Option<i32>,
) -> R<T> {
    if let Value::String(s) = v {
        if let Some(n) = by_name(s) {
            return T::try_from(i128::from(n)).map_err(|_| p.err(format!("{s} is out of range")));
        }
        if s.parse::<i128>().is_err() {
            return Err(p.err(format!("unknown {ty} name {s:?}")));
        }
    }
    integer(v, p, ty)
}

fn span_kind(v: &Value, p: &Path<'_>) -> R<i32> {
    named(v, p, "SpanKind", |s| {
        span::SpanKind::from_str_name(s).map(|e| e as i32)
    })
}

fn status_code(v: &Value, p: &Path<'_>) -> R<i32> {
    named(v, p, "StatusCode", |s| {
        status::StatusCode::from_str_name(s).map(|e| e as i32)
    })
}

fn severity_number(v: &Value, p: &Path<'_>) -> R<i32> {
    named(v, p, "SeverityNumber", |s| {
        SeverityNumber::from_str_name(s).map(|e| e as i32)
    })
}

fn temporality(v: &Value, p: &Path<'_>) -> R<i32> {
    named(v, p, "AggregationTemporality", |s| {
        AggregationTemporality::from_str_name(s).map(|e| e as i32)
    })
}

fn data_point_flags(v: &Value, p: &Path<'_>) -> R<u32> {
    named(v, p, "DataPointFlags", |s| {
        DataPointFlags::from_str_name(s).map(|e| e as i32)
    })
}

// ---------------------------------------------------------------------------------------------
// Common messages

fn any_value(v: &Value, p: &Path<'_>) -> R<AnyValue> {
    use any_value::Value as V;
    let o = Obj::new(v, p)?;
    // `stringValueStrindex` is profiles-only and treated as absent, as the proto asks.
    let value = if let Some(s) = o.opt("stringValue", string)? {
        Some(V::StringValue(s))
    } else if let Some(b) = o.opt("boolValue", boolean)? {
        Some(V::BoolValue(b))
    } else if let Some(n) = o.opt("intValue", int64)? {
        Some(V::IntValue(n))
    } else if let Some(x) = o.opt("doubleValue", double)? {
        Some(V::DoubleValue(x))
    } else if let Some(a) = o.opt("arrayValue", array_value)? {
        Some(V::ArrayValue(a))
    } else if let Some(kv) = o.opt("kvlistValue", kvlist_value)? {
        Some(V::KvlistValue(kv))
    } else {
        o.opt("bytesValue", base64_bytes)?.map(V::BytesValue)
    };
    Ok(AnyValue { value })
}

fn array_value(v: &Value, p: &Path<'_>) -> R<ArrayValue> {
    Ok(ArrayValue {
        values: Obj::new(v, p)?.list("values", any_value)?,
    })
}

fn kvlist_value(v: &Value, p: &Path<'_>) -> R<KeyValueList> {
    Ok(KeyValueList {
        values: Obj::new(v, p)?.list("values", key_value)?,
    })
}

fn key_value(v: &Value, p: &Path<'_>) -> R<KeyValue> {
    let o = Obj::new(v, p)?;
    Ok(KeyValue {
        key: o.get("key", string)?,
        value: o.opt("value", any_value)?,
        ..Default::default()
    })
}

fn resource(v: &Value, p: &Path<'_>) -> R<Resource> {
    let o = Obj::new(v, p)?;
    Ok(Resource {
        attributes: o.list("attributes", key_value)?,
        dropped_attributes_count: o.get("droppedAttributesCount", uint32)?,
        entity_refs: o.list("entityRefs", entity_ref)?,
    })
}

fn entity_ref(v: &Value, p: &Path<'_>) -> R<EntityRef> {
    let o = Obj::new(v, p)?;
    Ok(EntityRef {
        schema_url: o.get("schemaUrl", string)?,
        r#type: o.get("type", string)?,
        id_keys: o.list("idKeys", string)?,
        description_keys: o.list("descriptionKeys", string)?,
    })
}

fn scope(v: &Value, p: &Path<'_>) -> R<InstrumentationScope> {
    let o = Obj::new(v, p)?;
    Ok(InstrumentationScope {
        name: o.get("name", string)?,
        version: o.get("version", string)?,
        attributes: o.list("attributes", key_value)?,
        dropped_attributes_count: o.get("droppedAttributesCount", uint32)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Traces

fn resource_spans(v: &Value, p: &Path<'_>) -> R<ResourceSpans> {
    let o = Obj::new(v, p)?;
    Ok(ResourceSpans {
        resource: o.opt("resource", resource)?,
        scope_spans: o.list("scopeSpans", scope_spans)?,
        schema_url: o.get("schemaUrl", string)?,
    })
}

fn scope_spans(v: &Value, p: &Path<'_>) -> R<ScopeSpans> {
    let o = Obj::new(v, p)?;
    Ok(ScopeSpans {
        scope: o.opt("scope", scope)?,
        spans: o.list("spans", span)?,
        schema_url: o.get("schemaUrl", string)?,
    })
}

fn span(v: &Value, p: &Path<'_>) -> R<Span> {
    let o = Obj::new(v, p)?;
    Ok(Span {
        trace_id: o.get("traceId", hex_id)?,
        span_id: o.get("spanId", hex_id)?,
        trace_state: o.get("traceState", string)?,
        parent_span_id: o.get("parentSpanId", hex_id)?,
        flags: o.get("flags", uint32)?,
        name: o.get("name", string)?,
        kind: o.get("kind", span_kind)?,
        start_time_unix_nano: o.get("startTimeUnixNano", uint64)?,
        end_time_unix_nano: o.get("endTimeUnixNano", uint64)?,
        attributes: o.list("attributes", key_value)?,
        dropped_attributes_count: o.get("droppedAttributesCount", uint32)?,
        events: o.list("events", event)?,
        dropped_events_count: o.get("droppedEventsCount", uint32)?,
        links: o.list("links", link)?,
        dropped_links_count: o.get("droppedLinksCount", uint32)?,
        status: o.opt("status", span_status)?,
    })
}

fn event(v: &Value, p: &Path<'_>) -> R<span::Event> {
    let o = Obj::new(v, p)?;
    Ok(span::Event {
        time_unix_nano: o.get("timeUnixNano", uint64)?,
        name: o.get("name", string)?,
        attributes: o.list("attributes", key_value)?,
        dropped_attributes_count: o.get("droppedAttributesCount", uint32)?,
    })
}

fn link(v: &Value, p: &Path<'_>) -> R<span::Link> {
    let o = Obj::new(v, p)?;
    Ok(span::Link {
        trace_id: o.get("traceId", hex_id)?,
        span_id: o.get("spanId", hex_id)?,
        trace_state: o.get("traceState", string)?,
        attributes: o.list("attributes", key_value)?,
        dropped_attributes_count: o.get("droppedAttributesCount", uint32)?,
        flags: o.get("flags", uint32)?,
    })
}

fn span_status(v: &Value, p: &Path<'_>) -> R<Status> {
    let o = Obj::new(v, p)?;
    Ok(Status {
        message: o.get("message", string)?,
        code: o.get("code", status_code)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Logs

fn resource_logs(v: &Value, p: &Path<'_>) -> R<ResourceLogs> {
    let o = Obj::new(v, p)?;
    Ok(ResourceLogs {
        resource: o.opt("resource", resource)?,
        scope_logs: o.list("scopeLogs", scope_logs)?,
        schema_url: o.get("schemaUrl", string)?,
    })
}

fn scope_logs(v: &Value, p: &Path<'_>) -> R<ScopeLogs> {
    let o = Obj::new(v, p)?;
    Ok(ScopeLogs {
        scope: o.opt("scope", scope)?,
        log_records: o.list("logRecords", log_record)?,
        schema_url: o.get("schemaUrl", string)?,
    })
}

fn log_record(v: &Value, p: &Path<'_>) -> R<LogRecord> {
    let o = Obj::new(v, p)?;
    Ok(LogRecord {
        time_unix_nano: o.get("timeUnixNano", uint64)?,
        observed_time_unix_nano: o.get("observedTimeUnixNano", uint64)?,
        severity_number: o.get("severityNumber", severity_number)?,
        severity_text: o.get("severityText", string)?,
        body: o.opt("body", any_value)?,
        attributes: o.list("attributes", key_value)?,
        dropped_attributes_count: o.get("droppedAttributesCount", uint32)?,
        flags: o.get("flags", uint32)?,
        trace_id: o.get("traceId", hex_id)?,
        span_id: o.get("spanId", hex_id)?,
        event_name: o.get("eventName", string)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Metrics

fn resource_metrics(v: &Value, p: &Path<'_>) -> R<ResourceMetrics> {
    let o = Obj::new(v, p)?;
    Ok(ResourceMetrics {
        resource: o.opt("resource", resource)?,
        scope_metrics: o.list("scopeMetrics", scope_metrics)?,
        schema_url: o.get("schemaUrl", string)?,
    })
}

fn scope_metrics(v: &Value, p: &Path<'_>) -> R<ScopeMetrics> {
    let o = Obj::new(v, p)?;
    Ok(ScopeMetrics {
        scope: o.opt("scope", scope)?,
        metrics: o.list("metrics", metric)?,
        schema_url: o.get("schemaUrl", string)?,
    })
}

fn metric(v: &Value, p: &Path<'_>) -> R<Metric> {
    use metric::Data;
    let o = Obj::new(v, p)?;
    let data = if let Some(g) = o.opt("gauge", gauge)? {
        Some(Data::Gauge(g))
    } else if let Some(s) = o.opt("sum", sum)? {
        Some(Data::Sum(s))
    } else if let Some(h) = o.opt("histogram", histogram)? {
        Some(Data::Histogram(h))
    } else if let Some(h) = o.opt("exponentialHistogram", exponential_histogram)? {
        Some(Data::ExponentialHistogram(h))
    } else {
        o.opt("summary", summary)?.map(Data::Summary)
    };
    Ok(Metric {
        name: o.get("name", string)?,
        description: o.get("description", string)?,
        unit: o.get("unit", string)?,
        metadata: o.list("metadata", key_value)?,
        data,
    })
}

fn gauge(v: &Value, p: &Path<'_>) -> R<Gauge> {
    Ok(Gauge {
        data_points: Obj::new(v, p)?.list("dataPoints", number_point)?,
    })
}

fn sum(v: &Value, p: &Path<'_>) -> R<Sum> {
    let o = Obj::new(v, p)?;
    Ok(Sum {
        data_points: o.list("dataPoints", number_point)?,
        aggregation_temporality: o.get("aggregationTemporality", temporality)?,
        is_monotonic: o.get("isMonotonic", boolean)?,
    })
}

fn histogram(v: &Value, p: &Path<'_>) -> R<Histogram> {
    let o = Obj::new(v, p)?;
    Ok(Histogram {
        data_points: o.list("dataPoints", histogram_point)?,
        aggregation_temporality: o.get("aggregationTemporality", temporality)?,
    })
}

fn exponential_histogram(v: &Value, p: &Path<'_>) -> R<ExponentialHistogram> {
    let o = Obj::new(v, p)?;
    Ok(ExponentialHistogram {
        data_points: o.list("dataPoints", exponential_point)?,
        aggregation_temporality: o.get("aggregationTemporality", temporality)?,
    })
}

fn summary(v: &Value, p: &Path<'_>) -> R<Summary> {
    Ok(Summary {
        data_points: Obj::new(v, p)?.list("dataPoints", summary_point)?,
    })
}

fn number_point(v: &Value, p: &Path<'_>) -> R<NumberDataPoint> {
    use number_data_point::Value as V;
    let o = Obj::new(v, p)?;
    let value = match o.opt("asDouble", double)? {
        Some(x) => Some(V::AsDouble(x)),
        None => o.opt("asInt", int64)?.map(V::AsInt),
    };
    Ok(NumberDataPoint {
        attributes: o.list("attributes", key_value)?,
        start_time_unix_nano: o.get("startTimeUnixNano", uint64)?,
        time_unix_nano: o.get("timeUnixNano", uint64)?,
        exemplars: o.list("exemplars", exemplar)?,
        flags: o.get("flags", data_point_flags)?,
        value,
    })
}

fn histogram_point(v: &Value, p: &Path<'_>) -> R<HistogramDataPoint> {
    let o = Obj::new(v, p)?;
    Ok(HistogramDataPoint {
        attributes: o.list("attributes", key_value)?,
        start_time_unix_nano: o.get("startTimeUnixNano", uint64)?,
        time_unix_nano: o.get("timeUnixNano", uint64)?,
        count: o.get("count", uint64)?,
        sum: o.opt("sum", double)?,
        bucket_counts: o.list("bucketCounts", uint64)?,
        explicit_bounds: o.list("explicitBounds", double)?,
        exemplars: o.list("exemplars", exemplar)?,
        flags: o.get("flags", data_point_flags)?,
        min: o.opt("min", double)?,
        max: o.opt("max", double)?,
    })
}

fn exponential_point(v: &Value, p: &Path<'_>) -> R<ExponentialHistogramDataPoint> {
    let o = Obj::new(v, p)?;
    Ok(ExponentialHistogramDataPoint {
        attributes: o.list("attributes", key_value)?,
        start_time_unix_nano: o.get("startTimeUnixNano", uint64)?,
        time_unix_nano: o.get("timeUnixNano", uint64)?,
        count: o.get("count", uint64)?,
        sum: o.opt("sum", double)?,
        scale: o.get("scale", int32)?,
        zero_count: o.get("zeroCount", uint64)?,
        positive: o.opt("positive", buckets)?,
        negative: o.opt("negative", buckets)?,
        flags: o.get("flags", data_point_flags)?,
        exemplars: o.list("exemplars", exemplar)?,
        min: o.opt("min", double)?,
        max: o.opt("max", double)?,
        zero_threshold: o.get("zeroThreshold", double)?,
    })
}

fn buckets(v: &Value, p: &Path<'_>) -> R<Buckets> {
    let o = Obj::new(v, p)?;
    Ok(Buckets {
        offset: o.get("offset", int32)?,
        bucket_counts: o.list("bucketCounts", uint64)?,
    })
}

fn summary_point(v: &Value, p: &Path<'_>) -> R<SummaryDataPoint> {
    let o = Obj::new(v, p)?;
    Ok(SummaryDataPoint {
        attributes: o.list("attributes", key_value)?,
        start_time_unix_nano: o.get("startTimeUnixNano", uint64)?,
        time_unix_nano: o.get("timeUnixNano", uint64)?,
        count: o.get("count", uint64)?,
        sum: o.get("sum", double)?,
        quantile_values: o.list("quantileValues", quantile)?,
        flags: o.get("flags", data_point_flags)?,
    })
}

fn quantile(v: &Value, p: &Path<'_>) -> R<ValueAtQuantile> {
    let o = Obj::new(v, p)?;
    Ok(ValueAtQuantile {
        quantile: o.get("quantile", double)?,
        value: o.get("value", double)?,
    })
}

fn exemplar(v: &Value, p: &Path<'_>) -> R<Exemplar> {
    use exemplar::Value as V;
    let o = Obj::new(v, p)?;
    let value = match o.opt("asDouble", double)? {
        Some(x) => Some(V::AsDouble(x)),
        None => o.opt("asInt", int64)?.map(V::AsInt),
    };
    Ok(Exemplar {
        filtered_attributes: o.list("filteredAttributes", key_value)?,
        time_unix_nano: o.get("timeUnixNano", uint64)?,
        span_id: o.get("spanId", hex_id)?,
        trace_id: o.get("traceId", hex_id)?,
        value,
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
