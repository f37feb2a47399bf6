//! Every behaviour the contract (`GATEWAY-AWX-API.md`) marks **assumed**, plus the points
//! the simulator had to decide where the contract is silent, in one place and configurable.
//!
//! Each field documents whether it comes from the contract ("contract: assumed") or was
//! chosen by the simulator ("sim choice"). `sim/README.md` lists the same points.

use serde::{Deserialize, Serialize};

/// Switches for the behaviours nobody could confirm from the products' documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assumed {
    /// Contract: assumed. A second API with the same name and version is refused with 400.
    pub duplicate_api_name_version_rejected: bool,
    /// Contract: assumed. `GET /alias/{id}` wraps the alias as `{"alias":{…}}`. The simulator
    /// applies the same wrapper to the `POST /alias` and `PUT /alias/{id}` answers, and lists
    /// as `{"alias":[…]}` (sim choice). When false, single aliases are returned bare.
    pub alias_wrapped: bool,
    /// Sim choice. Status of a successful `POST /applications` (contract: 200; clients
    /// accept 200 or 201).
    pub application_create_status: u16,
    /// Sim choice. `POST /applications/{id}/apis` with an unknown API id is refused with 400.
    pub association_unknown_api_rejected: bool,
    /// Sim choice. `GET|POST|PUT /applications/{id}/apis` answer `{"apiIDs":[…]}`.
    /// (The real answer shape is undocumented.)
    pub associations_body_api_ids: bool,
    /// Sim choice. `POST /applications/{id}/accessTokens` answers with the whole
    /// application object (so `accessTokens.apiAccessKey_credentials.apiAccessKey` is found
    /// at the same place as on `GET /applications/{id}`).
    pub access_tokens_return_application: bool,
    /// Sim choice. The `Retry-After` value (seconds) sent with injected 429s.
    pub retry_after_secs: u64,
    /// Contract: assumed (framework default). AWX 405 body
    /// `{"detail":"Method \"POST\" not allowed."}`, also used when a finished job is canceled.
    pub awx_405_on_cancel_finished: bool,
    /// Sim choice. `failed` is true for `failed`, `error` and `canceled` jobs.
    pub awx_canceled_is_failed: bool,
    /// Sim choice. Delay between a job finishing and `event_processing_finished` turning true,
    /// in milliseconds (AWX processes events after the playbook exits).
    pub awx_event_processing_delay_ms: u64,
    /// Sim choice. Version reported in `X-API-Product-Version`.
    pub awx_version: String,
}

impl Default for Assumed {
    fn default() -> Self {
        Self {
            duplicate_api_name_version_rejected: true,
            alias_wrapped: true,
            application_create_status: 200,
            association_unknown_api_rejected: true,
            associations_body_api_ids: true,
            access_tokens_return_application: true,
            retry_after_secs: 1,
            awx_405_on_cancel_finished: true,
            awx_canceled_is_failed: true,
            awx_event_processing_delay_ms: 50,
            awx_version: "24.6.1".to_owned(),
        }
    }
}

/// AWX 403 body (contract: assumed, framework default).
pub const AWX_403: &str = "You do not have permission to perform this action.";
/// AWX 404 body for an unknown object (contract: assumed, framework default).
pub const AWX_404_OBJECT: &str = "Not found.";
/// AWX 404 body for an unknown route (documented).
pub const AWX_404_ROUTE: &str = "The requested resource could not be found.";
/// AWX 401 body (documented).
pub const AWX_401: &str = "Authentication credentials were not provided. To establish a login session, visit /api/login/.";

/// AWX 405 body (contract: assumed, framework default).
pub fn awx_405(method: &str) -> String {
    format!("Method \"{method}\" not allowed.")
}

/// Gateway 404 body for an unknown alias (documented, leading space included).
pub fn alias_not_found(id: &str) -> String {
    format!(" Alias with id: {id} does not exist.")
}
