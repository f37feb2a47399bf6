//! The Api controller against the lab and a spawned `apim-sim`: inline and ConfigMap
//! definitions deployed to both stages, OpenAPI 3.1 converted, zero writes while converged,
//! a ConfigMap edit re-deploys, a hand deletion on the gateway is corrected within a resync,
//! and deleting the Apis leaves every gateway clean.
//!
//! Needs `cargo build --bins -p apim-operator -p apim-sim` first.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e::operator::{OperatorProcess, free_port};
use e2e::{TestNamespace, bin_path, crd_install, lab_or_skip, wait};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// `apim-sim` as a child process on a free port; killed on drop.
struct Sim {
    child: Child,
    port: u16,
}

impl Sim {
    fn start(extra: &[&str]) -> Sim {
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("apim-sim-{port}.log")))
            .expect("sim log");
        let child = Command::new(bin_path("apim-sim"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--environments",
                "dev,staging",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting apim-sim (cargo build -p apim-sim)");
        Sim { child, port }
    }

    fn gateway_url(&self, env: &str) -> String {
        format!("http://127.0.0.1:{}/gateways/{env}", self.port)
    }

    async fn request(&self, method: &str, path: &str, auth: bool) -> Option<(u16, Value)> {
        http(self.port, method, path, auth).await
    }

    async fn wait_up(&self) {
        wait::until(Duration::from_secs(20), "apim-sim to answer", || async {
            self.request("GET", "/_sim/health", false).await.map(|_| ())
        })
        .await;
    }

    /// The APIs of one environment's gateway (`/_sim/state/{env}`).
    async fn apis(&self, env: &str) -> Vec<Value> {
        self.request("GET", &format!("/_sim/state/{env}"), false)
            .await
            .and_then(|(_, v)| v.get("apis").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    /// Writes counted on one environment's gateway.
    async fn writes(&self, env: &str) -> u64 {
        self.request("GET", "/_sim/calls", false)
            .await
            .and_then(|(_, v)| {
                v.get(env)
                    .and_then(|t| t.get("writes"))
                    .and_then(Value::as_u64)
            })
            .unwrap_or(0)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.1 request on 127.0.0.1 with the simulator's gateway Basic credentials.
async fn http(port: u16, method: &str, path: &str, auth: bool) -> Option<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        // Administrator:manage
        let auth = if auth {
            "Authorization: Basic QWRtaW5pc3RyYXRvcjptYW5hZ2U=\r\n"
        } else {
            ""
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nContent-Length: 0\r\n{auth}Connection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        Some((code, serde_json::from_str(&body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .ok()
        .flatten()
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

fn tags() -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let labels = [
        ("apim.cab-i.com/environment", "dev"),
        ("apim.cab-i.com/project", "payments"),
        ("apim.cab-i.com/cost-center", "cc-4711"),
        ("apim.cab-i.com/ttl", "7d"),
        ("apim.cab-i.com/auto-teardown", "true"),
        ("apim.cab-i.com/data-class", "internal"),
    ];
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let annotations = [(
        "apim.cab-i.com/owner".to_string(),
        "payments-team@example.com".to_string(),
    )]
    .into();
    (labels, annotations)
}

fn api_object(name: &str, display: &str, definition: Value) -> crds::Api {
    let (labels, annotations) = tags();
    serde_json::from_value(json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": "Api",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "displayName": display,
            "version": "1.0.0",
            "backendUrl": "https://payments.internal.example.com/v1",
            "definition": definition,
            "stages": ["dev", "staging"]
        }
    }))
    .expect("a valid Api")
}

const DOC_30: &str = "openapi: 3.0.3\ninfo: {title: Payments, version: 1.0.0}\npaths:\n  /payments:\n    get:\n      responses:\n        '200': {description: ok}\n";

fn doc_31(path: &str) -> String {
    format!(
        "openapi: 3.1.0\ninfo: {{title: Orders, version: 1.0.0}}\npaths:\n  {path}:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {{type: [string, 'null']}}\n"
    )
}

fn condition(api: &crds::Api, type_: &str) -> Option<(String, String, String)> {
    let c = api
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn ready(apis: &Api<crds::Api>, name: &str) -> Option<crds::Api> {
    let api = apis.get(name).await.ok()?;
    let (status, _, _) = condition(&api, "Ready")?;
    (status == "True" && api.status.as_ref()?.observed_generation == api.metadata.generation)
        .then_some(api)
}

fn find_api<'a>(apis: &'a [Value], name: &str) -> Option<&'a Value> {
    apis.iter().find(|a| a["apiName"] == name)
}

#[tokio::test]
async fn apis_are_deployed_kept_in_sync_and_removed() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ctl-api", &[]).await;
    let sim = Sim::start(&[]);
    sim.wait_up().await;

    // Gateway credentials in a Secret the operator reads.
    let secrets: Api<Secret> = Api::namespaced(lab.admin(), ns.name());
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "gateway-admin"},
        "stringData": {"username": "Administrator", "password": "manage"}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the credentials Secret");

    let cms: Api<ConfigMap> = Api::namespaced(lab.admin(), ns.name());
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "orders-openapi"},
        "data": {"openapi.yaml": doc_31("/orders")}
    }))
    .expect("configmap");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create the ConfigMap");

    let apis: Api<crds::Api> = Api::namespaced(lab.admin(), ns.name());
    apis.create(
        &PostParams::default(),
        &api_object("payments", "Payments", json!({"inline": DOC_30})),
    )
    .await
    .expect("create inline Api");
    apis.create(
        &PostParams::default(),
        &api_object(
            "orders",
            "Orders",
            json!({"configMapRef": {"name": "orders-openapi", "key": "openapi.yaml"}}),
        ),
    )
    .await
    .expect("create ConfigMap Api");

    let secret_ref = format!("{}/gateway-admin", ns.name());
    let dev_url = sim.gateway_url("dev");
    let staging_url = sim.gateway_url("staging");
    let op = OperatorProcess::start(
        &lab,
        ns.name(),
        "apim-e2e-ctl-api",
        &[
            ("APIM_RESYNC_INTERVAL", "3s"),
            ("APIM_GATEWAY_URL_DEV", &dev_url),
            ("APIM_GATEWAY_URL_STAGING", &staging_url),
            ("APIM_GATEWAY_SECRET", &secret_ref),
        ],
    );
    op.wait_ready(Duration::from_secs(60)).await;

    // Ready in both stages, for both definition sources.
    for name in ["payments", "orders"] {
        let api = wait::until(
            Duration::from_secs(60),
            &format!("{name} Ready (log {})", op.log_path.display()),
            || ready(&apis, name),
        )
        .await;
        let status = api.status.clone().expect("status");
        let revision = status.revision.clone().expect("revision");
        assert_eq!(status.ready_stages.as_deref(), Some("2/2"));
        for env in [crds::Environment::Dev, crds::Environment::Staging] {
            let e = status
                .environments
                .get(&env)
                .unwrap_or_else(|| panic!("{name}: no status for {env}"));
            assert_eq!(
                e.deployed_revision.as_deref(),
                Some(revision.as_str()),
                "{name} {env}"
            );
            assert!(
                e.gateway_api_id.is_some() && e.active,
                "{name} {env}: {e:?}"
            );
            assert!(
                e.endpoint
                    .as_deref()
                    .is_some_and(|u| u.contains("/gateway/")),
                "{e:?}"
            );
            let last = e.last_deployment.as_ref().expect("last deployment");
            assert_eq!(last.result, crds::DeploymentResult::Succeeded);
            assert_eq!(last.trace_id.len(), 32);
        }
        assert_eq!(
            condition(&api, "Deployed").map(|c| c.0),
            Some("True".into())
        );
        assert_eq!(
            condition(&api, "Accepted").map(|c| c.0),
            Some("True".into())
        );
        assert!(
            api.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == crds::FINALIZER))
        );
    }
    let orders = apis.get("orders").await.expect("orders");
    let conversion = orders
        .status
        .as_ref()
        .and_then(|s| s.conversion.clone())
        .expect("a conversion report");
    assert_eq!(
        (
            conversion.source_version.as_str(),
            conversion.target_version.as_str()
        ),
        ("3.1.0", "3.0.3")
    );
    assert!(!conversion.changes.is_empty());

    // The simulator holds both APIs, active, 3.1 converted to 3.0, pointed at the backend.
    for env in ["dev", "staging"] {
        let state = sim.apis(env).await;
        assert_eq!(state.len(), 2, "{env}: {state:?}");
        let o = find_api(&state, "Orders").expect("Orders on the gateway");
        assert_eq!(o["isActive"], true);
        assert_eq!(o["apiDefinition"]["openapi"], "3.0.3");
        assert_eq!(
            o["apiDefinition"]["servers"][0]["url"],
            "https://payments.internal.example.com/v1"
        );
        assert!(find_api(&state, "Payments").is_some());
    }

    // Converged: several resyncs (3 s) cost no gateway write and no Kubernetes write.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rv = |l: Vec<crds::Api>| {
        l.into_iter()
            .map(|a| a.metadata.resource_version)
            .collect::<Vec<_>>()
    };
    let before = rv(apis.list(&ListParams::default()).await.expect("list").items);
    let writes_before = (sim.writes("dev").await, sim.writes("staging").await);
    let reconciles_before = op.metric_sum("apim_operator_reconciles_total").await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        rv(apis.list(&ListParams::default()).await.expect("list").items),
        before,
        "a converged Api was rewritten"
    );
    assert_eq!(
        (sim.writes("dev").await, sim.writes("staging").await),
        writes_before,
        "a converged Api wrote to a gateway"
    );
    let reconciles = op.metric_sum("apim_operator_reconciles_total").await - reconciles_before;
    assert!(
        reconciles >= 4.0,
        "expected periodic reconciles, saw {reconciles}"
    );
    let metrics = op.get("/metrics").await.map(|(_, b)| b).unwrap_or_default();
    assert!(metrics.contains("apim_operator_gateway_calls_total{environment=\"dev\",operation=\"get_api\",status=\"200\"}"), "{metrics}");

    // Editing the ConfigMap re-deploys the Api that uses it.
    let old_revision = orders.status.as_ref().and_then(|s| s.revision.clone());
    cms.patch(
        "orders-openapi",
        &PatchParams::apply("apim-e2e").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"openapi.yaml": doc_31("/orders/v2")}})),
    )
    .await
    .expect("edit the ConfigMap");
    wait::until(
        Duration::from_secs(30),
        "the ConfigMap edit to reach both gateways",
        || async {
            let mut ok = true;
            for env in ["dev", "staging"] {
                let state = sim.apis(env).await;
                ok &= find_api(&state, "Orders")
                    .is_some_and(|o| o["apiDefinition"]["paths"].get("/orders/v2").is_some());
            }
            ok.then_some(())
        },
    )
    .await;
    let orders = wait::until(
        Duration::from_secs(20),
        "orders Ready on the new revision",
        || async {
            let api = ready(&apis, "orders").await?;
            (api.status.as_ref()?.revision != old_revision
                && api.status.as_ref()?.ready_stages.as_deref() == Some("2/2"))
            .then_some(api)
        },
    )
    .await;
    assert_ne!(
        orders.status.as_ref().and_then(|s| s.revision.clone()),
        old_revision
    );

    // A hand deletion on the dev gateway is corrected within a resync.
    let id = find_api(&sim.apis("dev").await, "Payments")
        .and_then(|a| a["id"].as_str().map(str::to_owned))
        .expect("Payments id");
    let (code, _) = sim
        .request(
            "PUT",
            &format!("/gateways/dev/rest/apigateway/apis/{id}/deactivate"),
            true,
        )
        .await
        .expect("deactivate");
    assert_eq!(code, 200);
    let (code, _) = sim
        .request(
            "DELETE",
            &format!("/gateways/dev/rest/apigateway/apis/{id}"),
            true,
        )
        .await
        .expect("delete");
    assert_eq!(code, 204);
    let deleted_at = std::time::Instant::now();
    wait::until(
        Duration::from_secs(15),
        "the deleted API to be re-created on dev",
        || async {
            find_api(&sim.apis("dev").await, "Payments")
                .filter(|a| a["id"] != id.as_str() && a["isActive"] == true)
                .map(|_| ())
        },
    )
    .await;
    eprintln!(
        "hand deletion corrected after {:?} (resync 3s)",
        deleted_at.elapsed()
    );
    let payments = wait::until(
        Duration::from_secs(15),
        "the DriftCorrected condition",
        || async {
            let api = apis.get("payments").await.ok()?;
            condition(&api, "Drifted")
                .filter(|c| c.1 == "DriftCorrected")
                .map(|_| api)
        },
    )
    .await;
    let (_, _, message) = condition(&payments, "Drifted").expect("Drifted");
    assert!(message.contains("dev"), "{message}");

    // Deleting the Apis removes them from every gateway, then the objects go.
    for name in ["payments", "orders"] {
        apis.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    wait::until(Duration::from_secs(30), "the Apis to be gone", || async {
        apis.list(&ListParams::default())
            .await
            .ok()
            .filter(|l| l.items.is_empty())
            .map(|_| ())
    })
    .await;
    for env in ["dev", "staging"] {
        let state = sim.apis(env).await;
        assert!(state.is_empty(), "{env} still holds {state:?}");
    }
}

#[tokio::test]
async fn a_gateway_down_keeps_the_finalizer_until_it_is_back() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ctl-down", &[]).await;
    let sim = Sim::start(&[]);
    sim.wait_up().await;
    let apis: Api<crds::Api> = Api::namespaced(lab.admin(), ns.name());
    let mut api = api_object("payments", "Payments", json!({"inline": DOC_30}));
    api.spec.stages = vec![crds::Environment::Dev];
    apis.create(&PostParams::default(), &api)
        .await
        .expect("create");
    let dev_url = sim.gateway_url("dev");
    // Inline development credentials (local runs only).
    let op = OperatorProcess::start(
        &lab,
        ns.name(),
        "apim-e2e-ctl-down",
        &[
            ("APIM_RESYNC_INTERVAL", "3s"),
            ("APIM_GATEWAY_URL_DEV", &dev_url),
            ("APIM_GATEWAY_USERNAME", "Administrator"),
            ("APIM_GATEWAY_PASSWORD", "manage"),
        ],
    );
    op.wait_ready(Duration::from_secs(60)).await;
    wait::until(Duration::from_secs(60), "payments Ready", || {
        ready(&apis, "payments")
    })
    .await;

    // Gateway down: the deletion waits, with the finalizer on.
    http_put_json(sim.port, "/_sim/faults/dev", "{\"down\": true}").await;
    apis.delete("payments", &DeleteParams::default())
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let held = apis
        .get("payments")
        .await
        .expect("still there while the gateway is down");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(sim.apis("dev").await.len(), 1);

    // Back up: the API goes from the gateway, then the object goes.
    let _ = sim.request("DELETE", "/_sim/faults/dev", false).await;
    wait::until(
        Duration::from_secs(60),
        "the Api to be gone after the gateway is back",
        || async {
            match apis.get_opt("payments").await {
                Ok(None) => Some(()),
                _ => None,
            }
        },
    )
    .await;
    assert!(sim.apis("dev").await.is_empty());
}

async fn http_put_json(port: u16, path: &str, body: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let req = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 2"), "PUT {path}: {text}");
}

fn tagged(kind: &str, name: &str, spec: Value) -> Value {
    let (labels, annotations) = tags();
    json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": spec
    })
}

#[tokio::test]
async fn applications_get_a_secret_and_subscriptions_become_active() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ctl-app", &[]).await;
    let sim = Sim::start(&[]);
    sim.wait_up().await;
    let dev_url = sim.gateway_url("dev");
    let op = OperatorProcess::start(
        &lab,
        ns.name(),
        "apim-e2e-ctl-app",
        &[
            ("APIM_RESYNC_INTERVAL", "3s"),
            ("APIM_GATEWAY_URL_DEV", &dev_url),
            ("APIM_GATEWAY_USERNAME", "Administrator"),
            ("APIM_GATEWAY_PASSWORD", "manage"),
        ],
    );
    op.wait_ready(Duration::from_secs(60)).await;
    let subs: Api<crds::Subscription> = Api::namespaced(lab.admin(), ns.name());
    let apps: Api<crds::Application> = Api::namespaced(lab.admin(), ns.name());
    let apis: Api<crds::Api> = Api::namespaced(lab.admin(), ns.name());

    // The Subscription first: it says why it is not active.
    let sub: crds::Subscription = serde_json::from_value(tagged(
        "Subscription",
        "checkout-payments",
        json!({"apiRef": {"name": "payments"}, "applicationRef": {"name": "checkout"}, "environment": "dev"}),
    ))
    .expect("subscription");
    subs.create(&PostParams::default(), &sub)
        .await
        .expect("create subscription");
    let reason = wait::until(
        Duration::from_secs(30),
        "the Subscription to say why it is inactive",
        || async {
            let s = subs.get("checkout-payments").await.ok()?.status?;
            (!s.active).then_some(s.reason?)
        },
    )
    .await;
    assert!(
        reason.contains("payments") && reason.contains("does not exist"),
        "{reason}"
    );

    // Then the Api and the Application: the Subscription reacts and becomes active.
    let mut api = api_object("payments", "Payments", json!({"inline": DOC_30}));
    api.spec.stages = vec![crds::Environment::Dev];
    apis.create(&PostParams::default(), &api)
        .await
        .expect("create api");
    let app: crds::Application = serde_json::from_value(tagged(
        "Application",
        "checkout",
        json!({"displayName": "Checkout", "description": "web shop", "environment": "dev", "contactEmails": ["shop@example.com"]}),
    ))
    .expect("application");
    apps.create(&PostParams::default(), &app)
        .await
        .expect("create application");

    let app = wait::until(
        Duration::from_secs(60),
        &format!("the Application Ready (log {})", op.log_path.display()),
        || async {
            let a = apps.get("checkout").await.ok()?;
            let ready = a
                .status
                .as_ref()?
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(a)
        },
    )
    .await;
    let status = app.status.clone().expect("status");
    let hash = status.credentials_hash.clone().expect("credentials hash");
    let gw_app_id = status.gateway_application_id.clone().expect("gateway id");
    let status_json = serde_json::to_string(&status).expect("json");

    let secrets: Api<Secret> = Api::namespaced(lab.admin(), ns.name());
    let secret = secrets
        .get("checkout-credentials")
        .await
        .expect("the credentials Secret");
    let key = secret
        .data
        .as_ref()
        .and_then(|d| d.get("apiKey"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .expect("apiKey");
    let state = sim
        .request("GET", "/_sim/state/dev", false)
        .await
        .expect("state")
        .1;
    let sim_app = state["applications"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == gw_app_id.as_str()))
        .cloned()
        .expect("app on the gateway");
    assert_eq!(
        sim_app["accessTokens"]["apiAccessKey_credentials"]["apiAccessKey"].as_str(),
        Some(key.as_str()),
        "the Secret holds the gateway's key"
    );
    assert!(
        !status_json.contains(&key),
        "the key must never be in the status"
    );
    assert_eq!(
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("apim.cab-i.com/credentials-hash")),
        Some(&hash)
    );
    let owner = secret
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .expect("owner reference");
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Application", "checkout")
    );

    let sub = wait::until(
        Duration::from_secs(60),
        "the Subscription to become active",
        || async {
            let s = subs.get("checkout-payments").await.ok()?;
            s.status.as_ref()?.active.then_some(s)
        },
    )
    .await;
    let api_id = sub
        .status
        .as_ref()
        .and_then(|s| s.gateway_api_id.clone())
        .expect("api id");
    let state = sim
        .request("GET", "/_sim/state/dev", false)
        .await
        .expect("state")
        .1;
    let assoc = state["associations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        assoc
            .iter()
            .any(|a| a["applicationId"] == gw_app_id.as_str() && a["apiId"] == api_id.as_str()),
        "{assoc:?}"
    );

    // Converged: no gateway writes and no Kubernetes writes over several resyncs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = sim.writes("dev").await;
    let versions = || async {
        (
            apps.get("checkout")
                .await
                .ok()
                .and_then(|o| o.metadata.resource_version),
            subs.get("checkout-payments")
                .await
                .ok()
                .and_then(|o| o.metadata.resource_version),
            secrets
                .get("checkout-credentials")
                .await
                .ok()
                .and_then(|o| o.metadata.resource_version),
        )
    };
    let before = versions().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        sim.writes("dev").await,
        writes,
        "converged Application/Subscription/Api wrote to the gateway"
    );
    assert_eq!(
        versions().await,
        before,
        "a converged Application, Subscription or Secret was rewritten"
    );

    // Rotation: a new request id issues a new key on a successor gateway application; the
    // previous one stays valid on the gateway (its application, the predecessor, is kept)
    // and in the Secret for the overlap window (1m), then the predecessor is deleted and the
    // key leaves the Secret; the hash annotation follows.
    let accepted_keys = || async {
        let state = sim
            .request("GET", "/_sim/state/dev", false)
            .await
            .expect("state")
            .1;
        state["applications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| {
                a["accessTokens"]["apiAccessKey_credentials"]["apiAccessKey"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect::<Vec<String>>()
    };
    apps.patch(
        "checkout",
        &PatchParams::apply("apim-e2e").force(),
        &Patch::Apply(json!({"apiVersion": "apim.cab-i.com/v1alpha1", "kind": "Application", "spec": {
            "displayName": "Checkout", "description": "web shop", "environment": "dev",
            "contactEmails": ["shop@example.com"], "rotation": {"requestId": "CHG-1", "overlap": "1m"}}})),
    )
    .await
    .expect("request a rotation");
    let rotated = wait::until(Duration::from_secs(30), "the rotation to start", || async {
        let s = secrets.get("checkout-credentials").await.ok()?;
        let d = s.data.clone()?;
        d.contains_key("previousApiKey").then_some(s)
    })
    .await;
    let data = rotated.data.clone().expect("data");
    let text = |k: &str| {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    assert_eq!(
        text("previousApiKey").as_deref(),
        Some(key.as_str()),
        "the old key is kept during the overlap"
    );
    let new_key = text("apiKey").expect("new key");
    assert_ne!(new_key, key);
    let new_hash = rotated
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("apim.cab-i.com/credentials-hash"))
        .cloned();
    assert_ne!(
        new_hash.as_ref(),
        Some(&hash),
        "the hash annotation changes"
    );
    let app = apps.get("checkout").await.expect("app");
    let rotation = app
        .status
        .as_ref()
        .and_then(|s| s.rotation.clone())
        .expect("rotation status");
    assert_eq!(
        rotation.phase,
        crds::application::RotationPhase::Overlapping
    );
    assert_eq!(
        rotation.previous_gateway_application_id.as_deref(),
        Some(gw_app_id.as_str()),
        "the application before the rotation holds the previous key"
    );
    let successor_id = app
        .status
        .as_ref()
        .and_then(|s| s.gateway_application_id.clone())
        .expect("the successor's id");
    assert_ne!(successor_id, gw_app_id);
    let state = sim
        .request("GET", "/_sim/state/dev", false)
        .await
        .expect("state")
        .1;
    let key_of = |id: &str| {
        state["applications"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == id))
            .and_then(|x| x["accessTokens"]["apiAccessKey_credentials"]["apiAccessKey"].as_str())
            .map(str::to_owned)
    };
    assert_eq!(key_of(&successor_id).as_deref(), Some(new_key.as_str()));
    assert_eq!(
        key_of(&gw_app_id).as_deref(),
        Some(key.as_str()),
        "the predecessor keeps the previous key"
    );
    let accepted = accepted_keys().await;
    assert!(
        accepted.contains(&key),
        "the previous key is still accepted by the gateway during the overlap"
    );
    assert!(accepted.contains(&new_key));
    // The access follows the successor: its links were copied, and the Subscription
    // records it.
    wait::until(
        Duration::from_secs(30),
        "the Subscription to follow the successor application",
        || async {
            let s = subs.get("checkout-payments").await.ok()?.status?;
            let state = sim.request("GET", "/_sim/state/dev", false).await?.1;
            let linked = state["associations"].as_array()?.iter().any(|a| {
                a["applicationId"] == successor_id.as_str() && a["apiId"] == api_id.as_str()
            });
            (s.active
                && s.gateway_application_id.as_deref() == Some(successor_id.as_str())
                && linked)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        app.status.as_ref().and_then(|s| s.credentials_hash.clone()),
        new_hash
    );
    assert!(
        !serde_json::to_string(&app.status)
            .expect("json")
            .contains(&new_key)
    );
    wait::until(
        Duration::from_secs(100),
        "the overlap window to end",
        || async {
            let s = secrets.get("checkout-credentials").await.ok()?;
            let done = !s.data?.contains_key("previousApiKey");
            let app = apps.get("checkout").await.ok()?;
            let completed =
                app.status?.rotation?.phase == crds::application::RotationPhase::Completed;
            (done && completed).then_some(())
        },
    )
    .await;
    let accepted = accepted_keys().await;
    assert!(
        !accepted.contains(&key),
        "the previous key is refused once the window ended"
    );
    assert!(accepted.contains(&new_key), "the new key is accepted");
    let state = sim
        .request("GET", "/_sim/state/dev", false)
        .await
        .expect("state")
        .1;
    assert!(
        !state["applications"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == gw_app_id.as_str())),
        "the predecessor is deleted from the gateway"
    );

    // Deleting the Subscription revokes the access; deleting the Application removes it.
    subs.delete("checkout-payments", &DeleteParams::default())
        .await
        .expect("delete sub");
    wait::until(
        Duration::from_secs(30),
        "the Subscription to be gone",
        || async {
            subs.get_opt("checkout-payments")
                .await
                .ok()
                .filter(Option::is_none)
                .map(|_| ())
        },
    )
    .await;
    let state = sim
        .request("GET", "/_sim/state/dev", false)
        .await
        .expect("state")
        .1;
    assert_eq!(
        state["associations"].as_array().map(Vec::len),
        Some(0),
        "{state}"
    );
    apps.delete("checkout", &DeleteParams::default())
        .await
        .expect("delete app");
    wait::until(
        Duration::from_secs(30),
        "the Application to be gone from the gateway",
        || async {
            let state = sim.request("GET", "/_sim/state/dev", false).await?.1;
            (state["applications"].as_array().map(Vec::len) == Some(0)
                && apps.get_opt("checkout").await.ok()?.is_none())
            .then_some(())
        },
    )
    .await;
    apis.delete("payments", &DeleteParams::default())
        .await
        .expect("delete api");
    // Wait for the finalizer while the operator still runs.
    wait::until(Duration::from_secs(30), "the Api to be gone", || async {
        apis.get_opt("payments")
            .await
            .ok()
            .filter(Option::is_none)
            .map(|_| ())
    })
    .await;
    assert!(sim.apis("dev").await.is_empty());
}

#[tokio::test]
async fn the_awx_driver_runs_the_deploy_job_template() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ctl-awx", &[]).await;
    let playbooks = e2e::workspace_root().join("ansible");
    let sim = Sim::start(&["--playbook-dir", playbooks.to_str().expect("utf-8 path")]);
    sim.wait_up().await;
    let dev_url = sim.gateway_url("dev");
    let awx_url = format!("http://127.0.0.1:{}", sim.port);
    let op = OperatorProcess::start(
        &lab,
        ns.name(),
        "apim-e2e-ctl-awx",
        &[
            ("APIM_RESYNC_INTERVAL", "5s"),
            ("APIM_GATEWAY_URL_DEV", &dev_url),
            ("APIM_GATEWAY_USERNAME", "Administrator"),
            ("APIM_GATEWAY_PASSWORD", "manage"),
            ("APIM_AWX_URL", &awx_url),
            ("APIM_AWX_TOKEN", "awx-token"),
        ],
    );
    op.wait_ready(Duration::from_secs(60)).await;
    let apis: Api<crds::Api> = Api::namespaced(lab.admin(), ns.name());
    let mut api = api_object("payments", "Payments", json!({"inline": DOC_30}));
    api.spec.stages = vec![crds::Environment::Dev];
    api.spec.driver = crds::Driver::Awx;
    apis.create(&PostParams::default(), &api)
        .await
        .expect("create");
    let api = wait::until(
        Duration::from_secs(120),
        &format!("payments Ready through AWX (log {})", op.log_path.display()),
        || ready(&apis, "payments"),
    )
    .await;
    let env = api
        .status
        .as_ref()
        .and_then(|s| s.environments.get(&crds::Environment::Dev))
        .cloned()
        .expect("dev status");
    let last = env.last_deployment.expect("last deployment");
    assert!(last.awx_job_id.is_some(), "{last:?}");
    assert_eq!(last.result, crds::DeploymentResult::Succeeded);
    let state = sim.apis("dev").await;
    let deployed = find_api(&state, "Payments").expect("deployed by the playbook");
    assert_eq!(deployed["isActive"], true);
    assert_eq!(env.gateway_api_id.as_deref(), deployed["id"].as_str());
    let metrics = op.get("/metrics").await.map(|(_, b)| b).unwrap_or_default();
    assert!(metrics.contains("apim_operator_awx_job_duration_seconds_count{template=\"apim-deploy-api\",status=\"successful\"} 1"), "{metrics}");
    // Converged: no further job.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let jobs = sim
        .request("GET", "/_sim/state", false)
        .await
        .and_then(|(_, v)| v["awx"]["jobs"].as_array().map(Vec::len));
    assert_eq!(jobs, Some(1), "a converged Api launched another job");
    apis.delete("payments", &DeleteParams::default())
        .await
        .expect("delete");
    wait::until(Duration::from_secs(30), "the Api to be gone", || async {
        apis.get_opt("payments")
            .await
            .ok()
            .filter(Option::is_none)
            .map(|_| ())
    })
    .await;
    assert!(sim.apis("dev").await.is_empty());
}
