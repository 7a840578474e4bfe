//! Bridge spans: a link made visible, as a synthetic span in the upstream trace.
//!
//! Timing: the bridge starts when the downstream segment started, clamped into its parent span's
//! range (so it sits inside the call that made it even under clock skew), and lasts 1 ms: it marks
//! the hand-off; the downstream's own spans show how long the work took. It carries an OTel span
//! link to the downstream root, which is what stitching and plain Tempo link navigation follow.

use crate::link::Link;
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use seam_model::traces::{BRIDGE_CONFIDENCE_ATTR, BRIDGE_DOWNSTREAM_ATTR, SYNTHETIC_ATTR};

/// The `service.name` of bridge spans.
pub const BRIDGE_SERVICE: &str = "seam-correlator";

/// How long a bridge span lasts, nanoseconds.
pub const BRIDGE_DURATION_NS: i64 = 1_000_000;

/// The bridge for one link, in its own resource (`service.name = seam-correlator`).
pub fn bridge_span(link: &Link) -> ResourceSpans {
    bridge_batch(std::slice::from_ref(link))
        .pop()
        .expect("one link makes one resource")
}

/// The bridges for many links, in one resource and scope: what the caller writes in one batch.
pub fn bridge_batch(links: &[Link]) -> Vec<ResourceSpans> {
    if links.is_empty() {
        return Vec::new();
    }
    vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![string_kv("service.name", BRIDGE_SERVICE)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "seam-correlate".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            }),
            spans: links.iter().map(bridge_otlp_span).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }]
}

/// The bridge span itself (see the module doc for its timing).
pub fn bridge_otlp_span(link: &Link) -> Span {
    let lo = link.parent_start_ns;
    let hi = link.parent_end_ns.max(lo);
    let start = link.downstream_start_ns.clamp(lo, hi);
    let end = start.saturating_add(BRIDGE_DURATION_NS);
    Span {
        trace_id: link.upstream_trace_id.0.to_vec(),
        span_id: link.bridge_span_id().0.to_vec(),
        parent_span_id: link.parent_span_id.0.to_vec(),
        name: format!(
            "{}_to_{}_bridge",
            link.upstream_service, link.downstream_service
        ),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: u64::try_from(start).unwrap_or(0),
        end_time_unix_nano: u64::try_from(end).unwrap_or(0),
        attributes: vec![
            bool_kv(SYNTHETIC_ATTR, true),
            string_kv("correlation.key", &link.key),
            string_kv("correlation.value", &link.value),
            double_kv(BRIDGE_CONFIDENCE_ATTR, link.confidence),
            int_kv("correlation.gap_ms", link.gap_ms),
            string_kv(BRIDGE_DOWNSTREAM_ATTR, &link.downstream_trace_id.to_hex()),
            string_kv("correlation.downstream_service", &link.downstream_service),
            bool_kv("correlation.exact", link.exact),
            string_kv("correlation.direction", link.source.as_str()),
            string_kv("correlation.evidence", link.call.as_str()),
        ],
        links: vec![span::Link {
            trace_id: link.downstream_trace_id.0.to_vec(),
            span_id: link.downstream_root_span_id.0.to_vec(),
            ..Default::default()
        }],
        status: Some(Status::default()),
        ..Default::default()
    }
}

/// One bridge as the stitched view needs it: the model's edge type, shared with the store.
pub use seam_model::traces::{bridge_edges, TraceEdge as BridgeEdge};

/// The edge a link's bridge span makes.
pub fn edge_from_link(link: &Link) -> BridgeEdge {
    BridgeEdge {
        upstream: link.upstream_trace_id,
        bridge_span_id: link.bridge_span_id(),
        downstream: link.downstream_trace_id,
        downstream_root_span_id: link.downstream_root_span_id,
        confidence: link.confidence,
    }
}

fn bool_kv(key: &str, v: bool) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::BoolValue(v)),
        }),
        ..Default::default()
    }
}

fn double_kv(key: &str, v: f64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::DoubleValue(v)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_link as link;
    use seam_model::attributes::{find, find_str};

    #[test]
    fn bridge_span_fields() {
        let l = link();
        let rs = bridge_span(&l);
        assert_eq!(
            find_str(&rs.resource.as_ref().unwrap().attributes, "service.name"),
            Some("seam-correlator")
        );
        let s = &rs.scope_spans[0].spans[0];
        assert_eq!(s.trace_id, vec![0xaa; 16]);
        assert_eq!(s.span_id, crate::bridge_id(&l).to_vec());
        assert_eq!(s.parent_span_id, vec![2; 8]);
        assert_eq!(s.name, "beorn_to_mdso_bridge");
        assert_eq!(s.kind, span::SpanKind::Internal as i32);
        assert_eq!(s.start_time_unix_nano, 1_150_000_000);
        assert_eq!(s.end_time_unix_nano, 1_151_000_000);
        let a = &s.attributes;
        assert!(crate::matcher::is_synthetic(s));
        assert_eq!(find_str(a, "correlation.key"), Some("circuit_id"));
        assert_eq!(find_str(a, "correlation.value"), Some("6f1c"));
        assert_eq!(
            find(a, "correlation.confidence").unwrap().value,
            Some(Value::DoubleValue(1.0))
        );
        assert_eq!(
            find(a, "correlation.gap_ms").unwrap().value,
            Some(Value::IntValue(150))
        );
        assert_eq!(
            find_str(a, "correlation.downstream_trace_id"),
            Some("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
        );
        assert_eq!(s.links.len(), 1);
        assert_eq!(s.links[0].trace_id, vec![0xbb; 16]);
        assert_eq!(s.links[0].span_id, vec![9; 8]);
    }

    #[test]
    fn the_bridge_stays_inside_its_parent() {
        let mut l = link();
        l.downstream_start_ns = 500_000_000; // skewed before the call started
        let s = bridge_otlp_span(&l);
        assert_eq!(s.start_time_unix_nano, 1_000_000_000);
        l.downstream_start_ns = 3_000_000_000; // after the parent ended
        let s = bridge_otlp_span(&l);
        assert_eq!(s.start_time_unix_nano, 2_000_000_000);
        assert_eq!(s.end_time_unix_nano, 2_001_000_000);
    }

    #[test]
    fn edges_round_trip_through_stored_spans() {
        let l = link();
        let edges = bridge_edges(&bridge_batch(std::slice::from_ref(&l)));
        assert_eq!(edges, [edge_from_link(&l)]);
        let mut plain = bridge_otlp_span(&l);
        plain.attributes.retain(|kv| kv.key != SYNTHETIC_ATTR);
        assert_eq!(BridgeEdge::from_span(&plain), None);
        assert!(bridge_batch(&[]).is_empty());
    }
}
