//! Kernels of the log read path: building a row group's token filter, the scan kernel over one
//! decoded row group, and whole scans through `Store::visit_logs` (one worker thread per core).
//! Run with `cargo bench -p seam-store --bench logs`; throughput is per call, so bytes/s of the
//! kernels is per core.

use std::hint::black_box;

use arrow::array::StringArray;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memchr::memmem::Finder;
use seam_model::{Batch, Label, LogBatch, LogEntry, LogStream, Signal, Tenant};
use seam_store::line_scan::{matching_rows, LineTest};
use seam_store::token_filter::{FilterBuilder, Probe};
use seam_store::{Direction, LogRowRef, LogScan, LogVisitor, Store, StoreConfig};

/// Rows in a segment row group.
const GROUP_ROWS: usize = 32 * 1024;

/// A splitmix64 stream: deterministic lines without a rand dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// About 200-byte lines: logfmt and JSON application lines, most with a trace id.
fn line(rng: &mut Rng, i: usize) -> String {
    let levels = ["info", "info", "info", "warn", "error", "debug"];
    let msgs = [
        "request completed",
        "order event processed",
        "slow downstream call",
        "context deadline exceeded",
        "cache lookup",
    ];
    let level = levels[rng.below(levels.len() as u64) as usize];
    let msg = msgs[rng.below(msgs.len() as u64) as usize];
    let trace = format!("{:016x}{:016x}", rng.next(), rng.next());
    if i.is_multiple_of(3) {
        format!(
            "{{\"ts\":\"12:00:{:02}.{:03}Z\",\"level\":\"{level}\",\"logger\":\"com.shop.checkout.Api\",\"message\":\"{msg}\",\"status\":200,\"duration_ms\":{}.{},\"user_id\":\"u{}\",\"traceId\":\"{trace}\"}}",
            i % 60,
            i % 1000,
            rng.below(900),
            rng.below(10),
            rng.below(999_999)
        )
    } else {
        format!(
            "ts=12:00:{:02}.{:03}Z level={level} caller=cart/handler.go:{} msg=\"{msg}\" method=GET path=/api/cart/{} status=200 duration_ms={}.{:02} user_id={} trace_id={trace}",
            i % 60,
            i % 1000,
            rng.below(400),
            rng.below(99_999),
            rng.below(900),
            rng.below(100),
            rng.below(999_999)
        )
    }
}

fn lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n).map(|i| line(&mut rng, i)).collect()
}

fn token_filter(c: &mut Criterion) {
    let ls = lines(GROUP_ROWS, 1);
    let bytes: usize = ls.iter().map(|l| l.len()).sum();
    let mut g = c.benchmark_group("token_filter");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("build_row_group", |b| {
        b.iter(|| {
            let mut f = FilterBuilder::new();
            for l in &ls {
                f.add_line(l.as_bytes());
            }
            black_box(f.finish())
        })
    });
    let mut f = FilterBuilder::new();
    for l in &ls {
        f.add_line(l.as_bytes());
    }
    let filter = f.finish();
    eprintln!(
        "token filter: {} bytes for {} lines of {} bytes ({:.2} % of raw)",
        filter.len(),
        ls.len(),
        bytes,
        100.0 * filter.len() as f64 / bytes as f64
    );
    let probe = Probe::new([&b"6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"[..]]);
    g.throughput(Throughput::Elements(1));
    g.bench_function("probe_trace_id", |b| {
        b.iter(|| black_box(probe.may_match(&filter)))
    });
    g.finish();
}

fn scan_kernel(c: &mut Criterion) {
    let ls = lines(GROUP_ROWS, 2);
    let bytes: usize = ls.iter().map(|l| l.len()).sum();
    let arr = StringArray::from(ls.clone());
    let mut g = c.benchmark_group("scan_kernel");
    g.throughput(Throughput::Bytes(bytes as u64));
    let mut out = Vec::with_capacity(GROUP_ROWS);
    // `|= "deadline"`: a substring in a fifth of the lines.
    let common = Finder::new("deadline");
    let keep_common = |l: &str| common.find(l.as_bytes()).is_some();
    let req = [b"deadline".to_vec()];
    for (name, required) in [
        ("common_buffer_search", &req[..]),
        ("common_per_line", &[][..]),
    ] {
        let test = LineTest::new(required, &keep_common);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(matching_rows(&arr, None, &test, &mut out))
            })
        });
    }
    // `|= "<trace id>"`: a needle in one line (in a row group the token filter did not skip).
    let needle = ls[GROUP_ROWS / 2][ls[GROUP_ROWS / 2].len() - 32..].to_string();
    let finder = Finder::new(needle.as_bytes());
    let keep_needle = |l: &str| finder.find(l.as_bytes()).is_some();
    let req = [needle.as_bytes().to_vec()];
    for (name, required) in [
        ("needle_buffer_search", &req[..]),
        ("needle_per_line", &[][..]),
    ] {
        let test = LineTest::new(required, &keep_needle);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let s = matching_rows(&arr, None, &test, &mut out);
                assert_eq!(out.len(), 1);
                black_box(s)
            })
        });
    }
    g.finish();
}

struct Count(u64);
impl LogVisitor for Count {
    fn visit(&mut self, _row: LogRowRef<'_>) {
        self.0 += 1;
    }
    fn needs_structured_metadata(&self) -> bool {
        false
    }
}

/// Whole scans over a store of eight segments of 50K rows (about 80 MB of lines), on the
/// scan's worker pool.
fn store_scans(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    let t = Tenant::default_tenant();
    let per_flush = 50_000usize;
    let mut raw = 0u64;
    let mut needle = String::new();
    rt.block_on(async {
        for f in 0..8 {
            let ls = lines(per_flush, 100 + f);
            raw += ls.iter().map(|l| l.len() as u64).sum::<u64>();
            if f == 5 {
                needle = ls[123][ls[123].len() - 32..].to_string();
            }
            let streams = (0..4)
                .map(|s| LogStream {
                    labels: vec![Label::new("app", format!("svc{s}"))],
                    entries: ls
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 4 == s)
                        .map(|(i, l)| LogEntry {
                            timestamp_ns: (f as i64 * per_flush as i64 + i as i64) * 1_000_000,
                            line: l.clone(),
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect();
            store
                .append(&t, Batch::Logs(LogBatch { streams }))
                .await
                .unwrap();
            store.flush().await.unwrap();
        }
    });
    let ids: Vec<u64> = store
        .select_series(&t, Signal::Logs, &[], 0, i64::MAX)
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let seg_bytes: u64 = store.segments().iter().map(|s| s.bytes as u64).sum();
    let scan = |required: &str| {
        let finder = Finder::new(required.as_bytes()).into_owned();
        let keep = move |l: &str| finder.find(l.as_bytes()).is_some();
        let s = LogScan {
            stream_ids: &ids,
            start_ns: 0,
            end_ns: i64::MAX,
            required_substrings: vec![required.as_bytes().to_vec()],
            keep_line: &keep,
            direction: Direction::Backward,
        };
        let mut v = Count(0);
        let stats = store.visit_logs(&t, &s, &mut v).unwrap();
        (v.0, stats)
    };
    let (_, full) = scan("deadline");
    let (hits, needle_stats) = scan(&needle);
    eprintln!(
        "store: {raw} raw line bytes, {seg_bytes} segment bytes; `deadline` read {} bytes; needle read {} bytes ({:.3} % of the segments), {hits} hit, {} of {} row groups pruned",
        full.bytes_read,
        needle_stats.bytes_read,
        100.0 * needle_stats.bytes_read as f64 / seg_bytes as f64,
        needle_stats.row_groups_pruned,
        needle_stats.row_groups_pruned + needle_stats.row_groups_read
    );
    let mut g = c.benchmark_group("visit_logs");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(raw));
    g.bench_function("substring_scan_all_segments", |b| {
        b.iter(|| black_box(scan("deadline")))
    });
    g.bench_function("trace_id_needle", |b| b.iter(|| black_box(scan(&needle))));
    g.finish();
}

criterion_group!(benches, token_filter, scan_kernel, store_scans);
criterion_main!(benches);
