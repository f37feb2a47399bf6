//! Standard `status.conditions` shared by every kind: type and reason constants, and pure
//! helpers that keep a converged object's status byte-for-byte stable.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::common::to_time;

pub use types::{ACCEPTED, DEGRADED, DEPLOYED, DRIFTED, READY};

/// Condition types.
pub mod types {
    /// The resource is fully reconciled and usable. Every kind sets it.
    pub const READY: &str = "Ready";
    /// The spec was validated and accepted (e.g. a PromotionRequest's decision, tags, refs).
    pub const ACCEPTED: &str = "Accepted";
    /// The desired revision is on every target gateway.
    pub const DEPLOYED: &str = "Deployed";
    /// Working, but not as desired (e.g. one environment failed, events owed to the broker).
    pub const DEGRADED: &str = "Degraded";
    /// The gateway differs from the desired state (corrected with `driftPolicy: correct`,
    /// only reported with `driftPolicy: report`).
    pub const DRIFTED: &str = "Drifted";
}

/// Condition reasons (CamelCase, as Kubernetes requires).
pub mod reasons {
    /// Everything is as desired.
    pub const RECONCILED: &str = "Reconciled";
    /// Work is under way (a deployment, a job, a rotation).
    pub const PROGRESSING: &str = "Progressing";
    /// The spec is invalid and waits for a change.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The mandatory tags are missing or malformed.
    pub const TAG_VIOLATION: &str = "TagViolation";
    /// A referenced object (Api, Application, ConfigMap) does not exist.
    pub const REFERENCE_NOT_FOUND: &str = "ReferenceNotFound";
    /// The referenced Api is not deployed to the requested environment.
    pub const NOT_DEPLOYED: &str = "NotDeployed";
    /// The API definition could not be read or converted.
    pub const DEFINITION_ERROR: &str = "DefinitionError";
    /// A deployment is running.
    pub const DEPLOYING: &str = "Deploying";
    /// The last deployment succeeded.
    pub const DEPLOY_SUCCEEDED: &str = "DeploySucceeded";
    /// The last deployment failed.
    pub const DEPLOY_FAILED: &str = "DeployFailed";
    /// The gateway could not be reached or answered with an error.
    pub const GATEWAY_ERROR: &str = "GatewayError";
    /// AWX could not be reached or the job failed to launch.
    pub const AWX_ERROR: &str = "AwxError";
    /// The gateway matches the desired state.
    pub const IN_SYNC: &str = "InSync";
    /// The gateway differed and was re-aligned.
    pub const DRIFT_CORRECTED: &str = "DriftCorrected";
    /// The gateway differs and `driftPolicy: report` leaves it so.
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    /// A PromotionRequest waits for a decision.
    pub const PENDING_APPROVAL: &str = "PendingApproval";
    /// A PromotionRequest was approved.
    pub const APPROVED: &str = "Approved";
    /// A PromotionRequest was rejected.
    pub const REJECTED: &str = "Rejected";
    /// Events are owed to the broker (outbox not empty).
    pub const EVENTS_PENDING: &str = "EventsPending";
    /// A credential rotation is in its overlap window.
    pub const ROTATING: &str = "Rotating";
    /// Access is granted (Subscription).
    pub const ACCESS_GRANTED: &str = "AccessGranted";
    /// The Api is deactivated (`spec.active: false`).
    pub const INACTIVE: &str = "Inactive";
}

/// The Kubernetes condition status for a boolean.
pub const fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// Sets the condition `type_` (adding it if absent) and returns whether anything changed.
///
/// `lastTransitionTime` moves to `now` only when the status flips (or the condition is new);
/// reason, message and observed generation are updated in place. Re-running it with the same
/// arguments on a converged object changes nothing and returns `false`, so a controller can
/// skip the status write.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: DateTime<Utc>,
) -> bool {
    let status = status_str(status);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status == status
                && c.reason == reason
                && c.message == message
                && c.observed_generation == observed_generation
            {
                return false;
            }
            if c.status != status {
                c.status = status.to_owned();
                c.last_transition_time = to_time(now);
            }
            c.reason = reason.to_owned();
            c.message = message.to_owned();
            c.observed_generation = observed_generation;
            true
        }
        None => {
            conditions.push(Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                observed_generation,
                last_transition_time: to_time(now),
            });
            true
        }
    }
}

/// Removes the condition `type_`; returns whether it was present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn adds_then_is_idempotent() {
        let mut c = Vec::new();
        assert!(set_condition(
            &mut c,
            types::READY,
            true,
            reasons::RECONCILED,
            "ok",
            Some(3),
            t0()
        ));
        assert_eq!(c.len(), 1);
        let snapshot = c.clone();
        // Converged: same call later changes nothing, not even the time.
        assert!(!set_condition(
            &mut c,
            types::READY,
            true,
            reasons::RECONCILED,
            "ok",
            Some(3),
            t0() + TimeDelta::hours(1)
        ));
        assert_eq!(c, snapshot);
        assert!(is_true(&c, types::READY));
    }

    #[test]
    fn keeps_transition_time_when_status_does_not_flip() {
        let mut c = Vec::new();
        set_condition(
            &mut c,
            types::READY,
            false,
            reasons::DEPLOYING,
            "deploying",
            Some(1),
            t0(),
        );
        let later = t0() + TimeDelta::minutes(5);
        assert!(set_condition(
            &mut c,
            types::READY,
            false,
            reasons::DEPLOY_FAILED,
            "boom",
            Some(2),
            later
        ));
        let ready = find(&c, types::READY).unwrap();
        assert_eq!(ready.last_transition_time, to_time(t0()));
        assert_eq!(ready.reason, reasons::DEPLOY_FAILED);
        assert_eq!(ready.message, "boom");
        assert_eq!(ready.observed_generation, Some(2));
    }

    #[test]
    fn moves_transition_time_when_status_flips() {
        let mut c = Vec::new();
        set_condition(
            &mut c,
            types::READY,
            false,
            reasons::DEPLOYING,
            "",
            None,
            t0(),
        );
        let later = t0() + TimeDelta::minutes(5);
        assert!(set_condition(
            &mut c,
            types::READY,
            true,
            reasons::RECONCILED,
            "",
            None,
            later
        ));
        assert_eq!(
            find(&c, types::READY).unwrap().last_transition_time,
            to_time(later)
        );
        assert_eq!(find(&c, types::READY).unwrap().status, "True");
    }

    #[test]
    fn conditions_are_independent_by_type() {
        let mut c = Vec::new();
        set_condition(
            &mut c,
            types::READY,
            true,
            reasons::RECONCILED,
            "",
            None,
            t0(),
        );
        set_condition(
            &mut c,
            types::DRIFTED,
            false,
            reasons::IN_SYNC,
            "",
            None,
            t0(),
        );
        assert_eq!(c.len(), 2);
        assert!(is_true(&c, types::READY));
        assert!(!is_true(&c, types::DRIFTED));
        assert!(!is_true(&c, types::DEPLOYED), "absent is not true");
        assert!(remove_condition(&mut c, types::DRIFTED));
        assert!(!remove_condition(&mut c, types::DRIFTED));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn reasons_and_types_are_valid_kubernetes_identifiers() {
        // Kubernetes: reason matches ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$, max 1024.
        let valid = |s: &str| {
            let b = s.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphabetic()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"_,:".contains(c))
                && (b[b.len() - 1].is_ascii_alphanumeric() || b[b.len() - 1] == b'_')
        };
        for r in [
            reasons::RECONCILED,
            reasons::PROGRESSING,
            reasons::INVALID_SPEC,
            reasons::TAG_VIOLATION,
            reasons::REFERENCE_NOT_FOUND,
            reasons::NOT_DEPLOYED,
            reasons::DEFINITION_ERROR,
            reasons::DEPLOYING,
            reasons::DEPLOY_SUCCEEDED,
            reasons::DEPLOY_FAILED,
            reasons::GATEWAY_ERROR,
            reasons::AWX_ERROR,
            reasons::IN_SYNC,
            reasons::DRIFT_CORRECTED,
            reasons::DRIFT_DETECTED,
            reasons::PENDING_APPROVAL,
            reasons::APPROVED,
            reasons::REJECTED,
            reasons::EVENTS_PENDING,
            reasons::ROTATING,
            reasons::ACCESS_GRANTED,
            reasons::INACTIVE,
            types::READY,
            types::ACCEPTED,
            types::DEPLOYED,
            types::DEGRADED,
            types::DRIFTED,
        ] {
            assert!(valid(r), "{r}");
        }
        assert!(!valid("Not valid"));
    }
}
