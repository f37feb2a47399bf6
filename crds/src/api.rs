//! `Api`: the desired state of one API on the gateways of its environments.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    common::{DeploymentResult, Environment},
    outbox::PendingEvent,
};

/// The message of the CEL rule that keeps `prod` out of `spec.stages`.
pub const PROD_IN_STAGES_MESSAGE: &str = "prod cannot be listed in spec.stages: production is reached only through an approved PromotionRequest";

/// Desired state of one API on the gateway: its definition, policies, aliases, and the
/// environments it is deployed to without approval.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apim.cab-i.com",
    version = "v1alpha1",
    kind = "Api",
    plural = "apis",
    singular = "api",
    namespaced,
    status = "ApiStatus",
    derive = "PartialEq",
    shortname = "apimapi",
    category = "apim",
    doc = "An API published on the webMethods API Gateway of each of its stages. Production is reached only through an approved PromotionRequest.",
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version","description":"The API's own version"}"#,
    printcolumn = r#"{"name":"Stages","type":"string","jsonPath":".spec.stages","description":"Environments deployed without approval"}"#,
    printcolumn = r#"{"name":"Deployed","type":"string","jsonPath":".status.readyStages","description":"Stages running the desired revision / stages"}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status","description":"Spec and mandatory tags are valid"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Driver","type":"string","jsonPath":".spec.driver","priority":1}"#,
    printcolumn = r#"{"name":"Revision","type":"string","jsonPath":".status.revision","priority":1}"#,
    printcolumn = r#"{"name":"Owed","type":"integer","jsonPath":".status.owedEvents","description":"Events not yet acknowledged by the broker"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    /// Human-readable name of the API on the gateway (its `apiName`).
    #[schemars(length(min = 1, max = 128))]
    pub display_name: String,

    /// The API's own version string (the gateway's `apiVersion`), e.g. `1.4.0`.
    #[schemars(length(min = 1, max = 64))]
    pub version: String,

    /// What the API offers, shown on the gateway and the developer portal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,

    /// Absolute http(s) URL of the backend service the gateway routes to.
    #[schemars(url, length(min = 1, max = 2048))]
    #[x_kube(validation = ::kube::core::Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https']").message("backendUrl must be an absolute http or https URL, e.g. https://payments.internal.example.com/v1"))]
    pub backend_url: String,

    /// The OpenAPI (3.0 or 3.1) or Swagger 2.0 document of the API: exactly one of `inline`,
    /// `configMapRef` or `url`. OpenAPI 3.1 is converted to 3.0 for gateways that lack 3.1.
    pub definition: ApiDefinition,

    /// Gateway policies enforced on every call.
    #[serde(default)]
    pub policies: Policies,

    /// Aliases: named values (endpoints, simple values) resolved per environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ::kube::core::ListMerge::Map(vec!["name".into()]))]
    pub aliases: Vec<Alias>,

    /// Whether the API is activated on the gateway (serves traffic). `false` keeps it
    /// deployed but deactivated.
    #[serde(default = "default_true")]
    pub active: bool,

    /// Environments the API is deployed to without approval, e.g. `[dev, staging]`. `prod`
    /// cannot be listed: production is reached only through an approved PromotionRequest.
    #[schemars(length(min = 1, max = 4))]
    #[x_kube(
        merge_strategy = ::kube::core::ListMerge::Set,
        validation = ::kube::core::Rule::new("!self.exists(s, s == 'prod')").message(PROD_IN_STAGES_MESSAGE)
    )]
    pub stages: Vec<Environment>,

    /// How the API reaches a gateway: `direct` (REST admin API), `awx` (an AWX job template)
    /// or `queued` (a deploy request on Kafka consumed by AWX workers).
    #[serde(default)]
    pub driver: Driver,

    /// Per-environment exceptions to `driver`, e.g. `{prod: awx}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_overrides: BTreeMap<Environment, Driver>,

    /// What to do when the gateway differs from this spec: `correct` re-aligns it, `report`
    /// only sets the `Drifted` condition.
    #[serde(default)]
    pub drift_policy: DriftPolicy,
}

fn default_true() -> bool {
    true
}

impl ApiSpec {
    /// The driver used for `env`: the override if any, else `driver`.
    pub fn driver_for(&self, env: Environment) -> Driver {
        self.driver_overrides
            .get(&env)
            .copied()
            .unwrap_or(self.driver)
    }

    /// Whether `env` is one of the stages deployed without approval.
    pub fn has_stage(&self, env: Environment) -> bool {
        self.stages.contains(&env)
    }
}

impl Api {
    /// `"<stages whose deployed revision is the desired revision>/<stages>"`, the value of
    /// `status.readyStages`, computed from the spec and the current status.
    pub fn ready_stages(&self) -> String {
        let ready = match &self.status {
            Some(status) => self
                .spec
                .stages
                .iter()
                .filter(|env| status.is_deployed(**env))
                .count(),
            None => 0,
        };
        format!("{ready}/{}", self.spec.stages.len())
    }
}

/// Where the API definition comes from. Exactly one field is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = ::kube::core::Rule::new("(has(self.inline) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) + (has(self.url) ? 1 : 0) == 1").message("definition must set exactly one of inline, configMapRef or url"))]
pub struct ApiDefinition {
    /// The document itself (YAML or JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1048576))]
    pub inline: Option<String>,

    /// A key of a ConfigMap in the Api's namespace holding the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,

    /// An http(s) URL the operator downloads the document from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url, length(min = 1, max = 2048))]
    #[x_kube(validation = ::kube::core::Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https']").message("definition.url must be an absolute http or https URL"))]
    pub url: Option<String>,
}

/// The source of an API definition, borrowed from [`ApiDefinition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefinitionSource<'a> {
    /// The document inline.
    Inline(&'a str),
    /// A ConfigMap key.
    ConfigMap(&'a ConfigMapKeyRef),
    /// A URL.
    Url(&'a str),
}

/// The definition does not set exactly one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("definition must set exactly one of inline, configMapRef or url ({set} set)")]
pub struct DefinitionSourceError {
    /// How many sources are set (0, 2 or 3).
    pub set: usize,
}

impl ApiDefinition {
    /// The one source, or an error when none or several are set (the CRD's CEL rule refuses
    /// such objects, so the error only concerns objects that bypassed it).
    pub fn source(&self) -> Result<DefinitionSource<'_>, DefinitionSourceError> {
        match (&self.inline, &self.config_map_ref, &self.url) {
            (Some(doc), None, None) => Ok(DefinitionSource::Inline(doc)),
            (None, Some(r), None) => Ok(DefinitionSource::ConfigMap(r)),
            (None, None, Some(u)) => Ok(DefinitionSource::Url(u)),
            _ => Err(DefinitionSourceError {
                set: usize::from(self.inline.is_some())
                    + usize::from(self.config_map_ref.is_some())
                    + usize::from(self.url.is_some()),
            }),
        }
    }
}

/// A key of a ConfigMap in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::common::DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// Key of the document in the ConfigMap's `data`, e.g. `openapi.yaml`.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Gateway policies.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policies {
    /// How callers authenticate: `none`, `apiKey`, `oauth2` or `basic`.
    #[serde(default)]
    pub authentication: Authentication,
    /// Requests allowed per caller and period; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// A rate limit: `requests` per `period`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Requests allowed per period (at least 1).
    #[schemars(range(min = 1, max = 1_000_000_000))]
    pub requests: i32,
    /// The period: `second`, `minute` or `hour`.
    pub period: RateLimitPeriod,
}

/// A named value resolved per environment, referenced from the API definition.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    /// Name of the alias on the gateway (unique within the Api).
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")
    )]
    pub name: String,
    /// `endpoint` (a backend URL) or `simple` (a plain value).
    #[serde(rename = "type", default)]
    pub type_: AliasType,
    /// The value per environment, e.g. `{dev: https://payments.dev.internal}`.
    #[schemars(extend("minProperties" = 1))]
    pub values: BTreeMap<Environment, String>,
}

string_enum! {
    /// How callers authenticate.
    #[derive(Default)]
    pub enum Authentication {
        /// No authentication.
        None = "none",
        /// An API key header.
        #[default]
        ApiKey = "apiKey",
        /// OAuth2 bearer tokens.
        Oauth2 = "oauth2",
        /// HTTP Basic.
        Basic = "basic",
    }
}

string_enum! {
    /// The period of a rate limit.
    pub enum RateLimitPeriod {
        /// Per second.
        Second = "second",
        /// Per minute.
        Minute = "minute",
        /// Per hour.
        Hour = "hour",
    }
}

string_enum! {
    /// The kind of an alias.
    #[derive(Default)]
    pub enum AliasType {
        /// An endpoint alias (a backend URL).
        #[default]
        Endpoint = "endpoint",
        /// A simple value.
        Simple = "simple",
    }
}

string_enum! {
    /// How a deployment reaches a gateway.
    #[derive(Default)]
    pub enum Driver {
        /// The gateway's REST admin API, directly.
        #[default]
        Direct = "direct",
        /// An AWX job template running our Ansible playbooks.
        Awx = "awx",
        /// A deploy request on Kafka, consumed by a pool of AWX workers.
        Queued = "queued",
    }
}

string_enum! {
    /// What to do about drift between the gateway and the spec.
    #[derive(Default)]
    pub enum DriftPolicy {
        /// Re-align the gateway.
        #[default]
        Correct = "correct",
        /// Only report it (condition `Drifted`).
        Report = "report",
    }
}

/// Observed state of an Api.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions: `Ready`, `Deployed`, `Drifted`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ::kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Stable hash of what the current spec puts on a gateway (the desired revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,

    /// State per environment the API is deployed to (stages and, after promotion, prod).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<Environment, EnvironmentStatus>,

    /// The OpenAPI conversion applied to the definition, when one was needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<ConversionInfo>,

    /// Stages running the desired revision over stages, e.g. `2/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_stages: Option<String>,

    /// A short hash of each top-level spec field as last reconciled, so that the audit
    /// record of the next change can name the fields that changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spec_fingerprint: BTreeMap<String, String>,

    /// Events owed to the broker (the outbox); cleared once acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub pending_events: Vec<PendingEvent>,

    /// How many events are owed to the broker (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub owed_events: Option<i32>,
}

impl ApiStatus {
    /// Whether `env` runs the desired revision.
    pub fn is_deployed(&self, env: Environment) -> bool {
        match (&self.revision, self.environments.get(&env)) {
            (Some(rev), Some(e)) => e.deployed_revision.as_deref() == Some(rev.as_str()),
            _ => false,
        }
    }
}

/// State of the Api on one environment's gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// The API's id on that gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_api_id: Option<String>,
    /// Stable hash of what was last deployed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_revision: Option<String>,
    /// The gateway endpoint callers use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Whether the API is active on that gateway.
    #[serde(default)]
    pub active: bool,
    /// The last deployment to that environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deployment: Option<DeploymentRecord>,
    /// The aliases the operator keeps on that gateway for this Api (`name/type`); one dropped
    /// from the spec is deleted there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// The outcome of one finished deployment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    /// W3C trace id of the deployment (also in logs and events).
    pub trace_id: String,
    /// The AWX job id, when the `awx` or `queued` driver ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awx_job_id: Option<i64>,
    /// `succeeded` or `failed`.
    pub result: DeploymentResult,
    /// How long the deployment took, in milliseconds.
    #[schemars(range(min = 0))]
    pub duration_ms: i64,
    /// When the deployment finished.
    pub finished_at: Time,
    /// A short human-readable outcome (the error on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An OpenAPI version conversion applied before deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversionInfo {
    /// The `openapi` version of the source document, e.g. `3.1.0`.
    pub source_version: String,
    /// The version sent to the gateway, e.g. `3.0.3`.
    pub target_version: String,
    /// What the conversion changed, one line each (e.g. `type: [string, "null"] -> nullable`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ApiSpec {
        ApiSpec {
            display_name: "Payments".into(),
            version: "1.0.0".into(),
            description: None,
            backend_url: "https://backend".into(),
            definition: ApiDefinition {
                inline: Some("openapi: 3.1.0".into()),
                ..Default::default()
            },
            policies: Policies::default(),
            aliases: vec![],
            active: true,
            stages: vec![Environment::Dev, Environment::Staging],
            driver: Driver::Direct,
            driver_overrides: BTreeMap::from([(Environment::Prod, Driver::Awx)]),
            drift_policy: DriftPolicy::Correct,
        }
    }

    #[test]
    fn driver_for_uses_overrides() {
        let s = spec();
        assert_eq!(s.driver_for(Environment::Dev), Driver::Direct);
        assert_eq!(s.driver_for(Environment::Prod), Driver::Awx);
        let queued = ApiSpec {
            driver: Driver::Queued,
            ..s
        };
        assert_eq!(queued.driver_for(Environment::Staging), Driver::Queued);
        assert_eq!(queued.driver_for(Environment::Prod), Driver::Awx);
    }

    #[test]
    fn ready_stages_counts_stages_on_the_desired_revision() {
        let mut api = Api::new("a", spec());
        assert_eq!(api.ready_stages(), "0/2");
        let env = |rev: &str| EnvironmentStatus {
            deployed_revision: Some(rev.into()),
            ..Default::default()
        };
        api.status = Some(ApiStatus {
            revision: Some("r2".into()),
            environments: BTreeMap::from([
                (Environment::Dev, env("r2")),
                (Environment::Staging, env("r1")),
                (Environment::Prod, env("r2")),
            ]),
            ..Default::default()
        });
        assert_eq!(
            api.ready_stages(),
            "1/2",
            "prod is not a stage; staging is behind"
        );
        if let Some(s) = api.status.as_mut() {
            s.environments.insert(Environment::Staging, env("r2"));
        }
        assert_eq!(api.ready_stages(), "2/2");
    }

    #[test]
    fn definition_source_is_exactly_one() {
        let mut d = ApiDefinition::default();
        assert_eq!(d.source(), Err(DefinitionSourceError { set: 0 }));
        d.url = Some("https://x/o.yaml".into());
        assert_eq!(d.source(), Ok(DefinitionSource::Url("https://x/o.yaml")));
        d.inline = Some("doc".into());
        assert_eq!(d.source(), Err(DefinitionSourceError { set: 2 }));
        d.url = None;
        assert_eq!(d.source(), Ok(DefinitionSource::Inline("doc")));
    }

    #[test]
    fn defaults_apply_when_deserializing() {
        let spec: ApiSpec = serde_json::from_value(serde_json::json!({
            "displayName": "P", "version": "1", "backendUrl": "https://b",
            "definition": {"url": "https://b/o.yaml"}, "stages": ["dev"]
        }))
        .unwrap();
        assert!(spec.active);
        assert_eq!(spec.driver, Driver::Direct);
        assert_eq!(spec.drift_policy, DriftPolicy::Correct);
        assert_eq!(spec.policies.authentication, Authentication::ApiKey);
        assert!(spec.driver_overrides.is_empty() && spec.aliases.is_empty());
        // Absent optional fields are not serialized (no nulls in server-side apply).
        let back = serde_json::to_value(&spec).unwrap();
        assert!(back.get("description").is_none());
        assert!(back["definition"].get("inline").is_none());
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        assert!(serde_json::from_str::<Driver>("\"ansible\"").is_err());
        assert_eq!("awx".parse::<Driver>(), Ok(Driver::Awx));
        assert_eq!(
            "oauth".parse::<Authentication>().unwrap_err().to_string(),
            "\"oauth\" is not one of none|apiKey|oauth2|basic"
        );
    }
}
