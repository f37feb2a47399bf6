//! The cross-cutting layer: call counting, fault injection, authentication, AWX headers,
//! and the 404/405 fallbacks in each product's error shape.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use crate::Sim;
use crate::assumed;
use crate::error::{AwxError, GatewayError};
use crate::faults::Verdict;

/// The URL prefix of a gateway below `/gateways/{env}`.
pub(crate) const GATEWAY_REST: &str = "/rest/apigateway";

/// Which simulated product a path belongs to.
#[derive(Debug, PartialEq, Eq)]
enum Area {
    Gateway(String),
    Awx,
    Other,
}

fn area_of(path: &str) -> Area {
    if let Some(rest) = path.strip_prefix("/gateways/") {
        let env = rest.split('/').next().unwrap_or_default();
        return Area::Gateway(env.to_owned());
    }
    if path == "/api/v2" || path.starts_with("/api/v2/") || path == "/api" || path == "/api/" {
        return Area::Awx;
    }
    Area::Other
}

/// Strips `/gateways/{env}/rest/apigateway` from a route template.
fn gateway_template(matched: &str) -> String {
    let rest = matched.strip_prefix("/gateways/{env}").unwrap_or(matched);
    let rest = rest.strip_prefix(GATEWAY_REST).unwrap_or(rest);
    if rest.is_empty() {
        "/".to_owned()
    } else {
        rest.to_owned()
    }
}

/// Decodes `Authorization` into (basic user, password) or a bearer token.
enum Credentials {
    Basic(String, String),
    Bearer(String),
    None,
}

fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Credentials::None;
    };
    let value = value.trim();
    if let Some(b64) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, pass)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Credentials::Basic(user.to_owned(), pass.to_owned());
        }
        return Credentials::None;
    }
    if let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        return Credentials::Bearer(token.trim().to_owned());
    }
    Credentials::None
}

fn gateway_authorized(sim: &Sim, headers: &HeaderMap) -> bool {
    match credentials(headers) {
        Credentials::Basic(u, p) => {
            u == sim.config.gateway_user && p == sim.config.gateway_password
        }
        Credentials::Bearer(t) => sim.config.gateway_token.as_deref() == Some(t.as_str()),
        Credentials::None => false,
    }
}

fn awx_authorized(sim: &Sim, headers: &HeaderMap) -> bool {
    match credentials(headers) {
        Credentials::Basic(u, p) => u == sim.config.awx_user && p == sim.config.awx_password,
        Credentials::Bearer(t) => t == sim.config.awx_token,
        Credentials::None => false,
    }
}

fn roll() -> f64 {
    rand::random::<f64>()
}

fn fault_response(sim: &Sim, verdict: Verdict, awx: bool) -> Option<Response> {
    let (status, message) = match verdict {
        Verdict::Pass => return None,
        Verdict::Down => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable (simulated fault: down)",
        ),
        Verdict::TooMany => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests (simulated fault: burst429)",
        ),
        Verdict::Error => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error (simulated fault: errorRate)",
        ),
    };
    let mut response = if awx {
        AwxError::detail(status, message).into_response()
    } else {
        GatewayError::new(status, message).into_response()
    };
    if verdict == Verdict::TooMany {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(sim.config.assumed.retry_after_secs),
        );
    }
    Some(response)
}

async fn apply_faults(sim: &Sim, target: &str, awx: bool) -> Option<Response> {
    let (latency, verdict) = sim.faults.lock().decide(target, roll());
    if latency > Duration::ZERO {
        tokio::time::sleep(latency).await;
    }
    fault_response(sim, verdict, awx)
}

fn add_awx_headers(sim: &Sim, response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert("X-API-Product-Name", HeaderValue::from_static("AWX"));
    if let Ok(v) = HeaderValue::from_str(&sim.config.assumed.awx_version) {
        headers.insert("X-API-Product-Version", v);
    }
}

/// The middleware every request passes through (after routing).
pub(crate) async fn sim_layer(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().as_str().to_owned();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    match area_of(&path) {
        Area::Other => next.run(req).await,
        Area::Gateway(env) => {
            if !sim.config.environments.contains(&env) {
                return GatewayError::not_found(format!("Unknown environment: {env}"))
                    .into_response();
            }
            let template = matched
                .as_deref()
                .map(gateway_template)
                .unwrap_or_else(|| "<unmatched>".to_owned());
            sim.state
                .lock()
                .calls
                .entry(env.clone())
                .or_default()
                .record(&method, &template);
            if let Some(r) = apply_faults(&sim, &env, false).await {
                return r;
            }
            if !gateway_authorized(&sim, req.headers()) {
                let mut r = GatewayError::new(
                    StatusCode::UNAUTHORIZED,
                    "Invalid credentials or no credentials given",
                )
                .into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Integration Server\""),
                );
                return r;
            }
            next.run(req).await
        }
        Area::Awx => {
            let template = matched
                .as_deref()
                .map(|m| m.strip_prefix("/api/v2").unwrap_or(m).to_owned())
                .unwrap_or_else(|| "<unmatched>".to_owned());
            sim.state
                .lock()
                .calls
                .entry("awx".to_owned())
                .or_default()
                .record(&method, &template);
            let mut response = if let Some(r) = apply_faults(&sim, "awx", true).await {
                r
            } else if !awx_authorized(&sim, req.headers()) && !is_public_awx(&path) {
                let mut r =
                    AwxError::detail(StatusCode::UNAUTHORIZED, assumed::AWX_401).into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=api authorization_url=/api/o/authorize/",
                    ),
                );
                r
            } else {
                next.run(req).await
            };
            add_awx_headers(&sim, &mut response);
            response
        }
    }
}

fn is_public_awx(path: &str) -> bool {
    matches!(path, "/api/v2/ping/" | "/api/v2/ping" | "/api/" | "/api")
}

/// 404 for every unknown route, in the shape of the product the path belongs to.
pub(crate) async fn not_found(uri: Uri) -> Response {
    match area_of(uri.path()) {
        Area::Gateway(_) => GatewayError::not_found(format!(
            "The requested resource {} was not found",
            uri.path()
        ))
        .into_response(),
        Area::Awx => {
            AwxError::detail(StatusCode::NOT_FOUND, assumed::AWX_404_ROUTE).into_response()
        }
        Area::Other => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no route {}", uri.path())})),
        )
            .into_response(),
    }
}

/// 405 for a known route with the wrong method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    match area_of(uri.path()) {
        Area::Gateway(_) => GatewayError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {method} is not allowed on {}", uri.path()),
        )
        .into_response(),
        Area::Awx => AwxError::detail(
            StatusCode::METHOD_NOT_ALLOWED,
            assumed::awx_405(method.as_str()),
        )
        .into_response(),
        Area::Other => (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(json!({"error": format!("method {method} not allowed")})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_and_templates() {
        assert_eq!(
            area_of("/gateways/dev/rest/apigateway/apis"),
            Area::Gateway("dev".into())
        );
        assert_eq!(area_of("/api/v2/jobs/1/"), Area::Awx);
        assert_eq!(area_of("/_sim/state"), Area::Other);
        assert_eq!(
            gateway_template("/gateways/{env}/rest/apigateway/apis/{id}"),
            "/apis/{id}"
        );
    }

    #[test]
    fn basic_credentials_decode() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic QWRtaW5pc3RyYXRvcjptYW5hZ2U="),
        );
        match credentials(&h) {
            Credentials::Basic(u, p) => {
                assert_eq!((u.as_str(), p.as_str()), ("Administrator", "manage"))
            }
            _ => panic!("expected basic credentials"),
        }
    }
}
