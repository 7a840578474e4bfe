//! What both query kinds need around a store scan: stream selection, the line test pushed into
//! the scan, structured metadata decoding, the deadline and the statistics.

use std::collections::HashMap;
use std::time::Instant;

use seam_model::{Labels, Signal};
use seam_store::{Direction, LogScan, LogVisitor, ScanStats};

use super::super::ast::{LineFilterOp, LogExpr, Stage};
use super::super::pipeline::Pipeline;
use super::{Ctx, QueryError};

/// Loki's answer when a query runs past its deadline (`server.ErrDeadlineExceeded`).
const TIMEOUT_MESSAGE: &str = "request timed out, decrease the duration of the request \
     or add more label matchers (prefer exact match over regex match) to reduce the amount of \
     data processed";

/// The error of a query that ran past its deadline.
pub(super) fn timeout() -> QueryError {
    QueryError::Timeout(TIMEOUT_MESSAGE.into())
}

/// How many rows a visitor handles between two looks at the clock.
const DEADLINE_EVERY: u32 = 1024;

/// The rows a log selector picks over a time range: its streams, and the line filters of its
/// pipeline that run inside the store scan. Both query kinds read the store through it.
pub(super) struct Source {
    /// The selected streams, sorted by id.
    streams: Vec<(u64, Labels)>,
    ids: Vec<u64>,
    test: LineTest,
    start_ns: i64,
    end_ns: i64,
}

impl Source {
    /// Compiles the pushed-down line filters of `log` and selects its streams with data in
    /// `[start_ns, end_ns]`.
    pub(super) fn new(
        ctx: &Ctx<'_>,
        log: &LogExpr,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Source, QueryError> {
        let test = LineTest::new(&log.pipeline)?;
        let matchers = log
            .matchers
            .iter()
            .map(|m| {
                m.to_label_matcher()
                    .map_err(|e| QueryError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let streams =
            ctx.store
                .select_series(ctx.tenant, Signal::Logs, &matchers, start_ns, end_ns);
        let ids = streams.iter().map(|(id, _)| *id).collect();
        Ok(Source {
            streams,
            ids,
            test,
            start_ns,
            end_ns,
        })
    }

    /// The labels of a selected stream.
    pub(super) fn stream_labels(&self, id: u64) -> Option<&Labels> {
        self.streams
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|i| &self.streams[i].1)
    }

    /// Streams the rows of the selected streams in `[start_ns, end_ns]` that pass the line test
    /// through `visitor`, roughly in `direction` order.
    pub(super) fn scan(
        &self,
        ctx: &Ctx<'_>,
        direction: Direction,
        visitor: &mut dyn LogVisitor,
    ) -> Result<ScanStats, QueryError> {
        let keep = |line: &str| self.test.keep(line);
        let spec = LogScan {
            stream_ids: &self.ids,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            required_substrings: self.test.required.clone(),
            keep_line: &keep,
            direction,
        };
        Ok(ctx.store.visit_logs(ctx.tenant, &spec, visitor)?)
    }
}

/// The line filters a pipeline lets run inside the store scan (`Pipeline::pushdown`), compiled
/// as a pipeline of their own. The full pipeline applies them again; running them early saves
/// decoding and processing work for lines that fail.
struct LineTest {
    filters: Option<Pipeline>,
    /// Substrings every kept line contains, for the store's token filter: the positive `|=`
    /// filters without alternatives.
    required: Vec<Vec<u8>>,
}

impl LineTest {
    /// Compiles the pushed-down filters of `stages`.
    fn new(stages: &[Stage]) -> Result<LineTest, QueryError> {
        let filters = Pipeline::pushdown(stages);
        let required = filters
            .iter()
            .filter(|f| f.op == LineFilterOp::Contains && f.or.is_empty() && !f.pattern.is_empty())
            .map(|f| f.pattern.as_bytes().to_vec())
            .collect();
        let filters = if filters.is_empty() {
            None
        } else {
            let stages: Vec<Stage> = filters.into_iter().map(Stage::LineFilter).collect();
            Some(Pipeline::new(&stages).map_err(QueryError::Invalid)?)
        };
        Ok(LineTest { filters, required })
    }

    /// Whether a line passes every pushed-down filter. The pipeline holds only line filters,
    /// so testing them alone decides it without copying the line into an entry.
    fn keep(&self, line: &str) -> bool {
        self.filters
            .as_ref()
            .is_none_or(|p| p.line_filters_keep(line))
    }
}

/// Decodes the store's structured metadata column (a JSON object of strings).
pub(super) fn parse_metadata(json: &str) -> Labels {
    if json.len() <= 2 {
        return Labels::default();
    }
    match serde_json::from_str::<HashMap<String, String>>(json) {
        Ok(m) => Labels::from_pairs(m),
        Err(_) => Labels::default(),
    }
}

/// Watches the clock from inside a visitor without reading it on every row.
pub(super) struct Deadline {
    at: Option<Instant>,
    rows: u32,
}

impl Deadline {
    /// A watch on `at` (none: never expires).
    pub(super) fn new(at: Option<Instant>) -> Deadline {
        Deadline { at, rows: 0 }
    }

    /// Counts one row; true once the deadline has passed (checked every few rows).
    pub(super) fn tick(&mut self) -> bool {
        self.rows += 1;
        if self.rows < DEADLINE_EVERY {
            return false;
        }
        self.rows = 0;
        self.at.is_some_and(|d| Instant::now() >= d)
    }
}

/// Adds what a scan did to the query's statistics.
pub(super) fn add_scan_stats(ctx: &mut Ctx<'_>, s: &ScanStats, post_filter: u64, md_bytes: u64) {
    ctx.stats.lines_processed += s.rows_scanned;
    ctx.stats.bytes_processed += s.bytes_scanned;
    ctx.stats.post_filter_lines += post_filter;
    ctx.stats.structured_metadata_bytes += md_bytes;
    ctx.stats.compressed_bytes_read += s.bytes_read;
    ctx.stats.chunks_ref += s.row_groups_read + s.row_groups_pruned;
    ctx.stats.chunks_downloaded += s.row_groups_read;
}

/// The structured metadata bytes a row carries (nothing for the empty object).
pub(super) fn metadata_bytes(json: &str) -> u64 {
    if json.len() <= 2 {
        0
    } else {
        json.len() as u64
    }
}
