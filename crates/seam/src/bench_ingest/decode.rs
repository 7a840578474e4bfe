//! `--decode-only`: the ceiling. Decodes the same pool the way the OTLP/HTTP receiver does (gunzip
//! when compressed, `prost` decode of the export request, then the receiver's conversion to the
//! model), on `concurrency` OS threads sharing one converter, as the server shares one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use prost::Message;
use seam_model::otlp::collector::logs::v1::ExportLogsServiceRequest;
use seam_model::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use seam_model::otlp::collector::trace::v1::ExportTraceServiceRequest;
use seam_model::Tenant;
use seam_receive::body::{self, Encoding};
use seam_receive::otlp::OtlpConverter;
use seam_receive::otlp_http::DEFAULT_MAX_BODY_BYTES;

use super::payload::Payload;
use super::{BenchSignal, Tally};

/// Decodes pool bodies on `threads` threads for `duration`; returns the merged tally and the
/// elapsed time.
pub fn run(
    signal: BenchSignal,
    threads: usize,
    duration: Duration,
    gzip: bool,
    tenant: Option<&str>,
    pool: &[Payload],
) -> anyhow::Result<(Tally, Duration)> {
    let tenant = Tenant::from_header(tenant).context("--tenant")?;
    let converter = OtlpConverter::default();
    let seq = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + duration;
    let tallies = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut t = Tally::new();
                    while Instant::now() < deadline {
                        let n = seq.fetch_add(1, Ordering::Relaxed);
                        let p = &pool[(n % pool.len() as u64) as usize];
                        let began = Instant::now();
                        let outcome = decode_one(signal, p, gzip, &converter, &tenant);
                        let took = began.elapsed();
                        t.requests += 1;
                        match outcome {
                            Ok((rejected, model_records)) => {
                                let rejected = rejected.min(p.records);
                                t.accept(took, p.records - rejected, rejected, p.body.len() as u64);
                                t.model_records += model_records;
                            }
                            Err(e) => t.error(e),
                        }
                    }
                    t
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let elapsed = start.elapsed();
    let mut total = Tally::new();
    for t in tallies {
        total.merge(t.map_err(|_| anyhow::anyhow!("decode thread panicked"))?);
    }
    Ok((total, elapsed))
}

/// Decodes and converts one body; returns the records the conversion refused and the records of
/// the model batch (for metrics, Prometheus samples rather than OTLP data points).
fn decode_one(
    signal: BenchSignal,
    p: &Payload,
    gzip: bool,
    converter: &OtlpConverter,
    tenant: &Tenant,
) -> Result<(u64, u64), String> {
    let data = if gzip {
        body::decode(p.body.clone(), Encoding::Gzip, DEFAULT_MAX_BODY_BYTES)
            .map_err(|e| e.to_string())?
    } else {
        p.body.clone()
    };
    let converted = match signal {
        BenchSignal::Traces => {
            let req = ExportTraceServiceRequest::decode(&data[..]).map_err(|e| e.to_string())?;
            converter.traces(req)
        }
        BenchSignal::Logs => {
            let req = ExportLogsServiceRequest::decode(&data[..]).map_err(|e| e.to_string())?;
            converter.logs(&req)
        }
        BenchSignal::Metrics => {
            let req = ExportMetricsServiceRequest::decode(&data[..]).map_err(|e| e.to_string())?;
            converter.metrics(tenant, &req)
        }
    };
    Ok((converted.rejected, converted.batch.record_count() as u64))
}
