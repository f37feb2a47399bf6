//! What an Api must look like on a gateway, computed from its spec and its document (pure),
//! the stable revision of that, and the comparison with what a gateway reports.

use crds::Environment;
use crds::api::{AliasType, ApiSpec, ConversionInfo};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::gateway;

/// Why the document cannot be deployed (a permanent failure: it waits for a change).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DefinitionError {
    #[error("failed to parse the API definition: {0}")]
    Parse(String),
    #[error("failed to convert the OpenAPI 3.1 definition to 3.0: {0}")]
    Convert(String),
}

/// The document after the backend URL is set, and its 3.0 form.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The source document, with `servers` (or Swagger `host`/`basePath`/`schemes`) set to
    /// the backend URL.
    pub source: Value,
    /// The document for gateways without OpenAPI 3.1 (the source itself unless it is 3.1).
    pub converted: Value,
    /// The conversion report, when the source is OpenAPI 3.1.
    pub conversion: Option<ConversionInfo>,
}

impl Prepared {
    /// The document sent to a gateway.
    pub fn for_gateway(&self, supports_31: bool) -> &Value {
        if supports_31 {
            &self.source
        } else {
            &self.converted
        }
    }
}

/// Parses the document (JSON or YAML), points it at the backend and converts it to 3.0.
pub fn prepare_document(text: &str, backend_url: &str) -> Result<Prepared, DefinitionError> {
    let (mut doc, _) =
        openapi_convert::parse(text).map_err(|e| DefinitionError::Parse(e.to_string()))?;
    if !doc.is_object() {
        return Err(DefinitionError::Parse(
            "the document is not a JSON/YAML object".into(),
        ));
    }
    set_backend(&mut doc, backend_url);
    let source_version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let conversion = openapi_convert::convert(doc.clone())
        .map_err(|e| DefinitionError::Convert(e.to_string()))?;
    let info = (!conversion.passed_through()).then(|| ConversionInfo {
        source_version: source_version.unwrap_or_default(),
        target_version: openapi_convert::TARGET_VERSION.to_string(),
        changes: conversion.changes.iter().map(ToString::to_string).collect(),
    });
    Ok(Prepared {
        source: doc,
        converted: conversion.document,
        conversion: info,
    })
}

/// Sets the backend the gateway routes to: OpenAPI `servers`, Swagger `host`/`basePath`/`schemes`.
fn set_backend(doc: &mut Value, backend_url: &str) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    if obj.contains_key("swagger") {
        if let Ok(url) = url::Url::parse(backend_url) {
            let host = match url.port() {
                Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_string(),
            };
            obj.insert("host".into(), json!(host));
            obj.insert("basePath".into(), json!(url.path()));
            obj.insert("schemes".into(), json!([url.scheme()]));
        }
    } else {
        obj.insert("servers".into(), json!([{"url": backend_url}]));
    }
}

/// An alias one environment's gateway must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAlias {
    /// Name.
    pub name: String,
    /// `endpoint` or `simple`.
    pub alias_type: AliasType,
    /// The value for this environment.
    pub value: String,
}

impl DesiredAlias {
    /// The gateway's alias body.
    pub fn spec(&self, env: Environment) -> gateway::AliasSpec {
        gateway::AliasSpec {
            name: self.name.clone(),
            description: None,
            stage: Some(env.as_str().to_string()),
            target: match self.alias_type {
                AliasType::Endpoint => gateway::AliasTarget::Endpoint {
                    uri: self.value.clone(),
                    connection_timeout: None,
                    read_timeout: None,
                },
                AliasType::Simple => gateway::AliasTarget::Simple {
                    value: self.value.clone(),
                },
            },
        }
    }

    /// Whether the gateway's record holds this value.
    pub fn matches(&self, actual: &gateway::Alias) -> bool {
        match self.alias_type {
            AliasType::Endpoint => actual.end_point_uri.as_deref() == Some(self.value.as_str()),
            AliasType::Simple => actual.value.as_deref() == Some(self.value.as_str()),
        }
    }
}

/// What one environment's gateway must hold for an Api.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredApi {
    /// `apiName`.
    pub name: String,
    /// `apiVersion`.
    pub version: String,
    /// `apiDescription` (empty when none).
    pub description: String,
    /// The document as sent.
    pub definition: Value,
    /// `isActive`.
    pub active: bool,
    /// Aliases with a value for this environment.
    pub aliases: Vec<DesiredAlias>,
}

impl DesiredApi {
    /// The desired API on `env`, given the document sent to that gateway.
    pub fn new(spec: &ApiSpec, env: Environment, definition: Value) -> DesiredApi {
        DesiredApi {
            name: spec.display_name.clone(),
            version: spec.version.clone(),
            description: spec.description.clone().unwrap_or_default(),
            definition,
            active: spec.active,
            aliases: spec
                .aliases
                .iter()
                .filter_map(|a| {
                    a.values.get(&env).map(|v| DesiredAlias {
                        name: a.name.clone(),
                        alias_type: a.type_,
                        value: v.clone(),
                    })
                })
                .collect(),
        }
    }

    /// The create/update body.
    pub fn document(&self) -> gateway::ApiDocument {
        gateway::ApiDocument {
            name: self.name.clone(),
            version: self.version.clone(),
            description: Some(self.description.clone()),
            maturity_state: None,
            definition: self.definition.clone(),
        }
    }

    /// The fields of the gateway's API that differ from this (activation apart).
    pub fn content_differences(&self, actual: &gateway::Api) -> Vec<&'static str> {
        let mut out = Vec::new();
        if actual.api_name != self.name {
            out.push("apiName");
        }
        if actual.api_version != self.version {
            out.push("apiVersion");
        }
        if actual.api_description.as_deref().unwrap_or_default() != self.description {
            out.push("apiDescription");
        }
        if actual.api_definition.as_ref() != Some(&self.definition) {
            out.push("apiDefinition");
        }
        out
    }
}

/// The desired revision: a stable hash of everything that reaches a gateway (name, version,
/// description, activation, aliases and the converted document), 16 hex digits of SHA-256
/// over canonical JSON (keys sorted).
pub fn revision(spec: &ApiSpec, prepared: &Prepared) -> String {
    let value = json!({
        "name": spec.display_name,
        "version": spec.version,
        "description": spec.description,
        "active": spec.active,
        "aliases": spec.aliases,
        "document": prepared.converted,
        "source": prepared.source,
    });
    let mut text = String::new();
    canonical(&value, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Canonical JSON: object keys sorted, no whitespace.
pub fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(*k) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The endpoint callers use on a gateway: `<base>/gateway/<name>/<version>`.
pub fn endpoint(base_url: &str, name: &str, version: &str) -> String {
    match url::Url::parse(base_url) {
        Ok(mut url) => {
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().extend(["gateway", name, version]);
            }
            url.to_string()
        }
        Err(_) => format!(
            "{}/gateway/{name}/{version}",
            base_url.trim_end_matches('/')
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_31: &str = "openapi: 3.1.0\ninfo: {title: P, version: '1'}\npaths:\n  /p:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {type: [string, 'null']}\n";

    fn spec() -> ApiSpec {
        serde_json::from_value(json!({
            "displayName": "Payments", "version": "1.0.0", "backendUrl": "https://b.example/v1",
            "definition": {"inline": DOC_31}, "stages": ["dev", "staging"],
            "aliases": [{"name": "pay-backend", "values": {"dev": "http://dev-backend"}}]
        }))
        .expect("spec")
    }

    #[test]
    fn a_31_document_is_converted_and_pointed_at_the_backend() {
        let p = prepare_document(DOC_31, "https://b.example/v1").expect("prepared");
        assert_eq!(p.source["openapi"], "3.1.0");
        assert_eq!(p.converted["openapi"], "3.0.3");
        assert_eq!(p.converted["servers"][0]["url"], "https://b.example/v1");
        let info = p.conversion.as_ref().expect("a report");
        assert_eq!(
            (info.source_version.as_str(), info.target_version.as_str()),
            ("3.1.0", "3.0.3")
        );
        assert!(!info.changes.is_empty());
        assert_eq!(p.for_gateway(true), &p.source);
        assert_eq!(p.for_gateway(false), &p.converted);
        let p30 = prepare_document(
            "{\"openapi\":\"3.0.3\",\"info\":{\"title\":\"t\",\"version\":\"1\"},\"paths\":{}}",
            "http://x",
        )
        .expect("3.0");
        assert!(p30.conversion.is_none());
        assert_eq!(p30.source, p30.converted);
        let swagger = prepare_document(
            "swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n",
            "https://h:8443/base",
        )
        .expect("2.0");
        assert_eq!(
            (
                swagger.source["host"].as_str(),
                swagger.source["basePath"].as_str()
            ),
            (Some("h:8443"), Some("/base"))
        );
    }

    #[test]
    fn bad_documents_are_refused() {
        assert!(matches!(
            prepare_document("{not json", "http://x"),
            Err(DefinitionError::Parse(_))
        ));
        assert!(
            prepare_document(
                "openapi: 9.0.0\ninfo: {title: t, version: '1'}\n",
                "http://x"
            )
            .is_err()
        );
    }

    #[test]
    fn revision_is_stable_and_moves_with_what_reaches_the_gateway() {
        let s = spec();
        let p = prepare_document(DOC_31, &s.backend_url).expect("prepared");
        let r = revision(&s, &p);
        assert_eq!(r.len(), 16);
        // Key order of the source does not matter.
        let reordered = "info: {version: '1', title: P}\nopenapi: 3.1.0\npaths:\n  /p:\n    get:\n      responses:\n        '200':\n          content:\n            application/json:\n              schema: {type: [string, 'null']}\n          description: ok\n";
        assert_eq!(
            revision(&s, &prepare_document(reordered, &s.backend_url).expect("p")),
            r
        );
        let mut inactive = s.clone();
        inactive.active = false;
        assert_ne!(revision(&inactive, &p), r);
        let mut renamed = s.clone();
        renamed.display_name = "Pay".into();
        assert_ne!(revision(&renamed, &p), r);
        let moved = prepare_document(DOC_31, "https://elsewhere").expect("p");
        assert_ne!(revision(&s, &moved), r);
    }

    #[test]
    fn differences_name_the_fields() {
        let s = spec();
        let p = prepare_document(DOC_31, &s.backend_url).expect("prepared");
        let d = DesiredApi::new(&s, Environment::Dev, p.converted.clone());
        assert_eq!(d.aliases.len(), 1);
        assert!(
            DesiredApi::new(&s, Environment::Staging, p.converted.clone())
                .aliases
                .is_empty()
        );
        let mut actual = gateway::Api {
            id: "1".into(),
            api_name: "Payments".into(),
            api_version: "1.0.0".into(),
            api_description: Some(String::new()),
            is_active: true,
            api_type: None,
            system_version: None,
            maturity_state: None,
            owner: None,
            creation_date: None,
            native_endpoint: vec![],
            api_definition: Some(p.converted.clone()),
        };
        assert!(d.content_differences(&actual).is_empty());
        actual.api_definition = Some(json!({"openapi": "3.0.3"}));
        actual.api_version = "2".into();
        assert_eq!(
            d.content_differences(&actual),
            vec!["apiVersion", "apiDefinition"]
        );
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("http://127.0.0.1:5555/gateways/dev", "Pay Me", "1.0"),
            "http://127.0.0.1:5555/gateways/dev/gateway/Pay%20Me/1.0"
        );
        assert_eq!(endpoint("https://gw/", "p", "1"), "https://gw/gateway/p/1");
    }
}
