//! The event pipeline: CloudEvents 1.0 envelopes of typed events, published on Kafka (Redpanda)
//! by an idempotent producer, with a Kubernetes-native outbox in each resource's status.
//!
//! - [`config`]: [`EventsConfig`] (brokers, TLS, SASL, producer tuning, topic names).
//! - [`types`]: [`EventData`], every event type with its payload and topic.
//! - [`envelope`]: [`CloudEvent`] and [`OutgoingEvent`] (topic, key, `ce_*` headers, document).
//! - [`topics`]: the topic catalogue and [`ensure_topics`].
//! - [`publisher`]: the [`EventSink`] trait, the Kafka [`Publisher`] and a test [`FakeSink`].
//! - [`outbox`]: pure functions on `status.pendingEvents` and [`deliver_owed`].
//! - [`metrics`]: [`EventMetrics`], the pipeline's Prometheus metrics.
//! - [`docs`]: the generated `docs/events/` (JSON Schemas and catalogue).
//!
//! - [`emitter`]: [`Emitter`], the controllers' side: facts to events, back-pressure, and the
//!   settling of a resource's outbox into the status write that records its change.
//!
//! An event is always either acknowledged by the broker or stored in its resource's
//! `status.pendingEvents` before the change that caused it is recorded; see [`emitter`].

pub mod config;
pub mod docs;
pub mod emitter;
pub mod envelope;
pub mod metrics;
pub mod outbox;
pub mod publisher;
pub mod topics;
pub mod types;

pub use config::EventsConfig;
pub use emitter::{Emitter, Fact, OPERATOR_ACTOR};
pub use envelope::{CloudEvent, OutgoingEvent, ResourceRef, source_for};
pub use metrics::EventMetrics;
pub use outbox::{acknowledge, deliver_owed, oldest_owed_age};
pub use publisher::{
    Delivered, EventSink, FakeSink, PublishError, Publisher, SaslCredentials, admin_client,
};
pub use topics::{Topic, TopicNames, TopicReport, check_topics, ensure_topics};
pub use types::{EVENT_TYPES, EventData};
