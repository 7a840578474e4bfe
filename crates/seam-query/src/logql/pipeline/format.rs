//! The stages that rewrite an entry rather than parse it: `line_format`, `label_format`,
//! `drop`, `keep` and `decolorize`.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;
use seam_store::LabelMatcher;

use super::label_filter::compile_matcher;
use super::labels_builder::{LabelsBuilder, ERROR_DETAILS_LABEL, ERROR_LABEL, ERR_TEMPLATE_FORMAT};
use super::template::{Fields, Template};
use crate::logql::ast::{LabelFormat, LabelSelection};

/// Loki's `__preserve_error__` label, which `keep` never removes either.
const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

impl Fields for LabelsBuilder<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.get_with_errors(name)
    }

    fn all(&self) -> Vec<(&str, &str)> {
        sorted_unique(self.entries())
    }
}

/// A label set frozen when a `label_format` stage runs its first template: Loki renders every
/// template of the stage against that one snapshot.
struct Snapshot(Vec<(String, String)>);

impl Fields for Snapshot {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    fn all(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// Sorts by name; of duplicate names the last wins, as when Loki fills its template map.
fn sorted_unique<'a>(mut v: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    v.reverse();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v.dedup_by(|later, earlier| later.0 == earlier.0);
    v
}

/// `| line_format "template"`.
pub(super) struct LineFormat {
    template: Template,
}

impl LineFormat {
    /// Compiles the template; the error is Loki's.
    pub(super) fn new(src: &str) -> Result<LineFormat, String> {
        let template =
            Template::parse("line", src).map_err(|e| format!("invalid line template: {e}"))?;
        Ok(LineFormat { template })
    }

    /// The new line; on a render failure the line is kept and `__error__` set.
    pub(super) fn apply<'l>(
        &self,
        ts: i64,
        line: Cow<'l, str>,
        lbs: &mut LabelsBuilder,
    ) -> Cow<'l, str> {
        // The shortcut reads the label as the template would (the error pair included), so
        // `{{.__error__}}` prints the same either way.
        if let Some(name) = self.template.simple_field() {
            return Cow::Owned(lbs.get_with_errors(name).unwrap_or_default().to_string());
        }
        match self.template.render(&*lbs, &line, ts) {
            Ok(s) => Cow::Owned(s),
            Err(e) => {
                lbs.set_err(ERR_TEMPLATE_FORMAT, Some(e));
                line
            }
        }
    }
}

enum LabelFormatOp {
    Rename { dst: String, src: String },
    Template { dst: String, template: Template },
}

/// `| label_format dst=src, dst="template"`.
pub(super) struct LabelFormatStage {
    ops: Vec<LabelFormatOp>,
}

impl LabelFormatStage {
    /// Compiles the assignments; names must be unique and `__error__` cannot be set.
    pub(super) fn new(formats: &[LabelFormat]) -> Result<LabelFormatStage, String> {
        let mut seen: Vec<&str> = Vec::new();
        let mut ops = Vec::new();
        for f in formats {
            let dst = match f {
                LabelFormat::Rename { dst, .. } | LabelFormat::Template { dst, .. } => dst,
            };
            if dst == ERROR_LABEL {
                return Err(format!("{dst} cannot be formatted"));
            }
            if seen.contains(&dst.as_str()) {
                return Err(format!(
                    "multiple label name '{dst}' not allowed in a single format operation"
                ));
            }
            seen.push(dst);
            ops.push(match f {
                LabelFormat::Rename { dst, src } => LabelFormatOp::Rename {
                    dst: dst.clone(),
                    src: src.clone(),
                },
                LabelFormat::Template { dst, template } => LabelFormatOp::Template {
                    dst: dst.clone(),
                    template: Template::parse("label", template)
                        .map_err(|e| format!("invalid template for label '{dst}': {e}"))?,
                },
            });
        }
        Ok(LabelFormatStage { ops })
    }

    /// Applies the assignments in order.
    pub(super) fn apply(&self, ts: i64, line: &str, lbs: &mut LabelsBuilder) {
        let mut snapshot: Option<Snapshot> = None;
        for op in &self.ops {
            match op {
                LabelFormatOp::Rename { dst, src } => {
                    if let Some(v) = lbs.get(src).map(str::to_string) {
                        lbs.set_parsed(dst.clone(), v);
                        lbs.delete(src);
                    }
                }
                LabelFormatOp::Template { dst, template } => {
                    let snap = snapshot.get_or_insert_with(|| {
                        Snapshot(
                            lbs.all()
                                .into_iter()
                                .map(|(n, v)| (n.to_string(), v.to_string()))
                                .collect(),
                        )
                    });
                    match template.render(snap, line, ts) {
                        Ok(v) => lbs.set_parsed(dst.clone(), v),
                        Err(e) => lbs.set_err(ERR_TEMPLATE_FORMAT, Some(e)),
                    }
                }
            }
        }
    }
}

/// One `drop`/`keep` item: a name, or a matcher that must also match the value.
pub(super) enum Selection {
    /// Any value.
    Name(String),
    /// Only when the value matches.
    Matcher(LabelMatcher),
}

/// Compiles `drop`/`keep` items.
pub(super) fn compile_selections(items: &[LabelSelection]) -> Result<Vec<Selection>, String> {
    items
        .iter()
        .map(|s| match s {
            LabelSelection::Name(n) => Ok(Selection::Name(n.clone())),
            LabelSelection::Matcher(m) => compile_matcher(m).map(Selection::Matcher),
        })
        .collect()
}

/// `| drop a, b="x"`: removes the labels (the error pair included, which resets it).
pub(super) fn drop_labels(items: &[Selection], lbs: &mut LabelsBuilder) {
    for item in items {
        let (name, value_ok) = match item {
            Selection::Name(n) => (n.as_str(), None),
            Selection::Matcher(m) => (m.name.as_str(), Some(m)),
        };
        let value = lbs.get_with_errors(name);
        let matches = match value_ok {
            None => value.is_some() || name == ERROR_LABEL || name == ERROR_DETAILS_LABEL,
            Some(m) => m.matches(value.unwrap_or_default()),
        };
        if !matches {
            continue;
        }
        match name {
            ERROR_LABEL => lbs.reset_err(),
            ERROR_DETAILS_LABEL => lbs.reset_err_details(),
            _ => lbs.delete(name),
        }
    }
}

/// `| keep a, b="x"`: removes every other label; the error labels always stay.
pub(super) fn keep_labels(items: &[Selection], lbs: &mut LabelsBuilder) {
    if items.is_empty() {
        return;
    }
    let doomed: Vec<String> = lbs
        .entries()
        .into_iter()
        .filter(|(name, value)| {
            let special = matches!(
                *name,
                ERROR_LABEL | ERROR_DETAILS_LABEL | PRESERVE_ERROR_LABEL
            );
            !special
                && !items.iter().any(|item| match item {
                    Selection::Name(n) => n == name,
                    Selection::Matcher(m) => m.name == *name && m.matches(value),
                })
        })
        .map(|(name, _)| name.to_string())
        .collect();
    for name in doomed {
        lbs.delete(&name);
    }
}

/// `| decolorize`: strips ANSI escape sequences (Loki's pattern, from acarl005/stripansi).
pub(super) fn decolorize(line: Cow<'_, str>) -> Cow<'_, str> {
    static ANSI: OnceLock<Regex> = OnceLock::new();
    let re = ANSI.get_or_init(|| {
        Regex::new(concat!(
            r"[\x{1b}\x{9b}][\[\]()#;?]*(?:(?:(?:[a-zA-Z0-9]*(?:;[a-zA-Z0-9]*)*)?\x{07})",
            r"|(?:(?:[0-9]{1,4}(?:;[0-9]{0,4})*)?[0-9A-PRZcf-ntqry=><~]))"
        ))
        .expect("the ANSI pattern compiles")
    });
    match re.replace_all(&line, "") {
        Cow::Borrowed(_) => line,
        Cow::Owned(s) => Cow::Owned(s),
    }
}
