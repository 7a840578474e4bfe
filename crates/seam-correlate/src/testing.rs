//! Builders for OTLP spans in tests, examples and benchmarks: ids from one byte, times in
//! milliseconds, string attributes from pairs.

use seam_model::attributes::string_kv;
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// Nanoseconds per millisecond, the unit these builders take.
pub const MS: i64 = 1_000_000;

/// A span of trace `[trace; 16]` with id `[id; 8]`, parent `[parent; 8]` (0 = none), from
/// `start_ms` to `end_ms`, with string attributes.
pub fn span(
    trace: u8,
    id: u8,
    parent: u8,
    name: &str,
    start_ms: i64,
    end_ms: i64,
    attrs: &[(&str, &str)],
) -> Span {
    span_ids(
        [trace; 16],
        [id; 8],
        (parent != 0).then_some([parent; 8]),
        name,
        start_ms,
        end_ms,
        attrs,
    )
}

/// [`span`] with full ids.
pub fn span_ids(
    trace: [u8; 16],
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &str,
    start_ms: i64,
    end_ms: i64,
    attrs: &[(&str, &str)],
) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: name.to_string(),
        start_time_unix_nano: (start_ms * MS) as u64,
        end_time_unix_nano: (end_ms * MS) as u64,
        attributes: attrs.iter().map(|(k, v)| string_kv(k, v)).collect(),
        ..Default::default()
    }
}

/// The spans as one resource of service `service`, in one scope.
pub fn spans_with_service(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![string_kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A decided link, Beorn (trace `aa..`) to MDSO (trace `bb..`) on `circuit_id=6f1c`, 150 ms apart,
/// for the unit tests of what is built from links.
#[cfg(test)]
pub(crate) fn sample_link() -> crate::Link {
    use seam_model::{SpanId, TraceId};
    crate::Link {
        tenant: "t".into(),
        key: "circuit_id".into(),
        value: "6f1c".into(),
        exact: true,
        confidence: 1.0,
        gap_ms: 150,
        source: crate::Source::Configured,
        call: crate::CallClass::InFlight,
        upstream_trace_id: TraceId([0xaa; 16]),
        upstream_service: "beorn".into(),
        parent_span_id: SpanId([2; 8]),
        parent_start_ns: 1_000_000_000,
        parent_end_ns: 2_000_000_000,
        downstream_trace_id: TraceId([0xbb; 16]),
        downstream_service: "mdso".into(),
        downstream_root_span_id: SpanId([9; 8]),
        downstream_start_ns: 1_150_000_000,
        downstream_end_ns: 1_900_000_000,
        arrival_ns: 5,
        decided_ns: 7,
    }
}
