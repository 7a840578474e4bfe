//! Log queries: the newest (backward) or oldest (forward) `limit` entries that pass the pipeline,
//! kept in a bounded heap while the store streams rows.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use seam_store::{Direction, LogRowRef, LogVisitor};

use super::super::ast::LogExpr;
use super::super::pipeline::Pipeline;
use super::super::value::LogEntry;
use super::scan::{self, Deadline, Source};
use super::{Ctx, QueryError, QueryTime};

/// An entry in the heap, ordered so the heap's top is the entry that leaves first: the newest
/// one when reading forward, the oldest one when reading backward.
struct Ranked {
    entry: LogEntry,
    backward: bool,
}

impl Ranked {
    fn natural(&self, other: &Ranked) -> Ordering {
        let (a, b) = (&self.entry, &other.entry);
        a.timestamp_ns
            .cmp(&b.timestamp_ns)
            .then_with(|| a.labels.cmp(&b.labels))
            .then_with(|| a.line.cmp(&b.line))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        let o = self.natural(other);
        if self.backward {
            o.reverse()
        } else {
            o
        }
    }
}

struct LogCollector<'a> {
    source: &'a Source,
    pipeline: &'a Pipeline,
    limit: usize,
    backward: bool,
    heap: BinaryHeap<Ranked>,
    deadline: Deadline,
    timed_out: bool,
    post_filter: u64,
    md_bytes: u64,
}

impl LogCollector<'_> {
    /// The timestamp an entry must reach (inclusive) to enter a full heap.
    fn cut(&self) -> Option<i64> {
        (self.heap.len() >= self.limit).then(|| {
            self.heap
                .peek()
                .map(|r| r.entry.timestamp_ns)
                .unwrap_or_default()
        })
    }

    fn could_enter(&self, ts: i64) -> bool {
        match self.cut() {
            None => true,
            Some(cut) if self.backward => ts >= cut,
            Some(cut) => ts <= cut,
        }
    }
}

impl LogVisitor for LogCollector<'_> {
    fn visit(&mut self, row: LogRowRef<'_>) {
        if self.timed_out {
            return;
        }
        if self.deadline.tick() {
            self.timed_out = true;
            return;
        }
        // The pipeline never moves an entry in time, so a row that cannot beat the heap's worst
        // entry is skipped before paying for the pipeline.
        if !self.could_enter(row.timestamp_ns) {
            return;
        }
        let Some(stream) = self.source.stream_labels(row.stream_id) else {
            return;
        };
        self.md_bytes += scan::metadata_bytes(row.structured_metadata);
        let md = scan::parse_metadata(row.structured_metadata);
        let Some(entry) = self
            .pipeline
            .process(row.timestamp_ns, row.line, stream, &md)
        else {
            return;
        };
        self.post_filter += 1;
        self.heap.push(Ranked {
            entry,
            backward: self.backward,
        });
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }

    fn wants(&self, min_ns: i64, max_ns: i64) -> bool {
        if self.timed_out {
            return false;
        }
        match self.cut() {
            None => true,
            Some(cut) if self.backward => max_ns >= cut,
            Some(cut) => min_ns <= cut,
        }
    }
}

/// Runs a log query over `[start, end)` (Loki's chunk iterators exclude the end), returning at
/// most `limit` entries in the requested direction.
pub(super) fn select(
    ctx: &mut Ctx<'_>,
    q: &LogExpr,
    time: &QueryTime,
) -> Result<Vec<LogEntry>, QueryError> {
    if time.limit == 0 {
        return Ok(Vec::new());
    }
    let pipeline = Pipeline::new(&q.pipeline).map_err(QueryError::Invalid)?;
    let start = time.start_ns;
    let end = if time.end_ns > start {
        time.end_ns - 1
    } else {
        start
    };
    let source = Source::new(ctx, q, start, end)?;
    let mut collector = LogCollector {
        source: &source,
        pipeline: &pipeline,
        limit: time.limit,
        backward: time.direction == Direction::Backward,
        heap: BinaryHeap::with_capacity(time.limit.min(1 << 16) + 1),
        deadline: Deadline::new(ctx.limits.deadline),
        timed_out: false,
        post_filter: 0,
        md_bytes: 0,
    };
    let stats = source.scan(ctx, time.direction, &mut collector)?;
    scan::add_scan_stats(ctx, &stats, collector.post_filter, collector.md_bytes);
    if collector.timed_out {
        return Err(scan::timeout());
    }
    // Ascending in the heap's order is the requested direction: oldest first forward, newest
    // first backward.
    Ok(collector
        .heap
        .into_sorted_vec()
        .into_iter()
        .map(|r| r.entry)
        .collect())
}
