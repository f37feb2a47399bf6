//! Types shared by several kinds: environments, data classes, references, time conversion.

use chrono::{DateTime, Utc};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

string_enum! {
    /// A deployment environment; each has its own gateway. `prod` is reached only through an
    /// approved PromotionRequest and is never auto-deleted.
    pub enum Environment {
        /// Development.
        Dev = "dev",
        /// Staging, the usual source of a production promotion.
        Staging = "staging",
        /// Sandbox for partners.
        Sandbox = "sandbox",
        /// Demonstrations.
        Demo = "demo",
        /// Production.
        Prod = "prod",
    }
}

impl Environment {
    /// Whether this is production.
    pub const fn is_prod(&self) -> bool {
        matches!(self, Environment::Prod)
    }
}

string_enum! {
    /// Sensitivity of the data a resource handles; `restricted` is never auto-deleted.
    pub enum DataClass {
        /// Public data.
        Public = "public",
        /// Internal data.
        Internal = "internal",
        /// Confidential data.
        Confidential = "confidential",
        /// Restricted data.
        Restricted = "restricted",
    }
}

string_enum! {
    /// The outcome of a finished deployment.
    pub enum DeploymentResult {
        /// The gateway has the revision.
        Succeeded = "succeeded",
        /// The deployment failed; see its message.
        Failed = "failed",
    }
}

/// The string is not one of the known values of an enumeration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not one of {allowed}")]
pub struct UnknownValue {
    /// The rejected input.
    pub value: String,
    /// The accepted values, separated by `|`.
    pub allowed: String,
}

/// A reference to another object of this project in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the referenced object, in the same namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

impl LocalRef {
    /// A reference to `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// The CRD schema pattern of a Kubernetes object name (DNS-1123 subdomain).
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Converts a chrono time to a Kubernetes `Time` (second precision, as Kubernetes stores it).
/// Times outside the years -9999..=9999 are clamped to that range.
pub fn to_time(t: DateTime<Utc>) -> Time {
    let ts = Timestamp::from_second(t.timestamp()).unwrap_or(if t.timestamp() < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    Time(ts)
}

/// Converts a Kubernetes `Time` to a chrono time (second precision).
pub fn from_time(t: &Time) -> DateTime<Utc> {
    // jiff's range (years -9999..=9999) lies inside chrono's, so this never falls back.
    DateTime::from_timestamp(t.0.as_second(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_wire_values() {
        for &e in Environment::ALL {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
            assert_eq!(e.as_str().parse::<Environment>(), Ok(e));
            assert_eq!(e.to_string(), e.as_str());
        }
        assert!("Prod".parse::<Environment>().is_err());
        assert!(Environment::Prod.is_prod() && !Environment::Staging.is_prod());
    }

    #[test]
    fn data_class_wire_values() {
        for &d in DataClass::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
            assert_eq!(d.as_str().parse::<DataClass>(), Ok(d));
        }
        let err = "secret".parse::<DataClass>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"secret\" is not one of public|internal|confidential|restricted"
        );
    }

    #[test]
    fn time_conversion_round_trips_at_second_precision() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T07:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(from_time(&to_time(t)), t);
        assert_eq!(
            serde_json::to_value(to_time(t)).unwrap(),
            "2026-11-25T07:30:00Z"
        );
        // Out of jiff's range: clamped, no panic.
        let _ = to_time(DateTime::<Utc>::MAX_UTC);
        let _ = to_time(DateTime::<Utc>::MIN_UTC);
    }
}
