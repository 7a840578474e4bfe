//! The evaluation grid of a metric query and the series-major sample sets the operators pass
//! between each other.

use std::collections::HashMap;

use seam_model::Labels;

use super::{QueryError, QueryTime};

/// Most steps a range query may have, as Loki and Prometheus enforce.
const MAX_POINTS: i64 = 11_000;

/// The times a metric query is evaluated at: `start, start + step, …, ≤ end`, or one instant.
#[derive(Clone, Copy, Debug)]
pub(super) struct Steps {
    start: i64,
    step: i64,
    /// How many evaluation times.
    pub n: usize,
    /// An instant query (one evaluation at the end time).
    pub instant: bool,
}

impl Steps {
    /// The grid of a query time frame. A zero step means an instant query at `end_ns`.
    pub(super) fn new(time: &QueryTime) -> Result<Steps, QueryError> {
        if time.step_ns <= 0 {
            return Ok(Steps {
                start: time.end_ns,
                step: 1,
                n: 1,
                instant: true,
            });
        }
        if time.end_ns < time.start_ns {
            return Err(QueryError::Invalid(
                "end timestamp must not be before start time".into(),
            ));
        }
        let intervals = (time.end_ns - time.start_ns) / time.step_ns;
        if intervals > MAX_POINTS {
            return Err(QueryError::Invalid(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the \
                 query resolution (?step=XX)"
                    .into(),
            ));
        }
        Ok(Steps {
            start: time.start_ns,
            step: time.step_ns,
            n: intervals as usize + 1,
            instant: false,
        })
    }

    /// The evaluation time of step `i` (ns).
    pub(super) fn at(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }

    /// A series without labels holding `v` at every step (a scalar or `vector(v)`).
    pub(super) fn constant(&self, v: f64) -> SampleSeries {
        SampleSeries {
            labels: Labels::default(),
            points: (0..self.n).map(|i| (i, v)).collect(),
        }
    }
}

/// One series of an intermediate result: its labels and its values at some steps.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct SampleSeries {
    /// The labels.
    pub labels: Labels,
    /// `(step index, value)`, ascending by step, at most one per step.
    pub points: Vec<(usize, f64)>,
}

/// An intermediate result: series in a meaningful order (label order unless a `sort` reordered
/// them). Series-major so label work (grouping keys, match signatures) happens once per series.
pub(super) type SampleSet = Vec<SampleSeries>;

/// The samples of each step: `(series index, value)` in series order.
pub(super) fn by_step(set: &SampleSet, n: usize) -> Vec<Vec<(usize, f64)>> {
    let mut out = vec![Vec::new(); n];
    for (s, series) in set.iter().enumerate() {
        for &(i, v) in &series.points {
            out[i].push((s, v));
        }
    }
    out
}

/// Collects points under labels into a set, one series per distinct label set.
#[derive(Default)]
pub(super) struct SetBuilder {
    index: HashMap<Labels, usize>,
    set: SampleSet,
}

impl SetBuilder {
    /// The series for `labels`, created empty on first use; returns its index.
    pub(super) fn series(&mut self, labels: Labels) -> usize {
        if let Some(&i) = self.index.get(&labels) {
            return i;
        }
        self.set.push(SampleSeries {
            labels: labels.clone(),
            points: Vec::new(),
        });
        self.index.insert(labels, self.set.len() - 1);
        self.set.len() - 1
    }

    /// Adds a point to series `i`; a second point at the same step is dropped.
    pub(super) fn push(&mut self, i: usize, step: usize, v: f64) {
        let points = &mut self.set[i].points;
        match points.last() {
            Some(&(last, _)) if last == step => {}
            Some(&(last, _)) if last > step => {
                if let Err(at) = points.binary_search_by_key(&step, |p| p.0) {
                    points.insert(at, (step, v));
                }
            }
            _ => points.push((step, v)),
        }
    }

    /// The series that received at least one point, in creation order.
    pub(super) fn finish(self) -> SampleSet {
        self.set
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .collect()
    }
}

/// Merges series with equal labels (a later point at a step already taken is dropped) and sorts
/// them by labels, as Loki joins step vectors into a matrix.
pub(super) fn merge_sorted(set: SampleSet) -> SampleSet {
    let mut b = SetBuilder::default();
    for s in set {
        let i = b.series(s.labels);
        for (step, v) in s.points {
            b.push(i, step, v);
        }
    }
    let mut out = b.finish();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}
