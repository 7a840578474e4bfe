//! The store handle: open with replay, durable append, flush to segments, shutdown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use parking_lot::{Mutex, RwLock};
use seam_model::otlp::common::v1::KeyValue;
use seam_model::otlp::trace::v1::{ResourceSpans, Span};
use seam_model::{Batch, Labels, Signal, Tenant, TraceId};
use tokio::sync::Notify;

use crate::budget::{MemoryBudget, Reservation};
use crate::catalog::{Catalog, FlushCommit, FlushedSegment, KeyRow, SegmentMeta};
use crate::head::{prepare_chunk, HeadChunk, HeadPart};
use crate::schema::{logs_to_batch, samples_to_batch, spans_to_batch, RowsSummary};
use crate::series_index::SeriesIndex;
use crate::wal::{FsyncPolicy, Wal, WalConfig};
use crate::{segment, wal_entry, StoreError};

/// How the store is set up.
#[derive(Clone)]
pub struct StoreConfig {
    /// The data directory (`wal/`, `segments/`, `catalog.db` live here).
    pub data_dir: PathBuf,
    /// When an append counts as durable.
    pub fsync: FsyncPolicy,
    /// Byte budget for ingest buffers and the head together.
    pub max_memory_bytes: usize,
    /// Head size that triggers a flush.
    pub flush_bytes: usize,
    /// Head age that triggers a flush.
    pub flush_age: Duration,
    /// Maximum size of one WAL file.
    pub wal_segment_bytes: u64,
    /// Receives timings for self-monitoring.
    pub observer: Option<Arc<dyn StoreObserver>>,
    /// Finds the correlation keys of spans, so the store can index key value -> traces.
    pub span_keys: Option<Arc<dyn SpanKeys>>,
    /// Resolves log rows whose correlation keys found no trace when they arrived, as they are
    /// read.
    pub late_log_keys: Option<Arc<dyn crate::LateLogKeys>>,
}

/// Names the correlation keys a span carries (the correlation engine's key extractor, seen
/// through a trait so the store does not depend on the engine).
pub trait SpanKeys: Send + Sync {
    /// `(key, value)` pairs found on the span or its resource.
    fn keys(&self, span: &Span, resource_attributes: &[KeyValue]) -> Vec<(String, String)>;
}

impl StoreConfig {
    /// Defaults for a data directory: fsync always, 1 GiB memory, flush at a quarter of it or
    /// after two minutes.
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        let max_memory_bytes = 1 << 30;
        StoreConfig {
            data_dir: data_dir.into(),
            fsync: FsyncPolicy::Always,
            max_memory_bytes,
            flush_bytes: max_memory_bytes / 4,
            flush_age: Duration::from_secs(120),
            wal_segment_bytes: 64 << 20,
            observer: None,
            span_keys: None,
            late_log_keys: None,
        }
    }
}

/// Receives the store's timings (the server turns them into Prometheus metrics).
pub trait StoreObserver: Send + Sync {
    /// One WAL group commit: the bytes it wrote, and its fsync latency when it synced.
    fn wal_commit(&self, bytes: u64, fsync: Option<Duration>);
    /// One flush: its duration, segments written and their total size.
    fn flushed(&self, duration: Duration, segments: usize, bytes: u64);
}

/// Why an append was refused. Nothing of a refused append is stored.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The memory budget is exhausted; retry later.
    #[error("memory budget of {limit} bytes is exhausted ({used} in use); retry later")]
    Overloaded {
        /// Bytes in use.
        used: usize,
        /// The budget.
        limit: usize,
    },
    /// The store is shutting down.
    #[error("the store is shutting down")]
    Closed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sizes and counts for `/metrics` and `/ready`.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Arrow bytes in the heads (active and being flushed).
    pub head_bytes: usize,
    /// Rows in the heads.
    pub head_rows: usize,
    /// Committed segments.
    pub segments: usize,
    /// Bytes of committed segments.
    pub segment_bytes: u64,
    /// Bytes of WAL files on disk.
    pub wal_bytes: u64,
    /// Bytes held against the memory budget.
    pub memory_used: usize,
    /// The memory budget.
    pub memory_limit: usize,
    /// Records replayed from the WAL at start.
    pub replayed_records: u64,
    /// Flushes that failed (their data stays in memory and in the WAL).
    pub flush_failures: u64,
}

pub(crate) struct State {
    pub(crate) active: HashMap<(Tenant, Signal), HeadPart>,
    pub(crate) frozen: Vec<(Tenant, Signal, Arc<HeadPart>)>,
    pub(crate) segments: HashMap<i64, SegmentMeta>,
    pub(crate) series: HashMap<(Tenant, Signal), SeriesIndex>,
}

pub(crate) struct Inner {
    pub(crate) cfg: StoreConfig,
    wal: Wal,
    budget: MemoryBudget,
    /// Appenders hold it shared from WAL write to head apply; a flush holds it exclusively while it
    /// swaps the heads and rotates the WAL, so every record in an older WAL file is in a frozen head.
    gate: tokio::sync::RwLock<()>,
    pub(crate) state: RwLock<State>,
    pub(crate) catalog: Mutex<Catalog>,
    flush_lock: tokio::sync::Mutex<()>,
    flush_wanted: Notify,
    closed: AtomicBool,
    replayed: AtomicU64,
    flush_failures: AtomicU64,
}

/// The embedded store. Cloning shares it.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// Rows of one batch, ready for the head.
struct Prepared {
    signal: Signal,
    chunk: HeadChunk,
    trace_ids: Vec<TraceId>,
    edges: Vec<seam_model::traces::TraceEdge>,
    keys: Vec<KeyRow>,
    series: Vec<(u64, Labels, i64, i64)>,
}

/// Where a batch's correlation key rows come from.
enum Keys<'a> {
    /// Found by the configured extractor (WAL replay, and appends without rows).
    Extract(Option<&'a dyn SpanKeys>),
    /// Already found by the caller, which read the spans anyway.
    Given(Vec<KeyRow>),
}

fn prepare(batch: &Batch, keys: Keys<'_>) -> Prepared {
    let (rb, summary): (RecordBatch, RowsSummary) = match batch {
        Batch::Traces(rs) => spans_to_batch(rs),
        Batch::Logs(b) => logs_to_batch(b),
        Batch::Metrics(b) => samples_to_batch(b),
    };
    let series = match batch {
        Batch::Traces(_) => Vec::new(),
        Batch::Logs(b) => b
            .streams
            .iter()
            .filter(|s| !s.entries.is_empty())
            .map(|s| {
                let l = s.label_set();
                let (lo, hi) = min_max(s.entries.iter().map(|e| e.timestamp_ns));
                (l.fingerprint(), l, lo, hi)
            })
            .collect(),
        Batch::Metrics(b) => b
            .series
            .iter()
            .filter(|s| !s.samples.is_empty())
            .map(|s| {
                let l = s.label_set();
                let (lo, hi) = min_max(
                    s.samples
                        .iter()
                        .map(|x| x.timestamp_ms.saturating_mul(1_000_000)),
                );
                (l.fingerprint(), l, lo, hi)
            })
            .collect(),
    };
    let edges = match batch {
        Batch::Traces(rs) => seam_model::traces::bridge_edges(rs),
        _ => Vec::new(),
    };
    let keys = match (batch, keys) {
        (Batch::Traces(_), Keys::Given(rows)) => rows,
        (Batch::Traces(rs), Keys::Extract(Some(k))) => key_rows(rs, k),
        _ => Vec::new(),
    };
    let signal = batch.signal();
    let (chunk, trace_ids) = prepare_chunk(signal, rb, summary);
    Prepared {
        signal,
        chunk,
        trace_ids,
        edges,
        keys,
        series,
    }
}

/// The key rows of a span batch: one per (key, value, trace, service) with its time range.
fn key_rows(rs: &[ResourceSpans], k: &dyn SpanKeys) -> Vec<KeyRow> {
    let mut found: Vec<(String, String, TraceId, &str, i64, i64)> = Vec::new();
    for r in rs {
        let res = r
            .resource
            .as_ref()
            .map(|x| x.attributes.as_slice())
            .unwrap_or(&[]);
        let service = seam_model::traces::service_name(r);
        for span in r.scope_spans.iter().flat_map(|s| &s.spans) {
            let Ok(trace_id) = TraceId::from_slice(&span.trace_id) else {
                continue;
            };
            let (start, end) = (
                span.start_time_unix_nano as i64,
                span.end_time_unix_nano as i64,
            );
            for (key, value) in k.keys(span, res) {
                found.push((key, value, trace_id, service, start, end));
            }
        }
    }
    KeyRow::merge(
        found
            .iter()
            .map(|(k, v, t, s, a, b)| (k.as_str(), v.as_str(), *t, *s, *a, *b)),
    )
}

fn min_max(it: impl Iterator<Item = i64>) -> (i64, i64) {
    it.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)))
}

impl Store {
    /// Opens the store in `cfg.data_dir`: loads the catalog, removes files no commit refers to,
    /// and replays the WAL into the head. Blocking; run it off the async reactor.
    pub fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", cfg.data_dir.display())))?;
        let catalog = Catalog::open(&cfg.data_dir)?;
        let segments: HashMap<i64, SegmentMeta> =
            catalog.segments()?.into_iter().map(|s| (s.id, s)).collect();
        remove_orphans(&cfg.data_dir, &segments)?;
        let mut series: HashMap<(Tenant, Signal), SeriesIndex> = HashMap::new();
        for signal in [Signal::Logs, Signal::Metrics] {
            for (tenant, e) in catalog.all_series(signal)? {
                series.entry((tenant, signal)).or_default().insert(
                    e.id,
                    &e.labels,
                    e.min_time_ns,
                    e.max_time_ns,
                );
            }
        }
        let budget = MemoryBudget::new(cfg.max_memory_bytes);
        let mut state = State {
            active: HashMap::new(),
            frozen: Vec::new(),
            segments,
            series,
        };
        let replay_from = catalog.replay_from()?;
        let wal_cfg = WalConfig {
            dir: cfg.data_dir.join("wal"),
            segment_bytes: cfg.wal_segment_bytes,
            fsync: cfg.fsync.clone(),
        };
        let mut bad_records = 0u64;
        let (wal, stats) = Wal::open(wal_cfg, replay_from, |kind, payload, pos| match wal_entry::decode(kind, payload) {
            Ok((tenant, batch)) => {
                let p = prepare(&batch, Keys::Extract(cfg.span_keys.as_deref()));
                let reservation = budget.charge(p.chunk.batch.get_array_memory_size());
                apply(&mut state, &tenant, p, reservation);
            }
            Err(e) => {
                // A record that passed its CRC but does not decode was written by a different
                // version; skipping it loudly beats refusing to start.
                bad_records += 1;
                tracing::error!(segment = pos.segment, offset = pos.offset, error = %e, "skipping undecodable WAL record");
            }
        })
        .map_err(|e| StoreError::Wal(e.to_string()))?;
        if let Some(o) = &cfg.observer {
            wal.set_observer(Arc::new(WalTimings(o.clone())));
        }
        if stats.records > 0 {
            tracing::info!(
                records = stats.records,
                bytes = stats.bytes,
                segments = stats.segments,
                bad_records,
                "WAL replayed"
            );
        }
        let inner = Inner {
            cfg,
            wal,
            budget,
            gate: tokio::sync::RwLock::new(()),
            state: RwLock::new(state),
            catalog: Mutex::new(catalog),
            flush_lock: tokio::sync::Mutex::new(()),
            flush_wanted: Notify::new(),
            closed: AtomicBool::new(false),
            replayed: AtomicU64::new(stats.records),
            flush_failures: AtomicU64::new(0),
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// The memory budget shared with the receivers (they reserve request bodies against it).
    pub fn budget(&self) -> &MemoryBudget {
        &self.inner.budget
    }

    /// Appends a batch durably. When this returns `Ok`, the batch is in the WAL (fsynced under
    /// `FsyncPolicy::Always`) and readable. Running to completion does not depend on the caller:
    /// if the caller's future is dropped, the append still finishes.
    pub async fn append(&self, tenant: &Tenant, batch: Batch) -> Result<(), AppendError> {
        let keys = Keys::Extract(self.inner.cfg.span_keys.as_deref());
        self.append_prepared(tenant, batch, keys).await
    }

    /// [`Store::append`] for a span batch whose correlation key rows the caller already found
    /// (the correlation engine reads every span's attributes anyway; [`KeyRow::merge`] makes them
    /// from per-span sightings): the spans are not walked a second time. WAL replay still finds
    /// them with the configured [`SpanKeys`].
    pub async fn append_with_keys(
        &self,
        tenant: &Tenant,
        batch: Batch,
        keys: Vec<KeyRow>,
    ) -> Result<(), AppendError> {
        self.append_prepared(tenant, batch, Keys::Given(keys)).await
    }

    async fn append_prepared(
        &self,
        tenant: &Tenant,
        batch: Batch,
        keys: Keys<'_>,
    ) -> Result<(), AppendError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(AppendError::Closed);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let prepared = prepare(&batch, keys);
        let bytes = prepared.chunk.batch.get_array_memory_size();
        let reservation = self
            .inner
            .budget
            .try_reserve(bytes)
            .ok_or(AppendError::Overloaded {
                used: self.inner.budget.used(),
                limit: self.inner.budget.limit(),
            })?;
        let kind = wal_entry::kind(batch.signal());
        let (payload, _batch) = wal_entry::encode(tenant, batch);
        drop(_batch);
        let inner = self.inner.clone();
        let tenant = tenant.clone();
        let task = tokio::spawn(async move {
            let gate = inner.gate.read().await;
            if inner.closed.load(Ordering::Acquire) {
                return Err(AppendError::Closed);
            }
            inner
                .wal
                .append(kind, bytes::Bytes::from(payload))
                .await
                .map_err(|e| StoreError::Wal(e.to_string()))?;
            let head_bytes = {
                let mut st = inner.state.write();
                apply(&mut st, &tenant, prepared, reservation);
                st.active.values().map(|p| p.bytes).sum::<usize>()
            };
            drop(gate);
            if head_bytes >= inner.cfg.flush_bytes {
                inner.flush_wanted.notify_one();
            }
            Ok(())
        });
        task.await
            .map_err(|e| AppendError::Store(StoreError::Wal(format!("append task failed: {e}"))))?
    }

    /// Runs the background flusher until shutdown: flushes when the head passes its size or age
    /// threshold.
    pub fn spawn_flusher(&self) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let tick = (store.inner.cfg.flush_age / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = store.inner.flush_wanted.notified() => {}
                    _ = tokio::time::sleep(tick) => {}
                }
                if store.inner.closed.load(Ordering::Acquire) {
                    return;
                }
                let due = {
                    let st = store.inner.state.read();
                    let bytes: usize = st.active.values().map(|p| p.bytes).sum();
                    let oldest = st.active.values().map(|p| p.created).min();
                    bytes >= store.inner.cfg.flush_bytes
                        || oldest.is_some_and(|t| t.elapsed() >= store.inner.cfg.flush_age)
                        || !st.frozen.is_empty()
                };
                if due {
                    if let Err(e) = store.flush().await {
                        tracing::error!(error = %e, "flush failed; data stays in the head and the WAL");
                    }
                }
            }
        })
    }

    /// Writes every head to segments now. Returns the number of segments written.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.inner.flush_lock.lock().await;
        let started = Instant::now();
        let (work, replay_from) = {
            let _gate = self.inner.gate.write().await;
            let mut st = self.inner.state.write();
            let drained: Vec<_> = st.active.drain().collect();
            for ((tenant, signal), part) in drained {
                st.frozen.push((tenant, signal, Arc::new(part)));
            }
            if st.frozen.is_empty() {
                return Ok(0);
            }
            let next = self
                .inner
                .wal
                .rotate()
                .map_err(|e| StoreError::Wal(e.to_string()))?;
            (st.frozen.clone(), next)
        };
        tracing::info!(parts = work.len(), replay_from, "flushing head to segments");
        let inner = self.inner.clone();
        let result =
            tokio::task::spawn_blocking(move || write_segments(&inner, &work, replay_from))
                .await
                .map_err(|e| StoreError::Io(format!("flush task failed: {e}")));
        let metas = match result.and_then(|r| r) {
            Ok(m) => m,
            Err(e) => {
                self.inner.flush_failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let (count, bytes) = (
            metas.len(),
            metas.iter().map(|m| m.bytes as u64).sum::<u64>(),
        );
        {
            let mut st = self.inner.state.write();
            for m in metas {
                st.segments.insert(m.id, m);
            }
            st.frozen.clear();
        }
        self.inner
            .wal
            .trim(replay_from)
            .map_err(|e| StoreError::Wal(e.to_string()))?;
        if let Some(o) = &self.inner.cfg.observer {
            o.flushed(started.elapsed(), count, bytes);
        }
        tracing::info!(
            segments = count,
            bytes,
            ms = started.elapsed().as_millis() as u64,
            "flushed head to segments"
        );
        Ok(count)
    }

    /// Graceful shutdown: waits for in-flight appends, flushes the head, closes the WAL. Appends
    /// after this fail with [`AppendError::Closed`].
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        {
            let _gate = self.inner.gate.write().await;
            self.inner.closed.store(true, Ordering::Release);
        }
        self.inner.flush_wanted.notify_one();
        let flushed = self.flush().await;
        self.inner.wal.close();
        flushed.map(|_| ())
    }

    /// Current sizes and counts.
    pub fn stats(&self) -> StoreStats {
        let st = self.inner.state.read();
        let heads = st
            .active
            .values()
            .chain(st.frozen.iter().map(|(_, _, p)| p.as_ref()));
        let (mut head_bytes, mut head_rows) = (0, 0);
        for p in heads {
            head_bytes += p.bytes;
            head_rows += p.rows;
        }
        StoreStats {
            head_bytes,
            head_rows,
            segments: st.segments.len(),
            segment_bytes: st.segments.values().map(|s| s.bytes as u64).sum(),
            wal_bytes: self.inner.wal.disk_bytes(),
            memory_used: self.inner.budget.used(),
            memory_limit: self.inner.budget.limit(),
            replayed_records: self.inner.replayed.load(Ordering::Relaxed),
            flush_failures: self.inner.flush_failures.load(Ordering::Relaxed),
        }
    }

    /// Committed segments, oldest first (for tools and tests).
    pub fn segments(&self) -> Vec<SegmentMeta> {
        let mut v: Vec<SegmentMeta> = self.inner.state.read().segments.values().cloned().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.cfg.data_dir
    }
}

struct WalTimings(Arc<dyn StoreObserver>);

impl crate::wal::WalObserver for WalTimings {
    fn on_commit(&self, _records: u64, bytes: u64, fsync: Option<Duration>) {
        self.0.wal_commit(bytes, fsync);
    }
    fn on_fsync(&self, latency: Duration) {
        self.0.wal_commit(0, Some(latency));
    }
}

fn apply(st: &mut State, tenant: &Tenant, p: Prepared, reservation: Reservation) {
    for (id, labels, lo, hi) in &p.series {
        st.series
            .entry((tenant.clone(), p.signal))
            .or_default()
            .insert(*id, labels, *lo, *hi);
    }
    let part = st
        .active
        .entry((tenant.clone(), p.signal))
        .or_insert_with(|| HeadPart::new(p.signal));
    part.edges.extend(p.edges);
    part.add_keys(p.keys);
    part.push(p.chunk, p.trace_ids, reservation);
}

fn segment_rel_path(tenant: &Tenant, signal: Signal, id: i64) -> String {
    format!(
        "segments/{}/{}/{:012}.parquet",
        tenant.as_str(),
        signal.as_str(),
        id
    )
}

fn write_segments(
    inner: &Inner,
    work: &[(Tenant, Signal, Arc<HeadPart>)],
    replay_from: u64,
) -> Result<Vec<SegmentMeta>, StoreError> {
    let first_id = inner.catalog.lock().next_segment_id()?;
    let mut commit = FlushCommit {
        segments: Vec::new(),
        replay_from_wal_segment: replay_from,
    };
    for (i, (tenant, signal, part)) in work.iter().enumerate() {
        if part.rows == 0 {
            continue;
        }
        let id = first_id + i as i64;
        let rel_path = segment_rel_path(tenant, *signal, id);
        let batches: Vec<RecordBatch> = part.chunks.iter().map(|c| c.batch.clone()).collect();
        let w = segment::write(&inner.cfg.data_dir.join(&rel_path), *signal, &batches)?;
        let meta = SegmentMeta {
            id,
            tenant: tenant.clone(),
            signal: *signal,
            rel_path,
            min_time_ns: w.min_time_ns,
            max_time_ns: w.max_time_ns,
            rows: w.rows as i64,
            bytes: w.bytes as i64,
        };
        commit.segments.push(FlushedSegment {
            meta,
            traces: w.traces,
            series: w.series,
            edges: part.edges.clone(),
            keys: part.keys.clone(),
        });
    }
    inner.catalog.lock().commit_flush(&commit)?;
    Ok(commit.segments.into_iter().map(|f| f.meta).collect())
}

/// Deletes temp files and segment files that no catalog row names: what a crash mid-flush leaves.
fn remove_orphans(data_dir: &Path, segments: &HashMap<i64, SegmentMeta>) -> Result<(), StoreError> {
    let known: std::collections::HashSet<PathBuf> = segments
        .values()
        .map(|s| data_dir.join(&s.rel_path))
        .collect();
    let root = data_dir.join("segments");
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if !known.contains(&path) {
                tracing::warn!(file = %path.display(), "removing segment file left by an interrupted flush");
                std::fs::remove_file(&path)
                    .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
            }
        }
    }
    Ok(())
}
