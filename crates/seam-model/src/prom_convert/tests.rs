use super::*;
use crate::attributes::{int_kv, string_kv};
use crate::otlp::common::v1::InstrumentationScope;
use crate::otlp::metrics::v1::{
    summary_data_point::ValueAtQuantile, ExponentialHistogram, ExponentialHistogramDataPoint,
    Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use crate::otlp::resource::v1::Resource;

const T1: u64 = 1_700_000_000_123_456_789;
const T1_MS: i64 = 1_700_000_000_123;
const T2: u64 = T1 + 10_000_000_000;
const T2_MS: i64 = T1_MS + 10_000;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn num(time: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: T1 - 1_000_000_000,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn sum(monotonic: bool, temporality: i32, points: Vec<NumberDataPoint>) -> Data {
    Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
    })
}

fn gauge(points: Vec<NumberDataPoint>) -> Data {
    Data::Gauge(Gauge {
        data_points: points,
    })
}

fn hist(
    time: u64,
    bounds: &[f64],
    counts: &[u64],
    sum: f64,
    attrs: Vec<KeyValue>,
) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attrs,
        start_time_unix_nano: T1 - 1_000_000_000,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

fn histogram(temporality: i32, points: Vec<HistogramDataPoint>) -> Data {
    Data::Histogram(Histogram {
        data_points: points,
        aggregation_temporality: temporality,
    })
}

fn scope() -> Vec<(&'static str, &'static str)> {
    vec![("otel_scope_name", "lib"), ("otel_scope_version", "1.2")]
}

/// Labels from pairs plus the scope labels every test series carries.
fn with_scope(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(scope().into_iter().chain(pairs.iter().copied()))
}

/// The batch as (labels, samples), for exact comparison.
fn series(c: &PromConversion) -> Vec<(Labels, Vec<(i64, f64)>)> {
    c.batch
        .series
        .iter()
        .map(|s| {
            let samples = s
                .samples
                .iter()
                .map(|x| (x.timestamp_ms, x.value))
                .collect();
            (s.label_set(), samples)
        })
        .collect()
}

fn convert(req: &ExportMetricsServiceRequest) -> PromConversion {
    PromConverter::new(100).convert("t", req)
}

#[test]
fn metric_names() {
    use PromKind::*;
    let cases = [
        (
            "http.server.duration",
            "ms",
            Histogram,
            "http_server_duration_milliseconds",
        ),
        (
            "http.server.request.duration",
            "s",
            Histogram,
            "http_server_request_duration_seconds",
        ),
        ("latency_seconds", "s", Histogram, "latency_seconds"),
        ("a..b__c-", "", Gauge, "a_b_c"),
        ("2xx.count", "", Gauge, "_2xx_count"),
        ("ns:name", "", Gauge, "ns:name"),
        ("speed", "m/s", Gauge, "speed_meters_per_second"),
        ("bytes_per_second", "By/s", Gauge, "bytes_per_second"),
        ("io", "By/s", Counter, "io_bytes_per_second_total"),
        ("mem", "KiBy", Gauge, "mem_kibibytes"),
        ("disk", "By", UpDownCounter, "disk_bytes"),
        ("packets", "{packets}", Counter, "packets_total"),
        ("errors", "{error}/s", Gauge, "errors_per_second"),
        ("requests_total", "1", Counter, "requests_total"),
        ("total.requests", "", Counter, "requests_total"),
        ("cpu.utilization", "1", Gauge, "cpu_utilization_ratio"),
        ("queue.size", "1", UpDownCounter, "queue_size"),
        ("temp", "Cel", Gauge, "temp_celsius"),
        ("load", "%", Gauge, "load_percent"),
        ("work", "widgets", Summary, "work_widgets"),
    ];
    for (name, unit, kind, want) in cases {
        assert_eq!(
            metric_name(name, unit, kind).as_deref(),
            Some(want),
            "{name} {unit}"
        );
    }
    assert_eq!(metric_name("...", "s", Gauge), None);
    assert_eq!(metric_name("", "", Counter), None);
}

#[test]
fn float_format() {
    assert_eq!(format_float(0.005), "0.005");
    assert_eq!(format_float(1.0), "1");
    assert_eq!(format_float(2.5), "2.5");
    assert_eq!(format_float(100000.0), "100000");
    assert_eq!(format_float(1e-7), "0.0000001");
    assert_eq!(format_float(f64::INFINITY), "+Inf");
    assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
}

#[test]
fn counter_gets_total() {
    let req = request(
        vec![],
        vec![metric(
            "http.requests",
            "{request}",
            sum(
                true,
                CUMULATIVE,
                vec![num(T1, 7.0, vec![string_kv("http.method", "GET")])],
            ),
        )],
    );
    let c = convert(&req);
    assert_eq!(c.rejected_points, 0);
    assert_eq!(c.first_error, None);
    assert_eq!(
        series(&c),
        vec![(
            with_scope(&[("__name__", "http_requests_total"), ("http_method", "GET")]),
            vec![(T1_MS, 7.0)]
        )]
    );
}

#[test]
fn int_values_and_several_points_share_a_series() {
    let mut p1 = num(T1, 0.0, vec![]);
    p1.value = Some(number_data_point::Value::AsInt(3));
    let mut p2 = num(T2, 0.0, vec![]);
    p2.value = Some(number_data_point::Value::AsInt(5));
    let req = request(
        vec![],
        vec![metric("c", "", sum(true, CUMULATIVE, vec![p1, p2]))],
    );
    assert_eq!(
        series(&convert(&req)),
        vec![(
            with_scope(&[("__name__", "c_total")]),
            vec![(T1_MS, 3.0), (T2_MS, 5.0)]
        )]
    );
}

#[test]
fn histogram_buckets_are_cumulative_with_unit_suffix() {
    let p = hist(
        T1,
        &[0.005, 1.0, 2.5],
        &[1, 2, 0, 3],
        12.5,
        vec![string_kv("route", "/a")],
    );
    let req = request(
        vec![],
        vec![metric(
            "http.duration",
            "ms",
            histogram(CUMULATIVE, vec![p]),
        )],
    );
    let c = convert(&req);
    let b = "http_duration_milliseconds_bucket";
    let l = |name: &str, le: Option<&str>| {
        let mut v = vec![("__name__", name), ("route", "/a")];
        if let Some(le) = le {
            v.push(("le", le));
        }
        with_scope(&v)
    };
    assert_eq!(
        series(&c),
        vec![
            (l(b, Some("0.005")), vec![(T1_MS, 1.0)]),
            (l(b, Some("1")), vec![(T1_MS, 3.0)]),
            (l(b, Some("2.5")), vec![(T1_MS, 3.0)]),
            (l(b, Some("+Inf")), vec![(T1_MS, 6.0)]),
            (
                l("http_duration_milliseconds_sum", None),
                vec![(T1_MS, 12.5)]
            ),
            (
                l("http_duration_milliseconds_count", None),
                vec![(T1_MS, 6.0)]
            ),
        ]
    );
}

#[test]
fn histogram_without_buckets_or_sum_and_with_inf_bound() {
    let mut p = hist(T1, &[], &[], 0.0, vec![]);
    p.count = 4;
    p.sum = None;
    let q = hist(
        T1,
        &[1.0, f64::INFINITY],
        &[1, 2, 0],
        3.0,
        vec![string_kv("k", "v")],
    );
    let req = request(
        vec![],
        vec![metric("h", "", histogram(CUMULATIVE, vec![p, q]))],
    );
    let c = convert(&req);
    assert_eq!(c.rejected_points, 0);
    assert_eq!(
        series(&c),
        vec![
            (
                with_scope(&[("__name__", "h_bucket"), ("le", "+Inf")]),
                vec![(T1_MS, 4.0)]
            ),
            (with_scope(&[("__name__", "h_count")]), vec![(T1_MS, 4.0)]),
            (
                with_scope(&[("__name__", "h_bucket"), ("le", "1"), ("k", "v")]),
                vec![(T1_MS, 1.0)]
            ),
            (
                with_scope(&[("__name__", "h_bucket"), ("le", "+Inf"), ("k", "v")]),
                vec![(T1_MS, 3.0)]
            ),
            (
                with_scope(&[("__name__", "h_sum"), ("k", "v")]),
                vec![(T1_MS, 3.0)]
            ),
            (
                with_scope(&[("__name__", "h_count"), ("k", "v")]),
                vec![(T1_MS, 3.0)]
            ),
        ]
    );
}

#[test]
fn bad_histograms_are_rejected() {
    let wrong_len = hist(T1, &[1.0, 2.0], &[1, 2], 1.0, vec![]);
    let unsorted = hist(T1, &[2.0, 1.0], &[1, 2, 3], 1.0, vec![]);
    let nan = hist(T1, &[f64::NAN], &[1, 2], 1.0, vec![]);
    let req = request(
        vec![],
        vec![metric(
            "h",
            "",
            histogram(CUMULATIVE, vec![wrong_len, unsorted, nan]),
        )],
    );
    let c = convert(&req);
    assert!(c.batch.series.is_empty());
    assert_eq!(c.rejected_points, 3);
    assert_eq!(
        c.first_error.as_deref(),
        Some(
            "resourceMetrics[0].scopeMetrics[0].metrics[0].dataPoints[0] \"h\": bucket_counts has \
             2 entries but explicit_bounds has 2 (want one more count than bounds)"
        )
    );
}

#[test]
fn summary_quantiles() {
    let p = SummaryDataPoint {
        time_unix_nano: T1,
        count: 10,
        sum: 42.0,
        quantile_values: vec![
            ValueAtQuantile {
                quantile: 0.5,
                value: 3.0,
            },
            ValueAtQuantile {
                quantile: 0.99,
                value: 9.0,
            },
        ],
        ..Default::default()
    };
    let req = request(
        vec![],
        vec![metric(
            "rpc.latency",
            "s",
            Data::Summary(Summary {
                data_points: vec![p],
            }),
        )],
    );
    assert_eq!(
        series(&convert(&req)),
        vec![
            (
                with_scope(&[("__name__", "rpc_latency_seconds"), ("quantile", "0.5")]),
                vec![(T1_MS, 3.0)]
            ),
            (
                with_scope(&[("__name__", "rpc_latency_seconds"), ("quantile", "0.99")]),
                vec![(T1_MS, 9.0)]
            ),
            (
                with_scope(&[("__name__", "rpc_latency_seconds_sum")]),
                vec![(T1_MS, 42.0)]
            ),
            (
                with_scope(&[("__name__", "rpc_latency_seconds_count")]),
                vec![(T1_MS, 10.0)]
            ),
        ]
    );
}

#[test]
fn up_down_counter_is_a_gauge() {
    let req = request(
        vec![],
        vec![metric(
            "queue.items",
            "{item}",
            sum(false, CUMULATIVE, vec![num(T1, -2.0, vec![])]),
        )],
    );
    assert_eq!(
        series(&convert(&req)),
        vec![(
            with_scope(&[("__name__", "queue_items")]),
            vec![(T1_MS, -2.0)]
        )]
    );
}

#[test]
fn gauge_with_unit_one_is_a_ratio() {
    let req = request(
        vec![],
        vec![metric(
            "cpu.utilization",
            "1",
            gauge(vec![num(T1, 0.25, vec![])]),
        )],
    );
    assert_eq!(
        series(&convert(&req)),
        vec![(
            with_scope(&[("__name__", "cpu_utilization_ratio")]),
            vec![(T1_MS, 0.25)]
        )]
    );
}

#[test]
fn job_instance_and_target_info() {
    let resource = vec![
        string_kv("service.name", "checkout"),
        string_kv("service.namespace", "shop"),
        string_kv("service.instance.id", "pod-1"),
        string_kv("host.name", "h1"),
        int_kv("process.pid", 42),
    ];
    let req = request(
        resource,
        vec![
            metric(
                "g",
                "",
                gauge(vec![num(T2, 1.0, vec![string_kv("job", "x")])]),
            ),
            metric("h", "", gauge(vec![num(T1, 2.0, vec![])])),
        ],
    );
    let c = convert(&req);
    let ji = [("job", "shop/checkout"), ("instance", "pod-1")];
    let with = |extra: &[(&'static str, &'static str)]| {
        with_scope(&ji.iter().chain(extra).copied().collect::<Vec<_>>())
    };
    assert_eq!(
        series(&c),
        vec![
            (with(&[("__name__", "g")]), vec![(T2_MS, 1.0)]),
            (with(&[("__name__", "h")]), vec![(T1_MS, 2.0)]),
            (
                Labels::from_pairs(ji.iter().copied().chain([
                    ("__name__", "target_info"),
                    ("host_name", "h1"),
                    ("process_pid", "42"),
                ])),
                vec![(T2_MS, 1.0)]
            ),
        ]
    );
}

#[test]
fn job_without_namespace_and_no_target_info_without_other_attributes() {
    let req = request(
        vec![string_kv("service.name", "svc")],
        vec![metric("g", "", gauge(vec![num(T1, 1.0, vec![])]))],
    );
    assert_eq!(
        series(&convert(&req)),
        vec![(
            with_scope(&[("__name__", "g"), ("job", "svc")]),
            vec![(T1_MS, 1.0)]
        )]
    );
}

#[test]
fn delta_sums_accumulate_across_calls() {
    let conv = PromConverter::new(10);
    let req = |t: u64, v: f64| {
        request(
            vec![],
            vec![metric(
                "reqs",
                "",
                sum(true, DELTA, vec![num(t, v, vec![])]),
            )],
        )
    };
    let want = |v: f64, ts: i64| vec![(with_scope(&[("__name__", "reqs_total")]), vec![(ts, v)])];
    assert_eq!(series(&conv.convert("a", &req(T1, 5.0))), want(5.0, T1_MS));
    assert_eq!(series(&conv.convert("a", &req(T2, 3.0))), want(8.0, T2_MS));
    // Another tenant has its own totals.
    assert_eq!(series(&conv.convert("b", &req(T2, 1.0))), want(1.0, T2_MS));
    assert_eq!(conv.tracked_series(), 2);
    // A repeated (retried) point is not counted twice.
    let c = conv.convert("a", &req(T2, 3.0));
    assert!(c.batch.series.is_empty());
    assert_eq!(c.rejected_points, 1);
    assert!(c.first_error.unwrap().contains("not after the last point"));
    assert_eq!(
        series(&conv.convert("a", &req(T2 + 1_000_000, 2.0))),
        want(10.0, T2_MS + 1)
    );
}

#[test]
fn delta_histograms_accumulate_and_reset_on_new_bounds() {
    let conv = PromConverter::new(10);
    let req = |t: u64, bounds: &[f64], counts: &[u64], s: f64| {
        request(
            vec![],
            vec![metric(
                "d",
                "s",
                histogram(DELTA, vec![hist(t, bounds, counts, s, vec![])]),
            )],
        )
    };
    let values = |c: &PromConversion| {
        c.batch
            .series
            .iter()
            .map(|s| {
                let l = s.label_set();
                let name = format!(
                    "{}{}",
                    l.get("__name__").unwrap(),
                    l.get("le").unwrap_or("")
                );
                (name, s.samples[0].value)
            })
            .collect::<Vec<_>>()
    };
    conv.convert("t", &req(T1, &[1.0], &[1, 2], 4.0));
    let c = conv.convert("t", &req(T2, &[1.0], &[3, 0], 1.5));
    assert_eq!(
        values(&c),
        vec![
            ("d_seconds_bucket1".to_string(), 4.0),
            ("d_seconds_bucket+Inf".to_string(), 6.0),
            ("d_seconds_sum".to_string(), 5.5),
            ("d_seconds_count".to_string(), 6.0),
        ]
    );
    // New bounds: the series starts over from this point.
    let c = conv.convert("t", &req(T2 + 1_000_000, &[2.0], &[1, 1], 0.5));
    assert_eq!(
        values(&c),
        vec![
            ("d_seconds_bucket2".to_string(), 1.0),
            ("d_seconds_bucket+Inf".to_string(), 2.0),
            ("d_seconds_sum".to_string(), 0.5),
            ("d_seconds_count".to_string(), 2.0),
        ]
    );
    assert_eq!(conv.tracked_series(), 1);
}

#[test]
fn delta_series_are_capped() {
    let conv = PromConverter::new(1);
    let req = |t: u64, v: &str| {
        request(
            vec![],
            vec![metric(
                "reqs",
                "",
                sum(true, DELTA, vec![num(t, 1.0, vec![string_kv("k", v)])]),
            )],
        )
    };
    assert_eq!(conv.convert("t", &req(T1, "a")).rejected_points, 0);
    let c = conv.convert("t", &req(T1, "b"));
    assert!(c.batch.series.is_empty());
    assert_eq!(c.rejected_points, 1);
    assert_eq!(
        c.first_error.as_deref(),
        Some(
            "resourceMetrics[0].scopeMetrics[0].metrics[0].dataPoints[0] \"reqs\": too many delta \
             series to accumulate (limit 1): new DELTA series are refused; send CUMULATIVE \
             temporality instead"
        )
    );
    // The tracked series keeps accumulating; cumulative data is not limited.
    let c = conv.convert("t", &req(T2, "a"));
    assert_eq!(c.batch.series[0].samples[0].value, 2.0);
    let cumulative = request(
        vec![],
        vec![metric(
            "c",
            "",
            sum(true, CUMULATIVE, vec![num(T1, 1.0, vec![])]),
        )],
    );
    assert_eq!(conv.convert("t", &cumulative).rejected_points, 0);
    assert_eq!(conv.tracked_series(), 1);
}

#[test]
fn colliding_attributes_are_joined() {
    let attrs = vec![
        string_kv("a_b", "2"),
        string_kv("a.b", "1"),
        string_kv("a-b", "3"),
        string_kv("__name__", "evil"),
        string_kv("otel_scope_name", "overridden"),
    ];
    let req = request(
        vec![],
        vec![metric("g", "", gauge(vec![num(T1, 1.0, attrs)]))],
    );
    assert_eq!(
        series(&convert(&req)),
        vec![(
            with_scope(&[("__name__", "g"), ("a_b", "3;1;2"), ("key__name__", "evil")]),
            vec![(T1_MS, 1.0)]
        )]
    );
}

#[test]
fn no_recorded_value_is_a_stale_marker() {
    let mut p = num(T1, 0.0, vec![]);
    p.value = None;
    p.flags = DataPointFlags::NoRecordedValueMask as u32;
    let mut h = hist(T1, &[1.0], &[], 0.0, vec![]);
    h.sum = None;
    h.flags = DataPointFlags::NoRecordedValueMask as u32;
    let req = request(
        vec![],
        vec![
            metric("g", "", gauge(vec![p])),
            metric("h", "", histogram(DELTA, vec![h])),
        ],
    );
    let c = convert(&req);
    assert_eq!(c.rejected_points, 0);
    let names: Vec<String> = c
        .batch
        .series
        .iter()
        .map(|s| s.label_set().to_string())
        .collect();
    assert_eq!(
        names.len(),
        5,
        "g, h_bucket{{le=1}}, h_bucket{{le=+Inf}}, h_sum, h_count: {names:?}"
    );
    for s in &c.batch.series {
        assert_eq!(s.samples.len(), 1);
        assert_eq!(s.samples[0].timestamp_ms, T1_MS);
        assert_eq!(s.samples[0].value.to_bits(), STALE_NAN_BITS);
    }
}

#[test]
fn unsupported_and_invalid_metrics_are_rejected_with_their_place() {
    let exp = metric(
        "http.duration",
        "s",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint::default(); 2],
            aggregation_temporality: CUMULATIVE,
        }),
    );
    let empty = Metric {
        name: "nothing".into(),
        ..Default::default()
    };
    let mut no_value = num(T1, 0.0, vec![]);
    no_value.value = None;
    let no_time = num(0, 1.0, vec![]);
    let unspecified = metric("u", "", sum(true, 0, vec![num(T1, 1.0, vec![])]));
    let bad_name = metric("...", "", gauge(vec![num(T1, 1.0, vec![])]));
    let req = request(
        vec![],
        vec![
            metric("ok", "", gauge(vec![num(T1, 1.0, vec![])])),
            metric("g", "", gauge(vec![])),
            exp,
            empty,
            metric("v", "", gauge(vec![no_value, no_time])),
            unspecified,
            bad_name,
        ],
    );
    let c = convert(&req);
    assert_eq!(c.batch.series.len(), 1);
    assert_eq!(c.rejected_points, 2 + 1 + 2 + 1 + 1);
    assert_eq!(
        c.first_error.as_deref(),
        Some(
            "resourceMetrics[0].scopeMetrics[0].metrics[2] \"http.duration\": exponential \
             histograms are not supported (Seam does not store Prometheus native histograms yet; \
             configure the SDK to use explicit bucket histograms)"
        )
    );
    // Each reason on its own.
    let one = |m: Metric| {
        convert(&request(vec![], vec![m]))
            .first_error
            .unwrap_or_default()
    };
    assert_eq!(
        one(Metric {
            name: "nothing".into(),
            ..Default::default()
        }),
        "resourceMetrics[0].scopeMetrics[0].metrics[0] \"nothing\": metric has no data (none of \
         gauge, sum, histogram, exponentialHistogram, summary is set)"
    );
    let mut no_value = num(T1, 0.0, vec![]);
    no_value.value = None;
    assert!(one(metric("v", "", gauge(vec![no_value])))
        .ends_with("dataPoints[0] \"v\": data point has no value"));
    assert!(
        one(metric("v", "", gauge(vec![num(0, 1.0, vec![])]))).ends_with("has no time_unix_nano")
    );
    assert!(
        one(metric("u", "", sum(true, 0, vec![num(T1, 1.0, vec![])])))
            .ends_with("aggregation temporality 0 is neither DELTA nor CUMULATIVE")
    );
}

#[test]
fn odd_input_does_not_panic() {
    let conv = PromConverter::new(0);
    assert_eq!(
        conv.convert("t", &ExportMetricsServiceRequest::default()),
        PromConversion::default()
    );
    let odd = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![
                    metric(
                        "c",
                        "/",
                        sum(true, DELTA, vec![num(u64::MAX, f64::NAN, vec![])]),
                    ),
                    metric(
                        "g",
                        "{",
                        gauge(vec![num(
                            u64::MAX,
                            f64::INFINITY,
                            vec![KeyValue::default()],
                        )]),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let c = conv.convert("t", &odd);
    assert_eq!(c.rejected_points, 1);
    assert_eq!(
        series(&c),
        vec![(
            Labels::from_pairs([("__name__", "g")]),
            vec![((u64::MAX / 1_000_000) as i64, f64::INFINITY)]
        )]
    );
}
