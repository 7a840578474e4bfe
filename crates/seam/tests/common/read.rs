//! Readbacks through the query APIs: traces as `tempopb.Trace` protobuf, log lines via Loki.

use prost::Message;
use reqwest::blocking::{Client, Response};
use seam_model::otlp::trace::v1::{ResourceSpans, Span};
use serde_json::Value;

use super::codec::hex;
use super::{client, now_ns, Seam};

/// `tempopb.Trace`, what `/api/traces/{id}` answers with `Accept: application/protobuf`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

impl TempoTrace {
    /// Every span, over all resources and scopes.
    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
    }
}

/// `GET <api>/api/traces/<id>` with `Accept: application/protobuf`, as `tenant` when given.
pub fn trace_response(client: &Client, api: &str, id: &str, tenant: Option<&str>) -> Response {
    let mut req = client
        .get(format!("{api}/api/traces/{id}"))
        .header("Accept", "application/protobuf");
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    req.send().expect("GET trace")
}

/// Decodes a `tempopb.Trace` body.
pub fn decode_trace(r: Response) -> TempoTrace {
    TempoTrace::decode(r.bytes().unwrap()).expect("a tempopb.Trace body")
}

/// Trace `id` (hex) of the default tenant: `None` when it is not found (404); any status but
/// 200 or 404 fails.
pub fn trace(client: &Client, api: &str, id: &str) -> Option<TempoTrace> {
    let r = trace_response(client, api, id, None);
    if r.status() == 404 {
        return None;
    }
    assert_eq!(r.status(), 200, "trace {id}");
    Some(decode_trace(r))
}

/// Spans of a trace as the Tempo API returns them (0 when not found).
pub fn span_count(s: &Seam, trace_id: &[u8]) -> usize {
    trace(&client(), &s.api, &hex(trace_id)).map_or(0, |t| t.spans().count())
}

/// The streams of a Loki `query_range` answer: (stream labels, [(ts ns, line)]) each.
pub fn loki_streams(body: &Value) -> Vec<(Value, Vec<(i64, String)>)> {
    body["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("a streams result: {body}"))
        .iter()
        .map(|s| {
            let values = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    let ts = v[0].as_str().unwrap().parse().unwrap();
                    (ts, v[1].as_str().unwrap().to_string())
                })
                .collect();
            (s["stream"].clone(), values)
        })
        .collect()
}

/// The lines of log stream `{service_instance_id="<stream>"}` from `since_ns` to a minute from
/// now, via Loki's `query_range` (limit 5000, in `direction`).
pub fn stream_lines(s: &Seam, stream: &str, since_ns: u64, direction: &str) -> Vec<String> {
    let q = format!("{{service_instance_id=\"{stream}\"}}");
    let (start, end) = (
        since_ns.to_string(),
        (now_ns() + 60_000_000_000).to_string(),
    );
    let r = client()
        .get(format!("{}/loki/api/v1/query_range", s.api))
        .query(&[
            ("query", q.as_str()),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("limit", "5000"),
            ("direction", direction),
        ])
        .send()
        .expect("query_range");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    loki_streams(&v)
        .into_iter()
        .flat_map(|(_, values)| values.into_iter().map(|(_, line)| line))
        .collect()
}
