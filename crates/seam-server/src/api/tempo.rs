//! The Tempo trace-by-id API Grafana's Tempo datasource calls.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prost::Message;
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::otlp_json::{encode_resource_spans, JsonStyle};
use seam_model::TraceId;
use serde_json::json;

use super::{blocking, store_or_503, tenant, text_error};
use crate::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/echo", get(|| async { "echo" }))
        .route(
            "/api/traces/{id}",
            get(|s, p, h| trace(s, p, h, ApiVersion::V1)),
        )
        .route(
            "/api/v2/traces/{id}",
            get(|s, p, h| trace(s, p, h, ApiVersion::V2)),
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
    headers: HeaderMap,
    v: ApiVersion,
) -> Response {
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
    let spans = match blocking(move || store.trace(&tenant, &trace_id)).await {
        Ok(s) => s,
        Err(e) => return text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if spans.is_empty() {
        return text_error(
            StatusCode::NOT_FOUND,
            format!("trace not found: {}", trace_id.to_hex()),
        );
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
                status: 0,
                message: String::new(),
            }
            .encode_to_vec(),
        ),
        (ApiVersion::V2, false) => Json(json!({
            "trace": {"resourceSpans": encode_resource_spans(&spans, JsonStyle::Tempo)},
            "status": "COMPLETE",
        }))
        .into_response(),
    }
}

fn protobuf(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/protobuf")], body).into_response()
}
