//! `PromotionRequest`: the production ticket. A pinned revision of an Api, a reason, and a
//! decision by someone other than the requester.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    common::{DeploymentResult, Environment, LocalRef},
    outbox::PendingEvent,
};

/// CEL: the requester, once stamped, never changes.
pub const REQUESTER_IMMUTABLE_RULE: &str =
    "!has(oldSelf.requester) || (has(self.requester) && self.requester == oldSelf.requester)";
/// CEL: the decision, once made, never changes.
pub const DECISION_IMMUTABLE_RULE: &str =
    "!has(oldSelf.decision) || (has(self.decision) && self.decision == oldSelf.decision)";
/// CEL: the pinned revision never changes.
pub const REVISION_IMMUTABLE_RULE: &str = "self.revision == oldSelf.revision";
/// CEL: source and target differ.
pub const DISTINCT_ENVIRONMENTS_RULE: &str = "self.targetEnvironment != self.sourceEnvironment";
/// CEL: nobody approves their own request.
pub const NO_SELF_APPROVAL_RULE: &str = "!has(self.decision) || !has(self.decision.approver) || !has(self.requester) || self.decision.approver != self.requester";

/// A request to deploy a pinned revision of an Api to production (or another environment
/// outside its stages). The requester and the approver are stamped by the admission webhook
/// from the authenticated user; nobody approves their own request.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apim.cab-i.com",
    version = "v1alpha1",
    kind = "PromotionRequest",
    plural = "promotionrequests",
    singular = "promotionrequest",
    namespaced,
    status = "PromotionRequestStatus",
    derive = "PartialEq",
    shortname = "promo",
    shortname = "apimpr",
    category = "apim",
    selectable = ".spec.apiRef.name",
    selectable = ".spec.targetEnvironment",
    doc = "A production ticket: deploy a pinned revision of an Api to the target environment once someone other than the requester approves it.",
    printcolumn = r#"{"name":"Api","type":"string","jsonPath":".spec.apiRef.name"}"#,
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.targetEnvironment"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Requester","type":"string","jsonPath":".spec.requester"}"#,
    printcolumn = r#"{"name":"Approver","type":"string","jsonPath":".spec.decision.approver"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","jsonPath":".spec.revision","priority":1}"#,
    printcolumn = r#"{"name":"Owed","type":"integer","jsonPath":".status.owedEvents","description":"Events not yet acknowledged by the broker"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = ::kube::core::Rule::new(REQUESTER_IMMUTABLE_RULE).message("spec.requester is immutable: it is stamped from the authenticated user at creation"),
    validation = ::kube::core::Rule::new(REVISION_IMMUTABLE_RULE).message("spec.revision is immutable: the revision is pinned when the request is created"),
    validation = ::kube::core::Rule::new(DECISION_IMMUTABLE_RULE).message("spec.decision is immutable once set: create a new PromotionRequest"),
    validation = ::kube::core::Rule::new(DISTINCT_ENVIRONMENTS_RULE).message("spec.targetEnvironment must differ from spec.sourceEnvironment"),
    validation = ::kube::core::Rule::new(NO_SELF_APPROVAL_RULE).message("nobody approves their own request: spec.decision.approver must differ from spec.requester")
)]
pub struct PromotionRequestSpec {
    /// The Api to promote, in the same namespace.
    pub api_ref: LocalRef,

    /// The environment the revision was validated in.
    #[serde(default = "default_source")]
    pub source_environment: Environment,

    /// The environment to deploy to.
    #[serde(default = "default_target")]
    pub target_environment: Environment,

    /// The Api revision (`status.revision` of the Api) pinned when the request was made;
    /// exactly this revision is deployed. Immutable.
    #[schemars(length(min = 1, max = 128))]
    pub revision: String,

    /// Why this change goes to production (at least 10 characters).
    #[schemars(length(min = 10, max = 2048))]
    pub reason: String,

    /// Who asked. Stamped by the admission webhook from the authenticated user; cannot be
    /// set by hand or changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub requester: Option<String>,

    /// The approver's decision. Set once; immutable afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

fn default_source() -> Environment {
    Environment::Staging
}

fn default_target() -> Environment {
    Environment::Prod
}

/// An approver's decision on a PromotionRequest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// `Approved` or `Rejected`.
    pub verdict: Verdict,
    /// Who decided. Stamped by the admission webhook from the authenticated user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub approver: Option<String>,
    /// Why, in a few words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub comment: Option<String>,
}

string_enum! {
    /// The verdict of a decision.
    pub enum Verdict {
        /// Deploy the pinned revision.
        Approved = "Approved",
        /// Do not deploy.
        Rejected = "Rejected",
    }
}

string_enum! {
    /// Where a PromotionRequest stands: `Pending -> Approved -> Deploying -> Deployed`,
    /// `Pending -> Rejected`, or `Deploying -> Failed`.
    pub enum PromotionPhase {
        /// Waiting for a decision.
        Pending = "Pending",
        /// Approved, deployment not started yet.
        Approved = "Approved",
        /// Rejected; nothing is deployed.
        Rejected = "Rejected",
        /// The deployment runs.
        Deploying = "Deploying",
        /// The pinned revision runs in the target environment.
        Deployed = "Deployed",
        /// The deployment failed.
        Failed = "Failed",
    }
}

impl PromotionPhase {
    /// Whether no further transition can happen.
    pub const fn is_terminal(&self) -> bool {
        matches!(
            self,
            PromotionPhase::Rejected | PromotionPhase::Deployed | PromotionPhase::Failed
        )
    }

    /// Whether `self -> next` is a transition of the life cycle. `Approved -> Failed` is
    /// allowed for a deployment that cannot even start (e.g. the Api is gone).
    pub const fn can_transition_to(&self, next: PromotionPhase) -> bool {
        use PromotionPhase::*;
        matches!(
            (self, next),
            (Pending, Approved)
                | (Pending, Rejected)
                | (Approved, Deploying)
                | (Approved, Failed)
                | (Deploying, Deployed)
                | (Deploying, Failed)
        )
    }
}

impl PromotionRequest {
    /// The current phase; `Pending` until the operator wrote one.
    pub fn phase(&self) -> PromotionPhase {
        self.status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(PromotionPhase::Pending)
    }

    /// Whether the approver (when stamped) is the requester: a self-approval, refused by
    /// the CRD's CEL rule and the webhook.
    pub fn is_self_approved(&self) -> bool {
        match (&self.spec.requester, &self.spec.decision) {
            (
                Some(requester),
                Some(Decision {
                    approver: Some(approver),
                    ..
                }),
            ) => requester == approver,
            _ => false,
        }
    }
}

/// Observed state of a PromotionRequest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PromotionRequestStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions: `Ready`, `Accepted`, `Deployed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ::kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Where the request stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PromotionPhase>,

    /// When the decision was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Time>,

    /// The deployment of the pinned revision, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<PromotionDeployment>,

    /// Events owed to the broker (the outbox); cleared once acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub pending_events: Vec<PendingEvent>,

    /// How many events are owed to the broker (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub owed_events: Option<i32>,
}

/// The deployment of an approved PromotionRequest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionDeployment {
    /// W3C trace id of the deployment.
    pub trace_id: String,
    /// The AWX job id, once the job is launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awx_job_id: Option<i64>,
    /// `succeeded` or `failed`; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<DeploymentResult>,
    /// A short human-readable outcome (the error on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the deployment finished; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use PromotionPhase::*;

    #[test]
    fn life_cycle_transitions() {
        let allowed = [
            (Pending, Approved),
            (Pending, Rejected),
            (Approved, Deploying),
            (Approved, Failed),
            (Deploying, Deployed),
            (Deploying, Failed),
        ];
        for &from in PromotionPhase::ALL {
            for &to in PromotionPhase::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
            if from.is_terminal() {
                assert!(
                    PromotionPhase::ALL
                        .iter()
                        .all(|&to| !from.can_transition_to(to))
                );
            }
        }
        assert!(Rejected.is_terminal() && Deployed.is_terminal() && Failed.is_terminal());
        assert!(!Pending.is_terminal() && !Approved.is_terminal() && !Deploying.is_terminal());
    }

    #[test]
    fn defaults_and_phase() {
        let spec: PromotionRequestSpec = serde_json::from_value(serde_json::json!({
            "apiRef": {"name": "payment-api"}, "revision": "r1", "reason": "0123456789"
        }))
        .unwrap();
        assert_eq!(spec.source_environment, Environment::Staging);
        assert_eq!(spec.target_environment, Environment::Prod);
        let mut p = PromotionRequest::new("p", spec);
        assert_eq!(p.phase(), Pending);
        assert!(!p.is_self_approved());
        p.spec.requester = Some("alice".into());
        p.spec.decision = Some(Decision {
            verdict: Verdict::Approved,
            approver: Some("bob".into()),
            comment: None,
        });
        assert!(!p.is_self_approved());
        if let Some(d) = p.spec.decision.as_mut() {
            d.approver = Some("alice".into());
        }
        assert!(p.is_self_approved());
        p.status = Some(PromotionRequestStatus {
            phase: Some(Deploying),
            ..Default::default()
        });
        assert_eq!(p.phase(), Deploying);
    }
}
