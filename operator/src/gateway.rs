//! webMethods API Gateway REST admin client.
//!
//! [`GatewayApi`] is what controllers use (as `Arc<dyn GatewayApi>`, one per environment);
//! [`HttpGateway`] implements it over HTTP (reqwest + rustls/ring) against
//! `<base_url>/rest/apigateway`, with per-request timeouts, bounded jittered retries on
//! transient failures ([`retry`]) and typed errors ([`GatewayError`]).

mod client;
mod credentials;
mod error;
pub mod retry;
mod types;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use client::HttpGateway;
pub use credentials::{CredentialsError, GatewayCredentials, SecretString};
pub use error::{GatewayError, GatewayErrorKind};
pub use retry::RetryPolicy;
pub use types::{
    Alias, AliasSpec, AliasTarget, Api, ApiDocument, Application, ApplicationCredentials,
    ApplicationIdentifier, ApplicationSpec, Change, CredentialKind, DefinitionFormat, Deleted,
};

/// How to reach one gateway (one environment).
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The environment name (`dev`, `prod`, …), used in errors, logs and metrics.
    pub environment: String,
    /// The gateway's base URL, e.g. `http://127.0.0.1:5555/gateways/dev`; the client
    /// appends `/rest/apigateway/...`.
    pub base_url: String,
    /// Basic or bearer credentials.
    pub credentials: GatewayCredentials,
    /// Timeout of one HTTP request (connect + answer).
    pub timeout: Duration,
    /// Retries after the first attempt of a transient failure.
    pub max_retries: usize,
    /// Delay before the first retry (doubling, jittered).
    pub min_backoff: Duration,
    /// Upper bound of the retry delay.
    pub max_backoff: Duration,
    /// Upper bound applied to the gateway's `Retry-After`.
    pub max_retry_after: Duration,
    /// Page size when listing (`size`).
    pub page_size: usize,
    /// Whether the gateway accepts OpenAPI 3.1 documents (10.15 does not).
    pub supports_openapi_31: bool,
}

impl GatewayConfig {
    /// A configuration with defaults: 10 s timeout, 3 retries from 200 ms to 5 s,
    /// `Retry-After` capped at 30 s, pages of 100, no OpenAPI 3.1.
    pub fn new(
        environment: impl Into<String>,
        base_url: impl Into<String>,
        credentials: GatewayCredentials,
    ) -> Self {
        let retry = RetryPolicy::default();
        Self {
            environment: environment.into(),
            base_url: base_url.into(),
            credentials,
            timeout: Duration::from_secs(10),
            max_retries: retry.max_retries,
            min_backoff: retry.min_delay,
            max_backoff: retry.max_delay,
            max_retry_after: retry.max_retry_after,
            page_size: 100,
            supports_openapi_31: false,
        }
    }

    /// The retry policy this configuration describes.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            min_delay: self.min_backoff,
            max_delay: self.max_backoff,
            max_retry_after: self.max_retry_after,
        }
    }
}

/// One finished gateway call (its retries included), as reported to [`GatewayMetrics`].
#[derive(Clone, Debug)]
pub struct GatewayCall<'a> {
    /// The gateway's environment.
    pub environment: &'a str,
    /// A stable label of the call, e.g. `create_api`.
    pub operation: &'static str,
    /// The final HTTP status (`200`, `404`, …), or `timeout`, `connect`, `error`.
    pub status: &'a str,
    /// Attempts made.
    pub attempts: usize,
    /// Time spent, retries included.
    pub elapsed: Duration,
}

/// A sink for gateway call metrics (e.g. a prometheus `Family` counter keyed by
/// environment, operation and status). Any `Fn(&GatewayCall)` closure is one.
pub trait GatewayMetrics: Send + Sync {
    /// Records one finished call.
    fn observe(&self, call: &GatewayCall<'_>);
}

impl<F> GatewayMetrics for F
where
    F: Fn(&GatewayCall<'_>) + Send + Sync,
{
    fn observe(&self, call: &GatewayCall<'_>) {
        self(call)
    }
}

/// A shareable gateway client.
pub type DynGateway = Arc<dyn GatewayApi>;

/// The calls controllers make on one gateway (one environment).
#[async_trait]
pub trait GatewayApi: Send + Sync {
    /// The environment this gateway serves.
    fn environment(&self) -> &str;

    /// Whether this gateway accepts OpenAPI 3.1 (otherwise convert to 3.0 first).
    fn supports_openapi_31(&self) -> bool;

    /// Creates an API from its OpenAPI/Swagger document (created inactive).
    async fn create_api(&self, document: &ApiDocument) -> Result<Api, GatewayError>;

    /// Replaces an API's resources and operations from a new document.
    async fn update_api(&self, id: &str, document: &ApiDocument) -> Result<Api, GatewayError>;

    /// Reads an API (404 → [`GatewayError::is_not_found`]).
    async fn get_api(&self, id: &str) -> Result<Api, GatewayError>;

    /// Lists every API, following `from`/`size` pages until exhausted.
    async fn list_apis(&self) -> Result<Vec<Api>, GatewayError>;

    /// Finds an API by name and version.
    async fn find_api(&self, name: &str, version: &str) -> Result<Option<Api>, GatewayError>;

    /// Deletes an API, deactivating it first; `force` also removes it while applications
    /// reference it. A 404 counts as done.
    async fn delete_api(&self, id: &str, force: bool) -> Result<Deleted, GatewayError>;

    /// Activates an API unless it is active already.
    async fn activate_api(&self, id: &str) -> Result<Change, GatewayError>;

    /// Deactivates an API unless it is inactive already.
    async fn deactivate_api(&self, id: &str) -> Result<Change, GatewayError>;

    /// Creates an application.
    async fn create_application(
        &self,
        application: &ApplicationSpec,
    ) -> Result<Application, GatewayError>;

    /// Updates an application (tokens, strategies and linked APIs are not changed).
    async fn update_application(
        &self,
        id: &str,
        application: &ApplicationSpec,
    ) -> Result<Application, GatewayError>;

    /// Reads an application.
    async fn get_application(&self, id: &str) -> Result<Application, GatewayError>;

    /// Lists every application.
    async fn list_applications(&self) -> Result<Vec<Application>, GatewayError>;

    /// Finds an application by name.
    async fn find_application(&self, name: &str) -> Result<Option<Application>, GatewayError>;

    /// Deletes an application; a 404 counts as done.
    async fn delete_application(&self, id: &str) -> Result<Deleted, GatewayError>;

    /// Regenerates an application's credentials and returns the new ones.
    async fn regenerate_credentials(
        &self,
        application_id: &str,
        kind: CredentialKind,
    ) -> Result<ApplicationCredentials, GatewayError>;

    /// The ids of the APIs an application is subscribed to.
    async fn application_apis(&self, application_id: &str) -> Result<Vec<String>, GatewayError>;

    /// Replaces the APIs an application is subscribed to (order ignored), unless they are
    /// those already.
    async fn set_application_apis(
        &self,
        application_id: &str,
        api_ids: &[String],
    ) -> Result<Change, GatewayError>;

    /// Subscribes an application to an API, unless it is already.
    async fn associate_api(
        &self,
        application_id: &str,
        api_id: &str,
    ) -> Result<Change, GatewayError>;

    /// Unsubscribes an application from an API, unless it is not subscribed.
    async fn dissociate_api(
        &self,
        application_id: &str,
        api_id: &str,
    ) -> Result<Change, GatewayError>;

    /// Creates an alias (one record per stage).
    async fn create_alias(&self, alias: &AliasSpec) -> Result<Alias, GatewayError>;

    /// Updates an alias.
    async fn update_alias(&self, id: &str, alias: &AliasSpec) -> Result<Alias, GatewayError>;

    /// Reads an alias.
    async fn get_alias(&self, id: &str) -> Result<Alias, GatewayError>;

    /// Lists every alias.
    async fn list_aliases(&self) -> Result<Vec<Alias>, GatewayError>;

    /// Finds the alias record of (`name`, `alias_type`, `stage`).
    async fn find_alias(
        &self,
        name: &str,
        alias_type: &str,
        stage: Option<&str>,
    ) -> Result<Option<Alias>, GatewayError>;

    /// Deletes an alias; a 404 counts as done.
    async fn delete_alias(&self, id: &str) -> Result<Deleted, GatewayError>;
}
