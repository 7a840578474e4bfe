//! `seam serve`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use seam_server::ServerConfig;
use seam_store::{FsyncPolicy, StoreConfig};

use crate::config::{
    apply_env, build_limits, load_file, parse_addr, parse_duration, parse_size, FileConfig,
};

/// Arguments of `seam serve`. Flags override the config file and the environment.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// YAML configuration file (see docs/configuration.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./seam-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Query APIs, /metrics, /health, /ready [default: 0.0.0.0:3100]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// OTLP/HTTP receiver [default: 0.0.0.0:4318]
    #[arg(long, value_name = "ADDR")]
    pub otlp_http: Option<String>,
    /// OTLP/gRPC receiver [default: 0.0.0.0:4317]
    #[arg(long, value_name = "ADDR")]
    pub otlp_grpc: Option<String>,
    /// Memory budget for ingest buffers and the head, e.g. 512MiB [default: 1GiB]
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// When a write counts as durable: always (fsync before every ack) or interval [default: always]
    #[arg(long, value_name = "MODE")]
    pub fsync: Option<String>,
    /// Log format: json or text [default: json]
    #[arg(long, value_name = "FORMAT", default_value = "json")]
    pub log_format: String,
}

fn build_config(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let mut file = match &args.config {
        Some(p) => load_file(p)?,
        None => FileConfig::default(),
    };
    apply_env(&mut file, std::env::vars())?;
    let s = &file.server;
    let st = &file.storage;
    let listen = parse_addr(
        "--listen",
        args.listen
            .as_deref()
            .or(s.listen.as_deref())
            .unwrap_or("0.0.0.0:3100"),
    )?;
    let otlp_http = parse_addr(
        "--otlp-http",
        args.otlp_http
            .as_deref()
            .or(s.otlp_http.as_deref())
            .unwrap_or("0.0.0.0:4318"),
    )?;
    let otlp_grpc = parse_addr(
        "--otlp-grpc",
        args.otlp_grpc
            .as_deref()
            .or(s.otlp_grpc.as_deref())
            .unwrap_or("0.0.0.0:4317"),
    )?;
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| st.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./seam-data"));
    let mut store = StoreConfig::new(data_dir);
    if let Some(m) = args.max_memory.as_deref().or(st.max_memory.as_deref()) {
        store.max_memory_bytes = parse_size("storage.max_memory", m)?;
        if store.max_memory_bytes < 1 << 20 {
            bail!("storage.max_memory: {m:?} is below the minimum of 1MiB");
        }
    }
    store.flush_bytes = match &st.flush_size {
        Some(f) => parse_size("storage.flush_size", f)?,
        None => store.max_memory_bytes / 4,
    };
    if let Some(a) = &st.flush_age {
        store.flush_age = parse_duration("storage.flush_age", a)?;
    }
    if let Some(w) = &st.wal_segment_size {
        store.wal_segment_bytes = parse_size("storage.wal_segment_size", w)? as u64;
    }
    store.fsync = match args
        .fsync
        .as_deref()
        .or(st.fsync.as_deref())
        .unwrap_or("always")
    {
        "always" => FsyncPolicy::Always,
        "interval" => {
            let bound = st.fsync_interval.as_deref().unwrap_or("100ms");
            FsyncPolicy::Interval(parse_duration("storage.fsync_interval", bound)?)
        }
        other => bail!("storage.fsync: {other:?} is not a mode (use always or interval)"),
    };
    let max_body_bytes = match &s.max_body_size {
        Some(b) => parse_size("server.max_body_size", b)?,
        None => seam_receive::otlp_http::DEFAULT_MAX_BODY_BYTES,
    };
    // CORR_WINDOW_SECONDS is the correlation window's historical name; it wins over the file.
    let correlation = std::mem::take(&mut file.correlation)
        .apply_env(|k| std::env::var(k).ok())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let limits = build_limits(&file)?;
    Ok(ServerConfig {
        listen,
        otlp_http,
        otlp_grpc,
        store,
        max_body_bytes,
        correlation,
        limits,
    })
}

fn init_logging(format: &str) -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("SEAM_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        "text" => builder.init(),
        other => bail!("--log-format: {other:?} is not a format (use json or text)"),
    }
    Ok(())
}

/// Runs the server until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log_format)?;
    let cfg = build_config(&args)?;
    let server = seam_server::start(cfg).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
    }
    server.shutdown().await
}
