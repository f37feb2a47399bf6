//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value, json};

/// The official OpenAPI 3.0 schema, compiled once (draft-04).
pub fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(include_str!("../schemas/openapi-3.0.schema.json"))
                .expect("vendored schema is JSON");
        jsonschema::draft4::new(&schema).expect("vendored schema compiles")
    })
}

/// The first few validation errors against the OpenAPI 3.0 schema (empty: valid).
pub fn errors_30(doc: &Value) -> Vec<String> {
    validator()
        .iter_errors(doc)
        .take(5)
        .map(|e| {
            let s = format!("{}: {e}", e.instance_path());
            s.chars().take(300).collect()
        })
        .collect()
}

/// Panics with the errors if `doc` is not a valid OpenAPI 3.0 document.
pub fn assert_valid_30(doc: &Value) {
    let errors = errors_30(doc);
    assert!(
        errors.is_empty(),
        "not a valid OpenAPI 3.0 document:\n{}",
        errors.join("\n")
    );
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).expect("fixture is readable")
}

pub fn bench_doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../bench/openapi/github-webhooks-as-paths.3.1.json")
}

/// A minimal 3.1 document with `schema` as `components.schemas.S`.
pub fn doc_with_schema(schema: Value) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {},
        "components": {"schemas": {"S": schema}}
    })
}

/// Converts `schema` (as `components.schemas.S`), checks the whole output against the 3.0
/// schema, and returns the converted schema and the change pointers/kinds.
pub fn convert_schema(schema: Value) -> (Value, Vec<openapi_convert::Change>) {
    let out = openapi_convert::convert(doc_with_schema(schema)).expect("converts");
    assert_valid_30(&out.document);
    let s = out.document["components"]["schemas"]["S"].clone();
    (s, out.changes)
}

/// Temporary file path unique to this process and call.
pub fn temp_path(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "openapi-convert-test-{}-{n}-{name}",
        std::process::id()
    ))
}
