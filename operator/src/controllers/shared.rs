//! Small pieces every typed controller uses: the stored status, the status write, Events,
//! and the cache-synced signal.

use std::future::Future;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use tracing::{Instrument, info_span};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cache::Cached;
use super::context::{Context, FIELD_MANAGER};
use crate::metrics::Metrics;
use crate::runtime::health::Health;

/// Runs one reconcile of `obj` inside a span naming it, and counts it in the metrics by
/// kind and result (`ok` or the error's label) with its duration.
pub async fn instrumented<E>(
    kind: &str,
    obj: &DynamicObject,
    metrics: &Metrics,
    label: fn(&E) -> &'static str,
    reconcile: impl Future<Output = Result<Action, E>>,
) -> Result<Action, E> {
    let span = info_span!("reconcile", kind, namespace = obj.namespace().unwrap_or_default(), name = %obj.name_any());
    let started = Instant::now();
    let result = reconcile.instrument(span).await;
    let result_label = match &result {
        Ok(_) => "ok",
        Err(e) => label(e),
    };
    metrics.observe_reconcile(kind, result_label, started.elapsed().as_secs_f64());
    result
}

pub use super::k8s_events::K8sEvent;

/// The status stored on `obj`, read leniently (unreadable counts as empty).
pub fn stored_status<S: DeserializeOwned + Default>(obj: &DynamicObject) -> S {
    obj.data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default()
}

/// The requeue after a failed reconcile: a deletion waiting for the broker retries at the
/// outbox's pace; any other failure backs off per object (jittered, capped).
pub fn retry_after_error(
    obj: &DynamicObject,
    label: &str,
    error: &dyn std::fmt::Display,
    backoff: &super::backoff::Backoff,
) -> Action {
    if label == "events_owed" {
        tracing::info!(%error, "waiting for the broker");
        return Action::requeue(super::emit::OWED_RETRY);
    }
    let delay = backoff.next(&key(obj));
    tracing::warn!(%error, ?delay, "reconcile failed, retrying");
    Action::requeue(delay)
}

/// The status each object was last written with, until the watch cache shows it: a reconcile
/// that runs on a cached copy older than our own write (triggered by a related object, say)
/// must start from what we wrote, not derive the same change (and its events) again.
/// Entries older than [`WRITTEN_TTL`] are dropped (the cache has long caught up by then).
pub struct WrittenStatus<S>(std::sync::Mutex<std::collections::HashMap<String, Written<S>>>);

/// One status we wrote, as the API server stored it, the resourceVersion the write gave the
/// object, and when.
struct Written<S> {
    status: S,
    stored: serde_json::Value,
    resource_version: Option<String>,
    at: Instant,
}

/// Status writes computed again after a conflict, at most, before the reconcile fails.
const MAX_CONFLICTS: usize = 3;

/// How long a written status is kept for a lagging cache.
pub const WRITTEN_TTL: Duration = Duration::from_secs(30);

impl<S> Default for WrittenStatus<S> {
    fn default() -> Self {
        WrittenStatus(std::sync::Mutex::new(std::collections::HashMap::new()))
    }
}

impl<S> WrittenStatus<S>
where
    S: crds::status::CommonStatus + Clone + PartialEq + DeserializeOwned + Serialize,
{
    fn entries(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Written<S>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status of `obj`: the stored one, or the one we wrote last while the cached object
    /// does not show it yet (same generation).
    pub fn current(&self, obj: &DynamicObject) -> S {
        let stored: S = stored_status(obj);
        let mut written = self.entries();
        let k = key(obj);
        match written.get(&k) {
            Some(w)
                if w.status == stored
                    || w.status.observed_generation() != obj.metadata.generation
                    || w.at.elapsed() > WRITTEN_TTL =>
            {
                written.remove(&k);
                stored
            }
            Some(w) => w.status.clone(),
            None => stored,
        }
    }

    /// Writes `desired` as the status of `obj` when it differs from `current` (what
    /// [`current`](Self::current) returned), from the status as stored (on the cached object,
    /// or as our last write left it), by [`write_status`]; returns whether it wrote.
    pub async fn write(
        &self,
        ctx: &Context,
        ar: &ApiResource,
        obj: &DynamicObject,
        current: &S,
        desired: &S,
    ) -> Result<bool, kube::Error> {
        let (old, resource_version) = self.base(obj, current);
        let new = serde_json::to_value(desired).unwrap_or_default();
        let Some(mut written) =
            write_status(ctx, ar, obj, old, resource_version, |_| new.clone()).await?
        else {
            return Ok(false);
        };
        let mut entries = self.entries();
        if entries.len() >= 256 {
            entries.retain(|_, w| w.at.elapsed() <= WRITTEN_TTL);
        }
        entries.insert(
            key(obj),
            Written {
                status: desired.clone(),
                stored: written
                    .data
                    .get_mut("status")
                    .map(serde_json::Value::take)
                    .unwrap_or(new),
                resource_version: written.metadata.resource_version,
                at: Instant::now(),
            },
        );
        Ok(true)
    }

    /// The status a write of `obj` starts from, as stored, and the resourceVersion that goes
    /// with it: our last write while the cached object does not show it yet (and `current` is
    /// that write), else the cached object, which is then at least as recent as our write
    /// (it may have changed since: deleted, relabelled).
    fn base(&self, obj: &DynamicObject, current: &S) -> (serde_json::Value, Option<String>) {
        let cached: S = stored_status(obj);
        self.entries()
            .get(&key(obj))
            .filter(|w| w.status == *current && w.status != cached)
            .map(|w| (w.stored.clone(), w.resource_version.clone()))
            .unwrap_or_else(|| {
                (
                    obj.data
                        .get("status")
                        .cloned()
                        .unwrap_or(serde_json::Value::Null),
                    obj.metadata.resource_version.clone(),
                )
            })
    }

    /// Forgets `obj` (deleted).
    pub fn forget(&self, obj: &DynamicObject) {
        self.entries().remove(&key(obj));
    }

    /// Told of every object the watch delivers: once it shows our write (the resourceVersion
    /// the write gave it), the cache has caught up and the entry goes.
    pub fn observed(&self, obj: &Cached) {
        let Some(rv) = obj.metadata.resource_version.as_deref() else {
            return;
        };
        let k = key(obj);
        let mut entries = self.entries();
        if entries
            .get(&k)
            .is_some_and(|w| w.resource_version.as_deref() == Some(rv))
        {
            entries.remove(&k);
        }
    }
}

/// `namespace/name`.
pub fn key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The API of `obj`'s kind, in its namespace when it has one.
fn api_of(ctx: &Context, ar: &ApiResource, obj: &DynamicObject) -> Api<DynamicObject> {
    match obj.namespace() {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), &ns, ar),
        None => Api::all_with(ctx.client.clone(), ar),
    }
}

/// Writes the status of `obj` from `stored` (its status as stored at `resource_version`) to
/// what `desired` makes of it, as a JSON merge patch of the difference conditioned on that
/// resourceVersion: never applied over a status it was not computed from. When the object
/// changed meanwhile (409: a label, a finalizer, a deletion), the write is computed again
/// from the object as it is now, up to [`MAX_CONFLICTS`] times, rather than failing the
/// reconcile, which would derive its events a second time. Returns the object as written, or
/// `None` when nothing differed.
pub async fn write_status(
    ctx: &Context,
    ar: &ApiResource,
    obj: &DynamicObject,
    mut stored: serde_json::Value,
    mut resource_version: Option<String>,
    desired: impl Fn(&serde_json::Value) -> serde_json::Value,
) -> Result<Option<DynamicObject>, kube::Error> {
    let mut conflicts = 0;
    loop {
        let Some(patch) = super::merge_patch::diff(&stored, &desired(&stored)) else {
            return Ok(None);
        };
        match patch_status(ctx, ar, obj, resource_version, patch).await {
            Ok(written) => return Ok(Some(written)),
            Err(kube::Error::Api(e)) if e.code == 409 && conflicts < MAX_CONFLICTS => {
                conflicts += 1;
                tracing::debug!("status write conflicted; computing it again");
                let fresh = api_of(ctx, ar, obj).get(&obj.name_any()).await?;
                stored = fresh
                    .data
                    .get("status")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null);
                resource_version = fresh.metadata.resource_version;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Patches the status of `obj` with the merge patch `status` (conditioned on
/// `resource_version` when given) and counts the write.
async fn patch_status(
    ctx: &Context,
    ar: &ApiResource,
    obj: &DynamicObject,
    resource_version: Option<String>,
    status: serde_json::Value,
) -> Result<DynamicObject, kube::Error> {
    let api = api_of(ctx, ar, obj);
    let mut body = serde_json::json!({ "status": status });
    if let Some(rv) = resource_version {
        body["metadata"] = serde_json::json!({ "resourceVersion": rv });
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let written = api
        .patch_status(&obj.name_any(), &params, &Patch::Merge(body))
        .await?;
    ctx.metrics
        .status_writes
        .get_or_create(&crate::metrics::KindLabels {
            kind: ar.kind.clone(),
        })
        .inc();
    Ok(written)
}

/// Why [`with_finalizer`] failed.
#[derive(Debug)]
pub enum FinalizerFailure<E: std::error::Error + 'static> {
    /// Adding the finalizer failed.
    Add(kube::Error),
    /// kube-runtime's finalizer helper failed (apply, cleanup or removing the finalizer).
    Run(Box<kube::runtime::finalizer::Error<E>>),
    /// The apply of an object that needs no finalizer failed.
    Apply(E),
}

/// The finalizer flow every kind with gateway state shares: a deleted object without our
/// finalizer is left alone; an object that needs none (`wants_finalizer` false, none set) is
/// applied; a new one gets the finalizer and is applied in the same reconcile (the watch event
/// of our own patch does not trigger another); then kube-runtime's helper runs `apply`, or
/// `cleanup` and removes the finalizer once it succeeded.
pub async fn with_finalizer<E, A, AF, C, CF>(
    api: &Api<DynamicObject>,
    obj: std::sync::Arc<DynamicObject>,
    wants_finalizer: bool,
    apply: A,
    cleanup: C,
) -> Result<Action, FinalizerFailure<E>>
where
    E: std::error::Error + Send + 'static,
    A: FnOnce(std::sync::Arc<DynamicObject>) -> AF,
    AF: Future<Output = Result<Action, E>>,
    C: FnOnce(std::sync::Arc<DynamicObject>) -> CF,
    CF: Future<Output = Result<Action, E>>,
{
    use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
    let has_finalizer = obj.finalizers().iter().any(|f| f == crds::FINALIZER);
    let deleting = obj.metadata.deletion_timestamp.is_some();
    if deleting && !has_finalizer {
        return Ok(Action::await_change());
    }
    if !has_finalizer && !wants_finalizer {
        return apply(obj).await.map_err(FinalizerFailure::Apply);
    }
    if !has_finalizer {
        // Go on with the object as the patch left it: its resourceVersion conditions the
        // status write that follows.
        let patched = add_finalizer(api, &obj)
            .await
            .map_err(FinalizerFailure::Add)?;
        return apply(std::sync::Arc::new(patched))
            .await
            .map_err(FinalizerFailure::Apply);
    }
    finalizer(api, crds::FINALIZER, obj, |event| async move {
        match event {
            FinalizerEvent::Apply(o) => apply(o).await,
            FinalizerEvent::Cleanup(o) => cleanup(o).await,
        }
    })
    .await
    .map_err(|e| FinalizerFailure::Run(Box::new(e)))
}

/// Adds `crds::FINALIZER` by a merge patch that carries the object's resourceVersion (a
/// concurrent change makes it fail with 409 and the reconcile is retried).
pub async fn add_finalizer(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    let mut finalizers = obj.metadata.finalizers.clone().unwrap_or_default();
    finalizers.push(crds::FINALIZER.to_string());
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": obj.metadata.resource_version, "finalizers": finalizers}
    });
    let mut patched = api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    super::cache::slim(&mut patched);
    Ok(patched)
}

/// Queues Kubernetes Events on `obj` (written in the background, never fatal).
pub async fn publish(ctx: &Context, ar: &ApiResource, obj: &DynamicObject, events: Vec<K8sEvent>) {
    if events.is_empty() {
        return;
    }
    ctx.k8s_events.publish(&obj.object_ref(ar), events);
}

/// Truncates at a character boundary, with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Tells `health` once `store` has synced (polling: the store wakes only its last waiter).
pub fn signal_synced(
    kind: impl Into<String>,
    store: Store<Cached>,
    health: std::sync::Arc<Health>,
) -> tokio::task::JoinHandle<()> {
    let kind = kind.into();
    tokio::spawn(async move {
        // The store's readiness signal wakes only its most recent waiter, and the
        // controller waits on it too: poll with a timeout so both see it.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    tracing::info!(%kind, "cache synced");
                    health.cache_synced();
                    return;
                }
                Ok(Err(_)) => return,
                Err(_elapsed) => continue,
            }
        }
    })
}

/// The API of kind `ar` a controller watches: in the watched namespace when set (and the
/// kind is namespaced), else in all.
pub fn watched(ctx: &Context, ar: &ApiResource, namespaced: bool) -> Api<Cached> {
    match (&ctx.watch_namespace, namespaced) {
        (Some(ns), true) => Api::namespaced_with(ctx.client.clone(), ns, ar),
        _ => Api::all_with(ctx.client.clone(), ar),
    }
}

/// The watch of a kind for its controller, and the store it fills (in the compact
/// [`Cached`] form); `observed` sees every object delivered. Every event updates the store, but only changes a user can make
/// (generation, labels, annotations, deletion) trigger a reconcile. The events of the
/// operator's own writes (status, finalizer) are dropped, so a converged object is not
/// reconciled again for each write that converged it; the periodic resync still reconciles it.
pub fn watch_changes(
    api: Api<Cached>,
    ar: &ApiResource,
    observed: impl Fn(&Cached) + Send + 'static,
) -> (
    impl futures::Stream<Item = Result<Cached, kube::runtime::watcher::Error>> + Send + 'static,
    Store<Cached>,
) {
    use futures::TryStreamExt;
    use kube::runtime::WatchStreamExt;
    let writer = kube::runtime::reflector::store::Writer::new(ar.clone());
    let reader = writer.as_reader();
    let stream = kube::runtime::watcher(
        api,
        kube::runtime::watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .inspect_ok(observed)
    .predicate_filter(user_changes, Default::default());
    (stream, reader)
}

/// The object a reconcile works on, from its cached form.
pub fn expanded(obj: std::sync::Arc<Cached>) -> std::sync::Arc<DynamicObject> {
    std::sync::Arc::new(obj.expand())
}

/// A hash of what a user changes on an object (not its status, not its finalizers).
pub fn user_changes<K: Resource>(obj: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = obj.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.labels.hash(&mut h);
    meta.annotations.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Drives a controller's stream of reconcile results until it ends (shutdown or lost
/// lease), then stops its cache-sync watcher.
pub async fn drive<T, E: std::fmt::Display>(
    kind: &str,
    results: impl futures::Stream<Item = Result<T, E>>,
    sync: tokio::task::JoinHandle<()>,
) {
    use futures::StreamExt;
    results
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile error");
            }
        })
        .await;
    sync.abort();
    tracing::info!(kind, "controller stopped");
}

#[cfg(test)]
mod tests {
    use crds::api::ApiStatus;
    use serde_json::json;

    use super::*;

    fn object(rv: &str, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apim.cab-i.com/v1alpha1", "kind": "Api",
            "metadata": {"name": "a", "namespace": "n", "generation": 1, "resourceVersion": rv},
            "spec": {}, "status": status,
        }))
        .expect("object")
    }

    #[test]
    fn a_written_status_stands_in_until_the_watch_shows_it() {
        let written: WrittenStatus<ApiStatus> = WrittenStatus::default();
        let ours = ApiStatus {
            observed_generation: Some(1),
            revision: Some("r2".into()),
            ..ApiStatus::default()
        };
        written.entries().insert(
            "n/a".into(),
            Written {
                status: ours.clone(),
                stored: serde_json::to_value(&ours).expect("json"),
                resource_version: Some("5".into()),
                at: Instant::now(),
            },
        );
        let lagging = object("4", json!({"observedGeneration": 1, "revision": "r1"}));
        assert_eq!(
            written.current(&lagging),
            ours,
            "the cache lags: our write stands in"
        );
        written.observed(&Cached::new(lagging.clone()));
        assert_eq!(
            written.current(&lagging),
            ours,
            "an older version evicts nothing"
        );

        assert_eq!(
            written.base(&lagging, &ours).1.as_deref(),
            Some("5"),
            "a write while the cache lags starts from our last write"
        );

        // Our write shows, and the object changed since (deleted, say): the cached object,
        // not the entry, is what a write starts from.
        let changed_since = object("9", json!({"observedGeneration": 1, "revision": "r2"}));
        let (stored, rv) = written.base(&changed_since, &ours);
        assert_eq!(rv.as_deref(), Some("9"));
        assert_eq!(stored["revision"], "r2");

        let caught_up = object("5", json!({"observedGeneration": 1, "revision": "r2"}));
        written.observed(&Cached::new(caught_up));
        assert!(written.entries().is_empty(), "the watch showed our write");
        assert_eq!(written.current(&lagging).revision.as_deref(), Some("r1"));
    }
}
