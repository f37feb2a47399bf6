//! Shared by the Application and Subscription controller tests: a fake gateway holding
//! applications, their credentials and their API associations; a fake Kubernetes API server
//! (behind a tower-test mock) that stores objects, answers reads, applies status patches,
//! server-side applies, finalizer JSON patches and deletes, and records every call; a
//! journal both fakes write to, so a test can check the order of gateway and Kubernetes
//! calls; and the `Context` the controllers run with.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use apim_operator::config::Controllers;
use apim_operator::controllers::Context;
use apim_operator::controllers::clients::Clients;
use apim_operator::controllers::merge_patch::apply as merge_patch;
use apim_operator::gateway::{
    Alias, AliasSpec, Api as GwApi, ApiDocument, Application, ApplicationCredentials,
    ApplicationSpec, Change, CredentialKind, Deleted, GatewayApi, GatewayError, GatewayErrorKind,
    SecretString,
};
use apim_operator::metrics::Metrics;
use apim_operator::runtime::health::Health;
use async_trait::async_trait;
use base64::Engine;
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

/// The resync interval of converged objects in these tests.
pub const RESYNC: Duration = Duration::from_secs(600);
/// The namespace of every object.
pub const NS: &str = "tenant";
/// A deletion timestamp.
pub const DELETED_AT: &str = "2026-11-25T08:00:00Z";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------
// The journal: gateway and Kubernetes calls in the order they happened.
// ---------------------------------------------------------------------------------------

/// Gateway calls (`gw:<op> <args>`) and Kubernetes calls (`k8s:<METHOD> <path>`), in order.
#[derive(Default, Clone)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn push(&self, entry: String) {
        lock(&self.0).push(entry);
    }
    pub fn entries(&self) -> Vec<String> {
        lock(&self.0).clone()
    }
    pub fn clear(&self) {
        lock(&self.0).clear();
    }
    /// Index of the first entry starting with `prefix`.
    pub fn position(&self, prefix: &str) -> Option<usize> {
        lock(&self.0).iter().position(|e| e.starts_with(prefix))
    }
}

// ---------------------------------------------------------------------------------------
// The fake gateway.
// ---------------------------------------------------------------------------------------

/// What the fake gateway holds.
#[derive(Default)]
pub struct GwState {
    /// Applications, in creation order.
    pub applications: Vec<Application>,
    /// Application id → the API ids it is subscribed to.
    pub associations: BTreeMap<String, BTreeSet<String>>,
    /// Every write the gateway performed (`<op> <args>`), in order.
    pub writes: Vec<String>,
    /// Every call refused with 503.
    pub down: bool,
    /// Operation → status it fails with (e.g. `delete_application` → 500).
    pub fail: BTreeMap<&'static str, u16>,
    /// `dissociate_api` answers "changed" but the association stays (a gateway that lies).
    pub sticky_associations: bool,
    next_id: u32,
}

/// A gateway with applications in memory, like webMethods: creating an application issues an
/// API key; regenerating a credential replaces it (the old one stops working at once);
/// deleting an application revokes its credentials and its API links.
#[derive(Default, Clone)]
pub struct FakeGateway {
    state: Arc<Mutex<GwState>>,
    journal: Journal,
}

fn gw_error(op: &'static str, kind: GatewayErrorKind) -> GatewayError {
    GatewayError {
        operation: op.into(),
        op,
        environment: Arc::from("dev"),
        base_url: Arc::from("http://fake"),
        kind,
    }
}

fn status_error(op: &'static str, status: u16, details: &str) -> GatewayError {
    gw_error(
        op,
        GatewayErrorKind::Status {
            status,
            details: details.into(),
            attempts: if status >= 500 { 4 } else { 1 },
        },
    )
}

fn to_application(
    id: String,
    spec: &ApplicationSpec,
    tokens: ApplicationCredentials,
) -> Application {
    Application {
        id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        version: spec.version.clone(),
        contact_emails: spec.contact_emails.clone(),
        site_urls: spec.site_urls.clone(),
        identifiers: spec.identifiers.clone(),
        auth_strategy_ids: spec.auth_strategy_ids.clone(),
        consuming_apis: Vec::new(),
        is_suspended: false,
        owner: Some("Administrator".into()),
        access_tokens: Some(tokens),
    }
}

impl FakeGateway {
    /// A gateway writing its calls into `journal`.
    pub fn new(journal: &Journal) -> FakeGateway {
        FakeGateway {
            state: Arc::default(),
            journal: journal.clone(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, GwState> {
        lock(&self.state)
    }

    /// The gateway's writes so far.
    pub fn writes(&self) -> Vec<String> {
        self.state().writes.clone()
    }

    /// Whether `key` is an API key the gateway accepts now.
    pub fn accepts_api_key(&self, key: &str) -> bool {
        self.state().applications.iter().any(|a| {
            a.access_tokens
                .as_ref()
                .and_then(|t| t.api_access_key.as_ref())
                .is_some_and(|k| k.expose() == key)
        })
    }

    /// Whether the gateway accepts OAuth client `id` with `secret` now.
    pub fn accepts_oauth_client(&self, id: &str, secret: &str) -> bool {
        self.state().applications.iter().any(|a| {
            a.access_tokens.as_ref().is_some_and(|t| {
                t.client_id.as_deref() == Some(id)
                    && t.client_secret
                        .as_ref()
                        .is_some_and(|s| s.expose() == secret)
            })
        })
    }

    /// The API key the gateway holds for application `id`.
    pub fn api_key_of(&self, id: &str) -> Option<String> {
        self.state()
            .applications
            .iter()
            .find(|a| a.id == id)
            .and_then(|a| a.access_tokens.as_ref())
            .and_then(|t| t.api_access_key.as_ref())
            .map(|k| k.expose().to_string())
    }

    /// Registers an application directly (as if created earlier); returns its id.
    pub fn seed_application(&self, name: &str, description: &str) -> String {
        let mut s = self.state();
        s.next_id += 1;
        let n = s.next_id;
        let spec = ApplicationSpec {
            name: name.into(),
            description: Some(description.into()),
            ..ApplicationSpec::default()
        };
        let tokens = ApplicationCredentials {
            api_access_key: Some(SecretString::new(format!("key-{n}"))),
            ..ApplicationCredentials::default()
        };
        let id = format!("app-{n}");
        s.applications
            .push(to_application(id.clone(), &spec, tokens));
        id
    }

    /// Subscribes application `app` to API `api` directly.
    pub fn seed_association(&self, app: &str, api: &str) {
        self.state()
            .associations
            .entry(app.to_string())
            .or_default()
            .insert(api.to_string());
    }

    /// Whether application `app` is subscribed to API `api`.
    pub fn is_associated(&self, app: &str, api: &str) -> bool {
        self.state()
            .associations
            .get(app)
            .is_some_and(|ids| ids.contains(api))
    }

    fn call(&self, op: &'static str, args: &str) -> Result<(), GatewayError> {
        self.journal.push(format!("gw:{op} {args}"));
        let s = self.state();
        if s.down {
            return Err(status_error(op, 503, "Service Unavailable"));
        }
        if let Some(status) = s.fail.get(op) {
            return Err(status_error(op, *status, "injected failure"));
        }
        Ok(())
    }

    fn not_found(op: &'static str, id: &str) -> GatewayError {
        status_error(op, 404, &format!("application {id} not found"))
    }

    /// A call these controllers should never make: recorded as a write so tests see it.
    fn unexpected(&self, op: &'static str) -> GatewayError {
        self.journal.push(format!("gw:UNEXPECTED {op}"));
        self.state().writes.push(format!("UNEXPECTED {op}"));
        gw_error(op, GatewayErrorKind::Unsupported("not faked".into()))
    }
}

#[async_trait]
impl GatewayApi for FakeGateway {
    fn environment(&self) -> &str {
        "dev"
    }
    fn supports_openapi_31(&self) -> bool {
        false
    }
    async fn create_api(&self, _: &ApiDocument) -> Result<GwApi, GatewayError> {
        Err(self.unexpected("create_api"))
    }
    async fn update_api(&self, _: &str, _: &ApiDocument) -> Result<GwApi, GatewayError> {
        Err(self.unexpected("update_api"))
    }
    async fn get_api(&self, _: &str) -> Result<GwApi, GatewayError> {
        Err(self.unexpected("get_api"))
    }
    async fn list_apis(&self) -> Result<Vec<GwApi>, GatewayError> {
        Err(self.unexpected("list_apis"))
    }
    async fn find_api(&self, _: &str, _: &str) -> Result<Option<GwApi>, GatewayError> {
        Err(self.unexpected("find_api"))
    }
    async fn delete_api(&self, _: &str, _: bool) -> Result<Deleted, GatewayError> {
        Err(self.unexpected("delete_api"))
    }
    async fn activate_api(&self, _: &str) -> Result<Change, GatewayError> {
        Err(self.unexpected("activate_api"))
    }
    async fn deactivate_api(&self, _: &str) -> Result<Change, GatewayError> {
        Err(self.unexpected("deactivate_api"))
    }

    async fn create_application(
        &self,
        spec: &ApplicationSpec,
    ) -> Result<Application, GatewayError> {
        self.call("create_application", &spec.name)?;
        let mut s = self.state();
        s.next_id += 1;
        let n = s.next_id;
        let id = format!("app-{n}");
        let tokens = ApplicationCredentials {
            api_access_key: Some(SecretString::new(format!("key-{n}"))),
            ..ApplicationCredentials::default()
        };
        let app = to_application(id.clone(), spec, tokens);
        s.applications.push(app.clone());
        s.writes.push(format!("create_application {}", spec.name));
        Ok(app)
    }

    async fn update_application(
        &self,
        id: &str,
        spec: &ApplicationSpec,
    ) -> Result<Application, GatewayError> {
        self.call("update_application", id)?;
        let mut s = self.state();
        let Some(app) = s.applications.iter_mut().find(|a| a.id == id) else {
            return Err(Self::not_found("update_application", id));
        };
        let tokens = app.access_tokens.clone().unwrap_or_default();
        *app = to_application(id.to_string(), spec, tokens);
        let mut answer = app.clone();
        // The answer of a PUT does not carry the tokens: the controller keeps the ones it read.
        answer.access_tokens = None;
        s.writes.push(format!("update_application {id}"));
        Ok(answer)
    }

    async fn get_application(&self, id: &str) -> Result<Application, GatewayError> {
        self.call("get_application", id)?;
        self.state()
            .applications
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| Self::not_found("get_application", id))
    }

    async fn list_applications(&self) -> Result<Vec<Application>, GatewayError> {
        self.call("list_applications", "")?;
        Ok(self.state().applications.clone())
    }

    async fn find_application(&self, name: &str) -> Result<Option<Application>, GatewayError> {
        self.call("find_application", name)?;
        Ok(self
            .state()
            .applications
            .iter()
            .find(|a| a.name == name)
            .cloned())
    }

    async fn delete_application(&self, id: &str) -> Result<Deleted, GatewayError> {
        self.call("delete_application", id)?;
        let mut s = self.state();
        let before = s.applications.len();
        s.applications.retain(|a| a.id != id);
        if s.applications.len() == before {
            // The real client turns a 404 into `AlreadyAbsent`; answering the raw 404 also
            // checks the controller's own handling of it.
            return Err(Self::not_found("delete_application", id));
        }
        s.associations.remove(id);
        s.writes.push(format!("delete_application {id}"));
        Ok(Deleted::Deleted)
    }

    async fn regenerate_credentials(
        &self,
        application_id: &str,
        kind: CredentialKind,
    ) -> Result<ApplicationCredentials, GatewayError> {
        self.call("regenerate_credentials", application_id)?;
        let mut s = self.state();
        s.next_id += 1;
        let n = s.next_id;
        let Some(app) = s.applications.iter_mut().find(|a| a.id == application_id) else {
            return Err(Self::not_found("regenerate_credentials", application_id));
        };
        let tokens = app.access_tokens.get_or_insert_with(Default::default);
        match kind {
            CredentialKind::ApiKey => {
                tokens.api_access_key = Some(SecretString::new(format!("key-{n}")));
            }
            CredentialKind::OAuth => {
                tokens.client_id = Some(format!("client-{n}"));
                tokens.client_secret = Some(SecretString::new(format!("secret-{n}")));
            }
        }
        let answer = tokens.clone();
        s.writes.push(format!(
            "regenerate_credentials {application_id} {}",
            kind.gateway_type()
        ));
        Ok(answer)
    }

    async fn application_apis(&self, application_id: &str) -> Result<Vec<String>, GatewayError> {
        self.call("application_apis", application_id)?;
        let s = self.state();
        if !s.applications.iter().any(|a| a.id == application_id) {
            return Err(Self::not_found("application_apis", application_id));
        }
        Ok(s.associations
            .get(application_id)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn set_application_apis(
        &self,
        application_id: &str,
        api_ids: &[String],
    ) -> Result<Change, GatewayError> {
        self.call("set_application_apis", application_id)?;
        let mut s = self.state();
        let wanted: BTreeSet<String> = api_ids.iter().cloned().collect();
        let ids = s
            .associations
            .entry(application_id.to_string())
            .or_default();
        if *ids == wanted {
            return Ok(Change::Unchanged);
        }
        *ids = wanted;
        s.writes
            .push(format!("set_application_apis {application_id}"));
        Ok(Change::Changed)
    }

    async fn associate_api(
        &self,
        application_id: &str,
        api_id: &str,
    ) -> Result<Change, GatewayError> {
        self.call("associate_api", &format!("{application_id} {api_id}"))?;
        let mut s = self.state();
        if !s.applications.iter().any(|a| a.id == application_id) {
            return Err(Self::not_found("associate_api", application_id));
        }
        let ids = s
            .associations
            .entry(application_id.to_string())
            .or_default();
        if !ids.insert(api_id.to_string()) {
            return Ok(Change::Unchanged);
        }
        s.writes
            .push(format!("associate_api {application_id} {api_id}"));
        Ok(Change::Changed)
    }

    async fn dissociate_api(
        &self,
        application_id: &str,
        api_id: &str,
    ) -> Result<Change, GatewayError> {
        self.call("dissociate_api", &format!("{application_id} {api_id}"))?;
        let mut s = self.state();
        if !s.applications.iter().any(|a| a.id == application_id) {
            return Err(Self::not_found("dissociate_api", application_id));
        }
        let sticky = s.sticky_associations;
        let present = s
            .associations
            .get(application_id)
            .is_some_and(|ids| ids.contains(api_id));
        if !present {
            return Ok(Change::Unchanged);
        }
        if !sticky && let Some(ids) = s.associations.get_mut(application_id) {
            ids.remove(api_id);
        }
        s.writes
            .push(format!("dissociate_api {application_id} {api_id}"));
        Ok(Change::Changed)
    }

    async fn create_alias(&self, _: &AliasSpec) -> Result<Alias, GatewayError> {
        Err(self.unexpected("create_alias"))
    }
    async fn update_alias(&self, _: &str, _: &AliasSpec) -> Result<Alias, GatewayError> {
        Err(self.unexpected("update_alias"))
    }
    async fn get_alias(&self, _: &str) -> Result<Alias, GatewayError> {
        Err(self.unexpected("get_alias"))
    }
    async fn list_aliases(&self) -> Result<Vec<Alias>, GatewayError> {
        Err(self.unexpected("list_aliases"))
    }
    async fn find_alias(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<Option<Alias>, GatewayError> {
        Err(self.unexpected("find_alias"))
    }
    async fn delete_alias(&self, _: &str) -> Result<Deleted, GatewayError> {
        Err(self.unexpected("delete_alias"))
    }
}

// ---------------------------------------------------------------------------------------
// The fake Kubernetes API server.
// ---------------------------------------------------------------------------------------

/// One request the controller made to the Kubernetes API.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

impl Call {
    /// Anything but a read.
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
    /// A Kubernetes Event.
    pub fn is_event(&self) -> bool {
        self.path.contains("/events")
    }
    /// `METHOD path`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Objects by path and the calls seen.
#[derive(Default)]
pub struct KubeState {
    pub objects: BTreeMap<String, Value>,
    pub calls: Vec<Call>,
    /// The last server-side apply body per object (what the operator's field manager owns).
    pub applied: BTreeMap<String, Value>,
    resource_version: u64,
}

/// A Kubernetes API server keeping objects in memory.
#[derive(Default, Clone)]
pub struct FakeKube {
    state: Arc<Mutex<KubeState>>,
    journal: Journal,
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn not_found_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": "NotFound", "code": 404, "message": "not found"})
}

fn conflict_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": "Conflict", "code": 409,
           "message": "the object has been modified; please apply your changes to the latest version and try again"})
}

fn invalid_status(message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": "Invalid", "code": 422, "message": message})
}

/// Applies the JSON patch operations the finalizer helper sends (test, add, remove).
fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    for op in ops.as_array().ok_or("a JSON patch is an array")? {
        let path = op["path"].as_str().ok_or("op without path")?;
        let (parent, last) = path.rsplit_once('/').ok_or("bad path")?;
        match op["op"].as_str() {
            Some("test") => {
                let actual = target.pointer(path).cloned().unwrap_or(Value::Null);
                if actual != op["value"] {
                    return Err(format!(
                        "test failed at {path}: {actual} != {}",
                        op["value"]
                    ));
                }
            }
            Some("add") => {
                let container = target.pointer_mut(parent).ok_or("no parent")?;
                match container {
                    Value::Object(m) => {
                        m.insert(last.to_string(), op["value"].clone());
                    }
                    Value::Array(a) if last == "-" => a.push(op["value"].clone()),
                    Value::Array(a) => {
                        let i: usize = last.parse().map_err(|_| "bad index")?;
                        if i > a.len() {
                            return Err("index out of range".into());
                        }
                        a.insert(i, op["value"].clone());
                    }
                    _ => return Err("cannot add here".into()),
                }
            }
            Some("remove") => {
                let container = target.pointer_mut(parent).ok_or("no parent")?;
                match container {
                    Value::Object(m) => {
                        m.remove(last).ok_or("nothing to remove")?;
                    }
                    Value::Array(a) => {
                        let i: usize = last.parse().map_err(|_| "bad index")?;
                        if i >= a.len() {
                            return Err("index out of range".into());
                        }
                        a.remove(i);
                    }
                    _ => return Err("cannot remove here".into()),
                }
            }
            other => return Err(format!("unsupported op {other:?}")),
        }
    }
    Ok(())
}

impl FakeKube {
    /// A server writing its calls into `journal`.
    pub fn new(journal: &Journal) -> FakeKube {
        FakeKube {
            state: Arc::default(),
            journal: journal.clone(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, KubeState> {
        lock(&self.state)
    }

    /// Stores `object` at `path`.
    pub fn put(&self, path: &str, object: Value) {
        self.state().objects.insert(path.to_string(), object);
    }

    /// The object stored at `path`.
    pub fn object(&self, path: &str) -> Option<Value> {
        self.state().objects.get(path).cloned()
    }

    /// The calls seen so far, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state().calls)
    }

    /// Answers one request: what a real API server would, for the calls these controllers
    /// make. Anything else is a 404 (and recorded, so the test sees it).
    fn answer(&self, call: &Call) -> (u16, Value) {
        let mut s = self.state();
        s.resource_version += 1;
        let rv = s.resource_version.to_string();
        let path = call.path.as_str();
        match call.method.as_str() {
            "GET" => match s.objects.get(path) {
                Some(o) => (200, o.clone()),
                None => {
                    let prefix = format!("{path}/");
                    let items: Vec<Value> = s
                        .objects
                        .iter()
                        .filter(|(p, _)| {
                            p.strip_prefix(&prefix)
                                .is_some_and(|rest| !rest.contains('/'))
                        })
                        .map(|(_, o)| o.clone())
                        .collect();
                    if items.is_empty() {
                        (404, not_found_status())
                    } else {
                        (
                            200,
                            json!({"apiVersion": "v1", "kind": "List",
                                   "metadata": {"resourceVersion": rv}, "items": items}),
                        )
                    }
                }
            },
            "POST" if call.is_event() => {
                let mut event = call.body.clone();
                event["metadata"]["resourceVersion"] = json!(rv);
                (201, event)
            }
            "PATCH" => {
                let (base, is_status) = match path.strip_suffix("/status") {
                    Some(base) => (base.to_string(), true),
                    None => (path.to_string(), false),
                };
                let apply = call.content_type.starts_with("application/apply-patch");
                let existing = s.objects.get(&base).cloned();
                let mut object = match (existing, apply && !is_status) {
                    (Some(o), _) => o,
                    (None, true) => json!({}),
                    (None, false) => return (404, not_found_status()),
                };
                if is_status && apply {
                    object["status"] = call.body["status"].clone();
                } else if is_status {
                    // A merge patch carrying a resourceVersion is conditioned on it.
                    let expected = call.body.pointer("/metadata/resourceVersion");
                    if expected
                        .is_some_and(|e| Some(e) != object.pointer("/metadata/resourceVersion"))
                    {
                        return (409, conflict_status());
                    }
                    if let Some(status) = call.body.get("status") {
                        let mut patched = object["status"].take();
                        merge_patch(&mut patched, status);
                        object["status"] = patched;
                    }
                } else if apply {
                    // Server-side apply with force: the applied fields replace the stored ones.
                    // `data` is a granular map: keys this manager never applied (another
                    // manager's) stay; keys it applied before and no longer applies go.
                    let uid = object["metadata"]["uid"].clone();
                    let previous = s.applied.get(&base).cloned().unwrap_or(Value::Null);
                    let mut applied = call.body.clone();
                    if let Some(old) = object["data"].as_object() {
                        for (k, v) in old {
                            let ours = previous["data"].get(k).is_some();
                            if !ours && applied["data"].get(k).is_none() {
                                applied["data"][k] = v.clone();
                            }
                        }
                    }
                    s.applied.insert(base.clone(), call.body.clone());
                    object = applied;
                    object["metadata"]["uid"] = if uid.is_null() {
                        json!(format!("uid-{rv}"))
                    } else {
                        uid
                    };
                } else if call.content_type.starts_with("application/json-patch") {
                    if let Err(e) = json_patch(&mut object, &call.body) {
                        return (422, invalid_status(&e));
                    }
                } else {
                    merge_patch(&mut object, &call.body);
                }
                object["metadata"]["resourceVersion"] = json!(rv);
                s.objects.insert(base, object.clone());
                (200, object)
            }
            "DELETE" => match s.objects.remove(path) {
                Some(o) => (200, o),
                None => (404, not_found_status()),
            },
            _ => (404, not_found_status()),
        }
    }

    /// Answers requests until every client is dropped (or none came for 10 s).
    fn serve(&self, mut handle: Handle) -> tokio::task::JoinHandle<()> {
        let kube = self.clone();
        tokio::spawn(async move {
            loop {
                let next =
                    tokio::time::timeout(Duration::from_secs(10), handle.next_request()).await;
                let Ok(Some((request, send))) = next else {
                    break;
                };
                let method = request.method().to_string();
                let path = request.uri().path().to_string();
                let query = request.uri().query().unwrap_or_default().to_string();
                let content_type = request
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let bytes = request
                    .into_body()
                    .collect_bytes()
                    .await
                    .unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let call = Call {
                    method,
                    path,
                    query,
                    content_type,
                    body,
                };
                let (code, answer) = kube.answer(&call);
                kube.journal.push(format!("k8s:{}", call.line()));
                kube.state().calls.push(call);
                let response = Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
                    .unwrap_or_else(|_| Response::new(Body::empty()));
                send.send_response(response);
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// The controllers' context.
// ---------------------------------------------------------------------------------------

/// A context whose Kubernetes client talks to `kube` and whose dev gateway is `gateway`
/// (no gateway at all when `None`); the handle ends once every client clone is dropped.
pub fn context(
    kube: &FakeKube,
    gateway: Option<&FakeGateway>,
) -> (Arc<Context>, tokio::task::JoinHandle<()>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let server = kube.serve(handle);
    let gateways = gateway
        .map(|g| {
            vec![(
                crds::Environment::Dev,
                "http://gw-dev".to_string(),
                Arc::new(g.clone()) as Arc<dyn GatewayApi>,
            )]
        })
        .unwrap_or_default();
    let settings = Controllers {
        resync_interval: RESYNC,
        ..Controllers::default()
    };
    let ctx = Arc::new(Context::new(
        client,
        "test".into(),
        Arc::new(Metrics::default()),
        Arc::new(Health::new(1, false)),
        &settings,
        Arc::new(Clients::fixed(gateways, None)),
    ));
    (ctx, server)
}

/// Waits for the fake API server to see every client go (Events are published in the
/// background, after the reconcile returned).
pub async fn drain(server: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the API server stopped in time")
        .expect("the API server task");
}

// ---------------------------------------------------------------------------------------
// Assertion helpers.
// ---------------------------------------------------------------------------------------

/// The mandatory tags every accepted object carries.
pub fn tagged_metadata(name: &str, uid: &str) -> Value {
    json!({
        "name": name, "namespace": NS, "uid": uid, "generation": 1, "resourceVersion": "1",
        "finalizers": [crds::FINALIZER],
        "labels": {
            "apim.cab-i.com/environment": "dev", "apim.cab-i.com/project": "payments",
            "apim.cab-i.com/cost-center": "cc-1", "apim.cab-i.com/ttl": "7d",
            "apim.cab-i.com/auto-teardown": "true", "apim.cab-i.com/data-class": "internal"
        },
        "annotations": {"apim.cab-i.com/owner": "team@example.com"}
    })
}

/// The path of a namespaced object of this project's API group.
pub fn crd_path(plural: &str, name: &str) -> String {
    format!("/apis/apim.cab-i.com/v1alpha1/namespaces/{NS}/{plural}/{name}")
}

/// The path of a Secret.
pub fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/secrets/{name}")
}

/// The Kubernetes writes but Events, as `METHOD path` (Events are published in the
/// background, so their place among the other calls is not fixed).
pub fn writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.is_write() && !c.is_event())
        .map(Call::line)
        .collect()
}

/// The status patches.
pub fn status_patches(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.ends_with("/status"))
        .collect()
}

/// The reasons of the Events published, in order.
pub fn event_reasons(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.is_event())
        .filter_map(|c| c.body["reason"].as_str().map(str::to_owned))
        .collect()
}

/// The condition of type `type_` in `status`, or `null`.
pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// `(status, reason)` of a condition.
pub fn state_of(status: &Value, type_: &str) -> (String, String) {
    let c = condition(status, type_);
    (
        c["status"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    )
}

/// The decoded value of `key` in a Secret's `data`.
pub fn secret_value(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret["data"][key].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("Secret data is base64");
    Some(String::from_utf8(bytes).expect("Secret data is UTF-8"))
}

/// The sorted keys of a Secret's `data`.
pub fn secret_keys(secret: &Value) -> Vec<String> {
    secret["data"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The delay of a requeue (`None` for `await_change`), read from `Action`'s `Debug`, the
/// only way `kube` shows it.
pub fn requeue_after(action: &Action) -> Option<Duration> {
    let text = format!("{action:?}");
    let inner = text
        .split("Some(")
        .nth(1)?
        .split(')')
        .next()
        .expect("a closing parenthesis");
    let units: [(&str, f64); 4] = [("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)];
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| inner.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or_else(|| panic!("an unknown duration in {text}"));
    let value: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("a number in {text}"));
    Some(Duration::from_secs_f64(value * scale))
}
