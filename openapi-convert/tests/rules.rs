//! One test per conversion rule. Every converted document is also validated against the
//! official OpenAPI 3.0 schema (see `common::convert_schema`).

mod common;

use common::{assert_valid_30, convert_schema};
use openapi_convert::{Change, ChangeKind, SpecVersion, convert};
use serde_json::{Value, json};

fn kinds(changes: &[Change]) -> Vec<ChangeKind> {
    changes.iter().map(|c| c.kind).collect()
}

fn change_at<'a>(changes: &'a [Change], pointer: &str) -> &'a Change {
    changes
        .iter()
        .find(|c| c.pointer == pointer)
        .unwrap_or_else(|| panic!("no change at {pointer}: {changes:#?}"))
}

fn doc(extra: Value) -> Value {
    let mut d = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}});
    if let (Value::Object(d), Value::Object(extra)) = (&mut d, extra) {
        d.extend(extra);
    }
    d
}

#[test]
fn sets_version_303() {
    let out = convert(doc(json!({}))).unwrap();
    assert_eq!(out.document["openapi"], "3.0.3");
    assert_eq!(out.source_version, SpecVersion::OpenApi31);
    assert_eq!(
        change_at(&out.changes, "/openapi").kind,
        ChangeKind::Version
    );
    assert_valid_30(&out.document);
}

#[test]
fn type_with_null_becomes_nullable() {
    let (s, changes) = convert_schema(json!({"type": ["string", "null"], "maxLength": 3}));
    assert_eq!(
        s,
        json!({"type": "string", "nullable": true, "maxLength": 3})
    );
    let c = change_at(&changes, "/components/schemas/S/type");
    assert_eq!(c.kind, ChangeKind::Nullable);
    assert!(c.message.contains("nullable"), "{c}");
}

#[test]
fn single_type_list_becomes_string() {
    let (s, changes) = convert_schema(json!({"type": ["integer"]}));
    assert_eq!(s, json!({"type": "integer"}));
    assert_eq!(kinds(&changes), [ChangeKind::Version, ChangeKind::TypeList]);
}

#[test]
fn several_types_become_any_of_with_their_keywords() {
    let (s, changes) = convert_schema(json!({
        "type": ["string", "integer", "null"],
        "description": "d",
        "minLength": 1,
        "maximum": 5,
        "format": "int64",
        "default": 3
    }));
    assert_eq!(
        s,
        json!({
            "description": "d",
            "default": 3,
            "anyOf": [
                {"type": "string", "minLength": 1, "nullable": true},
                {"type": "integer", "maximum": 5, "format": "int64", "nullable": true}
            ]
        })
    );
    assert_eq!(
        change_at(&changes, "/components/schemas/S/type").kind,
        ChangeKind::MultipleTypes
    );
}

#[test]
fn several_types_split_enum_values_by_type() {
    let (s, _) =
        convert_schema(json!({"type": ["string", "integer", "boolean"], "enum": ["a", 1, 2.5]}));
    assert_eq!(
        s,
        json!({"anyOf": [
            {"type": "string", "enum": ["a"]},
            {"type": "integer", "enum": [1]}
        ]})
    );
}

#[test]
fn several_types_beside_an_existing_any_of_go_into_all_of() {
    let (s, _) = convert_schema(json!({
        "type": ["object", "array"],
        "anyOf": [{"required": ["a"]}, {"minItems": 1}],
        "properties": {"a": {"type": "string"}},
        "items": {"type": "string"}
    }));
    assert_eq!(
        s,
        json!({
            "anyOf": [{"required": ["a"]}, {"minItems": 1}],
            "allOf": [{"anyOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}},
                {"type": "array", "items": {"type": "string"}}
            ]}]
        })
    );
}

#[test]
fn null_type_alone() {
    let (s, changes) = convert_schema(json!({"type": "null", "description": "nothing"}));
    assert_eq!(
        s,
        json!({"nullable": true, "enum": [null], "description": "nothing"})
    );
    assert!(kinds(&changes).contains(&ChangeKind::NullType));
    let (s, _) = convert_schema(json!({"type": ["null"]}));
    assert_eq!(s, json!({"nullable": true, "enum": [null]}));
}

#[test]
fn null_branch_of_any_of_becomes_nullable() {
    let (s, changes) = convert_schema(json!({
        "anyOf": [{"$ref": "#/components/schemas/S"}, {"type": "null"}],
        "description": "maybe"
    }));
    assert_eq!(
        s,
        json!({"allOf": [{"$ref": "#/components/schemas/S"}], "nullable": true, "description": "maybe"})
    );
    assert_eq!(
        change_at(&changes, "/components/schemas/S/anyOf").kind,
        ChangeKind::NullBranch
    );
    let (s, _) =
        convert_schema(json!({"oneOf": [{"type": "null"}, {"type": "string", "format": "date"}]}));
    assert_eq!(
        s,
        json!({"type": "string", "format": "date", "nullable": true})
    );
    let (s, _) = convert_schema(
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}),
    );
    assert_eq!(
        s,
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": true})
    );
}

#[test]
fn const_becomes_enum() {
    let (s, changes) = convert_schema(json!({"type": "string", "const": "fixed"}));
    assert_eq!(s, json!({"type": "string", "enum": ["fixed"]}));
    let c = change_at(&changes, "/components/schemas/S/const");
    assert_eq!(c.kind, ChangeKind::Const);
    assert_eq!(
        c.to_string(),
        "/components/schemas/S/const: `const: \"fixed\"` → `enum: [\"fixed\"]`"
    );
}

#[test]
fn numeric_exclusive_bounds_become_boolean() {
    let (s, _) =
        convert_schema(json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10.5}));
    assert_eq!(
        s,
        json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 10.5, "exclusiveMaximum": true})
    );
    // A tighter inclusive bound beside it wins; a looser one is replaced.
    let (s, changes) = convert_schema(
        json!({"type": "integer", "minimum": 5, "exclusiveMinimum": 3, "maximum": 20, "exclusiveMaximum": 10}),
    );
    assert_eq!(
        s,
        json!({"type": "integer", "minimum": 5, "maximum": 10, "exclusiveMaximum": true})
    );
    assert_eq!(
        change_at(&changes, "/components/schemas/S/exclusiveMinimum").kind,
        ChangeKind::ExclusiveBound
    );
}

#[test]
fn examples_become_example() {
    let (s, changes) = convert_schema(json!({"type": "string", "examples": ["a", "b"]}));
    assert_eq!(s, json!({"type": "string", "example": "a"}));
    assert_eq!(
        change_at(&changes, "/components/schemas/S/examples").kind,
        ChangeKind::Examples
    );
    let (s, _) = convert_schema(json!({"type": "string", "example": "z", "examples": ["a"]}));
    assert_eq!(s, json!({"type": "string", "example": "z"}));
}

#[test]
fn properties_named_like_keywords_are_left_alone() {
    let schema = json!({
        "type": "object",
        "properties": {
            "const": {"type": "string"},
            "examples": {"type": "array", "items": {"type": "string"}},
            "type": {"type": "string", "enum": ["a"]},
            "$defs": {"type": "integer"},
            "webhooks": {"type": "boolean"}
        },
        "required": ["const", "examples"],
        "example": {"const": 1, "examples": ["x"], "type": ["a", "null"]}
    });
    let (s, changes) = convert_schema(schema.clone());
    assert_eq!(s, schema);
    assert_eq!(kinds(&changes), [ChangeKind::Version]);
}

#[test]
fn ref_with_siblings_becomes_all_of() {
    let (s, changes) = convert_schema(json!({
        "$ref": "#/components/schemas/S",
        "description": "d",
        "maxProperties": 3,
        "x-extra": true
    }));
    assert_eq!(
        s,
        json!({
            "allOf": [{"$ref": "#/components/schemas/S"}, {"maxProperties": 3}],
            "description": "d",
            "x-extra": true
        })
    );
    assert_eq!(
        change_at(&changes, "/components/schemas/S/$ref").kind,
        ChangeKind::RefSiblings
    );
    let (s, _) =
        convert_schema(json!({"$ref": "#/components/schemas/S", "allOf": [{"required": ["a"]}]}));
    assert_eq!(
        s,
        json!({"allOf": [{"$ref": "#/components/schemas/S"}, {"required": ["a"]}]})
    );
}

#[test]
fn content_encoding_and_media_type_become_format() {
    let (s, _) = convert_schema(
        json!({"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}),
    );
    assert_eq!(s, json!({"type": "string", "format": "byte"}));
    let (s, changes) =
        convert_schema(json!({"type": "string", "contentMediaType": "application/octet-stream"}));
    assert_eq!(s, json!({"type": "string", "format": "binary"}));
    assert_eq!(
        change_at(&changes, "/components/schemas/S/contentMediaType").kind,
        ChangeKind::ContentFormat
    );
    let (s, changes) =
        convert_schema(json!({"type": "string", "contentMediaType": "application/json"}));
    assert_eq!(s, json!({"type": "string"}));
    assert_eq!(
        change_at(&changes, "/components/schemas/S/contentMediaType").kind,
        ChangeKind::Removed
    );
}

#[test]
fn json_schema_only_keywords_are_dropped_and_reported() {
    let (s, changes) = convert_schema(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.com/s",
        "$comment": "c",
        "type": "object",
        "unevaluatedProperties": false,
        "if": {"required": ["a"]},
        "then": {"required": ["b"]},
        "else": {"required": ["c"]},
        "dependentSchemas": {"a": {"required": ["b"]}},
        "dependentRequired": {"a": ["b"]},
        "propertyNames": {"pattern": "^[a-z]+$"},
        "contains": {"type": "string"},
        "minContains": 1
    }));
    assert_eq!(s, json!({"type": "object"}));
    for key in [
        "$schema",
        "$id",
        "$comment",
        "unevaluatedProperties",
        "if",
        "then",
        "else",
        "dependentSchemas",
        "dependentRequired",
        "propertyNames",
        "contains",
        "minContains",
    ] {
        let c = change_at(&changes, &format!("/components/schemas/S/{key}"));
        assert_eq!(c.kind, ChangeKind::Removed, "{c}");
    }
}

#[test]
fn boolean_schemas() {
    let (s, changes) = convert_schema(json!({
        "type": "object",
        "properties": {"any": true, "none": false},
        "additionalProperties": false
    }));
    assert_eq!(
        s,
        json!({
            "type": "object",
            "properties": {"any": {}, "none": {"not": {}}},
            "additionalProperties": false
        })
    );
    assert_eq!(
        change_at(&changes, "/components/schemas/S/properties/none").kind,
        ChangeKind::BooleanSchema
    );
}

#[test]
fn prefix_items_fold_into_items() {
    let (s, changes) = convert_schema(json!({
        "type": "array",
        "prefixItems": [{"type": "number"}, {"type": "string"}],
        "items": false
    }));
    assert_eq!(
        s,
        json!({
            "type": "array",
            "items": {"anyOf": [{"type": "number"}, {"type": "string"}]},
            "maxItems": 2
        })
    );
    assert_eq!(
        change_at(&changes, "/components/schemas/S/prefixItems").kind,
        ChangeKind::PrefixItems
    );
    let (s, _) = convert_schema(json!({"type": "array", "prefixItems": [{"type": "number"}]}));
    assert_eq!(s, json!({"type": "array", "items": {}}));
}

#[test]
fn pattern_properties_apply_to_additional_properties() {
    let (s, changes) = convert_schema(json!({
        "type": "object",
        "patternProperties": {"^x_": {"type": "integer"}},
        "additionalProperties": false
    }));
    assert_eq!(
        s,
        json!({"type": "object", "additionalProperties": {"type": "integer"}})
    );
    assert_eq!(
        change_at(&changes, "/components/schemas/S/patternProperties").kind,
        ChangeKind::PatternProperties
    );
}

#[test]
fn defs_are_hoisted_and_refs_rewritten() {
    let out = convert(json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {},
        "components": {"schemas": {
            "S": {
                "$defs": {"A": {"type": ["string", "null"]}},
                "type": "object",
                "properties": {"a": {"$ref": "#/components/schemas/S/$defs/A"}}
            },
            "T": {"$ref": "#/components/schemas/S/$defs/A"}
        }}
    }))
    .unwrap();
    assert_valid_30(&out.document);
    let schemas = &out.document["components"]["schemas"];
    assert_eq!(schemas["S_A"], json!({"type": "string", "nullable": true}));
    assert_eq!(
        schemas["S"],
        json!({"type": "object", "properties": {"a": {"$ref": "#/components/schemas/S_A"}}})
    );
    assert_eq!(schemas["T"], json!({"$ref": "#/components/schemas/S_A"}));
    assert_eq!(
        change_at(&out.changes, "/components/schemas/S/$defs/A").kind,
        ChangeKind::Hoisted
    );
    assert_eq!(
        change_at(&out.changes, "/components/schemas/T/$ref").kind,
        ChangeKind::RefRewritten
    );
    assert!(!kinds(&out.changes).contains(&ChangeKind::Warning));
}

#[test]
fn anchor_refs_become_pointers() {
    let out = convert(json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "components": {"schemas": {
            "S": {"$anchor": "thing", "type": "string"},
            "T": {"$ref": "#thing"}
        }}
    }))
    .unwrap();
    assert_valid_30(&out.document);
    assert_eq!(
        out.document["components"]["schemas"]["T"],
        json!({"$ref": "#/components/schemas/S"})
    );
    assert_eq!(
        out.document["components"]["schemas"]["S"],
        json!({"type": "string"})
    );
}

#[test]
fn document_level_3_1_fields_are_dropped() {
    let out = convert(json!({
        "openapi": "3.1.1",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "t",
            "version": "1",
            "summary": "short",
            "license": {"name": "Apache 2.0", "identifier": "Apache-2.0"}
        },
        "webhooks": {"ping": {"post": {"responses": {"200": {"description": "ok"}}}}},
        "components": {
            "pathItems": {"P": {"get": {"responses": {"200": {"description": "ok"}}}}}
        }
    }))
    .unwrap();
    assert_valid_30(&out.document);
    let d = &out.document;
    assert!(d.get("webhooks").is_none());
    assert!(d.get("jsonSchemaDialect").is_none());
    assert!(d["info"].get("summary").is_none());
    assert_eq!(
        d["info"]["license"],
        json!({"name": "Apache 2.0", "url": "https://spdx.org/licenses/Apache-2.0.html"})
    );
    assert!(d["components"].get("pathItems").is_none());
    assert_eq!(d["paths"], json!({}));
    for (pointer, kind) in [
        ("/webhooks", ChangeKind::Removed),
        ("/jsonSchemaDialect", ChangeKind::Removed),
        ("/info/summary", ChangeKind::Removed),
        ("/info/license/identifier", ChangeKind::Removed),
        ("/components/pathItems", ChangeKind::Removed),
        ("/paths", ChangeKind::Added),
    ] {
        assert_eq!(change_at(&out.changes, pointer).kind, kind, "{pointer}");
    }
}

#[test]
fn path_item_refs_are_inlined() {
    let out = convert(json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/a": {"$ref": "#/components/pathItems/P", "summary": "own"}},
        "components": {"pathItems": {"P": {
            "summary": "shared",
            "get": {"responses": {"200": {"description": "ok", "content": {
                "application/json": {"schema": {"type": ["string", "null"]}}
            }}}}
        }}}
    }))
    .unwrap();
    assert_valid_30(&out.document);
    let a = &out.document["paths"]["/a"];
    assert_eq!(a["summary"], "own");
    assert_eq!(
        a["get"]["responses"]["200"]["content"]["application/json"]["schema"],
        json!({"type": "string", "nullable": true})
    );
    assert!(a.get("$ref").is_none());
    assert_eq!(
        change_at(&out.changes, "/paths/~1a/$ref").kind,
        ChangeKind::Inlined
    );
}

#[test]
fn reference_objects_lose_their_summary_and_description() {
    let out = convert(json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/a": {"get": {
            "parameters": [{"$ref": "#/components/parameters/P", "description": "why"}],
            "responses": {"200": {"$ref": "#/components/responses/R", "summary": "s"}}
        }}},
        "components": {
            "parameters": {"P": {"name": "p", "in": "query", "schema": {"type": ["integer", "null"]}}},
            "responses": {"R": {"description": "ok"}}
        }
    }))
    .unwrap();
    assert_valid_30(&out.document);
    let get = &out.document["paths"]["/a"]["get"];
    assert_eq!(
        get["parameters"][0],
        json!({"$ref": "#/components/parameters/P"})
    );
    assert_eq!(
        get["responses"]["200"],
        json!({"$ref": "#/components/responses/R"})
    );
    assert_eq!(
        out.document["components"]["parameters"]["P"]["schema"],
        json!({"type": "integer", "nullable": true})
    );
    change_at(&out.changes, "/paths/~1a/get/parameters/0/description");
    change_at(&out.changes, "/paths/~1a/get/responses/200/summary");
}

#[test]
fn every_schema_position_is_converted() {
    let n = json!({"type": ["string", "null"]});
    let out = convert(json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/a/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": n}],
            "post": {
                "parameters": [{"name": "q", "in": "query", "content": {"application/json": {"schema": n}}}],
                "requestBody": {"content": {"multipart/form-data": {
                    "schema": {"type": "object", "properties": {"f": n}},
                    "encoding": {"f": {"headers": {"X-H": {"schema": n}}}}
                }}},
                "responses": {"200": {
                    "description": "ok",
                    "headers": {"X-R": {"schema": n}},
                    "content": {"application/json": {"schema": {
                        "type": "array",
                        "items": {"allOf": [n], "anyOf": [n, {"type": "integer"}], "oneOf": [n], "not": n}
                    }}}
                }},
                "callbacks": {"cb": {"{$request.body#/url}": {"post": {
                    "requestBody": {"content": {"application/json": {"schema": {"additionalProperties": n}}}},
                    "responses": {"200": {"description": "ok"}}
                }}}}
            }
        }},
        "components": {
            "headers": {"H": {"schema": n}},
            "requestBodies": {"B": {"content": {"text/plain": {"schema": n}}}}
        }
    }))
    .unwrap();
    assert_valid_30(&out.document);
    let text = out.document.to_string();
    assert!(!text.contains("\"null\""), "a null type is left: {text}");
    let nullable = out
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Nullable)
        .count();
    assert_eq!(nullable, 12, "{:#?}", out.changes);
}

#[test]
fn operation_without_responses_gets_a_default_one() {
    let out = convert(doc(json!({"paths": {"/a": {"get": {"summary": "s"}}}}))).unwrap();
    assert_valid_30(&out.document);
    assert_eq!(
        out.document["paths"]["/a"]["get"]["responses"],
        json!({"default": {"description": "Default response"}})
    );
    assert_eq!(
        change_at(&out.changes, "/paths/~1a/get/responses").kind,
        ChangeKind::Added
    );
}

#[test]
fn mutual_tls_is_dropped() {
    let out = convert(doc(json!({
        "components": {"securitySchemes": {
            "mtls": {"type": "mutualTLS"},
            "key": {"type": "apiKey", "name": "k", "in": "header"}
        }},
        "security": [{"mtls": []}, {"key": []}]
    })))
    .unwrap();
    assert_valid_30(&out.document);
    assert_eq!(out.document["security"], json!([{"key": []}]));
    assert!(
        out.document["components"]["securitySchemes"]
            .get("mtls")
            .is_none()
    );
    assert_eq!(
        change_at(&out.changes, "/security/0").kind,
        ChangeKind::Warning
    );
}

#[test]
fn empty_required_is_removed() {
    let (s, _) = convert_schema(json!({"type": "object", "required": []}));
    assert_eq!(s, json!({"type": "object"}));
}

#[test]
fn swagger_and_openapi_30_pass_through() {
    for (text, version) in [
        (common::fixture("petstore.3.0.json"), SpecVersion::OpenApi30),
        (common::fixture("petstore.2.0.json"), SpecVersion::Swagger2),
    ] {
        let input: Value = serde_json::from_str(&text).unwrap();
        let out = convert(input.clone()).unwrap();
        assert_eq!(out.source_version, version);
        assert_eq!(out.document, input);
        assert!(out.changes.is_empty());
        assert!(out.passed_through());
        assert!(
            out.summary().contains("passed through unchanged"),
            "{}",
            out.summary()
        );
    }
}

#[test]
fn displays() {
    assert_eq!(SpecVersion::Swagger2.to_string(), "2.0");
    assert_eq!(SpecVersion::OpenApi30.to_string(), "3.0.x");
    assert_eq!(SpecVersion::OpenApi31.to_string(), "3.1.x");
    let c = Change {
        pointer: "/a/b".into(),
        kind: ChangeKind::Removed,
        message: "gone".into(),
    };
    assert_eq!(c.to_string(), "/a/b: gone");
    assert_eq!(ChangeKind::MultipleTypes.to_string(), "multiple-types");
}

#[test]
fn id_refs_become_pointers() {
    let out = convert(json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "components": {"schemas": {
            "Pet": {"$id": "https://example.com/schemas/pet", "type": "object"},
            "T": {"type": "array", "items": {"$ref": "https://example.com/schemas/pet"}}
        }}
    }))
    .unwrap();
    assert_valid_30(&out.document);
    assert_eq!(
        out.document["components"]["schemas"]["T"]["items"],
        json!({"$ref": "#/components/schemas/Pet"})
    );
    assert_eq!(
        change_at(&out.changes, "/components/schemas/T/items/$ref").kind,
        ChangeKind::RefRewritten
    );
}

#[test]
fn refs_into_moved_places_are_reported() {
    let out = convert(json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "components": {"schemas": {
            "S": {"type": ["object", "null"], "properties": {"a": {"type": "string"}}},
            "M": {"type": ["object", "array"], "properties": {"a": {"type": "string"}}},
            "T": {"$ref": "#/components/schemas/S/properties/a"},
            "U": {"$ref": "#/components/schemas/M/properties/a"}
        }}
    }))
    .unwrap();
    assert_valid_30(&out.document);
    let warnings: Vec<&str> = out
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Warning)
        .map(|c| c.pointer.as_str())
        .collect();
    // S kept its shape, M's properties moved into `anyOf`.
    assert_eq!(warnings, ["/components/schemas/U/$ref"]);
}

#[test]
fn yaml_input_with_unquoted_status_codes() {
    let out = openapi_convert::convert_str(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        200:\n          description: ok\n          content:\n            application/json:\n              schema: {type: [integer, 'null'], const: 3}\n",
    )
    .unwrap();
    assert_valid_30(&out.document);
    assert_eq!(
        out.document["paths"]["/a"]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
        json!({"type": "integer", "nullable": true, "enum": [3]})
    );
}

#[test]
fn empty_required_is_removed_before_a_type_split() {
    let (s, _) =
        convert_schema(json!({"type": ["object", "array"], "required": [], "minItems": 1}));
    assert_eq!(
        s,
        json!({"anyOf": [{"type": "object"}, {"type": "array", "minItems": 1}]})
    );
}
