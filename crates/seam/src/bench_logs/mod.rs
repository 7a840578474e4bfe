//! `seam bench logs`: pushes a large volume of realistic log lines to a Loki push endpoint
//! (protobuf + snappy, as Promtail and Grafana Alloy send them) and writes the same lines to a
//! text file, so a query's scan speed can be compared with `grep` over the same bytes.
//!
//! The push bodies are generated (and the text file written) before the timed run, so the
//! generator does not compete with the server for CPU while ingest is measured. Then
//! `concurrency` connections post them back to back; 429/503 answers are retried after their
//! `Retry-After`, so every line ends up stored.

mod gen;
mod push;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::Bytes;
use prost::Message;
use seam_receive::loki_decode::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};

use crate::bench_latency::round;
use gen::{LineGen, StreamKey};

/// Arguments of `seam bench logs`.
#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Base URL of the Loki push API, e.g. http://127.0.0.1:3100
    #[arg(long)]
    pub url: String,
    /// Raw line bytes to push (newlines not counted).
    #[arg(long, default_value_t = 5_000_000_000)]
    pub bytes: u64,
    /// Write every line, newline-terminated, to this file.
    #[arg(long)]
    pub raw_out: Option<PathBuf>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Raw line bytes per push request.
    #[arg(long, default_value_t = 1 << 20)]
    pub batch_bytes: usize,
    /// Seconds of log time the lines cover, ending about now.
    #[arg(long, default_value_t = 3600)]
    pub span_seconds: u64,
    /// Seed of the line generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Tenant, sent as X-Scope-OrgID.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// One push request body and what it carries.
pub(crate) struct Body {
    /// The snappy-compressed `PushRequest`.
    data: Bytes,
    /// Raw line bytes in it.
    raw_bytes: u64,
    /// Lines in it.
    lines: u64,
}

/// Lines turned into push bodies, and what a query over them should find.
struct Generated {
    bodies: Vec<Body>,
    lines: u64,
    raw_bytes: u64,
    first_ns: i64,
    last_ns: i64,
    /// A trace id from the middle of the run, for needle queries.
    needle: String,
}

/// The average line length the time step is planned with; lines are a little longer, so the
/// last timestamp lands a little before now.
const PLANNED_LINE_BYTES: u64 = 180;

fn generate(args: &LogsArgs) -> anyhow::Result<Generated> {
    let mut raw = match &args.raw_out {
        Some(p) => Some(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let span_ns = args.span_seconds as i64 * 1_000_000_000;
    let planned = (args.bytes / PLANNED_LINE_BYTES).max(1) as i64;
    let step = (span_ns / planned).max(1);
    let first_ns = seam_model::now_ns() - span_ns;
    let mut g = LineGen::new(args.seed);
    let mut line = String::with_capacity(512);
    let mut out = Generated {
        bodies: Vec::new(),
        lines: 0,
        raw_bytes: 0,
        first_ns,
        last_ns: first_ns,
        needle: String::new(),
    };
    let mut streams: HashMap<usize, StreamAdapter> = HashMap::new();
    let (mut batch_bytes, mut batch_lines) = (0usize, 0u64);
    let mut encoder = snap::raw::Encoder::new();
    let mut flush = |streams: &mut HashMap<usize, StreamAdapter>,
                     batch: (&mut usize, &mut u64),
                     out: &mut Generated|
     -> anyhow::Result<()> {
        if streams.is_empty() {
            return Ok(());
        }
        let req = PushRequest {
            streams: streams.drain().map(|(_, s)| s).collect(),
        };
        let data = encoder
            .compress_vec(&req.encode_to_vec())
            .context("snappy compression")?;
        out.bodies.push(Body {
            data: Bytes::from(data),
            raw_bytes: *batch.0 as u64,
            lines: *batch.1,
        });
        (*batch.0, *batch.1) = (0, 0);
        Ok(())
    };
    while out.raw_bytes < args.bytes {
        let ts = first_ns + out.lines as i64 * step;
        let (key, trace) = g.next_line(ts, &mut line);
        if out.needle.is_empty() && out.raw_bytes >= args.bytes * 2 / 5 {
            out.needle = String::from_utf8(trace.to_vec()).expect("hex");
        }
        if let Some(w) = raw.as_mut() {
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
        }
        out.lines += 1;
        out.raw_bytes += line.len() as u64;
        out.last_ns = ts;
        batch_bytes += line.len();
        batch_lines += 1;
        streams
            .entry(key.index())
            .or_insert_with(|| StreamAdapter {
                labels: key.labels(),
                entries: Vec::new(),
                hash: 0,
            })
            .entries
            .push(EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: ts.div_euclid(1_000_000_000),
                    nanos: ts.rem_euclid(1_000_000_000) as i32,
                }),
                line: line.clone(),
                structured_metadata: Vec::new(),
            });
        if batch_bytes >= args.batch_bytes {
            flush(&mut streams, (&mut batch_bytes, &mut batch_lines), &mut out)?;
        }
    }
    flush(&mut streams, (&mut batch_bytes, &mut batch_lines), &mut out)?;
    if let Some(mut w) = raw {
        w.flush()?;
    }
    Ok(out)
}

/// Runs the benchmark and prints its report.
pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.batch_bytes == 0 || args.bytes == 0 {
        bail!("--bytes and --batch-bytes must be positive");
    }
    let began = Instant::now();
    let args = std::sync::Arc::new(args);
    let gen_args = args.clone();
    let mut generated = tokio::task::spawn_blocking(move || generate(&gen_args))
        .await
        .context("log generation panicked")??;
    let gen_s = began.elapsed().as_secs_f64();
    let body_bytes: u64 = generated.bodies.iter().map(|b| b.data.len() as u64).sum();
    eprintln!(
        "generated {} lines ({:.1} MB raw, {:.1} MB in {} snappy bodies) in {gen_s:.1} s",
        generated.lines,
        generated.raw_bytes as f64 / 1e6,
        body_bytes as f64 / 1e6,
        generated.bodies.len()
    );
    if generated.needle.is_empty() {
        bail!("no line was generated");
    }
    let bodies = std::sync::Arc::new(std::mem::take(&mut generated.bodies));
    let tally = push::run(&args, bodies).await?;
    let secs = tally.elapsed.as_secs_f64().max(1e-9);
    let ms = |q: f64| tally.latency.ms(q);
    println!(
        "seam bench logs: {} lines, {:.2} GB raw to {} in {secs:.1} s: {:.1} MB/s raw, {:.1} MB/s on the wire, {:.0} lines/s",
        tally.lines,
        tally.raw_bytes as f64 / 1e9,
        args.url,
        tally.raw_bytes as f64 / 1e6 / secs,
        tally.body_bytes as f64 / 1e6 / secs,
        tally.lines as f64 / secs
    );
    println!(
        "  push latency p50 {:.1} ms, p99 {:.1} ms; {} retries after 429/503, {} failed requests",
        ms(0.5),
        ms(0.99),
        tally.retries,
        tally.failed
    );
    if let Some(e) = &tally.first_failure {
        println!("  first failure: {e}");
    }
    if args.json {
        let doc = serde_json::json!({
            "lines": generated.lines,
            "raw_bytes": generated.raw_bytes,
            "body_bytes": body_bytes,
            "requests": tally.requests,
            "generate_s": round(gen_s, 3),
            "push_s": round(secs, 3),
            "raw_mb_per_s": round(tally.raw_bytes as f64 / 1e6 / secs, 3),
            "wire_mb_per_s": round(tally.body_bytes as f64 / 1e6 / secs, 3),
            "lines_per_s": round(tally.lines as f64 / secs, 3),
            "p50_ms": round(ms(0.5), 3),
            "p99_ms": round(ms(0.99), 3),
            "retries": tally.retries,
            "failed": tally.failed,
            "acked_raw_bytes": tally.raw_bytes,
            "first_ns": generated.first_ns.to_string(),
            "last_ns": generated.last_ns.to_string(),
            "needle_trace_id": generated.needle,
            "streams": StreamKey::count(),
            "concurrency": args.concurrency,
        });
        println!("{doc}");
    }
    if tally.failed > 0 {
        bail!("{} push requests failed", tally.failed);
    }
    Ok(())
}
