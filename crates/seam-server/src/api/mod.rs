//! The HTTP query surface: Loki-, Tempo- and Prometheus-compatible APIs plus operations endpoints.
//! Every read is scoped to the tenant named by `X-Scope-OrgID` (or `default`).

mod loki;
mod ops;
mod prom;
mod seam;
mod tempo;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use seam_model::Tenant;
use seam_store::Store;

use crate::AppState;

/// All query and operations routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(ops::routes())
        .merge(tempo::routes())
        .merge(loki::routes())
        .merge(prom::routes())
        .merge(seam::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .with_state(state)
}

/// Times every request by its route template, for `seam_http_request_duration_seconds`.
pub async fn record_request(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    state.telemetry.request(
        &endpoint,
        &method,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

/// Query-string or form parameters, in order (repeated keys such as `match[]` kept).
pub(crate) type Params = Vec<(String, String)>;

/// The last non-empty value of a parameter.
pub(crate) fn param<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The tenant of a read request.
pub(crate) fn tenant(headers: &HeaderMap) -> Result<Tenant, String> {
    seam_receive::tenant(headers).map_err(|e| e.to_string())
}

/// The success envelope Loki and Prometheus share: `{"status":"success","data":…}`.
pub(crate) fn success(data: serde_json::Value) -> Response {
    axum::Json(serde_json::json!({"status": "success", "data": data})).into_response()
}

/// A plain-text error, as Loki and Tempo answer.
pub(crate) fn text_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        msg.into(),
    )
        .into_response()
}

/// The store, or a 503 naming why it is not there yet.
pub(crate) fn store_or_503(state: &AppState) -> Result<Store, Response> {
    state.store().cloned().ok_or_else(|| {
        text_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Seam is starting (replaying the WAL); retry shortly",
        )
    })
}

/// Runs blocking store work off the reactor.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("query task panicked")
}
