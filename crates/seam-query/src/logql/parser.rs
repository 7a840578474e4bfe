//! The LogQL parser.

use seam_store::MatchOp;

use super::ast::{Expr, LineFilter, LineFilterOp, LogExpr, Matcher, Stage};
use super::lexer::{lex, Spanned, Tok};

/// A parse failure, printed as Loki prints them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {msg}")]
pub struct ParseError {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
    /// What was wrong.
    pub msg: String,
}

struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Spanned {
        &self.toks[self.pos]
    }
    fn next(&mut self) -> Spanned {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn err(&self, at: &Spanned, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: at.line,
            col: at.col,
            msg: msg.into(),
        }
    }
    fn expect(&mut self, want: Tok, what: &str) -> Result<Spanned, ParseError> {
        let t = self.next();
        if t.tok == want {
            Ok(t)
        } else {
            Err(self.err(
                &t,
                format!(
                    "syntax error: unexpected {}, expecting {what}",
                    t.tok.describe()
                ),
            ))
        }
    }

    /// The next token as a string literal; with `regex`, it must also compile as one.
    fn string(&mut self, regex: bool) -> Result<String, ParseError> {
        let v = self.next();
        let Tok::Str(s) = v.tok.clone() else {
            let msg = format!(
                "syntax error: unexpected {}, expecting STRING",
                v.tok.describe()
            );
            return Err(self.err(&v, msg));
        };
        if regex {
            if let Err(e) = regex::Regex::new(&s) {
                return Err(self.err(&v, format!("invalid regex {s:?}: {e}")));
            }
        }
        Ok(s)
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.expect(Tok::LBrace, "{")?;
        let mut matchers = Vec::new();
        loop {
            let t = self.next();
            let name = match t.tok.clone() {
                Tok::RBrace if matchers.is_empty() => {
                    return Err(self.err(&t, "syntax error: unexpected }, expecting IDENTIFIER"));
                }
                Tok::Ident(n) => n,
                other => {
                    return Err(self.err(
                        &t,
                        format!(
                            "syntax error: unexpected {}, expecting IDENTIFIER",
                            other.describe()
                        ),
                    ))
                }
            };
            let op_tok = self.next();
            let op = match op_tok.tok.clone() {
                Tok::Eq => MatchOp::Equal,
                Tok::Neq => MatchOp::NotEqual,
                Tok::Re => MatchOp::Regex,
                Tok::Nre => MatchOp::NotRegex,
                other => {
                    return Err(self.err(
                        &op_tok,
                        format!(
                            "syntax error: unexpected {}, expecting = or =~ or != or !~",
                            other.describe()
                        ),
                    ))
                }
            };
            let value = self.string(matches!(op, MatchOp::Regex | MatchOp::NotRegex))?;
            matchers.push(Matcher { name, op, value });
            let sep = self.next();
            match sep.tok.clone() {
                Tok::Comma => continue,
                Tok::RBrace => break,
                other => {
                    return Err(self.err(
                        &sep,
                        format!(
                            "syntax error: unexpected {}, expecting , or }}",
                            other.describe()
                        ),
                    ))
                }
            }
        }
        if matchers.iter().all(|m| m.matches_empty()) {
            return Err(ParseError {
                line: 1,
                col: 1,
                msg: "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will".into(),
            });
        }
        Ok(matchers)
    }

    fn filters(&mut self) -> Result<Vec<LineFilter>, ParseError> {
        let mut out = Vec::new();
        loop {
            let t = self.peek().clone();
            let op = match t.tok.clone() {
                Tok::PipeExact => LineFilterOp::Contains,
                Tok::Neq => LineFilterOp::NotContains,
                Tok::PipeMatch => LineFilterOp::Regex,
                Tok::Nre => LineFilterOp::NotRegex,
                Tok::Eof => return Ok(out),
                Tok::Pipe => return Err(self.err(
                    &t,
                    "unsupported pipeline stage: only line filters (|= != |~ !~) are supported yet",
                )),
                other => {
                    return Err(
                        self.err(&t, format!("syntax error: unexpected {}", other.describe()))
                    )
                }
            };
            self.next();
            let pattern =
                self.string(matches!(op, LineFilterOp::Regex | LineFilterOp::NotRegex))?;
            out.push(LineFilter {
                op,
                pattern,
                or: Vec::new(),
            });
        }
    }
}

impl Matcher {
    /// True when the matcher also accepts an absent label (so it cannot narrow a selection alone).
    pub fn matches_empty(&self) -> bool {
        seam_store::LabelMatcher::new(self.name.clone(), self.op, self.value.clone())
            .is_ok_and(|m| m.matches_empty())
    }
}

/// Parses a LogQL query.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parse_log_query(input).map(Expr::Log)
}

/// Parses a log query: `{selector} [line filters]`.
pub fn parse_log_query(input: &str) -> Result<LogExpr, ParseError> {
    let toks = lex(input).map_err(|e| ParseError {
        line: e.line,
        col: e.col,
        msg: e.msg,
    })?;
    let mut p = Parser { toks, pos: 0 };
    let matchers = p.selector()?;
    let filters = p.filters()?;
    Ok(LogExpr {
        matchers,
        pipeline: filters.into_iter().map(Stage::LineFilter).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selector_and_filters() {
        let q = parse_log_query(
            r#"{service_name="api", env=~"prod|dev"} |= "error" != `timeout` |~ "5\\d\\d""#,
        )
        .unwrap();
        assert_eq!(q.matchers.len(), 2);
        assert_eq!(q.matchers[1].op, MatchOp::Regex);
        assert_eq!(q.pipeline.len(), 3);
    }

    #[test]
    fn errors_name_the_position() {
        let e = parse_log_query(r#"{app="a" |= "x""#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "parse error at line 1, col 10: syntax error: unexpected |=, expecting , or }"
        );
        let e = parse_log_query(r#"{app="a"} |= 42"#).unwrap_err();
        assert_eq!((e.line, e.col), (1, 14));
        let e = parse_log_query("{app=~\".*\"}").unwrap_err();
        assert!(e.msg.contains("at least one"));
        let e = parse_log_query("{app=\"a\"}\n  | json").unwrap_err();
        assert_eq!((e.line, e.col), (2, 3));
    }
}
