//! Contract tests: every `AwxApi` call of `AwxClient` against the simulator, whose launches
//! really run `ansible-playbook`. The outcomes (success, failure, a job that hangs) come from
//! small playbooks written here into a temporary directory; `repo_deploy_playbook_*` runs the
//! repository's own `ansible/deploy-api.yaml` against the simulated gateway.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use apim_operator::awx::{AwxApi, AwxClient, AwxConfig, AwxErrorKind, JobStatus, TemplateRef};
use apim_operator::gateway::{GatewayApi, GatewayConfig, GatewayCredentials, HttpGateway};
use apim_sim::{RunningSim, SimConfig};
use serde_json::{Map, Value, json};

/// Fails a test that hangs instead of letting it block the suite.
async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), fut)
        .await
        .expect("the test did not finish within 120 s")
}

const PLAY: &str = "- hosts: localhost\n  gather_facts: false\n  tasks:\n";

/// Playbooks behind the simulator's four templates:
/// - `apim-deploy-api` succeeds and sets artifacts,
/// - `apim-delete-api` fails with a message,
/// - `apim-application` hangs for a minute,
/// - `apim-subscription` succeeds.
///
/// The directory is removed when the returned guard drops.
fn playbooks() -> Playbooks {
    let dir = std::env::temp_dir().join(format!(
        "apim-contract-awx-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).expect("playbook dir");
    let write = |name: &str, tasks: &str| {
        std::fs::write(dir.join(name), format!("{PLAY}{tasks}")).expect("playbook written");
    };
    write(
        "deploy-api.yaml",
        "    - name: Announce\n      ansible.builtin.debug:\n        msg: \"deploying {{ api_name }} {{ api_version }}\"\n    - name: Report\n      ansible.builtin.set_stats:\n        data:\n          api_id: \"id-of-{{ api_name }}\"\n        per_host: false\n",
    );
    write(
        "delete-api.yaml",
        "    - name: Noise\n      ansible.builtin.debug:\n        msg: \"{{ 'x' * 200 }}\"\n      loop: \"{{ range(0, 40) | list }}\"\n    - name: Refuse\n      ansible.builtin.fail:\n        msg: \"API {{ api_name }} could not be deleted: the gateway said no\"\n",
    );
    write(
        "application.yaml",
        "    - name: Hang\n      ansible.builtin.pause:\n        seconds: 60\n",
    );
    write(
        "subscription.yaml",
        "    - name: Done\n      ansible.builtin.debug:\n        msg: ok\n",
    );
    Playbooks(dir)
}

/// A playbook directory removed on drop.
struct Playbooks(PathBuf);

impl Drop for Playbooks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sim_with(playbook_dir: &Path) -> RunningSim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    apim_sim::spawn(SimConfig {
        playbook_dir: playbook_dir.to_path_buf(),
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

fn config(sim: &RunningSim) -> AwxConfig {
    let mut config = AwxConfig::new(sim.awx_url(), "awx-token");
    config.timeout = Duration::from_secs(5);
    config.poll_min = Duration::from_millis(100);
    config.poll_max = Duration::from_millis(500);
    config.job_timeout = Duration::from_secs(90);
    config.min_backoff = Duration::from_millis(5);
    config.max_backoff = Duration::from_millis(20);
    config.max_retry_after = Duration::from_millis(100);
    config
}

fn client(config: AwxConfig) -> AwxClient {
    AwxClient::new(config).expect("the client builds")
}

fn vars(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn deploy_vars() -> Map<String, Value> {
    vars(json!({
        "gateway_url": "http://127.0.0.1:1/gateways/dev",
        "api_name": "petstore",
        "api_version": "1.0",
        "api_definition": {"openapi": "3.0.3"},
    }))
}

async fn fault(sim: &RunningSim, spec: Value) {
    let url = format!("{}/_sim/faults/awx", sim.base_url());
    let client = reqwest::Client::builder()
        .tls_backend_rustls()
        .build()
        .expect("client");
    let response = client
        .put(url)
        .json(&spec)
        .send()
        .await
        .expect("fault endpoint");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
async fn finds_templates_by_name_and_id() {
    within(async {
        let books = playbooks();
        let sim = sim_with(&books.0).await;
        let awx = client(config(&sim));
        let by_name = awx
            .find_job_template(&TemplateRef::Name("apim-deploy-api".into()))
            .await
            .expect("by name");
        let by_id = awx
            .find_job_template(&TemplateRef::Id(by_name.id))
            .await
            .expect("by id");
        assert_eq!(by_id, by_name);
        let needs = awx.launch_requirements(by_name.id).await.expect("launch needs");
        assert!(needs.variables_needed_to_start.contains(&"api_name".to_owned()));
        assert!(needs.passwords_needed_to_start.is_empty());

        let missing = awx
            .find_job_template(&TemplateRef::Name("no-such-template".into()))
            .await
            .expect_err("unknown name");
        assert!(missing.is_not_found(), "{missing}");
        assert_eq!(
            missing.to_string(),
            format!(
                "failed to find job template \"no-such-template\" on AWX ({}): no job template is named \"no-such-template\"",
                sim.awx_url()
            )
        );
        let missing = awx.find_job_template(&TemplateRef::Id(999)).await.expect_err("unknown id");
        assert_eq!(missing.status(), Some(404), "{missing}");
        assert!(missing.is_not_found());
        let missing = awx.get_job(424242).await.expect_err("unknown job");
        assert!(missing.is_not_found(), "{missing}");
    })
    .await;
}

#[tokio::test]
async fn launch_runs_the_playbook_to_success_with_artifacts() {
    within(async {
        let books = playbooks();
        let sim = sim_with(&books.0).await;
        let awx = client(config(&sim));
        let started = Instant::now();
        let outcome = awx
            .run(&TemplateRef::Name("apim-deploy-api".into()), &deploy_vars())
            .await
            .expect("the job runs");
        assert_eq!(outcome.status, JobStatus::Successful, "{outcome:?}");
        assert!(outcome.is_success());
        assert_eq!(outcome.artifacts, json!({"api_id": "id-of-petstore"}));
        assert_eq!(outcome.stdout_tail, None, "no stdout on success");
        assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
        assert!(outcome.elapsed > Duration::ZERO && outcome.elapsed <= started.elapsed());

        let job = awx.get_job(outcome.job_id).await.expect("job");
        assert_eq!(job.status, JobStatus::Successful);
        assert_eq!(
            job.event_processing_finished,
            Some(true),
            "waited for events"
        );
        assert!(!job.failed);
        let stdout = awx.job_stdout_tail(outcome.job_id).await.expect("stdout");
        assert!(stdout.contains("deploying petstore 1.0"), "{stdout}");
        // A finished job cannot be canceled.
        assert!(
            !awx.cancel_job(outcome.job_id)
                .await
                .expect("cancel answered")
        );
    })
    .await;
}

#[tokio::test]
async fn missing_variables_are_named_before_launching() {
    within(async {
        let books = playbooks();
        let sim = sim_with(&books.0).await;
        let awx = client(config(&sim));
        let mut partial = deploy_vars();
        partial.remove("api_name");
        partial.remove("api_definition");
        let error = awx
            .launch(&TemplateRef::Name("apim-deploy-api".into()), &partial)
            .await
            .expect_err("missing variables");
        assert_eq!(
            error.missing_variables(),
            Some(&["api_name".to_owned(), "api_definition".to_owned()][..])
        );
        assert!(
            error.to_string().ends_with(
                "the launch needs variables that were not given: api_name, api_definition"
            ),
            "{error}"
        );
        assert!(!error.is_transient());
        // Given but empty: AWX itself refuses with 400, and the names are read from it.
        let mut empty = deploy_vars();
        empty.insert("api_version".into(), json!(""));
        let error = awx
            .launch(&TemplateRef::Id(1), &empty)
            .await
            .expect_err("empty variable");
        assert_eq!(
            error.missing_variables(),
            Some(&["api_version".to_owned()][..]),
            "{error}"
        );
    })
    .await;
}

#[tokio::test]
async fn failed_job_carries_the_stdout_tail() {
    within(async {
        let books = playbooks();
        let sim = sim_with(&books.0).await;
        let mut cfg = config(&sim);
        cfg.stdout_tail_bytes = 1024;
        let awx = client(cfg);
        let outcome = awx
            .run(
                &TemplateRef::Name("apim-delete-api".into()),
                &vars(
                    json!({"gateway_url": "http://gw", "api_name": "orders", "api_version": "2"}),
                ),
            )
            .await
            .expect("the job runs");
        assert_eq!(outcome.status, JobStatus::Failed, "{outcome:?}");
        assert!(!outcome.is_success());
        let tail = outcome.stdout_tail.expect("a stdout tail on failure");
        assert!(
            tail.contains("API orders could not be deleted: the gateway said no"),
            "{tail}"
        );
        assert!(
            tail.len() <= 1024 + '…'.len_utf8(),
            "tail-truncated: {}",
            tail.len()
        );
        assert!(tail.starts_with('…'), "the head was cut");
    })
    .await;
}

#[tokio::test]
async fn job_exceeding_its_timeout_is_stuck_and_canceled() {
    within(async {
        let books = playbooks();
        let sim = sim_with(&books.0).await;
        let mut cfg = config(&sim);
        cfg.job_timeout = Duration::from_secs(3);
        let awx = client(cfg);
        let started = Instant::now();
        let outcome = awx
            .run(
                &TemplateRef::Name("apim-application".into()),
                &vars(json!({"gateway_url": "http://gw", "application_name": "shop"})),
            )
            .await
            .expect("the wait ends");
        assert_eq!(outcome.status, JobStatus::Stuck, "{outcome:?}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        assert!(
            outcome
                .warnings
                .iter()
                .any(|w| w.contains("cancel of job") && w.contains("requested")),
            "{:?}",
            outcome.warnings
        );
        assert!(outcome.stdout_tail.is_some());
        // AWX really cancels it.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let job = awx.get_job(outcome.job_id).await.expect("job");
            if job.status == JobStatus::Canceled {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still {} after the cancel",
                job.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn bad_token_is_401_and_not_retried() {
    within(async {
        let books = playbooks();
        let sim = sim_with(&books.0).await;
        let mut cfg = config(&sim);
        cfg.token = "wrong".into();
        let error = client(cfg)
            .find_job_template(&TemplateRef::Id(1))
            .await
            .expect_err("401");
        assert_eq!(error.status(), Some(401));
        assert!(error.is_unauthorized() && !error.is_transient());
        assert!(
            error
                .to_string()
                .contains("Authentication credentials were not provided"),
            "{error}"
        );
    })
    .await;
}

#[tokio::test]
async fn transient_awx_errors_are_retried_then_given_up() {
    within(async {
        let books = playbooks();
        let sim = sim_with(&books.0).await;
        let awx = client(config(&sim));
        fault(&sim, json!({"burst429": 2})).await;
        awx.find_job_template(&TemplateRef::Id(1))
            .await
            .expect("429 twice, then served");

        fault(&sim, json!({"errorRate": 1.0})).await;
        let error = awx
            .find_job_template(&TemplateRef::Id(1))
            .await
            .expect_err("500");
        assert_eq!(error.status(), Some(500));
        assert!(error.is_transient());
        assert!(error.to_string().ends_with("(after 4 attempts)"), "{error}");

        fault(&sim, json!({"down": true})).await;
        let error = awx.get_job(1).await.expect_err("down");
        assert_eq!(error.status(), Some(503));

        fault(&sim, json!({"latencyMs": 1500})).await;
        let mut cfg = config(&sim);
        cfg.timeout = Duration::from_millis(200);
        cfg.max_retries = 1;
        let error = client(cfg).get_job(1).await.expect_err("timeout");
        assert!(
            matches!(error.kind, AwxErrorKind::Timeout { attempts: 2, .. }),
            "{error}"
        );
    })
    .await;
}

/// The repository's own deploy playbook against the simulated gateway, when it exists.
#[tokio::test]
async fn repo_deploy_playbook_deploys_through_awx() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ansible");
    if !dir.join("deploy-api.yaml").exists() {
        eprintln!("SKIPPED: {} has no deploy-api.yaml yet", dir.display());
        return;
    }
    within(async {
        let sim = sim_with(&dir).await;
        let awx = client(config(&sim));
        let outcome = awx
            .run(
                &TemplateRef::Name("apim-deploy-api".into()),
                &vars(json!({
                    "gateway_url": sim.gateway_url("dev"),
                    "environment": "dev",
                    "api_name": "repo-petstore",
                    "api_version": "1.0",
                    "api_definition": {
                        "openapi": "3.0.3",
                        "info": {"title": "repo-petstore", "version": "1.0"},
                        "paths": {"/pets": {"get": {"responses": {"200": {"description": "ok"}}}}}
                    },
                })),
            )
            .await
            .expect("the job runs");
        assert_eq!(
            outcome.status,
            JobStatus::Successful,
            "{:?}",
            outcome.stdout_tail
        );
        let gateway = HttpGateway::new(GatewayConfig::new(
            "dev",
            sim.gateway_url("dev"),
            GatewayCredentials::basic("Administrator", "manage"),
        ))
        .expect("gateway client");
        let api = gateway
            .find_api("repo-petstore", "1.0")
            .await
            .expect("list APIs");
        assert!(api.is_some(), "the playbook created the API on the gateway");
    })
    .await;
}
