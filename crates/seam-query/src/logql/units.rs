//! Durations and byte sizes exactly as Loki reads and prints them. Loki leans on three Go
//! parsers with different rules (Go's `time.ParseDuration`, Prometheus' `model.ParseDuration`
//! and go-humanize's `ParseBytes`) and three printers; no Rust crate reproduces the parsers'
//! corner cases (fractions, `µs`, unit order, `"0"`, 1000- vs 1024-based suffixes), so they
//! live here. Prometheus' printer is `promql-parser`'s.

use std::time::Duration;

use promql_parser::util::display_duration;

const NS_PER_MS: i64 = 1_000_000;

/// Go's `time.ParseDuration` in nanoseconds: signed, fractional, units `ns us µs μs ms s m h`
/// in any order (`"1.5h"`, `"1h30m"`, `"-2s"`, `"300us"`). `None` when Go would refuse it.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let b = rest.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return None;
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &d in &b[..int_len] {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            if v > 1 << 63 {
                return None;
            }
        }
        rest = &rest[int_len..];
        // Go keeps only as many fraction digits as fit, dropping the rest silently.
        let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
        if rest.starts_with('.') {
            rest = &rest[1..];
            let mut overflow = false;
            for &d in rest.as_bytes().iter().take_while(|c| c.is_ascii_digit()) {
                frac_len += 1;
                if overflow {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(d - b'0')))
                {
                    Some(f) if f <= 1 << 63 => {
                        frac = f;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            rest = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return None;
        }
        let unit_len = rest
            .bytes()
            .take_while(|c| *c != b'.' && !c.is_ascii_digit())
            .count();
        let unit: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        if v > (1 << 63) / unit {
            return None;
        }
        v *= unit;
        if frac > 0 {
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return None;
            }
        }
        total = total.checked_add(v)?;
        if total > 1 << 63 {
            return None;
        }
    }
    if neg {
        Some((total as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(total).ok()
    }
}

/// Why Prometheus' `model.ParseDuration` refused a duration; its `Display` is Prometheus'
/// message, which Loki shows for a bad `[range]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromDurationError {
    /// `""`.
    #[error("empty duration string")]
    Empty,
    /// Not digits followed by a unit, or units out of order.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// A unit Prometheus does not know.
    #[error("unknown unit {unit:?} in duration {orig:?}")]
    UnknownUnit {
        /// The unit.
        unit: String,
        /// The whole duration.
        orig: String,
    },
    /// Does not fit in an i64 of nanoseconds.
    #[error("duration out of range")]
    OutOfRange,
}

/// Prometheus' `model.ParseDuration` in nanoseconds, with its error: unsigned integer
/// amounts of `y w d h m s ms`, largest unit first (`"5m"`, `"1h30m"`, `"1d"`, `"500ms"`);
/// a bare `"0"` is zero. (`promql-parser`'s `parse_duration` is PromQL's variant: it also
/// takes float seconds, refuses zero and words its errors otherwise.)
pub fn try_parse_prom_duration(s: &str) -> Result<i64, PromDurationError> {
    match s {
        "0" => return Ok(0),
        "" => return Err(PromDurationError::Empty),
        _ => {}
    }
    let invalid = || PromDurationError::Invalid(s.to_string());
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_pos = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let v: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|c| !c.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(invalid());
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let (pos, mult_ms): (u8, u64) = match unit {
            "y" => (1, 365 * 24 * 3_600_000),
            "w" => (2, 7 * 24 * 3_600_000),
            "d" => (3, 24 * 3_600_000),
            "h" => (4, 3_600_000),
            "m" => (5, 60_000),
            "s" => (6, 1_000),
            "ms" => (7, 1),
            _ => {
                return Err(PromDurationError::UnknownUnit {
                    unit: unit.to_string(),
                    orig: s.to_string(),
                })
            }
        };
        if pos <= last_pos {
            return Err(invalid());
        }
        last_pos = pos;
        let mult = mult_ms * NS_PER_MS as u64;
        if v > (1 << 63) / mult {
            return Err(PromDurationError::OutOfRange);
        }
        total += v * mult;
        if total > i64::MAX as u64 {
            return Err(PromDurationError::OutOfRange);
        }
    }
    Ok(total as i64)
}

/// Prometheus' `model.ParseDuration` in nanoseconds (see [`try_parse_prom_duration`]).
pub fn parse_prom_duration(s: &str) -> Option<i64> {
    try_parse_prom_duration(s).ok()
}

/// A duration as Loki's lexer reads one outside brackets: Prometheus' form first, then Go's.
pub fn parse_logql_duration(s: &str) -> Option<i64> {
    parse_prom_duration(s).or_else(|| parse_go_duration(s))
}

/// go-humanize's `ParseBytes`: a number (commas ignored) and an optional, case-insensitive
/// suffix, with or without a space: `"42"`, `"42B"`, `"20MB"` (10^6), `"1.5KiB"` (1536),
/// `"5 kb"`, `"3G"`.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let num_len = s
        .bytes()
        .take_while(|c| c.is_ascii_digit() || *c == b'.' || *c == b',')
        .count();
    let num: String = s[..num_len].chars().filter(|c| *c != ',').collect();
    let value = parse_go_float(&num)?;
    let suffix = s[num_len..].trim().to_ascii_lowercase();
    let mult: u64 = match suffix.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "ti" | "tib" => 1 << 40,
        "p" | "pb" => 1_000_000_000_000_000,
        "pi" | "pib" => 1 << 50,
        "e" | "eb" => 1_000_000_000_000_000_000,
        "ei" | "eib" => 1 << 60,
        _ => return None,
    };
    let bytes = value * mult as f64;
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Go's `strconv.ParseFloat` on the digits-and-dots text `parse_bytes` hands it: Rust's float
/// parser agrees on those, except that Go refuses an empty string and a lone dot too.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() || s == "." {
        return None;
    }
    s.parse().ok()
}

/// Prometheus' `model.Duration.String()`: millisecond precision, largest units first, years
/// and weeks only when exact (90s → `"1m30s"`, 1h → `"1h"`, 0 → `"0s"`). Loki prints ranges
/// `[..]` this way.
pub fn format_duration(ns: i64) -> String {
    match u64::try_from(ns / NS_PER_MS) {
        Ok(ms) => display_duration(&Duration::from_millis(ms)),
        // Negative durations print as nothing, as in Prometheus.
        Err(_) => String::new(),
    }
}

/// Go's `time.Duration.String()` (`"1h0m0s"`, `"1m30s"`, `"250ms"`, `"1.5µs"`, `"0s"`). Loki
/// prints `offset` and duration label filters this way.
pub fn format_go_duration(ns: i64) -> String {
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        out.push_str(&int_and_frac(u, prec));
        out.push_str(unit);
    } else {
        let secs = int_and_frac(u % 60_000_000_000, 9);
        let mins = u / 60_000_000_000;
        if mins >= 60 {
            out.push_str(&format!("{}h{}m", mins / 60, mins % 60));
        } else if mins > 0 {
            out.push_str(&format!("{mins}m"));
        }
        out.push_str(&secs);
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare dot) dropped, as Go's
/// `fmtFrac`/`fmtInt` print it.
fn int_and_frac(v: u64, prec: u32) -> String {
    let div = 10u64.pow(prec);
    let (int, frac) = (v / div, v % div);
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// go-humanize's `Bytes` with the space removed, as Loki prints a bytes label filter: powers
/// of 1000, one decimal below ten (`1536` → `"1.5kB"`, `20_000_000` → `"20MB"`, `5` → `"5B"`).
/// Lossy: Loki's canonical form does not round-trip binary sizes either.
pub fn format_bytes(b: u64) -> String {
    if b < 10 {
        return format!("{b}B");
    }
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let f = b as f64;
    let e = (f.ln() / 1000f64.ln()).floor();
    let suffix = SIZES[(e as usize).min(SIZES.len() - 1)];
    let val = (f / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1}{suffix}")
    } else {
        format!("{val:.0}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn go_durations() {
        let cases: &[(&str, Option<i64>)] = &[
            ("250ms", Some(250 * NS_PER_MS)),
            ("1.5h", Some(5400 * S)),
            ("1h30m", Some(5400 * S)),
            ("-2s", Some(-2 * S)),
            ("+2s", Some(2 * S)),
            ("300us", Some(300_000)),
            ("300µs", Some(300_000)),
            ("300μs", Some(300_000)),
            ("7ns", Some(7)),
            ("0", Some(0)),
            ("-0", Some(0)),
            (".5s", Some(S / 2)),
            ("1.s", Some(S)),
            ("1m1.000000001s", Some(61 * S + 1)),
            ("30s1m", Some(90 * S)),
            ("", None),
            ("1", None),
            ("1d", None),
            (".s", None),
            ("1x", None),
            ("9999999999h", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_go_duration(s), *want, "{s}");
        }
    }

    #[test]
    fn prom_durations() {
        let cases: &[(&str, Option<i64>)] = &[
            ("5m", Some(300 * S)),
            ("1h30m", Some(5400 * S)),
            ("1d", Some(86_400 * S)),
            ("1w", Some(7 * 86_400 * S)),
            ("1y", Some(365 * 86_400 * S)),
            ("500ms", Some(500 * NS_PER_MS)),
            ("0", Some(0)),
            ("0s", Some(0)),
            ("30s1m", None),
            ("1.5h", None),
            ("-1h", None),
            ("1us", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_prom_duration(s), *want, "{s}");
        }
        assert_eq!(
            try_parse_prom_duration("5x").unwrap_err().to_string(),
            r#"unknown unit "x" in duration "5x""#
        );
        assert_eq!(
            try_parse_prom_duration("m").unwrap_err().to_string(),
            r#"not a valid duration string: "m""#
        );
        assert_eq!(parse_logql_duration("1d"), Some(86_400 * S));
        assert_eq!(parse_logql_duration("1.5s"), Some(1_500 * NS_PER_MS));
    }

    #[test]
    fn bytes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("42", Some(42)),
            ("42B", Some(42)),
            ("20MB", Some(20_000_000)),
            ("20mb", Some(20_000_000)),
            ("1.5KiB", Some(1536)),
            ("5 KB", Some(5000)),
            ("3G", Some(3_000_000_000)),
            ("1,000kB", Some(1_000_000)),
            ("1XB", None),
            ("MB", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_bytes(s), *want, "{s}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(90 * S), "1m30s");
        assert_eq!(format_duration(3600 * S), "1h");
        assert_eq!(format_duration(14 * 86_400 * S), "2w");
        assert_eq!(format_duration(15 * 86_400 * S), "15d");
        assert_eq!(format_duration(1500 * NS_PER_MS), "1s500ms");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_go_duration(3600 * S), "1h0m0s");
        assert_eq!(format_go_duration(90 * S), "1m30s");
        assert_eq!(format_go_duration(250 * NS_PER_MS), "250ms");
        assert_eq!(format_go_duration(1_500), "1.5µs");
        assert_eq!(format_go_duration(1_500 * NS_PER_MS), "1.5s");
        assert_eq!(format_go_duration(-2 * S), "-2s");
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_bytes(20_000_000), "20MB");
        assert_eq!(format_bytes(1536), "1.5kB");
        assert_eq!(format_bytes(5), "5B");
        assert_eq!(format_bytes(999), "999B");
        assert_eq!(format_bytes(1024), "1.0kB");
    }
}
