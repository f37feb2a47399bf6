//! Leader election on a Lease: controllers run only while this replica holds it, and
//! stop as soon as it is lost, so two replicas never both write.

use std::future::Future;
use std::sync::Arc;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

use super::health::Health;
use crate::config::LeaderElection;
use crate::metrics::Metrics;

/// Why leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("failed to set up the lease {namespace}/{name}: {source}")]
    Setup {
        namespace: String,
        name: String,
        source: kube_lease_manager::LeaseManagerError,
    },
}

/// Runs `controllers(token)` each time the lease is acquired; cancels the token when the
/// lease is lost or on shutdown, waits for them to stop, and releases the lease on exit.
pub async fn run_while_leader<F, Fut>(
    client: Client,
    settings: &LeaderElection,
    identity: String,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    mut controllers: F,
) -> Result<(), LeaderError>
where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let manager = LeaseManagerBuilder::new(client, &settings.lease_name)
        .with_namespace(&settings.lease_namespace)
        .with_identity(&identity)
        .with_duration(settings.lease_duration_seconds)
        .with_grace(settings.renew_grace_seconds)
        .build()
        .await
        .map_err(|source| LeaderError::Setup {
            namespace: settings.lease_namespace.clone(),
            name: settings.lease_name.clone(),
            source,
        })?;
    let (mut is_leader, lease_task) = manager.watch().await;
    tracing::info!(lease = %settings.lease_name, namespace = %settings.lease_namespace, %identity, "waiting for the leader lease");

    'outer: loop {
        // Wait to become leader (or shut down).
        while !*is_leader.borrow_and_update() {
            tokio::select! {
                changed = is_leader.changed() => if changed.is_err() { break 'outer },
                _ = shutdown.cancelled() => break 'outer,
            }
        }
        tracing::info!(%identity, "acquired the leader lease: starting controllers");
        health.set_leader(true);
        metrics.leader.set(1);
        let token = shutdown.child_token();
        let running = tokio::spawn(controllers(token.clone()));
        // Run until the lease is lost (or shut down).
        loop {
            tokio::select! {
                changed = is_leader.changed() => {
                    if changed.is_err() || !*is_leader.borrow_and_update() { break }
                }
                _ = shutdown.cancelled() => break,
            }
        }
        token.cancel();
        if let Err(e) = running.await {
            tracing::error!(error = %e, "controllers task failed");
        }
        health.set_leader(false);
        health.caches_reset();
        metrics.leader.set(0);
        if shutdown.is_cancelled() {
            break;
        }
        tracing::warn!(%identity, "lost the leader lease: controllers stopped");
    }

    // Closing the channel stops the lease task; releasing lets another replica take over
    // at once instead of after the lease duration.
    drop(is_leader);
    match lease_task.await {
        Ok(Ok(manager)) => {
            if let Err(e) = manager.release().await {
                tracing::warn!(error = %e, "failed to release the leader lease");
            } else {
                tracing::info!("released the leader lease");
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "the lease task failed"),
        Err(e) => tracing::warn!(error = %e, "the lease task panicked"),
    }
    Ok(())
}
