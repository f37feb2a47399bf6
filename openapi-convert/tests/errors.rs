//! Malformed documents are refused with the JSON pointer of the problem.

use openapi_convert::{ConvertError, convert, convert_str};
use serde_json::{Value, json};

fn base() -> Value {
    json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}})
}

fn with(pointer: &str, value: Value) -> Value {
    let mut d = base();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = d.pointer_mut(parent).unwrap();
    parent[key.replace("~1", "/").replace("~0", "~")] = value;
    d
}

fn refused_at(doc: Value) -> String {
    match convert(doc) {
        Ok(c) => panic!("accepted: {:#?}", c.document),
        Err(e) => {
            let p = e.pointer().unwrap_or("<none>").to_owned();
            // The message names the pointer too.
            assert!(
                e.to_string()
                    .contains(if p.is_empty() { "(root)" } else { &p }),
                "{e}"
            );
            p
        }
    }
}

#[test]
fn root_and_version() {
    assert_eq!(refused_at(json!([1])), "");
    assert_eq!(
        refused_at(json!({"info": {"title": "t", "version": "1"}})),
        "/openapi"
    );
    assert_eq!(refused_at(with("/openapi", json!(3.1))), "/openapi");
    let e = convert(with("/openapi", json!("3.2.0"))).unwrap_err();
    assert!(matches!(e, ConvertError::UnsupportedVersion { .. }), "{e}");
    assert_eq!(
        refused_at(json!({"swagger": "1.2", "info": {}})),
        "/swagger"
    );
}

#[test]
fn info() {
    let mut d = base();
    d.as_object_mut().unwrap().remove("info");
    assert_eq!(refused_at(d), "/info");
    assert_eq!(refused_at(with("/info", json!("x"))), "/info");
    assert_eq!(refused_at(with("/info/version", json!(1))), "/info/version");
    assert_eq!(
        refused_at(with("/info/license", json!({"url": "u"}))),
        "/info/license"
    );
    // Also for documents that otherwise pass through.
    assert_eq!(
        refused_at(json!({"openapi": "3.0.3", "info": {"title": "t"}})),
        "/info"
    );
}

#[test]
fn structure() {
    assert_eq!(refused_at(with("/paths", json!([]))), "/paths");
    assert_eq!(refused_at(with("/paths/pets", json!({}))), "/paths/pets");
    assert_eq!(
        refused_at(with("/paths/~1p", json!({"get": 1}))),
        "/paths/~1p/get"
    );
    assert_eq!(
        refused_at(with("/paths/~1p", json!({"get": {"parameters": {}}}))),
        "/paths/~1p/get/parameters"
    );
    assert_eq!(
        refused_at(with(
            "/paths/~1p",
            json!({"get": {"parameters": [{"in": "query"}]}})
        )),
        "/paths/~1p/get/parameters/0"
    );
    assert_eq!(
        refused_at(with(
            "/paths/~1p",
            json!({"get": {"parameters": [{"name": "a", "in": "body"}]}})
        )),
        "/paths/~1p/get/parameters/0/in"
    );
    assert_eq!(
        refused_at(with(
            "/paths/~1p",
            json!({"get": {"responses": {"200": {"content": {}}}}})
        )),
        "/paths/~1p/get/responses/200"
    );
    assert_eq!(
        refused_at(with(
            "/paths/~1p",
            json!({"post": {"requestBody": {"description": "d"}}})
        )),
        "/paths/~1p/post/requestBody"
    );
    assert_eq!(
        refused_at(with("/components", json!({"schemas": []}))),
        "/components/schemas"
    );
    assert_eq!(
        refused_at(with("/servers", json!([{"description": "no url"}]))),
        "/servers/0"
    );
}

fn schema_refused_at(schema: Value) -> String {
    refused_at(with("/components", json!({"schemas": {"S": schema}})))
}

#[test]
fn schemas() {
    assert_eq!(schema_refused_at(json!(3)), "/components/schemas/S");
    assert_eq!(
        schema_refused_at(json!({"type": "file"})),
        "/components/schemas/S/type"
    );
    assert_eq!(
        schema_refused_at(json!({"type": ["string", 5]})),
        "/components/schemas/S/type/1"
    );
    assert_eq!(
        schema_refused_at(json!({"properties": []})),
        "/components/schemas/S/properties"
    );
    assert_eq!(
        schema_refused_at(json!({"properties": {"a": {"items": [{}]}}})),
        "/components/schemas/S/properties/a/items"
    );
    assert_eq!(
        schema_refused_at(json!({"required": [1]})),
        "/components/schemas/S/required/0"
    );
    assert_eq!(
        schema_refused_at(json!({"minLength": -1})),
        "/components/schemas/S/minLength"
    );
    assert_eq!(
        schema_refused_at(json!({"exclusiveMinimum": "0"})),
        "/components/schemas/S/exclusiveMinimum"
    );
    assert_eq!(
        schema_refused_at(json!({"allOf": {}})),
        "/components/schemas/S/allOf"
    );
    assert_eq!(
        schema_refused_at(json!({"$ref": 1})),
        "/components/schemas/S/$ref"
    );
}

#[test]
fn unresolvable_refs() {
    let e = convert(with(
        "/components",
        json!({"schemas": {"S": {"properties": {"a": {"$ref": "#/components/schemas/Missing"}}}}}),
    ))
    .unwrap_err();
    match &e {
        ConvertError::UnresolvedRef { pointer, reference } => {
            assert_eq!(pointer, "/components/schemas/S/properties/a/$ref");
            assert_eq!(reference, "#/components/schemas/Missing");
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string().contains("#/components/schemas/Missing"),
        "{e}"
    );
    assert_eq!(
        refused_at(with(
            "/components",
            json!({"schemas": {"S": {"$ref": "#nowhere"}}})
        )),
        "/components/schemas/S/$ref"
    );
    assert_eq!(
        refused_at(with(
            "/paths/~1p",
            json!({"get": {"responses": {"200": {"$ref": "#/components/responses/R"}}}})
        )),
        "/paths/~1p/get/responses/200/$ref"
    );
    // External references are not checked.
    assert!(
        convert(with(
            "/components",
            json!({"schemas": {"S": {"$ref": "other.yaml#/S"}}})
        ))
        .is_ok()
    );
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let mut s = json!({"type": "string"});
    for _ in 0..1000 {
        s = json!({"items": s});
    }
    let e = convert(with("/components", json!({"schemas": {"S": s}}))).unwrap_err();
    assert!(e.to_string().contains("nesting deeper"), "{e}");
}

#[test]
fn unparsable_input() {
    let e = convert_str("{\"openapi\": ").unwrap_err();
    assert!(
        matches!(e, ConvertError::Parse { format: "JSON", .. }),
        "{e}"
    );
    assert!(e.pointer().is_none());
    let e = convert_str("openapi: [unclosed").unwrap_err();
    assert!(
        matches!(e, ConvertError::Parse { format: "YAML", .. }),
        "{e}"
    );
}
