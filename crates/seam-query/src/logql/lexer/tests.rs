//! The lexer reads numbers with units, called functions, strings and ranges as Loki does.

use super::*;

fn toks(q: &str) -> Vec<Tok> {
    lex(q).unwrap().into_iter().map(|s| s.tok).collect()
}

#[test]
fn units_follow_numbers() {
    assert_eq!(
        toks("5m 250ms 1.5h 20MB 2.5KiB 42 1e3 -5m - 5 --strict --keep-empty"),
        vec![
            Tok::Duration(300_000_000_000),
            Tok::Duration(250_000_000),
            Tok::Duration(5_400_000_000_000),
            Tok::Bytes(20_000_000),
            Tok::Bytes(2560),
            Tok::Number("42".into()),
            Tok::Number("1e3".into()),
            Tok::Duration(-300_000_000_000),
            Tok::Sub,
            Tok::Number("5".into()),
            Tok::Flag("--strict".into()),
            Tok::Flag("--keep-empty".into()),
            Tok::Eof,
        ]
    );
    assert_eq!(toks("1-1")[1], Tok::Sub);
    assert_eq!(toks("[1h30m]")[0], Tok::Range(5_400_000_000_000));
}

#[test]
fn functions_only_when_called() {
    let t = toks("rate(x) rate = SUM by (a) (b) count without(x) ip label_replace (");
    // A called name is a function token; Loki's messages name it by its token name.
    let func = |t: &Tok| (t.clone(), t.describe());
    assert_eq!(func(&t[0]), (Tok::Func(Func::Range(RangeOp::Rate)), "RATE"));
    assert_eq!(t[4], Tok::Ident("rate".into()));
    assert_eq!(func(&t[6]), (Tok::Func(Func::Vector(VectorOp::Sum)), "SUM"));
    assert_eq!(t[7], Tok::Kw(Kw::By));
    assert_eq!(
        func(&t[14]),
        (Tok::Func(Func::Vector(VectorOp::Count)), "COUNT")
    );
    assert_eq!(t[19], Tok::Ident("ip".into()));
    assert_eq!(
        func(&t[20]),
        (Tok::Func(Func::LabelReplace), "label_replace")
    );
}

#[test]
fn strings_and_positions() {
    let t = lex("{a=\"x\\ty\\u00e9\\101\"}\n  |= `raw\\d` # comment\n /* c */ |").unwrap();
    assert_eq!(t[3].tok, Tok::Str("x\tyéA".into()));
    assert_eq!((t[5].line, t[5].col), (2, 3));
    assert_eq!(t[6].tok, Tok::Str("raw\\d".into()));
    assert_eq!((t[7].tok.clone(), t[7].line, t[7].col), (Tok::Pipe, 3, 10));
    assert_eq!((t[8].line, t[8].col), (3, 11));
    let e = lex(r#"{foo="bar}"#).unwrap_err();
    assert_eq!(
        (e.line, e.col, e.msg.as_str()),
        (1, 6, "literal not terminated")
    );
    let e = lex(r#"{foo="\d"}"#).unwrap_err();
    assert_eq!(
        (e.line, e.col, e.msg.as_str()),
        (1, 6, "invalid char escape")
    );
    let e = lex("rate({a=\"b\"}[5minutes])").unwrap_err();
    assert_eq!(
        (e.col, e.msg.as_str()),
        (13, r#"unknown unit "minutes" in duration "5minutes""#)
    );
    let e = lex("rate({a=\"b\"}[5)").unwrap_err();
    assert_eq!(
        (e.col, e.msg.as_str()),
        (13, "missing closing ']' in duration")
    );
}
