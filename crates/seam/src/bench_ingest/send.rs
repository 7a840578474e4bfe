//! The HTTP side: `concurrency` workers, each on its own HTTP/1.1 keep-alive connection, posting
//! pool bodies back to back until the deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use prost::Message;
use seam_model::otlp::collector::logs::v1::ExportLogsServiceResponse;
use seam_model::otlp::collector::metrics::v1::ExportMetricsServiceResponse;
use seam_model::otlp::collector::trace::v1::ExportTraceServiceResponse;
use seam_receive::otlp_http::error_message as refusal_message;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::payload::Payload;
use super::{BenchSignal, Tally};

/// Where requests go.
struct Target {
    host: String,
    port: u16,
    authority: HeaderValue,
    path: String,
}

fn target(url: &str, signal: BenchSignal) -> anyhow::Result<Target> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("--otlp-http {url:?} is not a URL"))?;
    match uri.scheme_str() {
        None | Some("http") => {}
        Some(s) => bail!("--otlp-http: scheme {s:?} is not supported (plain http only)"),
    }
    let Some(authority) = uri.authority() else {
        bail!("--otlp-http {url:?} has no host")
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let base = uri.path().trim_end_matches('/');
    Ok(Target {
        host,
        port: authority.port_u16().unwrap_or(80),
        authority: HeaderValue::from_str(authority.as_str())?,
        path: format!("{base}/v1/{}", signal.as_str()),
    })
}

/// Settings shared by the workers.
pub struct SendConfig {
    pub url: String,
    pub signal: BenchSignal,
    pub concurrency: usize,
    pub duration: Duration,
    pub gzip: bool,
    pub tenant: Option<String>,
}

/// Runs the workers until `cfg.duration` has passed; returns their merged tally and the elapsed time.
pub async fn run(cfg: SendConfig, pool: Arc<Vec<Payload>>) -> anyhow::Result<(Tally, Duration)> {
    let target = Arc::new(target(&cfg.url, cfg.signal)?);
    let tenant = cfg
        .tenant
        .as_deref()
        .map(HeaderValue::from_str)
        .transpose()
        .context("--tenant")?;
    // Fail fast when nothing listens, instead of spinning on connection errors for the duration.
    TcpStream::connect((target.host.as_str(), target.port))
        .await
        .with_context(|| format!("connecting to {}:{}", target.host, target.port))?;
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let workers: Vec<JoinHandle<Tally>> = (0..cfg.concurrency)
        .map(|_| {
            let w = Worker {
                target: target.clone(),
                pool: pool.clone(),
                seq: seq.clone(),
                signal: cfg.signal,
                gzip: cfg.gzip,
                tenant: tenant.clone(),
                deadline,
            };
            tokio::spawn(w.run())
        })
        .collect();
    let mut total = Tally::new();
    for w in workers {
        total.merge(w.await.context("bench worker panicked")?);
    }
    Ok((total, start.elapsed().min(cfg.duration)))
}

struct Worker {
    target: Arc<Target>,
    pool: Arc<Vec<Payload>>,
    seq: Arc<AtomicU64>,
    signal: BenchSignal,
    gzip: bool,
    tenant: Option<HeaderValue>,
    deadline: Instant,
}

struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A completed exchange.
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Bytes,
}

impl Worker {
    async fn connect(&self) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect((self.target.host.as_str(), self.target.port)).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, task })
    }

    async fn exchange(&self, conn: &mut Conn, body: Bytes) -> anyhow::Result<Answer> {
        let mut req = Request::post(self.target.path.as_str())
            .header(HOST, self.target.authority.clone())
            .header(CONTENT_TYPE, "application/x-protobuf");
        if self.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        if let Some(t) = &self.tenant {
            req = req.header("x-scope-orgid", t.clone());
        }
        let req = req.body(Full::new(body))?;
        conn.sender.ready().await?;
        let resp = conn.sender.send_request(req).await?;
        let status = resp.status();
        let retry_after = resp.headers().get(RETRY_AFTER).map(|v| {
            // Seconds, or an HTTP date we do not parse: then one second.
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(1)
        });
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Records rejected by `partial_success` in a 2xx response body.
    fn rejected(&self, body: &[u8]) -> u64 {
        let n = match self.signal {
            BenchSignal::Traces => ExportTraceServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_spans),
            BenchSignal::Logs => ExportLogsServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_log_records),
            BenchSignal::Metrics => ExportMetricsServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_data_points),
        };
        n.max(0) as u64
    }

    async fn run(self) -> Tally {
        let mut t = Tally::new();
        let mut conn: Option<Conn> = None;
        let pool_len = self.pool.len() as u64;
        while Instant::now() < self.deadline {
            if conn.as_ref().is_some_and(|c| c.sender.is_closed()) {
                conn = None; // the server closed an idle connection: reconnect, not an error
            }
            let c = match &mut conn {
                Some(c) => c,
                None => match timeout_at(self.deadline, self.connect()).await {
                    Err(_) => break,
                    Ok(Ok(c)) => conn.insert(c),
                    Ok(Err(e)) => {
                        t.error(format!("connect: {e:#}"));
                        sleep_until(
                            (Instant::now() + Duration::from_millis(50)).min(self.deadline),
                        )
                        .await;
                        continue;
                    }
                },
            };
            let n = self.seq.fetch_add(1, Ordering::Relaxed);
            let payload = &self.pool[(n % pool_len) as usize];
            let body = payload.body_for(n, n / pool_len);
            let len = body.len() as u64;
            let sent = Instant::now();
            let answer = match timeout_at(self.deadline, self.exchange(c, body)).await {
                Err(_) => {
                    t.cut += 1;
                    break;
                }
                Ok(Err(e)) => {
                    t.error(format!("request: {e:#}"));
                    conn = None;
                    continue;
                }
                Ok(Ok(a)) => a,
            };
            let latency = sent.elapsed();
            t.requests += 1;
            if answer.status.is_success() {
                let rejected = self.rejected(&answer.body).min(payload.records);
                t.accept(latency, payload.records - rejected, rejected, len);
            } else {
                let code = answer.status.as_u16();
                t.refuse(code, || refusal_message(&answer.body));
                if let (
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE,
                    Some(secs),
                ) = (answer.status, answer.retry_after)
                {
                    let pause = Duration::from_secs(secs).min(Duration::from_secs(1));
                    sleep_until((Instant::now() + pause).min(self.deadline)).await;
                }
            }
        }
        t
    }
}
