//! Real Loki shippers push to Seam and what they sent is read back exactly with LogQL over
//! `/loki/api/v1/query_range`: winston-loki under Node.js (its default protobuf, snappy-compressed
//! without a `Content-Encoding` header and batched; and `json: true`, whose entries carry
//! structured metadata) and python-logging-loki (JSON, one push per record, tags as labels).
//! Lines (unicode and a 64 KiB one included), timestamps, their order and the exact stream labels
//! are asserted, through selectors, line filters and label filters.

mod common;

use std::collections::BTreeMap;

use common::loki::{
    labels, lines_of, merged, query_range, read_lines, read_streams, run_node, sorted_streams,
    streams_of, Entry, LabelMap, Stream,
};
use common::{now_ns, run_python, Seam};
use serde_json::{json, Value};

const MS: i64 = 1_000_000;

/// Metadata of a log call, in the order it is given.
type Meta = Vec<(&'static str, Value)>;

/// The entries a winston test logs: (level, message, meta, per-entry labels, ms after t0).
fn winston_entries() -> Vec<(&'static str, String, Meta, Option<Value>, i64)> {
    vec![
        (
            "info",
            "checkout started".into(),
            vec![],
            Some(json!({"route": "/checkout"})),
            0,
        ),
        ("info", "héllo wörld ✓ 日本語 🚀".into(), vec![], None, 10),
        (
            "warn",
            "payment slow".into(),
            vec![("user", json!(42)), ("ms", json!(1500))],
            None,
            20,
        ),
        ("error", long_line(), vec![], None, 30),
        (
            "info",
            "checkout done".into(),
            vec![],
            Some(json!({"route": "/checkout"})),
            40,
        ),
    ]
}

/// A 64 KiB line.
fn long_line() -> String {
    format!("long {}", "0123456789abcdef".repeat(4096))
}

/// Runs `winston_push.js` in `mode` against `s` as tenant `winston`; returns t0 (ms).
fn winston_push(s: &Seam, mode: &str) -> i64 {
    let t0_ms = (now_ns() as i64) / MS - 60_000;
    let entries: Vec<Value> = winston_entries()
        .into_iter()
        .map(|(level, message, meta, labels, dt)| {
            let meta: Vec<Value> = meta.into_iter().map(|(k, v)| json!([k, v])).collect();
            json!({"level": level, "message": message, "meta": meta, "labels": labels,
                   "ts_ms": t0_ms + dt})
        })
        .collect();
    let spec = json!({
        "host": s.api, "mode": mode, "tenant": "winston",
        "labels": {"job": "winston-e2e", "env": "test"},
        "entries": entries,
    });
    let report = run_node("winston_push.js", &spec.to_string());
    assert_eq!(
        report["errors"],
        json!([]),
        "winston-loki could not push: {report}\nseam log:\n{}",
        s.log_text()
    );
    assert_eq!(report["sent"], 5);
    t0_ms
}

const TENANT: [(&str, &str); 1] = [("X-Scope-OrgID", "winston")];

/// `query_range` as the winston tenant, forward or backward, over the last two hours.
fn winston_read(s: &Seam, query: &str, direction: &str) -> Vec<Stream> {
    let now = now_ns() as i64;
    sorted_streams(&query_range(
        s,
        query,
        now - 7_200_000_000_000,
        now + 60_000_000_000,
        direction,
        &TENANT,
    ))
}

/// What winston-loki makes of the entries without a custom format: the line is the message, a
/// space and the JSON of the remaining metadata (level last), stream labels are `level`, the
/// transport's labels and the entry's `labels`; with `json: true` the metadata (values as strings)
/// is structured metadata, which Loki answers merged into the stream labels (`level`, also a stream
/// label, as `level_extracted`).
fn winston_expected(t0_ms: i64, json_mode: bool) -> Vec<Stream> {
    let mut by_labels: BTreeMap<LabelMap, Vec<Entry>> = BTreeMap::new();
    for (level, message, meta, entry_labels, dt) in winston_entries() {
        // winston puts the call's metadata first and `level` after it.
        let mut rest = meta;
        rest.push(("level", json!(level)));
        let rest_json: Vec<String> = rest
            .iter()
            .map(|(k, v)| format!("{}:{v}", json!(k)))
            .collect();
        let line = format!("{message} {{{}}}", rest_json.join(","));
        let mut l = labels(&[("job", "winston-e2e"), ("env", "test"), ("level", level)]);
        if let Some(extra) = entry_labels {
            for (k, v) in extra.as_object().unwrap() {
                l.insert(k.clone(), v.as_str().unwrap().to_string());
            }
        }
        if json_mode {
            let md = rest
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.as_str().map(str::to_string).unwrap_or(v.to_string()),
                    )
                })
                .collect();
            l = merged(&l, &md);
        }
        by_labels
            .entry(l)
            .or_default()
            .push(((t0_ms + dt) * MS, line, None));
    }
    by_labels
        .into_iter()
        .map(|(labels, entries)| Stream { labels, entries })
        .collect()
}

fn check_winston(s: &Seam, t0_ms: i64, json_mode: bool) {
    let want = winston_expected(t0_ms, json_mode);
    assert_eq!(want.len(), 4, "{want:?}");
    let got = winston_read(s, "{job=\"winston-e2e\"}", "forward");
    assert_eq!(
        got, want,
        "every stream with its exact labels, lines and times"
    );
    let all = lines_of(&want);

    // Backward is newest first within each stream.
    let back = winston_read(s, "{job=\"winston-e2e\"}", "backward");
    let reversed: Vec<Stream> = want
        .iter()
        .map(|s| Stream {
            labels: s.labels.clone(),
            entries: s.entries.iter().rev().cloned().collect(),
        })
        .collect();
    assert_eq!(back, reversed);

    // Selectors on the labels winston-loki set.
    let checkout = winston_read(s, "{job=\"winston-e2e\", route=\"/checkout\"}", "forward");
    assert_eq!(
        lines_of(&checkout),
        vec![all[0].clone(), all[4].clone()],
        "the entries with labels: {{route}}"
    );
    assert_eq!(
        lines_of(&winston_read(s, "{level=~\"warn|error\"}", "forward")),
        vec![all[2].clone(), all[3].clone()]
    );
    // Line filters, unicode included.
    assert_eq!(
        lines_of(&winston_read(
            s,
            "{job=\"winston-e2e\"} |= \"payment\"",
            "forward"
        )),
        vec![all[2].clone()]
    );
    assert_eq!(
        lines_of(&winston_read(
            s,
            "{job=\"winston-e2e\"} |= \"日本語 🚀\"",
            "forward"
        )),
        vec![all[1].clone()]
    );
    assert_eq!(
        lines_of(&winston_read(
            s,
            "{job=\"winston-e2e\"} |~ \"^long (0123456789abcdef)+ \"",
            "forward"
        )),
        vec![all[3].clone()],
        "the 64 KiB line, whole"
    );
    assert_eq!(
        lines_of(&winston_read(
            s,
            "{job=\"winston-e2e\"} != \"checkout\" != \"long\"",
            "forward"
        )),
        vec![all[1].clone(), all[2].clone()]
    );
    // Another tenant sees none of it.
    let now = now_ns() as i64;
    let other = query_range(
        s,
        "{job=\"winston-e2e\"}",
        now - 7_200_000_000_000,
        now,
        "forward",
        &[("X-Scope-OrgID", "someone-else")],
    );
    assert_eq!(streams_of(&other), vec![]);
}

#[test]
fn winston_loki_protobuf_snappy_batched() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let t0 = winston_push(&s, "proto");
    check_winston(&s, t0, false);
}

#[test]
fn winston_loki_json_with_structured_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let t0 = winston_push(&s, "json");
    check_winston(&s, t0, true);
}

/// winston-loki's `json: true` metadata is structured metadata: LogQL label filters find it,
/// stream selectors do not, and categorize-labels returns it apart from the stream labels.
#[test]
fn winston_loki_structured_metadata_in_logql() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let t0 = winston_push(&s, "json");
    // The metadata is structured metadata, not stream labels: a label filter finds it, a stream
    // selector does not, and categorize-labels returns it apart.
    let all = lines_of(&winston_expected(t0, true));
    assert_eq!(
        lines_of(&winston_read(
            &s,
            "{job=\"winston-e2e\"} | user=\"42\"",
            "forward"
        )),
        vec![all[2].clone()],
        "a label filter on structured metadata"
    );
    assert_eq!(
        winston_read(&s, "{user=\"42\"}", "forward"),
        vec![],
        "structured metadata is not a stream label"
    );
    let now = now_ns() as i64;
    let body = query_range(
        &s,
        "{job=\"winston-e2e\"} |= \"payment\"",
        now - 7_200_000_000_000,
        now + 60_000_000_000,
        "forward",
        &[
            ("X-Scope-OrgID", "winston"),
            ("X-Loki-Response-Encoding-Flags", "categorize-labels"),
        ],
    );
    let got = streams_of(&body);
    assert_eq!(
        got,
        vec![Stream {
            labels: labels(&[("job", "winston-e2e"), ("env", "test"), ("level", "warn")]),
            entries: vec![(
                all[2].0,
                all[2].1.clone(),
                Some(
                    json!({"structuredMetadata": {"user": "42", "ms": "1500", "level_extracted": "warn"}})
                )
            )],
        }],
        "categorize-labels: {body}"
    );
}

#[test]
fn python_logging_loki_json_with_tags() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let long = format!("big payload {}", "αβγ".repeat(3000));
    let spec = json!({
        "logger": "seam.e2e",
        "tags": {"job": "python-e2e", "env": "test"},
        "records": [
            {"level": "info", "message": "user logged in", "tags": {"route": "/login"}},
            {"level": "warning", "message": "disk at 91%"},
            {"level": "error", "message": "payment failed: card declined ✗",
             "tags": {"route": "/pay", "customer-tier": "gold"}},
            {"level": "info", "message": long, "tags": {"route": "/login"}},
        ],
    });
    let since = now_ns() as i64 - 1_000_000_000;
    let url = format!("{}/loki/api/v1/push", s.api);
    let report = run_python("loki_logging_push.py", &[&url, &spec.to_string()]);
    assert_eq!(
        report["errors"],
        json!([]),
        "python-logging-loki could not push: {report}\nseam log:\n{}",
        s.log_text()
    );
    let records = report["records"].as_array().unwrap();
    let until = now_ns() as i64 + 1_000_000_000;

    let base = [
        ("job", "python-e2e"),
        ("env", "test"),
        ("logger", "seam.e2e"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut l = labels(&base);
        l.extend(labels(extra));
        l
    };
    let got = read_streams(&s, "{job=\"python-e2e\"}", since, until);
    let want_labels = vec![
        with(&[
            ("severity", "error"),
            ("route", "/pay"),
            ("customer_tier", "gold"),
        ]),
        with(&[("severity", "info"), ("route", "/login")]),
        with(&[("severity", "warning")]),
    ];
    let mut want_sorted = want_labels.clone();
    want_sorted.sort();
    assert_eq!(
        got.iter().map(|s| s.labels.clone()).collect::<Vec<_>>(),
        want_sorted,
        "tags, severity and logger are the stream labels ('customer-tier' made a label name)"
    );
    // Exact lines, each stamped while its push was in flight, in the order they were logged.
    let lines = read_lines(&s, "{job=\"python-e2e\"}", since, until);
    assert_eq!(lines.len(), 4, "{lines:?}");
    for ((ts, line), rec) in lines.iter().zip(records) {
        assert_eq!(line, rec["message"].as_str().unwrap());
        let (lo, hi) = (
            rec["lo_ns"].as_i64().unwrap(),
            rec["hi_ns"].as_i64().unwrap(),
        );
        // python-logging-loki computes int(time.time() * 1e9): allow its float rounding.
        assert!(
            lo - 2_000 <= *ts && *ts <= hi + 2_000,
            "{line}: {ts} outside [{lo}, {hi}]"
        );
    }
    let login = &got[1];
    assert_eq!(
        login
            .entries
            .iter()
            .map(|e| e.1.as_str())
            .collect::<Vec<_>>(),
        vec!["user logged in", long.as_str()]
    );

    // Selectors and line filters.
    let only = |q: &str| -> Vec<String> {
        read_lines(&s, q, since, until)
            .into_iter()
            .map(|(_, l)| l)
            .collect()
    };
    assert_eq!(
        only("{job=\"python-e2e\", severity=\"error\"}"),
        vec!["payment failed: card declined ✗"]
    );
    assert_eq!(
        only("{logger=\"seam.e2e\"} |= \"disk\""),
        vec!["disk at 91%"]
    );
    assert_eq!(
        only("{job=\"python-e2e\"} |~ \"card.*✗$\""),
        vec!["payment failed: card declined ✗"]
    );
    assert_eq!(
        only("{job=\"python-e2e\", route=\"/login\"} != \"user\""),
        vec![long.clone()]
    );
    assert_eq!(
        only("{customer_tier=\"gold\"}"),
        vec!["payment failed: card declined ✗"]
    );
}
