//! Loki's `syntax.Prettify` (`prettier.go`), which `/loki/api/v1/format_query` returns: an
//! expression whose canonical form fits in 100 characters stays on one line; a longer one is
//! broken into its parts, each indented two spaces per level.

use std::fmt::Write;

use super::super::ast::{
    Expr, Grouping, LineFilter, LogExpr, LogRange, SampleExpr, Stage, Unwrap, VectorOp,
};
use super::super::units::format_duration;
use super::{binop_string, go_float, go_quote, selector_string};

/// Loki's `MaxCharsPerLine`.
const MAX_CHARS_PER_LINE: usize = 100;

/// Formats a query the way Loki's `syntax.Prettify` does.
pub fn prettify(expr: &Expr) -> String {
    prettify_with(expr, MAX_CHARS_PER_LINE)
}

/// [`prettify`] with another line length (Loki's own tests use 20).
pub(crate) fn prettify_with(expr: &Expr, max: usize) -> String {
    let p = Pretty { max };
    match expr {
        Expr::Log(l) => p.log(l, 0),
        Expr::Sample(s) => p.sample(s, 0),
    }
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

/// `Grouping.Pretty`: ` by (a, b)`, ` without (a)`; nothing for `by ()` and a bare
/// ` without` for `without ()`, as Loki prints them.
fn grouping(g: &Grouping) -> String {
    let mut s = String::new();
    if g.without {
        s.push_str(" without");
    } else if !g.labels.is_empty() {
        s.push_str(" by");
    }
    if !g.labels.is_empty() {
        let _ = write!(s, " ({})", g.labels.join(", "));
    }
    s
}

struct Pretty {
    max: usize,
}

impl Pretty {
    fn fits(&self, s: &str) -> bool {
        s.len() <= self.max
    }

    /// A selector with its pipeline: one stage per line when too long, consecutive line
    /// filters forming one stage as in Loki's tree.
    fn log(&self, l: &LogExpr, level: usize) -> String {
        let one_line = l.to_string();
        if l.pipeline.is_empty() || self.fits(&one_line) {
            return indent(level) + &one_line;
        }
        let mut parts = Vec::new();
        let mut chain: Vec<&LineFilter> = Vec::new();
        for stage in &l.pipeline {
            if let Stage::LineFilter(f) = stage {
                chain.push(f);
                continue;
            }
            if !chain.is_empty() {
                parts.push(self.chain(&chain, level + 1));
                chain.clear();
            }
            parts.push(match stage {
                // Loki prints `| decolorize` without indentation.
                Stage::Decolorize => stage.to_string(),
                _ => indent(level + 1) + &stage.to_string(),
            });
        }
        if !chain.is_empty() {
            parts.push(self.chain(&chain, level + 1));
        }
        format!(
            "{}{}\n{}",
            indent(level),
            selector_string(&l.matchers),
            parts.join("\n")
        )
    }

    /// Consecutive line filters: on one line if they fit, else one per line.
    fn chain(&self, filters: &[&LineFilter], level: usize) -> String {
        let parts: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let one_line = parts.join(" ");
        if self.fits(&one_line) {
            return indent(level) + &one_line;
        }
        let (last, rest) = filters.split_last().expect("a chain has a filter");
        let mut s = String::new();
        if !rest.is_empty() {
            s = self.chain(rest, level) + "\n";
        }
        s + &indent(level) + &last.to_string()
    }

    fn unwrap(&self, u: &Unwrap, level: usize) -> String {
        let mut s = indent(level) + &u.head();
        for f in &u.post_filters {
            let _ = write!(s, "\n{}| {f}", indent(level));
        }
        s
    }

    fn range(&self, r: &LogRange, level: usize) -> String {
        let mut s = self.log(&r.log, level);
        if let Some(u) = &r.unwrap {
            s.push('\n');
            s.push_str(&self.unwrap(u, level + 1));
        }
        let _ = write!(s, " [{}]", format_duration(r.range_ns));
        if r.offset_ns != 0 {
            // Unlike the one-line form, Loki prints the offset in Prometheus' form here.
            let _ = write!(s, " offset {}", format_duration(r.offset_ns));
        }
        s
    }

    /// A function call broken over lines: `name(\n  arg,\n  arg\n)`.
    fn call(&self, head: String, args: Vec<String>, level: usize) -> String {
        format!("{head}(\n{}\n{})", args.join(",\n"), indent(level))
    }

    fn sample(&self, e: &SampleExpr, level: usize) -> String {
        if let SampleExpr::Paren(inner) = e {
            return self.sample(inner, level);
        }
        let one_line = e.to_string();
        if self.fits(&one_line) {
            return indent(level) + &one_line;
        }
        match e {
            SampleExpr::Range {
                op,
                range,
                param,
                grouping: g,
            } => {
                let mut s = format!("{}{}(\n", indent(level), op.name());
                if let Some(p) = param {
                    let _ = writeln!(s, "{}{},", indent(level + 1), go_float(*p));
                }
                s.push_str(&self.range(range, level + 1));
                let _ = write!(s, "\n{})", indent(level));
                if let Some(g) = g {
                    s.push_str(&grouping(g));
                }
                s
            }
            SampleExpr::Vector {
                op,
                inner,
                param,
                grouping: g,
            } => {
                let mut args = Vec::new();
                if matches!(op, VectorOp::Topk | VectorOp::Bottomk) {
                    args.push(format!(
                        "{}{}",
                        indent(level + 1),
                        param.unwrap_or(0.0) as i64
                    ));
                }
                args.push(self.sample(inner, level + 1));
                let head = format!(
                    "{}{}{}",
                    indent(level),
                    op.name(),
                    g.as_ref().map(grouping).unwrap_or_default()
                );
                self.call(head, args, level)
            }
            SampleExpr::Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
            } => format!(
                "{}\n{}{}\n{}",
                self.sample(lhs, level + 1),
                indent(level),
                binop_string(*op, *return_bool, matching.as_ref(), true),
                self.sample(rhs, level + 1)
            ),
            SampleExpr::LabelReplace {
                inner,
                dst,
                replacement,
                src,
                regex,
            } => {
                let mut args = vec![self.sample(inner, level + 1)];
                for s in [dst, replacement, src, regex] {
                    args.push(indent(level + 1) + &go_quote(s));
                }
                self.call(indent(level) + "label_replace", args, level)
            }
            SampleExpr::Literal(_) | SampleExpr::VectorLiteral(_) | SampleExpr::Paren(_) => {
                indent(level) + &one_line
            }
        }
    }
}
