//! OTLP metrics to Prometheus series, following the OpenTelemetry "Prometheus and OpenMetrics
//! compatibility" spec and what the Prometheus OTLP receiver does.
//!
//! - Names: invalid characters become `_`, repeated `_` collapse, units become word suffixes
//!   (`ms` -> `_milliseconds`, `By` -> `_bytes`, `m/s` -> `_meters_per_second`, `{packets}` is
//!   dropped), monotonic Sums end in `_total`, Gauges with unit `1` in `_ratio` (see [`metric_name`]).
//! - Sums: monotonic ones are counters; non-monotonic ones are gauges. Histograms become
//!   `_bucket{le}` (cumulative over `le`, always with `le="+Inf"`), `_sum` and `_count`; Summaries
//!   become `{quantile}` series, `_sum` and `_count`.
//! - Exponential histograms are refused (Seam stores no native histograms yet).
//! - Labels: point attributes (sanitised; colliding keys' values joined with `;`), then
//!   `otel_scope_name`/`otel_scope_version`, then `job` (`service.namespace/service.name`) and
//!   `instance` (`service.instance.id`), each later one winning. The other resource attributes go
//!   to one `target_info` series (value 1) per resource per request.
//! - Time: nanoseconds become milliseconds; a point flagged `NO_RECORDED_VALUE` becomes a stale
//!   marker.
//! - DELTA Sums and Histograms are accumulated into cumulative ones by [`PromConverter`].

mod delta;
mod naming;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use naming::{format_float, metric_name, PromKind};

use crate::attributes;
use crate::labels::{Label, Labels};
use crate::metrics::{Sample, SampleBatch, Series, METRIC_NAME, STALE_NAN_BITS};
use crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::otlp::common::v1::KeyValue;
use crate::otlp::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, DataPointFlags, HistogramDataPoint,
    Metric, NumberDataPoint, SummaryDataPoint,
};
use delta::{DeltaState, HistogramTotals};
use naming::attribute_labels;

/// The resource attributes that become `job` and `instance` rather than `target_info` labels.
const IDENTIFYING: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];

/// Converts OTLP metric requests to Prometheus samples, keeping running totals so DELTA Sums and
/// Histograms come out cumulative.
///
/// The running totals live in memory only and are keyed by (tenant, series labels). After a
/// process restart accumulation starts again from zero, so a delta series' cumulative value drops;
/// Prometheus `rate()` and `increase()` read that as an ordinary counter reset. Totals are bounded
/// by `max_series`: once that many delta series are tracked, points of further NEW delta series
/// are refused (counted in [`PromConversion::rejected_points`]) instead of growing without bound.
/// A delta point not newer than the last one accumulated for its series is refused too, so a
/// retried request is not counted twice.
pub struct PromConverter {
    // Locked only around delta points, so cumulative data from many requests converts in parallel.
    delta: std::sync::Mutex<DeltaState>,
}

/// The result of converting one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PromConversion {
    /// The series produced, in the order first seen; a series' samples are in input order.
    pub batch: SampleBatch,
    /// OTLP data points that produced no samples (for a metric with no data at all, 1).
    pub rejected_points: u64,
    /// Why the first rejected point was refused, naming it by its place in the request.
    pub first_error: Option<String>,
}

impl PromConverter {
    /// A converter that tracks at most `max_series` delta series.
    pub fn new(max_series: usize) -> Self {
        PromConverter {
            delta: std::sync::Mutex::new(DeltaState::new(max_series)),
        }
    }

    /// How many delta series have running totals.
    pub fn tracked_series(&self) -> usize {
        self.delta().len()
    }

    /// The delta state, locked; a panic while it was held left it consistent enough to go on.
    fn delta(&self) -> std::sync::MutexGuard<'_, DeltaState> {
        self.delta.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Converts one request. Never panics on odd input.
    pub fn convert(&self, tenant: &str, req: &ExportMetricsServiceRequest) -> PromConversion {
        let mut out = Out::default();
        for (ri, rm) in req.resource_metrics.iter().enumerate() {
            let res_attrs: &[KeyValue] = rm
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let target = target_labels(res_attrs);
            out.latest_ms = None;
            for (si, sm) in rm.scope_metrics.iter().enumerate() {
                let mut base: Vec<Label> = Vec::with_capacity(4);
                if let Some(scope) = &sm.scope {
                    base.push(Label::new("otel_scope_name", scope.name.as_str()));
                    base.push(Label::new("otel_scope_version", scope.version.as_str()));
                }
                base.extend(target.iter().cloned());
                for (mi, m) in sm.metrics.iter().enumerate() {
                    let cx = MetricCx {
                        tenant,
                        loc: (ri, si, mi),
                        metric: m,
                        base: &base,
                    };
                    self.convert_metric(&cx, &mut out);
                }
            }
            if let Some(ts) = out.latest_ms {
                let mut labels = attribute_labels(res_attrs, &IDENTIFYING);
                if labels.iter().any(|l| !l.value.is_empty()) {
                    labels.extend(target.iter().cloned());
                    labels.push(Label::new(METRIC_NAME, "target_info"));
                    out.push_unique(Labels::from_labels(labels), ts, 1.0);
                }
            }
        }
        PromConversion {
            batch: SampleBatch { series: out.series },
            rejected_points: out.rejected,
            first_error: out.first_error,
        }
    }

    fn convert_metric(&self, cx: &MetricCx<'_>, out: &mut Out) {
        let m = cx.metric;
        let (kind, points, temporality) = match &m.data {
            None => {
                out.reject(1, || {
                    cx.error(
                        None,
                        "metric has no data (none of gauge, sum, histogram, exponentialHistogram, \
                         summary is set)",
                    )
                });
                return;
            }
            Some(Data::ExponentialHistogram(h)) => {
                if h.data_points.is_empty() {
                    return;
                }
                out.reject(h.data_points.len() as u64, || {
                    cx.error(
                        None,
                        "exponential histograms are not supported (Seam does not store \
                         Prometheus native histograms yet; configure the SDK to use explicit \
                         bucket histograms)",
                    )
                });
                return;
            }
            Some(Data::Gauge(g)) => (PromKind::Gauge, g.data_points.len(), None),
            Some(Data::Sum(s)) => {
                let kind = if s.is_monotonic {
                    PromKind::Counter
                } else {
                    PromKind::UpDownCounter
                };
                (kind, s.data_points.len(), Some(s.aggregation_temporality))
            }
            Some(Data::Histogram(h)) => (
                PromKind::Histogram,
                h.data_points.len(),
                Some(h.aggregation_temporality),
            ),
            Some(Data::Summary(s)) => (PromKind::Summary, s.data_points.len(), None),
        };
        if points == 0 {
            return;
        }
        let Some(name) = metric_name(&m.name, &m.unit, kind) else {
            out.reject(points as u64, || {
                cx.error(None, "metric name is empty or has no valid character")
            });
            return;
        };
        let is_delta = match temporality {
            None => false,
            Some(t) if t == AggregationTemporality::Cumulative as i32 => false,
            Some(t) if t == AggregationTemporality::Delta as i32 => true,
            Some(t) => {
                out.reject(points as u64, || {
                    cx.error(
                        None,
                        &format!("aggregation temporality {t} is neither DELTA nor CUMULATIVE"),
                    )
                });
                return;
            }
        };
        match &m.data {
            Some(Data::Gauge(g)) => {
                for (pi, p) in g.data_points.iter().enumerate() {
                    self.number_point(cx, out, &name, false, pi, p);
                }
            }
            Some(Data::Sum(s)) => {
                for (pi, p) in s.data_points.iter().enumerate() {
                    self.number_point(cx, out, &name, is_delta, pi, p);
                }
            }
            Some(Data::Histogram(h)) => {
                for (pi, p) in h.data_points.iter().enumerate() {
                    self.histogram_point(cx, out, &name, is_delta, pi, p);
                }
            }
            Some(Data::Summary(s)) => {
                for (pi, p) in s.data_points.iter().enumerate() {
                    summary_point(cx, out, &name, pi, p);
                }
            }
            _ => {}
        }
    }

    fn number_point(
        &self,
        cx: &MetricCx<'_>,
        out: &mut Out,
        name: &str,
        is_delta: bool,
        pi: usize,
        p: &NumberDataPoint,
    ) {
        let Some(ts) = cx.timestamp(out, pi, p.time_unix_nano) else {
            return;
        };
        let stale = is_stale(p.flags);
        let value = match p.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            Some(number_data_point::Value::AsInt(v)) => v as f64,
            None if stale => 0.0,
            None => {
                out.reject(1, || cx.error(Some(pi), "data point has no value"));
                return;
            }
        };
        let labels = cx.labels(&p.attributes, name, None);
        let value = if stale {
            stale_nan()
        } else if is_delta && value.is_nan() {
            out.reject(1, || cx.error(Some(pi), "delta value is NaN"));
            return;
        } else if is_delta {
            match self
                .delta()
                .add_sum(cx.tenant, &labels, p.time_unix_nano, value)
            {
                Ok(total) => total,
                Err(e) => {
                    out.reject(1, || cx.error(Some(pi), &e));
                    return;
                }
            }
        } else {
            value
        };
        out.push(labels, ts, value);
    }

    fn histogram_point(
        &self,
        cx: &MetricCx<'_>,
        out: &mut Out,
        name: &str,
        is_delta: bool,
        pi: usize,
        p: &HistogramDataPoint,
    ) {
        let Some(ts) = cx.timestamp(out, pi, p.time_unix_nano) else {
            return;
        };
        let stale = is_stale(p.flags);
        if let Err(e) = check_buckets(p, stale) {
            out.reject(1, || cx.error(Some(pi), &e));
            return;
        }
        let mut totals = HistogramTotals {
            bounds: p.explicit_bounds.clone(),
            buckets: p.bucket_counts.clone(),
            count: p.count,
            sum: p.sum,
        };
        if is_delta && !stale {
            let key = cx.labels(&p.attributes, name, None);
            match self
                .delta()
                .add_histogram(cx.tenant, &key, p.time_unix_nano, totals)
            {
                Ok(t) => totals = t,
                Err(e) => {
                    out.reject(1, || cx.error(Some(pi), &e));
                    return;
                }
            }
        }
        let value = |v: f64| if stale { stale_nan() } else { v };
        let bucket_name = format!("{name}_bucket");
        let mut cumulative: u64 = 0;
        if stale || !totals.buckets.is_empty() {
            for (i, &bound) in totals.bounds.iter().enumerate() {
                if bound == f64::INFINITY {
                    continue;
                }
                cumulative = cumulative.saturating_add(totals.buckets.get(i).copied().unwrap_or(0));
                let le = Label::new("le", format_float(bound));
                let labels = cx.labels(&p.attributes, &bucket_name, Some(le));
                out.push(labels, ts, value(cumulative as f64));
            }
        }
        let inf = Label::new("le", "+Inf");
        let labels = cx.labels(&p.attributes, &bucket_name, Some(inf));
        out.push(labels, ts, value(totals.count as f64));
        if stale || totals.sum.is_some() {
            let labels = cx.labels(&p.attributes, &format!("{name}_sum"), None);
            out.push(labels, ts, value(totals.sum.unwrap_or(0.0)));
        }
        let labels = cx.labels(&p.attributes, &format!("{name}_count"), None);
        out.push(labels, ts, value(totals.count as f64));
    }
}

fn summary_point(cx: &MetricCx<'_>, out: &mut Out, name: &str, pi: usize, p: &SummaryDataPoint) {
    let Some(ts) = cx.timestamp(out, pi, p.time_unix_nano) else {
        return;
    };
    let stale = is_stale(p.flags);
    let value = |v: f64| if stale { stale_nan() } else { v };
    for q in &p.quantile_values {
        let quantile = Label::new("quantile", format_float(q.quantile));
        let labels = cx.labels(&p.attributes, name, Some(quantile));
        out.push(labels, ts, value(q.value));
    }
    let labels = cx.labels(&p.attributes, &format!("{name}_sum"), None);
    out.push(labels, ts, value(p.sum));
    let labels = cx.labels(&p.attributes, &format!("{name}_count"), None);
    out.push(labels, ts, value(p.count as f64));
}

/// Checks a histogram point's bucket layout: bounds strictly increasing and not NaN, and either no
/// bucket counts or one more count than bounds (stale points may leave the counts out).
fn check_buckets(p: &HistogramDataPoint, stale: bool) -> Result<(), String> {
    let bounds = &p.explicit_bounds;
    if bounds.iter().any(|b| b.is_nan()) {
        return Err("explicit_bounds contains NaN".to_string());
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("explicit_bounds are not strictly increasing".to_string());
    }
    let n = p.bucket_counts.len();
    if n != 0 && n != bounds.len() + 1 && !stale {
        return Err(format!(
            "bucket_counts has {n} entries but explicit_bounds has {} (want one more count than bounds)",
            bounds.len()
        ));
    }
    Ok(())
}

fn is_stale(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// `job` and `instance` from a resource's service attributes, when present.
fn target_labels(res_attrs: &[KeyValue]) -> Vec<Label> {
    let text = |key: &str| {
        attributes::find(res_attrs, key)
            .map(attributes::to_text)
            .filter(|s| !s.is_empty())
    };
    let mut out = Vec::with_capacity(2);
    if let Some(name) = text("service.name") {
        let job = match text("service.namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        out.push(Label::new("job", job));
    }
    if let Some(instance) = text("service.instance.id") {
        out.push(Label::new("instance", instance));
    }
    out
}

/// What converting one metric needs to know about where it sits.
struct MetricCx<'a> {
    tenant: &'a str,
    loc: (usize, usize, usize),
    metric: &'a Metric,
    /// Scope, `job` and `instance` labels, applied over the point attributes.
    base: &'a [Label],
}

impl MetricCx<'_> {
    /// An error naming the metric (and the data point, if given).
    fn error(&self, point: Option<usize>, reason: &str) -> String {
        let (r, s, m) = self.loc;
        let point = point
            .map(|p| format!(".dataPoints[{p}]"))
            .unwrap_or_default();
        format!(
            "resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]{point} {:?}: {reason}",
            self.metric.name
        )
    }

    /// The point's time in milliseconds, or a rejection when it has none.
    fn timestamp(&self, out: &mut Out, pi: usize, time_ns: u64) -> Option<i64> {
        if time_ns == 0 {
            out.reject(1, || {
                self.error(Some(pi), "data point has no time_unix_nano")
            });
            return None;
        }
        // u64 nanoseconds / 1e6 always fits in i64.
        Some((time_ns / 1_000_000) as i64)
    }

    /// A series' labels: attributes, then scope/job/instance, then `extra` (`le` or `quantile`),
    /// then the metric name, later ones winning.
    fn labels(&self, attrs: &[KeyValue], name: &str, extra: Option<Label>) -> Labels {
        let mut v = attribute_labels(attrs, &[]);
        v.reserve(self.base.len() + 2);
        v.extend(self.base.iter().cloned());
        v.extend(extra);
        v.push(Label::new(METRIC_NAME, name));
        Labels::from_labels(v)
    }
}

/// The batch being built.
#[derive(Default)]
struct Out {
    series: Vec<Series>,
    index: HashMap<Labels, usize>,
    rejected: u64,
    first_error: Option<String>,
    /// The latest sample time of the current resource.
    latest_ms: Option<i64>,
}

impl Out {
    fn push(&mut self, labels: Labels, timestamp_ms: i64, value: f64) {
        self.latest_ms = Some(self.latest_ms.map_or(timestamp_ms, |t| t.max(timestamp_ms)));
        let sample = Sample {
            timestamp_ms,
            value,
        };
        match self.index.get(&labels) {
            Some(&i) => self.series[i].samples.push(sample),
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push(Series::new(labels, vec![sample]));
            }
        }
    }

    /// Like [`Out::push`], but no second sample at a time the series already has (for
    /// `target_info`, which several resources of one request may share).
    fn push_unique(&mut self, labels: Labels, timestamp_ms: i64, value: f64) {
        if let Some(&i) = self.index.get(&labels) {
            if self.series[i]
                .samples
                .iter()
                .any(|s| s.timestamp_ms == timestamp_ms)
            {
                return;
            }
        }
        self.push(labels, timestamp_ms, value);
    }

    fn reject(&mut self, points: u64, error: impl FnOnce() -> String) {
        self.rejected += points;
        if self.first_error.is_none() {
            self.first_error = Some(error());
        }
    }
}
