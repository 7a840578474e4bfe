//! Immutable Parquet segments: how a frozen head becomes a file, and how a read finds its rows in
//! one without decoding the whole file.

use std::fs::{self, File};
use std::path::Path;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::{filter_record_batch, interleave_record_batch};
use arrow::datatypes::{Int64Type, UInt64Type};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use seam_model::{Labels, Signal, TraceId};

use crate::catalog::{SeriesEntry, TraceIndexEntry};
use crate::schema::{self, log_col, sample_col, span_col};
use crate::token_filter::{self, FilterBuilder};
use crate::StoreError;

pub use crate::segment_read::{read, RowSelection};
use crate::segment_read::{series_mask, trace_mask};

/// Rows per row group: small enough that a trace or stream lookup decodes little, large enough
/// that zstd and dictionaries work well.
const ROW_GROUP_ROWS: usize = 32 * 1024;

/// Rows per data page of span segments. A trace lookup decodes the `trace_id` column of a row
/// group, then only the pages of the other columns that hold the trace's rows (the offset index
/// says where each page starts), so small pages make it decode a few thousand rows instead of a
/// whole row group.
const SPAN_PAGE_ROWS: usize = 1024;

/// What writing a segment produced, for the catalog.
pub struct WrittenSegment {
    /// Rows written.
    pub rows: usize,
    /// File size.
    pub bytes: u64,
    /// Smallest row time (ns).
    pub min_time_ns: i64,
    /// Largest row time (ns).
    pub max_time_ns: i64,
    /// Traces in the file (span signal only).
    pub traces: Vec<TraceIndexEntry>,
    /// Streams or series in the file (log and metric signals).
    pub series: Vec<SeriesEntry>,
    /// Bytes of log line token filters in the file (logs only).
    pub filter_bytes: u64,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

/// Columns whose values rarely repeat.
const UNIQUE_COLUMNS: &[&str] = &[
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "attributes_proto",
    "events_proto",
    "links_proto",
    "timestamp_ns",
    "line",
    "structured_metadata",
    "timestamp_ms",
    "value",
];

/// Columns whose statistics no read uses.
const UNSORTABLE_COLUMNS: &[&str] = &[
    "parent_span_id",
    "trace_state",
    "attributes_proto",
    "events_proto",
    "links_proto",
    "resource_proto",
    "scope_proto",
    "status_message",
    "line",
    "structured_metadata",
    "labels",
];

/// A row's place in the sort order: key (trace id, or stream/series id), time, then where it is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    key: [u8; 16],
    time: i64,
    batch: u32,
    row: u32,
}

/// Sort keys of every row, sorted for the signal's access path: spans by trace id then start;
/// logs by stream then time; samples by series then time.
fn sorted_keys(signal: Signal, batches: &[RecordBatch]) -> Vec<SortKey> {
    let (id_col, t_col) = schema::key_time_cols(signal);
    let mut keys = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for (bi, b) in batches.iter().enumerate() {
        let t = b.column(t_col).as_primitive::<Int64Type>();
        match signal {
            Signal::Traces => {
                let ids = b.column(id_col).as_fixed_size_binary();
                for r in 0..b.num_rows() {
                    let key = <[u8; 16]>::try_from(ids.value(r)).expect("16-byte column");
                    keys.push(SortKey {
                        key,
                        time: t.value(r),
                        batch: bi as u32,
                        row: r as u32,
                    });
                }
            }
            Signal::Logs | Signal::Metrics => {
                let ids = b.column(id_col).as_primitive::<UInt64Type>();
                for r in 0..b.num_rows() {
                    let mut key = [0u8; 16];
                    key[..8].copy_from_slice(&ids.value(r).to_be_bytes());
                    keys.push(SortKey {
                        key,
                        time: t.value(r),
                        batch: bi as u32,
                        row: r as u32,
                    });
                }
            }
        }
    }
    keys.sort_unstable();
    keys
}

/// Writes `batches` sorted for the signal's access path to `path`, durably: to a temp name,
/// fsync, rename, fsync the directory. Rows are gathered one row group at a time, so the extra
/// memory a flush needs is one row group, not a second copy of the head.
pub fn write(
    path: &Path,
    signal: Signal,
    batches: &[RecordBatch],
) -> Result<WrittenSegment, StoreError> {
    let schema = schema::schema(signal);
    let keys = sorted_keys(signal, batches);
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    if signal == Signal::Traces {
        props = props
            .set_data_page_row_count_limit(SPAN_PAGE_ROWS)
            .set_write_batch_size(SPAN_PAGE_ROWS);
    }
    if signal == Signal::Traces || signal == Signal::Logs {
        props = props
            .set_column_bloom_filter_enabled(ColumnPath::from("trace_id"), true)
            .set_column_bloom_filter_fpp(ColumnPath::from("trace_id"), 0.01);
    }
    // Dictionaries pay off only for repetitive columns; on near-unique ones the encoder would
    // hash and compare every value for nothing.
    for col in UNIQUE_COLUMNS {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*col), false);
    }
    // Min/max of opaque blobs and free text prune nothing, and computing them compares every value.
    for col in UNSORTABLE_COLUMNS {
        props =
            props.set_column_statistics_enabled(ColumnPath::from(*col), EnabledStatistics::None);
    }
    let tmp = path.with_extension("parquet.tmp");
    let dir = path.parent().expect("segment paths have a directory");
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props.build()))
        .map_err(|e| io_err(&tmp, e))?;
    let sources: Vec<&RecordBatch> = batches.iter().collect();
    let mut out = WrittenSegment {
        rows: keys.len(),
        bytes: 0,
        min_time_ns: i64::MAX,
        max_time_ns: i64::MIN,
        traces: Vec::new(),
        series: Vec::new(),
        filter_bytes: 0,
    };
    let mut line_filters: Vec<String> = Vec::new();
    let mut filter = FilterBuilder::new();
    let mut series: Vec<SeriesEntry> = Vec::new();
    let (scale, labels_col) = match signal {
        Signal::Metrics => (1_000_000, sample_col::LABELS),
        _ => (1, log_col::LABELS),
    };
    for chunk in keys.chunks(ROW_GROUP_ROWS) {
        let idx: Vec<(usize, usize)> = chunk
            .iter()
            .map(|k| (k.batch as usize, k.row as usize))
            .collect();
        let rb = interleave_record_batch(&sources, &idx).map_err(|e| io_err(&tmp, e))?;
        writer.write(&rb).map_err(|e| io_err(&tmp, e))?;
        // One chunk is one row group, so its token filter can follow it in the file.
        writer.flush().map_err(|e| io_err(&tmp, e))?;
        if signal == Signal::Logs {
            for line in rb.column(log_col::LINE).as_string::<i32>().iter() {
                filter.add_line(line.unwrap_or_default().as_bytes());
            }
            let bytes = filter.finish();
            let offset = writer.bytes_written();
            writer.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
            line_filters.push(format!("{offset}:{}", bytes.len()));
            out.filter_bytes += bytes.len() as u64;
        }
        for (i, k) in chunk.iter().enumerate() {
            let t = k.time.saturating_mul(scale);
            out.min_time_ns = out.min_time_ns.min(t);
            out.max_time_ns = out.max_time_ns.max(t);
            match signal {
                Signal::Traces => match out.traces.last_mut() {
                    Some(last) if last.trace_id.0 == k.key => last.end_ns = last.end_ns.max(t),
                    _ => out.traces.push(TraceIndexEntry {
                        trace_id: TraceId(k.key),
                        start_ns: t,
                        end_ns: t,
                    }),
                },
                Signal::Logs | Signal::Metrics => {
                    let id = u64::from_be_bytes(k.key[..8].try_into().expect("8 bytes"));
                    match series.last_mut() {
                        Some(last) if last.id == id => last.max_time_ns = last.max_time_ns.max(t),
                        _ => {
                            let labels =
                                parse_labels(rb.column(labels_col).as_string::<i32>().value(i));
                            series.push(SeriesEntry {
                                id,
                                labels,
                                min_time_ns: t,
                                max_time_ns: t,
                            });
                        }
                    }
                }
            }
        }
    }
    out.series = series;
    if signal == Signal::Logs {
        writer.append_key_value_metadata(KeyValue::new(
            crate::segment_read::LINE_FILTER_KEY.to_string(),
            format!("{};{}", token_filter::SCHEME, line_filters.join(",")),
        ));
    }
    let file = writer.into_inner().map_err(|e| io_err(&tmp, e))?;
    file.sync_all().map_err(|e| io_err(&tmp, e))?;
    out.bytes = file.metadata().map_err(|e| io_err(&tmp, e))?.len();
    drop(file);
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_dir(dir)?;
    tracing::info!(
        path = %path.display(),
        rows = out.rows,
        bytes = out.bytes,
        token_filter_bytes = out.filter_bytes,
        "segment written"
    );
    Ok(out)
}

/// Fsyncs a directory so a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Parses the `{a="1", b="2"}` text the label columns hold (written by [`Labels`]'s Display, which
/// quotes values with Rust's escaping).
pub fn parse_labels(s: &str) -> Labels {
    let mut pairs = Vec::new();
    let b = s.trim();
    let inner = b
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(b);
    let mut rest = inner;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = rest.len() - eq - 2;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, '0')) => value.push('\0'),
                    Some((_, 'u')) => {
                        // Rust's Debug writes other control characters as \u{XX}.
                        let hex: String = chars
                            .by_ref()
                            .map(|(_, c)| c)
                            .take_while(|c| *c != '}')
                            .collect();
                        if let Some(c) = u32::from_str_radix(hex.trim_start_matches('{'), 16)
                            .ok()
                            .and_then(char::from_u32)
                        {
                            value.push(c);
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => {}
                },
                '"' => {
                    end = i;
                    break;
                }
                c => value.push(c),
            }
        }
        pairs.push((name, value));
        rest = &rest[(eq + 2 + end + 1).min(rest.len())..];
    }
    Labels::from_pairs(pairs)
}

/// Keeps the rows of a batch (from a segment or the head) that a selection wants.
pub fn filter_rows(batch: &RecordBatch, signal: Signal, sel: &RowSelection<'_>) -> RecordBatch {
    let mask: BooleanArray = match sel {
        RowSelection::Trace(id) => {
            trace_mask(batch.column(span_col::TRACE_ID).as_fixed_size_binary(), id)
        }
        RowSelection::Series { ids, start, end } => {
            let (id_col, t_col) = schema::key_time_cols(signal);
            series_mask(
                batch.column(id_col).as_primitive::<UInt64Type>().values(),
                batch.column(t_col).as_primitive::<Int64Type>().values(),
                ids,
                *start,
                *end,
            )
        }
    };
    if mask.true_count() == batch.num_rows() {
        return batch.clone();
    }
    filter_record_batch(batch, &mask).expect("mask has the batch's length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_text_round_trips() {
        let l = Labels::from_pairs([
            ("a", "x\"y"),
            ("b", "line\nbreak\\"),
            ("c", "plain, {b=\"c\"}"),
        ]);
        assert_eq!(parse_labels(&l.to_string()), l);
        assert_eq!(parse_labels("{}"), Labels::default());
    }
}
