//! Range aggregations (`rate(... [5m])` and friends): one store scan over every step's window,
//! accumulating each sample once into its series' state for the time segment it falls in.
//!
//! The window of the step at `t` is `(t - offset - range, t - offset]` (Loki's range iterators
//! exclude the start and include the end). The windows' start and end times cut the timeline
//! into segments; every sample lands in exactly one, and a window is the merge of the segments
//! it spans. Samples in segments no window covers (steps longer than the range) are skipped.

use std::collections::HashMap;

use seam_model::Labels;
use seam_store::{Direction, LogRowRef, LogVisitor};

use super::super::ast::{Grouping, LogRange, RangeOp};
use super::super::pipeline::SampleExtractor;
use super::labels::{absent_labels, group_labels, pipeline_error};
use super::range_acc::{
    Agg, Avg, Count, Finish, First, Last, Max, Min, SlidingWindow, Sum, Values, Var,
};
use super::scan::{self, Deadline, Source};
use super::steps::{SampleSeries, SampleSet, Steps};
use super::{series_limit_error, Ctx, QueryError};

/// The segments of the timeline the windows of a query cut out.
struct Windows {
    /// Window boundaries, sorted and unique; segment `j` is `(bounds[j], bounds[j + 1]]`.
    bounds: Vec<i64>,
    /// Per step, the segments its window spans: `[first, end)`.
    spans: Vec<(usize, usize)>,
    /// `covered[j]`: how many segments before `j` lie inside some window (a prefix count).
    covered: Vec<u32>,
}

impl Windows {
    fn new(steps: &Steps, range_ns: i64, offset_ns: i64) -> Windows {
        let ends: Vec<i64> = (0..steps.n)
            .map(|i| steps.at(i).saturating_sub(offset_ns))
            .collect();
        let starts: Vec<i64> = ends.iter().map(|e| e.saturating_sub(range_ns)).collect();
        let mut bounds: Vec<i64> = starts.iter().chain(ends.iter()).copied().collect();
        bounds.sort_unstable();
        bounds.dedup();
        let pos = |t: i64| {
            bounds
                .binary_search(&t)
                .expect("every window edge is a bound")
        };
        let spans: Vec<(usize, usize)> = starts
            .iter()
            .zip(&ends)
            .map(|(s, e)| (pos(*s), pos(*e)))
            .collect();
        let segs = bounds.len().saturating_sub(1);
        let mut depth = vec![0i64; segs + 1];
        for &(a, b) in &spans {
            depth[a] += 1;
            depth[b] -= 1;
        }
        let mut covered = Vec::with_capacity(segs + 1);
        let (mut running, mut count) = (0i64, 0u32);
        covered.push(0);
        for d in depth.iter().take(segs) {
            running += d;
            count += u32::from(running > 0);
            covered.push(count);
        }
        Windows {
            bounds,
            spans,
            covered,
        }
    }

    fn is_covered(&self, j: usize) -> bool {
        self.covered[j + 1] > self.covered[j]
    }

    /// The covered segment holding `ts`.
    fn segment(&self, ts: i64) -> Option<usize> {
        let p = self.bounds.partition_point(|&b| b < ts);
        if p == 0 || p >= self.bounds.len() {
            return None;
        }
        Some(p - 1).filter(|&j| self.is_covered(j))
    }

    /// Whether any window overlaps `[min, max]`.
    fn overlaps(&self, min: i64, max: i64) -> bool {
        let segs = self.bounds.len().saturating_sub(1);
        let p_max = self.bounds.partition_point(|&b| b < max);
        if segs == 0 || p_max == 0 || min > self.bounds[segs] {
            return false;
        }
        let lo = self.bounds.partition_point(|&b| b < min).saturating_sub(1);
        let hi = (p_max - 1).min(segs - 1);
        self.covered[hi + 1] > self.covered[lo]
    }

    /// The inclusive time range holding every covered segment.
    fn scan_range(&self) -> Option<(i64, i64)> {
        let segs = self.bounds.len().saturating_sub(1);
        (segs > 0 && self.covered[segs] > 0)
            .then(|| (self.bounds[0].saturating_add(1), self.bounds[segs]))
    }
}

/// The states of one series, one per segment that received samples, ascending by segment.
struct SeriesAcc<A> {
    labels: Labels,
    segs: Vec<(usize, A)>,
}

impl<A: Agg> SeriesAcc<A> {
    fn add(&mut self, seg: usize, ts: i64, v: f64) {
        match self.segs.last_mut() {
            Some((s, a)) if *s == seg => a.add(ts, v),
            Some((s, _)) if *s > seg => match self.segs.binary_search_by_key(&seg, |p| p.0) {
                Ok(i) => self.segs[i].1.add(ts, v),
                Err(i) => self.segs.insert(i, (seg, A::one(ts, v))),
            },
            _ => self.segs.push((seg, A::one(ts, v))),
        }
    }

    /// The value at every step whose window holds samples.
    fn points(&self, windows: &Windows, finish: &Finish) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        if A::SLIDING {
            let mut window = SlidingWindow::new();
            let mut next = 0;
            for (i, &(first, end)) in windows.spans.iter().enumerate() {
                while next < self.segs.len() && self.segs[next].0 < end {
                    window.push(self.segs[next].0, &self.segs[next].1);
                    next += 1;
                }
                window.pop_before(first);
                if let Some(m) = window.merged() {
                    out.push((i, m.value(finish)));
                }
            }
        } else {
            for (i, &(first, end)) in windows.spans.iter().enumerate() {
                let lo = self.segs.partition_point(|s| s.0 < first);
                let hi = self.segs.partition_point(|s| s.0 < end);
                if lo < hi {
                    let mut m = self.segs[lo].1.clone();
                    for s in &self.segs[lo + 1..hi] {
                        m.merge(&s.1);
                    }
                    out.push((i, m.value(finish)));
                }
            }
        }
        out
    }
}

struct RangeCollector<'a, A> {
    source: &'a Source,
    extractor: &'a SampleExtractor,
    windows: &'a Windows,
    grouping: Option<&'a Grouping>,
    series_limit: Option<usize>,
    index: HashMap<Labels, usize>,
    /// Series per stream for entries whose labels are the stream's own (no structured
    /// metadata, line filters only): most count/rate queries skip building labels per entry.
    by_stream: HashMap<u64, usize>,
    series: Vec<SeriesAcc<A>>,
    deadline: Deadline,
    failure: Option<QueryError>,
    post_filter: u64,
    md_bytes: u64,
    /// Whether the samples depend on the line (see [`reads_lines`]).
    lines: bool,
}

impl<A: Agg> RangeCollector<'_, A> {
    /// The series a sample with these labels adds to, created on first sight; `None` once a
    /// failure is recorded instead.
    fn series_for(&mut self, labels: Labels) -> Option<usize> {
        // Every covered sample shows up in some step's output, where Loki refuses a series that
        // still carries `__error__`; failing at the first one saves the rest of the scan. Like
        // Loki, grouping does not apply to such a sample, so the message names the whole series.
        if let Some(e) = pipeline_error(&labels) {
            self.failure = Some(e);
            return None;
        }
        let labels = match self.grouping {
            Some(g) => group_labels(&labels, Some(g)),
            None => labels,
        };
        if let Some(&i) = self.index.get(&labels) {
            return Some(i);
        }
        if let Some(max) = self.series_limit.filter(|&max| self.series.len() >= max) {
            self.failure = Some(series_limit_error(max));
            return None;
        }
        self.series.push(SeriesAcc {
            labels: labels.clone(),
            segs: Vec::new(),
        });
        self.index.insert(labels, self.series.len() - 1);
        Some(self.series.len() - 1)
    }

    /// The series of a sample whose labels are its stream's own, looked up once per stream.
    fn stream_series(&mut self, stream_id: u64) -> Option<usize> {
        if let Some(&i) = self.by_stream.get(&stream_id) {
            return Some(i);
        }
        let labels = self.source.stream_labels(stream_id)?.clone();
        let i = self.series_for(labels)?;
        self.by_stream.insert(stream_id, i);
        Some(i)
    }
}

impl<A: Agg> LogVisitor for RangeCollector<'_, A> {
    fn visit(&mut self, row: LogRowRef<'_>) {
        if self.failure.is_some() {
            return;
        }
        if self.deadline.tick() {
            self.failure = Some(scan::timeout());
            return;
        }
        let Some(seg) = self.windows.segment(row.timestamp_ns) else {
            return;
        };
        let md_bytes = scan::metadata_bytes(row.structured_metadata);
        let (i, v) = if md_bytes == 0 && self.extractor.labels_are_stream_labels() {
            let Some(v) = self.extractor.stream_only_value(row.line) else {
                return;
            };
            let Some(i) = self.stream_series(row.stream_id) else {
                return;
            };
            (i, v)
        } else {
            let Some(stream) = self.source.stream_labels(row.stream_id) else {
                return;
            };
            self.md_bytes += md_bytes;
            let md = scan::parse_metadata(row.structured_metadata);
            let Some((labels, v)) = self
                .extractor
                .extract(row.timestamp_ns, row.line, stream, &md)
            else {
                return;
            };
            let Some(i) = self.series_for(labels) else {
                return;
            };
            (i, v)
        };
        self.post_filter += 1;
        self.series[i].add(seg, row.timestamp_ns, v);
    }

    fn wants(&self, min_ns: i64, max_ns: i64) -> bool {
        self.failure.is_none() && self.windows.overlaps(min_ns, max_ns)
    }

    fn needs_lines(&self) -> bool {
        self.lines
    }
}

/// Whether a range aggregation's samples depend on the lines. A count, a rate of lines or an
/// absence over a bare selector takes only each row's time and labels, so the store can skip the
/// line column, by far the largest. Any stage may drop, parse or rewrite lines, and the byte
/// operations and unwraps take their values from the line, so all of those read it.
/// (Structured metadata is still read: it becomes series labels, and a metadata `__error__`
/// fails the query even under `by ()`.)
fn reads_lines(op: RangeOp, range: &LogRange) -> bool {
    let counts_rows = matches!(
        op,
        RangeOp::CountOverTime | RangeOp::Rate | RangeOp::AbsentOverTime
    );
    !(counts_rows && range.unwrap.is_none() && range.log.pipeline.is_empty())
}

/// One range aggregation to evaluate.
pub(super) struct RangeAgg<'a> {
    /// The operation.
    pub op: RangeOp,
    /// The log range read.
    pub range: &'a LogRange,
    /// `quantile_over_time`'s φ.
    pub param: Option<f64>,
    /// Labels the samples are reduced to before aggregating: the aggregation's own `by`/`without`,
    /// or an enclosing `sum`'s (Loki pushes it down); `None` keeps every label.
    pub grouping: Option<&'a Grouping>,
    /// Fail as soon as more series than this appear (when they all reach the result).
    pub series_limit: Option<usize>,
}

/// Evaluates a range aggregation at every step.
pub(super) fn evaluate(
    ctx: &mut Ctx<'_>,
    steps: &Steps,
    agg: &RangeAgg<'_>,
) -> Result<SampleSet, QueryError> {
    let unwrap = agg.range.unwrap.is_some();
    match agg.op {
        RangeOp::CountOverTime | RangeOp::AbsentOverTime => run::<Count>(ctx, steps, agg),
        RangeOp::Rate if !unwrap => run::<Count>(ctx, steps, agg),
        RangeOp::Rate | RangeOp::BytesOverTime | RangeOp::BytesRate | RangeOp::SumOverTime => {
            run::<Sum>(ctx, steps, agg)
        }
        RangeOp::AvgOverTime => run::<Avg>(ctx, steps, agg),
        RangeOp::MinOverTime => run::<Min>(ctx, steps, agg),
        RangeOp::MaxOverTime => run::<Max>(ctx, steps, agg),
        RangeOp::StddevOverTime | RangeOp::StdvarOverTime => run::<Var>(ctx, steps, agg),
        RangeOp::FirstOverTime => run::<First>(ctx, steps, agg),
        RangeOp::LastOverTime => run::<Last>(ctx, steps, agg),
        RangeOp::QuantileOverTime | RangeOp::RateCounter => run::<Values>(ctx, steps, agg),
    }
}

fn run<A: Agg>(
    ctx: &mut Ctx<'_>,
    steps: &Steps,
    agg: &RangeAgg<'_>,
) -> Result<SampleSet, QueryError> {
    let range = agg.range;
    let extractor = SampleExtractor::new(range, agg.op).map_err(QueryError::Invalid)?;
    let windows = Windows::new(steps, range.range_ns, range.offset_ns);
    let mut set: SampleSet = Vec::new();
    if let Some((lo, hi)) = windows.scan_range() {
        let source = Source::new(ctx, &range.log, lo, hi)?;
        let mut c = RangeCollector::<A> {
            source: &source,
            extractor: &extractor,
            windows: &windows,
            grouping: agg.grouping,
            series_limit: agg.series_limit,
            index: HashMap::new(),
            by_stream: HashMap::new(),
            series: Vec::new(),
            deadline: Deadline::new(ctx.limits.deadline),
            failure: None,
            post_filter: 0,
            md_bytes: 0,
            lines: reads_lines(agg.op, range),
        };
        let stats = source.scan(ctx, Direction::Forward, &mut c)?;
        scan::add_scan_stats(ctx, &stats, c.post_filter, c.md_bytes);
        if let Some(e) = c.failure {
            return Err(e);
        }
        ctx.check_deadline()?;
        let finish = Finish {
            op: agg.op,
            range_ns: range.range_ns,
            param: agg.param.unwrap_or(0.0),
        };
        for s in &c.series {
            let points = s.points(&windows, &finish);
            if !points.is_empty() {
                set.push(SampleSeries {
                    labels: s.labels.clone(),
                    points,
                });
            }
        }
    }
    if agg.op == RangeOp::AbsentOverTime {
        return Ok(absent(&set, steps, &range.log.matchers));
    }
    set.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(set)
}

/// `absent_over_time`: one series (labelled from the selector) with value 1 at the steps where
/// the range holds no sample at all.
fn absent(
    present: &SampleSet,
    steps: &Steps,
    matchers: &[super::super::ast::Matcher],
) -> SampleSet {
    let mut has = vec![false; steps.n];
    for s in present {
        for &(i, _) in &s.points {
            has[i] = true;
        }
    }
    let points: Vec<(usize, f64)> = (0..steps.n)
        .filter(|&i| !has[i])
        .map(|i| (i, 1.0))
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    vec![SampleSeries {
        labels: absent_labels(matchers),
        points,
    }]
}

#[cfg(test)]
mod tests {
    use seam_store::Direction;

    use super::super::QueryTime;
    use super::*;

    const S: i64 = 1_000_000_000;

    fn grid(start: i64, end: i64, step: i64) -> Steps {
        Steps::new(&QueryTime {
            start_ns: start,
            end_ns: end,
            step_ns: step,
            limit: 0,
            direction: Direction::Forward,
        })
        .unwrap()
    }

    fn feed<A: Agg>(windows: &Windows, samples: &[(i64, f64)]) -> SeriesAcc<A> {
        let mut acc = SeriesAcc {
            labels: Labels::default(),
            segs: Vec::new(),
        };
        for &(ts, v) in samples {
            if let Some(seg) = windows.segment(ts) {
                acc.add(seg, ts, v);
            }
        }
        acc
    }

    fn finish(op: RangeOp, range_ns: i64, param: f64) -> Finish {
        Finish {
            op,
            range_ns,
            param,
        }
    }

    /// The value of `op` over `samples` (time-ordered, distinct times), computed naively.
    fn naive(op: RangeOp, samples: &[(i64, f64)]) -> f64 {
        let v: Vec<f64> = samples.iter().map(|s| s.1).collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        match op {
            RangeOp::CountOverTime => n,
            RangeOp::SumOverTime => v.iter().sum(),
            RangeOp::MinOverTime => v.iter().copied().fold(f64::INFINITY, f64::min),
            RangeOp::MaxOverTime => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            RangeOp::FirstOverTime => v[0],
            RangeOp::LastOverTime => v[v.len() - 1],
            RangeOp::AvgOverTime => mean,
            RangeOp::StdvarOverTime => v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n,
            _ => {
                let mut sorted = v.clone();
                sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
                let rank = 0.3 * (n - 1.0);
                let (lo, w) = (rank.floor(), rank - rank.floor());
                let hi = (lo + 1.0).min(n - 1.0);
                sorted[lo as usize] * (1.0 - w) + sorted[hi as usize] * w
            }
        }
    }

    fn check<A: Agg>(op: RangeOp, steps: &Steps, range: i64, offset: i64, data: &[(i64, f64)]) {
        let windows = Windows::new(steps, range, offset);
        let got = feed::<A>(&windows, data).points(&windows, &finish(op, range, 0.3));
        let mut sorted = data.to_vec();
        sorted.sort_by_key(|s| s.0);
        let want: Vec<(usize, f64)> = (0..steps.n)
            .filter_map(|i| {
                let end = steps.at(i) - offset;
                let inside: Vec<(i64, f64)> = sorted
                    .iter()
                    .copied()
                    .filter(|s| s.0 > end - range && s.0 <= end)
                    .collect();
                (!inside.is_empty()).then(|| (i, naive(op, &inside)))
            })
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{op:?} range {range} offset {offset}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0, "{op:?}");
            assert!(
                (g.1 - w.1).abs() < 1e-9,
                "{op:?} step {}: {} vs {}",
                g.0,
                g.1,
                w.1
            );
        }
    }

    /// Distinct times in [0, 1000) in scrambled order with values in [-50, 50).
    fn scrambled() -> Vec<(i64, f64)> {
        let mut seed: u64 = 42;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut out: Vec<(i64, f64)> = Vec::new();
        for t in 0..1000 {
            if next() % 3 == 0 {
                out.push((t, (next() % 100) as f64 - 50.0));
            }
        }
        for i in (1..out.len()).rev() {
            let j = next() as usize % (i + 1);
            out.swap(i, j);
        }
        out
    }

    #[test]
    fn sliding_windows_agree_with_a_naive_evaluation() {
        let data = scrambled();
        let configs = [
            (grid(100, 1000, 30), 100, 0),
            (grid(100, 1000, 100), 30, 0),
            (grid(100, 1000, 100), 100, 0),
            (grid(0, 1100, 10), 250, 40),
            (grid(700, 700, 0), 400, 0),
        ];
        for (s, r, o) in &configs {
            let (r, o, d) = (*r, *o, &data[..]);
            check::<Count>(RangeOp::CountOverTime, s, r, o, d);
            check::<Sum>(RangeOp::SumOverTime, s, r, o, d);
            check::<Min>(RangeOp::MinOverTime, s, r, o, d);
            check::<Max>(RangeOp::MaxOverTime, s, r, o, d);
            check::<First>(RangeOp::FirstOverTime, s, r, o, d);
            check::<Last>(RangeOp::LastOverTime, s, r, o, d);
            check::<Avg>(RangeOp::AvgOverTime, s, r, o, d);
            check::<Var>(RangeOp::StdvarOverTime, s, r, o, d);
            check::<Values>(RangeOp::QuantileOverTime, s, r, o, d);
        }
    }

    fn instant_value<A: Agg>(op: RangeOp, param: f64, data: &[(i64, f64)]) -> f64 {
        let steps = grid(100 * S, 100 * S, 0);
        let windows = Windows::new(&steps, 50 * S, 0);
        let points = feed::<A>(&windows, data).points(&windows, &finish(op, 50 * S, param));
        assert_eq!(points.len(), 1);
        points[0].1
    }

    #[test]
    fn unwrapped_operations_by_hand() {
        // (50s, 100s]: 4, 1, 3, 2, 5 at 60..100s; 50s and 40s lie outside.
        let data: Vec<(i64, f64)> = [(60, 4.0), (90, 2.0), (70, 1.0), (100, 5.0), (80, 3.0)]
            .iter()
            .chain(&[(50, 100.0), (40, 100.0)])
            .map(|&(t, v)| (t * S, v))
            .collect();
        assert_eq!(instant_value::<Sum>(RangeOp::SumOverTime, 0.0, &data), 15.0);
        assert_eq!(instant_value::<Sum>(RangeOp::Rate, 0.0, &data), 0.3);
        assert_eq!(instant_value::<Avg>(RangeOp::AvgOverTime, 0.0, &data), 3.0);
        assert_eq!(instant_value::<Min>(RangeOp::MinOverTime, 0.0, &data), 1.0);
        assert_eq!(instant_value::<Max>(RangeOp::MaxOverTime, 0.0, &data), 5.0);
        assert_eq!(
            instant_value::<Var>(RangeOp::StdvarOverTime, 0.0, &data),
            2.0
        );
        assert_eq!(
            instant_value::<Var>(RangeOp::StddevOverTime, 0.0, &data),
            2f64.sqrt()
        );
        assert_eq!(
            instant_value::<First>(RangeOp::FirstOverTime, 0.0, &data),
            4.0
        );
        assert_eq!(
            instant_value::<Last>(RangeOp::LastOverTime, 0.0, &data),
            5.0
        );
        assert_eq!(
            instant_value::<Values>(RangeOp::QuantileOverTime, 0.5, &data),
            3.0
        );
        let q9 = instant_value::<Values>(RangeOp::QuantileOverTime, 0.9, &data);
        assert!((q9 - 4.6).abs() < 1e-12);
        assert_eq!(
            instant_value::<Values>(RangeOp::QuantileOverTime, 1.5, &data),
            f64::INFINITY
        );
        assert_eq!(
            instant_value::<Count>(RangeOp::CountOverTime, 0.0, &data),
            5.0
        );
        assert_eq!(instant_value::<Count>(RangeOp::Rate, 0.0, &data), 0.1);
    }

    #[test]
    fn rate_counter_follows_lokis_arithmetic() {
        // A counter 1, 3, 6, then reset to 2, then 5: an increase of 10. Loki's extrapolation
        // (nanosecond times against a millisecond range) adds 50 µs to a 40 s interval.
        let data: Vec<(i64, f64)> = [(60, 1.0), (70, 3.0), (80, 6.0), (90, 2.0), (100, 5.0)]
            .iter()
            .map(|&(t, v)| (t * S, v))
            .collect();
        let got = instant_value::<Values>(RangeOp::RateCounter, 0.0, &data);
        let want = 10.0 * (4e7 + 50.0) / 4e7 / 50.0;
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        assert_eq!(
            instant_value::<Values>(RangeOp::RateCounter, 0.0, &data[..1]),
            0.0
        );
    }

    #[test]
    fn windows_know_which_times_matter() {
        // Windows (0,10] and (20,30]: nothing in (10,20].
        let steps = grid(10, 30, 20);
        let w = Windows::new(&steps, 10, 0);
        assert_eq!(w.segment(0), None);
        assert!(w.segment(5).is_some());
        assert!(w.segment(10).is_some());
        assert_eq!(w.segment(15), None);
        assert_eq!(w.segment(31), None);
        assert!(w.overlaps(12, 22));
        assert!(!w.overlaps(11, 20));
        assert!(!w.overlaps(31, 40));
        assert!(w.overlaps(-5, 1));
        assert_eq!(w.scan_range(), Some((1, 30)));
    }
}
