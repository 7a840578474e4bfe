//! Label sets: the identity of a log stream or a metric series.

use std::fmt::{self, Write};

/// One label: a name and a value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Label {
    /// The label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

impl Label {
    /// A label from a name and a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set, sorted by name with unique names, so equal sets compare and hash equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a set from labels in any order; a later duplicate name wins, empty values are dropped
    /// (as Prometheus and Loki treat an empty value as an absent label).
    pub fn from_labels(mut v: Vec<Label>) -> Labels {
        v.retain(|l| !l.value.is_empty());
        // Stable sort keeps input order among equal names, so the last one is the one to keep.
        v.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Labels(out)
    }

    /// Builds a set from `(name, value)` pairs.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Labels {
        Labels::from_labels(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect())
    }

    /// The labels, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Consumes the set, giving its sorted labels.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// The value of a label, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable 64-bit id of the set (xxh3 over names and values), used as a stream or series id.
    pub fn fingerprint(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xfe]);
        }
        h.digest()
    }

    /// The set as `name -> value` pairs in a JSON object, as the Loki and Prometheus APIs answer.
    pub fn to_json_map(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0
            .iter()
            .map(|l| (l.name.clone(), serde_json::Value::String(l.value.clone())))
            .collect()
    }
}

/// Formats as `{a="1", b="2"}`, the form Loki and Prometheus print.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('{')?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_char('}')
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// True when `name` is a valid Prometheus/Loki label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Turns any attribute key into a valid label name: every invalid character becomes `_`, and a
/// leading digit gets a `_` prefix (the OTel-to-Prometheus and Loki OTLP rule).
pub fn sanitize_label_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push_str("key_");
        }
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_printed() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        assert_eq!(l.to_string(), r#"{a="1", b="3"}"#);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
        assert_eq!(
            l.fingerprint(),
            Labels::from_pairs([("a", "1"), ("b", "3")]).fingerprint()
        );
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("service_name"));
        assert!(!is_valid_label_name("1x"));
        assert!(!is_valid_label_name("a.b"));
        assert_eq!(sanitize_label_name("k8s.pod.name"), "k8s_pod_name");
        assert_eq!(sanitize_label_name("1a"), "key_1a");
    }
}
