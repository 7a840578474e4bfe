//! Seam's own metrics, exposed at `/metrics` in Prometheus text format. Label values come from
//! small fixed sets (signal, protocol, route template), so cardinality stays bounded.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use seam_model::Signal;
use seam_receive::Protocol;
use seam_store::{StoreObserver, StoreStats};

/// Labels of the per-receiver record counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordLabels {
    /// traces, logs or metrics.
    pub signal: String,
    /// otlp_http, otlp_grpc, ...
    pub protocol: String,
}

/// Labels of the request-duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template (`/api/traces/{id}`), never the raw path.
    pub endpoint: String,
    /// HTTP method.
    pub method: String,
    /// Status class: 2xx, 4xx, 5xx.
    pub status: String,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// Every metric Seam exports about itself.
pub struct Telemetry {
    registry: Registry,
    accepted: Family<RecordLabels, Counter>,
    refused: Family<RecordLabels, Counter>,
    wal_fsync: Histogram,
    wal_written: Counter,
    wal_disk: Gauge,
    head_bytes: Gauge,
    head_rows: Gauge,
    segments: Gauge,
    segment_bytes: Gauge,
    segments_written: Counter,
    flush_duration: Histogram,
    memory_used: Gauge,
    memory_limit: Gauge,
    flush_failures: Gauge,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    /// Registers every metric.
    pub fn new() -> Telemetry {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("seam");
        let t = Telemetry {
            accepted: Family::default(),
            refused: Family::default(),
            wal_fsync: seconds_histogram(),
            wal_written: Counter::default(),
            wal_disk: Gauge::default(),
            head_bytes: Gauge::default(),
            head_rows: Gauge::default(),
            segments: Gauge::default(),
            segment_bytes: Gauge::default(),
            segments_written: Counter::default(),
            flush_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            memory_used: Gauge::default(),
            memory_limit: Gauge::default(),
            flush_failures: Gauge::default(),
            requests: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            registry: Registry::default(),
        };
        registry.register(
            "records_accepted",
            "Records (spans, log entries, samples) accepted and stored",
            t.accepted.clone(),
        );
        registry.register(
            "records_refused",
            "Records refused: invalid, or refused for backpressure",
            t.refused.clone(),
        );
        registry.register(
            "wal_fsync_duration_seconds",
            "Latency of WAL group-commit fsyncs",
            t.wal_fsync.clone(),
        );
        registry.register(
            "wal_written_bytes",
            "Bytes written to the WAL",
            t.wal_written.clone(),
        );
        registry.register(
            "wal_disk_bytes",
            "Bytes of WAL files on disk",
            t.wal_disk.clone(),
        );
        registry.register(
            "head_bytes",
            "Bytes held by the in-memory head",
            t.head_bytes.clone(),
        );
        registry.register(
            "head_rows",
            "Rows held by the in-memory head",
            t.head_rows.clone(),
        );
        registry.register("segments", "Committed Parquet segments", t.segments.clone());
        registry.register(
            "segment_bytes",
            "Bytes of committed Parquet segments",
            t.segment_bytes.clone(),
        );
        registry.register(
            "segments_written",
            "Parquet segments written by flushes",
            t.segments_written.clone(),
        );
        registry.register(
            "flush_duration_seconds",
            "Duration of head flushes",
            t.flush_duration.clone(),
        );
        registry.register(
            "memory_used_bytes",
            "Bytes held against the memory budget",
            t.memory_used.clone(),
        );
        registry.register(
            "memory_limit_bytes",
            "The memory budget (--max-memory)",
            t.memory_limit.clone(),
        );
        registry.register(
            "flush_failures",
            "Flushes that failed since start",
            t.flush_failures.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request duration per endpoint",
            t.requests.clone(),
        );
        Telemetry {
            registry: root,
            ..t
        }
    }

    /// The root registry, for metrics whose documented names carry no `seam_` prefix.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Counts records accepted and refused.
    pub fn records(&self, signal: Signal, protocol: Protocol, accepted: u64, refused: u64) {
        let l = RecordLabels {
            signal: signal.as_str().into(),
            protocol: protocol.as_str().into(),
        };
        if accepted > 0 {
            self.accepted.get_or_create(&l).inc_by(accepted);
        }
        if refused > 0 {
            self.refused.get_or_create(&l).inc_by(refused);
        }
    }

    /// Records one HTTP request.
    pub fn request(&self, endpoint: &str, method: &str, status: u16, d: Duration) {
        let l = RequestLabels {
            endpoint: endpoint.to_string(),
            method: method.to_string(),
            status: format!("{}xx", status / 100),
        };
        self.requests.get_or_create(&l).observe(d.as_secs_f64());
    }

    /// Renders the text exposition, refreshing the gauges from `stats` first.
    pub fn render(&self, stats: Option<&StoreStats>) -> String {
        if let Some(s) = stats {
            self.wal_disk.set(s.wal_bytes as i64);
            self.head_bytes.set(s.head_bytes as i64);
            self.head_rows.set(s.head_rows as i64);
            self.segments.set(s.segments as i64);
            self.segment_bytes.set(s.segment_bytes as i64);
            self.memory_used.set(s.memory_used as i64);
            self.memory_limit.set(s.memory_limit as i64);
            self.flush_failures.set(s.flush_failures as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl StoreObserver for Telemetry {
    fn wal_commit(&self, bytes: u64, fsync: Option<Duration>) {
        self.wal_written.inc_by(bytes);
        if let Some(d) = fsync {
            self.wal_fsync.observe(d.as_secs_f64());
        }
    }

    fn flushed(&self, duration: Duration, segments: usize, _bytes: u64) {
        self.flush_duration.observe(duration.as_secs_f64());
        self.segments_written.inc_by(segments as u64);
    }
}
