//! The webMethods API Gateway subset: APIs, applications, associations, access tokens,
//! aliases. Routes live under `/gateways/{env}/rest/apigateway`.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};

use crate::Sim;
use crate::error::GatewayError;
use crate::state::{ApiRecord, ApplicationRecord, GatewayState, gateway_now};

type GwResult = Result<Response, GatewayError>;

const P: &str = "/gateways/{env}/rest/apigateway";

/// The gateway routes (prefixed with `/gateways/{env}/rest/apigateway`).
pub(crate) fn routes() -> Router<Sim> {
    let r = |p: &str| format!("{P}{p}");
    Router::new()
        .route(
            &r("/apis"),
            get(list_apis).post(create_api).delete(bulk_delete_apis),
        )
        .route(
            &r("/apis/{id}"),
            get(get_api).put(update_api).delete(delete_api),
        )
        .route(&r("/apis/{id}/activate"), put(activate_api))
        .route(&r("/apis/{id}/deactivate"), put(deactivate_api))
        .route(
            &r("/apis/{id}/versions"),
            get(list_versions).post(create_version),
        )
        .route(&r("/apis/{id}/applications"), get(api_applications))
        .route(
            &r("/applications"),
            get(list_applications)
                .post(create_application)
                .delete(bulk_delete_applications),
        )
        .route(
            &r("/applications/{id}"),
            get(get_application)
                .put(update_application)
                .patch(patch_application)
                .delete(delete_application),
        )
        .route(
            &r("/applications/{id}/accessTokens"),
            post(regenerate_tokens),
        )
        .route(
            &r("/applications/{id}/apis"),
            get(get_associations)
                .post(set_associations)
                .put(set_associations),
        )
        .route(&r("/alias"), get(list_aliases).post(create_alias))
        .route(
            &r("/alias/{id}"),
            get(get_alias).put(update_alias).delete(delete_alias),
        )
}

fn with_gateway<R>(
    sim: &Sim,
    env: &str,
    f: impl FnOnce(&mut GatewayState) -> Result<R, GatewayError>,
) -> Result<R, GatewayError> {
    let mut state = sim.state.lock();
    let gw = state
        .gateways
        .get_mut(env)
        .ok_or_else(|| GatewayError::not_found(format!("Unknown environment: {env}")))?;
    f(gw)
}

fn parse_json(body: &[u8]) -> Result<Value, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::bad_request("Request body is empty"));
    }
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::bad_request(format!("Invalid JSON request body: {e}")))
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    match parse_json(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(GatewayError::bad_request(
            "Invalid request body: a JSON object is expected",
        )),
    }
}

fn str_field(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn str_list(m: &Map<String, Value>, key: &str) -> Vec<String> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn new_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

// ---------------------------------------------------------------------------------------
// API definitions
// ---------------------------------------------------------------------------------------

/// Parses an API definition (an object, or a JSON/YAML string) and checks it is a Swagger or
/// OpenAPI document the gateway of `env` accepts.
pub fn parse_definition(raw: &Value, accepts_31: bool) -> Result<Value, GatewayError> {
    let doc = match raw {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) => serde_yaml::from_str::<Value>(s).map_err(|e| {
                GatewayError::bad_request(format!(
                    "The API definition is neither JSON nor YAML: {e}"
                ))
            })?,
        },
        other => other.clone(),
    };
    let Some(obj) = doc.as_object() else {
        return Err(GatewayError::bad_request(
            "The API definition is not a Swagger or OpenAPI document",
        ));
    };
    if let Some(v) = obj.get("openapi") {
        let version = v
            .as_str()
            .ok_or_else(|| GatewayError::bad_request("The 'openapi' field must be a string"))?;
        if !version.starts_with("3.") {
            return Err(GatewayError::bad_request(format!(
                "Unsupported OpenAPI version {version}"
            )));
        }
        if version.starts_with("3.1") && !accepts_31 {
            return Err(GatewayError::bad_request(format!(
                "OpenAPI version {version} is not supported by this API Gateway; \
                 supported versions are 3.0.x"
            )));
        }
    } else if let Some(v) = obj.get("swagger") {
        let version = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if !version.starts_with('2') {
            return Err(GatewayError::bad_request(format!(
                "Unsupported Swagger version {version}"
            )));
        }
    } else {
        return Err(GatewayError::bad_request(
            "The API definition is not a Swagger or OpenAPI document: \
             no 'openapi' or 'swagger' field",
        ));
    }
    Ok(doc)
}

/// What a create or update request carries, from JSON or multipart.
#[derive(Debug, Default)]
struct ApiInput {
    api_name: Option<String>,
    api_version: Option<String>,
    api_description: Option<String>,
    kind: Option<String>,
    definition: Option<Value>,
    url: Option<String>,
    maturity_state: Option<String>,
    teams: Option<Value>,
}

async fn read_api_input(req: Request) -> Result<ApiInput, GatewayError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| GatewayError::bad_request(format!("Invalid multipart body: {e}")))?;
        let mut input = ApiInput::default();
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| GatewayError::bad_request(format!("Invalid multipart body: {e}")))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let text = field
                .text()
                .await
                .map_err(|e| GatewayError::bad_request(format!("Invalid multipart field: {e}")))?;
            match name.as_str() {
                "file" => input.definition = Some(Value::String(text)),
                "apiName" => input.api_name = Some(text),
                "apiVersion" => input.api_version = Some(text),
                "apiDescription" => input.api_description = Some(text),
                "type" => input.kind = Some(text),
                "url" => input.url = Some(text),
                "maturityState" => input.maturity_state = Some(text),
                _ => {}
            }
        }
        return Ok(input);
    }
    let body = Bytes::from_request(req, &())
        .await
        .map_err(|e| GatewayError::bad_request(format!("Invalid request body: {e}")))?;
    let m = parse_object(&body)?;
    Ok(ApiInput {
        api_name: str_field(&m, "apiName"),
        api_version: str_field(&m, "apiVersion"),
        api_description: str_field(&m, "apiDescription"),
        kind: str_field(&m, "type"),
        definition: m.get("apiDefinition").filter(|v| !v.is_null()).cloned(),
        url: str_field(&m, "url"),
        maturity_state: str_field(&m, "maturityState"),
        teams: m.get("teams").cloned(),
    })
}

fn check_kind(kind: &str) -> Result<String, GatewayError> {
    match kind.to_ascii_lowercase().as_str() {
        "openapi" => Ok("openapi".into()),
        "swagger" => Ok("swagger".into()),
        "rest" => Ok("openapi".into()),
        "raml" | "wsdl" => Err(GatewayError::bad_request(format!(
            "API type {kind} is not supported by the simulator"
        ))),
        _ => Err(GatewayError::bad_request(format!(
            "Invalid API type {kind}: expected swagger, openapi, raml or wsdl"
        ))),
    }
}

fn definition_from_input(
    input: &ApiInput,
    accepts_31: bool,
) -> Result<Option<Value>, GatewayError> {
    match (&input.definition, &input.url) {
        (Some(def), _) => parse_definition(def, accepts_31).map(Some),
        (None, Some(_)) => Err(GatewayError::bad_request(
            "Importing an API definition from a URL is not supported by the simulator",
        )),
        (None, None) => Ok(None),
    }
}

fn api_wrapper(gw: &GatewayState, api: &ApiRecord, with_versions: bool) -> Value {
    let mut inner = json!({ "api": api.full(), "responseStatus": "SUCCESS" });
    if with_versions {
        let versions: Vec<Value> = gw
            .apis
            .iter()
            .filter(|a| a.api_name == api.api_name)
            .map(|a| json!({"versionNumber": a.api_version, "apiId": a.id}))
            .collect();
        inner["versions"] = Value::Array(versions);
    }
    json!({ "apiResponse": inner })
}

fn api_not_found(id: &str) -> GatewayError {
    GatewayError::not_found(format!("API with id {id} not found"))
}

fn check_duplicate(
    sim: &Sim,
    gw: &GatewayState,
    name: &str,
    version: &str,
    except: Option<&str>,
) -> Result<(), GatewayError> {
    if !sim.config.assumed.duplicate_api_name_version_rejected {
        return Ok(());
    }
    if gw
        .apis
        .iter()
        .any(|a| a.api_name == name && a.api_version == version && Some(a.id.as_str()) != except)
    {
        return Err(GatewayError::bad_request(format!(
            "An API with name {name} and version {version} already exists"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// API handlers
// ---------------------------------------------------------------------------------------

async fn list_apis(
    State(sim): State<Sim>,
    Path(env): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> GwResult {
    let ids: Option<Vec<String>> = q.get("apiIds").map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let from: usize = parse_usize(&q, "from")?.unwrap_or(0);
    let size: Option<usize> = parse_usize(&q, "size")?;
    with_gateway(&sim, &env, |gw| {
        let items: Vec<Value> = gw
            .apis
            .iter()
            .filter(|a| ids.as_ref().is_none_or(|ids| ids.contains(&a.id)))
            .skip(from)
            .take(size.unwrap_or(usize::MAX))
            .map(|a| json!({"api": a.summary(), "responseStatus": "SUCCESS"}))
            .collect();
        Ok(Json(json!({ "apiResponse": items })).into_response())
    })
}

fn parse_usize(q: &HashMap<String, String>, key: &str) -> Result<Option<usize>, GatewayError> {
    match q.get(key) {
        None => Ok(None),
        Some(v) if v == "-1" => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            GatewayError::bad_request(format!("Invalid value {v} for query parameter {key}"))
        }),
    }
}

async fn create_api(State(sim): State<Sim>, Path(env): Path<String>, req: Request) -> GwResult {
    let input = read_api_input(req).await?;
    let accepts_31 = sim.config.gateway_31.contains(&env);
    let name = input
        .api_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| GatewayError::bad_request("apiName is required"))?;
    let kind = input
        .kind
        .as_deref()
        .ok_or_else(|| GatewayError::bad_request("type is required"))
        .and_then(check_kind)?;
    let definition = definition_from_input(&input, accepts_31)?.ok_or_else(|| {
        GatewayError::bad_request("An API definition (apiDefinition, file or url) is required")
    })?;
    let version = input
        .api_version
        .clone()
        .or_else(|| {
            definition
                .pointer("/info/version")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "1.0".to_owned());
    with_gateway(&sim, &env, |gw| {
        check_duplicate(&sim, gw, &name, &version, None)?;
        let now = gateway_now();
        let api = ApiRecord {
            id: new_id(),
            api_name: name,
            api_version: version,
            api_description: input.api_description.clone().unwrap_or_default(),
            is_active: false,
            definition_type: kind,
            api_definition: definition,
            maturity_state: input.maturity_state.clone().or(Some("Beta".into())),
            teams: input.teams.clone().unwrap_or_else(|| json!([])),
            owner: sim.config.gateway_user.clone(),
            creation_date: now.clone(),
            last_modified: now,
            system_version: 1,
        };
        gw.apis.push(api.clone());
        Ok(Json(api_wrapper(gw, &api, true)).into_response())
    })
}

async fn get_api(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        let api = gw
            .apis
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| api_not_found(&id))?;
        match q.get("format").map(String::as_str) {
            Some("openapi" | "swagger") => Ok(Json(api.api_definition.clone()).into_response()),
            Some(other) => Err(GatewayError::bad_request(format!(
                "Unsupported format {other}"
            ))),
            None => Ok(Json(api_wrapper(gw, api, false)).into_response()),
        }
    })
}

async fn update_api(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    req: Request,
) -> GwResult {
    let input = read_api_input(req).await?;
    let accepts_31 = sim.config.gateway_31.contains(&env);
    with_gateway(&sim, &env, |gw| {
        let pos = gw
            .apis
            .iter()
            .position(|a| a.id == id)
            .ok_or_else(|| api_not_found(&id))?;
        if let Some(kind) = &input.kind {
            check_kind(kind)?;
        }
        let definition = definition_from_input(&input, accepts_31)?;
        let current = &gw.apis[pos];
        let name = input
            .api_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| current.api_name.clone());
        let version = input
            .api_version
            .clone()
            .unwrap_or_else(|| current.api_version.clone());
        check_duplicate(&sim, gw, &name, &version, Some(&id))?;
        let api = &mut gw.apis[pos];
        api.api_name = name;
        api.api_version = version;
        if let Some(d) = &input.api_description {
            api.api_description = d.clone();
        }
        if let Some(kind) = &input.kind {
            api.definition_type = check_kind(kind)?;
        }
        if let Some(def) = definition {
            api.api_definition = def;
        }
        if let Some(teams) = &input.teams {
            api.teams = teams.clone();
        }
        api.last_modified = gateway_now();
        let api = api.clone();
        Ok(Json(api_wrapper(gw, &api, false)).into_response())
    })
}

fn check_deletable(gw: &GatewayState, id: &str, force: bool) -> Result<(), GatewayError> {
    let api = gw
        .apis
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| api_not_found(id))?;
    if api.is_active {
        return Err(GatewayError::bad_request(format!(
            "API {id} is active. Deactivate the API before deleting it"
        )));
    }
    let users: Vec<&str> = gw
        .applications
        .iter()
        .filter(|a| a.api_ids.iter().any(|x| x == id))
        .map(|a| a.name.as_str())
        .collect();
    if !users.is_empty() && !force {
        return Err(GatewayError::bad_request(format!(
            "API {id} is used by applications ({}). Use forceDelete=true to delete it",
            users.join(", ")
        )));
    }
    Ok(())
}

fn remove_api(gw: &mut GatewayState, id: &str) {
    gw.apis.retain(|a| a.id != id);
    for app in &mut gw.applications {
        app.api_ids.retain(|x| x != id);
    }
}

fn is_true(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn delete_api(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> GwResult {
    let force = is_true(&q, "forceDelete");
    with_gateway(&sim, &env, |gw| {
        check_deletable(gw, &id, force)?;
        remove_api(gw, &id);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

async fn bulk_delete_apis(
    State(sim): State<Sim>,
    Path(env): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> GwResult {
    let force = is_true(&q, "forceDelete");
    let ids: Vec<String> = q
        .get("apiIds")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(GatewayError::bad_request("apiIds is required"));
    }
    with_gateway(&sim, &env, |gw| {
        for id in &ids {
            check_deletable(gw, id, force)?;
        }
        for id in &ids {
            remove_api(gw, id);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

fn set_active(sim: &Sim, env: &str, id: &str, active: bool) -> GwResult {
    with_gateway(sim, env, |gw| {
        let api = gw
            .apis
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| api_not_found(id))?;
        if api.is_active == active {
            return Err(GatewayError::bad_request(format!(
                "API {id} is already {}",
                if active { "active" } else { "inactive" }
            )));
        }
        api.is_active = active;
        api.last_modified = gateway_now();
        let api = api.clone();
        Ok(Json(api_wrapper(gw, &api, false)).into_response())
    })
}

async fn activate_api(State(sim): State<Sim>, Path((env, id)): Path<(String, String)>) -> GwResult {
    set_active(&sim, &env, &id, true)
}

async fn deactivate_api(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
) -> GwResult {
    set_active(&sim, &env, &id, false)
}

async fn list_versions(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        let api = gw
            .apis
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| api_not_found(&id))?;
        let versions: Vec<Value> = gw
            .apis
            .iter()
            .filter(|a| a.api_name == api.api_name)
            .map(|a| json!({"versionNumber": a.api_version, "apiId": a.id}))
            .collect();
        Ok(Json(json!({ "versions": versions })).into_response())
    })
}

async fn create_version(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    body: Bytes,
) -> GwResult {
    let m = parse_object(&body)?;
    let new_version = str_field(&m, "newApiVersion")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| GatewayError::bad_request("newApiVersion is required"))?;
    let retain = m
        .get("retainApplications")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    with_gateway(&sim, &env, |gw| {
        let source = gw
            .apis
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| api_not_found(&id))?
            .clone();
        check_duplicate(&sim, gw, &source.api_name, &new_version, None)?;
        let now = gateway_now();
        let api = ApiRecord {
            id: new_id(),
            api_version: new_version,
            is_active: false,
            creation_date: now.clone(),
            last_modified: now,
            ..source
        };
        if retain {
            for app in &mut gw.applications {
                if app.api_ids.contains(&id) {
                    app.api_ids.push(api.id.clone());
                }
            }
        }
        gw.apis.push(api.clone());
        Ok((StatusCode::CREATED, Json(api_wrapper(gw, &api, true))).into_response())
    })
}

async fn api_applications(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        if !gw.apis.iter().any(|a| a.id == id) {
            return Err(api_not_found(&id));
        }
        let apps: Vec<Value> = gw
            .applications
            .iter()
            .filter(|a| a.api_ids.contains(&id))
            .map(ApplicationRecord::to_json)
            .collect();
        Ok(Json(json!({ "applications": apps })).into_response())
    })
}

// ---------------------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------------------

fn app_not_found(id: &str) -> GatewayError {
    GatewayError::not_found(format!("Application with id {id} not found"))
}

fn unknown_app_400(id: &str) -> GatewayError {
    GatewayError::bad_request(format!("Application with id {id} does not exist"))
}

async fn list_applications(State(sim): State<Sim>, Path(env): Path<String>) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        let apps: Vec<Value> = gw
            .applications
            .iter()
            .map(ApplicationRecord::to_json)
            .collect();
        Ok(Json(json!({ "applications": apps })).into_response())
    })
}

async fn create_application(
    State(sim): State<Sim>,
    Path(env): Path<String>,
    body: Bytes,
) -> GwResult {
    let m = parse_object(&body)?;
    let name = str_field(&m, "name")
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| GatewayError::bad_request("name is required"))?;
    let status = StatusCode::from_u16(sim.config.assumed.application_create_status)
        .unwrap_or(StatusCode::OK);
    with_gateway(&sim, &env, |gw| {
        let now = gateway_now();
        let app = ApplicationRecord {
            id: new_id(),
            name,
            description: str_field(&m, "description").unwrap_or_default(),
            version: str_field(&m, "version").unwrap_or_else(|| "1.0".into()),
            contact_emails: str_list(&m, "contactEmails"),
            site_urls: str_list(&m, "siteURLs"),
            identifiers: m.get("identifiers").cloned().unwrap_or_else(|| json!([])),
            auth_strategy_ids: str_list(&m, "authStrategyIds"),
            api_ids: Vec::new(),
            owner: sim.config.gateway_user.clone(),
            is_suspended: false,
            created: now.clone(),
            lastupdated: now,
            api_access_key: new_key(),
            oauth_client_id: None,
            oauth_client_secret: None,
        };
        let out = app.to_json();
        gw.applications.push(app);
        Ok((status, Json(out)).into_response())
    })
}

async fn get_application(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        let app = gw
            .applications
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| app_not_found(&id))?;
        Ok(Json(json!({ "applications": [app.to_json()] })).into_response())
    })
}

async fn update_application(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    body: Bytes,
) -> GwResult {
    let m = parse_object(&body)?;
    with_gateway(&sim, &env, |gw| {
        let app = gw
            .applications
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| app_not_found(&id))?;
        if let Some(name) = str_field(&m, "name") {
            if name.trim().is_empty() {
                return Err(GatewayError::bad_request("name must not be empty"));
            }
            app.name = name;
        }
        if let Some(d) = str_field(&m, "description") {
            app.description = d;
        }
        if let Some(v) = str_field(&m, "version") {
            app.version = v;
        }
        if m.contains_key("contactEmails") {
            app.contact_emails = str_list(&m, "contactEmails");
        }
        if m.contains_key("siteURLs") {
            app.site_urls = str_list(&m, "siteURLs");
        }
        if let Some(i) = m.get("identifiers") {
            app.identifiers = i.clone();
        }
        app.lastupdated = gateway_now();
        Ok(Json(app.to_json()).into_response())
    })
}

async fn patch_application(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    body: Bytes,
) -> GwResult {
    let m = parse_object(&body)?;
    let suspended = m
        .get("isSuspended")
        .and_then(Value::as_bool)
        .ok_or_else(|| GatewayError::bad_request("isSuspended (boolean) is required"))?;
    with_gateway(&sim, &env, |gw| {
        let app = gw
            .applications
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| app_not_found(&id))?;
        app.is_suspended = suspended;
        app.lastupdated = gateway_now();
        Ok(Json(app.to_json()).into_response())
    })
}

async fn delete_application(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        let before = gw.applications.len();
        gw.applications.retain(|a| a.id != id);
        if gw.applications.len() == before {
            return Err(app_not_found(&id));
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

async fn bulk_delete_applications(
    State(sim): State<Sim>,
    Path(env): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> GwResult {
    let ids: Vec<String> = q
        .get("ids")
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(GatewayError::bad_request("ids is required"));
    }
    with_gateway(&sim, &env, |gw| {
        gw.applications.retain(|a| !ids.contains(&a.id));
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

async fn regenerate_tokens(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    body: Bytes,
) -> GwResult {
    let m = parse_object(&body)?;
    let kind = str_field(&m, "type").unwrap_or_default();
    with_gateway(&sim, &env, |gw| {
        let app = gw
            .applications
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| unknown_app_400(&id))?;
        match kind.as_str() {
            "apiAccessKeyCredentials" => app.api_access_key = new_key(),
            "oAuthCredentials" => {
                app.oauth_client_id = Some(new_id());
                app.oauth_client_secret = Some(new_key());
            }
            other => {
                return Err(GatewayError::bad_request(format!(
                    "Invalid credentials type '{other}': expected apiAccessKeyCredentials or oAuthCredentials"
                )));
            }
        }
        app.lastupdated = gateway_now();
        let out = app.to_json();
        if sim.config.assumed.access_tokens_return_application {
            Ok(Json(out).into_response())
        } else {
            Ok(Json(json!({ "accessTokens": out["accessTokens"] })).into_response())
        }
    })
}

fn associations_body(sim: &Sim, app: &ApplicationRecord) -> Value {
    if sim.config.assumed.associations_body_api_ids {
        json!({ "apiIDs": app.api_ids })
    } else {
        app.to_json()
    }
}

async fn get_associations(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        let app = gw
            .applications
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| unknown_app_400(&id))?;
        Ok(Json(associations_body(&sim, app)).into_response())
    })
}

async fn set_associations(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    body: Bytes,
) -> GwResult {
    let m = parse_object(&body)?;
    let Some(list) = m.get("apiIDs").and_then(Value::as_array) else {
        return Err(GatewayError::bad_request(
            "apiIDs (a list of API ids) is required",
        ));
    };
    let mut ids: Vec<String> = Vec::new();
    for v in list {
        let s = v
            .as_str()
            .ok_or_else(|| GatewayError::bad_request("apiIDs must contain strings"))?;
        if !ids.iter().any(|x| x == s) {
            ids.push(s.to_owned());
        }
    }
    with_gateway(&sim, &env, |gw| {
        if !gw.applications.iter().any(|a| a.id == id) {
            return Err(unknown_app_400(&id));
        }
        let missing = ids.iter().find(|x| !gw.apis.iter().any(|a| &a.id == *x));
        if let (true, Some(missing)) =
            (sim.config.assumed.association_unknown_api_rejected, missing)
        {
            return Err(GatewayError::bad_request(format!(
                "API with id {missing} does not exist"
            )));
        }
        let app = gw
            .applications
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| unknown_app_400(&id))?;
        app.api_ids = ids;
        app.lastupdated = gateway_now();
        let app = app.clone();
        Ok(Json(associations_body(&sim, &app)).into_response())
    })
}

// ---------------------------------------------------------------------------------------
// Aliases
// ---------------------------------------------------------------------------------------

fn alias_key(m: &Map<String, Value>) -> (String, String, String) {
    (
        str_field(m, "name").unwrap_or_default(),
        str_field(m, "type").unwrap_or_default(),
        str_field(m, "stage").unwrap_or_default(),
    )
}

fn alias_out(sim: &Sim, alias: &Map<String, Value>) -> Value {
    if sim.config.assumed.alias_wrapped {
        json!({ "alias": alias })
    } else {
        Value::Object(alias.clone())
    }
}

fn alias_404(id: &str) -> GatewayError {
    GatewayError::not_found(crate::assumed::alias_not_found(id))
}

/// Validates an alias body and fills the defaults.
fn normalize_alias(
    sim: &Sim,
    mut m: Map<String, Value>,
    id: String,
) -> Result<Map<String, Value>, GatewayError> {
    let name = str_field(&m, "name").filter(|n| !n.trim().is_empty());
    if name.is_none() {
        return Err(GatewayError::bad_request("Alias name is required"));
    }
    let kind = str_field(&m, "type")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GatewayError::bad_request("Alias type is required"))?;
    match kind.as_str() {
        "simple" if !m.get("value").is_some_and(Value::is_string) => {
            return Err(GatewayError::bad_request(
                "A simple alias requires a string value",
            ));
        }
        "endpoint" => {
            if !m.get("endPointURI").is_some_and(Value::is_string) {
                return Err(GatewayError::bad_request(
                    "An endpoint alias requires endPointURI",
                ));
            }
            m.entry("connectionTimeout").or_insert(json!(30));
            m.entry("readTimeout").or_insert(json!(30));
        }
        _ => {}
    }
    m.insert("id".into(), Value::String(id));
    m.entry("description").or_insert(json!(""));
    m.entry("stage").or_insert(json!(""));
    m.entry("owner")
        .or_insert(Value::String(sim.config.gateway_user.clone()));
    Ok(m)
}

async fn list_aliases(State(sim): State<Sim>, Path(env): Path<String>) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        Ok(Json(json!({ "alias": gw.aliases })).into_response())
    })
}

async fn create_alias(State(sim): State<Sim>, Path(env): Path<String>, body: Bytes) -> GwResult {
    let m = parse_object(&body)?;
    let alias = normalize_alias(&sim, m, new_id())?;
    with_gateway(&sim, &env, |gw| {
        let key = alias_key(&alias);
        if gw.aliases.iter().any(|a| alias_key(a) == key) {
            return Err(GatewayError::bad_request(format!(
                "Alias with name {} (type {}, stage '{}') already exists",
                key.0, key.1, key.2
            )));
        }
        gw.aliases.push(alias.clone());
        Ok((StatusCode::CREATED, Json(alias_out(&sim, &alias))).into_response())
    })
}

async fn get_alias(State(sim): State<Sim>, Path((env, id)): Path<(String, String)>) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        let alias = gw
            .aliases
            .iter()
            .find(|a| a.get("id").and_then(Value::as_str) == Some(id.as_str()))
            .ok_or_else(|| alias_404(&id))?;
        Ok(Json(alias_out(&sim, alias)).into_response())
    })
}

async fn update_alias(
    State(sim): State<Sim>,
    Path((env, id)): Path<(String, String)>,
    body: Bytes,
) -> GwResult {
    let m = parse_object(&body)?;
    with_gateway(&sim, &env, |gw| {
        let pos = gw
            .aliases
            .iter()
            .position(|a| a.get("id").and_then(Value::as_str) == Some(id.as_str()))
            .ok_or_else(|| alias_404(&id))?;
        let alias = normalize_alias(&sim, m, id.clone())?;
        let key = alias_key(&alias);
        if gw
            .aliases
            .iter()
            .enumerate()
            .any(|(i, a)| i != pos && alias_key(a) == key)
        {
            return Err(GatewayError::bad_request(format!(
                "Alias with name {} (type {}, stage '{}') already exists",
                key.0, key.1, key.2
            )));
        }
        gw.aliases[pos] = alias.clone();
        Ok(Json(alias_out(&sim, &alias)).into_response())
    })
}

async fn delete_alias(State(sim): State<Sim>, Path((env, id)): Path<(String, String)>) -> GwResult {
    with_gateway(&sim, &env, |gw| {
        let before = gw.aliases.len();
        gw.aliases
            .retain(|a| a.get("id").and_then(Value::as_str) != Some(id.as_str()));
        if gw.aliases.len() == before {
            return Err(alias_404(&id));
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_checked() {
        let oas30 =
            json!({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}});
        assert!(parse_definition(&oas30, false).is_ok());
        let oas31 = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}});
        assert_eq!(
            parse_definition(&oas31, false).map_err(|e| e.status),
            Err(StatusCode::BAD_REQUEST)
        );
        assert!(parse_definition(&oas31, true).is_ok());
        let yaml = Value::String("swagger: '2.0'\ninfo:\n  title: t\n  version: '1'\n".into());
        assert_eq!(
            parse_definition(&yaml, false)
                .ok()
                .and_then(|d| d.get("swagger").cloned()),
            Some(json!("2.0"))
        );
        assert!(parse_definition(&json!({"foo": 1}), true).is_err());
        assert!(parse_definition(&Value::String("not: [valid".into()), true).is_err());
    }
}
