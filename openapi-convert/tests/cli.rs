//! `run_cli`: same format out as in, report on the error stream, exit codes.

mod common;

use common::{assert_valid_30, fixture_path, temp_path};
use openapi_convert::run_cli;
use serde_json::Value;

fn run(input: &std::path::Path, output: Option<&std::path::Path>) -> (i32, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_cli(input, output, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn json_in_json_out_to_stdout() {
    let (code, out, err) = run(&fixture_path("schema-types.json"), None);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("JSON out");
    assert_eq!(doc["openapi"], "3.0.3");
    assert_valid_30(&doc);
    assert!(err.contains("converted OpenAPI 3.1.x to 3.0.3"), "{err}");
    assert!(
        err.contains("/openapi: `openapi: 3.1.0` → `3.0.3`"),
        "{err}"
    );
}

#[test]
fn yaml_in_yaml_out_to_file() {
    let target = temp_path("galaxy.yaml");
    let (code, out, err) = run(&fixture_path("scalar-galaxy.3.1.yaml"), Some(&target));
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    let text = std::fs::read_to_string(&target).unwrap();
    std::fs::remove_file(&target).ok();
    assert!(
        !text.trim_start().starts_with('{'),
        "not YAML: {}",
        &text[..80]
    );
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    assert_valid_30(&doc);
}

#[test]
fn pass_through_says_so() {
    let (code, out, err) = run(&fixture_path("petstore.2.0.json"), None);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        common::fixture("petstore.2.0.json"),
        "not written back verbatim"
    );
    assert!(
        err.contains("Swagger 2.0: passed through unchanged"),
        "{err}"
    );
}

#[test]
fn refused_documents_exit_1_with_the_pointer() {
    let input = temp_path("bad.json");
    std::fs::write(
        &input,
        r##"{"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "components": {"schemas": {"S": {"$ref": "#/components/schemas/Nope"}}}}"##,
    )
    .unwrap();
    let (code, out, err) = run(&input, None);
    std::fs::remove_file(&input).ok();
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("/components/schemas/S/$ref"), "{err}");
    let (code, _, err) = run(&temp_path("missing.json"), None);
    assert_eq!(code, 1);
    assert!(err.contains("failed to read"), "{err}");
}
