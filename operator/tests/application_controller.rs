//! The Application controller's reconcile against a mocked Kubernetes API (tower-test, with
//! objects kept in memory) and a fake gateway: finalizer first, create (credentials in a
//! Secret owned by the Application, never in status or Events), converged no-op (no write
//! anywhere), spec update, credential rotation with its overlap window, delete (gateway
//! first, then the finalizer; a 404 counts as done), gateway down (condition, backoff,
//! finalizer kept on delete) and no gateway for the environment. Every reconcile has a
//! timeout, and every Kubernetes call is recorded, so a missing or extra call fails a test.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apim_operator::controllers::application::{self, AppContext, CREDENTIALS_HASH_ANNOTATION};
use common::{
    DELETED_AT, FakeGateway, FakeKube, Journal, RESYNC, condition, context, crd_path, drain,
    event_reasons, requeue_after, secret_keys, secret_path, secret_value, state_of, status_patches,
    tagged_metadata, writes,
};
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const NAME: &str = "checkout";
const UID: &str = "u-app";
const SECRET: &str = "checkout-credentials";

fn app_path() -> String {
    crd_path("applications", NAME)
}

fn app_object() -> Value {
    json!({
        "apiVersion": crds::API_VERSION,
        "kind": "Application",
        "metadata": tagged_metadata(NAME, UID),
        "spec": {
            "displayName": "Checkout", "description": "the web shop", "environment": "dev",
            "contactEmails": ["shop@example.com"]
        }
    })
}

/// The hash the status and the Secret's annotation must show for `data` (sorted keys).
fn expected_hash(data: &[(&str, &str)]) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One fake cluster and one fake gateway sharing a journal.
struct World {
    journal: Journal,
    kube: FakeKube,
    gateway: FakeGateway,
}

impl World {
    fn new(object: Value) -> World {
        let journal = Journal::default();
        let kube = FakeKube::new(&journal);
        let gateway = FakeGateway::new(&journal);
        kube.put(&app_path(), object);
        World {
            journal,
            kube,
            gateway,
        }
    }

    fn app(&self) -> Value {
        self.kube
            .object(&app_path())
            .expect("the Application is stored")
    }

    fn secret(&self) -> Value {
        self.kube
            .object(&secret_path(SECRET))
            .expect("the credentials Secret is stored")
    }

    /// Changes the stored Application (a user's edit).
    fn edit(&self, change: impl FnOnce(&mut Value)) {
        let mut object = self.app();
        change(&mut object);
        self.kube.put(&app_path(), object);
    }

    fn lab(&self) -> Lab {
        Lab::new(&self.kube, Some(&self.gateway))
    }

    /// One reconcile of the stored Application in a fresh controller; the calls it made.
    async fn reconcile(&self) -> Outcome {
        self.journal.clear();
        let lab = self.lab();
        let (result, action) = lab.reconcile().await;
        let calls = lab.finish().await;
        Outcome {
            result,
            action,
            calls,
        }
    }

    /// Creates the Application on the gateway; asserts it converged.
    async fn created(&self) {
        let out = self.reconcile().await;
        assert_eq!(out.result.expect("create"), Action::requeue(RESYNC));
        assert_eq!(status_patches(&out.calls).len(), 1, "{:?}", out.calls);
    }
}

struct Outcome {
    result: Result<Action, application::Error>,
    /// The result, or the error policy's answer to the error.
    action: Action,
    calls: Vec<common::Call>,
}

/// A running controller context over the fake cluster.
struct Lab {
    kube: FakeKube,
    actx: Arc<AppContext>,
    server: tokio::task::JoinHandle<()>,
}

impl Lab {
    fn new(kube: &FakeKube, gateway: Option<&FakeGateway>) -> Lab {
        let (ctx, server) = context(kube, gateway);
        Lab {
            kube: kube.clone(),
            actx: Arc::new(AppContext::new(ctx)),
            server,
        }
    }

    async fn reconcile(&self) -> (Result<Action, application::Error>, Action) {
        let object = self.kube.object(&app_path()).expect("stored");
        let obj: Arc<DynamicObject> =
            Arc::new(serde_json::from_value(object).expect("an Application object"));
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            application::reconcile(obj.clone(), self.actx.clone()),
        )
        .await
        .expect("the reconcile finished in time");
        let action = match &result {
            Ok(action) => action.clone(),
            Err(e) => application::error_policy(obj, e, self.actx.clone()),
        };
        (result, action)
    }

    /// Drops the controller, waits for the background Events; every call made.
    async fn finish(self) -> Vec<common::Call> {
        let Lab { kube, actx, server } = self;
        drop(actx);
        drain(server).await;
        kube.take_calls()
    }
}

#[tokio::test]
async fn a_new_application_gets_the_finalizer_before_anything_else() {
    let mut object = app_object();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("finalizers");
        // The status write is conditioned on the resourceVersion: the one the finalizer patch
        // gave the object, not the one read before it (that would be refused with 409).
        meta.insert("resourceVersion".into(), json!("100"));
    }
    let world = World::new(object);
    let out = world.reconcile().await;
    out.result.expect("reconcile");
    let first = out
        .calls
        .iter()
        .find(|c| c.method != "GET")
        .expect("a write");
    assert_eq!(
        first.line(),
        format!("PATCH {}", app_path()),
        "the finalizer first"
    );
    assert!(first.content_type.starts_with("application/merge-patch"));
    assert_eq!(
        world.app()["metadata"]["finalizers"],
        json!([crds::FINALIZER])
    );
    let finalizer = world
        .journal
        .position(&format!("k8s:PATCH {}", app_path()))
        .expect("finalizer patch in the journal");
    let gateway = world.journal.position("gw:").expect("then the gateway");
    assert!(
        finalizer < gateway,
        "no gateway call before the finalizer: {:?}",
        world.journal.entries()
    );
    // The same reconcile goes on: the watch event of its own patch triggers none.
    assert_eq!(world.app()["status"]["conditions"][1]["type"], "Ready");
}

#[tokio::test]
async fn an_object_changed_under_the_reconcile_gets_its_status_all_the_same() {
    // The reconcile works on the cached copy; meanwhile someone labels the Application, so
    // the status write (conditioned on the cached resourceVersion) conflicts. It is computed
    // again from the object as it is now: the reconcile succeeds, no event is derived twice.
    let world = World::new(app_object());
    let cached: DynamicObject = serde_json::from_value(world.app()).expect("object");
    world.edit(|o| {
        o["metadata"]["labels"]["team"] = json!("web");
        o["metadata"]["resourceVersion"] = json!("777");
    });
    let lab = world.lab();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        application::reconcile(Arc::new(cached), lab.actx.clone()),
    )
    .await
    .expect("the reconcile finished in time");
    let calls = lab.finish().await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    let status_writes: Vec<&str> = status_patches(&calls)
        .iter()
        .map(|c| {
            c.body["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        status_writes.len(),
        2,
        "refused once, then written: {calls:?}"
    );
    assert_ne!(
        status_writes[0], status_writes[1],
        "the second with the new resourceVersion"
    );
    let stored = world.app();
    assert_eq!(
        stored["metadata"]["labels"]["team"], "web",
        "the label stays"
    );
    assert_eq!(
        state_of(&stored["status"], "Ready"),
        ("True".into(), "Reconciled".into())
    );
    assert_eq!(
        event_reasons(&calls)
            .iter()
            .filter(|r| *r == "Registered")
            .count(),
        1,
        "{:?}",
        event_reasons(&calls)
    );
}

#[tokio::test]
async fn create_registers_the_application_and_writes_its_credentials_into_an_owned_secret() {
    let world = World::new(app_object());
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));

    // The gateway: looked up by name, then created (with an API key), nothing else.
    assert_eq!(world.gateway.writes(), vec!["create_application Checkout"]);
    let journal = world.journal.entries();
    let gw_calls: Vec<&String> = journal.iter().filter(|e| e.starts_with("gw:")).collect();
    assert_eq!(
        gw_calls,
        vec![
            "gw:find_application Checkout",
            "gw:create_application Checkout"
        ]
    );
    let registered = world.gateway.state().applications[0].clone();
    assert_eq!(registered.id, "app-1");
    assert_eq!(registered.description.as_deref(), Some("the web shop"));
    assert_eq!(registered.contact_emails, vec!["shop@example.com"]);
    let key = world.gateway.api_key_of("app-1").expect("an API key");

    // Kubernetes: read the Secret, apply it, then the status; nothing else.
    assert_eq!(
        out.calls
            .iter()
            .filter(|c| !c.is_event())
            .map(common::Call::line)
            .collect::<Vec<_>>(),
        vec![
            format!("GET {}", secret_path(SECRET)),
            format!("PATCH {}", secret_path(SECRET)),
            format!("PATCH {}/status", app_path()),
        ]
    );
    let apply = out
        .calls
        .iter()
        .find(|c| c.method == "PATCH" && c.path == secret_path(SECRET))
        .expect("the Secret is applied");
    assert!(
        apply.content_type.starts_with("application/apply-patch"),
        "server-side apply: {}",
        apply.content_type
    );
    assert!(
        apply.query.contains("fieldManager=apim-operator"),
        "{}",
        apply.query
    );
    assert!(apply.query.contains("force=true"), "{}", apply.query);

    // The Secret: owned by the Application, holding the gateway's key and its hash.
    let secret = world.secret();
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["metadata"]["ownerReferences"],
        json!([{
            "apiVersion": crds::API_VERSION, "kind": "Application", "name": NAME, "uid": UID,
            "controller": true
        }])
    );
    assert_eq!(secret_keys(&secret), vec!["apiKey"]);
    assert_eq!(
        secret_value(&secret, "apiKey").as_deref(),
        Some(key.as_str())
    );
    let hash = expected_hash(&[("apiKey", &key)]);
    assert_eq!(
        secret["metadata"]["annotations"][CREDENTIALS_HASH_ANNOTATION],
        json!(hash)
    );

    // The status: ids, Secret name and hash; never the credential.
    let status = world.app()["status"].clone();
    assert_eq!(status["gatewayApplicationId"], "app-1");
    assert_eq!(status["secretName"], SECRET);
    assert_eq!(status["credentialsHash"], json!(hash));
    assert_eq!(status["observedGeneration"], 1);
    assert!(status.get("rotation").is_none(), "{status}");
    assert_eq!(
        state_of(&status, "Accepted"),
        ("True".into(), "Valid".into())
    );
    assert_eq!(
        state_of(&status, "Ready"),
        ("True".into(), "Reconciled".into())
    );
    assert_eq!(
        condition(&status, "Ready")["message"],
        "registered on gateway dev; credentials in Secret checkout-credentials"
    );
    assert_eq!(state_of(&status, "Degraded").0, "False");
    let status_patch = status_patches(&out.calls)[0];
    assert!(
        status_patch
            .content_type
            .starts_with("application/merge-patch+json"),
        "a merge patch of the status: {}",
        status_patch.content_type
    );
    let patch = &status_patch.body;
    assert!(
        patch["metadata"]["resourceVersion"].is_string(),
        "conditioned on the resourceVersion read: {patch}"
    );
    for (what, text) in [
        ("status", patch.to_string()),
        (
            "events",
            out.calls
                .iter()
                .filter(|c| c.is_event())
                .map(|c| c.body.to_string())
                .collect::<String>(),
        ),
    ] {
        assert!(
            !text.contains(&key),
            "the key leaked into the {what}: {text}"
        );
    }
    assert_eq!(
        event_reasons(&out.calls),
        vec!["Registered", "CredentialsWritten"]
    );
}

#[tokio::test]
async fn oauth2_credentials_are_generated_and_written() {
    let mut object = app_object();
    object["spec"]["credentialType"] = json!("oauth2");
    let world = World::new(object);
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(
        world.gateway.writes(),
        vec![
            "create_application Checkout",
            "regenerate_credentials app-1 oAuthCredentials"
        ],
        "an application is created with an API key only: OAuth credentials are requested"
    );
    let secret = world.secret();
    assert_eq!(secret_keys(&secret), vec!["clientId", "clientSecret"]);
    let tokens = world.gateway.state().applications[0]
        .access_tokens
        .clone()
        .expect("tokens");
    let id = tokens.client_id.expect("client id");
    let secret_text = tokens
        .client_secret
        .expect("client secret")
        .expose()
        .to_string();
    assert_eq!(secret_value(&secret, "clientId"), Some(id.clone()));
    assert_eq!(
        secret_value(&secret, "clientSecret"),
        Some(secret_text.clone())
    );
    let hash = expected_hash(&[("clientId", &id), ("clientSecret", &secret_text)]);
    assert_eq!(world.app()["status"]["credentialsHash"], json!(hash));
    assert!(!world.app()["status"].to_string().contains(&secret_text));
}

#[tokio::test]
async fn converged_costs_no_write_anywhere() {
    let world = World::new(app_object());
    world.created().await;
    let gateway_writes = world.gateway.writes();
    let secret = world.secret();
    let status = world.app()["status"].clone();

    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(world.gateway.writes(), gateway_writes, "no gateway write");
    assert_eq!(
        world.journal.entries(),
        vec![
            "gw:get_application app-1".to_string(),
            format!("k8s:GET {}", secret_path(SECRET)),
        ],
        "one gateway read by id and one Secret read, nothing else"
    );
    assert!(writes(&out.calls).is_empty(), "{:?}", out.calls);
    assert!(event_reasons(&out.calls).is_empty());
    assert_eq!(world.secret(), secret);
    assert_eq!(world.app()["status"], status);
}

#[tokio::test]
async fn a_foreign_key_in_the_secret_does_not_cause_a_write_on_every_reconcile() {
    // ensure_secret compares the whole `data` map with what it would apply. Server-side
    // apply keeps the keys another field manager owns, so once someone (a user, a
    // replicator) adds a key, the comparison never matches again: every reconcile (every
    // resync) re-applies the Secret and publishes a CredentialsWritten Event.
    let world = World::new(app_object());
    world.created().await;
    let mut secret = world.secret();
    secret["data"]["note"] = json!("aGVsbG8="); // "hello", written by another manager
    world.kube.put(&secret_path(SECRET), secret);
    let first = world.reconcile().await;
    first.result.expect("reconcile");
    assert_eq!(
        secret_value(&world.secret(), "note").as_deref(),
        Some("hello"),
        "server-side apply keeps another manager's key"
    );
    let second = world.reconcile().await;
    second.result.expect("reconcile");
    assert!(
        writes(&second.calls).is_empty() && event_reasons(&second.calls).is_empty(),
        "the credentials did not change, yet: {:?}",
        second
            .calls
            .iter()
            .map(common::Call::line)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_spec_update_updates_the_application_on_the_gateway() {
    let world = World::new(app_object());
    world.created().await;
    let key = world.gateway.api_key_of("app-1").expect("key");
    let secret = world.secret();
    world.edit(|o| {
        o["metadata"]["generation"] = json!(2);
        o["spec"]["description"] = json!("the web shop, v2");
        o["spec"]["contactEmails"] = json!(["shop@example.com", "oncall@example.com"]);
    });

    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(
        world.gateway.writes(),
        vec!["create_application Checkout", "update_application app-1"]
    );
    {
        let s = world.gateway.state();
        assert_eq!(
            s.applications.len(),
            1,
            "updated in place, not created again"
        );
        assert_eq!(
            s.applications[0].description.as_deref(),
            Some("the web shop, v2")
        );
        assert_eq!(
            s.applications[0].contact_emails,
            vec!["shop@example.com", "oncall@example.com"]
        );
    }
    assert_eq!(
        world.gateway.api_key_of("app-1"),
        Some(key),
        "an update does not touch the credentials"
    );
    assert_eq!(
        writes(&out.calls),
        vec![format!("PATCH {}/status", app_path())],
        "the Secret is unchanged"
    );
    assert_eq!(world.secret(), secret);
    let status = world.app()["status"].clone();
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(state_of(&status, "Ready").0, "True");
    assert_eq!(condition(&status, "Ready")["observedGeneration"], 2);

    // And it converges: the update's answer carried no tokens, the ones read are kept.
    let out = world.reconcile().await;
    assert!(writes(&out.calls).is_empty(), "{:?}", out.calls);
    assert_eq!(world.gateway.writes().len(), 2);
}

fn with_rotation(request: &str, overlap: &str) -> Value {
    let mut object = app_object();
    object["spec"]["rotation"] = json!({"requestId": request, "overlap": overlap});
    object
}

/// Creates the Application with rotation request `r1`, then requests `r2`: returns the key
/// before the rotation and the outcome of the rotating reconcile.
async fn rotated(world: &World) -> (String, Outcome) {
    world.created().await;
    let status = world.app()["status"].clone();
    assert_eq!(
        status["rotation"],
        json!({"lastRequestId": "r1", "phase": "Completed"}),
        "the first credential answers the first request: no regeneration"
    );
    assert_eq!(world.gateway.writes(), vec!["create_application Checkout"]);
    let old = world.gateway.api_key_of("app-1").expect("key");
    world.edit(|o| {
        o["metadata"]["generation"] = json!(2);
        o["spec"]["rotation"]["requestId"] = json!("r2");
    });
    (old, world.reconcile().await)
}

#[tokio::test]
async fn rotation_keeps_the_previous_key_during_the_overlap_then_drops_it() {
    let world = World::new(with_rotation("r1", "5m"));
    let (old, out) = rotated(&world).await;
    let old_hash = expected_hash(&[("apiKey", &old)]);
    // A successor application (same name) brings the new key; app-1 keeps the old one.
    assert_eq!(
        world.gateway.writes(),
        vec!["create_application Checkout", "create_application Checkout"]
    );
    let new = world.gateway.api_key_of("app-2").expect("key");
    assert_ne!(new, old);
    assert_eq!(world.gateway.api_key_of("app-1"), Some(old.clone()));
    {
        let s = world.gateway.state();
        let successor = &s.applications[1];
        assert_eq!(successor.name, "Checkout");
        assert_eq!(successor.description.as_deref(), Some("the web shop"));
        assert_eq!(successor.contact_emails, vec!["shop@example.com"]);
    }

    // The Secret holds the current and the previous key; the hash is the new key's.
    let secret = world.secret();
    assert_eq!(secret_keys(&secret), vec!["apiKey", "previousApiKey"]);
    assert_eq!(secret_value(&secret, "apiKey"), Some(new.clone()));
    assert_eq!(secret_value(&secret, "previousApiKey"), Some(old.clone()));
    let new_hash = expected_hash(&[("apiKey", &new)]);
    assert_ne!(new_hash, old_hash);
    assert_eq!(
        secret["metadata"]["annotations"][CREDENTIALS_HASH_ANNOTATION],
        json!(new_hash),
        "the hash annotation changed"
    );
    let status = world.app()["status"].clone();
    assert_eq!(status["credentialsHash"], json!(new_hash));
    assert_eq!(status["gatewayApplicationId"], "app-2");
    assert_eq!(status["rotation"]["lastRequestId"], "r2");
    assert_eq!(status["rotation"]["phase"], "Overlapping");
    assert_eq!(status["rotation"]["previousGatewayApplicationId"], "app-1");
    let ends = chrono::DateTime::parse_from_rfc3339(
        status["rotation"]["overlapEndsAt"]
            .as_str()
            .expect("overlapEndsAt"),
    )
    .expect("a timestamp");
    let left = ends.signed_duration_since(chrono::Utc::now());
    assert!(
        left > chrono::Duration::seconds(280) && left <= chrono::Duration::seconds(300),
        "the window is the requested 5m: {left}"
    );
    assert!(!status.to_string().contains(&new) && !status.to_string().contains(&old));
    assert_eq!(
        writes(&out.calls),
        vec![
            format!("PATCH {}", secret_path(SECRET)),
            format!("PATCH {}/status", app_path())
        ]
    );
    assert_eq!(
        event_reasons(&out.calls),
        vec!["ApiKeyRotated", "CredentialsWritten"]
    );
    // Woken when the window ends, not a resync later.
    let delay = requeue_after(&out.result.expect("reconcile")).expect("a requeue");
    assert!(
        delay > Duration::from_secs(280) && delay <= Duration::from_secs(301),
        "{delay:?}"
    );

    // During the window: converged, nothing written; both keys work on the gateway.
    let out = world.reconcile().await;
    assert!(writes(&out.calls).is_empty(), "{:?}", out.calls);
    assert_eq!(world.gateway.writes().len(), 2);
    assert_eq!(world.secret(), secret);
    assert!(world.gateway.accepts_api_key(&old) && world.gateway.accepts_api_key(&new));

    // After the window: the previous key leaves the Secret; the current one stays.
    world.edit(|o| {
        o["status"]["rotation"]["overlapEndsAt"] = json!("2020-01-01T00:00:00Z");
    });
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    let secret = world.secret();
    assert_eq!(secret_keys(&secret), vec!["apiKey"]);
    assert_eq!(secret_value(&secret, "apiKey"), Some(new.clone()));
    assert_eq!(
        secret["metadata"]["annotations"][CREDENTIALS_HASH_ANNOTATION],
        json!(new_hash)
    );
    let status = world.app()["status"].clone();
    assert_eq!(status["rotation"]["phase"], "Completed");
    assert_eq!(status["rotation"]["lastRequestId"], "r2");
    assert!(
        status["rotation"]
            .get("previousGatewayApplicationId")
            .is_none(),
        "{status}"
    );
    assert_eq!(status["gatewayApplicationId"], "app-2");
    assert_eq!(
        world.gateway.writes()[2..],
        ["delete_application app-1"],
        "the predecessor is deleted: that revokes the old key"
    );
    assert_eq!(
        writes(&out.calls),
        vec![
            format!("PATCH {}", secret_path(SECRET)),
            format!("PATCH {}/status", app_path())
        ]
    );
    assert_eq!(
        event_reasons(&out.calls),
        vec!["PreviousCredentialRemoved", "CredentialsWritten"]
    );
    assert!(
        !world.gateway.accepts_api_key(&old),
        "the old key is revoked"
    );
    assert!(world.gateway.accepts_api_key(&new));
}

#[tokio::test]
async fn the_previous_key_stays_valid_on_the_gateway_during_the_overlap() {
    // spec.rotation promises "the old one stays valid for `overlap`, then is revoked", and
    // phase Overlapping says "the old one is valid until overlapEndsAt". Regenerating would
    // replace the application's only API key on the gateway (webMethods, and the simulator:
    // sim/src/gateway.rs regenerate_tokens), so a rotation registers a successor application
    // instead: the predecessor keeps the previous key valid through the window.
    let world = World::new(with_rotation("r1", "5m"));
    let (old, out) = rotated(&world).await;
    out.result.expect("reconcile");
    assert_eq!(
        secret_value(&world.secret(), "previousApiKey"),
        Some(old.clone())
    );
    assert!(
        world.gateway.accepts_api_key(&old),
        "during the overlap window the previous key must still be accepted by the gateway"
    );
}

#[tokio::test]
async fn an_oauth_rotation_keeps_the_whole_previous_credential() {
    // Regenerating oAuthCredentials issues a new client id with the new secret (the
    // simulator does; so does this fake). The Secret must keep the previous client id with
    // the previous secret, or a client still on the previous credential cannot use it.
    let mut object = with_rotation("r1", "5m");
    object["spec"]["credentialType"] = json!("oauth2");
    let world = World::new(object);
    world.created().await;
    let before = world.secret();
    world.edit(|o| o["spec"]["rotation"]["requestId"] = json!("r2"));
    world.reconcile().await.result.expect("reconcile");
    let after = world.secret();
    assert_ne!(
        secret_value(&after, "clientId"),
        secret_value(&before, "clientId"),
        "the gateway issued a new client id"
    );
    assert_eq!(
        secret_value(&after, "previousClientSecret"),
        secret_value(&before, "clientSecret")
    );
    assert_eq!(
        secret_value(&after, "previousClientId"),
        secret_value(&before, "clientId"),
        "the previous secret is useless without its client id"
    );
    // Both OAuth clients work on the gateway through the window.
    let client = |secret: &serde_json::Value, id: &str, key: &str| {
        (
            secret_value(secret, id).expect("a client id"),
            secret_value(secret, key).expect("a client secret"),
        )
    };
    let (old_id, old_secret) = client(&before, "clientId", "clientSecret");
    let (new_id, new_secret) = client(&after, "clientId", "clientSecret");
    assert!(world.gateway.accepts_oauth_client(&old_id, &old_secret));
    assert!(world.gateway.accepts_oauth_client(&new_id, &new_secret));
    assert_eq!(
        secret_keys(&after),
        vec![
            "clientId",
            "clientSecret",
            "previousClientId",
            "previousClientSecret"
        ]
    );
    assert_eq!(
        after["metadata"]["annotations"][CREDENTIALS_HASH_ANNOTATION],
        json!(expected_hash(&[
            ("clientId", &new_id),
            ("clientSecret", &new_secret)
        ])),
        "the hash is the current credential's"
    );

    // The window ends: the previous client is revoked and leaves the Secret.
    world.edit(|o| o["status"]["rotation"]["overlapEndsAt"] = json!("2020-01-01T00:00:00Z"));
    world.reconcile().await.result.expect("reconcile");
    let done = world.secret();
    assert_eq!(secret_keys(&done), vec!["clientId", "clientSecret"]);
    assert!(!world.gateway.accepts_oauth_client(&old_id, &old_secret));
    assert!(world.gateway.accepts_oauth_client(&new_id, &new_secret));
}

/// The ids of the applications on the fake gateway, in creation order.
fn gateway_ids(world: &World) -> Vec<String> {
    world
        .gateway
        .state()
        .applications
        .iter()
        .map(|a| a.id.clone())
        .collect()
}

/// Moves the overlap window's end into the past.
fn end_window(world: &World) {
    world.edit(|o| o["status"]["rotation"]["overlapEndsAt"] = json!("2020-01-01T00:00:00Z"));
}

#[tokio::test]
async fn the_predecessor_is_deleted_on_the_gateway_when_the_window_ends() {
    let world = World::new(with_rotation("r1", "5m"));
    let (old, out) = rotated(&world).await;
    out.result.expect("reconcile");
    let new = world
        .gateway
        .api_key_of("app-2")
        .expect("the successor's key");
    assert_eq!(gateway_ids(&world), vec!["app-1", "app-2"]);

    // During the window: one read of the current application, one of the Secret.
    let out = world.reconcile().await;
    assert!(writes(&out.calls).is_empty(), "{:?}", out.calls);
    assert_eq!(
        world.journal.entries(),
        vec![
            "gw:get_application app-2".to_string(),
            format!("k8s:GET {}", secret_path(SECRET)),
        ]
    );

    end_window(&world);
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(
        world
            .journal
            .entries()
            .iter()
            .filter(|e| e.starts_with("gw:"))
            .collect::<Vec<_>>(),
        vec!["gw:get_application app-2", "gw:delete_application app-1"]
    );
    let deleted = world
        .journal
        .position("gw:delete_application")
        .expect("deleted");
    let secret_written = world
        .journal
        .position(&format!("k8s:PATCH {}", secret_path(SECRET)))
        .expect("the Secret is written");
    assert!(
        deleted < secret_written,
        "revoked on the gateway before the Secret drops it: {:?}",
        world.journal.entries()
    );
    assert_eq!(gateway_ids(&world), vec!["app-2"]);
    assert!(
        !world.gateway.accepts_api_key(&old),
        "the old key is refused"
    );
    assert!(
        world.gateway.accepts_api_key(&new),
        "the new key is accepted"
    );
    let secret = world.secret();
    assert_eq!(secret_keys(&secret), vec!["apiKey"]);
    assert_eq!(
        secret["metadata"]["annotations"][CREDENTIALS_HASH_ANNOTATION],
        json!(expected_hash(&[("apiKey", &new)]))
    );
    let events = out
        .calls
        .iter()
        .filter(|c| c.is_event())
        .map(|c| c.body.to_string())
        .collect::<String>();
    assert!(events.contains("app-1 deleted"), "{events}");
    assert!(!events.contains(&old) && !events.contains(&new));

    // Converged again: reads only.
    let out = world.reconcile().await;
    assert!(writes(&out.calls).is_empty(), "{:?}", out.calls);
    assert_eq!(world.gateway.writes().len(), 3);
}

#[tokio::test]
async fn a_predecessor_already_gone_at_the_window_end_counts_as_revoked() {
    let world = World::new(with_rotation("r1", "5m"));
    rotated(&world).await.1.result.expect("reconcile");
    world
        .gateway
        .state()
        .applications
        .retain(|a| a.id != "app-1");
    end_window(&world);
    let out = world.reconcile().await;
    assert_eq!(
        out.result.expect("a 404 counts as done"),
        Action::requeue(RESYNC)
    );
    assert!(
        world
            .journal
            .entries()
            .contains(&"gw:delete_application app-1".to_string())
    );
    let status = world.app()["status"].clone();
    assert_eq!(status["rotation"]["phase"], "Completed");
    assert_eq!(state_of(&status, "Ready").0, "True");
    assert_eq!(secret_keys(&world.secret()), vec!["apiKey"]);
}

#[tokio::test]
async fn a_failed_revocation_keeps_the_previous_credential_and_retries() {
    let world = World::new(with_rotation("r1", "5m"));
    let (old, out) = rotated(&world).await;
    out.result.expect("reconcile");
    let secret = world.secret();
    end_window(&world);
    world.gateway.state().fail.insert("delete_application", 500);
    let out = world.reconcile().await;
    let delay = requeue_after(&out.result.expect("a condition")).expect("a requeue");
    assert!(delay <= Duration::from_millis(600), "backs off: {delay:?}");
    assert_eq!(world.secret(), secret, "the Secret keeps the previous key");
    assert!(world.gateway.accepts_api_key(&old));
    let status = world.app()["status"].clone();
    assert_eq!(status["rotation"]["phase"], "Overlapping");
    assert_eq!(status["rotation"]["previousGatewayApplicationId"], "app-1");
    assert_eq!(
        state_of(&status, "Ready"),
        ("False".into(), "GatewayError".into())
    );

    world.gateway.state().fail.clear();
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("reconcile"), Action::requeue(RESYNC));
    assert!(!world.gateway.accepts_api_key(&old));
    assert_eq!(world.app()["status"]["rotation"]["phase"], "Completed");
    assert_eq!(secret_keys(&world.secret()), vec!["apiKey"]);
}

#[tokio::test]
async fn deleting_the_application_during_the_overlap_removes_both_gateway_applications() {
    let world = World::new(with_rotation("r1", "5m"));
    rotated(&world).await.1.result.expect("reconcile");
    assert_eq!(gateway_ids(&world), vec!["app-1", "app-2"]);
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("cleanup"), Action::await_change());
    assert!(
        gateway_ids(&world).is_empty(),
        "no orphan: {:?}",
        gateway_ids(&world)
    );
    assert_eq!(
        world.gateway.writes()[2..],
        ["delete_application app-2", "delete_application app-1"]
    );
    assert_eq!(world.app()["metadata"]["finalizers"], json!([]));
    assert!(world.kube.object(&secret_path(SECRET)).is_none());
}

#[tokio::test]
async fn a_rotation_copies_the_api_links_to_the_successor() {
    let world = World::new(with_rotation("r1", "5m"));
    world.created().await;
    world.gateway.seed_association("app-1", "api-7");
    world.gateway.seed_association("app-1", "api-8");
    world.edit(|o| o["spec"]["rotation"]["requestId"] = json!("r2"));
    world.reconcile().await.result.expect("reconcile");
    for api in ["api-7", "api-8"] {
        assert!(world.gateway.is_associated("app-2", api), "{api}");
        assert!(
            world.gateway.is_associated("app-1", api),
            "the predecessor keeps its links through the window: {api}"
        );
    }
    assert_eq!(
        world.gateway.writes(),
        vec![
            "create_application Checkout",
            "create_application Checkout",
            "set_application_apis app-2"
        ]
    );
    end_window(&world);
    world.reconcile().await.result.expect("reconcile");
    assert!(world.gateway.is_associated("app-2", "api-7"));
    assert!(!world.gateway.is_associated("app-1", "api-7"));
}

/// Requests rotation `r2` while linking the successor fails: the successor is registered but
/// the status never records it. Returns the key before the rotation.
async fn interrupted(world: &World) -> String {
    world.created().await;
    let old = world.gateway.api_key_of("app-1").expect("key");
    let secret = world.secret();
    world.edit(|o| o["spec"]["rotation"]["requestId"] = json!("r2"));
    world
        .gateway
        .state()
        .fail
        .insert("set_application_apis", 500);
    let out = world.reconcile().await;
    out.result.expect("a condition");
    world.gateway.state().fail.clear();
    assert_eq!(gateway_ids(world), vec!["app-1", "app-2"]);
    let status = world.app()["status"].clone();
    assert_eq!(status["gatewayApplicationId"], "app-1");
    assert_eq!(
        status["rotation"]["lastRequestId"], "r1",
        "not carried out yet"
    );
    assert_eq!(state_of(&status, "Ready").0, "False");
    assert_eq!(world.secret(), secret, "the Secret is untouched");
    old
}

#[tokio::test]
async fn an_interrupted_rotation_adopts_its_successor_instead_of_registering_another() {
    let world = World::new(with_rotation("r1", "5m"));
    let old = interrupted(&world).await;
    let out = world.reconcile().await;
    let delay = requeue_after(&out.result.expect("reconcile")).expect("a requeue");
    assert!(
        delay > Duration::from_secs(280) && delay <= Duration::from_secs(301),
        "woken at the window's end: {delay:?}"
    );
    assert_eq!(
        gateway_ids(&world),
        vec!["app-1", "app-2"],
        "the successor registered before is adopted, not a third application"
    );
    assert_eq!(
        world.gateway.writes(),
        vec!["create_application Checkout", "create_application Checkout"]
    );
    let status = world.app()["status"].clone();
    assert_eq!(status["gatewayApplicationId"], "app-2");
    assert_eq!(status["rotation"]["previousGatewayApplicationId"], "app-1");
    assert_eq!(status["rotation"]["lastRequestId"], "r2");
    let secret = world.secret();
    assert_eq!(secret_value(&secret, "previousApiKey"), Some(old));
    assert_eq!(
        secret_value(&secret, "apiKey"),
        world.gateway.api_key_of("app-2")
    );
}

#[tokio::test]
async fn deleting_the_application_after_an_interrupted_rotation_leaves_no_orphan() {
    let world = World::new(with_rotation("r1", "5m"));
    interrupted(&world).await;
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("cleanup"), Action::await_change());
    assert!(
        gateway_ids(&world).is_empty(),
        "the unrecorded successor is found by name and deleted: {:?}",
        gateway_ids(&world)
    );
}

#[tokio::test]
async fn a_new_request_during_the_overlap_ends_the_earlier_window_first() {
    let world = World::new(with_rotation("r1", "5m"));
    rotated(&world).await.1.result.expect("reconcile");
    let second = world.gateway.api_key_of("app-2").expect("key");
    world.edit(|o| o["spec"]["rotation"]["requestId"] = json!("r3"));
    let out = world.reconcile().await;
    out.result.expect("reconcile");
    assert_eq!(
        world.gateway.writes()[2..],
        ["delete_application app-1", "create_application Checkout"]
    );
    assert_eq!(gateway_ids(&world), vec!["app-2", "app-3"]);
    let status = world.app()["status"].clone();
    assert_eq!(status["gatewayApplicationId"], "app-3");
    assert_eq!(status["rotation"]["previousGatewayApplicationId"], "app-2");
    assert_eq!(status["rotation"]["lastRequestId"], "r3");
    assert_eq!(status["rotation"]["phase"], "Overlapping");
    let secret = world.secret();
    assert_eq!(secret_keys(&secret), vec!["apiKey", "previousApiKey"]);
    assert_eq!(
        secret_value(&secret, "previousApiKey"),
        Some(second.clone())
    );
    assert_eq!(
        secret_value(&secret, "apiKey"),
        world.gateway.api_key_of("app-3")
    );
    assert!(world.gateway.accepts_api_key(&second));
    assert_eq!(
        event_reasons(&out.calls),
        vec![
            "PreviousCredentialRemoved",
            "ApiKeyRotated",
            "CredentialsWritten"
        ]
    );
}

#[tokio::test]
async fn a_lagging_cache_does_not_carry_out_a_request_twice() {
    // The watch cache may still show the status from before a rotation when the next
    // reconcile starts: the request must be judged against the status written last.
    let world = World::new(with_rotation("r1", "5m"));
    world.created().await;
    world.edit(|o| {
        o["metadata"]["generation"] = json!(2);
        o["spec"]["rotation"]["requestId"] = json!("r2");
    });
    let stale = world.app();
    let lab = world.lab();
    lab.reconcile().await.0.expect("reconcile");
    assert_eq!(world.app()["status"]["gatewayApplicationId"], "app-2");
    let mut lagging = stale.clone();
    lagging["metadata"]["resourceVersion"] = world.app()["metadata"]["resourceVersion"].clone();
    world.kube.put(&app_path(), lagging);
    lab.reconcile().await.0.expect("reconcile");
    lab.finish().await;
    assert_eq!(
        gateway_ids(&world),
        vec!["app-1", "app-2"],
        "one successor per request"
    );
}

#[tokio::test]
async fn delete_removes_the_application_then_the_finalizer() {
    let world = World::new(app_object());
    world.created().await;
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    let out = world.reconcile().await;
    assert_eq!(out.result.expect("cleanup"), Action::await_change());
    assert!(world.gateway.state().applications.is_empty());
    assert_eq!(
        world.gateway.writes(),
        vec!["create_application Checkout", "delete_application app-1"]
    );
    assert_eq!(
        writes(&out.calls),
        vec![
            format!("DELETE {}", secret_path(SECRET)),
            format!("PATCH {}", app_path())
        ],
        "the Secret, then the finalizer; no status write"
    );
    let gone = world
        .journal
        .position("gw:delete_application")
        .expect("deleted on the gateway");
    let released = world
        .journal
        .position(&format!("k8s:PATCH {}", app_path()))
        .expect("finalizer removed");
    assert!(gone < released, "{:?}", world.journal.entries());
    let finalizer_patch = out
        .calls
        .iter()
        .find(|c| c.path == app_path())
        .expect("the finalizer patch");
    assert!(
        finalizer_patch
            .content_type
            .starts_with("application/json-patch")
    );
    assert_eq!(
        finalizer_patch.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": crds::FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ])
    );
    assert_eq!(world.app()["metadata"]["finalizers"], json!([]));
    assert!(world.kube.object(&secret_path(SECRET)).is_none());
    assert_eq!(event_reasons(&out.calls), vec!["Deleted"]);
}

#[tokio::test]
async fn delete_of_an_application_already_gone_from_the_gateway_is_done() {
    let mut object = app_object();
    object["metadata"]["deletionTimestamp"] = json!(DELETED_AT);
    object["status"] = json!({"gatewayApplicationId": "app-404", "secretName": SECRET});
    let world = World::new(object);
    let out = world.reconcile().await;
    assert_eq!(
        out.result.expect("a 404 on the gateway counts as done"),
        Action::await_change()
    );
    assert!(
        world
            .journal
            .entries()
            .contains(&"gw:delete_application app-404".to_string()),
        "{:?}",
        world.journal.entries()
    );
    assert!(world.gateway.writes().is_empty());
    assert_eq!(world.app()["metadata"]["finalizers"], json!([]));
    assert_eq!(
        writes(&out.calls),
        vec![
            format!("DELETE {}", secret_path(SECRET)),
            format!("PATCH {}", app_path())
        ]
    );
}

#[tokio::test]
async fn gateway_down_is_reported_and_backs_off() {
    let world = World::new(app_object());
    world.gateway.state().down = true;
    let lab = world.lab();
    let (first, _) = lab.reconcile().await;
    let (second, _) = lab.reconcile().await;
    let calls = world.kube.take_calls();
    let first = requeue_after(&first.expect("a transient failure is a condition, not an error"))
        .expect("a requeue");
    let second = requeue_after(&second.expect("again a condition")).expect("a requeue");
    assert!(
        first >= Duration::from_millis(400) && first <= Duration::from_millis(600),
        "backs off instead of waiting a resync: {first:?}"
    );
    assert!(
        second >= Duration::from_millis(800) && second <= Duration::from_millis(1200),
        "the backoff grows: {second:?}"
    );
    assert!(world.gateway.writes().is_empty());
    // The status is written once (the second reconcile finds it unchanged); the Secret is
    // neither read nor written without the gateway.
    assert_eq!(
        calls.iter().map(common::Call::line).collect::<Vec<_>>(),
        vec![format!("PATCH {}/status", app_path())]
    );
    let status = world.app()["status"].clone();
    assert_eq!(
        state_of(&status, "Ready"),
        ("False".into(), "GatewayError".into())
    );
    let message = condition(&status, "Ready")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("503"), "{message}");
    assert_eq!(state_of(&status, "Accepted").0, "True");
    assert!(status.get("gatewayApplicationId").is_none());

    // Back up: registered; a later failure backs off from the bottom again.
    world.gateway.state().down = false;
    let (result, _) = lab.reconcile().await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(
        state_of(&world.app()["status"], "Ready"),
        ("True".into(), "Reconciled".into())
    );
    world.gateway.state().down = true;
    let (result, _) = lab.reconcile().await;
    let delay = requeue_after(&result.expect("a condition")).expect("a requeue");
    assert!(
        delay <= Duration::from_millis(600),
        "reset after the success: {delay:?}"
    );
    lab.finish().await;
    assert_eq!(
        state_of(&world.app()["status"], "Ready"),
        ("False".into(), "GatewayError".into())
    );
    assert!(world.kube.object(&secret_path(SECRET)).is_some());
}

#[tokio::test]
async fn delete_keeps_the_finalizer_while_the_gateway_is_down() {
    let world = World::new(app_object());
    world.created().await;
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
        out.calls.is_empty(),
        "no Kubernetes call: the finalizer and the Secret stay: {:?}",
        out.calls
    );
    assert_eq!(
        world.app()["metadata"]["finalizers"],
        json!([crds::FINALIZER])
    );
    assert!(world.kube.object(&secret_path(SECRET)).is_some());
    assert_eq!(world.gateway.state().applications.len(), 1);
}

#[tokio::test]
async fn a_refused_delete_keeps_the_finalizer() {
    let world = World::new(app_object());
    world.created().await;
    world.edit(|o| o["metadata"]["deletionTimestamp"] = json!(DELETED_AT));
    world.gateway.state().fail.insert("delete_application", 500);
    let out = world.reconcile().await;
    let err = out.result.expect_err("cleanup fails");
    assert_eq!(err.metric_label(), "cleanup_failed");
    assert!(writes(&out.calls).is_empty(), "{:?}", out.calls);
    assert_eq!(
        world.app()["metadata"]["finalizers"],
        json!([crds::FINALIZER])
    );
}

#[tokio::test]
async fn an_environment_without_gateway_is_reported() {
    let world = World::new(app_object());
    let lab = Lab::new(&world.kube, None);
    let (result, _) = lab.reconcile().await;
    let calls = lab.finish().await;
    assert_eq!(result.expect("reconcile"), Action::requeue(RESYNC));
    assert_eq!(writes(&calls), vec![format!("PATCH {}/status", app_path())]);
    let status = world.app()["status"].clone();
    assert_eq!(
        state_of(&status, "Ready"),
        ("False".into(), "GatewayNotConfigured".into())
    );
    assert_eq!(
        condition(&status, "Ready")["message"],
        "no gateway is configured for dev"
    );
    assert!(world.kube.object(&secret_path(SECRET)).is_none());
}
