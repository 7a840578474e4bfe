use super::*;
use crate::testing::{span, spans_with_service, MS};
use std::collections::HashMap;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;

fn ns(ms: i64) -> i64 {
    ms * MS
}

fn seg(svc: &str, trace: u8, start_ms: i64, circuit: &str) -> ResourceSpans {
    spans_with_service(
        svc,
        vec![span(
            trace,
            trace,
            0,
            "op",
            start_ms,
            start_ms + 100,
            &[("circuit_id", circuit)],
        )],
    )
}

fn small_window() -> CorrelationConfig {
    CorrelationConfig {
        window: Duration::from_secs(10),
        ..Default::default()
    }
}

#[test]
fn old_timestamps_are_kept_one_window_after_arrival() {
    let mut c = Correlator::new(small_window());
    let arrival = ns(T0 + 3_600_000);
    c.observe_spans("t", &[seg("a", 1, T0, "c")], arrival);
    assert_eq!(c.evict(arrival + ns(9_900)), 0);
    assert_eq!(c.evict(arrival + ns(10_100)), 1);
    assert_eq!(c.segments(), 0);
    assert!(c.tenants.is_empty(), "an empty tenant is dropped too");
}

#[test]
fn future_timestamps_are_kept_at_most_two_windows_after_arrival() {
    let mut c = Correlator::new(small_window());
    let arrival = ns(T0);
    c.observe_spans("t", &[seg("a", 1, T0 + 3_600_000, "c")], arrival);
    assert_eq!(c.evict(arrival + ns(19_900)), 0);
    assert_eq!(c.evict(arrival + ns(20_100)), 1);
}

#[test]
fn memory_stays_bounded_with_unique_keys() {
    // One new circuit every 100 ms for 1,000 s; a 10 s window keeps about 20 s of them.
    let mut c = Correlator::new(small_window());
    let mut most = 0;
    for i in 0..10_000i64 {
        let t = T0 + i * 100;
        let trace = [(i % 251) as u8 + 1; 16];
        let mut rs = seg("a", 1, t, &format!("c{i}"));
        let s = &mut rs.scope_spans[0].spans[0];
        s.trace_id = trace.to_vec();
        s.trace_id[15] = (i / 251) as u8;
        c.observe_spans("t", &[rs], ns(t));
        if i % 10 == 0 {
            c.evict(ns(t));
        }
        most = most.max(c.segments());
        assert_eq!(c.segments(), c.active_keys());
    }
    assert!((200..=212).contains(&most), "{most}");
    c.evict(ns(T0 + 2_000_000));
    assert_eq!((c.segments(), c.active_keys()), (0, 0));
}

#[test]
fn malformed_and_synthetic_spans_are_counted_not_kept() {
    let mut c = Correlator::new(CorrelationConfig::default());
    let mut bad = span(1, 1, 0, "x", T0, T0 + 1, &[("circuit_id", "c")]);
    bad.trace_id.pop();
    let mut zero = bad.clone();
    zero.trace_id = vec![0; 16];
    let synthetic = span(
        2,
        2,
        0,
        "b",
        T0,
        T0 + 1,
        &[("synthetic", "true"), ("circuit_id", "c")],
    );
    c.observe_spans(
        "t",
        &[spans_with_service("a", vec![bad, zero, synthetic])],
        ns(T0),
    );
    assert_eq!(
        (c.stats().invalid_spans, c.stats().synthetic_ignored),
        (2, 1)
    );
    assert_eq!(c.segments(), 0);
}

#[test]
fn a_better_candidate_after_the_decision_is_counted_not_linked() {
    let mut c = Correlator::new(CorrelationConfig {
        settle: Duration::ZERO,
        flow_patterns: vec![vec!["beorn".into(), "mdso".into()]],
        ..Default::default()
    });
    c.observe_spans("t", &[seg("beorn", 1, T0, "c")], ns(T0));
    let first = c.observe_spans("t", &[seg("mdso", 2, T0 + 5_000, "c")], ns(T0 + 5_000));
    assert_eq!(first.len(), 1);
    let late = c.observe_spans("t", &[seg("beorn", 3, T0 + 4_900, "c")], ns(T0 + 6_000));
    assert!(late.is_empty());
    assert_eq!(c.stats().slot_taken, 1);
    assert!(matches!(
        c.segment("t", &TraceId([2; 16])).unwrap().link,
        LinkState::Decided { upstream } if upstream == TraceId([1; 16])
    ));
}

#[test]
fn peers_of_one_service_are_never_linked() {
    let mut c = Correlator::new(CorrelationConfig {
        settle: Duration::ZERO,
        ..Default::default()
    });
    c.observe_spans("t", &[seg("mdso", 1, T0, "c")], ns(T0));
    assert!(c
        .observe_spans("t", &[seg("mdso", 2, T0 + 100, "c")], ns(T0))
        .is_empty());
    assert_eq!(c.stats().same_service, 1);
    let found = c.segments_for_key("t", "circuit_id", "c");
    let ids: Vec<u8> = found.iter().map(|s| s.trace_id.0[0]).collect();
    assert_eq!(ids, [1, 2]);
}

#[test]
fn held_decisions_are_listed_and_due_in_order() {
    let mut c = Correlator::new(CorrelationConfig::default());
    c.observe_spans("t", &[seg("a", 1, T0, "c1"), seg("a", 3, T0, "c2")], ns(T0));
    c.observe_spans("t", &[seg("b", 2, T0 + 1_000, "c1")], ns(T0 + 1_000));
    c.observe_spans("t", &[seg("b", 4, T0 + 1_000, "c2")], ns(T0 + 1_500));
    assert_eq!(c.pending(), 2);
    assert_eq!(c.next_deadline(), Some(ns(T0 + 3_000)));
    let links = c.tick(ns(T0 + 3_000));
    assert_eq!(links.len(), 1);
    assert_eq!(&*links[0].value, "c1");
    assert_eq!(links[0].latency_ms(), 2_000.0);
    assert_eq!(c.next_deadline(), Some(ns(T0 + 3_500)));
    assert_eq!(c.poll(ns(T0 + 3_500)).len(), 1);
    assert_eq!((c.pending(), c.next_deadline()), (0, None));
    let events: HashMap<&str, u64> = c.stats().events().into_iter().collect();
    assert_eq!(events["matched"], 2);
    assert_eq!(events["no_candidate"], 2);
}

#[test]
fn synthetic_detection_accepts_bool_and_string() {
    let mut s = span(1, 1, 0, "b", 0, 1, &[("synthetic", "false")]);
    assert!(!is_synthetic(&s));
    s.attributes = crate::bridge::bridge_otlp_span(&crate::testing::sample_link()).attributes;
    assert!(is_synthetic(&s));
}

#[test]
fn a_pattern_sees_past_an_unlisted_root_service() {
    // Beorn's trace is rooted at a proxy; MDSO's clock runs 1 s early.
    let mut c = Correlator::new(CorrelationConfig {
        settle: Duration::ZERO,
        flow_patterns: vec![vec!["beorn".into(), "mdso".into()]],
        ..Default::default()
    });
    let proxied = vec![
        spans_with_service("nginx", vec![span(1, 1, 0, "proxy", T0, T0 + 500, &[])]),
        spans_with_service(
            "beorn",
            vec![span(
                1,
                2,
                1,
                "create",
                T0 + 5,
                T0 + 490,
                &[("circuit_id", "c")],
            )],
        ),
    ];
    c.observe_spans("t", &proxied, ns(T0 + 600));
    let links = c.observe_spans("t", &[seg("mdso", 2, T0 - 1_000, "c")], ns(T0 + 600));
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].upstream_trace_id, TraceId([1; 16]));
    assert_eq!(&*links[0].upstream_service, "nginx");
    assert_eq!(links[0].gap_ms, -1_000);
}

/// A replica's engine: the upstream segment arrives as another process's summary, the downstream
/// locally; the link hangs under the remote call span. Remote segments are never reported as
/// changed (so never re-published), and two remote segments are never linked here.
#[test]
fn remote_segments_match_local_ones_and_are_not_republished() {
    let mut other = Correlator::new(CorrelationConfig {
        settle: Duration::ZERO,
        ..Default::default()
    });
    let beorn = spans_with_service(
        "beorn",
        vec![
            span(1, 1, 0, "root", T0, T0 + 300, &[("circuit_id", "c")]),
            span(1, 2, 1, "call", T0 + 50, T0 + 250, &[]),
        ],
    );
    other.track_changes(true);
    other.observe_spans("t", &[beorn], ns(T0));
    let changed = other.take_changed();
    assert_eq!(changed.len(), 1);
    let summary = RemoteSegment::of(other.segment("t", &changed[0].1).unwrap(), 8);
    assert_eq!(summary.spans[0].span_id, SpanId([1; 8]), "the root first");

    let mut c = Correlator::new(CorrelationConfig {
        settle: Duration::ZERO,
        ..Default::default()
    });
    c.track_changes(true);
    assert!(c.observe_remote("t", &summary, ns(T0)).is_empty());
    assert!(
        c.take_changed().is_empty(),
        "remote segments are not re-published"
    );
    assert!(c.segment("t", &TraceId([1; 16])).unwrap().is_remote());
    let mut arda = summary.clone();
    arda.trace_id = TraceId([3; 16]);
    arda.services = vec!["arda".into()];
    assert!(
        c.observe_remote("t", &arda, ns(T0)).is_empty(),
        "two remote segments are left to their owners"
    );
    let links = c.observe_spans("t", &[seg("mdso", 2, T0 + 100, "c")], ns(T0 + 400));
    assert_eq!(links.len(), 1, "{links:?}");
    let l = &links[0];
    assert_eq!(l.upstream_trace_id, TraceId([1; 16]));
    assert_eq!(l.downstream_trace_id, TraceId([2; 16]));
    assert_eq!(
        l.parent_span_id,
        SpanId([2; 8]),
        "under the remote call span"
    );
    assert_eq!(l.confidence, 1.0);
    assert_eq!(c.take_changed().len(), 1, "the local segment is");
    // The same summary again changes nothing.
    assert!(c.observe_remote("t", &summary, ns(T0 + 500)).is_empty());
}
