//! The streaming log scan the LogQL engine runs on: every row of some streams in a time range
//! whose line passes a test, handed to a visitor that may say which times it still wants (so a
//! `limit`ed query stops reading once nothing older or newer can make the cut).
//!
//! The scan cuts its work into units (a few head chunks, or one segment row group), ordered by
//! time in the wanted direction. The calling thread asks the visitor whether it still wants each
//! unit's time range and hands wanted units to a small pool of workers, which skip row groups
//! whose token filter rules out a required substring, decode the rest (only the columns and pages
//! needed) and run the line test. Surviving rows go back to the calling thread and reach the
//! visitor in unit order; no line is copied.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc};

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use parking_lot::Mutex;
use seam_model::{Signal, Tenant};

use crate::line_scan::{matching_rows, LineTest};
use crate::read::{overlapping, Direction};
use crate::schema::{log_col, RowsSummary};
use crate::segment_read::{series_mask, GroupPlan, SegmentFile};
use crate::store::Store;
use crate::token_filter::Probe;
use crate::StoreError;

/// What a log scan reads.
pub struct LogScan<'a> {
    /// The streams (sorted, unique ids from `select_series`).
    pub stream_ids: &'a [u64],
    /// Range start (ns, inclusive).
    pub start_ns: i64,
    /// Range end (ns, inclusive).
    pub end_ns: i64,
    /// Substrings every wanted line contains (case-sensitive). The store may skip data whose
    /// token filter proves none of its lines contains one of them.
    pub required_substrings: Vec<Vec<u8>>,
    /// The line test; runs where the rows are decoded, possibly on several threads.
    pub keep_line: &'a (dyn Fn(&str) -> bool + Sync),
    /// The order the visitor would like rows in. Rows come roughly in this order (by chunk or
    /// row group); the visitor must not rely on exact order.
    pub direction: Direction,
}

/// One log row, borrowed from the decoded data.
#[derive(Clone, Copy, Debug)]
pub struct LogRowRef<'a> {
    /// The stream.
    pub stream_id: u64,
    /// Time in nanoseconds.
    pub timestamp_ns: i64,
    /// The line.
    pub line: &'a str,
    /// Structured metadata as a JSON object of strings (`{}` when none, and always `{}` when the
    /// visitor said it does not need it). The line is empty when the visitor said it does not need
    /// lines.
    pub structured_metadata: &'a str,
}

/// Receives the rows of a [`LogScan`].
pub trait LogVisitor {
    /// One row that passed `keep_line`.
    fn visit(&mut self, row: LogRowRef<'_>);
    /// Whether any row in `[min_ns, max_ns]` could still matter. The store asks before reading a
    /// chunk or row group and skips it on `false`.
    fn wants(&self, _min_ns: i64, _max_ns: i64) -> bool {
        true
    }
    /// Whether rows need their structured metadata; when not, the column is not read.
    fn needs_structured_metadata(&self) -> bool {
        true
    }
    /// Whether rows need their line. When not (a count or rate with no line filter), lines are
    /// not read at all: every row of the streams and range is visited with an empty line and
    /// `keep_line` is not called, so say so only when `keep_line` keeps every line.
    fn needs_lines(&self) -> bool {
        true
    }
}

/// What a scan did, for query statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Rows decoded and tested.
    pub rows_scanned: u64,
    /// Line bytes decoded and tested.
    pub bytes_scanned: u64,
    /// Rows handed to the visitor.
    pub rows_visited: u64,
    /// Bytes read from segment files (pages, footers not yet cached, filter words).
    pub bytes_read: u64,
    /// Size of the segment files the scan's time range touched: `bytes_read` over this is the
    /// fraction of the store a query read.
    pub segment_bytes: u64,
    /// Segment row groups decoded.
    pub row_groups_read: u64,
    /// Segment row groups skipped because their token filter ruled out a required substring.
    pub row_groups_pruned: u64,
}

impl ScanStats {
    fn add(&mut self, o: &ScanStats) {
        self.rows_scanned += o.rows_scanned;
        self.bytes_scanned += o.bytes_scanned;
        self.rows_visited += o.rows_visited;
        self.bytes_read += o.bytes_read;
        self.segment_bytes += o.segment_bytes;
        self.row_groups_read += o.row_groups_read;
        self.row_groups_pruned += o.row_groups_pruned;
    }
}

/// Head rows gathered into one unit: few enough dispatches, small enough to stop early.
const HEAD_UNIT_ROWS: usize = 16 * 1024;

/// Most worker threads a scan uses.
const MAX_WORKERS: usize = 4;

/// Where a unit's rows are.
enum Source {
    /// Head chunks (all columns, rows not yet selected).
    Head(Vec<RecordBatch>),
    /// One segment row group.
    Group(Arc<SegmentFile>, GroupPlan),
}

/// A piece of work with the time range of its rows.
struct Unit {
    min_ns: i64,
    max_ns: i64,
    source: Source,
}

/// A unit's result: batches in the scan's [`Layout`] with the rows that passed.
struct Done {
    batches: Vec<(RecordBatch, Vec<u32>)>,
    stats: ScanStats,
}

/// What every worker needs, shared.
struct Ctx<'a> {
    ids: Arc<[u64]>,
    start: i64,
    end: i64,
    probe: Probe,
    test: LineTest<'a>,
    layout: Layout,
}

/// The columns a scan reads, in schema order, and where the optional ones land in its batches
/// (stream id and time are always columns 0 and 1).
struct Layout {
    columns: Vec<usize>,
    line: Option<usize>,
    metadata: Option<usize>,
}

impl Layout {
    fn new(lines: bool, metadata: bool) -> Layout {
        let mut columns = vec![log_col::STREAM_ID, log_col::TIMESTAMP];
        let line = lines.then(|| {
            columns.push(log_col::LINE);
            columns.len() - 1
        });
        let metadata = metadata.then(|| {
            columns.push(log_col::STRUCTURED_METADATA);
            columns.len() - 1
        });
        Layout {
            columns,
            line,
            metadata,
        }
    }
}

impl Ctx<'_> {
    fn process(&self, unit: Source) -> Result<Done, StoreError> {
        let mut stats = ScanStats::default();
        let mut batches = Vec::new();
        match unit {
            Source::Head(chunks) => {
                for b in chunks {
                    let b = b.project(&self.layout.columns).expect("scan columns exist");
                    let mask = series_mask(
                        b.column(0).as_primitive::<UInt64Type>().values(),
                        b.column(1).as_primitive::<Int64Type>().values(),
                        &self.ids,
                        self.start,
                        self.end,
                    );
                    self.test_rows(b, Some(&mask), &mut batches, &mut stats);
                }
            }
            Source::Group(seg, plan) => {
                if !self.probe.is_empty() && !seg.may_contain(plan.index, &self.probe)? {
                    stats.row_groups_pruned += 1;
                    return Ok(Done { batches, stats });
                }
                stats.row_groups_read += 1;
                for b in seg.decode_series(
                    Signal::Logs,
                    &plan,
                    &self.layout.columns,
                    &self.ids,
                    self.start,
                    self.end,
                )? {
                    self.test_rows(b, None, &mut batches, &mut stats);
                }
            }
        }
        Ok(Done { batches, stats })
    }

    fn test_rows(
        &self,
        b: RecordBatch,
        mask: Option<&BooleanArray>,
        out: &mut Vec<(RecordBatch, Vec<u32>)>,
        stats: &mut ScanStats,
    ) {
        let mut rows = Vec::new();
        match self.layout.line {
            Some(c) => {
                let s = matching_rows(b.column(c).as_string::<i32>(), mask, &self.test, &mut rows);
                stats.rows_scanned += s.rows;
                stats.bytes_scanned += s.bytes;
            }
            None => {
                rows.extend(
                    (0..b.num_rows() as u32).filter(|i| mask.is_none_or(|m| m.value(*i as usize))),
                );
                stats.rows_scanned += rows.len() as u64;
            }
        }
        if !rows.is_empty() {
            out.push((b, rows));
        }
    }
}

impl Store {
    /// Streams the log rows of `scan` to `visitor`. Blocking.
    pub fn visit_logs(
        &self,
        tenant: &Tenant,
        scan: &LogScan<'_>,
        visitor: &mut dyn LogVisitor,
    ) -> Result<ScanStats, StoreError> {
        if scan.stream_ids.is_empty() || scan.start_ns > scan.end_ns {
            return Ok(ScanStats::default());
        }
        // Rows whose keys found no trace at ingest are resolved as they are read (late_keys.rs);
        // a visitor that reads no metadata cannot see the difference.
        let late = self.inner.cfg.late_log_keys.clone();
        match late {
            Some(keys) if visitor.needs_structured_metadata() => {
                let mut resolving =
                    crate::late_keys::Resolving::new(visitor, keys.as_ref(), self, tenant);
                self.scan_rows(tenant, scan, &mut resolving)
            }
            _ => self.scan_rows(tenant, scan, visitor),
        }
    }

    /// [`Store::visit_logs`] without the late-key resolution.
    fn scan_rows(
        &self,
        tenant: &Tenant,
        scan: &LogScan<'_>,
        visitor: &mut dyn LogVisitor,
    ) -> Result<ScanStats, StoreError> {
        let mut stats = ScanStats::default();
        let (head, segs) = self.snapshot(tenant, Signal::Logs, |p| {
            p.series_chunks(scan.stream_ids, scan.start_ns, scan.end_ns)
                .map(|c| (c.batch.clone(), c.summary.clone()))
                .collect()
        });
        let mut units = head_units(head);
        let mut files = Vec::new();
        for meta in overlapping(&segs, scan.start_ns, scan.end_ns) {
            let seg = Arc::new(SegmentFile::open(
                &self.inner.cfg.data_dir.join(&meta.rel_path),
            )?);
            stats.segment_bytes += seg.file_bytes();
            for plan in
                seg.plan_series(Signal::Logs, scan.stream_ids, scan.start_ns, scan.end_ns)?
            {
                units.push(Unit {
                    min_ns: plan.min_time,
                    max_ns: plan.max_time,
                    source: Source::Group(seg.clone(), plan),
                });
            }
            files.push(seg);
        }
        match scan.direction {
            Direction::Forward => units.sort_by_key(|u| (u.min_ns, u.max_ns)),
            Direction::Backward => {
                units.sort_by_key(|u| (std::cmp::Reverse(u.max_ns), std::cmp::Reverse(u.min_ns)))
            }
        }
        let ctx = Ctx {
            ids: Arc::from(scan.stream_ids),
            start: scan.start_ns,
            end: scan.end_ns,
            probe: Probe::new(scan.required_substrings.iter().map(|s| s.as_slice())),
            test: LineTest::new(&scan.required_substrings, scan.keep_line),
            // A scan that names required substrings tests lines, whatever the visitor says.
            layout: Layout::new(
                visitor.needs_lines() || !scan.required_substrings.is_empty(),
                visitor.needs_structured_metadata(),
            ),
        };
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_WORKERS)
            .min(units.len());
        let result = if workers <= 1 {
            run_inline(&ctx, units, visitor)
        } else {
            run_parallel(&ctx, units, visitor, workers)
        };
        let scanned = result?;
        stats.add(&scanned);
        stats.bytes_read += files.iter().map(|f| f.bytes_read()).sum::<u64>();
        Ok(stats)
    }
}

/// Groups consecutive head chunks into units of about [`HEAD_UNIT_ROWS`] rows, each with the
/// time range of its rows (from the chunks' summaries).
fn head_units(head: Vec<(RecordBatch, RowsSummary)>) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut chunks: Vec<RecordBatch> = Vec::new();
    let (mut rows, mut lo, mut hi) = (0usize, i64::MAX, i64::MIN);
    for (b, summary) in head {
        lo = lo.min(summary.min_time_ns);
        hi = hi.max(summary.max_time_ns);
        rows += b.num_rows();
        chunks.push(b);
        if rows >= HEAD_UNIT_ROWS {
            units.push(Unit {
                min_ns: lo,
                max_ns: hi,
                source: Source::Head(std::mem::take(&mut chunks)),
            });
            (rows, lo, hi) = (0, i64::MAX, i64::MIN);
        }
    }
    if !chunks.is_empty() {
        units.push(Unit {
            min_ns: lo,
            max_ns: hi,
            source: Source::Head(chunks),
        });
    }
    units
}

/// Hands a unit's rows to the visitor, unless it stopped wanting them while the unit was read.
fn deliver(
    min_ns: i64,
    max_ns: i64,
    done: Done,
    visitor: &mut dyn LogVisitor,
    layout: &Layout,
    stats: &mut ScanStats,
) {
    stats.add(&done.stats);
    if !visitor.wants(min_ns, max_ns) {
        return;
    }
    for (b, rows) in &done.batches {
        let ids = b.column(0).as_primitive::<UInt64Type>();
        let ts = b.column(1).as_primitive::<Int64Type>();
        let lines = layout.line.map(|c| b.column(c).as_string::<i32>());
        let md = layout.metadata.map(|c| b.column(c).as_string::<i32>());
        for &i in rows {
            let i = i as usize;
            stats.rows_visited += 1;
            visitor.visit(LogRowRef {
                stream_id: ids.value(i),
                timestamp_ns: ts.value(i),
                line: lines.map_or("", |l| l.value(i)),
                structured_metadata: md.map_or("{}", |m| m.value(i)),
            });
        }
    }
}

fn run_inline(
    ctx: &Ctx<'_>,
    units: Vec<Unit>,
    visitor: &mut dyn LogVisitor,
) -> Result<ScanStats, StoreError> {
    let mut stats = ScanStats::default();
    for u in units {
        if !visitor.wants(u.min_ns, u.max_ns) {
            continue;
        }
        let done = ctx.process(u.source)?;
        deliver(u.min_ns, u.max_ns, done, visitor, &ctx.layout, &mut stats);
    }
    Ok(stats)
}

/// Runs units on `workers` threads, at most a couple of units ahead of the visitor, and delivers
/// them in order.
fn run_parallel(
    ctx: &Ctx<'_>,
    units: Vec<Unit>,
    visitor: &mut dyn LogVisitor,
    workers: usize,
) -> Result<ScanStats, StoreError> {
    type Job = (usize, Source);
    type Answer = (usize, Result<Done, StoreError>);
    let ahead = workers + 2;
    let mut stats = ScanStats::default();
    std::thread::scope(|s| {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (ans_tx, ans_rx) = mpsc::channel::<Answer>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..workers {
            let (job_rx, ans_tx) = (job_rx.clone(), ans_tx.clone());
            s.spawn(move || loop {
                let job = job_rx.lock().recv();
                let Ok((seq, source)) = job else {
                    return;
                };
                if ans_tx.send((seq, ctx.process(source))).is_err() {
                    return;
                }
            });
        }
        drop(ans_tx);
        let mut pending: BTreeMap<usize, Result<Done, StoreError>> = BTreeMap::new();
        let mut ranges: Vec<(i64, i64)> = Vec::new();
        let mut units = units.into_iter();
        let mut next_visit = 0usize;
        loop {
            while ranges.len() - next_visit < ahead {
                let Some(u) = units.next() else { break };
                if !visitor.wants(u.min_ns, u.max_ns) {
                    continue;
                }
                ranges.push((u.min_ns, u.max_ns));
                job_tx
                    .send((ranges.len() - 1, u.source))
                    .expect("workers run until the job channel closes");
            }
            if next_visit == ranges.len() {
                return Ok(stats);
            }
            while !pending.contains_key(&next_visit) {
                let (seq, done) = ans_rx.recv().expect("a worker answers every job");
                pending.insert(seq, done);
            }
            let done = pending.remove(&next_visit).expect("just checked")?;
            let (lo, hi) = ranges[next_visit];
            deliver(lo, hi, done, visitor, &ctx.layout, &mut stats);
            next_visit += 1;
        }
    })
}
