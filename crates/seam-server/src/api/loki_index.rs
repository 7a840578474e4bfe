//! `/loki/api/v1/index/stats`, `/index/volume` and `/index/volume_range`. Loki estimates these
//! from its index; Seam counts them exactly by scanning the matching streams' rows (line bytes,
//! no structured metadata), so the figures equal what a query over the same range would read.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use seam_model::{Labels, Signal};
use seam_store::{Direction, LabelMatcher, LogRowRef, LogScan, LogVisitor, Store};
use serde_json::{json, Map, Value};

use super::params::{self as lp, bad};
use super::query::{matrix_series, stats as query_stats, vector_sample, with_deadline, Deadline};
use crate::api::{param, store_or_503, text_error, Params};
use crate::AppState;

/// Loki's default `limit` of the volume endpoints.
const DEFAULT_VOLUME_LIMIT: usize = 100;

/// Counts rows and bytes per stream (and per time bucket), and the chunks they came from: a chunk
/// is one scan unit of the store (a head slice of up to 16Ki rows, or a Parquet row group), and
/// it counts only once a row of it passes.
struct Counter<'a> {
    /// Bucket ends (ns, ascending); a row falls in the first bucket ending at or after it.
    bucket_ends: &'a [i64],
    /// `(stream, bucket) -> (entries, bytes)`.
    counts: HashMap<(u64, usize), (u64, u64)>,
    chunks: u64,
    chunk_counted: Cell<bool>,
    deadline: Deadline,
    timed_out: Cell<bool>,
}

impl<'a> Counter<'a> {
    fn new(bucket_ends: &'a [i64], deadline: Deadline) -> Counter<'a> {
        Counter {
            bucket_ends,
            counts: HashMap::new(),
            chunks: 0,
            chunk_counted: Cell::new(false),
            deadline,
            timed_out: Cell::new(false),
        }
    }
}

impl LogVisitor for Counter<'_> {
    fn visit(&mut self, row: LogRowRef<'_>) {
        if !self.chunk_counted.replace(true) {
            self.chunks += 1;
        }
        let b = self
            .bucket_ends
            .partition_point(|&end| end < row.timestamp_ns)
            .min(self.bucket_ends.len().saturating_sub(1));
        let c = self.counts.entry((row.stream_id, b)).or_default();
        c.0 += 1;
        c.1 += row.line.len() as u64;
    }

    fn wants(&self, _min_ns: i64, _max_ns: i64) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.timed_out.set(true);
            return false;
        }
        // The store asks right before handing over each unit (a head slice or a segment row
        // group): the rows that follow are that unit's.
        self.chunk_counted.set(false);
        true
    }

    fn needs_structured_metadata(&self) -> bool {
        false
    }
}

/// The matching streams and what the scan counted.
struct Scanned {
    streams: Vec<(u64, Labels)>,
    counts: HashMap<(u64, usize), (u64, u64)>,
    chunks: u64,
}

fn scan(
    store: &Store,
    tenant: &seam_model::Tenant,
    matchers: &[LabelMatcher],
    start: i64,
    end: i64,
    bucket_ends: &[i64],
    deadline: Deadline,
) -> Result<Scanned, Response> {
    let streams = store.select_series(tenant, Signal::Logs, matchers, start, end);
    let ids: Vec<u64> = streams.iter().map(|(id, _)| *id).collect();
    let mut counter = Counter::new(bucket_ends, deadline);
    let keep = |_: &str| true;
    store
        .visit_logs(
            tenant,
            &LogScan {
                stream_ids: &ids,
                start_ns: start,
                end_ns: end,
                required_substrings: Vec::new(),
                keep_line: &keep,
                direction: Direction::Forward,
            },
            &mut counter,
        )
        .map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if counter.timed_out.get() {
        return Err(lp::timeout());
    }
    Ok(Scanned {
        streams,
        counts: counter.counts,
        chunks: counter.chunks,
    })
}

/// `GET|POST /loki/api/v1/index/stats?query=&start=&end=` → `{"streams","chunks","entries","bytes"}`:
/// streams matching the selector with data in the range, and their entries and line bytes in it.
pub(super) async fn stats(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let prepared = (|| {
        let tenant = lp::tenant_of(&headers)?;
        let (start, end) = lp::bounds(&p, lp::DEFAULT_SINCE_NS)?;
        let matchers = lp::selector_matchers(param(&p, "query").unwrap_or_default())?;
        let limits = state.limits.for_tenant(&tenant).clone();
        lp::check_query_length(&limits, start, end)?;
        Ok::<_, Response>((tenant, start, end, matchers, limits, store_or_503(&state)?))
    })();
    let (tenant, start, end, matchers, limits, store) = match prepared {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = with_deadline(limits.query_timeout, move |deadline| {
        let s = scan(&store, &tenant, &matchers, start, end, &[end], deadline)?;
        let (entries, bytes) = s
            .counts
            .values()
            .fold((0, 0), |(e, b), (ce, cb)| (e + ce, b + cb));
        // Loki counts streams that have chunks in the range.
        let streams = s
            .streams
            .iter()
            .filter(|(id, _)| s.counts.contains_key(&(*id, 0)))
            .count();
        Ok(json!({"streams": streams, "chunks": s.chunks, "entries": entries, "bytes": bytes}))
    })
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// How volumes are grouped (`aggregateBy` and `targetLabels`, as Loki's
/// `PrepareLabelsAndMatchers` reads them).
struct Grouping {
    /// Group by label names only (`aggregateBy=labels`) instead of label-value pairs.
    by_labels: bool,
    /// The labels grouped on; `None`: all of each stream's labels.
    keep: Option<Vec<String>>,
}

impl Grouping {
    /// The labels of a stream that are grouped on.
    fn kept(&self, labels: &Labels) -> Labels {
        Labels::from_labels(
            labels
                .as_slice()
                .iter()
                .filter(|l| self.keep.as_ref().is_none_or(|k| k.contains(&l.name)))
                .cloned()
                .collect(),
        )
    }

    /// The group names one stream's volume adds to.
    fn keys(&self, labels: &Labels) -> Vec<String> {
        let kept = self.kept(labels);
        if self.by_labels {
            kept.into_vec().into_iter().map(|l| l.name).collect()
        } else {
            vec![kept.to_string()]
        }
    }

    /// The metric of a group: its labels, or `{name: ""}` for a label-name group.
    fn metric(&self, key: &str, streams: &HashMap<String, Labels>) -> Value {
        if self.by_labels {
            let mut m = Map::new();
            m.insert(key.to_string(), json!(""));
            Value::Object(m)
        } else {
            Value::Object(
                streams
                    .get(key)
                    .map(Labels::to_json_map)
                    .unwrap_or_default(),
            )
        }
    }
}

/// A parsed volume request.
struct VolumeRequest {
    tenant: seam_model::Tenant,
    start: i64,
    end: i64,
    step: Option<i64>,
    matchers: Vec<LabelMatcher>,
    grouping: Grouping,
    limit: usize,
    limits: crate::limits::TenantLimits,
}

fn volume_request(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
    range: bool,
) -> Result<VolumeRequest, Response> {
    let tenant = lp::tenant_of(headers)?;
    let (start, end) = lp::bounds(p, lp::DEFAULT_SINCE_NS)?;
    // Loki treats `limit=0` as the default.
    let limit = match param(p, "limit") {
        Some("0") => DEFAULT_VOLUME_LIMIT,
        _ => lp::positive(p, "limit", DEFAULT_VOLUME_LIMIT)?,
    };
    let step = if range {
        Some(lp::step(p, start, end)?)
    } else {
        None
    };
    let by_labels = match param(p, "aggregateBy") {
        None | Some("series") => false,
        Some("labels") => true,
        Some(_) => return Err(bad("invalid aggregation option")),
    };
    let query = param(p, "query").unwrap_or_default();
    let match_all = query.trim() == "{}";
    let mut matchers = if match_all {
        Vec::new()
    } else {
        lp::selector_matchers(query)?
    };
    let targets: Vec<String> = param(p, "targetLabels")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let keep = if !targets.is_empty() {
        // Every target label must be present, as Loki adds `target=~".+"` for missing ones.
        for t in &targets {
            if !matchers.iter().any(|m| &m.name == t) {
                matchers.push(
                    LabelMatcher::new(t.clone(), seam_store::MatchOp::Regex, ".+".to_string())
                        .map_err(|e| bad(e.to_string()))?,
                );
            }
        }
        Some(targets)
    } else if match_all {
        None
    } else {
        let mut names: Vec<String> = matchers.iter().map(|m| m.name.clone()).collect();
        names.sort();
        names.dedup();
        Some(names)
    };
    let limits = state.limits.for_tenant(&tenant).clone();
    lp::check_query_length(&limits, start, end)?;
    Ok(VolumeRequest {
        tenant,
        start,
        end,
        step,
        matchers,
        grouping: Grouping { by_labels, keep },
        limit,
        limits,
    })
}

/// `[start, end]` cut at multiples of `step` as Loki's `util.ForInterval` cuts it (inclusive
/// ends are one millisecond short of the next cut); each bucket is stamped with its end.
fn bucket_ends(start: i64, end: i64, step: Option<i64>) -> Vec<i64> {
    let Some(step) = step.filter(|s| *s > 0) else {
        return vec![end];
    };
    let mut out = Vec::new();
    let mut t = start - start.rem_euclid(step);
    while t < end {
        let next = t + step;
        out.push(if next >= end { end } else { next - 1_000_000 });
        t = next;
    }
    if out.is_empty() {
        out.push(end);
    }
    out
}

/// Answers `/index/volume` (`range` false) or `/index/volume_range`.
async fn volume_answer(state: &AppState, headers: &HeaderMap, p: &Params, range: bool) -> Response {
    let req = match volume_request(state, headers, p, range) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let store = match store_or_503(state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let started = Instant::now();
    let timeout = req.limits.query_timeout;
    let result = with_deadline(timeout, move |deadline| {
        let ends = bucket_ends(req.start, req.end, req.step);
        let s = scan(
            &store,
            &req.tenant,
            &req.matchers,
            req.start,
            req.end,
            &ends,
            deadline,
        )?;
        Ok(volumes(&req, &ends, s))
    })
    .await;
    match result {
        Ok((result_type, result)) => crate::api::success(json!({
            "resultType": result_type,
            "result": result,
            "stats": query_stats(&Default::default(), started.elapsed(), 0),
        })),
        Err(r) => r,
    }
}

/// Sums bytes per group and bucket, keeps each bucket's `limit` largest groups (ties by name),
/// and orders series by their first value, largest first, as Loki's volume middleware does. The
/// result is a vector when no series has more than one point.
fn volumes(req: &VolumeRequest, ends: &[i64], s: Scanned) -> (&'static str, Vec<Value>) {
    let labels_of: HashMap<u64, &Labels> = s.streams.iter().map(|(id, l)| (*id, l)).collect();
    let mut groups: HashMap<String, Labels> = HashMap::new();
    // A stream's group names, worked out once however many buckets it has rows in.
    let mut keys_of: HashMap<u64, Vec<String>> = HashMap::new();
    let mut per_bucket: Vec<HashMap<String, u64>> = vec![HashMap::new(); ends.len()];
    for ((id, b), (_, bytes)) in &s.counts {
        let Some(labels) = labels_of.get(id) else {
            continue;
        };
        let keys = keys_of.entry(*id).or_insert_with(|| {
            if req.grouping.by_labels {
                req.grouping.keys(labels)
            } else {
                let kept = req.grouping.kept(labels);
                let key = kept.to_string();
                groups.entry(key.clone()).or_insert(kept);
                vec![key]
            }
        });
        for key in keys.iter() {
            *per_bucket[*b].entry(key.clone()).or_default() += bytes;
        }
    }
    let mut series: HashMap<String, Vec<(i64, u64)>> = HashMap::new();
    for (b, vols) in per_bucket.into_iter().enumerate() {
        let mut v: Vec<(String, u64)> = vols.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(req.limit);
        for (name, bytes) in v {
            series.entry(name).or_default().push((ends[b], bytes));
        }
    }
    let matrix = series.values().any(|pts| pts.len() > 1);
    let mut series: Vec<(String, Vec<(i64, u64)>)> = series.into_iter().collect();
    series.sort_by(|a, b| b.1[0].1.cmp(&a.1[0].1).then_with(|| a.0.cmp(&b.0)));
    let result = series
        .into_iter()
        .map(|(name, pts)| {
            let metric = req.grouping.metric(&name, &groups);
            if matrix {
                matrix_series(metric, pts.into_iter().map(|(t, v)| (t, v as f64)))
            } else {
                vector_sample(metric, pts[0].0, pts[0].1 as f64)
            }
        })
        .collect();
    (if matrix { "matrix" } else { "vector" }, result)
}

/// `GET|POST /loki/api/v1/index/volume`: bytes per group over the whole range, as a vector.
pub(super) async fn volume(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    volume_answer(&state, &headers, &p, false).await
}

/// `GET|POST /loki/api/v1/index/volume_range`: bytes per group per `step`, as a matrix.
pub(super) async fn volume_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    volume_answer(&state, &headers, &p, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cut_like_loki() {
        let s = 1_000_000_000i64;
        assert_eq!(bucket_ends(5 * s, 20 * s, None), vec![20 * s]);
        assert_eq!(
            bucket_ends(5 * s, 20 * s, Some(10 * s)),
            vec![10 * s - 1_000_000, 20 * s]
        );
        assert_eq!(
            bucket_ends(0, 25 * s, Some(10 * s)),
            vec![10 * s - 1_000_000, 20 * s - 1_000_000, 25 * s]
        );
    }

    #[test]
    fn groups_by_targets_or_names() {
        let l = Labels::from_pairs([("app", "a"), ("env", "prod"), ("pod", "p1")]);
        let g = Grouping {
            by_labels: false,
            keep: Some(vec!["app".into(), "env".into()]),
        };
        assert_eq!(g.keys(&l), vec![r#"{app="a", env="prod"}"#.to_string()]);
        let g = Grouping {
            by_labels: true,
            keep: None,
        };
        assert_eq!(g.keys(&l), vec!["app", "env", "pod"]);
        assert_eq!(g.metric("env", &HashMap::new()), json!({"env": ""}));
    }
}
