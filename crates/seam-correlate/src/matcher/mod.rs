//! The correlator: turns span batches into links between traces that share a key value.
//!
//! # Rules
//! - **Window.** Two segments can match when their time ranges are at most `window` apart
//!   (0 when they overlap), whichever arrives first.
//! - **Gap.** The *gap* is `downstream.start - upstream.start`. It ranks candidates (nearest first,
//!   by absolute value, so a pattern link under clock skew is not punished for a negative gap),
//!   feeds the confidence bands and is reported as `correlation.gap_ms`. The window uses the range
//!   distance instead, so a long upstream (a scriptplan running for minutes) can still match a call
//!   it made late in its run.
//! - **Direction.** In this order: the first configured flow pattern placing both segments (a
//!   segment's place is its primary (root) service's, else the earliest of its other services');
//!   then a learned pattern (see [`crate::learn`]); then the call evidence of the two segments
//!   (see [`crate::evidence`]): the side whose CLIENT or PRODUCER span explains the other's start
//!   is upstream; with no typed spans on either side, the earlier start. A pattern's number of
//!   steps between the two is the pattern distance (1 = adjacent). A configured pattern's upstream
//!   that starts more than `max_skew` after its downstream is refused (a reused circuit, not
//!   skew). Segments of the same primary service are peers and never linked.
//! - **Flow boundaries.** Unless a configured pattern sets the direction, an upstream whose spans
//!   have kinds must show a call near the downstream's start: a segment with no outgoing call is
//!   no upstream, a flow whose calls ended long before is finished and not chained into a later
//!   reuse of its key, and a downstream whose SERVER/CONSUMER root no call explains is an entry
//!   point that starts a new flow (all counted as `no_call`). A link never puts one service twice
//!   on one path of a stitched flow (`repeated_service`) unless a configured pattern lists it
//!   twice. A CLIENT span is taken by one downstream only.
//! - **One upstream.** A segment links to at most one upstream in all: one trace root was started
//!   by one call. (That is stricter than one per key and pattern step, and it means the three keys
//!   of one flow make one bridge, not three.) Candidates rank by direction source (configured,
//!   learned, observed), then adjacent steps, then key priority (configuration order), then call
//!   evidence, then the nearest call and the nearest start.
//!
//! # Out-of-order arrival: hold, replace, or decide at once
//! A choice made on what has arrived can be wrong when the right upstream is still in flight:
//! with two flows on one circuit five seconds apart, the second MDSO segment may arrive before the
//! second Beorn segment, and the only candidate in sight is the first Beorn. So a choice is first
//! *held* (pending) for `settle` after the batch that found the first candidate; a strictly better
//! candidate arriving meanwhile replaces it, and the link is emitted when the hold ends (by
//! [`Correlator::poll`] or any later batch). Holding costs latency, so a choice is emitted at the
//! end of its batch instead when it is unambiguous:
//! - the candidate is an adjacent pattern step (or its direction came from the spans),
//! - through the downstream's most trusted key,
//! - with strong call evidence: a call in flight when the downstream started, or one whose route
//!   or peer matches it,
//! - and no other known upstream with evidence as good (same class) had such a call.
//!
//! The residual risk is an unseen, better upstream whose call overlapped the seen one's; raising
//! `settle` and turning `fast_path` off trades latency for that case. `settle = 0` decides at the
//! end of every batch, which still sorts out any order *within* a batch. Once emitted, a link is
//! final: a better candidate arriving later is counted as `slot_taken`, never a second bridge.
//!
//! # Rebuilding after a restart
//! [`Correlator::begin_rebuild`] puts the engine in rebuild mode: the caller feeds the recent
//! segments back from the store, and bridge spans among them restore the links already made
//! (their downstream stays linked, their call stays taken) instead of being ignored. Nothing is
//! decided until [`Correlator::finish_rebuild`], so a link restored late in the feed is never
//! made twice.
//!
//! # Idempotence and memory
//! Re-delivered spans change nothing and are not re-evaluated; a linked segment never links
//! again while it is remembered, and [`crate::bridge_id`] makes the same match after a restart
//! produce the same span id. A segment is remembered until `end + 2 × window`, clamped to between
//! one and two windows after its last arrival: long enough for a partner that starts up to a window
//! later and arrives up to a window after its end, and bounded by arrival rate times two windows
//! whatever the key cardinality or the senders' clocks.

use crate::config::{dur_ns, CorrelationConfig};
use crate::evidence::Allowance;
use crate::extract::{KeyExtractor, KeyMatch};
use crate::fxhash::FxHashMap;
use crate::index::{ExpiryQueue, IndexEntry, KeyIndex, MemoryKeyIndex};
use crate::learn::LearnedPatterns;
use crate::link::Link;
use crate::segment::{
    range_distance, Candidate, LinkState, NewSpan, RemoteSegment, Segment, SpanKeyRow,
};
use crate::stats::Stats;
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::traces::TraceEdge;
use seam_model::{SpanId, TraceId};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use seam_model::traces::is_synthetic;

mod decide;
mod phases;
#[cfg(test)]
mod tests;

/// Service names kept interned at most; beyond it each segment allocates its own.
const MAX_INTERNED: usize = 10_000;

/// One tenant's segments.
#[derive(Debug)]
struct Tenant {
    name: Arc<str>,
    segments: FxHashMap<TraceId, Segment>,
}

/// A touched segment's state before the batch, to tell whether it changed.
struct Before {
    trace: TraceId,
    start: i64,
    end: i64,
    root: Option<SpanId>,
    keys: usize,
    calls: u32,
    keys_changed: bool,
    /// The segment's estimated bytes before the batch (0 for a new one).
    bytes: usize,
}

impl Before {
    /// The state of `seg` now, with no key change noted yet.
    fn of(seg: &Segment, new: bool) -> Before {
        Before {
            trace: seg.trace_id,
            start: seg.start_ns,
            end: seg.end_ns,
            root: seg.root().map(|r| r.span_id),
            keys: seg.keys.len(),
            calls: seg.calls,
            keys_changed: false,
            bytes: if new { 0 } else { seg.approx_bytes() },
        }
    }
}

/// A candidate offered to a downstream segment.
struct Offer {
    downstream: TraceId,
    candidate: Candidate,
}

/// The correlation engine for all tenants. Not thread-safe by itself: wrap it in a lock, or keep
/// one per tenant shard (matches never cross tenants).
#[derive(Debug)]
pub struct Correlator<I: KeyIndex = MemoryKeyIndex> {
    config: CorrelationConfig,
    extractor: KeyExtractor,
    index: I,
    tenants: FxHashMap<Box<str>, Tenant>,
    expiry: ExpiryQueue<(Arc<str>, TraceId)>,
    /// Held decisions by due time (exact, not rounded: the due time is a latency).
    due: BTreeMap<i64, Vec<(Arc<str>, TraceId)>>,
    stats: Stats,
    learned: LearnedPatterns,
    window_ns: i64,
    keyless_ttl_ns: i64,
    settle_ns: i64,
    max_skew_ns: i64,
    allowance: Allowance,
    /// Services that a configured pattern lists twice: they may repeat on one path.
    repeatable: Vec<String>,
    /// Interned service names: segments share them instead of allocating per trace.
    services: FxHashMap<Box<str>, Arc<str>>,
    /// Estimated bytes of every segment held.
    segment_bytes: usize,
    /// True between [`Correlator::begin_rebuild`] and [`Correlator::finish_rebuild`].
    rebuilding: bool,
    scratch: Vec<IndexEntry>,
    /// Per batch: trace id -> index into the touched list (kept to reuse its allocation).
    seen: FxHashMap<TraceId, usize>,
    /// Local segments whose matching inputs changed, kept only once
    /// [`Correlator::track_changes`] is on (for publishing to replicas).
    changed: Option<Vec<(Arc<str>, TraceId)>>,
}

impl Correlator<MemoryKeyIndex> {
    /// A correlator with the in-memory key index.
    pub fn new(config: CorrelationConfig) -> Correlator<MemoryKeyIndex> {
        let index = MemoryKeyIndex::new(config.max_segments_per_value);
        Correlator::with_index(config, index)
    }
}

impl<I: KeyIndex> Correlator<I> {
    /// A correlator over `index`.
    pub fn with_index(config: CorrelationConfig, index: I) -> Correlator<I> {
        let window_ns = config.window_ns().max(1);
        let max_skew_ns = dur_ns(config.max_skew);
        let mut repeatable: Vec<String> = config
            .flow_patterns
            .iter()
            .flat_map(|p| {
                p.iter()
                    .enumerate()
                    .filter(|(i, s)| p[..*i].contains(s))
                    .map(|(_, s)| s.clone())
            })
            .collect();
        repeatable.sort();
        repeatable.dedup();
        Correlator {
            extractor: KeyExtractor::new(&config),
            index,
            tenants: FxHashMap::default(),
            seen: FxHashMap::default(),
            expiry: ExpiryQueue::default(),
            due: BTreeMap::new(),
            stats: Stats::default(),
            learned: LearnedPatterns::new(config.learn_min_links),
            window_ns,
            keyless_ttl_ns: dur_ns(config.keyless_ttl),
            settle_ns: dur_ns(config.settle),
            max_skew_ns,
            allowance: Allowance {
                skew_ns: max_skew_ns,
                handoff_ns: window_ns,
            },
            repeatable,
            services: FxHashMap::default(),
            segment_bytes: 0,
            rebuilding: false,
            scratch: Vec::new(),
            changed: None,
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// The key extractor (for logs, which the caller scans itself).
    pub fn extractor(&self) -> &KeyExtractor {
        &self.extractor
    }

    /// The key index.
    pub fn index(&self) -> &I {
        &self.index
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The flow patterns learned so far.
    pub fn learned(&self) -> &LearnedPatterns {
        &self.learned
    }

    /// The learned patterns, to load saved counts or to note that they were saved.
    pub fn learned_mut(&mut self) -> &mut LearnedPatterns {
        &mut self.learned
    }

    /// Roughly the bytes the engine holds (segments and the key index), for the memory budget.
    pub fn approx_bytes(&self) -> usize {
        self.segment_bytes + self.index.approx_bytes()
    }

    /// Distinct (tenant, key, value) triples in the index.
    pub fn active_keys(&self) -> usize {
        self.index.active_keys()
    }

    /// Segments remembered, over all tenants.
    pub fn segments(&self) -> usize {
        self.tenants.values().map(|t| t.segments.len()).sum()
    }

    /// Decisions held, waiting for `settle`.
    pub fn pending(&self) -> usize {
        self.tenants
            .values()
            .flat_map(|t| t.segments.values())
            .filter(|s| matches!(s.link, LinkState::Pending(_)))
            .count()
    }

    /// When the earliest held decision is due: the caller should [`Correlator::poll`] then.
    pub fn next_deadline(&self) -> Option<i64> {
        self.due.keys().next().copied()
    }

    /// One remembered segment.
    pub fn segment(&self, tenant: &str, trace_id: &TraceId) -> Option<&Segment> {
        self.tenants.get(tenant)?.segments.get(trace_id)
    }

    /// The remembered segments carrying `key` = `value`, earliest first.
    pub fn segments_for_key(&self, tenant: &str, key: &str, value: &str) -> Vec<&Segment> {
        let Some(t) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        self.index.candidates(tenant, key, value, &mut found);
        let mut out: Vec<&Segment> = found
            .iter()
            .filter_map(|e| t.segments.get(&e.trace_id))
            .collect();
        out.sort_by_key(|s| (s.start_ns, s.trace_id));
        out
    }

    /// Starts (or stops) recording which local segments with keys changed, for
    /// [`Correlator::take_changed`]. Off by default, so nothing accumulates unless a caller
    /// drains it.
    pub fn track_changes(&mut self, on: bool) {
        self.changed = on.then(Vec::new);
    }

    /// The local segments with keys whose time range, root or keys changed since the last call
    /// (tenant, trace id), when [`Correlator::track_changes`] is on. Remote segments are never
    /// listed, so a replica never re-publishes what it learnt from another.
    pub fn take_changed(&mut self) -> Vec<(Arc<str>, TraceId)> {
        self.changed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Takes in the summary of a segment another process holds (read from a shared key index),
    /// received at `arrival_ns`; returns the links decided now. The remote segment is matched
    /// against local segments like a local one (in both roles), but never against another remote
    /// one: the processes holding those decide that pair themselves. A summary for a trace id
    /// that has local spans here is ignored (the local segment is authoritative). A summary seen
    /// again merges into the remote segment (new spans and keys, a wider range).
    pub fn observe_remote(
        &mut self,
        tenant: &str,
        remote: &RemoteSegment,
        arrival_ns: i64,
    ) -> Vec<Link> {
        if remote.trace_id.is_zero() || remote.start_ns > remote.end_ns {
            return self.poll(arrival_ns);
        }
        let name = self.tenant_name(tenant);
        let t = self.tenants.get_mut(tenant).expect("tenant made above");
        if t.segments.get(&remote.trace_id).is_some_and(|s| !s.remote) {
            return self.poll(arrival_ns);
        }
        let seg = t.segments.entry(remote.trace_id).or_insert_with(|| {
            let mut s = Segment::new(remote.trace_id, arrival_ns);
            s.remote = true;
            s
        });
        let new = seg.spans.is_empty();
        let mut before = Before::of(seg, new);
        seg.last_arrival_ns = seg.last_arrival_ns.max(arrival_ns);
        let max_spans = self.config.max_spans_per_segment;
        for sp in &remote.spans {
            let service = remote
                .services
                .get(usize::from(sp.service))
                .cloned()
                .unwrap_or_else(|| "unknown_service".into());
            seg.add_span(
                NewSpan {
                    span_id: sp.span_id,
                    parent_span_id: sp.parent_span_id,
                    service: &service,
                    kind: sp.kind,
                    start_ns: sp.start_ns,
                    end_ns: sp.end_ns,
                    detail: sp.detail.clone(),
                },
                max_spans,
            );
        }
        seg.start_ns = seg.start_ns.min(remote.start_ns);
        seg.end_ns = seg.end_ns.max(remote.end_ns);
        for k in &remote.keys {
            before.keys_changed |= seg.add_key(k);
        }
        self.match_batch(&name, &[before], arrival_ns)
    }

    /// The tenant's shared name, making its entry on first use.
    fn tenant_name(&mut self, tenant: &str) -> Arc<str> {
        match self.tenants.get(tenant) {
            Some(t) => t.name.clone(),
            None => {
                let name: Arc<str> = tenant.into();
                self.tenants.insert(
                    tenant.into(),
                    Tenant {
                        name: name.clone(),
                        segments: FxHashMap::default(),
                    },
                );
                name
            }
        }
    }

    /// The shared copy of a service name.
    fn intern(&mut self, service: &str) -> Arc<str> {
        if let Some(s) = self.services.get(service) {
            return s.clone();
        }
        let s: Arc<str> = service.into();
        if self.services.len() < MAX_INTERNED {
            self.services.insert(service.into(), s.clone());
        }
        s
    }

    /// Enters rebuild mode (see the module doc): segments fed from now on are matched, but
    /// nothing is decided until [`Correlator::finish_rebuild`], and bridge spans restore their
    /// links.
    pub fn begin_rebuild(&mut self) {
        self.rebuilding = true;
    }

    /// Leaves rebuild mode and decides every choice held meanwhile, as of `now_ns`; returns the
    /// new links (the ones the stored bridges did not already make).
    pub fn finish_rebuild(&mut self, now_ns: i64) -> Vec<Link> {
        self.rebuilding = false;
        let held: Vec<(Arc<str>, TraceId)> = self
            .tenants
            .values()
            .flat_map(|t| {
                t.segments
                    .iter()
                    .filter(|(_, s)| matches!(s.link, LinkState::Pending(_)))
                    .map(|(id, _)| (t.name.clone(), *id))
            })
            .collect();
        held.into_iter()
            .filter_map(|(tenant, down)| self.decide(&tenant, down, now_ns))
            .collect()
    }

    /// Restores a link that a stored bridge span records: the downstream counts as linked to the
    /// upstream, and the call the bridge hangs under as taken. Either side may not have arrived
    /// yet; it is remembered for when it does.
    fn restore(
        &mut self,
        tenant: &Arc<str>,
        edge: &TraceEdge,
        parent: Option<SpanId>,
        arrival_ns: i64,
    ) {
        let t = self
            .tenants
            .get_mut(&**tenant)
            .expect("tenant made by caller");
        let mut made = 0;
        for id in [edge.upstream, edge.downstream] {
            t.segments.entry(id).or_insert_with(|| {
                made += 1;
                let mut s = Segment::new(id, arrival_ns);
                // Remembered like a keyed segment: its spans may come later in the feed.
                s.expires_ns = arrival_ns.saturating_add(self.window_ns.saturating_mul(2));
                self.expiry.push(s.expires_ns, (tenant.clone(), id));
                s
            });
        }
        self.segment_bytes += made * std::mem::size_of::<Segment>();
        let down = t.segments.get_mut(&edge.downstream).expect("made above");
        if !matches!(down.link, LinkState::Decided { .. }) {
            down.link = LinkState::Decided {
                upstream: edge.upstream,
            };
        }
        let up = t.segments.get_mut(&edge.upstream).expect("made above");
        if !up.downstreams.contains(&edge.downstream) {
            up.downstreams.push(edge.downstream);
        }
        if let Some(p) = parent {
            if up.consumer_of(p).is_none() {
                up.consumed.push((p, edge.downstream));
            }
        }
        self.stats.restored += 1;
    }

    /// Takes in one batch of spans that arrived at `arrival_ns`; returns the links decided now
    /// (unambiguous new ones, and held ones that came due).
    pub fn observe_spans(
        &mut self,
        tenant: &str,
        rs: &[ResourceSpans],
        arrival_ns: i64,
    ) -> Vec<Link> {
        let name = self.tenant_name(tenant);
        let touched = self.ingest(&name, rs, arrival_ns, None);
        self.match_batch(&name, &touched, arrival_ns)
    }

    /// [`Correlator::observe_spans`] that also appends to `rows` every key each new span carries
    /// (one row per span and key; duplicates of spans already seen and bridge spans give none),
    /// for the store's key index.
    pub fn observe_spans_with_keys(
        &mut self,
        tenant: &str,
        rs: &[ResourceSpans],
        arrival_ns: i64,
        rows: &mut Vec<SpanKeyRow>,
    ) -> Vec<Link> {
        let name = self.tenant_name(tenant);
        let touched = self.ingest(&name, rs, arrival_ns, Some(rows));
        self.match_batch(&name, &touched, arrival_ns)
    }

    /// The phases after ingest, for the segments a batch touched: refresh, evaluate, apply, then
    /// the held decisions due by `arrival_ns`.
    fn match_batch(&mut self, tenant: &Arc<str>, touched: &[Before], arrival_ns: i64) -> Vec<Link> {
        let dirty = self.refresh(tenant, touched);
        let offers = self.evaluate(tenant, &dirty);
        let mut links = self.apply(tenant, offers, arrival_ns);
        links.extend(self.poll(arrival_ns));
        links
    }

    /// Emits the held decisions due by `now_ns`.
    pub fn poll(&mut self, now_ns: i64) -> Vec<Link> {
        let mut links = Vec::new();
        if self.rebuilding {
            return links;
        }
        while let Some(entry) = self.due.first_entry() {
            if *entry.key() > now_ns {
                break;
            }
            for (tenant, trace) in entry.remove() {
                let held = self
                    .tenants
                    .get(&*tenant)
                    .and_then(|t| t.segments.get(&trace))
                    .is_some_and(
                        |s| matches!(&s.link, LinkState::Pending(p) if p.decide_at <= now_ns),
                    );
                if held {
                    links.extend(self.decide(&tenant, trace, now_ns));
                }
            }
        }
        links
    }

    /// Forgets segments and index entries whose time is up; returns how many segments went.
    pub fn evict(&mut self, now_ns: i64) -> usize {
        let mut n = 0;
        let tenants = &mut self.tenants;
        let stats = &mut self.stats;
        let bytes = &mut self.segment_bytes;
        self.expiry.pop_due(now_ns, |(tenant, trace)| {
            let Some(t) = tenants.get_mut(&*tenant) else {
                return;
            };
            if t.segments
                .get(&trace)
                .is_some_and(|s| s.expires_ns <= now_ns)
            {
                if let Some(s) = t.segments.remove(&trace) {
                    if matches!(s.link, LinkState::Pending(_)) {
                        stats.expired += 1;
                    }
                    *bytes = bytes.saturating_sub(s.approx_bytes());
                }
                n += 1;
            }
            if t.segments.is_empty() {
                tenants.remove(&*tenant);
            }
        });
        self.stats.segments_evicted += n as u64;
        self.index.evict(now_ns);
        n
    }

    /// [`Correlator::poll`] then [`Correlator::evict`]: what a periodic timer calls.
    pub fn tick(&mut self, now_ns: i64) -> Vec<Link> {
        let links = self.poll(now_ns);
        self.evict(now_ns);
        links
    }

    /// The trace a log record at `ts_ns` with these keys belongs to, among the remembered
    /// segments (see [`choose_log_trace`]).
    pub fn correlate_log(
        &self,
        tenant: &str,
        keys: &[KeyMatch],
        ts_ns: i64,
        service: Option<&str>,
    ) -> Option<TraceId> {
        let t = self.tenants.get(tenant)?;
        let mut found = Vec::new();
        let mut candidates = Vec::new();
        for m in keys {
            let prio = self.extractor.priority(&m.key).unwrap_or(usize::MAX);
            found.clear();
            self.index.candidates(tenant, &m.key, &m.value, &mut found);
            candidates.extend(found.iter().map(|c| LogCandidate {
                trace_id: c.trace_id,
                key_priority: prio,
                start_ns: c.start_ns,
                end_ns: c.end_ns,
                same_service: service.is_some_and(|svc| {
                    t.segments
                        .get(&c.trace_id)
                        .is_some_and(|s| s.services.iter().any(|x| **x == *svc))
                }),
            }));
        }
        choose_log_trace(&candidates, ts_ns, self.window_ns)
    }
}

/// A trace a log record could belong to, through one of its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogCandidate {
    /// The trace.
    pub trace_id: TraceId,
    /// The priority of the key it shares with the record (0 = most trusted).
    pub key_priority: usize,
    /// The trace's earliest span start, nanoseconds.
    pub start_ns: i64,
    /// The trace's latest span end, nanoseconds.
    pub end_ns: i64,
    /// True when the trace has spans of the record's own service.
    pub same_service: bool,
}

/// The trace a log record at `ts_ns` belongs to: among candidates within `window_ns` of it, one
/// of the record's own service first, then the most trusted key, then the nearest (0 inside the
/// trace's range), then the nearest start, then the smallest trace id.
pub fn choose_log_trace(
    candidates: &[LogCandidate],
    ts_ns: i64,
    window_ns: i64,
) -> Option<TraceId> {
    candidates
        .iter()
        .filter_map(|c| {
            let dist = range_distance(ts_ns, ts_ns, c.start_ns, c.end_ns);
            (dist <= window_ns).then_some((
                !c.same_service,
                c.key_priority,
                dist,
                (ts_ns - c.start_ns).unsigned_abs(),
                c.trace_id,
            ))
        })
        .min()
        .map(|r| r.4)
}
