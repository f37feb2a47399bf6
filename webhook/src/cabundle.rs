//! Start-up only: patch the CA bundle of a self-generated CA into the named
//! Validating/MutatingWebhookConfigurations. Never on the hot path.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use thiserror::Error;

/// Why a configuration could not be patched.
#[derive(Debug, Error)]
pub enum CaBundleError {
    /// No Kubernetes client could be built.
    #[error("failed to create a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// Reading the configuration failed.
    #[error("failed to get {kind} {name}: {source}")]
    Get {
        /// Kind of configuration.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Underlying error.
        source: kube::Error,
    },
    /// Patching it failed.
    #[error("failed to patch {kind} {name}: {source}")]
    Patch {
        /// Kind of configuration.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Underlying error.
        source: kube::Error,
    },
    /// The patch could not be built.
    #[error("failed to build the caBundle patch: {0}")]
    Build(#[source] serde_json::Error),
}

/// The JSON patch that sets `caBundle` on `count` webhooks.
pub fn ca_bundle_patch(count: usize, ca_pem: &str) -> Result<json_patch::Patch, CaBundleError> {
    let bundle = serde_json::to_value(ByteString(ca_pem.as_bytes().to_vec()))
        .map_err(CaBundleError::Build)?;
    let ops: Vec<serde_json::Value> = (0..count)
        .map(|i| json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": bundle}))
        .collect();
    serde_json::from_value(serde_json::Value::Array(ops)).map_err(CaBundleError::Build)
}

async fn patch_one<K>(
    client: &Client,
    kind: &'static str,
    name: &str,
    ca_pem: &str,
    count: impl Fn(&K) -> usize,
) -> Result<(), CaBundleError>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let current = api.get(name).await.map_err(|source| CaBundleError::Get {
        kind,
        name: name.to_owned(),
        source,
    })?;
    let patch = ca_bundle_patch(count(&current), ca_pem)?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .map_err(|source| CaBundleError::Patch {
            kind,
            name: name.to_owned(),
            source,
        })?;
    tracing::info!(kind, name, "Patched caBundle");
    Ok(())
}

/// Patches every named configuration once.
pub async fn patch_all(
    client: &Client,
    validating: &[String],
    mutating: &[String],
    ca_pem: &str,
) -> Result<(), CaBundleError> {
    for name in validating {
        patch_one::<ValidatingWebhookConfiguration>(
            client,
            "ValidatingWebhookConfiguration",
            name,
            ca_pem,
            |c| c.webhooks.as_ref().map_or(0, Vec::len),
        )
        .await?;
    }
    for name in mutating {
        patch_one::<MutatingWebhookConfiguration>(
            client,
            "MutatingWebhookConfiguration",
            name,
            ca_pem,
            |c| c.webhooks.as_ref().map_or(0, Vec::len),
        )
        .await?;
    }
    Ok(())
}

/// Patches the configurations in the background, retrying with back-off for a few minutes
/// (the configurations may be created after the webhook starts, e.g. by Helm).
pub async fn patch_with_retry(validating: Vec<String>, mutating: Vec<String>, ca_pem: String) {
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=20 {
        let result = match Client::try_default().await {
            Ok(client) => patch_all(&client, &validating, &mutating, &ca_pem).await,
            Err(e) => Err(CaBundleError::Client(e)),
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, attempt, "failed to patch caBundle, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
    tracing::error!("gave up patching caBundle into the webhook configurations");
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::{Request, Response};
    use kube::client::Body;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    /// Expects a GET of the configuration, answers it with `webhooks` entries, then expects
    /// the JSON patch and checks it.
    async fn expect_get_and_patch(handle: &mut Handle, plural: &str, name: &str, webhooks: usize) {
        let path = format!("/apis/admissionregistration.k8s.io/v1/{plural}/{name}");
        let (req, send) = handle.next_request().await.expect("GET expected");
        assert_eq!(req.method(), http::Method::GET);
        assert_eq!(req.uri().path(), path);
        let hooks: Vec<serde_json::Value> = (0..webhooks)
            .map(|i| {
                json!({"name": format!("h{i}.apim.cab-i.com"), "clientConfig": {"url": "https://127.0.0.1:8443/validate"},
                       "sideEffects": "None", "admissionReviewVersions": ["v1"]})
            })
            .collect();
        let obj = json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": if plural.starts_with("validating") { "ValidatingWebhookConfiguration" } else { "MutatingWebhookConfiguration" },
            "metadata": {"name": name}, "webhooks": hooks});
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&obj).unwrap()))
                .unwrap(),
        );

        let (req, send) = handle.next_request().await.expect("PATCH expected");
        assert_eq!(req.method(), http::Method::PATCH);
        assert_eq!(req.uri().path(), path);
        assert_eq!(req.headers()["content-type"], "application/json-patch+json");
        let body = req.into_body().collect_bytes().await.unwrap();
        let ops: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(ops.as_array().unwrap().len(), webhooks);
        assert_eq!(
            ops[webhooks - 1]["path"],
            format!("/webhooks/{}/clientConfig/caBundle", webhooks - 1)
        );
        assert_eq!(ops[0]["value"], "Q0E=");
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&obj).unwrap()))
                .unwrap(),
        );
    }

    #[tokio::test]
    async fn patches_every_named_configuration() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let api_server = tokio::spawn(async move {
            expect_get_and_patch(
                &mut handle,
                "validatingwebhookconfigurations",
                "apim-webhook",
                3,
            )
            .await;
            expect_get_and_patch(
                &mut handle,
                "mutatingwebhookconfigurations",
                "apim-webhook",
                1,
            )
            .await;
        });
        let names = vec!["apim-webhook".to_owned()];
        tokio::time::timeout(
            Duration::from_secs(10),
            patch_all(&client, &names, &names, "CA"),
        )
        .await
        .expect("patching timed out")
        .unwrap();
        tokio::time::timeout(Duration::from_secs(10), api_server)
            .await
            .expect("API server scenario timed out")
            .unwrap();
    }

    #[tokio::test]
    async fn missing_configuration_is_an_error() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let api_server = tokio::spawn(async move {
            let (_, send) = handle.next_request().await.expect("GET expected");
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "not found", "reason": "NotFound", "code": 404});
            send.send_response(
                Response::builder()
                    .status(404)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap(),
            );
        });
        let names = vec!["missing".to_owned()];
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            patch_all(&client, &names, &[], "CA"),
        )
        .await
        .expect("timed out")
        .unwrap_err();
        assert!(matches!(err, CaBundleError::Get { .. }), "{err}");
        api_server.await.unwrap();
    }

    #[test]
    fn patch_sets_base64_bundle_on_each_webhook() {
        let patch = ca_bundle_patch(2, "PEM").unwrap();
        let v = serde_json::to_value(&patch).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["path"], "/webhooks/1/clientConfig/caBundle");
        assert_eq!(v[0]["value"], "UEVN");
    }
}
