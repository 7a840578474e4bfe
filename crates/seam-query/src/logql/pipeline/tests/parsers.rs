//! `json`, `logfmt`, `regexp`, `pattern` and `unpack`.

use super::*;

type Pairs<'a> = &'a [(&'a str, &'a str)];

const OBJECT_ERR: &str = "Value looks like object, but can't find closing '}' symbol";

#[test]
fn json_all_fields() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            r#"{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}}}"#,
            &[
                ("app_extracted", "foo"),
                ("namespace", "prod"),
                ("pod_uuid", "foo"),
                ("pod_deployment_ref", "foobar"),
            ],
        ),
        // Arrays and nulls are skipped; numbers and booleans keep their JSON text.
        (
            r#"{"counter":1, "price": {"_net_":5.56909}, "tags":["a","b"], "n":null, "ok":true}"#,
            &[("counter", "1"), ("price__net_", "5.56909"), ("ok", "true")],
        ),
        // Escapes are decoded; invalid characters become `_`; a leading digit gets `_`.
        (
            r#"{"foo":"foo\\\"bar","cou-nter":1,"1st":"x","a":{"2b":"y"},"msg":"caf\u00e9"}"#,
            &[
                ("foo", r#"foo\"bar"#),
                ("cou_nter", "1"),
                ("_1st", "x"),
                ("a_2b", "y"),
                ("msg", "café"),
            ],
        ),
        // A blank key adds no prefix.
        (r#"{" ": {"foo":"bar"}}"#, &[("foo", "bar")]),
        ("{\"foo\":\"a\u{FFFD}b\"}", &[("foo", "a b")]),
        (
            "{n}",
            &[
                ("__error__", "JSONParserErr"),
                ("__error_details__", OBJECT_ERR),
            ],
        ),
        (
            "hello world",
            &[
                ("__error__", "JSONParserErr"),
                ("__error_details__", OBJECT_ERR),
            ],
        ),
        // Fields before a syntax error are kept.
        (
            r#"{"a":"1","b":"#,
            &[
                ("a", "1"),
                ("__error__", "JSONParserErr"),
                ("__error_details__", "Malformed JSON error"),
            ],
        ),
    ];
    for (line, parsed) in cases {
        check_parsed(&[json()], line, parsed);
    }
}

#[test]
fn json_collisions_per_category() {
    // A stream label keeps its value; the parsed one gets `_extracted`. A metadata label is
    // replaced by the parsed one.
    check(
        &[json()],
        r#"{"app":"foo","trace_id":"def","x":{"app":"z"}}"#,
        &[("app", "bar")],
        &[("trace_id", "abc"), ("user", "u1")],
        Some(Want {
            line: r#"{"app":"foo","trace_id":"def","x":{"app":"z"}}"#,
            stream: &[("app", "bar")],
            structured_metadata: &[("user", "u1")],
            parsed: &[
                ("app_extracted", "foo"),
                ("trace_id", "def"),
                ("x_app", "z"),
            ],
        }),
    );
}

const JSON_LINE: &str = r#"{"app":"foo","field with space":"value","null_field":null,"bool_field":false,"pod":{"uuid":"foo","deployment":{"ref":"foobar", "params": [1,2,3,"string_value"]}}}"#;

#[test]
fn json_with_paths() {
    let cases: &[(&str, &str, Pairs)] = &[
        ("app", "app", &[("app_extracted", "foo")]),
        ("test", r#"["field with space"]"#, &[("test", "value")]),
        ("uuid", "pod.uuid", &[("uuid", "foo")]),
        ("uuid", r#"pod["uuid"]"#, &[("uuid", "foo")]),
        ("uuid", r#"["pod"]["uuid"]"#, &[("uuid", "foo")]),
        ("uuid", r#"["pod"].uuid"#, &[("uuid", "foo")]),
        ("param", "pod.deployment.params[0]", &[("param", "1")]),
        (
            "param",
            "pod.deployment.params[3]",
            &[("param", "string_value")],
        ),
        (
            "params",
            "pod.deployment.params",
            &[("params", r#"[1,2,3,"string_value"]"#)],
        ),
        (
            "deployment",
            "pod.deployment",
            &[(
                "deployment",
                r#"{"ref":"foobar", "params": [1,2,3,"string_value"]}"#,
            )],
        ),
        ("bool", "bool_field", &[("bool", "false")]),
        // Missing paths and nulls give empty labels, which a label set does not hold.
        ("nope", "pod.nope", &[]),
        ("nf", "null_field", &[]),
    ];
    for (label, path, parsed) in cases {
        check_parsed(&[json_params(&[(label, path)])], JSON_LINE, parsed);
    }
    check_parsed(
        &[json_params(&[("uuid", "will.not.work")])],
        "invalid json",
        &[("__error__", "JSONParserErr")],
    );
    check_parsed(
        &[json_params(&[("app", "app")])],
        r#"{"app":"{ \"key\": \"value\"}"}"#,
        &[("app_extracted", r#"{ "key": "value"}"#)],
    );
}

#[test]
fn json_path_errors_name_the_expression() {
    let err = Pipeline::new(&[json_params(&[("app", "field with space")])])
        .err()
        .unwrap();
    assert_eq!(
        err,
        "cannot parse expression [field with space]: syntax error: unexpected FIELD"
    );
}

#[test]
fn logfmt_all_pairs() {
    let stream = &[("foo", "bar")];
    // (line, parsed without --strict, parsed with --strict)
    let cases: &[(&str, Pairs, Pairs)] = &[
        (
            r#"foobar="foo bar" latency=10ms"#,
            &[("foobar", "foo bar"), ("latency", "10ms")],
            &[("foobar", "foo bar"), ("latency", "10ms")],
        ),
        (
            r#"msg="say \"hi\"" n=1"#,
            &[("msg", r#"say "hi""#), ("n", "1")],
            &[("msg", r#"say "hi""#), ("n", "1")],
        ),
        (
            r#"foobar="foo\nbar\tbaz""#,
            &[("foobar", "foo\nbar\tbaz")],
            &[("foobar", "foo\nbar\tbaz")],
        ),
        (
            r#"foo="foo bar" foo.bar=10ms test-dash=foo"#,
            &[
                ("foo_extracted", "foo bar"),
                ("foo_bar", "10ms"),
                ("test_dash", "foo"),
            ],
            &[
                ("foo_extracted", "foo bar"),
                ("foo_bar", "10ms"),
                ("test_dash", "foo"),
            ],
        ),
        ("buzz bar=foo", &[("bar", "foo")], &[("bar", "foo")]),
        ("bar=\u{FFFD}f", &[("bar", " f")], &[("bar", " f")]),
        (
            "foobar====wqe=sdad1r",
            &[],
            &[
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 8 : unexpected '='",
                ),
            ],
        ),
        (
            r#"foo="foo bar" =notkey bar=10ms"#,
            &[("foo_extracted", "foo bar"), ("bar", "10ms")],
            &[
                ("foo_extracted", "foo bar"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 15 : unexpected '='",
                ),
            ],
        ),
        (
            r#"foo="foo bar" bu"zz=10ms"#,
            &[("foo_extracted", "foo bar")],
            &[
                ("foo_extracted", "foo bar"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    r#"logfmt syntax error at pos 17 : unexpected '"'"#,
                ),
            ],
        ),
        (
            r#"bar=bu=zz foo="foo bar""#,
            &[("foo_extracted", "foo bar")],
            &[
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 7 : unexpected '='",
                ),
            ],
        ),
        (
            "foo=\"foo bar\" b\u{FFFD}r=10ms",
            &[("foo_extracted", "foo bar")],
            &[
                ("foo_extracted", "foo bar"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 20 : invalid key",
                ),
            ],
        ),
        (
            r#"a=1 b="xx"#,
            &[("a", "1")],
            &[
                ("a", "1"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 10 : unterminated quoted value",
                ),
            ],
        ),
    ];
    for (line, loose, strict) in cases {
        for (is_strict, parsed) in [(false, loose), (true, strict)] {
            check_kept(&[logfmt(is_strict, false)], line, stream, parsed);
        }
    }
}

#[test]
fn logfmt_with_keys() {
    let line =
        r#"app=foo level=error spaces="value with ÜFT8👌" ts=2021-02-12T19:18:10.037940878Z"#;
    let run = |params: &[(&str, &str)], stream: &[(&str, &str)], parsed: &[(&str, &str)]| {
        let stage = Stage::Logfmt {
            strict: false,
            keep_empty: false,
            params: extractions(params),
        };
        check_kept(&[stage], line, stream, parsed);
    };
    run(
        &[("app", "app"), ("lvl", "level"), ("timestamp", "ts")],
        &[],
        &[
            ("app", "foo"),
            ("lvl", "error"),
            ("timestamp", "2021-02-12T19:18:10.037940878Z"),
        ],
    );
    run(
        &[("spaces", "spaces")],
        &[],
        &[("spaces", "value with ÜFT8👌")],
    );
    run(
        &[("app", "app")],
        &[("app", "bar")],
        &[("app_extracted", "foo")],
    );
    run(
        &[("lvl", "level")],
        &[("level", "debug")],
        &[("lvl", "error")],
    );
    run(&[("nope", "nope")], &[], &[]);
    let err = Pipeline::new(&[Stage::Logfmt {
        strict: false,
        keep_empty: false,
        params: extractions(&[("app", "field with space")]),
    }])
    .err()
    .unwrap();
    assert_eq!(
        err,
        "cannot parse expression [field with space]: syntax error: unexpected KEY"
    );
}

#[test]
fn regexp_parser() {
    let re = |r: &str| Stage::Regexp(r.into());
    check_kept(
        &[re("(?P<foo>foo|bar)buzz")],
        "blah",
        &[("app", "foo")],
        &[],
    );
    check_parsed(
        &[re("(?P<foo>.*)buzz")],
        "matchebuzz barbuzz",
        &[("foo", "matchebuzz bar")],
    );
    check_parsed(
        &[re("(?P<app>bar)buzz")],
        "barbuzz",
        &[("app_extracted", "bar")],
    );
    check_parsed(
        &[re(
            r"status=(?P<status>\w+),latency=(?P<latency>\w+)(ms|ns)",
        )],
        "status=200,latency=500ms",
        &[("status", "200"), ("latency", "500")],
    );
    for bad in ["w.*", "f(.*) (foo|bar)", "(?P<foo>foo)(?P<foo>barr)", "("] {
        assert!(Pipeline::new(&[re(bad)]).is_err(), "{bad}");
    }
    assert_eq!(
        Pipeline::new(&[re("w(.*)")]).err().unwrap(),
        "at least one named capture must be supplied"
    );
}

#[test]
fn pattern_parser() {
    let pat = |p: &str| Stage::Pattern(p.into());
    check_parsed(
        &[pat(
            r#"<ip> <userid> <user> [<_>] "<method> <path> <_>" <status> <size>"#,
        )],
        r#"127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
        &[
            ("ip", "127.0.0.1"),
            ("userid", "user-identifier"),
            ("user", "frank"),
            ("method", "GET"),
            ("path", "/apache_pb.gif"),
            ("status", "200"),
            ("size", "2326"),
        ],
    );
    check_parsed(
        &[pat(r#"<_> msg="<app> <path> (<status>) <duration>""#)],
        r#"level=debug caller=logging.go:66 msg="POST /loki/api/v1/push (204) 1.238734ms""#,
        &[
            ("app_extracted", "POST"),
            ("path", "/loki/api/v1/push"),
            ("status", "204"),
            ("duration", "1.238734ms"),
        ],
    );
    check_parsed(&[pat(r#"foo <f>""#)], "bar", &[]);
    assert!(Pipeline::new(&[pat("<_> only")]).is_err());
}

#[test]
fn unpack() {
    let cluster = &[("cluster", "us-central1")];
    let run = |line: &str, stream: &[(&str, &str)], out: &str, parsed: &[(&str, &str)]| {
        check(
            &[Stage::Unpack],
            line,
            stream,
            &[],
            Some(Want {
                line: out,
                stream,
                structured_metadata: &[],
                parsed,
            }),
        );
    };
    let packed =
        r#"{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}"#;
    run(
        packed,
        cluster,
        "some message",
        &[("app", "foo"), ("namespace", "prod")],
    );
    run(
        packed,
        &[("app", "bar"), ("cluster", "us-central1")],
        "some message",
        &[("app_extracted", "foo"), ("namespace", "prod")],
    );
    let not_object = r#""app":"foo","_entry":"some message""#;
    run(
        not_object,
        cluster,
        not_object,
        &[
            ("__error__", "JSONParserErr"),
            (
                "__error_details__",
                "expecting json object(6), but it is not",
            ),
        ],
    );
    // Without `_entry` nothing changes.
    let unpacked = r#"{"bar":1,"app":"foo"}"#;
    run(unpacked, cluster, unpacked, &[]);
    run(
        r#"{"_entry":"I0303 \"Pod status updated\" pod=\"etcd\" status=Running"}"#,
        cluster,
        r#"I0303 "Pod status updated" pod="etcd" status=Running"#,
        &[],
    );
    run(
        r#"{"foo.bar":"10ms","test-dash":"foo","_entry":"some message"}"#,
        cluster,
        "some message",
        &[("foo_bar", "10ms"), ("test_dash", "foo")],
    );
    run("", cluster, "", &[]);
}
