//! Shape of the generated CRDs: names, scope, subresources, printer columns, structural
//! schemas (what the API server requires), descriptions on every field (what `kubectl
//! explain` shows), defaults, enums, ranges and the CEL rules themselves.

use crds::{OUTBOX_CAPACITY, promotion_request as pr};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

fn crd(kind: &str) -> CustomResourceDefinition {
    crds::all_crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"))
}

fn schema(kind: &str) -> Value {
    serde_json::to_value(
        crd(kind).spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .expect("schema to JSON")
}

/// The schema node at a dotted path of property names (`spec.stages`).
fn at(kind: &str, path: &str) -> Value {
    let mut node = schema(kind);
    for part in path.split('.') {
        node = node["properties"][part].clone();
        assert!(!node.is_null(), "{kind}: no property {path}");
    }
    node
}

fn rules(node: &Value) -> Vec<(String, String)> {
    node["x-kubernetes-validations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["rule"].as_str().unwrap_or_default().to_owned(),
                        r["message"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const KINDS: [&str; 5] = [
    "Api",
    "Application",
    "Subscription",
    "PromotionRequest",
    "TeardownPolicy",
];

#[test]
fn names_scope_category_and_status() {
    let crds = crds::all_crds();
    assert_eq!(
        crds.iter()
            .map(|c| c.spec.names.kind.as_str())
            .collect::<Vec<_>>(),
        KINDS
    );
    for c in &crds {
        let kind = &c.spec.names.kind;
        assert_eq!(c.spec.group, "apim.cab-i.com");
        assert_eq!(c.spec.versions.len(), 1);
        let v = &c.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(v.served && v.storage);
        assert_eq!(
            c.spec.scope,
            if kind == "TeardownPolicy" {
                "Cluster"
            } else {
                "Namespaced"
            },
            "{kind}"
        );
        assert_eq!(
            c.spec.names.categories.as_deref(),
            Some(&["apim".to_owned()][..])
        );
        assert!(
            c.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{kind} has short names"
        );
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind} has the status subresource"
        );
        let status = at(kind, "status");
        for field in ["observedGeneration", "conditions", "pendingEvents"] {
            assert!(
                !status["properties"][field].is_null(),
                "{kind}: status.{field}"
            );
        }
        let conditions = &status["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            json!(["type"]),
            "{kind}"
        );
        assert_eq!(
            status["properties"]["pendingEvents"]["maxItems"].as_u64(),
            Some(OUTBOX_CAPACITY as u64),
            "{kind}"
        );
        if kind != "TeardownPolicy" {
            let plural = crds::TeardownKind::ALL
                .iter()
                .find(|k| k.as_str() == kind)
                .map(|k| k.plural());
            assert_eq!(plural, Some(c.spec.names.plural.as_str()), "{kind}");
        }
        assert_eq!(
            c.metadata.name.as_deref(),
            Some(format!("{}.apim.cab-i.com", c.spec.names.plural).as_str())
        );
    }
}

fn columns(kind: &str) -> Vec<(String, String)> {
    crd(kind).spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.name, c.json_path))
        .collect()
}

#[test]
fn printer_columns_show_state_at_a_glance() {
    let expect = |kind: &str, wanted: &[(&str, &str)]| {
        let cols = columns(kind);
        for (name, path) in wanted {
            assert!(
                cols.iter().any(|(n, p)| n == name && p == path),
                "{kind}: column {name} ({path}) in {cols:?}"
            );
        }
        assert_eq!(
            cols.last().map(|(n, p)| (n.as_str(), p.as_str())),
            Some(("Age", ".metadata.creationTimestamp")),
            "{kind}: Age last"
        );
    };
    let ready = r#".status.conditions[?(@.type=="Ready")].status"#;
    expect(
        "Api",
        &[
            ("Version", ".spec.version"),
            ("Stages", ".spec.stages"),
            ("Deployed", ".status.readyStages"),
            ("Ready", ready),
        ],
    );
    expect(
        "PromotionRequest",
        &[
            ("Api", ".spec.apiRef.name"),
            ("Target", ".spec.targetEnvironment"),
            ("Phase", ".status.phase"),
            ("Requester", ".spec.requester"),
            ("Approver", ".spec.decision.approver"),
        ],
    );
    expect(
        "Application",
        &[("Environment", ".spec.environment"), ("Ready", ready)],
    );
    expect(
        "Subscription",
        &[
            ("Api", ".spec.apiRef.name"),
            ("Application", ".spec.applicationRef.name"),
            ("Active", ".status.active"),
        ],
    );
    expect(
        "TeardownPolicy",
        &[
            ("Schedule", ".spec.schedule"),
            ("Next-Run", ".status.nextRunAt"),
        ],
    );
    // Every column path points at a field of the schema (or metadata).
    for kind in KINDS {
        for (name, path) in columns(kind) {
            if path.starts_with(".metadata.") {
                continue;
            }
            let dotted: String = path
                .trim_start_matches('.')
                .split('[')
                .next()
                .unwrap_or_default()
                .to_owned();
            at(kind, &dotted);
            let _ = name;
        }
    }
}

/// Walks every schema node with its path.
fn walk(node: &Value, path: &str, f: &mut dyn FnMut(&str, &Value)) {
    f(path, node);
    if let Some(props) = node["properties"].as_object() {
        for (k, v) in props {
            walk(v, &format!("{path}.{k}"), f);
        }
    }
    if node.get("items").is_some() {
        walk(&node["items"], &format!("{path}[]"), f);
    }
    if let Some(ap) = node.get("additionalProperties")
        && ap.is_object()
    {
        walk(ap, &format!("{path}{{}}"), f);
    }
}

#[test]
fn schemas_are_structural() {
    for kind in KINDS {
        walk(&schema(kind), kind, &mut |path, node| {
            for forbidden in [
                "oneOf",
                "anyOf",
                "allOf",
                "not",
                "$ref",
                "const",
                "propertyNames",
                "uniqueItems",
                "definitions",
                "$defs",
                "examples",
            ] {
                assert!(node.get(forbidden).is_none(), "{path}: {forbidden}");
            }
            let special = node.get("x-kubernetes-int-or-string").is_some()
                || node.get("x-kubernetes-preserve-unknown-fields").is_some();
            assert!(
                node["type"].is_string() || special,
                "{path}: every node has one type: {node}"
            );
            if node.get("properties").is_some() {
                assert_eq!(node["type"], "object", "{path}");
                assert!(
                    node.get("additionalProperties").is_none(),
                    "{path}: properties and additionalProperties are exclusive"
                );
            }
            if node.get("items").is_some() {
                assert_eq!(node["type"], "array", "{path}");
            }
            if node["x-kubernetes-list-type"] == "map" {
                let required = node["items"]["required"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for key in node["x-kubernetes-list-map-keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    assert!(
                        required.contains(key),
                        "{path}: list-map key {key} is required"
                    );
                }
            }
            if node.get("default").is_some() {
                assert!(
                    node.get("nullable").is_none(),
                    "{path}: a defaulted field is not nullable"
                );
            }
        });
    }
}

#[test]
fn every_field_is_documented() {
    for kind in KINDS {
        let root = schema(kind);
        assert!(root["description"].is_string(), "{kind}: root description");
        walk(&root, kind, &mut |path, node| {
            let Some(props) = node["properties"].as_object() else {
                return;
            };
            for (name, prop) in props {
                if ["apiVersion", "kind", "metadata"].contains(&name.as_str()) {
                    continue;
                }
                let d = prop["description"].as_str().unwrap_or_default();
                assert!(!d.trim().is_empty(), "{path}.{name} has no description");
                assert!(!d.contains('\n'), "{path}.{name}: description is reflowed");
            }
        });
    }
}

#[test]
fn defaults() {
    let cases = [
        ("Api", "spec.active", json!(true)),
        ("Api", "spec.driver", json!("direct")),
        ("Api", "spec.driftPolicy", json!("correct")),
        ("Api", "spec.policies.authentication", json!("apiKey")),
        ("Application", "spec.credentialType", json!("apiKey")),
        ("Application", "spec.rotation.overlap", json!("24h")),
        (
            "PromotionRequest",
            "spec.sourceEnvironment",
            json!("staging"),
        ),
        ("PromotionRequest", "spec.targetEnvironment", json!("prod")),
        ("TeardownPolicy", "spec.schedule", json!("0 2 * * *")),
        (
            "TeardownPolicy",
            "spec.noticeLeadTimes",
            json!(["48h", "24h"]),
        ),
        ("TeardownPolicy", "spec.dryRun", json!(false)),
        ("TeardownPolicy", "spec.maxDeletionsPerRun", json!(50)),
    ];
    for (kind, path, want) in cases {
        assert_eq!(at(kind, path)["default"], want, "{kind} {path}");
    }
    assert_eq!(
        at("Api", "spec.aliases")["items"]["properties"]["type"]["default"],
        "endpoint"
    );
}

#[test]
fn enums_formats_lengths_and_ranges() {
    let envs = json!(["dev", "staging", "sandbox", "demo", "prod"]);
    assert_eq!(at("Api", "spec.stages")["items"]["enum"], envs);
    assert_eq!(
        at("Api", "spec.driver")["enum"],
        json!(["direct", "awx", "queued"])
    );
    assert_eq!(
        at("Api", "spec.policies.authentication")["enum"],
        json!(["none", "apiKey", "oauth2", "basic"])
    );
    assert_eq!(
        at("Api", "spec.policies.rateLimit.period")["enum"],
        json!(["second", "minute", "hour"])
    );
    assert_eq!(
        at("Api", "spec.policies.rateLimit.requests")["minimum"],
        1.0
    );
    assert_eq!(at("Api", "spec.stages")["minItems"], 1);
    assert_eq!(at("Api", "spec.stages")["maxItems"], 4);
    assert_eq!(at("Api", "spec.stages")["x-kubernetes-list-type"], "set");
    assert_eq!(at("Api", "spec.backendUrl")["format"], "uri");
    assert_eq!(at("Api", "spec.aliases")["x-kubernetes-list-type"], "map");
    // Environment-keyed maps only accept environments as keys.
    for (kind, path) in [
        ("Api", "spec.driverOverrides"),
        ("Api", "status.environments"),
    ] {
        let keys: Vec<String> = at(kind, path)["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["demo", "dev", "prod", "sandbox", "staging"],
            "{path}"
        );
    }
    assert_eq!(
        at("Api", "spec.aliases")["items"]["properties"]["values"]["minProperties"],
        1
    );
    assert_eq!(
        at("Application", "spec.contactEmails")["items"]["format"],
        "email"
    );
    assert_eq!(at("PromotionRequest", "spec.reason")["minLength"], 10);
    assert_eq!(
        at("PromotionRequest", "spec.decision.verdict")["enum"],
        json!(["Approved", "Rejected"])
    );
    assert_eq!(
        at("PromotionRequest", "status.phase")["enum"],
        // An optional enum admits null (kube's standard rendering of `Option<Enum>`).
        json!([
            "Pending",
            "Approved",
            "Rejected",
            "Deploying",
            "Deployed",
            "Failed",
            null
        ])
    );
    assert_eq!(at("PromotionRequest", "status.phase")["nullable"], true);
    let required = schema("PromotionRequest")["properties"]["spec"]["required"].clone();
    assert_eq!(required, json!(["apiRef", "reason", "revision"]));
    assert_eq!(
        at("TeardownPolicy", "spec.maxDeletionsPerRun")["minimum"],
        1.0
    );
    assert_eq!(
        at("TeardownPolicy", "spec.maxDeletionsPerRun")["maximum"],
        10000.0
    );
    assert_eq!(
        at("TeardownPolicy", "spec.kinds")["items"]["enum"],
        json!(["Api", "Application", "Subscription", "PromotionRequest"])
    );
    assert_eq!(
        at("TeardownPolicy", "spec.noticeLeadTimes")["items"]["pattern"],
        crds::duration::SHORT_DURATION_PATTERN
    );
    assert_eq!(
        at("TeardownPolicy", "spec.schedule")["pattern"],
        crds::teardown_policy::SCHEDULE_PATTERN
    );
    assert_eq!(
        at("TeardownPolicy", "status.scheduled")["items"]["properties"]["action"]["enum"],
        json!(["notify", "delete"])
    );
}

#[test]
fn cel_rules_are_in_the_schema() {
    assert_eq!(
        rules(&at("Api", "spec.stages")),
        [(
            "!self.exists(s, s == 'prod')".to_owned(),
            crds::api::PROD_IN_STAGES_MESSAGE.to_owned()
        )]
    );
    let def = rules(&at("Api", "spec.definition"));
    assert_eq!(def.len(), 1);
    assert!(def[0].0.contains("has(self.inline)") && def[0].0.contains("== 1"));
    let spec_rules: Vec<String> = rules(&at("PromotionRequest", "spec"))
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(
        spec_rules,
        [
            pr::REQUESTER_IMMUTABLE_RULE,
            pr::REVISION_IMMUTABLE_RULE,
            pr::DECISION_IMMUTABLE_RULE,
            pr::DISTINCT_ENVIRONMENTS_RULE,
            pr::NO_SELF_APPROVAL_RULE
        ]
    );
    assert_eq!(
        pr::REQUESTER_IMMUTABLE_RULE,
        "!has(oldSelf.requester) || (has(self.requester) && self.requester == oldSelf.requester)"
    );
    for field in ["apiRef", "applicationRef", "environment"] {
        assert_eq!(
            rules(&at("Subscription", &format!("spec.{field}")))[0].0,
            "self == oldSelf"
        );
    }
    assert_eq!(
        rules(&at("Application", "spec.environment"))[0].0,
        "self == oldSelf"
    );
}

#[test]
fn selectable_fields_point_at_scalars() {
    for kind in KINDS {
        let c = crd(kind);
        for f in c.spec.versions[0]
            .selectable_fields
            .clone()
            .unwrap_or_default()
        {
            let node = at(kind, f.json_path.trim_start_matches('.'));
            assert_eq!(node["type"], "string", "{kind} {}", f.json_path);
        }
    }
}
