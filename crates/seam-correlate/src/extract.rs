//! Finding correlation keys: in span and resource attributes, in URL paths, and in log lines.
//!
//! Attribute names are matched exactly (case and all), because the configured aliases already list
//! the spellings instrumentations use; guessing more would make accidental matches. Values are
//! trimmed, and an array value (OTel records HTTP headers as string arrays) gives its first element.

use crate::config::CorrelationConfig;
use crate::fxhash::FxHashMap;
use seam_model::otlp::common::v1::{any_value::Value, AnyValue, KeyValue};
use std::sync::Arc;

/// One key found on a span, resource or log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMatch {
    /// The key's canonical name (shared with the configuration, so cheap to clone).
    pub key: Arc<str>,
    /// The value, trimmed (shared, so links and the index take it without copying).
    pub value: Arc<str>,
    /// True when the value came from the canonical attribute name, not an alias or a derivation.
    pub exact: bool,
}

/// A parsed path template: literal segments, the capture, and wildcards.
#[derive(Clone, Debug)]
enum Seg {
    Lit(String),
    Capture,
    Any,
}

/// Finds the configured keys. Built once from the configuration; lookups do not allocate except
/// for the values they return.
#[derive(Clone, Debug)]
pub struct KeyExtractor {
    keys: Vec<Arc<str>>,
    /// Attribute name -> (key index, exact).
    names: FxHashMap<String, (usize, bool)>,
    /// Every name with its key, for scanning log text.
    text_names: Vec<(String, usize, bool)>,
    /// All of `text_names` at once: log text is searched in one pass, however many names.
    text_search: Option<aho_corasick::AhoCorasick>,
    templates: Vec<(usize, Vec<Seg>)>,
    path_attributes: Vec<String>,
}

impl KeyExtractor {
    /// The extractor for `config`'s keys.
    pub fn new(config: &CorrelationConfig) -> KeyExtractor {
        let mut names = FxHashMap::default();
        let mut text_names = Vec::new();
        let mut templates = Vec::new();
        let mut keys = Vec::new();
        for (i, k) in config.keys.iter().enumerate() {
            keys.push(Arc::<str>::from(k.name.as_str()));
            names.entry(k.name.clone()).or_insert((i, true));
            text_names.push((k.name.clone(), i, true));
            for a in &k.aliases {
                names.entry(a.clone()).or_insert((i, false));
                text_names.push((a.clone(), i, false));
            }
            for t in &k.path_templates {
                let placeholder = format!("{{{}}}", k.name);
                let segs = t
                    .trim_matches('/')
                    .split('/')
                    .map(|s| {
                        if s == placeholder {
                            Seg::Capture
                        } else if s.starts_with('{') && s.ends_with('}') {
                            Seg::Any
                        } else {
                            Seg::Lit(s.to_string())
                        }
                    })
                    .collect();
                templates.push((i, segs));
            }
        }
        // Leftmost-longest: where an alias contains another name (`x_circuit_id` holds
        // `circuit_id`), the whole alias is found, and the name inside it would not stand alone
        // anyway. Non-overlapping search keeps the automaton's fast prefilter for the common line
        // that holds no name at all.
        let text_search = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(text_names.iter().map(|n| n.0.as_str()))
            .ok();
        KeyExtractor {
            keys,
            names,
            text_search,
            text_names,
            templates,
            path_attributes: config.path_attributes.clone(),
        }
    }

    /// The canonical key names, in configuration (priority) order.
    pub fn keys(&self) -> &[Arc<str>] {
        &self.keys
    }

    /// The priority of a key (0 = most trusted), or `None` when it is not configured.
    pub fn priority(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| &**k == key)
    }

    /// The key an attribute named `name` with text `value` carries, if any: for label pairs such as
    /// Loki structured metadata.
    pub fn match_pair(&self, name: &str, value: &str) -> Option<KeyMatch> {
        let (i, exact) = *self.names.get(name)?;
        let value = value.trim();
        (!value.is_empty()).then(|| KeyMatch {
            key: self.keys[i].clone(),
            value: value.into(),
            exact,
        })
    }

    /// Adds the keys found in `attrs` (by name, then derived from URL paths) to `out`.
    pub fn extract_attributes(&self, attrs: &[KeyValue], out: &mut Vec<KeyMatch>) {
        self.visit_attributes(attrs, |k, v, exact| push_unique(out, k, v, exact));
    }

    /// Calls `f(key, value, exact)` for each key found in `attrs`, allocating nothing for
    /// string values: the hot path of span ingest.
    pub fn visit_attributes(&self, attrs: &[KeyValue], mut f: impl FnMut(&Arc<str>, &str, bool)) {
        for kv in attrs {
            let Some(&(i, exact)) = self.names.get(kv.key.as_str()) else {
                continue;
            };
            if let Some(v) = kv.value.as_ref().and_then(value_text) {
                f(&self.keys[i], v.as_ref(), exact);
            }
        }
        if self.templates.is_empty() {
            return;
        }
        for name in &self.path_attributes {
            let Some(path) = seam_model::attributes::find_str(attrs, name) else {
                continue;
            };
            let path = url_path(path);
            for (i, segs) in &self.templates {
                if let Some(v) = match_template(segs, path) {
                    f(&self.keys[*i], v, false);
                }
            }
        }
    }

    /// The keys of one span: its own attributes first, then its resource's.
    pub fn extract_span(
        &self,
        span_attrs: &[KeyValue],
        resource_attrs: &[KeyValue],
    ) -> Vec<KeyMatch> {
        let mut out = Vec::new();
        self.extract_attributes(span_attrs, &mut out);
        self.extract_attributes(resource_attrs, &mut out);
        out
    }

    /// The keys of a log record: its attributes, then `key=value`, `key: value` and JSON
    /// `"key": "value"` in its body, for every configured name.
    pub fn extract_from_log(&self, body: &str, attrs: &[KeyValue]) -> Vec<KeyMatch> {
        let mut out = Vec::new();
        self.extract_attributes(attrs, &mut out);
        self.extract_from_text(body, &mut out);
        out
    }

    /// Adds the keys written in free text to `out`. A value runs from after the separator (and an
    /// optional opening quote) to whitespace, `,`, `;`, a quote, or a closing `}`/`]`/`)`.
    pub fn extract_from_text(&self, text: &str, out: &mut Vec<KeyMatch>) {
        let bytes = text.as_bytes();
        let Some(search) = &self.text_search else {
            return;
        };
        let mut found = Vec::new();
        for m in search.find_iter(text) {
            let (name, i, exact) = &self.text_names[m.pattern().as_usize()];
            let at = m.start();
            // The name must stand alone: `xcircuit_id=` is not `circuit_id=`, and
            // `x_circuit_id=` is not either (that is what keeps aliases apart).
            if at > 0 && is_name_byte(bytes[at - 1]) {
                continue;
            }
            if let Some(v) = value_after(bytes, at + name.len()) {
                found.push((at, *i, v, *exact));
            }
        }
        // In the order they are written, so results do not depend on the configuration's order.
        found.sort_by_key(|f| f.0);
        for (_, i, v, exact) in found {
            push_unique(out, &self.keys[i], v, exact);
        }
    }
}

/// Adds a match unless the same key and value is already there; a later exact sighting upgrades
/// an earlier non-exact one.
fn push_unique(out: &mut Vec<KeyMatch>, key: &Arc<str>, value: &str, exact: bool) {
    if let Some(m) = out.iter_mut().find(|m| m.key == *key && &*m.value == value) {
        m.exact |= exact;
    } else {
        out.push(KeyMatch {
            key: key.clone(),
            value: value.into(),
            exact,
        });
    }
}

/// An attribute value as key text: strings trimmed, integers in decimal, arrays by their first
/// element; other types and empty text carry no key.
fn value_text(v: &AnyValue) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    let t = match v.value.as_ref()? {
        Value::StringValue(s) => Cow::Borrowed(s.trim()),
        Value::IntValue(i) => Cow::Owned(i.to_string()),
        Value::ArrayValue(a) => return a.values.first().and_then(value_text),
        _ => return None,
    };
    (!t.is_empty()).then_some(t)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b',' | b';' | b'"' | b'\'' | b'}' | b']' | b')')
}

/// The value written after a key name that ends at `i`: an optional closing quote (JSON), spaces,
/// `=` or `:`, spaces, an optional opening quote, then the value.
fn value_after(b: &[u8], mut i: usize) -> Option<&str> {
    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
        i += 1;
    }
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if i >= b.len() || (b[i] != b'=' && b[i] != b':') {
        return None;
    }
    i += 1;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
        i += 1;
    }
    let start = i;
    while i < b.len() && !ends_value(b[i]) {
        i += 1;
    }
    // Every terminator is ASCII, so both ends fall on character boundaries.
    let v = std::str::from_utf8(&b[start..i]).ok()?;
    (!v.is_empty()).then_some(v)
}

/// The path of a URL or a request target: no scheme and host, no query or fragment.
pub(crate) fn url_path(s: &str) -> &str {
    let s = match s.find("://") {
        Some(p) => {
            let rest = &s[p + 3..];
            rest.find('/').map_or("", |q| &rest[q..])
        }
        None => s,
    };
    s.split(['?', '#']).next().unwrap_or("")
}

/// The value a template captures from `path`, walking both segment by segment (no allocation:
/// this runs for every span with a path attribute).
fn match_template<'a>(segs: &[Seg], path: &'a str) -> Option<&'a str> {
    let mut parts = path.trim_matches('/').split('/');
    let mut captured = None;
    for s in segs {
        let p = parts.next()?;
        match s {
            Seg::Lit(l) if l == p => {}
            Seg::Lit(_) => return None,
            Seg::Any => {}
            Seg::Capture => captured = Some(p.trim()).filter(|v| !v.is_empty()),
        }
    }
    if parts.next().is_some() {
        return None; // more path segments than template segments
    }
    captured
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySpec;
    use seam_model::attributes::{int_kv, string_kv};
    use seam_model::otlp::common::v1::ArrayValue;

    fn ex() -> KeyExtractor {
        KeyExtractor::new(&CorrelationConfig::default())
    }

    fn m(key: &str, value: &str, exact: bool) -> (String, String, bool) {
        (key.into(), value.into(), exact)
    }

    fn flat(v: &[KeyMatch]) -> Vec<(String, String, bool)> {
        v.iter()
            .map(|k| (k.key.to_string(), k.value.to_string(), k.exact))
            .collect()
    }

    #[test]
    fn canonical_names_are_exact_aliases_are_not_and_values_are_trimmed() {
        let e = ex();
        let span = [
            string_kv("circuit_id", "  6f1c  "),
            string_kv("X-Resource-Id", "r-9"),
            string_kv("unrelated", "x"),
            int_kv("product.id", 42),
        ];
        assert_eq!(
            flat(&e.extract_span(&span, &[])),
            [
                m("circuit_id", "6f1c", true),
                m("resource_id", "r-9", false),
                m("product_id", "42", false)
            ]
        );
    }

    #[test]
    fn header_arrays_give_their_first_element_and_resource_keys_come_last() {
        let e = ex();
        let header = KeyValue {
            key: "http.request.header.x_circuit_id".into(),
            value: Some(AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::StringValue("6f1c".into())),
                        },
                        AnyValue {
                            value: Some(Value::StringValue("other".into())),
                        },
                    ],
                })),
            }),
            ..Default::default()
        };
        let got = e.extract_span(&[header], &[string_kv("resource_id", "r1")]);
        assert_eq!(
            flat(&got),
            [m("circuit_id", "6f1c", false), m("resource_id", "r1", true)]
        );
    }

    #[test]
    fn the_same_value_through_alias_and_name_counts_as_exact_once() {
        let e = ex();
        let got = e.extract_span(
            &[string_kv("circuit.id", "c"), string_kv("circuit_id", "c")],
            &[string_kv("circuit_id", " ")],
        );
        assert_eq!(flat(&got), [m("circuit_id", "c", true)]);
    }

    #[test]
    fn path_templates_derive_non_exact_keys() {
        let mut c = CorrelationConfig::default();
        c.keys[0].path_templates = vec!["/api/v3/topologies/{circuit_id}".into()];
        c.keys.push(KeySpec {
            name: "order".into(),
            aliases: vec![],
            path_templates: vec!["/orders/{tenant}/{order}/items".into()],
        });
        let e = KeyExtractor::new(&c);
        let got = e.extract_span(
            &[string_kv(
                "url.full",
                "http://arda:8000/api/v3/topologies/6f1c?x=1",
            )],
            &[],
        );
        assert_eq!(flat(&got), [m("circuit_id", "6f1c", false)]);
        let got = e.extract_span(&[string_kv("http.target", "/orders/acme/o7/items")], &[]);
        assert_eq!(flat(&got), [m("order", "o7", false)]);
        let none = e.extract_span(&[string_kv("url.path", "/api/v3/topologies")], &[]);
        assert!(none.is_empty());
    }

    #[test]
    fn log_bodies_in_every_format() {
        let e = ex();
        let got = e.extract_from_log(
            "CircuitDetailsCollector started circuit_id=6f1c-aa,resource_id: r-1; X-Product-Id=p9",
            &[],
        );
        assert_eq!(
            flat(&got),
            [
                m("circuit_id", "6f1c-aa", true),
                m("resource_id", "r-1", true),
                m("product_id", "p9", false)
            ]
        );
        let got = e.extract_from_log(r#"{"msg":"ok","circuit_id": "c-2","product_id":17}"#, &[]);
        assert_eq!(
            flat(&got),
            [m("circuit_id", "c-2", true), m("product_id", "17", true)]
        );
        let got = e.extract_from_log("circuit_id = 'c3'\tdone", &[]);
        assert_eq!(flat(&got), [m("circuit_id", "c3", true)]);
    }

    #[test]
    fn log_names_must_stand_alone_and_need_a_value() {
        let e = ex();
        assert!(e
            .extract_from_log(
                "xcircuit_id=1 my.circuit_id=2 circuit_id circuit_id= ;",
                &[]
            )
            .is_empty());
        // Attributes come first, and a body repeat of the same value is not a second match.
        let got = e.extract_from_log("circuit_id=6f1c", &[string_kv("circuit.id", "6f1c")]);
        assert_eq!(flat(&got), [m("circuit_id", "6f1c", true)]);
    }

    #[test]
    fn label_pairs_and_priorities() {
        let e = ex();
        let k = e.match_pair("X-Circuit-Id", " c ").unwrap();
        assert_eq!((&*k.key, &*k.value, k.exact), ("circuit_id", "c", false));
        assert!(e.match_pair("circuit_id", "  ").is_none());
        assert!(e.match_pair("nope", "c").is_none());
        assert_eq!(e.priority("product_id"), Some(2));
        assert_eq!(e.priority("nope"), None);
    }
}
