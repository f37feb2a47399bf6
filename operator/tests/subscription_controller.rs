//! The Subscription controller's reconcile against a mocked Kubernetes API (tower-test, with
//! the Api, the Application and the Subscription kept in memory) and a fake gateway: not
//! ready yet (Api not deployed, Application missing or not registered: status says why, the
//! gateway is not touched), active (association created), converged no-op (no write
//! anywhere), delete (association removed, read back, then the finalizer), and the failures
//! that keep the finalizer (gateway down, association still listed). Every reconcile has a
//! timeout and every Kubernetes call is recorded, so a missing or extra call fails a test.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apim_operator::controllers::subscription::{self, SubContext};
use common::{
    Call, DELETED_AT, FakeGateway, FakeKube, Journal, RESYNC, condition, context, crd_path, drain,
    event_reasons, requeue_after, state_of, tagged_metadata, writes,
};
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

const SUB: &str = "checkout-payments";
const API: &str = "payments";
const APP: &str = "checkout";
const GW_API_ID: &str = "api-7";

fn sub_path() -> String {
    crd_path("subscriptions", SUB)
}
fn api_path() -> String {
    crd_path("apis", API)
}
fn app_path() -> String {
    crd_path("applications", APP)
}

fn sub_object(name: &str) -> Value {
    json!({
        "apiVersion": crds::API_VERSION,
        "kind": "Subscription",
        "metadata": tagged_metadata(name, &format!("u-{name}")),
        "spec": {"apiRef": {"name": API}, "applicationRef": {"name": APP}, "environment": "dev"}
    })
}

/// The Api, deployed to dev as `GW_API_ID` when `deployed`.
fn api_object(deployed: bool) -> Value {
    let mut api = json!({
        "apiVersion": crds::API_VERSION,
        "kind": "Api",
        "metadata": tagged_metadata(API, "u-api"),
        "spec": {
            "displayName": "Payments", "version": "1.0.0", "backendUrl": "https://backend.example/v1",
            "definition": {"inline": "openapi: 3.0.3\ninfo: {title: Payments, version: 1.0.0}\npaths: {}\n"},
            "stages": ["dev"]
        }
    });
    api["status"] = if deployed {
        json!({"revision": "rev-1", "environments": {"dev": {"gatewayApiId": GW_API_ID, "deployedRevision": "rev-1"}}})
    } else {
        // Created on the gateway once, but the current revision is not deployed yet.
        json!({"revision": "rev-2", "environments": {"dev": {"gatewayApiId": GW_API_ID, "deployedRevision": "rev-1"}}})
    };
    api
}

/// The Application, registered on the gateway as `gateway_id` when given.
fn app_object(gateway_id: Option<&str>) -> Value {
    let mut app = json!({
        "apiVersion": crds::API_VERSION,
        "kind": "Application",
        "metadata": tagged_metadata(APP, "u-app"),
        "spec": {"displayName": "Checkout", "description": "the web shop", "environment": "dev"}
    });
    if let Some(id) = gateway_id {
        app["status"] = json!({"gatewayApplicationId": id, "secretName": "checkout-credentials"});
    }
    app
}

struct World {
    journal: Journal,
    kube: FakeKube,
    gateway: FakeGateway,
    /// The gateway id of the Application (registered on the fake gateway).
    app_id: String,
}

impl World {
    /// A Subscription with its Api (deployed or not) and Application (registered, or absent).
    fn new(api_deployed: bool, app: bool) -> World {
        let journal = Journal::default();
        let kube = FakeKube::new(&journal);
        let gateway = FakeGateway::new(&journal);
        let app_id = gateway.seed_application("Checkout", "the web shop");
        kube.put(&sub_path(), sub_object(SUB));
        kube.put(&api_path(), api_object(api_deployed));
        if app {
            kube.put(&app_path(), app_object(Some(&app_id)));
        }
        World {
            journal,
            kube,
            gateway,
            app_id,
        }
    }

    fn sub(&self) -> Value {
        self.kube
            .object(&sub_path())
            .expect("the Subscription is stored")
    }

    fn edit(&self, change: impl FnOnce(&mut Value)) {
        let mut object = self.sub();
        change(&mut object);
        self.kube.put(&sub_path(), object);
    }

    fn gateway_calls(&self) -> Vec<String> {
        self.journal
            .entries()
            .into_iter()
            .filter(|e| e.starts_with("gw:"))
            .collect()
    }

    fn lab(&self) -> Lab {
        Lab::new(&self.kube, &self.gateway)
    }

    /// One reconcile of the stored Subscription `name` in a fresh controller.
    async fn reconcile_named(&self, name: &str) -> Outcome {
        self.journal.clear();
        let lab = self.lab();
        let (result, action) = lab.reconcile(&crd_path("subscriptions", name)).await;
        let calls = lab.finish().await;
        Outcome {
            result,
            action,
            calls,
        }
    }

    async fn reconcile(&self) -> Outcome {
        self.reconcile_named(SUB).await
    }

    /// Grants the access; asserts it converged.
    async fn active(&self) {
        let out = self.reconcile().await;
        assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
        assert!(self.gateway.is_associated(&self.app_id, GW_API_ID));
        assert_eq!(self.sub()["status"]["active"], true);
    }
}

struct Outcome {
    result: Result<Action, subscription::Error>,
    /// The result, or the error policy's answer to the error.
    action: Action,
    calls: Vec<Call>,
}

struct Lab {
    kube: FakeKube,
    sctx: Arc<SubContext>,
    server: tokio::task::JoinHandle<()>,
}

impl Lab {
    fn new(kube: &FakeKube, gateway: &FakeGateway) -> Lab {
        let (ctx, server) = context(kube, Some(gateway));
        Lab {
            kube: kube.clone(),
            sctx: Arc::new(SubContext::new(ctx)),
            server,
        }
    }

    async fn reconcile(&self, path: &str) -> (Result<Action, subscription::Error>, Action) {
        let object = self.kube.object(path).expect("stored");
        let obj: Arc<DynamicObject> =
            Arc::new(serde_json::from_value(object).expect("a Subscription object"));
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            subscription::reconcile(obj.clone(), self.sctx.clone()),
        )
        .await
        .expect("the reconcile finished in time");
        let action = match &result {
            Ok(action) => action.clone(),
            Err(e) => subscription::error_policy(obj, e, self.sctx.clone()),
        };
        (result, action)
    }

    async fn finish(self) -> Vec<Call> {
        let Lab { kube, sctx, server } = self;
        drop(sctx);
        drain(server).await;
        kube.take_calls()
    }
}

fn reads_then_status() -> Vec<String> {
    vec![
        format!("GET {}", api_path()),
        format!("GET {}", app_path()),
        format!("PATCH {}/status", sub_path()),
    ]
}

fn lines(calls: &[Call]) -> Vec<String> {
    calls.iter().map(Call::line).collect()
}

/// Asserts the Subscription is inactive for `reason`, with `message` as its reason.
fn assert_inactive(status: &Value, reason: &str, message: &str) {
    assert_eq!(status["active"], false, "{status}");
    assert_eq!(status["reason"], message, "{status}");
    assert_eq!(
        state_of(status, "Ready"),
        ("False".to_string(), reason.to_string())
    );
    assert_eq!(condition(status, "Ready")["message"], message);
    assert_eq!(state_of(status, "Accepted").0, "True");
    assert_eq!(status["observedGeneration"], 1);
}

#[tokio::test]
async fn an_api_not_deployed_yet_is_reported_and_the_gateway_is_not_touched() {
    let world = World::new(false, true);
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(
        world.gateway_calls().is_empty(),
        "{:?}",
        world.gateway_calls()
    );
    assert!(!world.gateway.is_associated(&world.app_id, GW_API_ID));
    assert_eq!(lines(&out.calls), reads_then_status());
    let status = world.sub()["status"].clone();
    assert_inactive(
        &status,
        "NotDeployed",
        "Api payments is not deployed to dev yet",
    );
    assert!(status.get("gatewayApiId").is_none(), "{status}");
    assert!(event_reasons(&out.calls).is_empty());

    // Nothing changed: nothing written.
    let out = world.reconcile().await;
    assert_eq!(
        lines(&out.calls),
        reads_then_status()[..2].to_vec(),
        "reads only"
    );
    assert!(world.gateway_calls().is_empty());
}

#[tokio::test]
async fn a_missing_application_is_reported_and_the_gateway_is_not_touched() {
    let world = World::new(true, false);
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(
        world.gateway_calls().is_empty(),
        "{:?}",
        world.gateway_calls()
    );
    assert_eq!(lines(&out.calls), reads_then_status());
    assert_inactive(
        &world.sub()["status"],
        "ReferenceNotFound",
        "Application checkout does not exist",
    );
}

#[tokio::test]
async fn a_missing_api_is_reported_and_the_gateway_is_not_touched() {
    let world = World::new(true, true);
    world.kube.state().objects.remove(&api_path());
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(world.gateway_calls().is_empty());
    assert_eq!(
        lines(&out.calls),
        vec![
            format!("GET {}", api_path()),
            format!("PATCH {}/status", sub_path())
        ]
    );
    assert_inactive(
        &world.sub()["status"],
        "ReferenceNotFound",
        "Api payments does not exist",
    );
}

#[tokio::test]
async fn an_application_not_registered_yet_is_reported() {
    let world = World::new(true, true);
    world.kube.put(&app_path(), app_object(None));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(world.gateway_calls().is_empty());
    assert_inactive(
        &world.sub()["status"],
        "Progressing",
        "Application checkout is not registered on the dev gateway yet",
    );
}

#[tokio::test]
async fn an_application_of_another_environment_is_refused() {
    let world = World::new(true, true);
    let mut app = app_object(Some("app-1"));
    app["spec"]["environment"] = json!("prod");
    app["metadata"]["labels"]["apim.cab-i.com/environment"] = json!("prod");
    world.kube.put(&app_path(), app);
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(world.gateway_calls().is_empty());
    assert_inactive(
        &world.sub()["status"],
        "InvalidSpec",
        "Application checkout lives in prod, not dev",
    );
}

#[tokio::test]
async fn an_active_subscription_associates_the_application_with_the_api() {
    let world = World::new(true, true);
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(
        world.gateway.writes(),
        vec![format!("associate_api {} {GW_API_ID}", world.app_id)]
    );
    assert!(world.gateway.is_associated(&world.app_id, GW_API_ID));
    assert_eq!(
        lines(&out.calls)
            .into_iter()
            .filter(|l| !l.contains("/events"))
            .collect::<Vec<_>>(),
        reads_then_status()
    );
    let status = world.sub()["status"].clone();
    assert_eq!(status["active"], true);
    assert!(status.get("reason").is_none(), "{status}");
    assert_eq!(status["gatewayApiId"], GW_API_ID);
    assert_eq!(status["gatewayApplicationId"], json!(world.app_id));
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        state_of(&status, "Ready"),
        ("True".into(), "AccessGranted".into())
    );
    assert_eq!(
        condition(&status, "Ready")["message"],
        "access granted on dev"
    );
    assert_eq!(state_of(&status, "Accepted").0, "True");
    assert_eq!(event_reasons(&out.calls), vec!["AccessGranted"]);
}

#[tokio::test]
async fn converged_costs_no_write_anywhere() {
    let world = World::new(true, true);
    world.active().await;
    let gateway_writes = world.gateway.writes();
    let status = world.sub()["status"].clone();
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(world.gateway.writes(), gateway_writes, "no gateway write");
    assert_eq!(
        world.gateway_calls(),
        vec![format!("gw:associate_api {} {GW_API_ID}", world.app_id)],
        "one idempotent call, answered unchanged"
    );
    assert_eq!(
        lines(&out.calls),
        reads_then_status()[..2].to_vec(),
        "two reads, no write, no Event"
    );
    assert_eq!(world.sub()["status"], status);
}

#[tokio::test]
async fn an_api_deployed_later_activates_the_subscription() {
    let world = World::new(false, true);
    world.reconcile().await.result.expect("reconcile");
    assert!(world.gateway.writes().is_empty());
    world.kube.put(&api_path(), api_object(true));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(world.gateway.is_associated(&world.app_id, GW_API_ID));
    let status = world.sub()["status"].clone();
    assert_eq!(status["active"], true);
    assert!(
        status.get("reason").is_none(),
        "the old reason is cleared: {status}"
    );
    assert_eq!(state_of(&status, "Ready").0, "True");
}

#[tokio::test]
async fn gateway_down_while_granting_is_reported_and_backs_off() {
    let world = World::new(true, true);
    world.gateway.state().down = true;
    let out = world.reconcile().await;
    let delay = requeue_after(&out.result.expect("a condition, not an error")).expect("requeue");
    assert!(
        delay >= Duration::from_millis(400) && delay <= Duration::from_millis(600),
        "backs off: {delay:?}"
    );
    assert!(world.gateway.writes().is_empty());
    let status = world.sub()["status"].clone();
    assert_eq!(status["active"], false);
    assert_eq!(
        state_of(&status, "Ready"),
        ("False".into(), "GatewayError".into())
    );
    let message = status["reason"].as_str().unwrap_or_default();
    assert!(message.contains("503"), "{message}");
    assert!(event_reasons(&out.calls).is_empty());
}

#[tokio::test]
async fn delete_revokes_reads_back_then_removes_the_finalizer() {
    let world = World::new(true, true);
    world.active().await;
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("cleanup"), Action::await_change());
    assert!(!world.gateway.is_associated(&world.app_id, GW_API_ID));
    assert_eq!(
        world.gateway_calls(),
        vec![
            format!("gw:dissociate_api {} {GW_API_ID}", world.app_id),
            format!("gw:application_apis {}", world.app_id),
        ],
        "removed, then read back"
    );
    let read_back = world
        .journal
        .position("gw:application_apis")
        .expect("read back");
    let released = world
        .journal
        .position(&format!("k8s:PATCH {}", sub_path()))
        .expect("finalizer removed");
    assert!(read_back < released, "{:?}", world.journal.entries());
    assert_eq!(
        writes(&out.calls),
        vec![format!("PATCH {}", sub_path())],
        "only the finalizer: no status write"
    );
    let patch = out
        .calls
        .iter()
        .find(|c| c.path == sub_path())
        .expect("finalizer patch");
    assert_eq!(
        patch.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": crds::FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ])
    );
    assert_eq!(world.sub()["metadata"]["finalizers"], json!([]));
    assert_eq!(event_reasons(&out.calls), vec!["AccessRevoked"]);
    assert_eq!(
        lines(&out.calls)
            .into_iter()
            .filter(|l| !l.contains("/events"))
            .collect::<Vec<_>>(),
        vec![
            format!("GET {}", sub_path().rsplit_once('/').expect("collection").0),
            format!("GET {}", app_path()),
            format!("PATCH {}", sub_path())
        ],
        "a look for another Subscription granting the same access, one at the Application \
         (a rotation may hold the access on a second gateway application), then the finalizer"
    );
}

#[tokio::test]
async fn delete_keeps_the_finalizer_while_the_gateway_is_down() {
    let world = World::new(true, true);
    world.active().await;
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    world.gateway.state().down = true;
    let out = world.reconcile().await;
    let err = out
        .result
        .expect_err("cleanup fails while the gateway is down");
    assert_eq!(err.metric_label(), "cleanup_failed");
    assert!(err.to_string().contains("503"), "{err}");
    let delay = requeue_after(&out.action).expect("retried");
    assert!(
        delay <= Duration::from_millis(600),
        "with backoff: {delay:?}"
    );
    assert!(
        writes(&out.calls).is_empty(),
        "no Kubernetes write: {:?}",
        out.calls
    );
    assert_eq!(
        world.sub()["metadata"]["finalizers"],
        json!([crds::FINALIZER])
    );
    world.gateway.state().down = false;
    assert!(
        world.gateway.is_associated(&world.app_id, GW_API_ID),
        "still granted"
    );
}

#[tokio::test]
async fn delete_keeps_the_finalizer_while_the_gateway_still_lists_the_api() {
    let world = World::new(true, true);
    world.active().await;
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    world.gateway.state().sticky_associations = true;
    let out = world.reconcile().await;
    let err = out.result.expect_err("the read-back shows the access");
    assert_eq!(err.metric_label(), "revocation_unconfirmed");
    assert!(err.to_string().contains(GW_API_ID), "{err}");
    assert!(writes(&out.calls).is_empty(), "{:?}", out.calls);
    assert_eq!(
        world.sub()["metadata"]["finalizers"],
        json!([crds::FINALIZER])
    );
}

#[tokio::test]
async fn delete_after_the_application_left_the_gateway_is_done() {
    let world = World::new(true, true);
    world.active().await;
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    world.gateway.state().applications.clear();
    let out = world.reconcile().await;
    assert_eq!(
        out.result.expect("nothing left to revoke"),
        Action::await_change()
    );
    assert_eq!(writes(&out.calls), vec![format!("PATCH {}", sub_path())]);
    assert_eq!(world.sub()["metadata"]["finalizers"], json!([]));
}

#[tokio::test]
async fn delete_of_a_never_active_subscription_only_removes_the_finalizer() {
    let world = World::new(false, true);
    world.reconcile().await.result.expect("reconcile");
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("cleanup"), Action::await_change());
    assert!(world.gateway_calls().is_empty());
    assert_eq!(lines(&out.calls), vec![format!("PATCH {}", sub_path())]);
}

#[tokio::test]
async fn deleting_a_duplicate_subscription_keeps_the_access_of_the_other() {
    // Two live Subscriptions name the same Api, Application and environment (nothing
    // forbids it). Deleting one dissociates the pair on the gateway without looking for
    // another Subscription still granting it: the other keeps saying `active: true` while
    // the Application is refused, until its next resync re-associates it.
    let world = World::new(true, true);
    world.kube.put(
        &crd_path("subscriptions", "checkout-payments-2"),
        sub_object("checkout-payments-2"),
    );
    world.active().await;
    world
        .reconcile_named("checkout-payments-2")
        .await
        .result
        .expect("reconcile");
    let other = world
        .kube
        .object(&crd_path("subscriptions", "checkout-payments-2"))
        .expect("stored");
    assert_eq!(other["status"]["active"], true);
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    world.reconcile().await.result.expect("cleanup");
    assert!(
        world.gateway.is_associated(&world.app_id, GW_API_ID),
        "Subscription checkout-payments-2 still grants the access"
    );
}

/// The Application after a rotation: `successor` holds the current credential, `predecessor`
/// the previous one until the overlap window ends.
fn rotated_app(successor: &str, predecessor: &str) -> Value {
    let mut app = app_object(Some(successor));
    app["status"]["rotation"] = json!({
        "lastRequestId": "r2", "phase": "Overlapping",
        "overlapEndsAt": "2099-01-01T00:00:00Z", "previousGatewayApplicationId": predecessor
    });
    app
}

#[tokio::test]
async fn after_a_rotation_the_access_follows_the_successor_application() {
    // The Application controller copies the API links to the successor when it registers
    // it; a Subscription granted in between (or a copy lost) is re-associated on the
    // successor at the Subscription's next reconcile, which the Application's status change
    // triggers, and the status records the successor.
    let world = World::new(true, true);
    world.active().await;
    let successor = world.gateway.seed_application("Checkout", "the web shop");
    world
        .kube
        .put(&app_path(), rotated_app(&successor, &world.app_id));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(world.gateway.is_associated(&successor, GW_API_ID));
    assert!(
        world.gateway.is_associated(&world.app_id, GW_API_ID),
        "the predecessor keeps its access through the window (the old key still works)"
    );
    assert_eq!(
        world.gateway.writes()[1..],
        [format!("associate_api {successor} {GW_API_ID}")]
    );
    let status = world.sub()["status"].clone();
    assert_eq!(status["gatewayApplicationId"], json!(successor));
    assert_eq!(status["active"], true);
    assert_eq!(event_reasons(&out.calls), vec!["AccessGranted"]);

    // The links copied already: the id recorded changes, the gateway is not written.
    let world = World::new(true, true);
    world.active().await;
    let successor = world.gateway.seed_application("Checkout", "the web shop");
    world.gateway.seed_association(&successor, GW_API_ID);
    world
        .kube
        .put(&app_path(), rotated_app(&successor, &world.app_id));
    let writes_before = world.gateway.writes();
    let out = world.reconcile().await;
    out.result.expect("reconcile");
    assert_eq!(world.gateway.writes(), writes_before, "no gateway write");
    assert_eq!(
        writes(&out.calls),
        vec![format!("PATCH {}/status", sub_path())]
    );
    assert_eq!(
        world.sub()["status"]["gatewayApplicationId"],
        json!(successor)
    );
}

#[tokio::test]
async fn delete_during_a_rotation_revokes_the_access_on_both_gateway_applications() {
    let world = World::new(true, true);
    world.active().await;
    let successor = world.gateway.seed_application("Checkout", "the web shop");
    world.gateway.seed_association(&successor, GW_API_ID);
    world
        .kube
        .put(&app_path(), rotated_app(&successor, &world.app_id));
    // The Subscription has not seen the switch yet: its status records the predecessor.
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("cleanup"), Action::await_change());
    assert!(!world.gateway.is_associated(&world.app_id, GW_API_ID));
    assert!(!world.gateway.is_associated(&successor, GW_API_ID));
    assert_eq!(
        world.gateway_calls(),
        vec![
            format!("gw:dissociate_api {} {GW_API_ID}", world.app_id),
            format!("gw:application_apis {}", world.app_id),
            format!("gw:dissociate_api {successor} {GW_API_ID}"),
            format!("gw:application_apis {successor}"),
        ]
    );
    assert_eq!(world.sub()["metadata"]["finalizers"], json!([]));
    assert_eq!(event_reasons(&out.calls), vec!["AccessRevoked"]);
}
