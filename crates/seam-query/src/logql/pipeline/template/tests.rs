//! Template language and function tests against hand-computed Go outputs.

use super::{Fields, Template};

struct Map(Vec<(&'static str, &'static str)>);

impl Fields for Map {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
    fn all(&self) -> Vec<(&str, &str)> {
        let mut v = self.0.clone();
        v.sort();
        v
    }
}

fn render(t: &str) -> Result<String, String> {
    let data = Map(vec![
        ("app", "api"),
        ("msg", "Hello World"),
        ("n", "42"),
        ("f", "2.5"),
        ("empty", ""),
        ("path", "/a b?c=d"),
        ("lat", "1m30s"),
        ("size", "2KiB"),
    ]);
    // 2021-02-03T04:05:06.789Z
    Template::parse("line", t)?.render(&data, "the line", 1_612_325_106_789_000_000)
}

#[test]
fn functions() {
    let cases: &[(&str, &str)] = &[
        (
            "{{ .msg | ToLower }}|{{ .msg | upper }}",
            "hello world|HELLO WORLD",
        ),
        (
            r#"{{ Replace .msg "o" "0" -1 }}|{{ Replace .msg "o" "0" 1 }}"#,
            "Hell0 W0rld|Hell0 World",
        ),
        (r#"{{ .msg | replace "World" "Loki" }}"#, "Hello Loki"),
        (
            r#"{{ Trim "xxhixx" "x" }}|{{ TrimLeft "xxhi" "x" }}|{{ TrimRight "hixx" "x" }}"#,
            "hi|hi|hi",
        ),
        (
            r#"{{ TrimPrefix .msg "Hello " }}|{{ .msg | trimSuffix " World" }}"#,
            "World|Hello",
        ),
        (
            r#"{{ TrimSpace "  a  " }}|{{ trim " b " }}|{{ trimAll "-" "--c--" }}"#,
            "a|b|c",
        ),
        (
            "{{ .msg | trunc 5 }}|{{ .msg | trunc -5 }}|{{ trunc 50 .msg }}",
            "Hello|World|Hello World",
        ),
        (
            "{{ substr 0 5 .msg }}|{{ substr 6 -1 .msg }}",
            "Hello|World",
        ),
        (r#"{{ if contains "World" .msg }}yes{{ end }}"#, "yes"),
        (
            r#"{{ hasPrefix "Hell" .msg }} {{ hasSuffix "x" .msg }}"#,
            "true false",
        ),
        (
            r#"{{ "hello wide_world-x" | title }}"#,
            "Hello Wide_world-X",
        ),
        (
            r#"{{ regexReplaceAll "(\\w+) (\\w+)" .msg "${2}_$1" }}"#,
            "World_Hello",
        ),
        (
            r#"{{ regexReplaceAllLiteral "o" .msg "$1" }}"#,
            "Hell$1 W$1rld",
        ),
        (r#"{{ count "o" .msg }}"#, "2"),
        ("{{ .path | urlencode }}", "%2Fa+b%3Fc%3Dd"),
        (r#"{{ "%2Fa+b" | urldecode }}"#, "/a b"),
        (
            "{{ .app | b64enc }}|{{ .app | b64enc | b64dec }}",
            "YXBp|api",
        ),
        ("{{ .lat | duration }}|{{ .size | bytes }}", "90|2048"),
        (
            "{{ add 1 2 3 }} {{ sub 10 .n }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 2 }}",
            "6 -32 24 3 1",
        ),
        (
            "{{ addf 0.1 0.2 }} {{ subf 1 0.9 }} {{ mulf 1.1 3 }} {{ divf 1 4 }}",
            "0.3 0.1 3.3 0.25",
        ),
        (
            "{{ max 1 .n 7 }} {{ min 3 1 }} {{ maxf 1.5 .f }} {{ minf 1.5 .f }}",
            "42 1 2.5 1.5",
        ),
        (
            "{{ ceil .f }} {{ floor .f }} {{ round 2.345 2 }} {{ round .f 0 }}",
            "3 2 2.35 3",
        ),
        (
            r#"{{ int "0x10" }} {{ int "5.0" }} {{ int "x" }} {{ float64 .f }}"#,
            "16 5 0 2.5",
        ),
        (
            "{{ alignLeft 5 .app }}|{{ alignRight 5 .app }}|{{ alignLeft 2 .app }}",
            "api  |  api|ap",
        ),
        (
            "{{ repeat 3 \"ab\" }}|{{ indent 2 \"a\\nb\" }}",
            "ababab|  a\n  b",
        ),
        (
            r#"{{ .empty | default "none" }}|{{ .app | default "none" }}"#,
            "none|api",
        ),
        ("{{ __line__ }}", "the line"),
        ("{{ __timestamp__ }}", "2021-02-03 04:05:06.789 +0000 UTC"),
        (
            r#"{{ __timestamp__ | date "2006-01-02 15:04" }}"#,
            "2021-02-03 04:05",
        ),
        (
            "{{ __timestamp__ | unixEpoch }} {{ __timestamp__ | unixEpochMillis }}",
            "1612325106 1612325106789",
        ),
        (
            r#"{{ unixToTime "1612325106" | unixEpochNanos }}"#,
            "1612325106000000000",
        ),
        (
            r#"{{ printf "%s=%v %.1f %q" .app .n 2.25 "x" }}"#,
            r#"api=42 2.2 "x""#,
        ),
        (
            "{{ print 1 2 \"a\" 3 }}|{{ len .msg }}|{{ len . }}",
            "1 2a3|11|8",
        ),
        (r#"{{ index . "app" }}"#, "api"),
    ];
    for (t, want) in cases {
        assert_eq!(render(t).as_deref(), Ok(*want), "{t}");
    }
}

#[test]
fn control_flow_and_variables() {
    let cases: &[(&str, &str)] = &[
        (r#"{{ if and .app (eq .n "42") }}both{{ end }}"#, "both"),
        (
            r#"{{ if or .empty .missing }}x{{ else }}neither{{ end }}"#,
            "neither",
        ),
        ("{{ if not .empty }}not empty{{ end }}", "not empty"),
        (
            r#"{{ if lt .app "b" }}lt{{ end }}{{ if ge (len .msg) 11 }}ge{{ end }}"#,
            "ltge",
        ),
        (
            r#"{{ if ne .app "api" }}a{{ else if eq .n "41" }}b{{ else }}c{{ end }}"#,
            "c",
        ),
        (
            "{{ with .app }}[{{ . }}]{{ end }}{{ with .empty }}no{{ else }}else{{ end }}",
            "[api]else",
        ),
        ("{{ $x := .app }}{{ $x }}-{{ $x = \"b\" }}{{ $x }}", "api-b"),
        (
            "{{ range $k, $v := . }}{{ if eq $k \"f\" }}{{ break }}{{ end }}{{ $k }},{{ end }}",
            "app,empty,",
        ),
        (
            "{{ range $v := . }}{{ if not $v }}{{ continue }}{{ end }}.{{ end }}",
            ".......",
        ),
        ("{{ range 3 }}{{ . }}{{ end }}", "012"),
        ("{{ $.app }} {{ (.app) }}", "api api"),
        ("a {{- \" b \" -}} c", "a b c"),
        ("{{/* note */}}x", "x"),
        (
            "{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ -2.5 }} {{ true }}",
            "97 31 1000 -2.5 true",
        ),
    ];
    for (t, want) in cases {
        assert_eq!(render(t).as_deref(), Ok(*want), "{t}");
    }
}

#[test]
fn errors() {
    let cases: &[(&str, &str)] = &[
        (
            "{{ nope }}",
            r#"template: line:1: function "nope" not defined"#,
        ),
        ("{{ $x }}", r#"template: line:1: undefined variable "$x""#),
        ("{{ .a", "template: line:1: unclosed action"),
        ("a\n{{ if .a }}", "template: line:2: unexpected EOF"),
        ("{{ }}", "template: line:1: missing value for command"),
        (
            "{{ break }}",
            "template: line:1: {{break}} outside {{range}}",
        ),
        (
            "{{ ToUpper (len .app) }}",
            r#"template: line:1:3: executing "line" at <ToUpper>: wrong type for value; expected string; got int"#,
        ),
        (
            r#"{{ eq .n 42 }}"#,
            r#"template: line:1:3: executing "line" at <eq>: error calling eq: incompatible types for comparison"#,
        ),
        (
            "{{ .app.x }}",
            r#"template: line:1:3: executing "line" at <.app.x>: can't evaluate field x in type string"#,
        ),
        (
            "{{ .app 1 }}",
            r#"template: line:1:3: executing "line" at <.app>: can't give argument to non-function .app"#,
        ),
        (
            r#"{{ urldecode "%zz" }}"#,
            r#"template: line:1:3: executing "line" at <urldecode>: error calling urldecode: invalid URL escape "%zz""#,
        ),
    ];
    for (t, want) in cases {
        assert_eq!(render(t), Err(want.to_string()), "{t}");
    }
}

#[test]
fn simple_field_is_detected() {
    assert_eq!(
        Template::parse("line", "{{.msg}}").unwrap().simple_field(),
        Some("msg")
    );
    assert_eq!(
        Template::parse("line", "{{ .msg }}")
            .unwrap()
            .simple_field(),
        Some("msg")
    );
    assert_eq!(
        Template::parse("line", "{{.msg}}!").unwrap().simple_field(),
        None
    );
    assert_eq!(
        Template::parse("line", "{{.a.b}}").unwrap().simple_field(),
        None
    );
}
