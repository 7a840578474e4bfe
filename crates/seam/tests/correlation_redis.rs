//! Replicas: two `seam serve` processes sharing one real Redis stitch a flow whose segments were
//! sent to different processes; with Redis down, each process still matches locally and ingest
//! never fails.
//!
//! Needs `redis-server` on the PATH (`./scripts/test` installs it).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::codec::{b64, hex};
use common::flow::{self, metric, unique};
use common::otlp::{service, span, traces};
use common::{eventually, now_ns, Seam};
use seam_model::attributes::string_kv;
use seam_model::otlp::trace::v1::span::SpanKind;
use seam_model::otlp::trace::v1::Span;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);
const MS: u64 = 1_000_000;

/// A `redis-server` on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): it is needed for the replica tests; \
                     run ./scripts/test, which installs it (apt-get install redis-server)"
                )
            });
        let mut r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.pong() {
            if let Ok(Some(status)) = r.child.try_wait() {
                panic!("redis-server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn pong(&self) -> bool {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        c.write_all(b"PING\r\n").is_ok() && c.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &std::path::Path, redis_url: &str) -> Seam {
    std::fs::create_dir_all(dir).unwrap();
    let yaml =
        format!("correlation:\n  flow_patterns: [[beorn, mdso]]\n  redis_url: {redis_url}\n");
    Seam::with_config(dir, &yaml, &[])
}

fn keyed(mut s: Span, circuit: &str, kind: SpanKind) -> Span {
    s.attributes = vec![string_kv("circuit_id", circuit)];
    s.kind = kind as i32;
    s
}

/// Beorn's trace: a server root (0-300 ms) and the client call to MDSO (50-250 ms).
fn beorn_spans(trace: [u8; 16], circuit: &str, t0: u64) -> Vec<Span> {
    let root = keyed(
        span(
            &trace,
            &[0xb1; 8],
            "beorn.create_network_service".into(),
            t0,
            t0 + 300 * MS,
        ),
        circuit,
        SpanKind::Server,
    );
    let mut call = span(
        &trace,
        &[0xb2; 8],
        "POST /bpocore/market/api/v1/resources".into(),
        t0 + 50 * MS,
        t0 + 250 * MS,
    );
    call.parent_span_id = vec![0xb1; 8];
    call.kind = SpanKind::Client as i32;
    vec![root, call]
}

/// MDSO's trace: the scriptplan, started by Beorn's call (100-200 ms).
fn mdso_spans(trace: [u8; 16], circuit: &str, t0: u64) -> Vec<Span> {
    vec![keyed(
        span(
            &trace,
            &[0xd1; 8],
            "CircuitDetailsCollector".into(),
            t0 + 100 * MS,
            t0 + 200 * MS,
        ),
        circuit,
        SpanKind::Server,
    )]
}

fn post(s: &Seam, svc: &str, spans: Vec<Span>) {
    flow::send(s, &traces(service(svc), spans));
}

/// The spans of `/api/traces/{id}?stitch=false` (Tempo JSON), or none.
fn raw_spans(s: &Seam, id: &[u8; 16]) -> Vec<Value> {
    let (code, body) = s.get_json(&format!("/api/traces/{}?stitch=false", hex(id)), None);
    if code != 200 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for rs in body["batches"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
        }
    }
    out
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

/// The bridge span in `upstream`'s raw trace on `s` that points at `downstream`, once written.
fn bridge(s: &Seam, upstream: &[u8; 16], downstream: &[u8; 16]) -> Option<Value> {
    raw_spans(s, upstream).into_iter().find(|sp| {
        attr(sp, "correlation.downstream_trace_id")
            .and_then(|v| v["stringValue"].as_str())
            .is_some_and(|v| v == hex(downstream))
    })
}

/// Beorn's trace goes to A, MDSO's to B: B reads Beorn's summary from Redis when it publishes
/// MDSO's, decides the link and writes the bridge (in Beorn's trace id, under Beorn's call span)
/// into its own store: the process that sees both sides writes the bridge.
#[test]
fn two_processes_sharing_redis_stitch_a_split_flow() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let a = start(&dir.path().join("a"), &redis.url());
    let b = start(&dir.path().join("b"), &redis.url());
    let circuit = unique("c-redis");
    let (beorn, mdso) = ([0x5a; 16], [0x5b; 16]);
    let t0 = now_ns();

    post(&a, "beorn", beorn_spans(beorn, &circuit, t0));
    let published = eventually(WAIT, || {
        (metric(&a, "correlation_redis_published_total")? >= 1.0).then_some(())
    });
    assert!(
        published.is_some(),
        "A never published Beorn's segment to Redis; log:\n{}",
        a.log_text()
    );
    post(&b, "mdso", mdso_spans(mdso, &circuit, t0));

    let got = eventually(WAIT, || bridge(&b, &beorn, &mdso)).unwrap_or_else(|| {
        panic!(
            "no bridge to MDSO's trace on B; B's raw beorn trace: {:#?}\nA log:\n{}\nB log:\n{}",
            raw_spans(&b, &beorn),
            a.log_text(),
            b.log_text()
        )
    });
    assert_eq!(got["name"], "beorn_to_mdso_bridge", "{got:#}");
    assert_eq!(
        attr(&got, "correlation.confidence").and_then(|v| v["doubleValue"].as_f64()),
        Some(1.0),
        "{got:#}"
    );
    assert_eq!(
        got["parentSpanId"].as_str(),
        Some(b64(&[0xb2; 8]).as_str()),
        "the bridge hangs under Beorn's call span, known to B only from Redis: {got:#}"
    );
    let link = &got["links"][0];
    assert_eq!(link["traceId"].as_str(), Some(b64(&mdso).as_str()));
    assert_eq!(link["spanId"].as_str(), Some(b64(&[0xd1; 8]).as_str()));
    assert_eq!(metric(&b, "correlation_redis_errors_total"), Some(0.0));
    assert!(metric(&b, "correlation_redis_remote_segments_total").unwrap_or(0.0) >= 1.0);
    // A holds Beorn's spans; its raw trace has no remote spans mixed in.
    let on_a = raw_spans(&a, &beorn);
    assert_eq!(on_a.len(), 2, "{on_a:#?}");
}

/// Redis down: ingest answers 200 on both processes, a flow sent whole to one process is still
/// stitched there, the failure is counted and logged once.
#[test]
fn redis_down_degrades_to_local_matching() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let dir = tempfile::tempdir().unwrap();
    let a = start(&dir.path().join("a"), &url);
    let b = start(&dir.path().join("b"), &url);
    let circuit = unique("c-noredis");
    let (beorn, mdso) = ([0x6a; 16], [0x6b; 16]);
    let t0 = now_ns();
    post(&a, "beorn", beorn_spans(beorn, &circuit, t0));
    post(&a, "mdso", mdso_spans(mdso, &circuit, t0));
    let other = unique("c-noredis-b");
    for i in 0..5u8 {
        post(&b, "beorn", beorn_spans([0x70 + i; 16], &other, t0));
    }
    let got = eventually(WAIT, || bridge(&a, &beorn, &mdso)).unwrap_or_else(|| {
        panic!(
            "the local flow was not stitched without Redis; log:\n{}",
            a.log_text()
        )
    });
    assert_eq!(
        attr(&got, "correlation.confidence").and_then(|v| v["doubleValue"].as_f64()),
        Some(1.0)
    );
    for s in [&a, &b] {
        let errors = eventually(WAIT, || {
            metric(s, "correlation_redis_errors_total").filter(|n| *n > 0.0)
        });
        assert!(
            errors.is_some(),
            "correlation_redis_errors_total stays 0; log:\n{}",
            s.log_text()
        );
    }
    b.wait_log("correlation Redis unavailable");
    let warnings = b
        .log_text()
        .matches("correlation Redis unavailable")
        .count();
    assert_eq!(
        warnings,
        1,
        "one warning per outage, not per batch:\n{}",
        b.log_text()
    );
}
