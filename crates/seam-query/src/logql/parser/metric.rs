//! Metric expressions: binary operators with PromQL's precedences, range and vector
//! aggregations, `label_replace`, `vector(n)` and number literals, with Loki's checks.

use super::super::ast::{
    BinOp, Cardinality, Expr, Grouping, LogExpr, LogRange, RangeOp, SampleExpr, Unwrap,
    VectorMatching, VectorOp,
};
use super::super::lexer::{Func, Kw, Spanned, Tok};
use super::filters::parse_number;
use super::{compile_go_regex, err_at, PResult, Parser};

/// The operator a token spells after an operand, and its precedence (higher binds tighter).
fn binop(t: &Tok) -> Option<(BinOp, u8)> {
    Some(match t {
        Tok::Kw(Kw::Or) => (BinOp::Or, 1),
        Tok::Kw(Kw::And) => (BinOp::And, 2),
        Tok::Kw(Kw::Unless) => (BinOp::Unless, 2),
        Tok::CmpEq => (BinOp::Eq, 3),
        Tok::Neq => (BinOp::Ne, 3),
        Tok::Gt => (BinOp::Gt, 3),
        Tok::Gte => (BinOp::Ge, 3),
        Tok::Lt => (BinOp::Lt, 3),
        Tok::Lte => (BinOp::Le, 3),
        Tok::Add => (BinOp::Add, 4),
        Tok::Sub => (BinOp::Sub, 4),
        Tok::Mul => (BinOp::Mul, 5),
        Tok::Div => (BinOp::Div, 5),
        Tok::Mod => (BinOp::Mod, 5),
        Tok::Pow => (BinOp::Pow, 6),
        _ => return None,
    })
}

/// Go's type name for a log query where a metric one was needed, as Loki's message shows it.
fn leg_type(l: &LogExpr) -> &'static str {
    if l.pipeline.is_empty() {
        "*syntax.MatchersExpr"
    } else {
        "*syntax.PipelineExpr"
    }
}

/// The value of a number literal, through parentheses (Loki's tree has none).
fn literal_value(e: &SampleExpr) -> Option<f64> {
    match e {
        SampleExpr::Literal(v) => Some(*v),
        SampleExpr::Paren(inner) => literal_value(inner),
        _ => None,
    }
}

/// Loki's `reduceBinOp`: an operation on two literals is computed at parse time.
fn fold(op: BinOp, l: f64, r: f64) -> f64 {
    let b = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div if r == 0.0 => f64::NAN,
        BinOp::Div => l / r,
        BinOp::Mod if r == 0.0 => f64::NAN,
        BinOp::Mod => l % r,
        BinOp::Pow => l.powf(r),
        BinOp::Eq => b(l == r),
        BinOp::Ne => b(l != r),
        BinOp::Gt => b(l > r),
        BinOp::Ge => b(l >= r),
        BinOp::Lt => b(l < r),
        BinOp::Le => b(l <= r),
        // Refused before folding: set operators take no literal.
        BinOp::And | BinOp::Or | BinOp::Unless => f64::NAN,
    }
}

/// Loki's `mustNewBinOpExpr`: both legs must be metric expressions, set operators take no
/// literal, and two literals fold into one.
fn make_binop(
    op: BinOp,
    return_bool: bool,
    matching: Option<VectorMatching>,
    lhs: Expr,
    rhs: Expr,
    at: &Spanned,
) -> PResult<SampleExpr> {
    let sym = op.symbol();
    let leg = |side: &str, o: Expr| match o {
        Expr::Sample(s) => Ok(s),
        Expr::Log(l) => Err(err_at(
            at,
            format!(
                "unexpected type for {side} leg of binary operation ({sym}): {}",
                leg_type(&l)
            ),
        )),
    };
    let (lhs, rhs) = (leg("left", lhs)?, leg("right", rhs)?);
    let (lv, rv) = (literal_value(&lhs), literal_value(&rhs));
    if matches!(op, BinOp::And | BinOp::Or | BinOp::Unless) {
        for (side, v) in [("left", lv), ("right", rv)] {
            if let Some(v) = v {
                return Err(err_at(
                    at,
                    format!(
                        "unexpected literal for {side} leg of logical/set binary operation ({sym}): {v:.6}"
                    ),
                ));
            }
        }
    }
    if let (Some(l), Some(r)) = (lv, rv) {
        return Ok(SampleExpr::Literal(fold(op, l, r)));
    }
    Ok(SampleExpr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool,
        matching,
    })
}

/// Loki's `RangeAggregationExpr.validate`.
fn validate_range_agg(op: RangeOp, range: &LogRange, grouped: bool) -> Result<(), String> {
    use RangeOp::*;
    let name = op.name();
    let groupable = matches!(
        op,
        AvgOverTime
            | StddevOverTime
            | StdvarOverTime
            | QuantileOverTime
            | MaxOverTime
            | MinOverTime
            | FirstOverTime
            | LastOverTime
    );
    if grouped && !groupable {
        return Err(format!("grouping not allowed for {name} aggregation"));
    }
    let ok = if range.unwrap.is_some() {
        !matches!(op, CountOverTime | BytesOverTime | BytesRate)
    } else {
        matches!(
            op,
            BytesOverTime | BytesRate | CountOverTime | Rate | AbsentOverTime
        )
    };
    match (ok, range.unwrap.is_some()) {
        (true, _) => Ok(()),
        (false, true) => Err(format!("invalid aggregation {name} with unwrap")),
        (false, false) => Err(format!("invalid aggregation {name} without unwrap")),
    }
}

/// What a log range reads inside parentheses: a whole range, or a selector and pipeline whose
/// range follows the closing parenthesis (`({..} | json)[5m]`).
enum RangePart {
    Complete(LogRange),
    Partial(LogExpr, Option<Unwrap>),
}

impl Parser {
    /// An expression whose operators bind at least as tightly as `min_prec`.
    pub(super) fn expr(&mut self, min_prec: u8) -> PResult<Expr> {
        self.nested(|p| p.expr_at(min_prec))
    }

    fn expr_at(&mut self, min_prec: u8) -> PResult<Expr> {
        let mut lhs = self.primary()?;
        while let Some((op, prec)) = binop(&self.peek().tok) {
            if prec < min_prec {
                break;
            }
            let op_tok = self.next();
            let (return_bool, matching) = self.bin_modifiers()?;
            // `^` is right-associative; the others are left-associative.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            lhs = Expr::Sample(make_binop(op, return_bool, matching, lhs, rhs, &op_tok)?);
        }
        Ok(lhs)
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.peek().clone();
        let sample = match t.tok {
            Tok::LBrace => return Ok(Expr::Log(self.log_expr()?)),
            Tok::LParen => {
                self.next();
                let inner = self.expr(0)?;
                self.expect(Tok::RParen, &[])?;
                return Ok(match inner {
                    Expr::Log(l) => Expr::Log(l),
                    Expr::Sample(s) => Expr::Sample(SampleExpr::Paren(Box::new(s))),
                });
            }
            Tok::Func(Func::Range(op)) => self.range_agg(op)?,
            Tok::Func(Func::Vector(op)) => self.vector_agg(op)?,
            Tok::Func(Func::VectorLit) => self.vector_lit()?,
            Tok::Func(Func::LabelReplace) => self.label_replace()?,
            Tok::Number(_) | Tok::Add | Tok::Sub => SampleExpr::Literal(self.signed_number()?),
            _ => return Err(self.unexpected(&t, &[])),
        };
        Ok(Expr::Sample(sample))
    }

    /// `[bool] [on|ignoring (labels) [group_left|group_right [(labels)]]]`.
    fn bin_modifiers(&mut self) -> PResult<(bool, Option<VectorMatching>)> {
        let return_bool = self.eat(&Tok::Kw(Kw::Bool));
        let on = match self.peek().tok {
            Tok::Kw(Kw::On) => true,
            Tok::Kw(Kw::Ignoring) => false,
            _ => return Ok((return_bool, None)),
        };
        self.next();
        let labels = self.paren_labels()?;
        let card = match self.peek().tok {
            Tok::Kw(k @ (Kw::GroupLeft | Kw::GroupRight)) => {
                self.next();
                let include = if self.at(&Tok::LParen) {
                    self.paren_labels()?
                } else {
                    Vec::new()
                };
                if k == Kw::GroupLeft {
                    Cardinality::ManyToOne(include)
                } else {
                    Cardinality::OneToMany(include)
                }
            }
            _ => Cardinality::OneToOne,
        };
        Ok((return_bool, Some(VectorMatching { on, labels, card })))
    }

    /// `(a, b)`, possibly empty.
    fn paren_labels(&mut self) -> PResult<Vec<String>> {
        self.expect(Tok::LParen, &["("])?;
        let mut out = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(out);
        }
        loop {
            out.push(self.ident(if out.is_empty() {
                &["IDENTIFIER", ")"]
            } else {
                &["IDENTIFIER"]
            })?);
            if self.eat(&Tok::RParen) {
                return Ok(out);
            }
            self.expect(Tok::Comma, &[",", ")"])?;
        }
    }

    /// `by (..)` or `without (..)`.
    fn grouping(&mut self) -> PResult<Grouping> {
        let without = self.next().tok == Tok::Kw(Kw::Without);
        let labels = self.paren_labels()?;
        Ok(Grouping { without, labels })
    }

    fn at_grouping(&self) -> bool {
        matches!(self.peek().tok, Tok::Kw(Kw::By | Kw::Without))
    }

    fn offset(&mut self) -> PResult<i64> {
        if !self.eat(&Tok::Kw(Kw::Offset)) {
            return Ok(0);
        }
        match self.peek().tok {
            Tok::Duration(ns) => {
                self.next();
                Ok(ns)
            }
            _ => Err(self.unexpected(self.peek(), &["DURATION"])),
        }
    }

    /// `op([φ,] log range) [by|without (..)]`.
    fn range_agg(&mut self, op: RangeOp) -> PResult<SampleExpr> {
        let fn_tok = self.next();
        self.expect(Tok::LParen, &["("])?;
        let mut param_text = None;
        if let Tok::Number(n) = &self.peek().tok {
            param_text = Some(n.clone());
            self.next();
            self.expect(Tok::Comma, &[","])?;
        }
        if !matches!(self.peek().tok, Tok::LBrace | Tok::LParen) {
            let exp: &[&str] = if param_text.is_none() {
                &["NUMBER", "{", "("]
            } else {
                &["{", "("]
            };
            return Err(self.unexpected(self.peek(), exp));
        }
        let range = self.log_range()?;
        self.expect(Tok::RParen, &[])?;
        let grouping = if self.at_grouping() {
            Some(self.grouping()?)
        } else {
            None
        };
        let name = op.name();
        let fail = |msg: String| Err(err_at(&fn_tok, msg));
        let param = match param_text {
            Some(text) if op != RangeOp::QuantileOverTime => {
                return fail(format!("parameter {text} not supported for operation {name}"))
            }
            Some(text) => match text.parse::<f64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    return fail(format!(
                        "invalid parameter for operation {name}: strconv.ParseFloat: parsing {text:?}: invalid syntax"
                    ))
                }
            },
            None if op == RangeOp::QuantileOverTime => {
                return fail(format!("parameter required for operation {name}"))
            }
            None => None,
        };
        validate_range_agg(op, &range, grouping.is_some()).map_err(|m| err_at(&fn_tok, m))?;
        Ok(SampleExpr::Range {
            op,
            range,
            param,
            grouping,
        })
    }

    /// A log range: `{..} [pipeline] [unwrap] [5m] [offset d]`, `{..}[5m] [offset d] pipeline
    /// [unwrap]`, `({..} [pipeline] [unwrap])[5m] [offset d]`, or a log range in parentheses.
    fn log_range(&mut self) -> PResult<LogRange> {
        self.nested(Self::log_range_at)
    }

    fn log_range_at(&mut self) -> PResult<LogRange> {
        if !self.eat(&Tok::LParen) {
            return match self.log_range_part()? {
                RangePart::Complete(r) => Ok(r),
                RangePart::Partial(..) => Err(self.unexpected(self.peek(), &[])),
            };
        }
        let part = self.log_range_part()?;
        self.expect(Tok::RParen, &[])?;
        match part {
            RangePart::Complete(r) => Ok(r),
            RangePart::Partial(log, unwrap) => {
                let Tok::Range(range_ns) = self.peek().tok else {
                    return Err(self.unexpected(self.peek(), &["RANGE"]));
                };
                self.next();
                let offset_ns = self.offset()?;
                Ok(LogRange {
                    log,
                    range_ns,
                    offset_ns,
                    unwrap,
                })
            }
        }
    }

    fn log_range_part(&mut self) -> PResult<RangePart> {
        if self.at(&Tok::LParen) {
            return Ok(RangePart::Complete(self.log_range()?));
        }
        if !self.at(&Tok::LBrace) {
            return Err(self.unexpected(self.peek(), &["{", "("]));
        }
        let matchers = self.selector()?;
        let mut log = LogExpr {
            matchers,
            pipeline: self.pipeline(true)?,
        };
        let mut unwrap = if self.at_unwrap() {
            Some(self.unwrap()?)
        } else {
            None
        };
        let Tok::Range(range_ns) = self.peek().tok else {
            return Ok(RangePart::Partial(log, unwrap));
        };
        self.next();
        let offset_ns = self.offset()?;
        if log.pipeline.is_empty() && unwrap.is_none() {
            // Loki also takes the pipeline after the range: `{..}[5m] | json | unwrap x`.
            log.pipeline = self.pipeline(true)?;
            if self.at_unwrap() {
                unwrap = Some(self.unwrap()?);
            }
        }
        Ok(RangePart::Complete(LogRange {
            log,
            range_ns,
            offset_ns,
            unwrap,
        }))
    }

    /// `op [by|without (..)] ([k,] expr) [by|without (..)]`.
    fn vector_agg(&mut self, op: VectorOp) -> PResult<SampleExpr> {
        let fn_tok = self.next();
        let mut grouping = None;
        if self.at_grouping() {
            grouping = Some(self.grouping()?);
            self.expect(Tok::LParen, &["("])?;
        } else {
            self.expect(Tok::LParen, &["(", "by", "without"])?;
        }
        let mut param_text = None;
        if let (Tok::Number(n), Tok::Comma) = (&self.peek().tok, self.peek_tok(1)) {
            param_text = Some(n.clone());
            self.next();
            self.next();
        }
        let inner = match self.expr(0)? {
            Expr::Sample(s) => s,
            Expr::Log(_) => return Err(self.unexpected(self.peek(), &[])),
        };
        self.expect(Tok::RParen, &[])?;
        if grouping.is_none() && self.at_grouping() {
            grouping = Some(self.grouping()?);
        }
        let name = op.name();
        let fail = |msg: String| Err(err_at(&fn_tok, msg));
        let param = match (op, param_text) {
            (VectorOp::Topk | VectorOp::Bottomk, None) => {
                return fail(format!("parameter required for operation {name}"))
            }
            (VectorOp::Topk | VectorOp::Bottomk, Some(text)) => match text.parse::<i64>() {
                Ok(k) if k > 0 => Some(k as f64),
                Ok(_) => {
                    return fail(format!(
                        "invalid parameter (must be greater than 0) {name}({text}"
                    ))
                }
                Err(_) => return fail(format!("invalid parameter {name}({text},")),
            },
            (_, Some(text)) => {
                return fail(format!(
                    "unsupported parameter for operation {name}({text},"
                ))
            }
            (_, None) => None,
        };
        let sort = matches!(op, VectorOp::Sort | VectorOp::SortDesc);
        if sort && grouping.as_ref().is_some_and(|g| !g.labels.is_empty()) {
            return fail("sort and sort_desc doesn't allow grouping by ".into());
        }
        Ok(SampleExpr::Vector {
            op,
            inner: Box::new(inner),
            param,
            grouping,
        })
    }

    /// `label_replace(expr, "dst", "replacement", "src", "regex")`.
    fn label_replace(&mut self) -> PResult<SampleExpr> {
        self.next();
        self.expect(Tok::LParen, &["("])?;
        let inner = match self.expr(0)? {
            Expr::Sample(s) => s,
            Expr::Log(_) => return Err(self.unexpected(self.peek(), &[])),
        };
        self.expect(Tok::Comma, &[])?;
        let mut strings = Vec::with_capacity(4);
        for i in 0..4 {
            if i > 0 {
                self.expect(Tok::Comma, &[","])?;
            }
            strings.push(self.string(&["STRING"])?);
        }
        self.expect(Tok::RParen, &[")"])?;
        let [(dst, _), (replacement, _), (src, _), (regex, at)] =
            <[(String, Spanned); 4]>::try_from(strings).expect("four strings");
        compile_go_regex(&format!("^(?:{regex})$"))
            .map_err(|e| err_at(&at, format!("invalid regex in label_replace: {e}")))?;
        Ok(SampleExpr::LabelReplace {
            inner: Box::new(inner),
            dst,
            replacement,
            src,
            regex,
        })
    }

    /// `vector(n)`.
    fn vector_lit(&mut self) -> PResult<SampleExpr> {
        self.next();
        self.expect(Tok::LParen, &["("])?;
        let t = self.peek().clone();
        let Tok::Number(text) = &t.tok else {
            return Err(self.unexpected(&t, &["NUMBER"]));
        };
        self.next();
        let v = parse_number(text, "vectorExpr").map_err(|e| err_at(&t, e))?;
        self.expect(Tok::RParen, &[")"])?;
        Ok(SampleExpr::VectorLiteral(v))
    }
}
