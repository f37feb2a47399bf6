//! Custom resources of the APIM operator (group `apim.cab-i.com`, version `v1alpha1`),
//! the tag model and the pure validation shared by the webhook and the controllers.
//!
//! No client, no I/O: everything here is plain data and pure functions.
//!
//! - Kinds: [`Api`], [`Application`], [`Subscription`], [`PromotionRequest`] (namespaced)
//!   and [`TeardownPolicy`] (cluster-scoped), one module each.
//! - [`tags`]: the mandatory labels and annotations and their validation.
//! - [`conditions`]: condition types, reasons and the idempotent [`conditions::set_condition`].
//! - [`all_crds`] and [`render_yaml`]: what `cargo run -p crds --bin crdgen` writes to
//!   `crds/yaml/`, kept in sync by `tests/crd_yaml_in_sync.rs`.

#![warn(missing_docs)]

#[macro_use]
mod macros;

pub mod api;
pub mod application;
pub mod common;
pub mod conditions;
pub mod duration;
pub mod outbox;
pub mod promotion_request;
pub mod status;
pub mod subscription;
pub mod tags;
pub mod teardown_policy;

pub use api::{Api, ApiSpec, ApiStatus, Driver};
pub use application::{Application, ApplicationSpec, ApplicationStatus};
pub use common::{DataClass, DeploymentResult, Environment, LocalRef, from_time, to_time};
pub use duration::ShortDuration;
pub use outbox::{OUTBOX_CAPACITY, PendingEvent};
pub use promotion_request::{
    PromotionPhase, PromotionRequest, PromotionRequestSpec, PromotionRequestStatus,
};
pub use status::CommonStatus;
pub use subscription::{Subscription, SubscriptionSpec, SubscriptionStatus};
pub use tags::{TagViolation, TagViolations, Tags, Ttl, validate, validate_meta};
pub use teardown_policy::{TeardownKind, TeardownPolicy, TeardownPolicySpec, TeardownPolicyStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every resource of this crate.
pub const GROUP: &str = "apim.cab-i.com";
/// The one served version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every resource of this crate.
pub const API_VERSION: &str = "apim.cab-i.com/v1alpha1";
/// The category of every kind: `kubectl get apim -A` lists them all.
pub const CATEGORY: &str = "apim";
/// Finalizer the operator puts on resources with something to clean up outside the cluster.
pub const FINALIZER: &str = "apim.cab-i.com/cleanup";

/// The CRDs of the five kinds, in a stable order (Api, Application, Subscription,
/// PromotionRequest, TeardownPolicy), with descriptions reflowed for `kubectl explain`.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    [
        Api::crd(),
        Application::crd(),
        Subscription::crd(),
        PromotionRequest::crd(),
        TeardownPolicy::crd(),
    ]
    .into_iter()
    .map(reflow_descriptions)
    .collect()
}

/// Doc comments are wrapped at 100 columns; `kubectl explain` re-wraps text itself, so the
/// hard line breaks are joined into spaces (blank-line paragraph breaks stay). The keys of
/// environment-keyed maps get a description too.
fn reflow_descriptions(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn reflow(text: &str) -> String {
        text.split("\n\n")
            .map(|para| {
                para.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }
    fn walk(node: &mut serde_json::Value) {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        for (key, value) in map.iter_mut() {
            match (key.as_str(), value) {
                ("description", serde_json::Value::String(text)) => *text = reflow(text),
                // Data, not schema: leave it alone.
                ("default" | "enum" | "example" | "x-kubernetes-validations", _) => {}
                ("properties", serde_json::Value::Object(props)) => {
                    // An environment-keyed map: say so on each key for `kubectl explain`.
                    let env_keyed = props.len() == Environment::ALL.len()
                        && Environment::ALL
                            .iter()
                            .all(|e| props.contains_key(e.as_str()));
                    for (name, prop) in props.iter_mut() {
                        if let (true, Some(p)) = (env_keyed, prop.as_object_mut()) {
                            p.entry("description").or_insert_with(|| {
                                serde_json::Value::String(format!("For the {name} environment."))
                            });
                        }
                        walk(prop);
                    }
                }
                (_, v @ serde_json::Value::Object(_)) => walk(v),
                _ => {}
            }
        }
    }
    let mut value = match serde_json::to_value(&crd) {
        Ok(v) => v,
        Err(_) => return crd,
    };
    if let Some(versions) = value
        .pointer_mut("/spec/versions")
        .and_then(|v| v.as_array_mut())
    {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                walk(schema);
            }
        }
    }
    // Same type both ways: the round trip cannot fail; keep the original if it ever did.
    serde_json::from_value(value).unwrap_or(crd)
}

/// The header of every generated manifest.
pub const YAML_HEADER: &str =
    "# Generated by `cargo run -p crds --bin crdgen` from crds/src. Do not edit by hand.\n";

/// A CRD as the YAML manifest committed in `crds/yaml/` (header comment included).
pub fn render_yaml(crd: &CustomResourceDefinition) -> String {
    let body = serde_yaml::to_string(crd)
        // A CustomResourceDefinition is plain data with string map keys: it always serializes.
        .expect("a CustomResourceDefinition serializes to YAML");
    format!("{YAML_HEADER}{body}")
}

/// The file name of a CRD's manifest in `crds/yaml/`: `<plural>.yaml`.
pub fn yaml_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.spec.names.plural)
}
