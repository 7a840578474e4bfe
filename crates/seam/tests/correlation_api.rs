//! `/api/seam/correlations` and `seam correlate`: a key value's traces, bridges and log lines,
//! served from the head and, after a restart, from the catalog.

mod common;

use std::time::Duration;

use common::otlp::{export, log_line, logs, service, span, traces};
use common::{eventually, now_ns, Seam};
use seam_model::attributes::string_kv;
use serde_json::Value;

fn lookup(s: &Seam, value: &str) -> Value {
    let (code, body) = s.get_json(
        &format!("/api/seam/correlations?key=circuit_id&value={value}"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    body
}

/// Sends a beorn call and the MDSO trace it started, joined only by `circuit_id`, plus one MDSO log
/// line mentioning the circuit.
fn send_flow(s: &Seam, circuit: &str, beorn: [u8; 16], mdso: [u8; 16]) {
    // A second in the past: lookups end at "now", and a log line stamped after the moment of the
    // first lookup (the bridge can be listed within milliseconds) would not be counted yet.
    let t0 = now_ns() - 1_000_000_000;
    let mut call = span(
        &beorn,
        &[1; 8],
        "beorn.create_network_service".into(),
        t0,
        t0 + 300_000_000,
    );
    call.attributes = vec![string_kv("circuit_id", circuit)];
    let mut plan = span(
        &mdso,
        &[2; 8],
        "CircuitDetailsCollector".into(),
        t0 + 50_000_000,
        t0 + 200_000_000,
    );
    plan.attributes = vec![string_kv("circuit_id", circuit)];
    for (svc, sp) in [("beorn", call), ("mdso", plan)] {
        export(s, "traces", &traces(service(svc), vec![sp]));
    }
    send_mdso_log(s, t0 + 60_000_000, circuit);
}

/// Sends one MDSO log line at `t_ns` mentioning `circuit`.
fn send_mdso_log(s: &Seam, t_ns: u64, circuit: &str) {
    let line = format!("scriptplan=CircuitDetailsCollector circuit_id={circuit} state=running");
    export(
        s,
        "logs",
        &logs(service("mdso"), vec![log_line(t_ns, &line)]),
    );
}

#[test]
fn correlations_api_lists_traces_bridges_and_logs_before_and_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Seam::start(dir.path(), &[]);
    let (beorn, mdso) = ([0xb1; 16], [0xd2; 16]);
    send_flow(&s, "c-api-1", beorn, mdso);
    // A value long enough for the segments' token filters to prune on (see the end).
    let long = "c-api-long-0123456789abcdef";
    send_mdso_log(&s, now_ns() - 1_000_000_000, long);
    let answer = eventually(Duration::from_secs(10), || {
        let v = lookup(&s, "c-api-1");
        (v["bridges"].as_array().map(Vec::len) == Some(1)).then_some(v)
    })
    .expect("the bridge is listed");
    let segments = answer["segments"].as_array().unwrap();
    let ids: Vec<&str> = segments
        .iter()
        .map(|x| x["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![common::codec::hex(&beorn), common::codec::hex(&mdso)],
        "ordered by start"
    );
    assert_eq!(segments[0]["services"], serde_json::json!(["beorn"]));
    assert_eq!(segments[1]["services"], serde_json::json!(["mdso"]));
    let b = &answer["bridges"][0];
    assert_eq!(b["upstream_trace_id"], common::codec::hex(&beorn));
    assert_eq!(b["downstream_trace_id"], common::codec::hex(&mdso));
    assert_eq!(b["confidence"], 1.0);
    assert_eq!(answer["log_lines"], 1);
    assert_eq!(lookup(&s, "c-unknown")["segments"], serde_json::json!([]));
    let (code, _) = s.get_json("/api/seam/correlations?key=circuit_id", None);
    assert_eq!(code, 400, "a missing value is refused");

    let out = std::process::Command::new(common::seam_bin())
        .args([
            "correlate",
            "--key",
            "circuit_id",
            "--value",
            "c-api-1",
            "--addr",
            &s.api,
        ])
        // The commands read the tenant from the environment; the data is in the default tenant.
        .env_remove("SEAM_TENANT")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("traces (2)")
            && text.contains("bridges (1)")
            && text.contains("confidence 1.0"),
        "{text}"
    );
    assert!(text.contains("log lines mentioning it: 1"), "{text}");

    // `--api` is the hidden alias of `--addr` that older scripts use.
    let out = std::process::Command::new(common::seam_bin())
        .args(["trace", &common::codec::hex(&mdso), "--api", &s.api])
        .env_remove("SEAM_TENANT")
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("stitched from 2 traces"), "{tree}");
    assert!(tree.contains("⇢ beorn_to_mdso_bridge"), "{tree}");
    assert!(
        tree.contains("\n    CircuitDetailsCollector [mdso]"),
        "the MDSO root hangs under the bridge:\n{tree}"
    );

    // After a graceful stop everything is in segments and the catalog.
    assert!(s.terminate());
    let s = Seam::start(dir.path(), &[]);
    assert_eq!(
        lookup(&s, "c-api-1"),
        answer,
        "the same answer from the catalog"
    );
    // Counting lines asks the token filters to skip row groups that cannot mention the value:
    // a line still counts when the value is only part of one of its words, and only then.
    let count = |v: &str| lookup(&s, v)["log_lines"].clone();
    assert_eq!(count(long), 1);
    assert_eq!(count(&long[2..long.len() - 1]), 1, "a piece of a word");
    assert_eq!(count(&format!("{long}0")), 0, "a longer word");
    assert_eq!(count("c-api-long-0123456789abcdeg"), 0);
}
