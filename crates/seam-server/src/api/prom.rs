//! The Prometheus read API: series, labels, label values and instant queries.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use seam_model::Signal;
use seam_query::promql::{self, PromQueryError};
use seam_store::LabelMatcher;
use serde_json::{json, Value};

use super::{blocking, param, success, tenant, Params};
use crate::params::{now_ns, prom_time};
use crate::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/query", get(query).post(query))
}

fn error(status: StatusCode, error_type: &str, msg: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"status": "error", "errorType": error_type, "error": msg.into()})),
    )
        .into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_data", msg)
}

/// `[start, end]` in ns; Prometheus's defaults cover all time.
fn range(p: &Params) -> Result<(i64, i64), Response> {
    let start = param(p, "start")
        .map(|v| prom_time("start", v))
        .transpose()
        .map_err(bad)?;
    let end = param(p, "end")
        .map(|v| prom_time("end", v))
        .transpose()
        .map_err(bad)?;
    let (start, end) = (
        start.map_or(i64::MIN, |t| t.saturating_mul(1_000_000)),
        end.map_or(i64::MAX, |t| t.saturating_mul(1_000_000)),
    );
    if end < start {
        return Err(bad("end timestamp must not be before start time"));
    }
    Ok((start, end))
}

/// The `match[]` selectors; each is one alternative (a series matches if any selector matches).
fn match_sets(p: &Params) -> Result<Vec<Vec<LabelMatcher>>, Response> {
    p.iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| {
            promql::parse_selector(v)
                .map_err(|e| bad(format!("invalid parameter \"match[]\": {e}")))
        })
        .collect()
}

struct Common {
    tenant: seam_model::Tenant,
    store: seam_store::Store,
    start: i64,
    end: i64,
    sets: Vec<Vec<LabelMatcher>>,
}

fn common(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<Common, Response> {
    let tenant = tenant(headers).map_err(bad)?;
    let (start, end) = range(p)?;
    let sets = match_sets(p)?;
    let store = state.store().cloned().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Seam is starting (replaying the WAL)",
        )
    })?;
    Ok(Common {
        tenant,
        store,
        start,
        end,
        sets,
    })
}

async fn series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let c = match common(&state, &headers, &p) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if c.sets.is_empty() {
        return bad("no match[] parameter provided");
    }
    let mut seen = std::collections::BTreeMap::new();
    for set in &c.sets {
        for (id, labels) in c
            .store
            .select_series(&c.tenant, Signal::Metrics, set, c.start, c.end)
        {
            seen.entry(id).or_insert(labels);
        }
    }
    let mut out: Vec<_> = seen.into_values().collect();
    out.sort();
    success(Value::Array(
        out.iter().map(|l| Value::Object(l.to_json_map())).collect(),
    ))
}

/// The union over every `match[]` alternative (all series when there is none) of what `each`
/// lists, sorted and deduplicated.
fn union_over_sets(c: &Common, each: impl Fn(&[LabelMatcher]) -> Vec<String>) -> Value {
    let all = [Vec::new()];
    let sets: &[Vec<LabelMatcher>] = if c.sets.is_empty() { &all } else { &c.sets };
    let out: std::collections::BTreeSet<String> = sets.iter().flat_map(|s| each(s)).collect();
    json!(out)
}

async fn labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    match common(&state, &headers, &p) {
        Ok(c) => success(union_over_sets(&c, |set| {
            c.store
                .label_names(&c.tenant, Signal::Metrics, set, c.start, c.end)
        })),
        Err(r) => r,
    }
}

async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    match common(&state, &headers, &p) {
        Ok(c) => success(union_over_sets(&c, |set| {
            c.store
                .label_values(&c.tenant, Signal::Metrics, &name, set, c.start, c.end)
        })),
        Err(r) => r,
    }
}

async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let c = match common(&state, &headers, &p) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(q) = param(&p, "query").map(str::to_string) else {
        return bad("invalid parameter \"query\": missing");
    };
    let time_ms = match param(&p, "time").map(|v| prom_time("time", v)).transpose() {
        Ok(t) => t.unwrap_or_else(|| now_ns() / 1_000_000),
        Err(e) => return bad(e),
    };
    let (store, tenant) = (c.store, c.tenant);
    match blocking(move || promql::instant_query(&store, &tenant, &q, time_ms)).await {
        Ok(v) => {
            let result: Vec<Value> = v
                .into_iter()
                .map(|(labels, s)| {
                    json!({"metric": labels.to_json_map(), "value": [s.timestamp_ms as f64 / 1000.0, format_value(s.value)]})
                })
                .collect();
            success(json!({"resultType": "vector", "result": result}))
        }
        Err(PromQueryError::Parse(e)) => bad(format!("invalid parameter \"query\": {e}")),
        Err(PromQueryError::Unsupported(e)) => bad(format!("unsupported query: {e}")),
        Err(PromQueryError::Store(e)) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        }
    }
}

/// Formats a sample value as Prometheus does (`+Inf`, `NaN`, shortest round-trip decimal).
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}
