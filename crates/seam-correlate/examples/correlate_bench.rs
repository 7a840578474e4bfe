//! In-process throughput of the correlator on one core: Beorn -> MDSO -> Arda flows, one batch
//! per segment, with about `--circuits` circuits active (flows spaced so that many are inside the
//! state's retention of two windows). The spans are typed as instrumented services send them
//! (SERVER roots, CLIENT calls naming their peer and URL, Arda's `http.route`), and by default
//! the engine has no configuration, so direction comes from the call evidence; `--pattern 1`
//! configures the flow pattern instead.
//!
//! `cargo run --release -p seam-correlate --example correlate_bench -- --circuits 10000 --flows 300000`
//! prints one JSON line: segments/s, links/s, and p50/p99 time per observe call; `--batch N`
//! puts N segments in each call, as an exporter's request would. `match_p50_us`/`match_p99_us`
//! are the same times over only the calls that decided at least one link (the in-process match
//! latency: from a segment being handed to the correlator to its link being decided).

use seam_correlate::testing::{span_ids, spans_with_service, MS};
use seam_correlate::{CorrelationConfig, Correlator};
use seam_model::otlp::trace::v1::ResourceSpans;
use std::time::Instant;

/// The server's allocator, so the numbers are the server's.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn trace_id(flow: u64, part: u8) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&flow.to_be_bytes());
    t[8] = part;
    t[15] = 1;
    t
}

fn segment(
    svc: &str,
    flow: u64,
    part: u8,
    start_ms: i64,
    dur_ms: i64,
    circuit: &str,
) -> ResourceSpans {
    let t = trace_id(flow, part);
    let root = [part, 1, 0, 0, 0, 0, 0, 1];
    let child = [part, 2, 0, 0, 0, 0, 0, 1];
    let mut root_span = span_ids(
        t,
        root,
        None,
        "root",
        start_ms,
        start_ms + dur_ms,
        &[
            ("circuit_id", circuit),
            ("http.route", "/api/v3/topologies/{circuit_id}"),
        ],
    );
    root_span.kind = 2;
    // Each service calls the next one: the call names its peer and URL.
    let next = match svc {
        "beorn" => "mdso",
        "mdso" => "arda",
        _ => "db",
    };
    let url = format!("http://{next}:8000/api/v3/topologies/{circuit}");
    let mut call = span_ids(
        t,
        child,
        Some(root),
        "call",
        start_ms + 5,
        start_ms + dur_ms - 5,
        &[("server.address", next), ("url.full", &url)],
    );
    call.kind = 3;
    spans_with_service(svc, vec![root_span, call])
}

fn main() {
    let circuits = arg("--circuits", 10_000);
    let flows = arg("--flows", 200_000);
    let pattern = arg("--pattern", 0) == 1;
    let config = CorrelationConfig {
        flow_patterns: if pattern {
            vec![vec!["beorn".into(), "mdso".into(), "arda".into()]]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let window_ms = config.window.as_millis() as i64;
    // Spacing so that `circuits` flows fall inside the two-window retention.
    let spacing_us = (2 * window_ms * 1000 / circuits.max(1) as i64).max(1);
    let t0 = 1_700_000_000_000i64;
    let batches: Vec<(i64, ResourceSpans)> = (0..flows)
        .flat_map(|f| {
            let start = t0 + f as i64 * spacing_us / 1000;
            let c = format!("circuit-{f:08x}");
            [
                (start + 600, segment("beorn", f, 1, start, 500, &c)),
                (start + 600, segment("mdso", f, 2, start + 100, 300, &c)),
                (start + 600, segment("arda", f, 3, start + 200, 50, &c)),
            ]
        })
        .collect();
    // Exporters send many spans per request: `--batch` segments share one observe call.
    let batch = arg("--batch", 1).max(1) as usize;
    let segments = batches.len();
    let mut groups: Vec<(i64, Vec<ResourceSpans>)> = Vec::new();
    for (arrival_ms, rs) in batches {
        match groups.last_mut() {
            Some(g) if g.1.len() < batch => {
                g.0 = arrival_ms * MS;
                g.1.push(rs);
            }
            _ => groups.push((arrival_ms * MS, vec![rs])),
        }
    }
    let mut c = Correlator::new(config);
    let mut lat = Vec::with_capacity(groups.len());
    let mut match_lat = Vec::with_capacity(groups.len());
    let mut links = 0usize;
    let mut immediate = 0usize;
    let mut peak = 0usize;
    let mut busy = std::time::Duration::ZERO;
    for (i, (arrival, rs)) in groups.iter().enumerate() {
        let t = Instant::now();
        let got = c.observe_spans("bench", rs, *arrival);
        let mut n = got.len();
        immediate += got.iter().filter(|l| l.decided_ns == l.arrival_ns).count();
        if i % (3000 / batch).max(1) == 0 {
            n += c.tick(*arrival).len();
        }
        let took = t.elapsed();
        busy += took;
        links += n;
        lat.push(took.as_nanos() as u64);
        if n > 0 {
            match_lat.push(took.as_nanos() as u64);
        }
        peak = peak.max(c.active_keys());
    }
    let secs = busy.as_secs_f64();
    lat.sort_unstable();
    match_lat.sort_unstable();
    let pct = |v: &[u64], p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1e3
    };
    println!(
        "{{\"config\":\"{}\",\"circuits\":{circuits},\"flows\":{flows},\"batch\":{batch},\"peak_active_keys\":{peak},\"segments\":{segments},\"busy_s\":{secs:.3},\"segments_per_s\":{:.0},\"links_per_s\":{:.0},\"links\":{links},\"p50_us\":{:.2},\"p99_us\":{:.2},\"match_p50_us\":{:.2},\"match_p99_us\":{:.2},\"decided_at_arrival\":{:.3}}}",
        if pattern { "pattern" } else { "none" },
        segments as f64 / secs,
        links as f64 / secs,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        pct(&match_lat, 0.50),
        pct(&match_lat, 0.99),
        immediate as f64 / links.max(1) as f64,
    );
}
