//! Prometheus metrics of the event pipeline. [`EventMetrics::register`] adds them to the
//! operator's registry (prefix `apim_operator`), e.g. `apim_operator_events_published_total`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crds::PendingEvent;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::outbox::oldest_owed_age;
use super::publisher::{Delivered, PublishError};

/// Labels of a published event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    /// CloudEvents `type`.
    pub r#type: String,
}

/// Labels of a failed event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// CloudEvents `type`.
    pub r#type: String,
    /// [`PublishError::metric_label`].
    pub reason: String,
}

/// The event pipeline's metrics. Cloning shares the same series.
#[derive(Clone, Debug)]
pub struct EventMetrics {
    /// Events acknowledged by the broker, by type.
    pub published: Family<TypeLabels, Counter>,
    /// Events not acknowledged (they stay owed), by type and reason.
    pub failed: Family<FailureLabels, Counter>,
    /// Events owed across every resource's outbox.
    pub owed: Gauge,
    /// Age of the oldest owed event, in seconds (0 when none is owed).
    pub oldest_owed_age_seconds: Gauge<f64, AtomicU64>,
    /// From enqueue to the broker's acknowledgement, in seconds.
    pub publish_latency: Histogram,
}

impl Default for EventMetrics {
    fn default() -> Self {
        EventMetrics {
            published: Family::default(),
            failed: Family::default(),
            owed: Gauge::default(),
            oldest_owed_age_seconds: Gauge::default(),
            publish_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        }
    }
}

impl EventMetrics {
    /// New, unregistered metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "events_published",
            "Events acknowledged by the broker, by type",
            self.published.clone(),
        );
        registry.register(
            "events_failed",
            "Events not acknowledged (still owed), by type and reason",
            self.failed.clone(),
        );
        registry.register(
            "events_owed",
            "Events owed to the broker across every outbox",
            self.owed.clone(),
        );
        registry.register(
            "events_oldest_owed_age_seconds",
            "Age of the oldest event owed to the broker",
            self.oldest_owed_age_seconds.clone(),
        );
        registry.register(
            "events_publish_latency_seconds",
            "From enqueue to the broker's acknowledgement",
            self.publish_latency.clone(),
        );
    }

    /// Counts one publish outcome of an event of `event_type`.
    pub fn observe(&self, event_type: &str, result: &Result<Delivered, PublishError>) {
        match result {
            Ok(d) => {
                self.published
                    .get_or_create(&TypeLabels {
                        r#type: event_type.into(),
                    })
                    .inc();
                self.publish_latency.observe(d.latency.as_secs_f64());
            }
            Err(e) => {
                self.failed
                    .get_or_create(&FailureLabels {
                        r#type: event_type.into(),
                        reason: e.metric_label().into(),
                    })
                    .inc();
            }
        }
    }

    /// Sets the owed gauges from every resource's outbox (e.g. over a reflector store).
    pub fn set_owed<'a>(
        &self,
        outboxes: impl IntoIterator<Item = &'a [PendingEvent]>,
        now: DateTime<Utc>,
    ) {
        let mut owed = 0usize;
        let mut oldest: Option<Duration> = None;
        for outbox in outboxes {
            owed += outbox.len();
            if let Some(age) = oldest_owed_age(outbox, now) {
                oldest = Some(oldest.map_or(age, |o| o.max(age)));
            }
        }
        self.set_owed_totals(owed, oldest);
    }

    /// Sets the owed gauges: events owed in all, and the age of the oldest.
    pub fn set_owed_totals(&self, owed: usize, oldest: Option<Duration>) {
        self.owed.set(i64::try_from(owed).unwrap_or(i64::MAX));
        self.oldest_owed_age_seconds
            .set(oldest.unwrap_or_default().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::envelope::OutgoingEvent;
    use crate::events::outbox::tests::events;
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn outcomes_and_owed_show_in_the_exposition() {
        let m = EventMetrics::new();
        let mut registry = Registry::with_prefix("apim_operator");
        m.register(&mut registry);
        let ok = Ok(Delivered {
            id: "a".into(),
            topic: "t".into(),
            partition: 0,
            offset: 1,
            latency: Duration::from_millis(3),
        });
        m.observe("com.cab-i.apim.api.created", &ok);
        let err = Err(PublishError::Deliver {
            id: "b".into(),
            topic: "t".into(),
            source: Box::new(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            )),
        });
        m.observe("com.cab-i.apim.api.created", &err);
        let now = Utc::now();
        let mut a: Vec<PendingEvent> = events(2).iter().map(OutgoingEvent::to_pending).collect();
        a[0].recorded_at = crds::to_time(now - chrono::TimeDelta::seconds(120));
        let b: Vec<PendingEvent> = events(1).iter().map(OutgoingEvent::to_pending).collect();
        m.set_owed([a.as_slice(), b.as_slice(), &[]], now);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains(
                r#"apim_operator_events_published_total{type="com.cab-i.apim.api.created"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"apim_operator_events_failed_total{type="com.cab-i.apim.api.created",reason="timeout"} 1"#),
            "{text}"
        );
        assert!(text.contains("apim_operator_events_owed 3"), "{text}");
        assert!(
            text.contains("apim_operator_events_oldest_owed_age_seconds 12"),
            "{text}"
        );
        assert!(
            text.contains("apim_operator_events_publish_latency_seconds_count 1"),
            "{text}"
        );
    }
}
