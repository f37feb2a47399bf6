//! The CloudEvents 1.0 envelope (structured JSON mode) and [`OutgoingEvent`], an event ready
//! for Kafka: topic, key, `ce_*` headers and the serialized document.
//!
//! The serialized document is the unit of delivery: it is what the outbox stores and what is
//! sent, byte for byte, so a re-send after a crash carries the same `id`. Key and headers are
//! always derived from the document ([`OutgoingEvent::from_document`]), so a first send and a
//! re-send from the outbox are identical.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::topics::TopicNames;
use super::types::{EVENT_TYPES, EventData, EventTime};

/// CloudEvents spec version.
pub const SPEC_VERSION: &str = "1.0";
/// Kafka `content-type` header of a structured-mode CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// `datacontenttype` of every event: `data` is JSON.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// Longest serialized document the outbox can hold (`PendingEvent.event`).
pub const MAX_DOCUMENT_BYTES: usize = 16_384;

/// A CloudEvents 1.0 event of this operator, in structured JSON mode. The `type` and `data`
/// attributes come from [`EventData`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "APIM operator CloudEvent",
    description = "A CloudEvents 1.0 event emitted by the APIM operator (structured JSON mode, \
                   content type application/cloudevents+json). Kafka key: extension resourceuid \
                   (audit-log: id)."
)]
pub struct CloudEvent {
    /// CloudEvents version: `1.0`.
    #[schemars(extend("const" = "1.0"))]
    pub specversion: String,
    /// Unique id (a UUID v5 derived from the resource and the fact; a UUID v7 for events built
    /// without one); consumers de-duplicate on it.
    #[schemars(length(min = 1, max = 64))]
    pub id: String,
    /// The operator instance: `apim-operator/<identity>`.
    #[schemars(length(min = 1))]
    pub source: String,
    /// When the fact happened (RFC 3339, UTC).
    pub time: EventTime,
    /// The resource: `<namespace>/<name>`, or `<name>` when cluster-scoped.
    #[schemars(length(min = 1))]
    pub subject: String,
    /// Content type of `data`: `application/json`.
    #[schemars(extend("const" = "application/json"))]
    pub datacontenttype: String,
    /// Extension: the tenant (the resource's namespace); absent for cluster-scoped resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Extension: the user or service account behind the change, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Extension: W3C trace context of the reconcile that emitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"))]
    pub traceparent: Option<String>,
    /// Extension: `metadata.uid` of the resource (the Kafka key).
    #[schemars(length(min = 1))]
    pub resourceuid: String,
    /// Extension: `metadata.generation` of the resource, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resourcegeneration: Option<i64>,
    /// `type` and `data`.
    #[serde(flatten)]
    pub data: EventData,
}

/// The resource an event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRef {
    /// Namespace (the tenant); none when cluster-scoped.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.generation`.
    pub generation: Option<i64>,
}

impl ResourceRef {
    /// From an object's metadata; none without a name or uid (an object not yet stored).
    pub fn from_meta(meta: &ObjectMeta) -> Option<Self> {
        Some(ResourceRef {
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
            generation: meta.generation,
        })
    }

    /// `namespace/name`, or `name`.
    pub fn subject(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl CloudEvent {
    /// A new event about `resource` from `source`, with a fresh UUID v7 id, at `time`.
    pub fn new(source: &str, resource: &ResourceRef, data: EventData, time: DateTime<Utc>) -> Self {
        CloudEvent {
            specversion: SPEC_VERSION.into(),
            id: uuid::Uuid::now_v7().to_string(),
            source: source.into(),
            time: EventTime(time),
            subject: resource.subject(),
            datacontenttype: DATA_CONTENT_TYPE.into(),
            tenant: resource.namespace.clone(),
            actor: None,
            traceparent: None,
            resourceuid: resource.uid.clone(),
            resourcegeneration: resource.generation,
            data,
        }
    }

    /// Sets the `actor` extension.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the `traceparent` extension (ignored unless it is a valid W3C traceparent).
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        let t = traceparent.into();
        if valid_traceparent(&t) {
            self.traceparent = Some(t);
        }
        self
    }
}

/// The `source` of every event of this operator instance: `apim-operator/<identity>`.
pub fn source_for(identity: &str) -> String {
    format!("apim-operator/{identity}")
}

/// Whether `t` is a W3C `traceparent` (version 00 format, lowercase hex, non-zero ids).
pub fn valid_traceparent(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
}

/// Why an event cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Serialization failed.
    #[error("failed to serialize event {id}: {source}")]
    Serialize {
        /// The event id.
        id: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The stored document is not a CloudEvent of ours.
    #[error("failed to parse the document of event {id}: {source}")]
    Parse {
        /// The event id (from the outbox entry).
        id: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The document lacks an attribute needed to send it.
    #[error("failed to read attribute {attribute} of event {id}: missing or not a string")]
    MissingAttribute {
        /// The event id.
        id: String,
        /// The attribute.
        attribute: &'static str,
    },
    /// The document exceeds what the outbox can hold.
    #[error(
        "failed to encode event {id}: {size} bytes exceed the outbox limit of {MAX_DOCUMENT_BYTES}"
    )]
    TooLarge {
        /// The event id.
        id: String,
        /// The document size.
        size: usize,
    },
}

/// An event ready for Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// CloudEvents `id`.
    pub id: String,
    /// CloudEvents `type`.
    pub event_type: String,
    /// The real topic name.
    pub topic: String,
    /// Kafka key: the resource uid (for `audit-log`, the event id).
    pub key: String,
    /// Kafka headers: `ce_<attribute>` for every attribute but `data`, then `content-type`.
    pub headers: Vec<(String, String)>,
    /// The serialized CloudEvents document, sent as the record value.
    pub payload: String,
    /// When the event was recorded.
    pub recorded_at: DateTime<Utc>,
}

impl OutgoingEvent {
    /// Serializes `event` for the topic of its type.
    pub fn encode(event: &CloudEvent, topics: &TopicNames) -> Result<Self, EnvelopeError> {
        let payload = serde_json::to_string(event).map_err(|source| EnvelopeError::Serialize {
            id: event.id.clone(),
            source,
        })?;
        let topic = topics.name(event.data.topic()).to_owned();
        Self::from_document(&event.id, topic, payload, event.time.0)
    }

    /// Rebuilds the event from a stored document: key and headers from its attributes, the
    /// document kept as it is. `id` names the event in errors.
    pub fn from_document(
        id: &str,
        topic: String,
        payload: String,
        recorded_at: DateTime<Utc>,
    ) -> Result<Self, EnvelopeError> {
        if payload.len() > MAX_DOCUMENT_BYTES {
            return Err(EnvelopeError::TooLarge {
                id: id.into(),
                size: payload.len(),
            });
        }
        let doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&payload)
            .map_err(|source| EnvelopeError::Parse {
                id: id.into(),
                source,
            })?;
        let attr = |attribute: &'static str| {
            doc.get(attribute).and_then(|v| v.as_str()).ok_or_else(|| {
                EnvelopeError::MissingAttribute {
                    id: id.into(),
                    attribute,
                }
            })
        };
        let event_id = attr("id")?.to_owned();
        let event_type = attr("type")?.to_owned();
        let uid = attr("resourceuid")?;
        let keyed_by_id = EVENT_TYPES
            .iter()
            .any(|i| i.name == event_type && i.topic.keyed_by_event_id());
        let key = if keyed_by_id {
            event_id.clone()
        } else {
            uid.to_owned()
        };
        let mut headers: Vec<(String, String)> = Vec::with_capacity(doc.len() + 1);
        for (name, value) in &doc {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                // `data` (and anything that is not a scalar) is not a context attribute.
                _ => continue,
            };
            if name == "data" || name == "data_base64" {
                continue;
            }
            headers.push((format!("ce_{name}"), value));
        }
        headers.push(("content-type".into(), CONTENT_TYPE.into()));
        Ok(OutgoingEvent {
            id: event_id,
            event_type,
            topic,
            key,
            headers,
            payload,
            recorded_at,
        })
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn resource() -> ResourceRef {
        ResourceRef {
            namespace: Some("team-a".into()),
            name: "payments".into(),
            uid: "5f0c2b1e-9a7d-4d4c-8a57-0c1f2e3d4b5a".into(),
            generation: Some(3),
        }
    }

    #[test]
    fn envelope_has_every_attribute() {
        let data = EventData::examples().remove(0);
        let e = CloudEvent::new(&source_for("op-1"), &resource(), data, Utc::now())
            .with_actor("alice@cab-i.com")
            .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let v = serde_json::to_value(&e).expect("serialize");
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "com.cab-i.apim.api.created");
        assert_eq!(v["source"], "apim-operator/op-1");
        assert_eq!(v["subject"], "team-a/payments");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["tenant"], "team-a");
        assert_eq!(v["actor"], "alice@cab-i.com");
        assert_eq!(v["resourceuid"], "5f0c2b1e-9a7d-4d4c-8a57-0c1f2e3d4b5a");
        assert_eq!(v["resourcegeneration"], 3);
        assert!(v["traceparent"].is_string());
        assert_eq!(v["data"]["displayName"], "Payments");
        let id = uuid::Uuid::parse_str(&e.id).expect("uuid");
        assert_eq!(id.get_version_num(), 7);
        let back: CloudEvent = serde_json::from_value(v).expect("deserialize");
        assert_eq!(back, e);
    }

    #[test]
    fn invalid_traceparent_is_dropped() {
        let e = CloudEvent::new(
            "s",
            &resource(),
            EventData::examples().remove(0),
            Utc::now(),
        );
        assert_eq!(e.clone().with_traceparent("nope").traceparent, None);
        assert_eq!(
            e.with_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
                .traceparent,
            None
        );
        assert!(valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
    }

    #[test]
    fn outgoing_event_keys_and_headers_come_from_the_document() {
        let topics = TopicNames::default();
        let e = CloudEvent::new(
            "apim-operator/x",
            &resource(),
            EventData::examples().remove(0),
            Utc::now(),
        )
        .with_actor("alice");
        let out = OutgoingEvent::encode(&e, &topics).expect("encode");
        assert_eq!(out.topic, "api-created");
        assert_eq!(out.key, resource().uid);
        assert_eq!(out.id, e.id);
        for (h, want) in [
            ("ce_specversion", "1.0"),
            ("ce_id", e.id.as_str()),
            ("ce_type", "com.cab-i.apim.api.created"),
            ("ce_source", "apim-operator/x"),
            ("ce_subject", "team-a/payments"),
            ("ce_tenant", "team-a"),
            ("ce_actor", "alice"),
            ("ce_resourceuid", resource().uid.as_str()),
            ("ce_resourcegeneration", "3"),
            ("ce_datacontenttype", "application/json"),
            ("content-type", CONTENT_TYPE),
        ] {
            assert_eq!(out.header(h), Some(want), "{h}");
        }
        assert!(out.header("ce_time").is_some());
        assert_eq!(out.header("ce_data"), None);
        // A re-send from the stored document is identical.
        let again = OutgoingEvent::from_document(
            &out.id,
            out.topic.clone(),
            out.payload.clone(),
            out.recorded_at,
        )
        .expect("decode");
        assert_eq!(again, out);
    }

    #[test]
    fn audit_records_are_keyed_by_event_id() {
        let audit = EventData::examples()
            .into_iter()
            .find(|e| e.topic().keyed_by_event_id())
            .expect("audit example");
        let e = CloudEvent::new("s", &resource(), audit, Utc::now());
        let out = OutgoingEvent::encode(&e, &TopicNames::default()).expect("encode");
        assert_eq!(out.topic, "audit-log");
        assert_eq!(out.key, e.id);
    }

    #[test]
    fn broken_documents_are_refused_with_the_reason() {
        let now = Utc::now();
        let e = OutgoingEvent::from_document("x", "t".into(), "{not json".into(), now)
            .expect_err("parse");
        assert!(
            e.to_string()
                .starts_with("failed to parse the document of event x"),
            "{e}"
        );
        let e =
            OutgoingEvent::from_document("x", "t".into(), r#"{"id":"x","type":"t"}"#.into(), now)
                .expect_err("uid");
        assert!(e.to_string().contains("resourceuid"), "{e}");
        let big = format!(r#"{{"id":"x","pad":"{}"}}"#, "a".repeat(MAX_DOCUMENT_BYTES));
        let e = OutgoingEvent::from_document("x", "t".into(), big, now).expect_err("size");
        assert!(matches!(e, EnvelopeError::TooLarge { .. }), "{e}");
    }
}
