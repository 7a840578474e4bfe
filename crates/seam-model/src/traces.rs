//! Span batches as OTLP groups them, and the per-span validation every receiver applies.

use crate::attributes::find_str;
use crate::otlp::common::v1::any_value::Value;
use crate::otlp::trace::v1::{ResourceSpans, Span};
use crate::{SpanId, TraceId};

/// Attribute that marks a span Seam made rather than received (bridge spans).
pub const SYNTHETIC_ATTR: &str = "synthetic";
/// Attribute of a bridge span naming the downstream trace it joins (hex).
pub const BRIDGE_DOWNSTREAM_ATTR: &str = "correlation.downstream_trace_id";
/// Attribute of a bridge span holding the link's confidence (a double).
pub const BRIDGE_CONFIDENCE_ATTR: &str = "correlation.confidence";
/// Attribute every span of a stitched trace carries: the trace id it was stored under (hex).
pub const ORIGINAL_TRACE_ID_ATTR: &str = "seam.original_trace_id";

/// A bridge between two traces, as recorded by a bridge span: the span sits in the upstream trace
/// and links to the downstream trace's root span.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceEdge {
    /// The trace holding the bridge span.
    pub upstream: TraceId,
    /// The bridge span's id.
    pub bridge_span_id: SpanId,
    /// The trace the bridge joins.
    pub downstream: TraceId,
    /// The downstream root span the bridge links to.
    pub downstream_root_span_id: SpanId,
    /// The link's confidence (chooses among several bridges into one trace).
    pub confidence: f64,
}

/// True for a span Seam made (`synthetic=true`, as a boolean or the string "true").
pub fn is_synthetic(span: &Span) -> bool {
    span.attributes.iter().any(|kv| {
        kv.key == SYNTHETIC_ATTR
            && match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::BoolValue(b)) => *b,
                Some(Value::StringValue(s)) => s == "true",
                _ => false,
            }
    })
}

impl TraceEdge {
    /// The edge a stored span makes, if it is a bridge: synthetic, with a span link to the
    /// downstream root and a `correlation.confidence`.
    pub fn from_span(s: &Span) -> Option<TraceEdge> {
        // Every span of every batch passes here; most have no links, which rules them out cheaply.
        if s.links.is_empty() || !is_synthetic(s) {
            return None;
        }
        let l = s.links.first()?;
        let confidence = match crate::attributes::find(&s.attributes, BRIDGE_CONFIDENCE_ATTR)?
            .value
            .as_ref()?
        {
            Value::DoubleValue(d) => *d,
            _ => return None,
        };
        Some(TraceEdge {
            upstream: TraceId::from_slice(&s.trace_id).ok()?,
            bridge_span_id: SpanId::from_slice(&s.span_id).ok()?,
            downstream: TraceId::from_slice(&l.trace_id).ok()?,
            downstream_root_span_id: SpanId::from_slice(&l.span_id).ok()?,
            confidence,
        })
    }
}

/// The bridges recorded by the spans of a batch.
pub fn bridge_edges(rs: &[ResourceSpans]) -> Vec<TraceEdge> {
    rs.iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .filter_map(TraceEdge::from_span)
        .collect()
}

/// The number of spans in a batch.
pub fn span_count(rs: &[ResourceSpans]) -> usize {
    rs.iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// The `service.name` of a resource, or `unknown_service` as OTel specifies.
pub fn service_name(rs: &ResourceSpans) -> &str {
    rs.resource
        .as_ref()
        .and_then(|r| find_str(&r.attributes, "service.name"))
        .unwrap_or("unknown_service")
}

/// What validating a span batch found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SpanValidation {
    /// How many spans were removed as invalid.
    pub rejected: u64,
    /// The first reason, naming the span by its position in the request.
    pub first_error: Option<String>,
}

/// Removes spans that cannot be stored: a trace id that is not 16 non-zero bytes, a span id that is
/// not 8 non-zero bytes, or a parent span id that is neither empty nor 8 bytes. Empty scopes and
/// resources are dropped too. Positions in the message refer to the request as received.
pub fn validate(rs: &mut Vec<ResourceSpans>) -> SpanValidation {
    let mut v = SpanValidation::default();
    for (ri, r) in rs.iter_mut().enumerate() {
        for (si, s) in r.scope_spans.iter_mut().enumerate() {
            let mut i = 0;
            s.spans.retain(|span| {
                let reason = if span.trace_id.len() != 16 {
                    Some(format!(
                        "trace id must be 16 bytes, got {}",
                        span.trace_id.len()
                    ))
                } else if span.trace_id.iter().all(|b| *b == 0) {
                    Some("trace id is all zeros".to_string())
                } else if span.span_id.len() != 8 {
                    Some(format!(
                        "span id must be 8 bytes, got {}",
                        span.span_id.len()
                    ))
                } else if span.span_id.iter().all(|b| *b == 0) {
                    Some("span id is all zeros".to_string())
                } else if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
                    Some(format!(
                        "parent span id must be 8 bytes, got {}",
                        span.parent_span_id.len()
                    ))
                } else {
                    None
                };
                let idx = i;
                i += 1;
                match reason {
                    None => true,
                    Some(reason) => {
                        v.rejected += 1;
                        v.first_error.get_or_insert_with(|| {
                            format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{idx}]: {reason}")
                        });
                        false
                    }
                }
            });
        }
        r.scope_spans.retain(|s| !s.spans.is_empty());
    }
    rs.retain(|r| !r.scope_spans.is_empty());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::trace::v1::{ScopeSpans, Span};

    #[test]
    fn drops_bad_ids_and_names_them() {
        let good = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        };
        let bad = Span {
            trace_id: vec![1; 15],
            span_id: vec![2; 8],
            ..Default::default()
        };
        let mut rs = vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![good, bad],
                ..Default::default()
            }],
            ..Default::default()
        }];
        let v = validate(&mut rs);
        assert_eq!(v.rejected, 1);
        assert_eq!(span_count(&rs), 1);
        assert_eq!(
            v.first_error.unwrap(),
            "resourceSpans[0].scopeSpans[0].spans[1]: trace id must be 16 bytes, got 15"
        );
    }
}
