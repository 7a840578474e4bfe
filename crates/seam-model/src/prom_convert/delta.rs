//! Running totals that turn DELTA sums and histograms into the cumulative values Prometheus needs.

use std::collections::HashMap;

use crate::labels::Labels;

/// One series' running total.
enum Acc {
    Sum {
        last_ns: u64,
        value: f64,
    },
    Histogram {
        last_ns: u64,
        totals: HistogramTotals,
    },
}

/// The cumulative state of a histogram: bucket counts (per bucket, not yet cumulative over `le`),
/// count, and sum (unknown once any point lacked one).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct HistogramTotals {
    pub bounds: Vec<f64>,
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum: Option<f64>,
}

impl HistogramTotals {
    fn same_layout(&self, other: &HistogramTotals) -> bool {
        self.buckets.len() == other.buckets.len()
            && self.bounds.len() == other.bounds.len()
            && self
                .bounds
                .iter()
                .zip(&other.bounds)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }

    fn add(&mut self, d: &HistogramTotals) {
        for (t, x) in self.buckets.iter_mut().zip(&d.buckets) {
            *t = t.saturating_add(*x);
        }
        self.count = self.count.saturating_add(d.count);
        self.sum = match (self.sum, d.sum) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

/// Running totals keyed by tenant, then by series labels; at most `max_series` in all.
pub(super) struct DeltaState {
    max_series: usize,
    len: usize,
    tenants: HashMap<String, HashMap<Labels, Acc>>,
}

fn out_of_order(time_ns: u64, last_ns: u64) -> String {
    format!(
        "delta point at {time_ns} ns is not after the last point accumulated for its series \
         ({last_ns} ns); out-of-order or repeated delta points are refused so nothing is counted twice"
    )
}

impl DeltaState {
    pub(super) fn new(max_series: usize) -> DeltaState {
        DeltaState {
            max_series,
            len: 0,
            tenants: HashMap::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn get_mut(&mut self, tenant: &str, key: &Labels) -> Option<&mut Acc> {
        self.tenants.get_mut(tenant)?.get_mut(key)
    }

    fn insert(&mut self, tenant: &str, key: &Labels, acc: Acc) -> Result<(), String> {
        if self.len >= self.max_series {
            return Err(format!(
                "too many delta series to accumulate (limit {}): new DELTA series are refused; \
                 send CUMULATIVE temporality instead",
                self.max_series
            ));
        }
        let series = match self.tenants.get_mut(tenant) {
            Some(s) => s,
            None => self.tenants.entry(tenant.to_string()).or_default(),
        };
        series.insert(key.clone(), acc);
        self.len += 1;
        Ok(())
    }

    /// Adds a delta to a sum series, giving the new running total.
    pub(super) fn add_sum(
        &mut self,
        tenant: &str,
        key: &Labels,
        time_ns: u64,
        delta: f64,
    ) -> Result<f64, String> {
        if let Some(acc) = self.get_mut(tenant, key) {
            if let Acc::Sum { last_ns, value } = acc {
                if time_ns <= *last_ns {
                    return Err(out_of_order(time_ns, *last_ns));
                }
                *last_ns = time_ns;
                *value += delta;
                return Ok(*value);
            }
            // The same labels were a histogram before: start over as a sum.
            *acc = Acc::Sum {
                last_ns: time_ns,
                value: delta,
            };
            return Ok(delta);
        }
        self.insert(
            tenant,
            key,
            Acc::Sum {
                last_ns: time_ns,
                value: delta,
            },
        )?;
        Ok(delta)
    }

    /// Adds a delta to a histogram series, giving the new running totals. A change of bucket
    /// layout restarts the series from this point.
    pub(super) fn add_histogram(
        &mut self,
        tenant: &str,
        key: &Labels,
        time_ns: u64,
        delta: HistogramTotals,
    ) -> Result<HistogramTotals, String> {
        if let Some(acc) = self.get_mut(tenant, key) {
            if let Acc::Histogram { last_ns, totals } = acc {
                if time_ns <= *last_ns {
                    return Err(out_of_order(time_ns, *last_ns));
                }
                *last_ns = time_ns;
                if totals.same_layout(&delta) {
                    totals.add(&delta);
                } else {
                    *totals = delta;
                }
                return Ok(totals.clone());
            }
            *acc = Acc::Histogram {
                last_ns: time_ns,
                totals: delta.clone(),
            };
            return Ok(delta);
        }
        self.insert(
            tenant,
            key,
            Acc::Histogram {
                last_ns: time_ns,
                totals: delta.clone(),
            },
        )?;
        Ok(delta)
    }
}
