//! Scenarios for the correlation engine: the MDSO flow (Beorn -> MDSO -> Arda) as spans, fed in
//! the orders, timings and repetitions that real exporters produce.

mod common;

use common::*;
use seam_correlate::testing::{span, spans_with_service};
use seam_correlate::{bridge_id, CallClass, CorrelationConfig, Correlator, Link, Source};
use seam_model::otlp::trace::v1::ResourceSpans;

#[test]
fn matches_in_both_arrival_orders_with_the_same_link() {
    let expected = |arrival| Link {
        tenant: "t".into(),
        key: "circuit_id".into(),
        value: "c1".into(),
        exact: true,
        confidence: 1.0,
        gap_ms: 100,
        source: Source::Configured,
        call: CallClass::InFlight,
        upstream_trace_id: tid(1),
        upstream_service: "beorn".into(),
        parent_span_id: sid(1, 2),
        parent_start_ns: ns(T0 + 10),
        parent_end_ns: ns(T0 + 400),
        downstream_trace_id: tid(2),
        downstream_service: "mdso".into(),
        downstream_root_span_id: sid(2, 1),
        downstream_start_ns: ns(T0 + 100),
        downstream_end_ns: ns(T0 + 400),
        arrival_ns: arrival,
        decided_ns: arrival,
    };
    // Upstream first.
    let mut c = Correlator::new(cfg());
    assert!(c
        .observe_spans("t", &[beorn(1, T0, "c1")], ns(T0 + 600))
        .is_empty());
    let links = c.observe_spans("t", &[mdso(2, T0 + 100, "c1")], ns(T0 + 700));
    assert_eq!(links, [expected(ns(T0 + 700))]);
    // Downstream first.
    let mut c = Correlator::new(cfg());
    assert!(c
        .observe_spans("t", &[mdso(2, T0 + 100, "c1")], ns(T0 + 600))
        .is_empty());
    let links = c.observe_spans("t", &[beorn(1, T0, "c1")], ns(T0 + 700));
    assert_eq!(links, [expected(ns(T0 + 700))]);
    assert_eq!(c.stats().matched, 1);
    assert_eq!(
        c.stats().no_candidate,
        1,
        "the first side found nothing yet"
    );
}

#[test]
fn the_window_edge_is_inclusive() {
    // Beorn ends at +500 ms; MDSO starts exactly one window later, then 1 ms more.
    let mut c = Correlator::new(cfg());
    c.observe_spans("t", &[beorn(1, T0, "c1")], ns(T0 + SEC));
    let start = T0 + 500 + 60 * SEC;
    let held = c.observe_spans("t", &[mdso(2, start, "c1")], ns(start + SEC));
    assert!(held.is_empty(), "not in flight: held for the settle delay");
    assert_eq!(c.pending(), 1);
    assert_eq!(c.next_deadline(), Some(ns(start + 3 * SEC)));
    assert!(c.poll(ns(start + 3 * SEC) - 1).is_empty());
    let links = c.poll(ns(start + 3 * SEC));
    assert_eq!(pairs(&links), [(1, 2)]);
    assert_eq!((links[0].gap_ms, links[0].confidence), (60_500, 0.7));
    assert_eq!(
        links[0].parent_span_id,
        sid(1, 1),
        "no call in flight: the root"
    );

    let mut c = Correlator::new(cfg());
    c.observe_spans("t", &[beorn(1, T0, "c1")], ns(T0 + SEC));
    let start = start + 1;
    c.observe_spans("t", &[mdso(2, start, "c1")], ns(start + SEC));
    assert!(far(&mut c).is_empty());
    assert_eq!(c.stats().outside_window, 1);
    assert_eq!(c.stats().matched, 0);
}

#[test]
fn eviction_forgets_segments_and_their_keys() {
    let mut c = Correlator::new(cfg());
    c.observe_spans("t", &[beorn(1, T0, "c1")], ns(T0 + SEC));
    assert_eq!((c.segments(), c.active_keys()), (1, 1));
    // Kept until end + 2 windows = T0 + 120.5 s (filed at 100 ms granularity).
    assert_eq!(c.evict(ns(T0 + 120 * SEC)), 0);
    assert_eq!(c.segments(), 1);
    assert_eq!(c.evict(ns(T0 + 120 * SEC + 600)), 1);
    assert_eq!((c.segments(), c.active_keys()), (0, 0));
    assert_eq!(c.stats().segments_evicted, 1);
    // Its partner, arriving now, finds nothing.
    let links = c.observe_spans("t", &[mdso(2, T0 + 100, "c1")], ns(T0 + 121 * SEC));
    assert!(links.is_empty() && far(&mut c).is_empty());
    assert_eq!(c.stats().no_candidate, 2);
}

#[test]
fn a_partner_arriving_up_to_a_window_after_its_end_still_matches() {
    let mut c = Correlator::new(cfg());
    c.observe_spans("t", &[beorn(1, T0, "c1")], ns(T0 + SEC));
    // MDSO starts 30 s later, ends at +30.3 s and is delivered 59.7 s after its end.
    c.evict(ns(T0 + 90 * SEC));
    assert_eq!(c.segments(), 1);
    c.observe_spans("t", &[mdso(2, T0 + 30 * SEC, "c1")], ns(T0 + 90 * SEC));
    let links = c.poll(ns(T0 + 92 * SEC));
    assert_eq!(pairs(&links), [(1, 2)]);
    assert_eq!(links[0].confidence, 0.7);
}

#[test]
fn confidence_is_base_times_gap_band_and_the_minimum_cuts() {
    // A configured pattern [a, b]: the direction is certain, the key and the gap set the score.
    let ab = || CorrelationConfig {
        flow_patterns: vec![vec!["a".into(), "b".into()]],
        ..Default::default()
    };
    for (up_attr, gap_s, want) in [
        ("circuit_id", 5, 1.0),
        ("circuit_id", 15, 0.9),
        ("circuit_id", 45, 0.7),
        ("X-Circuit-Id", 5, 0.8),
        ("X-Circuit-Id", 15, 0.72),
        ("X-Circuit-Id", 45, 0.56),
    ] {
        let mut c = Correlator::new(ab());
        c.observe_spans("t", &[plain("a", 1, T0, up_attr, "c1")], ns(T0));
        let down = T0 + gap_s * SEC;
        c.observe_spans("t", &[plain("b", 2, down, "circuit_id", "c1")], ns(down));
        let links = far(&mut c);
        assert_eq!(pairs(&links), [(1, 2)], "{up_attr} {gap_s}");
        assert_eq!(links[0].confidence, want, "{up_attr} {gap_s}");
        assert_eq!(links[0].exact, up_attr == "circuit_id");
        assert_eq!(links[0].gap_ms, gap_s * SEC);
    }
    let mut c = Correlator::new(CorrelationConfig {
        min_confidence: 0.6,
        ..ab()
    });
    c.observe_spans("t", &[plain("a", 1, T0, "X-Circuit-Id", "c1")], ns(T0));
    c.observe_spans(
        "t",
        &[plain("b", 2, T0 + 45 * SEC, "circuit_id", "c1")],
        ns(T0 + 45 * SEC),
    );
    assert!(far(&mut c).is_empty());
    assert_eq!(c.stats().below_min_confidence, 1);
    assert_eq!(c.stats().matched, 0);
}

#[test]
fn without_a_pattern_the_evidence_scales_the_confidence() {
    // Spans without kinds (older instrumentation): a's only span ends at +100 ms. b starting
    // inside it is a call in flight (1.0); 4 s later is a call nearby, within the 5 s skew
    // allowance (0.9); 15 s later is time order alone (0.7, times the 10-30 s band's 0.9).
    for (start_ms, want) in [(50, 1.0), (4_000, 0.9), (15_000, 0.63)] {
        let mut c = Correlator::new(CorrelationConfig::default());
        c.observe_spans("t", &[plain("a", 1, T0, "circuit_id", "c1")], ns(T0));
        let down = T0 + start_ms;
        let mut links = c.observe_spans("t", &[plain("b", 2, down, "circuit_id", "c1")], ns(down));
        links.extend(far(&mut c));
        assert_eq!(pairs(&links), [(1, 2)], "b at +{start_ms} ms");
        assert_eq!(links[0].confidence, want, "b at +{start_ms} ms");
    }
    // min_confidence 0.7 drops the guess by time order and keeps the call nearby.
    for (start_ms, linked) in [(4_000, true), (15_000, false)] {
        let mut c = Correlator::new(CorrelationConfig {
            min_confidence: 0.7,
            ..Default::default()
        });
        c.observe_spans("t", &[plain("a", 1, T0, "circuit_id", "c1")], ns(T0));
        let down = T0 + start_ms;
        c.observe_spans("t", &[plain("b", 2, down, "circuit_id", "c1")], ns(down));
        assert_eq!(
            far(&mut c).len(),
            usize::from(linked),
            "b at +{start_ms} ms"
        );
    }
}

#[test]
fn a_flow_pattern_beats_time_order_within_the_skew_bound() {
    // Arda's clock is 2 s behind: its segment appears to start before MDSO's.
    let feed = |c: &mut Correlator, arda_start| {
        c.observe_spans("t", &[mdso(2, T0, "c1")], ns(T0 + SEC));
        c.observe_spans("t", &[arda(3, arda_start, "c1")], ns(T0 + SEC));
        far(c)
    };
    let mut c = Correlator::new(cfg());
    let links = feed(&mut c, T0 - 2 * SEC);
    assert_eq!(pairs(&links), [(2, 3)]);
    assert_eq!(links[0].gap_ms, -2_000);
    assert_eq!(
        (
            links[0].upstream_service.as_ref(),
            links[0].downstream_service.as_ref()
        ),
        ("mdso", "arda")
    );
    // Without the pattern, the earlier start is upstream.
    let mut c = Correlator::new(CorrelationConfig::default());
    assert_eq!(pairs(&feed(&mut c, T0 - 2 * SEC)), [(3, 2)]);
    // Beyond max_skew (5 s) the pattern's direction is refused.
    let mut c = Correlator::new(cfg());
    assert!(feed(&mut c, T0 - 10 * SEC).is_empty());
    assert_eq!(c.stats().direction_conflict, 1);
}

#[test]
fn a_three_service_flow_makes_exactly_the_two_adjacent_links() {
    let batch = [
        beorn(1, T0, "c1"),
        mdso(2, T0 + 100, "c1"),
        arda(3, T0 + 160, "c1"),
    ];
    let mut c = Correlator::new(cfg());
    let mut links = c.observe_spans("t", &batch, ns(T0 + SEC));
    links.extend(far(&mut c));
    assert_eq!(pairs(&links), [(1, 2), (2, 3)]);
    let to_arda = links
        .iter()
        .find(|l| l.downstream_trace_id == tid(3))
        .unwrap();
    assert_eq!(to_arda.parent_span_id, sid(2, 2), "MDSO's call to Arda");

    // Reverse-ish order, one batch each: Arda, Beorn (a non-adjacent candidate), then MDSO.
    let mut c = Correlator::new(cfg());
    let mut links = Vec::new();
    for (i, b) in [2, 0, 1].into_iter().enumerate() {
        links.extend(c.observe_spans("t", &batch[b..b + 1], ns(T0 + SEC + i as i64 * 100)));
    }
    links.extend(far(&mut c));
    assert_eq!(pairs(&links), [(1, 2), (2, 3)]);
    assert_eq!(
        c.stats().superseded,
        1,
        "MDSO replaced Beorn as Arda's upstream"
    );
}

#[test]
fn beorn_links_straight_to_arda_only_without_an_mdso_segment() {
    let mut c = Correlator::new(cfg());
    c.observe_spans(
        "t",
        &[beorn(1, T0, "c1"), arda(3, T0 + 160, "c1")],
        ns(T0 + SEC),
    );
    assert_eq!(pairs(&far(&mut c)), [(1, 3)]);
}

/// Two flows on one circuit, 5 s apart (Beorn 1 -> MDSO 2, Beorn 3 -> MDSO 4), delivered out of
/// order: MDSO 4 first, then Beorn 1, MDSO 2 and Beorn 3.
fn concurrent(fast_path: bool) -> (Vec<Link>, Correlator) {
    let mut c = Correlator::new(CorrelationConfig { fast_path, ..cfg() });
    let order = [
        mdso(4, T0 + 5_100, "c1"),
        beorn(1, T0, "c1"),
        mdso(2, T0 + 100, "c1"),
        beorn(3, T0 + 5_000, "c1"),
    ];
    let mut links = Vec::new();
    for (i, b) in order.into_iter().enumerate() {
        links.extend(c.observe_spans("t", &[b], ns(T0 + 6 * SEC + i as i64 * 100)));
    }
    links.extend(far(&mut c));
    (links, c)
}

#[test]
fn concurrent_flows_on_one_circuit_are_not_cross_linked() {
    let (links, c) = concurrent(true);
    assert_eq!(pairs(&links), [(1, 2), (3, 4)]);
    assert!(links.iter().all(|l| l.gap_ms == 100 && l.confidence == 1.0));
    assert_eq!(
        c.stats().superseded,
        1,
        "Beorn 1 was held for MDSO 4, then replaced"
    );
    // Every decision here was unambiguous once both sides were in: no wait.
    assert!(links
        .iter()
        .all(|l| l.decided_ns == l.arrival_ns || l.downstream_trace_id == tid(4)));
    let (links, _) = concurrent(false);
    assert_eq!(pairs(&links), [(1, 2), (3, 4)]);
}

#[test]
fn overlapping_calls_are_held_until_the_nearest_wins() {
    // Beorn 1's call runs 0.01..2.9 s, Beorn 3's 1.01..3.9 s: both are in flight when MDSO 4
    // starts at 1.1 s, so the choice waits and goes by proximity.
    let wide = |trace: u8, start: i64| {
        spans_with_service(
            "beorn",
            vec![
                span(
                    trace,
                    trace * 10 + 1,
                    0,
                    "root",
                    start,
                    start + 3_000,
                    &[("circuit_id", "c1")],
                ),
                span(
                    trace,
                    trace * 10 + 2,
                    trace * 10 + 1,
                    "POST",
                    start + 10,
                    start + 2_900,
                    &[],
                ),
            ],
        )
    };
    let mut c = Correlator::new(cfg());
    c.observe_spans("t", &[wide(1, T0), wide(3, T0 + SEC)], ns(T0 + 4 * SEC));
    let now = c.observe_spans("t", &[mdso(4, T0 + 1_100, "c1")], ns(T0 + 5 * SEC));
    assert!(now.is_empty(), "two calls in flight: ambiguous");
    let links = c.poll(ns(T0 + 7 * SEC));
    assert_eq!(pairs(&links), [(3, 4)]);
    assert_eq!(links[0].parent_span_id, sid(3, 2));
    assert_eq!(links[0].decided_ns - links[0].arrival_ns, ns(2 * SEC));
}

#[test]
fn a_trusted_key_beats_a_closer_match_through_a_shared_product() {
    // Two circuits of one product: Beorn 1 (c1) is nearer MDSO 2 (c2) in time, but only through
    // product_id; Beorn 3 shares its circuit.
    let with_product = |mut rs: ResourceSpans| {
        for s in &mut rs.scope_spans[0].spans {
            s.attributes
                .push(seam_model::attributes::string_kv("product_id", "p1"));
        }
        rs
    };
    let mut c = Correlator::new(cfg());
    c.observe_spans(
        "t",
        &[
            with_product(beorn(3, T0, "c2")),
            with_product(beorn(1, T0 + 1_050, "c1")),
        ],
        ns(T0 + 2 * SEC),
    );
    c.observe_spans(
        "t",
        &[with_product(mdso(2, T0 + 1_100, "c2"))],
        ns(T0 + 2 * SEC),
    );
    let links = far(&mut c);
    assert_eq!(pairs(&links), [(3, 2)]);
    assert_eq!(
        (links[0].key.as_ref(), links[0].value.as_ref()),
        ("circuit_id", "c2")
    );
}

#[test]
fn several_shared_keys_make_one_link() {
    let keys = [
        ("circuit_id", "c1"),
        ("resource_id", "r1"),
        ("product_id", "p1"),
    ];
    let mut c = Correlator::new(cfg());
    c.observe_spans(
        "t",
        &[spans_with_service(
            "beorn",
            vec![span(1, 11, 0, "b", T0, T0 + 500, &keys)],
        )],
        ns(T0 + SEC),
    );
    let links = c.observe_spans(
        "t",
        &[spans_with_service(
            "mdso",
            vec![span(2, 21, 0, "m", T0 + 100, T0 + 200, &keys)],
        )],
        ns(T0 + SEC),
    );
    assert_eq!(pairs(&links), [(1, 2)]);
    assert_eq!(&*links[0].key, "circuit_id");
    assert!(far(&mut c).is_empty());
    assert_eq!(c.stats().matched, 1);
}

#[test]
fn duplicates_and_re_observation_give_no_second_link() {
    let mut c = Correlator::new(cfg());
    let b = [beorn(1, T0, "c1")];
    let m = [mdso(2, T0 + 100, "c1")];
    c.observe_spans("t", &b, ns(T0 + SEC));
    let first = c.observe_spans("t", &m, ns(T0 + SEC));
    assert_eq!(first.len(), 1);
    // The same batches again: nothing changes, nothing is evaluated.
    assert!(c.observe_spans("t", &m, ns(T0 + 2 * SEC)).is_empty());
    assert!(c.observe_spans("t", &b, ns(T0 + 2 * SEC)).is_empty());
    assert_eq!(c.stats().duplicate, 0);
    // More spans that widen MDSO's range: re-evaluated, recognised as the same match.
    let more = spans_with_service(
        "mdso",
        vec![span(
            2,
            29,
            21,
            "late child",
            T0 + 200,
            T0 + 900,
            &[("circuit.id", "c1")],
        )],
    );
    assert!(c.observe_spans("t", &[more], ns(T0 + 3 * SEC)).is_empty());
    assert!(far(&mut c).is_empty());
    assert_eq!(c.stats().duplicate, 1);
    assert_eq!(c.stats().matched, 1);

    // A restarted process making the same match names the same bridge span.
    let mut again = Correlator::new(cfg());
    again.observe_spans("t", &m, ns(T0 + 5 * SEC));
    let second = again.observe_spans("t", &b, ns(T0 + 5 * SEC));
    assert_eq!(bridge_id(&second[0]), bridge_id(&first[0]));
}

#[test]
fn a_segment_split_over_batches_links_once_under_the_call() {
    // Beorn's client span (header only) comes first; its root (canonical key) last.
    let b = beorn(1, T0, "c1");
    let mut call = b.clone();
    call.scope_spans[0].spans.remove(0);
    let mut root = b;
    root.scope_spans[0].spans.remove(1);
    let mut c = Correlator::new(cfg());
    c.observe_spans("t", &[call], ns(T0 + 450));
    let links = c.observe_spans("t", &[mdso(2, T0 + 100, "c1")], ns(T0 + 460));
    assert_eq!(pairs(&links), [(1, 2)]);
    assert_eq!(links[0].parent_span_id, sid(1, 2));
    assert_eq!(
        (links[0].exact, links[0].confidence),
        (false, 0.8),
        "only the alias was in"
    );
    assert!(c.observe_spans("t", &[root], ns(T0 + 600)).is_empty());
    assert!(far(&mut c).is_empty());
    let seg = c.segment("t", &tid(1)).unwrap();
    assert_eq!(
        (seg.root().unwrap().span_id, seg.keys[0].exact),
        (sid(1, 1), true)
    );
}

#[test]
fn keyless_segments_are_forgotten_after_the_keyless_ttl_unless_a_key_arrives() {
    let mut c = Correlator::new(cfg());
    let plain = |trace: u8, id: u8| {
        spans_with_service("svc", vec![span(trace, id, 0, "work", T0, T0 + 100, &[])])
    };
    c.observe_spans("t", &[plain(7, 1)], ns(T0 + SEC));
    c.observe_spans("t", &[plain(8, 1)], ns(T0 + SEC));
    // Trace 8 shows a key in a later batch: it is kept for the window like any keyed segment.
    c.observe_spans("t", &[beorn(8, T0, "c9")], ns(T0 + 2 * SEC));
    assert_eq!(c.segments(), 2);
    // Default keyless_ttl is 10 s after the last arrival.
    assert_eq!(
        c.evict(ns(T0 + 11 * SEC + 200)),
        1,
        "the keyless segment goes"
    );
    assert_eq!(c.segments(), 1);
    assert_eq!(c.evict(ns(T0 + 30 * SEC)), 0, "the keyed one stays");
}
