//! Tenants, named by the `X-Scope-OrgID` header as in Loki, Tempo and Mimir.

use std::fmt;
use std::sync::Arc;

/// The tenant used when a request carries no `X-Scope-OrgID`.
pub const DEFAULT_TENANT: &str = "default";

/// The longest tenant id accepted, as in Cortex/Mimir/Loki.
pub const MAX_TENANT_LEN: usize = 150;

/// A validated tenant id. It is safe to use as a directory name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

/// Why a tenant id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    /// The id was empty.
    #[error("tenant id (X-Scope-OrgID) is empty")]
    Empty,
    /// The id was longer than [`MAX_TENANT_LEN`].
    #[error("tenant id (X-Scope-OrgID) is {0} bytes, over the limit of {MAX_TENANT_LEN}")]
    TooLong(usize),
    /// The id had a character outside the allowed set.
    #[error("tenant id (X-Scope-OrgID) has unsupported character {0:?} (allowed: letters, digits and !-_.*'())")]
    BadChar(char),
    /// The id was `.` or `..`, which would name a directory.
    #[error("tenant id (X-Scope-OrgID) may not be {0:?}")]
    Reserved(String),
}

impl Tenant {
    /// Validates a tenant id with the same character rules as Cortex-style backends.
    pub fn new(id: &str) -> Result<Tenant, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Empty);
        }
        if id.len() > MAX_TENANT_LEN {
            return Err(TenantError::TooLong(id.len()));
        }
        if id == "." || id == ".." {
            return Err(TenantError::Reserved(id.to_string()));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
        {
            return Err(TenantError::BadChar(c));
        }
        Ok(Tenant(Arc::from(id)))
    }

    /// The tenant named by an `X-Scope-OrgID` header value, or the default one when absent.
    pub fn from_header(value: Option<&str>) -> Result<Tenant, TenantError> {
        match value.map(str::trim) {
            None => Ok(Tenant::default_tenant()),
            Some(v) => Tenant::new(v),
        }
    }

    /// The tenant used when none is named.
    pub fn default_tenant() -> Tenant {
        Tenant(Arc::from(DEFAULT_TENANT))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Tenant::default_tenant()
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({})", &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses_like_loki() {
        assert_eq!(Tenant::new("team-a_1").unwrap().as_str(), "team-a_1");
        assert_eq!(Tenant::new(""), Err(TenantError::Empty));
        assert_eq!(Tenant::new(".."), Err(TenantError::Reserved("..".into())));
        assert_eq!(Tenant::new("a/b"), Err(TenantError::BadChar('/')));
        assert!(matches!(
            Tenant::new(&"x".repeat(151)),
            Err(TenantError::TooLong(151))
        ));
    }
}
