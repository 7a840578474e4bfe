//! Seam's native API: `GET /api/seam/correlations?key=&value=&start=&end=` — every trace whose
//! spans carry a correlation key value, the bridges between them, and how many log lines mention
//! it; `GET /api/seam/correlation/patterns` — the flow patterns learned and configured.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use seam_model::{Signal, TraceId};
use seam_store::{Direction, LogScan};
use serde_json::json;

use super::loki::params::{bad, tenant_of, time_param};
use super::{blocking, param, store_or_503, text_error, Params};
use crate::params::now_ns;
use crate::AppState;

/// How far back a correlation lookup goes when `start` is not given.
const DEFAULT_RANGE_NS: i64 = 24 * 3600 * 1_000_000_000;
/// Most log lines counted; past it the count says it was capped.
const MAX_COUNTED_LINES: usize = 100_000;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/seam/correlations", get(correlations))
        .route("/api/seam/correlation/patterns", get(patterns))
}

/// The tenant's learned service pairs and flow patterns, the configured ones, and a
/// `flow_patterns:` block to paste into the config (configured patterns first, then the learned
/// ones they do not already list).
async fn patterns(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let tenant = match tenant_of(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let c = &state.correlation;
    let pairs = c.learned_pairs(tenant.as_str());
    let (learned, min_links) = c.learned_patterns(tenant.as_str());
    let configured = c.config().flow_patterns.clone();
    let mut all = configured.clone();
    all.extend(learned.iter().filter(|p| !configured.contains(p)).cloned());
    Json(json!({
        "tenant": tenant.as_str(),
        "learning": c.config().learn_patterns,
        "min_links": min_links,
        "min_share": seam_correlate::learn::MIN_SHARE,
        "pairs": pairs.iter().map(|p| json!({
            "upstream": p.upstream,
            "downstream": p.downstream,
            "links": p.links,
            "reverse_links": p.reverse_links,
            "confidence": p.confidence,
            "active": p.active,
        })).collect::<Vec<_>>(),
        "learned": learned,
        "configured": configured,
        "patterns": all,
        "flow_patterns_yaml": seam_correlate::flow_patterns_yaml(&all),
    }))
    .into_response()
}

async fn correlations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Response {
    let checked = || {
        let tenant = tenant_of(&headers)?;
        let (Some(key), Some(value)) = (
            param(&p, "key").map(str::to_string),
            param(&p, "value").map(str::to_string),
        ) else {
            return Err(bad("missing required parameters key and value"));
        };
        let end = time_param(&p, "end")?.unwrap_or_else(now_ns);
        let start = time_param(&p, "start")?.unwrap_or(end - DEFAULT_RANGE_NS);
        if end < start {
            return Err(bad("invalid time range: end must not be before start"));
        }
        Ok((tenant, key, value, start, end))
    };
    let (tenant, key, value, start, end) = match checked() {
        Ok(c) => c,
        Err(r) => return r,
    };
    let store = match store_or_503(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let result = blocking(
        move || -> Result<serde_json::Value, seam_store::StoreError> {
            let rows = store.trace_keys(&tenant, &key, &value, start, end)?;
            let mut segments: BTreeMap<TraceId, (BTreeSet<String>, i64, i64)> = BTreeMap::new();
            for r in &rows {
                let e =
                    segments
                        .entry(r.trace_id)
                        .or_insert((BTreeSet::new(), r.start_ns, r.end_ns));
                e.0.insert(r.service.clone());
                e.1 = e.1.min(r.start_ns);
                e.2 = e.2.max(r.end_ns);
            }
            let mut bridges = Vec::new();
            let mut seen = BTreeSet::new();
            for id in segments.keys() {
                for e in store.trace_edges(&tenant, id)? {
                    if segments.contains_key(&e.upstream)
                        && segments.contains_key(&e.downstream)
                        && seen.insert(e.bridge_span_id)
                    {
                        bridges.push(json!({
                            "upstream_trace_id": e.upstream.to_hex(),
                            "downstream_trace_id": e.downstream.to_hex(),
                            "bridge_span_id": e.bridge_span_id.to_hex(),
                            "downstream_root_span_id": e.downstream_root_span_id.to_hex(),
                            "confidence": e.confidence,
                        }));
                    }
                }
            }
            let streams: Vec<u64> = store
                .select_series(&tenant, Signal::Logs, &[], start, end)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let needle = memchr::memmem::Finder::new(value.as_bytes());
            let keep = |l: &str| needle.find(l.as_bytes()).is_some();
            // Every kept line contains the value, so naming it as required lets the token
            // filters skip row groups that cannot mention it without changing the count.
            let scan = LogScan {
                stream_ids: &streams,
                start_ns: start,
                end_ns: end,
                required_substrings: vec![value.as_bytes().to_vec()],
                keep_line: &keep,
                direction: Direction::Backward,
            };
            let lines = store.top_logs(&tenant, &scan, MAX_COUNTED_LINES)?;
            let mut ordered: Vec<_> = segments.into_iter().collect();
            ordered.sort_by_key(|(id, (_, s, _))| (*s, *id));
            Ok(json!({
                "key": key,
                "value": value,
                "segments": ordered.into_iter().map(|(id, (services, s, e))| json!({
                    "trace_id": id.to_hex(),
                    "services": services,
                    "start_ns": s.to_string(),
                    "end_ns": e.to_string(),
                })).collect::<Vec<_>>(),
                "bridges": bridges,
                "log_lines": lines.len(),
                "log_lines_capped": lines.len() >= MAX_COUNTED_LINES,
            }))
        },
    )
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
