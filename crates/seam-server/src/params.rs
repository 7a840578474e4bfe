//! Query parameters as Loki and Prometheus read them: times, durations, limits.

use chrono::DateTime;

pub use seam_model::now_ns;

/// A Loki time parameter in nanoseconds: an integer of up to 10 digits is seconds, a longer one
/// nanoseconds, a number with a fraction is (float) seconds, anything else RFC3339.
pub fn loki_time(name: &str, v: &str) -> Result<i64, String> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        let digits = v.trim_start_matches('-').len();
        let n: i64 = v
            .parse()
            .map_err(|_| format!("invalid {name} {v:?}: integer out of range"))?;
        return Ok(if digits <= 10 {
            n.saturating_mul(1_000_000_000)
        } else {
            n
        });
    }
    if let Ok(f) = v.parse::<f64>() {
        if f.is_finite() {
            return Ok((f * 1e9).round() as i64);
        }
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MAX))
        .map_err(|_| {
            format!(
                "invalid {name} {v:?}: expected Unix seconds, Unix nanoseconds, a float or RFC3339"
            )
        })
}

/// A Prometheus time parameter in milliseconds: float seconds or RFC3339.
pub fn prom_time(name: &str, v: &str) -> Result<i64, String> {
    let v = v.trim();
    if let Ok(f) = v.parse::<f64>() {
        if f.is_finite() {
            return Ok((f * 1000.0).round() as i64);
        }
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            format!("invalid parameter \"{name}\": cannot parse {v:?} to a valid timestamp")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_times() {
        assert_eq!(
            loki_time("start", "1700000000").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            loki_time("start", "1700000000123456789").unwrap(),
            1_700_000_000_123_456_789
        );
        assert_eq!(
            loki_time("start", "1700000000.5").unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            loki_time("start", "2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000_000_000
        );
        assert!(loki_time("start", "yesterday")
            .unwrap_err()
            .contains("start"));
    }

    #[test]
    fn prom_times() {
        assert_eq!(
            prom_time("time", "1700000000.123").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(
            prom_time("time", "2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert!(prom_time("time", "x").is_err());
    }
}
