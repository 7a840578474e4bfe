//! The timed part: `concurrency` connections post the pre-built bodies back to back to
//! `/loki/api/v1/push`, retrying refusals (429/503) so that every line is stored once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use super::{Body, LogsArgs};
use crate::bench_latency::Latencies;

/// How long to wait before retrying a refused push when the server names no time.
const DEFAULT_RETRY: Duration = Duration::from_millis(100);
/// Longest wait between retries, whatever `Retry-After` says.
const MAX_RETRY: Duration = Duration::from_secs(1);

/// What the workers counted.
pub struct Tally {
    /// Wall time from the first send to the last answer.
    pub elapsed: Duration,
    /// Requests acknowledged.
    pub requests: u64,
    /// Lines acknowledged.
    pub lines: u64,
    /// Raw line bytes acknowledged.
    pub raw_bytes: u64,
    /// Body bytes acknowledged.
    pub body_bytes: u64,
    /// Sends refused with 429/503 and retried.
    pub retries: u64,
    /// Requests that failed for good (other status, or a connection error).
    pub failed: u64,
    /// The first failure, for the report.
    pub first_failure: Option<String>,
    /// Acknowledgement latency of the accepted sends.
    pub latency: Latencies,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            elapsed: Duration::ZERO,
            requests: 0,
            lines: 0,
            raw_bytes: 0,
            body_bytes: 0,
            retries: 0,
            failed: 0,
            first_failure: None,
            latency: Latencies::default(),
        }
    }

    fn merge(&mut self, o: Tally) {
        self.requests += o.requests;
        self.lines += o.lines;
        self.raw_bytes += o.raw_bytes;
        self.body_bytes += o.body_bytes;
        self.retries += o.retries;
        self.failed += o.failed;
        if self.first_failure.is_none() {
            self.first_failure = o.first_failure;
        }
        self.latency.merge(&o.latency);
    }

    fn fail(&mut self, e: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(e);
    }
}

/// Posts every body once (retrying refusals) over `args.concurrency` connections.
pub async fn run(args: &LogsArgs, bodies: Arc<Vec<Body>>) -> anyhow::Result<Tally> {
    let url = format!("{}/loki/api/v1/push", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    let tenant = args
        .tenant
        .as_deref()
        .map(HeaderValue::from_str)
        .transpose()
        .context("--tenant")?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, url, tenant) = (client.clone(), url.clone(), tenant.clone());
            let (bodies, next) = (bodies.clone(), next.clone());
            tokio::spawn(async move {
                let mut t = Tally::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return t;
                    };
                    send(&client, &url, tenant.as_ref(), body, &mut t).await;
                }
            })
        })
        .collect();
    let mut total = Tally::new();
    for w in workers {
        total.merge(w.await.context("push worker panicked")?);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    tenant: Option<&HeaderValue>,
    body: &Body,
    t: &mut Tally,
) {
    loop {
        let mut req = client
            .post(url)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(body.data.clone());
        if let Some(v) = tenant {
            req = req.header("X-Scope-OrgID", v.clone());
        }
        let sent = Instant::now();
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return t.fail(format!("sending: {e}")),
        };
        let status = resp.status();
        if status.is_success() {
            // Drain the (empty) body so the connection is reused.
            let _ = resp.bytes().await;
            t.latency.record(sent.elapsed());
            t.requests += 1;
            t.lines += body.lines;
            t.raw_bytes += body.raw_bytes;
            t.body_bytes += body.data.len() as u64;
            return;
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            let wait = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_RETRY)
                .min(MAX_RETRY);
            let _ = resp.bytes().await;
            t.retries += 1;
            tokio::time::sleep(wait).await;
            continue;
        }
        let text = resp.text().await.unwrap_or_default();
        return t.fail(format!("{status}: {}", text.trim()));
    }
}
