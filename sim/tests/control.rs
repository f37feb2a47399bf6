//! Fault injection, inspection, reset and call counters.

mod common;

use std::time::{Duration, Instant};

use apim_sim::SimConfig;
use common::{Gw, openapi30, start};
use serde_json::{Value, json};

async fn put_faults(sim: &apim_sim::RunningSim, target: &str, spec: Value) -> u16 {
    common::client()
        .put(format!("{}/_sim/faults/{target}", sim.base_url()))
        .json(&spec)
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16()
}

async fn get_json(url: String) -> Value {
    common::client()
        .get(url)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn burst429_then_recovery_and_retry_after() {
    let sim = start(SimConfig::default()).await;
    assert_eq!(put_faults(&sim, "dev", json!({"burst429": 2})).await, 200);
    let gw = Gw::new(&sim, "dev");
    for _ in 0..2 {
        let r = gw
            .http
            .get(format!("{}/apis", gw.base))
            .basic_auth(common::USER, Some(common::PASSWORD))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(
            r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let body: Value = r.json().await.expect("json");
        assert!(body["errorDetails"].is_string());
    }
    let (s, _) = gw.get("/apis").await;
    assert_eq!(s, 200);
    // Other environments are untouched.
    assert_eq!(
        put_faults(&sim, "staging", json!({"down": true})).await,
        200
    );
    let (s, _) = Gw::new(&sim, "staging").get("/apis").await;
    assert_eq!(s, 503);
    let (s, _) = Gw::new(&sim, "prod").get("/apis").await;
    assert_eq!(s, 200);
    let cleared = common::client()
        .delete(format!("{}/_sim/faults/staging", sim.base_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(cleared.status().as_u16(), 204);
    let (s, _) = Gw::new(&sim, "staging").get("/apis").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn error_rate_latency_and_awx_faults() {
    let sim = start(SimConfig::default()).await;
    assert_eq!(
        put_faults(&sim, "dev", json!({"errorRate": 1.0})).await,
        200
    );
    let (s, body) = Gw::new(&sim, "dev").get("/apis").await;
    assert_eq!(s, 500);
    assert!(body["errorDetails"].is_string());
    assert_eq!(
        put_faults(&sim, "dev", json!({"errorRate": 2.0})).await,
        400
    );
    assert_eq!(put_faults(&sim, "dev", json!({"bogus": 1})).await, 400);
    assert_eq!(put_faults(&sim, "nowhere", json!({})).await, 404);

    assert_eq!(
        put_faults(&sim, "dev", json!({"latencyMs": 300})).await,
        200
    );
    let t0 = Instant::now();
    let (s, _) = Gw::new(&sim, "dev").get("/apis").await;
    assert_eq!(s, 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));

    assert_eq!(put_faults(&sim, "awx", json!({"down": true})).await, 200);
    let r = common::client()
        .get(format!("{}/api/v2/job_templates/", sim.awx_url()))
        .bearer_auth(common::AWX_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 503);
    let body: Value = r.json().await.expect("json");
    assert!(body["detail"].is_string());
}

#[tokio::test]
async fn calls_state_and_reset() {
    let sim = start(SimConfig::default()).await;
    let gw = Gw::new(&sim, "demo");
    let (_, created) = gw
        .post(
            "/apis",
            json!({"apiName": "c", "apiVersion": "1", "type": "openapi", "apiDefinition": openapi30("c")}),
        )
        .await;
    let id = created["apiResponse"]["api"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    gw.get(&format!("/apis/{id}")).await;
    gw.get(&format!("/apis/{id}")).await;
    gw.put(&format!("/apis/{id}/activate"), None).await;

    let calls = get_json(format!("{}/_sim/calls", sim.base_url())).await;
    assert_eq!(calls["demo"]["calls"]["GET /apis/{id}"], json!(2));
    assert_eq!(calls["demo"]["calls"]["POST /apis"], json!(1));
    assert_eq!(calls["demo"]["calls"]["PUT /apis/{id}/activate"], json!(1));
    assert_eq!(calls["demo"]["writes"], json!(2));
    assert!(calls.get("dev").is_none(), "no call reached dev: {calls}");

    let state = get_json(format!("{}/_sim/state/demo", sim.base_url())).await;
    assert_eq!(state["apis"][0]["isActive"], json!(true));
    let all = get_json(format!("{}/_sim/state", sim.base_url())).await;
    assert_eq!(all["environments"]["demo"]["apis"][0]["id"], json!(id));
    assert_eq!(all["environments"]["prod"]["apis"], json!([]));
    assert_eq!(all["awx"]["jobs"], json!([]));

    let r = common::client()
        .post(format!("{}/_sim/reset", sim.base_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 204);
    let state = get_json(format!("{}/_sim/state/demo", sim.base_url())).await;
    assert_eq!(state["apis"], json!([]));
    let calls = get_json(format!("{}/_sim/calls", sim.base_url())).await;
    assert_eq!(calls, json!({}));
}

#[tokio::test]
async fn in_process_helpers() {
    let sim = start(SimConfig::default()).await;
    assert_eq!(sim.writes("dev"), 0);
    let (s, _) = Gw::new(&sim, "dev")
        .post("/applications", json!({"name": "helper"}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(sim.writes("dev"), 1);
    assert_eq!(sim.writes("prod"), 0);
    assert_eq!(
        sim.env_state("dev")
            .map(|s| s["applications"][0]["name"].clone()),
        Some(json!("helper"))
    );
    assert!(sim.env_state("nowhere").is_none());
    assert!(sim.state()["environments"]["sandbox"].is_object());
    assert!(
        sim.set_faults("nowhere", apim_sim::FaultSpec::default())
            .is_err()
    );
    sim.set_faults(
        "dev",
        apim_sim::FaultSpec {
            down: true,
            ..apim_sim::FaultSpec::default()
        },
    )
    .expect("dev is a target");
    let (s, _) = Gw::new(&sim, "dev").get("/applications").await;
    assert_eq!(s, 503);
    sim.clear_faults("dev");
    let (s, _) = Gw::new(&sim, "dev").get("/applications").await;
    assert_eq!(s, 200);
    assert_eq!(sim.calls()["dev"]["calls"]["GET /applications"], json!(2));
    sim.reset();
    assert_eq!(
        sim.env_state("dev").map(|s| s["applications"].clone()),
        Some(json!([]))
    );
    sim.shutdown().await.expect("clean shutdown");
}
