//! The status the operator owns on every kind (`observedGeneration`, `conditions`):
//! reading it back, computing the desired one (pure), and the stored status it makes.

use chrono::{DateTime, Utc};
use crds::PendingEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::DynamicObject;

use super::acceptance::Acceptance;

/// The status fields the operator owns, as currently stored.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OwnedStatus {
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `status.conditions` (empty when missing or unreadable).
    pub conditions: Vec<Condition>,
    /// `status.pendingEvents`: the outbox (empty when missing or unreadable).
    pub pending_events: Vec<PendingEvent>,
    /// `status.owedEvents`.
    pub owed_events: Option<i32>,
}

crds::common_status!(OwnedStatus);

impl OwnedStatus {
    /// Reads the owned fields of `obj`'s status; unreadable conditions count as none, so
    /// they get rewritten.
    pub fn of(obj: &DynamicObject) -> OwnedStatus {
        let status = obj.data.get("status");
        OwnedStatus {
            observed_generation: status
                .and_then(|s| s.get("observedGeneration"))
                .and_then(|g| g.as_i64()),
            conditions: status
                .and_then(|s| s.get("conditions"))
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default(),
            pending_events: status
                .and_then(|s| s.get("pendingEvents"))
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default(),
            owed_events: status
                .and_then(|s| s.get("owedEvents"))
                .and_then(|g| g.as_i64())
                .and_then(|n| i32::try_from(n).ok()),
        }
    }
}

/// A status write to make, and what changed for users.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// The full owned status to apply.
    pub status: OwnedStatus,
    /// `Some(new)` when the `Accepted` condition was set for the first time or flipped.
    pub accepted_changed_to: Option<bool>,
}

/// The desired owned status of `obj` given its acceptance, or `None` when the stored
/// status is already that (a converged object costs no write).
pub fn desired(
    obj: &DynamicObject,
    acceptance: &Acceptance,
    now: DateTime<Utc>,
) -> Option<StatusChange> {
    let current = OwnedStatus::of(obj);
    let generation = obj.metadata.generation;
    let (accepted, reason, message) = acceptance.condition();
    let before = crds::conditions::find(&current.conditions, crds::conditions::types::ACCEPTED)
        .map(|c| c.status == "True");
    let mut conditions = current.conditions.clone();
    let changed = crds::conditions::set_condition(
        &mut conditions,
        crds::conditions::types::ACCEPTED,
        accepted,
        reason,
        &message,
        generation,
        now,
    );
    if !changed && current.observed_generation == generation {
        return None;
    }
    Some(StatusChange {
        status: OwnedStatus {
            observed_generation: generation,
            conditions,
            ..current
        },
        accepted_changed_to: (before != Some(accepted)).then_some(accepted),
    })
}

/// `stored` (a status as the API server holds it) with the fields the operator owns set as
/// in `status`: other fields are left as they are.
pub fn with_owned(stored: &serde_json::Value, status: &OwnedStatus) -> serde_json::Value {
    let mut out = match stored {
        serde_json::Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    for owned in OWNED_FIELDS {
        out.remove(owned);
    }
    out.extend(owned_fields(status));
    serde_json::Value::Object(out)
}

/// The status fields the operator owns on every kind.
const OWNED_FIELDS: [&str; 4] = [
    "observedGeneration",
    "conditions",
    "pendingEvents",
    "owedEvents",
];

/// The owned fields of `status`, as stored (empty and missing ones left out).
fn owned_fields(status: &OwnedStatus) -> serde_json::Map<String, serde_json::Value> {
    let mut s = serde_json::Map::new();
    if let Some(g) = status.observed_generation {
        s.insert("observedGeneration".into(), g.into());
    }
    s.insert(
        "conditions".into(),
        serde_json::to_value(&status.conditions).unwrap_or_default(),
    );
    if !status.pending_events.is_empty() {
        s.insert(
            "pendingEvents".into(),
            serde_json::to_value(&status.pending_events).unwrap_or_default(),
        );
    }
    if let Some(owed) = status.owed_events {
        s.insert("owedEvents".into(), owed.into());
    }
    s
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use kube::api::DynamicObject;

    use super::*;

    fn obj(generation: i64, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apim.cab-i.com/v1alpha1",
            "kind": "Api",
            "metadata": {"name": "a", "namespace": "n", "generation": generation},
            "status": status,
        }))
        .expect("object")
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .expect("time")
    }

    fn as_stored(obj: &DynamicObject, change: &StatusChange) -> DynamicObject {
        let mut stored = obj.clone();
        stored.data["status"] = with_owned(&obj.data["status"], &change.status);
        stored
    }

    #[test]
    fn owned_fields_replace_their_stored_values_and_leave_the_others() {
        let stored = serde_json::json!({"phase": "Pending", "owedEvents": 2,
                                        "pendingEvents": [{"id": "x"}], "conditions": []});
        let status = OwnedStatus {
            observed_generation: Some(3),
            ..OwnedStatus::default()
        };
        assert_eq!(
            with_owned(&stored, &status),
            serde_json::json!({"phase": "Pending", "observedGeneration": 3, "conditions": []})
        );
    }

    #[test]
    fn first_reconcile_writes_then_converges() {
        let fresh = obj(1, serde_json::json!({}));
        let change = desired(&fresh, &Acceptance::Accepted, t(0)).expect("a first write");
        assert_eq!(change.accepted_changed_to, Some(true));
        assert_eq!(change.status.observed_generation, Some(1));
        let stored = as_stored(&fresh, &change);
        // Same verdict later: nothing to write, even though time moved on.
        assert_eq!(desired(&stored, &Acceptance::Accepted, t(3600)), None);
    }

    #[test]
    fn new_generation_or_flip_writes_and_keeps_transition_time_when_status_holds() {
        let fresh = obj(1, serde_json::json!({}));
        let stored = as_stored(
            &fresh,
            &desired(&fresh, &Acceptance::Accepted, t(0)).expect("write"),
        );
        let mut bumped = stored.clone();
        bumped.metadata.generation = Some(2);
        let change = desired(&bumped, &Acceptance::Accepted, t(10)).expect("generation moved");
        assert_eq!(change.accepted_changed_to, None, "no flip, no Event");
        assert_eq!(change.status.observed_generation, Some(2));
        let c = &change.status.conditions[0];
        assert_eq!(c.last_transition_time.0, t(0).into_k8s_time().0);

        let flip = desired(
            &stored,
            &Acceptance::InvalidTags("label x is missing".into()),
            t(20),
        )
        .expect("flip");
        assert_eq!(flip.accepted_changed_to, Some(false));
        assert_eq!(flip.status.conditions[0].status, "False");
        assert_eq!(flip.status.conditions[0].message, "label x is missing");
    }

    #[test]
    fn unreadable_conditions_are_rewritten() {
        let broken = obj(
            1,
            serde_json::json!({"observedGeneration": 1, "conditions": "garbage"}),
        );
        assert!(desired(&broken, &Acceptance::Accepted, t(0)).is_some());
    }

    trait IntoK8sTime {
        fn into_k8s_time(self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    }
    impl IntoK8sTime for DateTime<Utc> {
        fn into_k8s_time(self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
            let ts = k8s_openapi::jiff::Timestamp::from_second(self.timestamp()).expect("in range");
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts)
        }
    }
}
