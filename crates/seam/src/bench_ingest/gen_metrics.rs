//! Metric payloads: what one export interval of the shop's pods carries — HTTP server and client
//! duration histograms, process and runtime gauges and counters, connection pools and business
//! counters, all cumulative. Every pool entry gets its own pods, so the pool holds distinct series.

use rand::seq::IndexedRandom;
use rand::Rng;
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use seam_model::otlp::common::v1::KeyValue;
use seam_model::otlp::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};

use super::payload::{resource, scope, SERVICES};

/// Bucket bounds of the HTTP duration histograms, in seconds (the semantic conventions' advice).
const BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

const STATUSES: &[i64] = &[200, 200, 200, 404, 500];

/// Pods each pool entry describes per service (distinct per entry).
const PODS_PER_ENTRY: usize = 1000;

/// A request of at least `batch` data points (it ends with a whole pod), the number of points,
/// and the `time_unix_nano` every point carries.
pub fn request(
    rng: &mut impl Rng,
    batch: usize,
    now: u64,
    entry: usize,
) -> (ExportMetricsServiceRequest, u64, u64) {
    let t = now;
    let start = now - 3_600_000_000_000;
    let mut resource_metrics = Vec::new();
    let mut points = 0u64;
    let mut k = 0;
    while (points as usize) < batch {
        let svc = k % SERVICES.len();
        let pod = entry * PODS_PER_ENTRY + k / SERVICES.len();
        k += 1;
        let (metrics, n) = pod_metrics(rng, svc, start, t);
        points += n;
        resource_metrics.push(ResourceMetrics {
            resource: Some(resource(svc, pod)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope(svc)),
                metrics,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        });
    }
    (ExportMetricsServiceRequest { resource_metrics }, points, t)
}

struct Pt {
    start: u64,
    t: u64,
}

impl Pt {
    fn number(&self, attributes: Vec<KeyValue>, v: number_data_point::Value) -> NumberDataPoint {
        NumberDataPoint {
            attributes,
            start_time_unix_nano: self.start,
            time_unix_nano: self.t,
            value: Some(v),
            ..Default::default()
        }
    }
}

fn sum(name: &str, unit: &str, monotonic: bool, data_points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: String::new(),
        unit: unit.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn gauge(name: &str, unit: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Gauge(Gauge { data_points })),
        ..Default::default()
    }
}

fn histogram(rng: &mut impl Rng, pt: &Pt, attributes: Vec<KeyValue>) -> HistogramDataPoint {
    let total = rng.random_range(50..200_000u64);
    // A log-normal-ish shape: most requests in the low buckets.
    let mut left = total;
    let mut bucket_counts = Vec::with_capacity(BOUNDS.len() + 1);
    for i in 0..=BOUNDS.len() {
        let c = if i == BOUNDS.len() {
            left
        } else {
            (left as f64 * rng.random_range(0.05..0.45)) as u64
        };
        bucket_counts.push(c);
        left -= c;
    }
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: pt.start,
        time_unix_nano: pt.t,
        count: total,
        sum: Some(total as f64 * rng.random_range(0.01..0.3)),
        bucket_counts,
        explicit_bounds: BOUNDS.to_vec(),
        min: Some(0.0008),
        max: Some(rng.random_range(0.5..12.0)),
        ..Default::default()
    }
}

/// One pod's metrics and how many data points they hold.
fn pod_metrics(rng: &mut impl Rng, svc: usize, start: u64, t: u64) -> (Vec<Metric>, u64) {
    use number_data_point::Value::{AsDouble, AsInt};
    let s = &SERVICES[svc];
    let pt = Pt { start, t };
    let mut out = Vec::new();

    let mut server = Vec::new();
    for &(method, route) in s.routes {
        for &code in STATUSES.iter().skip(2) {
            let code = if code == 404 && rng.random_bool(0.5) {
                200
            } else {
                code
            };
            server.push(histogram(
                rng,
                &pt,
                vec![
                    string_kv("http.request.method", method),
                    string_kv("http.route", route),
                    int_kv("http.response.status_code", code),
                    string_kv("url.scheme", "http"),
                    string_kv("network.protocol.version", "1.1"),
                ],
            ));
        }
    }
    let mut client = Vec::new();
    for &target in s.calls {
        let method = s.routes.choose(rng).expect("routes").0;
        for code in [200, 503] {
            client.push(histogram(
                rng,
                &pt,
                vec![
                    string_kv("http.request.method", method),
                    string_kv(
                        "server.address",
                        &format!("{}.shop.svc", SERVICES[target].name),
                    ),
                    int_kv("server.port", 8080),
                    int_kv("http.response.status_code", code),
                ],
            ));
        }
    }
    out.push(Metric {
        name: "http.server.request.duration".into(),
        description: "Duration of HTTP server requests.".into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: server,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    });
    if !client.is_empty() {
        out.push(Metric {
            name: "http.client.request.duration".into(),
            description: "Duration of HTTP client requests.".into(),
            unit: "s".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: client,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        });
    }
    out.push(sum(
        "http.server.active_requests",
        "{request}",
        false,
        vec![pt.number(
            vec![
                string_kv("http.request.method", "GET"),
                string_kv("url.scheme", "http"),
            ],
            AsInt(rng.random_range(0..40)),
        )],
    ));
    out.push(sum(
        "process.cpu.time",
        "s",
        true,
        ["user", "system"]
            .iter()
            .map(|m| {
                pt.number(
                    vec![string_kv("cpu.mode", m)],
                    AsDouble(rng.random_range(100.0..9000.0)),
                )
            })
            .collect(),
    ));
    out.push(gauge(
        "process.memory.usage",
        "By",
        vec![pt.number(vec![], AsInt(rng.random_range(80_000_000..900_000_000)))],
    ));
    out.push(gauge(
        "process.cpu.utilization",
        "1",
        vec![pt.number(vec![], AsDouble(rng.random_range(0.01..0.95)))],
    ));
    out.push(sum(
        "process.thread.count",
        "{thread}",
        false,
        vec![pt.number(vec![], AsInt(rng.random_range(8..200)))],
    ));
    if let Some((system, host)) = s.db {
        out.push(sum(
            "db.client.connection.count",
            "{connection}",
            false,
            ["idle", "used"]
                .iter()
                .map(|st| {
                    pt.number(
                        vec![
                            string_kv("db.client.connection.state", st),
                            string_kv(
                                "db.client.connection.pool.name",
                                &format!("{system}://{host}/shop"),
                            ),
                        ],
                        AsInt(rng.random_range(0..20)),
                    )
                })
                .collect(),
        ));
        out.push(histogram_metric(
            "db.client.operation.duration",
            ["SELECT", "INSERT", "UPDATE"]
                .iter()
                .map(|op| {
                    histogram(
                        rng,
                        &pt,
                        vec![
                            string_kv("db.system.name", system),
                            string_kv("db.operation.name", op),
                            string_kv("server.address", host),
                        ],
                    )
                })
                .collect(),
        ));
    }
    match s.language {
        "java" => {
            let pools = [
                ("heap", "G1 Eden Space"),
                ("heap", "G1 Old Gen"),
                ("heap", "G1 Survivor Space"),
                ("non_heap", "Metaspace"),
                ("non_heap", "CodeCache"),
            ];
            out.push(sum(
                "jvm.memory.used",
                "By",
                false,
                pools
                    .iter()
                    .map(|(ty, pool)| {
                        pt.number(
                            vec![
                                string_kv("jvm.memory.type", ty),
                                string_kv("jvm.memory.pool.name", pool),
                            ],
                            AsInt(rng.random_range(1_000_000..500_000_000)),
                        )
                    })
                    .collect(),
            ));
            out.push(sum(
                "jvm.gc.duration",
                "s",
                true,
                vec![pt.number(
                    vec![
                        string_kv("jvm.gc.name", "G1 Young Generation"),
                        string_kv("jvm.gc.action", "end of minor GC"),
                    ],
                    AsDouble(rng.random_range(1.0..300.0)),
                )],
            ));
        }
        "go" => {
            out.push(sum(
                "go.goroutine.count",
                "{goroutine}",
                false,
                vec![pt.number(vec![], AsInt(rng.random_range(20..3000)))],
            ));
            out.push(sum(
                "go.memory.used",
                "By",
                false,
                vec![pt.number(
                    vec![string_kv("go.memory.type", "other")],
                    AsInt(rng.random_range(10_000_000..200_000_000)),
                )],
            ));
        }
        _ => {}
    }
    out.push(sum(
        "app.cache.requests",
        "{request}",
        true,
        ["hit", "miss"]
            .iter()
            .map(|r| {
                pt.number(
                    vec![
                        string_kv("cache.result", r),
                        string_kv("cache.name", "products"),
                    ],
                    AsInt(rng.random_range(1000..9_000_000)),
                )
            })
            .collect(),
    ));
    if svc == 2 {
        out.push(sum(
            "shop.orders.placed",
            "{order}",
            true,
            ["card", "paypal", "invoice"]
                .iter()
                .map(|m| {
                    pt.number(
                        vec![
                            string_kv("payment.method", m),
                            string_kv("shop.region", "eu"),
                        ],
                        AsInt(rng.random_range(100..50_000)),
                    )
                })
                .collect(),
        ));
    }
    let n = out.iter().map(points).sum();
    (out, n)
}

fn histogram_metric(name: &str, data_points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    }
}

fn points(m: &Metric) -> u64 {
    (match &m.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        _ => 0,
    }) as u64
}
