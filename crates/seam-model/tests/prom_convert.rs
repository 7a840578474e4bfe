//! Converts real OTLP metric requests captured from the Python SDK (opentelemetry-python 1.45,
//! OTLP/HTTP protobuf: a force_flush export and the shutdown export after it).

use prost::Message;
use seam_model::metrics::STALE_NAN_BITS;
use seam_model::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use seam_model::prom_convert::{PromConversion, PromConverter};
use seam_model::Labels;

fn fixture(name: &str) -> ExportMetricsServiceRequest {
    let path = format!(
        "{}/tests/fixtures/otlp-proto/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("valid protobuf")
}

fn names(c: &PromConversion) -> Vec<String> {
    let mut v: Vec<String> = c
        .batch
        .series
        .iter()
        .map(|s| s.label_set().get("__name__").unwrap().to_string())
        .collect();
    v.dedup();
    v
}

fn find<'a>(c: &'a PromConversion, labels: &Labels) -> &'a [seam_model::Sample] {
    &c.batch
        .series
        .iter()
        .find(|s| &s.label_set() == labels)
        .unwrap_or_else(|| panic!("no series {labels}"))
        .samples
}

const COMMON: [(&str, &str); 4] = [
    ("instance", "7dcc83ae-59c6-4c09-88dd-88ced273a9af"),
    ("job", "peer-check"),
    ("otel_scope_name", "peer-check.meter"),
    ("otel_scope_version", "1.0"),
];

fn labels(extra: &[(&'static str, &'static str)]) -> Labels {
    Labels::from_pairs(COMMON.iter().chain(extra).copied())
}

#[test]
fn python_sdk_requests() {
    let conv = PromConverter::new(1000);
    for (file, time_ms) in [
        ("http_metrics.bin", 1_795_334_888_573),
        ("http_metrics.1.bin", 1_795_334_888_578),
    ] {
        let c = conv.convert("tenant", &fixture(file));
        assert_eq!(c.rejected_points, 0, "{file}: {:?}", c.first_error);
        assert_eq!(c.first_error, None);
        assert_eq!(
            names(&c),
            [
                "requests_total",
                "request_duration_seconds_bucket",
                "request_duration_seconds_sum",
                "request_duration_seconds_count",
                "inflight",
                "target_info",
            ],
            "{file}"
        );
        // 1 counter + 16 buckets + sum + count + 1 gauge + target_info.
        assert_eq!(c.batch.series.len(), 21, "{file}");
        assert_eq!(c.batch.sample_count(), 21, "{file}");
        for s in &c.batch.series {
            assert_eq!(s.samples[0].timestamp_ms, time_ms, "{file}");
            assert_ne!(s.samples[0].value.to_bits(), STALE_NAN_BITS);
        }

        let counter = labels(&[
            ("__name__", "requests_total"),
            ("code", "200"),
            ("route", "/checkout"),
        ]);
        assert_eq!(find(&c, &counter)[0].value, 3.0);
        let bucket = |le: &'static str| {
            labels(&[
                ("__name__", "request_duration_seconds_bucket"),
                ("le", le),
                ("route", "/checkout"),
            ])
        };
        assert_eq!(find(&c, &bucket("0"))[0].value, 0.0);
        assert_eq!(find(&c, &bucket("5"))[0].value, 3.0);
        assert_eq!(find(&c, &bucket("10000"))[0].value, 3.0);
        assert_eq!(find(&c, &bucket("+Inf"))[0].value, 3.0);
        let sum = labels(&[
            ("__name__", "request_duration_seconds_sum"),
            ("route", "/checkout"),
        ]);
        assert_eq!(find(&c, &sum)[0].value, 0.325);
        assert_eq!(find(&c, &labels(&[("__name__", "inflight")]))[0].value, 2.0);
        let target_info = Labels::from_pairs([
            ("__name__", "target_info"),
            ("deployment_environment", "test"),
            ("instance", "7dcc83ae-59c6-4c09-88dd-88ced273a9af"),
            ("job", "peer-check"),
            ("service_version", "0.1"),
            ("telemetry_sdk_language", "python"),
            ("telemetry_sdk_name", "opentelemetry"),
            ("telemetry_sdk_version", "1.45.2"),
        ]);
        assert_eq!(find(&c, &target_info)[0].value, 1.0);
    }
    // All cumulative: nothing is tracked for delta accumulation.
    assert_eq!(conv.tracked_series(), 0);
}
