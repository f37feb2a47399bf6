//! `Subscription`: grants an Application access to an Api in one environment.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{
    common::{Environment, LocalRef},
    outbox::PendingEvent,
};

/// Grants an Application access to an Api in one environment (the gateway's API-application
/// association). Deleting it revokes the access. The spec is immutable: to change it, create
/// another Subscription and delete this one.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apim.cab-i.com",
    version = "v1alpha1",
    kind = "Subscription",
    plural = "subscriptions",
    singular = "subscription",
    namespaced,
    status = "SubscriptionStatus",
    derive = "PartialEq",
    shortname = "apimsub",
    category = "apim",
    selectable = ".spec.apiRef.name",
    selectable = ".spec.applicationRef.name",
    selectable = ".spec.environment",
    doc = "Grants an Application access to an Api in one environment. Deleting it revokes the access.",
    printcolumn = r#"{"name":"Api","type":"string","jsonPath":".spec.apiRef.name"}"#,
    printcolumn = r#"{"name":"Application","type":"string","jsonPath":".spec.applicationRef.name"}"#,
    printcolumn = r#"{"name":"Environment","type":"string","jsonPath":".spec.environment"}"#,
    printcolumn = r#"{"name":"Active","type":"boolean","jsonPath":".status.active"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.reason","priority":1}"#,
    printcolumn = r#"{"name":"Owed","type":"integer","jsonPath":".status.owedEvents","description":"Events not yet acknowledged by the broker"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    /// The Api subscribed to, in the same namespace. Immutable.
    #[x_kube(validation = ::kube::core::Rule::new("self == oldSelf").message("apiRef is immutable; create another Subscription"))]
    pub api_ref: LocalRef,

    /// The Application granted access, in the same namespace. Immutable.
    #[x_kube(validation = ::kube::core::Rule::new("self == oldSelf").message("applicationRef is immutable; create another Subscription"))]
    pub application_ref: LocalRef,

    /// The environment of the access; the Application must live there and the Api be
    /// deployed there. Immutable.
    #[x_kube(validation = ::kube::core::Rule::new("self == oldSelf").message("environment is immutable; create another Subscription"))]
    pub environment: Environment,
}

/// Observed state of a Subscription.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions: `Ready`, `Accepted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ::kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Whether the Application can call the Api now.
    #[serde(default)]
    pub active: bool,

    /// Why access is not active (e.g. "Api payment-api is not deployed to dev"); empty when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// The Api's id on the environment's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_api_id: Option<String>,

    /// The Application's id on the environment's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_application_id: Option<String>,

    /// Events owed to the broker (the outbox); cleared once acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub pending_events: Vec<PendingEvent>,

    /// How many events are owed to the broker (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub owed_events: Option<i32>,
}
