//! The controller every kind runs in this release: validate, then keep
//! `observedGeneration` and the `Accepted` condition current, with an Event on change.

use std::any::TypeId;
use std::sync::Arc;
use std::time::Duration;

use super::k8s_events::K8sEvent;
use k8s_openapi::NamespaceResourceScope;
use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::controller::{self, Action, Controller};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::acceptance::{self, Acceptance};
use super::context::Context;
use super::emit;
use super::status;

/// The most events one reconcile may cause: resource created, audit, tag violation.
const MAX_EVENTS_PER_CHANGE: usize = 3;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to patch the status of {kind} {name}: {source}")]
    PatchStatus {
        kind: String,
        name: String,
        source: kube::Error,
    },
}

impl Error {
    /// The metric label of this error.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::PatchStatus { .. } => "patch_status_failed",
        }
    }
}

struct KindContext {
    ctx: Arc<Context>,
    resource: ApiResource,
}

fn is_namespaced<K: Resource>() -> bool
where
    K::Scope: 'static,
{
    TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>()
}

/// Runs the controller of kind `K` until `token` is cancelled.
pub async fn run<K>(ctx: Arc<Context>, token: CancellationToken)
where
    K: Resource<DynamicType = ()> + DeserializeOwned + 'static,
    K::Scope: 'static,
{
    let resource = ApiResource::erase::<K>(&());
    let namespaced = is_namespaced::<K>();
    let kind = resource.kind.clone();
    let api = super::shared::watched(&ctx, &resource, namespaced);
    let (changes, store) = super::shared::watch_changes(api, &resource, |_| {});
    let controller = Controller::for_stream_with(changes, store.clone(), resource.clone())
        .with_config(controller::Config::default().concurrency(ctx.concurrency))
        .graceful_shutdown_on(token.cancelled_owned());
    let sync_watch = super::shared::signal_synced(kind.clone(), store, ctx.health.clone());
    let kctx = Arc::new(KindContext { ctx, resource });
    super::shared::drive(
        &kind,
        controller.run(
            |obj, kctx| reconcile::<K>(super::shared::expanded(obj), kctx),
            |_obj, error, kctx| error_policy(error, kctx),
            kctx,
        ),
        sync_watch,
    )
    .await;
}

async fn reconcile<K: DeserializeOwned>(
    obj: Arc<DynamicObject>,
    kctx: Arc<KindContext>,
) -> Result<Action, Error> {
    let kind = kctx.resource.kind.clone();
    let reconcile = reconcile_inner::<K>(&obj, &kctx);
    super::shared::instrumented(
        &kind,
        &obj,
        &kctx.ctx.metrics,
        Error::metric_label,
        reconcile,
    )
    .await
}

async fn reconcile_inner<K: DeserializeOwned>(
    obj: &DynamicObject,
    kctx: &KindContext,
) -> Result<Action, Error> {
    let ctx = &kctx.ctx;
    if obj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let kind = kctx.resource.kind.as_str();
    let current = status::OwnedStatus::of(obj);
    let verdict = acceptance::judge::<K>(obj);
    let (status, accepted_changed_to) =
        match emit::hold_back(ctx, kind, obj, &current, MAX_EVENTS_PER_CHANGE).await {
            Some(held) => (held, None),
            None => {
                let facts = emit::lifecycle_facts(kind, obj, &verdict, &current, Vec::new());
                let (mut status, flipped) = match status::desired(obj, &verdict, chrono::Utc::now())
                {
                    Some(change) => (change.status, change.accepted_changed_to),
                    None => (current.clone(), None),
                };
                emit::settle(ctx, kind, obj, &current, &mut status, facts).await;
                (status, flipped)
            }
        };
    let requeue = emit::requeue_after(&status, ctx.resync_interval);
    if status == current {
        return Ok(Action::requeue(requeue));
    }
    let name = obj.name_any();
    let old = obj
        .data
        .get("status")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    super::shared::write_status(
        ctx,
        &kctx.resource,
        obj,
        old,
        obj.metadata.resource_version.clone(),
        |stored| status::with_owned(stored, &status),
    )
    .await
    .map_err(|source| Error::PatchStatus {
        kind: kctx.resource.kind.clone(),
        name: name.clone(),
        source,
    })?;
    if let Some(accepted) = accepted_changed_to {
        let (_, reason, message) = verdict.condition();
        match &verdict {
            Acceptance::Accepted => tracing::info!("accepted"),
            _ => tracing::warn!(%reason, %message, "not accepted"),
        }
        let event = if accepted {
            K8sEvent::normal("Accepted", "Validate", message)
        } else {
            K8sEvent::warning(reason, "Validate", message)
        };
        ctx.k8s_events
            .publish(&obj.object_ref(&kctx.resource), vec![event]);
    }
    Ok(Action::requeue(requeue))
}

fn error_policy(error: &Error, _kctx: Arc<KindContext>) -> Action {
    tracing::warn!(%error, "reconcile failed, retrying");
    let jitter = rand::random::<u64>() % 5_000;
    Action::requeue(Duration::from_millis(5_000 + jitter))
}
