//! The Loki read API: `query_range` (log queries), labels and label values.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use seam_model::{Labels, Signal};
use seam_query::logql::{self, LogSelection};
use seam_store::{Direction, LabelMatcher};
use serde_json::{json, Value};

use super::{blocking, param, store_or_503, success, tenant, text_error, Params};
use crate::params::{loki_time, now_ns};
use crate::AppState;

/// Loki's default and maximum entry limits.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 5000;
const DEFAULT_RANGE_NS: i64 = 3600 * 1_000_000_000;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label/{name}/values", get(label_values))
}

fn bad(msg: impl Into<String>) -> Response {
    text_error(StatusCode::BAD_REQUEST, msg)
}

/// `[start, end]` in ns with Loki's defaults (the last hour).
fn range(p: &Params) -> Result<(i64, i64), Response> {
    let end = param(p, "end")
        .map(|v| loki_time("end", v))
        .transpose()
        .map_err(bad)?
        .unwrap_or_else(now_ns);
    let start = param(p, "start")
        .map(|v| loki_time("start", v))
        .transpose()
        .map_err(bad)?
        .unwrap_or(end - DEFAULT_RANGE_NS);
    if end < start {
        return Err(bad(
            "invalid time range: end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

async fn query_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let tenant = match tenant(&headers) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    let Some(query) = param(&p, "query") else {
        return bad("missing required parameter \"query\"");
    };
    let q = match logql::parse_log_query(query) {
        Ok(q) => q,
        Err(e) => return bad(e.to_string()),
    };
    let (start, end) = match range(&p) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let limit = match param(&p, "limit").map(str::parse::<usize>).transpose() {
        Ok(l) => l.unwrap_or(DEFAULT_LIMIT),
        Err(_) => return bad("invalid parameter \"limit\": expected a positive integer"),
    };
    if limit > MAX_LIMIT {
        return bad(format!("max entries limit per query exceeded, limit > max_entries_limit ({limit} > {MAX_LIMIT})"));
    }
    let direction = match param(&p, "direction")
        .map(|d| d.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("backward") => Direction::Backward,
        Some("forward") => Direction::Forward,
        Some(other) => {
            return bad(format!(
                "invalid parameter \"direction\": {other:?} (expected forward or backward)"
            ))
        }
    };
    let store = match store_or_503(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let sel = LogSelection {
        start_ns: start,
        end_ns: end,
        limit,
        direction,
    };
    let result = match blocking(move || logql::select_logs(&store, &tenant, &q, &sel)).await {
        Ok(r) => r,
        Err(e) => return text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    // Loki answers structured metadata merged into the stream labels, one result stream per
    // distinct label set.
    let mut streams: BTreeMap<Labels, Vec<Value>> = BTreeMap::new();
    let mut total = 0usize;
    let mut bytes = 0usize;
    for s in result {
        for e in s.entries {
            let md: BTreeMap<String, String> =
                serde_json::from_str(&e.structured_metadata).unwrap_or_default();
            let key = if md.is_empty() {
                s.labels.clone()
            } else {
                let mut pairs: Vec<(String, String)> = s
                    .labels
                    .as_slice()
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                pairs.extend(md);
                Labels::from_pairs(pairs)
            };
            total += 1;
            bytes += e.line.len();
            streams
                .entry(key)
                .or_default()
                .push(json!([e.timestamp_ns.to_string(), e.line]));
        }
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(labels, values)| json!({"stream": labels.to_json_map(), "values": values}))
        .collect();
    success(json!({
        "resultType": "streams",
        "result": result,
        "stats": {"summary": {
            "bytesProcessedPerSecond": 0, "linesProcessedPerSecond": 0,
            "totalBytesProcessed": bytes, "totalLinesProcessed": total,
            "execTime": 0, "queueTime": 0, "subqueries": 0, "totalEntriesReturned": total,
            "splits": 0, "shards": 0, "totalPostFilterLines": total, "totalStructuredMetadataBytesProcessed": 0
        }}
    }))
}

fn selector_matchers(p: &Params) -> Result<Vec<LabelMatcher>, Response> {
    let Some(q) = param(p, "query") else {
        return Ok(Vec::new());
    };
    let q = logql::parse_log_query(q).map_err(|e| bad(e.to_string()))?;
    Ok(q.matchers
        .into_iter()
        .map(|m| LabelMatcher::new(m.name, m.op, m.value).expect("checked by the parser"))
        .collect())
}

/// What the label endpoints need: tenant, store, range and optional selector.
struct LabelRequest {
    tenant: seam_model::Tenant,
    store: seam_store::Store,
    start: i64,
    end: i64,
    matchers: Vec<LabelMatcher>,
}

fn label_request(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<LabelRequest, Response> {
    let tenant = tenant(headers).map_err(bad)?;
    let (start, end) = range(p)?;
    let matchers = selector_matchers(p)?;
    let store = store_or_503(state)?;
    Ok(LabelRequest {
        tenant,
        store,
        start,
        end,
        matchers,
    })
}

async fn labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    match label_request(&state, &headers, &p) {
        Ok(r) => success(json!(r.store.label_names(
            &r.tenant,
            Signal::Logs,
            &r.matchers,
            r.start,
            r.end
        ))),
        Err(resp) => resp,
    }
}

async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    match label_request(&state, &headers, &p) {
        Ok(r) => success(json!(r.store.label_values(
            &r.tenant,
            Signal::Logs,
            &name,
            &r.matchers,
            r.start,
            r.end
        ))),
        Err(resp) => resp,
    }
}
