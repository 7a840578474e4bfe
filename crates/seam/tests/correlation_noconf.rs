//! Trace stitching with no configuration at all: who called whom comes from the spans themselves
//! (CLIENT calls in flight, the URL a call went to and the route that served it, the peer it
//! named). A circuit reused 20 s later starts a new flow instead of being chained onto the
//! finished one, and a restart in the middle of flows (graceful or `kill -9`) loses no link and
//! makes none twice.

mod common;

use common::flow::{
    built_flow, check_flow, check_raw, flow_of_report, get_trace, metric, requests, send, unique,
    wait_metric, Flow,
};
use common::{now_ns, run_sdk_script, Seam};

const SEC: u64 = 1_000_000_000;

/// Emits one Beorn -> MDSO -> Arda flow with the OpenTelemetry Python SDK (three tracer
/// providers, no propagation), starting at `t0`.
fn emit(s: &Seam, circuit: &str, t0: u64) -> Flow {
    let report = run_sdk_script(
        s,
        "emit_flow.py",
        &[
            "--endpoint",
            &s.otlp_http,
            "--circuit-id",
            circuit,
            "--t0-ns",
            &t0.to_string(),
        ],
    );
    flow_of_report(&report)
}

/// Every bridge of the flow was decided from the spans, on a call that matched its downstream.
fn check_evidence(s: &Seam, f: &Flow) {
    for up in ["beorn", "mdso"] {
        let raw = get_trace(s, &f.trace_of(up), false).expect("raw trace");
        let bridges: Vec<_> = raw.iter().filter(|g| g.name.ends_with("_bridge")).collect();
        assert_eq!(bridges.len(), 1, "{up}: {raw:#?}");
        assert_eq!(
            bridges[0].str_attr("correlation.direction"),
            Some("observed")
        );
        assert_eq!(
            bridges[0].str_attr("correlation.evidence"),
            Some("matched_call")
        );
    }
}

#[test]
fn a_reused_circuit_starts_a_new_flow_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let (c1, c2) = (unique("c1"), unique("c2"));
    let t0 = now_ns() - 25 * SEC;
    // Flow A on c1, flow B on c2 50 ms later, flow C on c1 again 20 s later.
    let a = emit(&s, &c1, t0);
    let b = emit(&s, &c2, t0 + 50_000_000);
    let c = emit(&s, &c1, t0 + 20 * SEC);
    for f in [&a, &b, &c] {
        // By each of its three trace ids: exactly its own three traces and two bridges.
        check_flow(&s, f);
        check_raw(&s, f);
        check_evidence(&s, f);
    }
    wait_metric(&s, "correlation_bridge_spans_created_total", 6.0);
    assert!(
        metric(&s, "correlation_events_total{result=\"no_call\"}").is_some_and(|n| n >= 1.0),
        "flow C's Beorn was refused as a downstream of flow A"
    );
}

/// Beorn and MDSO of three flows, a restart, then Arda: every flow is stitched once.
fn restart_mid_flow(kill: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Seam::start(dir.path(), &[]);
    let t0 = now_ns() - 2 * SEC;
    let flows: Vec<Flow> = (0..3u8)
        .map(|i| {
            built_flow(
                &unique("ckt-restart"),
                0x70 + i,
                t0 + u64::from(i) * 10_000_000,
                0,
            )
        })
        .collect();
    let refs: Vec<&Flow> = flows.iter().collect();
    let [beorn, mdso, arda] = <[_; 3]>::try_from(requests(&refs)).ok().unwrap();
    send(&s, &beorn);
    send(&s, &mdso);
    wait_metric(&s, "correlation_bridge_spans_created_total", 3.0);
    if kill {
        s.kill9();
    } else {
        assert!(s.terminate(), "clean exit; log:\n{}", s.log_text());
    }

    let s = Seam::start(dir.path(), &[]);
    let line = s.wait_log("correlation window rebuilt");
    assert!(line.contains("\"restored_links\":3"), "{line}");
    send(&s, &arda);
    for f in &flows {
        check_flow(&s, f);
        check_raw(&s, f);
    }
    // Only the three MDSO -> Arda bridges are new: the restored ones were not made again (the
    // flows are complete, so nothing is still to come).
    assert_eq!(
        metric(&s, "correlation_bridge_spans_created_total"),
        Some(3.0)
    );
    assert_eq!(
        metric(&s, "correlation_events_total{result=\"matched\"}"),
        Some(3.0)
    );
}

#[test]
fn kill_9_in_the_middle_of_flows_loses_no_link_and_makes_none_twice() {
    restart_mid_flow(true);
}

#[test]
fn a_graceful_restart_in_the_middle_of_flows_loses_no_link_and_makes_none_twice() {
    restart_mid_flow(false);
}
