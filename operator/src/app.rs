//! Wiring of the running operator: client, health server, leader election, controllers.

use std::sync::Arc;

use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::controllers::{self, Context};
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
}

/// Runs the operator until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<(), AppError> {
    let client = Client::try_default().await.map_err(AppError::KubeConfig)?;
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
    let ctx = Arc::new(Context::new(
        client.clone(),
        identity.clone(),
        metrics.clone(),
        health.clone(),
        &config.controllers,
        clients,
    ));
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
    let _ = server_task.await;
    tracing::info!("stopped");
    Ok(())
}
