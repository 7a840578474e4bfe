//! OTLP request builders (one resource, one scope) and protobuf posting over OTLP/HTTP.

use prost::Message;
use reqwest::blocking::{Client, Response};
use seam_model::attributes::string_kv;
use seam_model::otlp::collector::logs::v1::ExportLogsServiceRequest;
use seam_model::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use seam_model::otlp::collector::trace::v1::ExportTraceServiceRequest;
use seam_model::otlp::common::v1::{any_value, AnyValue, KeyValue};
use seam_model::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use seam_model::otlp::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::{client, Seam};

/// Resource attributes naming only the service.
pub fn service(name: &str) -> Vec<KeyValue> {
    vec![string_kv("service.name", name)]
}

/// Resource attributes of one log stream: the service and `service.instance.id`.
pub fn stream(service: &str, instance: &str) -> Vec<KeyValue> {
    vec![
        string_kv("service.name", service),
        string_kv("service.instance.id", instance),
    ]
}

fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes,
        ..Default::default()
    })
}

/// A span from `start` to `end` (ns); every other field is the default.
pub fn span(trace_id: &[u8], span_id: &[u8], name: String, start: u64, end: u64) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        ..Default::default()
    }
}

/// `n` spans of one trace with span ids 1..=n (big-endian), named by `name(i)`, from `t` to
/// `t + 1000`.
pub fn numbered_spans(
    trace_id: &[u8],
    n: usize,
    t: u64,
    name: impl Fn(usize) -> String,
) -> Vec<Span> {
    (0..n)
        .map(|i| {
            span(
                trace_id,
                &(i as u64 + 1).to_be_bytes(),
                name(i),
                t,
                t + 1000,
            )
        })
        .collect()
}

/// A trace request: one resource with these attributes, one scope with `spans`.
pub fn traces(resource_attributes: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(resource_attributes),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A log record at `time` (ns) with a string body; every other field is the default.
pub fn log_line(time: u64, line: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(line.to_string())),
        }),
        ..Default::default()
    }
}

/// The lines of request `req` in a batch of `n` for `stream`: `"<stream> r<req> l<i>"`.
pub fn batch_lines(stream: &str, req: usize, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{stream} r{req} l{i}")).collect()
}

/// A log request: one resource with these attributes, one scope with `records`.
pub fn logs(
    resource_attributes: Vec<KeyValue>,
    records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(resource_attributes),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A metrics request: one resource with these attributes, one scope with `metrics`.
pub fn metrics(
    resource_attributes: Vec<KeyValue>,
    metrics: Vec<Metric>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(resource_attributes),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// POSTs a protobuf body to `<otlp>/v1/<signal>`.
pub fn send(client: &Client, otlp: &str, signal: &str, body: Vec<u8>) -> reqwest::Result<Response> {
    client
        .post(format!("{otlp}/v1/{signal}"))
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
}

/// POSTs `req` as protobuf to Seam's `/v1/<signal>`; it must answer 200.
pub fn export(s: &Seam, signal: &str, req: &impl Message) {
    let r = send(&client(), &s.otlp_http, signal, req.encode_to_vec())
        .unwrap_or_else(|e| panic!("POST {signal}: {e}"));
    assert_eq!(r.status(), 200, "{signal}: {:?}", r.text());
}

/// [`send`], reduced to the status, or the transport error with its chain of causes.
pub fn post_status(
    client: &Client,
    otlp: &str,
    signal: &str,
    body: Vec<u8>,
) -> Result<u16, String> {
    send(client, otlp, signal, body)
        .map(|r| r.status().as_u16())
        .map_err(|e| {
            let mut m = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                m = format!("{m}: {s}");
                src = s.source();
            }
            m
        })
}

/// A request body, streamed without a Content-Length when `chunked`.
pub fn body(bytes: Vec<u8>, chunked: bool) -> reqwest::blocking::Body {
    if chunked {
        reqwest::blocking::Body::new(std::io::Cursor::new(bytes))
    } else {
        bytes.into()
    }
}
