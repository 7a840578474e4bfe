//! `seam demo score`: the bridges Seam wrote, compared with the truth file of `seam demo mdso`.
//!
//! A predicted link is a bridge span (`synthetic=true`) found in a generated trace's raw view
//! (`?stitch=false`): upstream is the trace holding it, downstream its
//! `correlation.downstream_trace_id`. Links are compared as (upstream, downstream) trace pairs;
//! several bridge spans for one pair count once (and are reported as duplicates). `flows` counts
//! flow instances in the truth file (a concurrent twin is a flow of its own).
//!
//! Besides the counts it prints why: misses grouped by step and by the noise tags of their flow,
//! and wrong links by kind (a skipped step, another flow on the same circuit, ...).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper::StatusCode;
use prost::Message;
use seam_model::attributes::find_str;
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::traces::{is_synthetic, BRIDGE_DOWNSTREAM_ATTR};
use serde_json::json;

use super::http::{error_message, Http};
use super::mdso::hex;

/// Arguments of `seam demo score`.
#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// The truth file written by `seam demo mdso --truth`.
    #[arg(long)]
    pub truth: PathBuf,
    /// Base URL of Seam's query API, e.g. http://127.0.0.1:3200
    #[arg(long)]
    pub api: String,
    /// Tenant (sent as X-Scope-OrgID).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Also print the scores as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Start scoring once Seam's bridge count (`correlation_bridge_spans_created_total` on
    /// /metrics) has not changed for this many seconds.
    #[arg(long, default_value_t = 5.0)]
    pub wait: f64,
    /// Give up waiting for the bridge count to settle after this many seconds, and score anyway.
    #[arg(long, default_value_t = 120.0)]
    pub max_wait: f64,
    /// Trace fetches in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// One generated trace.
struct TraceInfo {
    service: String,
    flow: Option<u64>,
    circuit: Option<String>,
}

/// One true link.
struct TrueLink {
    up_service: String,
    down_service: String,
    flow: Option<u64>,
    noise: Vec<String>,
}

struct Truth {
    traces: Vec<(String, TraceInfo)>,
    links: HashMap<(String, String), TrueLink>,
}

fn read_truth(path: &PathBuf) -> anyhow::Result<Truth> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the truth file {}", path.display()))?;
    let mut traces = Vec::new();
    let mut seen = HashSet::new();
    let mut links = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let kind = s("kind");
        if kind.as_deref() == Some("trace") {
            let Some(id) = s("trace_id") else {
                bail!(
                    "{}:{}: a trace line without trace_id",
                    path.display(),
                    n + 1
                )
            };
            if seen.insert(id.clone()) {
                traces.push((
                    id,
                    TraceInfo {
                        service: s("service").unwrap_or_default(),
                        flow: v.get("flow").and_then(|f| f.as_u64()),
                        circuit: s("circuit_id"),
                    },
                ));
            }
        } else if kind.as_deref() == Some("link")
            || (kind.is_none() && v.get("upstream_trace_id").is_some())
        {
            let (Some(up), Some(down)) = (s("upstream_trace_id"), s("downstream_trace_id")) else {
                bail!(
                    "{}:{}: a link line needs upstream_trace_id and downstream_trace_id",
                    path.display(),
                    n + 1
                )
            };
            let noise = v
                .get("noise")
                .and_then(|x| x.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            // Links' traces are scored even when the file has no trace lines for them.
            for (id, svc) in [
                (&up, s("upstream_service")),
                (&down, s("downstream_service")),
            ] {
                if seen.insert(id.clone()) {
                    traces.push((
                        id.clone(),
                        TraceInfo {
                            service: svc.unwrap_or_default(),
                            flow: v.get("flow").and_then(|f| f.as_u64()),
                            circuit: s("value"),
                        },
                    ));
                }
            }
            links.insert(
                (up, down),
                TrueLink {
                    up_service: s("upstream_service").unwrap_or_default(),
                    down_service: s("downstream_service").unwrap_or_default(),
                    flow: v.get("flow").and_then(|f| f.as_u64()),
                    noise,
                },
            );
        }
    }
    if traces.is_empty() {
        bail!("{}: no traces in the truth file", path.display());
    }
    Ok(Truth { traces, links })
}

/// `tempopb.Trace`, what `/api/traces/{id}` answers with `Accept: application/protobuf`.
#[derive(Clone, PartialEq, prost::Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

/// The sum of `correlation_bridge_spans_created_total` on /metrics, if it is there.
async fn bridge_count(http: &Http) -> Option<f64> {
    let a = http.get("/metrics", None).await.ok()?;
    if !a.status.is_success() {
        return None;
    }
    let text = String::from_utf8_lossy(&a.body);
    let mut found = None;
    for line in text.lines() {
        if line.starts_with("correlation_bridge_spans_created") {
            if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                *found.get_or_insert(0.0) += v;
            }
        }
    }
    found
}

/// Waits until the bridge count has not changed for `quiet`, at most `max`.
async fn settle(http: &Http, quiet: Duration, max: Duration) -> String {
    let start = Instant::now();
    let Some(mut last) = bridge_count(http).await else {
        tokio::time::sleep(quiet).await;
        return format!(
            "no bridge counter on {}/metrics; waited {:.1} s",
            http.base(),
            quiet.as_secs_f64()
        );
    };
    let mut changed = Instant::now();
    loop {
        if changed.elapsed() >= quiet {
            return format!(
                "bridge count {last} unchanged for {:.1} s (waited {:.1} s)",
                quiet.as_secs_f64(),
                start.elapsed().as_secs_f64()
            );
        }
        if start.elapsed() >= max {
            return format!(
                "bridge count still changing after {:.1} s (now {last}); scoring anyway",
                max.as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(250).min(quiet)).await;
        if let Some(n) = bridge_count(http).await {
            if n != last {
                last = n;
                changed = Instant::now();
            }
        }
    }
}

/// The downstream trace ids of the bridge spans in one trace; `None` if Seam has no such trace.
async fn bridges_of(http: &Http, id: &str) -> anyhow::Result<Option<Vec<String>>> {
    let a = http
        .get(
            &format!("/api/traces/{id}?stitch=false"),
            Some("application/protobuf"),
        )
        .await?;
    if a.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !a.status.is_success() {
        bail!(
            "GET /api/traces/{id}: {} {}",
            a.status,
            error_message(&a.body)
        );
    }
    let t = TempoTrace::decode(a.body)
        .with_context(|| format!("GET /api/traces/{id}: not a tempopb.Trace"))?;
    let mut out = Vec::new();
    for span in t
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
    {
        if is_synthetic(span) {
            // A bridge without a downstream id cannot be right; score it as a miss-link to "?".
            let up = hex(&span.trace_id);
            if up == id || span.trace_id.is_empty() {
                let down = find_str(&span.attributes, BRIDGE_DOWNSTREAM_ATTR);
                out.push(down.map_or_else(|| "?".into(), str::to_ascii_lowercase));
            }
        }
    }
    Ok(Some(out))
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Runs `seam demo score`.
pub async fn run(args: ScoreArgs) -> anyhow::Result<()> {
    if !(args.wait.is_finite() && args.wait >= 0.0 && args.max_wait.is_finite()) {
        bail!("--wait and --max-wait must be numbers of seconds");
    }
    let truth = read_truth(&args.truth)?;
    let http = Http::new(&args.api, "--api", args.tenant.as_deref())?;
    http.get("/ready", None)
        .await
        .with_context(|| format!("cannot reach the query API at {}", http.base()))?;
    let waited = settle(
        &http,
        Duration::from_secs_f64(args.wait),
        Duration::from_secs_f64(args.max_wait.max(args.wait)),
    )
    .await;
    println!("seam demo score: {waited}");

    // Fetch every trace, `concurrency` at a time.
    let started = Instant::now();
    let ids: Arc<Vec<String>> = Arc::new(truth.traces.iter().map(|(id, _)| id.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (http, ids, next) = (http.clone(), ids.clone(), next.clone());
        workers.spawn(async move {
            let mut found = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                found.push((i, bridges_of(&http, id).await?));
            }
            anyhow::Ok(found)
        });
    }
    let mut per_trace: Vec<Option<Vec<String>>> = vec![None; ids.len()];
    while let Some(r) = workers.join_next().await {
        for (i, b) in r.context("a fetch task panicked")?? {
            per_trace[i] = b;
        }
    }

    let info: HashMap<&str, &TraceInfo> = truth
        .traces
        .iter()
        .map(|(id, t)| (id.as_str(), t))
        .collect();
    let missing = per_trace.iter().filter(|b| b.is_none()).count();
    let mut bridges = 0usize;
    let mut predicted: HashSet<(String, String)> = HashSet::new();
    for (id, b) in ids.iter().zip(&per_trace) {
        for down in b.iter().flatten() {
            bridges += 1;
            predicted.insert((id.clone(), down.clone()));
        }
    }
    let tp = predicted
        .iter()
        .filter(|p| truth.links.contains_key(*p))
        .count();
    let fp = predicted.len() - tp;
    let fn_ = truth.links.len() - tp;
    let precision = ratio(tp, predicted.len());
    let recall = ratio(tp, truth.links.len());
    let flows: HashSet<u64> = truth.links.values().filter_map(|l| l.flow).collect();

    // Why: misses by link step and noise tag, wrong links by kind.
    let mut misses: BTreeMap<String, usize> = BTreeMap::new();
    for (pair, l) in &truth.links {
        if predicted.contains(pair) {
            continue;
        }
        let step = format!("{}->{}", l.up_service, l.down_service);
        let tags = if l.noise.is_empty() {
            "clean".to_string()
        } else {
            l.noise.join("+")
        };
        *misses.entry(format!("{step} [{tags}]")).or_default() += 1;
    }
    let mut wrong: BTreeMap<String, usize> = BTreeMap::new();
    for (up, down) in &predicted {
        if truth.links.contains_key(&(up.clone(), down.clone())) {
            continue;
        }
        let (u, d) = (info.get(up.as_str()), info.get(down.as_str()));
        let kind = match (u, d) {
            (Some(u), Some(d)) => {
                let step = format!("{}->{}", u.service, d.service);
                if u.flow.is_some() && u.flow == d.flow {
                    format!("{step}: same flow, not a true step")
                } else if u.circuit.is_some() && u.circuit == d.circuit {
                    let tags: Vec<String> = truth
                        .links
                        .values()
                        .filter(|l| l.flow == d.flow || l.flow == u.flow)
                        .flat_map(|l| l.noise.iter().cloned())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    format!(
                        "{step}: another flow on the same circuit [{}]",
                        tags.join("+")
                    )
                } else {
                    format!("{step}: a different circuit")
                }
            }
            _ => "a trace not in the truth file".to_string(),
        };
        *wrong.entry(kind).or_default() += 1;
    }

    println!(
        "  {} traces fetched in {:.1} s ({} not found), {} bridge spans, {} distinct links, {} flows",
        ids.len(),
        started.elapsed().as_secs_f64(),
        missing,
        bridges,
        predicted.len(),
        flows.len()
    );
    println!(
        "  true positives {tp}, false positives {fp}, false negatives {fn_}: precision {precision:.4}, recall {recall:.4}"
    );
    for (k, n) in &misses {
        println!("  missed {n}: {k}");
    }
    for (k, n) in &wrong {
        println!("  wrong {n}: {k}");
    }
    if args.json {
        println!(
            "{}",
            json!({
                "precision": precision,
                "recall": recall,
                "true_positives": tp,
                "false_positives": fp,
                "false_negatives": fn_,
                "bridges": bridges,
                "flows": flows.len(),
                "traces": ids.len(),
                "traces_not_found": missing,
                "duplicate_bridges": bridges - predicted.len(),
                "missed": misses,
                "wrong": wrong,
            })
        );
    }
    Ok(())
}
