//! What every reconcile gets: clients, settings, metrics, the event recorder.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Reporter;

use super::clients::Clients;
use super::k8s_events::EventQueue;
use crate::events::Emitter;
use crate::metrics::Metrics;
use crate::runtime::health::Health;

/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "apim-operator";

/// Timeout of a download of an API definition given by URL.
pub const DEFINITION_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Kubernetes Events on our objects.
    pub k8s_events: EventQueue,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness.
    pub health: Arc<Health>,
    /// Reconciles at once per kind.
    pub concurrency: u16,
    /// Requeue interval of converged objects.
    pub resync_interval: Duration,
    /// Only this namespace, when set.
    pub watch_namespace: Option<String>,
    /// The gateways and AWX.
    pub clients: Arc<Clients>,
    /// HTTP client for API definitions given by URL (`None` if it could not be built).
    pub http: Option<reqwest::Client>,
    /// The event pipeline (`None` when events are disabled).
    pub events: Option<Arc<Emitter>>,
}

impl Context {
    /// A context for `client`; `instance` names this replica in Events.
    pub fn new(
        client: Client,
        instance: String,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        settings: &crate::config::Controllers,
        clients: Arc<Clients>,
    ) -> Context {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(instance),
        };
        Context {
            k8s_events: EventQueue::new(
                client.clone(),
                reporter,
                super::k8s_events::Pace::new(settings.event_qps, settings.event_burst),
            ),
            client,
            metrics,
            health,
            concurrency: settings.concurrency,
            resync_interval: settings.resync_interval,
            watch_namespace: settings.watch_namespace.clone(),
            clients,
            // Same TLS stack as the gateway client.
            http: crate::gateway::retry::build_client(DEFINITION_TIMEOUT).ok(),
            events: None,
        }
    }

    /// The same context, publishing lifecycle events through `emitter`.
    pub fn with_events(mut self, emitter: Arc<Emitter>) -> Context {
        self.events = Some(emitter);
        self
    }
}
