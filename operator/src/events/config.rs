//! Settings of the event pipeline: brokers, security (TLS, SASL), producer tuning and topic
//! names. The lead embeds [`EventsConfig`] into the operator's main `Config` (key `events`).
//!
//! ```yaml
//! events:
//!   brokers: redpanda-0.redpanda:9093,redpanda-1.redpanda:9093
//!   tls: { enabled: true, caFile: /etc/apim/kafka/ca.crt }
//!   sasl: { mechanism: SCRAM-SHA-256, secretName: apim-kafka-credentials }
//!   topics:
//!     prefix: "apim."
//!     overrides:
//!       audit-log: { name: audit, retention: 730d }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::topics::Topic;

/// Why the events configuration is not usable.
#[derive(Debug, thiserror::Error)]
pub enum EventsConfigError {
    /// A field has a value the pipeline cannot work with.
    #[error("invalid events configuration: {0}")]
    Invalid(String),
}

/// The whole event pipeline configuration (`events` in the operator's configuration).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Publish events at all. When false, events stay owed in each resource's outbox.
    pub enabled: bool,
    /// Bootstrap brokers, comma-separated `host:port` (Redpanda, Redpanda Cloud, Apache Kafka).
    pub brokers: String,
    /// Kafka `client.id`, shown in broker logs and quotas.
    pub client_id: String,
    /// TLS to the brokers.
    pub tls: TlsConfig,
    /// SASL authentication (credentials from a Kubernetes Secret); none when absent.
    pub sasl: Option<SaslConfig>,
    /// Producer tuning.
    pub producer: ProducerConfig,
    /// Topic names and settings.
    pub topics: TopicsConfig,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            enabled: true,
            brokers: "127.0.0.1:9092".into(),
            client_id: "apim-operator".into(),
            tls: TlsConfig::default(),
            sasl: None,
            producer: ProducerConfig::default(),
            topics: TopicsConfig::default(),
        }
    }
}

/// TLS settings. With `enabled` and no `caFile`, the system's CA certificates are used
/// (Redpanda Cloud, managed Kafka).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Connect with TLS.
    pub enabled: bool,
    /// PEM file of the CA that signed the brokers' certificates.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS (with `keyFile`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// Skip the broker host name check (never in production).
    pub skip_hostname_verification: bool,
}

/// A SASL mechanism supported by Redpanda and Apache Kafka.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN` (only over TLS in production).
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256` (Redpanda's default).
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka `sasl.mechanism` value.
    pub const fn as_str(&self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL settings; the credentials are the `username` and `password` keys of a Secret.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// Name of the Secret holding `username` and `password`.
    pub secret_name: String,
    /// Namespace of the Secret (default: the operator's namespace).
    #[serde(default)]
    pub secret_namespace: Option<String>,
}

/// Compression codec of produced batches.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// LZ4.
    Lz4,
    /// Zstandard (best ratio on JSON).
    #[default]
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Producer tuning. The producer is always idempotent with `acks=all`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ProducerConfig {
    /// Compression codec.
    pub compression: Compression,
    /// How long the producer waits to fill a batch (`linger.ms`), e.g. `1ms` (the default: p99
    /// produce-to-ack under 10 ms at 1,000 events/s, and batches still fill under load).
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Largest batch in bytes (`batch.size`).
    pub batch_bytes: u32,
    /// Time after which an unacknowledged event is reported failed and stays owed
    /// (`message.timeout.ms`), e.g. `10s` (the default). A reconcile that meets a broker
    /// outage waits this long once; then events are recorded as owed at once until the broker
    /// answers again.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// Timeout of topic administration at start (create, describe), e.g. `30s`.
    #[serde(with = "humantime_serde")]
    pub admin_timeout: Duration,
    /// Most events buffered in the producer (`queue.buffering.max.messages`).
    pub queue_max_messages: u32,
    /// Further librdkafka properties, applied last (e.g. `statistics.interval.ms`). The
    /// delivery guarantees (`enable.idempotence`, `acks`) and credentials cannot be set here.
    pub extra: BTreeMap<String, String>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            compression: Compression::Zstd,
            linger: Duration::from_millis(1),
            batch_bytes: 1_000_000,
            delivery_timeout: Duration::from_secs(10),
            admin_timeout: Duration::from_secs(30),
            queue_max_messages: 100_000,
            extra: BTreeMap::new(),
        }
    }
}

/// Topic names and settings. A topic's name is `prefix` + its catalogue name, unless an
/// override names it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TopicsConfig {
    /// Prefix of every topic name (e.g. `apim.`); empty by default.
    pub prefix: String,
    /// Create missing topics at start ([`super::topics::ensure_topics`]); when false, only
    /// check them ([`super::topics::check_topics`]).
    pub create: bool,
    /// Partitions of a created topic.
    pub partitions: i32,
    /// Replication factor of a created topic; -1 takes the broker's default.
    pub replication_factor: i32,
    /// Per-topic settings, keyed by catalogue name (`audit-log`, `deploy-requests`, …).
    pub overrides: BTreeMap<Topic, TopicOverride>,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            prefix: String::new(),
            create: true,
            partitions: 6,
            replication_factor: -1,
            overrides: BTreeMap::new(),
        }
    }
}

/// Settings of one topic that differ from the defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TopicOverride {
    /// Full topic name (the prefix is not added).
    pub name: Option<String>,
    /// Partitions of the topic when created.
    pub partitions: Option<i32>,
    /// Retention (`retention.ms`), e.g. `90d`.
    #[serde(with = "humantime_serde_opt")]
    pub retention: Option<Duration>,
}

/// librdkafka properties that `producer.extra` may not set.
const RESERVED: &[&str] = &[
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "sasl.username",
    "sasl.password",
    "bootstrap.servers",
];

impl EventsConfig {
    /// Applies `APIM_KAFKA_BROKERS`, `APIM_KAFKA_CLIENT_ID`, `APIM_KAFKA_TOPIC_PREFIX` and
    /// `APIM_EVENTS_ENABLED` from `env` (the main configuration's environment overlay).
    pub fn apply_env(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), EventsConfigError> {
        if let Some(v) = env("APIM_KAFKA_BROKERS") {
            self.brokers = v;
        }
        if let Some(v) = env("APIM_KAFKA_CLIENT_ID") {
            self.client_id = v;
        }
        if let Some(v) = env("APIM_KAFKA_TOPIC_PREFIX") {
            self.topics.prefix = v;
        }
        if let Some(v) = env("APIM_EVENTS_ENABLED") {
            self.enabled = v.parse().map_err(|_| {
                EventsConfigError::Invalid(format!(
                    "APIM_EVENTS_ENABLED={v:?} is not true or false"
                ))
            })?;
        }
        Ok(())
    }

    /// Checks what serde cannot: non-empty brokers, sane numbers, no reserved `extra` key.
    pub fn validate(&self) -> Result<(), EventsConfigError> {
        let invalid = |m: String| Err(EventsConfigError::Invalid(m));
        if self.brokers.trim().is_empty() {
            return invalid("events.brokers must name at least one broker".into());
        }
        if self.topics.partitions < 1 {
            return invalid(format!(
                "events.topics.partitions ({}) must be at least 1",
                self.topics.partitions
            ));
        }
        if self.topics.replication_factor == 0 || self.topics.replication_factor < -1 {
            return invalid(format!(
                "events.topics.replicationFactor ({}) must be -1 (broker default) or at least 1",
                self.topics.replication_factor
            ));
        }
        for (topic, o) in &self.topics.overrides {
            if o.partitions.is_some_and(|p| p < 1) {
                return invalid(format!(
                    "events.topics.overrides.{topic}.partitions must be at least 1"
                ));
            }
            if o.name.as_deref().is_some_and(|n| !valid_topic_name(n)) {
                return invalid(format!(
                    "events.topics.overrides.{topic}.name is not a valid Kafka topic name"
                ));
            }
        }
        if !valid_topic_name(&format!("{}x", self.topics.prefix)) {
            return invalid(format!(
                "events.topics.prefix {:?} cannot start a Kafka topic name",
                self.topics.prefix
            ));
        }
        if self.producer.delivery_timeout < Duration::from_millis(1) {
            return invalid("events.producer.deliveryTimeout must be positive".into());
        }
        if let Some(key) = self
            .producer
            .extra
            .keys()
            .find(|k| RESERVED.contains(&k.as_str()))
        {
            return invalid(format!("events.producer.extra may not set {key}"));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return invalid("events.tls.certFile and events.tls.keyFile go together".into());
        }
        Ok(())
    }
}

/// Kafka's rule: 1 to 249 characters among letters, digits, `.`, `_` and `-`.
pub(crate) fn valid_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Serde of `Duration` as a humantime string (`5ms`, `30s`, `7d`).
pub(crate) mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde of `Option<Duration>` as a humantime string.
pub(crate) mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = EventsConfig::default();
        c.validate().expect("defaults are valid");
        let yaml = serde_yaml::to_string(&c).expect("serialize");
        let back: EventsConfig = serde_yaml::from_str(&yaml).expect("parse");
        assert_eq!(back, c);
        let empty: EventsConfig = serde_yaml::from_str("{}").expect("empty");
        assert_eq!(empty, c);
    }

    #[test]
    fn parses_a_redpanda_cloud_setup() {
        let c: EventsConfig = serde_yaml::from_str(
            "brokers: seed.cloud:9092\ntls: {enabled: true}\nsasl: {mechanism: SCRAM-SHA-256, secretName: kafka}\n\
             producer: {linger: 7ms, compression: lz4, deliveryTimeout: 10s}\n\
             topics: {prefix: apim., overrides: {audit-log: {name: audit, retention: 730d}}}",
        )
        .expect("parse");
        c.validate().expect("valid");
        assert_eq!(
            c.sasl.as_ref().map(|s| s.mechanism),
            Some(SaslMechanism::ScramSha256)
        );
        assert_eq!(c.producer.linger, Duration::from_millis(7));
        assert_eq!(c.producer.compression, Compression::Lz4);
        let o = &c.topics.overrides[&Topic::AuditLog];
        assert_eq!(o.name.as_deref(), Some("audit"));
        assert_eq!(o.retention, Some(Duration::from_secs(730 * 86_400)));
    }

    #[test]
    fn rejects_what_would_break_delivery() {
        let e = serde_yaml::from_str::<EventsConfig>("topics: {overrides: {api-crated: {}}}")
            .expect_err("unknown topic");
        assert!(e.to_string().contains("api-crated"), "{e}");
        let mut c = EventsConfig::default();
        c.producer
            .extra
            .insert("enable.idempotence".into(), "false".into());
        let e = c.validate().expect_err("reserved");
        assert!(e.to_string().contains("enable.idempotence"), "{e}");
        let mut c = EventsConfig::default();
        c.topics.prefix = "bad prefix/".into();
        assert!(c.validate().is_err());
        let mut c = EventsConfig::default();
        c.topics.partitions = 0;
        assert!(c.validate().is_err());
        let mut c = EventsConfig::default();
        c.tls.cert_file = Some("/c.pem".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn environment_overrides() {
        let mut c = EventsConfig::default();
        let env = |k: &str| match k {
            "APIM_KAFKA_BROKERS" => Some("b1:9092,b2:9092".to_owned()),
            "APIM_KAFKA_TOPIC_PREFIX" => Some("apim.".to_owned()),
            "APIM_EVENTS_ENABLED" => Some("false".to_owned()),
            _ => None,
        };
        c.apply_env(env).expect("apply");
        assert_eq!(
            (c.brokers.as_str(), c.topics.prefix.as_str(), c.enabled),
            ("b1:9092,b2:9092", "apim.", false)
        );
        let e = c
            .apply_env(|k| (k == "APIM_EVENTS_ENABLED").then(|| "nope".to_owned()))
            .expect_err("bad bool");
        assert!(e.to_string().contains("APIM_EVENTS_ENABLED"), "{e}");
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(valid_topic_name("apim.api-created_1"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name(".."));
        assert!(!valid_topic_name("a b"));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }
}
