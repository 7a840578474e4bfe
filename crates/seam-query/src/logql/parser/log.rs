//! Stream selectors, pipeline stages and `unwrap`.

use seam_store::{LabelMatcher, MatchOp};

use super::super::ast::{
    LabelExtraction, LabelFormat, LabelSelection, LineFilter, LineFilterOp, LogExpr, Matcher,
    Stage, Unwrap, UnwrapConv,
};
use super::super::lexer::{Func, Kw, Tok};
use super::super::pipeline::{Pattern, RegexpParser};
use super::{compile_go_regex, err_at, go_regex_error, PResult, Parser};

/// The match operator a token spells in a matcher, if any.
pub(super) fn match_op(t: &Tok) -> Option<MatchOp> {
    match t {
        Tok::Eq => Some(MatchOp::Equal),
        Tok::Neq => Some(MatchOp::NotEqual),
        Tok::Re => Some(MatchOp::Regex),
        Tok::Nre => Some(MatchOp::NotRegex),
        _ => None,
    }
}

const EXPECT_MATCH_OP: [&str; 4] = ["=", "=~", "!~", "!="];

impl Parser {
    /// `{ name op "value", ... }` (`{}` parses; validation refuses it later, as Loki does).
    pub(super) fn selector(&mut self) -> PResult<Vec<Matcher>> {
        let open = self.expect(Tok::LBrace, &["{"])?;
        let mut matchers = Vec::new();
        let mut all_empty = true;
        if !self.eat(&Tok::RBrace) {
            loop {
                let name = self.ident(if matchers.is_empty() {
                    &["IDENTIFIER", "}"]
                } else {
                    &["IDENTIFIER"]
                })?;
                let (matcher, built) = self.matcher_and_store_matcher(name)?;
                all_empty &= built.matches_empty();
                matchers.push(matcher);
                if self.eat(&Tok::RBrace) {
                    break;
                }
                self.expect(Tok::Comma, &["}", ","])?;
            }
        }
        if all_empty && self.empty_selector.is_none() {
            self.empty_selector = Some((open.line, open.col));
        }
        Ok(matchers)
    }

    /// `op "value"` after a label name.
    pub(super) fn matcher_after_name(&mut self, name: String) -> PResult<Matcher> {
        Ok(self.matcher_and_store_matcher(name)?.0)
    }

    /// `op "value"` after a label name, with the store's matcher built from it: building it
    /// is what checks a regex (anchored, as Prometheus does), and a selector asks it whether
    /// it accepts the empty value, so each regex is compiled once here.
    fn matcher_and_store_matcher(&mut self, name: String) -> PResult<(Matcher, LabelMatcher)> {
        let Some(op) = match_op(&self.peek().tok) else {
            return Err(self.unexpected(self.peek(), &EXPECT_MATCH_OP));
        };
        self.next();
        let (value, at) = self.string(&["STRING"])?;
        let matcher = Matcher { name, op, value };
        let built = matcher.to_label_matcher().map_err(|e| {
            // Go quotes the pattern the way the store anchors it.
            let anchored = format!("^(?s:{})$", matcher.value);
            err_at(&at, go_regex_error(&anchored, &e))
        })?;
        Ok((matcher, built))
    }

    /// A selector and its pipeline: a log query.
    pub(super) fn log_expr(&mut self) -> PResult<LogExpr> {
        let matchers = self.selector()?;
        let pipeline = self.pipeline(false)?;
        Ok(LogExpr { matchers, pipeline })
    }

    /// True at `| unwrap`.
    pub(super) fn at_unwrap(&self) -> bool {
        self.at(&Tok::Pipe) && *self.peek_tok(1) == Tok::Kw(Kw::Unwrap)
    }

    /// Pipeline stages; stops before `| unwrap` when `in_range` (it belongs to the range).
    pub(super) fn pipeline(&mut self, in_range: bool) -> PResult<Vec<Stage>> {
        let mut stages = Vec::new();
        loop {
            match self.peek().tok {
                Tok::PipeExact
                | Tok::Neq
                | Tok::PipeMatch
                | Tok::Nre
                | Tok::PipePattern
                | Tok::Npa => self.line_filter(&mut stages)?,
                Tok::Pipe if self.at_unwrap() => {
                    if in_range {
                        return Ok(stages);
                    }
                    self.next();
                    return Err(self.unexpected(self.peek(), &[]));
                }
                Tok::Pipe => {
                    self.next();
                    let stage = self.stage_after_pipe()?;
                    stages.push(stage);
                }
                _ => return Ok(stages),
            }
        }
    }

    /// A line filter value: a string (a regex must compile), never `ip(..)` here.
    fn line_filter_value(&mut self, op: LineFilterOp) -> PResult<String> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Str(s) => {
                self.next();
                if matches!(op, LineFilterOp::Regex | LineFilterOp::NotRegex) {
                    compile_go_regex(s).map_err(|e| err_at(&t, e))?;
                }
                Ok(s.clone())
            }
            Tok::Func(Func::Ip) => Err(err_at(&t, "ip() filters are not supported")),
            _ => Err(self.unexpected(&t, &["STRING", "ip"])),
        }
    }

    /// `|= "a" or "b"`. A negative filter with alternatives becomes one filter per value, as
    /// Loki rewrites it (`!= "a" or "b"` keeps lines containing neither).
    fn line_filter(&mut self, stages: &mut Vec<Stage>) -> PResult<()> {
        let op = match self.next().tok {
            Tok::PipeExact => LineFilterOp::Contains,
            Tok::Neq => LineFilterOp::NotContains,
            Tok::PipeMatch => LineFilterOp::Regex,
            Tok::Nre => LineFilterOp::NotRegex,
            Tok::PipePattern => LineFilterOp::Pattern,
            _ => LineFilterOp::NotPattern,
        };
        let pattern = self.line_filter_value(op)?;
        let mut or = Vec::new();
        while self.eat(&Tok::Kw(Kw::Or)) {
            or.push(self.line_filter_value(op)?);
        }
        if op.positive() || or.is_empty() {
            stages.push(Stage::LineFilter(LineFilter { op, pattern, or }));
        } else {
            for pattern in std::iter::once(pattern).chain(or) {
                stages.push(Stage::LineFilter(LineFilter {
                    op,
                    pattern,
                    or: Vec::new(),
                }));
            }
        }
        Ok(())
    }

    /// The stage after a `|`.
    fn stage_after_pipe(&mut self) -> PResult<Stage> {
        let t = self.peek().clone();
        let stage = match t.tok {
            Tok::Kw(Kw::Json) => {
                self.next();
                Stage::Json(self.extractions()?)
            }
            Tok::Kw(Kw::Logfmt) => {
                self.next();
                let (mut strict, mut keep_empty) = (false, false);
                while let Tok::Flag(f) = &self.peek().tok {
                    if f == "--strict" {
                        strict = true;
                    } else {
                        keep_empty = true;
                    }
                    self.next();
                }
                let params = self.extractions()?;
                Stage::Logfmt {
                    strict,
                    keep_empty,
                    params,
                }
            }
            Tok::Kw(Kw::Regexp) => {
                self.next();
                let (src, at) = self.string(&["STRING"])?;
                RegexpParser::new(&src)
                    .map_err(|e| err_at(&at, format!("invalid regexp parser: {e}")))?;
                Stage::Regexp(src)
            }
            Tok::Kw(Kw::Pattern) => {
                self.next();
                let (src, at) = self.string(&["STRING"])?;
                Pattern::parser(&src)
                    .map_err(|e| err_at(&at, format!("invalid pattern parser: {e}")))?;
                Stage::Pattern(src)
            }
            Tok::Kw(Kw::Unpack) => {
                self.next();
                Stage::Unpack
            }
            Tok::Kw(Kw::LineFmt) => {
                self.next();
                Stage::LineFormat(self.string(&["STRING"])?.0)
            }
            Tok::Kw(Kw::LabelFmt) => {
                self.next();
                Stage::LabelFormat(self.label_formats()?)
            }
            Tok::Kw(Kw::Drop) => {
                self.next();
                Stage::Drop(self.label_selections()?)
            }
            Tok::Kw(Kw::Keep) => {
                self.next();
                Stage::Keep(self.label_selections()?)
            }
            Tok::Kw(Kw::Decolorize) => {
                self.next();
                Stage::Decolorize
            }
            Tok::Ident(_) | Tok::LParen => Stage::LabelFilter(self.label_filter(0)?),
            _ => return Err(self.unexpected(&t, &[])),
        };
        Ok(stage)
    }

    /// `a="b.c", d` after `json`/`logfmt` (a bare name extracts itself).
    fn extractions(&mut self) -> PResult<Vec<LabelExtraction>> {
        let mut out = Vec::new();
        if !matches!(self.peek().tok, Tok::Ident(_)) {
            return Ok(out);
        }
        loop {
            let label = self.ident(&["IDENTIFIER"])?;
            let expr = if self.eat(&Tok::Eq) {
                self.string(&["STRING"])?.0
            } else {
                label.clone()
            };
            out.push(LabelExtraction { label, expr });
            if !self.eat(&Tok::Comma) {
                return Ok(out);
            }
        }
    }

    /// `a=b, c="{{.d}}"`; a label may appear once (Loki's label formatter refuses more).
    fn label_formats(&mut self) -> PResult<Vec<LabelFormat>> {
        let mut out: Vec<LabelFormat> = Vec::new();
        loop {
            let at = self.peek().clone();
            let dst = self.ident(&["IDENTIFIER"])?;
            self.expect(Tok::Eq, &["="])?;
            let f = match &self.peek().tok {
                Tok::Ident(src) => {
                    let src = src.clone();
                    self.next();
                    LabelFormat::Rename { dst, src }
                }
                Tok::Str(t) => {
                    let template = t.clone();
                    self.next();
                    LabelFormat::Template { dst, template }
                }
                _ => return Err(self.unexpected(self.peek(), &["IDENTIFIER", "STRING"])),
            };
            let name = |f: &LabelFormat| match f {
                LabelFormat::Rename { dst, .. } | LabelFormat::Template { dst, .. } => dst.clone(),
            };
            if out.iter().any(|o| name(o) == name(&f)) {
                return Err(err_at(
                    &at,
                    format!(
                        "multiple label name '{}' not allowed in a single format operation",
                        name(&f)
                    ),
                ));
            }
            out.push(f);
            if !self.eat(&Tok::Comma) {
                return Ok(out);
            }
        }
    }

    /// `a, b="x", c=~"y"` after `drop`/`keep`.
    fn label_selections(&mut self) -> PResult<Vec<LabelSelection>> {
        let mut out = Vec::new();
        loop {
            let name = self.ident(&["IDENTIFIER"])?;
            out.push(if match_op(&self.peek().tok).is_some() {
                LabelSelection::Matcher(self.matcher_after_name(name)?)
            } else {
                LabelSelection::Name(name)
            });
            if !self.eat(&Tok::Comma) {
                return Ok(out);
            }
        }
    }

    /// `| unwrap x`, `| unwrap duration(x)`, then `| <label filter>`s.
    pub(super) fn unwrap(&mut self) -> PResult<Unwrap> {
        self.next();
        self.next();
        let t = self.next();
        let conv = match &t.tok {
            Tok::Ident(label) => Some((UnwrapConv::Number, label.clone())),
            Tok::Func(Func::ConvBytes) => Some((UnwrapConv::Bytes, String::new())),
            Tok::Func(Func::ConvDuration | Func::ConvDurationSeconds) => {
                Some((UnwrapConv::Duration, String::new()))
            }
            _ => None,
        };
        let Some((conv, mut label)) = conv else {
            return Err(self.unexpected(
                &t,
                &[
                    "IDENTIFIER",
                    "BYTES_CONV",
                    "DURATION_CONV",
                    "DURATION_SECONDS_CONV",
                ],
            ));
        };
        if label.is_empty() {
            self.expect(Tok::LParen, &["("])?;
            label = self.ident(&["IDENTIFIER"])?;
            self.expect(Tok::RParen, &[")"])?;
        }
        let mut post_filters = Vec::new();
        while self.eat(&Tok::Pipe) {
            if !matches!(self.peek().tok, Tok::Ident(_) | Tok::LParen) {
                return Err(self.unexpected(self.peek(), &["IDENTIFIER", "("]));
            }
            post_filters.push(self.label_filter(0)?);
        }
        Ok(Unwrap {
            label,
            conv,
            post_filters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexp_parser_rules() {
        let check = |src: &str| RegexpParser::new(src).map(drop);
        assert_eq!(check("(?P<a>x)(?<b>y)"), Ok(()));
        assert_eq!(
            check("(x)").unwrap_err(),
            "at least one named capture must be supplied"
        );
        assert_eq!(
            check("(?P<a.b>x)").unwrap_err(),
            "invalid extracted label name 'a.b'"
        );
    }
}
