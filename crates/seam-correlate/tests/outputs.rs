//! What the engine's output feeds: bridge spans (and ignoring them on the way back), the
//! stitched view, log correlation, tenant isolation, and the settle-free mode.

mod common;

use common::*;
use seam_correlate::{
    bridge_batch, bridge_edges, stitch, BridgeEdge, CorrelationConfig, Correlator,
    ORIGINAL_TRACE_ID,
};
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::{SpanId, TraceId};
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn bridges_fed_back_are_ignored() {
    let mut c = Correlator::new(cfg());
    c.observe_spans("t", &[beorn(1, T0, "c1")], ns(T0 + SEC));
    let links = c.observe_spans("t", &[mdso(2, T0 + 100, "c1")], ns(T0 + SEC));
    let bridges = bridge_batch(&links);
    assert!(c.observe_spans("t", &bridges, ns(T0 + 2 * SEC)).is_empty());
    assert_eq!(c.stats().synthetic_ignored, 1);
    let beorn_seg = c.segment("t", &tid(1)).unwrap();
    assert_eq!(
        beorn_seg.spans.len(),
        2,
        "the bridge did not join Beorn's segment"
    );
}

#[test]
fn tenants_never_match_each_other() {
    let mut c = Correlator::new(cfg());
    c.observe_spans("a", &[beorn(1, T0, "c1")], ns(T0 + SEC));
    assert!(c
        .observe_spans("b", &[mdso(2, T0 + 100, "c1")], ns(T0 + SEC))
        .is_empty());
    assert!(far(&mut c).is_empty());
    assert_eq!((c.segments(), c.active_keys()), (2, 2));
    assert_eq!(c.segments_for_key("a", "circuit_id", "c1").len(), 1);
}

#[test]
fn logs_find_the_segment_they_belong_to() {
    let mut c = Correlator::new(cfg());
    c.observe_spans(
        "t",
        &[beorn(1, T0, "c1"), mdso(2, T0 + 100, "c1")],
        ns(T0 + SEC),
    );
    let keys = c
        .extractor()
        .extract_from_log("CircuitDetailsCollector: state=done circuit_id=c1", &[]);
    assert_eq!(keys.len(), 1);
    assert_eq!(
        c.correlate_log("t", &keys, ns(T0 + 150), Some("mdso")),
        Some(tid(2))
    );
    assert_eq!(
        c.correlate_log("t", &keys, ns(T0 + 150), Some("beorn")),
        Some(tid(1))
    );
    assert_eq!(
        c.correlate_log("t", &keys, ns(T0 + 450), None),
        Some(tid(1))
    );
    assert_eq!(c.correlate_log("t", &keys, ns(T0 + 61 * SEC), None), None);
    assert_eq!(c.correlate_log("other", &keys, ns(T0 + 150), None), None);
}

#[test]
fn links_become_bridges_that_stitch_into_one_trace() {
    let flow = [
        beorn(1, T0, "c1"),
        mdso(2, T0 + 100, "c1"),
        arda(3, T0 + 160, "c1"),
    ];
    let mut c = Correlator::new(cfg());
    let mut links = c.observe_spans("t", &flow, ns(T0 + SEC));
    links.extend(far(&mut c));
    let bridges = bridge_batch(&links);
    let edges = bridge_edges(&bridges);
    assert_eq!(edges.len(), 2);
    let mut traces: HashMap<TraceId, Vec<ResourceSpans>> = HashMap::new();
    for (i, rs) in flow.iter().enumerate() {
        traces.insert(tid(i as u8 + 1), vec![rs.clone()]);
    }
    // The store files each bridge under its upstream trace.
    for l in &links {
        let one = seam_correlate::bridge_span(l);
        traces.get_mut(&l.upstream_trace_id).unwrap().push(one);
    }
    let st = stitch(tid(3), &traces, &edges, 50);
    assert!(st.warnings.is_empty());
    let spans: Vec<_> = st
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    assert_eq!(spans.len(), 7);
    assert!(spans.iter().all(|s| s.trace_id == tid(3).0.to_vec()));
    let parent_of = |id: SpanId| {
        spans
            .iter()
            .find(|s| s.span_id == id.0.to_vec())
            .unwrap()
            .parent_span_id
            .clone()
    };
    let edge_into =
        |t: u8| -> BridgeEdge { *edges.iter().find(|e| e.downstream == tid(t)).unwrap() };
    assert_eq!(parent_of(sid(2, 1)), edge_into(2).bridge_span_id.0.to_vec());
    assert_eq!(parent_of(sid(3, 1)), edge_into(3).bridge_span_id.0.to_vec());
    assert_eq!(parent_of(edge_into(2).bridge_span_id), sid(1, 2).0.to_vec());
    assert_eq!(parent_of(sid(1, 1)), Vec::<u8>::new());
    let orig = spans
        .iter()
        .find(|s| s.span_id == sid(2, 1).0.to_vec())
        .map(|s| {
            seam_model::attributes::find_str(&s.attributes, ORIGINAL_TRACE_ID).map(str::to_string)
        })
        .unwrap();
    assert_eq!(orig.as_deref(), Some(tid(2).to_hex().as_str()));
}

#[test]
fn settle_zero_decides_at_the_end_of_each_batch() {
    let mut c = Correlator::new(CorrelationConfig {
        settle: Duration::ZERO,
        ..cfg()
    });
    c.observe_spans("t", &[beorn(1, T0, "c1")], ns(T0 + SEC));
    // Not in flight (starts after Beorn ended), yet decided at once.
    let links = c.observe_spans("t", &[mdso(2, T0 + 2 * SEC, "c1")], ns(T0 + 3 * SEC));
    assert_eq!(pairs(&links), [(1, 2)]);
    assert_eq!(c.pending(), 0);
}
