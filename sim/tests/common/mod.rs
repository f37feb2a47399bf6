//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use apim_sim::{RunningSim, SimConfig};
use serde_json::Value;

pub const USER: &str = "Administrator";
pub const PASSWORD: &str = "manage";
pub const AWX_TOKEN: &str = "awx-token";

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .expect("a reqwest client builds")
}

pub async fn start(config: SimConfig) -> RunningSim {
    apim_sim::spawn(config)
        .await
        .expect("the simulator binds 127.0.0.1:0")
}

/// A gateway client for one environment of a running simulator.
pub struct Gw {
    pub http: reqwest::Client,
    pub base: String,
}

impl Gw {
    pub fn new(sim: &RunningSim, env: &str) -> Self {
        Self {
            http: client(),
            base: format!("{}/rest/apigateway", sim.gateway_url(env)),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(USER, Some(PASSWORD))
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the gateway answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, body).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

pub fn openapi30(title: &str) -> Value {
    serde_json::json!({
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0.0"},
        "servers": [{"url": "http://backend.internal:8080"}],
        "paths": {"/items": {"get": {"responses": {"200": {"description": "ok"}}}}}
    })
}

/// `changed=N` of the PLAY RECAP line for localhost.
pub fn recap_changed(output: &str) -> Option<u64> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))?;
    let rest = line.split("changed=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `failed=N` of the PLAY RECAP line for localhost.
pub fn recap_failed(output: &str) -> Option<u64> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.starts_with("localhost") && l.contains("failed="))?;
    let rest = line.split("failed=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

pub fn ansible_playbook() -> String {
    std::env::var("ANSIBLE_PLAYBOOK").unwrap_or_else(|_| "ansible-playbook".to_owned())
}

pub fn playbook_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../ansible"))
}
