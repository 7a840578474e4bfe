//! The streaming log scan over segments and the head: the rows it returns match a brute-force
//! reference, needle queries skip row groups through the token filters, and limited queries stop
//! reading once their visitor is full.

use std::sync::atomic::{AtomicUsize, Ordering};

use seam_model::{Batch, Label, LogBatch, LogEntry, LogStream, Signal, Tenant};
use seam_store::{Direction, LogRowRef, LogScan, LogVisitor, ScanStats, Store, StoreConfig};

const STREAMS: [&str; 3] = ["api", "db", "web"];
/// Lines per stream per flush; three streams make 75K rows, three row groups per segment.
const PER_FLUSH: i64 = 25_000;
const FLUSHES: i64 = 3;
/// Lines per stream left in the head.
const IN_HEAD: i64 = 2_000;

fn trace_id(stream: usize, i: i64) -> String {
    let x = (i as u64 ^ ((stream as u64) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("{:016x}{:016x}", x, x.rotate_left(17) ^ 0x5bd1_e995)
}

/// The line of entry `i` of a stream; its time is `i` ms.
fn line(stream: usize, i: i64) -> String {
    let level = ["info", "warn", "error"][(i % 7 % 3) as usize];
    format!(
        "ts={i} level={level} svc={} msg=\"request done\" trace_id={} dur={}ms",
        STREAMS[stream],
        trace_id(stream, i),
        i % 97
    )
}

fn batch(from: i64, to: i64) -> Batch {
    Batch::Logs(LogBatch {
        streams: STREAMS
            .iter()
            .enumerate()
            .map(|(s, app)| LogStream {
                labels: vec![Label::new("app", *app)],
                entries: (from..to)
                    .map(|i| LogEntry {
                        timestamp_ns: i * 1_000_000,
                        line: line(s, i),
                        structured_metadata: vec![Label::new("n", i.to_string())],
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// A store with three flushed segments and some rows in the head.
async fn store(dir: &std::path::Path) -> (Store, Tenant, Vec<u64>) {
    let store = Store::open(StoreConfig::new(dir)).unwrap();
    let t = Tenant::default_tenant();
    for f in 0..FLUSHES {
        // Several appends per flush, as ingest does.
        for part in 0..5 {
            let from = f * PER_FLUSH + part * PER_FLUSH / 5;
            store
                .append(&t, batch(from, from + PER_FLUSH / 5))
                .await
                .unwrap();
        }
        store.flush().await.unwrap();
    }
    let from = FLUSHES * PER_FLUSH;
    store.append(&t, batch(from, from + IN_HEAD)).await.unwrap();
    let mut ids: Vec<u64> = store
        .select_series(&t, Signal::Logs, &[], 0, i64::MAX)
        .iter()
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    (store, t, ids)
}

#[derive(Default)]
struct Collect {
    rows: Vec<(i64, String, String)>,
    limit: Option<usize>,
    backward: bool,
    metadata: bool,
    no_lines: bool,
}

impl LogVisitor for Collect {
    fn visit(&mut self, row: LogRowRef<'_>) {
        self.rows.push((
            row.timestamp_ns,
            row.line.to_string(),
            row.structured_metadata.to_string(),
        ));
    }
    fn wants(&self, min_ns: i64, max_ns: i64) -> bool {
        let Some(limit) = self.limit else { return true };
        if self.rows.len() < limit {
            return true;
        }
        // Rows arrive roughly in order; the `limit`-th best so far is the cut.
        let mut ts: Vec<i64> = self.rows.iter().map(|r| r.0).collect();
        ts.sort_unstable();
        if self.backward {
            max_ns >= ts[ts.len() - limit]
        } else {
            min_ns <= ts[limit - 1]
        }
    }
    fn needs_structured_metadata(&self) -> bool {
        self.metadata
    }
    fn needs_lines(&self) -> bool {
        !self.no_lines
    }
}

fn scan(
    store: &Store,
    t: &Tenant,
    ids: &[u64],
    range: (i64, i64),
    required: &[&str],
    v: &mut Collect,
) -> ScanStats {
    let req: Vec<Vec<u8>> = required.iter().map(|s| s.as_bytes().to_vec()).collect();
    let keep = |l: &str| required.iter().all(|r| l.contains(r));
    let s = LogScan {
        stream_ids: ids,
        start_ns: range.0,
        end_ns: range.1,
        required_substrings: req,
        keep_line: &keep,
        direction: if v.backward {
            Direction::Backward
        } else {
            Direction::Forward
        },
    };
    store.visit_logs(t, &s, v).unwrap()
}

/// Every (time, line) of the given streams in the range containing every required substring.
fn reference(streams: &[usize], range: (i64, i64), required: &[&str]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for &s in streams {
        for i in 0..FLUSHES * PER_FLUSH + IN_HEAD {
            let t = i * 1_000_000;
            let l = line(s, i);
            if t >= range.0 && t <= range.1 && required.iter().all(|r| l.contains(r)) {
                out.push((t, l));
            }
        }
    }
    out.sort();
    out
}

fn sorted(v: &Collect) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = v.rows.iter().map(|r| (r.0, r.1.clone())).collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_match_a_brute_force_reference() {
    let dir = tempfile::tempdir().unwrap();
    let (store, t, all) = store(dir.path()).await;
    assert_eq!(store.segments().len(), FLUSHES as usize);
    let api = store.select_series(
        &t,
        Signal::Logs,
        &[seam_store::LabelMatcher::new("app", seam_store::MatchOp::Equal, "api").unwrap()],
        0,
        i64::MAX,
    );
    let api: Vec<u64> = api.iter().map(|(id, _)| *id).collect();
    let last = (FLUSHES * PER_FLUSH + IN_HEAD - 1) * 1_000_000;
    // (stream ids, their indices, range, required substrings)
    type Case<'a> = (&'a [u64], Vec<usize>, (i64, i64), Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            &all,
            vec![0, 1, 2],
            (0, last),
            vec!["level=error", "dur=5ms"],
        ),
        (&api, vec![0], (0, last), vec!["dur=13ms"]),
        // A range inside one segment and one crossing into the head.
        (
            &all,
            vec![0, 1, 2],
            (30_000_000_000, 30_500_000_000),
            vec![],
        ),
        (
            &api,
            vec![0],
            (74_000_000_000, 75_500_000_000),
            vec!["level=warn"],
        ),
    ];
    for (ids, streams, range, required) in cases {
        for backward in [false, true] {
            let mut v = Collect {
                backward,
                ..Default::default()
            };
            let stats = scan(&store, &t, ids, range, &required, &mut v);
            let want = reference(&streams, range, &required);
            assert_eq!(sorted(&v).len(), want.len(), "{range:?} {required:?}");
            assert_eq!(sorted(&v), want, "{range:?} {required:?}");
            assert_eq!(stats.rows_visited, want.len() as u64);
            assert!(v.rows.iter().all(|r| r.2 == "{}"), "metadata not asked for");
        }
    }
    // A visitor that needs no lines gets every row of the range, with empty lines.
    let mut v = Collect {
        no_lines: true,
        ..Default::default()
    };
    let range = (74_000_000_000, 75_500_000_000);
    let stats = scan(&store, &t, &api, range, &[], &mut v);
    let want = reference(&[0], range, &[]);
    assert_eq!(v.rows.len(), want.len());
    assert!(v.rows.iter().all(|r| r.1.is_empty()));
    assert_eq!(stats.bytes_scanned, 0);
    // Structured metadata comes back when asked for.
    let mut v = Collect {
        metadata: true,
        ..Default::default()
    };
    scan(&store, &t, &api, (0, 5_000_000), &[], &mut v);
    assert_eq!(v.rows.len(), 6);
    assert_eq!(v.rows[0].2, r#"{"n":"0"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_needle_reads_a_small_fraction_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, t, all) = store(dir.path()).await;
    let everything = (0, i64::MAX);
    let mut v = Collect::default();
    let full = scan(&store, &t, &all, everything, &["dur=1ms"], &mut v);
    assert_eq!(full.row_groups_pruned, 0, "dur=1ms has no long word run");
    assert_eq!(full.row_groups_read, 9);
    for (stream, i) in [(1usize, 123i64), (0, 60_000), (2, 74_999)] {
        let needle = trace_id(stream, i);
        let mut v = Collect::default();
        let stats = scan(&store, &t, &all, everything, &[needle.as_str()], &mut v);
        assert_eq!(sorted(&v), vec![(i * 1_000_000, line(stream, i))]);
        assert_eq!(stats.row_groups_read + stats.row_groups_pruned, 9);
        assert!(
            stats.row_groups_read <= 2,
            "read {} row groups for one trace id",
            stats.row_groups_read
        );
        assert!(
            stats.bytes_read * 5 < full.bytes_read,
            "needle read {} bytes, full scan {}",
            stats.bytes_read,
            full.bytes_read
        );
    }
    // An absent id reads no row group at all (a false positive would read one).
    let mut v = Collect::default();
    let stats = scan(
        &store,
        &t,
        &all,
        everything,
        &["00000000deadbeef00000000deadbeef"],
        &mut v,
    );
    assert!(v.rows.is_empty());
    assert!(stats.row_groups_read <= 1);
    assert!(stats.segment_bytes >= full.bytes_read);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limited_scans_stop_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (store, t, all) = store(dir.path()).await;
    let last = FLUSHES * PER_FLUSH + IN_HEAD - 1;
    let mut v = Collect {
        limit: Some(10),
        backward: true,
        ..Default::default()
    };
    let stats = scan(&store, &t, &all, (0, i64::MAX), &[], &mut v);
    let mut ts: Vec<i64> = v.rows.iter().map(|r| r.0).collect();
    ts.sort_unstable();
    assert_eq!(ts[ts.len() - 1], last * 1_000_000, "newest row first");
    assert!(
        stats.row_groups_read <= 5,
        "read {} of 9 row groups for the 10 newest rows",
        stats.row_groups_read
    );
    let mut v = Collect {
        limit: Some(10),
        ..Default::default()
    };
    let stats = scan(&store, &t, &all, (0, i64::MAX), &[], &mut v);
    assert_eq!(v.rows.iter().map(|r| r.0).min(), Some(0));
    assert!(stats.row_groups_read <= 5);
}

/// A visitor that stops wanting anything after its first row: the scan reads nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_can_stop_the_scan() {
    struct First(AtomicUsize);
    impl LogVisitor for First {
        fn visit(&mut self, _row: LogRowRef<'_>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn wants(&self, _: i64, _: i64) -> bool {
            self.0.load(Ordering::Relaxed) == 0
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, t, all) = store(dir.path()).await;
    let keep = |_: &str| true;
    let s = LogScan {
        stream_ids: &all,
        start_ns: 0,
        end_ns: i64::MAX,
        required_substrings: Vec::new(),
        keep_line: &keep,
        direction: Direction::Forward,
    };
    let mut v = First(AtomicUsize::new(0));
    let stats = store.visit_logs(&t, &s, &mut v).unwrap();
    assert!(
        stats.row_groups_read <= 5,
        "read {} row groups",
        stats.row_groups_read
    );
    assert!(v.0.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_logs_uses_the_token_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (store, t, all) = store(dir.path()).await;
    let needle = trace_id(0, 40_000);
    let keep = |l: &str| l.contains(needle.as_str());
    let s = LogScan {
        stream_ids: &all,
        start_ns: 0,
        end_ns: i64::MAX,
        required_substrings: vec![needle.as_bytes().to_vec()],
        keep_line: &keep,
        direction: Direction::Backward,
    };
    let rows = store.top_logs(&t, &s, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].line, line(0, 40_000));
    assert_eq!(rows[0].structured_metadata, r#"{"n":"40000"}"#);
    // The same through scan_logs, which names no substring and reads every row group.
    let rows = store
        .scan_logs(&t, &all, 0, i64::MAX, &keep, Direction::Forward, 10)
        .unwrap();
    assert_eq!(rows.len(), 1);
}
