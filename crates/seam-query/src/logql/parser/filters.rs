//! Label filter expressions (`| status >= 400 and level=~"err.*"`) and number literals.
//!
//! Loki's grammar gives `or` and `and` their usual precedences, while `,` and plain
//! juxtaposition have none, which yacc resolves by always shifting: they bind to the filter
//! just before them and take everything after them as their right side
//! (`a or b, c` is `a or (b and c)`, `a, b or c` is `a and (b or c)`).

use super::super::ast::{CmpOp, LabelFilter};
use super::super::lexer::{Func, Kw, Tok};
use super::log::match_op;
use super::{err_at, PResult, Parser};

/// Go's `strconv.ParseFloat` on a lexed number, with Loki's message, which names the
/// construct read (`literal`, `vectorExpr`).
pub(super) fn parse_number(text: &str, what: &str) -> Result<f64, String> {
    let reason = match text.parse::<f64>() {
        Ok(v) if v.is_finite() => return Ok(v),
        Ok(_) => "value out of range",
        Err(_) => "invalid syntax",
    };
    Err(format!(
        "unable to parse {what} as a float: strconv.ParseFloat: parsing {text:?}: {reason}"
    ))
}

fn cmp_op(t: &Tok) -> Option<CmpOp> {
    match t {
        Tok::Eq | Tok::CmpEq => Some(CmpOp::Eq),
        Tok::Neq => Some(CmpOp::Ne),
        Tok::Gt => Some(CmpOp::Gt),
        Tok::Gte => Some(CmpOp::Ge),
        Tok::Lt => Some(CmpOp::Lt),
        Tok::Lte => Some(CmpOp::Le),
        _ => None,
    }
}

impl Parser {
    /// A number literal: `NUMBER`, `+NUMBER` or `-NUMBER`.
    pub(super) fn signed_number(&mut self) -> PResult<f64> {
        let neg = match self.peek().tok {
            Tok::Add => {
                self.next();
                false
            }
            Tok::Sub => {
                self.next();
                true
            }
            _ => false,
        };
        let t = self.peek().clone();
        let Tok::Number(text) = &t.tok else {
            return Err(self.unexpected(&t, &["NUMBER"]));
        };
        self.next();
        let v = parse_number(text, "literal").map_err(|e| err_at(&t, e))?;
        Ok(if neg { -v } else { v })
    }

    /// A label filter expression; `min_prec` is 1 for `or`, 2 for `and`.
    pub(super) fn label_filter(&mut self, min_prec: u8) -> PResult<LabelFilter> {
        self.nested(|p| {
            // Each `,` or juxtaposition takes everything after it as its right side, so the
            // filters before one wait here instead of in a recursion as long as the list.
            let mut waiting = Vec::new();
            let mut rhs = p.label_filter_and_or(min_prec)?;
            while matches!(p.peek().tok, Tok::Comma | Tok::Ident(_) | Tok::LParen) {
                p.eat(&Tok::Comma);
                waiting.push(rhs);
                rhs = p.label_filter_and_or(0)?;
            }
            Ok(waiting.into_iter().rev().fold(rhs, |acc, lhs| {
                LabelFilter::And(Box::new(lhs), Box::new(acc))
            }))
        })
    }

    /// Filters joined by `and` and `or` (left-associative, `and` first), up to a `,` or a
    /// juxtaposition.
    fn label_filter_and_or(&mut self, min_prec: u8) -> PResult<LabelFilter> {
        let mut lhs = self.label_filter_primary()?;
        loop {
            match self.peek().tok {
                Tok::Kw(Kw::And) if min_prec <= 2 => {
                    self.next();
                    let rhs = self.label_filter(3)?;
                    lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
                }
                Tok::Kw(Kw::Or) if min_prec <= 1 => {
                    self.next();
                    let rhs = self.label_filter(2)?;
                    lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
                }
                _ => return Ok(lhs),
            }
        }
    }

    fn label_filter_primary(&mut self) -> PResult<LabelFilter> {
        if self.eat(&Tok::LParen) {
            let f = self.label_filter(0)?;
            self.expect(Tok::RParen, &[])?;
            return Ok(f);
        }
        let name = self.ident(&["IDENTIFIER", "("])?;
        let op_tok = self.peek().clone();
        let value = self.peek_tok(1).clone();
        // A string after `=`, `!=`, `=~` or `!~` makes a string matcher.
        if let (Some(_), Tok::Str(_)) = (match_op(&op_tok.tok), &value) {
            return Ok(LabelFilter::String(self.matcher_after_name(name)?));
        }
        if matches!(op_tok.tok, Tok::Re | Tok::Nre) {
            self.next();
            return Err(self.unexpected(self.peek(), &["STRING"]));
        }
        let Some(op) = cmp_op(&op_tok.tok) else {
            return Err(self.unexpected(&op_tok, &[]));
        };
        self.next();
        let t = self.peek().clone();
        match t.tok {
            Tok::Duration(value_ns) => {
                self.next();
                Ok(LabelFilter::Duration { name, op, value_ns })
            }
            Tok::Bytes(value) => {
                self.next();
                Ok(LabelFilter::Bytes { name, op, value })
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => Ok(LabelFilter::Number {
                name,
                op,
                value: self.signed_number()?,
            }),
            Tok::Func(Func::Ip) if matches!(op_tok.tok, Tok::Eq | Tok::Neq) => {
                Err(err_at(&t, "ip() label filters are not supported"))
            }
            _ => Err(self.unexpected(&t, &[])),
        }
    }
}
