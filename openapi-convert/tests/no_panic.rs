//! Property tests: no input shaped like OpenAPI makes `convert` panic, and whatever it
//! accepts comes out as valid OpenAPI 3.0.

mod common;

use openapi_convert::{SpecVersion, convert};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "type",
    "properties",
    "items",
    "prefixItems",
    "additionalProperties",
    "patternProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "const",
    "enum",
    "examples",
    "example",
    "$ref",
    "$defs",
    "$id",
    "$anchor",
    "$schema",
    "required",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxItems",
    "format",
    "nullable",
    "contentEncoding",
    "contentMediaType",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "unevaluatedProperties",
    "description",
    "default",
    "readOnly",
    "discriminator",
    "propertyName",
    "a",
    "b",
    "x-ext",
    "get",
    "post",
    "parameters",
    "name",
    "in",
    "schema",
    "responses",
    "200",
    "content",
    "application/json",
    "headers",
    "summary",
    "webhooks",
    "pathItems",
    "/p",
    "callbacks",
];

const STRINGS: &[&str] = &[
    "string",
    "integer",
    "number",
    "boolean",
    "array",
    "object",
    "null",
    "base64",
    "image/png",
    "query",
    "header",
    "#/components/schemas/S",
    "#/components/schemas/T",
    "#/components/schemas/S/$defs/a",
    "#/components/schemas/S/properties/a",
    "#a",
    "#/nope",
    "int64",
    "date-time",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..100).prop_map(|n| json!(n)),
        (-10.0f64..10.0).prop_map(|f| json!(f)),
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        "[a-z]{0,4}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// A schema-ish value: an object made of schema keywords (or a boolean).
fn schema() -> impl Strategy<Value = Value> {
    let leafy = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(&STRINGS[..7]).prop_map(|t| json!({ "type": t })),
        Just(json!({"type": ["string", "null"]})),
        Just(json!({"$ref": "#/components/schemas/T"})),
        Just(json!({"const": 1})),
    ];
    leafy.prop_recursive(5, 64, 5, |inner| {
        let entry = (
            prop::sample::select(KEYS),
            inner.clone(),
            value(),
            any::<u8>(),
        );
        prop::collection::vec(entry, 0..5).prop_map(|entries| {
            let mut m = Map::new();
            for (k, sub, v, seed) in entries {
                // Mostly a value of the keyword's own type, sometimes anything.
                let v = if seed % 5 == 0 { v } else { typed(k, seed, v) };
                let is_schema = matches!(
                    k,
                    "items" | "additionalProperties" | "not" | "if" | "then" | "else"
                );
                let is_list = matches!(k, "allOf" | "anyOf" | "oneOf" | "prefixItems");
                let is_map = matches!(k, "properties" | "patternProperties" | "$defs");
                let val = if is_schema {
                    sub
                } else if is_list {
                    json!([sub])
                } else if is_map {
                    json!({ "a": sub })
                } else {
                    v
                };
                m.insert(k.to_owned(), val);
            }
            Value::Object(m)
        })
    })
}

/// A plausible value for keyword `k`.
fn typed(k: &str, seed: u8, v: Value) -> Value {
    let pick = |options: &[Value]| options[usize::from(seed) % options.len()].clone();
    match k {
        "type" => pick(&[
            json!("string"),
            json!("object"),
            json!("null"),
            json!(["integer", "null"]),
            json!(["string", "number", "array", "null"]),
            json!(["boolean"]),
            json!([]),
        ]),
        "$ref" => pick(&[
            json!("#/components/schemas/S"),
            json!("#/components/schemas/T"),
            json!("#/components/schemas/S/properties/a"),
            json!("#/components/schemas/S/$defs/a"),
        ]),
        "enum" | "examples" => json!([v, 1, "x", null]),
        "required" => pick(&[json!(["a"]), json!([]), json!(["a", "a", "b"])]),
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
            json!(i64::from(seed) - 100)
        }
        "minLength" | "maxItems" => json!(seed),
        "format" => pick(&[json!("int64"), json!("date-time"), json!("float")]),
        "nullable" | "readOnly" => json!(seed.is_multiple_of(2)),
        "discriminator" => json!({"propertyName": "a"}),
        "contentEncoding" => pick(&[json!("base64"), json!("base32")]),
        "contentMediaType" => pick(&[json!("image/png"), json!("text/plain")]),
        "description" | "$id" | "$anchor" | "$schema" => json!("a"),
        _ => v,
    }
}

fn document(s: Value, t: Value, p: Value, r: Value, extra: Value) -> Value {
    let mut d = json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/p": {"get": {
            "parameters": [{"name": "a", "in": "query", "schema": p}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": r}}}}
        }}},
        "components": {"schemas": {"S": s, "T": t}}
    });
    if let (Value::Object(d), Value::Object(extra)) = (&mut d, extra) {
        for (k, v) in extra {
            d.entry(k).or_insert(v);
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_values_never_panic(v in value()) {
        let _ = convert(v);
    }

    #[test]
    fn arbitrary_documents_never_panic(extra in value(), s in value(), p in value()) {
        let _ = convert(document(s, json!({}), p, json!({}), extra));
    }

    #[test]
    fn accepted_documents_convert_to_valid_30(
        s in schema(), t in schema(), p in schema(), r in schema()
    ) {
        if let Ok(out) = convert(document(s, t, p, r, json!({}))) {
            prop_assert_eq!(out.source_version, SpecVersion::OpenApi31);
            let errors = common::errors_30(&out.document);
            prop_assert!(errors.is_empty(), "{}\n{:#}", errors.join("\n"), out.document);
            // And the output is a fixpoint: relabelled 3.1, it converts to itself.
            let mut again = out.document.clone();
            again["openapi"] = json!("3.1.0");
            let second = convert(again).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(second.changes.len(), 1, "{:#?}", second.changes);
            prop_assert_eq!(&second.document, &out.document);
        }
    }
}

/// The property above means something only if the generator yields documents that are
/// accepted: check that a fair share of them is.
#[test]
fn the_schema_generator_yields_accepted_documents() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = (schema(), schema(), schema(), schema());
    let mut accepted = 0;
    let mut changed = 0;
    for _ in 0..300 {
        let (s, t, p, r) = strategy.new_tree(&mut runner).unwrap().current();
        if let Ok(out) = convert(document(s, t, p, r, json!({}))) {
            accepted += 1;
            if out.changes.len() > 1 {
                changed += 1;
            }
        }
    }
    assert!(
        accepted >= 60,
        "only {accepted}/300 generated documents accepted"
    );
    assert!(
        changed >= 30,
        "only {changed}/300 generated documents needed rewriting"
    );
    eprintln!("{accepted}/300 accepted, {changed} rewritten");
}
