//! Reading segments: footers parsed once and cached, row groups chosen from statistics, bloom and
//! token filters, and only the wanted columns and pages decoded, every byte read counted.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use arrow::error::ArrowError;
use bytes::Bytes;
use parking_lot::Mutex;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    RowFilter, RowSelection as Rows,
};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::reader::{ChunkReader, Length};
use seam_model::{Signal, TraceId};

use crate::schema::{self, span_col};
use crate::token_filter::{self, Probe};
use crate::StoreError;

/// Footer key of the log token filters: `<scheme>;<offset>:<bytes>,<offset>:<bytes>,...`, one
/// pair per row group, offsets absolute in the file.
pub const LINE_FILTER_KEY: &str = "seam.line_filter";

/// Rows per decoded batch. Batches of a few MB are recycled by the allocator; decoding a whole
/// row group into one batch mapped fresh pages for every group (a fifth of a scan's time went to
/// page faults).
const DECODE_BATCH_ROWS: usize = 4096;

/// Footers kept in memory; past this many the cache starts over (segments are immutable, so a
/// cached footer is only ever stale when its file was replaced, which the length and mtime catch).
const CACHE_ENTRIES: usize = 1024;

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

/// What a segment's footer says, parsed once.
struct Footer {
    arrow: ArrowReaderMetadata,
    /// Per row group: where its line token filter is (offset, bytes); empty when the file has
    /// none or a scheme this build does not know.
    line_filters: Vec<(u64, u64)>,
    /// The file's length and mtime when parsed.
    stamp: (u64, Option<SystemTime>),
}

fn cache() -> &'static Mutex<HashMap<PathBuf, Arc<Footer>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Footer>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A file read through positional reads (so threads can share it) that counts the bytes read.
#[derive(Clone)]
struct CountingFile {
    file: Arc<File>,
    len: u64,
    read: Arc<AtomicU64>,
}

impl CountingFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)?;
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl Length for CountingFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader at a position of a [`CountingFile`].
struct PosReader {
    src: CountingFile,
    pos: u64,
}

impl Read for PosReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.src.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        self.src.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl ChunkReader for CountingFile {
    type T = PosReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<PosReader> {
        Ok(PosReader {
            src: self.clone(),
            pos: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buf = vec![0u8; length];
        self.read_at(start, &mut buf)?;
        Ok(buf.into())
    }
}

/// An open segment file with its (cached) footer.
pub struct SegmentFile {
    path: PathBuf,
    src: CountingFile,
    footer: Arc<Footer>,
}

/// Which rows of a segment a read wants.
pub enum RowSelection<'a> {
    /// The spans of one trace.
    Trace(&'a TraceId),
    /// Rows of these streams or series (sorted ids) within `[start, end]` in the column's unit.
    Series {
        /// Sorted, unique ids.
        ids: &'a [u64],
        /// Range start, inclusive.
        start: i64,
        /// Range end, inclusive.
        end: i64,
    },
}

/// A row group a series read wants.
#[derive(Clone, Copy, Debug)]
pub struct GroupPlan {
    /// Row group index.
    pub index: usize,
    /// Smallest and largest row time in the group (column unit), clamped to the range read.
    pub min_time: i64,
    /// See `min_time`.
    pub max_time: i64,
    /// Every row of the group is wanted (one wanted stream, entirely inside the range): no row
    /// filter is needed.
    pub covered: bool,
}

fn parse_line_filters(arrow: &ArrowReaderMetadata) -> Vec<(u64, u64)> {
    let Some(v) = arrow
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == LINE_FILTER_KEY))
        .and_then(|k| k.value.as_deref())
    else {
        return Vec::new();
    };
    let Some(list) = v
        .strip_prefix(token_filter::SCHEME)
        .and_then(|r| r.strip_prefix(';'))
    else {
        return Vec::new();
    };
    let parsed: Option<Vec<(u64, u64)>> = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|p| {
            let (o, l) = p.split_once(':')?;
            Some((o.parse().ok()?, l.parse().ok()?))
        })
        .collect();
    match parsed {
        Some(p) if p.len() == arrow.metadata().num_row_groups() => p,
        _ => Vec::new(),
    }
}

impl SegmentFile {
    /// Opens a segment, parsing its footer unless a cached copy is still valid.
    pub fn open(path: &Path) -> Result<SegmentFile, StoreError> {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let md = file.metadata().map_err(|e| io_err(path, e))?;
        let stamp = (md.len(), md.modified().ok());
        let src = CountingFile {
            file: Arc::new(file),
            len: md.len(),
            read: Arc::new(AtomicU64::new(0)),
        };
        let cached = cache().lock().get(path).cloned();
        let footer = match cached {
            Some(f) if f.stamp == stamp => f,
            _ => {
                // The offset index lets a row filter skip whole pages; the column index (page
                // min/max) lets a trace lookup pick the pages of its trace id before decoding.
                let opts =
                    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
                let arrow = ArrowReaderMetadata::load(&src, opts).map_err(|e| io_err(path, e))?;
                let line_filters = parse_line_filters(&arrow);
                // The bytes read to parse it stay on this handle's count.
                let f = Arc::new(Footer {
                    arrow,
                    line_filters,
                    stamp,
                });
                let mut c = cache().lock();
                if c.len() >= CACHE_ENTRIES {
                    c.clear();
                }
                c.insert(path.to_path_buf(), f.clone());
                f
            }
        };
        Ok(SegmentFile {
            path: path.to_path_buf(),
            src,
            footer,
        })
    }

    /// Bytes read from the file through this handle so far.
    pub fn bytes_read(&self) -> u64 {
        self.src.read.load(Ordering::Relaxed)
    }

    /// The file's size.
    pub fn file_bytes(&self) -> u64 {
        self.src.len
    }

    /// Number of row groups.
    pub fn row_groups(&self) -> usize {
        self.footer.arrow.metadata().num_row_groups()
    }

    /// Rows in one row group.
    pub fn group_rows(&self, index: usize) -> usize {
        self.footer.arrow.metadata().row_group(index).num_rows() as usize
    }

    fn stats(&self, col: &str) -> Result<(ArrayRef, ArrayRef), StoreError> {
        let meta = self.footer.arrow.metadata();
        let c = StatisticsConverter::try_new(
            col,
            self.footer.arrow.schema(),
            self.footer.arrow.parquet_schema(),
        )
        .map_err(|e| io_err(&self.path, e))?;
        let groups = meta.row_groups();
        Ok((
            c.row_group_mins(groups.iter())
                .map_err(|e| io_err(&self.path, e))?,
            c.row_group_maxes(groups.iter())
                .map_err(|e| io_err(&self.path, e))?,
        ))
    }

    /// The row groups that may hold rows of the sorted `ids` within `[start, end]` (in the time
    /// column's unit), by their statistics.
    pub fn plan_series(
        &self,
        signal: Signal,
        ids: &[u64],
        start: i64,
        end: i64,
    ) -> Result<Vec<GroupPlan>, StoreError> {
        let (id_col, t_col) = schema::key_time_cols(signal);
        let fields = schema::schema(signal);
        let (id_min, id_max) = self.stats(fields.field(id_col).name())?;
        let (t_min, t_max) = self.stats(fields.field(t_col).name())?;
        let (id_min, id_max) = (
            id_min.as_primitive::<UInt64Type>(),
            id_max.as_primitive::<UInt64Type>(),
        );
        let (t_min, t_max) = (
            t_min.as_primitive::<Int64Type>(),
            t_max.as_primitive::<Int64Type>(),
        );
        let mut out = Vec::new();
        for g in 0..self.row_groups() {
            let (lo, hi) = if t_min.is_null(g) || t_max.is_null(g) {
                (i64::MIN, i64::MAX)
            } else {
                (t_min.value(g), t_max.value(g))
            };
            if lo > end || hi < start {
                continue;
            }
            let covered_ids = if id_min.is_null(g) || id_max.is_null(g) {
                false
            } else {
                let (a, b) = (id_min.value(g), id_max.value(g));
                let first = ids.partition_point(|x| *x < a);
                if first == ids.len() || ids[first] > b {
                    continue;
                }
                a == b
            };
            out.push(GroupPlan {
                index: g,
                min_time: lo.max(start),
                max_time: hi.min(end),
                covered: covered_ids && lo >= start && hi <= end,
            });
        }
        Ok(out)
    }

    /// Whether row group `index`'s line token filter may hold every gram of `probe`. Reads only
    /// the filter words the probe needs.
    pub fn may_contain(&self, index: usize, probe: &Probe) -> Result<bool, StoreError> {
        let Some(&(offset, len)) = self.footer.line_filters.get(index) else {
            return Ok(true);
        };
        probe.may_match_words((len / 8) as usize, |w| {
            let mut buf = [0u8; 8];
            self.src
                .read_at(offset + w as u64 * 8, &mut buf)
                .map_err(|e| io_err(&self.path, e))?;
            Ok(u64::from_le_bytes(buf))
        })
    }

    /// Whether row group `index` may hold spans of `trace_id`, by its statistics and bloom filter.
    fn may_hold_trace(
        &self,
        index: usize,
        trace_id: &TraceId,
        bounds: &(ArrayRef, ArrayRef),
    ) -> Result<bool, StoreError> {
        let (mins, maxs) = (
            bounds.0.as_fixed_size_binary(),
            bounds.1.as_fixed_size_binary(),
        );
        let id = &trace_id.0[..];
        if !(mins.is_null(index) || (mins.value(index) <= id && id <= maxs.value(index))) {
            return Ok(false);
        }
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.src.clone(),
            self.footer.arrow.clone(),
        );
        let bloom = builder
            .get_row_group_column_bloom_filter(index, span_col::TRACE_ID)
            .map_err(|e| io_err(&self.path, e))?;
        Ok(bloom.is_none_or(|b| b.check(id)))
    }

    /// The rows of row group `index` on the `trace_id` pages whose min/max admit `trace_id` (span
    /// segments are sorted by trace id, so usually one or two pages); `None` without a page index.
    fn trace_pages(&self, index: usize, trace_id: &TraceId) -> Option<Rows> {
        let pages = self.footer.arrow.metadata().page_index_for_row_group(index);
        let Some(ColumnIndexMetaData::FIXED_LEN_BYTE_ARRAY(ci)) =
            pages.column_index(span_col::TRACE_ID)
        else {
            return None;
        };
        let locations = pages.offset_index(span_col::TRACE_ID)?.page_locations();
        let rows = self.group_rows(index);
        let id = &trace_id.0[..];
        let ranges = (0..locations.len()).filter_map(|p| {
            let (lo, hi) = (ci.min_value(p), ci.max_value(p));
            let admits = match (lo, hi) {
                (Some(lo), Some(hi)) => lo <= id && id <= hi,
                _ => true,
            };
            let start = locations[p].first_row_index as usize;
            let end = locations
                .get(p + 1)
                .map_or(rows, |l| l.first_row_index as usize);
            admits.then_some(start..end)
        });
        Some(Rows::from_consecutive_ranges(ranges, rows))
    }

    /// Decodes the `columns` (root indices, in schema order) of the rows of a planned row group
    /// (from [`SegmentFile::plan_series`]) of the sorted `ids` within `[start, end]` (in the time
    /// column's unit). A covered group is decoded whole; otherwise pages holding no wanted row
    /// are not decoded.
    pub fn decode_series(
        &self,
        signal: Signal,
        plan: &GroupPlan,
        columns: &[usize],
        ids: &Arc<[u64]>,
        start: i64,
        end: i64,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let (id_col, t_col) = schema::key_time_cols(signal);
        let filter_cols = [id_col, t_col];
        let filter = (!plan.covered).then(|| {
            let ids = ids.clone();
            let pred: RowPredicate = Box::new(move |b: RecordBatch| {
                let sid = b.column(0).as_primitive::<UInt64Type>();
                let ts = b.column(1).as_primitive::<Int64Type>();
                Ok(series_mask(sid.values(), ts.values(), &ids, start, end))
            });
            (&filter_cols[..], pred)
        });
        self.decode_rows(plan.index, columns, None, filter)
    }

    /// Decodes row group `index`: the `columns` (root indices, in schema order), and only the rows
    /// `filter` keeps (its arrays are the filter columns, in schema order) among those `rows`
    /// selects. Pages holding no kept row are not decoded.
    fn decode_rows(
        &self,
        index: usize,
        columns: &[usize],
        rows: Option<Rows>,
        filter: Option<(&[usize], RowPredicate)>,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let schema = self.footer.arrow.parquet_schema();
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.src.clone(),
            self.footer.arrow.clone(),
        )
        .with_row_groups(vec![index])
        .with_batch_size(DECODE_BATCH_ROWS)
        .with_projection(ProjectionMask::roots(schema, columns.iter().copied()));
        if let Some(rows) = rows {
            if !rows.selects_any() {
                return Ok(Vec::new());
            }
            builder = builder.with_row_selection(rows);
        }
        if let Some((cols, f)) = filter {
            let mask = ProjectionMask::roots(schema, cols.iter().copied());
            builder = builder.with_row_filter(RowFilter::new(vec![Box::new(
                ArrowPredicateFn::new(mask, f),
            )]));
        }
        let reader = builder.build().map_err(|e| io_err(&self.path, e))?;
        let mut out = Vec::new();
        for b in reader {
            let b = b.map_err(|e| io_err(&self.path, e))?;
            if b.num_rows() > 0 {
                out.push(b);
            }
        }
        Ok(out)
    }
}

/// A row test run by the Parquet reader on the filter columns.
type RowPredicate =
    Box<dyn FnMut(RecordBatch) -> Result<BooleanArray, ArrowError> + Send + 'static>;

/// The rows whose trace id is `trace_id`.
pub fn trace_mask(ids: &FixedSizeBinaryArray, trace_id: &TraceId) -> BooleanArray {
    (0..ids.len())
        .map(|i| Some(ids.value(i) == &trace_id.0[..]))
        .collect()
}

/// The rows whose id is in the sorted `ids` and whose time is within `[start, end]`.
pub fn series_mask(sid: &[u64], ts: &[i64], ids: &[u64], start: i64, end: i64) -> BooleanArray {
    // Rows come sorted by id, so the last answer is usually the next one.
    let mut last: Option<(u64, bool)> = None;
    sid.iter()
        .zip(ts)
        .map(|(id, t)| {
            let hit = match last {
                Some((l, h)) if l == *id => h,
                _ => {
                    let h = ids.binary_search(id).is_ok();
                    last = Some((*id, h));
                    h
                }
            };
            Some(hit && *t >= start && *t <= end)
        })
        .collect()
}

/// Reads the rows a selection wants from one segment file, skipping row groups whose statistics
/// (and, for traces, bloom filter) rule them out, and decoding only the pages that hold them.
pub fn read(
    path: &Path,
    signal: Signal,
    sel: &RowSelection<'_>,
) -> Result<Vec<RecordBatch>, StoreError> {
    let seg = SegmentFile::open(path)?;
    match sel {
        RowSelection::Trace(id) => seg.read_trace(id),
        RowSelection::Series { ids, start, end } => seg.read_series(signal, ids, *start, *end),
    }
}

impl SegmentFile {
    /// Every column of the spans of `trace_id` in this (span) segment.
    pub fn read_trace(&self, trace_id: &TraceId) -> Result<Vec<RecordBatch>, StoreError> {
        let all: Vec<usize> = (0..schema::schema(Signal::Traces).fields().len()).collect();
        let bounds = self.stats("trace_id")?;
        let mut out = Vec::new();
        for g in 0..self.row_groups() {
            if !self.may_hold_trace(g, trace_id, &bounds)? {
                continue;
            }
            let want = *trace_id;
            let pred: RowPredicate = Box::new(move |b: RecordBatch| {
                Ok(trace_mask(b.column(0).as_fixed_size_binary(), &want))
            });
            let pages = self.trace_pages(g, trace_id);
            out.extend(self.decode_rows(g, &all, pages, Some((&[span_col::TRACE_ID], pred)))?);
        }
        Ok(out)
    }

    /// Every column of the spans of any of the sorted, unique `ids` in this (span) segment: one
    /// pass over the row groups, each checked against its statistics and bloom filter once. One
    /// id reads only the pages that hold it ([`SegmentFile::read_trace`]).
    pub fn read_traces(&self, ids: &[TraceId]) -> Result<Vec<RecordBatch>, StoreError> {
        if let [one] = ids {
            return self.read_trace(one);
        }
        let all: Vec<usize> = (0..schema::schema(Signal::Traces).fields().len()).collect();
        let (mins, maxs) = self.stats("trace_id")?;
        let (mins, maxs) = (mins.as_fixed_size_binary(), maxs.as_fixed_size_binary());
        let wanted: Arc<std::collections::HashSet<[u8; 16]>> =
            Arc::new(ids.iter().map(|t| t.0).collect());
        let mut out = Vec::new();
        for g in 0..self.row_groups() {
            let in_range: &[TraceId] = if mins.is_null(g) {
                ids
            } else {
                let lo = ids.partition_point(|t| &t.0[..] < mins.value(g));
                let hi = ids.partition_point(|t| &t.0[..] <= maxs.value(g));
                &ids[lo..hi.max(lo)]
            };
            if in_range.is_empty() {
                continue;
            }
            let bloom = ParquetRecordBatchReaderBuilder::new_with_metadata(
                self.src.clone(),
                self.footer.arrow.clone(),
            )
            .get_row_group_column_bloom_filter(g, span_col::TRACE_ID)
            .map_err(|e| io_err(&self.path, e))?;
            if bloom.is_some_and(|b| !in_range.iter().any(|t| b.check(&t.0[..]))) {
                continue;
            }
            let wanted = wanted.clone();
            let pred: RowPredicate = Box::new(move |b: RecordBatch| {
                let col = b.column(0).as_fixed_size_binary();
                Ok((0..col.len())
                    .map(|i| {
                        Some(
                            <[u8; 16]>::try_from(col.value(i)).is_ok_and(|id| wanted.contains(&id)),
                        )
                    })
                    .collect())
            });
            out.extend(self.decode_rows(g, &all, None, Some((&[span_col::TRACE_ID], pred)))?);
        }
        Ok(out)
    }

    /// Every column of the rows of the sorted `ids` within `[start, end]` (in the time column's
    /// unit) in this log or sample segment.
    pub fn read_series(
        &self,
        signal: Signal,
        ids: &[u64],
        start: i64,
        end: i64,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let all: Vec<usize> = (0..schema::schema(signal).fields().len()).collect();
        let shared: Arc<[u64]> = Arc::from(ids);
        let mut out = Vec::new();
        for plan in self.plan_series(signal, ids, start, end)? {
            out.extend(self.decode_series(signal, &plan, &all, &shared, start, end)?);
        }
        Ok(out)
    }
}
