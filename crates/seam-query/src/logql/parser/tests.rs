//! Every construct parses to the expected tree and prints Loki's canonical form; the canonical
//! and pretty forms parse back to the same tree; and no input makes the parser panic.

use seam_store::MatchOp;

use super::super::ast::*;
use super::super::format::{prettify, prettify_with};
use super::{parse, parse_log_query};

/// (query, Loki's canonical form of it).
pub(super) const CANONICAL: &[(&str, &str)] = &[
    // Stream selectors.
    (r#"{foo="bar"}"#, r#"{foo="bar"}"#),
    (r#"{ foo = "bar", bar != "baz" }"#, r#"{foo="bar", bar!="baz"}"#),
    ("{foo=~`bar\\w+`, x!~\"y|z\"}", r#"{foo=~"bar\\w+", x!~"y|z"}"#),
    (r#"{app="a\"b\u00e9\x41"}"#, r#"{app="a\"béA"}"#),
    (r##"{app="#"}"##, r##"{app="#"}"##),
    // Line filters, with `or` alternatives.
    (
        r#"{app="foo"} |= "bar" != "baz" |~ "a.*" !~ "b" |> "<_> x" !> "y""#,
        r#"{app="foo"} |= "bar" != "baz" |~ "a.*" !~ "b" |> "<_> x" !> "y""#,
    ),
    (
        r#"{app="foo"} |= "foo" or "bar" |= "buzz" or "fizz""#,
        r#"{app="foo"} |= "foo" or "bar" |= "buzz" or "fizz""#,
    ),
    (r#"{app="foo"} |~ "a" or "b" or "c""#, r#"{app="foo"} |~ "a" or "b" or "c""#),
    (r#"{app="foo"} != "a" or "b""#, r#"{app="foo"} != "a" != "b""#),
    (r#"{app="foo"} |= `{"level":"error"}`"#, r#"{app="foo"} |= "{\"level\":\"error\"}""#),
    (r#"{app="foo"} |~ `{"level":"error"}`"#, r#"{app="foo"} |~ "{\"level\":\"error\"}""#),
    // Parsers.
    (r#"{app="foo"} | json"#, r#"{app="foo"} | json"#),
    (
        r#"{app="foo"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]""#,
        r#"{app="foo"} | json first_server="servers[0]",ua="request.headers[\"User-Agent\"]""#,
    ),
    (
        r#"{app="foo"} | json response_code, api_key="request.headers[\"X-API-KEY\"]""#,
        r#"{app="foo"} | json response_code="response_code",api_key="request.headers[\"X-API-KEY\"]""#,
    ),
    (r#"{app="foo"} | logfmt"#, r#"{app="foo"} | logfmt"#),
    (
        r#"{ foo = "bar" }|logfmt --strict --keep-empty|length>5d"#,
        r#"{foo="bar"} | logfmt --strict --keep-empty | length>120h0m0s"#,
    ),
    (
        r#"{app="foo"} | logfmt --strict msg="message", apiKey"#,
        r#"{app="foo"} | logfmt --strict msg="message",apiKey="apiKey""#,
    ),
    (
        r#"{app="foo"} | regexp "(?P<method>\\w+) (?P<path>[\\w|/]+)""#,
        r#"{app="foo"} | regexp "(?P<method>\\w+) (?P<path>[\\w|/]+)""#,
    ),
    (
        r#"{app="foo"} | pattern "<ip> - <_> [<ts>] <status>""#,
        r#"{app="foo"} | pattern "<ip> - <_> [<ts>] <status>""#,
    ),
    (r#"{app="foo"} |= "x" | unpack | json"#, r#"{app="foo"} |= "x" | unpack | json"#),
    // Label filters: and binds tighter than or; `,` and juxtaposition take the rest.
    (
        r#"{app="foo"} | json | latency >= 250ms or ( status_code < 500 and status_code > 200)"#,
        r#"{app="foo"} | json | ( latency>=250ms or ( status_code<500 , status_code>200 ) )"#,
    ),
    (
        r#"{app="foo"} | json | status_code < 500 or status_code > 200 and latency >= 250ms"#,
        r#"{app="foo"} | json | ( status_code<500 or ( status_code>200 , latency>=250ms ) )"#,
    ),
    (
        r#"{app="foo"} | json | (duration > 1s or status!= 200) and method!="POST""#,
        r#"{app="foo"} | json | ( ( duration>1s or status!=200 ) , method!="POST" )"#,
    ),
    (
        r#"{app="foo"} | foo="bar" buzz!="blip", blop=~"boop" or fuzz==5"#,
        r#"{app="foo"} | ( foo="bar" , ( buzz!="blip" , ( blop=~"boop" or fuzz==5 ) ) )"#,
    ),
    (
        r#"{app="foo"} | a="1" and b="2" and c="3""#,
        r#"{app="foo"} | ( ( a="1" , b="2" ) , c="3" )"#,
    ),
    (
        r#"{app="foo"} | x > -5.5 | y = 1e3 | z != +2 | w == 0.25"#,
        r#"{app="foo"} | x>-5.5 | y==1000 | z!=2 | w==0.25"#,
    ),
    (
        r#"{app="foo"} | size >= 20MB | size < 2KB | d > 1m | d <= 1.5s | d != 250ms"#,
        r#"{app="foo"} | size>=20MB | size<2.0kB | d>1m0s | d<=1.5s | d!=250ms"#,
    ),
    (r#"{app="foo"} | __error__="" | level=~"err.*""#, r#"{app="foo"} | __error__="" | level=~"err.*""#),
    (
        r#"{app="foo"} | path=~"/api/v[0-9]+" | level=~"error|warn" | x!~"a|b" | y=~"a`b+""#,
        r#"{app="foo"} | path=~`/api/v[0-9]+` | level=~"error|warn" | x!~"a|b" | y=~"a`b+""#,
    ),
    // Loki's own canonical-form tests.
    (
        r#"sum(rate({cluster="beep", namespace="boop"} | msg=~`.*?(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) /loki/api/(?i)(\d+[a-z]|[a-z]+\d)\w*/query_range`[1d]))"#,
        r#"sum(rate({cluster="beep", namespace="boop"} | msg=~`.*?(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) /loki/api/(?i)(\d+[a-z]|[a-z]+\d)\w*/query_range`[1d]))"#,
    ),
    (
        r#"{cluster="beep", namespace="boop"} | msg=~"\\w.*""#,
        r#"{cluster="beep", namespace="boop"} | msg=~`\w.*`"#,
    ),
    (r#"{ foo = "bar" }|logfmt|rate="a""#, r#"{foo="bar"} | logfmt | rate="a""#),
    // Formatting stages.
    (
        r#"{app="foo"} | line_format "{{.a}} \"x\"""#,
        r#"{app="foo"} | line_format "{{.a}} \"x\"""#,
    ),
    (
        r#"{app="foo"} | label_format foo=bar,status_code="buzz{{.bar}}""#,
        r#"{app="foo"} | label_format foo=bar,status_code="buzz{{.bar}}""#,
    ),
    (r#"{app="foo"} | drop a, b="x", c=~"y.*""#, r#"{app="foo"} | drop a,b="x",c=~"y.*""#),
    (r#"{app="foo"} | keep a, b!="x""#, r#"{app="foo"} | keep a,b!="x""#),
    (r#"{app="foo"} | decolorize"#, r#"{app="foo"} | decolorize"#),
    // Comments and newlines.
    ("{app=\"foo\"}\n\t# |= \"bar\"\n\t| json # trailing", r#"{app="foo"} | json"#),
    (r#"({app="foo"} |= "x")"#, r#"{app="foo"} |= "x""#),
    // Range aggregations and the forms of a log range.
    (r#"count_over_time({foo="bar"}[5m])"#, r#"count_over_time({foo="bar"}[5m])"#),
    (r#"rate({foo="bar"} |= "x" [1h30m])"#, r#"rate({foo="bar"} |= "x"[1h30m])"#),
    (
        r#"count_over_time({foo="bar"}[12h] |= "error")"#,
        r#"count_over_time({foo="bar"} |= "error"[12h])"#,
    ),
    (
        r#"bytes_over_time(({foo="bar"} |= "baz")[5m])"#,
        r#"bytes_over_time({foo="bar"} |= "baz"[5m])"#,
    ),
    (r#"bytes_rate(({foo="bar"}[5m]))"#, r#"bytes_rate({foo="bar"}[5m])"#),
    (
        r#"absent_over_time({foo="bar"}[1w] offset 1h)"#,
        r#"absent_over_time({foo="bar"}[1w] offset 1h0m0s)"#,
    ),
    (
        r#"sum_over_time({a="b"} | json | unwrap bytes(size) | __error__="" [5m] offset -5m)"#,
        r#"sum_over_time({a="b"} | json | unwrap bytes(size) | __error__=""[5m] offset -5m0s)"#,
    ),
    (
        r#"quantile_over_time(0.99, {a="b"} | unwrap duration_seconds(latency) [1m]) by (cluster)"#,
        r#"quantile_over_time(0.99,{a="b"} | unwrap duration(latency)[1m]) by (cluster)"#,
    ),
    (
        r#"max_over_time({app="foo"} | unwrap bar [5m]) without ()"#,
        r#"max_over_time({app="foo"} | unwrap bar[5m]) without ()"#,
    ),
    (
        r#"avg_over_time({a="b"}[5m] offset 1m | logfmt | unwrap x) by (c, d)"#,
        r#"avg_over_time({a="b"} | logfmt | unwrap x[5m] offset 1m0s) by (c,d)"#,
    ),
    (
        r#"min_over_time(({a="b"} | unwrap x | y > 1)[1d])"#,
        r#"min_over_time({a="b"} | unwrap x | y>1[1d])"#,
    ),
    (
        r#"rate_counter({a="b"} | unwrap x [1m])"#,
        r#"rate_counter({a="b"} | unwrap x[1m])"#,
    ),
    (
        r#"first_over_time({a="b"} | unwrap x [1m]) + last_over_time({a="b"} | unwrap x [1m])"#,
        r#"(first_over_time({a="b"} | unwrap x[1m]) + last_over_time({a="b"} | unwrap x[1m]))"#,
    ),
    (
        r#"stddev_over_time({a="b"} | unwrap x [90s]) / stdvar_over_time({a="b"} | unwrap x [1y])"#,
        r#"(stddev_over_time({a="b"} | unwrap x[1m30s]) / stdvar_over_time({a="b"} | unwrap x[1y]))"#,
    ),
    // Vector aggregations, with the grouping before or after.
    (r#"sum(rate({a="b"}[5m]))"#, r#"sum(rate({a="b"}[5m]))"#),
    (
        r#"sum by (foo, bar) (rate({a="b"}[5m]))"#,
        r#"sum by (foo,bar)(rate({a="b"}[5m]))"#,
    ),
    (
        r#"avg(count_over_time({a="b"}[5h])) by (bar,foo)"#,
        r#"avg by (bar,foo)(count_over_time({a="b"}[5h]))"#,
    ),
    (r#"avg(count_over_time({a="b"}[5h])) by ()"#, r#"avg(count_over_time({a="b"}[5h]))"#),
    (
        r#"max without () (count_over_time({a="b"}[5h]))"#,
        r#"max without ()(count_over_time({a="b"}[5h]))"#,
    ),
    (
        r#"topk(10,count_over_time({ foo = "bar" }[5h])) without (bar)"#,
        r#"topk without (bar)(10,count_over_time({foo="bar"}[5h]))"#,
    ),
    (
        r#"bottomk(30 ,sum(rate({ foo = "bar" }[5h])) by (foo))"#,
        r#"bottomk(30,sum by (foo)(rate({foo="bar"}[5h])))"#,
    ),
    (
        r#"sort(count(min(stddev(stdvar(rate({a="b"}[1m]))))))"#,
        r#"sort(count(min(stddev(stdvar(rate({a="b"}[1m]))))))"#,
    ),
    (r#"sort_desc(rate({a="b"}[1m]))"#, r#"sort_desc(rate({a="b"}[1m]))"#),
    (
        r#"SUM BY (a) (RATE({a="b"}[5m]))"#,
        r#"sum by (a)(rate({a="b"}[5m]))"#,
    ),
    // Binary operators: PromQL precedences, `^` to the right, modifiers.
    (
        r#"sum(rate({a="b"}[5m])) / sum(rate({a="c"}[5m]))"#,
        r#"(sum(rate({a="b"}[5m])) / sum(rate({a="c"}[5m])))"#,
    ),
    (
        r#"rate({a="b"}[1m]) + rate({a="c"}[1m]) * rate({a="d"}[1m])"#,
        r#"(rate({a="b"}[1m]) + (rate({a="c"}[1m]) * rate({a="d"}[1m])))"#,
    ),
    (
        r#"rate({a="b"}[1m]) - rate({a="c"}[1m]) - rate({a="d"}[1m])"#,
        r#"((rate({a="b"}[1m]) - rate({a="c"}[1m])) - rate({a="d"}[1m]))"#,
    ),
    (
        r#"rate({a="b"}[1m]) ^ rate({a="c"}[1m]) ^ 2"#,
        r#"(rate({a="b"}[1m]) ^ (rate({a="c"}[1m]) ^ 2))"#,
    ),
    (
        r#"rate({a="b"}[1m]) or rate({a="c"}[1m]) and rate({a="d"}[1m]) unless rate({a="e"}[1m])"#,
        r#"(rate({a="b"}[1m]) or ((rate({a="c"}[1m]) and rate({a="d"}[1m])) unless rate({a="e"}[1m])))"#,
    ),
    (
        r#"rate({a="b"}[1m]) > bool 5 % 3 == 2"#,
        r#"((rate({a="b"}[1m]) > bool 2) == 2)"#,
    ),
    (
        r#"sum(rate({a="b"}[1m])) by (x) * on(instance, job) group_left (node) sum(rate({a="c"}[1m])) by (x)"#,
        r#"(sum by (x)(rate({a="b"}[1m])) * on (instance,job) group_left (node) sum by (x)(rate({a="c"}[1m])))"#,
    ),
    (
        r#"rate({a="b"}[1m]) + ignoring (bar) rate({a="c"}[1m])"#,
        r#"(rate({a="b"}[1m]) + ignoring (bar)  rate({a="c"}[1m]))"#,
    ),
    (
        r#"sum by (app,machine) (count_over_time({app="foo"}[1m])) > bool on () group_right (app) sum by (app) (count_over_time({app="foo"}[1m]))"#,
        r#"(sum by (app,machine)(count_over_time({app="foo"}[1m])) > bool on () group_right (app) sum by (app)(count_over_time({app="foo"}[1m])))"#,
    ),
    (
        r#"rate({a="b"}[1m]) / on (x) group_right rate({a="c"}[1m])"#,
        r#"(rate({a="b"}[1m]) / on (x) group_right rate({a="c"}[1m]))"#,
    ),
    // Literals fold; vector(n); label_replace; parentheses.
    ("1 + 1 + 1", "3"),
    ("1 + -2 / 1", "-1"),
    ("2 ^ 3 ^ 2", "512"),
    ("(1 + 1) * 3 >= 6", "1"),
    ("1000000 * 2", "2e+06"),
    ("vector(1)", "vector(1.000000)"),
    (
        r#"sum(count_over_time({foo="bar"}[5m])) or vector(0)"#,
        r#"(sum(count_over_time({foo="bar"}[5m])) or vector(0.000000))"#,
    ),
    (
        r#"sum(count_over_time({foo="bar"}[5m])) by (foo) + 1 / 2"#,
        r#"(sum by (foo)(count_over_time({foo="bar"}[5m])) + 0.5)"#,
    ),
    (
        r#"label_replace(rate({a="b"}[5m]), "foo", "$1", "service", "(.*):.*")"#,
        r#"label_replace(rate({a="b"}[5m]),"foo","$1","service","(.*):.*")"#,
    ),
    (
        r#"(sum(rate({a="b"}[5m])))"#,
        r#"sum(rate({a="b"}[5m]))"#,
    ),
    (
        "sum by (job) (\n  count_over_time({namespace=\"tns\"} |= \"level=error\"[5m])\n/\n  count_over_time({namespace=\"tns\"}[5m])\n) * 100",
        r#"(sum by (job)((count_over_time({namespace="tns"} |= "level=error"[5m]) / count_over_time({namespace="tns"}[5m]))) * 100)"#,
    ),
];

#[test]
fn canonical_forms() {
    for (q, want) in CANONICAL {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(e.to_string(), *want, "{q}");
    }
}

#[test]
fn canonical_and_pretty_forms_parse_back() {
    for (q, _) in CANONICAL {
        let e = parse(q).unwrap();
        let back = parse(&e.to_string()).unwrap_or_else(|err| panic!("{q}: {err}"));
        assert_eq!(strip_parens_expr(back), strip_parens_expr(e.clone()), "{q}");
        // Loki's pretty form drops `on ()` and prints `without ()` and negative offsets in
        // forms it cannot read back.
        if q.contains("without ()") || q.contains("offset -") || q.contains("on ()") {
            continue;
        }
        for max in [20, 100] {
            let pretty = prettify_with(&e, max);
            let back = parse(&pretty).unwrap_or_else(|err| panic!("{q}:\n{pretty}\n{err}"));
            assert_eq!(
                strip_parens_expr(back),
                strip_parens_expr(e.clone()),
                "{pretty}"
            );
        }
    }
}

/// Canonical forms add parentheses around binary operations and drop the user's, so trees are
/// compared without them.
fn strip_parens_expr(e: Expr) -> Expr {
    fn strip(e: SampleExpr) -> SampleExpr {
        match e {
            SampleExpr::Paren(inner) => strip(*inner),
            SampleExpr::Vector {
                op,
                inner,
                param,
                grouping,
            } => SampleExpr::Vector {
                op,
                inner: Box::new(strip(*inner)),
                param,
                // `by ()` prints as no grouping.
                grouping: grouping.filter(|g| g.without || !g.labels.is_empty()),
            },
            SampleExpr::Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
            } => SampleExpr::Binary {
                op,
                lhs: Box::new(strip(*lhs)),
                rhs: Box::new(strip(*rhs)),
                return_bool,
                matching,
            },
            SampleExpr::LabelReplace {
                inner,
                dst,
                replacement,
                src,
                regex,
            } => SampleExpr::LabelReplace {
                inner: Box::new(strip(*inner)),
                dst,
                replacement,
                src,
                regex,
            },
            other => other,
        }
    }
    match e {
        Expr::Sample(s) => Expr::Sample(strip(s)),
        log => log,
    }
}

fn log(q: &str) -> LogExpr {
    parse_log_query(q).unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn sample(q: &str) -> SampleExpr {
    match parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) {
        Expr::Sample(s) => s,
        Expr::Log(_) => panic!("{q} is a log query"),
    }
}

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

#[test]
fn selector_and_line_filter_trees() {
    let l = log(r#"{app="foo", env=~"prod|dev"} |= "a" or "b" != "c" or "d""#);
    assert_eq!(
        l.matchers,
        vec![
            m("app", MatchOp::Equal, "foo"),
            m("env", MatchOp::Regex, "prod|dev")
        ]
    );
    let lf = |op, p: &str, or: &[&str]| {
        Stage::LineFilter(LineFilter {
            op,
            pattern: p.into(),
            or: or.iter().map(|s| s.to_string()).collect(),
        })
    };
    assert_eq!(
        l.pipeline,
        vec![
            lf(LineFilterOp::Contains, "a", &["b"]),
            lf(LineFilterOp::NotContains, "c", &[]),
            lf(LineFilterOp::NotContains, "d", &[]),
        ]
    );
}

#[test]
fn stage_trees() {
    let l = log(
        r#"{a="b"} | logfmt --keep-empty x, y="z" | regexp "(?P<n>\\d+)" | label_format a=b, c="{{.d}}" | drop e, f="g""#,
    );
    assert_eq!(
        l.pipeline[0],
        Stage::Logfmt {
            strict: false,
            keep_empty: true,
            params: vec![
                LabelExtraction {
                    label: "x".into(),
                    expr: "x".into()
                },
                LabelExtraction {
                    label: "y".into(),
                    expr: "z".into()
                },
            ],
        }
    );
    assert_eq!(l.pipeline[1], Stage::Regexp(r"(?P<n>\d+)".into()));
    assert_eq!(
        l.pipeline[2],
        Stage::LabelFormat(vec![
            LabelFormat::Rename {
                dst: "a".into(),
                src: "b".into()
            },
            LabelFormat::Template {
                dst: "c".into(),
                template: "{{.d}}".into()
            },
        ])
    );
    assert_eq!(
        l.pipeline[3],
        Stage::Drop(vec![
            LabelSelection::Name("e".into()),
            LabelSelection::Matcher(m("f", MatchOp::Equal, "g")),
        ])
    );
}

#[test]
fn label_filter_values() {
    let l = log(r#"{a="b"} | d >= 250ms, s < 1.5KiB or n == -3e2"#);
    let Stage::LabelFilter(f) = &l.pipeline[0] else {
        panic!("not a label filter")
    };
    let want = LabelFilter::And(
        Box::new(LabelFilter::Duration {
            name: "d".into(),
            op: CmpOp::Ge,
            value_ns: 250_000_000,
        }),
        Box::new(LabelFilter::Or(
            Box::new(LabelFilter::Bytes {
                name: "s".into(),
                op: CmpOp::Lt,
                value: 1536,
            }),
            Box::new(LabelFilter::Number {
                name: "n".into(),
                op: CmpOp::Eq,
                value: -300.0,
            }),
        )),
    );
    assert_eq!(f, &want);
}

#[test]
fn range_trees() {
    let SampleExpr::Range {
        op,
        range,
        param,
        grouping,
    } = sample(
        r#"quantile_over_time(.5, {a="b"}[1h] offset 2m | json | unwrap duration(d) | __error__="") by (x)"#,
    )
    else {
        panic!("not a range aggregation")
    };
    assert_eq!(op, RangeOp::QuantileOverTime);
    assert_eq!(param, Some(0.5));
    assert_eq!(
        grouping,
        Some(Grouping {
            without: false,
            labels: vec!["x".into()]
        })
    );
    assert_eq!(range.range_ns, 3_600_000_000_000);
    assert_eq!(range.offset_ns, 120_000_000_000);
    assert_eq!(range.log.pipeline, vec![Stage::Json(vec![])]);
    assert_eq!(
        range.unwrap,
        Some(Unwrap {
            label: "d".into(),
            conv: UnwrapConv::Duration,
            post_filters: vec![LabelFilter::String(m("__error__", MatchOp::Equal, ""))],
        })
    );
}

#[test]
fn metric_trees() {
    let SampleExpr::Vector {
        op, param, inner, ..
    } = sample(r#"topk(3, (rate({a="b"}[1m])))"#)
    else {
        panic!("not a vector aggregation")
    };
    assert_eq!((op, param), (VectorOp::Topk, Some(3.0)));
    assert!(matches!(*inner, SampleExpr::Paren(_)));
    let SampleExpr::Binary {
        op,
        return_bool,
        matching,
        rhs,
        ..
    } = sample(r#"rate({a="b"}[1m]) > bool ignoring(x) group_left(y, z) 1"#)
    else {
        panic!("not a binary operation")
    };
    assert_eq!((op, return_bool), (BinOp::Gt, true));
    assert_eq!(
        matching,
        Some(VectorMatching {
            on: false,
            labels: vec!["x".into()],
            card: Cardinality::ManyToOne(vec!["y".into(), "z".into()]),
        })
    );
    assert_eq!(*rhs, SampleExpr::Literal(1.0));
    assert_eq!(sample("vector(2.5)"), SampleExpr::VectorLiteral(2.5));
    assert_eq!(sample("1 >= 1 > 1"), SampleExpr::Literal(0.0));
    assert!(sample("1 / 0").to_string() == "NaN");
}

#[test]
fn log_queries_only_where_asked() {
    assert_eq!(log(r#"{a="b"} |= "x""#).pipeline.len(), 1);
    let e = parse_log_query(r#"rate({a="b"}[1m])"#).unwrap_err();
    assert_eq!(e.msg, "only log selector is supported");
}

#[test]
fn prettify_matches_lokis_tests() {
    // Loki's prettier_test.go, which sets the line length to 20.
    let cases: &[(&str, &str)] = &[
        (
            r#"{job="loki", instance="localhost"}|logfmt|level="error" "#,
            "{job=\"loki\", instance=\"localhost\"}\n  | logfmt\n  | level=\"error\"",
        ),
        (
            r#"{job="loki", instance="localhost"}|logfmt|label_format dst="{{.src}}""#,
            "{job=\"loki\", instance=\"localhost\"}\n  | logfmt\n  | label_format dst=\"{{.src}}\"",
        ),
        (
            r#"count_over_time({job="loki", instance="localhost"}|= "error"[5m] offset 20m)"#,
            "count_over_time(\n  {job=\"loki\", instance=\"localhost\"}\n    |= \"error\" [5m] offset 20m\n)",
        ),
        (
            r#"quantile_over_time(0.99,{container="ingress-nginx",service="hosted-grafana"}| json| unwrap response_latency_seconds| __error__=""[1m]) by (cluster)"#,
            "quantile_over_time(\n  0.99,\n  {container=\"ingress-nginx\", service=\"hosted-grafana\"}\n    | json\n    | unwrap response_latency_seconds\n    | __error__=\"\" [1m]\n) by (cluster)",
        ),
        (
            r#"{job="loki", namespace="loki-prod", container="nginx-ingress"}| json first_server="servers[0]", ua="request.headers[\"User-Agent\"]" | level="error""#,
            "{job=\"loki\", namespace=\"loki-prod\", container=\"nginx-ingress\"}\n  | json first_server=\"servers[0]\",ua=\"request.headers[\\\"User-Agent\\\"]\"\n  | level=\"error\"",
        ),
        (
            r#"topk(5, count_over_time({foo="bar",namespace="loki",instance="localhost"}[5m])) by (container)"#,
            "topk by (container)(\n  5,\n  count_over_time(\n    {foo=\"bar\", namespace=\"loki\", instance=\"localhost\"} [5m]\n  )\n)",
        ),
        (
            r#"label_replace(rate({job="api-server",service="a:c"}|= "err" [5m]), "foo", "$1", "service", "(.*):.*")"#,
            "label_replace(\n  rate(\n    {job=\"api-server\", service=\"a:c\"}\n      |= \"err\" [5m]\n  ),\n  \"foo\",\n  \"$1\",\n  \"service\",\n  \"(.*):.*\"\n)",
        ),
        (
            r#"sum(rate({job="loki"}[5m])) + sum(rate({job="loki-dev"}[5m])) / sum(rate({job="loki-prod"}[5m]))"#,
            "  sum(\n    rate(\n      {job=\"loki\"} [5m]\n    )\n  )\n+\n    sum(\n      rate(\n        {job=\"loki-dev\"} [5m]\n      )\n    )\n  /\n    sum(\n      rate(\n        {job=\"loki-prod\"} [5m]\n      )\n    )",
        ),
        (
            r#"sum(rate({job="loki"}[5m])) * on(instance, job) group_left (node) sum(rate({job="loki-prod"}[5m]))"#,
            "  sum(\n    rate(\n      {job=\"loki\"} [5m]\n    )\n  )\n* on (instance, job) group_left (node)\n  sum(\n    rate(\n      {job=\"loki-prod\"} [5m]\n    )\n  )",
        ),
    ];
    for (q, want) in cases {
        let e = parse(q).unwrap();
        assert_eq!(prettify_with(&e, 20), *want, "{q}");
    }
}

#[test]
fn prettify_breaks_only_long_queries() {
    let short = parse(r#"sum by (a) (rate({job="x"} |= "err" [5m]))"#).unwrap();
    assert_eq!(
        prettify(&short),
        r#"sum by (a)(rate({job="x"} |= "err"[5m]))"#
    );
    let long = parse(
        r#"sum by (namespace) (rate({job="ingress-nginx", namespace="production"} |= "error" != "timeout" | json | status >= 500 | line_format "{{.status}} {{.path}}" [5m]))"#,
    )
    .unwrap();
    assert_eq!(
        prettify(&long),
        "sum by (namespace)(\n  rate(\n    {job=\"ingress-nginx\", namespace=\"production\"}\n      |= \"error\" != \"timeout\"\n      | json\n      | status>=500\n      | line_format \"{{.status}} {{.path}}\" [5m]\n  )\n)"
    );
}

/// Variants of every test query: each prefix and suffix at every character boundary, each
/// character dropped, and tokens inserted at each boundary.
fn mutations(q: &str) -> Vec<String> {
    let cuts: Vec<usize> = q.char_indices().map(|(i, _)| i).chain([q.len()]).collect();
    let inserts = [
        "(",
        ")",
        "|",
        "\"",
        "`",
        "[",
        "]",
        "{",
        "}",
        "-",
        "#",
        "1",
        " by ",
        " or ",
        ",",
        "=",
        "[5m]",
        "| unwrap x",
        "ip(",
        "\\",
    ];
    let mut out = Vec::new();
    for (n, &i) in cuts.iter().enumerate() {
        out.push(q[..i].to_string());
        out.push(q[i..].to_string());
        if let Some(&j) = cuts.get(n + 1) {
            out.push(format!("{}{}", &q[..i], &q[j..]));
        }
        for ins in inserts {
            out.push(format!("{}{ins}{}", &q[..i], &q[i..]));
        }
    }
    out
}

#[test]
fn never_panics_on_mutated_queries() {
    let queries = CANONICAL
        .iter()
        .map(|(q, _)| *q)
        .chain(super::tests_errors::ERRORS.iter().map(|(q, ..)| *q));
    let mut checked = 0usize;
    for q in queries {
        for v in mutations(q) {
            // Ok or Err are both fine; a panic fails the test.
            if let Ok(e) = parse(&v) {
                let _ = prettify(&e);
            }
            checked += 1;
        }
    }
    assert!(checked > 50_000, "{checked}");
}
