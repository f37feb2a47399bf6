//! Operator configuration: a YAML file (optional) overlaid by `APIM_*` environment
//! variables, with defaults for everything. Documented in the README.
//!
//! Gateways and AWX (file keys, then the variables that override them):
//!
//! ```yaml
//! gateways:                       # one per environment; unknown keys are refused
//!   dev:
//!     url: https://gw-dev.example.com:5555      # APIM_GATEWAY_URL_DEV (adds the entry)
//!     credentialsSecret: {namespace: apim-system, name: gateway-dev}  # APIM_GATEWAY_SECRET=ns/name (all)
//!     supportsOpenapi31: false                  # APIM_GATEWAY_OPENAPI31=dev,staging
//!     timeout: 10s
//! awx:
//!   url: https://awx.example.com               # APIM_AWX_URL (adds the section)
//!   tokenSecret: {namespace: apim-system, name: awx-token}  # APIM_AWX_TOKEN_SECRET=ns/name, key `token`
//!   jobTemplates: {deployApi: apim-deploy-api, deleteApi: apim-delete-api,
//!                  application: apim-application, subscription: apim-subscription}
//!   jobTimeout: 30m                            # APIM_AWX_JOB_TIMEOUT
//! ```
//!
//! Local runs only: `APIM_GATEWAY_USERNAME` + `APIM_GATEWAY_PASSWORD` (Basic credentials of
//! every gateway without a Secret) and `APIM_AWX_TOKEN`; see [`DevCredentials`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crds::Environment;
use serde::{Deserialize, Serialize};

use crate::gateway::SecretString;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to parse configuration file {path}: {source}")]
    Parse {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Leader election on a `coordination.k8s.io/v1` Lease.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LeaderElection {
    /// Run controllers only while holding the lease (set false for a single replica).
    pub enabled: bool,
    /// Name of the Lease.
    pub lease_name: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Seconds a holder keeps the lease without renewing it; the hand-over time bound.
    pub lease_duration_seconds: u64,
    /// Seconds before expiry at which the holder renews.
    pub renew_grace_seconds: u64,
    /// Identity of this replica (default: hostname and pid).
    pub identity: Option<String>,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: true,
            lease_name: "apim-operator".into(),
            lease_namespace: "apim-system".into(),
            lease_duration_seconds: 15,
            renew_grace_seconds: 5,
            identity: None,
        }
    }
}

/// Settings shared by every controller.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Controllers {
    /// Reconciles running at once, per kind.
    pub concurrency: u16,
    /// Periodic re-read of converged objects (drift detection), e.g. `10m`.
    #[serde(with = "humantime_serde_compat")]
    pub resync_interval: Duration,
    /// Only watch this namespace (default: all).
    pub watch_namespace: Option<String>,
    /// Client-side limit of requests to the API server, per second on average.
    pub api_qps: u32,
    /// Requests to the API server allowed at once above `apiQps` (the window holds
    /// `apiBurst` requests per `apiBurst / apiQps` seconds).
    pub api_burst: u32,
    /// Kubernetes Events written per second at most, once `eventBurst` are spent: Events are
    /// informational, and a mass deployment must not delay status writes with as many Events.
    pub event_qps: u32,
    /// Kubernetes Events written at once before `eventQps` applies.
    pub event_burst: u32,
}

impl Default for Controllers {
    fn default() -> Self {
        Controllers {
            concurrency: 16,
            resync_interval: Duration::from_secs(600),
            watch_namespace: None,
            api_qps: 500,
            api_burst: 1000,
            event_qps: 50,
            event_burst: 100,
        }
    }
}

/// A Secret in a given namespace (the operator reads it; it may live outside the tenants).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
}

impl SecretRef {
    /// Parses `namespace/name`.
    pub fn parse(text: &str) -> Option<SecretRef> {
        let (namespace, name) = text.split_once('/')?;
        (!namespace.is_empty() && !name.is_empty() && !name.contains('/')).then(|| SecretRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The webMethods API Gateway of one environment (`gateways.<env>`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySettings {
    /// Base URL of the gateway, without `/rest/apigateway` (e.g. `https://gw-dev.example.com:5555`,
    /// or `http://127.0.0.1:5555/gateways/dev` for the simulator). Env: `APIM_GATEWAY_URL_<ENV>`.
    pub url: String,
    /// Secret holding the admin credentials: keys `username` and `password`, or `token`.
    /// Required unless inline development credentials are given (`APIM_GATEWAY_USERNAME` /
    /// `APIM_GATEWAY_PASSWORD`). Env: `APIM_GATEWAY_SECRET` (`namespace/name`, every gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<SecretRef>,
    /// Whether this gateway accepts OpenAPI 3.1 documents (10.15 does not: 3.1 documents are
    /// converted to 3.0.3 first). Default false. Env: `APIM_GATEWAY_OPENAPI31=dev,staging`.
    #[serde(default)]
    pub supports_openapi31: bool,
    /// Timeout of one HTTP request to the gateway, e.g. `10s` (default).
    #[serde(default = "default_gateway_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
}

fn default_gateway_timeout() -> Duration {
    Duration::from_secs(10)
}

/// AWX job template names (`awx.jobTemplates`), in organization `Default`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct JobTemplates {
    /// Deploys an API (`deploy-api.yaml`). Default `apim-deploy-api`.
    pub deploy_api: String,
    /// Deletes an API (`delete-api.yaml`). Default `apim-delete-api`.
    pub delete_api: String,
    /// Creates, updates or deletes an application (`application.yaml`). Default `apim-application`.
    pub application: String,
    /// Adds or removes a subscription (`subscription.yaml`). Default `apim-subscription`.
    pub subscription: String,
}

impl Default for JobTemplates {
    fn default() -> Self {
        JobTemplates {
            deploy_api: "apim-deploy-api".into(),
            delete_api: "apim-delete-api".into(),
            application: "apim-application".into(),
            subscription: "apim-subscription".into(),
        }
    }
}

/// AWX, used by the `awx` driver (`awx`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwxSettings {
    /// Base URL of AWX, without `/api/v2` (e.g. `https://awx.example.com`). Env: `APIM_AWX_URL`.
    pub url: String,
    /// Secret holding the AWX OAuth2 token under key `token`. Required unless the inline
    /// development token `APIM_AWX_TOKEN` is set. Env: `APIM_AWX_TOKEN_SECRET` (`namespace/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<SecretRef>,
    /// Names of the job templates.
    #[serde(default)]
    pub job_templates: JobTemplates,
    /// How long a job may run before it is canceled and the deployment fails, e.g. `30m`
    /// (default). Env: `APIM_AWX_JOB_TIMEOUT`.
    #[serde(default = "default_job_timeout", with = "humantime_serde_compat")]
    pub job_timeout: Duration,
}

fn default_job_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

/// Credentials given inline through the environment, for local runs only. Never read from
/// the file, never serialized, never printed (`Debug` shows `<redacted>`).
///
/// Trade-off: no Secret to create, which is handy for the lab and a laptop; but the values sit
/// in the process environment (readable in `/proc/<pid>/environ` and in any manifest that sets
/// them), they are not rotated (a change needs a restart), and they apply to every gateway
/// that has no `credentialsSecret`. In a cluster, use Secrets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DevCredentials {
    /// `APIM_GATEWAY_USERNAME` + `APIM_GATEWAY_PASSWORD`: Basic credentials of every gateway
    /// that has no `credentialsSecret`.
    pub gateway: Option<(String, SecretString)>,
    /// `APIM_AWX_TOKEN`: the AWX token when `awx.tokenSecret` is not set.
    pub awx_token: Option<SecretString>,
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Config {
    /// Address of the `/healthz`, `/readyz` and `/metrics` server.
    pub listen: SocketAddr,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax (`RUST_LOG` wins when set).
    pub log_level: String,
    /// Leader election.
    pub leader_election: LeaderElection,
    /// Controller settings.
    pub controllers: Controllers,
    /// The gateway of each environment, e.g. `gateways: {dev: {url: ..., credentialsSecret:
    /// {namespace: apim-system, name: gateway-dev}}}`. An environment without a gateway is
    /// reported on the Api (`Deployed=False`, reason `GatewayNotConfigured`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gateways: BTreeMap<Environment, GatewaySettings>,
    /// AWX, for the `awx` driver (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awx: Option<AwxSettings>,
    /// The event pipeline (Kafka / Redpanda): brokers, TLS, SASL, producer, topics.
    pub events: crate::events::EventsConfig,
    /// Inline development credentials from the environment (never from the file).
    #[serde(skip)]
    pub dev_credentials: DevCredentials,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            log_format: LogFormat::Text,
            log_level: "info,kube_lease_manager=warn".into(),
            leader_election: LeaderElection::default(),
            controllers: Controllers::default(),
            gateways: BTreeMap::new(),
            awx: None,
            events: crate::events::EventsConfig::default(),
            dev_credentials: DevCredentials::default(),
        }
    }
}

impl Config {
    /// Loads the file (when given), then applies the environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, |k| std::env::var(k).ok())
    }

    /// [`Config::load`] with an injectable environment, for tests.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: shown.clone(),
                    source,
                })?;
                if text.trim().is_empty() {
                    Config::default()
                } else {
                    serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
                        path: shown,
                        source,
                    })?
                }
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                var,
                value,
                reason: e.to_string(),
            })
        }
        if let Some(v) = env("APIM_LISTEN") {
            self.listen = parse("APIM_LISTEN", v)?;
        }
        if let Some(v) = env("APIM_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        var: "APIM_LOG_FORMAT",
                        value: v,
                        reason: "expected text or json".into(),
                    });
                }
            };
        }
        if let Some(v) = env("APIM_LOG_LEVEL") {
            self.log_level = v;
        }
        let le = &mut self.leader_election;
        if let Some(v) = env("APIM_LEADER_ELECTION") {
            le.enabled = parse("APIM_LEADER_ELECTION", v)?;
        }
        if let Some(v) = env("APIM_LEASE_NAME") {
            le.lease_name = v;
        }
        if let Some(v) = env("APIM_LEASE_NAMESPACE") {
            le.lease_namespace = v;
        }
        if let Some(v) = env("APIM_LEASE_DURATION_SECONDS") {
            le.lease_duration_seconds = parse("APIM_LEASE_DURATION_SECONDS", v)?;
        }
        if let Some(v) = env("APIM_IDENTITY") {
            le.identity = Some(v);
        }
        let c = &mut self.controllers;
        if let Some(v) = env("APIM_CONCURRENCY") {
            c.concurrency = parse("APIM_CONCURRENCY", v)?;
        }
        if let Some(v) = env("APIM_API_QPS") {
            c.api_qps = parse("APIM_API_QPS", v)?;
        }
        if let Some(v) = env("APIM_EVENT_QPS") {
            c.event_qps = parse("APIM_EVENT_QPS", v)?;
        }
        if let Some(v) = env("APIM_EVENT_BURST") {
            c.event_burst = parse("APIM_EVENT_BURST", v)?;
        }
        if let Some(v) = env("APIM_API_BURST") {
            c.api_burst = parse("APIM_API_BURST", v)?;
        }
        if let Some(v) = env("APIM_RESYNC_INTERVAL") {
            c.resync_interval = humantime::parse_duration(&v).map_err(|e| ConfigError::Env {
                var: "APIM_RESYNC_INTERVAL",
                value: v.clone(),
                reason: e.to_string(),
            })?;
        }
        if let Some(v) = env("APIM_WATCH_NAMESPACE") {
            c.watch_namespace = Some(v).filter(|s| !s.is_empty());
        }
        self.apply_gateway_env(&env)?;
        self.apply_awx_env(&env)?;
        Ok(())
    }

    fn apply_gateway_env(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for &e in Environment::ALL {
            let var = gateway_url_var(e);
            if let Some(url) = env(var).filter(|v| !v.is_empty()) {
                match self.gateways.get_mut(&e) {
                    Some(g) => g.url = url,
                    None => {
                        self.gateways.insert(
                            e,
                            GatewaySettings {
                                url,
                                credentials_secret: None,
                                supports_openapi31: false,
                                timeout: default_gateway_timeout(),
                            },
                        );
                    }
                }
            }
        }
        if let Some(v) = env("APIM_GATEWAY_SECRET") {
            let secret = SecretRef::parse(&v).ok_or_else(|| ConfigError::Env {
                var: "APIM_GATEWAY_SECRET",
                value: v.clone(),
                reason: "expected namespace/name".into(),
            })?;
            for g in self.gateways.values_mut() {
                g.credentials_secret = Some(secret.clone());
            }
        }
        if let Some(v) = env("APIM_GATEWAY_OPENAPI31") {
            for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let e: Environment =
                    name.parse()
                        .map_err(|err: crds::common::UnknownValue| ConfigError::Env {
                            var: "APIM_GATEWAY_OPENAPI31",
                            value: v.clone(),
                            reason: err.to_string(),
                        })?;
                if let Some(g) = self.gateways.get_mut(&e) {
                    g.supports_openapi31 = true;
                }
            }
        }
        match (env("APIM_GATEWAY_USERNAME"), env("APIM_GATEWAY_PASSWORD")) {
            (Some(user), Some(password)) => {
                self.dev_credentials.gateway = Some((user, SecretString::new(password)));
            }
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Env {
                    var: "APIM_GATEWAY_USERNAME",
                    value: "<hidden>".into(),
                    reason: "APIM_GATEWAY_USERNAME and APIM_GATEWAY_PASSWORD must be set together"
                        .into(),
                });
            }
        }
        Ok(())
    }

    fn apply_awx_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(url) = env("APIM_AWX_URL").filter(|v| !v.is_empty()) {
            match &mut self.awx {
                Some(awx) => awx.url = url,
                None => {
                    self.awx = Some(AwxSettings {
                        url,
                        token_secret: None,
                        job_templates: JobTemplates::default(),
                        job_timeout: default_job_timeout(),
                    });
                }
            }
        }
        if let Some(v) = env("APIM_AWX_TOKEN_SECRET") {
            let secret = SecretRef::parse(&v).ok_or_else(|| ConfigError::Env {
                var: "APIM_AWX_TOKEN_SECRET",
                value: v.clone(),
                reason: "expected namespace/name".into(),
            })?;
            if let Some(awx) = &mut self.awx {
                awx.token_secret = Some(secret);
            }
        }
        if let Some(v) = env("APIM_AWX_JOB_TIMEOUT") {
            let timeout = humantime::parse_duration(&v).map_err(|e| ConfigError::Env {
                var: "APIM_AWX_JOB_TIMEOUT",
                value: v.clone(),
                reason: e.to_string(),
            })?;
            if let Some(awx) = &mut self.awx {
                awx.job_timeout = timeout;
            }
        }
        if let Some(token) = env("APIM_AWX_TOKEN").filter(|v| !v.is_empty()) {
            self.dev_credentials.awx_token = Some(SecretString::new(token));
        }
        self.events
            .apply_env(env)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.events.enabled {
            self.events
                .validate()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        let le = &self.leader_election;
        if le.enabled && le.renew_grace_seconds >= le.lease_duration_seconds {
            return Err(ConfigError::Invalid(format!(
                "leaderElection.renewGraceSeconds ({}) must be less than leaseDurationSeconds ({})",
                le.renew_grace_seconds, le.lease_duration_seconds
            )));
        }
        if self.controllers.api_qps == 0 || self.controllers.api_burst == 0 {
            return Err(ConfigError::Invalid(
                "controllers.apiQps and controllers.apiBurst must be at least 1".into(),
            ));
        }
        if self.controllers.event_qps == 0 || self.controllers.event_burst == 0 {
            return Err(ConfigError::Invalid(
                "controllers.eventQps and controllers.eventBurst must be at least 1".into(),
            ));
        }
        if self.controllers.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "controllers.concurrency must be at least 1".into(),
            ));
        }
        if self.controllers.resync_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "controllers.resyncInterval must be at least 1s".into(),
            ));
        }
        for (env, g) in &self.gateways {
            let url = url::Url::parse(&g.url).map_err(|e| {
                ConfigError::Invalid(format!("gateways.{env}.url {:?} is not a URL: {e}", g.url))
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid(format!(
                    "gateways.{env}.url must be http or https"
                )));
            }
            if g.credentials_secret.is_none() && self.dev_credentials.gateway.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "gateways.{env} needs credentialsSecret (or, for local runs only, APIM_GATEWAY_USERNAME and APIM_GATEWAY_PASSWORD)"
                )));
            }
            if g.timeout.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "gateways.{env}.timeout must be positive"
                )));
            }
        }
        if let Some(awx) = &self.awx {
            url::Url::parse(&awx.url).map_err(|e| {
                ConfigError::Invalid(format!("awx.url {:?} is not a URL: {e}", awx.url))
            })?;
            if awx.token_secret.is_none() && self.dev_credentials.awx_token.is_none() {
                return Err(ConfigError::Invalid(
                    "awx needs tokenSecret (or, for local runs only, APIM_AWX_TOKEN)".into(),
                ));
            }
        }
        Ok(())
    }

    /// This replica's identity for leader election.
    pub fn identity(&self) -> String {
        self.leader_election.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|s| s.trim().to_string())
                })
                .unwrap_or_else(|| "apim-operator".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// The variable overriding the gateway URL of `env`: `APIM_GATEWAY_URL_DEV`, ….
pub fn gateway_url_var(env: Environment) -> &'static str {
    match env {
        Environment::Dev => "APIM_GATEWAY_URL_DEV",
        Environment::Staging => "APIM_GATEWAY_URL_STAGING",
        Environment::Sandbox => "APIM_GATEWAY_URL_SANDBOX",
        Environment::Demo => "APIM_GATEWAY_URL_DEMO",
        Environment::Prod => "APIM_GATEWAY_URL_PROD",
    }
}

/// Serde of `Duration` as a humantime string (`10m`, `30s`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load_with_env(None, env(&[])).expect("defaults");
        assert_eq!(c, Config::default());
        assert_eq!(c.controllers.resync_interval, Duration::from_secs(600));
    }

    #[test]
    fn file_then_env_override() {
        let mut f = tempfile();
        writeln!(f.1, "listen: 127.0.0.1:9999\ncontrollers:\n  resyncInterval: 2m\n  concurrency: 4\nleaderElection:\n  leaseName: x").expect("write");
        let c = Config::load_with_env(
            Some(&f.0),
            env(&[("APIM_CONCURRENCY", "7"), ("APIM_LOG_FORMAT", "json")]),
        )
        .expect("load");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.controllers.resync_interval, Duration::from_secs(120));
        assert_eq!(c.controllers.concurrency, 7);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.leader_election.lease_name, "x");
        assert_eq!(c.leader_election.lease_namespace, "apim-system");
        let _ = std::fs::remove_file(&f.0);
        f.0.clear();
    }

    #[test]
    fn errors_name_the_culprit() {
        let e = Config::load_with_env(None, env(&[("APIM_CONCURRENCY", "many")])).expect_err("bad");
        assert!(e.to_string().contains("APIM_CONCURRENCY"), "{e}");
        let e = Config::load_with_env(None, env(&[("APIM_CONCURRENCY", "0")])).expect_err("zero");
        assert!(e.to_string().contains("controllers.concurrency"), "{e}");
        let mut f = tempfile();
        writeln!(f.1, "colour: blue").expect("write");
        let e = Config::load_with_env(Some(&f.0), env(&[])).expect_err("unknown field");
        assert!(e.to_string().contains("colour"), "{e}");
        let _ = std::fs::remove_file(&f.0);
        f.0.clear();
    }

    #[test]
    fn gateways_and_awx_from_file_and_env() {
        let mut f = tempfile();
        writeln!(
            f.1,
            "gateways:\n  dev:\n    url: http://gw-dev:5555\n    credentialsSecret: {{namespace: apim-system, name: gw-dev}}\n    supportsOpenapi31: true\n    timeout: 3s\nawx:\n  url: http://awx\n  tokenSecret: {{namespace: apim-system, name: awx}}\n  jobTemplates: {{deployApi: my-deploy}}"
        )
        .expect("write");
        let c = Config::load_with_env(
            Some(&f.0),
            env(&[
                (
                    "APIM_GATEWAY_URL_STAGING",
                    "http://127.0.0.1:5555/gateways/staging",
                ),
                ("APIM_GATEWAY_USERNAME", "u"),
                ("APIM_GATEWAY_PASSWORD", "p"),
            ]),
        )
        .expect("load");
        let dev = &c.gateways[&Environment::Dev];
        assert_eq!(dev.url, "http://gw-dev:5555");
        assert!(dev.supports_openapi31);
        assert_eq!(dev.timeout, Duration::from_secs(3));
        assert_eq!(
            dev.credentials_secret,
            SecretRef::parse("apim-system/gw-dev")
        );
        let staging = &c.gateways[&Environment::Staging];
        assert_eq!(staging.url, "http://127.0.0.1:5555/gateways/staging");
        assert!(!staging.supports_openapi31 && staging.credentials_secret.is_none());
        let awx = c.awx.as_ref().expect("awx");
        assert_eq!(awx.job_templates.deploy_api, "my-deploy");
        assert_eq!(awx.job_templates.delete_api, "apim-delete-api");
        assert_eq!(awx.job_timeout, Duration::from_secs(1800));
        // Inline credentials are never printed.
        assert!(!format!("{c:?}").contains("\"p\""), "{c:?}");
        let _ = std::fs::remove_file(&f.0);
        f.0.clear();
    }

    #[test]
    fn gateway_settings_are_checked() {
        let e = Config::load_with_env(None, env(&[("APIM_GATEWAY_URL_DEV", "http://gw")]))
            .expect_err("no credentials");
        assert!(e.to_string().contains("credentialsSecret"), "{e}");
        let e = Config::load_with_env(
            None,
            env(&[
                ("APIM_GATEWAY_URL_DEV", "ftp://gw"),
                ("APIM_GATEWAY_SECRET", "ns/s"),
            ]),
        )
        .expect_err("scheme");
        assert!(e.to_string().contains("gateways.dev.url"), "{e}");
        let e = Config::load_with_env(None, env(&[("APIM_GATEWAY_SECRET", "nope")]))
            .expect_err("secret ref");
        assert!(e.to_string().contains("APIM_GATEWAY_SECRET"), "{e}");
        let e =
            Config::load_with_env(None, env(&[("APIM_GATEWAY_USERNAME", "u")])).expect_err("half");
        assert!(e.to_string().contains("together"), "{e}");
        let e = Config::load_with_env(None, env(&[("APIM_AWX_URL", "http://awx")]))
            .expect_err("awx token");
        assert!(e.to_string().contains("tokenSecret"), "{e}");
        let mut f = tempfile();
        writeln!(
            f.1,
            "gateways:\n  dev:\n    url: http://gw\n    colour: blue"
        )
        .expect("write");
        let e = Config::load_with_env(Some(&f.0), env(&[])).expect_err("unknown key");
        assert!(e.to_string().contains("colour"), "{e}");
        let _ = std::fs::remove_file(&f.0);
        f.0.clear();
        let ok = Config::load_with_env(
            None,
            env(&[
                ("APIM_GATEWAY_URL_DEV", "http://gw"),
                ("APIM_GATEWAY_SECRET", "ns/s"),
                ("APIM_GATEWAY_OPENAPI31", "dev"),
            ]),
        )
        .expect("ok");
        assert!(ok.gateways[&Environment::Dev].supports_openapi31);
    }

    fn tempfile() -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!(
            "apim-config-{}-{}.yaml",
            std::process::id(),
            rand::random::<u64>()
        ));
        let file = std::fs::File::create(&path).expect("create temp file");
        (path, file)
    }
}
