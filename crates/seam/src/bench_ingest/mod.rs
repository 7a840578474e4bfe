//! `seam bench ingest`: a load generator for the OTLP/HTTP receiver, and (`--decode-only`) the
//! in-process decode ceiling it is compared against.
//!
//! A pool of realistic protobuf bodies is generated before the timed run. Then `concurrency`
//! workers, each on its own keep-alive connection, post them back to back for `duration` seconds,
//! honouring `Retry-After` on 429/503. Figures count only what the server acknowledged with 2xx,
//! minus records it reported as rejected through `partial_success`.

mod decode;
mod gen_logs;
mod gen_metrics;
mod gen_traces;
mod payload;
mod send;

pub(crate) use payload::random_id;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::bench_latency::{round, Latencies};

/// The signal to send.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchSignal {
    /// Spans, to /v1/traces.
    Traces,
    /// Log records, to /v1/logs.
    Logs,
    /// Metric data points, to /v1/metrics.
    Metrics,
}

impl BenchSignal {
    /// The lower-case name, as in the OTLP path.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchSignal::Traces => "traces",
            BenchSignal::Logs => "logs",
            BenchSignal::Metrics => "metrics",
        }
    }

    fn records_name(self) -> &'static str {
        match self {
            BenchSignal::Traces => "spans",
            BenchSignal::Logs => "log records",
            BenchSignal::Metrics => "data points",
        }
    }

    /// Records per request when `--batch` is not given.
    pub fn default_batch(self) -> usize {
        match self {
            BenchSignal::Traces => 500,
            BenchSignal::Logs => 1000,
            BenchSignal::Metrics => 2000,
        }
    }
}

/// Arguments of `seam bench ingest`.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Base URL of the OTLP/HTTP receiver, e.g. http://127.0.0.1:4318
    #[arg(long = "otlp-http")]
    pub otlp_http: String,
    /// Signal to send.
    #[arg(long, value_enum)]
    pub signal: BenchSignal,
    /// Concurrent workers, each with its own HTTP/1.1 keep-alive connection (threads with
    /// --decode-only).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Length of the timed run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Records per request; 0 means the signal's default (500 spans, 1000 log records, 2000 data
    /// points).
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Send gzip-compressed bodies (the pool is compressed once; ids are then not rotated per send).
    #[arg(long)]
    pub gzip: bool,
    /// Tenant, sent as X-Scope-OrgID.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Send nothing: measure how fast this process decodes and converts the same bodies as the
    /// receiver does (the ceiling the HTTP figures are compared against).
    #[arg(long)]
    pub decode_only: bool,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 86_400.0) {
        bail!("--duration must be a number of seconds in (0, 86400]");
    }
    let batch = if args.batch == 0 {
        args.signal.default_batch()
    } else {
        args.batch
    };
    let duration = Duration::from_secs_f64(args.duration);
    let (signal, gzip) = (args.signal, args.gzip);

    let began = Instant::now();
    let pool = tokio::task::spawn_blocking(move || payload::pool(signal, batch, gzip))
        .await
        .context("payload generation panicked")??;
    let pool = Arc::new(pool);
    let pool_bytes: usize = pool.iter().map(|p| p.body.len()).sum();
    eprintln!(
        "generated {} {} bodies of {batch} {} ({:.1} KB average) in {:.2} s",
        pool.len(),
        signal.as_str(),
        signal.records_name(),
        pool_bytes as f64 / pool.len() as f64 / 1e3,
        began.elapsed().as_secs_f64()
    );

    let (tally, elapsed) = if args.decode_only {
        let pool = pool.clone();
        let (threads, tenant) = (args.concurrency, args.tenant.clone());
        tokio::task::spawn_blocking(move || {
            decode::run(signal, threads, duration, gzip, tenant.as_deref(), &pool)
        })
        .await
        .context("decode run panicked")??
    } else {
        let cfg = send::SendConfig {
            url: args.otlp_http.clone(),
            signal,
            concurrency: args.concurrency,
            duration,
            gzip,
            tenant: args.tenant.clone(),
        };
        send::run(cfg, pool.clone()).await?
    };
    let report = Report {
        args: &args,
        batch,
        tally: &tally,
        elapsed,
    };
    report.print_human();
    if args.json {
        println!("{}", report.json());
    }
    Ok(())
}

/// What workers counted; merged at the end.
pub(crate) struct Tally {
    /// Exchanges completed (any status); payloads decoded with --decode-only.
    requests: u64,
    /// Of which 2xx.
    accepted_requests: u64,
    /// Records acknowledged (2xx, minus partial-success rejections).
    records: u64,
    /// Records rejected through partial_success.
    rejected_records: u64,
    /// With --decode-only: records of the converted model batches (for metrics, samples).
    model_records: u64,
    /// Body bytes of the 2xx requests.
    bytes: u64,
    /// Non-2xx responses, by status.
    refused_by_status: BTreeMap<u16, u64>,
    /// First refusal message per status.
    refusal_messages: BTreeMap<u16, String>,
    /// Connection failures (connect or exchange).
    errors: u64,
    first_error: Option<String>,
    /// Requests still in flight at the deadline (not counted anywhere else).
    cut: u64,
    /// Acknowledgement latency of the 2xx requests.
    latency: Latencies,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            requests: 0,
            accepted_requests: 0,
            records: 0,
            rejected_records: 0,
            model_records: 0,
            bytes: 0,
            refused_by_status: BTreeMap::new(),
            refusal_messages: BTreeMap::new(),
            errors: 0,
            first_error: None,
            cut: 0,
            latency: Latencies::default(),
        }
    }

    fn accept(&mut self, latency: Duration, records: u64, rejected: u64, bytes: u64) {
        self.accepted_requests += 1;
        self.records += records;
        self.rejected_records += rejected;
        self.bytes += bytes;
        self.latency.record(latency);
    }

    fn refuse(&mut self, status: u16, message: impl FnOnce() -> String) {
        *self.refused_by_status.entry(status).or_default() += 1;
        self.refusal_messages.entry(status).or_insert_with(message);
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    fn refused(&self) -> u64 {
        self.refused_by_status.values().sum()
    }

    fn merge(&mut self, o: Tally) {
        self.requests += o.requests;
        self.accepted_requests += o.accepted_requests;
        self.records += o.records;
        self.rejected_records += o.rejected_records;
        self.model_records += o.model_records;
        self.bytes += o.bytes;
        for (k, v) in o.refused_by_status {
            *self.refused_by_status.entry(k).or_default() += v;
        }
        for (k, v) in o.refusal_messages {
            self.refusal_messages.entry(k).or_insert(v);
        }
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.cut += o.cut;
        self.latency.merge(&o.latency);
    }
}

struct Report<'a> {
    args: &'a IngestArgs,
    batch: usize,
    tally: &'a Tally,
    elapsed: Duration,
}

impl Report<'_> {
    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    fn ms(&self, q: f64) -> f64 {
        self.tally.latency.ms(q)
    }

    fn print_human(&self) {
        let (a, t) = (self.args, self.tally);
        let what = a.signal.records_name();
        if a.decode_only {
            println!(
                "seam bench ingest --decode-only: {} on {} threads for {:.1} s, {} {what} per body{}",
                a.signal.as_str(),
                a.concurrency,
                self.secs(),
                self.batch,
                if a.gzip { ", gzip" } else { "" }
            );
        } else {
            println!(
                "seam bench ingest: {} to {} with {} connections for {:.1} s, {} {what} per request, protobuf{}",
                a.signal.as_str(),
                a.otlp_http,
                a.concurrency,
                self.secs(),
                self.batch,
                if a.gzip { " + gzip" } else { "" }
            );
        }
        println!(
            "  accepted  {} {what} in {} requests: {:.0} {what}/s, {:.2} MB/s",
            t.records,
            t.accepted_requests,
            t.records as f64 / self.secs(),
            t.bytes as f64 / 1e6 / self.secs()
        );
        let label = if a.decode_only {
            "decode   "
        } else {
            "latency  "
        };
        println!(
            "  {label} p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.ms(0.5),
            self.ms(0.99),
            self.ms(1.0)
        );
        if a.decode_only && a.signal == BenchSignal::Metrics {
            println!(
                "  model     {} samples: {:.0} samples/s",
                t.model_records,
                t.model_records as f64 / self.secs()
            );
        }
        if t.rejected_records > 0 {
            println!(
                "  rejected  {} {what} (partial success)",
                t.rejected_records
            );
        }
        if t.refused() > 0 {
            let by: Vec<String> = t
                .refused_by_status
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            println!("  refused   {} requests ({})", t.refused(), by.join(", "));
            for (k, m) in &t.refusal_messages {
                println!("            {k}: {}", m.trim());
            }
        }
        if t.errors > 0 {
            println!(
                "  errors    {} (first: {})",
                t.errors,
                t.first_error.as_deref().unwrap_or("")
            );
        }
        if t.cut > 0 {
            println!(
                "  cut off   {} requests still in flight at the deadline (not counted)",
                t.cut
            );
        }
    }

    /// The figures as one JSON object, keys in a fixed, readable order.
    fn json(&self) -> String {
        use serde_json::Value;
        let (a, t) = (self.args, self.tally);
        let by: serde_json::Map<String, Value> = t
            .refused_by_status
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        let mut fields: Vec<(&str, Value)> = vec![
            ("signal", a.signal.as_str().into()),
            (
                "mode",
                if a.decode_only {
                    "decode_only"
                } else {
                    "otlp_http"
                }
                .into(),
            ),
            ("concurrency", a.concurrency.into()),
            ("duration_s", a.duration.into()),
            ("elapsed_s", round(self.secs(), 3).into()),
            ("batch", self.batch.into()),
            ("gzip", a.gzip.into()),
            ("records", t.records.into()),
            (
                "records_per_s",
                round(t.records as f64 / self.secs(), 1).into(),
            ),
            (
                "mb_per_s",
                round(t.bytes as f64 / 1e6 / self.secs(), 3).into(),
            ),
            ("bytes", t.bytes.into()),
            ("requests", t.requests.into()),
            ("accepted_requests", t.accepted_requests.into()),
            ("rejected_records", t.rejected_records.into()),
            ("refused", t.refused().into()),
            ("refused_by_status", Value::Object(by)),
            ("errors", t.errors.into()),
            ("cut_off", t.cut.into()),
            ("p50_ms", round(self.ms(0.5), 3).into()),
            ("p99_ms", round(self.ms(0.99), 3).into()),
            ("max_ms", round(self.ms(1.0), 3).into()),
        ];
        if a.decode_only {
            fields.push(("model_records", t.model_records.into()));
            fields.push((
                "model_records_per_s",
                round(t.model_records as f64 / self.secs(), 1).into(),
            ));
        }
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(k)))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}
