//! The Kafka publisher: an idempotent `acks=all` rdkafka producer behind the [`EventSink`]
//! trait, with brokers, TLS and SASL from [`EventsConfig`].
//!
//! A batch is enqueued in slice order (so a resource's events keep their order in its
//! partition: the idempotent producer preserves it, retries included), then every delivery
//! report is awaited concurrently.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::ByteString;
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use super::config::EventsConfig;
use super::envelope::OutgoingEvent;
use super::metrics::EventMetrics;

/// What the broker acknowledged for one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// CloudEvents `id`.
    pub id: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// From enqueue to the broker's acknowledgement.
    pub latency: Duration,
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The producer could not be created from the configuration.
    #[error("failed to create the Kafka producer: {source}")]
    CreateProducer {
        /// The client error.
        source: Box<KafkaError>,
    },
    /// The admin client could not be created from the configuration.
    #[error("failed to create the Kafka admin client: {source}")]
    CreateAdmin {
        /// The client error.
        source: Box<KafkaError>,
    },
    /// The SASL credentials Secret lacks a usable key.
    #[error("failed to read SASL credentials from Secret key {key:?}: {reason}")]
    Credentials {
        /// The Secret key.
        key: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// SASL is configured but no credentials were given.
    #[error("failed to configure SASL: events.sasl is set but no credentials were read")]
    MissingCredentials,
    /// The producer refused the event (queue full past the timeout, fatal error, …).
    #[error("failed to enqueue event {id} for topic {topic}: {source}")]
    Enqueue {
        /// The event id.
        id: String,
        /// The topic.
        topic: String,
        /// The client error.
        source: Box<KafkaError>,
    },
    /// The broker did not acknowledge the event within the delivery timeout, or refused it.
    #[error("failed to deliver event {id} to topic {topic}: {source}")]
    Deliver {
        /// The event id.
        id: String,
        /// The topic.
        topic: String,
        /// The client error.
        source: Box<KafkaError>,
    },
    /// The producer was dropped before it reported.
    #[error("failed to deliver event {id}: the producer shut down before reporting")]
    Canceled {
        /// The event id.
        id: String,
    },
}

impl PublishError {
    /// The metric label of this failure.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PublishError::CreateProducer { .. } | PublishError::CreateAdmin { .. } => "client",
            PublishError::Credentials { .. } | PublishError::MissingCredentials => "credentials",
            PublishError::Enqueue { .. } => "enqueue",
            PublishError::Deliver { source, .. } => match source.rdkafka_error_code() {
                Some(RDKafkaErrorCode::MessageTimedOut) => "timeout",
                _ => "broker",
            },
            PublishError::Canceled { .. } => "canceled",
        }
    }
}

/// Where events go. Object-safe, so controllers hold an `Arc<dyn EventSink>` and tests a
/// [`FakeSink`].
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes `events`, in order per key, and returns one result per event in the same
    /// order. Never fails as a whole: each event is acknowledged or not.
    async fn publish_batch(&self, events: &[OutgoingEvent])
    -> Vec<Result<Delivered, PublishError>>;

    /// Whether the broker answers within `timeout` (asked after a failed delivery, before
    /// deliveries are attempted again).
    async fn probe(&self, _timeout: Duration) -> bool {
        true
    }
}

/// SASL credentials read from a Secret. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// User name.
    pub username: String,
    password: String,
}

impl SaslCredentials {
    /// Credentials from plain values.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        SaslCredentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// From a Secret's `data`: keys `username` and `password`, UTF-8, non-empty.
    pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<Self, PublishError> {
        let read = |key: &'static str| -> Result<String, PublishError> {
            let bytes = data.get(key).ok_or(PublishError::Credentials {
                key,
                reason: "missing",
            })?;
            let s = std::str::from_utf8(&bytes.0).map_err(|_| PublishError::Credentials {
                key,
                reason: "not UTF-8",
            })?;
            let s = s.trim_end_matches(['\r', '\n']);
            if s.is_empty() {
                return Err(PublishError::Credentials {
                    key,
                    reason: "empty",
                });
            }
            Ok(s.to_owned())
        };
        Ok(SaslCredentials {
            username: read("username")?,
            password: read("password")?,
        })
    }
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The connection settings shared by the producer and the admin client: brokers, client id,
/// `security.protocol`, TLS files and SASL.
pub fn connection_config(
    config: &EventsConfig,
    credentials: Option<&SaslCredentials>,
) -> Result<ClientConfig, PublishError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", config.brokers.trim())
        .set("client.id", &config.client_id);
    let protocol = match (config.tls.enabled, config.sasl.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    c.set("security.protocol", protocol);
    if config.tls.enabled {
        match &config.tls.ca_file {
            Some(ca) => c.set("ssl.ca.location", ca.display().to_string()),
            // The system's CA certificates (Redpanda Cloud, managed Kafka).
            None => c.set("ssl.ca.location", "probe"),
        };
        if let (Some(cert), Some(key)) = (&config.tls.cert_file, &config.tls.key_file) {
            c.set("ssl.certificate.location", cert.display().to_string());
            c.set("ssl.key.location", key.display().to_string());
        }
        if config.tls.skip_hostname_verification {
            c.set("ssl.endpoint.identification.algorithm", "none");
        }
    }
    if let Some(sasl) = &config.sasl {
        let creds = credentials.ok_or(PublishError::MissingCredentials)?;
        c.set("sasl.mechanism", sasl.mechanism.as_str())
            .set("sasl.username", &creds.username)
            .set("sasl.password", &creds.password);
    }
    Ok(c)
}

/// The producer's configuration: [`connection_config`] plus idempotence, `acks=all`,
/// compression, batching and the delivery timeout, then `producer.extra`.
pub fn producer_config(
    config: &EventsConfig,
    credentials: Option<&SaslCredentials>,
) -> Result<ClientConfig, PublishError> {
    let p = &config.producer;
    let mut c = connection_config(config, credentials)?;
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", p.compression.as_str())
        .set("linger.ms", p.linger.as_millis().to_string())
        .set("batch.size", p.batch_bytes.to_string())
        .set(
            "message.timeout.ms",
            p.delivery_timeout.as_millis().max(1).to_string(),
        )
        .set(
            "queue.buffering.max.messages",
            p.queue_max_messages.to_string(),
        )
        .set("socket.keepalive.enable", "true")
        // Small produce requests must not wait for the previous one's TCP ack (Nagle +
        // delayed ack cost tens of milliseconds); the Java client sets TCP_NODELAY too.
        .set("socket.nagle.disable", "true")
        // The catalogue is authoritative: never let a send auto-create a topic with the
        // broker's defaults (an event for a missing topic stays owed instead).
        .set("allow.auto.create.topics", "false");
    for (k, v) in &p.extra {
        c.set(k, v);
    }
    Ok(c)
}

/// Routes librdkafka's logs and errors to `tracing`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingContext;

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility = fac, "{message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, "Kafka client error: {reason}");
    }
}

/// An admin client for [`super::topics::ensure_topics`], with the same connection settings.
pub fn admin_client(
    config: &EventsConfig,
    credentials: Option<&SaslCredentials>,
) -> Result<AdminClient<TracingContext>, PublishError> {
    connection_config(config, credentials)?
        .create_with_context(TracingContext)
        .map_err(|source| PublishError::CreateAdmin {
            source: Box::new(source),
        })
}

/// The Kafka publisher.
pub struct Publisher {
    producer: FutureProducer<TracingContext>,
    queue_timeout: Duration,
    metrics: Option<EventMetrics>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("queue_timeout", &self.queue_timeout)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A producer for `config`; `credentials` are required when `config.sasl` is set. Does not
    /// connect yet (librdkafka connects in the background).
    pub fn new(
        config: &EventsConfig,
        credentials: Option<&SaslCredentials>,
    ) -> Result<Self, PublishError> {
        let producer = producer_config(config, credentials)?
            .create_with_context(TracingContext)
            .map_err(|source| PublishError::CreateProducer {
                source: Box::new(source),
            })?;
        Ok(Publisher {
            producer,
            queue_timeout: config.producer.delivery_timeout,
            metrics: None,
        })
    }

    /// Counts published and failed events in `metrics`.
    pub fn with_metrics(mut self, metrics: EventMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Waits up to `timeout` for every buffered event to be delivered (at shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    fn record_headers(event: &OutgoingEvent) -> OwnedHeaders {
        event.headers.iter().fold(
            OwnedHeaders::new_with_capacity(event.headers.len()),
            |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                })
            },
        )
    }
}

enum Enqueued {
    Sent(rdkafka::producer::DeliveryFuture, Instant),
    Failed(PublishError),
}

#[async_trait]
impl EventSink for Publisher {
    async fn publish_batch(
        &self,
        events: &[OutgoingEvent],
    ) -> Vec<Result<Delivered, PublishError>> {
        // Enqueue everything in order first (the order within a partition is the enqueue
        // order), then await every delivery report at once.
        let mut enqueued = Vec::with_capacity(events.len());
        for event in events {
            let started = Instant::now();
            let mut record = FutureRecord::to(&event.topic)
                .key(event.key.as_bytes())
                .payload(event.payload.as_bytes())
                .headers(Self::record_headers(event));
            let outcome = loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => break Enqueued::Sent(delivery, started),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if started.elapsed() < self.queue_timeout =>
                    {
                        // The local queue is full: let the producer drain it, keep the order.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((source, _)) => {
                        break Enqueued::Failed(PublishError::Enqueue {
                            id: event.id.clone(),
                            topic: event.topic.clone(),
                            source: Box::new(source),
                        });
                    }
                }
            };
            enqueued.push(outcome);
        }
        let results = futures::future::join_all(enqueued.into_iter().zip(events).map(
            |(e, event)| async move {
                match e {
                    Enqueued::Failed(err) => Err(err),
                    Enqueued::Sent(delivery, started) => match delivery.await {
                        Ok(Ok(d)) => Ok(Delivered {
                            id: event.id.clone(),
                            topic: event.topic.clone(),
                            partition: d.partition,
                            offset: d.offset,
                            latency: started.elapsed(),
                        }),
                        Ok(Err((source, _))) => Err(PublishError::Deliver {
                            id: event.id.clone(),
                            topic: event.topic.clone(),
                            source: Box::new(source),
                        }),
                        Err(_) => Err(PublishError::Canceled {
                            id: event.id.clone(),
                        }),
                    },
                }
            },
        ))
        .await;
        if let Some(m) = &self.metrics {
            for (event, result) in events.iter().zip(&results) {
                m.observe(&event.event_type, result);
            }
        }
        results
    }

    async fn probe(&self, timeout: Duration) -> bool {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .is_ok_and(|m| !m.brokers().is_empty())
        })
        .await
        .unwrap_or(false)
    }
}

/// An in-memory [`EventSink`] for tests of code that publishes (controllers): records what it
/// is given and acknowledges it, or fails the events it is told to. Test-only; never wired in
/// the operator.
#[derive(Debug, Default)]
pub struct FakeSink {
    published: Mutex<Vec<OutgoingEvent>>,
    failing: Mutex<HashSet<String>>,
    fail_all: std::sync::atomic::AtomicBool,
}

impl FakeSink {
    /// A sink that acknowledges everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event acknowledged so far, in order.
    pub fn published(&self) -> Vec<OutgoingEvent> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Makes the event `id` fail until [`FakeSink::heal`].
    pub fn fail_id(&self, id: impl Into<String>) {
        if let Ok(mut f) = self.failing.lock() {
            f.insert(id.into());
        }
    }

    /// Makes every event fail (a broker outage) until [`FakeSink::heal`].
    pub fn fail_all(&self) {
        self.fail_all
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Ends every failure.
    pub fn heal(&self) {
        self.fail_all
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut f) = self.failing.lock() {
            f.clear();
        }
    }
}

#[async_trait]
impl EventSink for FakeSink {
    async fn publish_batch(
        &self,
        events: &[OutgoingEvent],
    ) -> Vec<Result<Delivered, PublishError>> {
        let all = self.fail_all.load(std::sync::atomic::Ordering::SeqCst);
        let failing = self.failing.lock().map(|f| f.clone()).unwrap_or_default();
        let mut published = match self.published.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        events
            .iter()
            .map(|e| {
                if all || failing.contains(&e.id) {
                    return Err(PublishError::Deliver {
                        id: e.id.clone(),
                        topic: e.topic.clone(),
                        source: Box::new(KafkaError::MessageProduction(
                            RDKafkaErrorCode::MessageTimedOut,
                        )),
                    });
                }
                published.push(e.clone());
                let offset = published.iter().filter(|p| p.topic == e.topic).count() as i64 - 1;
                Ok(Delivered {
                    id: e.id.clone(),
                    topic: e.topic.clone(),
                    partition: 0,
                    offset,
                    latency: Duration::ZERO,
                })
            })
            .collect()
    }

    async fn probe(&self, _timeout: Duration) -> bool {
        !self.fail_all.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::config::{SaslConfig, SaslMechanism};

    fn get(c: &ClientConfig, k: &str) -> Option<String> {
        c.get(k).map(str::to_owned)
    }

    #[test]
    fn producer_is_idempotent_acks_all_and_compressed() {
        let c = producer_config(&EventsConfig::default(), None).expect("config");
        assert_eq!(get(&c, "enable.idempotence").as_deref(), Some("true"));
        assert_eq!(get(&c, "acks").as_deref(), Some("all"));
        assert_eq!(get(&c, "compression.type").as_deref(), Some("zstd"));
        assert_eq!(get(&c, "linger.ms").as_deref(), Some("1"));
        assert_eq!(get(&c, "message.timeout.ms").as_deref(), Some("10000"));
        assert_eq!(get(&c, "socket.nagle.disable").as_deref(), Some("true"));
        assert_eq!(get(&c, "security.protocol").as_deref(), Some("plaintext"));
    }

    #[test]
    fn sasl_over_tls_for_redpanda_cloud() {
        let mut cfg = EventsConfig::default();
        cfg.tls.enabled = true;
        cfg.sasl = Some(SaslConfig {
            mechanism: SaslMechanism::ScramSha512,
            secret_name: "kafka".into(),
            secret_namespace: None,
        });
        let e = producer_config(&cfg, None).expect_err("credentials required");
        assert!(matches!(e, PublishError::MissingCredentials), "{e}");
        let creds = SaslCredentials::new("apim", "s3cret");
        let c = producer_config(&cfg, Some(&creds)).expect("config");
        assert_eq!(get(&c, "security.protocol").as_deref(), Some("sasl_ssl"));
        assert_eq!(get(&c, "sasl.mechanism").as_deref(), Some("SCRAM-SHA-512"));
        assert_eq!(get(&c, "sasl.username").as_deref(), Some("apim"));
        assert_eq!(get(&c, "ssl.ca.location").as_deref(), Some("probe"));
        cfg.tls.ca_file = Some("/etc/ca.pem".into());
        cfg.tls.cert_file = Some("/etc/c.pem".into());
        cfg.tls.key_file = Some("/etc/k.pem".into());
        let c = connection_config(&cfg, Some(&creds)).expect("config");
        assert_eq!(get(&c, "ssl.ca.location").as_deref(), Some("/etc/ca.pem"));
        assert_eq!(
            get(&c, "ssl.certificate.location").as_deref(),
            Some("/etc/c.pem")
        );
        assert_eq!(
            get(&c, "enable.idempotence"),
            None,
            "admin settings carry no producer settings"
        );
    }

    #[test]
    fn credentials_come_from_secret_data_and_never_show() {
        let data = BTreeMap::from([
            ("username".to_owned(), ByteString(b"apim".to_vec())),
            ("password".to_owned(), ByteString(b"s3cret\n".to_vec())),
        ]);
        let c = SaslCredentials::from_secret_data(&data).expect("credentials");
        assert_eq!(c, SaslCredentials::new("apim", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let mut missing = data.clone();
        missing.remove("password");
        let e = SaslCredentials::from_secret_data(&missing).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "failed to read SASL credentials from Secret key \"password\": missing"
        );
        let mut bad = data;
        bad.insert("username".into(), ByteString(vec![0xff]));
        assert!(SaslCredentials::from_secret_data(&bad).is_err());
    }

    #[tokio::test]
    async fn fake_sink_acks_or_fails_per_event() {
        let sink = FakeSink::new();
        let events = crate::events::outbox::tests::events(3);
        sink.fail_id(events[1].id.clone());
        let r = sink.publish_batch(&events).await;
        assert!(r[0].is_ok() && r[1].is_err() && r[2].is_ok());
        assert_eq!(
            r[1].as_ref().err().map(PublishError::metric_label),
            Some("timeout")
        );
        assert_eq!(sink.published().len(), 2);
        sink.fail_all();
        assert!(sink.publish_batch(&events).await.iter().all(Result::is_err));
        sink.heal();
        assert!(sink.publish_batch(&events).await.iter().all(Result::is_ok));
    }
}
