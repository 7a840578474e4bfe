//! Whole queries as users write them, parsed by the LogQL parser and run through the pipeline.

use super::super::SampleExtractor;
use super::*;
use crate::logql::{parse, parse_log_query};

const ACCESS: [&str; 3] = [
    "level=info method=GET path=/api status=200 latency=12ms",
    "level=error method=POST path=/login status=503 latency=1.5s",
    "level=warn method=GET path=/slow status=oops latency=slow",
];

fn run_log_query(q: &str) -> Vec<(String, Labels)> {
    let expr = parse_log_query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let p = Pipeline::new(&expr.pipeline).unwrap_or_else(|e| panic!("{q}: {e}"));
    ACCESS
        .iter()
        .filter_map(|l| p.process(1, l, &ls(&[("app", "api")]), &ls(&[])))
        .map(|e| (e.line, e.labels.merged()))
        .collect()
}

#[test]
fn log_queries() {
    let got = run_log_query(
        r#"{app="api"} |= "method=" | logfmt | status >= 500 | line_format "{{.method}} {{.path}}""#,
    );
    assert_eq!(
        got,
        vec![
            (
                "POST /login".to_string(),
                ls(&[
                    ("app", "api"),
                    ("latency", "1.5s"),
                    ("level", "error"),
                    ("method", "POST"),
                    ("path", "/login"),
                    ("status", "503"),
                ]),
            ),
            (
                "GET /slow".to_string(),
                ls(&[
                    ("app", "api"),
                    ("latency", "slow"),
                    ("level", "warn"),
                    ("method", "GET"),
                    ("path", "/slow"),
                    ("status", "oops"),
                    ("__error__", "LabelFilterErr"),
                    (
                        "__error_details__",
                        "strconv.ParseFloat: parsing \"oops\": invalid syntax"
                    ),
                ]),
            ),
        ]
    );
    let got = run_log_query(
        r#"{app="api"} | logfmt | latency > 1s or level="info" | __error__="" | label_format lvl="{{ .level | ToUpper }}" | keep app, lvl"#,
    );
    assert_eq!(
        got,
        vec![
            (
                ACCESS[0].to_string(),
                ls(&[("app", "api"), ("lvl", "INFO")])
            ),
            (
                ACCESS[1].to_string(),
                ls(&[("app", "api"), ("lvl", "ERROR")])
            ),
        ]
    );
    let got = run_log_query(
        r#"{app="api"} |> "<_> method=GET <_>" | pattern "level=<level> <_>" | drop app"#,
    );
    assert_eq!(
        got,
        vec![
            (ACCESS[0].to_string(), ls(&[("level", "info")])),
            (ACCESS[2].to_string(), ls(&[("level", "warn")])),
        ]
    );
}

#[test]
fn metric_query_samples() {
    let q = r#"sum by (path) (avg_over_time({app="api"} | logfmt | unwrap duration(latency) | __error__="" [5m]))"#;
    let Expr::Sample(SampleExpr::Vector { inner, .. }) = parse(q).unwrap() else {
        panic!("{q} is a vector aggregation");
    };
    let SampleExpr::Range { op, range, .. } = *inner else {
        panic!("{q} wraps a range aggregation");
    };
    let ex = SampleExtractor::new(&range, op).unwrap();
    let got: Vec<_> = ACCESS
        .iter()
        .filter_map(|l| ex.extract(1, l, &ls(&[("app", "api")]), &ls(&[])))
        .collect();
    let series = |path: &str, level: &str, method: &str, status: &str| {
        ls(&[
            ("app", "api"),
            ("level", level),
            ("method", method),
            ("path", path),
            ("status", status),
        ])
    };
    assert_eq!(
        got,
        vec![
            (series("/api", "info", "GET", "200"), 0.012),
            (series("/login", "error", "POST", "503"), 1.5),
        ]
    );
}
