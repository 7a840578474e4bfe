//! Label filters (`| status >= 400 and level=~"err.*"`) and the conversions they share with
//! `unwrap`: numbers, Go durations and humanized byte sizes, failing with Go's messages.

use seam_store::LabelMatcher;

use super::labels_builder::{LabelsBuilder, ERR_LABEL_FILTER};
use crate::logql::ast::{CmpOp, LabelFilter, Matcher};
use crate::logql::format::go_quote;
use crate::logql::units;

/// A compiled label filter expression.
pub(super) enum CompiledLabelFilter {
    /// Both hold.
    And(Box<CompiledLabelFilter>, Box<CompiledLabelFilter>),
    /// Either holds.
    Or(Box<CompiledLabelFilter>, Box<CompiledLabelFilter>),
    /// A string matcher (a missing label reads as empty).
    String(LabelMatcher),
    /// A numeric comparison.
    Number(String, CmpOp, f64),
    /// A duration comparison, in nanoseconds.
    Duration(String, CmpOp, i64),
    /// A byte-size comparison.
    Bytes(String, CmpOp, u64),
}

impl CompiledLabelFilter {
    /// Compiles the expression; the error names a regex that does not compile.
    pub(super) fn new(f: &LabelFilter) -> Result<CompiledLabelFilter, String> {
        let both = |l: &LabelFilter, r: &LabelFilter| -> Result<_, String> {
            Ok((
                Box::new(CompiledLabelFilter::new(l)?),
                Box::new(CompiledLabelFilter::new(r)?),
            ))
        };
        Ok(match f {
            LabelFilter::And(l, r) => {
                let (l, r) = both(l, r)?;
                CompiledLabelFilter::And(l, r)
            }
            LabelFilter::Or(l, r) => {
                let (l, r) = both(l, r)?;
                CompiledLabelFilter::Or(l, r)
            }
            LabelFilter::String(m) => CompiledLabelFilter::String(compile_matcher(m)?),
            LabelFilter::Number { name, op, value } => {
                CompiledLabelFilter::Number(name.clone(), *op, *value)
            }
            LabelFilter::Duration { name, op, value_ns } => {
                CompiledLabelFilter::Duration(name.clone(), *op, *value_ns)
            }
            LabelFilter::Bytes { name, op, value } => {
                CompiledLabelFilter::Bytes(name.clone(), *op, *value)
            }
        })
    }

    /// True when the entry passes. A value that does not convert keeps the entry and sets
    /// `__error__=LabelFilterErr` (unless an earlier error is already set), as in Loki; a
    /// missing label fails a numeric comparison.
    pub(super) fn keep(&self, lbs: &mut LabelsBuilder) -> bool {
        match self {
            // Loki evaluates the right side of `and` even when the left failed: its errors
            // still count.
            CompiledLabelFilter::And(l, r) => {
                let lok = l.keep(lbs);
                let rok = r.keep(lbs);
                lok && rok
            }
            CompiledLabelFilter::Or(l, r) => l.keep(lbs) || r.keep(lbs),
            CompiledLabelFilter::String(m) => {
                m.matches(lbs.get_with_errors(&m.name).unwrap_or_default())
            }
            CompiledLabelFilter::Number(name, op, want) => {
                compare(lbs, name, op, want, convert_number)
            }
            CompiledLabelFilter::Duration(name, op, want) => {
                compare(lbs, name, op, want, convert_duration_ns)
            }
            CompiledLabelFilter::Bytes(name, op, want) => {
                compare(lbs, name, op, want, convert_bytes)
            }
        }
    }
}

fn compare<T: PartialOrd>(
    lbs: &mut LabelsBuilder,
    name: &str,
    op: &CmpOp,
    want: &T,
    convert: fn(&str) -> Result<T, String>,
) -> bool {
    let Some(v) = lbs.get(name) else {
        return false;
    };
    match convert(v) {
        Ok(v) => match op {
            CmpOp::Eq => v == *want,
            CmpOp::Ne => v != *want,
            CmpOp::Gt => v > *want,
            CmpOp::Ge => v >= *want,
            CmpOp::Lt => v < *want,
            CmpOp::Le => v <= *want,
        },
        Err(details) => {
            if !lbs.has_err() {
                lbs.set_err(ERR_LABEL_FILTER, Some(details));
            }
            true
        }
    }
}

/// Compiles an AST matcher (regexes anchored and read as Go reads them, as everywhere in
/// LogQL).
pub(super) fn compile_matcher(m: &Matcher) -> Result<LabelMatcher, String> {
    m.to_label_matcher()
        .map_err(|e| format!("invalid regex {:?} for label {}: {e}", m.value, m.name))
}

/// Go's `strconv.ParseFloat`, with its error message.
pub(super) fn convert_number(v: &str) -> Result<f64, String> {
    v.parse::<f64>().map_err(|_| {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(v)
        )
    })
}

/// Go's `time.ParseDuration` in nanoseconds, with its error message.
pub(super) fn convert_duration_ns(v: &str) -> Result<i64, String> {
    units::parse_go_duration(v).ok_or_else(|| format!("time: invalid duration {}", go_quote(v)))
}

/// A duration label in seconds, as `unwrap duration(x)` reads it (Go's `Duration.Seconds`).
pub(super) fn convert_duration_seconds(v: &str) -> Result<f64, String> {
    let ns = convert_duration_ns(v)?;
    Ok((ns / 1_000_000_000) as f64 + (ns % 1_000_000_000) as f64 / 1e9)
}

/// go-humanize's `ParseBytes`, with its error messages.
pub(super) fn convert_bytes(v: &str) -> Result<u64, String> {
    units::parse_bytes(v).ok_or_else(|| {
        let num_len = v
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.' || *c == b',')
            .count();
        let num = v[..num_len].replace(',', "");
        if num.is_empty() || num == "." {
            format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                go_quote(&num)
            )
        } else {
            format!(
                "unhandled size name: {}",
                v[num_len..].trim().to_ascii_lowercase()
            )
        }
    })
}
