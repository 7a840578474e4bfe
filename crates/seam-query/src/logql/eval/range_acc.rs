//! The per-window state of each range aggregation and the arithmetic that turns it into a value,
//! after Loki's `range_vector.go`. A state is kept per (series, time segment) and segments are
//! merged into windows, so most operations never hold individual samples.

use super::super::ast::RangeOp;

/// What the final value needs besides the state.
#[derive(Clone, Copy, Debug)]
pub(super) struct Finish {
    /// The operation.
    pub op: RangeOp,
    /// The range in nanoseconds.
    pub range_ns: i64,
    /// `quantile_over_time`'s φ.
    pub param: f64,
}

impl Finish {
    fn range_seconds(&self) -> f64 {
        self.range_ns as f64 / 1e9
    }
}

/// A mergeable summary of the samples of one series in one stretch of time.
pub(super) trait Agg: Clone {
    /// False for states that hold every sample: windows then gather their segments directly
    /// instead of sliding (which would copy the samples over and over).
    const SLIDING: bool = true;
    /// The state of a single sample.
    fn one(ts: i64, v: f64) -> Self;
    /// Adds a sample (samples may arrive out of time order).
    fn add(&mut self, ts: i64, v: f64);
    /// Appends the state of a later stretch of time.
    fn merge(&mut self, later: &Self);
    /// The aggregation's value.
    fn value(&self, f: &Finish) -> f64;
}

/// Line count (`count_over_time`, `rate`, `absent_over_time`).
#[derive(Clone, Copy)]
pub(super) struct Count(f64);

impl Agg for Count {
    fn one(_: i64, _: f64) -> Self {
        Count(1.0)
    }
    fn add(&mut self, _: i64, _: f64) {
        self.0 += 1.0;
    }
    fn merge(&mut self, later: &Self) {
        self.0 += later.0;
    }
    fn value(&self, f: &Finish) -> f64 {
        match f.op {
            RangeOp::Rate => self.0 / f.range_seconds(),
            RangeOp::AbsentOverTime => 1.0,
            _ => self.0,
        }
    }
}

/// Sum of values (`sum_over_time`, `bytes_over_time`, `bytes_rate`, `rate` with unwrap).
#[derive(Clone, Copy)]
pub(super) struct Sum(f64);

impl Agg for Sum {
    fn one(_: i64, v: f64) -> Self {
        Sum(v)
    }
    fn add(&mut self, _: i64, v: f64) {
        self.0 += v;
    }
    fn merge(&mut self, later: &Self) {
        self.0 += later.0;
    }
    fn value(&self, f: &Finish) -> f64 {
        match f.op {
            RangeOp::Rate | RangeOp::BytesRate => self.0 / f.range_seconds(),
            _ => self.0,
        }
    }
}

/// Running mean, with Loki's guard against turning an infinite mean into NaN.
#[derive(Clone, Copy)]
pub(super) struct Avg {
    count: f64,
    mean: f64,
}

impl Agg for Avg {
    fn one(_: i64, v: f64) -> Self {
        Avg {
            count: 1.0,
            mean: v,
        }
    }
    fn add(&mut self, _: i64, v: f64) {
        self.count += 1.0;
        if self.mean.is_infinite() {
            let same_inf = v.is_infinite() && (self.mean > 0.0) == (v > 0.0);
            if same_inf || (!v.is_infinite() && !v.is_nan()) {
                return;
            }
        }
        self.mean += v / self.count - self.mean / self.count;
    }
    fn merge(&mut self, later: &Self) {
        let n = self.count + later.count;
        if self.mean.is_infinite() || later.mean.is_infinite() {
            self.mean += later.mean;
        } else {
            self.mean += (later.mean - self.mean) * later.count / n;
        }
        self.count = n;
    }
    fn value(&self, _: &Finish) -> f64 {
        self.mean
    }
}

/// The better of the current extreme and a new value; NaN only when every value is NaN, as
/// Loki's loops behave.
fn pick(min: bool, cur: f64, v: f64) -> f64 {
    let better = if min { v < cur } else { v > cur };
    if better || cur.is_nan() {
        v
    } else {
        cur
    }
}

/// Minimum (`min_over_time`).
#[derive(Clone, Copy)]
pub(super) struct Min(f64);
/// Maximum (`max_over_time`).
#[derive(Clone, Copy)]
pub(super) struct Max(f64);

impl Agg for Min {
    fn one(_: i64, v: f64) -> Self {
        Min(v)
    }
    fn add(&mut self, _: i64, v: f64) {
        self.0 = pick(true, self.0, v);
    }
    fn merge(&mut self, later: &Self) {
        self.0 = pick(true, self.0, later.0);
    }
    fn value(&self, _: &Finish) -> f64 {
        self.0
    }
}

impl Agg for Max {
    fn one(_: i64, v: f64) -> Self {
        Max(v)
    }
    fn add(&mut self, _: i64, v: f64) {
        self.0 = pick(false, self.0, v);
    }
    fn merge(&mut self, later: &Self) {
        self.0 = pick(false, self.0, later.0);
    }
    fn value(&self, _: &Finish) -> f64 {
        self.0
    }
}

/// Welford's running variance (`stddev_over_time`, `stdvar_over_time`); stretches merge with
/// Chan's parallel formula.
#[derive(Clone, Copy)]
pub(super) struct Var {
    count: f64,
    mean: f64,
    m2: f64,
}

impl Agg for Var {
    fn one(_: i64, v: f64) -> Self {
        Var {
            count: 1.0,
            mean: v,
            m2: 0.0,
        }
    }
    fn add(&mut self, _: i64, v: f64) {
        self.count += 1.0;
        let delta = v - self.mean;
        self.mean += delta / self.count;
        self.m2 += delta * (v - self.mean);
    }
    fn merge(&mut self, later: &Self) {
        let n = self.count + later.count;
        let delta = later.mean - self.mean;
        self.m2 += later.m2 + delta * delta * self.count * later.count / n;
        self.mean += delta * later.count / n;
        self.count = n;
    }
    fn value(&self, f: &Finish) -> f64 {
        let var = self.m2 / self.count;
        match f.op {
            RangeOp::StddevOverTime => var.sqrt(),
            _ => var,
        }
    }
}

/// The earliest sample (`first_over_time`); on equal times the one seen first.
#[derive(Clone, Copy)]
pub(super) struct First(i64, f64);

impl Agg for First {
    fn one(ts: i64, v: f64) -> Self {
        First(ts, v)
    }
    fn add(&mut self, ts: i64, v: f64) {
        if ts < self.0 {
            *self = First(ts, v);
        }
    }
    fn merge(&mut self, later: &Self) {
        self.add(later.0, later.1);
    }
    fn value(&self, _: &Finish) -> f64 {
        self.1
    }
}

/// The latest sample (`last_over_time`); on equal times the one seen last.
#[derive(Clone, Copy)]
pub(super) struct Last(i64, f64);

impl Agg for Last {
    fn one(ts: i64, v: f64) -> Self {
        Last(ts, v)
    }
    fn add(&mut self, ts: i64, v: f64) {
        if ts >= self.0 {
            *self = Last(ts, v);
        }
    }
    fn merge(&mut self, later: &Self) {
        self.add(later.0, later.1);
    }
    fn value(&self, _: &Finish) -> f64 {
        self.1
    }
}

/// Every sample, for the operations that need them all (`quantile_over_time`, `rate_counter`).
#[derive(Clone)]
pub(super) struct Values(Vec<(i64, f64)>);

impl Agg for Values {
    const SLIDING: bool = false;
    fn one(ts: i64, v: f64) -> Self {
        Values(vec![(ts, v)])
    }
    fn add(&mut self, ts: i64, v: f64) {
        self.0.push((ts, v));
    }
    fn merge(&mut self, later: &Self) {
        self.0.extend_from_slice(&later.0);
    }
    fn value(&self, f: &Finish) -> f64 {
        match f.op {
            RangeOp::QuantileOverTime => {
                let mut v: Vec<f64> = self.0.iter().map(|p| p.1).collect();
                quantile(f.param, &mut v)
            }
            _ => {
                let mut v = self.0.clone();
                v.sort_by_key(|p| p.0);
                extrapolated_rate(&v, f.range_ns)
            }
        }
    }
}

/// Loki's `Quantile`: the φ-quantile with linear interpolation between the closest ranks;
/// NaN values sort first.
pub(super) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).expect("non-NaN values compare"),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `rate_counter`: Loki's copy of Prometheus's `extrapolatedRate` (counter, per second). Loki
/// feeds it nanosecond timestamps while the code expects milliseconds; the same arithmetic is
/// kept here so answers match Loki's to the digit.
fn extrapolated_rate(samples: &[(i64, f64)], range_ns: i64) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let (t0, v0) = samples[0];
    let (tn, vn) = samples[samples.len() - 1];
    let range_ms = range_ns / 1_000_000;
    let range_start = t0 - range_ms;
    let range_end = tn;
    let mut result = vn - v0;
    let mut last = 0.0;
    for &(_, v) in samples {
        if v < last {
            result += last;
        }
        last = v;
    }
    let mut to_start = (t0 - range_start) as f64 / 1000.0;
    let to_end = (range_end - tn) as f64 / 1000.0;
    let sampled = (tn - t0) as f64 / 1000.0;
    let average = sampled / (samples.len() - 1) as f64;
    if result > 0.0 && v0 >= 0.0 {
        let to_zero = sampled * (v0 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    result * (interval / sampled) / (range_ns as f64 / 1e9)
}

/// A first-in first-out window over time-ordered states that answers "merge of everything
/// inside" in amortised constant time, for any associative merge (two-stack queue): the front
/// stack holds suffix merges of the oldest states, the back a running merge of the newest.
pub(super) struct SlidingWindow<A: Agg> {
    /// `(segment, merge of this state and every newer one on the front stack)`; the top is the
    /// oldest state in the window.
    front: Vec<(usize, A)>,
    back: Vec<(usize, A)>,
    back_merged: Option<A>,
}

impl<A: Agg> SlidingWindow<A> {
    /// An empty window.
    pub(super) fn new() -> Self {
        SlidingWindow {
            front: Vec::new(),
            back: Vec::new(),
            back_merged: None,
        }
    }

    /// Appends the state of a segment newer than every one inside.
    pub(super) fn push(&mut self, seg: usize, a: &A) {
        match &mut self.back_merged {
            Some(m) => m.merge(a),
            None => self.back_merged = Some(a.clone()),
        }
        self.back.push((seg, a.clone()));
    }

    /// Drops the states of segments before `seg`.
    pub(super) fn pop_before(&mut self, seg: usize) {
        loop {
            if self.front.is_empty() {
                if self.back.first().is_none_or(|b| b.0 >= seg) {
                    return;
                }
                self.flip();
            }
            match self.front.last() {
                Some(f) if f.0 < seg => {
                    self.front.pop();
                }
                _ => return,
            }
        }
    }

    fn flip(&mut self) {
        let mut acc: Option<A> = None;
        while let Some((seg, a)) = self.back.pop() {
            let merged = match acc {
                None => a,
                Some(newer) => {
                    let mut m = a;
                    m.merge(&newer);
                    m
                }
            };
            acc = Some(merged.clone());
            self.front.push((seg, merged));
        }
        self.back_merged = None;
    }

    /// The merge of every state inside, oldest first; `None` when empty.
    pub(super) fn merged(&self) -> Option<A> {
        match (self.front.last(), &self.back_merged) {
            (None, None) => None,
            (Some(f), None) => Some(f.1.clone()),
            (None, Some(b)) => Some(b.clone()),
            (Some(f), Some(b)) => {
                let mut m = f.1.clone();
                m.merge(b);
                Some(m)
            }
        }
    }
}
