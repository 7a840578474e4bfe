//! The canonical form of a query, exactly as Loki's `String()` methods print it (what
//! `/loki/api/v1/format_query` builds on): every binary operation in parentheses, user
//! parentheses dropped, `strconv.Quote`d strings, label filter groups as `( a , b )`, ranges
//! in Prometheus' duration form and offsets in Go's.

mod label_regex;
mod pretty;

use std::fmt::{self, Display, Formatter, Write};

use seam_store::MatchOp;

use super::ast::{
    BinOp, Cardinality, CmpOp, Expr, Grouping, LabelExtraction, LabelFilter, LabelFormat,
    LabelSelection, LineFilter, LineFilterOp, LogExpr, LogRange, Matcher, RangeOp, SampleExpr,
    Stage, Unwrap, UnwrapConv, VectorMatching, VectorOp,
};
use super::units::{format_bytes, format_duration, format_go_duration};

pub use pretty::prettify;
#[cfg(test)]
pub(crate) use pretty::prettify_with;

/// Go's `strconv.Quote`: double quotes, C-style escapes, and `\x`/`\u`/`\U` escapes for
/// characters Go does not consider printable.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: no controls, no spaces but ' ', no format or
/// private-use characters.
fn go_printable(c: char) -> bool {
    let u = c as u32;
    if c.is_ascii() {
        return (0x20..0x7f).contains(&u);
    }
    let format = matches!(u, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb);
    let private = matches!(u, 0xe000..=0xf8ff | 0xf0000..=0x10ffff);
    let nonchar = (u & 0xfffe) == 0xfffe || (0xfdd0..=0xfdef).contains(&u);
    !(c.is_control() || c.is_whitespace() || format || private || nonchar)
}

/// Go's `fmt.Sprint` of a float64 (`%v`): the shortest digits, in exponent form below 1e-4
/// and from 1e6 up (`1e+06`, `0.5`, `100000`).
pub(crate) fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if (-4..6).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits, never an exponent.
pub(crate) fn go_float_fixed(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    format!("{v}")
}

/// The spelling of a match operator.
fn match_op_str(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    }
}

impl RangeOp {
    /// The function name (`count_over_time`).
    pub fn name(self) -> &'static str {
        match self {
            RangeOp::CountOverTime => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::RateCounter => "rate_counter",
            RangeOp::BytesOverTime => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
            RangeOp::AbsentOverTime => "absent_over_time",
            RangeOp::SumOverTime => "sum_over_time",
            RangeOp::AvgOverTime => "avg_over_time",
            RangeOp::MinOverTime => "min_over_time",
            RangeOp::MaxOverTime => "max_over_time",
            RangeOp::StddevOverTime => "stddev_over_time",
            RangeOp::StdvarOverTime => "stdvar_over_time",
            RangeOp::QuantileOverTime => "quantile_over_time",
            RangeOp::FirstOverTime => "first_over_time",
            RangeOp::LastOverTime => "last_over_time",
        }
    }
}

impl VectorOp {
    /// The function name (`sum`).
    pub fn name(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::Avg => "avg",
            VectorOp::Min => "min",
            VectorOp::Max => "max",
            VectorOp::Count => "count",
            VectorOp::Stddev => "stddev",
            VectorOp::Stdvar => "stdvar",
            VectorOp::Topk => "topk",
            VectorOp::Bottomk => "bottomk",
            VectorOp::Sort => "sort",
            VectorOp::SortDesc => "sort_desc",
        }
    }
}

impl BinOp {
    /// The operator as written (`+`, `==`, `unless`).
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }
}

impl LineFilterOp {
    /// The operator as written (`|=`).
    pub fn symbol(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Regex => "|~",
            LineFilterOp::NotRegex => "!~",
            LineFilterOp::Pattern => "|>",
            LineFilterOp::NotPattern => "!>",
        }
    }
}

impl CmpOp {
    /// The operator as Loki prints it (`=` prints as `==`).
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

impl Display for Matcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            match_op_str(self.op),
            go_quote(&self.value)
        )
    }
}

/// `{a="b", c=~"d"}`.
pub(crate) fn selector_string(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", parts.join(", "))
}

impl Display for LineFilter {
    /// A negative filter with alternatives prints as one filter per value, as Loki stores it.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let sym = self.op.symbol();
        write!(f, "{sym} {}", go_quote(&self.pattern))?;
        for alt in &self.or {
            if self.op.positive() {
                write!(f, " or {}", go_quote(alt))?;
            } else {
                write!(f, " {sym} {}", go_quote(alt))?;
            }
        }
        Ok(())
    }
}

impl Display for LabelFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::And(a, b) => write!(f, "( {a} , {b} )"),
            LabelFilter::Or(a, b) => write!(f, "( {a} or {b} )"),
            // Loki keeps the source of a regex it cannot reduce to literal filters and prints
            // it raw, in backticks when it can.
            LabelFilter::String(m)
                if m.op == MatchOp::Regex && !label_regex::simplifiable(&m.value) =>
            {
                if m.value.contains('`') {
                    write!(f, "{}=~{}", m.name, go_quote(&m.value))
                } else {
                    write!(f, "{}=~`{}`", m.name, m.value)
                }
            }
            LabelFilter::String(m) => write!(f, "{m}"),
            LabelFilter::Number { name, op, value } => {
                write!(f, "{name}{}{}", op.symbol(), go_float_fixed(*value))
            }
            LabelFilter::Duration { name, op, value_ns } => {
                write!(f, "{name}{}{}", op.symbol(), format_go_duration(*value_ns))
            }
            LabelFilter::Bytes { name, op, value } => {
                write!(f, "{name}{}{}", op.symbol(), format_bytes(*value))
            }
        }
    }
}

fn extractions(params: &[LabelExtraction]) -> String {
    let parts: Vec<String> = params
        .iter()
        .map(|p| format!("{}={}", p.label, go_quote(&p.expr)))
        .collect();
    parts.join(",")
}

fn selections(items: &[LabelSelection]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| match s {
            LabelSelection::Name(n) => n.clone(),
            LabelSelection::Matcher(m) => m.to_string(),
        })
        .collect();
    parts.join(",")
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(l) => write!(f, "{l}"),
            Stage::Json(params) if params.is_empty() => f.write_str("| json"),
            Stage::Json(params) => write!(f, "| json {}", extractions(params)),
            Stage::Logfmt {
                strict,
                keep_empty,
                params,
            } => {
                f.write_str("| logfmt")?;
                let flags = [(*strict, "--strict"), (*keep_empty, "--keep-empty")];
                for (_, flag) in flags.iter().filter(|(on, _)| *on) {
                    write!(f, " {flag}")?;
                }
                if !params.is_empty() {
                    write!(f, " {}", extractions(params))?;
                }
                Ok(())
            }
            Stage::Regexp(re) => write!(f, "| regexp {}", go_quote(re)),
            Stage::Pattern(p) => write!(f, "| pattern {}", go_quote(p)),
            Stage::Unpack => f.write_str("| unpack"),
            Stage::LabelFilter(l) => write!(f, "| {l}"),
            Stage::LineFormat(t) => write!(f, "| line_format {}", go_quote(t)),
            Stage::LabelFormat(fmts) => {
                let parts: Vec<String> = fmts
                    .iter()
                    .map(|x| match x {
                        LabelFormat::Rename { dst, src } => format!("{dst}={src}"),
                        LabelFormat::Template { dst, template } => {
                            format!("{dst}={}", go_quote(template))
                        }
                    })
                    .collect();
                write!(f, "| label_format {}", parts.join(","))
            }
            Stage::Drop(items) => write!(f, "| drop {}", selections(items)),
            Stage::Keep(items) => write!(f, "| keep {}", selections(items)),
            Stage::Decolorize => f.write_str("| decolorize"),
        }
    }
}

impl Display for LogExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&selector_string(&self.matchers))?;
        for s in &self.pipeline {
            write!(f, " {s}")?;
        }
        Ok(())
    }
}

impl Unwrap {
    /// `| unwrap duration(x)` without the filters after it.
    pub(crate) fn head(&self) -> String {
        match self.conv {
            UnwrapConv::Number => format!("| unwrap {}", self.label),
            UnwrapConv::Duration => format!("| unwrap duration({})", self.label),
            UnwrapConv::Bytes => format!("| unwrap bytes({})", self.label),
        }
    }
}

impl Display for Unwrap {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.head())?;
        for p in &self.post_filters {
            write!(f, " | {p}")?;
        }
        Ok(())
    }
}

impl Display for LogRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.log)?;
        if let Some(u) = &self.unwrap {
            write!(f, " {u}")?;
        }
        write!(f, "[{}]", format_duration(self.range_ns))?;
        if self.offset_ns != 0 {
            write!(f, " offset {}", format_go_duration(self.offset_ns))?;
        }
        Ok(())
    }
}

impl Display for Grouping {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let kw = if self.without { "without" } else { "by" };
        write!(f, " {kw} ({})", self.labels.join(","))
    }
}

/// The operator of a binary operation with its modifiers, as Loki's `BinOpExpr.String()`
/// writes it (including the double space it leaves after `on (..)` with no `group_*`), or,
/// when `pretty`, as its `formatBinaryOp` does: label lists joined with `", "` and an empty
/// `on ()` left out.
pub(super) fn binop_string(
    op: BinOp,
    return_bool: bool,
    m: Option<&VectorMatching>,
    pretty: bool,
) -> String {
    let mut s = op.symbol().to_string();
    if return_bool {
        s.push_str(" bool");
    }
    let Some(m) = m else {
        return s;
    };
    let sep = if pretty { ", " } else { "," };
    let (mut group, include) = match &m.card {
        Cardinality::OneToOne => (String::new(), &[][..]),
        Cardinality::ManyToOne(inc) => ("group_left".to_string(), &inc[..]),
        Cardinality::OneToMany(inc) => ("group_right".to_string(), &inc[..]),
    };
    if !include.is_empty() {
        let _ = write!(group, " ({})", include.join(sep));
    }
    if (m.on && !pretty) || !m.labels.is_empty() {
        let on = if m.on { "on" } else { "ignoring" };
        let _ = write!(s, " {on} ({}) {group}", m.labels.join(sep));
    }
    s
}

impl Display for SampleExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SampleExpr::Range {
                op,
                range,
                param,
                grouping,
            } => {
                write!(f, "{}(", op.name())?;
                if let Some(p) = param {
                    write!(f, "{},", go_float_fixed(*p))?;
                }
                write!(f, "{range})")?;
                if let Some(g) = grouping {
                    write!(f, "{g}")?;
                }
                Ok(())
            }
            SampleExpr::Vector {
                op,
                inner,
                param,
                grouping,
            } => {
                f.write_str(op.name())?;
                if let Some(g) = grouping
                    .as_ref()
                    .filter(|g| g.without || !g.labels.is_empty())
                {
                    write!(f, "{g}")?;
                }
                f.write_str("(")?;
                if let Some(k) = param {
                    write!(f, "{},", *k as i64)?;
                }
                write!(f, "{inner})")
            }
            SampleExpr::Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
            } => {
                let op = binop_string(*op, *return_bool, matching.as_ref(), false);
                write!(f, "({lhs} {op} {rhs})")
            }
            SampleExpr::Literal(v) => f.write_str(&go_float(*v)),
            SampleExpr::VectorLiteral(v) => write!(f, "vector({v:.6})"),
            SampleExpr::LabelReplace {
                inner,
                dst,
                replacement,
                src,
                regex,
            } => write!(
                f,
                "label_replace({inner},{},{},{},{})",
                go_quote(dst),
                go_quote(replacement),
                go_quote(src),
                go_quote(regex)
            ),
            // Loki's tree keeps no parentheses; binary operations print their own.
            SampleExpr::Paren(inner) => write!(f, "{inner}"),
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => write!(f, "{l}"),
            Expr::Sample(s) => write!(f, "{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_number_and_string_printing() {
        let cases = [
            (100.0, "100"),
            (0.5, "0.5"),
            (-2.0, "-2"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(go_float(v), want);
        }
        assert_eq!(go_float_fixed(1e21), "1000000000000000000000");
        assert_eq!(go_float_fixed(0.99998), "0.99998");
        assert_eq!(
            go_quote("a\"b\\c\nd\té\u{a0}\u{1}\u{7f}"),
            r#""a\"b\\c\nd\té\u00a0\x01\x7f""#
        );
    }
}
