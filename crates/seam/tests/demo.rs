//! The demo workload end to end: `seam demo mdso` with a fixed seed and the default noise profile
//! (concurrent flows on one circuit, reused circuits, keyless spans, clock skew, out-of-order and
//! late delivery, duplicate batches) over 2,000 flows, then `seam demo score --json`, which must
//! report precision ≥ 0.99 and recall ≥ 0.98: once with no configuration at all (after which the
//! learned patterns hold beorn -> mdso -> arda), once with the flow pattern configured.

mod common;

use std::process::{Command, Output};
use std::time::Instant;

use common::{seam_bin, Seam};
use serde_json::Value;

const PATTERN: &str = "correlation:\n  flow_patterns: [[beorn, mdso, arda]]\n";
const FLOWS: usize = 2000;

fn run(args: &[&str]) -> Output {
    let out = Command::new(seam_bin())
        .args(args)
        .output()
        .expect("run seam");
    assert!(
        out.status.success(),
        "seam {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn with_no_configuration_the_demo_meets_the_bar_and_the_pattern_is_learned() {
    let dir = tempfile::tempdir().unwrap();
    let seam = Seam::start(dir.path(), &[]);
    demo_meets_the_bar(&seam, dir.path(), "7");
    let (code, v) = seam.get_json("/api/seam/correlation/patterns", None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["learned"],
        serde_json::json!([["beorn", "mdso", "arda"]]),
        "{v}"
    );
    let pair = |up: &str, down: &str| {
        v["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["upstream"] == up && p["downstream"] == down)
            .cloned()
            .unwrap_or_else(|| panic!("no {up} -> {down} in {v}"))
    };
    for (up, down) in [("beorn", "mdso"), ("mdso", "arda")] {
        let p = pair(up, down);
        assert!(p["links"].as_u64().unwrap() >= FLOWS as u64, "{p}");
        assert_eq!(
            (p["reverse_links"].as_u64(), p["active"].as_bool()),
            (Some(0), Some(true)),
            "{p}"
        );
    }
    assert!(
        v["flow_patterns_yaml"]
            .as_str()
            .unwrap()
            .contains("    - [beorn, mdso, arda]\n"),
        "{v}"
    );
    let cli = run(&["correlate", "patterns", "--addr", &seam.api]);
    let out = String::from_utf8_lossy(&cli.stdout);
    assert!(out.contains("beorn -> mdso -> arda"), "{out}");
    assert!(
        out.contains("flow_patterns:\n    - [beorn, mdso, arda]\n"),
        "{out}"
    );
}

#[test]
fn with_the_flow_pattern_configured_the_demo_meets_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let seam = Seam::with_config(dir.path(), PATTERN, &[]);
    demo_meets_the_bar(&seam, dir.path(), "42");
    // The same pattern is learned too, and listed once among the patterns in effect.
    let (code, v) = seam.get_json("/api/seam/correlation/patterns", None);
    assert_eq!(code, 200, "{v}");
    let flow = serde_json::json!([["beorn", "mdso", "arda"]]);
    assert_eq!(
        (&v["configured"], &v["learned"], &v["patterns"]),
        (&flow, &flow, &flow),
        "{v}"
    );
}

fn demo_meets_the_bar(seam: &Seam, dir: &std::path::Path, seed: &str) {
    let t0 = Instant::now();
    let truth = dir.join("truth.jsonl");
    let truth_s = truth.to_str().unwrap();
    let flows = FLOWS.to_string();

    let gen = run(&[
        "demo",
        "mdso",
        "--otlp-http",
        &seam.otlp_http,
        "--flows",
        &flows,
        "--rate",
        "500",
        "--seed",
        seed,
        "--truth",
        truth_s,
    ]);
    let gen_out = String::from_utf8_lossy(&gen.stdout).to_string();
    eprintln!("{gen_out}");
    assert!(gen_out.contains(&format!("{FLOWS} flows")), "{gen_out}");
    assert!(gen_out.contains(" 0 failed"), "{gen_out}");

    // The truth file: a meta line, every trace, two links per flow instance.
    let text = std::fs::read_to_string(&truth).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "meta");
    let count = |k: &str| lines.iter().filter(|l| l["kind"] == k).count();
    let (links, traces) = (count("link"), count("trace"));
    assert!(links >= 2 * FLOWS, "{links} links for {FLOWS} flows");
    assert!(traces >= 3 * links / 2, "{traces} traces, {links} links");
    let tagged = |tag: &str| {
        lines
            .iter()
            .filter(|l| {
                l["noise"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t == tag))
            })
            .count()
    };
    for tag in ["concurrent", "reused", "late", "keyless"] {
        assert!(tagged(tag) > 0, "the default profile has no {tag:?} flows");
    }

    let score = run(&[
        "demo", "score", "--truth", truth_s, "--api", &seam.api, "--json",
    ]);
    let score_out = String::from_utf8_lossy(&score.stdout).to_string();
    eprintln!("{score_out}");
    let last: Value = serde_json::from_str(score_out.lines().last().unwrap()).unwrap();
    let precision = last["precision"].as_f64().unwrap();
    let recall = last["recall"].as_f64().unwrap();
    assert_eq!(last["flows"].as_u64().unwrap() as usize * 2, links);
    assert_eq!(
        last["true_positives"].as_u64().unwrap() + last["false_negatives"].as_u64().unwrap(),
        links as u64
    );
    assert_eq!(last["traces_not_found"], 0, "{score_out}");
    assert!(
        precision >= 0.99,
        "precision {precision} < 0.99:\n{score_out}"
    );
    assert!(recall >= 0.98, "recall {recall} < 0.98:\n{score_out}");
    eprintln!("demo test took {:.1} s", t0.elapsed().as_secs_f64());
}
