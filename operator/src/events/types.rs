//! Every event the operator emits, as a typed [`EventData`]: its CloudEvents `type`, the
//! topic it goes to, and its `data` payload (one struct each, whose JSON Schema is generated
//! into `docs/events/`).
//!
//! No payload ever carries a credential: `api-key-rotated` names the Secret that holds the new
//! key, never the key.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use crds::{DataClass, DeploymentResult, Driver, Environment};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::topics::Topic;

/// The prefix of every event type.
pub const TYPE_PREFIX: &str = "com.cab-i.apim.";

/// A UTC instant, serialized as RFC 3339 (`2026-11-25T07:30:00.123Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(pub DateTime<Utc>);

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| EventTime(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for EventTime {
    fn schema_name() -> Cow<'static, str> {
        "EventTime".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date-time" })
    }
}

impl From<DateTime<Utc>> for EventTime {
    fn from(t: DateTime<Utc>) -> Self {
        EventTime(t)
    }
}

/// `api.created`: an Api resource was created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiCreated {
    /// Display name on the gateway.
    pub display_name: String,
    /// API version (e.g. `1.2.0`).
    pub version: String,
    /// Environments it is deployed to without approval (`spec.stages`).
    pub stages: Vec<Environment>,
    /// Stable hash of what reaches the gateway.
    pub revision: String,
}

/// `api.updated`: the spec of an Api changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiUpdated {
    /// Display name on the gateway.
    pub display_name: String,
    /// API version.
    pub version: String,
    /// The new revision.
    pub revision: String,
    /// The revision before the change, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<String>,
    /// The spec fields that changed (JSON paths, e.g. `spec.backendUrl`).
    #[serde(default)]
    pub changed_fields: Vec<String>,
}

/// `api.deleted`: an Api was deleted and removed from every gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiDeleted {
    /// Display name on the gateway.
    pub display_name: String,
    /// Environments it was removed from.
    pub environments: Vec<Environment>,
}

/// `api.deploy-requested`: a deployment of one revision to one environment was requested
/// (the `queued` driver's AWX workers consume these).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployRequested {
    /// Name of the Api (same namespace as the event's subject).
    pub api: String,
    /// Target environment.
    pub environment: Environment,
    /// Revision to deploy.
    pub revision: String,
    /// How the deployment reaches the gateway.
    pub driver: Driver,
    /// Correlation id, echoed by the matching `api.deploy-completed`.
    pub request_id: String,
    /// The PromotionRequest behind it, for a production deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_request: Option<String>,
}

/// A short summary of the gateway's answer (never a credential).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayResponse {
    /// HTTP status of the gateway's last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The gateway's id of the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    /// The endpoint the API is reachable at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The gateway's message, truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `api.deploy-completed`: a deployment finished (result on `deploy-results`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployCompleted {
    /// Name of the Api.
    pub api: String,
    /// Target environment.
    pub environment: Environment,
    /// Revision deployed.
    pub revision: String,
    /// How the deployment reached the gateway.
    pub driver: Driver,
    /// Correlation id of the `api.deploy-requested`, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Outcome.
    pub result: DeploymentResult,
    /// AWX job id (`awx` and `queued` drivers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awx_job_id: Option<u64>,
    /// Duration of the deployment in milliseconds.
    pub duration_ms: u64,
    /// Summary of the gateway's answer.
    #[serde(default)]
    pub gateway: GatewayResponse,
    /// Why it failed, for a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How an Application authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CredentialType {
    /// An API key.
    ApiKey,
    /// An OAuth2 client.
    Oauth2,
}

/// `application.created`: an Application was created on the gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationCreated {
    /// Display name on the gateway.
    pub display_name: String,
    /// Environment (one gateway).
    pub environment: Environment,
    /// Owner's e-mail address.
    pub owner: String,
    /// Credential type.
    pub credential_type: CredentialType,
    /// Secret holding the credentials (never the credentials).
    pub credentials_secret: String,
}

/// `application.deleted`: an Application was deleted from the gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDeleted {
    /// Display name on the gateway.
    pub display_name: String,
    /// Environment.
    pub environment: Environment,
}

/// `subscription.created` / `subscription.deleted`: access of an Application to an Api was
/// granted / revoked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChanged {
    /// Name of the Application.
    pub application: String,
    /// Name of the Api.
    pub api: String,
    /// Environment.
    pub environment: Environment,
}

/// `application.api-key-rotated`: an Application's API key was replaced. Never carries a key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRotated {
    /// Environment.
    pub environment: Environment,
    /// Secret that holds the new key.
    pub credentials_secret: String,
    /// Whether the old key was revoked on the gateway.
    pub previous_key_revoked: bool,
    /// What triggered the rotation (`spec`, `annotation`).
    pub trigger: String,
}

/// `promotion.request-created`: a PromotionRequest was filed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionRequestCreated {
    /// Name of the Api.
    pub api: String,
    /// Source environment.
    pub source_environment: Environment,
    /// Target environment.
    pub target_environment: Environment,
    /// Revision pinned at request time.
    pub revision: String,
    /// The requester (stamped by the webhook).
    pub requester: String,
    /// Why.
    pub reason: String,
}

/// `promotion.request-approved` / `promotion.request-rejected`: a decision on a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionDecided {
    /// Name of the Api.
    pub api: String,
    /// Target environment.
    pub target_environment: Environment,
    /// Pinned revision.
    pub revision: String,
    /// The requester.
    pub requester: String,
    /// The approver who decided (stamped by the webhook).
    pub approver: String,
    /// The approver's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `promotion.deployment-succeeded` / `promotion.deployment-failed`: the outcome of an
/// approved promotion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionDeployed {
    /// Name of the Api.
    pub api: String,
    /// Target environment.
    pub target_environment: Environment,
    /// Deployed revision.
    pub revision: String,
    /// AWX job id, when AWX ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awx_job_id: Option<u64>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Why it failed, for a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The mandatory tags of a resource, as in its labels and owner annotation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTags {
    /// `apim.cab-i.com/environment`.
    pub environment: Environment,
    /// `apim.cab-i.com/project`.
    pub project: String,
    /// `apim.cab-i.com/cost-center`.
    pub cost_center: String,
    /// `apim.cab-i.com/ttl` (e.g. `7d`).
    pub ttl: String,
    /// `apim.cab-i.com/auto-teardown`.
    pub auto_teardown: bool,
    /// `apim.cab-i.com/data-class`.
    pub data_class: DataClass,
    /// `apim.cab-i.com/owner`.
    pub owner: String,
}

impl From<&crds::Tags> for EventTags {
    fn from(t: &crds::Tags) -> Self {
        EventTags {
            environment: t.environment,
            project: t.project.clone(),
            cost_center: t.cost_center.clone(),
            ttl: t.ttl.to_string(),
            auto_teardown: t.auto_teardown,
            data_class: t.data_class,
            owner: t.owner.clone(),
        }
    }
}

/// `resource.created`: a governed resource appeared, with its tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceCreated {
    /// Kind of the resource (`Api`, `Deployment`, …).
    pub kind: String,
    /// Its tags.
    pub tags: EventTags,
    /// `created_at + ttl`.
    pub expires_at: EventTime,
}

/// `resource.expiring`: the owner's notice before a teardown (once per lead time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceExpiring {
    /// Kind of the resource.
    pub kind: String,
    /// Owner's e-mail address.
    pub owner: String,
    /// When it will be deleted.
    pub expires_at: EventTime,
    /// The notice lead time this is (e.g. `48h`).
    pub lead_time: String,
    /// The TeardownPolicy that governs it.
    pub policy: String,
}

/// `resource.deleted`: a teardown deleted an expired resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDeleted {
    /// Kind of the resource.
    pub kind: String,
    /// Owner's e-mail address.
    pub owner: String,
    /// When it expired.
    pub expired_at: EventTime,
    /// The TeardownPolicy that deleted it.
    pub policy: String,
}

/// `resource.tag-violation`: a resource breaks the tag rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagViolationFound {
    /// Kind of the resource.
    pub kind: String,
    /// Every broken rule, as a message naming the tag, the rule and a valid example.
    pub violations: Vec<String>,
    /// The resource's labels under `apim.cab-i.com/`, as found.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One changed field of an audit record (values summarized, never secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// JSON path of the field (e.g. `spec.stages`).
    pub path: String,
    /// Value before, summarized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Value after, summarized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `audit.recorded`: who did what to which resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecorded {
    /// The user or service account (also the `actor` extension).
    pub actor: String,
    /// Kind of the resource.
    pub kind: String,
    /// What was done (`create`, `update`, `delete`, `approve`, `reject`, `deploy`, `teardown`).
    pub action: String,
    /// One sentence a person reads.
    pub summary: String,
    /// The changed fields.
    #[serde(default)]
    pub changes: Vec<FieldChange>,
}

/// Severity of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information.
    Info,
    /// Action advised.
    Warning,
    /// Action required.
    Critical,
}

/// `notification.requested`: a message for people (the notification service delivers it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRequested {
    /// E-mail addresses or group names.
    pub recipients: Vec<String>,
    /// Severity.
    pub severity: Severity,
    /// Subject line.
    pub title: String,
    /// Body (plain text).
    pub message: String,
    /// The event type that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// One entry of the event catalogue.
#[derive(Clone, Copy, Debug)]
pub struct EventTypeInfo {
    /// CloudEvents `type`.
    pub name: &'static str,
    /// The topic it goes to.
    pub topic: Topic,
    /// When it is emitted.
    pub when: &'static str,
    /// The JSON Schema of its `data`.
    pub schema: fn() -> Schema,
}

fn schema_of<T: JsonSchema>() -> Schema {
    schemars::schema_for!(T)
}

macro_rules! events {
    ($(
        $(#[$meta:meta])*
        $variant:ident($payload:ty) = $name:literal => $topic:ident, $when:literal;
    )+) => {
        /// Every event, with its payload. Serialized as the CloudEvents `type` and `data`
        /// attributes (adjacently tagged), which the envelope flattens into itself.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "type", content = "data")]
        pub enum EventData {
            $( $(#[$meta])* #[serde(rename = $name)] $variant($payload), )+
        }

        /// The catalogue: every event type, its topic, when it is emitted and its schema.
        pub const EVENT_TYPES: &[EventTypeInfo] = &[
            $( EventTypeInfo { name: $name, topic: Topic::$topic, when: $when, schema: schema_of::<$payload> }, )+
        ];

        impl EventData {
            /// The CloudEvents `type`.
            pub const fn event_type(&self) -> &'static str {
                match self { $( EventData::$variant(_) => $name, )+ }
            }

            /// The topic it goes to.
            pub const fn topic(&self) -> Topic {
                match self { $( EventData::$variant(_) => Topic::$topic, )+ }
            }
        }
    };
}

events! {
    /// An Api was created.
    ApiCreated(ApiCreated) = "com.cab-i.apim.api.created" => ApiCreated,
        "an Api resource is first reconciled";
    /// An Api's spec changed.
    ApiUpdated(ApiUpdated) = "com.cab-i.apim.api.updated" => ApiUpdated,
        "an Api's spec changes (new generation, new revision)";
    /// An Api was deleted.
    ApiDeleted(ApiDeleted) = "com.cab-i.apim.api.deleted" => ApiDeleted,
        "an Api is deleted and removed from every gateway";
    /// A deployment was requested.
    DeployRequested(DeployRequested) = "com.cab-i.apim.api.deploy-requested" => DeployRequests,
        "a revision must reach an environment's gateway (the `queued` driver's workers consume it)";
    /// A deployment finished.
    DeployCompleted(DeployCompleted) = "com.cab-i.apim.api.deploy-completed" => DeployResults,
        "a deployment to an environment succeeded or failed (any driver)";
    /// An Application was created.
    ApplicationCreated(ApplicationCreated) = "com.cab-i.apim.application.created" => ApplicationCreated,
        "an Application is created on its gateway";
    /// An Application was deleted.
    ApplicationDeleted(ApplicationDeleted) = "com.cab-i.apim.application.deleted" => ApplicationDeleted,
        "an Application is deleted from its gateway";
    /// A Subscription was created.
    SubscriptionCreated(SubscriptionChanged) = "com.cab-i.apim.subscription.created" => SubscriptionCreated,
        "a Subscription's access becomes active on the gateway";
    /// A Subscription was deleted.
    SubscriptionDeleted(SubscriptionChanged) = "com.cab-i.apim.subscription.deleted" => SubscriptionDeleted,
        "a Subscription is deleted and its access revoked";
    /// An API key was rotated.
    ApiKeyRotated(ApiKeyRotated) = "com.cab-i.apim.application.api-key-rotated" => ApiKeyRotated,
        "an Application's API key is rotated on request (the old key revoked)";
    /// A PromotionRequest was created.
    PromotionRequestCreated(PromotionRequestCreated) = "com.cab-i.apim.promotion.request-created" => PromotionRequests,
        "a PromotionRequest is filed (phase Pending)";
    /// A PromotionRequest was approved.
    PromotionRequestApproved(PromotionDecided) = "com.cab-i.apim.promotion.request-approved" => PromotionRequests,
        "an approver approves a PromotionRequest (phase Approved)";
    /// A PromotionRequest was rejected.
    PromotionRequestRejected(PromotionDecided) = "com.cab-i.apim.promotion.request-rejected" => PromotionRequests,
        "an approver rejects a PromotionRequest (phase Rejected)";
    /// A promotion's deployment succeeded.
    PromotionDeploymentSucceeded(PromotionDeployed) = "com.cab-i.apim.promotion.deployment-succeeded" => PromotionRequests,
        "the pinned revision reached the target gateway (phase Deployed)";
    /// A promotion's deployment failed.
    PromotionDeploymentFailed(PromotionDeployed) = "com.cab-i.apim.promotion.deployment-failed" => PromotionRequests,
        "the deployment of an approved promotion failed (phase Failed)";
    /// A governed resource was created.
    ResourceCreated(ResourceCreated) = "com.cab-i.apim.resource.created" => ResourceCreated,
        "a resource governed by a TeardownPolicy is first seen, with its tags";
    /// A resource is about to expire.
    ResourceExpiring(ResourceExpiring) = "com.cab-i.apim.resource.expiring" => ResourceExpiring,
        "a resource reaches a notice lead time before its teardown (once per lead time)";
    /// A resource was torn down.
    ResourceDeleted(ResourceDeleted) = "com.cab-i.apim.resource.deleted" => ResourceDeleted,
        "a teardown deletes an expired resource";
    /// A resource breaks the tag rules.
    TagViolation(TagViolationFound) = "com.cab-i.apim.resource.tag-violation" => TagViolation,
        "a resource is found untagged or badly tagged";
    /// An audit record.
    AuditRecorded(AuditRecorded) = "com.cab-i.apim.audit.recorded" => AuditLog,
        "every change the operator makes or observes on behalf of a user";
    /// A notification for people.
    NotificationRequested(NotificationRequested) = "com.cab-i.apim.notification.requested" => Notifications,
        "someone must be told (expiry notice, failed deployment, pending approval)";
}

impl EventData {
    /// The catalogue entry of this event's type.
    pub fn info(&self) -> Option<&'static EventTypeInfo> {
        let name = self.event_type();
        EVENT_TYPES.iter().find(|i| i.name == name)
    }

    /// One example of every event type, in catalogue order (docs and tests).
    pub fn examples() -> Vec<EventData> {
        let t = |s: &str| {
            EventTime(
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
            )
        };
        let tags = EventTags {
            environment: Environment::Dev,
            project: "payments".into(),
            cost_center: "CC-1234".into(),
            ttl: "7d".into(),
            auto_teardown: true,
            data_class: DataClass::Internal,
            owner: "jane.doe@cab-i.com".into(),
        };
        let decided = PromotionDecided {
            api: "payments".into(),
            target_environment: Environment::Prod,
            revision: "sha256:6f1c2a".into(),
            requester: "alice@cab-i.com".into(),
            approver: "bob@cab-i.com".into(),
            comment: Some("change CHG-4711 approved".into()),
        };
        let deployed = PromotionDeployed {
            api: "payments".into(),
            target_environment: Environment::Prod,
            revision: "sha256:6f1c2a".into(),
            awx_job_id: Some(4242),
            duration_ms: 48_210,
            message: None,
        };
        let sub = SubscriptionChanged {
            application: "checkout-web".into(),
            api: "payments".into(),
            environment: Environment::Dev,
        };
        vec![
            EventData::ApiCreated(ApiCreated {
                display_name: "Payments".into(),
                version: "1.2.0".into(),
                stages: vec![Environment::Dev, Environment::Staging],
                revision: "sha256:6f1c2a".into(),
            }),
            EventData::ApiUpdated(ApiUpdated {
                display_name: "Payments".into(),
                version: "1.3.0".into(),
                revision: "sha256:91ab07".into(),
                previous_revision: Some("sha256:6f1c2a".into()),
                changed_fields: vec!["spec.version".into(), "spec.openapi".into()],
            }),
            EventData::ApiDeleted(ApiDeleted {
                display_name: "Payments".into(),
                environments: vec![Environment::Dev, Environment::Staging],
            }),
            EventData::DeployRequested(DeployRequested {
                api: "payments".into(),
                environment: Environment::Staging,
                revision: "sha256:91ab07".into(),
                driver: Driver::Queued,
                request_id: "019abcde-0000-7000-8000-000000000001".into(),
                promotion_request: None,
            }),
            EventData::DeployCompleted(DeployCompleted {
                api: "payments".into(),
                environment: Environment::Staging,
                revision: "sha256:91ab07".into(),
                driver: Driver::Awx,
                request_id: Some("019abcde-0000-7000-8000-000000000001".into()),
                result: DeploymentResult::Succeeded,
                awx_job_id: Some(4241),
                duration_ms: 31_877,
                gateway: GatewayResponse {
                    status: Some(200),
                    api_id: Some("8b0e9d0c-4c55-4a5c-9f3e-2d1f0c1a7e11".into()),
                    endpoint: Some("https://gw-staging.cab-i.com/gateway/Payments/1.3.0".into()),
                    message: None,
                },
                message: None,
            }),
            EventData::ApplicationCreated(ApplicationCreated {
                display_name: "Checkout web".into(),
                environment: Environment::Dev,
                owner: "jane.doe@cab-i.com".into(),
                credential_type: CredentialType::ApiKey,
                credentials_secret: "checkout-web-credentials".into(),
            }),
            EventData::ApplicationDeleted(ApplicationDeleted { display_name: "Checkout web".into(), environment: Environment::Dev }),
            EventData::SubscriptionCreated(sub.clone()),
            EventData::SubscriptionDeleted(sub),
            EventData::ApiKeyRotated(ApiKeyRotated {
                environment: Environment::Dev,
                credentials_secret: "checkout-web-credentials".into(),
                previous_key_revoked: true,
                trigger: "annotation".into(),
            }),
            EventData::PromotionRequestCreated(PromotionRequestCreated {
                api: "payments".into(),
                source_environment: Environment::Staging,
                target_environment: Environment::Prod,
                revision: "sha256:6f1c2a".into(),
                requester: "alice@cab-i.com".into(),
                reason: "release 2026.11".into(),
            }),
            EventData::PromotionRequestApproved(decided.clone()),
            EventData::PromotionRequestRejected(PromotionDecided { comment: Some("no change ticket".into()), ..decided }),
            EventData::PromotionDeploymentSucceeded(deployed.clone()),
            EventData::PromotionDeploymentFailed(PromotionDeployed {
                message: Some("gateway answered 503 Service Unavailable".into()),
                ..deployed
            }),
            EventData::ResourceCreated(ResourceCreated {
                kind: "Api".into(),
                tags: tags.clone(),
                expires_at: t("2026-12-02T07:30:00Z"),
            }),
            EventData::ResourceExpiring(ResourceExpiring {
                kind: "Api".into(),
                owner: "jane.doe@cab-i.com".into(),
                expires_at: t("2026-12-02T07:30:00Z"),
                lead_time: "48h".into(),
                policy: "non-prod-cleanup".into(),
            }),
            EventData::ResourceDeleted(ResourceDeleted {
                kind: "Api".into(),
                owner: "jane.doe@cab-i.com".into(),
                expired_at: t("2026-12-02T07:30:00Z"),
                policy: "non-prod-cleanup".into(),
            }),
            EventData::TagViolation(TagViolationFound {
                kind: "Deployment".into(),
                violations: vec![
                    "label apim.cab-i.com/cost-center is required but missing; add it, e.g. apim.cab-i.com/cost-center: \"CC-1234\"".into(),
                ],
                labels: BTreeMap::from([("apim.cab-i.com/environment".into(), "dev".into())]),
            }),
            EventData::AuditRecorded(AuditRecorded {
                actor: "alice@cab-i.com".into(),
                kind: "Api".into(),
                action: "update".into(),
                summary: "Api payments: version 1.2.0 -> 1.3.0".into(),
                changes: vec![FieldChange {
                    path: "spec.version".into(),
                    before: Some("1.2.0".into()),
                    after: Some("1.3.0".into()),
                }],
            }),
            EventData::NotificationRequested(NotificationRequested {
                recipients: vec!["jane.doe@cab-i.com".into()],
                severity: Severity::Warning,
                title: "Api payments expires in 48h".into(),
                message: "Api team-a/payments (dev) will be deleted at 2026-12-02T07:30:00Z by non-prod-cleanup. Raise apim.cab-i.com/ttl to keep it.".into(),
                cause: Some("com.cab-i.apim.resource.expiring".into()),
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn catalogue_is_complete_and_consistent() {
        let examples = EventData::examples();
        let names: Vec<_> = examples.iter().map(|e| e.event_type()).collect();
        let catalogue: Vec<_> = EVENT_TYPES.iter().map(|i| i.name).collect();
        assert_eq!(names, catalogue, "one example per type, in catalogue order");
        assert_eq!(
            catalogue.iter().collect::<BTreeSet<_>>().len(),
            catalogue.len(),
            "unique types"
        );
        for e in &examples {
            assert!(
                e.event_type().starts_with(TYPE_PREFIX),
                "{}",
                e.event_type()
            );
            assert_eq!(e.info().map(|i| i.topic), Some(e.topic()));
        }
        // Every topic of the catalogue receives at least one event type.
        let topics: BTreeSet<_> = EVENT_TYPES.iter().map(|i| i.topic).collect();
        assert_eq!(topics.len(), Topic::ALL.len());
    }

    #[test]
    fn serializes_as_type_and_data_and_round_trips() {
        for e in EventData::examples() {
            let v = serde_json::to_value(&e).expect("serialize");
            assert_eq!(v["type"], e.event_type());
            assert!(v["data"].is_object(), "{v}");
            let back: EventData = serde_json::from_value(v).expect("deserialize");
            assert_eq!(back, e);
        }
    }

    #[test]
    fn time_is_rfc3339_utc() {
        let t = EventTime(DateTime::from_timestamp(1_795_000_000, 123_000_000).unwrap_or_default());
        let s = serde_json::to_string(&t).expect("serialize");
        assert_eq!(s, "\"2026-11-18T11:06:40.123Z\"");
        assert_eq!(serde_json::from_str::<EventTime>(&s).expect("parse"), t);
        assert!(serde_json::from_str::<EventTime>("\"yesterday\"").is_err());
    }
}
