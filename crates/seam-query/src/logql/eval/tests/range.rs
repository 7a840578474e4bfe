//! Range aggregations end to end: the left-open window, offsets, instant and range queries,
//! the byte and absence operations, and the unwrapped ones.

use seam_store::MatchOp;

use super::*;

const API_DEV: &str = r#"{app="api", env="dev"}"#;
const API_PROD: &str = r#"{app="api", env="prod"}"#;
const WEB_PROD: &str = r#"{app="web", env="prod"}"#;

fn api(op: RangeOp, range_s: i64, offset_s: i64) -> Expr {
    Expr::Sample(range_agg(
        op,
        sel(vec![eq("app", "api")], vec![]),
        range_s,
        offset_s,
    ))
}

#[test]
fn count_rate_and_bytes_at_an_instant() {
    let f = standard();
    // (30s, 60s]: a4, a5, a6 and c2.
    let out = f.run(api(RangeOp::CountOverTime, 30, 0), at(60));
    assert_vector(&out, &[(API_DEV, 1.0), (API_PROD, 3.0)]);
    let out = f.run(api(RangeOp::Rate, 30, 0), at(60));
    assert_vector(&out, &[(API_DEV, 1.0 / 30.0), (API_PROD, 0.1)]);
    let out = f.run(api(RangeOp::BytesOverTime, 30, 0), at(60));
    assert_vector(&out, &[(API_DEV, 5.0), (API_PROD, 18.0)]);
    let out = f.run(api(RangeOp::BytesRate, 30, 0), at(60));
    assert_vector(&out, &[(API_DEV, 5.0 / 30.0), (API_PROD, 0.6)]);
    let QueryValue::Vector(v) = &out.value else {
        unreachable!()
    };
    assert_eq!(v[0].timestamp_ns, 60 * S);
    assert_eq!(out.stats.lines_processed, 4);
    assert_eq!(out.stats.post_filter_lines, 4);
}

#[test]
fn the_window_excludes_its_start_and_includes_its_end() {
    let f = standard();
    let q = Expr::Sample(range_agg(
        RangeOp::CountOverTime,
        sel(vec![eq("app", "api"), eq("env", "prod")], vec![]),
        20,
        0,
    ));
    // (20s, 40s] holds a3 and a4, not a2 at 20s.
    assert_vector(&f.run(q, at(40)), &[(API_PROD, 2.0)]);
}

#[test]
fn offset_moves_the_window_back() {
    let f = standard();
    let errors = |offset| {
        Expr::Sample(range_agg(
            RangeOp::CountOverTime,
            sel(vec![eq("env", "prod")], vec![contains("error")]),
            30,
            offset,
        ))
    };
    // (30s, 60s]: a4 and b2; (10s, 40s]: a2, a4 and b2.
    assert_vector(
        &f.run(errors(0), at(60)),
        &[(API_PROD, 1.0), (WEB_PROD, 1.0)],
    );
    assert_vector(
        &f.run(errors(20), at(60)),
        &[(API_PROD, 2.0), (WEB_PROD, 1.0)],
    );
    let out = f.run(errors(20), span(40, 60, 10));
    // Windows (0,20], (10,30], (20,40] for steps 40, 50, 60.
    assert_eq!(
        matrix(&out),
        vec![
            (API_PROD.to_string(), vec![(40, 1.0), (50, 1.0), (60, 2.0)]),
            (WEB_PROD.to_string(), vec![(60, 1.0)]),
        ]
    );
}

#[test]
fn range_queries_step_through_the_windows() {
    let f = standard();
    let prod_api = || sel(vec![eq("app", "api"), eq("env", "prod")], vec![]);
    let q = Expr::Sample(range_agg(RangeOp::CountOverTime, prod_api(), 10, 0));
    let out = f.run(q, span(10, 60, 10));
    assert_eq!(
        matrix(&out),
        vec![(
            API_PROD.to_string(),
            (1..=6).map(|i| (i * 10, 1.0)).collect()
        )]
    );
    // Steps longer than the range leave gaps: 20s, 40s and 60s fall outside every window.
    let q = Expr::Sample(range_agg(RangeOp::CountOverTime, prod_api(), 10, 0));
    let out = f.run(q, span(10, 60, 20));
    assert_eq!(
        matrix(&out),
        vec![(API_PROD.to_string(), vec![(10, 1.0), (30, 1.0), (50, 1.0)])]
    );
    assert_eq!(out.stats.post_filter_lines, 3);
    // Overlapping windows: (-20,10], (0,30], (20,50].
    let q = Expr::Sample(range_agg(RangeOp::CountOverTime, prod_api(), 30, 0));
    let out = f.run(q, span(10, 50, 20));
    assert_eq!(
        matrix(&out),
        vec![(API_PROD.to_string(), vec![(10, 1.0), (30, 3.0), (50, 3.0)])]
    );
}

#[test]
fn the_same_answers_come_from_segments() {
    let f = Fixture::new();
    f.append(&standard_streams(), &[]);
    f.flush();
    let out = f.run(api(RangeOp::CountOverTime, 30, 0), at(60));
    assert_vector(&out, &[(API_DEV, 1.0), (API_PROD, 3.0)]);
    let out = f.run(Expr::Sample(count_all(10)), span(10, 60, 10));
    assert_eq!(matrix(&out).len(), 3);
}

/// `op({env=~".+"} <stages> [30s])`.
fn over_all(op: RangeOp, stages: Vec<Stage>) -> Expr {
    Expr::Sample(range_agg(
        op,
        sel(vec![m("env", MatchOp::Regex, ".+")], stages),
        30,
        0,
    ))
}

#[test]
fn counting_rows_leaves_the_lines_unread() {
    let f = Fixture::new();
    f.append(&standard_streams(), &[]);
    for flushed in [false, true] {
        if flushed {
            f.flush();
        }
        // (30s, 60s]: a4, a5, a6; b2, b3; c2.
        let bare = f.run(over_all(RangeOp::CountOverTime, vec![]), at(60));
        assert_vector(&bare, &[(API_DEV, 1.0), (API_PROD, 3.0), (WEB_PROD, 2.0)]);
        assert_eq!(bare.stats.lines_processed, 6, "flushed: {flushed}");
        assert_eq!(bare.stats.bytes_processed, 0, "flushed: {flushed}");
        // Any stage, even one that keeps every line, makes the scan read the lines; the answer
        // is the same.
        let staged = f.run(over_all(RangeOp::CountOverTime, vec![contains("")]), at(60));
        assert_eq!(vector(&staged), vector(&bare));
        assert_eq!(staged.stats.lines_processed, 6);
        assert_eq!(staged.stats.bytes_processed, 18 + 13 + 5);

        let rate = f.run(over_all(RangeOp::Rate, vec![]), at(60));
        assert_vector(
            &rate,
            &[
                (API_DEV, 1.0 / 30.0),
                (API_PROD, 0.1),
                (WEB_PROD, 2.0 / 30.0),
            ],
        );
        assert_eq!(rate.stats.bytes_processed, 0);
        // The byte operations measure the lines, so they read them.
        let bytes = f.run(over_all(RangeOp::BytesOverTime, vec![]), at(60));
        assert_vector(
            &bytes,
            &[(API_DEV, 5.0), (API_PROD, 18.0), (WEB_PROD, 13.0)],
        );
        assert_eq!(bytes.stats.bytes_processed, 36);
    }
}

#[test]
fn rows_with_metadata_form_their_own_series_beside_the_streams() {
    let f = Fixture::new();
    let plain: [StreamSpec<'_>; 1] = [(&[("app", "api")], &[(40, "x1"), (50, "y2"), (58, "x3")])];
    let tagged: [StreamSpec<'_>; 1] = [(&[("app", "api")], &[(45, "x4"), (55, "y5")])];
    f.append(&plain, &[]);
    f.append(&tagged, &[("trace_id", "abc")]);
    let q = || {
        Expr::Sample(range_agg(
            RangeOp::CountOverTime,
            sel(vec![eq("app", "api")], vec![contains("x")]),
            30,
            0,
        ))
    };
    for flushed in [false, true] {
        if flushed {
            f.flush();
        }
        // (30s, 60s]: x1 and x3 plain, x4 with metadata; y2 and y5 fail the filter.
        let out = f.run(q(), at(60));
        assert_vector(
            &out,
            &[
                (r#"{app="api"}"#, 2.0),
                (r#"{app="api", trace_id="abc"}"#, 1.0),
            ],
        );
        assert_eq!(out.stats.post_filter_lines, 3, "flushed: {flushed}");
    }
}

#[test]
fn absent_over_time_reports_the_empty_steps() {
    let f = standard();
    let q = Expr::Sample(range_agg(
        RangeOp::AbsentOverTime,
        sel(vec![eq("app", "nope")], vec![]),
        10,
        0,
    ));
    assert_vector(&f.run(q, at(60)), &[(r#"{app="nope"}"#, 1.0)]);
    // Windows of 5s every 5s from 10s to 30s: data at 10, 20 and 30.
    let q = Expr::Sample(range_agg(
        RangeOp::AbsentOverTime,
        sel(
            vec![eq("app", "api"), m("env", MatchOp::Regex, "p.*")],
            vec![],
        ),
        5,
        0,
    ));
    let out = f.run(q, span(10, 30, 5));
    assert_eq!(
        matrix(&out),
        vec![(r#"{app="api"}"#.to_string(), vec![(15, 1.0), (25, 1.0)])]
    );
    let q = Expr::Sample(range_agg(
        RangeOp::AbsentOverTime,
        sel(vec![eq("app", "api")], vec![]),
        60,
        0,
    ));
    assert_vector(&f.run(q, at(60)), &[]);
}

#[test]
fn the_series_limit_refuses_large_results() {
    let f = standard();
    let limits = QueryLimits {
        max_series: 2,
        deadline: None,
    };
    let err = f
        .try_run(Expr::Sample(count_all(60)), at(60), limits)
        .unwrap_err();
    assert!(
        matches!(&err, QueryError::Limit(m) if m == "maximum of series (2) reached for a single query"),
        "{err}"
    );
    let err = f
        .try_run(Expr::Sample(count_all(10)), span(10, 60, 10), limits)
        .unwrap_err();
    assert!(matches!(err, QueryError::Limit(_)));
    // Only the result counts: three streams summed into two series fit.
    let q = vagg(VectorOp::Sum, count_all(60), by(&["env"]), None);
    let out = f.try_run(Expr::Sample(q), at(60), limits).unwrap();
    assert_vector(&out, &[(r#"{env="dev"}"#, 2.0), (r#"{env="prod"}"#, 9.0)]);
    let q = vagg(VectorOp::Max, count_all(60), by(&["env"]), None);
    assert!(f.try_run(Expr::Sample(q), at(60), limits).is_ok());
}

#[test]
fn a_passed_deadline_stops_a_metric_query() {
    let f = standard();
    let limits = QueryLimits {
        max_series: 500,
        deadline: Some(std::time::Instant::now()),
    };
    let err = f
        .try_run(Expr::Sample(count_all(60)), at(60), limits)
        .unwrap_err();
    assert!(matches!(err, QueryError::Timeout(_)));
}

#[test]
fn too_many_steps_are_refused() {
    let f = standard();
    let err = f
        .try_run(Expr::Sample(count_all(60)), span(0, 20_000, 1), unlimited())
        .unwrap_err();
    assert!(matches!(&err, QueryError::Invalid(m) if m.starts_with("exceeded maximum resolution")));
}

/// `{app="svc"}` with logfmt latencies 100 at 50s, then 4, 1, 3, 2, 5 at 60..100s.
fn latencies() -> Fixture {
    let f = Fixture::new();
    let s: [StreamSpec<'_>; 1] = [(
        &[("app", "svc")],
        &[
            (50, "latency=100"),
            (60, "latency=4"),
            (70, "latency=1"),
            (80, "latency=3"),
            (90, "latency=2"),
            (100, "latency=5"),
        ],
    )];
    f.append(&s, &[]);
    f
}

fn logfmt() -> Stage {
    Stage::Logfmt {
        strict: false,
        keep_empty: false,
        params: Vec::new(),
    }
}

/// `op(param, {app="svc"} | logfmt | unwrap latency [range]) by (app)`.
fn unwrapped(op: RangeOp, param: Option<f64>, range_s: i64, post: Vec<LabelFilter>) -> Expr {
    Expr::Sample(SampleExpr::Range {
        op,
        range: LogRange {
            log: sel(vec![eq("app", "svc")], vec![logfmt()]),
            range_ns: range_s * S,
            offset_ns: 0,
            unwrap: Some(Unwrap {
                label: "latency".into(),
                conv: UnwrapConv::Number,
                post_filters: post,
            }),
        },
        param,
        grouping: by(&["app"]),
    })
}

#[test]
fn unwrapped_range_aggregations() {
    let f = latencies();
    let svc = r#"{app="svc"}"#;
    let one = |op, param| f.run(unwrapped(op, param, 50, vec![]), at(100));
    assert_vector(&one(RangeOp::SumOverTime, None), &[(svc, 15.0)]);
    assert_vector(&one(RangeOp::Rate, None), &[(svc, 0.3)]);
    assert_vector(&one(RangeOp::AvgOverTime, None), &[(svc, 3.0)]);
    assert_vector(&one(RangeOp::MinOverTime, None), &[(svc, 1.0)]);
    assert_vector(&one(RangeOp::MaxOverTime, None), &[(svc, 5.0)]);
    assert_vector(&one(RangeOp::StdvarOverTime, None), &[(svc, 2.0)]);
    assert_vector(&one(RangeOp::StddevOverTime, None), &[(svc, 2f64.sqrt())]);
    assert_vector(&one(RangeOp::FirstOverTime, None), &[(svc, 4.0)]);
    assert_vector(&one(RangeOp::LastOverTime, None), &[(svc, 5.0)]);
    assert_vector(&one(RangeOp::QuantileOverTime, Some(0.9)), &[(svc, 4.6)]);
    // As a counter: 4, reset to 1, 3, reset to 2, 5: an increase of 8 over 40 s, with Loki's
    // 50 µs of extrapolation, per second of the 50 s range.
    let want = 8.0 * (4e7 + 50.0) / 4e7 / 50.0;
    assert_vector(&one(RangeOp::RateCounter, None), &[(svc, want)]);
    let out = f.run(
        unwrapped(RangeOp::SumOverTime, None, 20, vec![]),
        span(60, 100, 20),
    );
    assert_eq!(
        matrix(&out),
        vec![(svc.to_string(), vec![(60, 104.0), (80, 4.0), (100, 7.0)])]
    );
}

#[test]
fn unwrap_errors_fail_unless_filtered() {
    let f = latencies();
    let s: [StreamSpec<'_>; 1] = [(&[("app", "svc")], &[(95, "latency=abc")])];
    f.append(&s, &[]);
    let err = f
        .try_run(
            unwrapped(RangeOp::SumOverTime, None, 50, vec![]),
            at(100),
            unlimited(),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, QueryError::Invalid(_)));
    assert!(
        text.starts_with(
            "pipeline error: 'SampleExtractionErr' for series: '{__error__=\"SampleExtractionErr\""
        ),
        "{text}"
    );
    assert!(text.contains("Use a label filter to intentionally skip this error."));
    let no_errors = LabelFilter::String(eq("__error__", ""));
    let out = f.run(
        unwrapped(RangeOp::SumOverTime, None, 50, vec![no_errors]),
        at(100),
    );
    assert_vector(&out, &[(r#"{app="svc"}"#, 15.0)]);
}

#[test]
fn a_sum_reduces_parsed_labels_at_the_source() {
    let f = latencies();
    let count = range_agg(
        RangeOp::CountOverTime,
        sel(vec![eq("app", "svc")], vec![logfmt()]),
        50,
        0,
    );
    // Five parsed series, one per latency value, summed into one.
    let limits = QueryLimits {
        max_series: 1,
        deadline: None,
    };
    let q = vagg(VectorOp::Sum, count.clone(), by(&["app"]), None);
    let out = f.try_run(Expr::Sample(q), at(100), limits).unwrap();
    assert_vector(&out, &[(r#"{app="svc"}"#, 5.0)]);
    let out = f.run(Expr::Sample(count), at(100));
    assert_eq!(vector(&out).len(), 5);
}
