//! A decided correlation between two segments, its confidence, and its stable bridge span id.

use crate::evidence::{CallClass, Source};
use seam_model::{SpanId, TraceId};
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3;

/// A link from an upstream segment to the downstream segment it (by the evidence) called.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The tenant both segments belong to.
    pub tenant: Arc<str>,
    /// The canonical key name that matched.
    pub key: Arc<str>,
    /// The shared value.
    pub value: Arc<str>,
    /// True when both sides carried the key under its canonical name.
    pub exact: bool,
    /// See [`confidence_with`].
    pub confidence: f64,
    /// Downstream start minus upstream start, milliseconds (negative under clock skew when a flow
    /// pattern set the direction).
    pub gap_ms: i64,
    /// Where the direction came from: a configured pattern, a learned one, or the spans.
    pub source: Source,
    /// The call evidence the link was decided on.
    pub call: CallClass,
    /// The upstream (calling) trace.
    pub upstream_trace_id: TraceId,
    /// The upstream segment's primary (root) service.
    pub upstream_service: Arc<str>,
    /// The upstream span the bridge hangs under: the call that explains the downstream (see
    /// [`crate::evidence`]), else the span in flight when the downstream started, else the
    /// upstream root.
    pub parent_span_id: SpanId,
    /// The parent span's start, nanoseconds (the bridge is placed inside the parent).
    pub parent_start_ns: i64,
    /// The parent span's end, nanoseconds.
    pub parent_end_ns: i64,
    /// The downstream (called) trace.
    pub downstream_trace_id: TraceId,
    /// The downstream segment's primary (root) service.
    pub downstream_service: Arc<str>,
    /// The downstream segment's root span, target of the bridge's span link.
    pub downstream_root_span_id: SpanId,
    /// The downstream segment's start, nanoseconds.
    pub downstream_start_ns: i64,
    /// The downstream segment's end, nanoseconds.
    pub downstream_end_ns: i64,
    /// Arrival time of the batch that first made this pair a candidate.
    pub arrival_ns: i64,
    /// When the link was decided (`decided_ns - arrival_ns` is the match latency).
    pub decided_ns: i64,
}

impl Link {
    /// The bridge span id for this link (see [`bridge_id`]).
    pub fn bridge_span_id(&self) -> SpanId {
        SpanId(bridge_id(self))
    }

    /// Milliseconds from arrival to decision.
    pub fn latency_ms(&self) -> f64 {
        (self.decided_ns - self.arrival_ns) as f64 / 1e6
    }
}

/// The bridge span id: xxh3 over the upstream and downstream trace ids, the key and the value.
/// Deterministic, so a restarted process (or a replica) that makes the same match writes the same
/// span id and the store keeps one copy.
pub fn bridge_id(link: &Link) -> [u8; 8] {
    bridge_id_of(
        &link.upstream_trace_id,
        &link.downstream_trace_id,
        &link.key,
        &link.value,
    )
}

/// [`bridge_id`] from its parts.
pub fn bridge_id_of(upstream: &TraceId, downstream: &TraceId, key: &str, value: &str) -> [u8; 8] {
    let mut h = Xxh3::new();
    h.update(&upstream.0);
    h.update(&downstream.0);
    // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key.as_bytes());
    h.update(&(value.len() as u64).to_le_bytes());
    h.update(value.as_bytes());
    let id = h.digest();
    // OTLP treats an all-zero span id as invalid.
    (if id == 0 { 1 } else { id }).to_be_bytes()
}

/// The time factor: 1.0 under 10 s apart, 0.9 under 30 s, 0.7 beyond.
pub fn gap_factor(gap_ns: i64) -> f64 {
    let g = gap_ns.unsigned_abs();
    if g < 10_000_000_000 {
        1.0
    } else if g < 30_000_000_000 {
        0.9
    } else {
        0.7
    }
}

/// A link's confidence from the key and time alone: 1.0 for an exact key match, 0.8 otherwise,
/// times [`gap_factor`]; rounded to six decimals so 0.8 × 0.9 reads 0.72, not
/// 0.7200000000000001. This is a configured pattern's confidence, or one with strong call
/// evidence (see [`confidence_with`]).
pub fn confidence(exact: bool, gap_ns: i64) -> f64 {
    confidence_with(exact, gap_ns, Source::Configured, CallClass::None)
}

/// How much the evidence for the direction is trusted: 1.0 for a configured pattern, a matching
/// call or a call in flight; 0.9 for a call nearby (or a learned pattern without a typed call);
/// 0.7 for time order alone.
pub fn evidence_factor(source: Source, call: CallClass) -> f64 {
    match (source, call) {
        (Source::Configured, _) | (_, CallClass::Matched | CallClass::InFlight) => 1.0,
        (Source::Learned, _) | (_, CallClass::Near) => 0.9,
        (Source::Observed, CallClass::None) => 0.7,
    }
}

/// A link's confidence: key base (1.0 exact, 0.8 otherwise) × [`gap_factor`] ×
/// [`evidence_factor`], rounded to six decimals.
pub fn confidence_with(exact: bool, gap_ns: i64, source: Source, call: CallClass) -> f64 {
    let base = if exact { 1.0 } else { 0.8 };
    ((base * gap_factor(gap_ns) * evidence_factor(source, call)) * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn confidence_bands() {
        assert_eq!(confidence(true, 0), 1.0);
        assert_eq!(confidence(true, 10 * S - 1), 1.0);
        assert_eq!(confidence(true, 10 * S), 0.9);
        assert_eq!(confidence(true, -(29 * S)), 0.9);
        assert_eq!(confidence(true, 30 * S), 0.7);
        assert_eq!(confidence(false, 5 * S), 0.8);
        assert_eq!(confidence(false, 15 * S), 0.72);
        assert_eq!(confidence(false, 45 * S), 0.56);
    }

    #[test]
    fn evidence_scales_confidence() {
        let c = |source, call| confidence_with(true, 0, source, call);
        assert_eq!(c(Source::Configured, CallClass::None), 1.0);
        assert_eq!(c(Source::Observed, CallClass::Matched), 1.0);
        assert_eq!(c(Source::Observed, CallClass::InFlight), 1.0);
        assert_eq!(c(Source::Observed, CallClass::Near), 0.9);
        assert_eq!(c(Source::Learned, CallClass::None), 0.9);
        assert_eq!(c(Source::Observed, CallClass::None), 0.7);
        assert_eq!(
            confidence_with(false, 15 * S, Source::Observed, CallClass::None),
            0.504
        );
    }

    #[test]
    fn bridge_ids_are_stable_and_distinct() {
        let a = TraceId([1; 16]);
        let b = TraceId([2; 16]);
        let id = bridge_id_of(&a, &b, "circuit_id", "c1");
        assert_eq!(id, bridge_id_of(&a, &b, "circuit_id", "c1"));
        assert_ne!(id, bridge_id_of(&b, &a, "circuit_id", "c1"));
        assert_ne!(id, bridge_id_of(&a, &b, "circuit_id", "c2"));
        assert_ne!(
            bridge_id_of(&a, &b, "ab", "c"),
            bridge_id_of(&a, &b, "a", "bc")
        );
        assert_ne!(id, [0; 8]);
    }
}
