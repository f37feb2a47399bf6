//! Kubernetes Events on our objects, written in the background by a few workers from a
//! bounded queue (as client-go's event broadcaster does): a reconcile never waits for them,
//! and a burst of deployments does not compete with its own status writes for the API server.
//! Events are informational; when the queue is full, an Event is dropped with a warning.

use std::sync::Mutex;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tokio::sync::mpsc;

/// Events waiting to be written, at most.
pub const QUEUE_CAPACITY: usize = 8192;
/// Events written at once.
pub const WORKERS: usize = 4;

/// A Kubernetes Event to publish on an object.
#[derive(Debug, Clone)]
pub struct K8sEvent {
    /// Warning rather than Normal.
    pub warning: bool,
    /// Short CamelCase reason.
    pub reason: &'static str,
    /// What the operator did.
    pub action: &'static str,
    /// A sentence for people (never credentials).
    pub note: String,
}

impl K8sEvent {
    /// A Normal event.
    pub fn normal(reason: &'static str, action: &'static str, note: impl Into<String>) -> K8sEvent {
        K8sEvent {
            warning: false,
            reason,
            action,
            note: note.into(),
        }
    }

    /// A Warning event.
    pub fn warning(
        reason: &'static str,
        action: &'static str,
        note: impl Into<String>,
    ) -> K8sEvent {
        K8sEvent {
            warning: true,
            reason,
            action,
            note: note.into(),
        }
    }
}

struct Job {
    reference: ObjectReference,
    event: K8sEvent,
}

/// The queue and its workers (started on first use, inside the runtime).
pub struct EventQueue {
    recorder: Recorder,
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
}

impl EventQueue {
    /// A queue writing through `recorder`.
    pub fn new(recorder: Recorder) -> EventQueue {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        EventQueue {
            recorder,
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// Queues `events` on the object `reference`.
    pub fn publish(&self, reference: &ObjectReference, events: Vec<K8sEvent>) {
        self.start_workers();
        for event in events {
            let job = Job {
                reference: reference.clone(),
                event,
            };
            if let Err(e) = self.tx.try_send(job) {
                let reason = match &e {
                    mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => {
                        j.event.reason
                    }
                };
                tracing::warn!(reason, "the Kubernetes Event queue is full: Event dropped");
            }
        }
    }

    fn start_workers(&self) {
        let Some(rx) = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|j| (j, rx)) })
                .for_each_concurrent(WORKERS, |job| {
                    let recorder = recorder.clone();
                    async move { write(&recorder, &job.reference, job.event).await }
                })
                .await;
        });
    }
}

async fn write(recorder: &Recorder, reference: &ObjectReference, e: K8sEvent) {
    let event = Event {
        type_: if e.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: e.reason.into(),
        note: Some(super::shared::truncate(&e.note, 1000)),
        action: e.action.into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %err, reason = e.reason, "failed to publish a Kubernetes Event");
    }
}
