//! Seam's configuration: defaults, then the YAML file (`--config`), then `SEAM_<SECTION>__<KEY>`
//! environment variables, then command-line flags, each overriding the one before.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use seam_server::{Limits, TenantLimits};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listening addresses and request limits.
    #[serde(default)]
    pub server: ServerSection,
    /// The embedded store.
    #[serde(default)]
    pub storage: StorageSection,
    /// The push limits' older spelling; `limits:` wins over it.
    #[serde(default)]
    pub loki: LokiSection,
    /// Per-tenant limits (see docs/configuration.md); every key has Loki's default.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Trace stitching (see docs/correlation.md); every key has a default.
    #[serde(default)]
    pub correlation: seam_correlate::CorrelationConfig,
}

/// `server:` keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Query API address.
    pub listen: Option<String>,
    /// OTLP/HTTP address.
    pub otlp_http: Option<String>,
    /// OTLP/gRPC address.
    pub otlp_grpc: Option<String>,
    /// Largest request body, e.g. `64MiB`.
    pub max_body_size: Option<String>,
}

/// `loki:` keys, the limits of `POST /loki/api/v1/push`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiSection {
    /// Longest line accepted, e.g. `256KiB`.
    pub max_line_size: Option<String>,
    /// Most label names per stream (default 15).
    pub max_label_names_per_stream: Option<usize>,
    /// Entries older than this are refused, e.g. `168h`.
    pub reject_old_samples_max_age: Option<String>,
    /// Entries further than this in the future are refused, e.g. `10m`.
    pub creation_grace_period: Option<String>,
}

/// `limits:` keys: the defaults, plus `per_tenant: {tenant-id: {key: value}}` overrides. Keys are
/// kept as raw YAML so that one list ([`apply_limit`]) names and parses them everywhere.
#[derive(Debug, Default, Deserialize)]
pub struct LimitsSection {
    /// Overrides by tenant id.
    #[serde(default)]
    pub per_tenant: BTreeMap<String, BTreeMap<String, serde_yaml_ng::Value>>,
    /// The defaults.
    #[serde(flatten)]
    pub defaults: BTreeMap<String, serde_yaml_ng::Value>,
}

/// Sets one limit by its configuration key; `at` names the key's place in errors.
pub fn apply_limit(l: &mut TenantLimits, at: &str, key: &str, value: &str) -> anyhow::Result<()> {
    let name = format!("{at}.{key}");
    let dur = || parse_duration(&name, value);
    let count = || -> anyhow::Result<usize> {
        value
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name}: {value:?} is not a whole number"))
    };
    match key {
        "max_query_length" => l.max_query_length = dur()?,
        "max_entries_limit_per_query" => l.max_entries_limit_per_query = count()?,
        "max_query_series" => l.max_query_series = count()?,
        "query_timeout" => l.query_timeout = dur()?,
        "max_concurrent_tail_requests" => l.max_concurrent_tail_requests = count()?,
        "tail_max_lines_per_second" => {
            l.tail_max_lines_per_second = count()?
                .try_into()
                .map_err(|_| anyhow!("{name}: {value:?} is too large"))?
        }
        "max_line_size" => l.max_line_size = parse_size(&name, value)?,
        "max_label_names_per_stream" => l.max_label_names_per_stream = count()?,
        "reject_old_samples_max_age" => l.reject_old_samples_max_age = dur()?,
        "creation_grace_period" => l.creation_grace_period = dur()?,
        _ => bail!(
            "{name}: unknown limit (known: max_query_length, max_entries_limit_per_query, \
             max_query_series, query_timeout, max_concurrent_tail_requests, \
             tail_max_lines_per_second, max_line_size, max_label_names_per_stream, \
             reject_old_samples_max_age, creation_grace_period)"
        ),
    }
    Ok(())
}

fn scalar(at: &str, key: &str, v: &serde_yaml_ng::Value) -> anyhow::Result<String> {
    use serde_yaml_ng::Value;
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bail!("{at}.{key}: expected a number or a string"),
    }
}

fn apply_limits(
    l: &mut TenantLimits,
    at: &str,
    map: &BTreeMap<String, serde_yaml_ng::Value>,
) -> anyhow::Result<()> {
    for (k, v) in map {
        apply_limit(l, at, k, &scalar(at, k, v)?)?;
    }
    Ok(())
}

/// Builds the limits: Loki's defaults, the `loki:` push keys, the `limits:` defaults, then each
/// tenant's overrides on top of those defaults.
pub fn build_limits(cfg: &FileConfig) -> anyhow::Result<Limits> {
    let mut defaults = TenantLimits::default();
    let lk = &cfg.loki;
    let legacy = [
        ("max_line_size", lk.max_line_size.clone()),
        (
            "max_label_names_per_stream",
            lk.max_label_names_per_stream.map(|n| n.to_string()),
        ),
        (
            "reject_old_samples_max_age",
            lk.reject_old_samples_max_age.clone(),
        ),
        ("creation_grace_period", lk.creation_grace_period.clone()),
    ];
    for (k, v) in legacy {
        if let Some(v) = v {
            apply_limit(&mut defaults, "loki", k, &v)?;
        }
    }
    apply_limits(&mut defaults, "limits", &cfg.limits.defaults)?;
    let mut per_tenant = HashMap::new();
    for (id, overrides) in &cfg.limits.per_tenant {
        seam_model::Tenant::new(id).map_err(|e| anyhow!("limits.per_tenant.{id}: {e}"))?;
        let mut l = defaults.clone();
        apply_limits(&mut l, &format!("limits.per_tenant.{id}"), overrides)?;
        per_tenant.insert(id.clone(), l);
    }
    Ok(Limits::new(defaults, per_tenant))
}

/// `storage:` keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// `always` or `interval`.
    pub fsync: Option<String>,
    /// With `fsync: interval`, the longest time a write may sit unsynced, e.g. `100ms`.
    pub fsync_interval: Option<String>,
    /// Memory budget, e.g. `1GiB`.
    pub max_memory: Option<String>,
    /// Head size that triggers a flush (default: a quarter of max_memory).
    pub flush_size: Option<String>,
    /// Head age that triggers a flush, e.g. `2m`.
    pub flush_age: Option<String>,
    /// Largest WAL file, e.g. `64MiB`.
    pub wal_segment_size: Option<String>,
}

/// Reads the YAML file, naming the file and the failing key on error.
pub fn load_file(path: &std::path::Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    serde_yaml_ng::from_str(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))
}

/// Applies `SEAM_SERVER__LISTEN`-style variables over the file's values.
pub fn apply_env(
    cfg: &mut FileConfig,
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    for (k, v) in vars {
        let Some(rest) = k.strip_prefix("SEAM_") else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let s = &mut cfg.server;
        let st = &mut cfg.storage;
        match (section.as_str(), key.as_str()) {
            ("server", "listen") => s.listen = Some(v),
            ("server", "otlp_http") => s.otlp_http = Some(v),
            ("server", "otlp_grpc") => s.otlp_grpc = Some(v),
            ("server", "max_body_size") => s.max_body_size = Some(v),
            ("loki", "max_line_size") => cfg.loki.max_line_size = Some(v),
            ("loki", "max_label_names_per_stream") => {
                cfg.loki.max_label_names_per_stream = Some(
                    v.parse()
                        .map_err(|_| anyhow!("environment variable {k}: {v:?} is not a number"))?,
                )
            }
            ("loki", "reject_old_samples_max_age") => cfg.loki.reject_old_samples_max_age = Some(v),
            ("loki", "creation_grace_period") => cfg.loki.creation_grace_period = Some(v),
            ("limits", "per_tenant") => {
                bail!("environment variable {k}: per-tenant limits are set in the config file only")
            }
            ("limits", _) => {
                // Checked now so that a misspelt variable is named before anything starts.
                apply_limit(&mut TenantLimits::default(), "limits", &key, &v)
                    .map_err(|e| anyhow!("environment variable {k}: {e}"))?;
                cfg.limits
                    .defaults
                    .insert(key.clone(), serde_yaml_ng::Value::String(v));
            }
            ("storage", "data_dir") => st.data_dir = Some(v.into()),
            ("storage", "fsync") => st.fsync = Some(v),
            ("storage", "fsync_interval") => st.fsync_interval = Some(v),
            ("storage", "max_memory") => st.max_memory = Some(v),
            ("storage", "flush_size") => st.flush_size = Some(v),
            ("storage", "flush_age") => st.flush_age = Some(v),
            ("storage", "wal_segment_size") => st.wal_segment_size = Some(v),
            ("correlation", "window") => {
                cfg.correlation.window = seam_correlate::config::parse_duration(&v)
                    .map_err(|e| anyhow!("environment variable {k}: {e}"))?
            }
            ("correlation", "min_confidence") => {
                cfg.correlation.min_confidence = v
                    .parse()
                    .map_err(|_| anyhow!("environment variable {k}: {v:?} is not a number"))?
            }
            ("correlation", "redis_url") => {
                cfg.correlation.redis_url = Some(v).filter(|v| !v.trim().is_empty())
            }
            _ => bail!("environment variable {k}: unknown configuration key {section}.{key}"),
        }
    }
    Ok(())
}

/// Parses `123`, `64KiB`, `64MiB`, `1GiB`, `10MB`, `1.5GB`.
pub fn parse_size(key: &str, s: &str) -> anyhow::Result<usize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("{key}: invalid size {s:?} (examples: 512MiB, 1GiB, 1048576)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        other => {
            bail!("{key}: unknown size unit {other:?} in {s:?} (use B, KiB, MiB, GiB, KB, MB, GB)")
        }
    };
    Ok((n * mult) as usize)
}

/// Parses `500ms`, `10s`, `2m`, `1h30m`, `7d`.
pub fn parse_duration(key: &str, s: &str) -> anyhow::Result<Duration> {
    seam_server::limits::parse_duration(s).map_err(|e| anyhow!("{key}: {e}"))
}

/// Parses a listen address; a bare `:port` means all interfaces.
pub fn parse_addr(key: &str, s: &str) -> anyhow::Result<SocketAddr> {
    let s = s.trim();
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse().map_err(|_| {
        anyhow!("{key}: invalid address {s:?} (expected HOST:PORT, e.g. 127.0.0.1:3100)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_addresses() {
        assert_eq!(parse_size("k", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("k", "1GB").unwrap(), 1_000_000_000);
        assert!(parse_size("k", "12XB")
            .unwrap_err()
            .to_string()
            .contains("unknown size unit"));
        assert_eq!(
            parse_duration("k", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("k", "2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_addr("k", ":4318").unwrap().port(), 4318);
    }

    #[test]
    fn env_overrides_and_unknown_keys() {
        let mut c = FileConfig::default();
        apply_env(
            &mut c,
            [("SEAM_STORAGE__FSYNC".to_string(), "interval".to_string())].into_iter(),
        )
        .unwrap();
        assert_eq!(c.storage.fsync.as_deref(), Some("interval"));
        let e = apply_env(
            &mut c,
            [("SEAM_STORAGE__NOPE".to_string(), "1".to_string())].into_iter(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("storage.nope"));
    }

    #[test]
    fn limits_from_file_and_env() {
        let mut c: FileConfig = serde_yaml_ng::from_str(
            "loki:\n  max_line_size: 1KiB\nlimits:\n  max_query_length: 24h\n  \
             max_entries_limit_per_query: 100\n  per_tenant:\n    small:\n      \
             query_timeout: 50ms\n",
        )
        .unwrap();
        apply_env(
            &mut c,
            [("SEAM_LIMITS__MAX_QUERY_SERIES".to_string(), "7".to_string())].into_iter(),
        )
        .unwrap();
        let l = build_limits(&c).unwrap();
        let d = l.defaults();
        assert_eq!(d.max_line_size, 1024);
        assert_eq!(d.max_query_length, Duration::from_secs(24 * 3600));
        assert_eq!(d.max_entries_limit_per_query, 100);
        assert_eq!(d.max_query_series, 7);
        assert_eq!(d.query_timeout, Duration::from_secs(60));
        let small = l.for_tenant(&seam_model::Tenant::new("small").unwrap());
        assert_eq!(small.query_timeout, Duration::from_millis(50));
        assert_eq!(small.max_entries_limit_per_query, 100);
        assert_eq!(small.max_query_series, 7);

        let bad: FileConfig =
            serde_yaml_ng::from_str("limits:\n  per_tenant:\n    t:\n      max_qery_length: 1h\n")
                .unwrap();
        let e = build_limits(&bad).unwrap_err().to_string();
        assert!(e.contains("limits.per_tenant.t.max_qery_length"), "{e}");
        let e = apply_env(
            &mut c,
            [("SEAM_LIMITS__QUERY_TIMEOUT".to_string(), "soon".to_string())].into_iter(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("SEAM_LIMITS__QUERY_TIMEOUT"), "{e}");
    }

    #[test]
    fn file_errors_name_the_key() {
        let e = serde_yaml_ng::from_str::<FileConfig>("storage:\n  fsynk: always\n").unwrap_err();
        assert!(e.to_string().contains("fsynk"), "{e}");
    }
}
