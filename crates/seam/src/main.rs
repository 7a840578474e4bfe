//! The `seam` command: `serve`, `bench ingest`, and more as issues land.

mod api_client;
mod config;
mod correlate_cmd;
mod correlate_patterns;
mod demo;
mod labels_cmd;
mod query_cmd;
mod serve;
mod tail_cmd;
mod trace_cmd;

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc malloc: ingest allocates many short-lived buffers from many threads,
/// where glibc's arenas spent a fifth of the CPU consolidating (and mimalloc a third re-faulting
/// pages it had returned to the OS).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Seam: receive, stitch, store and serve logs, traces and metrics.
#[derive(Parser, Debug)]
#[command(name = "seam", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: OTLP receivers, the embedded store and the query APIs.
    Serve(serve::ServeArgs),
    /// Print a trace as an indented tree (stitched across systems by default).
    Trace(trace_cmd::TraceArgs),
    /// Print the flow a business key joins (its traces, their bridges, matching log lines), or
    /// with `patterns` the flow patterns Seam learned.
    Correlate(correlate_cmd::CorrelateArgs),
    /// Run a LogQL query and print its log lines or samples.
    Query(query_cmd::QueryArgs),
    /// Follow a log query live, as lines are acknowledged.
    Tail(tail_cmd::TailArgs),
    /// List log label names, or the values of one label.
    Labels(labels_cmd::LabelsArgs),
    /// Demo workloads and their scoring.
    #[command(subcommand)]
    Demo(demo::DemoCommand),
    /// Load generators and benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Send realistic OTLP batches to a running Seam and report throughput and ack latency.
    Ingest(bench_ingest::IngestArgs),
    /// Push realistic log lines through Loki push (protobuf + snappy) and report ingest speed.
    Logs(bench_logs::LogsArgs),
}

mod bench_ingest;
mod bench_latency;
mod bench_logs;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seam: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Bench(BenchCommand::Ingest(args)) => bench_ingest::run(args).await,
            Command::Bench(BenchCommand::Logs(args)) => bench_logs::run(args).await,
            Command::Trace(args) => trace_cmd::run(args).await,
            Command::Correlate(args) => correlate_cmd::run(args).await,
            Command::Query(args) => query_cmd::run(args).await,
            Command::Tail(args) => tail_cmd::run(args).await,
            Command::Labels(args) => labels_cmd::run(args).await,
            Command::Demo(cmd) => demo::run(cmd).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seam: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
