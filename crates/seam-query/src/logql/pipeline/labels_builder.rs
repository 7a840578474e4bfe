//! The labels of one entry while the pipeline runs, kept the way Loki's `LabelsBuilder` keeps
//! them: the stream labels as a read-only base, structured metadata and parsed labels as
//! overlays, deletions as a list, and the error pair outside the label set (so `keep` and
//! `label_format` cannot touch it by accident).

use std::borrow::Cow;

use seam_model::{Label, Labels};

use crate::logql::value::EntryLabels;

/// The error label Loki sets when a stage fails.
pub(super) const ERROR_LABEL: &str = "__error__";
/// The label carrying the failure's message.
pub(super) const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// Loki appends this to an extracted label whose name a stream label already has.
const DUPLICATE_SUFFIX: &str = "_extracted";

// Error kinds, spelled as Loki spells them: clients filter on these values.
/// `json` or `unpack` met malformed JSON.
pub(super) const ERR_JSON: &str = "JSONParserErr";
/// `logfmt --strict` met a malformed pair.
pub(super) const ERR_LOGFMT: &str = "LogfmtParserErr";
/// A label filter's value did not convert.
pub(super) const ERR_LABEL_FILTER: &str = "LabelFilterErr";
/// An unwrapped value did not convert.
pub(super) const ERR_SAMPLE_EXTRACTION: &str = "SampleExtractionErr";
/// A `line_format`/`label_format` template failed to render.
pub(super) const ERR_TEMPLATE_FORMAT: &str = "TemplateFormatErr";

/// One entry's labels in Loki's three categories, plus the error pair.
pub(super) struct LabelsBuilder<'a> {
    base: &'a Labels,
    structured_metadata: Vec<(String, String)>,
    parsed: Vec<(String, String)>,
    deleted: Vec<String>,
    err: String,
    err_details: String,
}

impl<'a> LabelsBuilder<'a> {
    /// Starts from the stream labels and adds the entry's structured metadata, renaming a
    /// metadata label that collides with a stream label as Loki does.
    pub(super) fn new(base: &'a Labels, structured_metadata: &Labels) -> LabelsBuilder<'a> {
        let mut b = LabelsBuilder {
            base,
            structured_metadata: Vec::new(),
            parsed: Vec::new(),
            deleted: Vec::new(),
            err: String::new(),
            err_details: String::new(),
        };
        for l in structured_metadata.as_slice() {
            let name = b.extracted_name(Cow::Borrowed(&l.name));
            match name.as_ref() {
                ERROR_LABEL => b.err = l.value.clone(),
                ERROR_DETAILS_LABEL => b.err_details = l.value.clone(),
                _ => upsert(&mut b.structured_metadata, name, l.value.clone()),
            }
        }
        b
    }

    /// True when the stream (not metadata or parsed) labels have `name`: the collision test
    /// Loki's parsers use for the `_extracted` suffix.
    pub(super) fn base_has(&self, name: &str) -> bool {
        self.base.get(name).is_some()
    }

    /// `name`, or `name_extracted` when a stream label already has that name.
    pub(super) fn extracted_name<'n>(&self, name: Cow<'n, str>) -> Cow<'n, str> {
        if self.base_has(&name) {
            Cow::Owned(format!("{name}{DUPLICATE_SUFFIX}"))
        } else {
            name
        }
    }

    /// The current value of a label (not the error pair), whichever category holds it.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        if let Some(v) = find(&self.structured_metadata, name).or_else(|| find(&self.parsed, name))
        {
            return Some(v);
        }
        if self.deleted.iter().any(|d| d == name) {
            return None;
        }
        self.base.get(name)
    }

    /// Like [`get`](Self::get), but the error pair reads as labels, as templates and string
    /// label filters see them.
    pub(super) fn get_with_errors(&self, name: &str) -> Option<&str> {
        match name {
            ERROR_LABEL => (!self.err.is_empty()).then_some(self.err.as_str()),
            ERROR_DETAILS_LABEL => {
                (!self.err_details.is_empty()).then_some(self.err_details.as_str())
            }
            _ => self.get(name),
        }
    }

    /// Sets a parsed label; it hides a metadata or stream label of the same name.
    pub(super) fn set_parsed(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        if let Some(i) = self
            .structured_metadata
            .iter()
            .position(|(n, _)| *n == name)
        {
            self.structured_metadata.remove(i);
        }
        upsert(&mut self.parsed, name, value.into());
    }

    /// Removes a label from every category.
    pub(super) fn delete(&mut self, name: &str) {
        self.structured_metadata.retain(|(n, _)| n != name);
        self.parsed.retain(|(n, _)| n != name);
        self.deleted.push(name.to_string());
    }

    /// True once a stage failed.
    pub(super) fn has_err(&self) -> bool {
        !self.err.is_empty()
    }

    /// Records a failure: the kind and, when known, the message.
    pub(super) fn set_err(&mut self, kind: &str, details: Option<String>) {
        self.err = kind.to_string();
        if let Some(d) = details {
            self.err_details = d;
        }
    }

    /// Clears the error kind (`drop __error__`).
    pub(super) fn reset_err(&mut self) {
        self.err.clear();
    }

    /// Clears the error details (`drop __error_details__`).
    pub(super) fn reset_err_details(&mut self) {
        self.err_details.clear();
    }

    /// Every label with its value in Loki's order (stream, metadata, parsed, then the error
    /// pair), the set `keep` walks and templates read.
    pub(super) fn entries(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .visible_stream()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        out.extend(
            self.structured_metadata
                .iter()
                .chain(&self.parsed)
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        if !self.err.is_empty() {
            out.push((ERROR_LABEL, &self.err));
        }
        if !self.err_details.is_empty() {
            out.push((ERROR_DETAILS_LABEL, &self.err_details));
        }
        out
    }

    /// The labels in their categories; the error pair counts as parsed, as in Loki.
    pub(super) fn into_entry_labels(self) -> EntryLabels {
        let untouched = self.structured_metadata.is_empty()
            && self.parsed.is_empty()
            && self.deleted.is_empty();
        let stream = if untouched {
            self.base.clone()
        } else {
            Labels::from_labels(self.visible_stream().cloned().collect())
        };
        let mut parsed: Vec<Label> = self
            .parsed
            .into_iter()
            .map(|(n, v)| Label::new(n, v))
            .collect();
        if !self.err.is_empty() {
            parsed.push(Label::new(ERROR_LABEL, self.err));
        }
        if !self.err_details.is_empty() {
            parsed.push(Label::new(ERROR_DETAILS_LABEL, self.err_details));
        }
        EntryLabels {
            stream,
            structured_metadata: Labels::from_labels(
                self.structured_metadata
                    .into_iter()
                    .map(|(n, v)| Label::new(n, v))
                    .collect(),
            ),
            parsed: Labels::from_labels(parsed),
        }
    }

    /// Stream labels not deleted and not shadowed by a metadata or parsed label.
    fn visible_stream(&self) -> impl Iterator<Item = &Label> {
        self.base.as_slice().iter().filter(|l| {
            !self.deleted.contains(&l.name)
                && find(&self.structured_metadata, &l.name).is_none()
                && find(&self.parsed, &l.name).is_none()
        })
    }
}

fn find<'v>(v: &'v [(String, String)], name: &str) -> Option<&'v str> {
    v.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn upsert(v: &mut Vec<(String, String)>, name: impl Into<String> + AsRef<str>, value: String) {
    match v.iter_mut().find(|(n, _)| n.as_str() == name.as_ref()) {
        Some(slot) => slot.1 = value,
        None => v.push((name.into(), value)),
    }
}

/// Loki's `sanitizeLabelKey`: trims spaces, prefixes a leading digit with `_` (when `prefix`),
/// and turns every character outside `[a-zA-Z0-9_]` into `_`. Differs from
/// `seam_model::sanitize_label_name`, which follows the OTLP rule (`key_` prefix).
pub(super) fn sanitize_label_key(key: &str, prefix: bool) -> String {
    let key = key.trim();
    let mut out = String::with_capacity(key.len() + 1);
    if prefix && key.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    append_sanitized_chars(&mut out, key);
    out
}

/// Loki's `appendSanitized`: appends the trimmed, sanitized key; a leading digit gets `_`
/// only when `to` is still empty (the first segment of a nested JSON key).
pub(super) fn append_sanitized(to: &mut String, key: &str) {
    let key = key.trim();
    if key.is_empty() {
        return;
    }
    if to.is_empty() && key.starts_with(|c: char| c.is_ascii_digit()) {
        to.push('_');
    }
    append_sanitized_chars(to, key);
}

fn append_sanitized_chars(to: &mut String, key: &str) {
    to.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// Loki replaces U+FFFD in extracted values with a space (Prometheus rejects it).
pub(super) fn replace_rune_error(v: Cow<'_, str>) -> Cow<'_, str> {
    if v.contains('\u{FFFD}') {
        Cow::Owned(v.replace('\u{FFFD}', " "))
    } else {
        v
    }
}
