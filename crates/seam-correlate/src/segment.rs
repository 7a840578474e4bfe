//! Trace segments: what one trace id's spans, seen so far in one tenant, tell the matcher.
//!
//! A segment grows as batches arrive, in any order and with duplicates: start and end are a running
//! min and max, spans are de-duplicated by id, keys by (key, value). The root is recomputed once per
//! batch rather than per span, because a late parent can turn an apparent root into a child.

use crate::evidence::{CallClass, Source};
use crate::extract::KeyMatch;
use crate::fxhash::FxHashSet;
use seam_model::{SpanId, TraceId};
use std::sync::Arc;

/// Up to this many spans, duplicates are found by scanning; beyond it a set is kept.
const SCAN_SPANS: usize = 16;

/// A span's kind, as OTLP says it: whether it made a call, received one, or neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Not set: the sender says nothing about calls.
    #[default]
    Unspecified = 0,
    /// Work inside a service.
    Internal = 1,
    /// Handling a request (the receiving side of a call).
    Server = 2,
    /// Making a request (the calling side).
    Client = 3,
    /// Sending a message that something else handles later.
    Producer = 4,
    /// Handling a message.
    Consumer = 5,
}

impl Kind {
    /// The kind of an OTLP `span.kind` value (unknown values are [`Kind::Unspecified`]).
    pub fn from_otlp(kind: i32) -> Kind {
        match kind {
            1 => Kind::Internal,
            2 => Kind::Server,
            3 => Kind::Client,
            4 => Kind::Producer,
            5 => Kind::Consumer,
            _ => Kind::Unspecified,
        }
    }

    /// True for the calling side: CLIENT or PRODUCER.
    pub fn calls(self) -> bool {
        matches!(self, Kind::Client | Kind::Producer)
    }

    /// True for the receiving side: SERVER or CONSUMER.
    pub fn receives(self) -> bool {
        matches!(self, Kind::Server | Kind::Consumer)
    }
}

/// The protocol a span says its call used, from its semantic-convention attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Protocol {
    /// The attributes do not say.
    #[default]
    Unknown = 0,
    /// `http.*` or `url.*` attributes.
    Http = 1,
    /// `rpc.system` (gRPC, netconf, ...).
    Rpc = 2,
    /// `db.system` / `db.system.name`: a database, never a traced service.
    Db = 3,
    /// `messaging.system` or a messaging destination.
    Messaging = 4,
}

impl Protocol {
    /// The protocol of its `as u8` value (unknown values are [`Protocol::Unknown`]).
    pub fn from_u8(v: u8) -> Protocol {
        match v {
            1 => Protocol::Http,
            2 => Protocol::Rpc,
            3 => Protocol::Db,
            4 => Protocol::Messaging,
            _ => Protocol::Unknown,
        }
    }
}

/// What a span says about the call it made or received, for telling who called whom.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanDetail {
    /// The protocol of the call.
    pub protocol: Protocol,
    /// Receiving side: the route template it served (`http.route`, e.g.
    /// `/api/v3/topologies/{circuit_id}`) or the queue it consumed (`messaging.destination.name`).
    pub route: Option<Box<str>>,
    /// The concrete URL path (`url.path`, `http.target`, or the path of `url.full`/`http.url`);
    /// for a PRODUCER, the queue it sent to.
    pub path: Option<Box<str>>,
    /// Calling side: the service or host it called (`peer.service`, `server.address`,
    /// `net.peer.name`, or the host of its URL), lowercased, without port.
    pub peer: Option<Box<str>>,
}

/// The part of a span the matcher keeps: enough to choose a bridge parent and to judge who called
/// whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactSpan {
    /// The span id.
    pub span_id: SpanId,
    /// The parent span id, if the span has one.
    pub parent_span_id: Option<SpanId>,
    /// Index into [`Segment::services`].
    pub service: u16,
    /// The span's kind.
    pub kind: Kind,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// End, nanoseconds since the Unix epoch (never before the start).
    pub end_ns: i64,
    /// Route, path and peer, for spans that made or received a call and said where.
    pub detail: Option<Box<SpanDetail>>,
}

impl CompactSpan {
    /// True when the span was running at `t` (ends included).
    pub fn covers(&self, t: i64) -> bool {
        self.start_ns <= t && t <= self.end_ns
    }

    /// How far `t` is from the span's range: 0 inside it.
    pub fn distance(&self, t: i64) -> i64 {
        range_distance(self.start_ns, self.end_ns, t, t)
    }
}

/// One correlation key one span carries, as the store's key index wants it: the engine finds
/// these while it reads the spans, so the store need not read them again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanKeyRow {
    /// The span's trace.
    pub trace_id: TraceId,
    /// Its resource's `service.name`.
    pub service: Arc<str>,
    /// The key's canonical name.
    pub key: Arc<str>,
    /// The value.
    pub value: Arc<str>,
    /// The span's start, nanoseconds.
    pub start_ns: i64,
    /// The span's end, nanoseconds.
    pub end_ns: i64,
}

/// One span handed to [`Segment::add_span`].
#[derive(Clone, Debug)]
pub struct NewSpan<'a> {
    /// The span id.
    pub span_id: SpanId,
    /// The parent span id, if any.
    pub parent_span_id: Option<SpanId>,
    /// Its resource's `service.name`.
    pub service: &'a Arc<str>,
    /// Its kind.
    pub kind: Kind,
    /// Start, nanoseconds.
    pub start_ns: i64,
    /// End, nanoseconds.
    pub end_ns: i64,
    /// Route, path and peer, when it has them.
    pub detail: Option<Box<SpanDetail>>,
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
    /// A link was emitted to this upstream (or restored from a stored bridge); nothing else is
    /// linked.
    Decided { upstream: TraceId },
}

/// A held decision: the best candidate so far and what makes it ambiguous.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pending {
    pub best: Candidate,
    pub decide_at: i64,
    /// Arrival time of the batch that found the first candidate: latency is measured from here.
    pub arrival_ns: i64,
    /// Distinct upstreams seen with strong call evidence (a call in flight or matching route).
    pub strong: Strong,
    /// True once the decision is filed under its due time.
    pub filed: bool,
}

/// Up to four upstreams with strong call evidence, with their evidence class: inline, because two
/// of the best class already make the fast path unsafe and most segments see one.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Strong {
    items: [(TraceId, Class); 4],
    len: u8,
}

impl Strong {
    /// Notes an upstream with strong evidence (its best class if seen twice).
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
}

/// The part of a [`Score`] that says how good the evidence is, before distances.
pub(crate) type Class = (Source, usize, usize, CallClass);

/// Candidate order: a configured pattern, then a learned one, then what the spans show; adjacent
/// pattern steps first; trusted keys first; then the call evidence (a matching route or peer, a
/// call in flight, a call nearby, none); then the nearest call, the nearest start, and the trace
/// id so ties break the same way everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Score {
    pub source: Source,
    pub pattern_distance: usize,
    pub key_priority: usize,
    pub call: CallClass,
    pub call_distance_ns: i64,
    pub abs_gap_ns: i64,
    pub upstream: TraceId,
}

impl Score {
    /// The evidence class: direction source, pattern distance, key priority, call evidence.
    pub fn class(&self) -> Class {
        (
            self.source,
            self.pattern_distance,
            self.key_priority,
            self.call,
        )
    }
}

/// One trace id's spans seen so far in one tenant.
#[derive(Clone, Debug)]
pub struct Segment {
    /// The trace id.
    pub trace_id: TraceId,
    /// The services whose spans are in the segment, in the order first seen.
    pub services: Vec<Arc<str>>,
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
    /// True once any kept span has a kind: then a segment without CLIENT or PRODUCER spans made
    /// no call, and a SERVER root was called by someone.
    pub kinds_known: bool,
    /// Kept spans that made a call (CLIENT or PRODUCER).
    pub calls: u32,
    /// CLIENT spans already taken by a link, with the downstream they called: one request is
    /// served by one handler.
    pub(crate) consumed: Vec<(SpanId, TraceId)>,
    /// Downstream segments linked under this one.
    pub(crate) downstreams: Vec<TraceId>,
    /// Span ids, kept only once there are more than [`SCAN_SPANS`] spans.
    span_ids: FxHashSet<SpanId>,
    /// Bytes of the kept spans' details (for the memory estimate).
    detail_bytes: usize,
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
    pub services: Vec<Arc<str>>,
    /// The earliest span start, nanoseconds.
    pub start_ns: i64,
    /// The latest span end, nanoseconds.
    pub end_ns: i64,
    /// Some of its spans, the root first, then its calls: enough to choose a bridge parent.
    pub spans: Vec<CompactSpan>,
    /// Its correlation keys.
    pub keys: Vec<KeyMatch>,
}

impl RemoteSegment {
    /// The summary of a local segment, with at most `max_spans` spans: the root first, then the
    /// spans that made calls, then the rest.
    pub fn of(seg: &Segment, max_spans: usize) -> RemoteSegment {
        let root = seg.root().map(|r| r.span_id);
        let mut spans: Vec<CompactSpan> = seg.root().cloned().into_iter().collect();
        let rest = || seg.spans.iter().filter(|s| Some(s.span_id) != root);
        spans.extend(rest().filter(|s| s.kind.calls()).cloned());
        spans.extend(rest().filter(|s| !s.kind.calls()).cloned());
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
            kinds_known: false,
            calls: 0,
            consumed: Vec::new(),
            downstreams: Vec::new(),
            span_ids: FxHashSet::default(),
            detail_bytes: 0,
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

    /// True while no span has arrived (a segment known only from a restored bridge).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.spans_not_kept == 0
    }

    /// Adds one span; returns false for a span id already seen (duplicate delivery). Keeps at most
    /// `max_spans` spans; later ones only widen the time range. Call [`Segment::refresh`] after a
    /// batch.
    pub fn add_span(&mut self, span: NewSpan<'_>, max_spans: usize) -> bool {
        if self.has_span(span.span_id) {
            return false;
        }
        let end_ns = span.end_ns.max(span.start_ns);
        self.start_ns = self.start_ns.min(span.start_ns);
        self.end_ns = self.end_ns.max(end_ns);
        if self.spans.len() >= max_spans {
            self.spans_not_kept += 1;
            return true;
        }
        let service = match self.services.iter().position(|s| **s == **span.service) {
            Some(i) => i,
            None => {
                self.services.push(span.service.clone());
                self.services.len() - 1
            }
        };
        if self.spans.len() == SCAN_SPANS {
            self.span_ids.extend(self.spans.iter().map(|s| s.span_id));
        }
        if self.spans.len() >= SCAN_SPANS {
            self.span_ids.insert(span.span_id);
        }
        self.kinds_known |= span.kind != Kind::Unspecified;
        if span.kind.calls() {
            self.calls += 1;
        }
        if let Some(d) = &span.detail {
            self.detail_bytes += std::mem::size_of::<SpanDetail>()
                + [&d.route, &d.path, &d.peer]
                    .iter()
                    .map(|x| x.as_ref().map_or(0, |v| v.len()))
                    .sum::<usize>();
        }
        self.spans.push(CompactSpan {
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            service: u16::try_from(service).unwrap_or(u16::MAX),
            kind: span.kind,
            start_ns: span.start_ns,
            end_ns,
            detail: span.detail,
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
        self.add_key_at(key, value, exact).0
    }

    /// [`Segment::add_key_parts`], also saying where in `keys` the key is.
    pub(crate) fn add_key_at(&mut self, key: &Arc<str>, value: &str, exact: bool) -> (bool, usize) {
        match self
            .keys
            .iter_mut()
            .position(|k| k.key == *key && &*k.value == value)
        {
            Some(i) if self.keys[i].exact || !exact => (false, i),
            Some(i) => {
                self.keys[i].exact = true;
                (true, i)
            }
            None => {
                self.keys.push(KeyMatch {
                    key: key.clone(),
                    value: value.into(),
                    exact,
                });
                (true, self.keys.len() - 1)
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

    /// [`Segment::primary_service`], shared.
    pub fn primary_service_arc(&self) -> Arc<str> {
        self.root()
            .and_then(|r| self.services.get(usize::from(r.service)))
            .cloned()
            .unwrap_or_else(|| "unknown_service".into())
    }

    /// The service name of a kept span.
    pub fn service_of(&self, span: &CompactSpan) -> &str {
        service_at(&self.services, span.service)
    }

    /// True when the root received a call (SERVER or CONSUMER): something called this trace.
    pub fn root_receives(&self) -> bool {
        self.root().is_some_and(|r| r.kind.receives())
    }

    /// The span that was running at `t` innermost: among spans running at `t`, the one that ends
    /// first, latest start on ties.
    pub fn in_flight(&self, t: i64) -> Option<&CompactSpan> {
        self.spans
            .iter()
            .filter(|s| s.covers(t))
            .min_by_key(|s| (s.end_ns, std::cmp::Reverse(s.start_ns), s.span_id))
    }

    /// A kept span by id.
    pub fn span(&self, id: SpanId) -> Option<&CompactSpan> {
        self.spans.iter().find(|s| s.span_id == id)
    }

    /// The time between two segments' ranges: 0 when they overlap.
    pub fn distance(&self, other: &Segment) -> i64 {
        range_distance(self.start_ns, self.end_ns, other.start_ns, other.end_ns)
    }

    /// The key match for `key` and `value`, if the segment has it.
    pub fn key(&self, key: &str, value: &str) -> Option<&KeyMatch> {
        self.keys
            .iter()
            .find(|k| &*k.key == key && &*k.value == value)
    }

    /// The downstream that took CLIENT span `span`, if one did.
    pub(crate) fn consumer_of(&self, span: SpanId) -> Option<TraceId> {
        self.consumed
            .iter()
            .find(|(s, _)| *s == span)
            .map(|(_, d)| *d)
    }

    /// Roughly the heap and inline bytes the segment holds, for the memory budget.
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        size_of::<Segment>()
            + self.spans.capacity() * size_of::<CompactSpan>()
            + self.detail_bytes
            + self.services.capacity() * size_of::<Arc<str>>()
            + self
                .keys
                .iter()
                .map(|k| size_of::<KeyMatch>() + k.value.len() + 16)
                .sum::<usize>()
            + self.span_ids.capacity() * (size_of::<SpanId>() + 1)
            + (self.consumed.capacity() + self.downstreams.capacity()) * 24
    }
}

/// The service at index `i` of a segment's service list ([`CompactSpan::service`]).
pub(crate) fn service_at(services: &[Arc<str>], i: u16) -> &str {
    services
        .get(usize::from(i))
        .map_or("unknown_service", |s| s)
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

    #[allow(clippy::too_many_arguments)]
    fn add(
        s: &mut Segment,
        id: SpanId,
        parent: Option<SpanId>,
        service: &str,
        start: i64,
        end: i64,
        max: usize,
    ) -> bool {
        let service: Arc<str> = service.into();
        s.add_span(
            NewSpan {
                span_id: id,
                parent_span_id: parent,
                service: &service,
                kind: Kind::Unspecified,
                start_ns: start,
                end_ns: end,
                detail: None,
            },
            max,
        )
    }

    #[test]
    fn merges_batches_in_any_order_and_ignores_duplicates() {
        let mut s = seg();
        // The child arrives first: it looks like the root until its parent comes.
        assert!(add(&mut s, sid(2), Some(sid(1)), "beorn", 20, 30, 10));
        s.refresh();
        assert_eq!(s.root().unwrap().span_id, sid(2));
        assert!(add(&mut s, sid(1), None, "beorn", 10, 50, 10));
        assert!(!add(&mut s, sid(1), None, "beorn", 10, 50, 10));
        s.refresh();
        assert_eq!(s.root().unwrap().span_id, sid(1));
        assert_eq!((s.start_ns, s.end_ns, s.spans.len()), (10, 50, 2));
        assert_eq!(s.primary_service(), "beorn");
        assert!(add(&mut s, sid(3), Some(sid(1)), "db", 5, 4, 10));
        assert_eq!(s.spans[2].end_ns, 5, "an end before the start is clamped");
        assert_eq!(s.services, [Arc::<str>::from("beorn"), "db".into()]);
        assert_eq!(s.start_ns, 5);
    }

    #[test]
    fn large_segments_switch_to_a_set_and_still_find_duplicates() {
        let mut s = seg();
        for i in 1..=40u8 {
            assert!(add(&mut s, sid(i), Some(sid(1)), "a", 10, 20, 100));
        }
        assert_eq!(s.span_ids.len(), 40);
        for i in 1..=40u8 {
            assert!(!add(&mut s, sid(i), None, "a", 0, 99, 100), "{i}");
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
        add(&mut s, sid(1), None, "a", 10, 20, 1);
        assert!(add(&mut s, sid(2), Some(sid(1)), "a", 0, 40, 1));
        assert_eq!((s.spans.len(), s.spans_not_kept), (1, 1));
        assert_eq!((s.start_ns, s.end_ns), (0, 40));
    }

    #[test]
    fn root_prefers_parentless_then_orphans_then_earliest() {
        let mut s = seg();
        add(&mut s, sid(5), Some(sid(9)), "a", 1, 2, 10);
        add(&mut s, sid(6), None, "a", 3, 4, 10);
        s.refresh();
        assert_eq!(s.root().unwrap().span_id, sid(6));
    }

    #[test]
    fn the_call_in_flight_is_the_innermost_running_span() {
        let mut s = seg();
        add(&mut s, sid(1), None, "beorn", 0, 100, 10);
        add(&mut s, sid(2), Some(sid(1)), "beorn", 10, 60, 10);
        add(&mut s, sid(3), Some(sid(1)), "beorn", 70, 80, 10);
        s.refresh();
        assert_eq!(s.in_flight(20).unwrap().span_id, sid(2));
        assert_eq!(s.in_flight(65).unwrap().span_id, sid(1));
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
