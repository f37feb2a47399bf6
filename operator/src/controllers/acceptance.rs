//! Whether an object is accepted: it matches its kind's schema and carries every
//! mandatory tag, well formed. Pure: no client.

use crds::conditions::reasons;
use kube::api::DynamicObject;
use serde::de::DeserializeOwned;

/// Reason of `Accepted=True`.
pub const VALID: &str = "Valid";

/// The verdict on one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Acceptance {
    /// Schema and tags are fine.
    Accepted,
    /// The object does not match its kind's Rust type; the message names the field.
    InvalidSpec(String),
    /// Tags are missing or malformed; the message lists every violation.
    InvalidTags(String),
}

impl Acceptance {
    /// `(status, reason, message)` of the `Accepted` condition.
    pub fn condition(&self) -> (bool, &'static str, String) {
        match self {
            Acceptance::Accepted => (
                true,
                VALID,
                "the spec is valid and every mandatory tag is present and well formed".into(),
            ),
            Acceptance::InvalidSpec(m) => (false, reasons::INVALID_SPEC, m.clone()),
            Acceptance::InvalidTags(m) => (false, reasons::TAG_VIOLATION, m.clone()),
        }
    }
}

/// Records `verdict` on `status`: the object's generation as observed, and the `Accepted`
/// condition.
pub fn record<S: crds::status::CommonStatus>(
    status: &mut S,
    obj: &DynamicObject,
    verdict: &Acceptance,
    now: chrono::DateTime<chrono::Utc>,
) {
    let generation = obj.metadata.generation;
    status.set_observed_generation(generation);
    let (accepted, reason, message) = verdict.condition();
    crds::conditions::set_condition(
        status.conditions_mut(),
        crds::conditions::types::ACCEPTED,
        accepted,
        reason,
        &message,
        generation,
        now,
    );
}

/// Judges `obj` as a `K`: typed deserialization first (naming the failing field), then
/// the shared tag validation.
pub fn judge<K: DeserializeOwned>(obj: &DynamicObject) -> Acceptance {
    judge_typed::<K>(obj).0
}

/// [`judge`], also returning the typed object when it is accepted (deserialized once).
pub fn judge_typed<K: DeserializeOwned>(obj: &DynamicObject) -> (Acceptance, Option<K>) {
    let value = match serde_json::to_value(obj) {
        Ok(v) => v,
        Err(e) => {
            return (
                Acceptance::InvalidSpec(format!("object cannot be read: {e}")),
                None,
            );
        }
    };
    let typed = match serde_path_to_error::deserialize::<_, K>(value) {
        Ok(typed) => typed,
        Err(e) => {
            return (
                Acceptance::InvalidSpec(format!("{}: {}", e.path(), e.inner())),
                None,
            );
        }
    };
    match crds::tags::validate_meta(&obj.metadata) {
        Ok(_) => (Acceptance::Accepted, Some(typed)),
        Err(violations) => (Acceptance::InvalidTags(violations.to_string()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(
        spec: serde_json::Value,
        labels: serde_json::Value,
        annotations: serde_json::Value,
    ) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apim.cab-i.com/v1alpha1",
            "kind": "Api",
            "metadata": {"name": "a", "namespace": "n", "labels": labels, "annotations": annotations},
            "spec": spec,
        }))
        .expect("object")
    }

    fn good_spec() -> serde_json::Value {
        serde_json::json!({
            "displayName": "Payments", "version": "1.0.0",
            "backendUrl": "https://payments.example.com",
            "definition": {"inline": "openapi: 3.0.3"}, "stages": ["dev"]
        })
    }

    fn good_labels() -> serde_json::Value {
        serde_json::json!({
            "apim.cab-i.com/environment": "dev", "apim.cab-i.com/project": "payments",
            "apim.cab-i.com/cost-center": "cc-1", "apim.cab-i.com/ttl": "7d",
            "apim.cab-i.com/auto-teardown": "true", "apim.cab-i.com/data-class": "internal"
        })
    }

    fn owner() -> serde_json::Value {
        serde_json::json!({"apim.cab-i.com/owner": "team@example.com"})
    }

    #[test]
    fn a_tagged_valid_object_is_accepted() {
        assert_eq!(
            judge::<crds::Api>(&api(good_spec(), good_labels(), owner())),
            Acceptance::Accepted
        );
    }

    #[test]
    fn a_wrongly_typed_spec_names_the_field() {
        let mut spec = good_spec();
        spec["stages"] = serde_json::json!(["dev", "moon"]);
        match judge::<crds::Api>(&api(spec, good_labels(), owner())) {
            Acceptance::InvalidSpec(m) => assert!(m.contains("spec.stages"), "{m}"),
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
        let mut spec = good_spec();
        spec["displayName"] = serde_json::json!(42);
        match judge::<crds::Api>(&api(spec, good_labels(), owner())) {
            Acceptance::InvalidSpec(m) => assert!(m.contains("spec.displayName"), "{m}"),
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn missing_tags_are_all_listed() {
        match judge::<crds::Api>(&api(
            good_spec(),
            serde_json::json!({}),
            serde_json::json!({}),
        )) {
            Acceptance::InvalidTags(m) => {
                for tag in [
                    "environment",
                    "project",
                    "cost-center",
                    "ttl",
                    "auto-teardown",
                    "data-class",
                    "owner",
                ] {
                    assert!(
                        m.contains(&format!("apim.cab-i.com/{tag}")),
                        "{tag} missing from: {m}"
                    );
                }
            }
            other => panic!("expected InvalidTags, got {other:?}"),
        }
    }
}
