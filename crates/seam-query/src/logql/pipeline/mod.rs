//! The log pipeline: the stages after a stream selector, run over each entry. Line filters that
//! come before any stage that rewrites the line are pushed down into the store scan.

use seam_model::Labels;

use super::ast::{LineFilter, LineFilterOp, LogRange, RangeOp, Stage};
use super::value::{EntryLabels, LogEntry};

/// A pipeline compiled once per query (regexes, templates, paths), then run per entry.
pub struct Pipeline {
    filters: Vec<CompiledLineFilter>,
}

enum CompiledLineFilter {
    Contains(String, bool),
    Regex(regex::Regex, bool),
}

impl Pipeline {
    /// Compiles the stages. The error names the stage that cannot run.
    pub fn new(stages: &[Stage]) -> Result<Pipeline, String> {
        let mut filters = Vec::new();
        for s in stages {
            match s {
                Stage::LineFilter(f) => filters.push(match f.op {
                    LineFilterOp::Contains | LineFilterOp::NotContains => {
                        CompiledLineFilter::Contains(
                            f.pattern.clone(),
                            f.op == LineFilterOp::Contains,
                        )
                    }
                    LineFilterOp::Regex | LineFilterOp::NotRegex => CompiledLineFilter::Regex(
                        regex::Regex::new(&f.pattern).map_err(|e| e.to_string())?,
                        f.op == LineFilterOp::Regex,
                    ),
                    _ => return Err("pattern line filters are not supported yet".into()),
                }),
                other => return Err(format!("pipeline stage {other:?} is not supported yet")),
            }
        }
        Ok(Pipeline { filters })
    }

    /// The leading line filters (before any stage that changes the line), safe to run in the
    /// store scan.
    pub fn pushdown(stages: &[Stage]) -> Vec<LineFilter> {
        stages
            .iter()
            .map_while(|s| match s {
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
        let keep = self.filters.iter().all(|f| match f {
            CompiledLineFilter::Contains(s, want) => line.contains(s.as_str()) == *want,
            CompiledLineFilter::Regex(re, want) => re.is_match(line) == *want,
        });
        keep.then(|| LogEntry {
            timestamp_ns,
            line: line.to_string(),
            labels: EntryLabels {
                stream: stream.clone(),
                structured_metadata: structured_metadata.clone(),
                parsed: Labels::default(),
            },
        })
    }
}

/// Turns log entries into samples for a range aggregation: the pipeline, then the value
/// (1 per line, the line's bytes, or the unwrapped label) and the post-unwrap filters.
pub struct SampleExtractor {
    pipeline: Pipeline,
    op: RangeOp,
}

impl SampleExtractor {
    /// Compiles the extractor for `op` over `range`.
    pub fn new(range: &LogRange, op: RangeOp) -> Result<SampleExtractor, String> {
        if range.unwrap.is_some() {
            return Err("unwrap is not supported yet".into());
        }
        Ok(SampleExtractor {
            pipeline: Pipeline::new(&range.log.pipeline)?,
            op,
        })
    }

    /// The sample for one entry: its series labels (all categories merged, `__error__` set when
    /// the value could not be extracted) and its value; `None` when the pipeline drops it.
    pub fn extract(
        &self,
        timestamp_ns: i64,
        line: &str,
        stream: &Labels,
        structured_metadata: &Labels,
    ) -> Option<(Labels, f64)> {
        let e = self
            .pipeline
            .process(timestamp_ns, line, stream, structured_metadata)?;
        let v = match self.op {
            RangeOp::BytesOverTime | RangeOp::BytesRate => e.line.len() as f64,
            _ => 1.0,
        };
        Some((e.labels.merged(), v))
    }
}
