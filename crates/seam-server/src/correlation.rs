//! Runs the correlation engine on ingest: every acknowledged span batch is observed, and the bridge
//! spans it decides are written through the same WAL and store as any span. A ticker decides the
//! links held back to settle and evicts state older than the window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use seam_correlate::{bridge_batch, CorrelationConfig, Correlator, Link};
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::{Batch, Tenant};
use seam_store::Store;

use crate::params::now_ns;

/// Label of `correlation_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// What the matcher decided.
    pub result: String,
}

/// The correlation metrics, registered without Seam's prefix under the names the docs promise.
#[derive(Clone)]
struct CorrelationMetrics {
    events: Family<ResultLabel, Counter>,
    bridges: Counter,
    active_keys: Gauge,
    latency: Histogram,
}

/// The engine plus what feeds it and what it writes.
pub struct Correlation {
    engine: Mutex<Engine>,
    config: CorrelationConfig,
    metrics: CorrelationMetrics,
}

struct Engine {
    correlator: Correlator,
    /// Counts already exported, so each observation adds only its difference.
    exported: BTreeMap<&'static str, u64>,
}

impl Correlation {
    /// An engine with `config`, registering its metrics in `registry`.
    pub fn new(config: CorrelationConfig, registry: &mut Registry) -> Correlation {
        let metrics = CorrelationMetrics {
            events: Family::default(),
            bridges: Counter::default(),
            active_keys: Gauge::default(),
            latency: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
        };
        registry.register(
            "correlation_events",
            "Correlation decisions by result",
            metrics.events.clone(),
        );
        registry.register(
            "correlation_bridge_spans_created",
            "Bridge spans written",
            metrics.bridges.clone(),
        );
        registry.register(
            "correlation_active_keys",
            "Key values held in the correlation window",
            metrics.active_keys.clone(),
        );
        registry.register(
            "correlation_match_latency_seconds",
            "From the arrival of the segment that completed a match to its bridge being written",
            metrics.latency.clone(),
        );
        Correlation {
            engine: Mutex::new(Engine {
                correlator: Correlator::new(config.clone()),
                exported: BTreeMap::new(),
            }),
            config,
            metrics,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// Observes a tenant's spans; returns the links decided at once.
    pub fn observe(&self, tenant: &Tenant, rs: &[ResourceSpans]) -> Vec<Link> {
        let mut e = self.engine.lock();
        let links = e.correlator.observe_spans(tenant.as_str(), rs, now_ns());
        self.export_stats(&mut e);
        links
    }

    /// Decides held-back links and evicts expired state.
    fn tick(&self) -> Vec<Link> {
        let mut e = self.engine.lock();
        let links = e.correlator.tick(now_ns());
        self.export_stats(&mut e);
        links
    }

    fn export_stats(&self, e: &mut Engine) {
        for (name, total) in e.correlator.stats().events() {
            let before = e.exported.insert(name, total).unwrap_or(0);
            if total > before {
                self.metrics
                    .events
                    .get_or_create(&ResultLabel {
                        result: name.to_string(),
                    })
                    .inc_by(total - before);
            }
        }
        self.metrics
            .active_keys
            .set(e.correlator.active_keys() as i64);
    }

    /// Writes the bridge spans of `links` durably, per tenant.
    pub async fn write(&self, store: &Store, links: Vec<Link>) {
        if links.is_empty() {
            return;
        }
        let mut by_tenant: BTreeMap<String, Vec<Link>> = BTreeMap::new();
        for l in links {
            by_tenant.entry(l.tenant.clone()).or_default().push(l);
        }
        for (tenant, links) in by_tenant {
            let Ok(t) = Tenant::new(&tenant) else {
                continue;
            };
            match store.append(&t, Batch::Traces(bridge_batch(&links))).await {
                Ok(()) => {
                    let now = now_ns();
                    self.metrics.bridges.inc_by(links.len() as u64);
                    for l in &links {
                        self.metrics
                            .latency
                            .observe((now - l.arrival_ns).max(0) as f64 / 1e9);
                    }
                }
                // The link stays decided in memory; the bridge is lost only if the process dies
                // before the segments are seen again.
                Err(e) => {
                    tracing::warn!(tenant, error = %e, bridges = links.len(), "writing bridge spans failed")
                }
            }
        }
    }

    /// Runs the ticker until the store shuts down.
    pub fn spawn_ticker(self: &Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let links = me.tick();
                me.write(&store, links).await;
            }
        })
    }
}
