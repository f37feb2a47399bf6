//! Contract tests: every `GatewayApi` call of `HttpGateway` against the simulator
//! (`apim-sim`), error paths included. Each test starts its own simulator.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apim_operator::gateway::{
    AliasSpec, AliasTarget, ApiDocument, ApplicationIdentifier, ApplicationSpec, Change,
    CredentialKind, Deleted, GatewayApi, GatewayConfig, GatewayCredentials, GatewayErrorKind,
    HttpGateway,
};
use apim_sim::{RunningSim, SimConfig};
use serde_json::{Value, json};

/// Fails a test that hangs instead of letting it block the suite.
async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("the test did not finish within 60 s")
}

async fn sim() -> RunningSim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    apim_sim::spawn(SimConfig::default())
        .await
        .expect("the simulator starts")
}

fn config(sim: &RunningSim, env: &str) -> GatewayConfig {
    let mut config = GatewayConfig::new(
        env,
        sim.gateway_url(env),
        GatewayCredentials::basic("Administrator", "manage"),
    );
    config.timeout = Duration::from_secs(5);
    config.min_backoff = Duration::from_millis(5);
    config.max_backoff = Duration::from_millis(20);
    config.max_retry_after = Duration::from_millis(150);
    config
}

fn gateway(config: GatewayConfig) -> HttpGateway {
    HttpGateway::new(config).expect("the client builds")
}

/// Records every call reported to the metrics hook: (operation, status, attempts).
type Calls = Arc<Mutex<Vec<(&'static str, String, usize)>>>;

fn recorded(config: GatewayConfig) -> (HttpGateway, Calls) {
    let calls: Calls = Arc::default();
    let sink = calls.clone();
    let gateway = gateway(config).with_metrics(Arc::new(
        move |call: &apim_operator::gateway::GatewayCall<'_>| {
            sink.lock().expect("not poisoned").push((
                call.operation,
                call.status.to_owned(),
                call.attempts,
            ));
        },
    ));
    (gateway, calls)
}

async fn fault(sim: &RunningSim, target: &str, spec: Value) {
    let url = format!("{}/_sim/faults/{target}", sim.base_url());
    let client = reqwest::Client::builder()
        .tls_backend_rustls()
        .build()
        .expect("client");
    let response = if spec.is_null() {
        client.delete(url).send().await
    } else {
        client.put(url).json(&spec).send().await
    }
    .expect("fault endpoint answers");
    assert!(
        response.status().is_success(),
        "fault injection refused: {}",
        response.status()
    );
}

fn petstore(name: &str, version: &str) -> ApiDocument {
    ApiDocument {
        name: name.into(),
        version: version.into(),
        description: Some("Pets".into()),
        maturity_state: None,
        definition: json!({
            "openapi": "3.0.3",
            "info": {"title": name, "version": version},
            "servers": [{"url": "http://petstore.internal:8080/v1"}],
            "paths": {"/pets": {"get": {"responses": {"200": {"description": "ok"}}}}}
        }),
    }
}

#[tokio::test]
async fn api_lifecycle_create_read_update_activate_delete() {
    within(async {
        let sim = sim().await;
        let gw = gateway(config(&sim, "dev"));
        assert_eq!(gw.environment(), "dev");

        let created = gw
            .create_api(&petstore("petstore", "1.0"))
            .await
            .expect("create");
        assert_eq!(created.api_name, "petstore");
        assert_eq!(created.api_version, "1.0");
        assert!(!created.is_active, "APIs are created inactive");
        assert!(!created.id.is_empty());

        let read = gw.get_api(&created.id).await.expect("read");
        assert_eq!(read.id, created.id);
        assert_eq!(read.api_description.as_deref(), Some("Pets"));

        let found = gw.find_api("petstore", "1.0").await.expect("find");
        assert_eq!(found.map(|a| a.id), Some(created.id.clone()));
        assert_eq!(gw.find_api("petstore", "9.9").await.expect("find"), None);

        let mut changed = petstore("petstore", "1.0");
        changed.description = Some("More pets".into());
        let updated = gw.update_api(&created.id, &changed).await.expect("update");
        assert_eq!(updated.api_description.as_deref(), Some("More pets"));
        assert_eq!(updated.id, created.id);

        assert_eq!(
            gw.activate_api(&created.id).await.expect("activate"),
            Change::Changed
        );
        assert!(gw.get_api(&created.id).await.expect("read").is_active);
        assert_eq!(
            gw.activate_api(&created.id).await.expect("again"),
            Change::Unchanged
        );
        assert_eq!(
            gw.deactivate_api(&created.id).await.expect("off"),
            Change::Changed
        );
        assert_eq!(
            gw.deactivate_api(&created.id).await.expect("off"),
            Change::Unchanged
        );
        assert_eq!(
            gw.activate_api(&created.id).await.expect("on"),
            Change::Changed
        );

        // Deleting an active API deactivates it first.
        assert_eq!(
            gw.delete_api(&created.id, false).await.expect("delete"),
            Deleted::Deleted
        );
        assert_eq!(
            gw.delete_api(&created.id, false)
                .await
                .expect("delete again"),
            Deleted::AlreadyAbsent
        );
        let gone = gw.get_api(&created.id).await.expect_err("gone");
        assert!(gone.is_not_found(), "{gone}");
        assert!(!gone.is_transient());
        assert_eq!(
            gw.activate_api(&created.id)
                .await
                .map_err(|e| e.is_not_found())
                .err(),
            Some(true)
        );
    })
    .await;
}

#[tokio::test]
async fn list_follows_pages_until_exhausted() {
    within(async {
        let sim = sim().await;
        let mut cfg = config(&sim, "staging");
        cfg.page_size = 2;
        let (gw, calls) = recorded(cfg);
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                gw.create_api(&petstore(&format!("api-{i}"), "1"))
                    .await
                    .expect("create")
                    .id,
            );
        }
        let listed = gw.list_apis().await.expect("list");
        let mut listed_ids: Vec<String> = listed.iter().map(|a| a.id.clone()).collect();
        listed_ids.sort();
        ids.sort();
        assert_eq!(listed_ids, ids);
        let pages = calls
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(op, _, _)| *op == "list_apis")
            .count();
        assert_eq!(pages, 3, "5 APIs in pages of 2 take 3 pages");
        // Another environment is another gateway.
        let other = gateway(config(&sim, "prod"));
        assert!(other.list_apis().await.expect("list").is_empty());
    })
    .await;
}

#[tokio::test]
async fn duplicate_api_is_refused_with_the_gateway_details() {
    within(async {
        let sim = sim().await;
        let (gw, calls) = recorded(config(&sim, "dev"));
        gw.create_api(&petstore("orders", "2.0")).await.expect("create");
        let error = gw.create_api(&petstore("orders", "2.0")).await.expect_err("duplicate");
        assert_eq!(error.status(), Some(400));
        assert!(!error.is_transient() && !error.is_not_found());
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "failed to create API \"orders\" 2.0 on gateway dev ({}): the gateway answered 400 Bad Request: ",
                sim.gateway_url("dev")
            )),
            "{message}"
        );
        assert!(message.contains("already exists"), "{message}");
        let last = calls.lock().expect("not poisoned").last().cloned();
        assert_eq!(last, Some(("create_api", "400".to_owned(), 1)), "4xx is never retried");
    })
    .await;
}

#[tokio::test]
async fn openapi_31_is_refused_locally_unless_supported() {
    within(async {
        let sim = sim().await;
        let (gw, calls) = recorded(config(&sim, "dev"));
        let mut doc = petstore("next", "1");
        doc.definition["openapi"] = json!("3.1.0");
        let error = gw.create_api(&doc).await.expect_err("3.1 refused");
        assert!(matches!(error.kind, GatewayErrorKind::Unsupported(_)), "{error}");
        assert!(error.to_string().contains("OpenAPI 3.1"), "{error}");
        assert!(calls.lock().expect("not poisoned").is_empty(), "nothing was sent");

        // A client that claims 3.1 support sends it, and this gateway (10.15-like) says 400.
        let mut cfg = config(&sim, "dev");
        cfg.supports_openapi_31 = true;
        let error = gateway(cfg).create_api(&doc).await.expect_err("gateway refuses 3.1");
        assert_eq!(error.status(), Some(400), "{error}");

        // Swagger 2.0 is accepted.
        let swagger = ApiDocument {
            definition: json!({"swagger": "2.0", "info": {"title": "s", "version": "1"}, "paths": {}}),
            ..petstore("legacy", "1")
        };
        gw.create_api(&swagger).await.expect("swagger create");
    })
    .await;
}

#[tokio::test]
async fn applications_credentials_and_subscriptions() {
    within(async {
        let sim = sim().await;
        let gw = gateway(config(&sim, "dev"));
        let api_a = gw.create_api(&petstore("a", "1")).await.expect("api a").id;
        let api_b = gw.create_api(&petstore("b", "1")).await.expect("api b").id;

        let spec = ApplicationSpec {
            name: "shop".into(),
            description: Some("The shop".into()),
            contact_emails: vec!["team@example.com".into()],
            identifiers: vec![ApplicationIdentifier {
                name: "client ip".into(),
                key: "ip".into(),
                value: vec!["10.0.0.1".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let app = gw.create_application(&spec).await.expect("create app");
        assert_eq!(app.name, "shop");
        let first_key = app
            .access_tokens
            .as_ref()
            .and_then(|t| t.api_access_key.clone())
            .expect("an API key at creation");
        assert!(
            !format!("{app:?}").contains(first_key.expose()),
            "Debug redacts the key"
        );

        let read = gw.get_application(&app.id).await.expect("read app");
        assert_eq!(read.contact_emails, vec!["team@example.com".to_owned()]);
        assert_eq!(read.identifiers.len(), 1);
        assert_eq!(
            gw.find_application("shop")
                .await
                .expect("find")
                .map(|a| a.id),
            Some(app.id.clone())
        );
        assert_eq!(gw.list_applications().await.expect("list").len(), 1);

        let updated = gw
            .update_application(
                &app.id,
                &ApplicationSpec {
                    description: Some("The new shop".into()),
                    ..spec.clone()
                },
            )
            .await
            .expect("update app");
        assert_eq!(updated.description.as_deref(), Some("The new shop"));

        let creds = gw
            .regenerate_credentials(&app.id, CredentialKind::ApiKey)
            .await
            .expect("regenerate key");
        let new_key = creds.api_access_key.clone().expect("a new key");
        assert_ne!(new_key, first_key, "the key changed");
        let debug = format!("{creds:?}");
        assert!(
            !debug.contains(new_key.expose()) && debug.contains("<redacted>"),
            "{debug}"
        );
        let oauth = gw
            .regenerate_credentials(&app.id, CredentialKind::OAuth)
            .await
            .expect("regenerate oauth");
        assert!(oauth.client_id.is_some() && oauth.client_secret.is_some());
        assert!(
            !format!("{oauth:?}")
                .contains(oauth.client_secret.as_ref().map_or("x", |s| s.expose()))
        );

        // Subscriptions: read list, replace list, report whether it changed.
        assert!(gw.application_apis(&app.id).await.expect("apis").is_empty());
        assert_eq!(
            gw.associate_api(&app.id, &api_a).await.expect("assoc"),
            Change::Changed
        );
        assert_eq!(
            gw.associate_api(&app.id, &api_a).await.expect("again"),
            Change::Unchanged
        );
        assert_eq!(
            gw.associate_api(&app.id, &api_b).await.expect("assoc b"),
            Change::Changed
        );
        let mut linked = gw.application_apis(&app.id).await.expect("apis");
        linked.sort();
        let mut both = vec![api_a.clone(), api_b.clone()];
        both.sort();
        assert_eq!(linked, both);
        assert_eq!(
            gw.set_application_apis(&app.id, &[api_b.clone(), api_a.clone()])
                .await
                .expect("same set"),
            Change::Unchanged
        );
        assert_eq!(
            gw.dissociate_api(&app.id, &api_a).await.expect("dissoc"),
            Change::Changed
        );
        assert_eq!(
            gw.dissociate_api(&app.id, &api_a).await.expect("again"),
            Change::Unchanged
        );
        assert_eq!(
            gw.application_apis(&app.id).await.expect("apis"),
            vec![api_b.clone()]
        );

        // An API referenced by an application needs force to go.
        let refused = gw.delete_api(&api_b, false).await.expect_err("in use");
        assert_eq!(refused.status(), Some(400), "{refused}");
        assert_eq!(
            gw.delete_api(&api_b, true).await.expect("forced"),
            Deleted::Deleted
        );
        assert_eq!(
            gw.set_application_apis(&app.id, &[]).await.expect("empty"),
            Change::Unchanged,
            "the forced delete unlinked it"
        );

        assert_eq!(
            gw.delete_application(&app.id).await.expect("delete"),
            Deleted::Deleted
        );
        assert_eq!(
            gw.delete_application(&app.id).await.expect("again"),
            Deleted::AlreadyAbsent
        );
        assert!(
            gw.get_application(&app.id)
                .await
                .expect_err("gone")
                .is_not_found()
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_application_sub_resources_are_not_found_not_400() {
    within(async {
        let sim = sim().await;
        let gw = gateway(config(&sim, "dev"));
        let missing = "00000000-0000-0000-0000-000000000000";
        let error = gw
            .regenerate_credentials(missing, CredentialKind::ApiKey)
            .await
            .expect_err("unknown application");
        assert!(error.is_not_found(), "{error}");
        assert!(
            error.to_string().contains("answered 400"),
            "keeps what the gateway said: {error}"
        );
        let error = gw
            .associate_api(missing, "x")
            .await
            .expect_err("unknown application");
        assert!(error.is_not_found(), "{error}");
        // A 400 about something else stays a 400: an unknown API id.
        let app = gw
            .create_application(&ApplicationSpec {
                name: "x".into(),
                ..Default::default()
            })
            .await
            .expect("app");
        let error = gw
            .associate_api(&app.id, "no-such-api")
            .await
            .expect_err("unknown API");
        assert_eq!(error.status(), Some(400), "{error}");
    })
    .await;
}

#[tokio::test]
async fn aliases_per_stage() {
    within(async {
        let sim = sim().await;
        let gw = gateway(config(&sim, "dev"));
        let spec = |stage: &str, uri: &str| AliasSpec {
            name: "petstore-backend".into(),
            description: Some("backend".into()),
            stage: Some(stage.into()),
            target: AliasTarget::Endpoint {
                uri: uri.into(),
                connection_timeout: Some(10),
                read_timeout: Some(20),
            },
        };
        let dev = gw
            .create_alias(&spec("dev", "http://dev:8080"))
            .await
            .expect("create dev");
        let test = gw
            .create_alias(&spec("test", "http://test:8080"))
            .await
            .expect("create test");
        assert_ne!(dev.id, test.id);
        assert_eq!(dev.alias_type, "endpoint");
        assert_eq!(dev.end_point_uri.as_deref(), Some("http://dev:8080"));

        let duplicate = gw
            .create_alias(&spec("dev", "http://other"))
            .await
            .expect_err("dup");
        assert_eq!(duplicate.status(), Some(400), "{duplicate}");

        let found = gw
            .find_alias("petstore-backend", "endpoint", Some("test"))
            .await
            .expect("find");
        assert_eq!(found.map(|a| a.id), Some(test.id.clone()));
        assert_eq!(
            gw.find_alias("petstore-backend", "simple", Some("test"))
                .await
                .expect("find"),
            None
        );
        assert_eq!(gw.list_aliases().await.expect("list").len(), 2);

        let updated = gw
            .update_alias(&dev.id, &spec("dev", "http://dev-2:8080"))
            .await
            .expect("update");
        assert_eq!(updated.end_point_uri.as_deref(), Some("http://dev-2:8080"));
        assert_eq!(
            gw.get_alias(&dev.id)
                .await
                .expect("read")
                .end_point_uri
                .as_deref(),
            Some("http://dev-2:8080")
        );

        let simple = AliasSpec {
            name: "tenant".into(),
            description: None,
            stage: None,
            target: AliasTarget::Simple {
                value: "acme".into(),
            },
        };
        let simple = gw.create_alias(&simple).await.expect("simple");
        assert_eq!(simple.value.as_deref(), Some("acme"));
        assert_eq!(
            gw.find_alias("tenant", "simple", None)
                .await
                .expect("find")
                .map(|a| a.id),
            Some(simple.id)
        );

        assert_eq!(
            gw.delete_alias(&dev.id).await.expect("delete"),
            Deleted::Deleted
        );
        assert_eq!(
            gw.delete_alias(&dev.id).await.expect("again"),
            Deleted::AlreadyAbsent
        );
        let error = gw.get_alias(&dev.id).await.expect_err("gone");
        assert!(error.is_not_found());
        assert_eq!(
            error.details(),
            Some(format!("Alias with id: {} does not exist.", dev.id).as_str())
        );
    })
    .await;
}

#[tokio::test]
async fn bad_credentials_are_401_and_not_retried() {
    within(async {
        let sim = sim().await;
        let mut cfg = config(&sim, "dev");
        cfg.credentials = GatewayCredentials::basic("Administrator", "wrong");
        let (gw, calls) = recorded(cfg);
        let error = gw.list_apis().await.expect_err("401");
        assert_eq!(error.status(), Some(401));
        assert!(error.is_unauthorized() && !error.is_transient(), "{error}");
        assert_eq!(calls.lock().expect("not poisoned")[0].2, 1);
        // Bearer tokens are sent as such; this sim accepts Basic only by default.
        let mut cfg = config(&sim, "dev");
        cfg.credentials = GatewayCredentials::bearer("nope");
        assert_eq!(
            gateway(cfg).list_apis().await.expect_err("401").status(),
            Some(401)
        );
    })
    .await;
}

#[tokio::test]
async fn bearer_token_is_accepted_when_the_gateway_has_one() {
    within(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = apim_sim::spawn(SimConfig {
            gateway_token: Some("gw-token".into()),
            ..SimConfig::default()
        })
        .await
        .expect("sim");
        let mut cfg = config(&sim, "dev");
        cfg.credentials = GatewayCredentials::bearer("gw-token");
        gateway(cfg).list_apis().await.expect("bearer accepted");
    })
    .await;
}

#[tokio::test]
async fn throttling_429_is_retried_after_retry_after_then_succeeds() {
    within(async {
        let sim = sim().await;
        let (gw, calls) = recorded(config(&sim, "dev"));
        fault(&sim, "dev", json!({"burst429": 2})).await;
        let started = Instant::now();
        gw.list_apis().await.expect("succeeds on the third attempt");
        let elapsed = started.elapsed();
        assert_eq!(
            calls.lock().expect("not poisoned").last().cloned(),
            Some(("list_apis", "200".to_owned(), 3))
        );
        // Retry-After: 1 s, capped at 150 ms, twice; the backoff alone would be ≤ 60 ms.
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(2),
            "the cap applies: {elapsed:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up() {
    within(async {
        let sim = sim().await;
        let mut cfg = config(&sim, "dev");
        cfg.max_retries = 2;
        let (gw, calls) = recorded(cfg);
        fault(&sim, "dev", json!({"errorRate": 1.0})).await;
        let error = gw.get_api("anything").await.expect_err("500");
        assert_eq!(error.status(), Some(500));
        assert!(error.is_transient(), "{error}");
        assert!(error.to_string().ends_with("(after 3 attempts)"), "{error}");
        assert_eq!(calls.lock().expect("not poisoned")[0].2, 3);
        fault(&sim, "dev", Value::Null).await;
        assert!(
            gw.get_api("anything")
                .await
                .expect_err("404 now")
                .is_not_found()
        );
    })
    .await;
}

#[tokio::test]
async fn slow_gateway_times_out() {
    within(async {
        let sim = sim().await;
        let mut cfg = config(&sim, "dev");
        cfg.timeout = Duration::from_millis(200);
        cfg.max_retries = 1;
        let (gw, calls) = recorded(cfg);
        fault(&sim, "dev", json!({"latencyMs": 1000})).await;
        let started = Instant::now();
        let error = gw.list_apis().await.expect_err("timeout");
        assert!(
            matches!(error.kind, GatewayErrorKind::Timeout { attempts: 2, .. }),
            "{error}"
        );
        assert!(error.is_transient());
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            calls.lock().expect("not poisoned")[0],
            ("list_apis", "timeout".to_owned(), 2)
        );
    })
    .await;
}

#[tokio::test]
async fn gateway_down_or_unreachable_is_transient() {
    within(async {
        let sim = sim().await;
        let mut cfg = config(&sim, "dev");
        cfg.max_retries = 1;
        let gw = gateway(cfg);
        fault(&sim, "dev", json!({"down": true})).await;
        let error = gw.list_apis().await.expect_err("down");
        assert_eq!(error.status(), Some(503), "{error}");
        assert!(error.is_transient());

        // Nothing listens: a connect error.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let mut cfg = config(&sim, "dev");
        cfg.base_url = format!("http://127.0.0.1:{port}/gateways/dev");
        cfg.max_retries = 1;
        let error = gateway(cfg).get_api("x").await.expect_err("unreachable");
        assert!(matches!(error.kind, GatewayErrorKind::Connect { attempts: 2, .. }), "{error}");
        assert!(error.is_transient());
        assert!(
            error.to_string().starts_with(&format!(
                "failed to read API x on gateway dev (http://127.0.0.1:{port}/gateways/dev): the gateway could not be reached"
            )),
            "{error}"
        );
    })
    .await;
}

#[tokio::test]
async fn shared_as_a_trait_object() {
    within(async {
        let sim = sim().await;
        let shared: apim_operator::gateway::DynGateway = Arc::new(gateway(config(&sim, "demo")));
        let clone = shared.clone();
        let handle = tokio::spawn(async move { clone.list_apis().await.map(|a| a.len()) });
        assert_eq!(handle.await.expect("joined").expect("listed"), 0);
        assert_eq!(shared.environment(), "demo");
        assert!(!shared.supports_openapi_31());
    })
    .await;
}
