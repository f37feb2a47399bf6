//! The AWX side: templates, launch (really running ansible-playbook), jobs, stdout, cancel.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use apim_sim::{RunningSim, SimConfig};
use common::start;
use serde_json::{Value, json};

struct Awx {
    http: reqwest::Client,
    base: String,
}

impl Awx {
    fn new(sim: &RunningSim) -> Self {
        Self {
            http: common::client(),
            base: format!("{}/api/v2", sim.awx_url()),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(common::AWX_TOKEN)
            .send()
            .await
            .expect("answer");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(common::AWX_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("answer")
    }

    async fn launch(&self, template: &str, vars: Value) -> (u16, Value, Option<String>) {
        let r = self
            .post(
                &format!("/job_templates/{template}/launch/"),
                json!({"extra_vars": vars, "limit": "x"}),
            )
            .await;
        let s = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (s, r.json().await.unwrap_or(Value::Null), loc)
    }

    /// Polls the job until it is finished and its events are processed.
    async fn wait(&self, id: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (s, job) = self.get(&format!("/jobs/{id}/")).await;
            assert_eq!(s, 200);
            let active = matches!(
                job["status"].as_str(),
                Some("new" | "pending" | "waiting" | "running")
            );
            if !active && job["event_processing_finished"] == json!(true) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_running(&self, id: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, job) = self.get(&format!("/jobs/{id}/")).await;
            if job["status"] == json!("running") {
                return;
            }
            assert!(Instant::now() < deadline, "job {id} never ran: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stdout(&self, id: u64) -> String {
        self.http
            .get(format!("{}/jobs/{id}/stdout/?format=txt", self.base))
            .bearer_auth(common::AWX_TOKEN)
            .send()
            .await
            .expect("answer")
            .text()
            .await
            .expect("text")
    }
}

const TRIVIAL: &str = r#"---
- name: Trivial
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: "hello {{ api_id }} user={{ lookup('ansible.builtin.env', 'GATEWAY_USERNAME') }}"
    - name: Fail on request
      ansible.builtin.fail:
        msg: "asked to fail"
      when: state | default('present') == 'fail'
    - name: Report
      ansible.builtin.set_stats:
        data:
          echoed: "{{ api_id }}"
"#;

const SLEEPY: &str = r#"---
- name: Sleepy
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Sleep
      ansible.builtin.command: sleep 60
      changed_when: false
"#;

/// A playbook dir where `subscription.yaml` is trivial and the delete/application ones sleep.
fn fake_playbooks(dir: &Path) {
    std::fs::write(dir.join("subscription.yaml"), TRIVIAL).expect("write");
    std::fs::write(dir.join("delete-api.yaml"), SLEEPY).expect("write");
    std::fs::write(dir.join("application.yaml"), SLEEPY).expect("write");
}

fn fake_config(dir: &Path) -> SimConfig {
    SimConfig {
        playbook_dir: dir.to_path_buf(),
        ansible_playbook: common::ansible_playbook().into(),
        template_timeouts: BTreeMap::from([(
            "apim-application".to_owned(),
            Duration::from_secs(2),
        )]),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn templates_auth_headers_and_errors() {
    let sim = start(SimConfig::default()).await;
    let awx = Awx::new(&sim);

    let r = awx
        .http
        .get(format!("{}/job_templates/", awx.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()
            .get("x-api-product-name")
            .and_then(|v| v.to_str().ok()),
        Some("AWX")
    );
    assert!(r.headers().get("x-api-product-version").is_some());
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body,
        json!({"detail": "Authentication credentials were not provided. To establish a login session, visit /api/login/."})
    );
    let r = awx
        .http
        .get(format!("{}/job_templates/", awx.base))
        .basic_auth("admin", Some("password"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 200);

    let (s, list) = awx.get("/job_templates/").await;
    assert_eq!(s, 200);
    assert_eq!(list["count"], json!(4));
    let (_, one) = awx.get("/job_templates/?name=apim-deploy-api").await;
    assert_eq!(one["count"], json!(1));
    assert_eq!(one["results"][0]["id"], json!(1));
    assert_eq!(one["results"][0]["playbook"], json!("deploy-api.yaml"));
    assert_eq!(
        one["results"][0]["summary_fields"]["organization"]["name"],
        json!("Default")
    );
    let (_, paged) = awx.get("/job_templates/?page_size=3").await;
    assert_eq!(paged["results"].as_array().map(Vec::len), Some(3));
    assert!(paged["next"].is_string());
    let (_, named) = awx.get("/job_templates/apim-subscription++Default/").await;
    assert_eq!(named["id"], json!(4));
    let (_, req) = awx.get("/job_templates/1/launch/").await;
    assert_eq!(req["can_start_without_user_input"], json!(false));
    assert!(
        req["variables_needed_to_start"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("api_name")))
    );

    let (s, nf) = awx.get("/job_templates/99/").await;
    assert_eq!(s, 404);
    assert_eq!(nf, json!({"detail": "Not found."}));
    let (s, nf) = awx.get("/jobs/12345/").await;
    assert_eq!(s, 404);
    assert_eq!(nf, json!({"detail": "Not found."}));
    let (s, nf) = awx.get("/no_such_thing/").await;
    assert_eq!(s, 404);
    assert_eq!(
        nf,
        json!({"detail": "The requested resource could not be found."})
    );
    let r = awx.post("/jobs/", json!({})).await;
    assert_eq!(r.status().as_u16(), 405);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body, json!({"detail": "Method \"POST\" not allowed."}));

    // Missing required variables.
    let (s, body, _) = awx
        .launch(
            "apim-deploy-api++Default",
            json!({"gateway_url": "http://x", "api_version": "1", "api_definition": "{}"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        body,
        json!({"variables_needed_to_start": ["'api_name' value missing"]})
    );
}

#[tokio::test]
async fn trivial_launch_succeeds_with_output_and_artifacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    fake_playbooks(dir.path());
    let sim = start(fake_config(dir.path())).await;
    let awx = Awx::new(&sim);

    // extra_vars as a YAML string.
    let (s, body, loc) = awx
        .launch(
            "4",
            json!("gateway_url: http://unused\napi_id: abc-123\napplication_id: app-1\n"),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let id = body["job"].as_u64().expect("job id");
    assert_eq!(loc.as_deref(), Some(format!("/api/v2/jobs/{id}/").as_str()));
    assert_eq!(body["ignored_fields"], json!({"limit": "x"}));
    assert!(matches!(
        body["status"].as_str(),
        Some("new" | "pending" | "waiting" | "running")
    ));

    let job = awx.wait(id).await;
    assert_eq!(job["status"], json!("successful"), "{job}");
    assert_eq!(job["failed"], json!(false));
    assert!(job["started"].is_string() && job["finished"].is_string());
    assert!(job["elapsed"].as_f64().is_some_and(|e| e > 0.0));
    assert_eq!(job["artifacts"], json!({"echoed": "abc-123"}));
    let out = awx.stdout(id).await;
    assert!(out.contains("hello abc-123 user=Administrator"), "{out}");
    assert!(out.contains("PLAY RECAP"), "{out}");
    let (_, cancel) = awx.get(&format!("/jobs/{id}/cancel/")).await;
    assert_eq!(cancel, json!({"can_cancel": false}));
    let r = awx.post(&format!("/jobs/{id}/cancel/"), json!({})).await;
    assert_eq!(r.status().as_u16(), 405);

    // A failing run.
    let (s, body, _) = awx
        .launch("4", json!({"gateway_url": "http://unused", "api_id": "a", "application_id": "b", "state": "fail"}))
        .await;
    assert_eq!(s, 201);
    let job = awx.wait(body["job"].as_u64().expect("id")).await;
    assert_eq!(job["status"], json!("failed"));
    assert_eq!(job["failed"], json!(true));

    let state: Value = common::client()
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(state["awx"]["jobs"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn cancel_and_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    fake_playbooks(dir.path());
    let sim = start(fake_config(dir.path())).await;
    let awx = Awx::new(&sim);

    let (s, body, _) = awx
        .launch(
            "apim-delete-api++Default",
            json!({"gateway_url": "http://x", "api_name": "a", "api_version": "1"}),
        )
        .await;
    assert_eq!(s, 201);
    let id = body["job"].as_u64().expect("id");
    awx.wait_running(id).await;
    let (_, can) = awx.get(&format!("/jobs/{id}/cancel/")).await;
    assert_eq!(can, json!({"can_cancel": true}));
    let r = awx.post(&format!("/jobs/{id}/cancel/"), json!({})).await;
    assert_eq!(r.status().as_u16(), 202);
    let t0 = Instant::now();
    let job = awx.wait(id).await;
    assert_eq!(job["status"], json!("canceled"));
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "cancel killed the process"
    );

    let (s, body, _) = awx
        .launch(
            "3",
            json!({"gateway_url": "http://x", "application_name": "a"}),
        )
        .await;
    assert_eq!(s, 201);
    let job = awx.wait(body["job"].as_u64().expect("id")).await;
    assert_eq!(job["status"], json!("error"));
    assert_eq!(job["failed"], json!(true));
    assert!(
        job["job_explanation"]
            .as_str()
            .is_some_and(|e| e.contains("timeout")),
        "{job}"
    );
}

#[tokio::test]
async fn missing_ansible_playbook_is_an_error_job() {
    let sim = start(SimConfig {
        ansible_playbook: "/nonexistent/ansible-playbook".into(),
        ..SimConfig::default()
    })
    .await;
    let awx = Awx::new(&sim);
    let (s, body, _) = awx
        .launch(
            "4",
            json!({"gateway_url": "http://x", "api_id": "a", "application_id": "b"}),
        )
        .await;
    assert_eq!(s, 201);
    let job = awx.wait(body["job"].as_u64().expect("id")).await;
    assert_eq!(job["status"], json!("error"));
    assert!(
        job["job_explanation"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
}

/// The real playbooks through the AWX side, against the simulator's own gateway.
#[tokio::test]
async fn real_playbooks_through_awx() {
    let sim = start(SimConfig {
        ansible_playbook: common::ansible_playbook().into(),
        ..SimConfig::default()
    })
    .await;
    let awx = Awx::new(&sim);
    let gateway_url = sim.gateway_url("sandbox");

    let (s, body, _) = awx
        .launch(
            "apim-deploy-api++Default",
            json!({
                "gateway_url": gateway_url, "environment": "sandbox",
                "api_name": "billing", "api_version": "2.0", "api_description": "Billing",
                "api_definition": common::openapi30("billing").to_string(), "api_type": "openapi",
                "activate": true, "state": "present", "trace_id": "trace-1",
                "aliases": [{"name": "billing-backend", "type": "endpoint", "value": "http://billing:8080"}],
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let id = body["job"].as_u64().expect("id");
    let job = awx.wait(id).await;
    let out = awx.stdout(id).await;
    assert_eq!(job["status"], json!("successful"), "{out}");
    let api_id = job["artifacts"]["gateway_api_id"]
        .as_str()
        .expect("gateway_api_id artifact")
        .to_owned();

    let (s, body, _) = awx
        .launch(
            "apim-application++Default",
            json!({"gateway_url": gateway_url, "environment": "sandbox", "application_name": "payments",
                   "application_description": "Payments", "contact_emails": ["ops@example.com"],
                   "credential_type": "apiKey", "state": "present"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let id = body["job"].as_u64().expect("id");
    let job = awx.wait(id).await;
    let out = awx.stdout(id).await;
    assert_eq!(job["status"], json!("successful"), "{out}");
    let key = job["artifacts"]["api_key"]
        .as_str()
        .expect("api_key artifact")
        .to_owned();
    let app_id = job["artifacts"]["application_id"]
        .as_str()
        .expect("application_id")
        .to_owned();
    assert!(!key.is_empty());
    assert!(!out.contains(&key), "the key must never be printed");

    let (s, body, _) = awx
        .launch(
            "apim-subscription++Default",
            json!({"gateway_url": gateway_url, "api_id": api_id, "application_id": app_id, "state": "present"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let job = awx.wait(body["job"].as_u64().expect("id")).await;
    assert_eq!(job["status"], json!("successful"));

    let state: Value = common::client()
        .get(format!("{}/_sim/state/sandbox", sim.base_url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(state["apis"][0]["isActive"], json!(true));
    assert_eq!(
        state["associations"],
        json!([{"applicationId": app_id, "apiId": api_id}])
    );
    assert_eq!(state["aliases"][0]["stage"], json!("sandbox"));
    assert_eq!(
        state["applications"][0]["accessTokens"]["apiAccessKey_credentials"]["apiAccessKey"],
        json!(key)
    );

    // Delete by id only: deactivated, then force-deleted although still subscribed.
    let (s, body, _) = awx
        .launch(
            "apim-delete-api++Default",
            json!({"gateway_url": gateway_url, "environment": "sandbox", "api_id": api_id}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let id = body["job"].as_u64().expect("id");
    let job = awx.wait(id).await;
    assert_eq!(
        job["status"],
        json!("successful"),
        "{}",
        awx.stdout(id).await
    );
    assert_eq!(job["artifacts"]["deleted"], json!(true));
    let state = sim.env_state("sandbox").expect("sandbox");
    assert_eq!(state["apis"], json!([]));
    assert_eq!(state["associations"], json!([]));
}
