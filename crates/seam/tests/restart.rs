//! Restarts: a graceful SIGTERM under load loses nothing acknowledged and leaves nothing to replay;
//! a torn or garbage WAL tail is cut at the last good record with one warning, and everything
//! before it survives.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::codec::hex;
use common::otlp::post_status as post;
use common::read::{span_count, stream_lines};
use common::{eventually, now_ns, otlp, write_config, Seam};
use prost::Message;
use rand::Rng;

/// No flush by size or age during the tests: what reaches segments got there at shutdown.
const NO_FLUSH: &str = "storage:\n  flush_size: 512MiB\n  flush_age: 1h\n";
const SPANS_PER_TRACE: usize = 20;
const LINES_PER_BATCH: usize = 10;
const WRITERS: usize = 4;
const MAX_REQUESTS_PER_WRITER: usize = 2000;

fn trace_body(trace_id: [u8; 16]) -> Vec<u8> {
    let spans = otlp::numbered_spans(&trace_id, SPANS_PER_TRACE, now_ns(), |i| format!("op-{i}"));
    otlp::traces(otlp::service("restart-test"), spans).encode_to_vec()
}

fn log_body(stream: &str, lines: &[String]) -> Vec<u8> {
    let t = now_ns();
    let records = lines.iter().map(|l| otlp::log_line(t, l)).collect();
    otlp::logs(otlp::stream("restart-test", stream), records).encode_to_vec()
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
    let cfg = write_config(dir.path(), NO_FLUSH);
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
                        let lines = otlp::batch_lines(&stream, req, LINES_PER_BATCH);
                        let r = post(&client, &otlp, "logs", log_body(&stream, &lines));
                        if r == Ok(200) {
                            let mut a = acked.lock().unwrap();
                            a.lines.entry(stream.clone()).or_default().extend(lines);
                        }
                        r
                    } else {
                        let id: [u8; 16] = rng.random();
                        let r = post(&client, &otlp, "traces", trace_body(id));
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
    let before = s.ready();
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
    let r = s.ready();
    assert_eq!(r["components"]["wal"]["replayed_records"], 0, "{r}");
    assert!(
        r["components"]["store"]["segments"].as_u64().unwrap() >= 2,
        "{r}"
    );
    for id in &a.traces {
        assert_eq!(span_count(&s, id), SPANS_PER_TRACE, "trace {}", hex(id));
    }
    for (stream, want) in &a.lines {
        // Backward is Loki's default direction.
        let got = stream_lines(&s, stream, since, "backward");
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
                post(&client, &s.otlp_http, "traces", trace_body(id)),
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
    let cfg = write_config(dir.path(), NO_FLUSH);
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
    // Replay logs its warnings before `store ready`.
    s.wait_log("store ready");
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
    let r = s.ready();
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
    s.wait_log("store ready");
    assert_eq!(truncation_warnings(&s).len(), 0, "log:\n{}", s.log_text());
    assert_eq!(
        s.ready()["components"]["wal"]["replayed_records"],
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
