//! `/loki/api/v1/query_range` and `/loki/api/v1/query`: parameters and limits as Loki checks
//! them, the LogQL evaluator under the tenant's deadline, and the answer in Loki's JSON
//! (`pkg/util/marshal/query.go`): streams (optionally with categorized labels), matrix, vector or
//! scalar, plus the full `stats` object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use seam_model::{Labels, Tenant};
use seam_query::logql::{
    evaluate, Expr, LogEntry, QueryError, QueryLimits, QueryOutput, QueryStats, QueryTime,
    QueryValue,
};
use seam_store::{Direction, Store};
use serde_json::{json, Map, Value};

use super::params::{self as lp, bad, LIMIT_STATUS};
use crate::api::{blocking, param, store_or_503, success, text_error, Params};
use crate::AppState;

/// `GET|POST /loki/api/v1/query_range`.
pub(super) async fn query_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    match range_request(&state, &headers, &p) {
        Ok(req) => run(&state, req).await,
        Err(r) => r,
    }
}

/// `GET|POST /loki/api/v1/query`.
pub(super) async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    match instant_request(&headers, &p) {
        Ok(req) => run(&state, req).await,
        Err(r) => r,
    }
}

/// A checked query, ready to evaluate.
struct Request {
    tenant: Tenant,
    expr: Expr,
    time: QueryTime,
    interval_ns: i64,
    categorize: bool,
}

fn range_request(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<Request, Response> {
    let tenant = lp::tenant_of(headers)?;
    let (start, end) = lp::bounds(p, lp::DEFAULT_SINCE_NS)?;
    let limit = lp::positive(p, "limit", lp::DEFAULT_LIMIT)?;
    let direction = lp::direction(p)?;
    let step = lp::step(p, start, end)?;
    let interval_ns = lp::interval(p)?;
    let expr = lp::parse_query(param(p, "query").unwrap_or_default())?;
    let limits = state.limits.for_tenant(&tenant);
    lp::check_query_length(limits, start, end)?;
    // The evaluator reads log queries as `[start, end)`, as Loki does.
    if let Expr::Log(_) = &expr {
        lp::check_entries_limit(limits, limit)?;
    }
    Ok(Request {
        tenant,
        expr,
        time: QueryTime {
            start_ns: start,
            end_ns: end,
            step_ns: step,
            limit,
            direction,
        },
        interval_ns,
        categorize: lp::categorize_labels(headers),
    })
}

fn instant_request(headers: &HeaderMap, p: &Params) -> Result<Request, Response> {
    let tenant = lp::tenant_of(headers)?;
    let limit = lp::positive(p, "limit", lp::DEFAULT_LIMIT)?;
    let at = lp::instant(p)?;
    let direction = lp::direction(p)?;
    let expr = lp::parse_query(param(p, "query").unwrap_or_default())?;
    if let Expr::Log(_) = expr {
        return Err(bad("log queries are not supported as an instant query type, please change your query to a range query type"));
    }
    Ok(Request {
        tenant,
        expr,
        time: QueryTime {
            start_ns: at,
            end_ns: at,
            step_ns: 0,
            limit,
            direction,
        },
        interval_ns: 0,
        categorize: lp::categorize_labels(headers),
    })
}

/// Runs `work` off the reactor under the tenant's `query_timeout`; a 504 when it passes. The
/// work is also handed the deadline so it can stop early.
pub(super) async fn with_deadline<T: Send + 'static>(
    timeout: Duration,
    work: impl FnOnce(Deadline) -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    // A zero timeout turns the limit off, as zero does for the other limits.
    if timeout.is_zero() {
        return blocking(move || work(None)).await;
    }
    let deadline = Instant::now().checked_add(timeout);
    let task = tokio::task::spawn_blocking(move || work(deadline));
    match tokio::time::timeout(timeout, task).await {
        Ok(joined) => joined.expect("query task panicked"),
        Err(_) => Err(lp::timeout()),
    }
}

/// When a query must give up (`None`: never).
pub(super) type Deadline = Option<Instant>;

async fn run(state: &AppState, req: Request) -> Response {
    let store = match store_or_503(state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let tl = state.limits.for_tenant(&req.tenant).clone();
    let started = Instant::now();
    let Request {
        tenant,
        expr,
        time,
        interval_ns,
        categorize,
    } = req;
    let result = with_deadline(tl.query_timeout, move |deadline| {
        evaluate(&store, &tenant, &expr, &time, &tl.query_until(deadline)).map_err(query_error)
    })
    .await;
    match result {
        Ok(out) => answer(out, started.elapsed(), interval_ns, &time, categorize),
        Err(r) => r,
    }
}

/// Maps an evaluation error to Loki's status and text.
fn query_error(e: QueryError) -> Response {
    match e {
        QueryError::Invalid(m) => bad(m),
        QueryError::Limit(m) => text_error(LIMIT_STATUS, m),
        QueryError::Timeout(_) => lp::timeout(),
        QueryError::Store(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn answer(
    out: QueryOutput,
    exec: Duration,
    interval_ns: i64,
    time: &QueryTime,
    categorize: bool,
) -> Response {
    let (result_type, result, returned) = match out.value {
        QueryValue::Streams(entries) => {
            let entries = every_interval(entries, interval_ns, time.direction);
            let n = entries.len() as u64;
            ("streams", Value::Array(streams(entries, categorize)), n)
        }
        QueryValue::Matrix(series) => {
            let n = series.len() as u64;
            let v = series
                .into_iter()
                .map(|s| matrix_series(Value::Object(s.labels.to_json_map()), s.points))
                .collect();
            ("matrix", Value::Array(v), n)
        }
        QueryValue::Vector(samples) => {
            let n = samples.len() as u64;
            let v = samples
                .into_iter()
                .map(|s| {
                    vector_sample(
                        Value::Object(s.labels.to_json_map()),
                        s.timestamp_ns,
                        s.value,
                    )
                })
                .collect();
            ("vector", Value::Array(v), n)
        }
        QueryValue::Scalar {
            timestamp_ns,
            value,
        } => ("scalar", sample(timestamp_ns, value), 1),
    };
    let mut data = Map::new();
    data.insert("resultType".into(), json!(result_type));
    if categorize {
        data.insert("encodingFlags".into(), json!(["categorize-labels"]));
    }
    data.insert("result".into(), result);
    data.insert("stats".into(), stats(&out.stats, exec, returned));
    success(Value::Object(data))
}

/// Loki's `interval`: in result order, an entry is kept only when it is at least `interval`
/// after (forward) or before (backward) the last kept one.
fn every_interval(entries: Vec<LogEntry>, interval_ns: i64, dir: Direction) -> Vec<LogEntry> {
    if interval_ns <= 0 {
        return entries;
    }
    let mut last: Option<i64> = None;
    entries
        .into_iter()
        .filter(|e| {
            let keep = last.is_none_or(|l| match dir {
                Direction::Forward => e.timestamp_ns >= l.saturating_add(interval_ns),
                Direction::Backward => e.timestamp_ns <= l.saturating_sub(interval_ns),
            });
            if keep {
                last = Some(e.timestamp_ns);
            }
            keep
        })
        .collect()
}

/// Groups entries into result streams, keeping each stream's entries in result order. With
/// categorized labels a stream is its stream labels and each value carries its structured
/// metadata and parsed labels; otherwise a stream is all of an entry's labels merged. Streams are
/// ordered by their label text, as Loki sorts them.
pub(super) fn streams(entries: Vec<LogEntry>, categorize: bool) -> Vec<Value> {
    let mut groups: Vec<(String, Labels, Vec<Value>)> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for e in entries {
        let key = if categorize {
            e.labels.stream.clone()
        } else {
            e.labels.merged()
        };
        let ts = e.timestamp_ns.to_string();
        let value = if categorize {
            let mut cat = Map::new();
            if !e.labels.structured_metadata.is_empty() {
                cat.insert(
                    "structuredMetadata".into(),
                    Value::Object(e.labels.structured_metadata.to_json_map()),
                );
            }
            if !e.labels.parsed.is_empty() {
                cat.insert(
                    "parsed".into(),
                    Value::Object(e.labels.parsed.to_json_map()),
                );
            }
            json!([ts, e.line, Value::Object(cat)])
        } else {
            json!([ts, e.line])
        };
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key.to_string(), key, Vec::new()));
            groups.len() - 1
        });
        groups[i].2.push(value);
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    groups
        .into_iter()
        .map(|(_, labels, values)| stream_json(&labels, values))
        .collect()
}

/// A result stream as Loki writes it: `{"stream":{…},"values":[…]}`.
pub(super) fn stream_json(labels: &Labels, values: Vec<Value>) -> Value {
    json!({"stream": labels.to_json_map(), "values": values})
}

/// A matrix series: `{"metric":{…},"values":[[<seconds>,"<value>"],…]}`.
pub(super) fn matrix_series(metric: Value, points: impl IntoIterator<Item = (i64, f64)>) -> Value {
    let values: Vec<Value> = points.into_iter().map(|(t, v)| sample(t, v)).collect();
    json!({"metric": metric, "values": values})
}

/// A vector sample: `{"metric":{…},"value":[<seconds>,"<value>"]}`.
pub(super) fn vector_sample(metric: Value, ns: i64, v: f64) -> Value {
    json!({"metric": metric, "value": sample(ns, v)})
}

/// `[<seconds>, "<value>"]` as Prometheus' `model.Time` and `model.SampleValue` print them:
/// millisecond precision, and the value in Go's shortest `'f'` form (`+Inf`, `NaN`).
pub(super) fn sample(ns: i64, v: f64) -> Value {
    let ms = ns.div_euclid(1_000_000);
    let t = if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    };
    let text = if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    };
    json!([t, text])
}

/// The whole `stats` object Loki sends (`pkg/logqlmodel/stats`), with what Seam measures filled
/// in: the summary, the querier's store figures and the index's chunk counts (Seam has no
/// ingesters or caches, so those blocks are zero). A segment row group stands for a Loki chunk:
/// one its token filter ruled out counts as referenced but not downloaded, and in the index
/// block as filtered out, where Loki counts the chunks its bloom filters remove.
pub(super) fn stats(s: &QueryStats, exec: Duration, returned: u64) -> Value {
    let secs = exec.as_secs_f64();
    let bytes = s.bytes_processed + s.structured_metadata_bytes;
    let per_sec = |n: u64| {
        if secs > 0.0 {
            (n as f64 / secs) as u64
        } else {
            0
        }
    };
    let store = |s: &QueryStats| {
        let md = s.structured_metadata_bytes;
        json!({
            "totalChunksRef": s.chunks_ref, "totalChunksDownloaded": s.chunks_downloaded,
            "chunksDownloadTime": 0,
            "queryReferencedStructuredMetadata": md > 0, "queryUsedV2Engine": false,
            "chunk": {
                "headChunkBytes": 0, "headChunkLines": 0,
                "decompressedBytes": s.bytes_processed, "decompressedLines": s.lines_processed,
                "compressedBytes": s.compressed_bytes_read, "totalDuplicates": 0,
                "postFilterLines": s.post_filter_lines,
                "headChunkStructuredMetadataBytes": 0, "decompressedStructuredMetadataBytes": md
            },
            "chunkRefsFetchTime": 0, "congestionControlLatency": 0,
            "pipelineWrapperFilteredLines": 0,
            "dataobj": {
                "prePredicateDecompressedRows": 0, "prePredicateDecompressedBytes": 0,
                "prePredicateDecompressedStructuredMetadataBytes": 0, "postPredicateRows": 0,
                "postPredicateDecompressedBytes": 0, "postPredicateStructuredMetadataBytes": 0,
                "postFilterRows": 0, "pagesScanned": 0, "pagesDownloaded": 0,
                "pagesDownloadedBytes": 0, "pageBatches": 0, "totalRowsAvailable": 0,
                "totalPageDownloadTime": 0, "wireBytesTransferred": 0
            }
        })
    };
    let cache_entry = json!({
        "entriesFound": 0, "entriesRequested": 0, "entriesStored": 0, "bytesReceived": 0,
        "bytesSent": 0, "requests": 0, "downloadTime": 0, "queryLengthServed": 0
    });
    let cache: Map<String, Value> = [
        "chunk",
        "index",
        "result",
        "statsResult",
        "volumeResult",
        "seriesResult",
        "labelResult",
        "instantMetricResult",
        "logResult",
        "taskResult",
    ]
    .iter()
    .map(|k| (k.to_string(), cache_entry.clone()))
    .collect();
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_sec(bytes),
            "linesProcessedPerSecond": per_sec(s.lines_processed),
            "totalBytesProcessed": bytes,
            "totalLinesProcessed": s.lines_processed,
            "execTime": secs,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": returned,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": s.post_filter_lines,
            "totalStructuredMetadataBytesProcessed": s.structured_metadata_bytes
        },
        "querier": {
            "store": store(s),
            "querierExecTime": secs
        },
        "ingester": {
            "totalReached": 0, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": 0,
            "store": store(&QueryStats::default())
        },
        "cache": Value::Object(cache),
        "index": {
            "totalChunks": s.chunks_ref, "postFilterChunks": s.chunks_downloaded,
            "shardsDuration": 0,
            "usedBloomFilters": false, "totalStreams": 0, "chunkRefsLookupTime": 0,
            "bloomFilterTime": 0
        }
    })
}

/// Evaluates a log query for an endpoint that reads entries itself (detected fields).
pub(super) fn evaluate_logs(
    store: &Store,
    tenant: &Tenant,
    expr: &Expr,
    time: &QueryTime,
    limits: &QueryLimits,
) -> Result<Vec<LogEntry>, Response> {
    match evaluate(store, tenant, expr, time, limits)
        .map_err(query_error)?
        .value
    {
        QueryValue::Streams(e) => Ok(e),
        _ => Err(bad("only log queries are supported here")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seam_query::logql::EntryLabels;

    fn entry(
        ts: i64,
        stream: &[(&str, &str)],
        md: &[(&str, &str)],
        parsed: &[(&str, &str)],
    ) -> LogEntry {
        let l = |v: &[(&str, &str)]| Labels::from_pairs(v.iter().copied());
        LogEntry {
            timestamp_ns: ts,
            line: format!("line {ts}"),
            labels: EntryLabels {
                stream: l(stream),
                structured_metadata: l(md),
                parsed: l(parsed),
            },
        }
    }

    #[test]
    fn samples_print_as_prometheus_does() {
        assert_eq!(
            sample(1_700_000_000_000_000_000, 2.0),
            json!([1_700_000_000u64, "2"])
        );
        assert_eq!(
            sample(1_700_000_000_123_456_789, 0.1),
            json!([1_700_000_000.123, "0.1"])
        );
        assert_eq!(sample(0, f64::INFINITY), json!([0, "+Inf"]));
        assert_eq!(sample(0, f64::NEG_INFINITY), json!([0, "-Inf"]));
        assert_eq!(sample(0, f64::NAN), json!([0, "NaN"]));
        assert_eq!(sample(0, 1e21), json!([0, "1000000000000000000000"]));
    }

    #[test]
    fn streams_merge_or_categorize_labels() {
        let es = || {
            vec![
                entry(3, &[("app", "a")], &[("trace_id", "t1")], &[]),
                entry(2, &[("app", "a")], &[], &[("level", "info")]),
                entry(1, &[("app", "b")], &[], &[]),
            ]
        };
        let merged = streams(es(), false);
        assert_eq!(
            Value::Array(merged),
            json!([
                {"stream": {"app": "a", "level": "info"}, "values": [["2", "line 2"]]},
                {"stream": {"app": "a", "trace_id": "t1"}, "values": [["3", "line 3"]]},
                {"stream": {"app": "b"}, "values": [["1", "line 1"]]},
            ])
        );
        let cat = streams(es(), true);
        assert_eq!(
            Value::Array(cat),
            json!([
                {"stream": {"app": "a"}, "values": [
                    ["3", "line 3", {"structuredMetadata": {"trace_id": "t1"}}],
                    ["2", "line 2", {"parsed": {"level": "info"}}]
                ]},
                {"stream": {"app": "b"}, "values": [["1", "line 1", {}]]},
            ])
        );
    }

    #[test]
    fn interval_keeps_one_entry_per_step() {
        let es: Vec<LogEntry> = [10, 9, 7, 6, 3]
            .iter()
            .map(|&t| entry(t, &[("a", "b")], &[], &[]))
            .collect();
        let kept: Vec<i64> = every_interval(es, 3, Direction::Backward)
            .iter()
            .map(|e| e.timestamp_ns)
            .collect();
        assert_eq!(kept, vec![10, 7, 3]);
    }
}
