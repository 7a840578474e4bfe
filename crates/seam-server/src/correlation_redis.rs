//! Replicas: several `seam serve` processes that share one Redis match each other's segments.
//!
//! Each process publishes a summary of every local segment with keys whose matching inputs
//! changed ([`seam_correlate::RemoteSegment`]: trace id, services, time range, up to
//! [`MAX_SPANS`] compact spans, keys) under each of its key values, and in the same pipeline reads
//! back the summaries of the other processes' segments under those values; it feeds them to its
//! own engine with [`seam_correlate::Correlator::observe_remote`]. Because each process writes
//! before it reads, on one connection, of two processes that see the two sides of a flow at the
//! same time at least one reads the other's summary: that one decides the link and writes the
//! bridge span into its own store (in the upstream trace id, which may be held by the other
//! process). If both decide, the bridge span id is the same (see `seam_correlate::bridge_id`).
//!
//! Layout: one sorted set per (tenant, key, value), `seam:corr:{tenant}:{key}:{value}`, score =
//! the segment's end (ms since the epoch), member = the compact JSON summary. Every publish
//! refreshes the set's TTL (2 x window), drops members that ended more than 2 x window ago, and
//! keeps at most [`MAX_MEMBERS`] newest, so a hot value cannot grow without bound.
//!
//! This all runs off the request path: [`RedisReplica::offer`] hands the summary to a bounded
//! channel (dropped and counted when full) and a background task talks to Redis. When Redis is
//! unreachable the task logs one warning per outage, counts `correlation_redis_errors_total`,
//! retries at most every [`RETRY`], and matching goes on locally; ingest never waits for Redis.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use seam_correlate::segment::Protocol;
use seam_correlate::{CompactSpan, KeyMatch, Kind, RemoteSegment, SpanDetail};
use seam_model::{SpanId, TraceId};
use seam_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::correlation::Correlation;

/// Spans kept in a published summary (the root first): enough to choose a bridge parent.
pub const MAX_SPANS: usize = 32;
/// Members kept per key value.
pub const MAX_MEMBERS: isize = 512;
/// Summaries waiting to be published; beyond it they are dropped and counted.
const QUEUE: usize = 4096;
/// How often a lost connection is tried again.
const RETRY: Duration = Duration::from_secs(2);
/// Timeout for connecting and for each reply.
const TIMEOUT: Duration = Duration::from_secs(1);

/// One local segment to publish.
pub struct Published {
    tenant: Arc<str>,
    segment: RemoteSegment,
}

/// The Redis side of the correlation engine: a queue and the counters; the task runs from
/// [`RedisReplica::spawn`].
pub struct RedisReplica {
    url: String,
    window_ms: i64,
    /// This process's id, so it skips its own summaries when it reads them back.
    origin: String,
    tx: mpsc::Sender<Published>,
    rx: Mutex<Option<mpsc::Receiver<Published>>>,
    errors: Counter,
    dropped: Counter,
    published: Counter,
    remote: Counter,
}

impl RedisReplica {
    /// A replica link to `url`, registering its metrics.
    pub fn new(url: &str, window: Duration, registry: &mut Registry) -> RedisReplica {
        let (tx, rx) = mpsc::channel(QUEUE);
        let me = RedisReplica {
            url: url.to_string(),
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 4),
            origin: format!(
                "{:x}-{:x}",
                std::process::id(),
                crate::params::now_ns() as u64 & 0xffff_ffff_ffff
            ),
            tx,
            rx: Mutex::new(Some(rx)),
            errors: Counter::default(),
            dropped: Counter::default(),
            published: Counter::default(),
            remote: Counter::default(),
        };
        registry.register(
            "correlation_redis_errors",
            "Failed Redis connections and commands of the shared correlation index",
            me.errors.clone(),
        );
        registry.register(
            "correlation_redis_dropped",
            "Segment summaries not published to Redis (queue full or Redis unreachable)",
            me.dropped.clone(),
        );
        registry.register(
            "correlation_redis_published",
            "Segment summaries published to Redis",
            me.published.clone(),
        );
        registry.register(
            "correlation_redis_remote_segments",
            "Summaries of other processes' segments read from Redis and matched",
            me.remote.clone(),
        );
        me
    }

    /// Queues a local segment's summary; never waits.
    pub fn offer(&self, tenant: Arc<str>, segment: RemoteSegment) {
        if self.tx.try_send(Published { tenant, segment }).is_err() {
            self.dropped.inc();
        }
    }

    /// Starts the task that publishes, reads back and feeds `correlation` (writing its bridges to
    /// `store`). Call once; later calls do nothing.
    pub fn spawn(self: &Arc<Self>, correlation: Arc<Correlation>, store: Store) {
        let Some(rx) = self.rx.lock().take() else {
            return;
        };
        let me = self.clone();
        tokio::spawn(async move { me.run(rx, correlation, store).await });
    }

    async fn connect(&self) -> redis::RedisResult<ConnectionManager> {
        let client = redis::Client::open(self.url.as_str())?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        tokio::time::timeout(TIMEOUT * 3, ConnectionManager::new_with_config(client, cfg))
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "connecting timed out",
                )))
            })
    }

    async fn run(
        &self,
        mut rx: mpsc::Receiver<Published>,
        correlation: Arc<Correlation>,
        store: Store,
    ) {
        let mut conn: Option<ConnectionManager> = None;
        let mut warned = false;
        let mut next_try = Instant::now();
        let mut jobs = Vec::new();
        loop {
            if conn.is_none() && Instant::now() >= next_try {
                match self.connect().await {
                    Ok(c) => {
                        if warned {
                            tracing::info!(url = %self.url, "correlation Redis reachable again");
                        }
                        warned = false;
                        conn = Some(c);
                    }
                    Err(e) => {
                        self.failed(&mut warned, &e);
                        next_try = Instant::now() + RETRY;
                    }
                }
            }
            jobs.clear();
            if rx.recv_many(&mut jobs, 256).await == 0 {
                return;
            }
            let Some(c) = conn.as_mut() else {
                self.dropped.inc_by(jobs.len() as u64);
                continue;
            };
            let mut links = Vec::new();
            let n = jobs.len();
            for (i, job) in jobs.iter().enumerate() {
                match self.exchange(c, job).await {
                    Ok(found) => {
                        if warned {
                            tracing::info!(url = %self.url, "correlation Redis reachable again");
                            warned = false;
                        }
                        self.published.inc();
                        for seg in found {
                            self.remote.inc();
                            links.extend(correlation.observe_remote(&job.tenant, &seg));
                        }
                    }
                    Err(e) => {
                        self.failed(&mut warned, &e);
                        if !e.is_io_error() && !e.is_timeout() && !e.is_connection_dropped() {
                            continue;
                        }
                        // The manager reconnects by itself; skip the rest of this round.
                        self.dropped.inc_by((n - i) as u64);
                        break;
                    }
                }
            }
            jobs.clear();
            correlation.write(&store, links).await;
        }
    }

    fn failed(&self, warned: &mut bool, e: &redis::RedisError) {
        self.errors.inc();
        if !*warned {
            *warned = true;
            tracing::warn!(
                url = %self.url,
                error = %e,
                "correlation Redis unavailable: matching only this process's segments until it is back"
            );
        }
    }

    /// Publishes one summary under each of its key values and returns the other processes'
    /// summaries found under them within the window.
    async fn exchange(
        &self,
        c: &mut ConnectionManager,
        job: &Published,
    ) -> redis::RedisResult<Vec<RemoteSegment>> {
        let seg = &job.segment;
        let member = encode(&self.origin, seg);
        let end_ms = seg.end_ns.div_euclid(1_000_000);
        let start_ms = seg.start_ns.div_euclid(1_000_000);
        let now_ms = crate::params::now_ns().div_euclid(1_000_000);
        let ttl_ms = self.window_ms.saturating_mul(2).max(1000);
        let mut pipe = redis::pipe();
        for k in &seg.keys {
            let z = format!("seam:corr:{}:{}:{}", job.tenant, k.key, k.value);
            pipe.cmd("ZADD").arg(&z).arg(end_ms).arg(&member).ignore();
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&z)
                .arg("-inf")
                .arg(format!("({}", now_ms.saturating_sub(ttl_ms)))
                .ignore();
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(&z)
                .arg(0)
                .arg(-(MAX_MEMBERS + 1))
                .ignore();
            pipe.cmd("PEXPIRE").arg(&z).arg(ttl_ms).ignore();
            pipe.cmd("ZRANGEBYSCORE")
                .arg(&z)
                .arg(start_ms.saturating_sub(self.window_ms))
                .arg("+inf");
        }
        let found: Vec<Vec<String>> = pipe.query_async(c).await?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for m in found.into_iter().flatten() {
            if !seen.insert(m.clone()) {
                continue;
            }
            match decode(&m) {
                Some((origin, s)) if origin != self.origin && s.trace_id != seg.trace_id => {
                    out.push(s)
                }
                Some(_) => {}
                None => tracing::debug!(member = %m, "unreadable correlation summary in Redis"),
            }
        }
        Ok(out)
    }
}

/// The JSON form of a summary (short names: one is stored per key value and version).
#[derive(Serialize, Deserialize)]
struct Wire {
    o: String,
    t: String,
    s: i64,
    e: i64,
    sv: Vec<String>,
    sp: Vec<WireSpan>,
    /// key, value, exact.
    k: Vec<(String, String, bool)>,
}

/// One span of a summary.
#[derive(Serialize, Deserialize)]
struct WireSpan {
    /// Span id, hex.
    i: String,
    /// Parent span id, hex ("" for none).
    p: String,
    /// Service index.
    v: u16,
    /// OTLP span kind.
    k: u8,
    s: i64,
    e: i64,
    /// Call detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<WireDetail>,
}

/// A span's call detail: protocol (as `u8`), route, path, peer.
type WireDetail = (u8, Option<String>, Option<String>, Option<String>);

fn encode(origin: &str, seg: &RemoteSegment) -> String {
    let text = |x: &Option<Box<str>>| x.as_deref().map(str::to_string);
    let w = Wire {
        o: origin.to_string(),
        t: seg.trace_id.to_hex(),
        s: seg.start_ns,
        e: seg.end_ns,
        sv: seg.services.iter().map(|s| s.to_string()).collect(),
        sp: seg
            .spans
            .iter()
            .map(|s| WireSpan {
                i: s.span_id.to_hex(),
                p: s.parent_span_id.map(|p| p.to_hex()).unwrap_or_default(),
                v: s.service,
                k: s.kind as u8,
                s: s.start_ns,
                e: s.end_ns,
                d: s.detail.as_ref().map(|d| {
                    (
                        d.protocol as u8,
                        text(&d.route),
                        text(&d.path),
                        text(&d.peer),
                    )
                }),
            })
            .collect(),
        k: seg
            .keys
            .iter()
            .map(|k| (k.key.to_string(), k.value.to_string(), k.exact))
            .collect(),
    };
    serde_json::to_string(&w).unwrap_or_default()
}

fn decode(text: &str) -> Option<(String, RemoteSegment)> {
    let w: Wire = serde_json::from_str(text).ok()?;
    let trace_id = TraceId::from_slice(&hex::decode(&w.t).ok()?).ok()?;
    let boxed = |x: Option<String>| x.map(String::into_boxed_str);
    let mut spans = Vec::with_capacity(w.sp.len());
    for sp in w.sp {
        spans.push(CompactSpan {
            span_id: SpanId::from_slice(&hex::decode(&sp.i).ok()?).ok()?,
            parent_span_id: if sp.p.is_empty() {
                None
            } else {
                Some(SpanId::from_slice(&hex::decode(&sp.p).ok()?).ok()?)
            },
            service: sp.v,
            kind: Kind::from_otlp(i32::from(sp.k)),
            start_ns: sp.s,
            end_ns: sp.e,
            detail: sp.d.map(|(protocol, route, path, peer)| {
                Box::new(SpanDetail {
                    protocol: Protocol::from_u8(protocol),
                    route: boxed(route),
                    path: boxed(path),
                    peer: boxed(peer),
                })
            }),
        });
    }
    Some((
        w.o,
        RemoteSegment {
            trace_id,
            services: w.sv.into_iter().map(Into::into).collect(),
            start_ns: w.s,
            end_ns: w.e,
            spans,
            keys: w
                .k
                .into_iter()
                .map(|(key, value, exact)| KeyMatch {
                    key: key.into(),
                    value: value.into(),
                    exact,
                })
                .collect(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_round_trip_through_json() {
        let seg = RemoteSegment {
            trace_id: TraceId([7; 16]),
            services: vec!["beorn".into()],
            start_ns: 10,
            end_ns: 20,
            spans: vec![
                CompactSpan {
                    span_id: SpanId([1; 8]),
                    parent_span_id: None,
                    service: 0,
                    kind: Kind::Server,
                    start_ns: 10,
                    end_ns: 20,
                    detail: None,
                },
                CompactSpan {
                    span_id: SpanId([2; 8]),
                    parent_span_id: Some(SpanId([1; 8])),
                    service: 0,
                    kind: Kind::Client,
                    start_ns: 12,
                    end_ns: 18,
                    detail: Some(Box::new(SpanDetail {
                        protocol: Protocol::Http,
                        route: None,
                        path: Some("/api/v3/topologies/c 1".into()),
                        peer: Some("arda".into()),
                    })),
                },
            ],
            keys: vec![KeyMatch {
                key: "circuit_id".into(),
                value: "c 1".into(),
                exact: true,
            }],
        };
        let (origin, back) = decode(&encode("me", &seg)).unwrap();
        assert_eq!(origin, "me");
        assert_eq!(back, seg);
        assert!(decode("{}").is_none());
    }
}
