//! `line_format`, `label_format`, `drop`, `keep`, `decolorize`.

use seam_store::MatchOp;

use super::*;

const LINE: &str = "level=error msg=boom n=7";
const PARSED: &[(&str, &str)] = &[("level", "error"), ("msg", "boom"), ("n", "7")];

fn line_format(t: &str) -> Stage {
    Stage::LineFormat(t.into())
}

#[test]
fn line_format_renders_templates() {
    let cases: &[(&str, &str)] = &[
        ("{{.app}} {{.msg | ToUpper}}", "api BOOM"),
        ("{{.msg}}", "boom"),
        ("[{{.missing}}]", "[]"),
        ("{{ __line__ | trunc 11 }}", "level=error"),
        (
            r#"{{ if eq .level "error" }}E{{ else if eq .level "warn" }}W{{ else }}I{{ end }}"#,
            "E",
        ),
        (r#"{{ printf "%s-%05d" .app (int .n) }}"#, "api-00007"),
        (r#"{{ .missing | default "none" }}"#, "none"),
        (
            "{{ range $k, $v := . }}{{$k}}={{$v}};{{ end }}",
            "app=api;level=error;msg=boom;n=7;",
        ),
        ("{{- /* trimmed */ -}}  {{ .level -}}  !", "error!"),
        (
            r#"{{ __timestamp__ | date "2006-01-02T15:04:05Z07:00" }}"#,
            "1970-01-01T00:00:00Z",
        ),
    ];
    for (t, want) in cases {
        check(
            &[logfmt(false, false), line_format(t)],
            LINE,
            &[("app", "api")],
            &[],
            Some(Want {
                line: want,
                stream: &[("app", "api")],
                structured_metadata: &[],
                parsed: PARSED,
            }),
        );
    }
}

#[test]
fn line_format_failures() {
    // A render failure keeps the line and sets the error.
    let mut parsed = PARSED.to_vec();
    parsed.push(("__error__", "TemplateFormatErr"));
    parsed.push((
        "__error_details__",
        r#"template: line:1:10: executing "line" at <ToUpper>: wrong number of args for ToUpper: want 1 got 2"#,
    ));
    check_kept(
        &[logfmt(false, false), line_format("{{ .msg | ToUpper 3 }}")],
        LINE,
        &[],
        &parsed,
    );
    // `{{.__error__}}` alone (the single-field shortcut) prints the error as a longer template
    // does.
    for t in ["{{.__error__}}", "{{ print .__error__ }}"] {
        check(
            &[json(), line_format(t)],
            "{n}",
            &[],
            &[],
            Some(Want {
                line: "JSONParserErr",
                stream: &[],
                structured_metadata: &[],
                parsed: &[
                    ("__error__", "JSONParserErr"),
                    (
                        "__error_details__",
                        "Value looks like object, but can't find closing '}' symbol",
                    ),
                ],
            }),
        );
    }
    // A template that does not parse fails the query, naming the template.
    assert_eq!(
        Pipeline::new(&[line_format("{{ .app | nope }}")])
            .err()
            .unwrap(),
        r#"invalid line template: template: line:1: function "nope" not defined"#
    );
    assert_eq!(
        Pipeline::new(&[line_format("{{ if .a }}x")]).err().unwrap(),
        "invalid line template: template: line:1: unexpected EOF"
    );
}

#[test]
fn label_format_renames_and_templates() {
    let lf = |f: &[(&str, Result<&str, &str>)]| {
        Stage::LabelFormat(
            f.iter()
                .map(|(dst, v)| match v {
                    Ok(src) => LabelFormat::Rename {
                        dst: dst.to_string(),
                        src: src.to_string(),
                    },
                    Err(t) => LabelFormat::Template {
                        dst: dst.to_string(),
                        template: t.to_string(),
                    },
                })
                .collect(),
        )
    };
    // A renamed stream label becomes a parsed label.
    check(
        &[lf(&[("service", Ok("app"))])],
        "x",
        &[("app", "api"), ("env", "prod")],
        &[],
        Some(Want {
            line: "x",
            stream: &[("env", "prod")],
            structured_metadata: &[],
            parsed: &[("service", "api")],
        }),
    );
    // Renaming a missing label does nothing.
    check_kept(
        &[lf(&[("service", Ok("nope"))])],
        "x",
        &[("app", "api")],
        &[],
    );
    // Every template of one stage reads the labels as they were at its first template.
    check(
        &[
            logfmt(false, false),
            lf(&[
                ("lvl", Err("{{ .level | ToUpper }}")),
                ("a", Err("x")),
                ("b", Err("{{ .a }}-{{ .lvl }}")),
            ]),
        ],
        LINE,
        &[("a", "orig")],
        &[],
        Some(Want {
            line: LINE,
            stream: &[],
            structured_metadata: &[],
            parsed: &[
                ("level", "error"),
                ("msg", "boom"),
                ("n", "7"),
                ("lvl", "ERROR"),
                ("a", "x"),
                ("b", "orig-"),
            ],
        }),
    );
    // Failures: duplicate names and `__error__` are refused; a render failure sets the error.
    assert_eq!(
        Pipeline::new(&[lf(&[("a", Ok("b")), ("a", Err("x"))])])
            .err()
            .unwrap(),
        "multiple label name 'a' not allowed in a single format operation"
    );
    assert_eq!(
        Pipeline::new(&[lf(&[("__error__", Err("x"))])])
            .err()
            .unwrap(),
        "__error__ cannot be formatted"
    );
    assert_eq!(
        Pipeline::new(&[lf(&[("a", Err("{{ end }}"))])])
            .err()
            .unwrap(),
        "invalid template for label 'a': template: label:1: unexpected {{end}}"
    );
    check(
        &[lf(&[("x", Err("{{ div 1 0 }}"))])],
        "x",
        &[],
        &[],
        Some(Want {
            line: "x",
            stream: &[],
            structured_metadata: &[],
            parsed: &[
                ("__error__", "TemplateFormatErr"),
                (
                    "__error_details__",
                    r#"template: label:1:3: executing "label" at <div>: error calling div: runtime error: integer divide by zero"#,
                ),
            ],
        }),
    );
}

fn names(items: &[&str]) -> Vec<LabelSelection> {
    items
        .iter()
        .map(|n| LabelSelection::Name(n.to_string()))
        .collect()
}

fn sel(name: &str, op: MatchOp, value: &str) -> LabelSelection {
    LabelSelection::Matcher(matcher(name, op, value))
}

#[test]
fn drop_and_keep() {
    let stream = &[("app", "api"), ("env", "prod"), ("pod", "p1")];
    let sm = &[("trace_id", "t1")];
    let line = "level=error msg=x";
    let cases: Vec<(Stage, Want)> = vec![
        (
            Stage::Drop(names(&["env", "level", "nope"])),
            Want {
                line,
                stream: &[("app", "api"), ("pod", "p1")],
                structured_metadata: sm,
                parsed: &[("msg", "x")],
            },
        ),
        (
            Stage::Drop(vec![
                sel("level", MatchOp::Equal, "info"),
                sel("env", MatchOp::Equal, "prod"),
                sel("pod", MatchOp::Regex, "p.*"),
                sel("trace_id", MatchOp::NotEqual, "t1"),
            ]),
            Want {
                line,
                stream: &[("app", "api")],
                structured_metadata: sm,
                parsed: &[("level", "error"), ("msg", "x")],
            },
        ),
        (
            Stage::Keep(names(&["app", "level"])),
            Want {
                line,
                stream: &[("app", "api")],
                structured_metadata: &[],
                parsed: &[("level", "error")],
            },
        ),
        (
            Stage::Keep(vec![
                sel("msg", MatchOp::Equal, "x"),
                sel("env", MatchOp::Equal, "staging"),
                LabelSelection::Name("trace_id".into()),
            ]),
            Want {
                line,
                stream: &[],
                structured_metadata: sm,
                parsed: &[("msg", "x")],
            },
        ),
    ];
    for (stage, want) in cases {
        check(&[logfmt(false, false), stage], line, stream, sm, Some(want));
    }
}

#[test]
fn keep_and_drop_with_errors() {
    let errs: &[(&str, &str)] = &[
        ("__error__", "JSONParserErr"),
        (
            "__error_details__",
            "Value looks like object, but can't find closing '}' symbol",
        ),
    ];
    // `keep` never removes the error labels.
    check(
        &[json(), Stage::Keep(names(&["app"]))],
        "{n}",
        &[("app", "api"), ("env", "prod")],
        &[],
        Some(Want {
            line: "{n}",
            stream: &[("app", "api")],
            structured_metadata: &[],
            parsed: errs,
        }),
    );
    // `drop` clears them, by name or by matcher.
    for stage in [
        Stage::Drop(names(&["__error__", "__error_details__"])),
        Stage::Drop(vec![
            sel("__error__", MatchOp::Equal, "JSONParserErr"),
            sel("__error_details__", MatchOp::Regex, "Value.*"),
        ]),
    ] {
        check_kept(&[json(), stage], "{n}", &[("app", "api")], &[]);
    }
    check_kept(
        &[
            json(),
            Stage::Drop(vec![sel("__error__", MatchOp::Equal, "Other")]),
        ],
        "{n}",
        &[],
        errs,
    );
}

#[test]
fn decolorize() {
    for (line, want) in [
        ("\x1b[31mERROR\x1b[0m done", "ERROR done"),
        ("\x1b[1;32mok\x1b[m", "ok"),
        ("plain", "plain"),
    ] {
        check(
            &[Stage::Decolorize],
            line,
            &[],
            &[],
            Some(Want {
                line: want,
                stream: &[],
                structured_metadata: &[],
                parsed: &[],
            }),
        );
    }
}
