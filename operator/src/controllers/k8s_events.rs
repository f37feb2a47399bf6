//! Kubernetes Events on our objects, written in the background by a few workers from a
//! bounded queue (as client-go's event broadcaster does): a reconcile never waits for them,
//! and a burst of deployments does not compete with its own status writes for the API server.
//! Events are informational; when the queue is full, an Event is dropped with a warning.
//! They are paced by a token bucket (`controllers.eventQps`, `eventBurst`): an idle operator
//! writes its Events at once, a mass deployment writes its status first and its Events
//! behind.
//!
//! Each Event is created as it is (events.k8s.io/v1, as kube-runtime's `Recorder` writes
//! them), without the Recorder's cache: that cache keeps every Event for six minutes to patch
//! repeats into a series (tens of MiB when thousands of objects deploy at once, scanned whole
//! on every publish), and a repeat patched into the cached Event keeps the first note, so a
//! second deployment's Event would show the first one's revision and trace id.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::runtime::events::Reporter;
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

/// Who writes the Events, and with which client.
#[derive(Clone)]
struct Writer {
    client: kube::Client,
    reporter: Reporter,
}

/// A token bucket: `burst` at once, then `qps` a second. Each take reserves its slot, so
/// concurrent takers are spaced out in the order they asked.
#[derive(Debug)]
pub struct Pace {
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Pace {
    /// A full bucket.
    pub fn new(qps: u32, burst: u32) -> Pace {
        let burst = f64::from(burst.max(1));
        Pace {
            qps: f64::from(qps.max(1)),
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes one token at `now`; returns how long to wait before using it.
    pub fn take(&mut self, now: Instant) -> Duration {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.qps;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }
}

/// The queue and its workers (started on first use, inside the runtime).
pub struct EventQueue {
    writer: Writer,
    pace: std::sync::Arc<Mutex<Pace>>,
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
}

impl EventQueue {
    /// A queue writing with `client` as `reporter`, paced by `pace`.
    pub fn new(client: kube::Client, reporter: Reporter, pace: Pace) -> EventQueue {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        EventQueue {
            writer: Writer { client, reporter },
            pace: std::sync::Arc::new(Mutex::new(pace)),
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
        let writer = self.writer.clone();
        let pace = self.pace.clone();
        tokio::spawn(async move {
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|j| (j, rx)) })
                .for_each_concurrent(WORKERS, |job| {
                    let writer = writer.clone();
                    let wait = pace
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take(Instant::now());
                    async move {
                        tokio::time::sleep(wait).await;
                        write(&writer, job.reference, job.event).await
                    }
                })
                .await;
        });
    }
}

/// The Event object for `e` on `reference`.
fn event(reporter: &Reporter, reference: ObjectReference, e: K8sEvent) -> Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    let object = reference
        .name
        .clone()
        .unwrap_or_else(|| reporter.controller.clone());
    Event {
        action: Some(e.action.into()),
        reason: Some(e.reason.into()),
        event_time: Some(MicroTime(now)),
        note: Some(super::shared::truncate(&e.note, 1000)),
        metadata: ObjectMeta {
            namespace: reference.namespace.clone(),
            // As client-go names them: the object, then a unique suffix.
            name: Some(format!(
                "{object}.{:x}{:04x}",
                now.as_nanosecond(),
                rand::random::<u16>()
            )),
            ..ObjectMeta::default()
        },
        regarding: Some(reference),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        type_: Some(if e.warning { "Warning" } else { "Normal" }.into()),
        ..Event::default()
    }
}

async fn write(writer: &Writer, reference: ObjectReference, e: K8sEvent) {
    let reason = e.reason;
    let namespace = reference
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let events: Api<Event> = Api::namespaced(writer.client.clone(), &namespace);
    let event = event(&writer.reporter, reference, e);
    if let Err(err) = events.create(&PostParams::default(), &event).await {
        tracing::warn!(error = %err, reason, "failed to publish a Kubernetes Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_lets_a_burst_through_then_spaces_takes_out() {
        let start = Instant::now();
        let mut pace = Pace::new(50, 100);
        for _ in 0..100 {
            assert_eq!(pace.take(start), Duration::ZERO);
        }
        // The 101st waits one slot (20 ms at 50/s), the next two slots, and so on.
        assert_eq!(pace.take(start), Duration::from_millis(20));
        assert_eq!(pace.take(start), Duration::from_millis(40));
        // A second later 50 tokens came back: the two reserved ones and 48 free.
        let later = start + Duration::from_secs(1);
        for _ in 0..48 {
            assert_eq!(pace.take(later), Duration::ZERO);
        }
        assert_eq!(pace.take(later), Duration::from_millis(20));
        // Idle long enough, the bucket is full again, never fuller.
        let idle = later + Duration::from_secs(3600);
        for _ in 0..100 {
            assert_eq!(pace.take(idle), Duration::ZERO);
        }
        assert!(pace.take(idle) > Duration::ZERO);
    }

    #[test]
    fn an_event_names_its_object_reporter_and_note() {
        let reporter = Reporter {
            controller: "apim-operator".into(),
            instance: Some("op-1".into()),
        };
        let reference = ObjectReference {
            api_version: Some("apim.cab-i.com/v1alpha1".into()),
            kind: Some("Api".into()),
            name: Some("payments".into()),
            namespace: Some("tenant".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        };
        let e = event(
            &reporter,
            reference.clone(),
            K8sEvent::warning("DeploymentFailed", "Deploy", "x".repeat(2000)),
        );
        assert_eq!(e.regarding.as_ref(), Some(&reference));
        assert_eq!(e.metadata.namespace.as_deref(), Some("tenant"));
        let name = e.metadata.name.clone().expect("name");
        assert!(name.starts_with("payments."), "{name}");
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("DeploymentFailed"));
        assert_eq!(e.action.as_deref(), Some("Deploy"));
        assert_eq!(e.reporting_controller.as_deref(), Some("apim-operator"));
        assert_eq!(e.reporting_instance.as_deref(), Some("op-1"));
        assert!(
            e.note
                .as_ref()
                .is_some_and(|n| n.len() <= 1000 + '…'.len_utf8())
        );
        assert!(e.event_time.is_some() && e.series.is_none());
        // Two Events on one object in a row get two names.
        let again = event(
            &reporter,
            reference,
            K8sEvent::normal("DeploymentSucceeded", "Deploy", "ok"),
        );
        assert_ne!(again.metadata.name, e.metadata.name);
    }
}
