//! Metric samples in Prometheus form: series identified by labels, each with (time, value) samples.

use crate::labels::{Label, Labels};

/// The metric name label.
pub const METRIC_NAME: &str = "__name__";

/// One sample.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// Milliseconds since the Unix epoch, as Prometheus stores time.
    #[prost(int64, tag = "1")]
    pub timestamp_ms: i64,
    /// The value. A stale marker is Prometheus's special NaN ([`STALE_NAN_BITS`]).
    #[prost(double, tag = "2")]
    pub value: f64,
}

/// The bit pattern Prometheus uses as the staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One series and some of its samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Series {
    /// The series labels including `__name__`, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in any order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// A write of samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SampleBatch {
    /// The series written.
    #[prost(message, repeated, tag = "1")]
    pub series: Vec<Series>,
}

impl Series {
    /// A series from a label set and samples.
    pub fn new(labels: Labels, samples: Vec<Sample>) -> Series {
        Series {
            labels: labels.into_vec(),
            samples,
        }
    }

    /// The series labels as a [`Labels`] set.
    pub fn label_set(&self) -> Labels {
        Labels::from_labels(self.labels.clone())
    }
}

impl SampleBatch {
    /// The number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}
