//! The read interface the query engines use: traces by id, series selection, log rows and samples.
//! Every read sees one consistent snapshot of the heads and committed segments.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type};
use prost::Message;
use seam_model::otlp::common::v1::InstrumentationScope;
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use seam_model::{Labels, Sample, Signal, Tenant, TraceId};

use crate::catalog::SegmentMeta;
use crate::head::HeadPart;
use crate::log_scan::{LogRowRef, LogScan, LogVisitor};
use crate::schema::{decode_attributes, sample_col, span_col, StoredEvents, StoredLinks};
use crate::segment::{self, RowSelection};
use crate::series_index::LabelMatcher;
use crate::store::{State, Store};
use crate::StoreError;

/// Which end of a time range a log query starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    Backward,
}

/// One log entry as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    /// The stream it belongs to.
    pub stream_id: u64,
    /// Time in nanoseconds.
    pub timestamp_ns: i64,
    /// The line.
    pub line: String,
    /// Structured metadata as a JSON object of strings.
    pub structured_metadata: String,
}

impl PartialOrd for LogRow {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Eq for LogRow {}
impl Ord for LogRow {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.timestamp_ns, self.stream_id, &self.line).cmp(&(
            other.timestamp_ns,
            other.stream_id,
            &other.line,
        ))
    }
}

impl Store {
    /// Head batches (from `pick`) and the committed segments of one tenant and signal, taken
    /// together under one lock so no row is missed or seen twice across a flush.
    pub(crate) fn snapshot<T>(
        &self,
        tenant: &Tenant,
        signal: Signal,
        pick: impl Fn(&HeadPart) -> Vec<T>,
    ) -> (Vec<T>, HashMap<i64, SegmentMeta>) {
        let st = self.inner.state.read();
        let batches: Vec<T> = heads(&st, tenant, signal).flat_map(&pick).collect();
        let segs = st
            .segments
            .iter()
            .filter(|(_, m)| &m.tenant == tenant && m.signal == signal)
            .map(|(id, m)| (*id, m.clone()))
            .collect();
        (batches, segs)
    }

    /// All spans of a trace, grouped by resource and scope; empty when the trace is unknown.
    /// Duplicate deliveries of a span (same span id and start) appear once. Blocking.
    pub fn trace(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
    ) -> Result<Vec<ResourceSpans>, StoreError> {
        self.traces(tenant, std::slice::from_ref(trace_id))
    }

    /// All spans of some traces at once (one trace's view, or a time window read back): each head
    /// chunk and segment is read once for all of them. Spans of different traces share their
    /// resource groups; duplicate deliveries appear once. Blocking.
    pub fn traces(
        &self,
        tenant: &Tenant,
        ids: &[TraceId],
    ) -> Result<Vec<ResourceSpans>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let wanted: HashSet<TraceId> = ids.iter().copied().collect();
        let (head, segs) = self.snapshot(tenant, Signal::Traces, |p| p.chunks_for_traces(&ids));
        let mut batches: Vec<RecordBatch> = head
            .iter()
            .map(|b| {
                let col = b.column(span_col::TRACE_ID).as_fixed_size_binary();
                let mask: arrow::array::BooleanArray = (0..arrow::array::Array::len(col))
                    .map(|i| {
                        Some(TraceId::from_slice(col.value(i)).is_ok_and(|t| wanted.contains(&t)))
                    })
                    .collect();
                arrow::compute::filter_record_batch(b, &mask).expect("mask matches the batch")
            })
            .collect();
        let mut seg_ids: Vec<i64> = {
            let catalog = self.inner.catalog.lock();
            let mut v = Vec::new();
            for id in &ids {
                v.extend(catalog.trace_segments(tenant, id)?.into_iter().map(|s| s.0));
            }
            v
        };
        seg_ids.sort_unstable();
        seg_ids.dedup();
        for seg_id in seg_ids {
            // A segment committed after our snapshot holds rows our snapshot has in a frozen head.
            let Some(meta) = segs.get(&seg_id) else {
                continue;
            };
            let file = crate::segment_read::SegmentFile::open(
                &self.inner.cfg.data_dir.join(&meta.rel_path),
            )?;
            batches.extend(file.read_traces(&ids)?);
        }
        Ok(assemble_trace(&batches))
    }

    /// The bridges touching a trace (as upstream or downstream), from the head and the catalog,
    /// without duplicates. Blocking.
    pub fn trace_edges(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
    ) -> Result<Vec<seam_model::traces::TraceEdge>, StoreError> {
        let mut out: Vec<seam_model::traces::TraceEdge> = {
            let st = self.inner.state.read();
            heads(&st, tenant, Signal::Traces)
                .flat_map(|p| p.edges.iter())
                .filter(|e| e.upstream == *trace_id || e.downstream == *trace_id)
                .copied()
                .collect()
        };
        out.extend(self.inner.catalog.lock().trace_edges(tenant, trace_id)?);
        let mut seen = HashSet::new();
        out.retain(|e| seen.insert((e.upstream, e.bridge_span_id)));
        Ok(out)
    }

    /// Every (tenant, trace) whose spans carry a correlation key and end at or after `since_ns`,
    /// from the head and the catalog, without duplicates: what the correlation engine reads back
    /// after a restart. Blocking.
    pub fn keyed_traces_since(&self, since_ns: i64) -> Result<Vec<(Tenant, TraceId)>, StoreError> {
        let mut out: Vec<(Tenant, TraceId)> = {
            let st = self.inner.state.read();
            let parts = st
                .active
                .iter()
                .filter(|((_, s), _)| *s == Signal::Traces)
                .map(|((t, _), p)| (t, p))
                .chain(
                    st.frozen
                        .iter()
                        .filter(|(_, s, _)| *s == Signal::Traces)
                        .map(|(t, _, p)| (t, p.as_ref())),
                );
            parts
                .flat_map(|(t, p)| {
                    p.keys
                        .iter()
                        .filter(|k| k.end_ns >= since_ns)
                        .map(move |k| (t.clone(), k.trace_id))
                })
                .collect()
        };
        out.extend(self.inner.catalog.lock().keyed_traces_since(since_ns)?);
        out.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
        out.dedup();
        Ok(out)
    }

    /// Saves a named piece of state in the catalog (what a component learned and must keep
    /// across restarts). Blocking.
    pub fn save_state(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner
            .catalog
            .lock()
            .put_state(name, value, seam_model::now_ns())
    }

    /// A piece of state saved with [`Store::save_state`]. Blocking.
    pub fn load_state(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.catalog.lock().get_state(name)
    }

    /// Rows of traces whose spans carry `key=value` within `[start_ns, end_ns]`, from the head and
    /// the catalog (one row per trace and service, time ranges merged). Blocking.
    pub fn trace_keys(
        &self,
        tenant: &Tenant,
        key: &str,
        value: &str,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<crate::catalog::KeyRow>, StoreError> {
        let mut rows: Vec<crate::catalog::KeyRow> = {
            let st = self.inner.state.read();
            heads(&st, tenant, Signal::Traces)
                .flat_map(|p| p.key_rows(key, value))
                .filter(|k| k.end_ns >= start_ns && k.start_ns <= end_ns)
                .cloned()
                .collect()
        };
        rows.extend(
            self.inner
                .catalog
                .lock()
                .trace_keys(tenant, key, value, start_ns, end_ns)?,
        );
        let mut merged: HashMap<(TraceId, String), crate::catalog::KeyRow> = HashMap::new();
        for r in rows {
            let e = merged
                .entry((r.trace_id, r.service.clone()))
                .or_insert_with(|| r.clone());
            e.start_ns = e.start_ns.min(r.start_ns);
            e.end_ns = e.end_ns.max(r.end_ns);
        }
        let mut out: Vec<_> = merged.into_values().collect();
        out.sort_by_key(|r| (r.start_ns, r.trace_id, r.service.clone()));
        Ok(out)
    }

    /// Streams (logs) or series (metrics) of a tenant matching every matcher, with data in
    /// `[start_ns, end_ns]`, sorted by id.
    pub fn select_series(
        &self,
        tenant: &Tenant,
        signal: Signal,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<(u64, Labels)> {
        let st = self.inner.state.read();
        let Some(ix) = st.series.get(&(tenant.clone(), signal)) else {
            return Vec::new();
        };
        ix.select(matchers, start_ns, end_ns)
            .into_iter()
            .map(|id| (id, ix.get(id).expect("selected ids exist").labels.clone()))
            .collect()
    }

    /// Label names among matching streams or series.
    pub fn label_names(
        &self,
        tenant: &Tenant,
        signal: Signal,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<String> {
        let st = self.inner.state.read();
        st.series
            .get(&(tenant.clone(), signal))
            .map(|ix| ix.label_names(matchers, start_ns, end_ns))
            .unwrap_or_default()
    }

    /// Values of one label among matching streams or series.
    pub fn label_values(
        &self,
        tenant: &Tenant,
        signal: Signal,
        name: &str,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<String> {
        let st = self.inner.state.read();
        st.series
            .get(&(tenant.clone(), signal))
            .map(|ix| ix.label_values(name, matchers, start_ns, end_ns))
            .unwrap_or_default()
    }

    /// Log rows of the given streams (sorted ids) in `[start_ns, end_ns]` whose line passes
    /// `keep`: at most `limit` of them, the oldest (forward) or newest (backward) first. Memory is
    /// bounded by `limit`, whatever the range. Blocking.
    #[allow(clippy::too_many_arguments)]
    pub fn scan_logs(
        &self,
        tenant: &Tenant,
        stream_ids: &[u64],
        start_ns: i64,
        end_ns: i64,
        keep: &(dyn Fn(&str) -> bool + Sync),
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError> {
        let scan = LogScan {
            stream_ids,
            start_ns,
            end_ns,
            required_substrings: Vec::new(),
            keep_line: keep,
            direction,
        };
        self.top_logs(tenant, &scan, limit)
    }

    /// The `limit` oldest (forward) or newest (backward) rows of `scan`, in that order. Name the
    /// substrings every wanted line holds in `scan.required_substrings`: the token filters then
    /// skip the row groups that cannot hold them. Blocking.
    pub fn top_logs(
        &self,
        tenant: &Tenant,
        scan: &LogScan<'_>,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError> {
        if scan.stream_ids.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut top = TopRows {
            newest: BinaryHeap::new(),
            oldest: BinaryHeap::new(),
            direction: scan.direction,
            limit,
        };
        self.visit_logs(tenant, scan, &mut top)?;
        Ok(match scan.direction {
            Direction::Backward => {
                let mut v: Vec<LogRow> = top.newest.into_iter().map(|Reverse(r)| r).collect();
                v.sort_by(|a, b| b.cmp(a));
                v
            }
            Direction::Forward => {
                let mut v = top.oldest.into_vec();
                v.sort();
                v
            }
        })
    }

    /// Samples of the given series (sorted ids) in `[start_ms, end_ms]`, each series sorted by
    /// time with one sample per timestamp. Blocking.
    pub fn samples(
        &self,
        tenant: &Tenant,
        series_ids: &[u64],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<HashMap<u64, Vec<Sample>>, StoreError> {
        let mut out: HashMap<u64, Vec<Sample>> = HashMap::new();
        if series_ids.is_empty() {
            return Ok(out);
        }
        let (start_ns, end_ns) = (
            start_ms.saturating_mul(1_000_000),
            end_ms.saturating_mul(1_000_000),
        );
        let (head, segs) = self.snapshot(tenant, Signal::Metrics, |p| {
            p.chunks_for_series(series_ids, start_ns, end_ns)
        });
        let sel = RowSelection::Series {
            ids: series_ids,
            start: start_ms,
            end: end_ms,
        };
        // Segment reads return only the selected rows; head chunks are filtered here.
        let mut visit = |b: &RecordBatch| {
            let ids = b.column(sample_col::SERIES_ID).as_primitive::<UInt64Type>();
            let ts = b.column(sample_col::TIMESTAMP).as_primitive::<Int64Type>();
            let vals = b.column(sample_col::VALUE).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                out.entry(ids.value(i)).or_default().push(Sample {
                    timestamp_ms: ts.value(i),
                    value: vals.value(i),
                });
            }
        };
        for meta in overlapping(&segs, start_ns, end_ns) {
            for b in segment::read(
                &self.inner.cfg.data_dir.join(&meta.rel_path),
                Signal::Metrics,
                &sel,
            )? {
                visit(&b);
            }
        }
        // Head rows are newer writes, so they are visited last and win a timestamp tie.
        for b in &head {
            visit(&segment::filter_rows(b, Signal::Metrics, &sel));
        }
        for v in out.values_mut() {
            v.sort_by_key(|s| s.timestamp_ms);
            // Keep the last write for each timestamp.
            let mut dedup: Vec<Sample> = Vec::with_capacity(v.len());
            for s in v.drain(..) {
                match dedup.last_mut() {
                    Some(last) if last.timestamp_ms == s.timestamp_ms => *last = s,
                    _ => dedup.push(s),
                }
            }
            *v = dedup;
        }
        Ok(out)
    }
}

/// Keeps the `limit` newest (backward) or oldest (forward) rows, copying only rows that enter.
struct TopRows {
    newest: BinaryHeap<Reverse<LogRow>>,
    oldest: BinaryHeap<LogRow>,
    direction: Direction,
    limit: usize,
}

impl LogVisitor for TopRows {
    fn visit(&mut self, row: LogRowRef<'_>) {
        let key = (row.timestamp_ns, row.stream_id, row.line);
        let owned = |r: LogRowRef<'_>| LogRow {
            stream_id: r.stream_id,
            timestamp_ns: r.timestamp_ns,
            line: r.line.to_string(),
            structured_metadata: r.structured_metadata.to_string(),
        };
        match self.direction {
            Direction::Backward => {
                if self.newest.len() < self.limit {
                    self.newest.push(Reverse(owned(row)));
                } else if self.newest.peek().is_some_and(|Reverse(min)| {
                    key > (min.timestamp_ns, min.stream_id, min.line.as_str())
                }) {
                    self.newest.pop();
                    self.newest.push(Reverse(owned(row)));
                }
            }
            Direction::Forward => {
                if self.oldest.len() < self.limit {
                    self.oldest.push(owned(row));
                } else if self
                    .oldest
                    .peek()
                    .is_some_and(|max| key < (max.timestamp_ns, max.stream_id, max.line.as_str()))
                {
                    self.oldest.pop();
                    self.oldest.push(owned(row));
                }
            }
        }
    }

    fn wants(&self, min_ns: i64, max_ns: i64) -> bool {
        match self.direction {
            Direction::Backward => {
                self.newest.len() < self.limit
                    || self
                        .newest
                        .peek()
                        .is_some_and(|Reverse(m)| max_ns >= m.timestamp_ns)
            }
            Direction::Forward => {
                self.oldest.len() < self.limit
                    || self.oldest.peek().is_some_and(|m| min_ns <= m.timestamp_ns)
            }
        }
    }
}

/// The active and frozen heads of one tenant and signal.
fn heads<'a>(
    st: &'a State,
    tenant: &'a Tenant,
    signal: Signal,
) -> impl Iterator<Item = &'a HeadPart> + 'a {
    let key = (tenant.clone(), signal);
    st.active.get(&key).into_iter().chain(
        st.frozen
            .iter()
            .filter(move |(t, s, _)| t == tenant && *s == signal)
            .map(|(_, _, p)| p.as_ref()),
    )
}

pub(crate) fn overlapping(
    segs: &HashMap<i64, SegmentMeta>,
    start_ns: i64,
    end_ns: i64,
) -> Vec<&SegmentMeta> {
    let mut v: Vec<&SegmentMeta> = segs
        .values()
        .filter(|m| m.max_time_ns >= start_ns && m.min_time_ns <= end_ns)
        .collect();
    v.sort_by_key(|m| m.id);
    v
}

/// Rebuilds OTLP resource/scope grouping from span rows.
fn assemble_trace(batches: &[RecordBatch]) -> Vec<ResourceSpans> {
    let mut out: Vec<ResourceSpans> = Vec::new();
    let mut res_index: HashMap<(Vec<u8>, String), usize> = HashMap::new();
    let mut scope_index: HashMap<(usize, Vec<u8>, String), usize> = HashMap::new();
    // A duplicate delivery is the same span of the same trace (several traces may be assembled
    // at once, and span ids are only unique within a trace).
    let mut seen: HashSet<(Vec<u8>, Vec<u8>, i64)> = HashSet::new();
    for b in batches {
        let c = |i: usize| b.column(i);
        let trace_id = c(span_col::TRACE_ID).as_fixed_size_binary();
        let span_id = c(span_col::SPAN_ID).as_fixed_size_binary();
        let parent = c(span_col::PARENT_SPAN_ID).as_binary::<i32>();
        let trace_state = c(span_col::TRACE_STATE).as_string::<i32>();
        let flags = c(span_col::FLAGS).as_primitive::<UInt32Type>();
        let name = c(span_col::NAME).as_string::<i32>();
        let kind = c(span_col::KIND).as_primitive::<Int32Type>();
        let start = c(span_col::START).as_primitive::<Int64Type>();
        let end = c(span_col::END).as_primitive::<Int64Type>();
        let status_code = c(span_col::STATUS_CODE).as_primitive::<Int32Type>();
        let status_message = c(span_col::STATUS_MESSAGE).as_string::<i32>();
        let attrs = c(span_col::ATTRIBUTES).as_binary::<i32>();
        let dropped_attrs = c(span_col::DROPPED_ATTRIBUTES).as_primitive::<UInt32Type>();
        let events = c(span_col::EVENTS).as_binary::<i32>();
        let dropped_events = c(span_col::DROPPED_EVENTS).as_primitive::<UInt32Type>();
        let links = c(span_col::LINKS).as_binary::<i32>();
        let dropped_links = c(span_col::DROPPED_LINKS).as_primitive::<UInt32Type>();
        let resource = c(span_col::RESOURCE).as_binary::<i32>();
        let resource_url = c(span_col::RESOURCE_SCHEMA_URL).as_string::<i32>();
        let scope = c(span_col::SCOPE).as_binary::<i32>();
        let scope_url = c(span_col::SCOPE_SCHEMA_URL).as_string::<i32>();
        for i in 0..b.num_rows() {
            if !seen.insert((
                trace_id.value(i).to_vec(),
                span_id.value(i).to_vec(),
                start.value(i),
            )) {
                continue;
            }
            let rkey = (
                resource.value(i).to_vec(),
                resource_url.value(i).to_string(),
            );
            let ri = *res_index.entry(rkey).or_insert_with(|| {
                out.push(ResourceSpans {
                    resource: (!resource.value(i).is_empty())
                        .then(|| Resource::decode(resource.value(i)).unwrap_or_default()),
                    scope_spans: Vec::new(),
                    schema_url: resource_url.value(i).to_string(),
                });
                out.len() - 1
            });
            let skey = (ri, scope.value(i).to_vec(), scope_url.value(i).to_string());
            let si = *scope_index.entry(skey).or_insert_with(|| {
                out[ri].scope_spans.push(ScopeSpans {
                    scope: (!scope.value(i).is_empty())
                        .then(|| InstrumentationScope::decode(scope.value(i)).unwrap_or_default()),
                    spans: Vec::new(),
                    schema_url: scope_url.value(i).to_string(),
                });
                out[ri].scope_spans.len() - 1
            });
            // An unset status and an empty one look alike once stored; SDKs send the empty
            // message and Tempo answers `"status": {}`, so one is always returned.
            let status = Some(Status {
                code: status_code.value(i),
                message: status_message.value(i).to_string(),
            });
            out[ri].scope_spans[si].spans.push(Span {
                trace_id: trace_id.value(i).to_vec(),
                span_id: span_id.value(i).to_vec(),
                trace_state: trace_state.value(i).to_string(),
                parent_span_id: parent.value(i).to_vec(),
                flags: flags.value(i),
                name: name.value(i).to_string(),
                kind: kind.value(i),
                start_time_unix_nano: start.value(i) as u64,
                end_time_unix_nano: end.value(i) as u64,
                attributes: decode_attributes(attrs.value(i)),
                dropped_attributes_count: dropped_attrs.value(i),
                events: StoredEvents::decode(events.value(i))
                    .map(|e| e.events)
                    .unwrap_or_default(),
                dropped_events_count: dropped_events.value(i),
                links: StoredLinks::decode(links.value(i))
                    .map(|l| l.links)
                    .unwrap_or_default(),
                dropped_links_count: dropped_links.value(i),
                status,
            });
        }
    }
    for r in &mut out {
        for s in &mut r.scope_spans {
            s.spans.sort_by_key(|x| x.start_time_unix_nano);
        }
    }
    out
}
