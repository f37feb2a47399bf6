//! PromotionRequest: the production ticket.
//!
//! - CREATE: the user must be allowed to request in the tenant (role matrix); the requester is
//!   the authenticated user (stamped by the mutating webhook); no decision at creation.
//! - UPDATE: the requester, the pinned revision, the Api and the environments never change; a
//!   decision may be set once, by a CPI of the tenant or a CPI admin, never by a service
//!   account, never by the requester (anti-self-approval), with the approver equal to the
//!   authenticated user; a decided request cannot be re-decided.
//! - `status` subresource: written only by the operator.

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::Value;

use super::{Finding, Policy, RuleSet, principal};
use crate::roles::DecideRefusal;

/// Verdicts a decision may carry.
pub const VERDICTS: [&str; 2] = ["Approved", "Rejected"];

/// Fields of `spec` that are fixed at creation.
const IMMUTABLE: [(&str, &str); 5] = [
    (
        "requester",
        "the requester is stamped at creation and never changes",
    ),
    ("revision", "the revision is pinned at request time"),
    ("apiRef", "a request is for one Api"),
    ("sourceEnvironment", "a request is for one promotion path"),
    ("targetEnvironment", "a request is for one promotion path"),
];

/// `spec.<key>`, with null treated as absent.
pub fn spec_field<'a>(obj: &'a DynamicObject, key: &str) -> Option<&'a Value> {
    obj.data
        .get("spec")
        .and_then(|s| s.get(key))
        .filter(|v| !v.is_null())
}

/// `spec.decision.<key>` as a string.
fn decision_str<'a>(decision: &'a Value, key: &str) -> Option<&'a str> {
    decision.get(key).and_then(Value::as_str)
}

fn tenant(req: &AdmissionRequest<DynamicObject>) -> Option<&str> {
    req.namespace
        .as_deref()
        .or_else(|| {
            req.object
                .as_ref()
                .and_then(|o| o.metadata.namespace.as_deref())
        })
        .filter(|ns| !ns.is_empty())
}

fn push(out: &mut Vec<Finding>, msg: String) {
    out.push(Finding::new(RuleSet::Promotion, msg));
}

/// Checks CREATE and UPDATE of a PromotionRequest (main resource).
pub fn check(policy: &Policy, req: &AdmissionRequest<DynamicObject>, out: &mut Vec<Finding>) {
    let Some(obj) = req.object.as_ref() else {
        return;
    };
    let Some(tenant) = tenant(req) else {
        push(
            out,
            "a PromotionRequest must live in its tenant's namespace (rule: the namespace is the \
             tenant); create it with metadata.namespace, e.g. tenant-finance"
                .to_owned(),
        );
        return;
    };
    let user = principal(req);
    match req.operation {
        Operation::Create => {
            if !policy.roles.may_request(user, tenant) {
                push(
                    out,
                    format!(
                        "user {:?} may not create PromotionRequests in tenant {tenant} (rule: role \
                         matrix); members of {:?} may",
                        user.username,
                        policy.roles.creator_groups(tenant)
                    ),
                );
            }
            match spec_field(obj, "requester").and_then(Value::as_str) {
                Some(r) if r == user.username => {}
                other => push(
                    out,
                    format!(
                        "spec.requester must be the authenticated user {:?}, got {:?} (rule: the \
                         requester is stamped from userInfo and cannot be spoofed); omit \
                         spec.requester and the webhook sets it",
                        user.username,
                        other.unwrap_or("<none>")
                    ),
                ),
            }
            if spec_field(obj, "decision").is_some() {
                push(
                    out,
                    format!(
                        "spec.decision cannot be set at creation (rule: nobody approves their own \
                         request); create the request without spec.decision and ask a member of \
                         {:?} to decide it",
                        policy.roles.approver_groups(tenant)
                    ),
                );
            }
        }
        Operation::Update => {
            let Some(old) = req.old_object.as_ref() else {
                push(
                    out,
                    "UPDATE without oldObject: the immutable fields cannot be verified".to_owned(),
                );
                return;
            };
            for (key, why) in IMMUTABLE {
                let (before, after) = (spec_field(old, key), spec_field(obj, key));
                if before != after {
                    push(
                        out,
                        format!(
                            "spec.{key} is immutable (rule: {why}); keep {}, or create a new \
                             PromotionRequest",
                            before.map_or_else(|| "it unset".to_owned(), |v| v.to_string())
                        ),
                    );
                }
            }
            check_decision(policy, req, tenant, old, obj, out);
        }
        Operation::Delete | Operation::Connect => {}
    }
}

fn check_decision(
    policy: &Policy,
    req: &AdmissionRequest<DynamicObject>,
    tenant: &str,
    old: &DynamicObject,
    obj: &DynamicObject,
    out: &mut Vec<Finding>,
) {
    let user = principal(req);
    match (spec_field(old, "decision"), spec_field(obj, "decision")) {
        (None, None) => {}
        (Some(before), after) => {
            if after != Some(before) {
                push(
                    out,
                    format!(
                        "spec.decision is final: this request was already {} by {:?} (rule: a \
                         decided request cannot be re-decided); create a new PromotionRequest \
                         instead",
                        decision_str(before, "verdict").unwrap_or("decided"),
                        decision_str(before, "approver").unwrap_or("<unknown>")
                    ),
                );
            }
        }
        (None, Some(decision)) => {
            match decision_str(decision, "verdict") {
                Some(v) if VERDICTS.contains(&v) => {}
                other => push(
                    out,
                    format!(
                        "spec.decision.verdict must be Approved or Rejected, got {:?} (rule: \
                         verdict values); e.g. verdict: Approved",
                        other.unwrap_or("<none>")
                    ),
                ),
            }
            match policy.roles.may_decide(user, tenant) {
                Ok(()) => {}
                Err(DecideRefusal::ServiceAccount) => push(
                    out,
                    format!(
                        "{:?} is a service account or GitOps identity and may never decide a \
                         PromotionRequest (rule: role matrix); a CPI approver of tenant {tenant} \
                         must decide it",
                        user.username
                    ),
                ),
                Err(DecideRefusal::NotApprover { allowed_groups }) => push(
                    out,
                    format!(
                        "user {:?} may not decide PromotionRequests of tenant {tenant} (rule: role \
                         matrix); only members of {allowed_groups:?} may",
                        user.username
                    ),
                ),
            }
            let requester = spec_field(obj, "requester").and_then(Value::as_str);
            if requester.is_none_or(str::is_empty) {
                push(
                    out,
                    "spec.requester is unknown (the request was created while the webhook was \
                     not registered), so anti-self-approval cannot be verified (rule: \
                     anti-self-approval); delete and recreate the PromotionRequest so its \
                     requester is stamped"
                        .to_owned(),
                );
            } else if requester == Some(user.username) {
                push(
                    out,
                    format!(
                        "{:?} requested this promotion and may not decide it (rule: \
                         anti-self-approval, whatever the role); ask another member of {:?}",
                        user.username,
                        policy.roles.approver_groups(tenant)
                    ),
                );
            }
            match decision_str(decision, "approver") {
                Some(a) if a == user.username => {}
                other => push(
                    out,
                    format!(
                        "spec.decision.approver must be the authenticated user {:?}, got {:?} \
                         (rule: the approver is stamped from userInfo and cannot be spoofed); \
                         omit it and the webhook sets it",
                        user.username,
                        other.unwrap_or("<none>")
                    ),
                ),
            }
        }
    }
}

/// Requests on the `status` subresource come only from the operator.
pub fn check_status_writer(
    policy: &Policy,
    req: &AdmissionRequest<DynamicObject>,
    out: &mut Vec<Finding>,
) {
    let user = principal(req);
    if !policy.roles.is_operator(user) {
        push(
            out,
            format!(
                "status is written only by the operator (rule: status writer); user {:?} is not \
                 the operator (usernames {:?}, groups {:?}); change spec instead",
                user.username, policy.config.operator.usernames, policy.config.operator.groups
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fixtures::{self, ReviewSpec, approval, promotion};
    use crate::rules::tests::req;

    fn policy() -> Policy {
        Policy::new(Config::default()).unwrap()
    }

    fn promo_findings(spec: &ReviewSpec) -> Vec<Finding> {
        policy()
            .findings(&req(spec))
            .into_iter()
            .filter(|f| f.rule_set == RuleSet::Promotion)
            .collect()
    }

    fn approve_as(user: &'static str, groups: Vec<&'static str>) -> ReviewSpec {
        ReviewSpec {
            username: user,
            groups,
            object: Some(promotion(
                Some("finance-devops"),
                Some(approval(Some(user))),
            )),
            ..fixtures::promotion_approve()
        }
    }

    fn assert_denied(spec: &ReviewSpec, needle: &str) {
        let f = promo_findings(spec);
        assert!(
            f.iter().any(|f| f.message.contains(needle)),
            "expected {needle:?} in {f:?}"
        );
        assert!(!policy().validate(&req(spec)).allowed());
    }

    #[test]
    fn devops_creates() {
        assert!(promo_findings(&fixtures::promotion_create()).is_empty());
        assert!(
            policy()
                .validate(&req(&fixtures::promotion_create()))
                .allowed()
        );
    }

    #[test]
    fn argocd_creates() {
        let spec = ReviewSpec {
            username: "argocd",
            groups: vec!["apim:gitops", "system:authenticated"],
            object: Some(promotion(Some("argocd"), None)),
            ..fixtures::promotion_create()
        };
        assert!(promo_findings(&spec).is_empty());
    }

    #[test]
    fn other_tenant_cannot_create() {
        let spec = ReviewSpec {
            username: "retail-devops",
            groups: vec!["apim:tenant-retail:devops", "system:authenticated"],
            object: Some(promotion(Some("retail-devops"), None)),
            ..fixtures::promotion_create()
        };
        assert_denied(
            &spec,
            "may not create PromotionRequests in tenant tenant-finance",
        );
    }

    #[test]
    fn spoofed_or_missing_requester_on_create() {
        let spec = ReviewSpec {
            object: Some(promotion(Some("finance-cpi"), None)),
            ..fixtures::promotion_create()
        };
        assert_denied(&spec, "spec.requester must be the authenticated user");
        let spec = ReviewSpec {
            object: Some(promotion(None, None)),
            ..fixtures::promotion_create()
        };
        assert_denied(&spec, "<none>");
    }

    #[test]
    fn decision_at_creation_is_denied() {
        let spec = ReviewSpec {
            object: Some(promotion(
                Some("finance-devops"),
                Some(approval(Some("finance-devops"))),
            )),
            ..fixtures::promotion_create()
        };
        assert_denied(&spec, "cannot be set at creation");
    }

    #[test]
    fn tenant_cpi_approves() {
        assert!(promo_findings(&fixtures::promotion_approve()).is_empty());
        assert!(
            policy()
                .validate(&req(&fixtures::promotion_approve()))
                .allowed()
        );
    }

    #[test]
    fn second_cpi_and_admin_approve_and_reject() {
        let spec = approve_as("finance-cpi-2", vec!["apim:tenant-finance:cpi"]);
        assert!(promo_findings(&spec).is_empty());
        let mut spec = approve_as("cpi-admin", vec!["apim:cpi-admin"]);
        assert!(promo_findings(&spec).is_empty());
        let mut d = approval(Some("cpi-admin"));
        d["verdict"] = "Rejected".into();
        spec.object = Some(promotion(Some("finance-devops"), Some(d)));
        assert!(promo_findings(&spec).is_empty());
    }

    #[test]
    fn devops_cannot_approve() {
        let spec = approve_as("finance-devops-2", vec!["apim:tenant-finance:devops"]);
        assert_denied(
            &spec,
            "may not decide PromotionRequests of tenant tenant-finance",
        );
    }

    #[test]
    fn other_tenant_cpi_cannot_approve() {
        let spec = approve_as("retail-cpi", vec!["apim:tenant-retail:cpi"]);
        assert_denied(&spec, "apim:tenant-finance:cpi");
    }

    #[test]
    fn argocd_never_approves() {
        let spec = approve_as("argocd", vec!["apim:gitops", "apim:cpi-admin"]);
        assert_denied(&spec, "service account or GitOps identity");
    }

    #[test]
    fn no_self_approval_whatever_the_role() {
        // cpi-admin requested it and then tries to approve it.
        let spec = ReviewSpec {
            username: "cpi-admin",
            groups: vec!["apim:cpi-admin"],
            object: Some(promotion(
                Some("cpi-admin"),
                Some(approval(Some("cpi-admin"))),
            )),
            old_object: Some(promotion(Some("cpi-admin"), None)),
            ..fixtures::promotion_approve()
        };
        let f = promo_findings(&spec);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("anti-self-approval"));
    }

    #[test]
    fn request_without_requester_cannot_be_decided() {
        let spec = ReviewSpec {
            object: Some(promotion(None, Some(approval(Some("finance-cpi"))))),
            old_object: Some(promotion(None, None)),
            ..fixtures::promotion_approve()
        };
        assert_denied(&spec, "spec.requester is unknown");
    }

    #[test]
    fn spoofed_approver_is_denied() {
        let spec = ReviewSpec {
            object: Some(promotion(
                Some("finance-devops"),
                Some(approval(Some("cpi-admin"))),
            )),
            ..fixtures::promotion_approve()
        };
        assert_denied(
            &spec,
            "spec.decision.approver must be the authenticated user",
        );
    }

    #[test]
    fn bad_verdict_is_denied() {
        let mut d = approval(Some("finance-cpi"));
        d["verdict"] = "Maybe".into();
        let spec = ReviewSpec {
            object: Some(promotion(Some("finance-devops"), Some(d))),
            ..fixtures::promotion_approve()
        };
        assert_denied(&spec, "Approved or Rejected");
    }

    #[test]
    fn decided_request_cannot_be_redecided_or_undecided() {
        let decided = promotion(Some("finance-devops"), Some(approval(Some("finance-cpi"))));
        let mut rejected = approval(Some("cpi-admin"));
        rejected["verdict"] = "Rejected".into();
        let spec = ReviewSpec {
            username: "cpi-admin",
            groups: vec!["apim:cpi-admin"],
            old_object: Some(decided.clone()),
            object: Some(promotion(Some("finance-devops"), Some(rejected))),
            ..fixtures::promotion_approve()
        };
        assert_denied(&spec, "cannot be re-decided");
        let spec = ReviewSpec {
            old_object: Some(decided.clone()),
            object: Some(promotion(Some("finance-devops"), None)),
            ..fixtures::promotion_approve()
        };
        assert_denied(&spec, "cannot be re-decided");
        // Unchanged decision (e.g. a label edit by anyone) is fine.
        let spec = ReviewSpec {
            username: "finance-devops",
            groups: vec!["apim:tenant-finance:devops"],
            old_object: Some(decided.clone()),
            object: Some(decided),
            ..fixtures::promotion_approve()
        };
        assert!(promo_findings(&spec).is_empty());
    }

    #[test]
    fn immutable_fields() {
        let mut changed = promotion(Some("finance-devops"), None);
        changed["spec"]["revision"] = "sha256:other".into();
        changed["spec"]["requester"] = "finance-cpi".into();
        let spec = ReviewSpec {
            username: "finance-devops",
            groups: vec!["apim:tenant-finance:devops"],
            old_object: Some(promotion(Some("finance-devops"), None)),
            object: Some(changed),
            ..fixtures::promotion_approve()
        };
        let f = promo_findings(&spec);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            f.iter()
                .any(|f| f.message.contains("spec.revision is immutable"))
        );
        assert!(
            f.iter()
                .any(|f| f.message.contains("spec.requester is immutable"))
        );
        // The reason may be edited.
        let mut reason = promotion(Some("finance-devops"), None);
        reason["spec"]["reason"] = "new reason".into();
        let spec = ReviewSpec {
            object: Some(reason),
            ..spec
        };
        assert!(promo_findings(&spec).is_empty());
    }

    #[test]
    fn update_without_old_object_is_denied() {
        let spec = ReviewSpec {
            old_object: None,
            ..fixtures::promotion_approve()
        };
        assert_denied(&spec, "without oldObject");
    }

    #[test]
    fn status_only_by_operator() {
        let base = ReviewSpec {
            sub_resource: Some("status"),
            operation: "UPDATE",
            old_object: Some(promotion(Some("finance-devops"), None)),
            ..fixtures::promotion_approve()
        };
        assert_denied(&base, "status is written only by the operator");
        let admin = ReviewSpec {
            username: "kubernetes-admin",
            groups: vec!["system:masters"],
            ..base.clone()
        };
        assert_denied(&admin, "status is written only by the operator");
        let op = ReviewSpec {
            username: "apim-operator",
            groups: vec!["system:authenticated"],
            ..base.clone()
        };
        assert!(policy().validate(&req(&op)).allowed());
        let sa = ReviewSpec {
            username: "system:serviceaccount:apim-system:apim-operator",
            groups: vec![
                "system:serviceaccounts",
                "system:serviceaccounts:apim-system",
            ],
            ..base
        };
        assert!(policy().validate(&req(&sa)).allowed());
    }

    #[test]
    fn dry_run_is_judged_the_same() {
        let mut spec = approve_as("finance-devops", vec!["apim:tenant-finance:devops"]);
        let wet = policy().validate(&req(&spec));
        spec.dry_run = true;
        let dry = policy().validate(&req(&spec));
        assert_eq!(wet, dry);
        assert!(!dry.allowed());
    }

    #[test]
    fn cluster_scoped_request_is_denied() {
        let mut spec = fixtures::promotion_create();
        spec.namespace = None;
        fixtures::remove_path(spec.object.as_mut().unwrap(), &["metadata", "namespace"]);
        assert_denied(&spec, "tenant's namespace");
    }
}
