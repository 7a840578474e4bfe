use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::*;

type Rec = (u8, Vec<u8>, WalPosition);

fn cfg(dir: &Path) -> WalConfig {
    WalConfig::new(dir)
}

fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Captures WARN events (with their fields rendered) on the current thread.
struct WarnCapture(Arc<Mutex<Vec<String>>>);

struct FieldText<'a>(&'a mut String);

impl tracing::field::Visit for FieldText<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for WarnCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = String::new();
            event.record(&mut FieldText(&mut text));
            self.0.lock().push(text);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Opened {
    wal: Wal,
    records: Vec<Rec>,
    stats: ReplayStats,
    warnings: Vec<String>,
}

fn open(cfg: WalConfig, from: u64) -> Opened {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let mut records = Vec::new();
    let (wal, stats) = tracing::subscriber::with_default(WarnCapture(warnings.clone()), || {
        Wal::open(cfg, from, |kind, data, pos| {
            records.push((kind, data.to_vec(), pos))
        })
        .unwrap()
    });
    let warnings = warnings.lock().clone();
    Opened {
        wal,
        records,
        stats,
        warnings,
    }
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_file_name(id))
}

fn segment_ids(dir: &Path) -> Vec<u64> {
    format::list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn files_bytes(dir: &Path) -> u64 {
    format::list_segments(dir)
        .unwrap()
        .iter()
        .map(|(_, p)| fs::metadata(p).unwrap().len())
        .sum()
}

async fn append_all(wal: &Wal, recs: &[(u8, Vec<u8>)]) -> Vec<Rec> {
    let mut out = Vec::new();
    for (kind, data) in recs {
        let pos = wal.append(*kind, Bytes::from(data.clone())).await.unwrap();
        out.push((*kind, data.clone(), pos));
    }
    out
}

#[derive(Default)]
struct CountingObserver {
    commits: AtomicU64,
    synced_commits: AtomicU64,
    other_fsyncs: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
}

impl WalObserver for CountingObserver {
    fn on_commit(&self, records: u64, bytes: u64, fsync: Option<Duration>) {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.records.fetch_add(records, Ordering::SeqCst);
        self.bytes.fetch_add(bytes, Ordering::SeqCst);
        if fsync.is_some() {
            self.synced_commits.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn on_fsync(&self, _: Duration) {
        self.other_fsyncs.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn wal_round_trip_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes = 1024;
    let o = open(c.clone(), 0);
    assert_eq!(
        o.stats,
        ReplayStats {
            segments: 0,
            ..Default::default()
        }
    );
    let wal = o.wal;
    let first_segment = wal.active_segment();

    let sizes = [
        0usize, 1, 7, 100, 500, 1000, 3000, 5000, 20, 9000, 4096, 4097, 64,
    ];
    let batch1: Vec<(u8, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (i as u8 % 5, payload(i as u64, n)))
        .collect();
    let mut expected = append_all(&wal, &batch1).await;

    let rotated = wal.rotate().unwrap();
    assert!(expected.iter().all(|(_, _, p)| p.segment < rotated));
    assert_eq!(wal.active_segment(), rotated);

    // Concurrent appends after the rotation: a group with inline and by-reference payloads.
    let handles: Vec<_> = (0..40u64)
        .map(|i| {
            let wal = wal.clone();
            let data = payload(1000 + i, [3usize, 5000, 200, 0][i as usize % 4]);
            tokio::spawn(async move {
                let pos = wal
                    .append(200 + (i % 3) as u8, Bytes::from(data.clone()))
                    .await
                    .unwrap();
                (200 + (i % 3) as u8, data, pos)
            })
        })
        .collect();
    for h in handles {
        let r = h.await.unwrap();
        assert!(r.2.segment >= rotated);
        expected.push(r);
    }
    let disk = wal.disk_bytes();
    wal.close();
    assert_eq!(disk, files_bytes(dir.path()));

    let ids = segment_ids(dir.path());
    assert!(
        ids.len() > 4,
        "size-based rotation should have produced many segments: {ids:?}"
    );
    assert_eq!(ids[0], first_segment);
    // Every non-final segment respects segment_bytes unless it holds a single oversized record.
    for (id, path) in format::list_segments(dir.path()).unwrap() {
        let len = fs::metadata(&path).unwrap().len();
        let in_seg = expected.iter().filter(|r| r.2.segment == id).count();
        assert!(
            len <= 1024 || in_seg == 1,
            "segment {id} has {len} bytes and {in_seg} records"
        );
    }

    expected.sort_by_key(|r| r.2);
    let o = open(c, 0);
    assert_eq!(o.records, expected);
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    assert_eq!(o.stats.records, expected.len() as u64);
    assert_eq!(
        o.stats.bytes,
        expected.iter().map(|r| r.1.len() as u64).sum::<u64>()
    );
    assert_eq!(o.stats.segments, ids.len() as u64);
    assert_eq!(o.stats.truncated_bytes, 0);
    assert!(o.wal.active_segment() > *ids.last().unwrap());
}

#[tokio::test]
async fn wal_torn_tail_at_every_offset_of_last_record() {
    let src = tempfile::tempdir().unwrap();
    let o = open(cfg(src.path()), 0);
    let seg = o.wal.active_segment();
    let recs = append_all(
        &o.wal,
        &[
            (1, payload(1, 10)),
            (2, payload(2, 300)),
            (3, payload(3, 0)),
            (4, payload(4, 50)),
        ],
    )
    .await;
    o.wal.close();
    let pristine = fs::read(seg_path(src.path(), seg)).unwrap();
    let last = recs[3].2.offset as usize;
    assert_eq!(pristine.len(), last + RECORD_HEADER_LEN + 50);

    for cut in last + 1..pristine.len() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg_path(dir.path(), seg);
        fs::write(&path, &pristine[..cut]).unwrap();

        let o = open(cfg(dir.path()), 0);
        assert_eq!(o.records, recs[..3].to_vec(), "cut at {cut}");
        assert_eq!(o.warnings.len(), 1, "cut at {cut}: {:?}", o.warnings);
        let w = &o.warnings[0];
        assert!(w.contains(&segment_file_name(seg)), "{w}");
        assert!(w.contains(&format!("offset={last} ")), "{w}");
        assert!(w.contains(&format!("dropped_bytes={} ", cut - last)), "{w}");
        assert_eq!(o.stats.truncated_bytes, (cut - last) as u64);
        assert_eq!(fs::metadata(&path).unwrap().len(), last as u64);

        let new = o
            .wal
            .append(9, Bytes::from(payload(cut as u64, 33)))
            .await
            .unwrap();
        assert!(new.segment > seg);
        o.wal.close();

        let o = open(cfg(dir.path()), 0);
        let mut want = recs[..3].to_vec();
        want.push((9, payload(cut as u64, 33), new));
        assert_eq!(o.records, want, "cut at {cut}");
        assert!(o.warnings.is_empty(), "cut at {cut}: {:?}", o.warnings);
        assert_eq!(o.stats.truncated_bytes, 0);
        o.wal.close();
    }
}

#[tokio::test]
async fn wal_crc_corruption_mid_last_file_drops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let o = open(cfg(dir.path()), 0);
    let seg = o.wal.active_segment();
    let input: Vec<_> = (0..6u64)
        .map(|i| (i as u8, payload(i, 100 + i as usize)))
        .collect();
    let recs = append_all(&o.wal, &input).await;
    o.wal.close();

    let path = seg_path(dir.path(), seg);
    let len = fs::metadata(&path).unwrap().len();
    let mut bytes = fs::read(&path).unwrap();
    let bad = recs[2].2.offset as usize;
    bytes[bad + RECORD_HEADER_LEN + 40] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records, recs[..2].to_vec());
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert!(o.warnings[0].contains("checksum"), "{}", o.warnings[0]);
    assert_eq!(o.stats.truncated_bytes, len - bad as u64);
    assert_eq!(fs::metadata(&path).unwrap().len(), bad as u64);
    o.wal.close();

    // Corrupting the kind byte is caught too (the CRC covers it).
    let o = open(cfg(dir.path()), 0);
    assert!(o.warnings.is_empty());
    o.wal.close();
    let mut bytes = fs::read(&path).unwrap();
    bytes[recs[1].2.offset as usize + 8] ^= 0x80;
    fs::write(&path, &bytes).unwrap();
    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records, recs[..1].to_vec());
    assert_eq!(o.warnings.len(), 1);
}

#[tokio::test]
async fn wal_corruption_in_non_last_segment_skips_rest_of_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = open(cfg(dir.path()), 0);
    let seg1 = o.wal.active_segment();
    let first: Vec<_> = (0..4u64).map(|i| (1, payload(i, 64))).collect();
    let recs1 = append_all(&o.wal, &first).await;
    o.wal.rotate().unwrap();
    let second: Vec<_> = (10..12u64).map(|i| (2, payload(i, 64))).collect();
    let recs2 = append_all(&o.wal, &second).await;
    o.wal.close();

    let path = seg_path(dir.path(), seg1);
    let mut bytes = fs::read(&path).unwrap();
    let len = bytes.len() as u64;
    // Oversized length field in record 2.
    let off = recs1[1].2.offset as usize;
    bytes[off..off + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).unwrap();

    let o = open(cfg(dir.path()), 0);
    let mut want = recs1[..1].to_vec();
    want.extend(recs2.iter().cloned());
    assert_eq!(o.records, want);
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert!(o.warnings[0].contains(&segment_file_name(seg1)));
    assert_eq!(o.stats.truncated_bytes, 0);
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        len,
        "non-last segment must be left alone"
    );
}

#[tokio::test]
async fn wal_zero_filled_tail_and_short_header() {
    let dir = tempfile::tempdir().unwrap();
    let o = open(cfg(dir.path()), 0);
    let seg = o.wal.active_segment();
    let recs = append_all(&o.wal, &[(1, payload(1, 10)), (2, payload(2, 20))]).await;
    o.wal.close();

    let path = seg_path(dir.path(), seg);
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0u8; 4096])
        .unwrap();
    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records, recs);
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert_eq!(o.stats.truncated_bytes, 4096);
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    let next = o.wal.active_segment();
    o.wal.close();

    // A last segment cut inside its file header (crash right after creation).
    let next_path = seg_path(dir.path(), next);
    OpenOptions::new()
        .write(true)
        .open(&next_path)
        .unwrap()
        .set_len(5)
        .unwrap();
    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records, recs);
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert!(o.warnings[0].contains("short segment header"));
    assert_eq!(fs::metadata(&next_path).unwrap().len(), 0);
    o.wal.close();

    // An empty (zero-length) segment, last or not, is silently accepted.
    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records, recs);
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
}

#[tokio::test]
async fn wal_group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let o = open(cfg(dir.path()), 0);
    let observer = Arc::new(CountingObserver::default());
    o.wal.set_observer(observer.clone());

    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let wal = o.wal.clone();
            tokio::spawn(async move { wal.append(7, Bytes::from(payload(i, 128))).await.unwrap() })
        })
        .collect();
    let mut positions = Vec::new();
    for t in tasks {
        positions.push(t.await.unwrap());
    }
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), 64);

    let commits = observer.commits.load(Ordering::SeqCst);
    let fsyncs = observer.synced_commits.load(Ordering::SeqCst)
        + observer.other_fsyncs.load(Ordering::SeqCst);
    assert_eq!(observer.records.load(Ordering::SeqCst), 64);
    assert_eq!(
        observer.bytes.load(Ordering::SeqCst),
        64 * (128 + RECORD_HEADER_LEN as u64)
    );
    assert_eq!(
        observer.synced_commits.load(Ordering::SeqCst),
        commits,
        "Always syncs every group"
    );
    assert!(fsyncs < 64, "64 concurrent appends took {fsyncs} fsyncs");
    o.wal.close();

    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records.iter().map(|r| r.2).collect::<Vec<_>>(), positions);
}

#[tokio::test]
async fn wal_trim_and_from_segment() {
    let dir = tempfile::tempdir().unwrap();
    let o = open(cfg(dir.path()), 0);
    let wal = o.wal;
    let s1 = wal.active_segment();
    let a = append_all(&wal, &[(1, payload(1, 100))]).await;
    let s2 = wal.rotate().unwrap();
    let b = append_all(&wal, &[(2, payload(2, 100))]).await;
    let s3 = wal.rotate().unwrap();
    let c = append_all(&wal, &[(3, payload(3, 100))]).await;
    assert!(s1 < s2 && s2 < s3);
    assert_eq!(segment_ids(dir.path()), vec![s1, s2, s3]);

    wal.trim(s2).unwrap();
    assert_eq!(segment_ids(dir.path()), vec![s2, s3]);
    assert_eq!(wal.disk_bytes(), files_bytes(dir.path()));
    wal.trim(s2).unwrap(); // idempotent
    assert_eq!(segment_ids(dir.path()), vec![s2, s3]);
    wal.close();

    let o = open(cfg(dir.path()), 0);
    let mut want = b.clone();
    want.extend(c.iter().cloned());
    assert_eq!(o.records, want);
    assert!(!o.records.contains(&a[0]));
    o.wal.close();

    let o = open(cfg(dir.path()), s3);
    assert_eq!(o.records, c);
    assert_eq!(
        o.stats.segments, 2,
        "s3 and the empty segment of the previous open"
    );
    assert!(
        !segment_ids(dir.path()).contains(&s2),
        "segments below from_segment are deleted"
    );

    // trim never deletes the active segment, whatever `before` says.
    let active = o.wal.active_segment();
    o.wal.trim(u64::MAX).unwrap();
    assert_eq!(segment_ids(dir.path()), vec![active]);
    assert_eq!(o.wal.disk_bytes(), files_bytes(dir.path()));
    let d = o
        .wal
        .append(4, Bytes::from_static(b"after trim"))
        .await
        .unwrap();
    assert_eq!(o.wal.disk_bytes(), files_bytes(dir.path()));
    o.wal.close();
    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records, vec![(4, b"after trim".to_vec(), d)]);

    // from_segment beyond every existing segment starts there.
    o.wal.close();
    let o = open(cfg(dir.path()), 1000);
    assert!(o.records.is_empty());
    assert_eq!(o.wal.active_segment(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wal_interval_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.fsync = FsyncPolicy::Interval(Duration::from_millis(20));
    let o = open(c.clone(), 0);
    let observer = Arc::new(CountingObserver::default());
    o.wal.set_observer(observer.clone());

    let tasks: Vec<_> = (0..100u64)
        .map(|i| {
            let wal = o.wal.clone();
            tokio::spawn(async move {
                let data = payload(i, 10 + i as usize);
                let pos = wal.append(5, Bytes::from(data.clone())).await.unwrap();
                (5u8, data, pos)
            })
        })
        .collect();
    let mut expected = Vec::new();
    for t in tasks {
        expected.push(t.await.unwrap());
    }
    assert_eq!(observer.synced_commits.load(Ordering::SeqCst), 0);
    // The background timer syncs without any further appends or close.
    let deadline = Instant::now() + Duration::from_secs(5);
    while observer.other_fsyncs.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "interval fsync never happened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let more = o.wal.append(6, Bytes::from_static(b"last")).await.unwrap();
    expected.push((6, b"last".to_vec(), more));
    o.wal.close();

    expected.sort_by_key(|r| r.2);
    let o = open(c, 0);
    assert_eq!(o.records, expected);
}

#[tokio::test]
async fn wal_close_record_limit_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let o = open(cfg(dir.path()), 0);
    let wal = o.wal;

    let err = Wal::open(cfg(dir.path()), 0, |_, _, _| {})
        .err()
        .expect("second open must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);

    let big = Bytes::from(vec![0u8; MAX_RECORD_BYTES + 1]);
    assert!(matches!(
        wal.append(1, big).await,
        Err(WalError::RecordTooLarge { .. })
    ));

    let pos = wal.append(1, Bytes::from_static(b"x")).await.unwrap();
    wal.close();
    wal.close();
    assert!(matches!(
        wal.append(1, Bytes::from_static(b"y")).await,
        Err(WalError::Closed)
    ));
    assert!(matches!(wal.rotate(), Err(WalError::Closed)));

    // Dropping the last handle (without close) also stops the writer and releases the lock.
    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records, vec![(1, b"x".to_vec(), pos)]);
    drop(o.wal);
    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records.len(), 1);
}

#[tokio::test]
async fn wal_fsync_error_fails_appends_and_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let o = open(cfg(dir.path()), 0);
    let wal = o.wal;
    let ok = wal.append(1, Bytes::from_static(b"durable")).await.unwrap();

    wal.inner
        .shared
        .faults
        .fail_next_sync
        .store(true, Ordering::SeqCst);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let wal = wal.clone();
            tokio::spawn(async move { wal.append(2, Bytes::from_static(b"lost")).await })
        })
        .collect();
    let mut io_errors = 0;
    for t in tasks {
        match t.await.unwrap() {
            Err(WalError::Io(_)) => io_errors += 1,
            Err(WalError::Failed(_)) => {}
            other => panic!("append after fsync failure must not succeed: {other:?}"),
        }
    }
    assert!(io_errors >= 1);
    assert!(matches!(
        wal.append(3, Bytes::from_static(b"z")).await,
        Err(WalError::Failed(_))
    ));
    assert!(matches!(wal.rotate(), Err(WalError::Failed(_))));
    wal.close();

    let o = open(cfg(dir.path()), 0);
    assert_eq!(o.records[0], (1, b"durable".to_vec(), ok));
}

#[tokio::test]
async fn wal_unsupported_version_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut header = format::segment_header();
    header[8..12].copy_from_slice(&99u32.to_le_bytes());
    fs::write(seg_path(dir.path(), 3), header).unwrap();
    let err = Wal::open(cfg(dir.path()), 0, |_, _, _| {}).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

/// Throughput probe: `cargo test -p seam-store --release wal_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
#[ignore]
async fn wal_throughput() {
    for (label, size, concurrency, per_task) in [
        ("small", 100usize, 512usize, 2000usize),
        ("100KB", 100 << 10, 64, 100),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = open(cfg(dir.path()), 0);
        let observer = Arc::new(CountingObserver::default());
        o.wal.set_observer(observer.clone());
        let data = Bytes::from(payload(1, size));
        let done = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (wal, data, done) = (o.wal.clone(), data.clone(), done.clone());
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        wal.append(1, data.clone()).await.unwrap();
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let n = done.load(Ordering::Relaxed) as f64;
        println!(
            "{label}: {:.0} records/s, {:.1} MB/s, {} commits",
            n / secs,
            n * size as f64 / secs / 1e6,
            observer.commits.load(Ordering::SeqCst)
        );
        o.wal.close();
    }
}
