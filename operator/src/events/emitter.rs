//! The controllers' side of the pipeline: turns the facts of a reconcile into events and
//! settles a resource's outbox.
//!
//! One reconcile:
//! 1. [`Emitter::has_room`] before any state change: a resource whose outbox cannot take the
//!    events the change may cause waits (back-pressure) instead of dropping them;
//! 2. [`Emitter::encode`] the facts of the change (ids derived from the resource and the
//!    fact, so the same fact re-derived after a crash carries the same `id`);
//! 3. [`Emitter::settle`]: owed events first, then the new ones, are offered to the broker;
//!    what it does not acknowledge is returned and goes into `status.pendingEvents` in the
//!    status write that records the change. An event is therefore always either acknowledged
//!    by the broker or stored in the resource's status before the change is recorded.
//!
//! While the broker is known to be down ([`BrokerGate`]), reconciles do not wait on it: new
//! events are recorded as owed at once, and a probe re-opens the gate when the broker answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crds::PendingEvent;

use super::envelope::{CloudEvent, EnvelopeError, OutgoingEvent, ResourceRef};
use super::metrics::EventMetrics;
use super::outbox::{acknowledge, deliver_owed};
use super::publisher::EventSink;
use super::topics::TopicNames;
use super::types::EventData;

/// Namespace of the deterministic event ids (UUID v5).
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a1f_43c2_9d0e_4b8a_a1c3_5e7f_2b9d_0c41);

/// How often a closed gate asks the broker whether it is back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// The actor of changes whose author is unknown: the operator itself.
pub const OPERATOR_ACTOR: &str = "system:apim-operator";

/// One fact a reconcile observed or caused, to become an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    /// Type and payload.
    pub data: EventData,
    /// What makes this fact unique for its resource and type (a generation, a trace id, …):
    /// the event id is derived from it.
    pub seed: String,
    /// The user behind it, when known (else [`OPERATOR_ACTOR`]).
    pub actor: Option<String>,
}

impl Fact {
    /// A fact with `seed`, by the operator.
    pub fn new(data: EventData, seed: impl Into<String>) -> Fact {
        Fact {
            data,
            seed: seed.into(),
            actor: None,
        }
    }

    /// The same fact, by `actor` when known.
    pub fn by(mut self, actor: Option<&str>) -> Fact {
        self.actor = actor.map(str::to_owned);
        self
    }
}

/// The event id of `fact` about the resource `uid`: the same inputs give the same id.
pub fn event_id(uid: &str, data: &EventData, seed: &str) -> String {
    let name = format!("{uid}\n{}\n{seed}", data.event_type());
    uuid::Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

/// Whether the broker is believed reachable. Closed after a failed delivery; re-opened by a
/// probe. Starts open.
#[derive(Debug)]
pub struct BrokerGate {
    open: AtomicBool,
    probing: AtomicBool,
}

impl Default for BrokerGate {
    fn default() -> Self {
        BrokerGate {
            open: AtomicBool::new(true),
            probing: AtomicBool::new(false),
        }
    }
}

impl BrokerGate {
    /// Whether deliveries are attempted.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

/// Encodes facts and settles outboxes for the controllers.
pub struct Emitter {
    sink: Arc<dyn EventSink>,
    topics: TopicNames,
    source: String,
    metrics: Option<EventMetrics>,
    gate: Arc<BrokerGate>,
    /// Owed events per resource: count and oldest `recordedAt`.
    ledger: std::sync::Mutex<std::collections::HashMap<String, (usize, DateTime<Utc>)>>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("source", &self.source)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// An emitter publishing to `sink` as `source` (see [`super::source_for`]).
    pub fn new(sink: Arc<dyn EventSink>, topics: TopicNames, source: String) -> Emitter {
        Emitter {
            sink,
            topics,
            source,
            metrics: None,
            gate: Arc::new(BrokerGate::default()),
            ledger: Default::default(),
        }
    }

    /// Reports owed events in `metrics`.
    pub fn with_metrics(mut self, metrics: EventMetrics) -> Emitter {
        self.metrics = Some(metrics);
        self
    }

    /// The broker gate (for tests and readiness reporting).
    pub fn gate(&self) -> &BrokerGate {
        &self.gate
    }

    /// Whether an outbox holding `owed` events can take `planned` more (the most a change may
    /// cause). When not, the change must wait.
    pub fn has_room(owed: usize, planned: usize) -> bool {
        owed + planned <= crds::OUTBOX_CAPACITY
    }

    /// The events of `facts` about `resource`, at `now`. An unencodable fact (a bug: every
    /// payload is small and serializable) is logged and skipped.
    pub fn encode(
        &self,
        resource: &ResourceRef,
        facts: Vec<Fact>,
        now: DateTime<Utc>,
    ) -> Vec<OutgoingEvent> {
        facts
            .into_iter()
            .filter_map(|fact| match self.encode_one(resource, fact, now) {
                Ok(e) => Some(e),
                Err(error) => {
                    tracing::error!(%error, subject = %resource.subject(), "failed to encode an event; skipped");
                    None
                }
            })
            .collect()
    }

    fn encode_one(
        &self,
        resource: &ResourceRef,
        fact: Fact,
        now: DateTime<Utc>,
    ) -> Result<OutgoingEvent, EnvelopeError> {
        let id = event_id(&resource.uid, &fact.data, &fact.seed);
        let mut event = CloudEvent::new(&self.source, resource, fact.data, now)
            .with_actor(fact.actor.unwrap_or_else(|| OPERATOR_ACTOR.to_owned()));
        event.id = id;
        OutgoingEvent::encode(&event, &self.topics)
    }

    /// Offers the `owed` events, then the `new` ones, to the broker (unless it is known to be
    /// down) and returns what stays owed, in order. Never drops an event: whatever was not
    /// acknowledged is in the result.
    pub async fn settle(&self, owed: &[PendingEvent], new: &[OutgoingEvent]) -> Vec<PendingEvent> {
        let mut outbox: Vec<PendingEvent> = owed.to_vec();
        for e in new {
            if !outbox.iter().any(|p| p.id == e.id) {
                outbox.push(e.to_pending());
            }
        }
        if outbox.is_empty() || !self.gate.is_open() {
            return outbox;
        }
        let acked = deliver_owed(self.sink.as_ref(), &outbox).await;
        if acked.len() < outbox.len() {
            self.close_gate();
        }
        acknowledge(&mut outbox, &acked);
        outbox
    }

    /// Closes the gate and starts a probe that re-opens it when the broker answers.
    fn close_gate(&self) {
        self.gate.open.store(false, Ordering::Release);
        if self.gate.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(
            "the event broker did not acknowledge every event: events stay owed in the resources' status until it is back"
        );
        let gate = self.gate.clone();
        let sink = self.sink.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                if sink.probe(PROBE_INTERVAL).await {
                    tracing::info!("the event broker is reachable again: delivering owed events");
                    gate.open.store(true, Ordering::Release);
                    gate.probing.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }

    /// Records what one resource owes (`kind/namespace/name`), for the owed gauges.
    pub fn observe_owed(&self, resource: &str, owed: &[PendingEvent]) {
        let Some(m) = &self.metrics else { return };
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        match owed.iter().map(|p| crds::from_time(&p.recorded_at)).min() {
            Some(oldest) => {
                ledger.insert(resource.to_owned(), (owed.len(), oldest));
            }
            None => {
                if ledger.remove(resource).is_none() {
                    return;
                }
            }
        }
        let total = ledger.values().map(|(n, _)| n).sum();
        let now = Utc::now();
        let oldest = ledger
            .values()
            .map(|(_, t)| (now - *t).to_std().unwrap_or_default())
            .max();
        m.set_owed_totals(total, oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::publisher::FakeSink;
    use crate::events::types::{ApiDeleted, EventData};

    fn resource() -> ResourceRef {
        ResourceRef {
            namespace: Some("team-a".into()),
            name: "payments".into(),
            uid: "uid-1".into(),
            generation: Some(3),
        }
    }

    fn fact(seed: &str) -> Fact {
        Fact::new(
            EventData::ApiDeleted(ApiDeleted {
                display_name: "Payments".into(),
                environments: vec![crds::Environment::Dev],
            }),
            seed,
        )
    }

    fn emitter(sink: Arc<FakeSink>) -> Emitter {
        Emitter::new(sink, TopicNames::default(), "apim-operator/test".into())
    }

    #[test]
    fn ids_are_derived_from_resource_type_and_seed() {
        let a = event_id("uid-1", &fact("x").data, "x");
        assert_eq!(a, event_id("uid-1", &fact("x").data, "x"));
        assert_ne!(a, event_id("uid-2", &fact("x").data, "x"));
        assert_ne!(a, event_id("uid-1", &fact("y").data, "y"));
        assert_eq!(
            uuid::Uuid::parse_str(&a).map(|u| u.get_version_num()),
            Ok(5)
        );
    }

    #[tokio::test]
    async fn encode_sets_actor_and_the_derived_id() {
        let e = emitter(Arc::new(FakeSink::new()));
        let out = e.encode(
            &resource(),
            vec![fact("a").by(Some("alice")), fact("b")],
            Utc::now(),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].header("ce_actor"), Some("alice"));
        assert_eq!(out[1].header("ce_actor"), Some(OPERATOR_ACTOR));
        assert_eq!(out[0].id, event_id("uid-1", &fact("a").data, "a"));
        assert_eq!(out[0].key, "uid-1");
    }

    #[tokio::test]
    async fn settle_delivers_owed_then_new_and_keeps_what_failed() {
        let sink = Arc::new(FakeSink::new());
        let e = emitter(sink.clone());
        let first = e.encode(&resource(), vec![fact("1"), fact("2")], Utc::now());
        sink.fail_all();
        let owed = e.settle(&[], &first).await;
        assert_eq!(owed.len(), 2, "nothing acknowledged: both owed");
        assert!(!e.gate().is_open(), "a failure closes the gate");
        // While the gate is closed nothing is offered: new events join the outbox at once.
        let second = e.encode(&resource(), vec![fact("3")], Utc::now());
        let before = sink.published().len();
        let owed = e.settle(&owed, &second).await;
        assert_eq!(owed.len(), 3);
        assert_eq!(sink.published().len(), before);
        // The same fact again is not owed twice.
        let owed = e.settle(&owed, &second).await;
        assert_eq!(owed.len(), 3);
        sink.heal();
        tokio::time::timeout(Duration::from_secs(10), async {
            while !e.gate().is_open() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the probe re-opens the gate");
        let owed = e.settle(&owed, &[]).await;
        assert!(owed.is_empty());
        let ids: Vec<String> = sink
            .published()
            .iter()
            .rev()
            .take(3)
            .map(|p| p.id.clone())
            .collect();
        let expected: Vec<String> = second
            .iter()
            .chain(first.iter().rev())
            .map(|p| p.id.clone())
            .collect();
        assert_eq!(ids, expected, "delivered oldest first");
    }

    #[test]
    fn room_is_counted_against_the_capacity() {
        assert!(Emitter::has_room(0, crds::OUTBOX_CAPACITY));
        assert!(!Emitter::has_room(1, crds::OUTBOX_CAPACITY));
    }
}
