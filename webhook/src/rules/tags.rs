//! Mandatory tags (the shared rules of `crds::tags`), on the APIM kinds (rule set `tags`) and
//! on opted-in Namespaces and workloads (rule set `workloadTags`).
//!
//! - Objects being deleted (`metadata.deletionTimestamp` set) are not judged: removing a
//!   finalizer must always succeed.
//! - UPDATE whose tags are unchanged from the old object is *ratcheted*: violations become
//!   warnings, so an object admitted before the rule (or before the webhook) can still be
//!   updated; changing a tag to something invalid is judged normally.
//! - Namespaces are judged only while they carry `apim.cab-i.com/enforce-tags=true`
//!   themselves; workloads are selected by the webhook configuration's `namespaceSelector`
//!   (no lookup here). Workloads owned by a controller (a Pod of a ReplicaSet, a Job of a
//!   CronJob) are judged through their owner, never on their own: a controller cannot react
//!   to a denial.

use std::collections::BTreeMap;

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};

use super::{Finding, Policy, RuleSet};
use crate::review::{Target, target};

/// The opt-in label on a Namespace.
pub const ENFORCE_LABEL: &str = crds::tags::ENFORCE_TAGS_LABEL;
/// Prefix of every tag label.
const TAG_PREFIX: &str = "apim.cab-i.com/";

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

/// The messages of every tag violation of an object's labels and annotations.
pub fn violations(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Vec<String> {
    match crds::tags::validate(labels, annotations) {
        Ok(_) => Vec::new(),
        Err(vs) => vs.iter().map(ToString::to_string).collect(),
    }
}

fn labels(obj: &DynamicObject) -> &BTreeMap<String, String> {
    obj.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

fn annotations(obj: &DynamicObject) -> &BTreeMap<String, String> {
    obj.metadata.annotations.as_ref().unwrap_or(&EMPTY)
}

/// `apim.cab-i.com/*` labels of an object.
fn tag_labels(o: &DynamicObject) -> impl Iterator<Item = (&String, &String)> {
    labels(o).iter().filter(|(k, _)| k.starts_with(TAG_PREFIX))
}

/// Whether two objects have the same tags: `apim.cab-i.com/*` labels and owner annotation.
fn same_tags(a: &DynamicObject, b: &DynamicObject) -> bool {
    let owner = crds::tags::OWNER_ANNOTATION;
    tag_labels(a).eq(tag_labels(b)) && annotations(a).get(owner) == annotations(b).get(owner)
}

fn judge(
    req: &AdmissionRequest<DynamicObject>,
    obj: &DynamicObject,
    rule_set: RuleSet,
    out: &mut Vec<Finding>,
) {
    if obj.metadata.deletion_timestamp.is_some() {
        return;
    }
    let found = violations(labels(obj), annotations(obj));
    if found.is_empty() {
        return;
    }
    let ratcheted = req.operation == Operation::Update
        && req
            .old_object
            .as_ref()
            .is_some_and(|old| same_tags(old, obj));
    out.extend(found.into_iter().map(|message| Finding {
        rule_set,
        message: if ratcheted {
            format!("{message} (tags unchanged by this update: fix them soon)")
        } else {
            message
        },
        ratcheted,
    }));
}

/// Tags of the five APIM kinds.
pub fn check_apim(_policy: &Policy, req: &AdmissionRequest<DynamicObject>, out: &mut Vec<Finding>) {
    if let Some(obj) = req.object.as_ref() {
        judge(req, obj, RuleSet::Tags, out);
    }
}

/// Tags of opted-in Namespaces and workloads.
pub fn check_workload(
    _policy: &Policy,
    req: &AdmissionRequest<DynamicObject>,
    out: &mut Vec<Finding>,
) {
    let Some(obj) = req.object.as_ref() else {
        return;
    };
    match target(req) {
        Target::Namespace => {
            if labels(obj).get(ENFORCE_LABEL).map(String::as_str) != Some("true") {
                return;
            }
        }
        Target::Workload => {
            let controlled = obj
                .metadata
                .owner_references
                .as_ref()
                .is_some_and(|refs| refs.iter().any(|r| r.controller == Some(true)));
            if controlled {
                return;
            }
        }
        Target::Apim(_) | Target::Other => return,
    }
    judge(req, obj, RuleSet::WorkloadTags, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fixtures::{self, ReviewSpec};
    use crate::rules::tests::req;
    use serde_json::json;

    fn policy() -> Policy {
        Policy::new(Config::default()).unwrap()
    }

    fn findings(spec: &ReviewSpec) -> Vec<Finding> {
        policy().findings(&req(spec))
    }

    fn with_label(key: &str, value: &str) -> ReviewSpec {
        let mut spec = fixtures::api_create();
        fixtures::set_path(
            spec.object.as_mut().unwrap(),
            &["metadata", "labels", key],
            json!(value),
        );
        spec
    }

    #[test]
    fn fully_tagged_object_passes() {
        assert!(findings(&fixtures::api_create()).is_empty());
    }

    #[test]
    fn every_missing_tag_is_reported_at_once() {
        let mut spec = fixtures::api_create();
        spec.object = Some(fixtures::untagged_api());
        let f = findings(&spec);
        for tag in [
            "apim.cab-i.com/environment",
            "apim.cab-i.com/project",
            "apim.cab-i.com/cost-center",
            "apim.cab-i.com/ttl",
            "apim.cab-i.com/auto-teardown",
            "apim.cab-i.com/data-class",
            "apim.cab-i.com/owner",
        ] {
            assert!(
                f.iter().any(|f| f.message.contains(tag)),
                "{tag} missing from {f:?}"
            );
        }
        assert!(
            f.iter()
                .all(|f| f.rule_set == RuleSet::Tags && !f.ratcheted)
        );
    }

    #[test]
    fn malformed_values_are_reported() {
        for (k, v) in [
            ("apim.cab-i.com/environment", "production"),
            ("apim.cab-i.com/auto-teardown", "yes"),
            ("apim.cab-i.com/data-class", "secret"),
            ("apim.cab-i.com/ttl", "forever"),
        ] {
            let f = findings(&with_label(k, v));
            assert!(
                f.iter().any(|f| f.message.contains(k)),
                "{k}={v} not reported: {f:?}"
            );
        }
    }

    #[test]
    fn ttl_over_30_days_outside_prod() {
        let f = findings(&with_label("apim.cab-i.com/ttl", "45d"));
        assert!(
            f.iter().any(|f| f.message.contains("apim.cab-i.com/ttl")),
            "{f:?}"
        );
        assert!(findings(&with_label("apim.cab-i.com/ttl", "30d")).is_empty());
    }

    #[test]
    fn ttl_over_30_days_in_prod_is_fine() {
        let mut spec = with_label("apim.cab-i.com/ttl", "90d");
        fixtures::set_path(
            spec.object.as_mut().unwrap(),
            &["metadata", "labels", "apim.cab-i.com/environment"],
            json!("prod"),
        );
        fixtures::set_path(
            spec.object.as_mut().unwrap(),
            &["metadata", "labels", "apim.cab-i.com/auto-teardown"],
            json!("false"),
        );
        let f: Vec<_> = findings(&spec)
            .into_iter()
            .filter(|f| f.message.contains("apim.cab-i.com/ttl"))
            .collect();
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn update_with_unchanged_bad_tags_is_ratcheted() {
        let mut spec = fixtures::api_create();
        spec.operation = "UPDATE";
        spec.object = Some(fixtures::untagged_api());
        spec.old_object = Some(fixtures::untagged_api());
        fixtures::set_path(
            spec.object.as_mut().unwrap(),
            &["spec", "displayName"],
            json!("Orders v2"),
        );
        let verdict = policy().validate(&req(&spec));
        assert!(verdict.allowed());
        assert!(!verdict.warned.is_empty());

        // Removing a tag on update is denied.
        let mut spec = fixtures::api_create();
        spec.operation = "UPDATE";
        spec.old_object = spec.object.clone();
        fixtures::remove_path(
            spec.object.as_mut().unwrap(),
            &["metadata", "labels", "apim.cab-i.com/project"],
        );
        let verdict = policy().validate(&req(&spec));
        assert!(!verdict.allowed());
    }

    #[test]
    fn objects_being_deleted_are_not_judged() {
        let mut spec = fixtures::api_create();
        spec.operation = "UPDATE";
        let mut obj = fixtures::untagged_api();
        obj["metadata"]["deletionTimestamp"] = json!("2026-11-25T08:00:00Z");
        spec.object = Some(obj);
        spec.old_object = Some(fixtures::api(&["dev"]));
        assert!(findings(&spec).is_empty());
    }

    #[test]
    fn workloads_in_opted_in_namespaces() {
        let spec = fixtures::deployment(json!({"app": "orders"}));
        let f = findings(&spec);
        assert!(!f.is_empty());
        assert!(f.iter().all(|f| f.rule_set == RuleSet::WorkloadTags));
        assert!(findings(&fixtures::deployment(fixtures::tag_labels())).is_empty());
    }

    #[test]
    fn controlled_pods_are_judged_through_their_owner() {
        let mut spec = fixtures::deployment(json!({"app": "orders"}));
        spec.group = "";
        spec.kind = "Pod";
        spec.resource = "pods";
        spec.object.as_mut().unwrap()["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "orders-5d4f",
            "uid": "0b3c", "controller": true
        }]);
        assert!(findings(&spec).is_empty());
        spec.object.as_mut().unwrap()["metadata"]["ownerReferences"][0]["controller"] =
            json!(false);
        assert!(!findings(&spec).is_empty());
    }

    #[test]
    fn namespaces_only_with_their_own_opt_in_label() {
        let ns = |labels: serde_json::Value| ReviewSpec {
            group: "",
            version: "v1",
            kind: "Namespace",
            resource: "namespaces",
            namespace: None,
            name: "tenant-finance",
            object: Some(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "tenant-finance", "labels": labels}})),
            ..fixtures::api_create()
        };
        assert!(findings(&ns(json!({"team": "a"}))).is_empty());
        let f = findings(&ns(json!({ENFORCE_LABEL: "true"})));
        assert!(f.iter().any(|f| f.message.contains("apim.cab-i.com/owner")));
        let mut tagged = fixtures::tag_labels();
        tagged[ENFORCE_LABEL] = json!("true");
        let mut spec = ns(tagged);
        spec.object.as_mut().unwrap()["metadata"]["annotations"] =
            json!({"apim.cab-i.com/owner": "ops@cab-i.com"});
        assert!(findings(&spec).is_empty());
    }

    #[test]
    fn workload_tags_mode_is_separate() {
        let cfg = Config::from_yaml("enforcement: {workloadTags: warn}", "t").unwrap();
        let p = Policy::new(cfg).unwrap();
        let v = p.validate(&req(&fixtures::deployment(json!({}))));
        assert!(v.allowed());
        assert!(!v.warned.is_empty());
        let mut spec = fixtures::api_create();
        spec.object = Some(fixtures::untagged_api());
        assert!(!p.validate(&req(&spec)).allowed());
    }
}
