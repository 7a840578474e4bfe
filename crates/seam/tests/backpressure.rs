//! Backpressure: many concurrent senders of large batches overload a Seam with a small memory
//! budget. It must refuse with 429 + Retry-After (never a 5xx), keep its peak RSS near the budget,
//! and keep every write it acknowledged.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::codec::hex;
use common::read::span_count;
use common::{now_ns, otlp, Seam};
use prost::Message;
use rand::Rng;
use seam_model::attributes::string_kv;
use seam_model::otlp::trace::v1::Span;

const BUDGET_MIB: u64 = 32;
/// Flush at a quarter of the budget or every second, so flushes keep up once senders back off.
const CONFIG: &str = "storage:\n  flush_size: 8MiB\n  flush_age: 1s\n";
const SENDERS: usize = 16;
/// Spans per request, each with a `PAYLOAD`-byte attribute: about 2 MB per body.
const SPANS_PER_REQUEST: usize = 500;
const PAYLOAD: usize = 4000;
const LOAD_TIME: Duration = Duration::from_secs(8);
const MAX_REQUESTS_PER_SENDER: usize = 200;

/// What the process may use beyond the memory budget: the binary and its runtime (21 MiB peak RSS
/// idle), copies the budget does not account (the encoded WAL payload next to the Arrow batch of
/// each in-flight append, the Parquet writer's buffers during a flush, HTTP connection buffers),
/// and allocator fragmentation (glibc keeps freed 2 MB blocks in per-thread arenas).
/// Measured with this load (debug build, 2 cores): peak RSS 131-177 MiB with the 32 MiB budget
/// (106-111 MiB with `MALLOC_MMAP_THRESHOLD_=131072`); with a 4 GiB budget, i.e. not enforced,
/// the same load peaks at ~1.8 GiB. So the bound below holds with margin when the budget is
/// enforced and fails by far when it is not.
const OVERHEAD_MIB: u64 = 224;

#[derive(Default, Debug)]
struct Outcome {
    ok: Vec<[u8; 16]>,
    too_many: usize,
    too_many_without_retry_after: usize,
    other: Vec<String>,
    transport_errors: Vec<String>,
}

fn body(trace_id: [u8; 16], rng: &mut impl Rng) -> Vec<u8> {
    let filler: String = (0..PAYLOAD)
        .map(|_| rng.random_range(b'a'..=b'z') as char)
        .collect();
    let spans = otlp::numbered_spans(&trace_id, SPANS_PER_REQUEST, now_ns(), |i| {
        format!("op-{}", i % 7)
    })
    .into_iter()
    .map(|sp| Span {
        attributes: vec![string_kv("payload", &filler)],
        ..sp
    })
    .collect();
    otlp::traces(otlp::service("backpressure"), spans).encode_to_vec()
}

fn sender(otlp: String, stop: Arc<AtomicBool>, out: Arc<Mutex<Outcome>>) {
    let client = common::client();
    let mut rng = rand::rng();
    for _ in 0..MAX_REQUESTS_PER_SENDER {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let trace_id: [u8; 16] = rng.random();
        let b = body(trace_id, &mut rng);
        let r = otlp::send(&client, &otlp, "traces", b);
        let mut o = out.lock().unwrap();
        match r {
            Ok(r) if r.status() == 200 => o.ok.push(trace_id),
            Ok(r) if r.status() == 429 => {
                o.too_many += 1;
                let retry = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if retry.is_none_or(|s| s < 1) {
                    o.too_many_without_retry_after += 1;
                }
                drop(o);
                // Back off briefly (less than Retry-After, to keep the pressure on).
                std::thread::sleep(Duration::from_millis(rng.random_range(20..100)));
            }
            Ok(r) => {
                let s = r.status();
                o.other
                    .push(format!("{s}: {}", r.text().unwrap_or_default()));
            }
            Err(e) => o.transport_errors.push(format!("{e:?}")),
        }
    }
}

/// Overloads `s` for `LOAD_TIME` and returns what the senders saw.
fn overload(s: &Seam) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcome::default()));
    let handles: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (otlp, stop, out) = (s.otlp_http.clone(), stop.clone(), out.clone());
            std::thread::spawn(move || sender(otlp, stop, out))
        })
        .collect();
    std::thread::sleep(LOAD_TIME);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("sender panicked");
    }
    Arc::try_unwrap(out).unwrap().into_inner().unwrap()
}

#[test]
fn overload_is_refused_with_429_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Seam::with_config(
        dir.path(),
        CONFIG,
        &["--max-memory", &format!("{BUDGET_MIB}MiB")],
    );
    let (_, ready) = s.get_json("/ready", None);
    assert_eq!(
        ready["components"]["memory"]["limit_bytes"],
        BUDGET_MIB << 20
    );
    let started = Instant::now();
    let o = overload(&s);
    let peak = s.peak_rss();
    eprintln!(
        "{:?}: {} acked, {} refused with 429, {} without an HTTP answer, peak RSS {} MiB (budget {BUDGET_MIB} MiB + overhead {OVERHEAD_MIB} MiB)",
        started.elapsed(),
        o.ok.len(),
        o.too_many,
        o.transport_errors.len(),
        peak >> 20
    );
    // Known server issue: a 429 sent before the body is read (admission on Content-Length)
    // closes the connection with the body unread, so about 1 in 1000 clients sees a broken pipe
    // or an incomplete message instead of the 429. Tolerated (rarely) until the server drains or
    // lingers; such requests are not acked, so no data is at stake. Tighten to zero once fixed.
    let total = o.ok.len() + o.too_many + o.other.len() + o.transport_errors.len();
    assert!(
        o.transport_errors.len() * 100 <= total,
        "{} of {total} requests failed without an HTTP answer, e.g. {}",
        o.transport_errors.len(),
        o.transport_errors[0]
    );
    assert!(o.other.is_empty(), "unexpected statuses: {:?}", o.other);
    assert!(o.too_many > 0, "the overload was never refused with 429");
    assert_eq!(
        o.too_many_without_retry_after, 0,
        "429 answers without a Retry-After of at least 1s"
    );
    assert!(!o.ok.is_empty(), "nothing was accepted under load");
    assert!(
        peak <= (BUDGET_MIB + OVERHEAD_MIB) << 20,
        "peak RSS {} MiB exceeds the budget {BUDGET_MIB} MiB + overhead {OVERHEAD_MIB} MiB",
        peak >> 20
    );
    for id in &o.ok {
        // 0 when the acked trace is missing.
        assert_eq!(span_count(&s, id), SPANS_PER_REQUEST, "trace {}", hex(id));
    }
    let log = s.log_text();
    assert!(!log.contains("panicked"), "panic in the log:\n{log}");
    assert!(s.terminate(), "SIGTERM must exit 0; log:\n{log}");
}
