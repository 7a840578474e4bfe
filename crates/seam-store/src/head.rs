//! The in-memory head: acknowledged rows of one tenant and signal, held as Arrow record batches in
//! the same layout as the segments, readable as soon as they are acked.

use std::collections::HashMap;
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use seam_model::{Signal, TraceId};

use crate::budget::Reservation;
use crate::schema::{log_col, sample_col, span_col, RowsSummary};

/// One appended record batch and what lets a read skip it.
#[derive(Clone)]
pub struct HeadChunk {
    /// The rows.
    pub batch: RecordBatch,
    /// Time range of the rows (ns).
    pub summary: RowsSummary,
    /// Sorted, unique stream or series ids in the chunk (empty for spans).
    pub series_ids: Vec<u64>,
}

/// The head of one tenant and signal.
pub struct HeadPart {
    /// The signal held.
    pub signal: Signal,
    /// Chunks in append order.
    pub chunks: Vec<HeadChunk>,
    /// For spans: which chunks hold each trace.
    pub trace_chunks: HashMap<TraceId, Vec<u32>>,
    /// Bridges recorded by bridge spans in this head.
    pub edges: Vec<seam_model::traces::TraceEdge>,
    /// Correlation keys of the spans in this head.
    pub keys: Vec<crate::catalog::KeyRow>,
    /// Rows of `keys` by the hash of (key, value), so a lookup reads only its value's rows.
    key_rows: HashMap<u64, Vec<u32>>,
    /// Memory held against the budget.
    pub reservations: Vec<Reservation>,
    /// Bytes of Arrow memory held.
    pub bytes: usize,
    /// Rows held.
    pub rows: usize,
    /// When the first chunk arrived.
    pub created: Instant,
}

impl HeadPart {
    /// An empty head.
    pub fn new(signal: Signal) -> HeadPart {
        HeadPart {
            signal,
            chunks: Vec::new(),
            trace_chunks: HashMap::new(),
            edges: Vec::new(),
            keys: Vec::new(),
            key_rows: HashMap::new(),
            reservations: Vec::new(),
            bytes: 0,
            rows: 0,
            created: Instant::now(),
        }
    }

    /// Adds correlation key rows.
    pub fn add_keys(&mut self, rows: Vec<crate::catalog::KeyRow>) {
        for r in rows {
            let i = self.keys.len() as u32;
            self.key_rows
                .entry(key_hash(&r.key, &r.value))
                .or_default()
                .push(i);
            self.keys.push(r);
        }
    }

    /// The key rows of `key` = `value`.
    pub fn key_rows<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = &'a crate::catalog::KeyRow> + 'a {
        self.key_rows
            .get(&key_hash(key, value))
            .into_iter()
            .flatten()
            .map(|i| &self.keys[*i as usize])
            .filter(move |r| r.key == key && r.value == value)
    }

    /// Adds a chunk built by [`prepare_chunk`].
    pub fn push(&mut self, chunk: HeadChunk, trace_ids: Vec<TraceId>, reservation: Reservation) {
        let idx = self.chunks.len() as u32;
        for t in trace_ids {
            self.trace_chunks.entry(t).or_default().push(idx);
        }
        self.bytes += reservation.bytes();
        self.rows += chunk.batch.num_rows();
        self.reservations.push(reservation);
        self.chunks.push(chunk);
    }

    /// Chunks that may hold rows of `trace_id`.
    pub fn chunks_for_trace(&self, trace_id: &TraceId) -> Vec<RecordBatch> {
        self.trace_chunks
            .get(trace_id)
            .map(|ix| {
                ix.iter()
                    .map(|i| self.chunks[*i as usize].batch.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Chunks that may hold rows of any of `ids`, each once.
    pub fn chunks_for_traces(&self, ids: &[TraceId]) -> Vec<RecordBatch> {
        let mut idx: Vec<u32> = ids
            .iter()
            .filter_map(|id| self.trace_chunks.get(id))
            .flatten()
            .copied()
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx.iter()
            .map(|i| self.chunks[*i as usize].batch.clone())
            .collect()
    }

    /// Chunks that may hold rows of the sorted `ids` within `[start_ns, end_ns]`.
    pub fn chunks_for_series(&self, ids: &[u64], start_ns: i64, end_ns: i64) -> Vec<RecordBatch> {
        self.series_chunks(ids, start_ns, end_ns)
            .map(|c| c.batch.clone())
            .collect()
    }

    /// The chunks [`HeadPart::chunks_for_series`] returns the rows of, with their summaries.
    pub fn series_chunks<'a>(
        &'a self,
        ids: &'a [u64],
        start_ns: i64,
        end_ns: i64,
    ) -> impl Iterator<Item = &'a HeadChunk> + 'a {
        self.chunks
            .iter()
            .filter(move |c| c.summary.max_time_ns >= start_ns && c.summary.min_time_ns <= end_ns)
            .filter(move |c| intersects(&c.series_ids, ids))
    }
}

fn intersects(a: &[u64], b: &[u64]) -> bool {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.iter().any(|x| large.binary_search(x).is_ok())
}

/// Computes what a chunk needs besides its rows: its series ids, and for spans its trace ids.
pub fn prepare_chunk(
    signal: Signal,
    batch: RecordBatch,
    summary: RowsSummary,
) -> (HeadChunk, Vec<TraceId>) {
    let mut trace_ids = Vec::new();
    let mut series_ids = Vec::new();
    match signal {
        Signal::Traces => {
            let col = batch.column(span_col::TRACE_ID).as_fixed_size_binary();
            trace_ids = (0..batch.num_rows())
                .map(|i| TraceId::from_slice(col.value(i)).expect("16-byte column"))
                .collect();
            trace_ids.sort_unstable();
            trace_ids.dedup();
        }
        Signal::Logs | Signal::Metrics => {
            let c = if signal == Signal::Logs {
                log_col::STREAM_ID
            } else {
                sample_col::SERIES_ID
            };
            series_ids = batch
                .column(c)
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec();
            series_ids.sort_unstable();
            series_ids.dedup();
        }
    }
    (
        HeadChunk {
            batch,
            summary,
            series_ids,
        },
        trace_ids,
    )
}

/// The hash a key row is filed under.
fn key_hash(key: &str, value: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (key, value).hash(&mut h);
    h.finish()
}
