//! The log pipeline: the stages after a stream selector, run over each entry with Loki's
//! semantics (label categories, `_extracted` collisions, `__error__` labels). Line filters that
//! come before any stage that rewrites the line can also run in the store scan.

mod format;
mod json;
mod jsonscan;
mod label_filter;
mod labels_builder;
mod line_filter;
mod logfmt;
mod pattern;
mod template;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use regex::Regex;
use seam_model::Labels;

use super::ast::{LineFilter, LogRange, RangeOp, Stage, UnwrapConv};
use super::parser::compile_go_regex;
use super::value::{EntryLabels, LogEntry};
use format::{LabelFormatStage, LineFormat, Selection};
use json::JsonExpressions;
use label_filter::CompiledLabelFilter;
use labels_builder::{LabelsBuilder, ERR_SAMPLE_EXTRACTION};
use line_filter::CompiledLineFilter;
use logfmt::LogfmtExpressions;
pub(crate) use pattern::Pattern;

/// A pipeline compiled once per query (regexes, templates, paths), then run per entry.
pub struct Pipeline {
    stages: Vec<CompiledStage>,
    /// Only line filters: entries pass through without a labels builder.
    only_line_filters: bool,
}

enum CompiledStage {
    LineFilter(CompiledLineFilter),
    Json,
    JsonExpressions(JsonExpressions),
    Logfmt { strict: bool, keep_empty: bool },
    LogfmtExpressions(LogfmtExpressions),
    Regexp(RegexpParser),
    Pattern(Pattern),
    Unpack,
    LabelFilter(CompiledLabelFilter),
    LineFormat(LineFormat),
    LabelFormat(LabelFormatStage),
    Drop(Vec<Selection>),
    Keep(Vec<Selection>),
    Decolorize,
}

/// `| regexp "..."`: each named group becomes a label. The parser builds one to check the
/// stage, so Loki's rules are written once.
pub(crate) struct RegexpParser {
    re: Regex,
    /// `(group index, label name)`.
    names: Vec<(usize, String)>,
}

impl RegexpParser {
    /// Loki's checks: the Go regex compiles, at least one named group, valid and unique
    /// names; the errors are Loki's own.
    pub(crate) fn new(src: &str) -> Result<RegexpParser, String> {
        const MISSING: &str = "at least one named capture must be supplied";
        let re = compile_go_regex(src)?;
        let mut names: Vec<(usize, String)> = Vec::new();
        for (i, name) in re.capture_names().enumerate() {
            let Some(name) = name else { continue };
            if !seam_model::labels::is_valid_label_name(name) {
                return Err(format!("invalid extracted label name '{name}'"));
            }
            if names.iter().any(|(_, n)| n == name) {
                return Err(format!("duplicate extracted label name '{name}'"));
            }
            names.push((i, name.to_string()));
        }
        if names.is_empty() {
            return Err(MISSING.into());
        }
        Ok(RegexpParser { re, names })
    }

    fn process(&self, line: &str, lbs: &mut LabelsBuilder) {
        let Some(caps) = self.re.captures(line) else {
            return;
        };
        for (i, name) in &self.names {
            // `new` admits valid label names only, which Loki's sanitizing leaves unchanged.
            let key = lbs.extracted_name(Cow::Borrowed(name));
            let value = caps.get(*i).map_or("", |m| m.as_str());
            lbs.set_parsed(key.into_owned(), value.to_string());
        }
    }
}

fn pattern_parser(p: &Pattern, line: &str, lbs: &mut LabelsBuilder) {
    for (name, value) in p.names().iter().zip(p.captures(line)) {
        let key = lbs.extracted_name(Cow::Borrowed(name)).into_owned();
        lbs.set_parsed(key, value.to_string());
    }
}

impl Pipeline {
    /// Compiles the stages. The error names the stage that cannot run.
    pub fn new(stages: &[Stage]) -> Result<Pipeline, String> {
        let stages = stages
            .iter()
            .map(|s| {
                Ok(match s {
                    Stage::LineFilter(f) => CompiledStage::LineFilter(CompiledLineFilter::new(f)?),
                    Stage::Json(params) if params.is_empty() => CompiledStage::Json,
                    Stage::Json(params) => {
                        CompiledStage::JsonExpressions(JsonExpressions::new(params)?)
                    }
                    Stage::Logfmt {
                        strict,
                        keep_empty,
                        params,
                    } if params.is_empty() => CompiledStage::Logfmt {
                        strict: *strict,
                        keep_empty: *keep_empty,
                    },
                    Stage::Logfmt { strict, params, .. } => {
                        CompiledStage::LogfmtExpressions(LogfmtExpressions::new(params, *strict)?)
                    }
                    Stage::Regexp(re) => CompiledStage::Regexp(RegexpParser::new(re)?),
                    Stage::Pattern(p) => CompiledStage::Pattern(
                        Pattern::parser(p).map_err(|e| format!("invalid pattern {p:?}: {e}"))?,
                    ),
                    Stage::Unpack => CompiledStage::Unpack,
                    Stage::LabelFilter(f) => {
                        CompiledStage::LabelFilter(CompiledLabelFilter::new(f)?)
                    }
                    Stage::LineFormat(t) => CompiledStage::LineFormat(LineFormat::new(t)?),
                    Stage::LabelFormat(f) => CompiledStage::LabelFormat(LabelFormatStage::new(f)?),
                    Stage::Drop(items) => CompiledStage::Drop(format::compile_selections(items)?),
                    Stage::Keep(items) => CompiledStage::Keep(format::compile_selections(items)?),
                    Stage::Decolorize => CompiledStage::Decolorize,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let only_line_filters = stages
            .iter()
            .all(|s| matches!(s, CompiledStage::LineFilter(_)));
        Ok(Pipeline {
            stages,
            only_line_filters,
        })
    }

    /// The line filters that may run in the store scan: every line filter before the first
    /// stage that rewrites the line (`line_format`, `decolorize`, `unpack`). Parsers and label
    /// filters in between do not change which lines a line filter accepts, so the filters
    /// commute with them.
    pub fn pushdown(stages: &[Stage]) -> Vec<LineFilter> {
        stages
            .iter()
            .take_while(|s| !matches!(s, Stage::LineFormat(_) | Stage::Decolorize | Stage::Unpack))
            .filter_map(|s| match s {
                Stage::LineFilter(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    /// Runs the pipeline over one entry; `None` when a filter drops it.
    pub fn process(
        &self,
        timestamp_ns: i64,
        line: &str,
        stream: &Labels,
        structured_metadata: &Labels,
    ) -> Option<LogEntry> {
        if self.only_line_filters && plain_metadata(stream, structured_metadata) {
            if !self.line_filters_keep(line) {
                return None;
            }
            return Some(LogEntry {
                timestamp_ns,
                line: line.to_string(),
                labels: EntryLabels {
                    stream: stream.clone(),
                    structured_metadata: structured_metadata.clone(),
                    parsed: Labels::default(),
                },
            });
        }
        let mut lbs = LabelsBuilder::new(stream, structured_metadata);
        let line = self.run(timestamp_ns, line, &mut lbs)?;
        Some(LogEntry {
            timestamp_ns,
            line: line.into_owned(),
            labels: lbs.into_entry_labels(),
        })
    }

    /// Whether every line filter of the pipeline accepts `line`, without running the other
    /// stages or building an entry: the cheap test for pushed-down filters in a store scan.
    pub fn line_filters_keep(&self, line: &str) -> bool {
        self.stages.iter().all(|s| match s {
            CompiledStage::LineFilter(f) => f.keep(line),
            _ => true,
        })
    }

    /// Runs every stage; `None` when one drops the entry.
    fn run<'l>(&self, ts: i64, line: &'l str, lbs: &mut LabelsBuilder) -> Option<Cow<'l, str>> {
        let mut line = Cow::Borrowed(line);
        for s in &self.stages {
            match s {
                CompiledStage::LineFilter(f) => {
                    if !f.keep(&line) {
                        return None;
                    }
                }
                CompiledStage::Json => json::parse_all(&line, lbs),
                CompiledStage::JsonExpressions(j) => j.process(&line, lbs),
                CompiledStage::Logfmt { strict, keep_empty } => {
                    logfmt::parse_all(&line, *strict, *keep_empty, lbs)
                }
                CompiledStage::LogfmtExpressions(l) => l.process(&line, lbs),
                CompiledStage::Regexp(r) => r.process(&line, lbs),
                CompiledStage::Pattern(p) => pattern_parser(p, &line, lbs),
                CompiledStage::Unpack => line = json::unpack(line, lbs),
                CompiledStage::LabelFilter(f) => {
                    if !f.keep(lbs) {
                        return None;
                    }
                }
                CompiledStage::LineFormat(f) => line = f.apply(ts, line, lbs),
                CompiledStage::LabelFormat(f) => f.apply(ts, &line, lbs),
                CompiledStage::Drop(items) => format::drop_labels(items, lbs),
                CompiledStage::Keep(items) => format::keep_labels(items, lbs),
                CompiledStage::Decolorize => line = format::decolorize(line),
            }
        }
        Some(line)
    }
}

/// True when the metadata needs no renaming (no name shared with the stream, no error pair),
/// so the categories can be copied as they are.
fn plain_metadata(stream: &Labels, structured_metadata: &Labels) -> bool {
    structured_metadata.as_slice().iter().all(|l| {
        stream.get(&l.name).is_none()
            && l.name != labels_builder::ERROR_LABEL
            && l.name != labels_builder::ERROR_DETAILS_LABEL
    })
}

/// What a sample's value is.
enum SampleValue {
    /// 1 per line.
    Count,
    /// The line's length in bytes.
    Bytes,
    /// A label converted to a number; the label leaves the series.
    Unwrap {
        label: String,
        conv: UnwrapConv,
        post_filters: Vec<CompiledLabelFilter>,
    },
}

/// Turns log entries into samples for a range aggregation: the pipeline, then the value
/// (1 per line, the line's bytes, or the unwrapped label) and the post-unwrap filters.
pub struct SampleExtractor {
    pipeline: Pipeline,
    value: SampleValue,
}

impl SampleExtractor {
    /// Compiles the extractor for `op` over `range`.
    pub fn new(range: &LogRange, op: RangeOp) -> Result<SampleExtractor, String> {
        let needs_unwrap = !matches!(
            op,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        );
        let value = match (&range.unwrap, op) {
            (None, _) if needs_unwrap => {
                return Err(format!("invalid aggregation {} without unwrap", op.name()))
            }
            (None, RangeOp::BytesOverTime | RangeOp::BytesRate) => SampleValue::Bytes,
            (None, _) => SampleValue::Count,
            (Some(_), RangeOp::CountOverTime | RangeOp::BytesOverTime | RangeOp::BytesRate) => {
                return Err(format!("invalid aggregation {} with unwrap", op.name()))
            }
            (Some(u), _) => SampleValue::Unwrap {
                label: u.label.clone(),
                conv: u.conv,
                post_filters: u
                    .post_filters
                    .iter()
                    .map(CompiledLabelFilter::new)
                    .collect::<Result<_, _>>()?,
            },
        };
        Ok(SampleExtractor {
            pipeline: Pipeline::new(&range.log.pipeline)?,
            value,
        })
    }

    /// The sample for one entry: its series labels (all categories merged, `__error__` set when
    /// the value could not be extracted) and its value; `None` when the pipeline drops it or
    /// the unwrapped label is missing or empty.
    pub fn extract(
        &self,
        timestamp_ns: i64,
        line: &str,
        stream: &Labels,
        structured_metadata: &Labels,
    ) -> Option<(Labels, f64)> {
        if structured_metadata.is_empty() && self.labels_are_stream_labels() {
            return self.stream_only_value(line).map(|v| (stream.clone(), v));
        }
        self.extract_slow(timestamp_ns, line, stream, structured_metadata)
    }

    /// Whether, for an entry without structured metadata, the sample's labels are the stream's
    /// own (a pipeline of line filters only, and no unwrap), so a caller may look its series up
    /// once per stream instead of building labels per entry.
    pub fn labels_are_stream_labels(&self) -> bool {
        self.pipeline.only_line_filters && !matches!(self.value, SampleValue::Unwrap { .. })
    }

    /// The value of such an entry (see [`SampleExtractor::labels_are_stream_labels`]); `None`
    /// when a line filter drops it.
    pub fn stream_only_value(&self, line: &str) -> Option<f64> {
        let v = match self.value {
            SampleValue::Bytes => line.len() as f64,
            _ => 1.0,
        };
        self.pipeline.line_filters_keep(line).then_some(v)
    }

    fn extract_slow(
        &self,
        timestamp_ns: i64,
        line: &str,
        stream: &Labels,
        structured_metadata: &Labels,
    ) -> Option<(Labels, f64)> {
        let mut lbs = LabelsBuilder::new(stream, structured_metadata);
        let line = self.pipeline.run(timestamp_ns, line, &mut lbs)?;
        let (label, value) = match &self.value {
            SampleValue::Count => return Some((lbs.into_entry_labels().merged(), 1.0)),
            SampleValue::Bytes => {
                let n = line.len() as f64;
                return Some((lbs.into_entry_labels().merged(), n));
            }
            SampleValue::Unwrap {
                label,
                conv,
                post_filters,
            } => {
                let raw = lbs.get(label).filter(|v| !v.is_empty())?;
                let converted = match conv {
                    UnwrapConv::Number => label_filter::convert_number(raw),
                    UnwrapConv::Duration => label_filter::convert_duration_seconds(raw),
                    UnwrapConv::Bytes => label_filter::convert_bytes(raw).map(|b| b as f64),
                };
                let value = converted.unwrap_or_else(|e| {
                    lbs.set_err(ERR_SAMPLE_EXTRACTION, Some(e));
                    0.0
                });
                // Every post filter runs (their errors count) before the verdict, as Loki's
                // `and` chain does.
                let mut keep = true;
                for f in post_filters {
                    keep &= f.keep(&mut lbs);
                }
                if !keep {
                    return None;
                }
                (label, value)
            }
        };
        // As in Loki, a failed sample keeps every label so the error is not grouped away.
        if !lbs.has_err() {
            lbs.delete(label);
        }
        Some((lbs.into_entry_labels().merged(), value))
    }
}
