//! Pipeline tests, one module per kind of stage, each a table of hand-written lines with the
//! exact line and labels (per category) Loki produces for them.

mod extract;
mod filters;
mod formats;
mod parsers;
mod queries;

use seam_model::Labels;
use seam_store::MatchOp;

use super::Pipeline;
use crate::logql::ast::*;

/// A label set from pairs.
fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// What one entry should come out as.
struct Want<'a> {
    line: &'a str,
    stream: &'a [(&'a str, &'a str)],
    structured_metadata: &'a [(&'a str, &'a str)],
    parsed: &'a [(&'a str, &'a str)],
}

/// Runs `stages` over one line and compares with `want` (`None`: the entry is dropped).
fn check(
    stages: &[Stage],
    line: &str,
    stream: &[(&str, &str)],
    structured_metadata: &[(&str, &str)],
    want: Option<Want>,
) {
    let p = Pipeline::new(stages).unwrap_or_else(|e| panic!("{stages:?}: {e}"));
    let got = p.process(42, line, &ls(stream), &ls(structured_metadata));
    match (got, want) {
        (None, None) => {}
        (Some(e), Some(w)) => {
            assert_eq!(e.timestamp_ns, 42);
            assert_eq!(e.line, w.line, "line of {line:?} through {stages:?}");
            assert_eq!(e.labels.stream, ls(w.stream), "stream labels of {line:?}");
            assert_eq!(
                e.labels.structured_metadata,
                ls(w.structured_metadata),
                "metadata of {line:?}"
            );
            assert_eq!(e.labels.parsed, ls(w.parsed), "parsed labels of {line:?}");
        }
        (got, want) => panic!(
            "{line:?} through {stages:?}: got {got:?}, want {}",
            if want.is_some() {
                "an entry"
            } else {
                "it dropped"
            }
        ),
    }
}

/// The entry is kept with its line and stream as they were, no metadata, and `parsed` added.
fn check_kept(stages: &[Stage], line: &str, stream: &[(&str, &str)], parsed: &[(&str, &str)]) {
    check(
        stages,
        line,
        stream,
        &[],
        Some(Want {
            line,
            stream,
            structured_metadata: &[],
            parsed,
        }),
    );
}

/// Parsed labels only: the stream is `{app="api"}`, no metadata, the line unchanged.
fn check_parsed(stages: &[Stage], line: &str, parsed: &[(&str, &str)]) {
    check_kept(stages, line, &[("app", "api")], parsed);
}

fn matcher(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

fn line_filter(op: LineFilterOp, pattern: &str, or: &[&str]) -> Stage {
    Stage::LineFilter(LineFilter {
        op,
        pattern: pattern.into(),
        or: or.iter().map(|s| s.to_string()).collect(),
    })
}

fn json() -> Stage {
    Stage::Json(Vec::new())
}

fn json_params(params: &[(&str, &str)]) -> Stage {
    Stage::Json(extractions(params))
}

fn logfmt(strict: bool, keep_empty: bool) -> Stage {
    Stage::Logfmt {
        strict,
        keep_empty,
        params: Vec::new(),
    }
}

fn extractions(params: &[(&str, &str)]) -> Vec<LabelExtraction> {
    params
        .iter()
        .map(|(label, expr)| LabelExtraction {
            label: label.to_string(),
            expr: expr.to_string(),
        })
        .collect()
}

fn label_eq(name: &str, op: MatchOp, value: &str) -> LabelFilter {
    LabelFilter::String(matcher(name, op, value))
}

fn filter(f: LabelFilter) -> Stage {
    Stage::LabelFilter(f)
}
