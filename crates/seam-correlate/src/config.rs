//! The `correlation:` configuration: which keys join traces, how far apart in time, which service
//! orders are known, and the knobs that trade latency against accuracy.
//!
//! Durations (`window`, `settle`, `max_skew`) are written either as a number of seconds (`60`,
//! `0.5`) or as a string with one unit: `"250ms"`, `"60s"`, `"2m"`, `"1h"`.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// One correlation key: its canonical attribute name and the other names it goes by.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "KeySpecRepr")]
pub struct KeySpec {
    /// The canonical name. A match on it is *exact* (confidence base 1.0).
    pub name: String,
    /// Other attribute names carrying the same value (HTTP header attributes, dotted forms).
    /// A match through an alias is non-exact (confidence base 0.8).
    pub aliases: Vec<String>,
    /// URL path templates the value can be derived from, such as
    /// `/api/v3/topologies/{circuit_id}`: `{<name>}` captures the value, any other `{...}` matches
    /// one path segment. Checked against [`CorrelationConfig::path_attributes`]; derived matches
    /// are non-exact.
    pub path_templates: Vec<String>,
}

/// What YAML may say for a key: just its name, or the full form.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeySpecRepr {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        aliases: Vec<String>,
        #[serde(default)]
        path_templates: Vec<String>,
    },
}

impl From<KeySpecRepr> for KeySpec {
    fn from(r: KeySpecRepr) -> KeySpec {
        match r {
            KeySpecRepr::Name(name) => KeySpec::new(&name, &[]),
            KeySpecRepr::Full {
                name,
                aliases,
                path_templates,
            } => KeySpec {
                name,
                aliases,
                path_templates,
            },
        }
    }
}

impl KeySpec {
    /// A key with aliases and no path templates.
    pub fn new(name: &str, aliases: &[&str]) -> KeySpec {
        KeySpec {
            name: name.to_string(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            path_templates: Vec::new(),
        }
    }
}

/// The correlation engine's settings. Every field has a default, so an empty YAML section is valid.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationConfig {
    /// The keys, most trusted first: when one downstream segment has candidates through several
    /// keys, the earlier key wins.
    pub keys: Vec<KeySpec>,
    /// How far apart two segments' time ranges may be and still match; also how late a segment
    /// may arrive after its end. State is kept for at most twice this after the last arrival.
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
    /// Links whose confidence is below this are dropped (and counted).
    pub min_confidence: f64,
    /// Ordered service sequences (`[beorn, mdso, arda]`): the earlier service is upstream.
    pub flow_patterns: Vec<Vec<String>>,
    /// The most traces one stitched view joins; larger components are cut with a warning.
    pub max_component_traces: usize,
    /// How long an ambiguous decision waits for a better candidate before it is emitted. Zero
    /// decides at the end of each batch. See the matcher's module doc for the trade-off.
    #[serde(deserialize_with = "de_duration")]
    pub settle: Duration,
    /// Emit at once, without waiting `settle`, when the choice is unambiguous (see the matcher).
    pub fast_path: bool,
    /// How long a segment that has shown no key yet is remembered after its last span arrived.
    /// Most traces never carry a key; keeping them for the whole window would hold every span of
    /// the last minutes in memory. A key arriving later (in a later batch) extends the segment's
    /// life to the window as usual.
    #[serde(deserialize_with = "de_duration")]
    pub keyless_ttl: Duration,
    /// How much earlier than its pattern upstream a downstream segment may start (clock skew)
    /// before the pair is refused as contradicting the pattern.
    #[serde(deserialize_with = "de_duration")]
    pub max_skew: Duration,
    /// Span attributes holding a URL path or URL, for [`KeySpec::path_templates`].
    pub path_attributes: Vec<String>,
    /// Spans remembered per segment (for choosing the bridge parent); more are counted, not kept.
    pub max_spans_per_segment: usize,
    /// Segments remembered per key value; beyond it the oldest entry is dropped, so one hot value
    /// cannot make every lookup slow.
    pub max_segments_per_value: usize,
    /// Learn flow patterns from links decided on strong evidence (a call in flight, or one whose
    /// route or peer matches), and use the well-supported ones like configured patterns.
    pub learn_patterns: bool,
    /// Links a service pair needs (with at least 95% of the pair's links pointing the same way)
    /// before its learned direction is used.
    pub learn_min_links: u64,
    /// A Redis shared by replicas (`redis://127.0.0.1:6379/`): each process publishes its
    /// segments' summaries there and matches against the others'. Off (`None`) by default.
    pub redis_url: Option<String>,
}

impl Default for CorrelationConfig {
    fn default() -> CorrelationConfig {
        CorrelationConfig {
            keys: vec![
                KeySpec::new(
                    "circuit_id",
                    &[
                        "circuit.id",
                        "http.request.header.x_circuit_id",
                        "http.request.header.x-circuit-id",
                        "X-Circuit-Id",
                    ],
                ),
                KeySpec::new(
                    "resource_id",
                    &[
                        "resource.id",
                        "http.request.header.x_resource_id",
                        "X-Resource-Id",
                    ],
                ),
                KeySpec::new(
                    "product_id",
                    &[
                        "product.id",
                        "http.request.header.x_product_id",
                        "X-Product-Id",
                    ],
                ),
            ],
            window: Duration::from_secs(60),
            min_confidence: 0.5,
            flow_patterns: Vec::new(),
            max_component_traces: 50,
            settle: Duration::from_secs(2),
            keyless_ttl: Duration::from_secs(10),
            fast_path: true,
            max_skew: Duration::from_secs(5),
            path_attributes: ["url.path", "http.target", "url.full", "http.url"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_spans_per_segment: 256,
            max_segments_per_value: 256,
            learn_patterns: true,
            learn_min_links: 10,
            redis_url: None,
        }
    }
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// An environment variable did not parse.
    #[error("{var}: {message}")]
    Env {
        /// The variable's name.
        var: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The configuration is inconsistent; one message per problem, each naming its path.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl CorrelationConfig {
    /// The defaults with the environment applied (see [`CorrelationConfig::apply_env`]).
    pub fn from_env() -> Result<CorrelationConfig, ConfigError> {
        CorrelationConfig::default().apply_env(|k| std::env::var(k).ok())
    }

    /// Applies `CORR_WINDOW_SECONDS` (seconds, fractions allowed, or a duration string) from
    /// `get`, which reads a variable; taking a closure keeps tests off the process environment.
    pub fn apply_env(
        mut self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<CorrelationConfig, ConfigError> {
        const VAR: &str = "CORR_WINDOW_SECONDS";
        if let Some(v) = get(VAR) {
            let v = v.trim();
            let window = match v.parse::<f64>() {
                Ok(secs) => seconds(secs),
                Err(_) => parse_duration(v),
            }
            .map_err(|message| ConfigError::Env { var: VAR, message })?;
            self.window = window;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks the settings, naming every problem by its path under `correlation`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs = Vec::new();
        if self.window.is_zero() {
            errs.push("correlation.window: must be positive".to_string());
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            errs.push(format!(
                "correlation.min_confidence: must be between 0 and 1, got {}",
                self.min_confidence
            ));
        }
        if self.max_component_traces == 0 {
            errs.push("correlation.max_component_traces: must be at least 1".to_string());
        }
        if self.learn_min_links == 0 {
            errs.push("correlation.learn_min_links: must be at least 1".to_string());
        }
        if self.max_spans_per_segment == 0 || self.max_segments_per_value == 0 {
            errs.push("correlation: per-segment and per-value limits must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            if k.name.trim().is_empty() {
                errs.push(format!("correlation.keys[{i}].name: must not be empty"));
            }
            for n in std::iter::once(&k.name).chain(&k.aliases) {
                if !n.is_empty() && !names.insert(n.as_str()) {
                    errs.push(format!(
                        "correlation.keys[{i}]: attribute name {n:?} is used twice"
                    ));
                }
            }
            for (j, t) in k.path_templates.iter().enumerate() {
                if !t.contains(&format!("{{{}}}", k.name)) {
                    errs.push(format!(
                        "correlation.keys[{i}].path_templates[{j}]: must contain {{{}}}",
                        k.name
                    ));
                }
            }
        }
        for (i, p) in self.flow_patterns.iter().enumerate() {
            if p.len() < 2 {
                errs.push(format!(
                    "correlation.flow_patterns[{i}]: needs at least two services"
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }

    /// The window in nanoseconds, the unit every time comparison uses.
    pub fn window_ns(&self) -> i64 {
        dur_ns(self.window)
    }
}

/// A duration in nanoseconds, saturating.
pub(crate) fn dur_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn seconds(secs: f64) -> Result<Duration, String> {
    if secs.is_finite() && secs >= 0.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!("not a duration: {secs}"))
    }
}

/// Parses `"250ms"`, `"60s"`, `"2m"`, `"1h"` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (use e.g. \"60s\" or \"500ms\")"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?}")),
    };
    seconds(n * scale)
}

/// Reads a duration from a number of seconds or a duration string.
fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Secs(f64),
        Text(String),
    }
    match Repr::deserialize(d)? {
        Repr::Secs(s) => seconds(s),
        Repr::Text(t) => parse_duration(&t),
    }
    .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = CorrelationConfig::default();
        assert_eq!(c.window, Duration::from_secs(60));
        assert_eq!(c.min_confidence, 0.5);
        assert_eq!(c.max_component_traces, 50);
        let names: Vec<&str> = c.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["circuit_id", "resource_id", "product_id"]);
        assert!(c.keys[0]
            .aliases
            .contains(&"http.request.header.x_circuit_id".to_string()));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn durations_parse_in_every_form() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn yaml_section_with_defaults_and_short_keys() {
        let c: CorrelationConfig = serde_yaml_ng::from_str(
            "window: 30s\nmin_confidence: 0.7\nkeys:\n  - circuit_id\n  - name: order_id\n    aliases: [order.id]\nflow_patterns: [[beorn, mdso, arda]]\nsettle: 500ms\n",
        )
        .unwrap();
        assert_eq!(c.window, Duration::from_secs(30));
        assert_eq!(c.settle, Duration::from_millis(500));
        assert_eq!(c.min_confidence, 0.7);
        assert_eq!(c.keys[0], KeySpec::new("circuit_id", &[]));
        assert_eq!(c.keys[1], KeySpec::new("order_id", &["order.id"]));
        assert_eq!(c.flow_patterns, vec![vec!["beorn", "mdso", "arda"]]);
        assert_eq!(c.max_component_traces, 50);
        let c: CorrelationConfig = serde_yaml_ng::from_str("window: 90\n").unwrap();
        assert_eq!(c.window, Duration::from_secs(90));
        assert!(serde_yaml_ng::from_str::<CorrelationConfig>("windw: 90\n").is_err());
        assert!(serde_yaml_ng::from_str::<CorrelationConfig>("window: soon\n").is_err());
    }

    #[test]
    fn env_sets_the_window_and_rejects_garbage() {
        let env = |v: &'static str| move |k: &str| (k == "CORR_WINDOW_SECONDS").then(|| v.into());
        let c = CorrelationConfig::default().apply_env(env("15")).unwrap();
        assert_eq!(c.window, Duration::from_secs(15));
        let c = CorrelationConfig::default().apply_env(env("2m")).unwrap();
        assert_eq!(c.window, Duration::from_secs(120));
        let e = CorrelationConfig::default()
            .apply_env(env("x"))
            .unwrap_err();
        assert!(matches!(
            e,
            ConfigError::Env {
                var: "CORR_WINDOW_SECONDS",
                ..
            }
        ));
        assert!(CorrelationConfig::default().apply_env(env("0")).is_err());
        let c = CorrelationConfig::default().apply_env(|_| None).unwrap();
        assert_eq!(c.window, Duration::from_secs(60));
    }

    #[test]
    fn validation_names_each_problem() {
        let mut c = CorrelationConfig {
            min_confidence: 1.5,
            flow_patterns: vec![vec!["solo".into()]],
            ..Default::default()
        };
        c.keys.push(KeySpec::new("dup", &["circuit.id"]));
        let ConfigError::Invalid(errs) = c.validate().unwrap_err() else {
            panic!()
        };
        assert_eq!(
            errs,
            [
                "correlation.min_confidence: must be between 0 and 1, got 1.5",
                "correlation.keys[3]: attribute name \"circuit.id\" is used twice",
                "correlation.flow_patterns[0]: needs at least two services",
            ]
        );
    }
}
