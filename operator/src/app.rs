//! Wiring of the running operator: client, health server, leader election, controllers.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::controllers::{self, Context};
use crate::events::{
    Emitter, PublishError, Publisher, SaslCredentials, TopicNames, admin_client, check_topics,
    ensure_topics, source_for,
};
use crate::metrics::Metrics;
use crate::runtime::health::Health;
use crate::runtime::{leader, server, shutdown};

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("failed to load the Kubernetes configuration (in cluster, or KUBECONFIG): {0}")]
    KubeConfig(#[source] kube::Error),
    #[error(transparent)]
    Server(#[from] server::ServerError),
    #[error(transparent)]
    Leader(#[from] leader::LeaderError),
    #[error("failed to read the Kafka SASL credentials from Secret {namespace}/{name}: {source}")]
    SaslSecret {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error(transparent)]
    Events(#[from] PublishError),
}

/// Runs the operator until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<(), AppError> {
    let client = rate_limited_client(&config.controllers).await?;
    let shutdown = CancellationToken::new();
    shutdown::cancel_on_signals(shutdown.clone());

    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(
        controllers::CONTROLLER_COUNT,
        config.leader_election.enabled,
    ));
    let (addr, server_task) = server::serve(
        config.listen,
        health.clone(),
        metrics.clone(),
        shutdown.clone(),
    )
    .await?;
    let identity = config.identity();
    tracing::info!(%addr, %identity, "health and metrics server listening");

    let gateway_metrics: Arc<dyn crate::gateway::GatewayMetrics> = metrics.clone();
    let clients = Arc::new(controllers::clients::Clients::from_config(
        &config,
        client.clone(),
        Some(gateway_metrics),
    ));
    tracing::info!(gateways = ?config.gateways.keys().map(|e| e.as_str()).collect::<Vec<_>>(), awx = config.awx.is_some(), "clients configured");
    let mut ctx = Context::new(
        client.clone(),
        identity.clone(),
        metrics.clone(),
        health.clone(),
        &config.controllers,
        clients,
    );
    let publisher = start_events(&config, &client, &metrics, shutdown.clone()).await?;
    if let Some(publisher) = &publisher {
        let emitter = Emitter::new(
            publisher.clone(),
            TopicNames::new(&config.events),
            source_for(&identity),
        )
        .with_metrics(metrics.events.clone());
        ctx = ctx.with_events(Arc::new(emitter));
    }
    let ctx = Arc::new(ctx);
    if config.leader_election.enabled {
        leader::run_while_leader(
            client,
            &config.leader_election,
            identity,
            health,
            metrics,
            shutdown.clone(),
            move |token| controllers::run_all(ctx.clone(), token),
        )
        .await?;
    } else {
        controllers::run_all(ctx, shutdown.clone()).await;
    }
    shutdown.cancel();
    if let Some(publisher) = publisher {
        // Events still in flight are owed in the resources' status anyway; give them a
        // moment to be acknowledged so fewer are sent again after the restart.
        let _ = tokio::task::spawn_blocking(move || publisher.flush(Duration::from_secs(5))).await;
    }
    let _ = server_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// The Kafka publisher, when events are enabled, with the topics ensured in the background
/// (retried until the broker answers: events stay owed meanwhile).
async fn start_events(
    config: &Config,
    client: &Client,
    metrics: &crate::metrics::Metrics,
    shutdown: CancellationToken,
) -> Result<Option<Arc<Publisher>>, AppError> {
    let events = &config.events;
    if !events.enabled {
        tracing::warn!(
            "events are disabled (events.enabled: false): no lifecycle event is emitted"
        );
        return Ok(None);
    }
    let credentials =
        match &events.sasl {
            None => None,
            Some(sasl) => {
                let namespace = sasl
                    .secret_namespace
                    .clone()
                    .unwrap_or_else(|| config.leader_election.lease_namespace.clone());
                let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
                let secret = secrets.get(&sasl.secret_name).await.map_err(|source| {
                    AppError::SaslSecret {
                        namespace: namespace.clone(),
                        name: sasl.secret_name.clone(),
                        source,
                    }
                })?;
                Some(SaslCredentials::from_secret_data(
                    &secret.data.unwrap_or_default(),
                )?)
            }
        };
    let publisher =
        Publisher::new(events, credentials.as_ref())?.with_metrics(metrics.events.clone());
    let admin = Arc::new(admin_client(events, credentials.as_ref())?);
    let specs = TopicNames::new(events).specs().to_vec();
    let (create, timeout) = (events.topics.create, events.producer.admin_timeout);
    tracing::info!(brokers = %events.brokers, "event publisher configured");
    tokio::spawn(async move {
        loop {
            let result = if create {
                ensure_topics(admin.clone(), &specs, timeout).await
            } else {
                check_topics(admin.clone(), &specs, timeout).await
            };
            match result {
                Ok(report) => {
                    tracing::info!(
                        created = ?report.created,
                        existing = report.existing.len(),
                        mismatches = report.mismatches.len(),
                        "event topics checked"
                    );
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "failed to ensure the event topics; retrying in 10s (events stay owed meanwhile)");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
        }
    });
    Ok(Some(Arc::new(publisher)))
}

/// The Kubernetes client (in cluster, or KUBECONFIG), with the client-side rate limit of
/// `controllers.apiQps` / `apiBurst`: at most `apiBurst` requests per `apiBurst / apiQps`
/// seconds (a watch counts once, when it starts).
async fn rate_limited_client(settings: &crate::config::Controllers) -> Result<Client, AppError> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| AppError::KubeConfig(kube::Error::InferConfig(e)))?;
    let window =
        Duration::from_secs_f64(f64::from(settings.api_burst) / f64::from(settings.api_qps));
    let builder = kube::client::ClientBuilder::try_from(config).map_err(AppError::KubeConfig)?;
    Ok(builder
        .with_layer(&tower::limit::RateLimitLayer::new(
            u64::from(settings.api_burst),
            window,
        ))
        .build())
}
