//! `GET /loki/api/v1/tail`: Loki's live tail over a WebSocket. The last `limit` matching entries
//! since `start` come first (oldest first), then every matching entry as its push is
//! acknowledged, in Loki's frames: `{"streams":[{"stream":{…},"values":[["ns","line"]]}],
//! "dropped_entries":[{"timestamp":"ns","labels":{…}}]}`.
//!
//! As in Loki, bad parameters are answered with a 400 before the upgrade, and what fails once
//! the socket is open (the concurrent-tail limit, the history query) closes it with code 1011
//! and the error as the close reason.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use seam_model::{Labels, LogBatch, Tenant};
use seam_query::logql::{self, Expr, LogEntry, LogExpr, Pipeline, QueryTime, QueryValue};
use seam_store::{Direction, LabelMatcher, Store};
use serde_json::{json, Value};

use super::params::{self as lp, bad};
use super::query::stream_json;
use crate::api::{blocking, param, store_or_503, Params};
use crate::params::now_ns;
use crate::tail::{DroppedEntry, TailSubscription, MAX_DROPPED_ENTRIES};
use crate::{AppState, TenantLimits};

/// Loki refuses a longer `delay_for`.
const MAX_DELAY_FOR_SECS: u64 = 5;
/// Entries per frame, as Loki's querier batches them.
const MAX_ENTRIES_PER_FRAME: usize = 100;
/// Entries held back (by `delay_for`, or stamped in the future) before newer ones are dropped.
const MAX_PENDING: usize = 10_000;
/// Pings find dead peers when nothing is being tailed.
const PING_EVERY: Duration = Duration::from_secs(10);
/// RFC 6455 caps a close reason at 123 bytes.
const MAX_CLOSE_REASON: usize = 123;

/// The tail route, merged into the Loki routes.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/loki/api/v1/tail", get(tail))
}

/// A validated tail request.
struct TailRequest {
    tenant: Tenant,
    query: LogExpr,
    pipeline: Pipeline,
    delay_ns: i64,
    limit: usize,
    start_ns: i64,
}

fn parse_request(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<TailRequest, Response> {
    let tenant = lp::tenant_of(headers)?;
    let query = param(p, "query").ok_or_else(|| bad("missing required parameter \"query\""))?;
    let query = match lp::parse_query(query)? {
        Expr::Log(q) => q,
        Expr::Sample(_) => {
            return Err(bad(
                "tail needs a log query: metric queries cannot be tailed",
            ))
        }
    };
    let pipeline = Pipeline::new(&query.pipeline).map_err(bad)?;
    let delay_secs = match param(p, "delay_for") {
        None => 0,
        Some(v) => v.trim().parse::<u64>().map_err(|_| {
            bad(format!(
                "invalid parameter \"delay_for\": {v:?} is not a whole number of seconds"
            ))
        })?,
    };
    if delay_secs > MAX_DELAY_FOR_SECS {
        return Err(bad(format!(
            "delay_for can't be greater than {MAX_DELAY_FOR_SECS}"
        )));
    }
    let limit = lp::positive(p, "limit", lp::DEFAULT_LIMIT)?;
    lp::check_entries_limit(state.limits.for_tenant(&tenant), limit)?;
    let start_ns = lp::time_param(p, "start")?.unwrap_or_else(|| now_ns() - lp::DEFAULT_SINCE_NS);
    Ok(TailRequest {
        tenant,
        query,
        pipeline,
        delay_ns: delay_secs as i64 * 1_000_000_000,
        limit,
        start_ns,
    })
}

async fn tail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Query(p): Query<Params>,
) -> Response {
    let req = match parse_request(&state, &headers, &p) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let store = match store_or_503(&state) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| run(socket, state, store, req)),
        Err(rejection) => rejection.into_response(),
    }
}

/// Serves one tail until the client leaves or a limit closes it.
async fn run(mut socket: WebSocket, state: Arc<AppState>, store: Store, req: TailRequest) {
    let limits = state.limits.for_tenant(&req.tenant).clone();
    let matchers: Vec<LabelMatcher> = req
        .query
        .matchers
        .iter()
        .map(|m| {
            m.to_label_matcher()
                .expect("the parser compiled these regexes")
        })
        .collect();
    // Subscribed before the history is read, so nothing acknowledged in between is missed.
    let mut sub =
        match state
            .tails
            .subscribe(&req.tenant, matchers, limits.max_concurrent_tail_requests)
        {
            Ok(s) => s,
            Err(e) => return close(socket, &e.to_string()).await,
        };
    tracing::debug!(tenant = req.tenant.as_str(), "tail started");
    let entries = match history(&store, &req, &limits).await {
        Ok(entries) => entries,
        Err(e) => return close(socket, &e).await,
    };
    let mut tailer = Tailer::new(req.pipeline, req.delay_ns, &limits);
    tailer.remember(&entries);
    if send_entries(&mut socket, &entries, Vec::new())
        .await
        .is_err()
    {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let wake = tailer.next_release_ns().map(|ns| {
            let wait = (ns - now_ns()).clamp(0, 60 * 1_000_000_000) as u64;
            tokio::time::Instant::now() + Duration::from_nanos(wait)
        });
        let mut limit_hit = None;
        tokio::select! {
            batch = sub.recv() => match batch {
                Some(b) => limit_hit = tailer.accept(&b, &sub).err(),
                None => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            _ = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {}
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
        let due = tailer.release(now_ns());
        if !due.is_empty() {
            let mut dropped = tailer.take_overflow();
            dropped.extend(sub.take_dropped());
            dropped.truncate(MAX_DROPPED_ENTRIES);
            if send_entries(&mut socket, &due, dropped).await.is_err() {
                return;
            }
        }
        if let Some(reason) = limit_hit {
            return close(socket, &reason).await;
        }
    }
}

/// The last `limit` matching entries since `start`, oldest first.
async fn history(
    store: &Store,
    req: &TailRequest,
    limits: &TenantLimits,
) -> Result<Vec<LogEntry>, String> {
    let (store, tenant, expr) = (
        store.clone(),
        req.tenant.clone(),
        Expr::Log(req.query.clone()),
    );
    let time = QueryTime {
        start_ns: req.start_ns,
        end_ns: now_ns(),
        step_ns: 0,
        limit: req.limit,
        direction: Direction::Backward,
    };
    let query_limits = limits.query();
    let out = blocking(move || logql::evaluate(&store, &tenant, &expr, &time, &query_limits))
        .await
        .map_err(|e| e.to_string())?;
    match out.value {
        QueryValue::Streams(mut entries) => {
            entries.sort_by_key(|e| e.timestamp_ns);
            Ok(entries)
        }
        _ => Err("the history of a tail must be a log query".into()),
    }
}

/// The live side of one tail: the pipeline, the entries held back by `delay_for`, and the
/// lines-per-second budget.
struct Tailer {
    pipeline: Pipeline,
    delay_ns: i64,
    /// Held entries by (time, arrival), so equal times keep their push order.
    pending: BTreeMap<(i64, u64), LogEntry>,
    arrivals: u64,
    /// History entries, so a live copy of one is not sent twice.
    sent: HashSet<u64>,
    overflow: Vec<DroppedEntry>,
    max_lines_per_second: u32,
    window_start: tokio::time::Instant,
    window_lines: u32,
}

fn entry_key(e: &LogEntry) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    e.timestamp_ns.hash(&mut h);
    e.line.hash(&mut h);
    e.labels.hash(&mut h);
    h.finish()
}

impl Tailer {
    fn new(pipeline: Pipeline, delay_ns: i64, limits: &TenantLimits) -> Tailer {
        Tailer {
            pipeline,
            delay_ns,
            pending: BTreeMap::new(),
            arrivals: 0,
            sent: HashSet::new(),
            overflow: Vec::new(),
            max_lines_per_second: limits.tail_max_lines_per_second,
            window_start: tokio::time::Instant::now(),
            window_lines: 0,
        }
    }

    fn remember(&mut self, history: &[LogEntry]) {
        self.sent.extend(history.iter().map(entry_key));
    }

    /// Runs the pipeline over an acknowledged batch and holds what passes. Errs with the close
    /// reason when the tail has passed its lines-per-second limit.
    fn accept(&mut self, batch: &LogBatch, sub: &TailSubscription) -> Result<(), String> {
        for stream in &batch.streams {
            if !sub.selects(&stream.labels) {
                continue;
            }
            let labels = stream.label_set();
            for e in &stream.entries {
                let metadata = Labels::from_labels(e.structured_metadata.clone());
                let Some(out) = self
                    .pipeline
                    .process(e.timestamp_ns, &e.line, &labels, &metadata)
                else {
                    continue;
                };
                if !self.sent.is_empty() && self.sent.contains(&entry_key(&out)) {
                    continue;
                }
                self.count_line()?;
                if self.pending.len() >= MAX_PENDING {
                    if self.overflow.len() < MAX_DROPPED_ENTRIES {
                        self.overflow.push(DroppedEntry {
                            labels: out.labels.merged(),
                            timestamp_ns: out.timestamp_ns,
                        });
                    }
                    continue;
                }
                self.arrivals += 1;
                self.pending.insert((out.timestamp_ns, self.arrivals), out);
            }
        }
        Ok(())
    }

    fn count_line(&mut self) -> Result<(), String> {
        let now = tokio::time::Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.window_lines = 0;
        }
        self.window_lines += 1;
        if self.window_lines > self.max_lines_per_second {
            return Err(format!(
                "tail_max_lines_per_second limit exceeded, lines > limit ({} > {})",
                self.window_lines, self.max_lines_per_second
            ));
        }
        Ok(())
    }

    /// When the oldest held entry is due, in ns.
    fn next_release_ns(&self) -> Option<i64> {
        self.pending
            .keys()
            .next()
            .map(|(ts, _)| ts.saturating_add(self.delay_ns))
    }

    /// The held entries whose time plus `delay_for` has passed, oldest first.
    fn release(&mut self, now_ns: i64) -> Vec<LogEntry> {
        let mut out = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0.saturating_add(self.delay_ns) > now_ns {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    fn take_overflow(&mut self) -> Vec<DroppedEntry> {
        std::mem::take(&mut self.overflow)
    }
}

/// One tail frame: consecutive entries with the same labels share a stream.
fn frame(entries: &[LogEntry], dropped: &[DroppedEntry]) -> String {
    let mut streams: Vec<(Labels, Vec<Value>)> = Vec::new();
    for e in entries {
        let labels = e.labels.merged();
        let value = json!([e.timestamp_ns.to_string(), e.line]);
        match streams.last_mut() {
            Some((l, values)) if *l == labels => values.push(value),
            _ => streams.push((labels, vec![value])),
        }
    }
    let streams: Vec<Value> = streams
        .into_iter()
        .map(|(labels, values)| stream_json(&labels, values))
        .collect();
    let mut body = json!({ "streams": streams });
    // Loki leaves the key out when nothing was dropped.
    if !dropped.is_empty() {
        body["dropped_entries"] = dropped
            .iter()
            .map(|d| json!({"timestamp": d.timestamp_ns.to_string(), "labels": d.labels.to_json_map()}))
            .collect();
    }
    body.to_string()
}

/// Sends `entries` in frames of at most [`MAX_ENTRIES_PER_FRAME`]; `dropped` rides on the first.
async fn send_entries(
    socket: &mut WebSocket,
    entries: &[LogEntry],
    mut dropped: Vec<DroppedEntry>,
) -> Result<(), axum::Error> {
    for chunk in entries.chunks(MAX_ENTRIES_PER_FRAME) {
        let text = frame(chunk, &dropped);
        dropped.clear();
        socket.send(Message::Text(text.into())).await?;
    }
    Ok(())
}

/// Closes the socket with code 1011 (as Loki closes a tail that fails) and `reason`.
async fn close(mut socket: WebSocket, reason: &str) {
    let mut cut = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    tracing::debug!(reason, "closing tail");
    let frame = CloseFrame {
        code: close_code::ERROR,
        reason: reason[..cut].into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    // Wait (briefly) for the client's answering close, so the reason is not lost to a reset.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use seam_query::logql::EntryLabels;

    fn entry(ts: i64, app: &str, line: &str) -> LogEntry {
        LogEntry {
            timestamp_ns: ts,
            line: line.into(),
            labels: EntryLabels {
                stream: Labels::from_pairs([("app", app)]),
                ..Default::default()
            },
        }
    }

    #[test]
    fn frames_group_consecutive_entries_and_report_drops() {
        let entries = [entry(1, "a", "x"), entry(2, "a", "y"), entry(3, "b", "z")];
        let dropped = [DroppedEntry {
            labels: Labels::from_pairs([("app", "a")]),
            timestamp_ns: 7,
        }];
        let v: Value = serde_json::from_str(&frame(&entries, &dropped)).unwrap();
        assert_eq!(
            v,
            json!({
                "streams": [
                    {"stream": {"app": "a"}, "values": [["1", "x"], ["2", "y"]]},
                    {"stream": {"app": "b"}, "values": [["3", "z"]]},
                ],
                "dropped_entries": [{"timestamp": "7", "labels": {"app": "a"}}],
            })
        );
        let v: Value = serde_json::from_str(&frame(&entries[..1], &[])).unwrap();
        assert!(v.get("dropped_entries").is_none());
    }
}
