//! The HTTPS server: `/validate`, `/mutate`, `/healthz`, `/readyz`, `/metrics`.
//!
//! [`App::review`] is the whole hot path (parse → decide → serialise → count), synchronous,
//! with no I/O: the handlers only hand it the body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use json_patch::Patch;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};

use crate::metrics::{DecisionLabels, EndpointLabels, FindingLabels, Metrics};
use crate::review::{self, ApimKind, Target, operation_name, target};
use crate::rules::{Policy, Verdict, describe, mutate};

/// Largest accepted review body (an object and its old version, each up to etcd's limit).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Which webhook is being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/validate`
    Validate,
    /// `/mutate`
    Mutate,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// State shared by the handlers.
#[derive(Debug)]
pub struct App {
    /// Decision engine.
    pub policy: Policy,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

fn kind_label(req: &AdmissionRequest<DynamicObject>) -> &'static str {
    match target(req) {
        Target::Apim(ApimKind::Api) => "Api",
        Target::Apim(ApimKind::Application) => "Application",
        Target::Apim(ApimKind::Subscription) => "Subscription",
        Target::Apim(ApimKind::PromotionRequest) => "PromotionRequest",
        Target::Apim(ApimKind::TeardownPolicy) => "TeardownPolicy",
        Target::Namespace => "Namespace",
        Target::Workload => match req.kind.kind.as_str() {
            "Deployment" => "Deployment",
            "StatefulSet" => "StatefulSet",
            "DaemonSet" => "DaemonSet",
            "Job" => "Job",
            "CronJob" => "CronJob",
            _ => "Pod",
        },
        Target::Other => "other",
    }
}

impl App {
    /// Builds the state.
    pub fn new(policy: Policy, metrics: Arc<Metrics>) -> Self {
        Self { policy, metrics }
    }

    /// Answers one review body: HTTP status and AdmissionReview body. Never panics.
    pub fn review(&self, endpoint: Endpoint, body: &[u8]) -> (u16, Vec<u8>) {
        let start = Instant::now();
        let (status, out, labels) = match review::parse(body) {
            Err(rejected) => {
                tracing::info!(
                    endpoint = endpoint.as_str(),
                    uid = %rejected.response.uid,
                    reason = %rejected.response.result.message,
                    "Invalid review"
                );
                (
                    rejected.http_status,
                    review::to_body(*rejected.response),
                    DecisionLabels {
                        endpoint: endpoint.as_str(),
                        kind: "unknown",
                        operation: "unknown",
                        result: "invalid",
                    },
                )
            }
            Ok(req) => {
                let (resp, result) = match endpoint {
                    Endpoint::Validate => {
                        let (resp, verdict) = self.policy.validate_response(&req);
                        self.record(&req, &verdict);
                        (resp, verdict.result())
                    }
                    Endpoint::Mutate => mutate_response(&req),
                };
                (
                    200,
                    review::to_body(resp),
                    DecisionLabels {
                        endpoint: endpoint.as_str(),
                        kind: kind_label(&req),
                        operation: operation_name(&req.operation),
                        result,
                    },
                )
            }
        };
        self.metrics.decisions.get_or_create(&labels).inc();
        self.metrics
            .duration
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.as_str(),
            })
            .observe(start.elapsed().as_secs_f64());
        (status, out)
    }

    fn record(&self, req: &AdmissionRequest<DynamicObject>, verdict: &Verdict) {
        for (mode, findings) in [
            ("enforce", &verdict.denied),
            ("warn", &verdict.warned),
            ("audit", &verdict.audited),
        ] {
            for f in findings.iter() {
                self.metrics
                    .findings
                    .get_or_create(&FindingLabels {
                        rule_set: f.rule_set.as_str(),
                        mode,
                    })
                    .inc();
            }
        }
        let user = req.user_info.username.as_deref().unwrap_or("");
        if !verdict.denied.is_empty() {
            tracing::info!(
                uid = %req.uid, object = %describe(req), user, dry_run = req.dry_run,
                violations = verdict.denied.len(), message = %verdict.message(req),
                "Denied"
            );
        }
        for f in &verdict.audited {
            tracing::info!(
                uid = %req.uid, object = %describe(req), user, dry_run = req.dry_run,
                rule_set = f.rule_set.as_str(), message = %f.message,
                "Audited violation"
            );
        }
        if !verdict.warned.is_empty() {
            tracing::debug!(
                uid = %req.uid, object = %describe(req), user, warnings = verdict.warned.len(),
                "Admitted with warnings"
            );
        }
    }
}

/// The `/mutate` response: always admitted, with a JSON patch when something is stamped.
pub fn mutate_response(req: &AdmissionRequest<DynamicObject>) -> (AdmissionResponse, &'static str) {
    let ops = mutate::mutations(req);
    let resp = AdmissionResponse::from(req);
    if ops.is_empty() {
        return (resp, "allowed");
    }
    match resp.with_patch(Patch(ops)) {
        Ok(r) => (r, "patched"),
        Err(e) => {
            tracing::warn!(uid = %req.uid, error = %e, "failed to serialise patch");
            let mut r = AdmissionResponse::invalid(e);
            r.uid.clone_from(&req.uid);
            (r, "invalid")
        }
    }
}

fn json_response(status: u16, body: Vec<u8>) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn validate(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (status, out) = app.review(Endpoint::Validate, &body);
    json_response(status, out)
}

async fn mutate_handler(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (status, out) = app.review(Endpoint::Mutate, &body);
    json_response(status, out)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// The router.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Handle to stop it.
    pub handle: Handle<SocketAddr>,
    /// The server task; resolves when it has stopped.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish for up to `grace`, waits for the end.
    pub async fn shutdown(self, grace: Duration) -> std::io::Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Binds and serves HTTPS in a background task; returns once listening.
pub async fn start(addr: SocketAddr, tls: RustlsConfig, app: Arc<App>) -> std::io::Result<Running> {
    let handle: Handle<SocketAddr> = Handle::new();
    let mut server = axum_server::bind_rustls(addr, tls).handle(handle.clone());
    // Admission reviews are small and the API server keeps connections alive.
    server.http_builder().http1().keep_alive(true);
    let svc = router(app).into_make_service();
    let task = tokio::spawn(async move { server.serve(svc).await });
    match handle.listening().await {
        Some(addr) => Ok(Running { addr, handle, task }),
        None => match task.await {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Err(std::io::Error::other("server stopped before listening")),
            Err(e) => Err(std::io::Error::other(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fixtures;

    fn app() -> App {
        App::new(
            Policy::new(Config::default()).unwrap(),
            Arc::new(Metrics::new()),
        )
    }

    fn body_json(out: &[u8]) -> serde_json::Value {
        serde_json::from_slice(out).unwrap()
    }

    #[test]
    fn validate_denies_and_counts() {
        let app = app();
        let mut spec = fixtures::api_create();
        spec.object = Some(fixtures::untagged_api());
        let (status, out) = app.review(Endpoint::Validate, &fixtures::review_body(&spec));
        assert_eq!(status, 200);
        let v = body_json(&out);
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], fixtures::UID);
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
        let text = app.metrics.encode();
        assert!(
            text.contains(r#"kind="Api",operation="CREATE",result="denied"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"apim_webhook_findings_total{rule_set="tags",mode="enforce"} 7"#),
            "{text}"
        );
    }

    #[test]
    fn mutate_returns_a_base64_json_patch() {
        let app = app();
        let mut spec = fixtures::promotion_create();
        spec.object = Some(fixtures::promotion(Some("spoofed"), None));
        let (status, out) = app.review(Endpoint::Mutate, &fixtures::review_body(&spec));
        assert_eq!(status, 200);
        let v = body_json(&out);
        assert_eq!(v["response"]["allowed"], true);
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        assert!(v["response"]["patch"].is_string());
        // Nothing to stamp: admitted without a patch.
        let spec = fixtures::promotion_create();
        let (_, out) = app.review(Endpoint::Mutate, &fixtures::review_body(&spec));
        let v = body_json(&out);
        assert_eq!(v["response"]["allowed"], true);
        assert!(v["response"].get("patch").is_none());
    }

    #[test]
    fn garbage_is_400_and_counted_invalid() {
        let app = app();
        let (status, out) = app.review(Endpoint::Validate, b"\x00\xff garbage");
        assert_eq!(status, 400);
        assert_eq!(body_json(&out)["response"]["allowed"], false);
        assert!(app.metrics.encode().contains(r#"result="invalid"} 1"#));
    }
}
