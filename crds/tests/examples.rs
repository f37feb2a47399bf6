//! Every document of every file in `examples/` (and `examples/argocd/`) deserializes into
//! its Rust type without losing a field, carries valid tags, passes the CRD's CEL rules, and
//! references only objects the examples define. An unknown kind fails the test.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use crds::{Api, Application, PromotionRequest, Subscription, TeardownPolicy, tags};
use k8s_openapi::{
    api::core::v1::{ConfigMap, Namespace},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::CustomResourceExt;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .collect();
    files.sort();
    files
}

/// One document of an example file.
struct Doc {
    file: String,
    value: Value,
}

impl Doc {
    fn id(&self) -> String {
        format!(
            "{}: {} {}/{}",
            self.file,
            self.value["kind"].as_str().unwrap_or("?"),
            self.value["metadata"]["namespace"].as_str().unwrap_or("-"),
            self.value["metadata"]["name"].as_str().unwrap_or("?"),
        )
    }
}

fn documents(path: &Path) -> Vec<Doc> {
    let text = std::fs::read_to_string(path).expect("read example");
    let file = path
        .strip_prefix(examples_dir())
        .unwrap_or(path)
        .display()
        .to_string();
    serde_yaml::Deserializer::from_str(&text)
        .map(|de| {
            let v = <serde_yaml::Value as serde::Deserialize>::deserialize(de)
                .unwrap_or_else(|e| panic!("{file}: invalid YAML: {e}"));
            serde_json::to_value(v).unwrap_or_else(|e| panic!("{file}: not JSON-compatible: {e}"))
        })
        .filter(|v| !v.is_null())
        .map(|value| Doc {
            file: file.clone(),
            value,
        })
        .collect()
}

/// Every field of `original` is in `reserialized` with the same value: the Rust type did
/// not drop anything (a misspelled or unknown field fails here).
fn assert_no_field_lost(original: &Value, reserialized: &Value, path: &str, id: &str) {
    match (original, reserialized) {
        (Value::Object(o), Value::Object(r)) => {
            for (k, v) in o {
                let p = format!("{path}.{k}");
                let Some(rv) = r.get(k) else {
                    panic!("{id}: field {p} is unknown to the Rust type (misspelled?)");
                };
                assert_no_field_lost(v, rv, &p, id);
            }
        }
        (Value::Array(o), Value::Array(r)) => {
            assert_eq!(o.len(), r.len(), "{id}: {path} length");
            for (i, (a, b)) in o.iter().zip(r).enumerate() {
                assert_no_field_lost(a, b, &format!("{path}[{i}]"), id);
            }
        }
        (a, b) => assert_eq!(a, b, "{id}: {path}"),
    }
}

fn typed<T: DeserializeOwned + Serialize>(doc: &Doc) -> T {
    let t: T = serde_json::from_value(doc.value.clone())
        .unwrap_or_else(|e| panic!("{}: does not deserialize: {e}", doc.id()));
    let back = serde_json::to_value(&t).expect("serialize back");
    assert_no_field_lost(&doc.value, &back, "", &doc.id());
    t
}

fn cel_ok(doc: &Doc, crd: &CustomResourceDefinition) {
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .expect("schema JSON");
    if let Err(e) = kube::core::cel::Validator::new().validate(&schema, &doc.value, None) {
        panic!("{}: CEL rules refuse it: {e}", doc.id());
    }
}

fn tags_ok(doc: &Doc, meta: &ObjectMeta) -> tags::Tags {
    tags::validate_meta(meta).unwrap_or_else(|v| panic!("{}: bad tags: {v}", doc.id()))
}

#[derive(Default)]
struct Seen {
    namespaces: BTreeSet<String>,
    config_maps: BTreeMap<(String, String), ConfigMap>,
    apis: BTreeMap<(String, String), Api>,
    applications: BTreeMap<(String, String), Application>,
    subscriptions: Vec<Subscription>,
    promotions: Vec<PromotionRequest>,
    teardowns: Vec<TeardownPolicy>,
}

fn key(meta: &ObjectMeta, doc: &Doc) -> (String, String) {
    (
        meta.namespace
            .clone()
            .unwrap_or_else(|| panic!("{}: namespaced object without a namespace", doc.id())),
        meta.name.clone().unwrap_or_default(),
    )
}

fn dispatch(doc: &Doc, seen: &mut Seen) {
    let api_version = doc.value["apiVersion"].as_str().unwrap_or_default();
    let kind = doc.value["kind"].as_str().unwrap_or_default();
    match (api_version, kind) {
        ("v1", "Namespace") => {
            let ns: Namespace = typed(doc);
            tags_ok(doc, &ns.metadata);
            seen.namespaces
                .insert(ns.metadata.name.clone().unwrap_or_default());
        }
        ("v1", "ConfigMap") => {
            let cm: ConfigMap = typed(doc);
            tags_ok(doc, &cm.metadata);
            seen.config_maps.insert(key(&cm.metadata, doc), cm);
        }
        (crds::API_VERSION, "Api") => {
            let o: Api = typed(doc);
            tags_ok(doc, &o.metadata);
            cel_ok(doc, &Api::crd());
            seen.apis.insert(key(&o.metadata, doc), o);
        }
        (crds::API_VERSION, "Application") => {
            let o: Application = typed(doc);
            let t = tags_ok(doc, &o.metadata);
            if let Err(e) = t.check_spec_environment(o.spec.environment) {
                panic!("{}: {e}", doc.id());
            }
            cel_ok(doc, &Application::crd());
            seen.applications.insert(key(&o.metadata, doc), o);
        }
        (crds::API_VERSION, "Subscription") => {
            let o: Subscription = typed(doc);
            let t = tags_ok(doc, &o.metadata);
            if let Err(e) = t.check_spec_environment(o.spec.environment) {
                panic!("{}: {e}", doc.id());
            }
            cel_ok(doc, &Subscription::crd());
            seen.subscriptions.push(o);
        }
        (crds::API_VERSION, "PromotionRequest") => {
            let o: PromotionRequest = typed(doc);
            tags_ok(doc, &o.metadata);
            cel_ok(doc, &PromotionRequest::crd());
            seen.promotions.push(o);
        }
        (crds::API_VERSION, "TeardownPolicy") => {
            let o: TeardownPolicy = typed(doc);
            tags_ok(doc, &o.metadata);
            assert!(
                o.metadata.namespace.is_none(),
                "{}: cluster-scoped",
                doc.id()
            );
            cel_ok(doc, &TeardownPolicy::crd());
            seen.teardowns.push(o);
        }
        _ => panic!(
            "{}: unknown kind {api_version}/{kind}: the top level of examples/ holds only \
             core kinds and apim.cab-i.com kinds (kubectl apply -f examples/ must work \
             on the lab)",
            doc.id()
        ),
    }
}

fn load_top_level() -> Seen {
    let mut seen = Seen::default();
    let files = yaml_files(&examples_dir());
    assert!(!files.is_empty(), "no examples found");
    for path in files {
        let docs = documents(&path);
        assert!(!docs.is_empty(), "{}: empty", path.display());
        for doc in docs {
            dispatch(&doc, &mut seen);
        }
    }
    seen
}

#[test]
fn every_example_parses_is_tagged_and_passes_cel() {
    let seen = load_top_level();
    assert_eq!(seen.apis.len(), 1);
    assert_eq!(seen.applications.len(), 1);
    assert_eq!(seen.subscriptions.len(), 1);
    assert_eq!(seen.promotions.len(), 1);
    assert_eq!(seen.teardowns.len(), 1);
    assert!(
        seen.namespaces.contains("tenant-finance") && seen.namespaces.contains("tenant-retail")
    );
}

#[test]
fn references_resolve_within_the_examples() {
    let seen = load_top_level();
    let in_ns = |ns: &Option<String>| {
        let ns = ns.clone().unwrap_or_default();
        assert!(
            seen.namespaces.contains(&ns),
            "namespace {ns} is not in the examples"
        );
        ns
    };
    for ((ns, name), api) in &seen.apis {
        in_ns(&api.metadata.namespace);
        if let Ok(crds::api::DefinitionSource::ConfigMap(r)) = api.spec.definition.source() {
            let cm = seen
                .config_maps
                .get(&(ns.clone(), r.name.clone()))
                .unwrap_or_else(|| panic!("Api {name}: ConfigMap {} missing", r.name));
            let doc = cm
                .data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .unwrap_or_else(|| panic!("Api {name}: key {} missing", r.key));
            let openapi: serde_yaml::Value = serde_yaml::from_str(doc).expect("OpenAPI YAML");
            assert_eq!(
                openapi["info"]["version"].as_str(),
                Some(api.spec.version.as_str()),
                "Api {name}: spec.version matches info.version"
            );
        }
    }
    for key in seen.applications.keys() {
        assert!(seen.namespaces.contains(&key.0));
    }
    for s in &seen.subscriptions {
        let ns = in_ns(&s.metadata.namespace);
        let api = seen
            .apis
            .get(&(ns.clone(), s.spec.api_ref.name.clone()))
            .expect("Subscription's Api is in the examples");
        let app = seen
            .applications
            .get(&(ns.clone(), s.spec.application_ref.name.clone()))
            .expect("Subscription's Application is in the examples");
        assert_eq!(app.spec.environment, s.spec.environment);
        assert!(
            api.spec.has_stage(s.spec.environment),
            "Api deployed where subscribed"
        );
    }
    for p in &seen.promotions {
        let ns = in_ns(&p.metadata.namespace);
        let api = seen
            .apis
            .get(&(ns, p.spec.api_ref.name.clone()))
            .expect("PromotionRequest's Api is in the examples");
        assert!(api.spec.has_stage(p.spec.source_environment));
        assert!(!api.spec.has_stage(p.spec.target_environment));
        assert!(
            p.spec.requester.is_none() && p.spec.decision.is_none(),
            "the webhook stamps requester and approver: examples leave them out"
        );
        assert!(p.status.is_none());
    }
}

#[test]
fn payment_api_openapi_document_is_a_rich_3_1_document() {
    let seen = load_top_level();
    let cm = seen
        .config_maps
        .get(&(
            "tenant-finance".to_owned(),
            "payment-api-openapi".to_owned(),
        ))
        .expect("payment-api-openapi ConfigMap");
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get("openapi.yaml"))
        .expect("openapi.yaml key");
    let doc: Value = serde_yaml::from_str(text).expect("YAML");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1."))
    );
    assert!(doc["paths"].as_object().is_some_and(|p| p.len() >= 4));
    assert!(doc["webhooks"].as_object().is_some_and(|w| !w.is_empty()));
    assert!(
        doc["components"]["schemas"]
            .as_object()
            .is_some_and(|s| s.len() >= 5)
    );
    let json = doc.to_string();
    for feature in [
        r##""$ref":"#/components/schemas/"##,
        r#""type":["string","null"]"#,
        r#""const":"#,
        r#""examples":["#,
        r#""exclusiveMinimum":0"#,
    ] {
        assert!(json.contains(feature), "the document uses {feature}");
    }
    // Every local $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        out.extend(x.as_str().map(str::to_owned));
                    }
                    refs(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 10);
    for r in all {
        let pointer = r.strip_prefix('#').expect("local ref");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

#[test]
fn argocd_application_points_at_the_examples() {
    let dir = examples_dir().join("argocd");
    let files = yaml_files(&dir);
    assert!(!files.is_empty());
    for path in files {
        for doc in documents(&path) {
            let api_version = doc.value["apiVersion"].as_str().unwrap_or_default();
            let kind = doc.value["kind"].as_str().unwrap_or_default();
            assert_eq!(
                (api_version, kind),
                ("argoproj.io/v1alpha1", "Application"),
                "{}: unknown kind",
                doc.id()
            );
            let meta: ObjectMeta =
                serde_json::from_value(doc.value["metadata"].clone()).expect("metadata");
            tags_ok(&doc, &meta);
            let source = &doc.value["spec"]["source"];
            assert_eq!(source["path"], "examples", "{}", doc.id());
            assert_eq!(source["directory"]["recurse"], false, "{}", doc.id());
            assert!(
                source["repoURL"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("https://"))
            );
            assert!(doc.value["spec"]["destination"]["server"].is_string());
        }
    }
}

#[test]
fn unknown_kind_is_refused() {
    let doc = Doc {
        file: "x.yaml".into(),
        value: serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "tenant-finance"}
        }),
    };
    let result = std::panic::catch_unwind(|| dispatch(&doc, &mut Seen::default()));
    let err = result.expect_err("an unknown kind fails");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("unknown kind apps/v1/Deployment"), "{msg}");
}

#[test]
fn misspelled_field_is_caught() {
    let result = std::panic::catch_unwind(|| {
        let doc = Doc {
            file: "x.yaml".into(),
            value: serde_json::json!({
                "apiVersion": "apim.cab-i.com/v1alpha1",
                "kind": "Api",
                "metadata": {"name": "a", "namespace": "n"},
                "spec": {"displayName": "A", "version": "1", "backendUrl": "https://a.b",
                         "definition": {"url": "https://a.b/o.yaml"}, "stages": ["dev"],
                         "bakendUrl": "typo"}
            }),
        };
        let _: Api = typed(&doc);
    });
    assert!(result.is_err(), "a misspelled field is caught");
}
