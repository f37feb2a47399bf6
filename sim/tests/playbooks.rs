//! Runs each playbook of `ansible/` twice with `ansible-playbook` against the simulator's
//! gateway: the first run changes something, the second changes nothing (`changed=0`).

mod common;

use apim_sim::{RunningSim, SimConfig};
use common::{recap_changed, recap_failed, start};
use serde_json::{Value, json};

struct Run {
    changed: u64,
    output: String,
}

async fn run_playbook(playbook: &str, vars: &Value, extra_env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars_file = dir.path().join("vars.json");
    std::fs::write(&vars_file, vars.to_string()).expect("write vars");
    let mut cmd = tokio::process::Command::new(common::ansible_playbook());
    cmd.arg("-i")
        .arg("localhost,")
        .arg("-c")
        .arg("local")
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .arg(common::playbook_dir().join(playbook))
        .env("GATEWAY_USERNAME", common::USER)
        .env("GATEWAY_PASSWORD", common::PASSWORD)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", dir.path())
        .kill_on_drop(true);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", common::ansible_playbook()));
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{playbook} failed:\n{output}");
    assert_eq!(recap_failed(&output), Some(0), "{output}");
    let changed = recap_changed(&output).unwrap_or_else(|| panic!("no PLAY RECAP:\n{output}"));
    Run { changed, output }
}

/// Runs twice; asserts changed>0 then changed=0.
async fn twice(playbook: &str, vars: &Value) -> String {
    let first = run_playbook(playbook, vars, &[]).await;
    assert!(
        first.changed > 0,
        "{playbook}: first run changed nothing:\n{}",
        first.output
    );
    let second = run_playbook(playbook, vars, &[]).await;
    assert_eq!(
        second.changed, 0,
        "{playbook}: second run not idempotent:\n{}",
        second.output
    );
    first.output
}

async fn state(sim: &RunningSim, env: &str) -> Value {
    common::client()
        .get(format!("{}/_sim/state/{env}", sim.base_url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json")
}

async fn writes(sim: &RunningSim, env: &str) -> u64 {
    let calls: Value = common::client()
        .get(format!("{}/_sim/calls", sim.base_url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    calls[env]["writes"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn playbooks_are_idempotent() {
    let sim = start(SimConfig::default()).await;
    let gateway_url = sim.gateway_url("dev");

    // deploy-api: create, alias, activate; then nothing.
    let deploy = json!({
        "gateway_url": gateway_url, "environment": "dev",
        "api_name": "inventory", "api_version": "1.0.0", "api_description": "Inventory",
        "api_definition": common::openapi30("inventory").to_string(), "api_type": "openapi",
        "activate": true, "state": "present", "trace_id": "t-1",
        "aliases": [{"name": "inventory-backend", "type": "endpoint", "value": "http://inventory:8080"}],
    });
    twice("deploy-api.yaml", &deploy).await;
    let st = state(&sim, "dev").await;
    assert_eq!(st["apis"].as_array().map(Vec::len), Some(1));
    assert_eq!(st["apis"][0]["isActive"], json!(true));
    assert_eq!(st["aliases"][0]["stage"], json!("dev"));
    assert_eq!(
        st["aliases"][0]["endPointURI"],
        json!("http://inventory:8080")
    );
    let api_id = st["apis"][0]["id"].as_str().expect("id").to_owned();

    // A changed definition and alias value: updated in place, then stable again.
    let mut changed_def = common::openapi30("inventory");
    changed_def["info"]["description"] = json!("v2");
    let mut deploy2 = deploy.clone();
    deploy2["api_definition"] = json!(changed_def.to_string());
    deploy2["aliases"][0]["value"] = json!("http://inventory:9090");
    let run = run_playbook("deploy-api.yaml", &deploy2, &[]).await;
    assert_eq!(run.changed, 2, "update + alias:\n{}", run.output);
    let st = state(&sim, "dev").await;
    assert_eq!(st["apis"][0]["id"], json!(api_id), "updated, not recreated");
    assert_eq!(
        st["apis"][0]["apiDefinition"]["info"]["description"],
        json!("v2")
    );
    assert_eq!(
        st["aliases"][0]["endPointURI"],
        json!("http://inventory:9090")
    );
    let before = writes(&sim, "dev").await;
    let run = run_playbook("deploy-api.yaml", &deploy2, &[]).await;
    assert_eq!(run.changed, 0);
    assert_eq!(
        writes(&sim, "dev").await,
        before,
        "a converged run writes nothing"
    );

    // application: create; key returned by set_stats, never printed.
    let app = json!({
        "gateway_url": gateway_url, "environment": "dev", "application_name": "warehouse",
        "application_description": "Warehouse", "contact_emails": ["team@example.com"],
        "credential_type": "apiKey", "state": "present", "trace_id": "t-2",
    });
    let out = twice("application.yaml", &app).await;
    let st = state(&sim, "dev").await;
    let key = st["applications"][0]["accessTokens"]["apiAccessKey_credentials"]["apiAccessKey"]
        .as_str()
        .expect("key")
        .to_owned();
    assert!(!out.contains(&key), "the key was printed:\n{out}");
    let app_id = st["applications"][0]["id"].as_str().expect("id").to_owned();

    // subscription: associate, then dissociate.
    let sub = json!({
        "gateway_url": gateway_url, "environment": "dev", "api_id": api_id,
        "application_id": app_id, "state": "present", "trace_id": "t-3",
    });
    twice("subscription.yaml", &sub).await;
    let st = state(&sim, "dev").await;
    assert_eq!(
        st["associations"],
        json!([{"applicationId": app_id, "apiId": api_id}])
    );
    let mut unsub = sub.clone();
    unsub["state"] = json!("absent");
    twice("subscription.yaml", &unsub).await;
    assert_eq!(state(&sim, "dev").await["associations"], json!([]));

    // delete-api: deactivate then delete; then nothing (404 / absent counts as done).
    let del = json!({
        "gateway_url": gateway_url, "environment": "dev",
        "api_name": "inventory", "api_version": "1.0.0", "trace_id": "t-4",
    });
    twice("delete-api.yaml", &del).await;
    assert_eq!(state(&sim, "dev").await["apis"], json!([]));

    // application absent.
    let mut app_absent = app.clone();
    app_absent["state"] = json!("absent");
    twice("application.yaml", &app_absent).await;
    assert_eq!(state(&sim, "dev").await["applications"], json!([]));
}

#[tokio::test]
async fn openapi_31_is_converted_or_refused_clearly() {
    let sim = start(SimConfig::default()).await;
    let mut doc = common::openapi30("v31");
    doc["openapi"] = json!("3.1.0");
    let dir = tempfile::tempdir().expect("tempdir");
    let converter = dir.path().join("convert.py");
    std::fs::write(
        &converter,
        "import json, sys\nd = json.load(open(sys.argv[1]))\nd['openapi'] = '3.0.3'\nprint(json.dumps(d))\n",
    )
    .expect("write converter");
    let mut vars = json!({
        "gateway_url": sim.gateway_url("prod"), "environment": "prod",
        "api_name": "v31", "api_version": "1", "api_definition": doc.to_string(),
        "activate": false, "apim_convert_command": "/nonexistent/apim-operator openapi convert",
    });

    // Converter unavailable: a clear failure, nothing written.
    let mut cmd = tokio::process::Command::new(common::ansible_playbook());
    let vars_file = dir.path().join("vars.json");
    std::fs::write(&vars_file, vars.to_string()).expect("write");
    let out = cmd
        .args(["-i", "localhost,", "-c", "local", "-e"])
        .arg(format!("@{}", vars_file.display()))
        .arg(common::playbook_dir().join("deploy-api.yaml"))
        .env("GATEWAY_USERNAME", common::USER)
        .env("GATEWAY_PASSWORD", common::PASSWORD)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .await
        .expect("ansible-playbook runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("converter"), "{text}");
    assert_eq!(writes(&sim, "prod").await, 0);

    // With a converter: deployed as 3.0, idempotent.
    vars["apim_convert_command"] = json!(format!("python3 {}", converter.display()));
    twice("deploy-api.yaml", &vars).await;
    let st = state(&sim, "prod").await;
    assert_eq!(st["apis"][0]["apiDefinition"]["openapi"], json!("3.0.3"));
}
