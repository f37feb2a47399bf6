//! The outbox core: pure functions on a resource's `status.pendingEvents`, and
//! [`deliver_owed`], which publishes what is owed and says what the broker acknowledged.
//!
//! [`super::Emitter::settle`] offers the owed events and a change's new ones to the broker
//! ([`deliver_owed`]), removes what it acknowledged ([`acknowledge`]) and leaves the rest owed,
//! to be written with the change. A crash re-sends the stored document, whose `id` is
//! unchanged.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crds::{PendingEvent, from_time, to_time};

use super::envelope::{EnvelopeError, OutgoingEvent};
use super::publisher::EventSink;

impl OutgoingEvent {
    /// The outbox entry of this event (the document kept as it is).
    pub fn to_pending(&self) -> PendingEvent {
        PendingEvent {
            id: self.id.clone(),
            topic: self.topic.clone(),
            event: self.payload.clone(),
            recorded_at: to_time(self.recorded_at),
        }
    }

    /// The event of an outbox entry, ready to re-send: same document, same id, same key and
    /// headers.
    pub fn from_pending(pending: &PendingEvent) -> Result<Self, EnvelopeError> {
        OutgoingEvent::from_document(
            &pending.id,
            pending.topic.clone(),
            pending.event.clone(),
            from_time(&pending.recorded_at),
        )
    }
}

/// Removes the acknowledged `ids` from `outbox`; returns how many were removed.
pub fn acknowledge(outbox: &mut Vec<PendingEvent>, ids: &[String]) -> usize {
    let acked: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let before = outbox.len();
    outbox.retain(|p| !acked.contains(p.id.as_str()));
    before - outbox.len()
}

/// How long the oldest owed event has waited at `now` (zero for a future `recordedAt`).
pub fn oldest_owed_age(outbox: &[PendingEvent], now: DateTime<Utc>) -> Option<Duration> {
    outbox
        .iter()
        .map(|p| from_time(&p.recorded_at))
        .min()
        .map(|oldest| (now - oldest).to_std().unwrap_or(Duration::ZERO))
}

/// Publishes the owed events concurrently and returns the ids the broker acknowledged, in
/// outbox order. Per resource (Kafka key) only an unbroken prefix counts: after the first
/// failure of a key, its later events stay owed too, so a resource's outbox is always cleared
/// oldest first. An entry whose document cannot be read stays owed and is logged.
pub async fn deliver_owed(sink: &dyn EventSink, owed: &[PendingEvent]) -> Vec<String> {
    let mut events = Vec::with_capacity(owed.len());
    for p in owed {
        match OutgoingEvent::from_pending(p) {
            Ok(e) => events.push(e),
            Err(error) => {
                tracing::error!(id = %p.id, topic = %p.topic, %error, "Owed event is unreadable; left owed")
            }
        }
    }
    if events.is_empty() {
        return Vec::new();
    }
    let results = sink.publish_batch(&events).await;
    let mut broken: HashSet<&str> = HashSet::new();
    let mut acked = Vec::with_capacity(events.len());
    for (event, result) in events.iter().zip(results) {
        match result {
            Ok(_) if !broken.contains(event.key.as_str()) => acked.push(event.id.clone()),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(id = %event.id, topic = %event.topic, %error, "Event not acknowledged; still owed");
                broken.insert(event.key.as_str());
            }
        }
    }
    acked
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::events::envelope::{CloudEvent, ResourceRef};
    use crate::events::publisher::FakeSink;
    use crate::events::topics::TopicNames;
    use crate::events::types::EventData;

    /// `n` events of resource `uid-<i % 2>` (two resources, interleaved).
    pub(crate) fn events(n: usize) -> Vec<OutgoingEvent> {
        let topics = TopicNames::default();
        let examples = EventData::examples();
        (0..n)
            .map(|i| {
                let r = ResourceRef {
                    namespace: Some("team-a".into()),
                    name: format!("r{}", i % 2),
                    uid: format!("uid-{}", i % 2),
                    generation: Some(1),
                };
                let e = CloudEvent::new(
                    "apim-operator/test",
                    &r,
                    examples[i % 3].clone(),
                    Utc::now(),
                );
                OutgoingEvent::encode(&e, &topics).expect("encode")
            })
            .collect()
    }

    #[test]
    fn pending_round_trip_keeps_the_document_byte_for_byte() {
        for e in events(3) {
            let p = e.to_pending();
            assert_eq!(p.event, e.payload);
            assert_eq!(p.id, e.id);
            let back = OutgoingEvent::from_pending(&p).expect("decode");
            assert_eq!(back.payload, e.payload);
            assert_eq!(
                (back.id, back.key, back.headers, back.topic),
                (e.id, e.key, e.headers, e.topic)
            );
            // Kubernetes stores seconds.
            assert_eq!(back.recorded_at.timestamp(), e.recorded_at.timestamp());
        }
    }

    #[test]
    fn acknowledge_removes_only_acked() {
        let evs = events(4);
        let mut outbox: Vec<PendingEvent> = evs.iter().map(OutgoingEvent::to_pending).collect();
        assert_eq!(
            acknowledge(
                &mut outbox,
                &[evs[0].id.clone(), evs[2].id.clone(), "other".into()]
            ),
            2
        );
        let left: Vec<_> = outbox.iter().map(|p| p.id.clone()).collect();
        assert_eq!(left, vec![evs[1].id.clone(), evs[3].id.clone()]);
    }

    #[test]
    fn oldest_owed_age_is_of_the_oldest() {
        let now = Utc::now();
        let mut a = events(2)
            .into_iter()
            .map(|e| e.to_pending())
            .collect::<Vec<_>>();
        a[0].recorded_at = to_time(now - chrono::TimeDelta::seconds(90));
        a[1].recorded_at = to_time(now - chrono::TimeDelta::seconds(10));
        let age = oldest_owed_age(&a, now).expect("age");
        assert!((89..=91).contains(&age.as_secs()), "{age:?}");
        assert_eq!(oldest_owed_age(&[], now), None);
    }

    #[tokio::test]
    async fn deliver_owed_acks_in_order_and_keeps_a_broken_resource_owed() {
        let sink = FakeSink::new();
        let evs = events(6); // uid-0: 0, 2, 4; uid-1: 1, 3, 5
        let mut outbox: Vec<PendingEvent> = evs.iter().map(OutgoingEvent::to_pending).collect();
        sink.fail_id(evs[2].id.clone());
        let acked = deliver_owed(&sink, &outbox).await;
        let ids = |is: &[usize]| is.iter().map(|&i| evs[i].id.clone()).collect::<Vec<_>>();
        assert_eq!(
            acked,
            ids(&[0, 1, 3, 5]),
            "uid-0 stops at its first failure"
        );
        acknowledge(&mut outbox, &acked);
        sink.heal();
        let acked = deliver_owed(&sink, &outbox).await;
        assert_eq!(acked, ids(&[2, 4]));
        acknowledge(&mut outbox, &acked);
        assert!(outbox.is_empty());
        // The re-sent documents are the originals.
        let sent = sink.published();
        assert!(
            sent.iter()
                .all(|s| evs.iter().any(|e| e.payload == s.payload))
        );
    }

    #[tokio::test]
    async fn deliver_owed_during_an_outage_acks_nothing() {
        let sink = FakeSink::new();
        sink.fail_all();
        let mut outbox: Vec<PendingEvent> =
            events(3).iter().map(OutgoingEvent::to_pending).collect();
        outbox.push(PendingEvent {
            event: "garbage".into(),
            ..outbox[0].clone()
        });
        assert!(deliver_owed(&sink, &outbox).await.is_empty());
    }
}
