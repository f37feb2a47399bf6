//! Real-world OpenAPI 3.1 documents (see fixtures/README.md): each converts, the output is
//! valid against the official OpenAPI 3.0 schema, and the input was not.

mod common;

use std::collections::BTreeMap;

use common::{assert_valid_30, errors_30, fixture};
use openapi_convert::{ChangeKind, Conversion, SpecVersion, convert_str};
use serde_json::{Value, json};

fn convert_fixture(name: &str) -> (Value, Conversion) {
    let text = fixture(name);
    let (input, _) = openapi_convert::parse(&text).unwrap();
    assert!(
        !errors_30(&input).is_empty(),
        "{name}: the 3.1 input already validates as 3.0, the test proves nothing"
    );
    let out = convert_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.source_version, SpecVersion::OpenApi31);
    assert_valid_30(&out.document);
    assert!(
        !out.changes
            .iter()
            .any(|c| c.kind == ChangeKind::Warning && c.message.contains("reference")),
        "{name}: dangling references: {:#?}",
        out.changes
    );
    assert_fixpoint(&out.document);
    (input, out)
}

/// The output, relabelled 3.1, converts to itself: nothing 3.1-only is left anywhere the
/// converter looks.
fn assert_fixpoint(doc: &Value) {
    let mut again = doc.clone();
    again["openapi"] = json!("3.1.0");
    let second = openapi_convert::convert(again).unwrap();
    let kinds: Vec<ChangeKind> = second.changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ChangeKind::Version], "{:#?}", second.changes);
    assert_eq!(&second.document, doc);
}

fn count(out: &Conversion) -> BTreeMap<ChangeKind, usize> {
    let mut m = BTreeMap::new();
    for c in &out.changes {
        *m.entry(c.kind).or_default() += 1;
    }
    m
}

/// No 3.1-only construct is left in any schema position: checked on the text, with
/// fixtures that have no property named like these keywords.
fn assert_no_31_left(doc: &Value) {
    let text = doc.to_string();
    for needle in [
        "\"type\":[",
        "\"const\":",
        "\"examples\":[",
        "\"$defs\"",
        "\"prefixItems\"",
        "\"webhooks\"",
        "\"contentEncoding\"",
        "\"contentMediaType\"",
        "\"unevaluatedProperties\"",
    ] {
        assert!(!text.contains(needle), "{needle} left in the output");
    }
}

#[test]
fn schema_types() {
    let (_, out) = convert_fixture("schema-types.json");
    assert_no_31_left(&out.document);
    let mixed = &out.document["paths"]["/anything/mixed"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"];
    assert_eq!(
        mixed["string and null"],
        json!({"type": "string", "nullable": true, "description": "This can be either a `string` or `null`."})
    );
    let any_of = mixed["string and number"]["anyOf"].as_array().unwrap();
    assert_eq!(any_of.len(), 2);
    let counts = count(&out);
    assert!(counts[&ChangeKind::MultipleTypes] >= 2, "{counts:?}");
    assert!(counts[&ChangeKind::NullType] >= 1, "{counts:?}");
}

#[test]
fn schema_validation_local() {
    let (_, out) = convert_fixture("schema-validation-local.json");
    assert_no_31_left(&out.document);
}

#[test]
fn security_with_mutual_tls() {
    let (input, out) = convert_fixture("security.json");
    let schemes = |d: &Value| d["components"]["securitySchemes"].to_string();
    assert!(schemes(&input).contains("\"type\":\"mutualTLS\""));
    assert!(!schemes(&out.document).contains("mutualTLS"));
    let security = &out.document["paths"]["/anything/mutualTLS"]["post"]["security"];
    assert!(!security.to_string().contains("mutualTLS"), "{security}");
}

#[test]
fn webhooks_only_document() {
    let (_, out) = convert_fixture("webhooks.json");
    assert!(out.document.get("webhooks").is_none());
    assert_eq!(out.document["paths"], json!({}));
    assert!(out.changes.iter().any(|c| c.pointer == "/webhooks"));
}

#[test]
fn scalar_galaxy_yaml() {
    let (input, out) = convert_fixture("scalar-galaxy.3.1.yaml");
    assert!(input.get("webhooks").is_some());
    assert_no_31_left(&out.document);
    let next = &out.document["components"]["schemas"]["PaginatedResource"]["properties"]["meta"]["properties"]
        ["next"];
    assert_eq!(next["type"], "string");
    assert_eq!(next["nullable"], true);
}

#[test]
fn github_webhooks_subset() {
    let (_, out) = convert_fixture("github-webhooks-subset.3.1.json");
    assert_no_31_left(&out.document);
    let counts = count(&out);
    for kind in [
        ChangeKind::Nullable,
        ChangeKind::MultipleTypes,
        ChangeKind::NullBranch,
        ChangeKind::Examples,
    ] {
        assert!(
            counts.get(&kind).copied().unwrap_or(0) > 0,
            "no {kind}: {counts:?}"
        );
    }
}

#[test]
fn github_webhooks_as_paths_benchmark_document() {
    let text = std::fs::read_to_string(common::bench_doc_path()).unwrap();
    assert!(
        text.len() >= 1_000_000,
        "the benchmark document is under 1 MB"
    );
    let out = convert_str(&text).unwrap();
    assert_valid_30(&out.document);
    assert_fixpoint(&out.document);
    assert!(out.document["paths"].as_object().unwrap().len() >= 200);
    assert!(out.changes.len() > 1000, "{}", out.changes.len());
}
