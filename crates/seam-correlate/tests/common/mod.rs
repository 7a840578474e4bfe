//! Shared builders for the scenario tests: the MDSO flow's three services as spans.
#![allow(dead_code)]

use seam_correlate::testing::{span, spans_with_service, MS};
use seam_correlate::{CorrelationConfig, Correlator, Link};
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::{SpanId, TraceId};

/// A realistic epoch, in milliseconds.
pub const T0: i64 = 1_700_000_000_000;
pub const SEC: i64 = 1_000;

pub fn ns(ms: i64) -> i64 {
    ms * MS
}

pub fn tid(n: u8) -> TraceId {
    TraceId([n; 16])
}

/// Span ids unique across traces (trace * 10 + k), so stitched traces do not collide.
pub fn sid(trace: u8, k: u8) -> SpanId {
    SpanId([trace * 10 + k; 8])
}

pub fn cfg() -> CorrelationConfig {
    CorrelationConfig {
        flow_patterns: vec![vec!["beorn".into(), "mdso".into(), "arda".into()]],
        ..Default::default()
    }
}

/// Beorn: the root carries `circuit_id`; the client call to MDSO (+10..+400 ms) the header.
pub fn beorn(trace: u8, start: i64, circuit: &str) -> ResourceSpans {
    spans_with_service(
        "beorn",
        vec![
            span(
                trace,
                trace * 10 + 1,
                0,
                "beorn.create_network_service",
                start,
                start + 500,
                &[("circuit_id", circuit)],
            ),
            span(
                trace,
                trace * 10 + 2,
                trace * 10 + 1,
                "POST /bpocore/market/api/v1/resources",
                start + 10,
                start + 400,
                &[("http.request.header.x_circuit_id", circuit)],
            ),
        ],
    )
}

/// MDSO's scriptplan (300 ms), with a call to Arda from +50 to +200 ms.
pub fn mdso(trace: u8, start: i64, circuit: &str) -> ResourceSpans {
    spans_with_service(
        "mdso",
        vec![
            span(
                trace,
                trace * 10 + 1,
                0,
                "CircuitDetailsCollector",
                start,
                start + 300,
                &[("circuit_id", circuit)],
            ),
            span(
                trace,
                trace * 10 + 2,
                trace * 10 + 1,
                "GET arda topology",
                start + 50,
                start + 200,
                &[],
            ),
        ],
    )
}

/// Arda's handler (50 ms).
pub fn arda(trace: u8, start: i64, circuit: &str) -> ResourceSpans {
    spans_with_service(
        "arda",
        vec![span(
            trace,
            trace * 10 + 1,
            0,
            "arda.get_topology",
            start,
            start + 50,
            &[("circuit_id", circuit)],
        )],
    )
}

/// A segment of service `svc` with one root span carrying `attr` = `circuit`.
pub fn plain(svc: &str, trace: u8, start: i64, attr: &str, circuit: &str) -> ResourceSpans {
    spans_with_service(
        svc,
        vec![span(
            trace,
            trace * 10 + 1,
            0,
            "work",
            start,
            start + 100,
            &[(attr, circuit)],
        )],
    )
}

/// (upstream, downstream) trace bytes of links, sorted.
pub fn pairs(links: &[Link]) -> Vec<(u8, u8)> {
    let mut v: Vec<(u8, u8)> = links
        .iter()
        .map(|l| (l.upstream_trace_id.0[0], l.downstream_trace_id.0[0]))
        .collect();
    v.sort();
    v
}

pub fn far(c: &mut Correlator) -> Vec<Link> {
    c.poll(ns(T0 + 3_600 * SEC))
}

/// The kind of OTLP span kind `k` (1 internal, 2 server, 3 client).
pub fn kind(mut s: seam_model::otlp::trace::v1::Span, k: i32) -> seam_model::otlp::trace::v1::Span {
    s.kind = k;
    s
}

/// One Beorn -> MDSO -> Arda flow as instrumented services send it: SERVER roots, CLIENT calls
/// that say where they went (`server.address`, `url.full`), Arda's `http.route`, MDSO's netconf
/// device calls, and no context propagation. Traces are `base`, `base + 1`, `base + 2`. Beorn's root runs
/// 0..600 ms from `start`, its call 20..580; MDSO 40..560 with device calls 50..150 and 400..550
/// and the Arda call 200..380; Arda 220..360.
pub fn typed_flow(base: u8, start: i64, circuit: &str) -> [ResourceSpans; 3] {
    let (b, m, a) = (base, base + 1, base + 2);
    let beorn = spans_with_service(
        "beorn",
        vec![
            kind(
                span(
                    b,
                    b * 10 + 1,
                    0,
                    "create",
                    start,
                    start + 600,
                    &[("circuit_id", circuit)],
                ),
                2,
            ),
            kind(
                span(
                    b,
                    b * 10 + 2,
                    b * 10 + 1,
                    "POST /bpocore/market/api/v1/resources",
                    start + 20,
                    start + 580,
                    &[
                        ("circuit_id", circuit),
                        ("server.address", "mdso"),
                        (
                            "url.full",
                            "http://mdso:8181/bpocore/market/api/v1/resources",
                        ),
                    ],
                ),
                3,
            ),
        ],
    );
    let mdso = spans_with_service(
        "mdso",
        vec![
            kind(
                span(
                    m,
                    m * 10 + 1,
                    0,
                    "CircuitDetailsCollector",
                    start + 40,
                    start + 560,
                    &[("circuit_id", circuit)],
                ),
                2,
            ),
            kind(
                span(
                    m,
                    m * 10 + 2,
                    m * 10 + 1,
                    "device.get_interfaces",
                    start + 50,
                    start + 150,
                    &[("rpc.system", "netconf")],
                ),
                3,
            ),
            kind(
                span(
                    m,
                    m * 10 + 3,
                    m * 10 + 1,
                    "GET /api/v3/topologies/{circuit_id}",
                    start + 200,
                    start + 380,
                    &[(
                        "url.full",
                        &format!("http://arda:8000/api/v3/topologies/{circuit}"),
                    )],
                ),
                3,
            ),
            kind(
                span(
                    m,
                    m * 10 + 4,
                    m * 10 + 1,
                    "device.get_config",
                    start + 400,
                    start + 550,
                    &[("rpc.system", "netconf")],
                ),
                3,
            ),
        ],
    );
    let arda = spans_with_service(
        "arda",
        vec![kind(
            span(
                a,
                a * 10 + 1,
                0,
                "arda.get_topology",
                start + 220,
                start + 360,
                &[
                    ("circuit_id", circuit),
                    ("http.route", "/api/v3/topologies/{circuit_id}"),
                ],
            ),
            2,
        )],
    );
    [beorn, mdso, arda]
}
