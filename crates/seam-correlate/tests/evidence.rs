//! Correlation with no configuration: direction from the spans' call evidence, flow boundaries
//! (finished flows, entry points, repeated services), learned patterns, and rebuilding after a
//! restart.

mod common;

use common::*;
use seam_correlate::testing::{span, spans_with_service};
use seam_correlate::{bridge_batch, CallClass, CorrelationConfig, Correlator, Link, Source};

fn no_config() -> CorrelationConfig {
    CorrelationConfig::default()
}

/// Feeds batches one by one, arrival 1 s after `T0` plus 10 ms per batch, then polls far ahead.
fn feed(c: &mut Correlator, batches: &[seam_model::otlp::trace::v1::ResourceSpans]) -> Vec<Link> {
    let mut links = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        links.extend(c.observe_spans(
            "t",
            std::slice::from_ref(b),
            ns(T0 + 30 * SEC + i as i64 * 10),
        ));
    }
    links.extend(far(c));
    links
}

#[test]
fn a_reused_key_starts_a_new_flow_and_each_flow_gets_its_two_bridges() {
    // Flow A on c1, flow B on c2 50 ms later, flow C on c1 again 20 s later.
    let a = typed_flow(1, T0, "c1");
    let b = typed_flow(4, T0 + 50, "c2");
    let c_ = typed_flow(7, T0 + 20 * SEC, "c1");
    let orders: [[usize; 9]; 3] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8],
        [8, 7, 6, 5, 4, 3, 2, 1, 0],
        [2, 5, 8, 0, 3, 6, 1, 4, 7],
    ];
    let all: Vec<_> = a.iter().chain(&b).chain(&c_).cloned().collect();
    for order in orders {
        let mut c = Correlator::new(no_config());
        let batches: Vec<_> = order.iter().map(|&i| all[i].clone()).collect();
        let links = feed(&mut c, &batches);
        assert_eq!(
            pairs(&links),
            [(1, 2), (2, 3), (4, 5), (5, 6), (7, 8), (8, 9)],
            "order {order:?}"
        );
        for l in &links {
            assert_eq!(l.source, Source::Observed);
            assert_eq!(l.call, CallClass::Matched, "{l:?}");
            assert_eq!(l.confidence, 1.0);
        }
        // Beorn's bridge hangs under its POST, MDSO's under the Arda call (not a device call).
        let to_arda = links
            .iter()
            .find(|l| l.downstream_trace_id == tid(3))
            .unwrap();
        assert_eq!(to_arda.parent_span_id, sid(2, 3));
        let to_mdso = links
            .iter()
            .find(|l| l.downstream_trace_id == tid(2))
            .unwrap();
        assert_eq!(to_mdso.parent_span_id, sid(1, 2));
    }
}

#[test]
fn finished_flows_entry_points_and_calls_elsewhere_are_refused() {
    let mut c = Correlator::new(no_config());
    let a = typed_flow(1, T0, "c1");
    feed(&mut c, &a);
    // A later Beorn request on the same circuit: its SERVER root was called by nobody in sight
    // (MDSO's calls ended 20 s earlier; Arda made no call at all).
    let later = typed_flow(7, T0 + 20 * SEC, "c1");
    let links = feed(&mut c, &later[..1]);
    assert!(links.is_empty(), "{links:?}");
    assert!(c.stats().no_call >= 2, "{:?}", c.stats());
    // An Arda request inside Beorn's POST, but the POST went to MDSO's route, not Arda's: Beorn
    // is no candidate; MDSO's Arda call is taken by Arda 3.
    let stray = spans_with_service(
        "arda",
        vec![kind(
            span(
                20,
                201,
                0,
                "arda.get_topology",
                T0 + 300,
                T0 + 310,
                &[
                    ("circuit_id", "c1"),
                    ("http.route", "/api/v3/topologies/{circuit_id}"),
                ],
            ),
            2,
        )],
    );
    assert!(feed(&mut c, &[stray]).is_empty());
}

#[test]
fn a_service_never_appears_twice_on_one_path() {
    // A second Beorn request 700 ms after flow A started. MDSO's last call (400..550 ms) ended
    // 150 ms earlier, within the skew allowance, and says nothing about where it went (this MDSO
    // does not record rpc.system); but Beorn is already above that MDSO.
    let mut c = Correlator::new(no_config());
    let mut flow = typed_flow(1, T0, "c1");
    for s in &mut flow[1].scope_spans[0].spans {
        s.attributes.retain(|kv| kv.key != "rpc.system");
    }
    let links = feed(&mut c, &flow);
    assert_eq!(pairs(&links), [(1, 2), (2, 3)]);
    let second = spans_with_service(
        "beorn",
        vec![kind(
            span(
                15,
                151,
                0,
                "create",
                T0 + 700,
                T0 + 900,
                &[("circuit_id", "c1")],
            ),
            2,
        )],
    );
    assert!(feed(&mut c, &[second]).is_empty());
    assert_eq!(c.stats().repeated_service, 1, "{:?}", c.stats());
}

#[test]
fn patterns_are_learned_from_strong_links_and_then_order_weak_ones() {
    let mut c = Correlator::new(CorrelationConfig {
        learn_min_links: 3,
        ..no_config()
    });
    for i in 0..3u8 {
        let links = feed(
            &mut c,
            &typed_flow(1 + 3 * i, T0 + i64::from(i) * SEC, &format!("c{i}")),
        );
        assert_eq!(links.len(), 2);
    }
    assert_eq!(
        c.learned().patterns("t"),
        vec![vec!["beorn", "mdso", "arda"]]
    );
    let p = c.learned().pairs("t");
    assert_eq!((p[0].links, p[0].active), (3, true));
    // Untyped spans that would order by time the wrong way (Arda's clock far ahead is not
    // enough; here Arda simply starts first): the learned pattern puts MDSO upstream.
    let mdso = plain("mdso", 21, T0 + 100 * SEC, "circuit_id", "u1");
    let arda = plain("arda", 22, T0 + 100 * SEC - 2 * SEC, "circuit_id", "u1");
    let links = feed(&mut c, &[mdso, arda]);
    assert_eq!(pairs(&links), [(21, 22)]);
    assert_eq!(links[0].source, Source::Learned);
    // Turned off, nothing is learned.
    let mut c = Correlator::new(CorrelationConfig {
        learn_patterns: false,
        learn_min_links: 1,
        ..no_config()
    });
    feed(&mut c, &typed_flow(1, T0, "c1"));
    assert!(c.learned().patterns("t").is_empty());
}

#[test]
fn a_rebuild_restores_stored_bridges_and_matches_what_comes_after() {
    // Before the restart: Beorn and MDSO arrived and their bridge was written.
    let flow = typed_flow(1, T0, "c1");
    let mut before = Correlator::new(no_config());
    let links = feed(&mut before, &flow[..2]);
    assert_eq!(pairs(&links), [(1, 2)]);
    let bridge = bridge_batch(&links);
    // The restarted engine reads the stored traces back: the bridge after the segments, as a
    // trace read returns it (inside Beorn's trace).
    let mut c = Correlator::new(no_config());
    c.begin_rebuild();
    c.observe_spans("t", &flow[..2], ns(T0 + 40 * SEC));
    c.observe_spans("t", &bridge, ns(T0 + 40 * SEC));
    assert!(
        c.poll(ns(T0 + 3_600 * SEC)).is_empty(),
        "nothing is decided while rebuilding"
    );
    assert!(
        c.finish_rebuild(ns(T0 + 40 * SEC)).is_empty(),
        "the stored bridge is not made again"
    );
    assert_eq!(c.stats().restored, 1);
    // Arda arrives after the restart and finds MDSO.
    let links = c.observe_spans("t", &flow[2..], ns(T0 + 41 * SEC));
    assert_eq!(pairs(&links), [(2, 3)]);
    // A pair held when the process stopped (no bridge yet) is decided at the end of the rebuild.
    let mut c = Correlator::new(no_config());
    c.begin_rebuild();
    c.observe_spans("t", &flow, ns(T0 + 40 * SEC));
    assert_eq!(
        pairs(&c.finish_rebuild(ns(T0 + 40 * SEC))),
        [(1, 2), (2, 3)]
    );
}

#[test]
fn memory_is_estimated_and_released() {
    let mut c = Correlator::new(no_config());
    assert_eq!(c.approx_bytes(), 0);
    feed(&mut c, &typed_flow(1, T0, "c1"));
    let held = c.approx_bytes();
    assert!(
        held > 3 * std::mem::size_of::<seam_correlate::Segment>(),
        "{held}"
    );
    c.evict(ns(T0 + 3_600 * SEC));
    assert_eq!(c.segments(), 0);
    assert!(
        c.approx_bytes() < held / 4,
        "{} of {held}",
        c.approx_bytes()
    );
}

#[test]
fn key_rows_for_the_store_come_from_the_same_read() {
    let mut c = Correlator::new(no_config());
    let mut rows = Vec::new();
    let flow = typed_flow(1, T0, "c1");
    c.observe_spans_with_keys("t", &flow, ns(T0 + SEC), &mut rows);
    let got: Vec<(u8, &str, &str, &str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.trace_id.0[0],
                &*r.service,
                &*r.key,
                &*r.value,
                r.start_ns / 1_000_000 - T0,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "beorn", "circuit_id", "c1", 0),
            (1, "beorn", "circuit_id", "c1", 20),
            (2, "mdso", "circuit_id", "c1", 40),
            (3, "arda", "circuit_id", "c1", 220),
        ]
    );
    // Spans seen before give no rows: their keys are indexed already.
    rows.clear();
    c.observe_spans_with_keys("t", &flow, ns(T0 + 2 * SEC), &mut rows);
    assert!(rows.is_empty());
}
