//! Live tails' fan-out: the ingest sink hands every acknowledged log batch to the tails of its
//! tenant. Each tail has its own bounded queue; when a tail falls behind, the sink never waits
//! for it: the batch is dropped for that tail and the entries of its matching streams are
//! remembered (up to a bound), so the tail can report them as Loki's `dropped_entries`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use seam_model::{Label, Labels, LogBatch, LogStream, Tenant};
use seam_store::LabelMatcher;
use tokio::sync::mpsc;

/// Batches a tail may have queued before newer ones are dropped for it.
const QUEUE_BATCHES: usize = 256;

/// Dropped entries remembered per tail between two frames, as Loki's querier keeps at most 1000.
pub const MAX_DROPPED_ENTRIES: usize = 1000;

/// An entry a tail never saw because it was too slow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedEntry {
    /// The entry's stream labels.
    pub labels: Labels,
    /// Its time in nanoseconds.
    pub timestamp_ns: i64,
}

struct Subscriber {
    id: u64,
    matchers: Vec<LabelMatcher>,
    tx: mpsc::Sender<Arc<LogBatch>>,
    dropped: Mutex<Vec<DroppedEntry>>,
}

impl Subscriber {
    /// Whether the selector matches a stream's labels (a missing label matches as empty).
    fn selects(&self, labels: &[Label]) -> bool {
        self.matchers.iter().all(|m| {
            let value = labels.iter().find(|l| l.name == m.name);
            m.matches(value.map_or("", |l| l.value.as_str()))
        })
    }

    fn record_dropped(&self, batch: &LogBatch) {
        let mut dropped = self.dropped.lock();
        for stream in &batch.streams {
            if dropped.len() >= MAX_DROPPED_ENTRIES {
                return;
            }
            if !self.selects(&stream.labels) {
                continue;
            }
            let labels = stream.label_set();
            let room = MAX_DROPPED_ENTRIES - dropped.len();
            dropped.extend(stream.entries.iter().take(room).map(|e| DroppedEntry {
                labels: labels.clone(),
                timestamp_ns: e.timestamp_ns,
            }));
        }
    }
}

/// The live tails of every tenant.
#[derive(Default)]
pub struct TailHub {
    // Counted apart from the map so the ingest path needs no lock while nobody tails.
    active: AtomicUsize,
    next_id: AtomicU64,
    tenants: Mutex<HashMap<Tenant, Vec<Arc<Subscriber>>>>,
}

/// Why a tail could not start: the tenant already has `limit` tails open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyTails {
    /// Tails the tenant would have with this one.
    pub count: usize,
    /// The tenant's `max_concurrent_tail_requests`.
    pub limit: usize,
}

impl std::fmt::Display for TooManyTails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Loki's wording, so clients that match on it keep working.
        write!(
            f,
            "max concurrent tail requests limit exceeded, count > limit ({} > {})",
            self.count, self.limit
        )
    }
}

impl TailHub {
    /// A hub with no tails.
    pub fn new() -> TailHub {
        TailHub::default()
    }

    /// Registers a tail of `tenant` for streams selected by `matchers`, unless the tenant
    /// already holds `limit` tails.
    pub fn subscribe(
        self: &Arc<Self>,
        tenant: &Tenant,
        matchers: Vec<LabelMatcher>,
        limit: usize,
    ) -> Result<TailSubscription, TooManyTails> {
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let sub = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            matchers,
            tx,
            dropped: Mutex::new(Vec::new()),
        });
        let mut tenants = self.tenants.lock();
        let subs = tenants.entry(tenant.clone()).or_default();
        if subs.len() >= limit {
            let count = subs.len() + 1;
            if subs.is_empty() {
                tenants.remove(tenant);
            }
            return Err(TooManyTails { count, limit });
        }
        subs.push(sub.clone());
        self.active.fetch_add(1, Ordering::Relaxed);
        Ok(TailSubscription {
            hub: self.clone(),
            tenant: tenant.clone(),
            sub,
            rx,
        })
    }

    /// Whether any tail of `tenant` is open.
    pub fn wants(&self, tenant: &Tenant) -> bool {
        self.active.load(Ordering::Relaxed) > 0 && self.tenants.lock().contains_key(tenant)
    }

    /// The tails of `tenant`; none, without taking the lock, while nobody tails.
    fn subscribers(&self, tenant: &Tenant) -> Option<Vec<Arc<Subscriber>>> {
        if self.active.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.tenants.lock().get(tenant).cloned()
    }

    /// A copy of the streams of `batch` that some tail of `tenant` selects, for [`publish`]
    /// once the batch is acknowledged; `None` (and nothing copied) when no tail selects any.
    ///
    /// [`publish`]: TailHub::publish
    pub fn selected(&self, tenant: &Tenant, batch: &LogBatch) -> Option<Arc<LogBatch>> {
        let subs = self.subscribers(tenant)?;
        let streams: Vec<LogStream> = batch
            .streams
            .iter()
            .filter(|s| subs.iter().any(|sub| sub.selects(&s.labels)))
            .cloned()
            .collect();
        (!streams.is_empty()).then(|| Arc::new(LogBatch { streams }))
    }

    /// Tails `tenant` holds open.
    pub fn count(&self, tenant: &Tenant) -> usize {
        self.tenants.lock().get(tenant).map_or(0, Vec::len)
    }

    /// Hands an acknowledged batch to every tail of `tenant`, without waiting for any.
    pub fn publish(&self, tenant: &Tenant, batch: Arc<LogBatch>) {
        let Some(subs) = self.subscribers(tenant) else {
            return;
        };
        for sub in subs {
            if !batch.streams.iter().any(|s| sub.selects(&s.labels)) {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(b)) = sub.tx.try_send(batch.clone()) {
                sub.record_dropped(&b);
            }
        }
    }

    fn unsubscribe(&self, tenant: &Tenant, id: u64) {
        let mut tenants = self.tenants.lock();
        if let Some(subs) = tenants.get_mut(tenant) {
            let before = subs.len();
            subs.retain(|s| s.id != id);
            if subs.len() < before {
                self.active.fetch_sub(1, Ordering::Relaxed);
            }
            if subs.is_empty() {
                tenants.remove(tenant);
            }
        }
    }
}

/// One open tail: its queue of batches. Dropping it closes the tail.
pub struct TailSubscription {
    hub: Arc<TailHub>,
    tenant: Tenant,
    sub: Arc<Subscriber>,
    rx: mpsc::Receiver<Arc<LogBatch>>,
}

impl TailSubscription {
    /// The next acknowledged batch with at least one selected stream. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Arc<LogBatch>> {
        self.rx.recv().await
    }

    /// The entries dropped since the last call.
    pub fn take_dropped(&self) -> Vec<DroppedEntry> {
        std::mem::take(&mut *self.sub.dropped.lock())
    }

    /// Whether a stream with these labels is selected by this tail's stream selector.
    pub fn selects(&self, labels: &[Label]) -> bool {
        self.sub.selects(labels)
    }
}

impl Drop for TailSubscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.tenant, self.sub.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seam_model::LogEntry;
    use seam_store::MatchOp;

    fn batch(app: &str, ts: &[i64]) -> Arc<LogBatch> {
        Arc::new(LogBatch {
            streams: vec![LogStream {
                labels: vec![Label::new("app", app)],
                entries: ts
                    .iter()
                    .map(|&t| LogEntry {
                        timestamp_ns: t,
                        line: format!("line {t}"),
                        ..Default::default()
                    })
                    .collect(),
            }],
        })
    }

    fn app(v: &str) -> Vec<LabelMatcher> {
        vec![LabelMatcher::new("app", MatchOp::Equal, v).unwrap()]
    }

    #[tokio::test]
    async fn tails_see_their_tenant_and_streams_only() {
        let hub = Arc::new(TailHub::new());
        let a = Tenant::new("a").unwrap();
        let b = Tenant::new("b").unwrap();
        let mut tail = hub.subscribe(&a, app("web"), 10).unwrap();
        assert!(hub.wants(&a));
        assert!(!hub.wants(&b));
        hub.publish(&b, batch("web", &[1]));
        hub.publish(&a, batch("db", &[2]));
        hub.publish(&a, batch("web", &[3]));
        let got = tail.recv().await.unwrap();
        assert_eq!(got.streams[0].entries[0].timestamp_ns, 3);
        assert!(tail.rx.try_recv().is_err());
        drop(tail);
        assert!(!hub.wants(&a));
        assert_eq!(hub.active.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn only_selected_streams_are_copied() {
        let hub = Arc::new(TailHub::new());
        let a = Tenant::new("a").unwrap();
        let mut both = (*batch("web", &[1])).clone();
        both.streams.extend(batch("db", &[2]).streams.clone());
        assert!(hub.selected(&a, &both).is_none());
        let _tail = hub.subscribe(&a, app("web"), 10).unwrap();
        let copy = hub.selected(&a, &both).unwrap();
        assert_eq!(copy.streams.len(), 1);
        assert_eq!(copy.streams[0].labels, vec![Label::new("app", "web")]);
        assert!(hub.selected(&a, &batch("db", &[3])).is_none());
        assert!(hub.selected(&Tenant::new("b").unwrap(), &both).is_none());
    }

    #[test]
    fn the_limit_counts_open_tails_per_tenant() {
        let hub = Arc::new(TailHub::new());
        let a = Tenant::new("a").unwrap();
        let first = hub.subscribe(&a, app("x"), 2).unwrap();
        let _second = hub.subscribe(&a, app("x"), 2).unwrap();
        let err = hub.subscribe(&a, app("x"), 2).err().unwrap();
        assert_eq!(err, TooManyTails { count: 3, limit: 2 });
        assert_eq!(
            err.to_string(),
            "max concurrent tail requests limit exceeded, count > limit (3 > 2)"
        );
        assert!(hub
            .subscribe(&Tenant::new("b").unwrap(), app("x"), 2)
            .is_ok());
        drop(first);
        assert_eq!(hub.count(&a), 1);
        assert!(hub.subscribe(&a, app("x"), 2).is_ok());
    }

    #[test]
    fn a_full_queue_drops_and_remembers_entries() {
        let hub = Arc::new(TailHub::new());
        let a = Tenant::new("a").unwrap();
        let tail = hub.subscribe(&a, app("web"), 1).unwrap();
        for i in 0..QUEUE_BATCHES as i64 {
            hub.publish(&a, batch("web", &[i]));
        }
        assert!(tail.take_dropped().is_empty());
        hub.publish(&a, batch("web", &[1000, 1001]));
        let labels = Labels::from_pairs([("app", "web")]);
        assert_eq!(
            tail.take_dropped(),
            vec![
                DroppedEntry {
                    labels: labels.clone(),
                    timestamp_ns: 1000
                },
                DroppedEntry {
                    labels,
                    timestamp_ns: 1001
                },
            ]
        );
        assert!(tail.take_dropped().is_empty());
    }
}
