//! What every kind's status has in common (observed generation, conditions, the outbox), as
//! a trait, so controllers can write generic status and outbox code over the five kinds.
//! The root types also implement `kube::core::object::HasStatus` (from the derive).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::{
    api::ApiStatus,
    application::ApplicationStatus,
    outbox::{OUTBOX_CAPACITY, PendingEvent},
    promotion_request::PromotionRequestStatus,
    subscription::SubscriptionStatus,
    teardown_policy::TeardownPolicyStatus,
};

/// The fields every status carries.
pub trait CommonStatus: Default {
    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// Sets `status.observedGeneration`.
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// `status.conditions`.
    fn conditions(&self) -> &[Condition];
    /// `status.conditions`, for [`crate::conditions::set_condition`].
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// `status.pendingEvents`: events owed to the broker.
    fn pending_events(&self) -> &[PendingEvent];
    /// `status.pendingEvents`, to record or clear events.
    fn pending_events_mut(&mut self) -> &mut Vec<PendingEvent>;

    /// Replaces the outbox, keeping `status.owedEvents` its length (absent when empty).
    fn set_outbox(&mut self, owed: Vec<PendingEvent>);

    /// Whether the outbox is full: further state changes must wait for the broker.
    fn outbox_full(&self) -> bool {
        self.pending_events().len() >= OUTBOX_CAPACITY
    }
}

/// Implements [`CommonStatus`] for status types with the common fields
/// (`observed_generation`, `conditions`, `pending_events`, `owed_events`).
#[macro_export]
macro_rules! common_status {
    ($($t:ty),+) => {$(
        impl $crate::status::CommonStatus for $t {
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            fn conditions(&self) -> &[::k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
                &self.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<::k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
                &mut self.conditions
            }
            fn pending_events(&self) -> &[$crate::PendingEvent] {
                &self.pending_events
            }
            fn pending_events_mut(&mut self) -> &mut Vec<$crate::PendingEvent> {
                &mut self.pending_events
            }
            fn set_outbox(&mut self, owed: Vec<$crate::PendingEvent>) {
                self.owed_events = i32::try_from(owed.len()).ok().filter(|n| *n > 0);
                self.pending_events = owed;
            }
        }
    )+};
}

common_status!(
    ApiStatus,
    ApplicationStatus,
    SubscriptionStatus,
    PromotionRequestStatus,
    TeardownPolicyStatus
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{conditions, to_time};
    use chrono::Utc;

    fn exercise<S: CommonStatus>() {
        let mut s = S::default();
        assert_eq!(s.observed_generation(), None);
        s.set_observed_generation(Some(4));
        assert_eq!(s.observed_generation(), Some(4));
        assert!(conditions::set_condition(
            s.conditions_mut(),
            conditions::READY,
            true,
            conditions::reasons::RECONCILED,
            "",
            Some(4),
            Utc::now()
        ));
        assert!(conditions::is_true(s.conditions(), conditions::READY));
        assert!(!s.outbox_full());
        for i in 0..OUTBOX_CAPACITY {
            s.pending_events_mut().push(PendingEvent {
                id: i.to_string(),
                topic: "api-created".into(),
                event: "{}".into(),
                recorded_at: to_time(Utc::now()),
            });
        }
        assert!(s.outbox_full());
        assert_eq!(s.pending_events().len(), OUTBOX_CAPACITY);
    }

    #[test]
    fn every_status_is_common() {
        exercise::<ApiStatus>();
        exercise::<ApplicationStatus>();
        exercise::<SubscriptionStatus>();
        exercise::<PromotionRequestStatus>();
        exercise::<TeardownPolicyStatus>();
    }
}
