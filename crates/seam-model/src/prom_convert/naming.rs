//! Prometheus names for OTLP metrics, label names for OTLP attributes, and `le`/`quantile` values.
//!
//! Follows the OpenTelemetry "Prometheus and OpenMetrics compatibility" spec and the Prometheus
//! OTLP receiver (`otlptranslator`), with one fix: a unit suffix of several words (`per_second`) is
//! recognised as already present, so `bytes_per_second` in `By/s` is not suffixed twice.

use std::collections::HashMap;

use crate::attributes::to_text;
use crate::labels::{sanitize_label_name, Label};
use crate::otlp::common::v1::KeyValue;

/// How a metric is exposed in Prometheus, which decides the suffixes of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromKind {
    /// A monotonic Sum: a counter, named with a `_total` suffix.
    Counter,
    /// An OTel Gauge: a unit of `1` is named with a `_ratio` suffix.
    Gauge,
    /// A non-monotonic Sum (up-down counter): a gauge, with neither `_total` nor `_ratio` (as the
    /// Prometheus OTLP receiver does).
    UpDownCounter,
    /// A histogram (the `_bucket`, `_sum` and `_count` suffixes are added per series).
    Histogram,
    /// A summary (the `_sum` and `_count` suffixes are added per series).
    Summary,
}

/// OTel (UCUM) units to the Prometheus words used as name suffixes.
const UNITS: &[(&str, &str)] = &[
    ("d", "days"),
    ("h", "hours"),
    ("min", "minutes"),
    ("s", "seconds"),
    ("ms", "milliseconds"),
    ("us", "microseconds"),
    ("ns", "nanoseconds"),
    ("By", "bytes"),
    ("KiBy", "kibibytes"),
    ("MiBy", "mebibytes"),
    ("GiBy", "gibibytes"),
    ("TiBy", "tibibytes"),
    ("KBy", "kilobytes"),
    ("MBy", "megabytes"),
    ("GBy", "gigabytes"),
    ("TBy", "terabytes"),
    ("m", "meters"),
    ("V", "volts"),
    ("A", "amperes"),
    ("J", "joules"),
    ("W", "watts"),
    ("g", "grams"),
    ("Cel", "celsius"),
    ("Hz", "hertz"),
    ("1", ""),
    ("%", "percent"),
];

/// OTel units after a `/` to the Prometheus words after `per_`.
const PER_UNITS: &[(&str, &str)] = &[
    ("s", "second"),
    ("m", "minute"),
    ("h", "hour"),
    ("d", "day"),
    ("w", "week"),
    ("mo", "month"),
    ("y", "year"),
];

fn lookup<'a>(table: &[(&str, &'a str)], unit: &'a str) -> &'a str {
    table
        .iter()
        .find(|(k, _)| *k == unit)
        .map(|(_, v)| *v)
        .unwrap_or(unit)
}

/// Splits text into the runs of valid metric-name characters (`[a-zA-Z0-9:]`); everything else,
/// `_` included, separates, so invalid characters become `_` and repeated `_` collapse.
fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Removes `{annotation}` parts of a unit (an unclosed `{` drops the rest).
fn strip_annotations(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The name tokens a unit adds: the main unit's words, and `per` plus the per unit's words.
fn unit_tokens(unit: &str) -> (Vec<String>, Vec<String>) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (unit, None),
    };
    let main = strip_annotations(main);
    let main_tokens = tokens(lookup(UNITS, main.trim()));
    let per_tokens = per
        .map(|p| {
            let p = strip_annotations(p);
            let words = tokens(lookup(PER_UNITS, p.trim()));
            if words.is_empty() {
                words
            } else {
                std::iter::once("per".to_string()).chain(words).collect()
            }
        })
        .unwrap_or_default();
    (main_tokens, per_tokens)
}

fn contains_run(haystack: &[String], run: &[String]) -> bool {
    run.is_empty() || haystack.windows(run.len()).any(|w| w == run)
}

/// The Prometheus name of an OTLP metric: invalid characters become `_`, repeated `_` collapse,
/// the unit's words are appended unless already present, counters end in `_total`, gauges with
/// unit `1` in `_ratio`, and a leading digit gets a `_` prefix. `None` when the name has no valid
/// character at all.
pub fn metric_name(name: &str, unit: &str, kind: PromKind) -> Option<String> {
    let mut toks = tokens(name);
    if toks.is_empty() {
        return None;
    }
    let (main, per) = unit_tokens(unit);
    if !contains_run(&toks, &main) {
        toks.extend(main);
    }
    if !contains_run(&toks, &per) {
        toks.extend(per);
    }
    match kind {
        PromKind::Counter => {
            toks.retain(|t| t != "total");
            toks.push("total".to_string());
        }
        PromKind::Gauge if unit.trim() == "1" => {
            toks.retain(|t| t != "ratio");
            toks.push("ratio".to_string());
        }
        _ => {}
    }
    let mut out = toks.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

/// A float as Prometheus writes `le` and `quantile` values: shortest round-trip form without an
/// exponent (Go's `FormatFloat(f, 'f', -1, 64)`), and `+Inf`, `-Inf`, `NaN`.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// The label name for an attribute key: [`sanitize_label_name`], and a `key` prefix for names
/// starting with `__`, which Prometheus reserves (so data cannot set `__name__` and the like).
pub(crate) fn attribute_label_name(key: &str) -> String {
    let name = sanitize_label_name(key);
    if name.starts_with("__") {
        format!("key{name}")
    } else {
        name
    }
}

/// Labels for attributes (except keys in `skip`). Keys that collide after sanitising have their
/// values joined with `;` in the lexicographic order of the original keys, as the spec says.
pub(crate) fn attribute_labels(attrs: &[KeyValue], skip: &[&str]) -> Vec<Label> {
    let mut pairs: Vec<(&str, String)> = attrs
        .iter()
        .filter(|kv| !kv.key.is_empty() && !skip.contains(&kv.key.as_str()))
        .map(|kv| {
            let v = kv.value.as_ref().map(to_text).unwrap_or_default();
            (kv.key.as_str(), v)
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<Label> = Vec::with_capacity(pairs.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
    for (key, value) in pairs {
        let name = attribute_label_name(key);
        match index.get(&name) {
            Some(&i) => {
                let v = &mut out[i].value;
                v.push(';');
                v.push_str(&value);
            }
            None => {
                index.insert(name.clone(), out.len());
                out.push(Label::new(name, value));
            }
        }
    }
    out
}
