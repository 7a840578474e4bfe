//! Line filters (`|= != |~ !~ |> !>`), compiled once per query: substring finders, regexes and
//! patterns, each with its `or` alternatives.

use memchr::memmem::Finder;
use regex::Regex;

use super::pattern::Pattern;
use crate::logql::ast::{LineFilter, LineFilterOp};
use crate::logql::parser::compile_go_regex;

/// One compiled line filter stage.
pub(super) struct CompiledLineFilter {
    alternatives: Alternatives,
    /// `!=`, `!~`, `!>`: keep lines matching none of the alternatives.
    negate: bool,
}

enum Alternatives {
    Contains(Vec<Finder<'static>>),
    Regex(Vec<Regex>),
    Pattern(Vec<Pattern>),
}

impl CompiledLineFilter {
    /// Compiles the filter; the error names the regex or pattern that does not compile.
    pub(super) fn new(f: &LineFilter) -> Result<CompiledLineFilter, String> {
        let all = std::iter::once(&f.pattern).chain(&f.or);
        let alternatives = match f.op {
            LineFilterOp::Contains | LineFilterOp::NotContains => Alternatives::Contains(
                all.map(|p| Finder::new(p.as_bytes()).into_owned())
                    .collect(),
            ),
            LineFilterOp::Regex | LineFilterOp::NotRegex => Alternatives::Regex(
                all.map(|p| {
                    compile_go_regex(p).map_err(|e| format!("invalid line filter regex {p:?}: {e}"))
                })
                .collect::<Result<_, _>>()?,
            ),
            LineFilterOp::Pattern | LineFilterOp::NotPattern => Alternatives::Pattern(
                all.map(|p| {
                    Pattern::filter(p)
                        .map_err(|e| format!("invalid line filter pattern {p:?}: {e}"))
                })
                .collect::<Result<_, _>>()?,
            ),
        };
        let negate = matches!(
            f.op,
            LineFilterOp::NotContains | LineFilterOp::NotRegex | LineFilterOp::NotPattern
        );
        Ok(CompiledLineFilter {
            alternatives,
            negate,
        })
    }

    /// True when the line passes.
    pub(super) fn keep(&self, line: &str) -> bool {
        let any = match &self.alternatives {
            Alternatives::Contains(fs) => fs.iter().any(|f| f.find(line.as_bytes()).is_some()),
            Alternatives::Regex(rs) => rs.iter().any(|r| r.is_match(line)),
            Alternatives::Pattern(ps) => ps.iter().any(|p| p.test(line)),
        };
        any != self.negate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex_filter(pattern: &str, or: &[&str]) -> CompiledLineFilter {
        CompiledLineFilter::new(&LineFilter {
            op: LineFilterOp::Regex,
            pattern: pattern.into(),
            or: or.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn regexes_read_braces_as_go_does() {
        // `|~ "{\"level\":\"error\"}"`: Go reads the braces as literals, so Loki keeps the
        // lines containing the JSON fragment.
        let f = regex_filter(r#"{"level":"error"}"#, &[]);
        assert!(f.keep(r#"ts=1 {"level":"error"} boom"#));
        assert!(!f.keep(r#"ts=1 {"level":"info"}"#));
        // Valid repetitions stay repetitions, in alternatives too.
        let f = regex_filter("^a{2}$", &["x{"]);
        assert!(f.keep("aa") && f.keep("x{") && !f.keep("a") && !f.keep("x"));
    }
}
