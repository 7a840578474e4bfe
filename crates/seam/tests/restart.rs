//! Restarts: a graceful SIGTERM under load loses nothing acknowledged and leaves nothing to replay;
//! a torn or garbage WAL tail is cut at the last good record with one warning, and everything
//! before it survives.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{eventually, Seam};
use prost::Message;
use rand::Rng;
use seam_model::attributes::string_kv;
use seam_model::otlp::collector::logs::v1::ExportLogsServiceRequest;
use seam_model::otlp::collector::trace::v1::ExportTraceServiceRequest;
use seam_model::otlp::common::v1::{any_value, AnyValue};
use seam_model::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// No flush by size or age during the tests: what reaches segments got there at shutdown.
const NO_FLUSH: &str = "storage:\n  flush_size: 512MiB\n  flush_age: 1h\n";
const SPANS_PER_TRACE: usize = 20;
const LINES_PER_BATCH: usize = 10;
const WRITERS: usize = 4;
const MAX_REQUESTS_PER_WRITER: usize = 2000;

/// `tempopb.Trace`, what `/api/traces/{id}` answers with `Accept: application/protobuf`.
#[derive(Clone, PartialEq, prost::Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn config(dir: &Path) -> PathBuf {
    let p = dir.join("seam.yaml");
    std::fs::write(&p, NO_FLUSH).unwrap();
    p
}

fn trace_body(trace_id: [u8; 16]) -> Vec<u8> {
    let t = now_ns() as u64;
    let spans = (0..SPANS_PER_TRACE)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("op-{i}"),
            start_time_unix_nano: t,
            end_time_unix_nano: t + 1000,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_kv("service.name", "restart-test")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn log_body(stream: &str, lines: &[String]) -> Vec<u8> {
    let t = now_ns() as u64;
    let log_records = lines
        .iter()
        .map(|l| LogRecord {
            time_unix_nano: t,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(l.clone())),
            }),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    string_kv("service.name", "restart-test"),
                    string_kv("service.instance.id", stream),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn post(client: &reqwest::blocking::Client, url: String, body: Vec<u8>) -> Result<u16, String> {
    client
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .map(|r| r.status().as_u16())
        .map_err(|e| {
            let mut m = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                m = format!("{m}: {s}");
                src = s.source();
            }
            m
        })
}

/// Spans of a trace as the Tempo API returns them (0 when not found).
fn span_count(s: &Seam, trace_id: &[u8; 16]) -> usize {
    let r = common::client()
        .get(format!("{}/api/traces/{}", s.api, hex(trace_id)))
        .header("Accept", "application/protobuf")
        .send()
        .expect("GET trace");
    if r.status() == 404 {
        return 0;
    }
    assert_eq!(r.status(), 200);
    let t = TempoTrace::decode(r.bytes().unwrap()).unwrap();
    t.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// Lines of one log stream, as Loki's `query_range` returns them.
fn log_lines(s: &Seam, stream: &str, since_ns: i64) -> Vec<String> {
    let q = format!("{{service_instance_id=\"{stream}\"}}");
    let (start, end) = (
        since_ns.to_string(),
        (now_ns() + 60_000_000_000).to_string(),
    );
    let r = common::client()
        .get(format!("{}/loki/api/v1/query_range", s.api))
        .query(&[
            ("query", q.as_str()),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("limit", "5000"),
        ])
        .send()
        .expect("query_range");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    let mut out = Vec::new();
    for st in v["data"]["result"].as_array().unwrap() {
        for e in st["values"].as_array().unwrap() {
            out.push(e[1].as_str().unwrap().to_string());
        }
    }
    out
}

fn ready(s: &Seam) -> serde_json::Value {
    let (code, body) = s.get_json("/ready", None);
    assert_eq!(code, 200, "{body}");
    body
}

/// Acknowledged writes of one writer thread.
#[derive(Default)]
struct Acked {
    traces: Vec<[u8; 16]>,
    lines: HashMap<String, Vec<String>>,
    /// Non-200 statuses and transport errors seen once the server began shutting down.
    refused: Vec<String>,
}

#[test]
fn sigterm_under_load_keeps_every_ack_and_leaves_nothing_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let since = now_ns() - 60_000_000_000;
    let data = dir.path().join("data");
    let cfg = config(dir.path());
    let flags = ["--config", cfg.to_str().unwrap()];
    let mut s = Seam::start(&data, &flags);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (otlp, stop, acked) = (s.otlp_http.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let client = common::client();
                let mut rng = rand::rng();
                let stream = format!("w{w}");
                for req in 0..MAX_REQUESTS_PER_WRITER {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = if req % 4 == 3 {
                        let lines: Vec<String> = (0..LINES_PER_BATCH)
                            .map(|i| format!("{stream} r{req} l{i}"))
                            .collect();
                        let r = post(
                            &client,
                            format!("{otlp}/v1/logs"),
                            log_body(&stream, &lines),
                        );
                        if r == Ok(200) {
                            let mut a = acked.lock().unwrap();
                            a.lines.entry(stream.clone()).or_default().extend(lines);
                        }
                        r
                    } else {
                        let id: [u8; 16] = rng.random();
                        let r = post(&client, format!("{otlp}/v1/traces"), trace_body(id));
                        if r == Ok(200) {
                            acked.lock().unwrap().traces.push(id);
                        }
                        r
                    };
                    match r {
                        Ok(200) => {}
                        // The server is going away: 503 while the store closes, then refused
                        // connections. Nothing after this is acked.
                        other => {
                            acked.lock().unwrap().refused.push(format!("{other:?}"));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // Let the load build up, then signal while requests are in flight.
    eventually(Duration::from_secs(30), || {
        (acked.lock().unwrap().traces.len() >= 100).then_some(())
    })
    .expect("load did not get going");
    let before = ready(&s);
    assert_eq!(before["components"]["store"]["segments"], 0, "{before}");
    assert!(
        before["components"]["store"]["head_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        s.terminate(),
        "SIGTERM under load must exit 0; log:\n{}",
        s.log_text()
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer panicked");
    }
    let log = s.log_text();
    assert!(log.contains("shutdown complete"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let a = acked.lock().unwrap();
    for r in &a.refused {
        assert!(
            !r.starts_with("Ok(5") || r == "Ok(503)",
            "status during shutdown: {r}"
        );
    }
    eprintln!(
        "acked {} traces and {} log lines before exit; refused/failed after the signal: {:?}",
        a.traces.len(),
        a.lines.values().map(Vec::len).sum::<usize>(),
        a.refused
    );

    let s = Seam::start(&data, &flags);
    let r = ready(&s);
    assert_eq!(r["components"]["wal"]["replayed_records"], 0, "{r}");
    assert!(
        r["components"]["store"]["segments"].as_u64().unwrap() >= 2,
        "{r}"
    );
    for id in &a.traces {
        assert_eq!(span_count(&s, id), SPANS_PER_TRACE, "trace {}", hex(id));
    }
    for (stream, want) in &a.lines {
        let got = log_lines(&s, stream, since);
        let got: std::collections::HashSet<&String> = got.iter().collect();
        let missing = want.iter().filter(|l| !got.contains(l)).count();
        assert_eq!(missing, 0, "stream {stream}: {missing} acked lines missing");
    }
}

/// The WAL file the next record would follow: the highest-numbered `*.wal` in `<data>/wal`.
fn last_wal_file(data: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files.pop().expect("no WAL file")
}

/// Log lines at WARN level that mention a truncation.
fn truncation_warnings(s: &Seam) -> Vec<String> {
    s.log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                v["level"] == "WARN" && v["message"].as_str().is_some_and(|m| m.contains("truncat"))
            })
        })
        .cloned()
        .collect()
}

/// Writes `n` traces one after another (one WAL record each) and returns their ids.
fn write_traces(s: &Seam, n: usize) -> Vec<[u8; 16]> {
    let client = common::client();
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            let id: [u8; 16] = rng.random();
            assert_eq!(
                post(
                    &client,
                    format!("{}/v1/traces", s.otlp_http),
                    trace_body(id)
                ),
                Ok(200)
            );
            id
        })
        .collect()
}

enum Damage {
    /// Cut the last record short by a few bytes.
    Truncate(u64),
    /// Append bytes that are not a record.
    Garbage(usize),
}

fn damaged_tail(damage: Damage) {
    const N: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(dir.path());
    let flags = ["--config", cfg.to_str().unwrap()];
    let mut s = Seam::start(&data, &flags);
    let ids = write_traces(&s, N);
    s.kill9();

    let wal = last_wal_file(&data);
    let len = std::fs::metadata(&wal).unwrap().len();
    let survivors = match damage {
        Damage::Truncate(by) => {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&wal)
                .unwrap()
                .set_len(len - by)
                .unwrap();
            N - 1
        }
        Damage::Garbage(n) => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
            let junk: Vec<u8> = (0..n).map(|i| (i * 7 + 13) as u8).collect();
            f.write_all(&junk).unwrap();
            N
        }
    };

    let mut s = Seam::start(&data, &flags);
    let warnings = truncation_warnings(&s);
    assert_eq!(
        warnings.len(),
        1,
        "expected one truncation warning; log:\n{}",
        s.log_text()
    );
    assert!(
        warnings[0].contains(&wal.file_name().unwrap().to_string_lossy().to_string()),
        "{}",
        warnings[0]
    );
    let r = ready(&s);
    assert_eq!(
        r["components"]["wal"]["replayed_records"], survivors as u64,
        "{r}"
    );
    for id in &ids[..survivors] {
        assert_eq!(span_count(&s, id), SPANS_PER_TRACE, "trace {}", hex(id));
    }
    if survivors < N {
        // The torn record itself was never complete on disk: it must not half-appear.
        assert_eq!(span_count(&s, &ids[N - 1]), 0);
    }
    // The cut file is clean now: more writes, another crash, and a restart replay everything
    // without a new warning.
    let more = write_traces(&s, 5);
    s.kill9();
    let s = Seam::start(&data, &flags);
    assert_eq!(truncation_warnings(&s).len(), 0, "log:\n{}", s.log_text());
    assert_eq!(
        ready(&s)["components"]["wal"]["replayed_records"],
        (survivors + 5) as u64
    );
    for id in ids[..survivors].iter().chain(&more) {
        assert_eq!(span_count(&s, id), SPANS_PER_TRACE, "trace {}", hex(id));
    }
    assert!(!s.log_text().contains("panicked"));
}

#[test]
fn torn_wal_tail_is_truncated_with_one_warning() {
    damaged_tail(Damage::Truncate(7));
}

#[test]
fn garbage_after_the_last_wal_record_is_truncated_with_one_warning() {
    damaged_tail(Damage::Garbage(100));
}
