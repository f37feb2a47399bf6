//! In-memory state: one gateway per environment, one AWX, call counters.
//!
//! Everything lives behind one `parking_lot::Mutex` (no poisoning); handlers hold it only
//! for short, non-async sections.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::awx::Job;

/// A timestamp the way the gateway prints `creationDate`: "2018-09-03 11:56:21 GMT".
pub fn gateway_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S GMT")
        .to_string()
}

/// One API on one gateway.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRecord {
    pub id: String,
    pub api_name: String,
    pub api_version: String,
    pub api_description: String,
    pub is_active: bool,
    /// The definition type given at creation (openapi | swagger).
    pub definition_type: String,
    pub api_definition: Value,
    pub maturity_state: Option<String>,
    pub teams: Value,
    pub owner: String,
    pub creation_date: String,
    pub last_modified: String,
    pub system_version: u64,
}

impl ApiRecord {
    /// The summary printed by `GET /apis`.
    pub fn summary(&self) -> Value {
        json!({
            "apiName": self.api_name,
            "apiVersion": self.api_version,
            "apiDescription": self.api_description,
            "isActive": self.is_active,
            "type": "REST",
            "systemVersion": self.system_version,
            "id": self.id,
        })
    }

    /// The full API object printed by `GET /apis/{id}`, `POST` and `PUT`.
    pub fn full(&self) -> Value {
        let servers = self
            .api_definition
            .get("servers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let native_endpoint: Vec<Value> = servers
            .iter()
            .filter_map(|s| s.get("url").and_then(Value::as_str))
            .map(|u| json!({"passSecurityHeaders": true, "uri": u}))
            .collect();
        json!({
            "apiName": self.api_name,
            "apiVersion": self.api_version,
            "apiDescription": self.api_description,
            "isActive": self.is_active,
            "type": "REST",
            "systemVersion": self.system_version,
            "id": self.id,
            "maturityState": self.maturity_state,
            "teams": self.teams,
            "nativeEndpoint": native_endpoint,
            "policies": [],
            "owner": self.owner,
            "creationDate": self.creation_date,
            "lastModified": self.last_modified,
            "apiDefinition": self.api_definition,
        })
    }
}

/// One application on one gateway. The API associations live in `api_ids`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: String,
    pub contact_emails: Vec<String>,
    pub site_urls: Vec<String>,
    pub identifiers: Value,
    pub auth_strategy_ids: Vec<String>,
    pub api_ids: Vec<String>,
    pub owner: String,
    pub is_suspended: bool,
    pub created: String,
    pub lastupdated: String,
    pub api_access_key: String,
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<String>,
}

impl ApplicationRecord {
    /// The application object as the gateway prints it.
    pub fn to_json(&self) -> Value {
        let mut tokens = Map::new();
        tokens.insert(
            "apiAccessKey_credentials".into(),
            json!({
                "apiAccessKey": self.api_access_key,
                "expirationInterval": "-1",
                "expirationDate": null,
                "expired": false,
            }),
        );
        if let (Some(id), Some(secret)) = (&self.oauth_client_id, &self.oauth_client_secret) {
            tokens.insert(
                "oauth_credentials".into(),
                json!({
                    "clientID": id,
                    "clientSecret": secret,
                    "clientName": self.name,
                    "type": "CONFIDENTIAL",
                    "expirationInterval": "3600",
                    "redirectUris": [],
                }),
            );
        }
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "contactEmails": self.contact_emails,
            "siteURLs": self.site_urls,
            "identifiers": self.identifiers,
            "authStrategyIds": self.auth_strategy_ids,
            "consumingAPIs": self.api_ids,
            "owner": self.owner,
            "isSuspended": self.is_suspended,
            "created": self.created,
            "lastupdated": self.lastupdated,
            "accessTokens": Value::Object(tokens),
        })
    }
}

/// One gateway (one environment).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayState {
    /// APIs in creation order.
    pub apis: Vec<ApiRecord>,
    /// Applications in creation order.
    pub applications: Vec<ApplicationRecord>,
    /// Aliases in creation order, each a JSON object carrying at least `id`, `name`,
    /// `type` and `stage`.
    pub aliases: Vec<Map<String, Value>>,
}

impl GatewayState {
    /// The inspection view used by `GET /_sim/state/{env}`.
    pub fn inspect(&self) -> Value {
        let associations: Vec<Value> = self
            .applications
            .iter()
            .flat_map(|a| {
                a.api_ids
                    .iter()
                    .map(move |api| json!({"applicationId": a.id, "apiId": api}))
            })
            .collect();
        json!({
            "apis": self.apis.iter().map(ApiRecord::full).collect::<Vec<_>>(),
            "applications": self.applications.iter().map(ApplicationRecord::to_json).collect::<Vec<_>>(),
            "associations": associations,
            "aliases": self.aliases,
        })
    }
}

/// Per-target call counters (`GET /_sim/calls`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCounters {
    /// "METHOD /path/template" → count.
    pub calls: BTreeMap<String, u64>,
    /// Requests with a method other than GET/HEAD/OPTIONS.
    pub writes: u64,
    /// All requests.
    pub total: u64,
}

impl CallCounters {
    pub fn record(&mut self, method: &str, template: &str) {
        *self
            .calls
            .entry(format!("{method} {template}"))
            .or_default() += 1;
        self.total += 1;
        if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
            self.writes += 1;
        }
    }
}

/// Everything mutable in the simulator.
#[derive(Debug, Default)]
pub struct SimState {
    /// Gateway state by environment name.
    pub gateways: BTreeMap<String, GatewayState>,
    /// AWX jobs by id.
    pub jobs: BTreeMap<u64, Job>,
    /// Last job id handed out.
    pub last_job_id: u64,
    /// Counters by target (environment name or `awx`).
    pub calls: BTreeMap<String, CallCounters>,
}

impl SimState {
    /// Fresh state with an empty gateway per environment.
    pub fn new(environments: &[String]) -> Self {
        Self {
            gateways: environments
                .iter()
                .map(|e| (e.clone(), GatewayState::default()))
                .collect(),
            ..Self::default()
        }
    }
}
