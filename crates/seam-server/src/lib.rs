//! Seam's server: binds the query port and the OTLP ports, opens the store (replaying the WAL)
//! while already answering `/health`, and shuts down gracefully.

pub mod api;
pub mod correlation;
pub mod correlation_redis;
pub mod limits;
pub mod params;
mod sink;
pub mod tail;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use seam_receive::loki_push::{self, LokiPushConfig};

pub use limits::{Limits, TenantLimits};
use seam_receive::otlp::OtlpConverter;
use seam_receive::otlp_grpc::OtlpGrpc;
use seam_receive::otlp_http::{self, OtlpHttpConfig};
use seam_store::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use telemetry::Telemetry;

/// Everything `seam serve` needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// Query APIs, `/metrics`, `/health`, `/ready`.
    pub listen: SocketAddr,
    /// OTLP/HTTP receiver.
    pub otlp_http: SocketAddr,
    /// OTLP/gRPC receiver.
    pub otlp_grpc: SocketAddr,
    /// The store.
    pub store: StoreConfig,
    /// Largest OTLP request body.
    pub max_body_bytes: usize,
    /// The correlation engine's settings.
    pub correlation: seam_correlate::CorrelationConfig,
    /// Per-tenant query, tail and push limits.
    pub limits: Limits,
}

/// State shared by every handler.
pub struct AppState {
    store: OnceLock<Store>,
    /// Seam's own metrics.
    pub telemetry: Arc<Telemetry>,
    /// The correlation engine.
    pub correlation: Arc<correlation::Correlation>,
    /// Per-tenant query, tail and push limits.
    pub limits: Arc<Limits>,
    /// Open live tails, fed by the ingest sink.
    pub tails: Arc<tail::TailHub>,
    started: std::time::Instant,
    replay_error: OnceLock<String>,
}

impl AppState {
    /// The store, once WAL replay has finished.
    pub fn store(&self) -> Option<&Store> {
        self.store.get()
    }
}

/// A started server: the addresses it bound, and the handle to stop it.
pub struct RunningServer {
    /// The query API address actually bound.
    pub listen: SocketAddr,
    /// The OTLP/HTTP address actually bound.
    pub otlp_http: SocketAddr,
    /// The OTLP/gRPC address actually bound.
    pub otlp_grpc: SocketAddr,
    /// Shared state (for in-process tests).
    pub state: Arc<AppState>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    opener: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests (and so their acks), flushes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.opener.await;
        if let Some(store) = self.state.store() {
            self.state.correlation.persist_learned(store).await;
            store
                .shutdown()
                .await
                .context("flushing the store at shutdown")?;
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Binds every port, starts serving and opens the store in the background. `/ready` answers 503
/// until WAL replay has finished; receivers answer 503 until then too.
pub async fn start(cfg: ServerConfig) -> anyhow::Result<RunningServer> {
    let mut telemetry = Telemetry::new();
    let correlation = Arc::new(correlation::Correlation::new(
        cfg.correlation.clone(),
        telemetry.registry_mut(),
    ));
    let telemetry = Arc::new(telemetry);
    let state = Arc::new(AppState {
        store: OnceLock::new(),
        telemetry: telemetry.clone(),
        correlation: correlation.clone(),
        limits: Arc::new(cfg.limits.clone()),
        tails: Arc::new(tail::TailHub::new()),
        started: std::time::Instant::now(),
        replay_error: OnceLock::new(),
    });
    let api_listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding --listen {}", cfg.listen))?;
    let http_listener = TcpListener::bind(cfg.otlp_http)
        .await
        .with_context(|| format!("binding --otlp-http {}", cfg.otlp_http))?;
    let grpc_listener = TcpListener::bind(cfg.otlp_grpc)
        .await
        .with_context(|| format!("binding --otlp-grpc {}", cfg.otlp_grpc))?;
    let listen = api_listener.local_addr()?;
    let otlp_http_addr = http_listener.local_addr()?;
    let otlp_grpc_addr = grpc_listener.local_addr()?;
    tracing::info!(
        listen = %listen,
        otlp_http = %otlp_http_addr,
        otlp_grpc = %otlp_grpc_addr,
        data_dir = %cfg.store.data_dir.display(),
        "seam listening"
    );

    let (stop, stop_rx) = watch::channel(false);
    let sink: Arc<dyn seam_receive::Sink> = Arc::new(sink::StoreSink::new(state.clone()));
    let converter = Arc::new(OtlpConverter::default());

    // Loki push is served on the query port, like Loki.
    let api = api::router(state.clone()).merge(
        loki_push::router(
            sink.clone(),
            LokiPushConfig {
                max_body_bytes: cfg.max_body_bytes,
                limits: state.limits.clone(),
            },
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::record_request,
        )),
    );
    let otlp = otlp_http::router(
        sink.clone(),
        converter.clone(),
        OtlpHttpConfig {
            max_body_bytes: cfg.max_body_bytes,
        },
    )
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        api::record_request,
    ));
    let grpc = OtlpGrpc::new(sink, converter).routes(cfg.max_body_bytes);

    let mut tasks = Vec::new();
    tasks.push(serve_http(api_listener, api, stop_rx.clone()));
    tasks.push(serve_http(http_listener, otlp, stop_rx.clone()));
    let mut grpc_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
        let result = tonic::transport::Server::builder()
            .add_routes(grpc)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = grpc_stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "OTLP/gRPC server failed");
        }
    }));

    let mut store_cfg = cfg.store.clone();
    store_cfg.observer = Some(telemetry as Arc<dyn seam_store::StoreObserver>);
    store_cfg.span_keys = Some(Arc::new(correlation::EngineSpanKeys(
        correlation.extractor().clone(),
    )));
    store_cfg.late_log_keys = Some(Arc::new(correlation::LateKeys(correlation.clone())));
    let opener_state = state.clone();
    let opener = tokio::spawn(async move {
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || Store::open(store_cfg)).await {
            Ok(Ok(store)) => {
                let replayed = store.stats().replayed_records;
                store.spawn_flusher();
                // The correlation window is rebuilt before any new data is accepted, so a segment
                // from before the restart matches one that arrives after it.
                let (c, s) = (correlation.clone(), store.clone());
                let rebuilt_at = std::time::Instant::now();
                match api::blocking(move || c.rebuild(&s)).await {
                    Ok((report, links)) => {
                        correlation.write(&store, links).await;
                        tracing::info!(
                            traces = report.traces,
                            restored_links = report.restored,
                            decided_links = report.decided,
                            ms = rebuilt_at.elapsed().as_millis() as u64,
                            "correlation window rebuilt"
                        );
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "rebuilding the correlation window failed; it starts empty")
                    }
                }
                correlation.spawn_ticker(store.clone());
                let _ = opener_state.store.set(store);
                tracing::info!(
                    replayed_records = replayed,
                    ms = started.elapsed().as_millis() as u64,
                    "store ready"
                );
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "opening the store failed; Seam stays unready");
                let _ = opener_state.replay_error.set(e.to_string());
            }
            Err(e) => {
                let _ = opener_state.replay_error.set(e.to_string());
            }
        }
    });
    Ok(RunningServer {
        listen,
        otlp_http: otlp_http_addr,
        otlp_grpc: otlp_grpc_addr,
        state,
        stop,
        tasks,
        opener,
    })
}

fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "HTTP server failed");
        }
    })
}

/// How long clients are told to wait when Seam is overloaded.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
