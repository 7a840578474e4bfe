//! On SIGTERM Seam flushes its head into Parquet segments that any Parquet reader opens
//! (`segments/<tenant>/<signal>/<id>.parquet`, zstd, spans sorted by trace id), and after a
//! restart on the same directory the data is still served from them.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::codec::hex;
use common::read::loki_streams;
use common::{now_ns, otlp, python, Seam};
use seam_model::otlp::logs::v1::LogRecord;
use seam_model::otlp::trace::v1::Span;
use serde_json::{json, Value};

/// Trace ids sent out of order (first byte cc, 11, 77), two spans each.
const TRACES: [u8; 3] = [0xcc, 0x11, 0x77];
const LINES: [&str; 3] = ["segment line one", "segment line two", "segment line three"];

/// Reads every segment of the default tenant's traces and logs with pyarrow.
const READER: &str = r#"
import glob, json, os, sys
import pyarrow.parquet as pq

out = {}
for signal, cols in (("traces", ["trace_id", "span_id", "name", "service_name", "start_time_unix_nano"]),
                     ("logs", ["line", "timestamp_ns", "labels", "trace_id"])):
    files = []
    for path in sorted(glob.glob(os.path.join(sys.argv[1], "segments", "default", signal, "*.parquet"))):
        pf = pq.ParquetFile(path)
        md = pf.metadata
        table = pf.read()
        entry = {
            "rows": md.num_rows,
            "compression": sorted({md.row_group(g).column(c).compression
                                   for g in range(md.num_row_groups) for c in range(md.num_columns)}),
            "columns": table.column_names,
        }
        for c in cols:
            vals = table.column(c).to_pylist()
            entry[c] = [v.hex() if isinstance(v, bytes) else v for v in vals]
        files.append(entry)
    out[signal] = files
print(json.dumps(out))
"#;

fn trace_id(first: u8) -> Vec<u8> {
    let mut id = vec![first; 16];
    id[15] = 0x01;
    id
}

/// Sends the spans and log lines; returns the time they were written at.
fn send(s: &Seam) -> u64 {
    let at = now_ns();
    let spans = TRACES
        .iter()
        .flat_map(|&t| {
            (1..=2u8).map(move |n| Span {
                parent_span_id: if n == 2 {
                    vec![t, 1, 0, 0, 0, 0, 0, 1]
                } else {
                    vec![]
                },
                ..otlp::span(
                    &trace_id(t),
                    &[t, n, 0, 0, 0, 0, 0, 1],
                    format!("span-{t:02x}-{n}"),
                    at + n as u64,
                    at + 1000,
                )
            })
        })
        .collect();
    let traces = otlp::traces(otlp::service("parquet-test"), spans);
    let records = LINES
        .iter()
        .enumerate()
        .map(|(i, line)| LogRecord {
            trace_id: if i == 0 { trace_id(TRACES[0]) } else { vec![] },
            ..otlp::log_line(at + i as u64, line)
        })
        .collect();
    let logs = otlp::logs(otlp::service("parquet-test"), records);
    otlp::export(s, "traces", &traces);
    otlp::export(s, "logs", &logs);
    at
}

/// Every span and line is readable through the APIs.
fn check_apis(s: &Seam, at: u64) {
    for t in TRACES {
        let (code, body) = s.get_json(&format!("/api/traces/{}", hex(&trace_id(t))), None);
        assert_eq!(code, 200, "{body}\n{}", s.log_text());
        let names: BTreeSet<&str> = body["batches"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [format!("span-{t:02x}-1"), format!("span-{t:02x}-2")]
                .iter()
                .map(String::as_str)
                .collect()
        );
    }
    let q = "%7Bservice_name%3D%22parquet-test%22%7D";
    let path = format!(
        "/loki/api/v1/query_range?query={q}&start={}&end={}",
        at - 1_000_000_000,
        at + 1_000_000_000
    );
    let (code, body) = s.get_json(&format!("{path}&direction=forward"), None);
    assert_eq!(code, 200, "{body}");
    let mut got: Vec<(i64, String)> = loki_streams(&body)
        .into_iter()
        .flat_map(|(_, values)| values)
        .collect();
    got.sort();
    let want: Vec<(i64, String)> = LINES
        .iter()
        .enumerate()
        .map(|(i, l)| ((at + i as u64) as i64, l.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn sigterm_writes_zstd_parquet_readable_by_pyarrow_and_by_seam_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Seam::start(dir.path(), &[]);
    let at = send(&s);
    check_apis(&s, at);
    assert!(s.terminate(), "SIGTERM must exit 0; log:\n{}", s.log_text());

    let out = Command::new(python())
        .arg("-c")
        .arg(READER)
        .arg(dir.path())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyarrow reader failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from the reader");

    // Traces: one segment, every span, zstd, sorted by trace id.
    let files = v["traces"].as_array().unwrap();
    assert_eq!(
        files.len(),
        1,
        "one trace segment after the shutdown flush: {v}"
    );
    let f = &files[0];
    assert_eq!(f["rows"], 6);
    assert_eq!(
        f["compression"],
        json!(["ZSTD"]),
        "every column chunk is zstd"
    );
    let cols: Vec<&str> = f["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(&cols[..2], ["trace_id", "span_id"]);
    for c in ["name", "service_name", "start_time_unix_nano"] {
        assert!(cols.contains(&c), "{c} missing from {cols:?}");
    }
    let mut ids = TRACES.map(|t| hex(&trace_id(t))).to_vec();
    ids.sort();
    let want_ids: Vec<String> = ids.iter().flat_map(|id| [id.clone(), id.clone()]).collect();
    assert_eq!(f["trace_id"], json!(want_ids), "spans sorted by trace id");
    let want_names: Vec<String> = ids
        .iter()
        .flat_map(|id| {
            [
                format!("span-{}-1", &id[..2]),
                format!("span-{}-2", &id[..2]),
            ]
        })
        .collect();
    assert_eq!(f["name"], json!(want_names), "then by start time");
    assert_eq!(f["service_name"], json!(vec!["parquet-test"; 6]));
    assert_eq!(f["span_id"][0], hex(&[0x11, 1, 0, 0, 0, 0, 0, 1]));

    // Logs: one segment with the three lines, in time order within their stream.
    let files = v["logs"].as_array().unwrap();
    assert_eq!(files.len(), 1, "one log segment: {v}");
    let f = &files[0];
    assert_eq!(f["rows"], 3);
    assert_eq!(f["compression"], json!(["ZSTD"]));
    assert_eq!(f["line"], json!(LINES));
    let times: Vec<u64> = (0..3).map(|i| at + i).collect();
    assert_eq!(f["timestamp_ns"], json!(times));
    assert_eq!(f["trace_id"], json!([hex(&trace_id(TRACES[0])), "", ""]));
    assert!(
        f["labels"][0].as_str().unwrap().contains("parquet-test"),
        "{}",
        f["labels"][0]
    );

    // Restart on the same directory: nothing left to replay, everything served from segments.
    let s = Seam::start(dir.path(), &[]);
    check_apis(&s, at);
    let ready: Value = serde_json::from_str(&s.wait_log("store ready")).unwrap();
    assert_eq!(
        ready["replayed_records"], 0,
        "the shutdown flush left the WAL empty: {ready}"
    );
}
