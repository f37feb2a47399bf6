//! HTTPS integration tests against the real server: self-generated certificate, reqwest
//! trusting only the generated CA, real AdmissionReview bodies.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apim_webhook::config::Config;
use apim_webhook::fixtures;
use apim_webhook::metrics::Metrics;
use apim_webhook::rules::Policy;
use apim_webhook::server::{self, App, Running};
use apim_webhook::tls;
use axum_server::tls_rustls::RustlsConfig;
use serde_json::{Value, json};

struct Harness {
    running: Running,
    client: reqwest::Client,
    base: String,
    dir: PathBuf,
}

async fn start(name: &str, config: Config) -> Harness {
    tls::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("apim-webhook-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let certs = tls::self_signed(&dir, &["apim-webhook.apim-system.svc".to_owned()]).unwrap();
    let tls_config = RustlsConfig::from_pem_file(&certs.cert_path, &certs.key_path)
        .await
        .unwrap();
    let app = Arc::new(App::new(
        Policy::new(config).unwrap(),
        Arc::new(Metrics::new()),
    ));
    let running = server::start("127.0.0.1:0".parse().unwrap(), tls_config, app)
        .await
        .unwrap();
    let ca = reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", running.addr.port());
    Harness {
        running,
        client,
        base,
        dir,
    }
}

impl Harness {
    async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn stop(self) {
        self.running.shutdown(Duration::from_secs(2)).await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn validate_allows_and_denies_over_https() {
    let h = start("validate", Config::default()).await;

    let (status, v) = h
        .post(
            "/validate",
            fixtures::review_body(&fixtures::promotion_approve()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], fixtures::UID);
    assert_eq!(v["response"]["allowed"], true, "{v}");

    // Self-approval by a CPI admin who requested it.
    let mut spec = fixtures::promotion_approve();
    spec.username = "cpi-admin";
    spec.groups = vec!["apim:cpi-admin", "system:authenticated"];
    spec.object = Some(fixtures::promotion(
        Some("cpi-admin"),
        Some(fixtures::approval(Some("cpi-admin"))),
    ));
    spec.old_object = Some(fixtures::promotion(Some("cpi-admin"), None));
    let (status, v) = h.post("/validate", fixtures::review_body(&spec)).await;
    assert_eq!(status, 200);
    assert_eq!(v["response"]["allowed"], false);
    let msg = v["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("anti-self-approval"), "{msg}");

    // Untagged Api: every violation in one message.
    let mut spec = fixtures::api_create();
    spec.object = Some(fixtures::untagged_api());
    let (_, v) = h.post("/validate", fixtures::review_body(&spec)).await;
    let msg = v["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("7 violations"), "{msg}");

    h.stop().await;
}

#[tokio::test]
async fn mutate_stamps_requester_over_https() {
    let h = start("mutate", Config::default()).await;
    let mut spec = fixtures::promotion_create();
    spec.object = Some(fixtures::promotion(Some("spoofed-boss"), None));
    let (status, v) = h.post("/mutate", fixtures::review_body(&spec)).await;
    assert_eq!(status, 200);
    assert_eq!(v["response"]["allowed"], true);
    assert_eq!(v["response"]["patchType"], "JSONPatch");
    // The patch is base64 JSON; apply it to check the outcome.
    let patch_b64 = v["response"]["patch"].as_str().unwrap();
    let patch_bytes: k8s_openapi::ByteString = serde_json::from_value(json!(patch_b64)).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes.0).unwrap();
    let mut doc = spec.object.clone().unwrap();
    json_patch::patch(&mut doc, &patch).unwrap();
    assert_eq!(doc["spec"]["requester"], "finance-devops");
    assert_eq!(
        doc["metadata"]["annotations"]["apim.cab-i.com/actor"],
        "finance-devops"
    );
    h.stop().await;
}

#[tokio::test]
async fn malformed_requests_never_500() {
    let h = start("malformed", Config::default()).await;
    let (status, v) = h.post("/validate", b"{{{ not json".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["status"]["reason"], "InvalidRequest");

    let (status, v) = h
        .post(
            "/mutate",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["response"]["allowed"], false);

    let mut review = fixtures::review_json(&fixtures::api_create());
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, v) = h
        .post("/validate", serde_json::to_vec(&review).unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["response"]["uid"], fixtures::UID);
    assert_eq!(v["response"]["allowed"], false);
    h.stop().await;
}

#[tokio::test]
async fn health_and_metrics() {
    let h = start("metrics", Config::default()).await;
    let (status, body) = h.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    h.post("/validate", fixtures::review_body(&fixtures::api_create()))
        .await;
    let (status, text) = h.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"apim_webhook_decisions_total{endpoint="validate",kind="Api",operation="CREATE",result="allowed"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"apim_webhook_review_duration_seconds_count{endpoint="validate"} 1"#));
    h.stop().await;
}

#[tokio::test]
async fn warn_mode_returns_admission_warnings() {
    let cfg = Config::from_yaml("enforcement: {tags: warn}", "test").unwrap();
    let h = start("warn", cfg).await;
    let mut spec = fixtures::api_create();
    spec.object = Some(fixtures::untagged_api());
    let (_, v) = h.post("/validate", fixtures::review_body(&spec)).await;
    assert_eq!(v["response"]["allowed"], true);
    let warnings = v["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 7, "{warnings:?}");
    h.stop().await;
}

#[tokio::test]
async fn untrusted_client_cannot_connect() {
    let h = start("untrusted", Config::default()).await;
    // A client with another CA must fail the handshake.
    let other = std::env::temp_dir().join(format!("apim-webhook-it-other-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&other);
    let certs = tls::self_signed(&other, &[]).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let res = client.get(format!("{}/healthz", h.base)).send().await;
    assert!(res.is_err(), "handshake with a foreign CA must fail");
    let _ = std::fs::remove_dir_all(&other);
    h.stop().await;
}

#[tokio::test]
async fn certificate_files_are_reloaded() {
    tls::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("apim-webhook-it-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = tls::self_signed(&dir.join("a"), &[]).unwrap();
    let second = tls::self_signed(&dir.join("b"), &[]).unwrap();
    let live = dir.join("live");
    std::fs::create_dir_all(&live).unwrap();
    let (cert, key) = (live.join("tls.crt"), live.join("tls.key"));
    std::fs::copy(&first.cert_path, &cert).unwrap();
    std::fs::copy(&first.key_path, &key).unwrap();

    let tls_config = RustlsConfig::from_pem_file(&cert, &key).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let watcher = tokio::spawn(tls::watch_files(
        tls_config.clone(),
        cert.clone(),
        key.clone(),
        Duration::from_millis(100),
        metrics.clone(),
    ));
    let app = Arc::new(App::new(Policy::new(Config::default()).unwrap(), metrics));
    let running = server::start("127.0.0.1:0".parse().unwrap(), tls_config, app)
        .await
        .unwrap();
    let url = format!("https://127.0.0.1:{}/healthz", running.addr.port());
    let client_for = |ca: &str| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    assert!(client_for(&first.ca_pem).get(&url).send().await.is_ok());
    assert!(client_for(&second.ca_pem).get(&url).send().await.is_err());

    // Rotate: the new pair is picked up without restart.
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::copy(&second.key_path, &key).unwrap();
    std::fs::copy(&second.cert_path, &cert).unwrap();
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client_for(&second.ca_pem).get(&url).send().await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "new certificate not served after rotation");
    watcher.abort();
    running.shutdown(Duration::from_secs(2)).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
