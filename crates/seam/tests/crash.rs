//! Durability under `kill -9`: concurrent writers send OTLP/HTTP span and log batches, the process
//! is killed at a random moment (and, at least once, in the middle of a segment flush), restarted
//! on the same data directory, and every write that was acknowledged with a 200 must be readable,
//! exactly once, after every restart — including the writes of all earlier cycles.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::codec::hex;
use common::{eventually, now_ns, otlp, read, write_config, Seam};
use prost::Message;
use rand::Rng;
use seam_model::attributes::string_kv;
use seam_model::otlp::logs::v1::LogRecord;
use seam_model::otlp::trace::v1::Span;

/// Flush often (by size and by age) and rotate WAL files often, so kills land in every phase.
const CONFIG: &str =
    "storage:\n  flush_size: 256KiB\n  flush_age: 200ms\n  wal_segment_size: 1MiB\n";
const WRITERS: usize = 4;
/// Requests per writer per cycle, at most (the kill usually ends a cycle's load first).
const MAX_REQUESTS_PER_WRITER: usize = 150;
const SPANS_PER_TRACE: usize = 40;
const LINES_PER_LOG_BATCH: usize = 10;
/// Kill/restart cycles at a random moment; more cycles (kills timed on a flush) follow until one
/// kill has landed during a flush, up to `MAX_CYCLES`.
const RANDOM_CYCLES: usize = 5;
const MAX_CYCLES: usize = 30;
const TEST_BUDGET: Duration = Duration::from_secs(150);

const FLUSHING: &str = "flushing head to segments";
const FLUSHED: &str = "flushed head to segments";

/// The spans of one trace: those acknowledged, and those sent without an answer (the server died
/// first; they may or may not have been stored).
#[derive(Default, Clone)]
struct TraceRec {
    acked: Vec<[u8; 8]>,
    unacked: Vec<[u8; 8]>,
}

/// Everything acknowledged so far, over all cycles.
#[derive(Default)]
struct Acked {
    /// Trace id -> its spans.
    traces: HashMap<[u8; 16], TraceRec>,
    /// Log stream (`service_instance_id`) -> its lines.
    logs: HashMap<String, HashSet<String>>,
}

fn trace_request(
    trace_id: [u8; 16],
    root: [u8; 8],
    span_ids: &[[u8; 8]],
    writer: usize,
) -> Vec<u8> {
    let t = now_ns();
    let spans = span_ids
        .iter()
        .enumerate()
        .map(|(i, id)| Span {
            parent_span_id: if *id == root {
                Vec::new()
            } else {
                root.to_vec()
            },
            kind: 2,
            attributes: vec![
                string_kv("crash.writer", &writer.to_string()),
                string_kv("http.route", "/api/x"),
            ],
            ..otlp::span(&trace_id, id, format!("op-{i}"), t, t + 1_000_000)
        })
        .collect();
    otlp::traces(otlp::service("crash-test"), spans).encode_to_vec()
}

fn log_request(stream: &str, lines: &[String]) -> Vec<u8> {
    let t = now_ns();
    let records = lines
        .iter()
        .map(|l| LogRecord {
            observed_time_unix_nano: t,
            severity_number: 9,
            severity_text: "INFO".into(),
            ..otlp::log_line(t, l)
        })
        .collect();
    otlp::logs(otlp::stream("crash-test", stream), records).encode_to_vec()
}

/// One writer: new traces (every fifth trace request instead adds spans to the writer's previous
/// trace, so traces span requests, heads and segments), and every third request a log batch,
/// until stopped or the server dies.
fn writer(
    otlp: String,
    cycle: usize,
    w: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
) -> usize {
    let client = common::client_with_timeout(Duration::from_secs(20));
    let mut rng = rand::rng();
    let stream = format!("c{cycle}-w{w}");
    let mut ok = 0;
    let mut prev: Option<([u8; 16], [u8; 8])> = None;
    for req in 0..MAX_REQUESTS_PER_WRITER {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let sent = if req % 3 == 2 {
            let lines = otlp::batch_lines(&stream, req, LINES_PER_LOG_BATCH);
            let r = otlp::send(&client, &otlp, "logs", log_request(&stream, &lines));
            match r {
                Ok(r) if r.status() == 200 => {
                    acked
                        .lock()
                        .unwrap()
                        .logs
                        .entry(stream.clone())
                        .or_default()
                        .extend(lines);
                    true
                }
                Ok(r) => panic!("log batch answered {}: {:?}", r.status(), r.text()),
                Err(_) => false,
            }
        } else {
            let span_ids: Vec<[u8; 8]> = (0..SPANS_PER_TRACE)
                .map(|_| rng.random::<u64>().max(1).to_be_bytes())
                .collect();
            let (trace_id, root) = match prev {
                Some(p) if req % 5 == 4 => p,
                _ => (rng.random(), span_ids[0]),
            };
            prev = Some((trace_id, root));
            acked
                .lock()
                .unwrap()
                .traces
                .entry(trace_id)
                .or_default()
                .unacked
                .extend(&span_ids);
            let body = trace_request(trace_id, root, &span_ids, w);
            let r = otlp::send(&client, &otlp, "traces", body);
            match r {
                Ok(r) if r.status() == 200 => {
                    let mut a = acked.lock().unwrap();
                    let t = a.traces.get_mut(&trace_id).unwrap();
                    t.unacked.retain(|x| !span_ids.contains(x));
                    t.acked.extend(span_ids);
                    true
                }
                Ok(r) => panic!("span batch answered {}: {:?}", r.status(), r.text()),
                Err(_) => false,
            }
        };
        if !sent {
            // Connection refused or reset: the server was killed. Nothing after this can be acked.
            break;
        }
        ok += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    ok
}

/// The log, complete: after a kill, waits until the stderr reader has seen EOF (it drops its
/// handle on the buffer when it exits).
fn final_log(s: &Seam) -> Vec<String> {
    eventually(Duration::from_secs(10), || {
        (Arc::strong_count(&s.log) == 1).then_some(())
    })
    .expect("stderr reader did not finish after kill");
    s.log.lock().unwrap().clone()
}

/// Did the process die between a flush's start and its end?
fn killed_during_flush(log: &[String]) -> bool {
    let last_start = log.iter().rposition(|l| l.contains(FLUSHING));
    let last_end = log.iter().rposition(|l| l.contains(FLUSHED));
    match (last_start, last_end) {
        (Some(s), Some(e)) => s > e,
        (Some(_), None) => true,
        _ => false,
    }
}

fn count_lines(log: &[String], needle: &str) -> usize {
    log.iter().filter(|l| l.contains(needle)).count()
}

/// Checks every acknowledged span and log line is readable exactly once.
fn verify(s: &Seam, acked: &Acked, since_ns: u64) {
    let ids: Vec<([u8; 16], TraceRec)> = acked
        .traces
        .iter()
        .filter(|(_, v)| !v.acked.is_empty())
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let api = s.api.clone();
    let chunks: Vec<Vec<([u8; 16], TraceRec)>> = ids
        .chunks(ids.len().div_ceil(4).max(1))
        .map(|c| c.to_vec())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let api = api.clone();
            std::thread::spawn(move || {
                let client = common::client();
                for (tid, spans) in chunk {
                    let t = read::trace(&client, &api, &hex(&tid))
                        .unwrap_or_else(|| panic!("acked trace {} is missing", hex(&tid)));
                    let got: Vec<Vec<u8>> = t.spans().map(|sp| sp.span_id.clone()).collect();
                    let unique: HashSet<&Vec<u8>> = got.iter().collect();
                    assert_eq!(
                        unique.len(),
                        got.len(),
                        "trace {} has duplicate spans ({} spans, {} distinct)",
                        hex(&tid),
                        got.len(),
                        unique.len()
                    );
                    let got: HashSet<Vec<u8>> = got.into_iter().collect();
                    let missing = spans
                        .acked
                        .iter()
                        .filter(|x| !got.contains(x.as_slice()))
                        .count();
                    assert_eq!(
                        missing,
                        0,
                        "trace {}: {missing} of {} acked spans missing",
                        hex(&tid),
                        spans.acked.len()
                    );
                    let unknown: HashSet<Vec<u8>> = spans
                        .acked
                        .iter()
                        .chain(&spans.unacked)
                        .map(|x| x.to_vec())
                        .collect();
                    assert!(
                        got.is_subset(&unknown),
                        "trace {} has spans that were never sent",
                        hex(&tid)
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("trace verifier failed");
    }
    for (stream, want) in &acked.logs {
        let got = read::stream_lines(s, stream, since_ns, "forward");
        assert!(got.len() < 5000, "stream {stream} hit the query limit");
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(
            unique.len(),
            got.len(),
            "stream {stream} has duplicate log lines"
        );
        let missing: Vec<&String> = want.iter().filter(|l| !unique.contains(l)).collect();
        assert!(
            missing.is_empty(),
            "stream {stream}: {} acked lines missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(3)]
        );
    }
}

fn assert_clean(log: &[String], what: &str) {
    let bad: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("panicked") || l.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: panic or error in the log:\n{}",
        bad.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_acknowledged_write_survives_kill_9() {
    let started = Instant::now();
    let since_ns = now_ns() - 60_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), CONFIG);
    let flags = ["--config", config.to_str().unwrap()];
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut rng = rand::rng();
    let mut during_flush = 0;
    let mut orphans_removed = 0;
    let mut cycles = 0;
    let mut s = Seam::start(&data, &flags);
    for cycle in 0..MAX_CYCLES {
        let targeted = cycle % 2 == 1 || cycle >= RANDOM_CYCLES;
        if cycle >= RANDOM_CYCLES && during_flush > 0 {
            break;
        }
        assert!(
            started.elapsed() < TEST_BUDGET,
            "out of time after {cycles} cycles without a kill during a flush"
        );
        cycles += 1;
        let stop = Arc::new(AtomicBool::new(false));
        let flushes_before = count_lines(&s.log.lock().unwrap(), FLUSHING);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (otlp, stop, acked) = (s.otlp_http.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || writer(otlp, cycle, w, stop, acked))
            })
            .collect();
        if targeted {
            // Kill the moment a new flush starts (after some load, so the head holds data).
            std::thread::sleep(Duration::from_millis(rng.random_range(100..400)));
            let seen = count_lines(&s.log.lock().unwrap(), FLUSHING).max(flushes_before);
            // Poll tightly: a small flush takes only milliseconds.
            let deadline = Instant::now() + Duration::from_secs(10);
            while count_lines(&s.log.lock().unwrap(), FLUSHING) <= seen {
                assert!(
                    Instant::now() < deadline,
                    "no flush started under load within 10s; log:\n{}",
                    s.log_text()
                );
                std::thread::sleep(Duration::from_micros(200));
            }
        } else {
            std::thread::sleep(Duration::from_millis(rng.random_range(150..1500)));
        }
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        let sent: usize = writers
            .into_iter()
            .map(|h| h.join().expect("writer panicked"))
            .sum();
        let log = final_log(&s);
        assert_clean(&log, &format!("cycle {cycle} before the kill"));
        let mid_flush = killed_during_flush(&log);
        if mid_flush {
            during_flush += 1;
        }
        eprintln!(
            "cycle {cycle}: {} kill, {sent} acked requests, flushes started {}, killed during a flush: {mid_flush}",
            if targeted { "flush-timed" } else { "random" },
            count_lines(&log, FLUSHING) - flushes_before,
        );
        assert!(
            sent > 0,
            "cycle {cycle}: no request was acknowledged before the kill"
        );

        s = Seam::start(&data, &flags);
        // Everything replay logs (orphan removals included) comes before `store ready`.
        s.wait_log("store ready");
        let ready = s.ready();
        assert_eq!(ready["components"]["store"]["flush_failures"], 0, "{ready}");
        let acked_now = acked.lock().unwrap();
        verify(&s, &acked_now, since_ns);
        let restart_log = s.log.lock().unwrap().clone();
        let replayed = ready["components"]["wal"]["replayed_records"]
            .as_u64()
            .unwrap();
        let orphans = count_lines(&restart_log, "left by an interrupted flush");
        eprintln!(
            "  restart: replayed {replayed} WAL records, removed {orphans} orphan segment files"
        );
        orphans_removed += orphans;
        assert_clean(
            &s.log.lock().unwrap(),
            &format!("restart after cycle {cycle}"),
        );
    }
    let a = acked.lock().unwrap();
    eprintln!(
        "{cycles} cycles, {during_flush} kills during a flush, {orphans_removed} orphan segment files removed, {} acked traces ({} spans), {} acked log lines, {:?}",
        a.traces.values().filter(|t| !t.acked.is_empty()).count(),
        a.traces.values().map(|t| t.acked.len()).sum::<usize>(),
        a.logs.values().map(|l| l.len()).sum::<usize>(),
        started.elapsed()
    );
    assert!(
        during_flush > 0,
        "no kill landed during a segment flush in {cycles} cycles"
    );
    assert!(
        s.terminate(),
        "final SIGTERM must exit 0; log:\n{}",
        s.log_text()
    );
}
