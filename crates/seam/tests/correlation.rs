//! Trace stitching end to end: Beorn, MDSO and Arda emit one flow as three unrelated traces (no
//! context propagation) that share a `circuit_id`; Seam writes bridge spans and returns the whole
//! flow as one trace from the Tempo API, for any of the three trace ids.

mod common;

use std::collections::BTreeSet;

use common::codec::hex;
use common::flow::{
    built_flow, by_span_id, check_flow, check_raw, check_stitched, expected_bridges,
    flow_of_report, get_trace, metric, one_request, requests, send, spans_of, start,
    stitched_when_complete, unique, wait_metric, CONFIG, MS, SERVICES,
};
use common::{client, now_ns, run_sdk_script};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Tests

/// The real client: three OpenTelemetry Python SDK tracer providers, one per service, no
/// propagation between them, over OTLP/HTTP.
#[test]
fn python_sdk_flow_is_stitched_from_each_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), CONFIG);
    let circuit = unique("ckt");
    let report = run_sdk_script(
        &s,
        "emit_flow.py",
        &["--endpoint", &s.otlp_http, "--circuit-id", &circuit],
    );
    assert_eq!(report["circuit_id"], circuit.as_str());
    let f = flow_of_report(&report);
    let ids: BTreeSet<String> = f.trace_ids().into_iter().collect();
    assert_eq!(ids.len(), 3, "three services, three traces: {report}");
    for svc in SERVICES {
        assert_eq!(report["trace_ids"][svc], f.trace_of(svc).as_str());
    }
    let [b1, b2] = expected_bridges(&f);
    assert_eq!((b1.gap_ms, b2.gap_ms), (60, 40), "the script's timing");

    check_flow(&s, &f);
    check_raw(&s, &f);

    // Tempo v2: the same flow, complete.
    for id in f.trace_ids() {
        let (code, body) = s.get_json(&format!("/api/v2/traces/{id}"), None);
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], "COMPLETE", "{body}");
        assert_eq!(body.get("message"), None, "{body}");
        let spans = spans_of(&body["trace"]["resourceSpans"]);
        assert_eq!(spans.len(), 7, "{body}");
        assert!(spans.iter().all(|g| g.trace_id == id));
    }
    // Protobuf: the same span count, every span under the requested id.
    for id in f.trace_ids() {
        let t = common::read::trace(&client(), &s.api, &id).expect("protobuf trace");
        assert_eq!(t.spans().count(), 7, "protobuf trace {id}");
        assert!(t.spans().all(|sp| hex(&sp.trace_id) == id));
    }
    wait_metric(&s, "correlation_bridge_spans_created_total", 2.0);
    wait_metric(&s, "correlation_events_total{result=\"matched\"}", 2.0);
    assert!(
        metric(&s, "correlation_active_keys").is_some_and(|v| v >= 1.0),
        "correlation_active_keys: {:?}",
        metric(&s, "correlation_active_keys")
    );
    assert_eq!(
        metric(&s, "correlation_match_latency_seconds_count"),
        Some(2.0)
    );
}

/// Two flows on two circuits, at the same time and in one request, stay apart.
#[test]
fn concurrent_flows_on_different_circuits_are_not_cross_linked() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), CONFIG);
    let t0 = now_ns() - 2_000 * MS;
    let a = built_flow(&unique("ckt-a"), 0xa1, t0, 0);
    let b = built_flow(&unique("ckt-b"), 0xb2, t0 + 5 * MS, 0);
    send(&s, &one_request(&[&a, &b]));
    for f in [&a, &b] {
        let view = check_flow(&s, f);
        let other = if std::ptr::eq(f, &a) { &b } else { &a };
        for g in view.values() {
            assert!(
                !other.spans.iter().any(|o| o.span_id == g.span_id),
                "span {} of circuit {} is in the flow of {}",
                g.name,
                other.circuit,
                f.circuit
            );
        }
    }
    check_raw(&s, &a);
    check_raw(&s, &b);
    wait_metric(&s, "correlation_bridge_spans_created_total", 4.0);
}

/// Bridges are stored: after a restart the stitched view is the same, and the same spans sent
/// again make no second bridge (the restarted engine rebuilt its window from the store and knows
/// both links already).
#[test]
fn stitched_view_survives_restart_and_resending_makes_no_second_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path(), CONFIG);
    let f = built_flow(&unique("ckt-r"), 0xc3, now_ns() - 2_000 * MS, 0);
    let reqs = requests(&[&f]);
    for r in &reqs {
        send(&s, r);
    }
    let before = check_flow(&s, &f);
    wait_metric(&s, "correlation_bridge_spans_created_total", 2.0);
    assert!(s.terminate(), "clean exit; log:\n{}", s.log_text());

    let s = start(dir.path(), CONFIG);
    for id in f.trace_ids() {
        let spans = get_trace(&s, &id, true).expect("stitched trace after restart");
        let after = check_stitched(&f, &id, &spans);
        assert_eq!(after, before, "the stitched view of {id} after the restart");
    }
    for r in &reqs {
        send(&s, r);
    }
    // The rebuilt window knows both links: nothing is decided or written again...
    assert!(s
        .wait_log("correlation window rebuilt")
        .contains("\"restored_links\":2"));
    assert_eq!(
        metric(&s, "correlation_bridge_spans_created_total"),
        Some(0.0)
    );
    assert_eq!(
        metric(&s, "correlation_events_total{result=\"matched\"}"),
        None
    );
    // ...and the store holds one of each.
    for id in f.trace_ids() {
        let spans = get_trace(&s, &id, true).expect("stitched trace after re-sending");
        let after = check_stitched(&f, &id, &spans);
        assert_eq!(after, before, "the stitched view of {id} after re-sending");
    }
    check_raw(&s, &f);
}

/// The flow pattern, not the clocks, says who called whom: MDSO's clock runs 90 ms behind, so its
/// scriptplan seems to start before Beorn's request; the pattern still puts Beorn upstream, with
/// the bridge under Beorn's CLIENT call, which started 80 ms after MDSO's recorded start (within
/// the skew allowance), clamped into that call.
#[test]
fn the_flow_pattern_sets_the_direction_under_clock_skew() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), CONFIG);
    let t0 = now_ns() - 2_000 * MS;
    let f = built_flow(&unique("ckt-skew"), 0xd4, t0, -90);
    send(&s, &one_request(&[&f]));
    let id = f.trace_of("arda");
    let spans = stitched_when_complete(&s, &id, f.spans.len() + 2);
    let got = by_span_id(&spans);
    let bridge = |name: &str| {
        got.values()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no {name}: {spans:#?}"))
    };
    let b1 = bridge("beorn_to_mdso_bridge");
    assert_eq!(
        b1.parent.as_deref(),
        Some(f.client("beorn").span_id.as_str())
    );
    assert_eq!(
        b1.attr("correlation.gap_ms"),
        Some(&json!({"intValue": "-30"}))
    );
    assert_eq!(
        b1.attr("correlation.confidence"),
        Some(&json!({"doubleValue": 1.0}))
    );
    assert_eq!(b1.start, f.client("beorn").start, "clamped into its parent");
    let b2 = bridge("mdso_to_arda_bridge");
    // Arda started at +100 ms, 30 ms after MDSO's skewed client call (0..70) ended: still that
    // call, within the skew allowance.
    assert_eq!(
        b2.parent.as_deref(),
        Some(f.client("mdso").span_id.as_str())
    );
    assert_eq!(
        b2.attr("correlation.gap_ms"),
        Some(&json!({"intValue": "130"}))
    );
    assert_eq!(
        got[&f.root("mdso").span_id].parent.as_ref(),
        Some(&b1.span_id)
    );
    assert_eq!(
        got[&f.root("arda").span_id].parent.as_ref(),
        Some(&b2.span_id)
    );
    assert_eq!(got[&f.root("beorn").span_id].parent, None);
}
