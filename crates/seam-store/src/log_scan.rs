//! The streaming log scan the LogQL engine runs on: every row of some streams in a time range
//! whose line passes a test, handed to a visitor that may say which times it still wants (so a
//! `limit`ed query stops reading once nothing older or newer can make the cut).

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use seam_model::{Signal, Tenant};

use crate::read::Direction;
use crate::schema::log_col;
use crate::segment::{self, RowSelection};
use crate::store::Store;
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
    /// Structured metadata as a JSON object of strings (`{}` when none).
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
}

impl Store {
    /// Streams the log rows of `scan` to `visitor`. Blocking.
    pub fn visit_logs(
        &self,
        tenant: &Tenant,
        scan: &LogScan<'_>,
        visitor: &mut dyn LogVisitor,
    ) -> Result<ScanStats, StoreError> {
        let mut stats = ScanStats::default();
        if scan.stream_ids.is_empty() {
            return Ok(stats);
        }
        let (head, segs) = self.snapshot(tenant, Signal::Logs, |p| {
            p.chunks_for_series(scan.stream_ids, scan.start_ns, scan.end_ns)
        });
        let sel = RowSelection::Series {
            ids: scan.stream_ids,
            start: scan.start_ns,
            end: scan.end_ns,
        };
        let mut visit = |b: &RecordBatch, visitor: &mut dyn LogVisitor| {
            let b = segment::filter_rows(b, Signal::Logs, &sel);
            let ids = b.column(log_col::STREAM_ID).as_primitive::<UInt64Type>();
            let ts = b.column(log_col::TIMESTAMP).as_primitive::<Int64Type>();
            let lines = b.column(log_col::LINE).as_string::<i32>();
            let md = b.column(log_col::STRUCTURED_METADATA).as_string::<i32>();
            for i in 0..b.num_rows() {
                let line = lines.value(i);
                stats.rows_scanned += 1;
                stats.bytes_scanned += line.len() as u64;
                if (scan.keep_line)(line) {
                    stats.rows_visited += 1;
                    visitor.visit(LogRowRef {
                        stream_id: ids.value(i),
                        timestamp_ns: ts.value(i),
                        line,
                        structured_metadata: md.value(i),
                    });
                }
            }
        };
        for b in &head {
            visit(b, visitor);
        }
        for meta in crate::read::overlapping(&segs, scan.start_ns, scan.end_ns) {
            if !visitor.wants(
                meta.min_time_ns.max(scan.start_ns),
                meta.max_time_ns.min(scan.end_ns),
            ) {
                continue;
            }
            for b in segment::read(
                &self.inner.cfg.data_dir.join(&meta.rel_path),
                Signal::Logs,
                &sel,
            )? {
                visit(&b, visitor);
            }
        }
        Ok(stats)
    }
}
