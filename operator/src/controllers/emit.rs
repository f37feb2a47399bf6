//! Lifecycle events from the controllers: the facts every kind shares (created, updated,
//! deleted, tag violation, audit records) and the outbox steps of a reconcile (back-pressure
//! before a change, settling the outbox into the status write that records it).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use crds::status::CommonStatus;
use kube::ResourceExt;
use kube::api::DynamicObject;

use super::acceptance::Acceptance;
use super::context::Context;
use crate::events::types::{
    AuditRecorded, EventTags, FieldChange, ResourceCreated, TagViolationFound,
};
use crate::events::{EventData, Fact, ResourceRef};

/// How soon a resource that owes events is reconciled again, to deliver them.
pub const OWED_RETRY: Duration = Duration::from_secs(5);

/// The user behind the object's last change, as the admission webhook stamped it.
pub fn actor(obj: &DynamicObject) -> Option<String> {
    obj.annotations().get(crds::tags::ACTOR_ANNOTATION).cloned()
}

/// An `audit.recorded` fact.
pub fn audit(
    kind: &str,
    action: &str,
    summary: String,
    changes: Vec<FieldChange>,
    actor: Option<&str>,
    seed: impl Into<String>,
) -> Fact {
    Fact::new(
        EventData::AuditRecorded(AuditRecorded {
            actor: actor.unwrap_or(crate::events::OPERATOR_ACTOR).to_owned(),
            kind: kind.to_owned(),
            action: action.to_owned(),
            summary,
            changes,
        }),
        seed,
    )
    .by(actor)
}

/// The facts of a reconcile every kind shares, given the status it last recorded:
/// - first reconcile: `resource.created` (when the tags are valid) and an audit `create`;
/// - a new generation: an audit `update` naming `changes`;
/// - tags refused, and they were not already: `resource.tag-violation`.
pub fn lifecycle_facts<S: CommonStatus>(
    kind: &str,
    obj: &DynamicObject,
    verdict: &Acceptance,
    current: &S,
    changes: Vec<FieldChange>,
) -> Vec<Fact> {
    let was_accepted =
        crds::conditions::find(current.conditions(), crds::conditions::types::ACCEPTED)
            .map(|c| c.status == "True");
    facts_given(
        kind,
        obj,
        verdict,
        current.observed_generation(),
        was_accepted,
        changes,
    )
}

fn facts_given(
    kind: &str,
    obj: &DynamicObject,
    verdict: &Acceptance,
    observed_generation: Option<i64>,
    was_accepted: Option<bool>,
    changes: Vec<FieldChange>,
) -> Vec<Fact> {
    let mut facts = Vec::new();
    let actor = actor(obj);
    let generation = obj.metadata.generation;
    let subject = format!(
        "{kind} {}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    );
    match observed_generation {
        None => {
            if let Ok(tags) = crds::tags::validate_meta(&obj.metadata) {
                let created = obj
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(crds::from_time)
                    .unwrap_or_else(Utc::now);
                facts.push(
                    Fact::new(
                        EventData::ResourceCreated(ResourceCreated {
                            kind: kind.to_owned(),
                            tags: EventTags::from(&tags),
                            expires_at: tags.expiry(created).into(),
                        }),
                        "created",
                    )
                    .by(actor.as_deref()),
                );
            }
            facts.push(audit(
                kind,
                "create",
                format!("created {subject}"),
                Vec::new(),
                actor.as_deref(),
                "create",
            ));
        }
        Some(observed) if generation.is_some_and(|g| g != observed) => {
            let g = generation.unwrap_or_default();
            let fields: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
            let summary = if fields.is_empty() {
                format!("updated {subject} (generation {observed} → {g})")
            } else {
                format!(
                    "updated {subject} (generation {observed} → {g}): {}",
                    fields.join(", ")
                )
            };
            facts.push(audit(
                kind,
                "update",
                summary,
                changes,
                actor.as_deref(),
                format!("update/{g}"),
            ));
        }
        Some(_) => {}
    }
    if let Acceptance::InvalidTags(message) = verdict
        && was_accepted != Some(false)
    {
        let labels: BTreeMap<String, String> = obj
            .labels()
            .iter()
            .filter(|(k, _)| k.starts_with("apim.cab-i.com/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        facts.push(
            Fact::new(
                EventData::TagViolation(TagViolationFound {
                    kind: kind.to_owned(),
                    violations: message.split("; ").map(str::to_owned).collect(),
                    labels,
                }),
                format!("g{}", generation.unwrap_or_default()),
            )
            .by(actor.as_deref()),
        );
    }
    facts
}

/// The audit `delete` record of an object being deleted. The deleting user is not on the
/// object (deletion cannot be stamped), so the actor is the operator, which carried it out.
pub fn deleted_audit(kind: &str, summary: String) -> Fact {
    audit(kind, "delete", summary, Vec::new(), None, "delete")
}

/// Back-pressure: when `current`'s outbox cannot take `planned` more events, the change must
/// wait. Returns the status to write instead (the owed events, after one more delivery
/// attempt); `None` when the change may go ahead.
pub async fn hold_back<S: CommonStatus + Clone>(
    ctx: &Context,
    kind: &str,
    obj: &DynamicObject,
    current: &S,
    planned: usize,
) -> Option<S> {
    let emitter = ctx.events.as_ref()?;
    if crate::events::Emitter::has_room(current.pending_events().len(), planned) {
        return None;
    }
    let mut held = current.clone();
    let owed = emitter.settle(current.pending_events(), &[]).await;
    tracing::warn!(
        owed = owed.len(),
        capacity = crds::OUTBOX_CAPACITY,
        "the outbox is full: the change waits until the broker takes the owed events"
    );
    emitter.observe_owed(&ledger_key(kind, obj), &owed);
    held.set_outbox(owed);
    Some(held)
}

/// Encodes `facts` and settles the outbox of `current` into `status`: what the broker did
/// not acknowledge is owed in `status`, to be written with the change. A no-op when events
/// are disabled.
pub async fn settle<S: CommonStatus>(
    ctx: &Context,
    kind: &str,
    obj: &DynamicObject,
    current: &S,
    status: &mut S,
    facts: Vec<Fact>,
) {
    let Some(emitter) = ctx.events.as_ref() else {
        return;
    };
    let Some(resource) = ResourceRef::from_meta(&obj.metadata) else {
        return;
    };
    if facts.is_empty() && current.pending_events().is_empty() {
        return;
    }
    let new = emitter.encode(&resource, facts, Utc::now());
    let owed = emitter.settle(current.pending_events(), &new).await;
    emitter.observe_owed(&ledger_key(kind, obj), &owed);
    status.set_outbox(owed);
}

/// The last events of an object being deleted, settled with those it still owes. `None` when
/// every one was acknowledged (or events are disabled): the finalizer may go. Otherwise the
/// status to write (the owed events): the finalizer stays until the broker takes them. When
/// the outbox has no room for `facts`, only the owed ones are offered this time (the facts
/// are derived again, with the same ids, on the next attempt).
pub async fn settle_last<S: CommonStatus + Clone>(
    ctx: &Context,
    kind: &str,
    obj: &DynamicObject,
    status: &S,
    facts: Vec<Fact>,
) -> Option<S> {
    ctx.events.as_ref()?;
    let facts = if crate::events::Emitter::has_room(status.pending_events().len(), facts.len()) {
        facts
    } else {
        Vec::new()
    };
    let mut settled = status.clone();
    settle(ctx, kind, obj, status, &mut settled, facts).await;
    (!settled.pending_events().is_empty()).then_some(settled)
}

/// `requeue` or, while events are owed, sooner.
pub fn requeue_after<S: CommonStatus>(status: &S, requeue: Duration) -> Duration {
    if status.pending_events().is_empty() {
        requeue
    } else {
        requeue.min(OWED_RETRY + Duration::from_millis(rand::random::<u64>() % 2_000))
    }
}

fn ledger_key(kind: &str, obj: &DynamicObject) -> String {
    format!(
        "{kind}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// A short, secret-free rendering of a spec value for audit records.
pub fn summarize(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    super::shared::truncate(&text, 120)
}

/// The top-level spec fields of `new` that differ from `fingerprint` (field → hash of its
/// value, as [`spec_fingerprint`] makes), with the new values summarized.
pub fn spec_changes(
    fingerprint: &BTreeMap<String, String>,
    new: &serde_json::Value,
) -> Vec<FieldChange> {
    let now = spec_fingerprint(new);
    let mut fields: Vec<&String> = now.keys().chain(fingerprint.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|f| now.get(*f) != fingerprint.get(*f))
        .map(|f| FieldChange {
            path: format!("spec.{f}"),
            before: None,
            after: new.get(f.as_str()).map(summarize),
        })
        .collect()
}

/// Hash (8 hex digits) of each top-level field of a spec, to tell later which fields changed.
pub fn spec_fingerprint(spec: &serde_json::Value) -> BTreeMap<String, String> {
    use sha2::Digest;
    spec.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let digest = sha2::Sha256::digest(v.to_string().as_bytes());
                    (
                        k.clone(),
                        digest[..4].iter().map(|b| format!("{b:02x}")).collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(generation: i64, labels: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apim.cab-i.com/v1alpha1", "kind": "Api",
            "metadata": {
                "name": "payments", "namespace": "team-a", "uid": "u-1", "generation": generation,
                "creationTimestamp": "2026-11-25T10:00:00Z",
                "labels": labels,
                "annotations": {"apim.cab-i.com/owner": "team@example.com", "apim.cab-i.com/actor": "alice"}
            },
            "spec": {}
        }))
        .expect("object")
    }

    fn tags() -> serde_json::Value {
        json!({
            "apim.cab-i.com/environment": "dev", "apim.cab-i.com/project": "payments",
            "apim.cab-i.com/cost-center": "cc-1", "apim.cab-i.com/ttl": "7d",
            "apim.cab-i.com/auto-teardown": "true", "apim.cab-i.com/data-class": "internal"
        })
    }

    fn types(facts: &[Fact]) -> Vec<&'static str> {
        facts.iter().map(|f| f.data.event_type()).collect()
    }

    #[test]
    fn first_reconcile_announces_the_resource_with_its_tags_and_actor() {
        let facts = facts_given(
            "Api",
            &obj(1, tags()),
            &Acceptance::Accepted,
            None,
            None,
            vec![],
        );
        assert_eq!(
            types(&facts),
            vec![
                "com.cab-i.apim.resource.created",
                "com.cab-i.apim.audit.recorded"
            ]
        );
        let EventData::ResourceCreated(c) = &facts[0].data else {
            panic!("resource.created first")
        };
        assert_eq!(c.tags.project, "payments");
        assert_eq!(c.expires_at.0.to_rfc3339(), "2026-12-02T10:00:00+00:00");
        assert!(facts.iter().all(|f| f.actor.as_deref() == Some("alice")));
    }

    #[test]
    fn converged_has_no_facts_and_a_new_generation_is_audited_with_its_fields() {
        let o = obj(2, tags());
        assert!(
            facts_given(
                "Api",
                &o,
                &Acceptance::Accepted,
                Some(2),
                Some(true),
                vec![]
            )
            .is_empty()
        );
        let changes = spec_changes(
            &spec_fingerprint(&json!({"backendUrl": "https://a", "version": "1"})),
            &json!({"backendUrl": "https://b", "version": "1"}),
        );
        let facts = facts_given(
            "Api",
            &o,
            &Acceptance::Accepted,
            Some(1),
            Some(true),
            changes,
        );
        let EventData::AuditRecorded(a) = &facts[0].data else {
            panic!("audit")
        };
        assert_eq!(a.action, "update");
        assert_eq!(a.changes.len(), 1);
        assert_eq!(a.changes[0].path, "spec.backendUrl");
        assert_eq!(a.changes[0].after.as_deref(), Some("https://b"));
        assert!(a.summary.contains("generation 1 → 2"), "{}", a.summary);
    }

    #[test]
    fn a_tag_violation_is_reported_once() {
        let o = obj(1, json!({}));
        let verdict = Acceptance::InvalidTags("label a is missing; label b is missing".into());
        let facts = facts_given("Api", &o, &verdict, None, None, vec![]);
        assert_eq!(
            types(&facts),
            vec![
                "com.cab-i.apim.audit.recorded",
                "com.cab-i.apim.resource.tag-violation"
            ]
        );
        let EventData::TagViolation(v) = &facts[1].data else {
            panic!("violation")
        };
        assert_eq!(v.violations.len(), 2);
        assert!(facts_given("Api", &o, &verdict, Some(1), Some(false), vec![]).is_empty());
    }
}
