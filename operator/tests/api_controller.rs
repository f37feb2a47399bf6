//! The Api controller's reconcile against a mocked Kubernetes API (tower-test) and a fake
//! gateway: create, no-op (zero writes anywhere), drift corrected and reported, gateway down,
//! delete (finalizer) and delete while the gateway is down. Every scenario has a timeout, so
//! a missing or extra call fails the test instead of hanging it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apim_operator::config::Controllers;
use apim_operator::controllers::Context;
use apim_operator::controllers::api::{self, ApiContext};
use apim_operator::controllers::clients::Clients;
use apim_operator::events::{Emitter, FakeSink, TopicNames};
use apim_operator::gateway::{
    Alias, AliasSpec, Api as GwApi, ApiDocument, Application, ApplicationCredentials,
    ApplicationSpec, Change, CredentialKind, Deleted, GatewayApi, GatewayError, GatewayErrorKind,
};
use apim_operator::metrics::Metrics;
use apim_operator::runtime::health::Health;
use async_trait::async_trait;
use http::{Request, Response};
use kube::api::DynamicObject;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// A fake gateway: APIs and aliases in memory, writes counted, switchable "down".
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct FakeState {
    apis: Vec<GwApi>,
    aliases: Vec<Alias>,
    writes: usize,
    down: bool,
    next_id: u32,
}

#[derive(Default, Clone)]
struct FakeGateway(Arc<Mutex<FakeState>>);

impl FakeGateway {
    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn err(&self, op: &'static str, kind: GatewayErrorKind) -> GatewayError {
        GatewayError {
            operation: op.into(),
            op,
            environment: Arc::from("dev"),
            base_url: Arc::from("http://fake"),
            kind,
        }
    }
    fn check(&self, op: &'static str) -> Result<(), GatewayError> {
        if self.state().down {
            return Err(self.err(
                op,
                GatewayErrorKind::Status {
                    status: 503,
                    details: "down".into(),
                    attempts: 4,
                },
            ));
        }
        Ok(())
    }
    fn not_found(&self, op: &'static str) -> GatewayError {
        self.err(
            op,
            GatewayErrorKind::Status {
                status: 404,
                details: "not found".into(),
                attempts: 1,
            },
        )
    }
    fn unsupported(&self, op: &'static str) -> GatewayError {
        self.err(op, GatewayErrorKind::Unsupported("not faked".into()))
    }
    fn write(&self) {
        self.state().writes += 1;
    }
}

fn to_api(id: String, doc: &ApiDocument) -> GwApi {
    GwApi {
        id,
        api_name: doc.name.clone(),
        api_version: doc.version.clone(),
        api_description: doc.description.clone(),
        is_active: false,
        api_type: Some("REST".into()),
        system_version: None,
        maturity_state: None,
        owner: None,
        creation_date: None,
        native_endpoint: vec![],
        api_definition: Some(doc.definition.clone()),
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
    async fn create_api(&self, document: &ApiDocument) -> Result<GwApi, GatewayError> {
        self.check("create_api")?;
        self.write();
        let mut s = self.state();
        s.next_id += 1;
        let api = to_api(format!("api-{}", s.next_id), document);
        s.apis.push(api.clone());
        Ok(api)
    }
    async fn update_api(&self, id: &str, document: &ApiDocument) -> Result<GwApi, GatewayError> {
        self.check("update_api")?;
        self.write();
        let mut s = self.state();
        let Some(api) = s.apis.iter_mut().find(|a| a.id == id) else {
            return Err(self.not_found("update_api"));
        };
        let active = api.is_active;
        *api = to_api(id.to_string(), document);
        api.is_active = active;
        Ok(api.clone())
    }
    async fn get_api(&self, id: &str) -> Result<GwApi, GatewayError> {
        self.check("get_api")?;
        self.state()
            .apis
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| self.not_found("get_api"))
    }
    async fn list_apis(&self) -> Result<Vec<GwApi>, GatewayError> {
        self.check("list_apis")?;
        Ok(self.state().apis.clone())
    }
    async fn find_api(&self, name: &str, version: &str) -> Result<Option<GwApi>, GatewayError> {
        self.check("find_api")?;
        Ok(self
            .state()
            .apis
            .iter()
            .find(|a| a.api_name == name && a.api_version == version)
            .cloned())
    }
    async fn delete_api(&self, id: &str, _force: bool) -> Result<Deleted, GatewayError> {
        self.check("delete_api")?;
        let mut s = self.state();
        let before = s.apis.len();
        s.apis.retain(|a| a.id != id);
        if s.apis.len() == before {
            return Ok(Deleted::AlreadyAbsent);
        }
        s.writes += 1;
        Ok(Deleted::Deleted)
    }
    async fn activate_api(&self, id: &str) -> Result<Change, GatewayError> {
        self.set_active(id, true)
    }
    async fn deactivate_api(&self, id: &str) -> Result<Change, GatewayError> {
        self.set_active(id, false)
    }
    async fn create_application(&self, _: &ApplicationSpec) -> Result<Application, GatewayError> {
        Err(self.unsupported("create_application"))
    }
    async fn update_application(
        &self,
        _: &str,
        _: &ApplicationSpec,
    ) -> Result<Application, GatewayError> {
        Err(self.unsupported("update_application"))
    }
    async fn get_application(&self, _: &str) -> Result<Application, GatewayError> {
        Err(self.unsupported("get_application"))
    }
    async fn list_applications(&self) -> Result<Vec<Application>, GatewayError> {
        Err(self.unsupported("list_applications"))
    }
    async fn find_application(&self, _: &str) -> Result<Option<Application>, GatewayError> {
        Err(self.unsupported("find_application"))
    }
    async fn delete_application(&self, _: &str) -> Result<Deleted, GatewayError> {
        Err(self.unsupported("delete_application"))
    }
    async fn regenerate_credentials(
        &self,
        _: &str,
        _: CredentialKind,
    ) -> Result<ApplicationCredentials, GatewayError> {
        Err(self.unsupported("regenerate_credentials"))
    }
    async fn application_apis(&self, _: &str) -> Result<Vec<String>, GatewayError> {
        Err(self.unsupported("application_apis"))
    }
    async fn set_application_apis(&self, _: &str, _: &[String]) -> Result<Change, GatewayError> {
        Err(self.unsupported("set_application_apis"))
    }
    async fn associate_api(&self, _: &str, _: &str) -> Result<Change, GatewayError> {
        Err(self.unsupported("associate_api"))
    }
    async fn dissociate_api(&self, _: &str, _: &str) -> Result<Change, GatewayError> {
        Err(self.unsupported("dissociate_api"))
    }
    async fn create_alias(&self, alias: &AliasSpec) -> Result<Alias, GatewayError> {
        self.check("create_alias")?;
        self.write();
        let mut s = self.state();
        s.next_id += 1;
        let id = format!("alias-{}", s.next_id);
        let body = alias.to_body(Some(&id));
        let created: Alias = serde_json::from_value(body)
            .map_err(|e| self.err("create_alias", GatewayErrorKind::Decode(e.to_string())))?;
        s.aliases.push(created.clone());
        Ok(created)
    }
    async fn update_alias(&self, id: &str, alias: &AliasSpec) -> Result<Alias, GatewayError> {
        self.check("update_alias")?;
        self.write();
        let mut s = self.state();
        let updated: Alias = serde_json::from_value(alias.to_body(Some(id)))
            .map_err(|e| self.err("update_alias", GatewayErrorKind::Decode(e.to_string())))?;
        match s.aliases.iter_mut().find(|a| a.id == id) {
            Some(a) => *a = updated.clone(),
            None => return Err(self.not_found("update_alias")),
        }
        Ok(updated)
    }
    async fn get_alias(&self, id: &str) -> Result<Alias, GatewayError> {
        self.check("get_alias")?;
        self.state()
            .aliases
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| self.not_found("get_alias"))
    }
    async fn list_aliases(&self) -> Result<Vec<Alias>, GatewayError> {
        self.check("list_aliases")?;
        Ok(self.state().aliases.clone())
    }
    async fn find_alias(
        &self,
        name: &str,
        alias_type: &str,
        stage: Option<&str>,
    ) -> Result<Option<Alias>, GatewayError> {
        self.check("find_alias")?;
        Ok(self
            .state()
            .aliases
            .iter()
            .find(|a| a.matches(name, alias_type, stage))
            .cloned())
    }
    async fn delete_alias(&self, id: &str) -> Result<Deleted, GatewayError> {
        self.check("delete_alias")?;
        let mut s = self.state();
        let before = s.aliases.len();
        s.aliases.retain(|a| a.id != id);
        if s.aliases.len() == before {
            return Ok(Deleted::AlreadyAbsent);
        }
        s.writes += 1;
        Ok(Deleted::Deleted)
    }
}

impl FakeGateway {
    fn set_active(&self, id: &str, active: bool) -> Result<Change, GatewayError> {
        self.check("set_active")?;
        let mut s = self.state();
        let Some(api) = s.apis.iter_mut().find(|a| a.id == id) else {
            return Err(self.not_found("set_active"));
        };
        if api.is_active == active {
            return Ok(Change::Unchanged);
        }
        api.is_active = active;
        s.writes += 1;
        Ok(Change::Changed)
    }
}

// ---------------------------------------------------------------------------------------
// A mocked API server: records every request, answers it plausibly.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: Value,
    /// For a status patch: the whole status as stored after it.
    status: Value,
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Answers every request until the client is dropped; returns what it saw. Times out.
fn serve(mut handle: Handle, object: Value) -> tokio::task::JoinHandle<Vec<Call>> {
    tokio::spawn(async move {
        let mut calls = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), handle.next_request()).await;
            let Ok(Some((request, send))) = next else {
                break;
            };
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let bytes = request
                .into_body()
                .collect_bytes()
                .await
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let mut status = Value::Null;
            let (code, answer) = if path.contains("/events") {
                (201, body.clone())
            } else if method == "PATCH" && path.ends_with("/status") {
                // A merge patch of the stored status.
                let mut o = object.clone();
                status = o["status"].take();
                apim_operator::controllers::merge_patch::apply(&mut status, &body["status"]);
                o["status"] = status.clone();
                (200, o)
            } else if method == "PATCH" {
                // The finalizer's JSON patch: answer the object without finalizers.
                let mut o = object.clone();
                o["metadata"]["finalizers"] = json!([]);
                (200, o)
            } else {
                (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                )
            };
            calls.push(Call {
                method,
                path,
                body,
                status,
            });
            let response = Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
                .unwrap_or_else(|_| Response::new(Body::empty()));
            send.send_response(response);
        }
        calls
    })
}

const DOC: &str = "openapi: 3.1.0\ninfo: {title: Payments, version: 1.0.0}\npaths:\n  /p:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {type: [string, 'null']}\n";

fn api_object(drift_policy: &str) -> Value {
    json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": "Api",
        "metadata": {
            "name": "payments", "namespace": "tenant", "uid": "u-1", "generation": 1, "resourceVersion": "1",
            "finalizers": [crds::FINALIZER],
            "labels": {
                "apim.cab-i.com/environment": "dev", "apim.cab-i.com/project": "payments",
                "apim.cab-i.com/cost-center": "cc-1", "apim.cab-i.com/ttl": "7d",
                "apim.cab-i.com/auto-teardown": "true", "apim.cab-i.com/data-class": "internal"
            },
            "annotations": {"apim.cab-i.com/owner": "team@example.com"}
        },
        "spec": {
            "displayName": "Payments", "version": "1.0.0", "backendUrl": "https://backend.example/v1",
            "definition": {"inline": DOC}, "stages": ["dev"], "driftPolicy": drift_policy,
            "aliases": [{"name": "payments-backend", "values": {"dev": "http://dev-backend:8080"}}]
        }
    })
}

const RESYNC: Duration = Duration::from_secs(600);

/// Runs one reconcile of `object` with `gateway` for dev; returns the result and the calls.
async fn run(object: Value, gateway: &FakeGateway) -> (Result<Action, api::Error>, Vec<Call>) {
    run_with(object, gateway, None).await
}

/// [`run`], publishing events to `sink` when given.
async fn run_with(
    object: Value,
    gateway: &FakeGateway,
    sink: Option<Arc<FakeSink>>,
) -> (Result<Action, api::Error>, Vec<Call>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let verifier = serve(handle, object.clone());
    let clients = Clients::fixed(
        vec![(
            crds::Environment::Dev,
            "http://gw-dev".into(),
            Arc::new(gateway.clone()) as Arc<dyn GatewayApi>,
        )],
        None,
    );
    let settings = Controllers {
        resync_interval: RESYNC,
        ..Controllers::default()
    };
    let mut ctx = Context::new(
        client,
        "test".into(),
        Arc::new(Metrics::default()),
        Arc::new(Health::new(1, false)),
        &settings,
        Arc::new(clients),
    );
    if let Some(sink) = sink {
        ctx = ctx.with_events(Arc::new(Emitter::new(
            sink,
            TopicNames::default(),
            "apim-operator/test".into(),
        )));
    }
    let actx = Arc::new(ApiContext::new(Arc::new(ctx)));
    let obj: DynamicObject = serde_json::from_value(object).expect("object");
    let result = tokio::time::timeout(Duration::from_secs(20), api::reconcile(Arc::new(obj), actx))
        .await
        .expect("the reconcile finished in time");
    let calls = tokio::time::timeout(Duration::from_secs(15), verifier)
        .await
        .expect("verifier in time")
        .expect("verifier");
    (result, calls)
}

fn status_patches(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.ends_with("/status"))
        .collect()
}

fn event_reasons(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.path.contains("/events"))
        .filter_map(|c| c.body["reason"].as_str().map(str::to_owned))
        .collect()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// Creates the Api on an empty gateway; returns the object with the status as stored.
async fn created(gateway: &FakeGateway, drift_policy: &str) -> Value {
    let (result, calls) = run(api_object(drift_policy), gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "one status write: {calls:?}");
    let mut object = api_object(drift_policy);
    object["status"] = patches[0].status.clone();
    object
}

#[tokio::test]
async fn create_deploys_and_writes_status_once() {
    let gateway = FakeGateway::default();
    let (result, calls) = run(api_object("correct"), &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    {
        let s = gateway.state();
        assert_eq!(s.apis.len(), 1);
        let api = &s.apis[0];
        assert!(api.is_active);
        let def = api.api_definition.as_ref().expect("definition");
        assert_eq!(
            def["openapi"], "3.0.3",
            "3.1 converted for a gateway without 3.1"
        );
        assert_eq!(def["servers"][0]["url"], "https://backend.example/v1");
        assert_eq!(s.aliases.len(), 1);
        assert_eq!(
            s.aliases[0].end_point_uri.as_deref(),
            Some("http://dev-backend:8080")
        );
        assert_eq!(s.aliases[0].stage.as_deref(), Some("dev"));
        assert_eq!(s.writes, 3, "create, activate, alias");
    }
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "{calls:?}");
    let status = &patches[0].status;
    let revision = status["revision"].as_str().expect("revision");
    assert_eq!(status["environments"]["dev"]["deployedRevision"], revision);
    assert_eq!(status["environments"]["dev"]["gatewayApiId"], "api-1");
    assert_eq!(
        status["environments"]["dev"]["endpoint"],
        "http://gw-dev/gateway/Payments/1.0.0"
    );
    assert_eq!(
        status["environments"]["dev"]["lastDeployment"]["result"],
        "succeeded"
    );
    assert_eq!(status["readyStages"], "1/1");
    assert_eq!(status["conversion"]["sourceVersion"], "3.1.0");
    assert_eq!(status["observedGeneration"], 1);
    for (t, s) in [
        ("Accepted", "True"),
        ("Deployed", "True"),
        ("Ready", "True"),
        ("Degraded", "False"),
        ("Drifted", "False"),
    ] {
        assert_eq!(condition(status, t)["status"], s, "{t}: {status}");
    }
    // A merge patch conditioned on the resourceVersion the status was read at; the first
    // write carries the whole status.
    assert_eq!(patches[0].body["metadata"], json!({"resourceVersion": "1"}));
    assert_eq!(patches[0].body["status"], patches[0].status);
    // One Event for a direct deployment (its outcome); no separate "Accepted" for a new Api.
    assert_eq!(
        event_reasons(&calls),
        vec!["DeploymentSucceeded".to_string()]
    );
}

#[tokio::test]
async fn converged_costs_no_write_anywhere() {
    let gateway = FakeGateway::default();
    let object = created(&gateway, "correct").await;
    let writes = gateway.state().writes;
    let (result, calls) = run(object, &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(calls.is_empty(), "no Kubernetes call at all: {calls:?}");
    assert_eq!(gateway.state().writes, writes, "no gateway write");
}

#[tokio::test]
async fn drift_is_corrected() {
    let gateway = FakeGateway::default();
    let object = created(&gateway, "correct").await;
    {
        let mut s = gateway.state();
        s.apis[0].is_active = false;
        s.apis[0].api_definition = Some(
            json!({"openapi": "3.0.3", "info": {"title": "hand edit", "version": "1"}, "paths": {}}),
        );
    }
    let (result, calls) = run(object.clone(), &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    {
        let s = gateway.state();
        assert!(s.apis[0].is_active);
        assert_eq!(
            s.apis[0]
                .api_definition
                .as_ref()
                .map(|d| d["openapi"].clone()),
            Some(json!("3.0.3"))
        );
        assert_ne!(
            s.apis[0]
                .api_definition
                .as_ref()
                .map(|d| d["info"]["title"].clone()),
            Some(json!("hand edit"))
        );
    }
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "{calls:?}");
    let drifted = condition(&patches[0].status, "Drifted");
    assert_eq!(
        (drifted["status"].as_str(), drifted["reason"].as_str()),
        (Some("False"), Some("DriftCorrected"))
    );
    let message = drifted["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("dev: apiDefinition, isActive"),
        "{message}"
    );
    assert!(event_reasons(&calls).iter().any(|r| r == "DriftCorrected"));
    // Only what changed is sent: the conditions and the deployment record, not the revision,
    // the conversion report or the generation, which stayed.
    let sent = patches[0].body["status"]
        .as_object()
        .expect("a status patch");
    assert!(sent.contains_key("conditions"), "{sent:?}");
    for unchanged in [
        "revision",
        "conversion",
        "observedGeneration",
        "readyStages",
    ] {
        assert!(
            !sent.contains_key(unchanged),
            "{unchanged} was sent: {sent:?}"
        );
    }
    for (k, v) in sent {
        assert_ne!(Some(v), object["status"].get(k), "{k} sent unchanged");
    }
}

#[tokio::test]
async fn drift_is_only_reported_with_report_policy() {
    let gateway = FakeGateway::default();
    let object = created(&gateway, "report").await;
    gateway.state().apis[0].is_active = false;
    let writes = gateway.state().writes;
    let (result, calls) = run(object, &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(gateway.state().writes, writes, "report never writes");
    assert!(!gateway.state().apis[0].is_active);
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "{calls:?}");
    let status = &patches[0].status;
    let drifted = condition(status, "Drifted");
    assert_eq!(
        (drifted["status"].as_str(), drifted["reason"].as_str()),
        (Some("True"), Some("DriftDetected"))
    );
    assert!(
        drifted["message"]
            .as_str()
            .unwrap_or_default()
            .contains("isActive")
    );
    assert_eq!(condition(status, "Degraded")["status"], "True");
    assert!(event_reasons(&calls).iter().any(|r| r == "DriftDetected"));
}

#[tokio::test]
async fn gateway_down_is_reported_and_backs_off() {
    let gateway = FakeGateway::default();
    gateway.state().down = true;
    let (result, calls) = run(api_object("correct"), &gateway).await;
    let action = result.expect("a transient failure is a condition, not an error");
    assert_ne!(
        action,
        Action::requeue(RESYNC),
        "backs off instead of waiting a resync"
    );
    assert_ne!(action, Action::await_change());
    assert_eq!(gateway.state().writes, 0);
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "{calls:?}");
    let status = &patches[0].status;
    let ready = condition(status, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("GatewayError"))
    );
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "{ready}"
    );
    assert_eq!(condition(status, "Accepted")["status"], "True");
}

#[tokio::test]
async fn delete_removes_the_api_then_the_finalizer() {
    let gateway = FakeGateway::default();
    let mut object = created(&gateway, "correct").await;
    object["metadata"]["deletionTimestamp"] = json!("2026-11-25T08:00:00Z");
    let (result, calls) = run(object, &gateway).await;
    assert_eq!(result.expect("cleanup"), Action::await_change());
    assert!(
        gateway.state().apis.is_empty(),
        "the API is gone from the gateway"
    );
    assert!(gateway.state().aliases.is_empty(), "its alias too");
    let finalizer_patch = calls
        .iter()
        .find(|c| c.method == "PATCH" && !c.path.ends_with("/status"))
        .expect("finalizer removed");
    assert!(
        finalizer_patch.body.to_string().contains("finalizers"),
        "{:?}",
        finalizer_patch.body
    );
    assert!(event_reasons(&calls).iter().any(|r| r == "Deleted"));
    // Already gone (404) counts as done: the next cleanup also succeeds.
    let mut again = api_object("correct");
    again["metadata"]["deletionTimestamp"] = json!("2026-11-25T08:00:00Z");
    again["status"] = json!({"environments": {"dev": {"gatewayApiId": "api-1", "active": true}}});
    let (result, _) = run(again, &gateway).await;
    assert_eq!(
        result.expect("cleanup of an absent API"),
        Action::await_change()
    );
}

#[tokio::test]
async fn delete_keeps_the_finalizer_while_the_gateway_is_down() {
    let gateway = FakeGateway::default();
    let mut object = created(&gateway, "correct").await;
    object["metadata"]["deletionTimestamp"] = json!("2026-11-25T08:00:00Z");
    gateway.state().down = true;
    let (result, calls) = run(object, &gateway).await;
    let err = result.expect_err("cleanup fails while the gateway is down");
    assert_eq!(err.metric_label(), "cleanup_failed");
    assert!(err.to_string().contains("failed to"), "{err}");
    assert!(
        calls.iter().all(|c| c.method != "PATCH"),
        "the finalizer stays: {calls:?}"
    );
    assert_eq!(gateway.state().apis.len(), 1);
}

#[tokio::test]
async fn unaccepted_apis_are_not_deployed() {
    let gateway = FakeGateway::default();
    let mut object = api_object("correct");
    object["metadata"]["labels"] = json!({});
    object["metadata"]["finalizers"] = json!([]);
    let (result, calls) = run(object, &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(gateway.state().writes, 0);
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1);
    let status = &patches[0].status;
    assert_eq!(condition(status, "Accepted")["reason"], "TagViolation");
    assert_eq!(condition(status, "Ready")["status"], "False");
    assert_eq!(
        event_reasons(&calls),
        vec!["TagViolation".to_string()],
        "a refused object gets a Warning Event"
    );
}

#[tokio::test]
async fn a_stage_without_gateway_is_reported_and_converges() {
    let gateway = FakeGateway::default();
    let mut object = api_object("correct");
    object["spec"]["stages"] = json!(["dev", "staging"]);
    let (result, calls) = run(object.clone(), &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1);
    let status = patches[0].status.clone();
    let deployed = condition(&status, "Deployed");
    assert_eq!(
        (deployed["status"].as_str(), deployed["reason"].as_str()),
        (Some("False"), Some("GatewayNotConfigured"))
    );
    assert!(
        deployed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("staging")
    );
    assert_eq!(
        condition(&status, "Degraded")["status"],
        "True",
        "dev is deployed, staging is not"
    );
    assert_eq!(status["readyStages"], "1/2");
    object["status"] = status;
    let writes = gateway.state().writes;
    let (_, calls) = run(object, &gateway).await;
    assert!(calls.is_empty(), "converged: {calls:?}");
    assert_eq!(gateway.state().writes, writes);
}

#[tokio::test]
async fn the_queued_driver_is_reported_as_not_supported() {
    let gateway = FakeGateway::default();
    let mut object = api_object("correct");
    object["spec"]["driver"] = json!("queued");
    let (result, calls) = run(object, &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(gateway.state().writes, 0);
    let patches = status_patches(&calls);
    let deployed = condition(&patches[0].status, "Deployed");
    assert_eq!(deployed["reason"], "DriverNotSupported");
    assert!(
        deployed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("queued"),
        "{deployed}"
    );
}

#[tokio::test]
async fn an_invalid_document_waits_for_a_change() {
    let gateway = FakeGateway::default();
    let mut object = api_object("correct");
    object["spec"]["definition"] =
        json!({"inline": "openapi: 9.9.9\ninfo: {title: t, version: '1'}\n"});
    let (result, calls) = run(object, &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(gateway.state().writes, 0);
    let ready = condition(&status_patches(&calls)[0].status, "Ready").clone();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("DefinitionError"))
    );
}

#[tokio::test]
async fn a_rejected_deployment_is_recorded_and_not_retried_on_every_event() {
    let gateway = FakeGateway::default();
    let object = created(&gateway, "correct").await;
    // A failed deployment of the current revision, recorded a moment ago (as after a 4xx),
    // while the API is missing on the gateway: no new attempt until the next resync.
    let mut failed = object.clone();
    failed["status"]["environments"]["dev"]["lastDeployment"] = json!({
        "traceId": "0123456789abcdef0123456789abcdef", "result": "failed", "durationMs": 5,
        "finishedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "message": "the gateway answered 400 Bad Request: invalid"
    });
    gateway.state().apis.clear();
    let (result, calls) = run(failed, &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(
        gateway.state().writes,
        3,
        "no new attempt before the next resync"
    );
    let status = &status_patches(&calls)[0].status;
    let deployed = condition(status, "Deployed");
    assert_eq!(deployed["reason"], "DeployFailed");
    assert!(
        deployed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("400"),
        "{deployed}"
    );
}

#[tokio::test]
async fn a_definition_is_downloaded_from_its_url() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut served = 0;
        while let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(Duration::from_secs(5), listener.accept()).await
        {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (code, body) = if request.starts_with("GET /openapi.yaml ") {
                ("200 OK", DOC)
            } else {
                ("404 Not Found", "")
            };
            let answer = format!(
                "HTTP/1.1 {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            served += 1;
        }
        served
    });
    let gateway = FakeGateway::default();
    let mut object = api_object("correct");
    object["spec"]["definition"] = json!({"url": format!("http://127.0.0.1:{port}/openapi.yaml")});
    let (result, _) = run(object, &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(gateway.state().apis.len(), 1);
    assert_eq!(
        gateway.state().apis[0]
            .api_definition
            .as_ref()
            .map(|d| d["info"]["title"].clone()),
        Some(json!("Payments"))
    );
    // A 404 is permanent: a condition, and waiting for a change.
    let mut missing = api_object("correct");
    missing["spec"]["definition"] = json!({"url": format!("http://127.0.0.1:{port}/nope.yaml")});
    let (result, calls) = run(missing, &FakeGateway::default()).await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    let ready = condition(&status_patches(&calls)[0].status, "Ready").clone();
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("404"),
        "{ready}"
    );
    server.abort();
}

// ---------------------------------------------------------------------------------------
// Events: published with the change, owed in the same status write while the broker is
// down, delivered and cleared when it returns, back-pressure, last events before the
// finalizer goes.
// ---------------------------------------------------------------------------------------

fn types_of(events: &[apim_operator::events::OutgoingEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e.event_type
                .trim_start_matches("com.cab-i.apim.")
                .to_string()
        })
        .collect()
}

fn owed_types(status: &Value) -> Vec<String> {
    status["pendingEvents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let doc: Value = serde_json::from_str(p["event"].as_str()?).ok()?;
                    Some(
                        doc["type"]
                            .as_str()?
                            .trim_start_matches("com.cab-i.apim.")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const CREATE_EVENTS: [&str; 5] = [
    "resource.created",
    "audit.recorded",
    "api.created",
    "api.deploy-requested",
    "api.deploy-completed",
];

#[tokio::test]
async fn a_create_publishes_its_events_and_owes_none() {
    let gateway = FakeGateway::default();
    let sink = Arc::new(FakeSink::new());
    let (result, calls) = run_with(api_object("correct"), &gateway, Some(sink.clone())).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(types_of(&sink.published()), CREATE_EVENTS);
    let published = sink.published();
    assert!(
        published
            .iter()
            .all(|e| e.key == "u-1" || e.topic == "audit-log")
    );
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "{calls:?}");
    let status = &patches[0].status;
    assert!(
        status.get("pendingEvents").is_none(),
        "nothing owed: {status}"
    );
    assert!(status.get("owedEvents").is_none());
    // A converged Api emits nothing more.
    let mut object = api_object("correct");
    object["status"] = status.clone();
    let (_, calls) = run_with(object, &gateway, Some(sink.clone())).await;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(sink.published().len(), 5);
}

#[tokio::test]
async fn broker_down_the_events_are_owed_in_the_same_status_write_then_delivered() {
    let gateway = FakeGateway::default();
    let sink = Arc::new(FakeSink::new());
    sink.fail_all();
    let (result, calls) = run_with(api_object("correct"), &gateway, Some(sink.clone())).await;
    let Action { .. } = result.expect("the Api reconciles while the broker is down");
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "one status write: {calls:?}");
    let status = patches[0].status.clone();
    assert_eq!(condition(&status, "Ready")["status"], "True", "{status}");
    assert_eq!(owed_types(&status), CREATE_EVENTS);
    assert_eq!(status["owedEvents"], 5);
    assert_eq!(gateway.state().apis.len(), 1, "deployed anyway");
    let owed_ids: Vec<String> = status["pendingEvents"]
        .as_array()
        .expect("owed")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect();

    // The broker is back: the next reconcile delivers them, oldest first, and clears them.
    sink.heal();
    let mut object = api_object("correct");
    object["status"] = status;
    let writes = gateway.state().writes;
    let (result, calls) = run_with(object, &gateway, Some(sink.clone())).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    let ids: Vec<String> = sink.published().iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, owed_ids, "the owed events, same ids, in order");
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "{calls:?}");
    let cleared = &patches[0].status;
    assert!(cleared.get("pendingEvents").is_none(), "{cleared}");
    assert!(cleared.get("owedEvents").is_none(), "{cleared}");
    assert_eq!(
        gateway.state().writes,
        writes,
        "no gateway write to clear the outbox"
    );
}

#[tokio::test]
async fn a_full_outbox_holds_the_change_back() {
    let gateway = FakeGateway::default();
    let sink = Arc::new(FakeSink::new());
    sink.fail_all();
    let (_, calls) = run_with(api_object("correct"), &gateway, Some(sink.clone())).await;
    let mut status = status_patches(&calls)[0].status.clone();
    // Fill the outbox with copies of an owed event (distinct ids).
    let one = status["pendingEvents"][0].clone();
    let filler: Vec<Value> = (0..crds::OUTBOX_CAPACITY - 10)
        .map(|i| {
            let mut p = one.clone();
            p["id"] = json!(format!("filler-{i}"));
            p
        })
        .collect();
    status["pendingEvents"]
        .as_array_mut()
        .expect("owed")
        .extend(filler);
    let mut object = api_object("correct");
    object["status"] = status;
    object["metadata"]["generation"] = json!(2);
    object["spec"]["backendUrl"] = json!("https://backend.example/v2");
    let writes = gateway.state().writes;
    let (result, _) = run_with(object, &gateway, Some(sink.clone())).await;
    assert_eq!(
        result.expect("held back, not failed"),
        Action::requeue(apim_operator::controllers::emit::OWED_RETRY)
    );
    assert_eq!(
        gateway.state().writes,
        writes,
        "the change waits: no gateway write"
    );
}

#[tokio::test]
async fn delete_publishes_the_last_events_before_the_finalizer_goes() {
    let gateway = FakeGateway::default();
    let sink = Arc::new(FakeSink::new());
    let mut object = created(&gateway, "correct").await;
    object["metadata"]["deletionTimestamp"] = json!("2026-11-25T08:00:00Z");
    sink.fail_all();
    let (result, calls) = run_with(object.clone(), &gateway, Some(sink.clone())).await;
    let err = result.expect_err("the finalizer waits for the broker");
    assert_eq!(err.metric_label(), "events_owed");
    assert!(gateway.state().apis.is_empty(), "removed from the gateway");
    assert!(
        calls
            .iter()
            .all(|c| c.method != "PATCH" || c.path.ends_with("/status")),
        "the finalizer stays: {calls:?}"
    );
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "{calls:?}");
    assert_eq!(
        owed_types(&patches[0].status),
        vec!["api.deleted", "audit.recorded"]
    );
    sink.heal();
    object["status"] = patches[0].status.clone();
    let (result, calls) = run_with(object, &gateway, Some(sink.clone())).await;
    assert_eq!(result.expect("cleanup"), Action::await_change());
    assert_eq!(
        types_of(&sink.published()),
        vec!["api.deleted", "audit.recorded"]
    );
    assert!(
        calls
            .iter()
            .any(|c| c.method == "PATCH" && !c.path.ends_with("/status")),
        "then the finalizer goes: {calls:?}"
    );
}

#[tokio::test]
async fn an_alias_dropped_from_the_spec_is_deleted_from_the_gateway() {
    let gateway = FakeGateway::default();
    let mut object = created(&gateway, "correct").await;
    assert_eq!(
        object["status"]["environments"]["dev"]["aliases"],
        json!(["payments-backend/endpoint"]),
        "the alias is recorded"
    );
    assert_eq!(gateway.state().aliases.len(), 1);
    object["spec"]["aliases"] = json!([]);
    object["metadata"]["generation"] = json!(2);
    let (result, calls) = run(object, &gateway).await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(
        gateway.state().aliases.is_empty(),
        "the alias is gone from the gateway"
    );
    assert_eq!(gateway.state().apis.len(), 1, "the API stays");
    let patches = status_patches(&calls);
    assert_eq!(patches.len(), 1, "{calls:?}");
    let dev = &patches[0].status["environments"]["dev"];
    assert!(
        dev.get("aliases").is_none(),
        "none recorded any more: {dev}"
    );
    assert_eq!(condition(&patches[0].status, "Ready")["status"], "True");
}
