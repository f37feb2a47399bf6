//! The form in which the controllers cache the objects they watch.
//!
//! A `DynamicObject` keeps its body as a `serde_json::Value` tree, where every JSON object is
//! a B-tree with room for eleven members: a status with a dozen small objects costs tens of
//! KiB. At 10,000 Apis that was most of the operator's memory. A [`Cached`] object keeps the
//! metadata typed (the controller machinery reads it: names, generation, finalizers) and the
//! rest as compact JSON text, a tenth of the size; a reconcile expands it back into the
//! `DynamicObject` it works on (a few microseconds). The text is the object as the API server
//! sent it, so nothing is lost or reinterpreted, and an object that does not match its Rust
//! type is cached like any other (its reconcile reports it).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{DynamicObject, TypeMeta};
use kube::discovery::ApiResource;
use serde::{Deserialize, Deserializer};

/// kubectl's copy of the whole last-applied object: as large as the object, never read.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An object as cached: typed metadata, the rest as JSON text.
#[derive(Clone, Debug)]
pub struct Cached {
    /// `apiVersion` and `kind`.
    pub types: Option<TypeMeta>,
    /// The metadata, without `managedFields` and kubectl's last-applied copy.
    pub metadata: ObjectMeta,
    /// Every other top-level field (`spec`, `status`, …) as a JSON object text.
    body: Box<str>,
}

impl Cached {
    /// The cached form of `obj`.
    pub fn new(mut obj: DynamicObject) -> Cached {
        slim(&mut obj);
        let body = match &obj.data {
            serde_json::Value::Null => "{}".to_string(),
            data => serde_json::to_string(data).unwrap_or_else(|_| "{}".to_string()),
        };
        Cached {
            types: obj.types,
            metadata: obj.metadata,
            body: body.into_boxed_str(),
        }
    }

    /// The object again, as the reconciles read it.
    pub fn expand(&self) -> DynamicObject {
        DynamicObject {
            types: self.types.clone(),
            metadata: self.metadata.clone(),
            // The text was written from a JSON value: it parses.
            data: serde_json::from_str(&self.body).unwrap_or_default(),
        }
    }

    /// Whether the body's text contains `needle` (a cheap pre-filter before expanding).
    pub fn body_mentions(&self, needle: &str) -> bool {
        self.body.contains(needle)
    }
}

/// Drops from an object what no reconcile reads and that can be as large as the object
/// itself: `managedFields` and kubectl's last-applied copy of the whole object.
pub fn slim(obj: &mut DynamicObject) {
    obj.metadata.managed_fields = None;
    if let Some(a) = obj.metadata.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

impl<'de> Deserialize<'de> for Cached {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cached, D::Error> {
        DynamicObject::deserialize(deserializer).map(Cached::new)
    }
}

impl Resource for Cached {
    type DynamicType = ApiResource;
    type Scope = kube::core::DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn api() -> serde_json::Value {
        json!({
            "apiVersion": "apim.cab-i.com/v1alpha1", "kind": "Api",
            "metadata": {
                "name": "a", "namespace": "n", "generation": 2, "resourceVersion": "7",
                "labels": {"apim.cab-i.com/environment": "dev"},
                "annotations": {LAST_APPLIED: "{\"huge\": true}", "apim.cab-i.com/owner": "o@x"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"displayName": "A", "stages": ["dev"], "unknownToTheType": {"x": null}},
            "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}
        })
    }

    #[test]
    fn expanding_gives_back_the_object_without_what_no_reconcile_reads() {
        let obj: DynamicObject = serde_json::from_value(api()).expect("object");
        let cached: Cached = serde_json::from_value(api()).expect("cached");
        let back = cached.expand();
        assert_eq!(
            back.data, obj.data,
            "spec and status as sent, unknown fields included"
        );
        assert_eq!(back.metadata.generation, Some(2));
        assert_eq!(back.metadata.managed_fields, None);
        let annotations = back.metadata.annotations.expect("annotations");
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(annotations["apim.cab-i.com/owner"], "o@x");
        assert_eq!(back.types, obj.types);
        assert!(cached.body_mentions("displayName"));
        assert!(!cached.body_mentions("huge"));
    }

    #[test]
    fn an_object_without_a_body_expands_to_an_empty_one() {
        let cached: Cached = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}}),
        )
        .expect("cached");
        assert_eq!(cached.expand().data, json!({}));
    }
}
