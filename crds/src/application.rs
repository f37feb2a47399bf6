//! `Application`: a consumer of APIs in one environment, with its credentials in a Secret.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{common::Environment, duration::ShortDuration, outbox::PendingEvent};

/// A client application consuming APIs in one environment. The operator registers it on the
/// gateway and writes its credentials into a Secret it owns (never into status, events or logs).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apim.cab-i.com",
    version = "v1alpha1",
    kind = "Application",
    plural = "applications",
    singular = "application",
    namespaced,
    status = "ApplicationStatus",
    derive = "PartialEq",
    shortname = "apimapp",
    category = "apim",
    selectable = ".spec.environment",
    doc = "A client application consuming APIs in one environment. Its credentials are written to a Secret owned by the Application.",
    printcolumn = r#"{"name":"Environment","type":"string","jsonPath":".spec.environment"}"#,
    printcolumn = r#"{"name":"Credential","type":"string","jsonPath":".spec.credentialType"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".status.secretName"}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status","description":"Spec and mandatory tags are valid"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Rotation","type":"string","jsonPath":".status.rotation.phase","priority":1}"#,
    printcolumn = r#"{"name":"Owed","type":"integer","jsonPath":".status.owedEvents","description":"Events not yet acknowledged by the broker"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// Human-readable name of the application on the gateway.
    #[schemars(length(min = 1, max = 128))]
    pub display_name: String,

    /// What the application is and who uses it.
    #[schemars(length(min = 1, max = 1024))]
    pub description: String,

    /// The environment (gateway) the application lives in. Immutable: create another
    /// Application for another environment.
    #[x_kube(validation = ::kube::core::Rule::new("self == oldSelf").message("environment is immutable; create another Application for another environment"))]
    pub environment: Environment,

    /// The credential issued: `apiKey` or `oauth2` (client id and secret).
    #[serde(default)]
    pub credential_type: CredentialType,

    /// Who to contact about the application (e-mail addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(email, length(max = 254)))]
    pub contact_emails: Vec<String>,

    /// Credential rotation: changing `requestId` issues a new credential; the old one stays
    /// valid for `overlap`, then is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationRequest>,

    /// Name of the Secret receiving the credentials (default `<name>-credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::common::DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: Option<String>,
}

/// Suffix of the default credentials Secret name.
pub const SECRET_NAME_SUFFIX: &str = "-credentials";

impl Application {
    /// The Secret receiving the credentials: `spec.secretName`, else `<name>-credentials`.
    pub fn secret_name(&self) -> String {
        self.spec
            .secret_name
            .clone()
            .unwrap_or_else(|| format!("{}{SECRET_NAME_SUFFIX}", self.name_any()))
    }

    /// The rotation request id the status has not handled yet, if any.
    pub fn pending_rotation(&self) -> Option<&str> {
        self.pending_rotation_in(self.status.as_ref())
    }

    /// The rotation request id `status` has not handled yet, if any (a controller passes
    /// the status it last wrote, which its watch cache may not show yet).
    pub fn pending_rotation_in(&self, status: Option<&ApplicationStatus>) -> Option<&str> {
        let requested = self.spec.rotation.as_ref()?.request_id.as_str();
        let handled = status
            .and_then(|s| s.rotation.as_ref())
            .and_then(|r| r.last_request_id.as_deref());
        (handled != Some(requested)).then_some(requested)
    }
}

/// A request to rotate the credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationRequest {
    /// Any new value requests one rotation (e.g. a ticket number or a date).
    #[schemars(length(min = 1, max = 63))]
    pub request_id: String,
    /// How long the old credential stays valid after the new one is issued (`24h`, `2d`, `90m`).
    #[serde(default = "default_overlap")]
    pub overlap: ShortDuration,
}

/// The default rotation overlap: 24 hours.
pub const DEFAULT_OVERLAP: ShortDuration = match ShortDuration::hours(24) {
    Some(d) => d,
    // Evaluated at compile time: a wrong constant fails the build, never a run.
    None => panic!("24h is a valid short duration"),
};

fn default_overlap() -> ShortDuration {
    DEFAULT_OVERLAP
}

string_enum! {
    /// The kind of credential issued to an application.
    #[derive(Default)]
    pub enum CredentialType {
        /// An API key.
        #[default]
        ApiKey = "apiKey",
        /// An OAuth2 client (id and secret).
        Oauth2 = "oauth2",
    }
}

string_enum! {
    /// Where a credential rotation stands.
    pub enum RotationPhase {
        /// The new credential is issued (on a successor application); the old one stays valid
        /// on the gateway until `overlapEndsAt`.
        Overlapping = "Overlapping",
        /// The old credential is revoked (its application deleted from the gateway).
        Completed = "Completed",
        /// The rotation failed; see the conditions.
        Failed = "Failed",
    }
}

/// Observed state of an Application.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions: `Ready`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ::kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The application's id on the gateway: the one holding the current credential. A
    /// rotation registers a successor application and records it here (the predecessor is in
    /// `rotation.previousGatewayApplicationId` until the overlap window ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_application_id: Option<String>,

    /// The Secret holding the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,

    /// SHA-256 of the current credentials (never the credentials themselves), to detect change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_hash: Option<String>,

    /// The last credential rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationStatus>,

    /// Events owed to the broker (the outbox); cleared once acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub pending_events: Vec<PendingEvent>,

    /// How many events are owed to the broker (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub owed_events: Option<i32>,
}

/// The state of the last credential rotation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// The `spec.rotation.requestId` handled last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_id: Option<String>,
    /// When the old credential is (or was) revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_ends_at: Option<Time>,
    /// Where the rotation stands.
    pub phase: RotationPhase,
    /// During the overlap window: the gateway application holding the previous credential
    /// (the one before the rotation). It is deleted from the gateway when the window ends,
    /// which revokes that credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_gateway_application_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> Application {
        let spec: ApplicationSpec = serde_json::from_value(serde_json::json!({
            "displayName": "Checkout", "description": "web", "environment": "dev",
            "rotation": {"requestId": "r1"}
        }))
        .unwrap();
        Application::new("checkout-web", spec)
    }

    #[test]
    fn defaults() {
        let a = app();
        assert_eq!(a.spec.credential_type, CredentialType::ApiKey);
        assert_eq!(a.spec.rotation.as_ref().unwrap().overlap.to_string(), "24h");
        assert_eq!(DEFAULT_OVERLAP.as_secs(), 86_400);
    }

    #[test]
    fn secret_name_defaults_to_name_credentials() {
        let mut a = app();
        assert_eq!(a.secret_name(), "checkout-web-credentials");
        a.spec.secret_name = Some("custom".into());
        assert_eq!(a.secret_name(), "custom");
    }

    #[test]
    fn pending_rotation_until_handled() {
        let mut a = app();
        assert_eq!(a.pending_rotation(), Some("r1"));
        a.status = Some(ApplicationStatus {
            rotation: Some(RotationStatus {
                last_request_id: Some("r1".into()),
                overlap_ends_at: None,
                phase: RotationPhase::Overlapping,
                previous_gateway_application_id: None,
            }),
            ..Default::default()
        });
        assert_eq!(a.pending_rotation(), None);
        a.spec.rotation = Some(RotationRequest {
            request_id: "r2".into(),
            overlap: DEFAULT_OVERLAP,
        });
        assert_eq!(a.pending_rotation(), Some("r2"));
        a.spec.rotation = None;
        assert_eq!(a.pending_rotation(), None);
    }

    #[test]
    fn pending_rotation_against_a_newer_status() {
        let a = app();
        let handled = ApplicationStatus {
            rotation: Some(RotationStatus {
                last_request_id: Some("r1".into()),
                overlap_ends_at: None,
                phase: RotationPhase::Completed,
                previous_gateway_application_id: None,
            }),
            ..Default::default()
        };
        assert_eq!(a.pending_rotation(), Some("r1"), "the object's own status");
        assert_eq!(a.pending_rotation_in(Some(&handled)), None);
        assert_eq!(a.pending_rotation_in(None), Some("r1"));
    }
}
