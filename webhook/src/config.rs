//! Webhook configuration: enforcement mode per rule set, the role matrix and the operator's
//! identity. Read once at start from a YAML file (`--config`); every field has a default, so
//! an empty file (or none) gives the documented behaviour.
//!
//! ```yaml
//! enforcement:            # enforce (deny) | warn (admit with warnings) | audit (admit, count, log)
//!   tags: enforce         # mandatory tags on the five APIM kinds
//!   workloadTags: enforce # the same tags on opted-in Namespaces and workloads
//!   promotion: enforce    # PromotionRequest: requester, decision, role matrix, status writers
//!   stages: enforce       # Api.spec.stages never lists prod
//! tenants:                # optional per-tenant override of the group convention
//!   tenant-finance:
//!     devops: ["apim:tenant-finance:devops"]
//!     cpi: ["apim:tenant-finance:cpi"]
//! devopsGroupPattern: "apim:{tenant}:devops"
//! cpiGroupPattern: "apim:{tenant}:cpi"
//! cpiAdmin: ["apim:cpi-admin"]
//! requestCreatorGroups: ["system:masters"]
//! serviceAccountPrefixes: ["system:serviceaccount:"]
//! serviceAccountGroups: ["apim:gitops", "system:serviceaccounts"]
//! operator:
//!   usernames: ["apim-operator", "system:serviceaccount:apim-system:apim-operator"]
//!   groups: ["system:serviceaccounts:apim-system"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {path}: {source}")]
    Read {
        /// Path of the file.
        path: String,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("failed to parse config file {path}: {source}")]
    Parse {
        /// Path of the file.
        path: String,
        /// Underlying YAML error.
        source: serde_yaml::Error,
    },
    /// A value is syntactically fine but unusable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// What a rule set does with the violations it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny the request.
    #[default]
    Enforce,
    /// Admit it, with admission warnings (kubectl prints them).
    Warn,
    /// Admit it silently; count and log the violation.
    Audit,
}

impl Mode {
    /// Stable lowercase name, used in metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

/// Enforcement mode of each rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Enforcement {
    /// Mandatory tags on the APIM kinds.
    pub tags: Mode,
    /// Mandatory tags on opted-in Namespaces and workloads.
    pub workload_tags: Mode,
    /// PromotionRequest rules (requester, decision, role matrix, status writers).
    pub promotion: Mode,
    /// `Api.spec.stages` never contains prod.
    pub stages: Mode,
}

/// Groups of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TenantGroups {
    /// Groups whose members may create PromotionRequests in the tenant (not approve).
    pub devops: Vec<String>,
    /// Groups whose members may decide (approve or reject) the tenant's PromotionRequests.
    pub cpi: Vec<String>,
}

/// The operator's identity: the only one allowed to write `status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorIdentity {
    /// Usernames of the operator.
    pub usernames: Vec<String>,
    /// Groups of the operator (any member counts as the operator).
    pub groups: Vec<String>,
}

impl Default for OperatorIdentity {
    fn default() -> Self {
        Self {
            usernames: vec![
                "apim-operator".to_owned(),
                "system:serviceaccount:apim-system:apim-operator".to_owned(),
            ],
            groups: vec!["system:serviceaccounts:apim-system".to_owned()],
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Enforcement mode of each rule set.
    pub enforcement: Enforcement,
    /// Explicit groups per tenant (namespace); tenants not listed use the patterns below.
    pub tenants: BTreeMap<String, TenantGroups>,
    /// Convention for a tenant's DevOps group; `{tenant}` is the namespace.
    pub devops_group_pattern: String,
    /// Convention for a tenant's CPI (approver) group; `{tenant}` is the namespace.
    pub cpi_group_pattern: String,
    /// Groups that may decide any tenant's PromotionRequests.
    pub cpi_admin: Vec<String>,
    /// Further groups allowed to create PromotionRequests in any tenant (never to approve).
    pub request_creator_groups: Vec<String>,
    /// Username prefixes of service accounts (they may create requests, never decide).
    pub service_account_prefixes: Vec<String>,
    /// Groups of service-account-like users such as Argo CD (create, never decide).
    pub service_account_groups: Vec<String>,
    /// The operator's identity.
    pub operator: OperatorIdentity,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enforcement: Enforcement::default(),
            tenants: BTreeMap::new(),
            devops_group_pattern: "apim:{tenant}:devops".to_owned(),
            cpi_group_pattern: "apim:{tenant}:cpi".to_owned(),
            cpi_admin: vec!["apim:cpi-admin".to_owned()],
            request_creator_groups: vec!["system:masters".to_owned()],
            service_account_prefixes: vec!["system:serviceaccount:".to_owned()],
            service_account_groups: vec![
                "apim:gitops".to_owned(),
                "system:serviceaccounts".to_owned(),
            ],
            operator: OperatorIdentity::default(),
        }
    }
}

impl Config {
    /// Parses configuration from YAML text and checks it.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        // An empty document is "all defaults".
        let cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str(text).map_err(|source| ConfigError::Parse {
                path: origin.to_owned(),
                source,
            })?
        };
        for (name, pattern) in [
            ("devopsGroupPattern", &cfg.devops_group_pattern),
            ("cpiGroupPattern", &cfg.cpi_group_pattern),
        ] {
            if !pattern.contains("{tenant}") {
                return Err(ConfigError::Invalid(format!(
                    "{name} must contain the placeholder {{tenant}}, e.g. \"apim:{{tenant}}:cpi\""
                )));
            }
        }
        Ok(cfg)
    }

    /// Reads the configuration file; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: origin.clone(),
            source,
        })?;
        Self::from_yaml(&text, &origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let cfg = Config::from_yaml("", "test").unwrap();
        assert_eq!(cfg, Config::default());
        assert_eq!(cfg.enforcement.tags, Mode::Enforce);
    }

    #[test]
    fn parses_modes_and_tenants() {
        let cfg = Config::from_yaml(
            r#"
enforcement: {tags: warn, workloadTags: audit}
tenants:
  tenant-finance: {devops: ["g:dev"], cpi: ["g:cpi"]}
cpiAdmin: ["boss"]
serviceAccountGroups: ["apim:service-accounts"]
operator: {usernames: ["op"], groups: []}
"#,
            "test",
        )
        .unwrap();
        assert_eq!(cfg.enforcement.tags, Mode::Warn);
        assert_eq!(cfg.enforcement.workload_tags, Mode::Audit);
        assert_eq!(cfg.enforcement.promotion, Mode::Enforce);
        assert_eq!(cfg.tenants["tenant-finance"].cpi, vec!["g:cpi"]);
        assert_eq!(cfg.cpi_admin, vec!["boss"]);
        assert_eq!(cfg.operator.usernames, vec!["op"]);
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        assert!(Config::from_yaml("enforcment: {}", "t").is_err());
        assert!(Config::from_yaml("enforcement: {tags: maybe}", "t").is_err());
        assert!(Config::from_yaml("cpiGroupPattern: fixed", "t").is_err());
    }
}
