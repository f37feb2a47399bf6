//! What the operator sends to and reads from the gateway.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::credentials::SecretString;

/// An API to create or update from its OpenAPI 3.x or Swagger 2.0 document, sent inline.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiDocument {
    /// `apiName`.
    pub name: String,
    /// `apiVersion`.
    pub version: String,
    /// `apiDescription`.
    pub description: Option<String>,
    /// `maturityState` (e.g. `Beta`), left unchanged when `None`.
    pub maturity_state: Option<String>,
    /// The OpenAPI/Swagger document, as JSON.
    pub definition: Value,
}

/// The dialect of an API document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefinitionFormat {
    /// Swagger 2.0 (`"swagger": "2.0"`).
    Swagger,
    /// OpenAPI 3.x, with its `openapi` version string.
    OpenApi(String),
}

impl DefinitionFormat {
    /// The gateway's `type` for this dialect.
    pub fn gateway_type(&self) -> &'static str {
        match self {
            Self::Swagger => "swagger",
            Self::OpenApi(_) => "openapi",
        }
    }

    /// Whether this is OpenAPI 3.1 or later (refused by gateways up to 10.15).
    pub fn is_openapi_31_or_later(&self) -> bool {
        match self {
            Self::Swagger => false,
            Self::OpenApi(version) => {
                let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
                let major = parts.next().unwrap_or(0);
                let minor = parts.next().unwrap_or(0);
                major > 3 || (major == 3 && minor >= 1)
            }
        }
    }
}

impl ApiDocument {
    /// The document's dialect, or `None` when it has neither `openapi` nor `swagger`.
    pub fn format(&self) -> Option<DefinitionFormat> {
        if let Some(version) = self.definition.get("openapi").and_then(Value::as_str) {
            return Some(DefinitionFormat::OpenApi(version.to_owned()));
        }
        if self.definition.get("swagger").is_some() {
            return Some(DefinitionFormat::Swagger);
        }
        None
    }

    /// The JSON body of `POST /apis` and `PUT /apis/{id}`.
    pub fn to_body(&self, format: &DefinitionFormat) -> Value {
        let mut body = Map::new();
        body.insert("apiName".into(), json!(self.name));
        body.insert("apiVersion".into(), json!(self.version));
        body.insert("type".into(), json!(format.gateway_type()));
        if let Some(description) = &self.description {
            body.insert("apiDescription".into(), json!(description));
        }
        if let Some(state) = &self.maturity_state {
            body.insert("maturityState".into(), json!(state));
        }
        body.insert("apiDefinition".into(), self.definition.clone());
        Value::Object(body)
    }
}

/// An API as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Api {
    /// The gateway's id (a UUID).
    pub id: String,
    /// `apiName`.
    pub api_name: String,
    /// `apiVersion`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub api_version: String,
    /// `apiDescription`.
    #[serde(default)]
    pub api_description: Option<String>,
    /// Whether the API is active (serving traffic).
    #[serde(default)]
    pub is_active: bool,
    /// `type` (e.g. `REST`).
    #[serde(default, rename = "type")]
    pub api_type: Option<String>,
    /// `systemVersion`.
    #[serde(default)]
    pub system_version: Option<Value>,
    /// `maturityState`.
    #[serde(default)]
    pub maturity_state: Option<String>,
    /// `owner`.
    #[serde(default)]
    pub owner: Option<String>,
    /// `creationDate` (e.g. `2018-09-03 11:56:21 GMT`).
    #[serde(default)]
    pub creation_date: Option<String>,
    /// `nativeEndpoint`.
    #[serde(default)]
    pub native_endpoint: Vec<Value>,
    /// `apiDefinition`, when the answer carries it.
    #[serde(default)]
    pub api_definition: Option<Value>,
}

/// An application (a consumer of APIs) to create or update.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// `name`.
    pub name: String,
    /// `description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `version` (the gateway uses `1.0` when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `contactEmails`.
    pub contact_emails: Vec<String>,
    /// `siteURLs`.
    #[serde(rename = "siteURLs")]
    pub site_urls: Vec<String>,
    /// `identifiers` (how the gateway recognises the application's calls).
    pub identifiers: Vec<ApplicationIdentifier>,
    /// `authStrategyIds`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_strategy_ids: Vec<String>,
}

/// An application identifier (`{id, name, key, value[]}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIdentifier {
    /// `id`, set by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `name`.
    #[serde(default)]
    pub name: String,
    /// `key`, e.g. `ip`, `httpBasicAuth`, `headers`.
    #[serde(default)]
    pub key: String,
    /// `value`.
    #[serde(default)]
    pub value: Vec<String>,
}

/// An application as the gateway reports it. Its credentials never show in `Debug`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// The gateway's id.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `description`.
    #[serde(default)]
    pub description: Option<String>,
    /// `version`.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub version: Option<String>,
    /// `contactEmails`.
    #[serde(default)]
    pub contact_emails: Vec<String>,
    /// `siteURLs`.
    #[serde(default, rename = "siteURLs")]
    pub site_urls: Vec<String>,
    /// `identifiers`.
    #[serde(default)]
    pub identifiers: Vec<ApplicationIdentifier>,
    /// `authStrategyIds`.
    #[serde(default)]
    pub auth_strategy_ids: Vec<String>,
    /// `consumingAPIs`.
    #[serde(default, rename = "consumingAPIs")]
    pub consuming_apis: Vec<Value>,
    /// `isSuspended`.
    #[serde(default)]
    pub is_suspended: bool,
    /// `owner`.
    #[serde(default)]
    pub owner: Option<String>,
    /// `accessTokens`, read into credentials.
    #[serde(default, deserialize_with = "access_tokens")]
    pub access_tokens: Option<ApplicationCredentials>,
}

/// Which credentials to regenerate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// The API access key (`apiAccessKeyCredentials`).
    ApiKey,
    /// The OAuth client credentials (`oAuthCredentials`).
    OAuth,
}

impl CredentialKind {
    /// The gateway's `type` value.
    pub fn gateway_type(self) -> &'static str {
        match self {
            Self::ApiKey => "apiAccessKeyCredentials",
            Self::OAuth => "oAuthCredentials",
        }
    }
}

/// An application's credentials. `Debug` shows `<redacted>` for every secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplicationCredentials {
    /// `apiAccessKey_credentials.apiAccessKey`.
    pub api_access_key: Option<SecretString>,
    /// `apiAccessKey_credentials.expirationDate`.
    pub api_key_expiration_date: Option<String>,
    /// `apiAccessKey_credentials.expired`.
    pub api_key_expired: Option<bool>,
    /// `oauth_credentials.clientID`.
    pub client_id: Option<String>,
    /// `oauth_credentials.clientSecret`.
    pub client_secret: Option<SecretString>,
}

impl ApplicationCredentials {
    /// Reads an `accessTokens` object; `None` when it holds no credential at all.
    pub fn from_access_tokens(tokens: &Value) -> Option<Self> {
        let text = |v: Option<&Value>| -> Option<String> {
            match v? {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let key = tokens.get("apiAccessKey_credentials");
        let oauth = tokens.get("oauth_credentials");
        let credentials = Self {
            api_access_key: text(key.and_then(|k| k.get("apiAccessKey"))).map(SecretString::new),
            api_key_expiration_date: text(key.and_then(|k| k.get("expirationDate"))),
            api_key_expired: key.and_then(|k| k.get("expired")).and_then(Value::as_bool),
            client_id: text(oauth.and_then(|o| o.get("clientID"))),
            client_secret: text(oauth.and_then(|o| o.get("clientSecret"))).map(SecretString::new),
        };
        (credentials != Self::default()).then_some(credentials)
    }

    /// Finds credentials in any documented answer shape: an `accessTokens` object, the
    /// application (top level or in `applications[0]`), or the token objects themselves.
    pub fn find_in(body: &Value) -> Option<Self> {
        if let Some(tokens) = body.get("accessTokens") {
            return Self::from_access_tokens(tokens);
        }
        if let Some(app) = body
            .get("applications")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return Self::find_in(app);
        }
        if let Some(app) = body.get("application") {
            return Self::find_in(app);
        }
        Self::from_access_tokens(body)
    }
}

/// What an alias points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasTarget {
    /// `type: simple` with a `value`.
    Simple {
        /// The value substituted for the alias.
        value: String,
    },
    /// `type: endpoint`.
    Endpoint {
        /// `endPointURI`.
        uri: String,
        /// `connectionTimeout` in seconds.
        connection_timeout: Option<u32>,
        /// `readTimeout` in seconds.
        read_timeout: Option<u32>,
    },
}

impl AliasTarget {
    /// The gateway's `type` value.
    pub fn alias_type(&self) -> &'static str {
        match self {
            Self::Simple { .. } => "simple",
            Self::Endpoint { .. } => "endpoint",
        }
    }
}

/// An alias to create or update (one record per stage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasSpec {
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `stage`.
    pub stage: Option<String>,
    /// What the alias resolves to.
    pub target: AliasTarget,
}

impl AliasSpec {
    /// The JSON body of `POST /alias` and `PUT /alias/{id}`.
    pub fn to_body(&self, id: Option<&str>) -> Value {
        let mut body = Map::new();
        if let Some(id) = id {
            body.insert("id".into(), json!(id));
        }
        body.insert("name".into(), json!(self.name));
        body.insert("type".into(), json!(self.target.alias_type()));
        if let Some(description) = &self.description {
            body.insert("description".into(), json!(description));
        }
        if let Some(stage) = &self.stage {
            body.insert("stage".into(), json!(stage));
        }
        match &self.target {
            AliasTarget::Simple { value } => {
                body.insert("value".into(), json!(value));
            }
            AliasTarget::Endpoint {
                uri,
                connection_timeout,
                read_timeout,
            } => {
                body.insert("endPointURI".into(), json!(uri));
                if let Some(t) = connection_timeout {
                    body.insert("connectionTimeout".into(), json!(t));
                }
                if let Some(t) = read_timeout {
                    body.insert("readTimeout".into(), json!(t));
                }
            }
        }
        Value::Object(body)
    }
}

/// An alias as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    /// The gateway's id.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `type` (simple | endpoint | …).
    #[serde(rename = "type", default)]
    pub alias_type: String,
    /// `description`.
    #[serde(default)]
    pub description: Option<String>,
    /// `stage`.
    #[serde(default)]
    pub stage: Option<String>,
    /// `owner`.
    #[serde(default)]
    pub owner: Option<String>,
    /// `value` (simple aliases).
    #[serde(default)]
    pub value: Option<String>,
    /// `endPointURI` (endpoint aliases).
    #[serde(default, rename = "endPointURI")]
    pub end_point_uri: Option<String>,
    /// `connectionTimeout` (endpoint aliases).
    #[serde(default)]
    pub connection_timeout: Option<Value>,
    /// `readTimeout` (endpoint aliases).
    #[serde(default)]
    pub read_timeout: Option<Value>,
}

impl Alias {
    /// Whether this is the record of (`name`, `alias_type`, `stage`); a missing or empty
    /// stage matches `None`.
    pub fn matches(&self, name: &str, alias_type: &str, stage: Option<&str>) -> bool {
        let own = self.stage.as_deref().filter(|s| !s.is_empty());
        let wanted = stage.filter(|s| !s.is_empty());
        self.name == name && self.alias_type.eq_ignore_ascii_case(alias_type) && own == wanted
    }
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// The object existed and is gone.
    Deleted,
    /// The object was already gone (404).
    AlreadyAbsent,
}

/// Whether an idempotent call changed anything on the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The gateway was changed.
    Changed,
    /// The gateway was already in the wanted state; nothing was sent.
    Unchanged,
}

impl Change {
    /// Whether the gateway was changed.
    pub fn changed(self) -> bool {
        self == Self::Changed
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(lenient_opt_string(deserializer)?.unwrap_or_default())
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

fn access_tokens<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ApplicationCredentials>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(ApplicationCredentials::from_access_tokens(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_format_and_body() {
        let doc = ApiDocument {
            name: "petstore".into(),
            version: "1.0".into(),
            description: Some("pets".into()),
            maturity_state: None,
            definition: json!({"openapi": "3.0.3", "info": {"title": "p", "version": "1"}}),
        };
        let format = doc.format();
        assert_eq!(format, Some(DefinitionFormat::OpenApi("3.0.3".into())));
        let Some(format) = format else { return };
        assert!(!format.is_openapi_31_or_later());
        let body = doc.to_body(&format);
        assert_eq!(body["type"], "openapi");
        assert_eq!(body["apiName"], "petstore");
        assert_eq!(body["apiDefinition"]["openapi"], "3.0.3");
        assert!(body.get("maturityState").is_none());
        assert!(DefinitionFormat::OpenApi("3.1.0".into()).is_openapi_31_or_later());
        assert!(DefinitionFormat::OpenApi("3.2".into()).is_openapi_31_or_later());
        let swagger = ApiDocument {
            definition: json!({"swagger": "2.0"}),
            ..doc.clone()
        };
        assert_eq!(swagger.format(), Some(DefinitionFormat::Swagger));
        let neither = ApiDocument {
            definition: json!({}),
            ..doc
        };
        assert_eq!(neither.format(), None);
    }

    #[test]
    fn credentials_are_read_and_redacted() {
        let app: Application = match serde_json::from_value(json!({
            "id": "a1", "name": "shop", "version": 1.0,
            "accessTokens": {
                "apiAccessKey_credentials": {"apiAccessKey": "k-123", "expirationDate": "never", "expired": false},
                "oauth_credentials": {"clientID": "cid", "clientSecret": "cs-456"}
            }
        })) {
            Ok(app) => app,
            Err(e) => panic!("{e}"),
        };
        let Some(creds) = &app.access_tokens else {
            panic!("credentials missing")
        };
        assert_eq!(
            creds.api_access_key.as_ref().map(|k| k.expose()),
            Some("k-123")
        );
        assert_eq!(creds.client_id.as_deref(), Some("cid"));
        let debug = format!("{app:?}");
        assert!(
            !debug.contains("k-123") && !debug.contains("cs-456"),
            "{debug}"
        );
        assert!(debug.contains("cid"));
        let wrapped = json!({"applications": [{"id": "a1", "accessTokens": {"apiAccessKey_credentials": {"apiAccessKey": "k2"}}}]});
        assert_eq!(
            ApplicationCredentials::find_in(&wrapped)
                .and_then(|c| c.api_access_key)
                .map(|k| k.expose().to_owned()),
            Some("k2".to_owned())
        );
        assert_eq!(ApplicationCredentials::find_in(&json!({"id": "x"})), None);
    }

    #[test]
    fn alias_body_and_matching() {
        let spec = AliasSpec {
            name: "petstore-backend".into(),
            description: None,
            stage: Some("dev".into()),
            target: AliasTarget::Endpoint {
                uri: "http://backend:8080".into(),
                connection_timeout: Some(30),
                read_timeout: None,
            },
        };
        let body = spec.to_body(Some("id1"));
        assert_eq!(body["type"], "endpoint");
        assert_eq!(body["endPointURI"], "http://backend:8080");
        assert_eq!(body["id"], "id1");
        assert!(body.get("readTimeout").is_none());
        let alias = Alias {
            id: "id1".into(),
            name: "petstore-backend".into(),
            alias_type: "endpoint".into(),
            description: None,
            stage: Some("dev".into()),
            owner: None,
            value: None,
            end_point_uri: Some("http://backend:8080".into()),
            connection_timeout: None,
            read_timeout: None,
        };
        assert!(alias.matches("petstore-backend", "endpoint", Some("dev")));
        assert!(!alias.matches("petstore-backend", "endpoint", Some("prod")));
        assert!(!alias.matches("petstore-backend", "simple", Some("dev")));
        assert!(!alias.matches("petstore-backend", "endpoint", None));
    }
}
