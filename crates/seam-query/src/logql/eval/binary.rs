//! Binary operations with Loki's semantics (`MergeBinOp`, `vectorBinop`, `vectorAnd/Or/Unless`):
//! PromQL vector matching, but division or modulo by zero gives NaN, and a comparison between
//! two scalars yields 0 or 1 (Loki folds literal-only expressions at parse time that way).

use std::collections::HashMap;

use seam_model::Labels;

use super::super::ast::{BinOp, Cardinality, SampleExpr, VectorMatching};
use super::labels::{result_labels, signature};
use super::steps::{by_step, SampleSeries, SampleSet, SetBuilder, Steps};
use super::{eval_sample, Ctx, QueryError, Value};

/// One binary expression to evaluate.
pub(super) struct Binary<'a> {
    /// The operator.
    pub op: BinOp,
    /// Left side.
    pub lhs: &'a SampleExpr,
    /// Right side.
    pub rhs: &'a SampleExpr,
    /// `bool`: comparisons give 0/1 instead of filtering.
    pub return_bool: bool,
    /// `on`/`ignoring` and `group_left`/`group_right`.
    pub matching: Option<&'a VectorMatching>,
}

/// True for an expression that is a number whatever the data (literals and arithmetic on them).
pub(super) fn is_scalar(e: &SampleExpr) -> bool {
    match e {
        SampleExpr::Literal(_) => true,
        SampleExpr::Paren(inner) => is_scalar(inner),
        SampleExpr::Binary { lhs, rhs, .. } => is_scalar(lhs) && is_scalar(rhs),
        _ => false,
    }
}

fn is_comparison(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le
    )
}

fn is_set_op(op: BinOp) -> bool {
    matches!(op, BinOp::And | BinOp::Or | BinOp::Unless)
}

/// Evaluates `b`. `series_limited` says whether the result's series all reach the query result
/// (so a range aggregation beneath may stop early at the series limit).
pub(super) fn evaluate(
    ctx: &mut Ctx<'_>,
    steps: &Steps,
    b: &Binary<'_>,
    series_limited: bool,
) -> Result<Value, QueryError> {
    let (l_scalar, r_scalar) = (is_scalar(b.lhs), is_scalar(b.rhs));
    if is_set_op(b.op) && (l_scalar || r_scalar) {
        let side = if l_scalar { "left" } else { "right" };
        return Err(QueryError::Invalid(format!(
            "parse error : unexpected literal for {side} leg of logical/set binary operation ({})",
            format!("{:?}", b.op).to_lowercase()
        )));
    }
    // Only vector-with-literal arithmetic keeps every series of its vector side.
    let keeps_series = (l_scalar || r_scalar) && (!is_comparison(b.op) || b.return_bool);
    let limited = series_limited && keeps_series;
    let lhs = eval_sample(ctx, b.lhs, steps, limited)?;
    let rhs = eval_sample(ctx, b.rhs, steps, limited)?;
    Ok(match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            Value::Scalar(merge(b.op, l, r, false, l).unwrap_or(f64::NAN))
        }
        (Value::Vector(v), Value::Scalar(s)) => Value::Vector(with_scalar(b, v, s, false)),
        (Value::Scalar(s), Value::Vector(v)) => Value::Vector(with_scalar(b, v, s, true)),
        (Value::Vector(l), Value::Vector(r)) if is_set_op(b.op) => {
            Value::Vector(set_op(b.op, b.matching, l, r, steps))
        }
        (Value::Vector(l), Value::Vector(r)) => Value::Vector(vector_binop(b, l, r, steps)?),
    })
}

/// Loki's `MergeBinOp` on two values: arithmetic, or a comparison that either filters (keeping
/// the vector side's value) or answers 0/1.
fn merge(op: BinOp, l: f64, r: f64, filter: bool, vector_value: f64) -> Option<f64> {
    let holds = match op {
        BinOp::Add => return Some(l + r),
        BinOp::Sub => return Some(l - r),
        BinOp::Mul => return Some(l * r),
        BinOp::Div => return Some(if r == 0.0 { f64::NAN } else { l / r }),
        // Rust's float `%` takes the dividend's sign, as Go's `math.Mod` does.
        BinOp::Mod => return Some(if r == 0.0 { f64::NAN } else { l % r }),
        BinOp::Pow => return Some(l.powf(r)),
        BinOp::Eq => l == r,
        BinOp::Ne => l != r,
        BinOp::Gt => l > r,
        BinOp::Ge => l >= r,
        BinOp::Lt => l < r,
        BinOp::Le => l <= r,
        BinOp::And | BinOp::Or | BinOp::Unless => return None,
    };
    match (holds, filter) {
        (true, true) => Some(vector_value),
        (true, false) => Some(1.0),
        (false, true) => None,
        (false, false) => Some(0.0),
    }
}

/// A vector and a scalar: every sample against the number; labels are kept.
fn with_scalar(b: &Binary<'_>, set: SampleSet, s: f64, scalar_left: bool) -> SampleSet {
    let filter = !b.return_bool;
    set.into_iter()
        .filter_map(|series| {
            let points: Vec<(usize, f64)> = series
                .points
                .into_iter()
                .filter_map(|(i, v)| {
                    let (l, r) = if scalar_left { (s, v) } else { (v, s) };
                    merge(b.op, l, r, filter, v).map(|x| (i, x))
                })
                .collect();
            (!points.is_empty()).then_some(SampleSeries {
                labels: series.labels,
                points,
            })
        })
        .collect()
}

/// Gives each distinct match signature a small id.
fn signature_ids(
    sets: [&SampleSet; 2],
    matching: Option<&VectorMatching>,
) -> ([Vec<usize>; 2], usize) {
    let mut ids: HashMap<Labels, usize> = HashMap::new();
    let mut of = |set: &SampleSet| -> Vec<usize> {
        set.iter()
            .map(|s| {
                let n = ids.len();
                *ids.entry(signature(&s.labels, matching)).or_insert(n)
            })
            .collect()
    };
    let l = of(sets[0]);
    let r = of(sets[1]);
    let n = ids.len();
    ([l, r], n)
}

/// Arithmetic and comparisons between two vectors: samples pair up by match signature at each
/// step; the "one" side must be unique per signature, and so must the results.
fn vector_binop(
    b: &Binary<'_>,
    lhs: SampleSet,
    rhs: SampleSet,
    steps: &Steps,
) -> Result<SampleSet, QueryError> {
    let one_to_many = matches!(b.matching.map(|m| &m.card), Some(Cardinality::OneToMany(_)));
    let one_to_one = matches!(
        b.matching.map_or(&Cardinality::OneToOne, |m| &m.card),
        Cardinality::OneToOne
    );
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let ([many_sig, one_sig], n_sigs) = signature_ids([&many, &one], b.matching);
    let (many_steps, one_steps) = (by_step(&many, steps.n), by_step(&one, steps.n));
    // Per signature: (step + 1 it was last set at, series, value) of the "one" side.
    let mut one_at: Vec<(usize, usize, f64)> = vec![(0, 0, 0.0); n_sigs];
    let mut matched: Vec<usize> = vec![0; n_sigs];
    let mut out = SetBuilder::default();
    let mut pair_out: HashMap<(usize, usize), usize> = HashMap::new();
    let mut out_stamp: Vec<(usize, usize)> = Vec::new();
    for i in 0..steps.n {
        let stamp = i + 1;
        for &(s, v) in &one_steps[i] {
            let sig = one_sig[s];
            if one_at[sig].0 == stamp {
                let side = if one_to_many { "left" } else { "right" };
                return Err(QueryError::Invalid(format!(
                    "found duplicate series on the {side} hand-side;many-to-many matching not \
                     allowed: matching labels must be unique on one side"
                )));
            }
            one_at[sig] = (stamp, s, v);
        }
        for &(s, v) in &many_steps[i] {
            let sig = many_sig[s];
            let (at, os, ov) = one_at[sig];
            if at != stamp {
                continue;
            }
            let o = *pair_out.entry((s, os)).or_insert_with(|| {
                out.series(result_labels(&many[s].labels, &one[os].labels, b.matching))
            });
            if one_to_one {
                if matched[sig] == stamp {
                    return Err(QueryError::Invalid(
                        "multiple matches for labels: many-to-one matching must be explicit \
                         (group_left/group_right)"
                            .into(),
                    ));
                }
                matched[sig] = stamp;
            } else {
                if out_stamp.len() <= o {
                    out_stamp.resize(o + 1, (0, 0));
                }
                if out_stamp[o] == (stamp, sig) {
                    return Err(QueryError::Invalid(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
                out_stamp[o] = (stamp, sig);
            }
            let (l, r) = if one_to_many { (ov, v) } else { (v, ov) };
            if let Some(x) = merge(b.op, l, r, !b.return_bool, l) {
                out.push(o, i, x);
            }
        }
    }
    Ok(out.finish())
}

/// `and`, `or`, `unless` at each step, by match signature; samples keep their labels.
fn set_op(
    op: BinOp,
    matching: Option<&VectorMatching>,
    lhs: SampleSet,
    rhs: SampleSet,
    steps: &Steps,
) -> SampleSet {
    let ([l_sig, r_sig], n_sigs) = signature_ids([&lhs, &rhs], matching);
    let (l_steps, r_steps) = (by_step(&lhs, steps.n), by_step(&rhs, steps.n));
    let mut seen = vec![0usize; n_sigs];
    let mut l_keep: Vec<Vec<(usize, f64)>> = vec![Vec::new(); lhs.len()];
    let mut r_keep: Vec<Vec<(usize, f64)>> = vec![Vec::new(); rhs.len()];
    for i in 0..steps.n {
        let (ls, rs) = (&l_steps[i], &r_steps[i]);
        let stamp = i + 1;
        let mut keep_l = |pred: &dyn Fn(usize) -> bool| {
            for &(s, v) in ls {
                if pred(l_sig[s]) {
                    l_keep[s].push((i, v));
                }
            }
        };
        match op {
            BinOp::And if ls.is_empty() || rs.is_empty() => {}
            BinOp::Unless if ls.is_empty() || rs.is_empty() => keep_l(&|_| true),
            BinOp::And | BinOp::Unless => {
                for &(s, _) in rs {
                    seen[r_sig[s]] = stamp;
                }
                let want = op == BinOp::And;
                keep_l(&|sig| (seen[sig] == stamp) == want);
            }
            _ => {
                keep_l(&|_| true);
                for &(s, _) in ls {
                    seen[l_sig[s]] = stamp;
                }
                for &(s, v) in rs {
                    if seen[r_sig[s]] != stamp {
                        r_keep[s].push((i, v));
                    }
                }
            }
        }
    }
    let keep = |set: SampleSet, kept: Vec<Vec<(usize, f64)>>| {
        set.into_iter()
            .zip(kept)
            .filter(|(_, p)| !p.is_empty())
            .map(|(s, points)| SampleSeries {
                labels: s.labels,
                points,
            })
            .collect::<Vec<_>>()
    };
    let mut out = keep(lhs, l_keep);
    out.extend(keep(rhs, r_keep));
    out
}
