//! `SampleExtractor`: values per range aggregation, unwrap conversions and their errors.

use seam_store::MatchOp;

use super::super::SampleExtractor;
use super::*;

/// `| unwrap conv(label) | post filters`.
type UnwrapSpec<'a> = (&'a str, UnwrapConv, Vec<LabelFilter>);

fn range(pipeline: Vec<Stage>, unwrap: Option<UnwrapSpec>) -> LogRange {
    LogRange {
        log: LogExpr {
            matchers: vec![matcher("app", MatchOp::Equal, "api")],
            pipeline,
        },
        range_ns: 60_000_000_000,
        offset_ns: 0,
        unwrap: unwrap.map(|(label, conv, post_filters)| Unwrap {
            label: label.into(),
            conv,
            post_filters,
        }),
    }
}

const LINE: &str = "status=500 latency=250ms size=2KB took=abc";

#[test]
fn values_per_operation() {
    let stream = ls(&[("app", "api")]);
    let all = ls(&[
        ("app", "api"),
        ("latency", "250ms"),
        ("size", "2KB"),
        ("status", "500"),
        ("took", "abc"),
    ]);
    type Case<'a> = (RangeOp, Option<UnwrapSpec<'a>>, Option<(Labels, f64)>);
    let cases: Vec<Case> = vec![
        (RangeOp::CountOverTime, None, Some((all.clone(), 1.0))),
        (RangeOp::Rate, None, Some((all.clone(), 1.0))),
        (
            RangeOp::BytesOverTime,
            None,
            Some((all.clone(), LINE.len() as f64)),
        ),
        (
            RangeOp::SumOverTime,
            Some(("status", UnwrapConv::Number, vec![])),
            Some((
                ls(&[
                    ("app", "api"),
                    ("latency", "250ms"),
                    ("size", "2KB"),
                    ("took", "abc"),
                ]),
                500.0,
            )),
        ),
        (
            RangeOp::AvgOverTime,
            Some(("latency", UnwrapConv::Duration, vec![])),
            Some((
                ls(&[
                    ("app", "api"),
                    ("size", "2KB"),
                    ("status", "500"),
                    ("took", "abc"),
                ]),
                0.25,
            )),
        ),
        (
            RangeOp::MaxOverTime,
            Some(("size", UnwrapConv::Bytes, vec![])),
            Some((
                ls(&[
                    ("app", "api"),
                    ("latency", "250ms"),
                    ("status", "500"),
                    ("took", "abc"),
                ]),
                2000.0,
            )),
        ),
        // A value that does not convert: 0, every label kept, and the error.
        (
            RangeOp::SumOverTime,
            Some(("took", UnwrapConv::Number, vec![])),
            Some((
                ls(&[
                    ("app", "api"),
                    ("latency", "250ms"),
                    ("size", "2KB"),
                    ("status", "500"),
                    ("took", "abc"),
                    ("__error__", "SampleExtractionErr"),
                    (
                        "__error_details__",
                        "strconv.ParseFloat: parsing \"abc\": invalid syntax",
                    ),
                ]),
                0.0,
            )),
        ),
        // `| __error__=""` after the unwrap drops it instead.
        (
            RangeOp::SumOverTime,
            Some((
                "took",
                UnwrapConv::Number,
                vec![label_eq("__error__", MatchOp::Equal, "")],
            )),
            None,
        ),
        // A missing label gives no sample.
        (
            RangeOp::SumOverTime,
            Some(("nope", UnwrapConv::Number, vec![])),
            None,
        ),
    ];
    for (op, unwrap, want) in cases {
        let ex = SampleExtractor::new(&range(vec![logfmt(false, false)], unwrap), op).unwrap();
        assert_eq!(ex.extract(1, LINE, &stream, &ls(&[])), want, "{op:?}");
    }
}

#[test]
fn line_filters_only() {
    let stream = ls(&[("app", "api")]);
    let r = range(vec![line_filter(LineFilterOp::Contains, "500", &[])], None);
    let count = SampleExtractor::new(&r, RangeOp::CountOverTime).unwrap();
    assert_eq!(
        count.extract(1, LINE, &stream, &ls(&[])),
        Some((stream.clone(), 1.0))
    );
    assert_eq!(count.extract(1, "status=200", &stream, &ls(&[])), None);
    let bytes = SampleExtractor::new(&r, RangeOp::BytesRate).unwrap();
    assert_eq!(
        bytes.extract(1, "x 500", &stream, &ls(&[])),
        Some((stream.clone(), 5.0))
    );
    // Metadata joins the series labels.
    assert_eq!(
        count.extract(1, LINE, &stream, &ls(&[("trace_id", "t")])),
        Some((ls(&[("app", "api"), ("trace_id", "t")]), 1.0))
    );
    // The bytes counted are the line after `line_format`.
    let r = range(
        vec![Stage::LineFormat("{{ __line__ | trunc 3 }}".into())],
        None,
    );
    let bytes = SampleExtractor::new(&r, RangeOp::BytesOverTime).unwrap();
    assert_eq!(
        bytes.extract(1, LINE, &stream, &ls(&[])),
        Some((stream, 3.0))
    );
}

#[test]
fn unwrap_and_operation_must_agree() {
    let with = range(vec![], Some(("x", UnwrapConv::Number, vec![])));
    let without = range(vec![], None);
    assert_eq!(
        SampleExtractor::new(&with, RangeOp::CountOverTime)
            .err()
            .unwrap(),
        "invalid aggregation count_over_time with unwrap"
    );
    assert!(SampleExtractor::new(&with, RangeOp::BytesRate).is_err());
    assert_eq!(
        SampleExtractor::new(&without, RangeOp::SumOverTime)
            .err()
            .unwrap(),
        "invalid aggregation sum_over_time without unwrap"
    );
    assert!(SampleExtractor::new(&without, RangeOp::QuantileOverTime).is_err());
    assert!(SampleExtractor::new(&with, RangeOp::Rate).is_ok());
    assert!(SampleExtractor::new(&with, RangeOp::RateCounter).is_ok());
}
