//! What a LogQL query returns, before the API shapes it into Loki's JSON.

use seam_model::Labels;

/// The labels of one processed log entry, kept in Loki's three categories so a
/// `categorize-labels` response can tell them apart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryLabels {
    /// The stream's own labels (after `drop`/`keep`/`label_format` touched them).
    pub stream: Labels,
    /// Structured metadata sent with the entry.
    pub structured_metadata: Labels,
    /// Labels written by parsers and formatters (`json`, `logfmt`, `label_format`, `__error__`…).
    pub parsed: Labels,
}

impl EntryLabels {
    /// All labels in one set, as Loki shows them without `categorize-labels`.
    pub fn merged(&self) -> Labels {
        if self.structured_metadata.is_empty() && self.parsed.is_empty() {
            return self.stream.clone();
        }
        let mut v = self.stream.as_slice().to_vec();
        v.extend(self.structured_metadata.as_slice().iter().cloned());
        v.extend(self.parsed.as_slice().iter().cloned());
        Labels::from_labels(v)
    }
}

/// One log entry of a log query's result.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Time in nanoseconds.
    pub timestamp_ns: i64,
    /// The line, after `line_format`/`decolorize`/`unpack`.
    pub line: String,
    /// Its labels.
    pub labels: EntryLabels,
}

/// One series of a range (matrix) result.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its labels.
    pub labels: Labels,
    /// `(timestamp ns, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// One sample of an instant (vector) result.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    /// Its labels.
    pub labels: Labels,
    /// The evaluation time in nanoseconds.
    pub timestamp_ns: i64,
    /// The value.
    pub value: f64,
}

/// A query's value, in the result type Loki would answer with.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    /// `streams`: entries in the requested direction, at most `limit` of them.
    Streams(Vec<LogEntry>),
    /// `matrix`: a range query of a metric expression.
    Matrix(Vec<Series>),
    /// `vector`: an instant query of a metric expression.
    Vector(Vec<InstantSample>),
    /// `scalar`: a literal expression at an instant.
    Scalar {
        /// The evaluation time in nanoseconds.
        timestamp_ns: i64,
        /// The value.
        value: f64,
    },
}

/// Work figures for `data.stats.summary`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Lines decoded and tested.
    pub lines_processed: u64,
    /// Line bytes decoded and tested.
    pub bytes_processed: u64,
    /// Lines that passed the whole pipeline.
    pub post_filter_lines: u64,
    /// Structured metadata bytes read.
    pub structured_metadata_bytes: u64,
    /// Bytes read from segment files (compressed pages, footers, token filter words); head data
    /// is in memory and adds nothing.
    pub compressed_bytes_read: u64,
    /// Segment row groups the scans weighed: the ones read plus the ones their token filter
    /// ruled out. Loki's chunk references; head data, and row groups a log query's limit made
    /// unnecessary before they were weighed, are not counted.
    pub chunks_ref: u64,
    /// Segment row groups the scans read and decoded.
    pub chunks_downloaded: u64,
}
