//! Mutations (JSON patch), computed from the request only:
//!
//! - CREATE of an Api, Application or Subscription (the kinds with state on a gateway):
//!   the operator's finalizer is added, so the object is protected from its first write and
//!   the operator does not spend a write (through this webhook again) to add it;
//! - every CREATE/UPDATE of an APIM kind: `metadata.annotations["apim.cab-i.com/actor"]` is
//!   the acting user (`userInfo.username`), except an UPDATE that changes neither spec nor
//!   labels (a controller's finalizer, say), which keeps the recorded actor;
//! - PromotionRequest CREATE: `spec.requester` is the acting user, whatever was supplied;
//! - PromotionRequest UPDATE that newly sets `spec.decision`: `spec.decision.approver` is the
//!   acting user, whatever was supplied;
//! - PromotionRequest UPDATE that drops `spec.requester` (an apply from Git that does not
//!   carry it): the old requester is put back. Changing it to another value is left to the
//!   validating webhook, which denies it.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::{Value, json};

use super::promotion::spec_field;
use crate::review::{ApimKind, Target, target};

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}

/// The JSON patch operations for a request (empty when nothing changes).
pub fn mutations(req: &AdmissionRequest<DynamicObject>) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    let Target::Apim(kind) = target(req) else {
        return ops;
    };
    if req.sub_resource.as_deref().is_some_and(|s| !s.is_empty())
        || !matches!(req.operation, Operation::Create | Operation::Update)
    {
        return ops;
    }
    let Some(obj) = req.object.as_ref() else {
        return ops;
    };
    if req.operation == Operation::Create
        && matches!(
            kind,
            ApimKind::Api | ApimKind::Application | ApimKind::Subscription
        )
    {
        match obj.metadata.finalizers.as_ref() {
            None => ops.push(add(&["metadata", "finalizers"], json!([crds::FINALIZER]))),
            Some(f) if !f.iter().any(|f| f == crds::FINALIZER) => {
                ops.push(add(
                    &["metadata", "finalizers", "-"],
                    json!(crds::FINALIZER),
                ));
            }
            Some(_) => {}
        }
    }
    let Some(user) = req.user_info.username.as_deref().filter(|u| !u.is_empty()) else {
        return ops;
    };

    let actor = crds::tags::ACTOR_ANNOTATION;
    // The actor is whoever last changed what the object says (spec, labels), not a controller
    // adding or removing a finalizer: such an update keeps the recorded actor.
    let metadata_only = req.operation == Operation::Update
        && req.old_object.as_ref().is_some_and(|old| {
            old.data.get("spec") == obj.data.get("spec")
                && old.metadata.labels == obj.metadata.labels
        });
    match obj.metadata.annotations.as_ref() {
        _ if metadata_only => {}
        None => ops.push(add(&["metadata", "annotations"], json!({ actor: user }))),
        Some(a) if a.get(actor).map(String::as_str) != Some(user) => {
            ops.push(add(&["metadata", "annotations", actor], json!(user)));
        }
        Some(_) => {}
    }

    if kind != ApimKind::PromotionRequest || !obj.data.get("spec").is_some_and(Value::is_object) {
        return ops;
    }
    let requester = spec_field(obj, "requester").and_then(Value::as_str);
    match req.operation {
        Operation::Create => {
            if requester != Some(user) {
                ops.push(add(&["spec", "requester"], json!(user)));
            }
        }
        Operation::Update => {
            let old = req.old_object.as_ref();
            let old_requester = old.and_then(|o| spec_field(o, "requester"));
            if let (None, Some(r)) = (requester, old_requester) {
                ops.push(add(&["spec", "requester"], r.clone()));
            }
            let newly_decided = old.is_some_and(|o| spec_field(o, "decision").is_none());
            if let Some(decision) = spec_field(obj, "decision").filter(|d| d.is_object())
                && newly_decided
                && decision.get("approver").and_then(Value::as_str) != Some(user)
            {
                ops.push(add(&["spec", "decision", "approver"], json!(user)));
            }
        }
        Operation::Delete | Operation::Connect => {}
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, ReviewSpec, approval, promotion};
    use crate::rules::tests::req;

    fn apply(spec: &ReviewSpec) -> (Vec<PatchOperation>, Value) {
        let ops = mutations(&req(spec));
        let mut doc = spec.object.clone().unwrap_or(Value::Null);
        json_patch::patch(&mut doc, &ops).unwrap();
        (ops, doc)
    }

    fn actor_ops(ops: &[PatchOperation]) -> usize {
        ops.iter()
            .filter(|op| op.path().to_string().contains("annotations"))
            .count()
    }

    #[test]
    fn stamps_actor_on_create_and_update() {
        let (ops, doc) = apply(&fixtures::api_create());
        assert_eq!(actor_ops(&ops), 1);
        assert_eq!(
            doc["metadata"]["annotations"]["apim.cab-i.com/actor"],
            "finance-devops"
        );
        // The owner annotation is kept.
        assert_eq!(
            doc["metadata"]["annotations"]["apim.cab-i.com/owner"],
            "alice@cab-i.com"
        );
        let mut spec = fixtures::api_create();
        spec.operation = "UPDATE";
        spec.old_object = spec.object.clone();
        if let Some(o) = spec.object.as_mut() {
            o["spec"]["version"] = json!("9.9.9");
        }
        spec.username = "cpi-admin";
        let (_, doc) = apply(&spec);
        assert_eq!(
            doc["metadata"]["annotations"]["apim.cab-i.com/actor"],
            "cpi-admin"
        );
    }

    #[test]
    fn a_metadata_only_update_keeps_the_recorded_actor() {
        let (_, created) = apply(&fixtures::api_create());
        let mut spec = fixtures::api_create();
        spec.operation = "UPDATE";
        spec.old_object = Some(created.clone());
        let mut with_finalizer = created;
        with_finalizer["metadata"]["finalizers"] = json!(["apim.cab-i.com/cleanup"]);
        spec.object = Some(with_finalizer);
        spec.username = "system:serviceaccount:apim-system:apim-operator";
        let (ops, doc) = apply(&spec);
        assert!(ops.is_empty(), "{ops:?}");
        assert_eq!(
            doc["metadata"]["annotations"]["apim.cab-i.com/actor"],
            "finance-devops"
        );
    }

    #[test]
    fn creates_annotations_when_absent_and_skips_when_current() {
        let mut spec = fixtures::api_create();
        spec.object = Some(fixtures::untagged_api());
        let (ops, doc) = apply(&spec);
        assert_eq!(actor_ops(&ops), 1);
        assert_eq!(
            doc["metadata"]["annotations"]["apim.cab-i.com/actor"],
            "finance-devops"
        );
        spec.object = Some(doc);
        assert!(mutations(&req(&spec)).is_empty());
    }

    #[test]
    fn requester_is_stamped_on_create_replacing_a_spoof() {
        let spec = ReviewSpec {
            object: Some(promotion(Some("cpi-admin"), None)),
            ..fixtures::promotion_create()
        };
        let (_, doc) = apply(&spec);
        assert_eq!(doc["spec"]["requester"], "finance-devops");
        let spec = ReviewSpec {
            object: Some(promotion(None, None)),
            ..fixtures::promotion_create()
        };
        let (_, doc) = apply(&spec);
        assert_eq!(doc["spec"]["requester"], "finance-devops");
    }

    #[test]
    fn approver_is_stamped_when_decision_newly_set() {
        let spec = ReviewSpec {
            object: Some(promotion(
                Some("finance-devops"),
                Some(approval(Some("somebody-else"))),
            )),
            ..fixtures::promotion_approve()
        };
        let (_, doc) = apply(&spec);
        assert_eq!(doc["spec"]["decision"]["approver"], "finance-cpi");
        let spec = ReviewSpec {
            object: Some(promotion(Some("finance-devops"), Some(approval(None)))),
            ..fixtures::promotion_approve()
        };
        let (_, doc) = apply(&spec);
        assert_eq!(doc["spec"]["decision"]["approver"], "finance-cpi");
        // Requester unchanged.
        assert_eq!(doc["spec"]["requester"], "finance-devops");
    }

    #[test]
    fn existing_decision_is_not_restamped() {
        let decided = promotion(Some("finance-devops"), Some(approval(Some("finance-cpi"))));
        let spec = ReviewSpec {
            username: "cpi-admin",
            old_object: Some(decided.clone()),
            object: Some(decided),
            ..fixtures::promotion_approve()
        };
        let (_, doc) = apply(&spec);
        assert_eq!(doc["spec"]["decision"]["approver"], "finance-cpi");
    }

    #[test]
    fn dropped_requester_is_restored() {
        let spec = ReviewSpec {
            username: "argocd",
            old_object: Some(promotion(Some("argocd"), None)),
            object: Some(promotion(None, None)),
            ..fixtures::promotion_approve()
        };
        let (_, doc) = apply(&spec);
        assert_eq!(doc["spec"]["requester"], "argocd");
    }

    #[test]
    fn no_mutation_for_delete_status_workloads_or_anonymous() {
        let mut spec = fixtures::api_create();
        spec.operation = "DELETE";
        spec.old_object = spec.object.take();
        assert!(mutations(&req(&spec)).is_empty());

        let spec = ReviewSpec {
            sub_resource: Some("status"),
            ..fixtures::promotion_approve()
        };
        assert!(mutations(&req(&spec)).is_empty());

        assert!(mutations(&req(&fixtures::deployment(fixtures::tag_labels()))).is_empty());

        let mut spec = fixtures::api_create();
        spec.username = "";
        let (ops, doc) = apply(&spec);
        assert_eq!(actor_ops(&ops), 0, "{ops:?}");
        assert!(doc["metadata"]["annotations"]["apim.cab-i.com/actor"].is_null());
    }

    #[test]
    fn the_finalizer_is_added_at_create_of_kinds_with_gateway_state() {
        let (_, doc) = apply(&fixtures::api_create());
        assert_eq!(doc["metadata"]["finalizers"], json!([crds::FINALIZER]));
        // Kept once, and next to a foreign finalizer.
        let mut spec = fixtures::api_create();
        if let Some(o) = spec.object.as_mut() {
            o["metadata"]["finalizers"] = json!(["example.com/other"]);
        }
        let (_, doc) = apply(&spec);
        assert_eq!(
            doc["metadata"]["finalizers"],
            json!(["example.com/other", crds::FINALIZER])
        );
        spec.object = Some(doc);
        let (_, doc) = apply(&spec);
        assert_eq!(
            doc["metadata"]["finalizers"],
            json!(["example.com/other", crds::FINALIZER])
        );
        // Not on update (a user who removed it by hand means it), nor on kinds without
        // gateway state.
        let mut update = fixtures::api_create();
        update.operation = "UPDATE";
        update.old_object = update.object.clone();
        let (_, doc) = apply(&update);
        assert!(doc["metadata"]["finalizers"].is_null());
        let spec = ReviewSpec {
            object: Some(promotion(None, None)),
            ..fixtures::promotion_create()
        };
        let (_, doc) = apply(&spec);
        assert!(doc["metadata"]["finalizers"].is_null());
    }

    #[test]
    fn dry_run_gets_the_same_patch() {
        let mut spec = fixtures::promotion_create();
        spec.object = Some(promotion(None, None));
        let wet = mutations(&req(&spec));
        spec.dry_run = true;
        assert_eq!(wet, mutations(&req(&spec)));
    }
}
