//! The Subscription controller: associates the Application and the Api on the gateway of the
//! environment, and says why not when it cannot (Api not deployed there yet, Application
//! missing, gateway refused). Reacts when the Api or Application it names appears or changes.
//! Deleting it revokes the access and reads the gateway back before the finalizer goes.
//!
//! The gateway application id is read from the Application's status at every reconcile: a
//! key rotation switches the Application to a successor gateway application (its status
//! changes, which triggers a reconcile here), so the access is then granted on the
//! successor and the status records it. During the rotation's overlap window the
//! predecessor keeps its links (the previous credential still works); revoking a
//! Subscription then removes the access from both.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crds::application::RotationPhase;
use crds::conditions::{self, reasons, types};
use crds::subscription::SubscriptionStatus;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::finalizer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::cache::Cached;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::acceptance::{self, Acceptance};
use super::api::GATEWAY_NOT_CONFIGURED;
use super::backoff::Backoff;
use super::context::Context;
use super::emit;
use super::shared::{self, FinalizerFailure, K8sEvent, key};
use crate::events::types::SubscriptionChanged;
use crate::events::{EventData, Fact};
use crate::gateway::GatewayError;

/// Why a reconcile failed (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to patch the status of Subscription {name}: {source}")]
    PatchStatus { name: String, source: kube::Error },
    #[error("failed to get the gateway client to revoke Subscription {name}: {source}")]
    CleanupClient {
        name: String,
        source: Box<super::clients::ClientError>,
    },
    #[error("failed to revoke Subscription {name} on the gateway: {source}")]
    Cleanup {
        name: String,
        source: Box<GatewayError>,
    },
    #[error(
        "failed to confirm the revocation of Subscription {name}: the gateway still lists API {api_id} for application {application_id}"
    )]
    StillSubscribed {
        name: String,
        api_id: String,
        application_id: String,
    },
    #[error(
        "Subscription {name} is revoked on the gateway; its last {owed} events wait for the broker before the finalizer goes"
    )]
    EventsOwed { name: String, owed: usize },
    #[error(
        "failed to list the Subscriptions beside Subscription {name} before revoking it: {source}"
    )]
    ListSiblings { name: String, source: kube::Error },
    #[error("failed to read Application {application} to revoke Subscription {name}: {source}")]
    ReadApplication {
        name: String,
        application: String,
        source: kube::Error,
    },
    #[error("failed to add the finalizer to Subscription {name}: {source}")]
    AddFinalizer { name: String, source: kube::Error },
    #[error("failed to run the finalizer of Subscription {name}: {source}")]
    Finalizer {
        name: String,
        source: Box<finalizer::Error<Error>>,
    },
}

impl Error {
    /// The metric label of this error.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::PatchStatus { .. } => "patch_status_failed",
            Error::CleanupClient { .. } => "cleanup_client_failed",
            Error::Cleanup { .. } => "cleanup_failed",
            Error::StillSubscribed { .. } => "revocation_unconfirmed",
            Error::EventsOwed { .. } => "events_owed",
            Error::AddFinalizer { .. } => "add_finalizer_failed",
            Error::ListSiblings { .. } => "list_failed",
            Error::ReadApplication { .. } => "read_application_failed",
            Error::Finalizer { source, .. } => match source.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.metric_label()
                }
                _ => "finalizer_failed",
            },
        }
    }
}

/// The Subscription controller's state.
pub struct SubContext {
    /// Shared controller state.
    pub ctx: Arc<Context>,
    /// The Subscription kind.
    pub resource: ApiResource,
    /// Transient failures per object.
    pub backoff: Backoff,
    /// The status last written per object, until the watch cache shows it.
    pub written: shared::WrittenStatus<SubscriptionStatus>,
}

impl SubContext {
    /// The controller's state over `ctx`.
    pub fn new(ctx: Arc<Context>) -> SubContext {
        let max = ctx.resync_interval.min(Duration::from_secs(300));
        SubContext {
            ctx,
            resource: ApiResource::erase::<crds::Subscription>(&()),
            backoff: Backoff::new(Duration::from_millis(500), max),
            written: shared::WrittenStatus::default(),
        }
    }
}

/// The Subscriptions of `store` that name `obj` (an Api or an Application, in its
/// namespace) through `field` (`apiRef` or `applicationRef`).
pub fn subscriptions_naming<K: Resource>(
    store: &Store<Cached>,
    obj: &K,
    field: &str,
    ar: &ApiResource,
) -> Vec<ObjectRef<Cached>> {
    let (Some(ns), name) = (obj.meta().namespace.as_deref(), obj.name_any()) else {
        return Vec::new();
    };
    let name = name.as_str();
    let pointer = format!("/spec/{field}/name");
    store
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
        .filter(|s| s.body_mentions(name))
        .filter(|s| s.expand().data.pointer(&pointer).and_then(Value::as_str) == Some(name))
        .map(|s| ObjectRef::new_with(&s.name_any(), ar.clone()).within(ns))
        .collect()
}

/// Runs the Subscription controller until `token` is cancelled.
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    use kube::core::PartialObjectMeta;
    use kube::runtime::{WatchStreamExt, watcher};
    let sctx = Arc::new(SubContext::new(ctx.clone()));
    let ar = sctx.resource.clone();
    let (apis, apps): (
        Api<PartialObjectMeta<crds::Api>>,
        Api<PartialObjectMeta<crds::Application>>,
    ) = match &ctx.watch_namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let seen = sctx.clone();
    let (changes, store) =
        shared::watch_changes(shared::watched(&ctx, &ar, true), &ar, move |obj| {
            seen.written.observed(obj)
        });
    let controller = Controller::for_stream_with(changes, store.clone(), ar.clone())
        .with_config(controller::Config::default().concurrency(ctx.concurrency));
    let (s1, a1) = (store.clone(), ar.clone());
    let (s2, a2) = (store.clone(), ar.clone());
    // The Apis and Applications named are followed by their metadata only: which one changed
    // is all the mapping needs, and the API server encodes a fraction of each event.
    let config = || watcher::Config::default().any_semantic();
    let controller = controller
        .watches_stream_with(
            watcher(apis, config()).default_backoff().touched_objects(),
            move |api| subscriptions_naming(&s1, &api, "apiRef", &a1),
            (),
        )
        .watches_stream_with(
            watcher(apps, config()).default_backoff().touched_objects(),
            move |app| subscriptions_naming(&s2, &app, "applicationRef", &a2),
            (),
        )
        .graceful_shutdown_on(token.cancelled_owned());
    let sync = shared::signal_synced("Subscription", store, ctx.health.clone());
    shared::drive(
        "Subscription",
        controller.run(
            |obj, sctx| reconcile(shared::expanded(obj), sctx),
            |obj, error, sctx| error_policy(shared::expanded(obj), error, sctx),
            sctx,
        ),
        sync,
    )
    .await;
}

/// Reconciles one Subscription.
pub async fn reconcile(obj: Arc<DynamicObject>, sctx: Arc<SubContext>) -> Result<Action, Error> {
    shared::instrumented(
        "Subscription",
        &obj,
        &sctx.ctx.metrics,
        Error::metric_label,
        reconcile_inner(obj.clone(), &sctx),
    )
    .await
}

/// Transient failures back off per object.
pub fn error_policy(obj: Arc<DynamicObject>, error: &Error, sctx: Arc<SubContext>) -> Action {
    shared::retry_after_error(&obj, error.metric_label(), error, &sctx.backoff)
}

async fn reconcile_inner(obj: Arc<DynamicObject>, sctx: &SubContext) -> Result<Action, Error> {
    let (verdict, typed) = acceptance::judge_typed::<crds::Subscription>(&obj);
    let wants_finalizer = typed
        .as_ref()
        .is_some_and(|s| sctx.ctx.clients.has_gateway(s.spec.environment));
    let name = obj.name_any();
    let api: Api<DynamicObject> = Api::namespaced_with(
        sctx.ctx.client.clone(),
        &obj.namespace().unwrap_or_default(),
        &sctx.resource,
    );
    shared::with_finalizer(
        &api,
        obj,
        wants_finalizer,
        |o| async move { apply(&o, typed.as_ref(), &verdict, sctx).await },
        |o| async move { cleanup(&o, sctx).await },
    )
    .await
    .map_err(|failure| match failure {
        FinalizerFailure::Add(source) => Error::AddFinalizer { name, source },
        FinalizerFailure::Run(source) => Error::Finalizer { name, source },
        FinalizerFailure::Apply(e) => e,
    })
}

/// Why access cannot be granted yet, or the two gateway ids.
enum Readiness {
    Ready {
        api_id: String,
        application_id: String,
    },
    NotYet {
        reason: &'static str,
        message: String,
        transient: bool,
    },
}

async fn readiness(sub: &crds::Subscription, ns: &str, sctx: &SubContext) -> Readiness {
    let env = sub.spec.environment;
    let apis: Api<crds::Api> = Api::namespaced(sctx.ctx.client.clone(), ns);
    let apps: Api<crds::Application> = Api::namespaced(sctx.ctx.client.clone(), ns);
    let api_name = &sub.spec.api_ref.name;
    let app_name = &sub.spec.application_ref.name;
    let transient = |what: &str, e: kube::Error| Readiness::NotYet {
        reason: reasons::REFERENCE_NOT_FOUND,
        message: format!("failed to read {what}: {e}"),
        transient: true,
    };
    let api = match apis.get_opt(api_name).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Readiness::NotYet {
                reason: reasons::REFERENCE_NOT_FOUND,
                message: format!("Api {api_name} does not exist"),
                transient: false,
            };
        }
        Err(e) => return transient(&format!("Api {api_name}"), e),
    };
    let app = match apps.get_opt(app_name).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Readiness::NotYet {
                reason: reasons::REFERENCE_NOT_FOUND,
                message: format!("Application {app_name} does not exist"),
                transient: false,
            };
        }
        Err(e) => return transient(&format!("Application {app_name}"), e),
    };
    if app.spec.environment != env {
        return Readiness::NotYet {
            reason: reasons::INVALID_SPEC,
            message: format!(
                "Application {app_name} lives in {}, not {env}",
                app.spec.environment
            ),
            transient: false,
        };
    }
    let api_id = api
        .status
        .as_ref()
        .filter(|s| s.is_deployed(env))
        .and_then(|s| s.environments.get(&env))
        .and_then(|e| e.gateway_api_id.clone());
    let Some(api_id) = api_id else {
        return Readiness::NotYet {
            reason: reasons::NOT_DEPLOYED,
            message: format!("Api {api_name} is not deployed to {env} yet"),
            transient: false,
        };
    };
    let Some(application_id) = app
        .status
        .as_ref()
        .and_then(|s| s.gateway_application_id.clone())
    else {
        return Readiness::NotYet {
            reason: reasons::PROGRESSING,
            message: format!("Application {app_name} is not registered on the {env} gateway yet"),
            transient: false,
        };
    };
    Readiness::Ready {
        api_id,
        application_id,
    }
}

async fn apply(
    obj: &DynamicObject,
    typed: Option<&crds::Subscription>,
    verdict: &Acceptance,
    sctx: &SubContext,
) -> Result<Action, Error> {
    let ctx = &sctx.ctx;
    let now = Utc::now();
    let generation = obj.metadata.generation;
    let current: SubscriptionStatus = sctx.written.current(obj);
    if let Some(held) = emit::hold_back(ctx, KIND, obj, &current, MAX_EVENTS_PER_CHANGE).await {
        write_status(obj, &current, &held, sctx).await?;
        return Ok(Action::requeue(emit::OWED_RETRY));
    }
    let mut status = current.clone();
    let mut facts = emit::lifecycle_facts(KIND, obj, verdict, &current, Vec::new());
    acceptance::record(&mut status, obj, verdict, now);
    let (_, reason, _) = verdict.condition();
    let Some(sub) = typed else {
        status.active = false;
        status.reason = Some("the Subscription is not accepted".into());
        conditions::set_condition(
            &mut status.conditions,
            types::READY,
            false,
            reason,
            "the Subscription is not accepted",
            generation,
            now,
        );
        emit::settle(ctx, KIND, obj, &current, &mut status, facts).await;
        write_status(obj, &current, &status, sctx).await?;
        return Ok(Action::await_change());
    };
    let env = sub.spec.environment;
    let mut events = Vec::new();
    let mut transient = false;
    let not_yet = match readiness(sub, &obj.namespace().unwrap_or_default(), sctx).await {
        Readiness::NotYet {
            reason,
            message,
            transient: t,
        } => {
            transient = t;
            Some((reason, message))
        }
        Readiness::Ready {
            api_id,
            application_id,
        } => {
            status.gateway_api_id = Some(api_id.clone());
            status.gateway_application_id = Some(application_id.clone());
            match ctx.clients.gateway(env).await {
                Ok(None) => Some((
                    GATEWAY_NOT_CONFIGURED,
                    format!("no gateway is configured for {env}"),
                )),
                Err(e) => {
                    transient = true;
                    Some((reasons::GATEWAY_ERROR, e.to_string()))
                }
                Ok(Some(gw)) => match gw.api.associate_api(&application_id, &api_id).await {
                    Ok(change) => {
                        if change.changed() {
                            events.push(K8sEvent::normal(
                                "AccessGranted",
                                "Subscribe",
                                format!("access granted on gateway {env}"),
                            ));
                        }
                        None
                    }
                    Err(e) => {
                        transient = e.is_transient();
                        let reason = if transient {
                            reasons::GATEWAY_ERROR
                        } else {
                            reasons::DEPLOY_FAILED
                        };
                        let message = if transient {
                            e.to_string()
                        } else {
                            format!("the gateway refused: {e}")
                        };
                        Some((reason, message))
                    }
                },
            }
        }
    };
    match not_yet {
        None => {
            if !current.active {
                facts.push(
                    Fact::new(
                        EventData::SubscriptionCreated(changed(sub)),
                        format!(
                            "{}/{}/g{}",
                            status.gateway_application_id.as_deref().unwrap_or_default(),
                            status.gateway_api_id.as_deref().unwrap_or_default(),
                            generation.unwrap_or_default()
                        ),
                    )
                    .by(emit::actor(obj).as_deref()),
                );
            }
            status.active = true;
            status.reason = None;
            conditions::set_condition(
                &mut status.conditions,
                types::READY,
                true,
                reasons::ACCESS_GRANTED,
                &format!("access granted on {env}"),
                generation,
                now,
            );
        }
        Some((reason, message)) => {
            status.active = false;
            status.reason = Some(message.clone());
            conditions::set_condition(
                &mut status.conditions,
                types::READY,
                false,
                reason,
                &message,
                generation,
                now,
            );
        }
    }
    emit::settle(ctx, KIND, obj, &current, &mut status, facts).await;
    write_status(obj, &current, &status, sctx).await?;
    shared::publish(ctx, &sctx.resource, obj, events).await;
    if transient {
        Ok(Action::requeue(sctx.backoff.next(&key(obj))))
    } else {
        sctx.backoff.reset(&key(obj));
        Ok(Action::requeue(emit::requeue_after(
            &status,
            ctx.resync_interval,
        )))
    }
}

async fn write_status(
    obj: &DynamicObject,
    current: &SubscriptionStatus,
    desired: &SubscriptionStatus,
    sctx: &SubContext,
) -> Result<(), Error> {
    if desired == current {
        return Ok(());
    }
    sctx.written
        .write(&sctx.ctx, &sctx.resource, obj, current, desired)
        .await
        .map_err(|source| Error::PatchStatus {
            name: obj.name_any(),
            source,
        })?;
    Ok(())
}

/// The kind, in events and metrics.
const KIND: &str = "Subscription";

/// The most events one reconcile may cause: created, audit, tag violation, subscription
/// created.
const MAX_EVENTS_PER_CHANGE: usize = 4;

/// The payload of `subscription.created` / `subscription.deleted`.
fn changed(sub: &crds::Subscription) -> SubscriptionChanged {
    SubscriptionChanged {
        application: sub.spec.application_ref.name.clone(),
        api: sub.spec.api_ref.name.clone(),
        environment: sub.spec.environment,
    }
}

/// Revokes the access, then reads the gateway back to confirm it.
async fn cleanup(obj: &DynamicObject, sctx: &SubContext) -> Result<Action, Error> {
    let name = obj.name_any();
    let status: SubscriptionStatus = sctx.written.current(obj);
    let sub: Option<crds::Subscription> = serde_json::to_value(obj)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok());
    let (Some(sub), Some(api_id), Some(application_id)) = (
        sub,
        status.gateway_api_id.clone(),
        status.gateway_application_id.clone(),
    ) else {
        return Ok(Action::await_change());
    };
    let env = sub.spec.environment;
    let gw = match sctx.ctx.clients.gateway(env).await {
        Ok(Some(gw)) => gw,
        Ok(None) => return Ok(Action::await_change()),
        Err(e) => {
            return Err(Error::CleanupClient {
                name,
                source: Box::new(e),
            });
        }
    };
    // Another live Subscription granting the same access keeps it: nothing to revoke.
    let siblings: Api<DynamicObject> = Api::namespaced_with(
        sctx.ctx.client.clone(),
        &obj.namespace().unwrap_or_default(),
        &sctx.resource,
    );
    let others = siblings
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::ListSiblings {
            name: name.clone(),
            source,
        })?;
    if let Some(other) = others.items.iter().find(|o| {
        o.uid() != obj.uid() && o.metadata.deletion_timestamp.is_none() && grants_same(o, &sub)
    }) {
        tracing::info!(other = %other.name_any(), "another Subscription grants the same access: kept on the gateway");
        return finish_cleanup(obj, sctx, &status, &sub, env, false).await;
    }
    let application_ids = applications_to_revoke(obj, sctx, &sub, application_id).await?;
    // An unknown application answers 400 (documented), a missing one 404: nothing to revoke.
    let gone = |e: &GatewayError| matches!(e.status(), Some(400 | 404));
    let failed = |e: GatewayError| Error::Cleanup {
        name: name.clone(),
        source: Box::new(e),
    };
    for application_id in application_ids {
        match gw.api.dissociate_api(&application_id, &api_id).await {
            Ok(_) => {}
            Err(e) if gone(&e) => {}
            Err(e) => return Err(failed(e)),
        }
        match gw.api.application_apis(&application_id).await {
            Ok(ids) if ids.contains(&api_id) => {
                return Err(Error::StillSubscribed {
                    name,
                    api_id,
                    application_id,
                });
            }
            Ok(_) => {}
            Err(e) if gone(&e) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    finish_cleanup(obj, sctx, &status, &sub, env, true).await
}

/// The gateway applications a revocation must leave without the API: the one the status
/// recorded, and, read from the Application now, its current one (a rotation may have
/// switched it since) and, during a rotation's overlap window, the predecessor still holding
/// the previous credential with the API links it had.
async fn applications_to_revoke(
    obj: &DynamicObject,
    sctx: &SubContext,
    sub: &crds::Subscription,
    recorded: String,
) -> Result<Vec<String>, Error> {
    let apps: Api<crds::Application> = Api::namespaced(
        sctx.ctx.client.clone(),
        &obj.namespace().unwrap_or_default(),
    );
    let app = apps
        .get_opt(&sub.spec.application_ref.name)
        .await
        .map_err(|source| Error::ReadApplication {
            name: obj.name_any(),
            application: sub.spec.application_ref.name.clone(),
            source,
        })?;
    let mut ids = vec![recorded];
    let status = app
        .filter(|a| a.spec.environment == sub.spec.environment)
        .and_then(|a| a.status);
    if let Some(status) = status {
        let retiring = status
            .rotation
            .filter(|r| r.phase == RotationPhase::Overlapping)
            .and_then(|r| r.previous_gateway_application_id);
        for id in status.gateway_application_id.into_iter().chain(retiring) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// Whether `other` names the same Api, Application and environment as `sub`.
fn grants_same(other: &DynamicObject, sub: &crds::Subscription) -> bool {
    let field = |path: &str| other.data.pointer(path).and_then(serde_json::Value::as_str);
    field("/spec/apiRef/name") == Some(sub.spec.api_ref.name.as_str())
        && field("/spec/applicationRef/name") == Some(sub.spec.application_ref.name.as_str())
        && field("/spec/environment") == Some(sub.spec.environment.as_str())
}

/// The last events and the Kubernetes Event of a deleted Subscription, before its finalizer
/// goes (`revoked`: the access was revoked on the gateway, not kept for another one).
async fn finish_cleanup(
    obj: &DynamicObject,
    sctx: &SubContext,
    status: &SubscriptionStatus,
    sub: &crds::Subscription,
    env: crds::Environment,
    revoked: bool,
) -> Result<Action, Error> {
    let name = obj.name_any();
    let facts = vec![
        Fact::new(EventData::SubscriptionDeleted(changed(sub)), "deleted"),
        emit::deleted_audit(
            KIND,
            format!(
                "deleted Subscription {} ({} the access of Application {} to Api {} on {env})",
                key(obj),
                if revoked {
                    "revoked"
                } else {
                    "another Subscription keeps"
                },
                sub.spec.application_ref.name,
                sub.spec.api_ref.name
            ),
        ),
    ];
    if let Some(owed) = emit::settle_last(&sctx.ctx, KIND, obj, status, facts).await {
        let count = owed.pending_events.len();
        write_status(obj, status, &owed, sctx).await?;
        return Err(Error::EventsOwed { name, owed: count });
    }
    shared::publish(
        &sctx.ctx,
        &sctx.resource,
        obj,
        vec![if revoked {
            K8sEvent::normal(
                "AccessRevoked",
                "Unsubscribe",
                format!("access revoked on gateway {env}"),
            )
        } else {
            K8sEvent::normal(
                "AccessKept",
                "Unsubscribe",
                format!("another Subscription grants the same access on gateway {env}: kept"),
            )
        }],
    )
    .await;
    sctx.written.forget(obj);
    Ok(Action::await_change())
}
