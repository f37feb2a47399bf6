//! The Api controller: read → validate → desired state → apply to each stage's gateway →
//! patch status once (server-side apply, only when it changed).
//!
//! - The document comes inline, from a ConfigMap (watched: a change re-deploys the Apis that
//!   use it) or from a URL; OpenAPI 3.1 is converted for gateways without 3.1.
//! - Every reconcile reads the gateway back and writes only what differs, so a converged Api
//!   costs no gateway write and no Kubernetes write. A difference on an environment that
//!   already ran the desired revision is drift: corrected (`driftPolicy: correct`) or only
//!   reported (`report`).
//! - Drivers: `direct` (REST via [`GatewayApi`]), `awx` (the deploy job template, followed to
//!   its end), `queued` (not supported yet: a condition says so).
//! - The finalizer removes the API from every gateway before the object goes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crds::api::{ApiStatus, DeploymentRecord, DriftPolicy, EnvironmentStatus};
use crds::conditions::{self, reasons, types};
use crds::{DeploymentResult, Driver, Environment};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::finalizer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::acceptance::{self, Acceptance};
use super::backoff::Backoff;
use super::cache::Cached;
use super::clients::GatewayHandle;
use super::context::Context;
use super::desired::{self, DesiredApi, Prepared};
use super::emit;
use super::shared::{self, FinalizerFailure};
use crate::awx::{AwxError, TemplateRef};
use crate::events::types::{
    ApiCreated, ApiDeleted, ApiUpdated, DeployCompleted, DeployRequested, GatewayResponse,
};
use crate::events::{EventData, Fact};
use crate::gateway::{self, GatewayApi, GatewayError};
use crate::metrics::AwxJobLabels;

/// Reason: no gateway is configured for a stage.
pub const GATEWAY_NOT_CONFIGURED: &str = "GatewayNotConfigured";
/// Reason: the driver is not supported yet.
pub const DRIVER_NOT_SUPPORTED: &str = "DriverNotSupported";

/// Why a reconcile failed (the Api is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to patch the status of Api {name}: {source}")]
    PatchStatus { name: String, source: kube::Error },
    #[error("failed to get the client of gateway {env} to remove Api {name}: {source}")]
    CleanupClient {
        name: String,
        env: Environment,
        source: Box<super::clients::ClientError>,
    },
    #[error("failed to remove Api {name} from gateway {env}: {source}")]
    Cleanup {
        name: String,
        env: Environment,
        source: Box<GatewayError>,
    },
    #[error("failed to add the finalizer to Api {name}: {source}")]
    AddFinalizer { name: String, source: kube::Error },
    #[error(
        "Api {name} is removed from the gateways; its last {owed} events wait for the broker before the finalizer goes"
    )]
    EventsOwed { name: String, owed: usize },
    #[error("failed to run the finalizer of Api {name}: {source}")]
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
            Error::AddFinalizer { .. } => "add_finalizer_failed",
            Error::EventsOwed { .. } => "events_owed",
            Error::Finalizer { source, .. } => match source.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.metric_label()
                }
                _ => "finalizer_failed",
            },
        }
    }
}

/// The Api controller's own state.
pub struct ApiContext {
    /// Shared controller state.
    pub ctx: Arc<Context>,
    /// The Api kind.
    pub resource: ApiResource,
    /// Transient failures per object.
    pub backoff: Backoff,
    /// Gateway API ids by name and version, for adoption lookups.
    pub index: ApiIndex,
    /// The status last written per object, until the watch cache shows it: a reconcile that
    /// runs on a cached copy older than our own write must not write the same status again.
    pub written: shared::WrittenStatus<ApiStatus>,
}

/// How long one listing of a gateway's APIs answers adoption lookups.
const INDEX_TTL: Duration = Duration::from_secs(5);

/// `(name, version) → id` per environment, from one listing of the gateway's APIs, so that N
/// new Apis cost one listing, not N. Entries are hints: an id is always read back (a stale
/// one reads 404 and the API is created), and a create refused as a duplicate re-lists.
#[derive(Default)]
pub struct ApiIndex {
    entries: tokio::sync::Mutex<BTreeMap<Environment, (Instant, IdsByNameVersion)>>,
}

/// Gateway API ids by `(apiName, apiVersion)`.
type IdsByNameVersion = std::collections::HashMap<(String, String), String>;

impl ApiIndex {
    /// The id of (`name`, `version`) on `env`'s gateway, listing it when the index is stale
    /// (or `refresh`).
    pub async fn find(
        &self,
        env: Environment,
        gw: &dyn GatewayApi,
        name: &str,
        version: &str,
        refresh: bool,
    ) -> Result<Option<String>, GatewayError> {
        let mut entries = self.entries.lock().await;
        let fresh = !refresh
            && entries
                .get(&env)
                .is_some_and(|(at, _)| at.elapsed() < INDEX_TTL);
        if !fresh {
            let listed = gw.list_apis().await?;
            let map = listed
                .into_iter()
                .map(|a| ((a.api_name, a.api_version), a.id))
                .collect();
            entries.insert(env, (Instant::now(), map));
        }
        Ok(entries
            .get(&env)
            .and_then(|(_, m)| m.get(&(name.to_string(), version.to_string())).cloned()))
    }

    /// Records an API just created.
    pub async fn remember(&self, env: Environment, name: &str, version: &str, id: &str) {
        if let Some((_, m)) = self.entries.lock().await.get_mut(&env) {
            m.insert((name.to_string(), version.to_string()), id.to_string());
        }
    }
}

impl ApiContext {
    /// The Api controller's state over `ctx`.
    pub fn new(ctx: Arc<Context>) -> ApiContext {
        let max = ctx.resync_interval.min(Duration::from_secs(300));
        ApiContext {
            ctx,
            resource: ApiResource::erase::<crds::Api>(&()),
            backoff: Backoff::new(Duration::from_millis(500), max),
            index: ApiIndex::default(),
            written: shared::WrittenStatus::default(),
        }
    }
}

/// The Apis of `store` whose definition comes from ConfigMap `cm` (same namespace).
pub fn apis_using_config_map(
    store: &Store<Cached>,
    cm: &ConfigMap,
    ar: &ApiResource,
) -> Vec<ObjectRef<Cached>> {
    let (Some(ns), Some(name)) = (
        cm.metadata.namespace.as_deref(),
        cm.metadata.name.as_deref(),
    ) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|api| api.metadata.namespace.as_deref() == Some(ns))
        .filter(|api| api.body_mentions(name))
        .filter(|api| {
            api.expand()
                .data
                .pointer("/spec/definition/configMapRef/name")
                .and_then(Value::as_str)
                == Some(name)
        })
        .map(|api| ObjectRef::new_with(&api.name_any(), ar.clone()).within(ns))
        .collect()
}

/// Runs the Api controller until `token` is cancelled.
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    let actx = Arc::new(ApiContext::new(ctx.clone()));
    let ar = actx.resource.clone();
    let config_maps: Api<ConfigMap> = match &ctx.watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let seen = actx.clone();
    let (changes, store) =
        shared::watch_changes(shared::watched(&ctx, &ar, true), &ar, move |obj| {
            seen.written.observed(obj)
        });
    let controller = Controller::for_stream_with(changes, store.clone(), ar.clone())
        .with_config(controller::Config::default().concurrency(ctx.concurrency));
    let map_store = store.clone();
    let map_ar = ar.clone();
    let controller = controller
        .watches(
            config_maps,
            watcher::Config::default().any_semantic(),
            move |cm| apis_using_config_map(&map_store, &cm, &map_ar),
        )
        .graceful_shutdown_on(token.cancelled_owned());
    let sync_watch = shared::signal_synced("Api", store, ctx.health.clone());
    shared::drive(
        "Api",
        controller.run(
            |obj, actx| reconcile(shared::expanded(obj), actx),
            |obj, error, actx| error_policy(shared::expanded(obj), error, actx),
            actx,
        ),
        sync_watch,
    )
    .await;
}

/// Reconciles one Api (the controller's entry point, public for tests).
pub async fn reconcile(obj: Arc<DynamicObject>, actx: Arc<ApiContext>) -> Result<Action, Error> {
    shared::instrumented(
        "Api",
        &obj,
        &actx.ctx.metrics,
        Error::metric_label,
        reconcile_inner(obj.clone(), &actx),
    )
    .await
}

/// Transient failures back off per object (jittered, capped).
pub fn error_policy(obj: Arc<DynamicObject>, error: &Error, actx: Arc<ApiContext>) -> Action {
    shared::retry_after_error(&obj, error.metric_label(), error, &actx.backoff)
}

use shared::key;

async fn reconcile_inner(obj: Arc<DynamicObject>, actx: &ApiContext) -> Result<Action, Error> {
    let (verdict, typed) = acceptance::judge_typed::<crds::Api>(&obj);
    let wants_finalizer = typed.as_ref().is_some_and(|api| {
        api.spec
            .stages
            .iter()
            .any(|env| actx.ctx.clients.has_gateway(*env))
    });
    let name = obj.name_any();
    let api: Api<DynamicObject> = Api::namespaced_with(
        actx.ctx.client.clone(),
        &obj.namespace().unwrap_or_default(),
        &actx.resource,
    );
    shared::with_finalizer(
        &api,
        obj,
        wants_finalizer,
        |o| async move { apply(&o, typed.as_ref(), &verdict, actx).await },
        |o| async move { cleanup(&o, actx).await },
    )
    .await
    .map_err(|failure| match failure {
        FinalizerFailure::Add(source) => Error::AddFinalizer { name, source },
        FinalizerFailure::Run(source) => Error::Finalizer { name, source },
        FinalizerFailure::Apply(e) => e,
    })
}

/// The stored status, or the one we wrote last when the cached object does not show it yet
/// (same generation): the watch cache lags behind our own writes.
fn current_status(obj: &DynamicObject, actx: &ApiContext) -> ApiStatus {
    actx.written.current(obj)
}

/// The most events one reconcile of an Api may cause: resource created, api created or
/// updated, an audit record, a tag violation, and a deploy request and result for each of the
/// five environments.
pub const MAX_EVENTS_PER_CHANGE: usize = 4 + 2 * 5;

/// `api.created` on the first reconcile, `api.updated` when the spec changed.
fn api_facts(
    obj: &DynamicObject,
    api: &crds::Api,
    current: &ApiStatus,
    revision: &str,
    changes: Vec<crate::events::types::FieldChange>,
) -> Vec<Fact> {
    let actor = emit::actor(obj);
    let generation = obj.metadata.generation.unwrap_or_default();
    match current.observed_generation {
        None => vec![
            Fact::new(
                EventData::ApiCreated(ApiCreated {
                    display_name: api.spec.display_name.clone(),
                    version: api.spec.version.clone(),
                    stages: api.spec.stages.clone(),
                    revision: revision.to_string(),
                }),
                "created",
            )
            .by(actor.as_deref()),
        ],
        Some(g) if g != generation => vec![
            Fact::new(
                EventData::ApiUpdated(ApiUpdated {
                    display_name: api.spec.display_name.clone(),
                    version: api.spec.version.clone(),
                    revision: revision.to_string(),
                    previous_revision: current.revision.clone(),
                    changed_fields: changes.into_iter().map(|c| c.path).collect(),
                }),
                format!("g{generation}"),
            )
            .by(actor.as_deref()),
        ],
        Some(_) => Vec::new(),
    }
}

/// Whether the status we last wrote for `obj` owes events.
fn status_owes(obj: &DynamicObject, actx: &ApiContext) -> bool {
    !current_status(obj, actx).pending_events.is_empty()
}

/// What happened on one environment.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvOutcome {
    /// The gateway already matched: nothing was written.
    InSync {
        id: String,
        endpoint: String,
        active: bool,
        aliases: Vec<String>,
    },
    /// The gateway was written to.
    Deployed {
        id: String,
        endpoint: String,
        active: bool,
        aliases: Vec<String>,
        record: DeploymentRecord,
        corrected: Vec<String>,
    },
    /// The gateway differs from a revision it ran; `driftPolicy: report` leaves it.
    DriftReported { fields: Vec<String> },
    /// No gateway is configured for the environment.
    NotConfigured,
    /// The driver is not supported yet.
    Unsupported(Driver),
    /// A recent deployment of this revision failed; retried at the next resync.
    RecentlyFailed { message: String },
    /// The deployment failed.
    Failed {
        message: String,
        reason: &'static str,
        transient: bool,
        record: Option<DeploymentRecord>,
    },
}

impl EnvOutcome {
    fn is_deployed(&self) -> bool {
        matches!(
            self,
            EnvOutcome::InSync { .. }
                | EnvOutcome::Deployed { .. }
                | EnvOutcome::DriftReported { .. }
        )
    }
}

/// A Kubernetes Event to publish after the status write.
struct PendingK8sEvent {
    warning: bool,
    reason: &'static str,
    action: &'static str,
    note: String,
}

async fn apply(
    obj: &DynamicObject,
    typed: Option<&crds::Api>,
    verdict: &Acceptance,
    actx: &ApiContext,
) -> Result<Action, Error> {
    let now = Utc::now();
    let generation = obj.metadata.generation;
    let current = current_status(obj, actx);
    if let Some(held) =
        emit::hold_back(&actx.ctx, "Api", obj, &current, MAX_EVENTS_PER_CHANGE).await
    {
        write_status(obj, &current, held, actx).await?;
        return Ok(Action::requeue(emit::OWED_RETRY));
    }
    let mut status = current.clone();
    let spec = obj.data.get("spec").cloned().unwrap_or_default();
    status.spec_fingerprint = emit::spec_fingerprint(&spec);
    let changes = match current.observed_generation {
        Some(g) if Some(g) != generation => emit::spec_changes(&current.spec_fingerprint, &spec),
        _ => Vec::new(),
    };
    let mut facts = emit::lifecycle_facts("Api", obj, verdict, &current, changes.clone());
    acceptance::record(&mut status, obj, verdict, now);
    let (accepted, reason, message) = verdict.condition();
    let mut events = Vec::new();
    // An Event when acceptance flips, or when a new object is refused (a new accepted Api
    // announces itself with its deployment Event instead: one write fewer per Api).
    let before = conditions::find(&current.conditions, types::ACCEPTED).map(|c| c.status == "True");
    if before.is_some_and(|b| b != accepted) || (before.is_none() && !accepted) {
        events.push(PendingK8sEvent {
            warning: !accepted,
            reason: if accepted { "Accepted" } else { reason },
            action: "Validate",
            note: message.clone(),
        });
    }
    let Some(api) = typed else {
        conditions::set_condition(
            &mut status.conditions,
            types::READY,
            false,
            reason,
            "not deployed: the Api is not accepted (see the Accepted condition)",
            generation,
            now,
        );
        emit::settle(&actx.ctx, "Api", obj, &current, &mut status, facts).await;
        write_status(obj, &current, status, actx).await?;
        publish(obj, events, actx).await;
        return Ok(Action::await_change());
    };

    let prepared = match resolve_document(api, obj, actx).await {
        Ok(p) => p,
        Err(failure) => {
            let (reason, message, transient) = match &failure {
                DocFailure::Missing(m) => (reasons::REFERENCE_NOT_FOUND, m.clone(), false),
                DocFailure::Invalid(m) => (reasons::DEFINITION_ERROR, m.clone(), false),
                DocFailure::Transient(m) => (reasons::DEFINITION_ERROR, m.clone(), true),
            };
            for t in [types::DEPLOYED, types::READY] {
                conditions::set_condition(
                    &mut status.conditions,
                    t,
                    false,
                    reason,
                    &message,
                    generation,
                    now,
                );
            }
            emit::settle(&actx.ctx, "Api", obj, &current, &mut status, facts).await;
            write_status(obj, &current, status, actx).await?;
            publish(obj, events, actx).await;
            return Ok(if transient {
                Action::requeue(actx.backoff.next(&key(obj)))
            } else if status_owes(obj, actx) {
                Action::requeue(emit::OWED_RETRY)
            } else {
                Action::await_change()
            });
        }
    };
    let revision = desired::revision(&api.spec, &prepared);
    status.revision = Some(revision.clone());
    status.conversion = prepared.conversion.clone();
    facts.extend(api_facts(obj, api, &current, &revision, changes));

    let mut outcomes: BTreeMap<Environment, EnvOutcome> = BTreeMap::new();
    for &env in &api.spec.stages {
        let prev = if current.revision.as_deref() == Some(revision.as_str()) {
            current.environments.get(&env)
        } else {
            None
        };
        let outcome = deploy_env(
            obj,
            api,
            env,
            &prepared,
            &revision,
            prev,
            current.environments.get(&env),
            actx,
            &mut events,
            &mut facts,
            now,
        )
        .await;
        outcomes.insert(env, outcome);
    }
    // Stages dropped from the spec (prod is managed by promotions): remove the API there.
    let dropped: Vec<Environment> = current
        .environments
        .keys()
        .copied()
        .filter(|env| !env.is_prod() && !api.spec.stages.contains(env))
        .collect();
    let mut transient = outcomes.values().any(|o| {
        matches!(
            o,
            EnvOutcome::Failed {
                transient: true,
                ..
            }
        )
    });
    for env in dropped {
        match remove_from(obj, Some(api), &current, env, actx).await {
            Ok(()) => {
                status.environments.remove(&env);
                events.push(PendingK8sEvent {
                    warning: false,
                    reason: "Deleted",
                    action: "Delete",
                    note: format!("removed from gateway {env}: {env} is no longer a stage"),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, %env, "failed to remove the API from a dropped stage");
                transient = true;
            }
        }
    }
    fold_outcomes(
        &mut status,
        &current,
        api,
        &revision,
        &outcomes,
        generation,
        now,
        &mut events,
    );
    emit::settle(&actx.ctx, "Api", obj, &current, &mut status, facts).await;
    let requeue = emit::requeue_after(&status, actx.ctx.resync_interval);
    write_status(obj, &current, status, actx).await?;
    publish(obj, events, actx).await;
    if transient {
        Ok(Action::requeue(actx.backoff.next(&key(obj))))
    } else {
        actx.backoff.reset(&key(obj));
        Ok(Action::requeue(requeue))
    }
}

/// Folds the per-environment outcomes into the status and its conditions (pure).
#[allow(clippy::too_many_arguments)]
fn fold_outcomes(
    status: &mut ApiStatus,
    current: &ApiStatus,
    api: &crds::Api,
    revision: &str,
    outcomes: &BTreeMap<Environment, EnvOutcome>,
    generation: Option<i64>,
    now: DateTime<Utc>,
    events: &mut Vec<PendingK8sEvent>,
) {
    let mut problems: Vec<String> = Vec::new();
    let mut reason = reasons::DEPLOY_SUCCEEDED;
    let rank = |r: &str| match r {
        reasons::GATEWAY_ERROR => 4,
        reasons::DEPLOY_FAILED => 3,
        GATEWAY_NOT_CONFIGURED => 2,
        DRIVER_NOT_SUPPORTED => 1,
        _ => 0,
    };
    let worse = |r: &'static str, current: &mut &'static str| {
        if rank(r) > rank(current) {
            *current = r;
        }
    };
    let mut drift_reported: Vec<String> = Vec::new();
    let mut drift_corrected: Vec<String> = Vec::new();
    for (env, outcome) in outcomes {
        match outcome {
            EnvOutcome::InSync {
                id,
                endpoint,
                active,
                aliases,
            }
            | EnvOutcome::Deployed {
                id,
                endpoint,
                active,
                aliases,
                ..
            } => {
                let entry = status.environments.entry(*env).or_default();
                entry.gateway_api_id = Some(id.clone());
                entry.deployed_revision = Some(revision.to_string());
                entry.endpoint = Some(endpoint.clone());
                entry.active = *active;
                entry.aliases = aliases.clone();
                if let EnvOutcome::Deployed {
                    record, corrected, ..
                } = outcome
                {
                    entry.last_deployment = Some(record.clone());
                    if !corrected.is_empty() {
                        drift_corrected.push(format!("{env}: {}", corrected.join(", ")));
                    }
                }
            }
            EnvOutcome::DriftReported { fields } => {
                drift_reported.push(format!("{env}: {}", fields.join(", ")))
            }
            EnvOutcome::NotConfigured => {
                worse(GATEWAY_NOT_CONFIGURED, &mut reason);
                problems.push(format!("{env}: no gateway is configured for {env}"));
            }
            EnvOutcome::Unsupported(driver) => {
                worse(DRIVER_NOT_SUPPORTED, &mut reason);
                problems.push(format!(
                    "{env}: the {driver} driver is not supported yet; use direct or awx"
                ));
            }
            EnvOutcome::RecentlyFailed { message } => {
                worse(reasons::DEPLOY_FAILED, &mut reason);
                problems.push(format!(
                    "{env}: {message} (retried at the next resync or on a change)"
                ));
            }
            EnvOutcome::Failed {
                message,
                reason: r,
                record,
                ..
            } => {
                worse(r, &mut reason);
                problems.push(format!("{env}: {message}"));
                if let Some(record) = record {
                    status.environments.entry(*env).or_default().last_deployment =
                        Some(record.clone());
                }
            }
        }
    }
    let deployed_count = outcomes.values().filter(|o| o.is_deployed()).count();
    let all = problems.is_empty();
    let stages: Vec<&str> = api.spec.stages.iter().map(|e| e.as_str()).collect();
    let deployed_msg = if all {
        format!("revision {revision} is on {}", stages.join(", "))
    } else {
        problems.join("; ")
    };
    conditions::set_condition(
        &mut status.conditions,
        types::DEPLOYED,
        all,
        reason,
        &deployed_msg,
        generation,
        now,
    );
    let (ready_reason, ready_msg) = match (all, api.spec.active) {
        (true, true) => (
            reasons::RECONCILED,
            format!("serving on {}", stages.join(", ")),
        ),
        (true, false) => (
            reasons::INACTIVE,
            "deployed and deactivated, as spec.active asks".to_string(),
        ),
        (false, _) => (reason, deployed_msg.clone()),
    };
    conditions::set_condition(
        &mut status.conditions,
        types::READY,
        all,
        ready_reason,
        &ready_msg,
        generation,
        now,
    );
    let degraded = (!all && deployed_count > 0) || !drift_reported.is_empty();
    let (deg_reason, deg_msg) = if !drift_reported.is_empty() {
        (
            reasons::DRIFT_DETECTED,
            format!(
                "the gateway differs from the spec: {}",
                drift_reported.join("; ")
            ),
        )
    } else if degraded {
        (reason, deployed_msg.clone())
    } else {
        (reasons::RECONCILED, String::new())
    };
    conditions::set_condition(
        &mut status.conditions,
        types::DEGRADED,
        degraded,
        deg_reason,
        &deg_msg,
        generation,
        now,
    );
    if !drift_reported.is_empty() {
        let msg = drift_reported.join("; ");
        let before = conditions::find(&current.conditions, types::DRIFTED)
            .map(|c| (c.status.clone(), c.message.clone()));
        if before != Some(("True".into(), msg.clone())) {
            events.push(PendingK8sEvent {
                warning: true,
                reason: "DriftDetected",
                action: "DetectDrift",
                note: format!("the gateway differs from the spec (driftPolicy: report): {msg}"),
            });
        }
        conditions::set_condition(
            &mut status.conditions,
            types::DRIFTED,
            true,
            reasons::DRIFT_DETECTED,
            &msg,
            generation,
            now,
        );
    } else if !drift_corrected.is_empty() {
        let msg = format!("corrected {}", drift_corrected.join("; "));
        events.push(PendingK8sEvent {
            warning: false,
            reason: "DriftCorrected",
            action: "CorrectDrift",
            note: msg.clone(),
        });
        conditions::set_condition(
            &mut status.conditions,
            types::DRIFTED,
            false,
            reasons::DRIFT_CORRECTED,
            &msg,
            generation,
            now,
        );
    } else {
        let keep = conditions::find(&status.conditions, types::DRIFTED)
            .is_some_and(|c| c.status == "False" && c.reason == reasons::DRIFT_CORRECTED);
        if keep {
            // The last correction stays visible; only the generation follows.
            if let Some(c) = status
                .conditions
                .iter_mut()
                .find(|c| c.type_ == types::DRIFTED)
            {
                c.observed_generation = generation;
            }
        } else {
            conditions::set_condition(
                &mut status.conditions,
                types::DRIFTED,
                false,
                reasons::IN_SYNC,
                "the gateways match the desired state",
                generation,
                now,
            );
        }
    }
    let ready = api
        .spec
        .stages
        .iter()
        .filter(|e| status.is_deployed(**e))
        .count();
    status.ready_stages = Some(format!("{ready}/{}", api.spec.stages.len()));
}

/// Why the document could not be read.
enum DocFailure {
    /// A referenced ConfigMap or key is missing (waits for it).
    Missing(String),
    /// The document is invalid (waits for a change).
    Invalid(String),
    /// Reading it failed; retried.
    Transient(String),
}

async fn resolve_document(
    api: &crds::Api,
    obj: &DynamicObject,
    actx: &ApiContext,
) -> Result<Prepared, DocFailure> {
    let text = match api.spec.definition.source() {
        Err(e) => return Err(DocFailure::Invalid(e.to_string())),
        Ok(crds::api::DefinitionSource::Inline(doc)) => doc.to_string(),
        Ok(crds::api::DefinitionSource::ConfigMap(r)) => {
            let ns = obj.namespace().unwrap_or_default();
            let cms: Api<ConfigMap> = Api::namespaced(actx.ctx.client.clone(), &ns);
            let cm = cms
                .get_opt(&r.name)
                .await
                .map_err(|e| {
                    DocFailure::Transient(format!("failed to read ConfigMap {}: {e}", r.name))
                })?
                .ok_or_else(|| {
                    DocFailure::Missing(format!("ConfigMap {} does not exist", r.name))
                })?;
            cm.data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .cloned()
                .ok_or_else(|| {
                    DocFailure::Missing(format!("ConfigMap {} has no key {}", r.name, r.key))
                })?
        }
        Ok(crds::api::DefinitionSource::Url(url)) => {
            let Some(http) = &actx.ctx.http else {
                return Err(DocFailure::Transient(
                    "failed to download the definition: no HTTP client".into(),
                ));
            };
            let response = http.get(url).send().await.map_err(|e| {
                DocFailure::Transient(format!("failed to download the definition from {url}: {e}"))
            })?;
            let code = response.status();
            if code.is_client_error() {
                return Err(DocFailure::Invalid(format!(
                    "failed to download the definition from {url}: HTTP {code}"
                )));
            }
            if !code.is_success() {
                return Err(DocFailure::Transient(format!(
                    "failed to download the definition from {url}: HTTP {code}"
                )));
            }
            response.text().await.map_err(|e| {
                DocFailure::Transient(format!("failed to download the definition from {url}: {e}"))
            })?
        }
    };
    desired::prepare_document(&text, &api.spec.backend_url)
        .map_err(|e| DocFailure::Invalid(e.to_string()))
}

fn trace_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Why writing to a gateway failed.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Awx(#[from] AwxError),
    #[error("AWX job {job} ended {status}: {detail}")]
    Job {
        job: u64,
        status: String,
        detail: String,
    },
    #[error("failed to deploy through AWX: {0}")]
    AwxNotConfigured(String),
}

impl WriteError {
    fn transient(&self) -> bool {
        match self {
            WriteError::Gateway(e) => e.is_transient(),
            WriteError::Awx(e) => e.is_transient(),
            WriteError::Job { .. } | WriteError::AwxNotConfigured(_) => false,
        }
    }
    fn reason(&self) -> &'static str {
        match self {
            WriteError::Gateway(e) if e.is_transient() => reasons::GATEWAY_ERROR,
            WriteError::Awx(_) | WriteError::AwxNotConfigured(_) => reasons::AWX_ERROR,
            _ => reasons::DEPLOY_FAILED,
        }
    }
}

/// The gateway's API for `desired`: by the id we recorded, else by name and version.
async fn read_actual(
    gw: &dyn GatewayApi,
    env: Environment,
    index: &ApiIndex,
    known_id: Option<&str>,
    desired: &DesiredApi,
) -> Result<Option<gateway::Api>, GatewayError> {
    if let Some(id) = known_id {
        match gw.get_api(id).await {
            Ok(api) => return Ok(Some(api)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    match index
        .find(env, gw, &desired.name, &desired.version, false)
        .await?
    {
        Some(id) if Some(id.as_str()) != known_id => match gw.get_api(&id).await {
            Ok(api) => Ok(Some(api)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        },
        _ => Ok(None),
    }
}

#[allow(clippy::too_many_arguments)]
async fn deploy_env(
    obj: &DynamicObject,
    api: &crds::Api,
    env: Environment,
    prepared: &Prepared,
    revision: &str,
    prev_same_revision: Option<&EnvironmentStatus>,
    prev_any: Option<&EnvironmentStatus>,
    actx: &ApiContext,
    events: &mut Vec<PendingK8sEvent>,
    facts: &mut Vec<Fact>,
    now: DateTime<Utc>,
) -> EnvOutcome {
    let driver = api.spec.driver_for(env);
    if driver == Driver::Queued {
        return EnvOutcome::Unsupported(driver);
    }
    let gw = match actx.ctx.clients.gateway(env).await {
        Ok(Some(gw)) => gw,
        Ok(None) => return EnvOutcome::NotConfigured,
        Err(e) => {
            return EnvOutcome::Failed {
                message: e.to_string(),
                reason: reasons::GATEWAY_ERROR,
                transient: true,
                record: None,
            };
        }
    };
    // A failed deployment of this revision is retried at the next resync, not on every event.
    if let Some(record) = prev_same_revision.and_then(|p| p.last_deployment.as_ref())
        && record.result == DeploymentResult::Failed
        && crds::from_time(&record.finished_at)
            + chrono::Duration::from_std(actx.ctx.resync_interval).unwrap_or_default()
            > now
    {
        return EnvOutcome::RecentlyFailed {
            message: record
                .message
                .clone()
                .unwrap_or_else(|| "the deployment failed".into()),
        };
    }
    let desired = DesiredApi::new(
        &api.spec,
        env,
        prepared.for_gateway(gw.api.supports_openapi_31()).clone(),
    );
    let was_deployed =
        prev_same_revision.is_some_and(|p| p.deployed_revision.as_deref() == Some(revision));
    let known_id = prev_any.and_then(|p| p.gateway_api_id.as_deref());
    let failed = |e: WriteError| EnvOutcome::Failed {
        message: e.to_string(),
        reason: e.reason(),
        transient: e.transient(),
        record: None,
    };
    let actual = match read_actual(gw.api.as_ref(), env, &actx.index, known_id, &desired).await {
        Ok(a) => a,
        Err(e) => {
            if e.is_unauthorized() {
                actx.ctx.clients.invalidate_gateway(env).await;
            }
            return failed(e.into());
        }
    };
    let kept: Vec<String> = desired.aliases.iter().map(alias_key).collect();
    // Aliases this Api had on the gateway that the spec no longer names.
    let stale: Vec<String> = prev_any
        .map(|p| {
            p.aliases
                .iter()
                .filter(|a| !kept.contains(a))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let aliases = if desired.aliases.is_empty() && stale.is_empty() {
        Vec::new()
    } else {
        match gw.api.list_aliases().await {
            Ok(a) => a,
            Err(e) => return failed(e.into()),
        }
    };
    let stale: Vec<&gateway::Alias> = stale
        .iter()
        .filter_map(|key| find_alias(&aliases, key, env))
        .collect();
    let mut differences: Vec<String> = match &actual {
        None => vec!["api (missing)".to_string()],
        Some(a) => {
            let mut d: Vec<String> = desired
                .content_differences(a)
                .into_iter()
                .map(str::to_string)
                .collect();
            if a.is_active != desired.active {
                d.push("isActive".into());
            }
            d
        }
    };
    for alias in &desired.aliases {
        let found = aliases
            .iter()
            .find(|a| a.matches(&alias.name, alias.alias_type.as_str(), Some(env.as_str())));
        if !found.is_some_and(|a| alias.matches(a)) {
            differences.push(format!("alias {}", alias.name));
        }
    }
    for alias in &stale {
        differences.push(format!("alias {} (no longer in the spec)", alias.name));
    }
    let endpoint = desired::endpoint(&gw.base_url, &desired.name, &desired.version);
    if differences.is_empty() {
        let id = actual.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        return EnvOutcome::InSync {
            id,
            endpoint,
            active: desired.active,
            aliases: kept,
        };
    }
    if was_deployed && api.spec.drift_policy == DriftPolicy::Report {
        return EnvOutcome::DriftReported {
            fields: differences,
        };
    }
    let trace = trace_id();
    tracing::info!(%env, trace_id = %trace, ?differences, %driver, "deploying");
    let actor = emit::actor(obj);
    facts.push(
        Fact::new(
            EventData::DeployRequested(DeployRequested {
                api: obj.name_any(),
                environment: env,
                revision: revision.to_string(),
                driver,
                request_id: trace.clone(),
                promotion_request: None,
            }),
            trace.clone(),
        )
        .by(actor.as_deref()),
    );
    if driver == Driver::Awx {
        // An AWX job takes seconds to minutes: say it started. A direct deployment takes
        // milliseconds; its outcome Event is enough (one API server write per deployment).
        let started = super::shared::K8sEvent::normal(
            "DeploymentStarted",
            "Deploy",
            format!(
                "deploying revision {revision} to {env} with the {driver} driver (trace {trace})"
            ),
        );
        super::shared::publish(&actx.ctx, &actx.resource, obj, vec![started]).await;
    }
    let started = Instant::now();
    let result = match driver {
        Driver::Awx => write_awx(&gw, env, &desired, &trace, actx).await,
        _ => write_direct(
            gw.api.as_ref(),
            env,
            &desired,
            actual.as_ref(),
            &aliases,
            &actx.index,
        )
        .await
        .map(|id| (id, None)),
    };
    let result = match result {
        Ok(done) => delete_aliases(gw.api.as_ref(), &stale)
            .await
            .map(|()| done)
            .map_err(WriteError::from),
        Err(e) => Err(e),
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let completed = |result: DeploymentResult,
                     job: Option<u64>,
                     gateway: GatewayResponse,
                     message: Option<String>| {
        Fact::new(
            EventData::DeployCompleted(DeployCompleted {
                api: obj.name_any(),
                environment: env,
                revision: revision.to_string(),
                driver,
                request_id: Some(trace.clone()),
                result,
                awx_job_id: job,
                duration_ms: u64::try_from(duration_ms).unwrap_or_default(),
                gateway,
                message,
            }),
            trace.clone(),
        )
        .by(actor.as_deref())
    };
    match result {
        Ok((id, job)) => {
            facts.push(completed(
                DeploymentResult::Succeeded,
                job,
                GatewayResponse {
                    status: None,
                    api_id: Some(id.clone()),
                    endpoint: Some(endpoint.clone()),
                    message: None,
                },
                None,
            ));
            let record = DeploymentRecord {
                trace_id: trace.clone(),
                awx_job_id: job.and_then(|j| i64::try_from(j).ok()),
                result: DeploymentResult::Succeeded,
                duration_ms,
                finished_at: crds::to_time(Utc::now()),
                message: Some(format!("revision {revision} deployed")),
            };
            events.push(PendingK8sEvent {
                warning: false,
                reason: "DeploymentSucceeded",
                action: "Deploy",
                note: format!(
                    "revision {revision} deployed to {env} in {duration_ms} ms (trace {trace})"
                ),
            });
            let corrected = if was_deployed {
                differences
            } else {
                Vec::new()
            };
            EnvOutcome::Deployed {
                id,
                endpoint,
                active: desired.active,
                aliases: kept,
                record,
                corrected,
            }
        }
        Err(e) => {
            tracing::warn!(%env, trace_id = %trace, error = %e, "deployment failed");
            if let WriteError::Gateway(g) = &e
                && g.is_unauthorized()
            {
                actx.ctx.clients.invalidate_gateway(env).await;
            }
            let transient = e.transient();
            facts.push(completed(
                DeploymentResult::Failed,
                match &e {
                    WriteError::Job { job, .. } => Some(*job),
                    _ => None,
                },
                GatewayResponse {
                    status: match &e {
                        WriteError::Gateway(g) => g.status(),
                        _ => None,
                    },
                    api_id: None,
                    endpoint: None,
                    message: Some(truncate(&e.to_string(), 300)),
                },
                Some(truncate(&e.to_string(), 1000)),
            ));
            events.push(PendingK8sEvent {
                warning: true,
                reason: "DeploymentFailed",
                action: "Deploy",
                note: format!("deploying revision {revision} to {env} failed (trace {trace}): {e}"),
            });
            let record = (!transient).then(|| DeploymentRecord {
                trace_id: trace,
                awx_job_id: match &e {
                    WriteError::Job { job, .. } => i64::try_from(*job).ok(),
                    _ => None,
                },
                result: DeploymentResult::Failed,
                duration_ms,
                finished_at: crds::to_time(Utc::now()),
                message: Some(truncate(&e.to_string(), 1000)),
            });
            EnvOutcome::Failed {
                message: e.to_string(),
                reason: e.reason(),
                transient,
                record,
            }
        }
    }
}

/// `name/type`, as recorded in `status.environments[env].aliases`.
fn alias_key(alias: &desired::DesiredAlias) -> String {
    format!("{}/{}", alias.name, alias.alias_type.as_str())
}

/// The gateway alias of `env` recorded as `key` (`name/type`).
fn find_alias<'a>(
    aliases: &'a [gateway::Alias],
    key: &str,
    env: Environment,
) -> Option<&'a gateway::Alias> {
    let (name, type_) = key.rsplit_once('/')?;
    aliases
        .iter()
        .find(|a| a.matches(name, type_, Some(env.as_str())))
}

/// Deletes `aliases` from the gateway (one already gone counts as deleted).
async fn delete_aliases(
    gw: &dyn GatewayApi,
    aliases: &[&gateway::Alias],
) -> Result<(), GatewayError> {
    for alias in aliases {
        match gw.delete_alias(&alias.id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Brings the gateway to `desired` over REST, writing only what differs; returns the API id.
async fn write_direct(
    gw: &dyn GatewayApi,
    env: Environment,
    desired: &DesiredApi,
    actual: Option<&gateway::Api>,
    aliases: &[gateway::Alias],
    index: &ApiIndex,
) -> Result<String, WriteError> {
    let document = desired.document();
    let (id, is_active) = match actual {
        None => match gw.create_api(&document).await {
            Ok(created) => {
                index
                    .remember(env, &desired.name, &desired.version, &created.id)
                    .await;
                (created.id, created.is_active)
            }
            // Refused as a duplicate: the index was stale; adopt the existing API.
            Err(e) if e.status() == Some(400) => match index
                .find(env, gw, &desired.name, &desired.version, true)
                .await?
            {
                Some(id) => {
                    let existing = gw.get_api(&id).await?;
                    gw.update_api(&id, &document).await?;
                    (id, existing.is_active)
                }
                None => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        },
        Some(a) => {
            if !desired.content_differences(a).is_empty() {
                gw.update_api(&a.id, &document).await?;
            }
            (a.id.clone(), a.is_active)
        }
    };
    if desired.active != is_active {
        if desired.active {
            gw.activate_api(&id).await?;
        } else {
            gw.deactivate_api(&id).await?;
        }
    }
    for alias in &desired.aliases {
        let found = aliases
            .iter()
            .find(|a| a.matches(&alias.name, alias.alias_type.as_str(), Some(env.as_str())));
        match found {
            Some(a) if alias.matches(a) => {}
            Some(a) => {
                gw.update_alias(&a.id, &alias.spec(env)).await?;
            }
            None => {
                gw.create_alias(&alias.spec(env)).await?;
            }
        }
    }
    Ok(id)
}

/// Runs the deploy job template and follows it; returns the API id and the job id.
async fn write_awx(
    gw: &GatewayHandle,
    env: Environment,
    desired: &DesiredApi,
    trace: &str,
    actx: &ApiContext,
) -> Result<(String, Option<u64>), WriteError> {
    let awx = match actx.ctx.clients.awx().await {
        Ok(Some(awx)) => awx,
        Ok(None) => {
            return Err(WriteError::AwxNotConfigured(
                "no AWX is configured (awx.url)".into(),
            ));
        }
        Err(e) => return Err(WriteError::AwxNotConfigured(e.to_string())),
    };
    let vars = deploy_vars(
        &gw.base_url,
        env,
        desired,
        gw.api.supports_openapi_31(),
        trace,
    );
    let template = awx.templates.deploy_api.clone();
    let outcome = awx
        .api
        .run(&TemplateRef::Name(template.clone()), &vars)
        .await?;
    actx.ctx
        .metrics
        .awx_job_duration
        .get_or_create(&AwxJobLabels {
            template,
            status: outcome.status.as_str().to_string(),
        })
        .observe(outcome.elapsed.as_secs_f64());
    if !outcome.is_success() {
        let detail = outcome
            .explanation
            .clone()
            .filter(|e| !e.is_empty())
            .or_else(|| outcome.stdout_tail.as_deref().map(|t| tail_lines(t, 5)))
            .unwrap_or_default();
        return Err(WriteError::Job {
            job: outcome.job_id,
            status: outcome.status.as_str().to_string(),
            detail,
        });
    }
    let id = match outcome
        .artifacts
        .get("gateway_api_id")
        .and_then(Value::as_str)
    {
        Some(id) => id.to_string(),
        None => gw
            .api
            .find_api(&desired.name, &desired.version)
            .await?
            .map(|a| a.id)
            .unwrap_or_default(),
    };
    Ok((id, Some(outcome.job_id)))
}

/// The extra variables of the deploy job template (ansible/README.md).
pub fn deploy_vars(
    gateway_url: &str,
    env: Environment,
    desired: &DesiredApi,
    accepts_31: bool,
    trace: &str,
) -> Map<String, Value> {
    let aliases: Vec<Value> = desired
        .aliases
        .iter()
        .map(|a| json!({"name": a.name, "type": a.alias_type.as_str(), "value": a.value}))
        .collect();
    let mut vars = Map::new();
    vars.insert("gateway_url".into(), json!(gateway_url));
    vars.insert("environment".into(), json!(env.as_str()));
    vars.insert("api_name".into(), json!(desired.name));
    vars.insert("api_version".into(), json!(desired.version));
    vars.insert("api_description".into(), json!(desired.description));
    vars.insert(
        "api_definition".into(),
        json!(desired.definition.to_string()),
    );
    vars.insert("activate".into(), json!(desired.active));
    vars.insert("aliases".into(), Value::Array(aliases));
    vars.insert("gateway_accepts_openapi_31".into(), json!(accepts_31));
    vars.insert("trace_id".into(), json!(trace));
    vars
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

use super::shared::truncate;

/// Removes the Api from the gateway of `env` (deactivate, delete, its aliases there); a
/// missing API counts as done, an unconfigured gateway is skipped.
async fn remove_from(
    obj: &DynamicObject,
    api: Option<&crds::Api>,
    status: &ApiStatus,
    env: Environment,
    actx: &ApiContext,
) -> Result<(), Error> {
    let name = obj.name_any();
    let gw = match actx.ctx.clients.gateway(env).await {
        Ok(Some(gw)) => gw,
        Ok(None) => {
            tracing::warn!(%env, "no gateway is configured for this environment: nothing to remove there");
            return Ok(());
        }
        Err(e) => {
            return Err(Error::CleanupClient {
                name,
                env,
                source: Box::new(e),
            });
        }
    };
    let cleanup_err = |e: GatewayError| Error::Cleanup {
        name: name.clone(),
        env,
        source: Box::new(e),
    };
    let mut id = status
        .environments
        .get(&env)
        .and_then(|e| e.gateway_api_id.clone());
    if id.is_none()
        && let Some(api) = api
    {
        id = gw
            .api
            .find_api(&api.spec.display_name, &api.spec.version)
            .await
            .map_err(cleanup_err)?
            .map(|a| a.id);
    }
    if let Some(id) = id {
        match gw.api.delete_api(&id, true).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(cleanup_err(e)),
        }
    }
    // The aliases of the spec for `env`, and those recorded there.
    let mut keys: Vec<String> = status
        .environments
        .get(&env)
        .map(|e| e.aliases.clone())
        .unwrap_or_default();
    if let Some(api) = api {
        keys.extend(
            api.spec
                .aliases
                .iter()
                .filter(|a| a.values.contains_key(&env))
                .map(|a| format!("{}/{}", a.name, a.type_.as_str())),
        );
    }
    keys.sort();
    keys.dedup();
    if !keys.is_empty() {
        let aliases = gw.api.list_aliases().await.map_err(cleanup_err)?;
        let found: Vec<&gateway::Alias> = keys
            .iter()
            .filter_map(|k| find_alias(&aliases, k, env))
            .collect();
        delete_aliases(gw.api.as_ref(), &found)
            .await
            .map_err(cleanup_err)?;
    }
    Ok(())
}

/// The finalizer's cleanup: remove the Api from every gateway it may be on.
async fn cleanup(obj: &DynamicObject, actx: &ApiContext) -> Result<Action, Error> {
    let status: ApiStatus = shared::stored_status(obj);
    let api: Option<crds::Api> = serde_json::to_value(obj)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok());
    let mut envs: Vec<Environment> = status.environments.keys().copied().collect();
    if let Some(api) = &api {
        envs.extend(api.spec.stages.iter().copied());
    }
    envs.sort();
    envs.dedup();
    for env in &envs {
        remove_from(obj, api.as_ref(), &status, *env, actx).await?;
    }
    tracing::info!(environments = ?envs, "removed from every gateway");
    let names: Vec<&str> = envs.iter().map(|e| e.as_str()).collect();
    // The last events go out before the finalizer does.
    let display_name = api
        .as_ref()
        .map(|a| a.spec.display_name.clone())
        .unwrap_or_else(|| obj.name_any());
    let facts = vec![
        Fact::new(
            EventData::ApiDeleted(ApiDeleted {
                display_name,
                environments: envs.clone(),
            }),
            "deleted",
        ),
        emit::deleted_audit(
            "Api",
            format!(
                "deleted Api {} and removed it from the gateways of {}",
                key(obj),
                names.join(", ")
            ),
        ),
    ];
    if let Some(owed) = emit::settle_last(&actx.ctx, "Api", obj, &status, facts).await {
        let count = owed.pending_events.len();
        write_status(obj, &status, owed, actx).await?;
        return Err(Error::EventsOwed {
            name: obj.name_any(),
            owed: count,
        });
    }
    publish(
        obj,
        vec![PendingK8sEvent {
            warning: false,
            reason: "Deleted",
            action: "Delete",
            note: format!("removed from the gateways of {}", names.join(", ")),
        }],
        actx,
    )
    .await;
    actx.backoff.reset(&key(obj));
    actx.written.forget(obj);
    Ok(Action::await_change())
}

/// Writes the status when it differs from the current one (a merge patch of the difference).
async fn write_status(
    obj: &DynamicObject,
    current: &ApiStatus,
    desired: ApiStatus,
    actx: &ApiContext,
) -> Result<(), Error> {
    if desired == *current {
        return Ok(());
    }
    actx.written
        .write(&actx.ctx, &actx.resource, obj, current, &desired)
        .await
        .map_err(|source| Error::PatchStatus {
            name: obj.name_any(),
            source,
        })?;
    Ok(())
}

async fn publish(obj: &DynamicObject, events: Vec<PendingK8sEvent>, actx: &ApiContext) {
    let events = events
        .into_iter()
        .map(|e| super::shared::K8sEvent {
            warning: e.warning,
            reason: e.reason,
            action: e.action,
            note: e.note,
        })
        .collect();
    super::shared::publish(&actx.ctx, &actx.resource, obj, events).await;
}
