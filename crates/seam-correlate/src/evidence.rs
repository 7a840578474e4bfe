//! Call evidence: what the spans themselves say about who called whom.
//!
//! A downstream segment was started by a call. The upstream that made it has a CLIENT (or
//! PRODUCER) span that was running when the downstream's root started; if it says where it went
//! (a URL path, a peer service or host), that must fit the downstream: its `http.route` template,
//! its own URL path, or its service name. From the strongest to none:
//!
//! - [`CallClass::Matched`]: a call whose path fits the downstream's route or whose peer names the
//!   downstream's service, running when the downstream started (within the clock-skew allowance);
//! - [`CallClass::InFlight`]: a call running exactly when the downstream started;
//! - [`CallClass::Near`]: a call that started up to the skew allowance after, or ended up to that
//!   long before, the downstream started (a PRODUCER's message may be taken up to a window later:
//!   an asynchronous hand-off);
//! - [`CallClass::None`]: no call near the downstream's start.
//!
//! A call whose path contradicts the downstream's route, or whose protocol differs from the
//! downstream's (a netconf or database call cannot have started an HTTP handler), went somewhere
//! else and is no evidence at all; a database call never is. A CLIENT span already taken by another downstream is skipped: one request is served by
//! one handler. Segments whose spans carry no kind at all (older or hand-made instrumentation)
//! are judged by any span running near the downstream's start, as calls of unknown kind.

use crate::extract::url_path;
use crate::segment::{CompactSpan, Kind, Protocol, Segment, SpanDetail};
use seam_model::otlp::common::v1::{any_value::Value, KeyValue};
use seam_model::SpanId;

/// Where the direction of a link came from; lower is more trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Source {
    /// A configured flow pattern.
    Configured = 0,
    /// A pattern learned from earlier links decided on strong evidence.
    Learned = 1,
    /// The call evidence of the two segments, or their start times when there is none.
    #[default]
    Observed = 2,
}

impl Source {
    /// The name used in logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Configured => "pattern",
            Source::Learned => "learned",
            Source::Observed => "observed",
        }
    }
}

/// How strongly the upstream's spans show the call that started the downstream; lower is
/// stronger (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum CallClass {
    /// A call near the downstream's start whose route or peer fits the downstream.
    Matched = 0,
    /// A call running when the downstream started.
    InFlight = 1,
    /// A call that ran shortly before or after the downstream started.
    Near = 2,
    /// No call near the downstream's start.
    #[default]
    None = 3,
}

impl CallClass {
    /// True for the evidence the fast path and learned patterns trust: a matching or in-flight
    /// call.
    pub fn is_strong(self) -> bool {
        matches!(self, CallClass::Matched | CallClass::InFlight)
    }

    /// The name used in logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CallClass::Matched => "matched_call",
            CallClass::InFlight => "call_in_flight",
            CallClass::Near => "call_nearby",
            CallClass::None => "time_order",
        }
    }
}

/// The call an upstream made for a downstream, by [`best_call`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    /// The upstream span that made the call: the bridge's parent.
    pub span: SpanId,
    pub class: CallClass,
    /// How far the downstream's start is from the call's range (0 inside it).
    pub distance_ns: i64,
    /// True for a CLIENT span: taking it uses it up.
    pub consumes: bool,
}

/// How far apart clocks and hand-offs may be when judging a call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allowance {
    /// Clock skew between hosts: a call may start this much after, or end this much before, the
    /// downstream's start.
    pub skew_ns: i64,
    /// How long after a PRODUCER's span ended its message may be taken up.
    pub handoff_ns: i64,
}

/// The call of `up` that best explains `down`'s start, if any (see the module doc).
pub(crate) fn best_call(up: &Segment, down: &Segment, allow: Allowance) -> Option<Call> {
    let t = down.start_ns;
    let target = down.root().and_then(|r| r.detail.as_deref());
    let service = down.primary_service();
    // Ranked by class, distance, then the innermost call (ends first, starts last), then id.
    type Rank = (CallClass, i64, i64, std::cmp::Reverse<i64>, SpanId);
    let mut best: Option<(Call, Rank)> = None;
    for s in &up.spans {
        if up.kinds_known && !s.kind.calls() {
            continue;
        }
        if s.kind == Kind::Client
            && up
                .consumer_of(s.span_id)
                .is_some_and(|d| d != down.trace_id)
        {
            continue;
        }
        // Before the call, or after it ended: clock skew, or a PRODUCER's hand-off.
        let distance = s.distance(t);
        let allowed = if t > s.end_ns && s.kind == Kind::Producer {
            allow.handoff_ns.max(allow.skew_ns)
        } else {
            allow.skew_ns
        };
        if distance > allowed {
            continue;
        }
        let fit = fits(s.detail.as_deref(), target, service);
        if fit == Some(false) {
            continue;
        }
        let class = if fit == Some(true) {
            CallClass::Matched
        } else if distance == 0 {
            CallClass::InFlight
        } else {
            CallClass::Near
        };
        let rank = (
            class,
            distance,
            s.end_ns,
            std::cmp::Reverse(s.start_ns),
            s.span_id,
        );
        if best.as_ref().is_none_or(|(_, r)| rank < *r) {
            best = Some((
                Call {
                    span: s.span_id,
                    class,
                    distance_ns: distance,
                    consumes: s.kind == Kind::Client,
                },
                rank,
            ));
        }
    }
    best.map(|(c, _)| c)
}

/// Whether a call (by its detail) went to a downstream with root detail `target` and service
/// `service`: `Some(true)` when its path fits the route or its peer names the service,
/// `Some(false)` when its path contradicts the downstream's route or path, `None` when the spans
/// do not say.
fn fits(call: Option<&SpanDetail>, target: Option<&SpanDetail>, service: &str) -> Option<bool> {
    let call = call?;
    if call.protocol == Protocol::Db {
        return Some(false);
    }
    if let Some(t) = target {
        if call.protocol != Protocol::Unknown
            && t.protocol != Protocol::Unknown
            && call.protocol != t.protocol
        {
            return Some(false);
        }
    }
    if call.peer.as_deref().is_some_and(|p| peer_names(p, service)) {
        return Some(true);
    }
    let path = call.path.as_deref()?;
    let target = target?;
    match (target.route.as_deref(), target.path.as_deref()) {
        (Some(route), _) => Some(route_fits(route, path)),
        (None, Some(own)) => Some(path_fits(own, path)),
        (None, None) => None,
    }
}

/// True when a call's peer (`server.address`, `peer.service`, a URL host) names `service`: equal
/// ignoring case, or its first DNS label is the service (`arda.svc.cluster.local`, `arda:8000`).
pub fn peer_names(peer: &str, service: &str) -> bool {
    if peer.eq_ignore_ascii_case(service) {
        return true;
    }
    let label = peer.split('.').next().unwrap_or(peer);
    !label.is_empty() && label.eq_ignore_ascii_case(service)
}

/// True when the route template (`/api/v3/topologies/{circuit_id}`, also `:id` and `*`
/// placeholders) matches the call's path, or its tail (a gateway may add a prefix). A route
/// without a slash (a queue name) must equal the path.
pub fn route_fits(route: &str, path: &str) -> bool {
    if !route.starts_with('/') {
        return route == path;
    }
    tail_fits(route, path, |w, g| {
        (w.starts_with('{') && w.ends_with('}')) || w.starts_with(':') || w == "*" || w == g
    })
}

/// True when the downstream's own path equals the call's path or the call's path ends with it.
fn path_fits(own: &str, path: &str) -> bool {
    tail_fits(own, path, |w, g| w == g)
}

/// True when every segment of `want` fits (`fit(want_segment, got_segment)`) the segment of `got`
/// at the same place from the end, and `got` has at least as many: compared from the end without
/// collecting either (this runs for every candidate pair).
fn tail_fits(want: &str, got: &str, fit: impl Fn(&str, &str) -> bool) -> bool {
    let mut g = segments(got);
    segments(want).all(|w| g.next().is_some_and(|x| fit(w, x)))
}

fn segments(p: &str) -> impl Iterator<Item = &str> {
    p.rsplit('/').filter(|s| !s.is_empty())
}

/// The detail of a span that made or received a call, from its attributes; `None` for other
/// kinds or when the attributes say nothing about the call. One pass over the attributes.
pub fn span_detail(kind: Kind, attrs: &[KeyValue]) -> Option<Box<SpanDetail>> {
    if !(kind.calls() || kind.receives()) {
        return None;
    }
    let mut route: Option<&str> = None;
    let mut path: Option<&str> = None;
    let mut full: Option<&str> = None;
    let mut peer: Option<&str> = None;
    let mut peer_rank = u8::MAX;
    let mut queue: Option<&str> = None;
    let mut protocol = Protocol::Unknown;
    for kv in attrs {
        let key = kv.key.as_str();
        // The protocol, by attribute namespace (any value type).
        let p = if key.starts_with("db.") {
            Protocol::Db
        } else if key.starts_with("rpc.") {
            Protocol::Rpc
        } else if key.starts_with("messaging.") {
            Protocol::Messaging
        } else if key.starts_with("http.") || key.starts_with("url.") {
            Protocol::Http
        } else {
            Protocol::Unknown
        };
        // A database or RPC attribute outweighs HTTP ones (gRPC and some drivers set both).
        if p != Protocol::Unknown && (protocol == Protocol::Unknown || protocol == Protocol::Http) {
            protocol = p;
        }
        let Some(Value::StringValue(v)) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else {
            continue;
        };
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match key {
            "http.route" => route = Some(v),
            "url.path" => path = Some(v),
            "http.target" => path = path.or(Some(v)),
            "url.full" | "http.url" => full = Some(v),
            "messaging.destination.name" | "messaging.destination" => queue = Some(v),
            // The most specific name of the called service wins.
            "peer.service" if peer_rank > 0 => (peer, peer_rank) = (Some(v), 0),
            "server.address" if peer_rank > 1 => (peer, peer_rank) = (Some(v), 1),
            "net.peer.name" if peer_rank > 2 => (peer, peer_rank) = (Some(v), 2),
            _ => {}
        }
    }
    let path = path.map(url_path).or_else(|| full.map(url_path));
    let mut d = SpanDetail {
        protocol,
        ..SpanDetail::default()
    };
    if kind.receives() {
        d.route = route.or(queue).map(Into::into);
        d.path = path.filter(|p| !p.is_empty()).map(Into::into);
    } else {
        d.path = path.filter(|p| !p.is_empty()).or(queue).map(Into::into);
        let host = peer.or_else(|| full.and_then(url_host));
        d.peer = host
            .map(normalise_host)
            .filter(|h| !h.is_empty())
            .map(Into::into);
    }
    (d.route.is_some() || d.path.is_some() || d.peer.is_some() || protocol != Protocol::Unknown)
        .then(|| Box::new(d))
}

/// The host of an absolute URL, if it has one.
fn url_host(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    Some(host.rsplit('@').next().unwrap_or(host))
}

/// A host name lowercased, without port or brackets.
fn normalise_host(h: &str) -> String {
    let h = h.trim().trim_start_matches('[');
    let h = match h.find(']') {
        Some(i) => &h[..i],
        None if h.matches(':').count() == 1 => &h[..h.find(':').unwrap_or(h.len())],
        None => h,
    };
    h.to_ascii_lowercase()
}

/// The innermost span of `seg` running at `t`, else the root: where a bridge hangs when no call
/// explains the downstream.
pub(crate) fn fallback_parent(seg: &Segment, t: i64) -> Option<&CompactSpan> {
    seg.in_flight(t).or_else(|| seg.root())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::NewSpan;
    use seam_model::attributes::string_kv;
    use seam_model::TraceId;
    use std::sync::Arc;

    const ALLOW: Allowance = Allowance {
        skew_ns: 100,
        handoff_ns: 1_000,
    };

    /// A test span: id, parent, kind, start, end, string attributes.
    type TestSpan<'a> = (u8, Option<u8>, Kind, i64, i64, &'a [(&'a str, &'a str)]);

    fn seg(trace: u8, service: &str, spans: &[TestSpan<'_>]) -> Segment {
        let svc: Arc<str> = service.into();
        let mut s = Segment::new(TraceId([trace; 16]), 0);
        for (id, parent, kind, start, end, attrs) in spans {
            let attrs: Vec<KeyValue> = attrs.iter().map(|(k, v)| string_kv(k, v)).collect();
            s.add_span(
                NewSpan {
                    span_id: SpanId([*id; 8]),
                    parent_span_id: parent.map(|p| SpanId([p; 8])),
                    service: &svc,
                    kind: *kind,
                    start_ns: *start,
                    end_ns: *end,
                    detail: span_detail(*kind, &attrs),
                },
                64,
            );
        }
        s.refresh();
        s
    }

    fn arda(start: i64) -> Segment {
        seg(
            3,
            "arda",
            &[(
                1,
                None,
                Kind::Server,
                start,
                start + 50,
                &[("http.route", "/api/v3/topologies/{circuit_id}")],
            )],
        )
    }

    #[test]
    fn details_come_from_the_semantic_conventions() {
        let d = span_detail(
            Kind::Client,
            &[
                string_kv("url.full", "http://Arda.svc:8000/api/v3/topologies/c1?x=1"),
                string_kv("net.peer.name", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(d.path.as_deref(), Some("/api/v3/topologies/c1"));
        assert_eq!(d.peer.as_deref(), Some("ignored"));
        let d = span_detail(
            Kind::Client,
            &[string_kv("url.full", "http://Arda.svc:8000/x")],
        )
        .unwrap();
        assert_eq!(d.peer.as_deref(), Some("arda.svc"));
        let d = span_detail(
            Kind::Server,
            &[
                string_kv("http.route", "/a/{id}"),
                string_kv("url.path", "/a/1"),
            ],
        )
        .unwrap();
        assert_eq!(
            (d.route.as_deref(), d.path.as_deref()),
            (Some("/a/{id}"), Some("/a/1"))
        );
        assert!(span_detail(Kind::Internal, &[string_kv("http.route", "/a")]).is_none());
        let db = span_detail(Kind::Client, &[string_kv("db.system", "pg")]).unwrap();
        assert_eq!(db.protocol, Protocol::Db);
        assert!(span_detail(Kind::Client, &[string_kv("thread.id", "1")]).is_none());
        assert_eq!(normalise_host("[::1]:80"), "::1");
        assert_eq!(normalise_host("10.0.0.1:8080"), "10.0.0.1");
    }

    #[test]
    fn routes_peers_and_paths_fit_or_contradict() {
        assert!(route_fits(
            "/api/v3/topologies/{circuit_id}",
            "/api/v3/topologies/c1"
        ));
        assert!(route_fits(
            "/api/v3/topologies/:id",
            "/gw/arda/api/v3/topologies/c1"
        ));
        assert!(!route_fits(
            "/api/v3/topologies/{id}",
            "/bpocore/market/api/v1/resources"
        ));
        assert!(!route_fits("/a/b/c", "/b/c"));
        assert!(route_fits("orders", "orders"));
        assert!(peer_names("arda.example", "arda"));
        assert!(peer_names("MDSO", "mdso"));
        assert!(!peer_names("ardana", "arda"));
        assert!(path_fits("/x/1", "/prefix/x/1"));
        assert!(!path_fits("/x/1", "/x/2"));
    }

    #[test]
    fn a_matching_call_beats_one_in_flight_and_a_contradicting_one_is_no_evidence() {
        let mdso = seg(
            2,
            "mdso",
            &[
                (1, None, Kind::Server, 0, 1_000, &[]),
                (
                    2,
                    Some(1),
                    Kind::Client,
                    100,
                    400,
                    &[("url.full", "http://x/api/v3/topologies/c1")],
                ),
                (3, Some(1), Kind::Client, 90, 900, &[("thread.id", "7")]),
            ],
        );
        let call = best_call(&mdso, &arda(150), ALLOW).unwrap();
        assert_eq!(
            (call.span, call.class, call.distance_ns),
            (SpanId([2; 8]), CallClass::Matched, 0)
        );
        assert!(call.consumes);
        // A call to another route is skipped; a call that says nothing is in flight.
        let beorn = seg(
            1,
            "beorn",
            &[
                (1, None, Kind::Server, 0, 1_000, &[]),
                (
                    2,
                    Some(1),
                    Kind::Client,
                    100,
                    400,
                    &[("url.full", "http://mdso/bpocore/resources")],
                ),
            ],
        );
        assert_eq!(best_call(&beorn, &arda(150), ALLOW), None);
        let call = best_call(&mdso, &arda(850), ALLOW).unwrap();
        assert_eq!(
            (call.span, call.class),
            (SpanId([3; 8]), CallClass::InFlight)
        );
        // A netconf or database call cannot have started an HTTP handler.
        let other = |attr: (&'static str, &'static str)| {
            seg(
                5,
                "mdso",
                &[
                    (1, None, Kind::Server, 0, 1_000, &[]),
                    (2, Some(1), Kind::Client, 100, 900, &[attr]),
                ],
            )
        };
        let http_arda = seg(
            3,
            "arda",
            &[(
                1,
                None,
                Kind::Server,
                150,
                200,
                &[("http.request.method", "GET")],
            )],
        );
        assert_eq!(
            best_call(&other(("rpc.system", "netconf")), &http_arda, ALLOW),
            None
        );
        assert_eq!(
            best_call(&other(("db.system.name", "postgresql")), &http_arda, ALLOW),
            None
        );
        assert_eq!(
            best_call(&other(("rpc.system", "netconf")), &arda(150), ALLOW),
            None
        );
        assert!(
            best_call(&other(("thread.id", "7")), &arda(150), ALLOW).is_some(),
            "says nothing"
        );
        // Ended 50 ns before (within the skew): near; 500 ns after: nothing.
        let call = best_call(&mdso, &arda(950), ALLOW).unwrap();
        assert_eq!((call.class, call.distance_ns), (CallClass::Near, 50));
        assert_eq!(best_call(&mdso, &arda(1_500), ALLOW), None);
    }

    #[test]
    fn a_taken_client_call_and_a_segment_without_calls_give_nothing() {
        let mut mdso = seg(
            2,
            "mdso",
            &[
                (1, None, Kind::Server, 0, 1_000, &[]),
                (2, Some(1), Kind::Client, 100, 400, &[]),
            ],
        );
        let down = arda(150);
        assert!(best_call(&mdso, &down, ALLOW).is_some());
        mdso.consumed.push((SpanId([2; 8]), TraceId([9; 16])));
        assert_eq!(best_call(&mdso, &down, ALLOW), None);
        mdso.consumed[0].1 = down.trace_id;
        assert!(best_call(&mdso, &down, ALLOW).is_some(), "its own call");
        let server_only = seg(4, "arda", &[(1, None, Kind::Server, 0, 1_000, &[])]);
        assert_eq!(best_call(&server_only, &down, ALLOW), None);
    }

    #[test]
    fn producers_hand_off_later_and_untyped_spans_count_as_calls() {
        let prod = seg(
            5,
            "orders",
            &[
                (1, None, Kind::Internal, 0, 100, &[]),
                (
                    2,
                    Some(1),
                    Kind::Producer,
                    10,
                    20,
                    &[("messaging.destination.name", "q")],
                ),
            ],
        );
        let consumer = |start| {
            seg(
                6,
                "billing",
                &[(
                    1,
                    None,
                    Kind::Consumer,
                    start,
                    start + 5,
                    &[("messaging.destination.name", "q")],
                )],
            )
        };
        let call = best_call(&prod, &consumer(900), ALLOW).unwrap();
        assert_eq!((call.class, call.consumes), (CallClass::Matched, false));
        assert_eq!(best_call(&prod, &consumer(2_000), ALLOW), None);
        let untyped = seg(7, "legacy", &[(1, None, Kind::Unspecified, 0, 100, &[])]);
        let call = best_call(&untyped, &arda(50), ALLOW).unwrap();
        assert_eq!((call.class, call.consumes), (CallClass::InFlight, false));
    }
}
