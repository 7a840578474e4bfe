//! Label-set arithmetic shared by the operators: grouping keys, match signatures, the labels of
//! a binary operation's result, `label_replace` and `absent_over_time`'s labels.

use seam_model::{Label, Labels};
use seam_store::MatchOp;

use super::super::ast::{Cardinality, Grouping, Matcher, VectorMatching};
use super::super::parser::compile_go_regex;
use super::steps::{SampleSeries, SampleSet};
use super::QueryError;

/// The label Loki's pipeline sets when a stage fails on an entry.
const ERROR_LABEL: &str = "__error__";
/// With value `true`, a series keeps its `__error__` label without failing the query.
const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

/// The labels a `by`/`without` clause keeps (no clause: none, as `by ()`).
pub(super) fn group_labels(labels: &Labels, grouping: Option<&Grouping>) -> Labels {
    let Some(g) = grouping else {
        return Labels::default();
    };
    let keep = |l: &&Label| g.labels.contains(&l.name) != g.without;
    Labels::from_labels(labels.as_slice().iter().filter(keep).cloned().collect())
}

/// The labels two samples are matched on: all of them, only the `on` ones, or all but the
/// `ignoring` ones.
pub(super) fn signature(labels: &Labels, matching: Option<&VectorMatching>) -> Labels {
    match matching {
        None => labels.clone(),
        Some(m) => {
            let keep = |l: &&Label| m.labels.contains(&l.name) == m.on;
            Labels::from_labels(labels.as_slice().iter().filter(keep).cloned().collect())
        }
    }
}

/// The labels of a vector-vector result (Loki's `resultMetric`): the "many" side's labels,
/// reduced to the match labels for one-to-one matching, plus `group_x` labels from the "one"
/// side (absent there: removed).
pub(super) fn result_labels(
    many: &Labels,
    one: &Labels,
    matching: Option<&VectorMatching>,
) -> Labels {
    let Some(m) = matching else {
        return many.clone();
    };
    let mut out: Vec<Label> = many.as_slice().to_vec();
    let include = match &m.card {
        Cardinality::OneToOne => {
            out.retain(|l| m.labels.contains(&l.name) == m.on);
            &[][..]
        }
        Cardinality::ManyToOne(inc) | Cardinality::OneToMany(inc) => inc.as_slice(),
    };
    for name in include {
        out.retain(|l| l.name != *name);
        if let Some(v) = one.get(name) {
            out.push(Label::new(name.clone(), v));
        }
    }
    Labels::from_labels(out)
}

/// `label_replace`: where the anchored regex matches the source label's value, the destination
/// label becomes the expanded replacement (removed when that is empty).
pub(super) fn label_replace(
    set: SampleSet,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<SampleSet, QueryError> {
    // Go's regex dialect, as Loki compiles it.
    let re = compile_go_regex(&format!("^(?:{regex})$"))
        .map_err(|e| QueryError::Invalid(format!("invalid regex in label_replace: {e}")))?;
    Ok(set
        .into_iter()
        .map(|s| {
            let value = s.labels.get(src).unwrap_or("");
            let Some(caps) = re.captures(value) else {
                return s;
            };
            let mut res = String::new();
            caps.expand(replacement, &mut res);
            let mut v: Vec<Label> = s.labels.into_vec();
            v.retain(|l| l.name != dst);
            v.push(Label::new(dst, res));
            SampleSeries {
                labels: Labels::from_labels(v),
                points: s.points,
            }
        })
        .collect())
}

/// The labels `absent_over_time` reports: the selector's equality matchers, minus any name that
/// is also matched another way or more than once (Loki's `absentLabels`).
pub(super) fn absent_labels(matchers: &[Matcher]) -> Labels {
    let mut set: Vec<Label> = Vec::new();
    let mut dropped: Vec<&str> = Vec::new();
    for m in matchers {
        if m.op == MatchOp::Equal && !set.iter().any(|l| l.name == m.name) {
            set.push(Label::new(m.name.clone(), m.value.clone()));
        } else {
            dropped.push(&m.name);
        }
    }
    set.retain(|l| !dropped.contains(&l.name.as_str()));
    Labels::from_labels(set)
}

/// The error a series still carrying `__error__` raises at the end of a range aggregation,
/// worded as Loki's `PipelineError`.
pub(super) fn pipeline_error(labels: &Labels) -> Option<QueryError> {
    let err = labels.get(ERROR_LABEL)?;
    if labels.get(PRESERVE_ERROR_LABEL) == Some("true") {
        return None;
    }
    Some(QueryError::Invalid(format!(
        "pipeline error: '{err}' for series: '{labels}'.\n\
         Use a label filter to intentionally skip this error. (e.g | __error__!=\"{err}\").\n\
         To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n\
         The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"
    )))
}
