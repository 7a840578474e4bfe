//! What `seam bench ingest` and `seam bench logs` share: the acknowledgement-latency histogram
//! their workers fill and merge, its quantiles in milliseconds, and the rounding of the figures
//! they report.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Acknowledgement latencies in microseconds, from 1 µs to an hour, to three significant digits.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    /// Records one latency: at least 1 µs, and beyond an hour in the highest bucket.
    pub fn record(&mut self, latency: Duration) {
        self.0
            .saturating_record((latency.as_micros() as u64).max(1));
    }

    /// Adds another worker's latencies.
    pub fn merge(&mut self, other: &Latencies) {
        self.0
            .add(&other.0)
            .expect("histograms with the same bounds");
    }

    /// The `q` quantile in milliseconds: the maximum for `q >= 1`, 0 when nothing was recorded.
    pub fn ms(&self, q: f64) -> f64 {
        let h = &self.0;
        if h.is_empty() {
            return 0.0;
        }
        let us = if q >= 1.0 {
            h.max()
        } else {
            h.value_at_quantile(q)
        };
        us as f64 / 1e3
    }
}

/// `x` rounded to `digits` decimals.
pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_in_ms_and_merging() {
        let mut a = Latencies::default();
        assert_eq!(a.ms(0.5), 0.0);
        assert_eq!(a.ms(1.0), 0.0);
        a.record(Duration::ZERO); // counted as 1 µs
        let mut b = Latencies::default();
        b.record(Duration::from_millis(10));
        a.merge(&b);
        assert_eq!(a.ms(0.5), 0.001);
        assert!((a.ms(1.0) - 10.0).abs() < 0.01, "{}", a.ms(1.0));
        assert_eq!(round(1.23456, 3), 1.235);
    }
}
