//! Runs the correlation engine on ingest: every acknowledged span batch is observed, and the bridge
//! spans it decides are written through the same WAL and store as any span. A ticker decides the
//! links held back to settle, evicts state older than the window, charges the engine's memory to
//! the store's budget and saves what it learned. At start the window is rebuilt from the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use seam_correlate::LearnedPair;
use seam_correlate::{
    bridge_batch, CorrelationConfig, Correlator, KeyExtractor, KeyMatch, Link, RemoteSegment,
};
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::{Batch, Label, LogBatch, Tenant, TraceId};
use seam_store::{KeyRow, Reservation, Store, StoreError};

use crate::params::now_ns;

/// Label of `correlation_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// What the matcher decided.
    pub result: String,
}

/// The correlation metrics, registered without Seam's prefix under the names the docs promise.
#[derive(Clone)]
struct CorrelationMetrics {
    events: Family<ResultLabel, Counter>,
    bridges: Counter,
    active_keys: Gauge,
    latency: Histogram,
    logs_enriched: Counter,
    logs_pending: Counter,
    memory: Gauge,
    decided: Family<DecidedLabel, Counter>,
}

/// Label of `correlation_links_decided_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecidedLabel {
    /// `batch_end` (decided with the batch that made it possible) or `after_hold`.
    pub when: &'static str,
}

/// Where the learned patterns are saved in the catalog.
const LEARNED_STATE: &str = "correlation.learned_patterns";
/// Traces read back from the store at a time while rebuilding.
const REBUILD_CHUNK: usize = 4096;
/// How often the ticker saves learned patterns that changed.
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// Structured metadata naming the trace a keyed log line was matched to.
pub const CORRELATED_TRACE_ID: &str = "seam_correlated_trace_id";

/// Structured metadata marking a log line whose keys found no trace when it arrived: the keys, as
/// a JSON list of `[key, value]` pairs. The store resolves it whenever the line is read (see
/// [`LateKeys`]); no reader ever sees it.
pub const PENDING_KEYS: &str = "__seam_pending_keys__";

/// The engine plus what feeds it and what it writes.
pub struct Correlation {
    engine: Mutex<Engine>,
    /// The engine's key extractor, for reading log lines outside the engine's lock.
    extractor: KeyExtractor,
    config: CorrelationConfig,
    metrics: CorrelationMetrics,
    /// The shared index of replicas, when `correlation.redis_url` is set.
    redis: Option<Arc<crate::correlation_redis::RedisReplica>>,
    /// The engine's memory, held against the store's budget.
    charged: Mutex<Option<Reservation>>,
}

/// What the rebuild at start read and restored.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rebuilt {
    /// Traces read back from the store.
    pub traces: usize,
    /// Links restored from stored bridges.
    pub restored: u64,
    /// Links decided at the end of the rebuild (held when the process stopped).
    pub decided: usize,
}

struct Engine {
    correlator: Correlator,
    /// Counts already exported, so each observation adds only its difference.
    exported: BTreeMap<&'static str, u64>,
}

impl Correlation {
    /// An engine with `config`, registering its metrics in `registry`.
    pub fn new(config: CorrelationConfig, registry: &mut Registry) -> Correlation {
        let metrics = CorrelationMetrics {
            events: Family::default(),
            bridges: Counter::default(),
            active_keys: Gauge::default(),
            latency: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            logs_enriched: Counter::default(),
            logs_pending: Counter::default(),
            memory: Gauge::default(),
            decided: Family::default(),
        };
        registry.register(
            "correlation_links_decided",
            "Links written, by whether they were decided at the end of their batch or held for a better candidate",
            metrics.decided.clone(),
        );
        registry.register(
            "correlation_logs_pending",
            "Log entries whose keys found no trace on arrival, resolved when read",
            metrics.logs_pending.clone(),
        );
        registry.register(
            "correlation_memory_bytes",
            "Estimated bytes the correlation engine holds (charged to storage.max_memory)",
            metrics.memory.clone(),
        );
        registry.register(
            "correlation_logs_enriched",
            "Log entries without a trace id given the trace their key matched",
            metrics.logs_enriched.clone(),
        );
        registry.register(
            "correlation_events",
            "Correlation decisions by result",
            metrics.events.clone(),
        );
        registry.register(
            "correlation_bridge_spans_created",
            "Bridge spans written",
            metrics.bridges.clone(),
        );
        registry.register(
            "correlation_active_keys",
            "Key values held in the correlation window",
            metrics.active_keys.clone(),
        );
        registry.register(
            "correlation_match_latency_seconds",
            "From the arrival of the segment that completed a match to its bridge being written",
            metrics.latency.clone(),
        );
        let redis = config.redis_url.as_deref().map(|url| {
            Arc::new(crate::correlation_redis::RedisReplica::new(
                url,
                config.window,
                registry,
            ))
        });
        let mut correlator = Correlator::new(config.clone());
        correlator.track_changes(redis.is_some());
        Correlation {
            extractor: correlator.extractor().clone(),
            engine: Mutex::new(Engine {
                correlator,
                exported: BTreeMap::new(),
            }),
            config,
            metrics,
            redis,
            charged: Mutex::new(None),
        }
    }

    /// Rebuilds the correlation window after a start (see the engine's rebuild mode): loads the
    /// saved learned patterns, reads back every trace with keys that ended within two windows
    /// (from the head, replayed from the WAL, and from segments), restores the links their
    /// stored bridges record, and returns the links held when the process stopped, for
    /// [`Correlation::write`]. Blocking; run before the receivers accept data.
    pub fn rebuild(&self, store: &Store) -> Result<(Rebuilt, Vec<Link>), StoreError> {
        let learned = store.load_state(LEARNED_STATE)?;
        let now = now_ns();
        let since = now.saturating_sub(self.config.window_ns().saturating_mul(2));
        let traces = store.keyed_traces_since(since)?;
        let mut e = self.engine.lock();
        if let Some(bytes) = learned {
            match serde_json::from_slice::<Vec<(String, String, String, u64)>>(&bytes) {
                Ok(rows) => e.correlator.learned_mut().import(&rows),
                Err(err) => {
                    tracing::warn!(error = %err, "ignoring unreadable saved correlation patterns")
                }
            }
        }
        let restored_before = e.correlator.stats().restored;
        e.correlator.begin_rebuild();
        // Read in chunks of traces (each chunk one pass over the head and the segments that hold
        // them), so memory stays bounded however many traces the window held.
        for tenant_traces in traces.chunk_by(|a, b| a.0 == b.0) {
            let tenant = &tenant_traces[0].0;
            for chunk in tenant_traces.chunks(REBUILD_CHUNK) {
                let ids: Vec<TraceId> = chunk.iter().map(|(_, id)| *id).collect();
                let rs = store.traces(tenant, &ids)?;
                e.correlator.observe_spans(tenant.as_str(), &rs, now);
            }
        }
        let links = e.correlator.finish_rebuild(now);
        let report = Rebuilt {
            traces: traces.len(),
            restored: e.correlator.stats().restored - restored_before,
            decided: links.len(),
        };
        self.export_stats(&mut e);
        Ok((report, links))
    }

    /// [`Correlation::save_learned`] off the async reactor; a failure is logged (the counts stay
    /// in memory and are saved at the next try).
    pub async fn persist_learned(self: &Arc<Self>, store: &Store) {
        let (me, store) = (self.clone(), store.clone());
        if let Err(e) = crate::api::blocking(move || me.save_learned(&store)).await {
            tracing::warn!(error = %e, "saving learned correlation patterns failed");
        }
    }

    /// Saves the learned patterns when they changed since the last save. Blocking.
    pub fn save_learned(&self, store: &Store) -> Result<(), StoreError> {
        let rows = {
            let mut e = self.engine.lock();
            if !e.correlator.learned_mut().take_changed() {
                return Ok(());
            }
            e.correlator.learned().export()
        };
        let json = serde_json::to_vec(&rows).expect("plain rows serialise");
        store.save_state(LEARNED_STATE, &json)
    }

    /// The service pairs learned for `tenant`, most observed first.
    pub fn learned_pairs(&self, tenant: &str) -> Vec<LearnedPair> {
        self.engine.lock().correlator.learned().pairs(tenant)
    }

    /// The flow patterns learned for `tenant`, and how many links a pair needs.
    pub fn learned_patterns(&self, tenant: &str) -> (Vec<Vec<String>>, u64) {
        let e = self.engine.lock();
        let l = e.correlator.learned();
        (l.patterns(tenant), l.min_links())
    }

    /// Charges the engine's estimated memory to the store's budget (replacing the last charge).
    fn charge_memory(&self, store: &Store) {
        let bytes = self.engine.lock().correlator.approx_bytes();
        self.metrics.memory.set(bytes as i64);
        let mut charged = self.charged.lock();
        if charged.as_ref().map(|r| r.bytes()) != Some(bytes) {
            *charged = Some(store.budget().charge(bytes));
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// The key extractor the engine matches with.
    pub fn extractor(&self) -> &KeyExtractor {
        &self.extractor
    }

    /// Observes a tenant's spans; returns the links decided at once and the key rows of the
    /// batch's spans, which the store indexes (so the spans are read for keys once).
    pub fn observe(&self, tenant: &Tenant, rs: &[ResourceSpans]) -> (Vec<Link>, Vec<KeyRow>) {
        let mut rows = Vec::new();
        let mut e = self.engine.lock();
        let links = e
            .correlator
            .observe_spans_with_keys(tenant.as_str(), rs, now_ns(), &mut rows);
        self.export_stats(&mut e);
        if let Some(redis) = &self.redis {
            let changed: Vec<_> = e
                .correlator
                .take_changed()
                .into_iter()
                .filter_map(|(t, trace)| {
                    let seg = e.correlator.segment(&t, &trace)?;
                    Some((
                        t,
                        RemoteSegment::of(seg, crate::correlation_redis::MAX_SPANS),
                    ))
                })
                .collect();
            drop(e);
            for (t, seg) in changed {
                redis.offer(t, seg);
            }
        } else {
            drop(e);
        }
        (links, key_rows(&rows))
    }

    /// Observes another replica's segment summary; returns the links decided at once.
    pub fn observe_remote(&self, tenant: &str, seg: &RemoteSegment) -> Vec<Link> {
        let mut e = self.engine.lock();
        let links = e.correlator.observe_remote(tenant, seg, now_ns());
        self.export_stats(&mut e);
        links
    }

    /// Decides held-back links and evicts expired state.
    fn tick(&self) -> Vec<Link> {
        let mut e = self.engine.lock();
        let links = e.correlator.tick(now_ns());
        self.export_stats(&mut e);
        links
    }

    fn export_stats(&self, e: &mut Engine) {
        for (name, total) in e.correlator.stats().events() {
            let before = e.exported.insert(name, total).unwrap_or(0);
            if total > before {
                self.metrics
                    .events
                    .get_or_create(&ResultLabel {
                        result: name.to_string(),
                    })
                    .inc_by(total - before);
            }
        }
        self.metrics
            .active_keys
            .set(e.correlator.active_keys() as i64);
    }

    /// Gives log entries that carry a correlation key but no trace id the trace their key matches
    /// within the window, as structured metadata `seam_correlated_trace_id` (Loki's spelling of the
    /// attribute `seam.correlated_trace_id`: label names cannot hold dots). Keys are looked for in
    /// structured metadata, stream labels and the line (`key=value`, `key: value`, JSON fields).
    /// An entry whose keys match nothing yet is marked with [`PENDING_KEYS`], and reads resolve it
    /// once a span with its key has arrived. Returns how many entries were enriched.
    pub fn enrich_logs(&self, tenant: &Tenant, batch: &mut LogBatch) -> usize {
        if self.extractor.keys().is_empty() {
            return 0;
        }
        // Reading the lines is the costly part, so it is done without the engine's lock; the
        // lock is taken once, for the entries that carry a key.
        let mut keyed: Vec<(usize, usize, Vec<KeyMatch>)> = Vec::new();
        let mut keys = Vec::new();
        for (si, stream) in batch.streams.iter().enumerate() {
            // The stream's labels are the same for all its entries: looked at once.
            let stream_keys: Vec<KeyMatch> = stream
                .labels
                .iter()
                .filter_map(|l| self.extractor.match_pair(&l.name, &l.value))
                .collect();
            for (ei, entry) in stream.entries.iter().enumerate() {
                if !entry.trace_id.is_empty() {
                    continue;
                }
                for l in &entry.structured_metadata {
                    keys.extend(self.extractor.match_pair(&l.name, &l.value));
                }
                keys.extend(stream_keys.iter().cloned());
                self.extractor.extract_from_text(&entry.line, &mut keys);
                if !keys.is_empty() {
                    keyed.push((si, ei, std::mem::take(&mut keys)));
                }
            }
        }
        if keyed.is_empty() {
            return 0;
        }
        let matched: Vec<Option<TraceId>> = {
            let e = self.engine.lock();
            keyed
                .iter()
                .map(|(si, ei, keys)| {
                    let stream = &batch.streams[*si];
                    let ts = stream.entries[*ei].timestamp_ns;
                    e.correlator
                        .correlate_log(tenant.as_str(), keys, ts, service_of(stream))
                })
                .collect()
        };
        let mut enriched = 0;
        for ((si, ei, keys), trace) in keyed.iter().zip(matched) {
            let md = &mut batch.streams[*si].entries[*ei].structured_metadata;
            match trace {
                Some(t) => {
                    md.push(Label::new(CORRELATED_TRACE_ID, t.to_hex()));
                    enriched += 1;
                }
                None => md.push(Label::new(PENDING_KEYS, pending_value(keys))),
            }
            md.sort_by(|a, b| a.name.cmp(&b.name));
        }
        self.metrics.logs_enriched.inc_by(enriched as u64);
        self.metrics
            .logs_pending
            .inc_by((keyed.len() - enriched) as u64);
        enriched
    }

    /// The trace a log line marked at ingest belongs to now (see [`LateKeys`]).
    fn resolve_late(
        &self,
        store: &Store,
        tenant: &Tenant,
        keys: &[KeyMatch],
        ts_ns: i64,
        service: Option<&str>,
    ) -> Option<TraceId> {
        // The engine's window first: it holds every recent segment, rebuilt after restarts.
        let engine =
            self.engine
                .lock()
                .correlator
                .correlate_log(tenant.as_str(), keys, ts_ns, service);
        if engine.is_some() {
            return engine;
        }
        // Then the store's key index, for lines read long after their spans left the window.
        let w = self.config.window_ns();
        let mut candidates = Vec::new();
        for k in keys {
            let prio = self.extractor.priority(&k.key).unwrap_or(usize::MAX);
            let rows = store
                .trace_keys(
                    tenant,
                    &k.key,
                    &k.value,
                    ts_ns.saturating_sub(w),
                    ts_ns.saturating_add(w),
                )
                .unwrap_or_default();
            candidates.extend(rows.into_iter().map(|r| seam_correlate::LogCandidate {
                trace_id: r.trace_id,
                key_priority: prio,
                start_ns: r.start_ns,
                end_ns: r.end_ns,
                same_service: service == Some(r.service.as_str()),
            }));
        }
        seam_correlate::choose_log_trace(&candidates, ts_ns, w)
    }

    /// Writes the bridge spans of `links` durably, per tenant.
    pub async fn write(&self, store: &Store, links: Vec<Link>) {
        if links.is_empty() {
            return;
        }
        let mut by_tenant: BTreeMap<Arc<str>, Vec<Link>> = BTreeMap::new();
        for l in links {
            by_tenant.entry(l.tenant.clone()).or_default().push(l);
        }
        for (tenant, links) in by_tenant {
            let Ok(t) = Tenant::new(&tenant) else {
                continue;
            };
            match store.append(&t, Batch::Traces(bridge_batch(&links))).await {
                Ok(()) => {
                    let now = now_ns();
                    self.metrics.bridges.inc_by(links.len() as u64);
                    for l in &links {
                        self.metrics
                            .latency
                            .observe((now - l.arrival_ns).max(0) as f64 / 1e9);
                        let when = if l.decided_ns == l.arrival_ns {
                            "batch_end"
                        } else {
                            "after_hold"
                        };
                        self.metrics
                            .decided
                            .get_or_create(&DecidedLabel { when })
                            .inc();
                    }
                }
                // The link stays decided in memory; the bridge is lost only if the process dies
                // before the segments are seen again.
                Err(e) => {
                    tracing::warn!(tenant = &*tenant, error = %e, bridges = links.len(), "writing bridge spans failed")
                }
            }
        }
    }

    /// Runs the ticker until the store shuts down.
    pub fn spawn_ticker(self: &Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        if let Some(redis) = &self.redis {
            redis.spawn(self.clone(), store.clone());
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut saved = std::time::Instant::now();
            loop {
                every.tick().await;
                let links = me.tick();
                me.write(&store, links).await;
                me.charge_memory(&store);
                if saved.elapsed() >= SAVE_EVERY {
                    saved = std::time::Instant::now();
                    me.persist_learned(&store).await;
                }
            }
        })
    }
}

/// The store's key rows from the engine's per-span sightings.
fn key_rows(rows: &[seam_correlate::SpanKeyRow]) -> Vec<KeyRow> {
    KeyRow::merge(rows.iter().map(|r| {
        (
            &*r.key,
            &*r.value,
            r.trace_id,
            &*r.service,
            r.start_ns,
            r.end_ns,
        )
    }))
}

/// A stream's `service_name` label.
fn service_of(stream: &seam_model::LogStream) -> Option<&str> {
    stream
        .labels
        .iter()
        .find(|l| l.name == "service_name")
        .map(|l| l.value.as_str())
}

/// The [`PENDING_KEYS`] value of some keys.
fn pending_value(keys: &[KeyMatch]) -> String {
    let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (&*k.key, &*k.value)).collect();
    serde_json::to_string(&pairs).expect("strings serialise")
}

/// Resolves the log lines marked [`PENDING_KEYS`] when the store reads them: lent to the store
/// like [`EngineSpanKeys`].
pub struct LateKeys(pub Arc<Correlation>);

impl seam_store::LateLogKeys for LateKeys {
    fn marker(&self) -> &str {
        PENDING_KEYS
    }

    fn resolve(
        &self,
        store: &Store,
        tenant: &Tenant,
        marker_value: &str,
        ts_ns: i64,
        service: Option<&str>,
    ) -> Option<(String, String)> {
        let pairs: Vec<(String, String)> = serde_json::from_str(marker_value).ok()?;
        let keys: Vec<KeyMatch> = pairs
            .into_iter()
            .filter(|(k, _)| self.0.extractor.priority(k).is_some())
            .map(|(key, value)| KeyMatch {
                key: key.into(),
                value: value.into(),
                exact: true,
            })
            .collect();
        let trace = self.0.resolve_late(store, tenant, &keys, ts_ns, service)?;
        Some((CORRELATED_TRACE_ID.to_string(), trace.to_hex()))
    }
}

/// Removes the [`PENDING_KEYS`] marker from a batch (a copy for live tails, which show lines as
/// they arrive).
pub fn strip_pending(batch: &mut LogBatch) {
    for s in &mut batch.streams {
        for e in &mut s.entries {
            e.structured_metadata.retain(|l| l.name != PENDING_KEYS);
        }
    }
}

/// The engine's key extractor, lent to the store so it indexes key value -> traces.
pub struct EngineSpanKeys(pub seam_correlate::KeyExtractor);

impl seam_store::SpanKeys for EngineSpanKeys {
    fn keys(
        &self,
        span: &seam_model::otlp::trace::v1::Span,
        resource_attributes: &[seam_model::otlp::common::v1::KeyValue],
    ) -> Vec<(String, String)> {
        if seam_correlate::is_synthetic(span) {
            return Vec::new();
        }
        self.0
            .extract_span(&span.attributes, resource_attributes)
            .into_iter()
            .map(|m| (m.key.to_string(), m.value.to_string()))
            .collect()
    }
}
