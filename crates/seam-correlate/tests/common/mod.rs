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
