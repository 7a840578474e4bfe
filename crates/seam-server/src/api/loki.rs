//! The Loki read API Grafana's Loki data source calls: queries (`loki_query`), labels, label
//! values and series (here), index statistics and volumes (`loki_index`), detected labels and
//! fields (`loki_detected`), the live tail (`loki_tail`), plus `format_query`, `patterns` and
//! `status/buildinfo`. Requests are read as `pkg/loghttp` reads them (`loki_params`) and
//! answered in Loki's JSON.

#[path = "loki_detected.rs"]
mod detected;
#[path = "loki_index.rs"]
mod index;
#[path = "loki_params.rs"]
pub(super) mod params;
#[path = "loki_query.rs"]
mod query;
#[path = "loki_tail.rs"]
mod tail;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use seam_model::{Labels, Signal, Tenant};
use seam_store::{LabelMatcher, Store};
use serde_json::{json, Value};

use super::{param, store_or_503, success, Params};
use crate::AppState;
use params::{bounds, check_query_length, optional_selector, selector_matchers};

/// Every Loki read route, the tail included.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route("/loki/api/v1/query", get(query::query).post(query::query))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .route(
            "/loki/api/v1/index/stats",
            get(index::stats).post(index::stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(index::volume).post(index::volume),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(index::volume_range).post(index::volume_range),
        )
        .route("/loki/api/v1/detected_labels", get(detected::labels))
        .route("/loki/api/v1/detected_fields", get(detected::fields))
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(detected::field_values),
        )
        .route(
            "/loki/api/v1/format_query",
            get(format_query).post(format_query),
        )
        .route("/loki/api/v1/patterns", get(patterns))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .merge(tail::routes())
}

/// What the label and series endpoints need: tenant, store, range and selectors.
struct LabelRequest {
    tenant: Tenant,
    store: Store,
    start: i64,
    end: i64,
}

fn label_request(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
    default_since_ns: i64,
) -> Result<LabelRequest, Response> {
    let tenant = params::tenant_of(headers)?;
    let (start, end) = bounds(p, default_since_ns)?;
    check_query_length(state.limits.for_tenant(&tenant), start, end)?;
    let store = store_or_503(state)?;
    Ok(LabelRequest {
        tenant,
        store,
        start,
        end,
    })
}

/// `GET|POST /loki/api/v1/labels[?query=]`.
async fn labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let matchers = optional_selector(&p)?;
        let r = label_request(&state, &headers, &p, params::LABELS_SINCE_NS)?;
        Ok(success(json!(r.store.label_names(
            &r.tenant,
            Signal::Logs,
            &matchers,
            r.start,
            r.end
        ))))
    };
    run().unwrap_or_else(|r| r)
}

/// `GET|POST /loki/api/v1/label/{name}/values[?query=]`.
async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let matchers = optional_selector(&p)?;
        let r = label_request(&state, &headers, &p, params::LABELS_SINCE_NS)?;
        Ok(success(json!(r.store.label_values(
            &r.tenant,
            Signal::Logs,
            &name,
            &matchers,
            r.start,
            r.end
        ))))
    };
    run().unwrap_or_else(|r| r)
}

/// `GET|POST /loki/api/v1/series`: the streams matching any `match[]` selector (or `query`), as
/// label maps; every stream when no selector is given.
async fn series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let mut groups: Vec<Vec<LabelMatcher>> = p
            .iter()
            .filter(|(k, v)| (k == "match[]" || k == "match") && !v.is_empty())
            .map(|(_, v)| selector_matchers(v))
            .collect::<Result<_, _>>()?;
        if groups.is_empty() {
            groups.push(optional_selector(&p)?);
        }
        let r = label_request(&state, &headers, &p, params::DEFAULT_SINCE_NS)?;
        let mut found: BTreeSet<(String, Labels)> = BTreeSet::new();
        for g in &groups {
            for (_, labels) in r
                .store
                .select_series(&r.tenant, Signal::Logs, g, r.start, r.end)
            {
                found.insert((labels.to_string(), labels));
            }
        }
        let data: Vec<Value> = found
            .into_iter()
            .map(|(_, l)| Value::Object(l.to_json_map()))
            .collect();
        Ok(success(Value::Array(data)))
    };
    run().unwrap_or_else(|r| r)
}

/// `GET|POST /loki/api/v1/format_query?query=`: the query in Loki's canonical, prettified form,
/// or 400 with `{"status":"invalid-query","error":…}` (`pkg/loki/format_query_handler.go`).
async fn format_query(Form(p): Form<Params>) -> Response {
    match seam_query::logql::parse(param(&p, "query").unwrap_or_default()) {
        Ok(expr) => success(json!(seam_query::logql::prettify(&expr))),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "invalid-query", "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `GET /loki/api/v1/patterns`: Seam detects no patterns, so the list is always empty.
async fn patterns(headers: HeaderMap, Form(p): Form<Params>) -> Response {
    if let Err(r) = params::tenant_of(&headers) {
        return r;
    }
    if let Some(q) = param(&p, "query") {
        if let Err(r) = selector_matchers(q) {
            return r;
        }
    }
    success(json!([]))
}

/// The Loki release whose HTTP API Seam answers; Grafana reads it to decide which features
/// (detected fields, volumes, categorized labels) it may use.
pub const LOKI_API_VERSION: &str = "3.5.0";

/// `GET /loki/api/v1/status/buildinfo`, in Prometheus' build-info shape as Loki answers it.
async fn buildinfo() -> Response {
    Json(json!({
        "version": LOKI_API_VERSION,
        "revision": env!("CARGO_PKG_VERSION"),
        "branch": "seam",
        "buildUser": "seam",
        "buildDate": "",
        "goVersion": ""
    }))
    .into_response()
}
