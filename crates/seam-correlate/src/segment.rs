//! Trace segments: what one trace id's spans, seen so far in one tenant, tell the matcher.
//!
//! A segment grows as batches arrive, in any order and with duplicates: start and end are a running
//! min and max, spans are de-duplicated by id, keys by (key, value). The root is recomputed once per
//! batch rather than per span, because a late parent can turn an apparent root into a child.

use crate::extract::KeyMatch;
use crate::fxhash::FxHashSet;
use seam_model::{SpanId, TraceId};
use std::sync::Arc;

/// Up to this many spans, duplicates are found by scanning; beyond it a set is kept.
const SCAN_SPANS: usize = 16;

/// The part of a span the matcher keeps: enough to choose a bridge parent and to show the flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactSpan {
    /// The span id.
    pub span_id: SpanId,
    /// The parent span id, if the span has one.
    pub parent_span_id: Option<SpanId>,
    /// Index into [`Segment::services`].
    pub service: u16,
    /// The span name.
    pub name: Box<str>,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// End, nanoseconds since the Unix epoch (never before the start).
    pub end_ns: i64,
}

impl CompactSpan {
    /// True when the span was running at `t` (ends included).
    pub fn covers(&self, t: i64) -> bool {
        self.start_ns <= t && t <= self.end_ns
    }
}

/// How a segment's link to its upstream stands. A segment has at most one upstream: one trace's
/// root was started by one incoming call.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum LinkState {
    /// No usable candidate yet.
    #[default]
    Open,
    /// A candidate is held until `decide_at` unless it becomes unambiguous sooner.
    Pending(Box<Pending>),
    /// A link was emitted to this upstream; nothing else is linked.
    Decided { upstream: TraceId },
}

/// A held decision: the best candidate so far and what makes it ambiguous.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pending {
    pub best: Candidate,
    pub decide_at: i64,
    /// Arrival time of the batch that found the first candidate: latency is measured from here.
    pub arrival_ns: i64,
    /// Distinct upstreams seen with a span in flight at this segment's start.
    pub in_flight: InFlight,
    /// True once the decision is filed under its due time.
    pub filed: bool,
}

/// Up to four upstreams with a call in flight, with their evidence class: inline, because two of
/// the best class already make the fast path unsafe and most segments see one.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct InFlight {
    items: [(TraceId, Class); 4],
    len: u8,
}

impl InFlight {
    /// Notes an upstream in flight (its best class if seen twice).
    pub fn note(&mut self, upstream: TraceId, class: Class) {
        let n = usize::from(self.len);
        if let Some(x) = self.items[..n].iter_mut().find(|x| x.0 == upstream) {
            x.1 = x.1.min(class);
        } else if n < self.items.len() {
            self.items[n] = (upstream, class);
            self.len += 1;
        }
    }

    /// How many noted upstreams have evidence of exactly `class`.
    pub fn count(&self, class: Class) -> usize {
        self.items[..usize::from(self.len)]
            .iter()
            .filter(|x| x.1 == class)
            .count()
    }
}

/// One upstream candidate for a downstream segment, with its rank (lower is better).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Candidate {
    pub upstream: TraceId,
    /// Index into the downstream segment's `keys` of the key that matched.
    pub key_index: usize,
    pub score: Score,
    /// The upstream had a span running when the downstream started.
    pub in_flight: bool,
}

/// The part of a [`Score`] that says how good the evidence is, before time proximity.
pub(crate) type Class = (bool, usize, usize);

/// Candidate order: pattern-derived before time-derived, adjacent pattern steps first, trusted
/// keys first, then the nearest start, then the trace id so ties break the same way everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Score {
    pub by_time: bool,
    pub pattern_distance: usize,
    pub key_priority: usize,
    pub abs_gap_ns: i64,
    pub upstream: TraceId,
}

impl Score {
    /// The evidence class: direction source, pattern distance, key priority.
    pub fn class(&self) -> Class {
        (self.by_time, self.pattern_distance, self.key_priority)
    }
}

/// One trace id's spans seen so far in one tenant.
#[derive(Clone, Debug)]
pub struct Segment {
    /// The trace id.
    pub trace_id: TraceId,
    /// The services whose spans are in the segment, in the order first seen.
    pub services: Vec<String>,
    /// The earliest span start, nanoseconds.
    pub start_ns: i64,
    /// The latest span end, nanoseconds.
    pub end_ns: i64,
    /// The spans kept (up to the configured limit), in arrival order.
    pub spans: Vec<CompactSpan>,
    /// Spans seen beyond the limit: they still move start and end and bring keys.
    pub spans_not_kept: u64,
    /// The correlation keys found on the spans and their resources.
    pub keys: Vec<KeyMatch>,
    /// When the first batch with this trace id arrived.
    pub first_arrival_ns: i64,
    /// When the latest batch with this trace id arrived.
    pub last_arrival_ns: i64,
    /// Span ids, kept only once there are more than [`SCAN_SPANS`] spans.
    span_ids: FxHashSet<SpanId>,
    root: usize,
    pub(crate) link: LinkState,
    pub(crate) expires_ns: i64,
    /// True for a segment another process holds, known from its [`RemoteSegment`] summary.
    pub(crate) remote: bool,
}

/// A summary of a segment held by another process (a replica sharing the key index): what the
/// matcher needs to relate it to local segments and to build a bridge under one of its spans.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteSegment {
    /// The trace id.
    pub trace_id: TraceId,
    /// The services of its spans; [`CompactSpan::service`] indexes this list.
    pub services: Vec<String>,
    /// The earliest span start, nanoseconds.
    pub start_ns: i64,
    /// The latest span end, nanoseconds.
    pub end_ns: i64,
    /// Some of its spans, the root first: enough to choose a bridge parent.
    pub spans: Vec<CompactSpan>,
    /// Its correlation keys.
    pub keys: Vec<KeyMatch>,
}

impl RemoteSegment {
    /// The summary of a local segment, with at most `max_spans` spans (the root always among
    /// them, first).
    pub fn of(seg: &Segment, max_spans: usize) -> RemoteSegment {
        let root = seg.root().map(|r| r.span_id);
        let mut spans: Vec<CompactSpan> = seg.root().cloned().into_iter().collect();
        spans.extend(
            seg.spans
                .iter()
                .filter(|s| Some(s.span_id) != root)
                .take(max_spans.saturating_sub(1))
                .cloned(),
        );
        spans.truncate(max_spans.max(1));
        RemoteSegment {
            trace_id: seg.trace_id,
            services: seg.services.clone(),
            start_ns: seg.start_ns,
            end_ns: seg.end_ns,
            spans,
            keys: seg.keys.clone(),
        }
    }
}

impl Segment {
    /// An empty segment, first seen at `arrival_ns`.
    pub fn new(trace_id: TraceId, arrival_ns: i64) -> Segment {
        Segment {
            trace_id,
            services: Vec::new(),
            start_ns: i64::MAX,
            end_ns: i64::MIN,
            spans: Vec::new(),
            spans_not_kept: 0,
            keys: Vec::new(),
            first_arrival_ns: arrival_ns,
            last_arrival_ns: arrival_ns,
            span_ids: FxHashSet::default(),
            root: 0,
            link: LinkState::Open,
            expires_ns: i64::MIN,
            remote: false,
        }
    }

    /// True when the segment is another process's, known from a [`RemoteSegment`].
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// Adds one span; returns false for a span id already seen (duplicate delivery). Keeps at most
    /// `max_spans` spans; later ones only widen the time range. Call [`Segment::refresh`] after a
    /// batch.
    #[allow(clippy::too_many_arguments)]
    pub fn add_span(
        &mut self,
        span_id: SpanId,
        parent_span_id: Option<SpanId>,
        service: &str,
        name: &str,
        start_ns: i64,
        end_ns: i64,
        max_spans: usize,
    ) -> bool {
        if self.has_span(span_id) {
            return false;
        }
        let end_ns = end_ns.max(start_ns);
        self.start_ns = self.start_ns.min(start_ns);
        self.end_ns = self.end_ns.max(end_ns);
        if self.spans.len() >= max_spans {
            self.spans_not_kept += 1;
            return true;
        }
        let service = match self.services.iter().position(|s| s == service) {
            Some(i) => i,
            None => {
                self.services.push(service.to_string());
                self.services.len() - 1
            }
        };
        if self.spans.len() == SCAN_SPANS {
            self.span_ids.extend(self.spans.iter().map(|s| s.span_id));
        }
        if self.spans.len() >= SCAN_SPANS {
            self.span_ids.insert(span_id);
        }
        self.spans.push(CompactSpan {
            span_id,
            parent_span_id,
            service: u16::try_from(service).unwrap_or(u16::MAX),
            name: name.into(),
            start_ns,
            end_ns,
        });
        true
    }

    /// True when a span with this id is already kept.
    pub fn has_span(&self, id: SpanId) -> bool {
        if self.spans.len() > SCAN_SPANS {
            self.span_ids.contains(&id)
        } else {
            self.spans.iter().any(|s| s.span_id == id)
        }
    }

    /// Adds a key; returns true when it is new (or newly exact).
    pub fn add_key(&mut self, m: &KeyMatch) -> bool {
        self.add_key_parts(&m.key, &m.value, m.exact)
    }

    /// [`Segment::add_key`] without building a [`KeyMatch`] (no allocation when already known).
    pub fn add_key_parts(&mut self, key: &Arc<str>, value: &str, exact: bool) -> bool {
        match self
            .keys
            .iter_mut()
            .find(|k| k.key == *key && k.value == value)
        {
            Some(k) if k.exact || !exact => false,
            Some(k) => {
                k.exact = true;
                true
            }
            None => {
                self.keys.push(KeyMatch {
                    key: key.clone(),
                    value: value.to_string(),
                    exact,
                });
                true
            }
        }
    }

    /// Recomputes the root after a batch: the earliest span with no parent, else the earliest whose
    /// parent is not in the segment, else the earliest span.
    pub fn refresh(&mut self) {
        let orphan = |s: &CompactSpan| match s.parent_span_id {
            None => 0,
            Some(p) if !self.has_span(p) => 1,
            Some(_) => 2,
        };
        self.root = (0..self.spans.len())
            .min_by_key(|&i| {
                let s = &self.spans[i];
                (orphan(s), s.start_ns, s.span_id)
            })
            .unwrap_or(0);
    }

    /// The root span (see [`Segment::refresh`]); `None` only before the first span is kept.
    pub fn root(&self) -> Option<&CompactSpan> {
        self.spans.get(self.root)
    }

    /// The service of the root span: the segment's identity for flow patterns.
    pub fn primary_service(&self) -> &str {
        self.root()
            .map_or("unknown_service", |r| self.service_of(r))
    }

    /// The service name of a kept span.
    pub fn service_of(&self, span: &CompactSpan) -> &str {
        service_at(&self.services, span.service)
    }

    /// The span that was making the call at `t`: among spans running at `t`, the one that ends
    /// first (the innermost), latest start on ties.
    pub fn in_flight(&self, t: i64) -> Option<&CompactSpan> {
        self.spans
            .iter()
            .filter(|s| s.covers(t))
            .min_by_key(|s| (s.end_ns, std::cmp::Reverse(s.start_ns), s.span_id))
    }

    /// The bridge parent for a downstream that started at `t`: the span in flight, else the root.
    pub fn call_parent(&self, t: i64) -> Option<&CompactSpan> {
        self.in_flight(t).or_else(|| self.root())
    }

    /// The time between two segments' ranges: 0 when they overlap.
    pub fn distance(&self, other: &Segment) -> i64 {
        range_distance(self.start_ns, self.end_ns, other.start_ns, other.end_ns)
    }

    /// The key match for `key` and `value`, if the segment has it.
    pub fn key(&self, key: &str, value: &str) -> Option<&KeyMatch> {
        self.keys
            .iter()
            .find(|k| &*k.key == key && k.value == value)
    }
}

/// The service at index `i` of a segment's service list ([`CompactSpan::service`]).
pub(crate) fn service_at(services: &[String], i: u16) -> &str {
    services
        .get(usize::from(i))
        .map_or("unknown_service", |s| s.as_str())
}

/// The gap between two time ranges, 0 when they overlap.
pub fn range_distance(a_start: i64, a_end: i64, b_start: i64, b_end: i64) -> i64 {
    if a_end < b_start {
        b_start.saturating_sub(a_end)
    } else if b_end < a_start {
        a_start.saturating_sub(b_end)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> SpanId {
        SpanId([n; 8])
    }

    fn seg() -> Segment {
        Segment::new(TraceId([1; 16]), 0)
    }

    #[test]
    fn merges_batches_in_any_order_and_ignores_duplicates() {
        let mut s = seg();
        // The child arrives first: it looks like the root until its parent comes.
        assert!(s.add_span(sid(2), Some(sid(1)), "beorn", "call", 20, 30, 10));
        s.refresh();
        assert_eq!(s.root().unwrap().span_id, sid(2));
        assert!(s.add_span(sid(1), None, "beorn", "root", 10, 50, 10));
        assert!(!s.add_span(sid(1), None, "beorn", "root", 10, 50, 10));
        s.refresh();
        assert_eq!(s.root().unwrap().span_id, sid(1));
        assert_eq!((s.start_ns, s.end_ns, s.spans.len()), (10, 50, 2));
        assert_eq!(s.primary_service(), "beorn");
        assert!(s.add_span(sid(3), Some(sid(1)), "db", "q", 5, 4, 10));
        assert_eq!(s.spans[2].end_ns, 5, "an end before the start is clamped");
        assert_eq!(s.services, ["beorn", "db"]);
        assert_eq!(s.start_ns, 5);
    }

    #[test]
    fn large_segments_switch_to_a_set_and_still_find_duplicates() {
        let mut s = seg();
        for i in 1..=40u8 {
            assert!(s.add_span(sid(i), Some(sid(1)), "a", "x", 10, 20, 100));
        }
        assert_eq!(s.span_ids.len(), 40);
        for i in 1..=40u8 {
            assert!(!s.add_span(sid(i), None, "a", "x", 0, 99, 100), "{i}");
        }
        assert_eq!((s.spans.len(), s.start_ns, s.end_ns), (40, 10, 20));
        s.refresh();
        assert_eq!(
            s.root().unwrap().span_id,
            sid(1),
            "its parent (itself) is known: earliest"
        );
    }

    #[test]
    fn spans_beyond_the_limit_widen_the_range_only() {
        let mut s = seg();
        s.add_span(sid(1), None, "a", "r", 10, 20, 1);
        assert!(s.add_span(sid(2), Some(sid(1)), "a", "c", 0, 40, 1));
        assert_eq!((s.spans.len(), s.spans_not_kept), (1, 1));
        assert_eq!((s.start_ns, s.end_ns), (0, 40));
    }

    #[test]
    fn root_prefers_parentless_then_orphans_then_earliest() {
        let mut s = seg();
        s.add_span(sid(5), Some(sid(9)), "a", "orphan", 1, 2, 10);
        s.add_span(sid(6), None, "a", "true root", 3, 4, 10);
        s.refresh();
        assert_eq!(s.root().unwrap().span_id, sid(6));
    }

    #[test]
    fn the_call_in_flight_is_the_innermost_running_span() {
        let mut s = seg();
        s.add_span(sid(1), None, "beorn", "root", 0, 100, 10);
        s.add_span(sid(2), Some(sid(1)), "beorn", "POST mdso", 10, 60, 10);
        s.add_span(sid(3), Some(sid(1)), "beorn", "later", 70, 80, 10);
        s.refresh();
        assert_eq!(s.call_parent(20).unwrap().span_id, sid(2));
        assert_eq!(s.call_parent(65).unwrap().span_id, sid(1));
        assert_eq!(s.call_parent(200).unwrap().span_id, sid(1), "else the root");
        assert!(s.in_flight(200).is_none());
    }

    #[test]
    fn keys_upgrade_to_exact_and_distance_is_zero_on_overlap() {
        let mut s = seg();
        let k: Arc<str> = "circuit_id".into();
        let m = |exact| KeyMatch {
            key: k.clone(),
            value: "c".into(),
            exact,
        };
        assert!(s.add_key(&m(false)));
        assert!(!s.add_key(&m(false)));
        assert!(s.add_key(&m(true)));
        assert!(!s.add_key(&m(false)));
        assert_eq!(s.keys.len(), 1);
        assert!(s.key("circuit_id", "c").unwrap().exact);
        assert_eq!(range_distance(0, 10, 5, 20), 0);
        assert_eq!(range_distance(0, 10, 15, 20), 5);
        assert_eq!(range_distance(15, 20, 0, 10), 5);
    }
}
