//! The LogQL parser: recursive descent over the lexer's tokens, following Loki's grammar
//! (`pkg/logql/syntax/syntax.y`) including its operator precedences, its semantic checks
//! (range and vector aggregation rules, literal folding, at least one non-empty matcher) and
//! its messages (`syntax error: unexpected X, expecting Y`). Unlike Loki, errors that Loki
//! raises without a position still carry the position of the construct at fault.

mod filters;
mod log;
mod metric;
mod regex;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;

use self::regex::go_regex_error;
pub(crate) use self::regex::{compile_go_regex, go_to_rust_regex};

use seam_store::{LabelMatcher, MatchOp};

use super::ast::{Expr, LogExpr, Matcher};
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

/// Loki refuses longer queries before parsing them (`maxInputSize`).
const MAX_INPUT_SIZE: usize = 128 * 1024;

/// How deeply parentheses and nested calls may go: recursion is bounded so that no query can
/// exhaust a worker thread's stack.
const MAX_DEPTH: usize = 64;

/// Loki's message for a selector whose matchers all accept the empty value.
const ERR_EMPTY_COMPATIBLE: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

pub(super) struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
    /// Where the first selector whose matchers all accept the empty value starts: Loki refuses
    /// it only once the whole query parsed, so a syntax error later on is reported first.
    empty_selector: Option<(usize, usize)>,
    /// Current nesting, against [`MAX_DEPTH`].
    depth: usize,
}

type PResult<T> = Result<T, ParseError>;

impl Parser {
    fn peek(&self) -> &Spanned {
        &self.toks[self.pos]
    }

    /// The token `n` places ahead (the end token when past it).
    fn peek_tok(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    /// Runs `f` one nesting level deeper, refusing queries nested beyond [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_DEPTH {
            return Err(err_at(self.peek(), "query is nested too deeply"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn next(&mut self) -> Spanned {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    /// True when the next token is `t`; literal payloads (strings, numbers) are ignored.
    fn at(&self, t: &Tok) -> bool {
        match (&self.peek().tok, t) {
            (Tok::Kw(a), Tok::Kw(b)) => a == b,
            (Tok::Func(a), Tok::Func(b)) => a == b,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }

    fn eat(&mut self, t: &Tok) -> bool {
        let hit = self.at(t);
        if hit {
            self.next();
        }
        hit
    }

    /// Consumes `t`, or fails with yacc's message listing what was `expecting`.
    fn expect(&mut self, t: Tok, expecting: &[&str]) -> PResult<Spanned> {
        if self.at(&t) {
            Ok(self.next())
        } else {
            Err(self.unexpected(self.peek(), expecting))
        }
    }

    fn ident(&mut self, expecting: &[&str]) -> PResult<String> {
        match &self.peek().tok {
            Tok::Ident(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(self.peek(), expecting)),
        }
    }

    fn string(&mut self, expecting: &[&str]) -> PResult<(String, Spanned)> {
        match &self.peek().tok {
            Tok::Str(s) => {
                let s = s.clone();
                Ok((s, self.next()))
            }
            _ => Err(self.unexpected(self.peek(), expecting)),
        }
    }

    /// yacc's message: the expected tokens are listed only when there are at most four, and
    /// callers pass none where Loki's grammar would accept more.
    fn unexpected(&self, t: &Spanned, expecting: &[&str]) -> ParseError {
        let mut msg = format!("syntax error: unexpected {}", t.tok.describe());
        if !expecting.is_empty() {
            msg.push_str(", expecting ");
            msg.push_str(&expecting.join(" or "));
        }
        err_at(t, msg)
    }
}

fn err_at(t: &Spanned, msg: impl Into<String>) -> ParseError {
    ParseError {
        line: t.line,
        col: t.col,
        msg: msg.into(),
    }
}

impl Matcher {
    /// The store's matcher for this one: the only way a LogQL matcher becomes a
    /// [`LabelMatcher`]. The store compiles regexes with the `regex` crate as written, so a
    /// Go regex it would refuse or read differently (`a{b`) is translated first; equality
    /// values go through untouched.
    pub fn to_label_matcher(&self) -> Result<LabelMatcher, ::regex::Error> {
        let value = match self.op {
            MatchOp::Regex | MatchOp::NotRegex => go_to_rust_regex(&self.value).into_owned(),
            MatchOp::Equal | MatchOp::NotEqual => self.value.clone(),
        };
        LabelMatcher::new(self.name.clone(), self.op, value)
    }
}

/// Parses either kind of query; the caller decides which it accepts and when to run
/// [`validate_selectors`].
fn parse_any(input: &str) -> PResult<(Expr, Parser)> {
    if input.len() >= MAX_INPUT_SIZE {
        return Err(ParseError {
            line: 1,
            col: 1,
            msg: format!("input size too long ({} > {MAX_INPUT_SIZE})", input.len()),
        });
    }
    let toks = lex(input).map_err(|e| ParseError {
        line: e.line,
        col: e.col,
        msg: e.msg,
    })?;
    let mut p = Parser {
        toks,
        pos: 0,
        empty_selector: None,
        depth: 0,
    };
    let e = p.expr(0)?;
    if !p.at(&Tok::Eof) {
        return Err(p.unexpected(p.peek(), &[]));
    }
    Ok((e, p))
}

/// Loki's `validateMatchers`, run once the whole query parsed: every selector needs a matcher
/// that does not accept the empty value.
fn validate_selectors(p: &Parser) -> PResult<()> {
    match p.empty_selector {
        Some((line, col)) => Err(ParseError {
            line,
            col,
            msg: ERR_EMPTY_COMPATIBLE.into(),
        }),
        None => Ok(()),
    }
}

/// Parses a LogQL query, log or metric.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let (e, p) = parse_any(input)?;
    validate_selectors(&p)?;
    Ok(e)
}

/// Parses a log query (`{selector} | pipeline`), as the labels and series APIs take for
/// `query=`/`match[]`; a metric query is refused.
pub fn parse_log_query(input: &str) -> Result<LogExpr, ParseError> {
    let (e, p) = parse_any(input)?;
    match e {
        Expr::Log(l) => {
            validate_selectors(&p)?;
            Ok(l)
        }
        Expr::Sample(_) => Err(ParseError {
            line: 1,
            col: 1,
            msg: "only log selector is supported".into(),
        }),
    }
}

#[cfg(test)]
mod matcher_tests {
    use super::*;

    #[test]
    fn selector_regexes_read_braces_as_go_does() {
        // Loki selects the stream whose `app` is literally `a{b`.
        let q = parse_log_query(r#"{app=~"a{b"}"#).unwrap();
        let m = q.matchers[0].to_label_matcher().unwrap();
        assert!(m.matches("a{b") && !m.matches("ab"));
        // A valid repetition is still one.
        let q = parse_log_query(r#"{app=~"x{2}", env!~"{p"}"#).unwrap();
        let m: Vec<LabelMatcher> = q
            .matchers
            .iter()
            .map(|m| m.to_label_matcher().unwrap())
            .collect();
        assert!(m[0].matches("xx") && !m[0].matches("x{2}"));
        assert!(!m[1].matches("{p") && m[1].matches("p"));
        // `{?` matches the empty value, so Loki refuses it as the only matcher.
        let e = parse_log_query(r#"{app=~"{?"}"#).unwrap_err();
        assert_eq!(e.msg, ERR_EMPTY_COMPATIBLE);
    }
}
