//! `/health`, `/ready` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let uptime = state.started.elapsed().as_secs_f64();
    match (state.store(), state.replay_error.get()) {
        (Some(store), _) => {
            let s = store.stats();
            Json(json!({
                "status": "ready",
                "uptime_seconds": uptime,
                "components": {
                    "wal": {"status": "ready", "replayed_records": s.replayed_records, "disk_bytes": s.wal_bytes},
                    "store": {"status": "ready", "segments": s.segments, "head_bytes": s.head_bytes, "flush_failures": s.flush_failures},
                    "memory": {"used_bytes": s.memory_used, "limit_bytes": s.memory_limit},
                    "receivers": {"status": "ready"},
                }
            }))
            .into_response()
        }
        (None, err) => {
            let wal = match err {
                Some(e) => json!({"status": "failed", "error": e}),
                None => json!({"status": "replaying"}),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "not ready",
                    "uptime_seconds": uptime,
                    "components": {"wal": wal, "store": {"status": "waiting for WAL replay"}, "receivers": {"status": "refusing writes until ready"}}
                })),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stats = state.store().map(|s| s.stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render(stats.as_ref()),
    )
        .into_response()
}
