//! The Application controller: registers the application on the gateway of its environment
//! and writes its credentials into a Secret owned by the Application (never into status,
//! events or logs: the status carries only their hash). Deleting it deletes it on the gateway.
//!
//! A converged Application costs gateway reads only: no gateway write, no Secret write, no
//! status write.
//!
//! Key rotation: webMethods keeps one API key and one OAuth client per application, and
//! regenerating replaces it (the old one is refused at once). So a rotation registers a
//! *successor* application on the gateway (same name, description, contacts and API links)
//! whose fresh credential becomes the current one, while the application before it (the
//! predecessor) keeps the previous credential valid until the overlap window ends; then the
//! predecessor is deleted, which revokes that credential. See [`rotate`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crds::application::{ApplicationStatus, CredentialType, RotationPhase, RotationStatus};
use crds::conditions::{self, reasons, types};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::finalizer;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::acceptance::{self, Acceptance};
use super::api::GATEWAY_NOT_CONFIGURED;
use super::backoff::Backoff;
use super::context::{Context, FIELD_MANAGER};
use super::emit;
use super::shared::{self, FinalizerFailure, K8sEvent, key};
use crate::events::types::{
    ApiKeyRotated, ApplicationCreated, ApplicationDeleted, CredentialType as EventCredentialType,
};
use crate::events::{EventData, Fact};
use crate::gateway::{self, ApplicationCredentials, CredentialKind, GatewayApi, GatewayError};

/// Annotation on the credentials Secret: the SHA-256 of the credentials it holds.
pub const CREDENTIALS_HASH_ANNOTATION: &str = "apim.cab-i.com/credentials-hash";

/// Why a reconcile failed (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to patch the status of Application {name}: {source}")]
    PatchStatus { name: String, source: kube::Error },
    #[error("failed to write the credentials Secret {secret} of Application {name}: {source}")]
    WriteSecret {
        name: String,
        secret: String,
        source: kube::Error,
    },
    #[error("failed to read the credentials Secret {secret} of Application {name}: {source}")]
    ReadSecret {
        name: String,
        secret: String,
        source: kube::Error,
    },
    #[error("failed to get the gateway client to delete Application {name}: {source}")]
    CleanupClient {
        name: String,
        source: Box<super::clients::ClientError>,
    },
    #[error("failed to delete Application {name} from the gateway: {source}")]
    Cleanup {
        name: String,
        source: Box<GatewayError>,
    },
    #[error(
        "Application {name} is deleted from the gateway; its last {owed} events wait for the broker before the finalizer goes"
    )]
    EventsOwed { name: String, owed: usize },
    #[error("failed to add the finalizer to Application {name}: {source}")]
    AddFinalizer { name: String, source: kube::Error },
    #[error("failed to run the finalizer of Application {name}: {source}")]
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
            Error::EventsOwed { .. } => "events_owed",
            Error::AddFinalizer { .. } => "add_finalizer_failed",
            Error::WriteSecret { .. } => "write_secret_failed",
            Error::ReadSecret { .. } => "read_secret_failed",
            Error::CleanupClient { .. } => "cleanup_client_failed",
            Error::Cleanup { .. } => "cleanup_failed",
            Error::Finalizer { source, .. } => match source.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.metric_label()
                }
                _ => "finalizer_failed",
            },
        }
    }
}

/// The Application controller's state.
pub struct AppContext {
    /// Shared controller state.
    pub ctx: Arc<Context>,
    /// The Application kind.
    pub resource: ApiResource,
    /// Transient failures per object.
    pub backoff: Backoff,
    /// The status last written per object, until the watch cache shows it.
    pub written: shared::WrittenStatus<ApplicationStatus>,
}

impl AppContext {
    /// The controller's state over `ctx`.
    pub fn new(ctx: Arc<Context>) -> AppContext {
        let max = ctx.resync_interval.min(Duration::from_secs(300));
        AppContext {
            ctx,
            resource: ApiResource::erase::<crds::Application>(&()),
            backoff: Backoff::new(Duration::from_millis(500), max),
            written: shared::WrittenStatus::default(),
        }
    }
}

/// Runs the Application controller until `token` is cancelled.
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    let actx = Arc::new(AppContext::new(ctx.clone()));
    let ar = actx.resource.clone();
    let seen = actx.clone();
    let (changes, store) =
        shared::watch_changes(shared::watched(&ctx, &ar, true), &ar, move |obj| {
            seen.written.observed(obj)
        });
    let controller = Controller::for_stream_with(changes, store.clone(), ar)
        .with_config(controller::Config::default().concurrency(ctx.concurrency))
        .graceful_shutdown_on(token.cancelled_owned());
    let sync = shared::signal_synced("Application", store, ctx.health.clone());
    shared::drive(
        "Application",
        controller.run(
            |obj, actx| reconcile(shared::expanded(obj), actx),
            |obj, error, actx| error_policy(shared::expanded(obj), error, actx),
            actx,
        ),
        sync,
    )
    .await;
}

/// Reconciles one Application.
pub async fn reconcile(obj: Arc<DynamicObject>, actx: Arc<AppContext>) -> Result<Action, Error> {
    shared::instrumented(
        "Application",
        &obj,
        &actx.ctx.metrics,
        Error::metric_label,
        reconcile_inner(obj.clone(), &actx),
    )
    .await
}

/// Transient failures back off per object.
pub fn error_policy(obj: Arc<DynamicObject>, error: &Error, actx: Arc<AppContext>) -> Action {
    shared::retry_after_error(&obj, error.metric_label(), error, &actx.backoff)
}

async fn reconcile_inner(obj: Arc<DynamicObject>, actx: &AppContext) -> Result<Action, Error> {
    let (verdict, typed) = acceptance::judge_typed::<crds::Application>(&obj);
    let wants_finalizer = typed
        .as_ref()
        .is_some_and(|a| actx.ctx.clients.has_gateway(a.spec.environment));
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

/// The gateway body of an Application.
pub fn desired_spec(app: &crds::Application) -> gateway::ApplicationSpec {
    gateway::ApplicationSpec {
        name: app.spec.display_name.clone(),
        description: Some(app.spec.description.clone()),
        version: None,
        contact_emails: app.spec.contact_emails.clone(),
        site_urls: Vec::new(),
        identifiers: Vec::new(),
        auth_strategy_ids: Vec::new(),
    }
}

fn differs(desired: &gateway::ApplicationSpec, actual: &gateway::Application) -> bool {
    desired.name != actual.name
        || desired.description.as_deref().unwrap_or_default()
            != actual.description.as_deref().unwrap_or_default()
        || desired.contact_emails != actual.contact_emails
}

/// The Secret's data for the credential type: `apiKey`, or `clientId` + `clientSecret`.
pub fn secret_data(
    credentials: &ApplicationCredentials,
    kind: CredentialType,
) -> BTreeMap<String, ByteString> {
    let mut data = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
        }
    };
    match kind {
        CredentialType::ApiKey => put(
            "apiKey",
            credentials.api_access_key.as_ref().map(|k| k.expose()),
        ),
        CredentialType::Oauth2 => {
            put("clientId", credentials.client_id.as_deref());
            put(
                "clientSecret",
                credentials.client_secret.as_ref().map(|s| s.expose()),
            );
        }
    }
    data
}

/// SHA-256 (hex) of the Secret's data, keys in order: what `status.credentialsHash` shows.
pub fn credentials_hash(data: &BTreeMap<String, ByteString>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(&v.0);
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

enum Failure {
    NotConfigured,
    Gateway(GatewayError),
    Client(String),
}

/// The gateway application named `name` whose id is not in `exclude`. With nothing to
/// exclude it is the gateway's lookup by name; otherwise the list is filtered (during a
/// rotation two applications carry the Application's name).
async fn find_by_name(
    gw: &dyn GatewayApi,
    name: &str,
    exclude: &[&str],
) -> Result<Option<gateway::Application>, GatewayError> {
    if exclude.is_empty() {
        return gw.find_application(name).await;
    }
    Ok(gw
        .list_applications()
        .await?
        .into_iter()
        .find(|a| a.name == name && !exclude.contains(&a.id.as_str())))
}

/// Registers or updates the application; returns it with its credentials. `predecessor`
/// (the application retiring after a rotation) is never taken for it.
async fn sync_gateway(
    gw: &dyn GatewayApi,
    app: &crds::Application,
    known_id: Option<&str>,
    predecessor: Option<&str>,
    events: &mut Vec<K8sEvent>,
) -> Result<(gateway::Application, Option<ApplicationCredentials>), GatewayError> {
    let desired = desired_spec(app);
    let mut actual = match known_id {
        Some(id) => match gw.get_application(id).await {
            Ok(a) => Some(a),
            Err(e) if e.is_not_found() || e.status() == Some(400) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    if actual.is_none()
        && let Some(found) = find_by_name(gw, &desired.name, predecessor.as_slice()).await?
    {
        actual = Some(gw.get_application(&found.id).await?);
    }
    let app_gw = match actual {
        None => {
            let created = gw.create_application(&desired).await?;
            events.push(K8sEvent::normal(
                "Registered",
                "Register",
                format!(
                    "registered on gateway {} as {}",
                    app.spec.environment, created.id
                ),
            ));
            created
        }
        Some(a) => aligned(gw, &desired, a).await?,
    };
    let credentials = ensure_credentials(
        gw,
        &app_gw.id,
        app.spec.credential_type,
        app_gw.access_tokens.clone(),
    )
    .await?;
    Ok((app_gw, credentials))
}

/// `actual` updated to `desired` when they differ (the tokens read are kept: the answer of
/// an update does not carry them).
async fn aligned(
    gw: &dyn GatewayApi,
    desired: &gateway::ApplicationSpec,
    actual: gateway::Application,
) -> Result<gateway::Application, GatewayError> {
    if !differs(desired, &actual) {
        return Ok(actual);
    }
    let mut updated = gw.update_application(&actual.id, desired).await?;
    if updated.access_tokens.is_none() {
        updated.access_tokens = actual.access_tokens;
    }
    Ok(updated)
}

/// `credentials` of application `id`, with the credential of type `kind` issued when it is
/// missing (an application is created with an API key only).
async fn ensure_credentials(
    gw: &dyn GatewayApi,
    id: &str,
    kind: CredentialType,
    credentials: Option<ApplicationCredentials>,
) -> Result<Option<ApplicationCredentials>, GatewayError> {
    let needs = match kind {
        CredentialType::Oauth2 => credentials
            .as_ref()
            .is_none_or(|c| c.client_id.is_none() || c.client_secret.is_none()),
        CredentialType::ApiKey => credentials
            .as_ref()
            .is_none_or(|c| c.api_access_key.is_none()),
    };
    if !needs {
        return Ok(credentials);
    }
    Ok(Some(
        gw.regenerate_credentials(id, credential_kind(kind)).await?,
    ))
}

fn credential_kind(kind: CredentialType) -> CredentialKind {
    match kind {
        CredentialType::Oauth2 => CredentialKind::OAuth,
        CredentialType::ApiKey => CredentialKind::ApiKey,
    }
}

async fn apply(
    obj: &DynamicObject,
    typed: Option<&crds::Application>,
    verdict: &Acceptance,
    actx: &AppContext,
) -> Result<Action, Error> {
    let ctx = &actx.ctx;
    let now = Utc::now();
    let generation = obj.metadata.generation;
    let current: ApplicationStatus = actx.written.current(obj);
    if let Some(held) = emit::hold_back(ctx, KIND, obj, &current, MAX_EVENTS_PER_CHANGE).await {
        write_status(obj, &current, &held, actx).await?;
        return Ok(Action::requeue(emit::OWED_RETRY));
    }
    let mut status = current.clone();
    let mut facts = emit::lifecycle_facts(KIND, obj, verdict, &current, Vec::new());
    acceptance::record(&mut status, obj, verdict, now);
    let (_, reason, _) = verdict.condition();
    let mut events = Vec::new();
    let Some(app) = typed else {
        conditions::set_condition(
            &mut status.conditions,
            types::READY,
            false,
            reason,
            "not registered: the Application is not accepted",
            generation,
            now,
        );
        emit::settle(ctx, KIND, obj, &current, &mut status, facts).await;
        write_status(obj, &current, &status, actx).await?;
        return Ok(Action::await_change());
    };
    let env = app.spec.environment;
    let outcome = match ctx.clients.gateway(env).await {
        Ok(None) => Err(Failure::NotConfigured),
        Err(e) => Err(Failure::Client(e.to_string())),
        Ok(Some(gw)) => match sync_gateway(
            gw.api.as_ref(),
            app,
            current.gateway_application_id.as_deref(),
            retiring(&current),
            &mut events,
        )
        .await
        {
            Ok((app_gw, credentials)) => Ok((gw, app_gw, credentials)),
            Err(e) => Err(Failure::Gateway(e)),
        },
    };
    let mut transient = false;
    let mut requeue = ctx.resync_interval;
    let outcome = match outcome {
        Ok((gw, app_gw, credentials)) => {
            status.gateway_application_id = Some(app_gw.id.clone());
            let secret_name = app.secret_name();
            let existing = read_secret(obj, &secret_name, actx).await?;
            match rotate(
                gw.api.as_ref(),
                app,
                &app_gw.id,
                credentials,
                existing.as_ref(),
                &mut status,
                now,
                &mut events,
            )
            .await
            {
                Ok((data, hash)) => Ok((secret_name, existing, data, hash)),
                Err(e) => Err(Failure::Gateway(e)),
            }
        }
        Err(f) => Err(f),
    };
    match outcome {
        Ok((secret_name, existing, data, hash)) => {
            ensure_secret(
                obj,
                app,
                &secret_name,
                existing.as_ref(),
                data,
                &hash,
                actx,
                &mut events,
            )
            .await?;
            facts.extend(application_facts(obj, app, &current, &status, &secret_name));
            status.secret_name = Some(secret_name.clone());
            status.credentials_hash = Some(hash);
            if let Some(r) = status
                .rotation
                .as_ref()
                .filter(|r| r.phase == RotationPhase::Overlapping)
                && let Some(ends) = &r.overlap_ends_at
            {
                let left = (crds::from_time(ends) - now).to_std().unwrap_or_default()
                    + Duration::from_secs(1);
                requeue = requeue.min(left);
            }
            conditions::set_condition(
                &mut status.conditions,
                types::READY,
                true,
                reasons::RECONCILED,
                &format!("registered on gateway {env}; credentials in Secret {secret_name}"),
                generation,
                now,
            );
            conditions::set_condition(
                &mut status.conditions,
                types::DEGRADED,
                false,
                reasons::RECONCILED,
                "",
                generation,
                now,
            );
        }
        Err(failure) => {
            let (reason, message) = match failure {
                Failure::NotConfigured => (
                    GATEWAY_NOT_CONFIGURED,
                    format!("no gateway is configured for {env}"),
                ),
                Failure::Client(m) => {
                    transient = true;
                    (reasons::GATEWAY_ERROR, m)
                }
                Failure::Gateway(e) => {
                    transient = e.is_transient();
                    if e.is_unauthorized() {
                        ctx.clients.invalidate_gateway(env).await;
                    }
                    let reason = if e.is_transient() {
                        reasons::GATEWAY_ERROR
                    } else {
                        reasons::DEPLOY_FAILED
                    };
                    (reason, e.to_string())
                }
            };
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
    write_status(obj, &current, &status, actx).await?;
    shared::publish(ctx, &actx.resource, obj, events).await;
    if transient {
        Ok(Action::requeue(actx.backoff.next(&key(obj))))
    } else {
        actx.backoff.reset(&key(obj));
        Ok(Action::requeue(emit::requeue_after(&status, requeue)))
    }
}

/// The kind, in events and metrics.
const KIND: &str = "Application";

/// The most events one reconcile may cause: resource created, audit, tag violation,
/// application created, key rotated (with its audit record).
const MAX_EVENTS_PER_CHANGE: usize = 6;

/// `application.created` when the gateway got a new application (first registration, or a
/// re-registration after it was deleted by hand; not the successor a rotation registers);
/// `api-key-rotated` and its audit record when a rotation request was carried out.
fn application_facts(
    obj: &DynamicObject,
    app: &crds::Application,
    current: &ApplicationStatus,
    status: &ApplicationStatus,
    secret_name: &str,
) -> Vec<Fact> {
    let actor = emit::actor(obj);
    let mut facts = Vec::new();
    let rotated_from = status
        .rotation
        .as_ref()
        .and_then(|r| r.previous_gateway_application_id.as_ref());
    if let Some(id) = &status.gateway_application_id
        && current.gateway_application_id.as_ref() != Some(id)
        && rotated_from.is_none_or(|p| current.gateway_application_id.as_ref() != Some(p))
    {
        facts.push(
            Fact::new(
                EventData::ApplicationCreated(ApplicationCreated {
                    display_name: app.spec.display_name.clone(),
                    environment: app.spec.environment,
                    owner: crds::tags::validate_meta(&obj.metadata)
                        .map(|t| t.owner)
                        .unwrap_or_default(),
                    credential_type: match app.spec.credential_type {
                        CredentialType::ApiKey => EventCredentialType::ApiKey,
                        CredentialType::Oauth2 => EventCredentialType::Oauth2,
                    },
                    credentials_secret: secret_name.to_string(),
                }),
                format!("created/{id}"),
            )
            .by(actor.as_deref()),
        );
    }
    let request = |s: &ApplicationStatus| {
        s.rotation
            .as_ref()
            .filter(|r| r.phase == RotationPhase::Overlapping)
            .and_then(|r| r.last_request_id.clone())
    };
    if let Some(request) = request(status)
        && current
            .rotation
            .as_ref()
            .and_then(|r| r.last_request_id.as_ref())
            != Some(&request)
    {
        facts.push(
            Fact::new(
                EventData::ApiKeyRotated(ApiKeyRotated {
                    environment: app.spec.environment,
                    credentials_secret: secret_name.to_string(),
                    // The previous credential stays valid on the gateway (held by the
                    // predecessor application) and in the Secret until the overlap window
                    // ends (at least a minute away); then the predecessor is deleted.
                    previous_key_revoked: false,
                    trigger: "spec".into(),
                }),
                format!("rotation/{request}"),
            )
            .by(actor.as_deref()),
        );
        facts.push(emit::audit(
            KIND,
            "rotate",
            format!(
                "rotated the credential of Application {} (request {request})",
                key(obj)
            ),
            Vec::new(),
            actor.as_deref(),
            format!("rotate/{request}"),
        ));
    }
    facts
}

/// Keys of the previous credential kept in the Secret during a rotation's overlap window.
pub const PREVIOUS_KEYS: [&str; 3] = ["previousApiKey", "previousClientId", "previousClientSecret"];

/// The Secret key holding the previous value of credential key `key`.
fn previous_key(key: &str) -> Option<&'static str> {
    match key {
        "apiKey" => Some(PREVIOUS_KEYS[0]),
        "clientId" => Some(PREVIOUS_KEYS[1]),
        "clientSecret" => Some(PREVIOUS_KEYS[2]),
        _ => None,
    }
}

/// The predecessor application still holding the previous credential, while a rotation's
/// overlap window is open.
fn retiring(status: &ApplicationStatus) -> Option<&str> {
    status
        .rotation
        .as_ref()
        .filter(|r| r.phase == RotationPhase::Overlapping)
        .and_then(|r| r.previous_gateway_application_id.as_deref())
}

/// Handles `spec.rotation`; returns the Secret's data and the hash of the current credential.
///
/// A new request registers a successor application ([`successor`]) and switches to it:
/// `status.gatewayApplicationId` becomes the successor, the Secret's current keys its fresh
/// credential, and the previous credential (read from the gateway: `previousApiKey`, or
/// `previousClientId` + `previousClientSecret`) stays both in the Secret and valid on the
/// gateway, held by the predecessor (`status.rotation.previousGatewayApplicationId`), until
/// `overlapEndsAt`. Then [`end_overlap`] deletes the predecessor (revoking the previous
/// credential) and the previous keys leave the Secret (phase `Completed`). A request arriving
/// during a window ends that window first: the Secret keeps one previous credential.
#[allow(clippy::too_many_arguments)]
async fn rotate(
    gw: &dyn GatewayApi,
    app: &crds::Application,
    app_id: &str,
    credentials: Option<ApplicationCredentials>,
    existing: Option<&Secret>,
    status: &mut ApplicationStatus,
    now: chrono::DateTime<Utc>,
    events: &mut Vec<K8sEvent>,
) -> Result<(BTreeMap<String, ByteString>, String), GatewayError> {
    let kind = app.spec.credential_type;
    let existing_data = existing.and_then(|s| s.data.clone()).unwrap_or_default();
    let mut current = credentials
        .as_ref()
        .map(|c| secret_data(c, kind))
        .unwrap_or_default();
    let mut previous: BTreeMap<String, ByteString> = existing_data
        .iter()
        .filter(|(k, _)| PREVIOUS_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Against the status last written, not the watch cache's copy: a lagging cache must not
    // carry out a request twice.
    if let Some(request) = app.pending_rotation_in(Some(status)).map(str::to_string) {
        end_overlap(gw, status, events).await?;
        if existing.is_none() {
            // A new Application: its first credential is the requested one.
            status.rotation = Some(RotationStatus {
                last_request_id: Some(request),
                overlap_ends_at: None,
                phase: RotationPhase::Completed,
                previous_gateway_application_id: None,
            });
        } else {
            let overlap = app
                .spec
                .rotation
                .as_ref()
                .map(|r| r.overlap.as_secs())
                .unwrap_or(0);
            let (successor, fresh) = successor(gw, app, app_id).await?;
            previous = current
                .iter()
                .filter_map(|(k, v)| previous_key(k).map(|p| (p.to_string(), v.clone())))
                .collect();
            current = secret_data(&fresh, kind);
            let ends =
                now + chrono::Duration::seconds(i64::try_from(overlap).unwrap_or(i64::MAX / 2));
            status.gateway_application_id = Some(successor.id.clone());
            status.rotation = Some(RotationStatus {
                last_request_id: Some(request.clone()),
                overlap_ends_at: Some(crds::to_time(ends)),
                phase: RotationPhase::Overlapping,
                previous_gateway_application_id: Some(app_id.to_string()),
            });
            events.push(K8sEvent::normal(
                "ApiKeyRotated",
                "Rotate",
                format!(
                    "credential rotated (request {request}): the new one belongs to gateway application {}; the previous one stays valid on application {app_id} and in the Secret until {}",
                    successor.id,
                    ends.to_rfc3339()
                ),
            ));
        }
    }
    if status.rotation.as_ref().is_some_and(|r| {
        r.phase == RotationPhase::Overlapping
            && r.overlap_ends_at
                .as_ref()
                .is_none_or(|t| crds::from_time(t) <= now)
    }) {
        end_overlap(gw, status, events).await?;
    }
    if status
        .rotation
        .as_ref()
        .is_none_or(|r| r.phase != RotationPhase::Overlapping)
    {
        previous.clear();
    }
    let hash = credentials_hash(&current);
    current.extend(previous);
    Ok((current, hash))
}

/// The successor application of a rotation away from application `predecessor`, with its
/// credential.
///
/// Idempotent, so an interrupted rotation leaves no orphan: the successor is recorded in
/// the status only after it is registered, linked and holds its credential, and a crash or a
/// failed step in between leaves it unrecorded. So it is looked up before one is created:
/// while the request is pending, a gateway application carrying the Application's name
/// that is not the predecessor can only be a successor an earlier attempt registered (the
/// retiring application of an earlier window is deleted before this runs). It is adopted,
/// aligned, linked and completed like a new one. The API links are copied by replacing
/// the successor's list with the predecessor's (a no-op when equal), and a credential is
/// issued only when it has none yet.
async fn successor(
    gw: &dyn GatewayApi,
    app: &crds::Application,
    predecessor: &str,
) -> Result<(gateway::Application, ApplicationCredentials), GatewayError> {
    let desired = desired_spec(app);
    let successor = match find_by_name(gw, &desired.name, &[predecessor]).await? {
        Some(found) => aligned(gw, &desired, gw.get_application(&found.id).await?).await?,
        None => gw.create_application(&desired).await?,
    };
    let apis = gw.application_apis(predecessor).await?;
    gw.set_application_apis(&successor.id, &apis).await?;
    let credentials = ensure_credentials(
        gw,
        &successor.id,
        app.spec.credential_type,
        successor.access_tokens.clone(),
    )
    .await?
    .unwrap_or_default();
    Ok((successor, credentials))
}

/// Ends an open overlap window: deletes the predecessor application from the gateway, which
/// revokes the previous credential (a 404 counts as done), and completes the rotation. The
/// caller drops the previous keys from the Secret.
async fn end_overlap(
    gw: &dyn GatewayApi,
    status: &mut ApplicationStatus,
    events: &mut Vec<K8sEvent>,
) -> Result<(), GatewayError> {
    let current = status.gateway_application_id.clone();
    let Some(rotation) = status
        .rotation
        .as_mut()
        .filter(|r| r.phase == RotationPhase::Overlapping)
    else {
        return Ok(());
    };
    let retired = rotation
        .previous_gateway_application_id
        .clone()
        // Never the application holding the current credential.
        .filter(|p| current.as_ref() != Some(p));
    if let Some(predecessor) = &retired {
        match gw.delete_application(predecessor).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    rotation.previous_gateway_application_id = None;
    rotation.phase = RotationPhase::Completed;
    events.push(K8sEvent::normal(
        "PreviousCredentialRemoved",
        "Rotate",
        match retired {
            Some(p) => format!(
                "the overlap window ended: the previous credential is revoked (gateway application {p} deleted) and removed from the Secret"
            ),
            None => "the overlap window ended: the previous credential is removed from the Secret"
                .to_string(),
        },
    ));
    Ok(())
}

async fn read_secret(
    obj: &DynamicObject,
    secret_name: &str,
    actx: &AppContext,
) -> Result<Option<Secret>, Error> {
    let secrets: Api<Secret> = Api::namespaced(
        actx.ctx.client.clone(),
        &obj.namespace().unwrap_or_default(),
    );
    secrets
        .get_opt(secret_name)
        .await
        .map_err(|source| Error::ReadSecret {
            name: obj.name_any(),
            secret: secret_name.to_string(),
            source,
        })
}

/// The keys the operator manages in a credentials Secret.
const MANAGED_KEYS: [&str; 6] = [
    "apiKey",
    "clientId",
    "clientSecret",
    PREVIOUS_KEYS[0],
    PREVIOUS_KEYS[1],
    PREVIOUS_KEYS[2],
];

/// Whether `stored` holds `data` on the keys the operator manages (keys another manager
/// added are theirs: server-side apply keeps them, and they are not a difference).
fn holds_exactly(
    stored: Option<&BTreeMap<String, ByteString>>,
    data: &BTreeMap<String, ByteString>,
) -> bool {
    let empty = BTreeMap::new();
    let stored = stored.unwrap_or(&empty);
    MANAGED_KEYS.iter().all(|k| stored.get(*k) == data.get(*k))
        && data.keys().all(|k| MANAGED_KEYS.contains(&k.as_str()))
}

/// Writes the credentials Secret (owned by the Application) unless it already holds them.
#[allow(clippy::too_many_arguments)]
async fn ensure_secret(
    obj: &DynamicObject,
    app: &crds::Application,
    secret_name: &str,
    existing: Option<&Secret>,
    data: BTreeMap<String, ByteString>,
    hash: &str,
    actx: &AppContext,
    events: &mut Vec<K8sEvent>,
) -> Result<(), Error> {
    let ns = obj.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(actx.ctx.client.clone(), &ns);
    let uid = obj.uid().unwrap_or_default();
    let up_to_date = existing.is_some_and(|s| {
        s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CREDENTIALS_HASH_ANNOTATION))
            .map(String::as_str)
            == Some(hash)
            && holds_exactly(s.data.as_ref(), &data)
            && s.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|r| r.uid == uid))
    });
    if up_to_date {
        return Ok(());
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_string()),
            namespace: Some(ns),
            annotations: Some(BTreeMap::from([(
                CREDENTIALS_HASH_ANNOTATION.to_string(),
                hash.to_string(),
            )])),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                FIELD_MANAGER.to_string(),
            )])),
            owner_references: Some(vec![OwnerReference {
                api_version: crds::API_VERSION.to_string(),
                kind: "Application".to_string(),
                name: app.name_any(),
                uid,
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_string()),
        ..Secret::default()
    };
    let mut body = serde_json::to_value(&secret).unwrap_or_default();
    body["apiVersion"] = "v1".into();
    body["kind"] = "Secret".into();
    secrets
        .patch(
            secret_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(|source| Error::WriteSecret {
            name: obj.name_any(),
            secret: secret_name.to_string(),
            source,
        })?;
    tracing::info!(secret = secret_name, "credentials written");
    events.push(K8sEvent::normal(
        "CredentialsWritten",
        "WriteSecret",
        format!("credentials written to Secret {secret_name}"),
    ));
    Ok(())
}

async fn write_status(
    obj: &DynamicObject,
    current: &ApplicationStatus,
    desired: &ApplicationStatus,
    actx: &AppContext,
) -> Result<(), Error> {
    if desired == current {
        return Ok(());
    }
    actx.written
        .write(&actx.ctx, &actx.resource, obj, current, desired)
        .await
        .map_err(|source| Error::PatchStatus {
            name: obj.name_any(),
            source,
        })?;
    Ok(())
}

async fn cleanup(obj: &DynamicObject, actx: &AppContext) -> Result<Action, Error> {
    let name = obj.name_any();
    let status: ApplicationStatus = actx.written.current(obj);
    let app: Option<crds::Application> = serde_json::to_value(obj)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok());
    let Some(env) = app.as_ref().map(|a| a.spec.environment) else {
        return Ok(Action::await_change());
    };
    let gw = match actx.ctx.clients.gateway(env).await {
        Ok(Some(gw)) => gw,
        Ok(None) => return Ok(Action::await_change()),
        Err(e) => {
            return Err(Error::CleanupClient {
                name,
                source: Box::new(e),
            });
        }
    };
    let err = |e: GatewayError| Error::Cleanup {
        name: name.clone(),
        source: Box::new(e),
    };
    // The current application and, during a rotation's overlap window, the predecessor
    // holding the previous credential: both go, none is left behind on the gateway.
    let mut ids: Vec<String> = status
        .gateway_application_id
        .iter()
        .chain(status.rotation.iter().filter_map(|r| {
            r.previous_gateway_application_id
                .as_ref()
                .filter(|_| r.phase == RotationPhase::Overlapping)
        }))
        .cloned()
        .collect();
    ids.dedup();
    if let Some(app) = &app {
        if status.gateway_application_id.is_none() {
            ids.extend(
                gw.api
                    .find_application(&app.spec.display_name)
                    .await
                    .map_err(err)?
                    .map(|a| a.id),
            );
        }
        // A rotation interrupted before it recorded its successor (see `successor`) may have
        // left one on the gateway: while the request is pending, the applications carrying
        // the Application's name that the status does not know are such successors.
        if status.gateway_application_id.is_some()
            && app.pending_rotation_in(Some(&status)).is_some()
        {
            let unknown: Vec<String> = gw
                .api
                .list_applications()
                .await
                .map_err(err)?
                .into_iter()
                .filter(|a| a.name == app.spec.display_name && !ids.contains(&a.id))
                .map(|a| a.id)
                .collect();
            ids.extend(unknown);
        }
    }
    for id in &ids {
        match gw.api.delete_application(id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(err(e)),
        }
    }
    if let Some(app) = &app {
        let secrets: Api<Secret> = Api::namespaced(
            actx.ctx.client.clone(),
            &obj.namespace().unwrap_or_default(),
        );
        // The owner reference collects it anyway; deleting now does not leave it to the GC's pace.
        let _ = secrets
            .delete(&app.secret_name(), &DeleteParams::default())
            .await;
    }
    let display_name = app
        .as_ref()
        .map(|a| a.spec.display_name.clone())
        .unwrap_or_else(|| obj.name_any());
    let facts = vec![
        Fact::new(
            EventData::ApplicationDeleted(ApplicationDeleted {
                display_name,
                environment: env,
            }),
            "deleted",
        ),
        emit::deleted_audit(
            KIND,
            format!(
                "deleted Application {} and removed it from gateway {env}",
                key(obj)
            ),
        ),
    ];
    if let Some(owed) = emit::settle_last(&actx.ctx, KIND, obj, &status, facts).await {
        let count = owed.pending_events.len();
        write_status(obj, &status, &owed, actx).await?;
        return Err(Error::EventsOwed { name, owed: count });
    }
    shared::publish(
        &actx.ctx,
        &actx.resource,
        obj,
        vec![K8sEvent::normal(
            "Deleted",
            "Delete",
            format!("deleted from gateway {env}"),
        )],
    )
    .await;
    actx.written.forget(obj);
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::SecretString;

    #[test]
    fn secret_data_and_hash() {
        let creds = ApplicationCredentials {
            api_access_key: Some(SecretString::new("k-1")),
            client_id: Some("cid".into()),
            client_secret: Some(SecretString::new("cs")),
            ..Default::default()
        };
        let key = secret_data(&creds, CredentialType::ApiKey);
        assert_eq!(key.keys().collect::<Vec<_>>(), vec!["apiKey"]);
        let oauth = secret_data(&creds, CredentialType::Oauth2);
        assert_eq!(
            oauth.keys().collect::<Vec<_>>(),
            vec!["clientId", "clientSecret"]
        );
        let h = credentials_hash(&key);
        assert_eq!(h.len(), 64);
        assert!(!h.contains("k-1"));
        assert_eq!(h, credentials_hash(&key.clone()));
        assert_ne!(h, credentials_hash(&oauth));
    }

    fn checkout() -> (DynamicObject, crds::Application) {
        let value = serde_json::json!({
            "apiVersion": crds::API_VERSION, "kind": "Application",
            "metadata": {"name": "checkout", "namespace": "tenant", "uid": "u-1", "generation": 2},
            "spec": {"displayName": "Checkout", "description": "web", "environment": "dev",
                     "rotation": {"requestId": "r2", "overlap": "5m"}}
        });
        let obj: DynamicObject = serde_json::from_value(value.clone()).expect("a DynamicObject");
        let app: crds::Application = serde_json::from_value(value).expect("an Application");
        (obj, app)
    }

    fn status(id: &str, rotation: Option<RotationStatus>) -> ApplicationStatus {
        ApplicationStatus {
            gateway_application_id: Some(id.into()),
            rotation,
            ..Default::default()
        }
    }

    #[test]
    fn a_rotation_to_a_successor_is_a_rotation_not_a_new_application() {
        let (obj, app) = checkout();
        let before = status(
            "app-1",
            Some(RotationStatus {
                last_request_id: Some("r1".into()),
                overlap_ends_at: None,
                phase: RotationPhase::Completed,
                previous_gateway_application_id: None,
            }),
        );
        let after = status(
            "app-2",
            Some(RotationStatus {
                last_request_id: Some("r2".into()),
                overlap_ends_at: Some(crds::to_time(Utc::now())),
                phase: RotationPhase::Overlapping,
                previous_gateway_application_id: Some("app-1".into()),
            }),
        );
        let facts = application_facts(&obj, &app, &before, &after, "checkout-credentials");
        assert!(
            !facts
                .iter()
                .any(|f| matches!(f.data, EventData::ApplicationCreated(_))),
            "the successor is no new application"
        );
        let rotated: Vec<&ApiKeyRotated> = facts
            .iter()
            .filter_map(|f| match &f.data {
                EventData::ApiKeyRotated(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(rotated.len(), 1);
        assert!(
            !rotated[0].previous_key_revoked,
            "the previous key stays valid through the overlap window"
        );
        assert_eq!(rotated[0].credentials_secret, "checkout-credentials");

        // A re-registration (the application was deleted by hand) is a new application.
        let lost = status("app-3", after.rotation.clone());
        let facts = application_facts(&obj, &app, &after, &lost, "checkout-credentials");
        assert!(
            facts
                .iter()
                .any(|f| matches!(f.data, EventData::ApplicationCreated(_)))
        );
    }

    #[test]
    fn previous_keys_name_the_whole_previous_credential() {
        assert_eq!(previous_key("apiKey"), Some("previousApiKey"));
        assert_eq!(previous_key("clientId"), Some("previousClientId"));
        assert_eq!(previous_key("clientSecret"), Some("previousClientSecret"));
        assert_eq!(previous_key("note"), None);
        for k in PREVIOUS_KEYS {
            assert!(MANAGED_KEYS.contains(&k), "{k} is managed");
        }
    }
}
