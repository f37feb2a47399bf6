//! [`HttpGateway`]: the HTTP implementation of [`GatewayApi`].

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use super::error::{GatewayError, GatewayErrorKind};
use super::retry::{self, Failure, RawResponse, RetryPolicy};
use super::types::{
    Alias, AliasSpec, Api, ApiDocument, Application, ApplicationCredentials, ApplicationSpec,
    Change, CredentialKind, Deleted,
};
use super::{GatewayApi, GatewayCall, GatewayConfig, GatewayMetrics};

/// Pages read at most when listing, a guard against a gateway that ignores `from`.
const MAX_PAGES: usize = 10_000;

/// The gateway REST admin API over HTTP.
#[derive(Clone)]
pub struct HttpGateway {
    config: GatewayConfig,
    environment: Arc<str>,
    base_url: Arc<str>,
    root: Url,
    authorization: String,
    client: reqwest::Client,
    retry: RetryPolicy,
    metrics: Option<Arc<dyn GatewayMetrics>>,
}

impl std::fmt::Debug for HttpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGateway")
            .field("environment", &self.config.environment)
            .field("root", &self.root.as_str())
            .field("credentials", &self.config.credentials)
            .finish_non_exhaustive()
    }
}

/// One request: what, where, and with which body.
struct Call {
    op: &'static str,
    operation: String,
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Call {
    fn new(op: &'static str, operation: String, method: Method, segments: &[&str]) -> Self {
        Self {
            op,
            operation,
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
        }
    }

    fn query(mut self, key: &'static str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

impl HttpGateway {
    /// Builds a client for one gateway. Installs the ring rustls provider as the process
    /// default when none is installed.
    pub fn new(config: GatewayConfig) -> Result<Self, GatewayError> {
        let error = |kind| GatewayError {
            operation: "build the HTTP client".into(),
            op: "new",
            environment: Arc::from(config.environment.as_str()),
            base_url: Arc::from(config.base_url.as_str()),
            kind,
        };
        let mut root = Url::parse(&config.base_url)
            .map_err(|e| error(GatewayErrorKind::Request(format!("invalid base URL: {e}"))))?;
        if root.cannot_be_a_base() || !matches!(root.scheme(), "http" | "https") {
            return Err(error(GatewayErrorKind::Request(
                "invalid base URL: expected http(s)://host[:port][/path]".into(),
            )));
        }
        root.set_query(None);
        root.set_fragment(None);
        {
            let mut segments = root
                .path_segments_mut()
                .map_err(|()| error(GatewayErrorKind::Request("invalid base URL".into())))?;
            segments.pop_if_empty().extend(["rest", "apigateway"]);
        }
        let client =
            retry::build_client(config.timeout).map_err(|e| error(GatewayErrorKind::Request(e)))?;
        Ok(Self {
            environment: Arc::from(config.environment.as_str()),
            base_url: Arc::from(config.base_url.as_str()),
            authorization: config.credentials.authorization(),
            retry: config.retry_policy(),
            root,
            client,
            config,
            metrics: None,
        })
    }

    /// Reports every call to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn GatewayMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    fn error(&self, op: &'static str, operation: String, kind: GatewayErrorKind) -> GatewayError {
        GatewayError {
            operation,
            op,
            environment: self.environment.clone(),
            base_url: self.base_url.clone(),
            kind,
        }
    }

    fn url<S: AsRef<str>>(&self, segments: &[S]) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Checked in `new`: the root can be a base.
            path.extend(segments.iter().map(AsRef::as_ref));
        }
        url
    }

    /// Sends a call with retries; a non-2xx answer is an `Err(Failure::Status)`.
    async fn send(&self, call: &Call) -> Result<RawResponse, (Failure, usize)> {
        let url = self.url(&call.segments);
        let outcome = retry::send_with_retry(&self.retry, self.config.timeout, || {
            let mut request = self
                .client
                .request(call.method.clone(), url.clone())
                .header(ACCEPT, "application/json")
                .header(AUTHORIZATION, &self.authorization);
            if !call.query.is_empty() {
                request = request.query(&call.query);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            request
        })
        .await;
        let status = match &outcome.result {
            Ok(response) => response.status.as_u16().to_string(),
            Err(failure) => failure.label(),
        };
        tracing::debug!(
            environment = %self.config.environment,
            operation = call.op,
            method = %call.method,
            %url,
            status,
            attempts = outcome.attempts,
            elapsed_ms = outcome.elapsed.as_millis() as u64,
            "gateway call"
        );
        if let Some(metrics) = &self.metrics {
            metrics.observe(&GatewayCall {
                environment: &self.config.environment,
                operation: call.op,
                status: &status,
                attempts: outcome.attempts,
                elapsed: outcome.elapsed,
            });
        }
        outcome
            .result
            .map_err(|failure| (failure, outcome.attempts))
    }

    /// Sends a call; any failure becomes a [`GatewayError`].
    async fn execute(&self, call: Call) -> Result<RawResponse, GatewayError> {
        self.send(&call).await.map_err(|(failure, attempts)| {
            self.error(
                call.op,
                call.operation.clone(),
                GatewayErrorKind::from_failure(failure, attempts),
            )
        })
    }

    /// Sends a call and parses its JSON answer with `parse`.
    async fn execute_json<T>(
        &self,
        call: Call,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<T, GatewayError> {
        let op = call.op;
        let operation = call.operation.clone();
        let response = self.execute(call).await?;
        let value: Value = serde_json::from_str(&response.body).map_err(|e| {
            self.error(
                op,
                operation.clone(),
                GatewayErrorKind::Decode(format!(
                    "{} with a body that is not JSON ({e}): {}",
                    response.status,
                    retry::truncate_head(&response.body, 300)
                )),
            )
        })?;
        parse(&value).map_err(|e| self.error(op, operation, GatewayErrorKind::Decode(e)))
    }

    /// Sends a delete; 404 → [`Deleted::AlreadyAbsent`].
    async fn execute_delete(&self, call: Call) -> Result<Deleted, GatewayError> {
        match self.send(&call).await {
            Ok(response) => {
                check_response_status(&response)
                    .map_err(|kind| self.error(call.op, call.operation.clone(), kind))?;
                Ok(Deleted::Deleted)
            }
            Err((Failure::Status { status: 404, .. }, _)) => Ok(Deleted::AlreadyAbsent),
            Err((failure, attempts)) => Err(self.error(
                call.op,
                call.operation,
                GatewayErrorKind::from_failure(failure, attempts),
            )),
        }
    }

    /// After a 400 on an application sub-resource (the gateway answers 400, not 404, for
    /// an unknown application), tells a missing application apart from a bad request.
    async fn explain_application_400(
        &self,
        error: GatewayError,
        application_id: &str,
    ) -> GatewayError {
        if error.status() != Some(400) {
            return error;
        }
        match self.get_application(application_id).await {
            Err(probe) if probe.is_not_found() => GatewayError {
                kind: GatewayErrorKind::Status {
                    status: 404,
                    details: format!(
                        "application {application_id} does not exist (the gateway answered 400: {})",
                        error.details().unwrap_or_default()
                    ),
                    attempts: 1,
                },
                ..error
            },
            _ => error,
        }
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<Change, GatewayError> {
        let current = self.get_api(id).await?;
        if current.is_active == active {
            return Ok(Change::Unchanged);
        }
        let (op, verb, action) = if active {
            ("activate_api", "activate", "activate")
        } else {
            ("deactivate_api", "deactivate", "deactivate")
        };
        let call = Call::new(
            op,
            format!("{verb} API {id}"),
            Method::PUT,
            &["apis", id, action],
        );
        match self.execute(call).await {
            Ok(_) => Ok(Change::Changed),
            // 400 "already in that state": someone else got there first.
            Err(error) if error.status() == Some(400) => match self.get_api(id).await {
                Ok(api) if api.is_active == active => Ok(Change::Unchanged),
                _ => Err(error),
            },
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl GatewayApi for HttpGateway {
    fn environment(&self) -> &str {
        &self.config.environment
    }

    fn supports_openapi_31(&self) -> bool {
        self.config.supports_openapi_31
    }

    async fn create_api(&self, document: &ApiDocument) -> Result<Api, GatewayError> {
        let operation = format!("create API {:?} {}", document.name, document.version);
        let body = self.document_body(document, "create_api", &operation)?;
        let call = Call::new("create_api", operation, Method::POST, &["apis"]).body(body);
        self.execute_json(call, parse_api).await
    }

    async fn update_api(&self, id: &str, document: &ApiDocument) -> Result<Api, GatewayError> {
        let operation = format!("update API {id} ({:?} {})", document.name, document.version);
        let body = self.document_body(document, "update_api", &operation)?;
        let call = Call::new("update_api", operation, Method::PUT, &["apis", id]).body(body);
        self.execute_json(call, parse_api).await
    }

    async fn get_api(&self, id: &str) -> Result<Api, GatewayError> {
        let call = Call::new(
            "get_api",
            format!("read API {id}"),
            Method::GET,
            &["apis", id],
        );
        self.execute_json(call, parse_api).await
    }

    async fn list_apis(&self) -> Result<Vec<Api>, GatewayError> {
        let size = self.config.page_size.max(1);
        let mut apis: Vec<Api> = Vec::new();
        let mut seen = HashSet::new();
        for page in 0..MAX_PAGES {
            let from = page * size;
            let call = Call::new(
                "list_apis",
                format!("list APIs (from {from}, size {size})"),
                Method::GET,
                &["apis"],
            )
            .query("from", from)
            .query("size", size);
            let batch = self.execute_json(call, parse_api_list).await?;
            let count = batch.len();
            let mut new = 0;
            for api in batch {
                if seen.insert(api.id.clone()) {
                    apis.push(api);
                    new += 1;
                }
            }
            // A short page is the last; a page of nothing new means `from` is ignored.
            if count < size || new == 0 {
                break;
            }
        }
        Ok(apis)
    }

    async fn find_api(&self, name: &str, version: &str) -> Result<Option<Api>, GatewayError> {
        Ok(self
            .list_apis()
            .await?
            .into_iter()
            .find(|api| api.api_name == name && api.api_version == version))
    }

    async fn delete_api(&self, id: &str, force: bool) -> Result<Deleted, GatewayError> {
        match self.set_active(id, false).await {
            Ok(_) => {}
            Err(error) if error.is_not_found() => return Ok(Deleted::AlreadyAbsent),
            Err(error) => return Err(error),
        }
        let mut call = Call::new(
            "delete_api",
            format!("delete API {id}"),
            Method::DELETE,
            &["apis", id],
        );
        if force {
            call = call.query("forceDelete", true);
        }
        self.execute_delete(call).await
    }

    async fn activate_api(&self, id: &str) -> Result<Change, GatewayError> {
        self.set_active(id, true).await
    }

    async fn deactivate_api(&self, id: &str) -> Result<Change, GatewayError> {
        self.set_active(id, false).await
    }

    async fn create_application(
        &self,
        application: &ApplicationSpec,
    ) -> Result<Application, GatewayError> {
        let call = Call::new(
            "create_application",
            format!("create application {:?}", application.name),
            Method::POST,
            &["applications"],
        )
        .body(application_body(application, None));
        self.execute_json(call, parse_application).await
    }

    async fn update_application(
        &self,
        id: &str,
        application: &ApplicationSpec,
    ) -> Result<Application, GatewayError> {
        let call = Call::new(
            "update_application",
            format!("update application {id} ({:?})", application.name),
            Method::PUT,
            &["applications", id],
        )
        .body(application_body(application, Some(id)));
        self.execute_json(call, parse_application).await
    }

    async fn get_application(&self, id: &str) -> Result<Application, GatewayError> {
        let operation = format!("read application {id}");
        let call = Call::new(
            "get_application",
            operation.clone(),
            Method::GET,
            &["applications", id],
        );
        let found = self
            .execute_json(call, |v| {
                Ok(parse_application_list(v)?.into_iter().find(|a| a.id == id))
            })
            .await?;
        found.ok_or_else(|| {
            self.error(
                "get_application",
                operation,
                GatewayErrorKind::Status {
                    status: 404,
                    details: "the answer lists no such application".into(),
                    attempts: 1,
                },
            )
        })
    }

    async fn list_applications(&self) -> Result<Vec<Application>, GatewayError> {
        let call = Call::new(
            "list_applications",
            "list applications".into(),
            Method::GET,
            &["applications"],
        );
        self.execute_json(call, parse_application_list).await
    }

    async fn find_application(&self, name: &str) -> Result<Option<Application>, GatewayError> {
        Ok(self
            .list_applications()
            .await?
            .into_iter()
            .find(|a| a.name == name))
    }

    async fn delete_application(&self, id: &str) -> Result<Deleted, GatewayError> {
        let call = Call::new(
            "delete_application",
            format!("delete application {id}"),
            Method::DELETE,
            &["applications", id],
        );
        self.execute_delete(call).await
    }

    async fn regenerate_credentials(
        &self,
        application_id: &str,
        kind: CredentialKind,
    ) -> Result<ApplicationCredentials, GatewayError> {
        let operation = format!(
            "regenerate {} of application {application_id}",
            kind.gateway_type()
        );
        let call = Call::new(
            "regenerate_credentials",
            operation.clone(),
            Method::POST,
            &["applications", application_id, "accessTokens"],
        )
        .body(json!({ "type": kind.gateway_type() }));
        let answered = match self
            .execute_json(call, |v| Ok(ApplicationCredentials::find_in(v)))
            .await
        {
            Ok(credentials) => credentials,
            Err(error) => return Err(self.explain_application_400(error, application_id).await),
        };
        if let Some(credentials) = answered {
            return Ok(credentials);
        }
        // The answer did not carry them: read them from the application.
        self.get_application(application_id)
            .await?
            .access_tokens
            .ok_or_else(|| {
                self.error(
                    "regenerate_credentials",
                    operation,
                    GatewayErrorKind::Decode(
                        "neither the answer nor the application carries credentials".into(),
                    ),
                )
            })
    }

    async fn application_apis(&self, application_id: &str) -> Result<Vec<String>, GatewayError> {
        let call = Call::new(
            "application_apis",
            format!("read the APIs of application {application_id}"),
            Method::GET,
            &["applications", application_id, "apis"],
        );
        match self.execute_json(call, parse_api_ids).await {
            Ok(ids) => Ok(ids),
            Err(error) => Err(self.explain_application_400(error, application_id).await),
        }
    }

    async fn set_application_apis(
        &self,
        application_id: &str,
        api_ids: &[String],
    ) -> Result<Change, GatewayError> {
        let current: BTreeSet<String> = self
            .application_apis(application_id)
            .await?
            .into_iter()
            .collect();
        let wanted: BTreeSet<String> = api_ids.iter().cloned().collect();
        if current == wanted {
            return Ok(Change::Unchanged);
        }
        self.put_application_apis(application_id, wanted).await
    }

    async fn associate_api(
        &self,
        application_id: &str,
        api_id: &str,
    ) -> Result<Change, GatewayError> {
        let mut ids: BTreeSet<String> = self
            .application_apis(application_id)
            .await?
            .into_iter()
            .collect();
        if !ids.insert(api_id.to_owned()) {
            return Ok(Change::Unchanged);
        }
        self.put_application_apis(application_id, ids).await
    }

    async fn dissociate_api(
        &self,
        application_id: &str,
        api_id: &str,
    ) -> Result<Change, GatewayError> {
        let mut ids: BTreeSet<String> = self
            .application_apis(application_id)
            .await?
            .into_iter()
            .collect();
        if !ids.remove(api_id) {
            return Ok(Change::Unchanged);
        }
        self.put_application_apis(application_id, ids).await
    }

    async fn create_alias(&self, alias: &AliasSpec) -> Result<Alias, GatewayError> {
        let call = Call::new(
            "create_alias",
            format!(
                "create {} alias {:?} for stage {}",
                alias.target.alias_type(),
                alias.name,
                alias.stage.as_deref().unwrap_or("-")
            ),
            Method::POST,
            &["alias"],
        )
        .body(alias.to_body(None));
        self.execute_json(call, parse_alias).await
    }

    async fn update_alias(&self, id: &str, alias: &AliasSpec) -> Result<Alias, GatewayError> {
        let call = Call::new(
            "update_alias",
            format!("update alias {id} ({:?})", alias.name),
            Method::PUT,
            &["alias", id],
        )
        .body(alias.to_body(Some(id)));
        self.execute_json(call, parse_alias).await
    }

    async fn get_alias(&self, id: &str) -> Result<Alias, GatewayError> {
        let call = Call::new(
            "get_alias",
            format!("read alias {id}"),
            Method::GET,
            &["alias", id],
        );
        self.execute_json(call, parse_alias).await
    }

    async fn list_aliases(&self) -> Result<Vec<Alias>, GatewayError> {
        let call = Call::new(
            "list_aliases",
            "list aliases".into(),
            Method::GET,
            &["alias"],
        );
        self.execute_json(call, parse_alias_list).await
    }

    async fn find_alias(
        &self,
        name: &str,
        alias_type: &str,
        stage: Option<&str>,
    ) -> Result<Option<Alias>, GatewayError> {
        Ok(self
            .list_aliases()
            .await?
            .into_iter()
            .find(|a| a.matches(name, alias_type, stage)))
    }

    async fn delete_alias(&self, id: &str) -> Result<Deleted, GatewayError> {
        let call = Call::new(
            "delete_alias",
            format!("delete alias {id}"),
            Method::DELETE,
            &["alias", id],
        );
        self.execute_delete(call).await
    }
}

impl HttpGateway {
    fn document_body(
        &self,
        document: &ApiDocument,
        op: &'static str,
        operation: &str,
    ) -> Result<Value, GatewayError> {
        let format = document.format().ok_or_else(|| {
            self.error(
                op,
                operation.to_owned(),
                GatewayErrorKind::Unsupported(
                    "the API definition has neither an `openapi` nor a `swagger` field".into(),
                ),
            )
        })?;
        if format.is_openapi_31_or_later() && !self.config.supports_openapi_31 {
            return Err(self.error(
                op,
                operation.to_owned(),
                GatewayErrorKind::Unsupported(format!(
                    "this gateway does not accept OpenAPI 3.1 documents (got openapi {}); convert it to 3.0 first",
                    match &format {
                        super::DefinitionFormat::OpenApi(v) => v.as_str(),
                        super::DefinitionFormat::Swagger => "2.0",
                    }
                )),
            ));
        }
        Ok(document.to_body(&format))
    }

    async fn put_application_apis(
        &self,
        application_id: &str,
        ids: BTreeSet<String>,
    ) -> Result<Change, GatewayError> {
        let ids: Vec<String> = ids.into_iter().collect();
        let call = Call::new(
            "set_application_apis",
            format!(
                "set the APIs of application {application_id} to [{}]",
                ids.join(", ")
            ),
            Method::PUT,
            &["applications", application_id, "apis"],
        )
        .body(json!({ "apiIDs": ids }));
        match self.execute(call).await {
            Ok(_) => Ok(Change::Changed),
            Err(error) => Err(self.explain_application_400(error, application_id).await),
        }
    }
}

/// A 200 delete may carry `{apiId, errorReason, responseStatus}`: anything but SUCCESS is
/// a refusal.
fn check_response_status(response: &RawResponse) -> Result<(), GatewayErrorKind> {
    if response.status == StatusCode::NO_CONTENT || response.body.trim().is_empty() {
        return Ok(());
    }
    let Ok(value) = serde_json::from_str::<Value>(&response.body) else {
        return Ok(());
    };
    let status = value.get("responseStatus").and_then(Value::as_str);
    match status {
        None | Some("SUCCESS") => Ok(()),
        Some(other) => Err(GatewayErrorKind::Status {
            status: response.status.as_u16(),
            details: format!(
                "{other}: {}",
                value
                    .get("errorReason")
                    .or_else(|| value.get("errorDetails"))
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
            ),
            attempts: 1,
        }),
    }
}

fn from_value<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, String> {
    T::deserialize(value).map_err(|e| format!("{what} does not match the documented shape: {e}"))
}

/// `{"apiResponse":{"api":{…}}}` (also accepts a one-element list or a bare `api`).
fn parse_api(value: &Value) -> Result<Api, String> {
    let response = value.get("apiResponse");
    let entry = match response {
        Some(Value::Array(items)) => items.first(),
        Some(other) => Some(other),
        None => Some(value),
    };
    let api = entry.and_then(|e| e.get("api")).ok_or_else(|| {
        let status = entry
            .and_then(|e| e.get("responseStatus"))
            .and_then(Value::as_str)
            .unwrap_or("none");
        format!("no `apiResponse.api` in the answer (responseStatus {status})")
    })?;
    from_value(api, "the API")
}

/// `{"apiResponse":[{"api":{…},"responseStatus":"SUCCESS"}]}`; entries without `api` are
/// skipped.
fn parse_api_list(value: &Value) -> Result<Vec<Api>, String> {
    let items = match value.get("apiResponse") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => return Ok(Vec::new()),
        Some(_) => return Err("`apiResponse` is not a list".into()),
    };
    items
        .iter()
        .filter_map(|item| item.get("api"))
        .map(|api| from_value(api, "an API of the list"))
        .collect()
}

/// An application at the top level, or wrapped in `applications[0]` or `application`.
fn parse_application(value: &Value) -> Result<Application, String> {
    if let Some(first) = value
        .get("applications")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return from_value(first, "the application");
    }
    if let Some(app) = value.get("application") {
        return from_value(app, "the application");
    }
    from_value(value, "the application")
}

/// `{"applications":[…]}` (or a bare list).
fn parse_application_list(value: &Value) -> Result<Vec<Application>, String> {
    let items = match value {
        Value::Array(items) => items,
        _ => match value.get("applications") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => return Ok(Vec::new()),
            Some(_) => return Err("`applications` is not a list".into()),
        },
    };
    items
        .iter()
        .map(|a| from_value(a, "an application of the list"))
        .collect()
}

/// The API ids of `GET /applications/{id}/apis`: `{"apiIDs":[…]}`, or a list of APIs under
/// `apiResponse`, `apis` or `consumingAPIs` (each an id or an object with `id`/`api.id`).
fn parse_api_ids(value: &Value) -> Result<Vec<String>, String> {
    let list = ["apiIDs", "apiIds", "apiResponse", "apis", "consumingAPIs"]
        .iter()
        .find_map(|key| value.get(*key))
        .or(if value.is_array() { Some(value) } else { None });
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = list else {
        return Err("the list of APIs is not a list".into());
    };
    items
        .iter()
        .map(|item| {
            let id = match item {
                Value::String(id) => Some(id.as_str()),
                _ => item
                    .get("id")
                    .or_else(|| item.get("api").and_then(|a| a.get("id")))
                    .or_else(|| item.get("apiId"))
                    .and_then(Value::as_str),
            };
            id.map(str::to_owned)
                .ok_or_else(|| format!("an entry of the list of APIs has no id: {item}"))
        })
        .collect()
}

/// `{"alias":{…}}` or the alias at the top level.
fn parse_alias(value: &Value) -> Result<Alias, String> {
    match value.get("alias") {
        Some(alias @ Value::Object(_)) => from_value(alias, "the alias"),
        Some(Value::Array(items)) if items.len() == 1 => from_value(&items[0], "the alias"),
        _ => from_value(value, "the alias"),
    }
}

/// `{"alias":[…]}` (or a bare list).
fn parse_alias_list(value: &Value) -> Result<Vec<Alias>, String> {
    let items = match value {
        Value::Array(items) => items,
        _ => match value.get("alias").or_else(|| value.get("aliases")) {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => return Ok(Vec::new()),
            Some(_) => return Err("`alias` is not a list".into()),
        },
    };
    items
        .iter()
        .map(|a| from_value(a, "an alias of the list"))
        .collect()
}

fn application_body(application: &ApplicationSpec, id: Option<&str>) -> Value {
    let mut body = serde_json::to_value(application).unwrap_or_else(|_| json!({}));
    if let (Some(id), Value::Object(map)) = (id, &mut body) {
        map.insert("id".into(), json!(id));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_wrappers() {
        let single = json!({"apiResponse": {"api": {"id": "1", "apiName": "p", "apiVersion": "1.0", "isActive": false}, "responseStatus": "SUCCESS"}});
        assert_eq!(parse_api(&single).map(|a| a.api_name), Ok("p".to_owned()));
        let list = json!({"apiResponse": [
            {"api": {"id": "1", "apiName": "p", "apiVersion": 2}, "responseStatus": "SUCCESS"},
            {"responseStatus": "NOT_FOUND"}
        ]});
        let apis = parse_api_list(&list);
        assert_eq!(apis.as_ref().map(Vec::len), Ok(1));
        assert_eq!(apis.map(|a| a[0].api_version.clone()), Ok("2".to_owned()));
        assert!(
            parse_api(&json!({"apiResponse": {"responseStatus": "ERROR"}}))
                .is_err_and(|e| e.contains("ERROR"))
        );
        assert_eq!(parse_api_list(&json!({})), Ok(vec![]));
    }

    #[test]
    fn parses_application_and_alias_shapes() {
        let wrapped = json!({"applications": [{"id": "a", "name": "shop"}]});
        assert_eq!(
            parse_application(&wrapped).map(|a| a.name),
            Ok("shop".into())
        );
        let top = json!({"id": "a", "name": "shop"});
        assert_eq!(parse_application(&top).map(|a| a.id), Ok("a".into()));
        assert_eq!(
            parse_api_ids(&json!({"apiIDs": ["x", "y"]})),
            Ok(vec!["x".to_owned(), "y".to_owned()])
        );
        assert_eq!(
            parse_api_ids(&json!({"apiResponse": [{"api": {"id": "x"}}]})),
            Ok(vec!["x".to_owned()])
        );
        assert_eq!(parse_api_ids(&json!({})), Ok(vec![]));
        let alias = json!({"alias": {"id": "1", "name": "n", "type": "simple", "value": "v"}});
        assert_eq!(parse_alias(&alias).map(|a| a.value), Ok(Some("v".into())));
        let list = json!({"alias": [{"id": "1", "name": "n", "type": "simple"}]});
        assert_eq!(parse_alias_list(&list).map(|a| a.len()), Ok(1));
    }

    #[test]
    fn delete_answers_other_than_success_are_refusals() {
        let response = |status: u16, body: &str| RawResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers: Default::default(),
            body: body.into(),
        };
        assert!(check_response_status(&response(204, "")).is_ok());
        assert!(
            check_response_status(&response(
                200,
                r#"{"apiId":"1","responseStatus":"SUCCESS"}"#
            ))
            .is_ok()
        );
        let refused = check_response_status(&response(
            200,
            r#"{"apiId":"1","errorReason":"in use","responseStatus":"ERROR"}"#,
        ));
        assert!(
            matches!(refused, Err(GatewayErrorKind::Status { details, .. }) if details == "ERROR: in use")
        );
    }

    #[test]
    fn urls_append_the_rest_root_and_escape_ids() {
        let config = GatewayConfig::new(
            "dev",
            "http://127.0.0.1:5555/gateways/dev/",
            super::super::GatewayCredentials::basic("u", "p"),
        );
        let gateway = match HttpGateway::new(config) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            gateway.url(&["apis", "a/b"]).as_str(),
            "http://127.0.0.1:5555/gateways/dev/rest/apigateway/apis/a%2Fb"
        );
        let debug = format!("{gateway:?}");
        assert!(!debug.contains("\"p\""), "{debug}");
        let bad = HttpGateway::new(GatewayConfig::new(
            "dev",
            "not a url",
            super::super::GatewayCredentials::basic("u", "p"),
        ));
        assert!(bad.is_err_and(|e| e.to_string().starts_with(
            "failed to build the HTTP client on gateway dev (not a url): the request could not be sent: invalid base URL"
        )));
    }
}
