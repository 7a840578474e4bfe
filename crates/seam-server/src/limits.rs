//! Per-tenant limits, as Loki's `limits_config` plus per-tenant overrides: one set of defaults,
//! and for some tenants a whole set of their own (built from the defaults and their overrides).

use std::collections::HashMap;
use std::time::Duration;

use seam_model::Tenant;
use seam_query::logql::QueryLimits;
use seam_receive::loki_push::{self, PushLimits, PushLimitsSource};

/// Every limit that applies to one tenant. The defaults are Loki's, except where Loki has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantLimits {
    /// Longest `end - start` a query may span (Loki: 721h).
    pub max_query_length: Duration,
    /// Largest `limit` a log query may ask for (Loki: 5000).
    pub max_entries_limit_per_query: usize,
    /// Most series a metric query may produce (Loki: 500).
    pub max_query_series: usize,
    /// How long a query may run before it is answered with 504 (Loki: 1m).
    pub query_timeout: Duration,
    /// Most tail WebSockets a tenant may hold open at once (Loki: 10).
    pub max_concurrent_tail_requests: usize,
    /// Most lines per second one tail connection sends; Loki has no such limit, Seam keeps a
    /// slow client from pinning a follower of a busy stream.
    pub tail_max_lines_per_second: u32,
    /// Longest pushed line, in bytes (Loki: 256KB).
    pub max_line_size: usize,
    /// Most label names a pushed stream may have (Loki: 15).
    pub max_label_names_per_stream: usize,
    /// Pushed entries older than this are refused (Loki: 168h).
    pub reject_old_samples_max_age: Duration,
    /// Pushed entries further than this in the future are refused (Loki: 10m).
    pub creation_grace_period: Duration,
}

/// Default of `tail_max_lines_per_second`.
pub const DEFAULT_TAIL_MAX_LINES_PER_SECOND: u32 = 1000;

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            max_query_length: Duration::from_secs(721 * 3600),
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            query_timeout: Duration::from_secs(60),
            max_concurrent_tail_requests: 10,
            tail_max_lines_per_second: DEFAULT_TAIL_MAX_LINES_PER_SECOND,
            max_line_size: loki_push::DEFAULT_MAX_LINE_SIZE,
            max_label_names_per_stream: loki_push::DEFAULT_MAX_LABEL_NAMES,
            reject_old_samples_max_age: loki_push::DEFAULT_MAX_AGE,
            creation_grace_period: loki_push::DEFAULT_GRACE,
        }
    }
}

impl TenantLimits {
    /// The part the Loki push receiver validates against.
    pub fn push(&self) -> PushLimits {
        PushLimits {
            max_line_size: self.max_line_size,
            max_label_names_per_stream: self.max_label_names_per_stream,
            reject_old_samples_max_age: self.reject_old_samples_max_age,
            creation_grace_period: self.creation_grace_period,
        }
    }

    /// The part the LogQL evaluator enforces, with the deadline counted from now (none when
    /// `query_timeout` is zero).
    pub fn query(&self) -> QueryLimits {
        let deadline = if self.query_timeout.is_zero() {
            None
        } else {
            std::time::Instant::now().checked_add(self.query_timeout)
        };
        self.query_until(deadline)
    }

    /// The part the LogQL evaluator enforces, giving up at `deadline`.
    pub fn query_until(&self, deadline: Option<std::time::Instant>) -> QueryLimits {
        QueryLimits {
            max_series: self.max_query_series,
            deadline,
        }
    }
}

/// The defaults and the tenants that differ from them.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    defaults: TenantLimits,
    per_tenant: HashMap<String, TenantLimits>,
}

impl Limits {
    /// Limits with `defaults` for every tenant not in `per_tenant` (keyed by tenant id).
    pub fn new(defaults: TenantLimits, per_tenant: HashMap<String, TenantLimits>) -> Limits {
        Limits {
            defaults,
            per_tenant,
        }
    }

    /// The limits of `tenant`.
    pub fn for_tenant(&self, tenant: &Tenant) -> &TenantLimits {
        self.per_tenant
            .get(tenant.as_str())
            .unwrap_or(&self.defaults)
    }

    /// The limits of tenants without overrides.
    pub fn defaults(&self) -> &TenantLimits {
        &self.defaults
    }
}

impl PushLimitsSource for Limits {
    fn push_limits(&self, tenant: &Tenant) -> PushLimits {
        self.for_tenant(tenant).push()
    }
}

/// Parses a duration as Loki's configuration writes them: Prometheus' form (`721h`, `30d1h`,
/// `1w`), Go's (`1.5h`, `250ms`, `1h30m`), or a bare number of seconds (`60`, `0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let invalid = || format!("invalid duration {s:?} (examples: 500ms, 15s, 1h30m, 7d)");
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| invalid());
    }
    let ns = seam_query::logql::units::parse_logql_duration(t).ok_or_else(invalid)?;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_to_their_tenant_only() {
        let tight = TenantLimits {
            max_entries_limit_per_query: 10,
            max_line_size: 100,
            ..TenantLimits::default()
        };
        let limits = Limits::new(
            TenantLimits::default(),
            HashMap::from([("small".to_string(), tight)]),
        );
        let small = Tenant::new("small").unwrap();
        let other = Tenant::new("other").unwrap();
        assert_eq!(limits.for_tenant(&small).max_entries_limit_per_query, 10);
        assert_eq!(limits.push_limits(&small).max_line_size, 100);
        assert_eq!(limits.for_tenant(&other).max_entries_limit_per_query, 5000);
        assert_eq!(limits.push_limits(&other).max_line_size, 256 << 10);
        assert_eq!(
            limits.defaults().max_query_length,
            Duration::from_secs(721 * 3600)
        );
    }

    #[test]
    fn durations_in_every_form() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("721h"), Duration::from_secs(721 * 3600));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("1ms"), Duration::from_millis(1));
        assert_eq!(d("1.5"), Duration::from_millis(1500));
        assert_eq!(d("7d"), Duration::from_secs(7 * 86_400));
        assert_eq!(d("60"), Duration::from_secs(60));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        for bad in ["", "h", "5x", "-1s", "1h-", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
