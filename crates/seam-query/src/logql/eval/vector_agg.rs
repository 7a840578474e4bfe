//! Vector aggregations (`sum by (..)`, `topk`, `sort`, …), step by step with Loki's arithmetic
//! (`VectorAggEvaluator`): running mean for `avg`, Welford for `stddev`/`stdvar`, NaN replaced
//! by any value for `min`/`max`.

use std::cmp::Ordering;
use std::collections::HashMap;

use seam_model::Labels;

use super::super::ast::{Grouping, VectorOp};
use super::labels::group_labels;
use super::steps::{by_step, SampleSeries, SampleSet, Steps};
use super::QueryError;

/// Applies a vector aggregation to every step of `input`.
pub(super) fn aggregate(
    op: VectorOp,
    param: Option<f64>,
    grouping: Option<&Grouping>,
    input: SampleSet,
    steps: &Steps,
) -> Result<SampleSet, QueryError> {
    match op {
        VectorOp::Topk | VectorOp::Bottomk => {
            let k = param.ok_or_else(|| {
                QueryError::Invalid(format!("{op:?} needs a parameter").to_lowercase())
            })?;
            Ok(select_k(op == VectorOp::Topk, k, grouping, input, steps))
        }
        VectorOp::Sort | VectorOp::SortDesc => Ok(sort(op == VectorOp::SortDesc, input, steps)),
        _ => Ok(reduce(op, grouping, input, steps)),
    }
}

/// Assigns every series to its group; returns the group of each series and the group labels.
fn groups(input: &SampleSet, grouping: Option<&Grouping>) -> (Vec<usize>, Vec<Labels>) {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut labels = Vec::new();
    let of = input
        .iter()
        .map(|s| {
            let key = group_labels(&s.labels, grouping);
            *index.entry(key).or_insert_with_key(|k| {
                labels.push(k.clone());
                labels.len() - 1
            })
        })
        .collect();
    (of, labels)
}

/// Loki's `groupedAggregation` for the reducing operators.
#[derive(Clone, Copy)]
struct Group {
    value: f64,
    mean: f64,
    count: f64,
}

impl Group {
    fn new(op: VectorOp, v: f64) -> Group {
        let value = match op {
            VectorOp::Stddev | VectorOp::Stdvar => 0.0,
            _ => v,
        };
        Group {
            value,
            mean: v,
            count: 1.0,
        }
    }

    fn add(&mut self, op: VectorOp, v: f64) {
        match op {
            VectorOp::Sum => self.value += v,
            VectorOp::Avg => {
                self.count += 1.0;
                self.mean += (v - self.mean) / self.count;
            }
            VectorOp::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            VectorOp::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            VectorOp::Count => self.count += 1.0,
            VectorOp::Stddev | VectorOp::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            VectorOp::Topk | VectorOp::Bottomk | VectorOp::Sort | VectorOp::SortDesc => {}
        }
    }

    fn result(&self, op: VectorOp) -> f64 {
        match op {
            VectorOp::Avg => self.mean,
            VectorOp::Count => self.count,
            VectorOp::Stddev => (self.value / self.count).sqrt(),
            VectorOp::Stdvar => self.value / self.count,
            _ => self.value,
        }
    }
}

fn reduce(op: VectorOp, grouping: Option<&Grouping>, input: SampleSet, steps: &Steps) -> SampleSet {
    let (of, labels) = groups(&input, grouping);
    let mut out: SampleSet = labels
        .into_iter()
        .map(|labels| SampleSeries {
            labels,
            points: Vec::new(),
        })
        .collect();
    let mut acc: Vec<Option<Group>> = vec![None; out.len()];
    let mut touched = Vec::new();
    for (i, samples) in by_step(&input, steps.n).into_iter().enumerate() {
        for (s, v) in samples {
            match &mut acc[of[s]] {
                Some(g) => g.add(op, v),
                slot @ None => {
                    *slot = Some(Group::new(op, v));
                    touched.push(of[s]);
                }
            }
        }
        for g in touched.drain(..) {
            if let Some(a) = acc[g].take() {
                out[g].points.push((i, a.result(op)));
            }
        }
    }
    out.retain(|s| !s.points.is_empty());
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// Orders values descending (`desc`) or ascending, NaN last either way; equal values keep
/// their input order.
fn by_value(desc: bool) -> impl Fn(&f64, &f64) -> Ordering {
    move |a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if desc => b.partial_cmp(a).expect("non-NaN values compare"),
        _ => a.partial_cmp(b).expect("non-NaN values compare"),
    }
}

/// `topk`/`bottomk`: per step and group, the `k` largest (smallest) samples keep their series'
/// labels; a `k` below 1 selects nothing.
fn select_k(
    top: bool,
    k: f64,
    grouping: Option<&Grouping>,
    input: SampleSet,
    steps: &Steps,
) -> SampleSet {
    if k < 1.0 {
        return Vec::new();
    }
    let k = k as usize;
    let (of, labels) = groups(&input, grouping);
    let per_step = by_step(&input, steps.n);
    let mut out: SampleSet = input
        .into_iter()
        .map(|s| SampleSeries {
            labels: s.labels,
            points: Vec::new(),
        })
        .collect();
    let mut candidates: Vec<Vec<(usize, f64)>> = vec![Vec::new(); labels.len()];
    let mut touched = Vec::new();
    let order = by_value(top);
    for (i, samples) in per_step.into_iter().enumerate() {
        for (s, v) in samples {
            if candidates[of[s]].is_empty() {
                touched.push(of[s]);
            }
            candidates[of[s]].push((s, v));
        }
        for g in touched.drain(..) {
            let c = &mut candidates[g];
            c.sort_by(|a, b| order(&a.1, &b.1));
            for &(s, v) in c.iter().take(k) {
                out[s].points.push((i, v));
            }
            c.clear();
        }
    }
    out.retain(|s| !s.points.is_empty());
    out
}

/// `sort`/`sort_desc`: values are unchanged; an instant result is ordered by value (a range
/// result is a matrix, ordered by labels anyway).
fn sort(desc: bool, mut input: SampleSet, steps: &Steps) -> SampleSet {
    if steps.n == 1 {
        let order = by_value(desc);
        let first = |s: &SampleSeries| s.points.first().map_or(f64::NAN, |p| p.1);
        input.sort_by(|a, b| order(&first(a), &first(b)));
    }
    input
}
