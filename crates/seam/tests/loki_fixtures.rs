//! Every captured Loki push body (winston-loki protobuf and JSON, python-logging-loki JSON) is
//! pushed raw with its captured headers, then read back through LogQL. The expectation comes from
//! decoding the capture here (snappy + `logproto.PushRequest`, or the JSON body), never from
//! Seam's answer: exact lines, times, stream labels and structured metadata.
//!
//! The captures live in `../shared/fixtures/captured` beside the repository when it is there, and
//! are copied into `tests/fixtures/loki/`; the copies must match, and are used when shared/ is
//! absent.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::loki::{
    answered_metadata, decode_push, get, merged, push_raw, query_range, start_accepting_old,
    streams_of, to_json, Pushed, Stream,
};
use common::Seam;
use serde_json::json;

/// `loki_*.bin` captures by name, with the directory each is read from.
fn captures() -> BTreeMap<String, PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = manifest.join("tests/fixtures/loki");
    let shared = manifest.join("../../../shared/fixtures/captured");
    let list = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("loki_") && n.ends_with(".bin"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut out = BTreeMap::new();
    for name in list(&repo) {
        out.insert(name, repo.clone());
    }
    for name in list(&shared) {
        match out.get(&name) {
            Some(dir) => {
                for ext in [".bin", ".txt"] {
                    let f = name.replace(".bin", ext);
                    assert_eq!(
                        std::fs::read(dir.join(&f)).ok(),
                        std::fs::read(shared.join(&f)).ok(),
                        "tests/fixtures/loki/{f} differs from shared/fixtures/captured/{f}: copy it again"
                    );
                }
            }
            None => {
                eprintln!(
                    "{name}: only in shared/fixtures/captured (not copied into the repo yet)"
                );
                out.insert(name, shared.clone());
            }
        }
    }
    assert!(out.len() >= 5, "the Loki captures are missing: {out:?}");
    out
}

/// The headers of a capture's `.txt` (request line, headers, blank line, `body_len=`), less the
/// ones that describe the connection rather than the request.
fn captured_headers(txt: &str) -> Vec<(String, String)> {
    txt.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| {
            !["host", "content-length", "connection", "transfer-encoding"]
                .contains(&k.to_ascii_lowercase().as_str())
        })
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A Seam that was sent every capture as it was sent; returns the captures' decoded entries.
fn seam_with_captures(dir: &Path) -> (Seam, Vec<(String, Pushed)>) {
    let s = start_accepting_old(dir);

    // Push each capture as it was sent, and decode what it holds.
    let mut all: Vec<(String, Pushed)> = Vec::new();
    for (name, from) in captures() {
        let body = std::fs::read(from.join(&name)).unwrap();
        let txt = std::fs::read_to_string(from.join(name.replace(".bin", ".txt"))).unwrap();
        let headers = captured_headers(&txt);
        let ct = header(&headers, "Content-Type").expect("a captured Content-Type");
        assert!(
            txt.contains(&format!("body_len={}", body.len())),
            "{name}: body length differs from the capture's"
        );
        let entries = decode_push(ct, &body);
        assert!(!entries.is_empty(), "{name} holds no entry");
        let (code, text) = push_raw(&s, &headers, body);
        assert_eq!(code, 204, "{name}: {text}");
        all.extend(entries.into_iter().map(|e| (name.clone(), e)));
    }
    assert!(
        all.iter().any(|(n, _)| n.contains("proto")) && all.iter().any(|(n, _)| n.contains("json")),
        "protobuf and JSON captures"
    );
    (s, all)
}

/// The hour around the captures (Loki refuses ranges past its max_query_length).
fn around(all: &[(String, Pushed)]) -> (i64, i64) {
    let hour = 3_600_000_000_000;
    let start = all.iter().map(|(_, e)| e.ts).min().unwrap() - hour;
    let end = all.iter().map(|(_, e)| e.ts).max().unwrap() + hour;
    (start, end)
}

/// `{name="value", ...}` selecting exactly these stream labels.
fn selector(labels: &BTreeMap<String, String>) -> String {
    format!(
        "{{{}}}",
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", json!(v)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[test]
fn every_captured_push_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (s, all) = seam_with_captures(dir.path());
    let (start, end) = around(&all);

    // Everything, flattened to (labels as Loki answers them, time, line).
    let mut want: Vec<(BTreeMap<String, String>, i64, String)> = all
        .iter()
        .map(|(_, e)| (merged(&e.labels, &e.metadata), e.ts, e.line.clone()))
        .collect();
    want.sort();
    let flatten = |streams: Vec<Stream>| {
        let mut v: Vec<(BTreeMap<String, String>, i64, String)> = streams
            .into_iter()
            .flat_map(|s| {
                let labels = s.labels;
                s.entries
                    .into_iter()
                    .map(move |(ts, line, _)| (labels.clone(), ts, line))
            })
            .collect();
        v.sort();
        v
    };
    let got = flatten(streams_of(&query_range(
        &s,
        "{job=~\".+\"}",
        start,
        end,
        "forward",
        &[],
    )));
    assert_eq!(got, want, "every captured entry, exactly");

    for (name, e) in &all {
        // Selected by its exact stream labels and its own nanosecond: that entry alone.
        let selector = selector(&e.labels);
        let at = query_range(&s, &selector, e.ts, e.ts + 1, "backward", &[]);
        assert_eq!(
            streams_of(&at),
            vec![Stream {
                labels: merged(&e.labels, &e.metadata),
                entries: vec![(e.ts, e.line.clone(), None)],
            }],
            "{name}: {selector} at {}",
            e.ts
        );
        // A line filter on the whole line (a backtick string: the lines hold quotes).
        let job = json!(e.labels["job"]);
        let filtered = flatten(streams_of(&query_range(
            &s,
            &format!("{{job={job}}} |= `{}`", e.line),
            start,
            end,
            "forward",
            &[],
        )));
        let want_filtered: Vec<_> = want
            .iter()
            .filter(|(l, _, line)| line == &e.line && l.get("job") == e.labels.get("job"))
            .cloned()
            .collect();
        assert_eq!(filtered, want_filtered, "{name}: line filter");
    }

    // The label API lists exactly the stream labels (structured metadata is not one).
    let mut names: Vec<String> = all
        .iter()
        .flat_map(|(_, e)| e.labels.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    let (start_s, end_s) = (start.to_string(), end.to_string());
    let (code, body) = get(
        &s,
        "/loki/api/v1/labels",
        &[("start", &start_s), ("end", &end_s)],
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, json!({"status": "success", "data": names}));
    let mut jobs: Vec<String> = all.iter().map(|(_, e)| e.labels["job"].clone()).collect();
    jobs.sort();
    jobs.dedup();
    let (code, body) = get(
        &s,
        "/loki/api/v1/label/job/values",
        &[("start", &start_s), ("end", &end_s)],
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, json!({"status": "success", "data": jobs}));
}

/// With `X-Loki-Response-Encoding-Flags: categorize-labels` (what Grafana sends), each stream keeps
/// its own labels and each entry carries its structured metadata in a third element.
#[test]
fn captured_pushes_with_categorized_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (s, all) = seam_with_captures(dir.path());
    for (name, e) in &all {
        let selector = selector(&e.labels);
        let cat = query_range(
            &s,
            &selector,
            e.ts,
            e.ts + 1,
            "backward",
            &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
        );
        let third = if e.metadata.is_empty() {
            json!({})
        } else {
            json!({ "structuredMetadata": to_json(&answered_metadata(&e.labels, &e.metadata)) })
        };
        assert_eq!(
            streams_of(&cat),
            vec![Stream {
                labels: e.labels.clone(),
                entries: vec![(e.ts, e.line.clone(), Some(third))],
            }],
            "{name}: categorize-labels: {cat}"
        );
        assert_eq!(
            cat["data"]["encodingFlags"],
            json!(["categorize-labels"]),
            "{name}: the flag is echoed: {cat}"
        );
    }
}
