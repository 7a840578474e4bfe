//! The receivers' sink: admission against the store's memory budget, and durable appends.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use seam_model::{Batch, Signal, Tenant};
use seam_receive::{Admission, Protocol, Refusal, Sink};
use seam_store::AppendError;

use crate::{AppState, RETRY_AFTER};

/// Delivers decoded batches to the store.
pub struct StoreSink {
    state: Arc<AppState>,
}

impl StoreSink {
    /// A sink over the server's state.
    pub fn new(state: Arc<AppState>) -> StoreSink {
        StoreSink { state }
    }
}

fn not_ready() -> Refusal {
    Refusal::Unavailable("Seam is starting (replaying the WAL); retry shortly".into())
}

impl Sink for StoreSink {
    fn admit(&self, bytes: usize) -> Result<Admission, Refusal> {
        let store = self.state.store().ok_or_else(not_ready)?;
        let budget = store.budget();
        budget.try_reserve(bytes).map(Admission::new).ok_or_else(|| Refusal::Overloaded {
            retry_after_secs: RETRY_AFTER.as_secs(),
            message: format!(
                "memory budget exhausted: {} of {} bytes in use, request needs {bytes}; retry later",
                budget.used(),
                budget.limit()
            ),
        })
    }

    fn submit(&self, tenant: Tenant, mut batch: Batch) -> BoxFuture<'static, Result<(), Refusal>> {
        let store = self.state.store().cloned();
        // Observed before the append so the batch need not be cloned. The engine now knows these
        // spans and will not decide their links again when a refused request is retried, so the
        // bridges are written whether or not the append is refused (they are idempotent).
        let (links, keys) = match (&mut batch, &store) {
            (Batch::Traces(rs), Some(_)) => {
                let (links, keys) = self.state.correlation.observe(&tenant, rs);
                (links, Some(keys))
            }
            (Batch::Logs(logs), Some(_)) => {
                self.state.correlation.enrich_logs(&tenant, logs);
                (Vec::new(), None)
            }
            _ => (Vec::new(), None),
        };
        let correlation = self.state.correlation.clone();
        // Only the streams a live tail selects are copied (nothing while nobody tails); they are
        // published after the ack so a tail never shows an entry a query could not find.
        let tails = self.state.tails.clone();
        let tailed = match &batch {
            Batch::Logs(logs) => tails.selected(&tenant, logs).map(|mut b| {
                crate::correlation::strip_pending(std::sync::Arc::make_mut(&mut b));
                b
            }),
            _ => None,
        };
        async move {
            let store = store.ok_or_else(not_ready)?;
            // The engine found the spans' keys while reading them: the store takes its rows.
            let append = async {
                match keys {
                    Some(keys) => store.append_with_keys(&tenant, batch, keys).await,
                    None => store.append(&tenant, batch).await,
                }
            };
            // The batch and its bridges go to the WAL together, so they share one group commit
            // (one fsync) instead of the bridges waiting for a second one.
            let (appended, ()) = tokio::join!(append, correlation.write(&store, links));
            if appended.is_ok() {
                if let Some(logs) = tailed {
                    tails.publish(&tenant, logs);
                }
            }
            appended.map_err(|e| match e {
                AppendError::Overloaded { .. } => Refusal::Overloaded {
                    retry_after_secs: RETRY_AFTER.as_secs(),
                    message: e.to_string(),
                },
                AppendError::Closed => Refusal::Unavailable(e.to_string()),
                AppendError::Store(s) => {
                    tracing::error!(error = %s, "append failed");
                    Refusal::Internal(s.to_string())
                }
            })
        }
        .boxed()
    }

    fn observe(&self, signal: Signal, protocol: Protocol, accepted: u64, refused: u64) {
        self.state
            .telemetry
            .records(signal, protocol, accepted, refused);
    }
}
