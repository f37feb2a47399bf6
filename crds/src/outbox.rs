//! The Kubernetes-native outbox: events owed to the broker, recorded in the resource's status
//! in the same write as the state change that caused them, cleared once the broker
//! acknowledged them. Every kind's status carries `pendingEvents`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most events a resource may owe. A full outbox holds back further state changes of that
/// resource rather than drop anything; the CRD schema enforces the same bound.
pub const OUTBOX_CAPACITY: usize = 32;

/// One event recorded as owed and not yet acknowledged by the broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingEvent {
    /// CloudEvents `id`; consumers de-duplicate on it, so a re-send after a crash reuses it.
    #[schemars(length(min = 1, max = 64))]
    pub id: String,
    /// Kafka topic the event goes to (e.g. `api-created`).
    #[schemars(length(min = 1, max = 249))]
    pub topic: String,
    /// The complete CloudEvents 1.0 JSON document, serialized exactly as it will be sent.
    #[schemars(length(max = 16384))]
    pub event: String,
    /// When the event was recorded.
    pub recorded_at: Time,
}
