//! The Tempo trace-by-id API Grafana's Tempo datasource calls.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prost::Message;
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::otlp_json::{encode_resource_spans, JsonStyle};
use seam_model::TraceId;
use serde_json::json;

use super::{blocking, param, store_or_503, tenant, text_error, Params};
use crate::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/echo", get(|| async { "echo" }))
        .route(
            "/api/traces/{id}",
            get(|s, p, q, h| trace(s, p, q, h, ApiVersion::V1)),
        )
        .route(
            "/api/v2/traces/{id}",
            get(|s, p, q, h| trace(s, p, q, h, ApiVersion::V2)),
        )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ApiVersion {
    V1,
    V2,
}

/// `tempopb.Trace`.
#[derive(Clone, PartialEq, prost::Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

/// `tempopb.TraceByIDResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TempoTrace>,
    /// 0 = COMPLETE, 1 = PARTIAL.
    #[prost(int32, tag = "3")]
    status: i32,
    #[prost(string, tag = "4")]
    message: String,
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/protobuf") || a.contains("application/x-protobuf"))
}

async fn trace(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    v: ApiVersion,
) -> Response {
    let stitched = match param(&q, "stitch") {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("invalid stitch={other:?} (expected true or false)"),
            )
        }
    };
    let tenant = match tenant(&headers) {
        Ok(t) => t,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let trace_id = match TraceId::from_hex(&id) {
        Ok(t) => t,
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("invalid trace id {id:?}: {e}"),
            )
        }
    };
    let store = match store_or_503(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let max_traces = state.correlation.config().max_component_traces;
    let found = blocking(move || -> Result<Found, seam_store::StoreError> {
        if stitched {
            read_stitched(&store, &tenant, trace_id, max_traces)
        } else {
            Ok(Found {
                spans: store.trace(&tenant, &trace_id)?,
                warnings: Vec::new(),
            })
        }
    })
    .await;
    let Found { spans, warnings } = match found {
        Ok(f) => f,
        Err(e) => return text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if spans.is_empty() {
        return text_error(
            StatusCode::NOT_FOUND,
            format!("trace not found: {}", trace_id.to_hex()),
        );
    }
    for w in &warnings {
        tracing::warn!(trace_id = %trace_id, warning = %w, "stitched trace is partial");
    }
    let proto = wants_protobuf(&headers);
    match (v, proto) {
        (ApiVersion::V1, true) => protobuf(
            TempoTrace {
                resource_spans: spans,
            }
            .encode_to_vec(),
        ),
        (ApiVersion::V1, false) => {
            Json(json!({"batches": encode_resource_spans(&spans, JsonStyle::Tempo)}))
                .into_response()
        }
        (ApiVersion::V2, true) => protobuf(
            TraceByIdResponse {
                trace: Some(TempoTrace {
                    resource_spans: spans,
                }),
                status: if warnings.is_empty() { 0 } else { 1 },
                message: warnings.join("; "),
            }
            .encode_to_vec(),
        ),
        (ApiVersion::V2, false) => {
            let mut body = json!({
                "trace": {"resourceSpans": encode_resource_spans(&spans, JsonStyle::Tempo)},
                "status": "COMPLETE",
            });
            // Like Tempo, `message` appears only for a partial answer.
            if !warnings.is_empty() {
                body["status"] = json!("PARTIAL");
                body["message"] = json!(warnings.join("; "));
            }
            Json(body).into_response()
        }
    }
}

fn protobuf(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/protobuf")], body).into_response()
}

/// Spans of a (possibly stitched) trace and why it may be incomplete.
struct Found {
    spans: Vec<ResourceSpans>,
    warnings: Vec<String>,
}

/// The whole flow `trace_id` belongs to as one trace: its component over bridge edges, each trace
/// read, then stitched (re-parented under bridges, rewritten to the requested id). A trace with no
/// bridges is returned as stored. Blocking.
fn read_stitched(
    store: &seam_store::Store,
    tenant: &seam_model::Tenant,
    trace_id: TraceId,
    max_traces: usize,
) -> Result<Found, seam_store::StoreError> {
    // `component` takes a plain closure; the first store error is kept aside and returned.
    let edge_error = std::cell::RefCell::new(None);
    let (ids, edges, truncated) = seam_correlate::component(
        trace_id,
        |t| {
            store.trace_edges(tenant, &t).unwrap_or_else(|e| {
                edge_error.borrow_mut().get_or_insert(e);
                Vec::new()
            })
        },
        max_traces,
    );
    if let Some(e) = edge_error.into_inner() {
        return Err(e);
    }
    if ids.len() <= 1 {
        return Ok(Found {
            spans: store.trace(tenant, &trace_id)?,
            warnings: Vec::new(),
        });
    }
    let mut traces = std::collections::HashMap::new();
    for id in &ids {
        traces.insert(*id, store.trace(tenant, id)?);
    }
    let st = seam_correlate::stitch(trace_id, &traces, &edges, max_traces);
    let mut warnings = st.warnings;
    if truncated && !warnings.iter().any(|w| w.contains("limit")) {
        warnings.push(format!(
            "flow has more than {max_traces} traces; the rest is cut off"
        ));
    }
    Ok(Found {
        spans: st.resource_spans,
        warnings,
    })
}
