//! Line filters and label filters.

use seam_store::MatchOp;

use super::*;

const LINES: [&str; 3] = ["level=error msg=boom", "level=info msg=ok", "GET /api 500"];

#[test]
fn line_filters() {
    use LineFilterOp::*;
    let cases: &[(Stage, &[&str])] = &[
        (
            line_filter(Contains, "error", &[]),
            &["level=error msg=boom"],
        ),
        (line_filter(Contains, "", &[]), &LINES),
        (
            line_filter(Contains, "boom", &["500"]),
            &["level=error msg=boom", "GET /api 500"],
        ),
        (
            line_filter(NotContains, "error", &["500"]),
            &["level=info msg=ok"],
        ),
        (
            line_filter(Regex, "level=(error|warn)", &[]),
            &["level=error msg=boom"],
        ),
        (
            line_filter(NotRegex, "^GET", &[]),
            &["level=error msg=boom", "level=info msg=ok"],
        ),
        (
            line_filter(Regex, "(?i)get", &["ok$"]),
            &["level=info msg=ok", "GET /api 500"],
        ),
        (
            line_filter(Pattern, "<_> msg=<_>", &[]),
            &["level=error msg=boom", "level=info msg=ok"],
        ),
        (
            line_filter(NotPattern, "GET <_> <_>", &[]),
            &["level=error msg=boom", "level=info msg=ok"],
        ),
        (
            line_filter(Pattern, "<_> 500", &["level=info <_>"]),
            &["level=info msg=ok", "GET /api 500"],
        ),
    ];
    for (stage, want) in cases {
        let p = Pipeline::new(std::slice::from_ref(stage)).unwrap();
        let kept: Vec<&str> = LINES
            .iter()
            .copied()
            .filter(|l| p.process(1, l, &ls(&[]), &ls(&[])).is_some())
            .collect();
        assert_eq!(kept, *want, "{stage:?}");
    }
}

#[test]
fn line_filter_compile_errors() {
    for stage in [
        line_filter(LineFilterOp::Regex, "(", &[]),
        line_filter(LineFilterOp::Pattern, "<a> x", &[]),
        line_filter(LineFilterOp::Pattern, "<_><_>", &[]),
    ] {
        assert!(
            Pipeline::new(std::slice::from_ref(&stage)).is_err(),
            "{stage:?}"
        );
    }
}

#[test]
fn only_line_filters_keep_categories() {
    check(
        &[line_filter(LineFilterOp::Contains, "boom", &[])],
        "level=error msg=boom",
        &[("app", "api")],
        &[("trace_id", "t1")],
        Some(Want {
            line: "level=error msg=boom",
            stream: &[("app", "api")],
            structured_metadata: &[("trace_id", "t1")],
            parsed: &[],
        }),
    );
    // Metadata named like a stream label is renamed even without parsers.
    check(
        &[line_filter(LineFilterOp::Contains, "", &[])],
        "x",
        &[("app", "api")],
        &[("app", "other")],
        Some(Want {
            line: "x",
            stream: &[("app", "api")],
            structured_metadata: &[("app_extracted", "other")],
            parsed: &[],
        }),
    );
}

const L1: &str = "status=500 latency=250ms size=2KB level=error";
const L2: &str = "status=200 latency=15ms size=512B level=info";
const L3: &str = "status=abc latency=fast size=big level=warn";

fn parsed_of(line: &str) -> Vec<(&str, &str)> {
    line.split(' ')
        .map(|kv| kv.split_once('=').unwrap())
        .collect()
}

#[test]
fn label_filters() {
    let num = |name: &str, op, value| LabelFilter::Number {
        name: name.into(),
        op,
        value,
    };
    let status_ge_400 = num("status", CmpOp::Ge, 400.0);
    let float_err = |v: &str| format!("strconv.ParseFloat: parsing \"{v}\": invalid syntax");
    // (filter, per line: None = dropped, Some(error details) = kept with LabelFilterErr,
    // Some("") = kept clean)
    let cases: Vec<(LabelFilter, [Option<String>; 3])> = vec![
        (
            status_ge_400.clone(),
            [Some(String::new()), None, Some(float_err("abc"))],
        ),
        (
            LabelFilter::Duration {
                name: "latency".into(),
                op: CmpOp::Gt,
                value_ns: 100_000_000,
            },
            [
                Some(String::new()),
                None,
                Some("time: invalid duration \"fast\"".into()),
            ],
        ),
        (
            LabelFilter::Bytes {
                name: "size".into(),
                op: CmpOp::Gt,
                value: 1000,
            },
            [Some(String::new()), None, Some(float_err(""))],
        ),
        (
            label_eq("level", MatchOp::Regex, "error|warn"),
            [Some(String::new()), None, Some(String::new())],
        ),
        (
            LabelFilter::Or(
                Box::new(label_eq("level", MatchOp::Equal, "info")),
                Box::new(num("status", CmpOp::Ge, 500.0)),
            ),
            [
                Some(String::new()),
                Some(String::new()),
                Some(float_err("abc")),
            ],
        ),
        (
            LabelFilter::And(
                Box::new(status_ge_400.clone()),
                Box::new(label_eq("level", MatchOp::Equal, "error")),
            ),
            [Some(String::new()), None, None],
        ),
        (num("missing", CmpOp::Gt, 1.0), [None, None, None]),
        (
            num("status", CmpOp::Ne, 200.0),
            [Some(String::new()), None, Some(float_err("abc"))],
        ),
        (
            label_eq("missing", MatchOp::Equal, ""),
            [
                Some(String::new()),
                Some(String::new()),
                Some(String::new()),
            ],
        ),
    ];
    for (f, want) in cases {
        for (line, w) in [L1, L2, L3].into_iter().zip(want) {
            let mut parsed = parsed_of(line);
            if let Some(details) = w.as_deref().filter(|d| !d.is_empty()) {
                parsed.push(("__error__", "LabelFilterErr"));
                parsed.push(("__error_details__", details));
            }
            check(
                &[logfmt(false, false), filter(f.clone())],
                line,
                &[("app", "api")],
                &[],
                w.as_ref().map(|_| Want {
                    line,
                    stream: &[("app", "api")],
                    structured_metadata: &[],
                    parsed: &parsed,
                }),
            );
        }
    }
}

#[test]
fn error_label_filters() {
    let ge = filter(LabelFilter::Number {
        name: "status".into(),
        op: CmpOp::Ge,
        value: 400.0,
    });
    let kept = |stages: &[Stage]| -> Vec<&str> {
        let p = Pipeline::new(stages).unwrap();
        [L1, L2, L3]
            .into_iter()
            .filter(|l| p.process(1, l, &ls(&[]), &ls(&[])).is_some())
            .collect()
    };
    let no_err = filter(label_eq("__error__", MatchOp::Equal, ""));
    assert_eq!(kept(&[logfmt(false, false), ge.clone(), no_err]), [L1]);
    let only_err = filter(label_eq("__error__", MatchOp::Equal, "LabelFilterErr"));
    assert_eq!(kept(&[logfmt(false, false), ge.clone(), only_err]), [L3]);
    let details = filter(label_eq(
        "__error_details__",
        MatchOp::Regex,
        ".*invalid syntax",
    ));
    assert_eq!(kept(&[logfmt(false, false), ge, details]), [L3]);
    // A second failing filter does not overwrite the first error.
    let lat = filter(LabelFilter::Duration {
        name: "latency".into(),
        op: CmpOp::Gt,
        value_ns: 1,
    });
    check(
        &[
            logfmt(false, false),
            filter(LabelFilter::Number {
                name: "status".into(),
                op: CmpOp::Ge,
                value: 400.0,
            }),
            lat,
        ],
        L3,
        &[],
        &[],
        Some(Want {
            line: L3,
            stream: &[],
            structured_metadata: &[],
            parsed: &[
                ("status", "abc"),
                ("latency", "fast"),
                ("size", "big"),
                ("level", "warn"),
                ("__error__", "LabelFilterErr"),
                (
                    "__error_details__",
                    "strconv.ParseFloat: parsing \"abc\": invalid syntax",
                ),
            ],
        }),
    );
}

#[test]
fn conversions_fail_with_go_messages() {
    use super::super::label_filter::{convert_bytes, convert_duration_seconds, convert_number};
    assert_eq!(convert_number("1.5e3"), Ok(1500.0));
    assert_eq!(convert_duration_seconds("1m30s"), Ok(90.0));
    assert_eq!(convert_duration_seconds("250ms"), Ok(0.25));
    assert_eq!(convert_bytes("2KB"), Ok(2000));
    assert_eq!(convert_bytes("1.5KiB"), Ok(1536));
    assert_eq!(convert_bytes("5XB").unwrap_err(), "unhandled size name: xb");
    assert_eq!(
        convert_bytes("MB").unwrap_err(),
        "strconv.ParseFloat: parsing \"\": invalid syntax"
    );
    assert_eq!(
        convert_duration_seconds("5").unwrap_err(),
        "time: invalid duration \"5\""
    );
}
