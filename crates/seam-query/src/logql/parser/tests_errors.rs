//! Errors name the line and column and use Loki's wording. Rows marked "Loki" come from Loki's
//! own parser tests (where Loki reports no position, ours points at the construct at fault).

use super::parse;

/// (query, line, column, message).
pub(super) const ERRORS: &[(&str, usize, usize, &str)] = &[
    // Loki.
    (r#"unk({ foo = "bar" }[5m])"#, 1, 1, "syntax error: unexpected IDENTIFIER"),
    (
        r#"absent_over_time({ foo = "bar" }[5h]) by (foo)"#,
        1,
        1,
        "grouping not allowed for absent_over_time aggregation",
    ),
    (
        r#"rate({ foo = "bar" }[5minutes])"#,
        1,
        21,
        r#"unknown unit "minutes" in duration "5minutes""#,
    ),
    (
        r#"label_replace(rate({ foo = "bar" }[5m]),"")"#,
        1,
        43,
        "syntax error: unexpected ), expecting ,",
    ),
    (
        r#"label_replace(rate({ foo = "bar" }[5m]),"foo","$1","bar","^^^^x43\\q")"#,
        1,
        58,
        "invalid regex in label_replace: error parsing regexp: invalid escape sequence: `\\q`",
    ),
    (r#"rate({ foo = "bar" }[5)"#, 1, 21, "missing closing ']' in duration"),
    (r#"min({ foo = "bar" }[5m])"#, 1, 20, "syntax error: unexpected RANGE"),
    (r#"{ foo = "bar" }|logfmt|addr>=ip("1.2.3.4")"#, 1, 30, "syntax error: unexpected ip"),
    (r#"{ foo = "bar" }|logfmt|addr<ip("1.2.3.4")"#, 1, 29, "syntax error: unexpected ip"),
    (
        r#"sum(3 ,count_over_time({ foo = "bar" }[5h]))"#,
        1,
        1,
        "unsupported parameter for operation sum(3,",
    ),
    (
        r#"topk(count_over_time({ foo = "bar" }[5h]))"#,
        1,
        1,
        "parameter required for operation topk",
    ),
    (
        r#"bottomk(he,count_over_time({ foo = "bar" }[5h]))"#,
        1,
        9,
        "syntax error: unexpected IDENTIFIER",
    ),
    (
        r#"bottomk(1.2,count_over_time({ foo = "bar" }[5h]))"#,
        1,
        1,
        "invalid parameter bottomk(1.2,",
    ),
    (r#"stddev({ foo = "bar" })"#, 1, 23, "syntax error: unexpected )"),
    (r#"{foo="bar}"#, 1, 6, "literal not terminated"),
    (r#"{foo="bar""#, 1, 11, "syntax error: unexpected $end, expecting } or ,"),
    (r#"{foo="bar"} |~"#, 1, 15, "syntax error: unexpected $end, expecting STRING or ip"),
    (r#"{foo="bar"} "foo""#, 1, 13, "syntax error: unexpected STRING"),
    (r#"{foo="bar"} foo"#, 1, 13, "syntax error: unexpected IDENTIFIER"),
    (
        r#"sum_over_time({app="foo"} |= "bar" | json [5m])"#,
        1,
        1,
        "invalid aggregation sum_over_time without unwrap",
    ),
    (
        r#"count_over_time({app="foo"} |= "foo" | json | unwrap foo [5m])"#,
        1,
        1,
        "invalid aggregation count_over_time with unwrap",
    ),
    (
        r#"{foo="bar"} + {foo="bar"}"#,
        1,
        13,
        "unexpected type for left leg of binary operation (+): *syntax.MatchersExpr",
    ),
    (
        r#"sum(count_over_time({foo="bar"}[5m])) by (foo) - {foo="bar"} |= "x""#,
        1,
        48,
        "unexpected type for right leg of binary operation (-): *syntax.PipelineExpr",
    ),
    (
        r#"sum(count_over_time({foo="bar"}[5m])) by (foo) or 1"#,
        1,
        48,
        "unexpected literal for right leg of logical/set binary operation (or): 1.000000",
    ),
    (
        r#"1 unless sum(count_over_time({foo="bar"}[5m])) by (foo)"#,
        1,
        3,
        "unexpected literal for left leg of logical/set binary operation (unless): 1.000000",
    ),
    (r#"bool 1 > 1 > bool 1"#, 1, 1, "syntax error: unexpected bool"),
    (
        r#"sum_over_time({namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m]) by (foo)"#,
        1,
        1,
        "grouping not allowed for sum_over_time aggregation",
    ),
    (
        r#"sum_over_time(50,{namespace="tns"} | unwrap latency [5m])"#,
        1,
        1,
        "parameter 50 not supported for operation sum_over_time",
    ),
    (
        r#"quantile_over_time({namespace="tns"} | unwrap latency [5m])"#,
        1,
        1,
        "parameter required for operation quantile_over_time",
    ),
    (
        r#"quantile_over_time(foo,{namespace="tns"} | unwrap latency [5m])"#,
        1,
        20,
        "syntax error: unexpected IDENTIFIER, expecting NUMBER or { or (",
    ),
    (r#"vector(abc)"#, 1, 8, "syntax error: unexpected IDENTIFIER, expecting NUMBER"),
    (r#"#{app="foo"} | json"#, 1, 20, "syntax error: unexpected $end"),
    (
        r#"count without (rate({namespace="apps"}[15s]))"#,
        1,
        16,
        "syntax error: unexpected RATE, expecting IDENTIFIER or )",
    ),
    (
        r#"count_over_time({foo!="bar"}[5m])"#,
        1,
        17,
        super::ERR_EMPTY_COMPATIBLE,
    ),
    (r#"{app=~".*"}"#, 1, 1, super::ERR_EMPTY_COMPATIBLE),
    (
        r#"1 + count_over_time({app=~".+"}[5m]) + count_over_time({app=~".*"}[5m])"#,
        1,
        56,
        super::ERR_EMPTY_COMPATIBLE,
    ),
    // Ours.
    ("{}", 1, 1, super::ERR_EMPTY_COMPATIBLE),
    (r#"{a b}"#, 1, 4, "syntax error: unexpected IDENTIFIER, expecting = or =~ or !~ or !="),
    (r#"{a="b",}"#, 1, 8, "syntax error: unexpected }, expecting IDENTIFIER"),
    (r#"{a="b"} |= 5"#, 1, 12, "syntax error: unexpected NUMBER, expecting STRING or ip"),
    (
        r#"{a="b"} |~ "(a""#,
        1,
        12,
        "error parsing regexp: missing closing ): `(a`",
    ),
    (
        r#"{a=~"(a"}"#,
        1,
        5,
        "error parsing regexp: missing closing ): `^(?s:(a)$`",
    ),
    (r#"{a="b"} |= ip("1.1.1.1")"#, 1, 12, "ip() filters are not supported"),
    (r#"{a="b"} | ip=ip("1.1.1.1")"#, 1, 14, "ip() label filters are not supported"),
    (r#"{a="b"} |= "x" or"#, 1, 18, "syntax error: unexpected $end, expecting STRING or ip"),
    (
        r#"{a="b"} | regexp "(x)""#,
        1,
        18,
        "invalid regexp parser: at least one named capture must be supplied",
    ),
    (
        r#"{a="b"} | pattern "<a><b>""#,
        1,
        19,
        "invalid pattern parser: found consecutive capture '<a><b>': invalid expression",
    ),
    (
        r#"{a="b"} | pattern "<_> x""#,
        1,
        19,
        "invalid pattern parser: at least one capture is required",
    ),
    (
        r#"{a="b"} | label_format a=b, a="x""#,
        1,
        29,
        "multiple label name 'a' not allowed in a single format operation",
    ),
    (
        r#"{a="b"} | label_format a=5"#,
        1,
        26,
        "syntax error: unexpected NUMBER, expecting IDENTIFIER or STRING",
    ),
    (r#"{a="b"} | line_format"#, 1, 22, "syntax error: unexpected $end, expecting STRING"),
    (r#"{a="b"} | drop"#, 1, 15, "syntax error: unexpected $end, expecting IDENTIFIER"),
    (r#"{a="b"} | x > "5""#, 1, 15, "syntax error: unexpected STRING"),
    (r#"{a="b"} | x =~ 5"#, 1, 16, "syntax error: unexpected NUMBER, expecting STRING"),
    (r#"{a="b"} | x and"#, 1, 13, "syntax error: unexpected and"),
    (r#"{a="b"} | x="y" and"#, 1, 20, "syntax error: unexpected $end, expecting IDENTIFIER or ("),
    (r#"{a="b"} | x > - y"#, 1, 17, "syntax error: unexpected IDENTIFIER, expecting NUMBER"),
    (r#"{a="b"} | unwrap x"#, 1, 11, "syntax error: unexpected unwrap"),
    (r#"{a="b"} | "x""#, 1, 11, "syntax error: unexpected STRING"),
    (
        "{a=\"b\"}\n  | json\n  | x >",
        3,
        8,
        "syntax error: unexpected $end",
    ),
    (r#"{a="b"}[5m]"#, 1, 8, "syntax error: unexpected RANGE"),
    (r#"rate({a="b"})"#, 1, 13, "syntax error: unexpected )"),
    (r#"rate {a="b"}[5m]"#, 1, 1, "syntax error: unexpected IDENTIFIER"),
    (r#"rate({a="b"}[5m]) by (x)"#, 1, 1, "grouping not allowed for rate aggregation"),
    (
        r#"rate({a="b"}[5m] offset)"#,
        1,
        24,
        "syntax error: unexpected ), expecting DURATION",
    ),
    (
        r#"rate(({a="b"} |= "x"))"#,
        1,
        22,
        "syntax error: unexpected ), expecting RANGE",
    ),
    (
        r#"max_over_time({a="b"} | unwrap x | json [5m])"#,
        1,
        36,
        "syntax error: unexpected json, expecting IDENTIFIER or (",
    ),
    (
        r#"max_over_time({a="b"} | unwrap 5 [5m])"#,
        1,
        32,
        "syntax error: unexpected NUMBER, expecting IDENTIFIER or BYTES_CONV or DURATION_CONV or DURATION_SECONDS_CONV",
    ),
    (
        r#"rate(5, {a="b"}[5m])"#,
        1,
        1,
        "parameter 5 not supported for operation rate",
    ),
    (
        r#"topk(0, rate({a="b"}[5m]))"#,
        1,
        1,
        "invalid parameter (must be greater than 0) topk(0",
    ),
    (
        r#"sort by (a) (rate({a="b"}[5m]))"#,
        1,
        1,
        "sort and sort_desc doesn't allow grouping by ",
    ),
    (
        r#"sum by (a) (rate({a="b"}[5m])) by (b)"#,
        1,
        32,
        "syntax error: unexpected by",
    ),
    (r#"sum(rate({a="b"}[5m])) by (a"#, 1, 29, "syntax error: unexpected $end, expecting , or )"),
    // Not followed by `(`, a function name is an identifier.
    (r#"sum rate({a="b"}[5m])"#, 1, 1, "syntax error: unexpected IDENTIFIER"),
    (r#"sum by (a) rate({a="b"}[5m])"#, 1, 12, "syntax error: unexpected RATE, expecting ("),
    (r#"vector(-1)"#, 1, 8, "syntax error: unexpected -, expecting NUMBER"),
    (r#"vector(1"#, 1, 9, "syntax error: unexpected $end, expecting )"),
    (r#"- sum(rate({a="b"}[5m]))"#, 1, 3, "syntax error: unexpected SUM, expecting NUMBER"),
    (r#"rate({a="b"}[5m]) +"#, 1, 20, "syntax error: unexpected $end"),
    (
        r#"rate({a="b"}[5m]) * on x rate({a="b"}[5m])"#,
        1,
        24,
        "syntax error: unexpected IDENTIFIER, expecting (",
    ),
    (
        r#"label_replace(rate({a="b"}[5m]), "a", "b", "c", "[")"#,
        1,
        49,
        "invalid regex in label_replace: error parsing regexp: missing closing ]: `^(?:[)$`",
    ),
    (r#"{a="b"} /* unterminated"#, 1, 9, "comment not terminated"),
    ("{a=\"b\"} |= \"x\ny\"", 1, 12, "literal not terminated"),
    ("{a=\"b\"}\n|= `x\ny` |~ \"(\"", 3, 7, "error parsing regexp: missing closing ): `(`"),
];

#[test]
fn errors_name_the_position_and_lokis_message() {
    for (q, line, col, msg) in ERRORS {
        let e = parse(q).expect_err(q);
        assert_eq!((e.line, e.col, e.msg.as_str()), (*line, *col, *msg), "{q}");
        assert_eq!(
            e.to_string(),
            format!("parse error at line {line}, col {col}: {msg}")
        );
    }
}

#[test]
fn oversized_input_is_refused() {
    let q = format!(r#"{{a="{}"}}"#, "x".repeat(200_000));
    assert!(parse(&q)
        .unwrap_err()
        .msg
        .starts_with("input size too long (200006 > 131072)"));
}

#[test]
fn nesting_is_bounded_but_long_lists_are_not() {
    let deep = "(".repeat(100_000);
    assert_eq!(parse(&deep).unwrap_err().msg, "query is nested too deeply");
    // The deepest accepted queries fit in a 1 MiB stack even in a debug build.
    let run = std::thread::Builder::new().stack_size(1 << 20).spawn(|| {
        let sums = format!(
            "{}rate({{a=\"b\"}}[1m]){}",
            "sum(".repeat(60),
            ")".repeat(60)
        );
        assert!(parse(&sums).is_ok());
        let parens = format!("{{a=\"b\"}} | {}x=\"1\"{}", "(".repeat(60), ")".repeat(60));
        assert!(parse(&parens).is_ok());
        let ranges = format!("rate({}{{a=\"b\"}}[1m]{})", "(".repeat(60), ")".repeat(60));
        assert!(parse(&ranges).is_ok());
    });
    run.unwrap().join().unwrap();
    let filters = vec!["x=\"1\""; 5000].join(", ");
    assert!(parse(&format!("{{a=\"b\"}} | {filters}")).is_ok());
    let sums = vec!["rate({a=\"b\"}[1m])"; 3000].join(" + ");
    assert!(parse(&sums).is_ok());
}
