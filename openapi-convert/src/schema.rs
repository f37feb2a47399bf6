//! Rewrites one JSON Schema 2020-12 schema (OpenAPI 3.1) into an OpenAPI 3.0 Schema
//! Object. Children are converted first, at their source pointers, then the schema itself.

use serde_json::{Map, Value, json};

use crate::ChangeKind;
use crate::document::Ctx;
use crate::pointer::{self, LocalRef};

/// Keywords that stay next to `allOf` when `$ref` siblings are rewritten.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
    "externalDocs",
    "xml",
    "nullable",
];

const STRING_KEYS: &[&str] = &["minLength", "maxLength", "pattern"];
const NUMBER_KEYS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];
const ARRAY_KEYS: &[&str] = &["items", "minItems", "maxItems", "uniqueItems"];
const OBJECT_KEYS: &[&str] = &[
    "properties",
    "additionalProperties",
    "required",
    "minProperties",
    "maxProperties",
];

/// Converts the schema at `v` (the context's pointer) in place. `allow_bool` keeps a
/// boolean schema as is (OpenAPI 3.0 allows one only for `additionalProperties`).
pub(crate) fn convert_schema(v: &mut Value, ctx: &mut Ctx<'_>, allow_bool: bool) {
    match v {
        Value::Bool(b) if !allow_bool => {
            let b = *b;
            *v = if b { json!({}) } else { json!({"not": {}}) };
            let to = if b { "{}" } else { "{not: {}}" };
            ctx.change(
                ChangeKind::BooleanSchema,
                format!("boolean schema `{b}` → `{to}`"),
            );
        }
        Value::Object(map) => convert_object(map, ctx),
        _ => {}
    }
}

// Keywords seen by `scan`, so that the common schema (nothing to rewrite) costs one
// pass over its keys.
const PROPERTIES: u32 = 1;
const PATTERN_PROPERTIES: u32 = 1 << 1;
const DEFS: u32 = 1 << 2;
const ITEMS: u32 = 1 << 3;
const ADDITIONAL: u32 = 1 << 4;
const NOT: u32 = 1 << 5;
const ALL_OF: u32 = 1 << 6;
const ANY_OF: u32 = 1 << 7;
const ONE_OF: u32 = 1 << 8;
const PREFIX_ITEMS: u32 = 1 << 9;
const REF: u32 = 1 << 10;
const CONST: u32 = 1 << 11;
const EXAMPLES: u32 = 1 << 12;
const EXCLUSIVE: u32 = 1 << 13;
const CONTENT: u32 = 1 << 14;
const TYPE: u32 = 1 << 15;
const LISTS: u32 = 1 << 16;
const UNKNOWN: u32 = 1 << 17;

fn scan(map: &Map<String, Value>) -> u32 {
    let mut seen = 0;
    for k in map.keys() {
        seen |= match k.as_str() {
            "properties" => PROPERTIES,
            "patternProperties" => PATTERN_PROPERTIES | UNKNOWN,
            "$defs" | "definitions" => DEFS | UNKNOWN,
            "items" => ITEMS,
            "additionalProperties" => ADDITIONAL,
            "not" => NOT,
            "allOf" => ALL_OF,
            "anyOf" => ANY_OF,
            "oneOf" => ONE_OF,
            "prefixItems" => PREFIX_ITEMS | UNKNOWN,
            "$ref" => REF,
            "const" => CONST | UNKNOWN,
            "examples" => EXAMPLES | UNKNOWN,
            "exclusiveMinimum" | "exclusiveMaximum" => EXCLUSIVE,
            "contentEncoding" | "contentMediaType" => CONTENT | UNKNOWN,
            "type" => TYPE,
            "required" | "enum" => LISTS,
            k if k.starts_with("x-") || is_schema_key(k) => 0,
            _ => UNKNOWN,
        };
    }
    seen
}

fn is_schema_key(k: &str) -> bool {
    matches!(
        k,
        "$ref"
            | "title"
            | "multipleOf"
            | "maximum"
            | "exclusiveMaximum"
            | "minimum"
            | "exclusiveMinimum"
            | "maxLength"
            | "minLength"
            | "pattern"
            | "maxItems"
            | "minItems"
            | "uniqueItems"
            | "maxProperties"
            | "minProperties"
            | "required"
            | "enum"
            | "type"
            | "not"
            | "allOf"
            | "oneOf"
            | "anyOf"
            | "items"
            | "properties"
            | "additionalProperties"
            | "description"
            | "format"
            | "default"
            | "nullable"
            | "discriminator"
            | "readOnly"
            | "writeOnly"
            | "example"
            | "externalDocs"
            | "deprecated"
            | "xml"
    )
}

fn convert_object(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let seen = scan(map);
    let null_branches = convert_children(map, ctx, seen);
    if seen & DEFS != 0 {
        hoist_defs(map, ctx);
    }
    if seen & REF != 0 {
        rewrite_ref(map, ctx);
    }
    if seen & CONST != 0 {
        const_to_enum(map, ctx);
    }
    if seen & EXAMPLES != 0 {
        examples_to_example(map, ctx);
    }
    if seen & EXCLUSIVE != 0 {
        exclusive_bound(map, ctx, "exclusiveMinimum", "minimum", true);
        exclusive_bound(map, ctx, "exclusiveMaximum", "maximum", false);
    }
    if seen & CONTENT != 0 {
        content_format(map, ctx);
    }
    if seen & PREFIX_ITEMS != 0 {
        prefix_items(map, ctx);
    }
    if seen & PATTERN_PROPERTIES != 0 {
        pattern_properties(map, ctx);
    }
    if null_branches & ANY_OF != 0 {
        null_branch(map, ctx, "anyOf");
    }
    if null_branches & ONE_OF != 0 {
        null_branch(map, ctx, "oneOf");
    }
    // Before `schema_type`, which copies `required` into the branches of a split.
    if seen & (LISTS | CONST) != 0 {
        lists(map, ctx);
    }
    if seen & TYPE != 0 {
        schema_type(map, ctx);
    }
    if seen & UNKNOWN != 0 {
        drop_unknown(map, ctx);
    }
    if seen & REF != 0 {
        ref_siblings(map, ctx);
    }
}

/// Converts the subschemas; returns `ANY_OF`/`ONE_OF` for the lists from which
/// `{type: null}` branches were removed.
fn convert_children(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>, seen: u32) -> u32 {
    for (bit, key) in [
        (PROPERTIES, "properties"),
        (PATTERN_PROPERTIES, "patternProperties"),
        (DEFS, "$defs"),
        (DEFS, "definitions"),
    ] {
        if seen & bit == 0 {
            continue;
        }
        if let Some(Value::Object(children)) = map.get_mut(key) {
            let len = pointer::push(&mut ctx.ptr, key);
            for (name, child) in children.iter_mut() {
                let l = pointer::push(&mut ctx.ptr, name);
                convert_schema(child, ctx, false);
                ctx.ptr.truncate(l);
            }
            ctx.ptr.truncate(len);
        }
    }
    // With `prefixItems`, a boolean `items` is folded by `prefix_items`.
    let tuple = seen & PREFIX_ITEMS != 0;
    for (bit, key, allow_bool) in [
        (ITEMS, "items", tuple),
        (ADDITIONAL, "additionalProperties", true),
        (NOT, "not", false),
    ] {
        if seen & bit == 0 {
            continue;
        }
        if let Some(child) = map.get_mut(key) {
            let len = pointer::push(&mut ctx.ptr, key);
            convert_schema(child, ctx, allow_bool);
            ctx.ptr.truncate(len);
        }
    }
    let mut null_branches = 0;
    for (bit, key) in [
        (ALL_OF, "allOf"),
        (ANY_OF, "anyOf"),
        (ONE_OF, "oneOf"),
        (PREFIX_ITEMS, "prefixItems"),
    ] {
        if seen & bit == 0 {
            continue;
        }
        let Some(Value::Array(list)) = map.get_mut(key) else {
            continue;
        };
        let len = pointer::push(&mut ctx.ptr, key);
        let nullable_list = bit == ANY_OF || bit == ONE_OF;
        let mut nulls = 0;
        for (i, child) in list.iter_mut().enumerate() {
            if nullable_list && is_null_branch(child) {
                *child = Value::Null;
                nulls += 1;
                continue;
            }
            let l = pointer::push_index(&mut ctx.ptr, i);
            convert_schema(child, ctx, false);
            ctx.ptr.truncate(l);
        }
        ctx.ptr.truncate(len);
        if nulls > 0 {
            list.retain(|c| !c.is_null());
            null_branches |= bit;
        }
    }
    null_branches
}

/// `{type: "null"}` (possibly with a title or description), as in
/// `anyOf: [{$ref: …}, {type: "null"}]`.
fn is_null_branch(v: &Value) -> bool {
    let Value::Object(m) = v else { return false };
    let null_type = match m.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => !ts.is_empty() && ts.iter().all(|t| t == "null"),
        _ => false,
    };
    null_type
        && m.keys()
            .all(|k| matches!(k.as_str(), "type" | "title" | "description"))
}

fn hoist_defs(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    for key in ["$defs", "definitions"] {
        let Some(defs) = map.remove(key) else {
            continue;
        };
        let Value::Object(defs) = defs else {
            ctx.change_at(key, ChangeKind::Removed, format!("`{key}` removed"));
            continue;
        };
        let len = pointer::push(&mut ctx.ptr, key);
        for (name, schema) in defs {
            let l = pointer::push(&mut ctx.ptr, &name);
            match ctx.plan.hoist.get(&ctx.ptr) {
                Some(new_name) => {
                    let new_name = new_name.clone();
                    ctx.change(
                        ChangeKind::Hoisted,
                        format!("`{key}/{name}` moved to `#/components/schemas/{new_name}`"),
                    );
                    ctx.hoisted.push((new_name, schema));
                }
                None => ctx.change(
                    ChangeKind::Removed,
                    format!("`{key}/{name}` removed: OpenAPI 3.0 has no `{key}`"),
                ),
            }
            ctx.ptr.truncate(l);
        }
        ctx.ptr.truncate(len);
    }
}

/// Points references at moved `$defs`, and `$anchor`/`$id` references at JSON pointers.
fn rewrite_ref(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let Some(Value::String(reference)) = map.get_mut("$ref") else {
        return;
    };
    if let Some(new) = new_target(ctx, reference) {
        ctx.change_at(
            "$ref",
            ChangeKind::RefRewritten,
            format!("`$ref: {reference}` → `{new}`"),
        );
        *reference = new;
    }
    ctx.note_ref(reference);
}

fn new_target(ctx: &Ctx<'_>, reference: &str) -> Option<String> {
    let plan = ctx.plan;
    if plan.hoist.is_empty() && plan.anchors.is_empty() && plan.ids.is_empty() {
        return None;
    }
    let (target, renamed) = match pointer::parse_local(reference) {
        Some(LocalRef::Pointer(p)) => (p, false),
        Some(LocalRef::Anchor(a)) => (plan.anchors.get(&a)?.clone(), true),
        None => (plan.ids.get(reference)?.clone(), true),
    };
    // The longest prefix of the target that is a hoisted `$defs` entry.
    let mut end = target.len();
    loop {
        if let Some(name) = plan.hoist.get(&target[..end]) {
            let mut new = String::from("/components/schemas");
            pointer::push(&mut new, name);
            new.push_str(&target[end..]);
            return Some(pointer::to_fragment(&new));
        }
        match target[..end].rfind('/') {
            Some(0) | None => break,
            Some(i) => end = i,
        }
    }
    renamed.then(|| pointer::to_fragment(&target))
}

fn const_to_enum(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let Some(value) = map.remove("const") else {
        return;
    };
    let shown = short(&value);
    let message = match map.get("enum") {
        Some(Value::Array(values)) if !values.contains(&value) => {
            format!(
                "`const: {shown}` → `enum: [{shown}]` (the `enum` beside it, which lacked it, replaced)"
            )
        }
        _ => format!("`const: {shown}` → `enum: [{shown}]`"),
    };
    map.insert("enum".into(), Value::Array(vec![value]));
    ctx.change_at("const", ChangeKind::Const, message);
}

fn examples_to_example(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let Some(examples) = map.remove("examples") else {
        return;
    };
    let (kind, message) = match examples {
        Value::Array(list) if list.is_empty() => {
            (ChangeKind::Removed, "empty `examples` removed".to_owned())
        }
        Value::Array(_) if map.contains_key("example") => (
            ChangeKind::Examples,
            "`examples` removed; the existing `example` kept".to_owned(),
        ),
        Value::Array(list) => {
            let n = list.len();
            if let Some(first) = list.into_iter().next() {
                map.insert("example".into(), first);
            }
            (
                ChangeKind::Examples,
                format!("`examples` → `example` (the first of {n})"),
            )
        }
        _ => (
            ChangeKind::Removed,
            "`examples` that is not an array removed".to_owned(),
        ),
    };
    ctx.change_at("examples", kind, message);
}

/// Numeric `exclusiveMinimum: x` → `minimum: x, exclusiveMinimum: true` (likewise max),
/// unless the inclusive bound beside it is already tighter.
fn exclusive_bound(
    map: &mut Map<String, Value>,
    ctx: &mut Ctx<'_>,
    key: &str,
    bound: &str,
    lower: bool,
) {
    let Some(Value::Number(x)) = map.get(key) else {
        return;
    };
    let x = x.clone();
    let xf = x.as_f64().unwrap_or(0.0);
    let existing = map.get(bound).and_then(Value::as_f64);
    match existing {
        Some(b) if (lower && b > xf) || (!lower && b < xf) => {
            map.remove(key);
            ctx.change_at(
                key,
                ChangeKind::ExclusiveBound,
                format!("`{key}: {x}` removed: `{bound}: {b}` beside it is tighter"),
            );
        }
        _ => {
            map.insert(bound.into(), Value::Number(x.clone()));
            map.insert(key.into(), Value::Bool(true));
            ctx.change_at(
                key,
                ChangeKind::ExclusiveBound,
                format!("`{key}: {x}` → `{bound}: {x}` + `{key}: true`"),
            );
        }
    }
}

/// `contentEncoding: base64` → `format: byte`; binary `contentMediaType` → `format: binary`.
fn content_format(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let encoding = map.remove("contentEncoding");
    let media = map.remove("contentMediaType");
    if encoding.is_none() && media.is_none() {
        return;
    }
    let enc = encoding.as_ref().and_then(Value::as_str);
    let media = media.as_ref().and_then(Value::as_str);
    let format = match (enc, media) {
        (Some(e), _) if e.eq_ignore_ascii_case("base64") => Some("byte"),
        (Some(e), _) if e.eq_ignore_ascii_case("binary") => Some("binary"),
        (None, Some(m)) if is_binary_media(m) => Some("binary"),
        _ => None,
    };
    let what = match (enc, media) {
        (Some(e), Some(m)) => format!("`contentEncoding: {e}`, `contentMediaType: {m}`"),
        (Some(e), None) => format!("`contentEncoding: {e}`"),
        (None, Some(m)) => format!("`contentMediaType: {m}`"),
        (None, None) => "`contentEncoding`/`contentMediaType`".to_owned(),
    };
    let key = if encoding.is_some() {
        "contentEncoding"
    } else {
        "contentMediaType"
    };
    match format {
        Some(f) if !map.contains_key("format") => {
            map.insert("format".into(), Value::String(f.into()));
            ctx.change_at(
                key,
                ChangeKind::ContentFormat,
                format!("{what} → `format: {f}`"),
            );
        }
        Some(_) => ctx.change_at(
            key,
            ChangeKind::Removed,
            format!("{what} removed (`format` already set)"),
        ),
        None => ctx.change_at(
            key,
            ChangeKind::Removed,
            format!("{what} removed: no OpenAPI 3.0 format for it"),
        ),
    }
}

fn is_binary_media(media: &str) -> bool {
    let m = media.to_ascii_lowercase();
    let textual = m.starts_with("text/")
        || ["json", "xml", "yaml", "javascript", "x-www-form-urlencoded"]
            .iter()
            .any(|t| m.contains(t));
    !textual
}

/// `prefixItems` → `items` (the union of the positions' schemas); a closed tuple
/// (`items: false`) also bounds `maxItems`.
fn prefix_items(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let Some(prefix) = map.remove("prefixItems") else {
        return;
    };
    let Value::Array(mut branches) = prefix else {
        ctx.change_at(
            "prefixItems",
            ChangeKind::Removed,
            "`prefixItems` removed".into(),
        );
        return;
    };
    let n = branches.len();
    let items = map.remove("items");
    let message = match items {
        None | Some(Value::Bool(true)) => {
            map.insert("items".into(), json!({}));
            format!(
                "`prefixItems` ({n} positions) removed: 3.0 has no tuples; items beyond them were unconstrained, so `items: {{}}`"
            )
        }
        Some(Value::Bool(false)) => {
            if n == 0 {
                map.insert("maxItems".into(), json!(0));
            } else {
                map.insert("items".into(), union(branches));
                let max = map.get("maxItems").and_then(Value::as_u64);
                if max.is_none_or(|m| m > n as u64) {
                    map.insert("maxItems".into(), json!(n));
                }
            }
            format!(
                "`prefixItems` ({n} positions, closed) → `items` accepting any of them, `maxItems: {n}`"
            )
        }
        Some(rest) => {
            let mut rest = rest;
            convert_schema(&mut rest, ctx, false);
            branches.push(rest);
            map.insert("items".into(), union(branches));
            format!("`prefixItems` ({n} positions) and `items` → `items` accepting any of them")
        }
    };
    ctx.change_at("prefixItems", ChangeKind::PrefixItems, message);
}

/// One schema if there is one, else `anyOf` of them.
fn union(mut schemas: Vec<Value>) -> Value {
    if schemas.len() == 1
        && let Some(only) = schemas.pop()
    {
        return only;
    }
    json!({ "anyOf": schemas })
}

/// `patternProperties` → their schemas apply to `additionalProperties`.
fn pattern_properties(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let Some(pp) = map.remove("patternProperties") else {
        return;
    };
    let Value::Object(pp) = pp else {
        ctx.change_at(
            "patternProperties",
            ChangeKind::Removed,
            "`patternProperties` removed".into(),
        );
        return;
    };
    if pp.is_empty() {
        ctx.change_at(
            "patternProperties",
            ChangeKind::Removed,
            "empty `patternProperties` removed".into(),
        );
        return;
    }
    let patterns: Vec<String> = pp.keys().cloned().collect();
    let patterns = patterns.join(", ");
    let schemas: Vec<Value> = pp.into_iter().map(|(_, s)| s).collect();
    let message = match map.remove("additionalProperties") {
        Some(Value::Bool(true)) => {
            map.insert("additionalProperties".into(), Value::Bool(true));
            format!(
                "`patternProperties` ({patterns}) removed: 3.0 cannot constrain property names; `additionalProperties: true` kept"
            )
        }
        Some(existing @ Value::Object(_)) => {
            let mut all = vec![existing];
            all.extend(schemas);
            map.insert("additionalProperties".into(), union(all));
            format!(
                "`patternProperties` ({patterns}) folded into `additionalProperties`: 3.0 cannot constrain property names"
            )
        }
        _ => {
            map.insert("additionalProperties".into(), union(schemas));
            format!(
                "`patternProperties` ({patterns}) → `additionalProperties`: 3.0 cannot constrain property names"
            )
        }
    };
    ctx.change_at("patternProperties", ChangeKind::PatternProperties, message);
}

/// After `{type: null}` branches were taken out of `anyOf`/`oneOf`: `nullable: true`.
fn null_branch(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>, key: &str) {
    map.insert("nullable".into(), Value::Bool(true));
    let remaining = match map.get(key) {
        Some(Value::Array(list)) => list.len(),
        _ => 0,
    };
    let message = match remaining {
        0 => {
            map.remove(key);
            set_null_enum(map);
            format!("`{key}` of only `{{type: null}}` → `nullable: true` + `enum: [null]`")
        }
        1 => {
            let only = match map.remove(key) {
                Some(Value::Array(mut list)) => list.pop().unwrap_or(Value::Null),
                _ => Value::Null,
            };
            match only {
                Value::Object(inner)
                    if !inner.contains_key("$ref")
                        && inner.keys().all(|k| !map.contains_key(k)) =>
                {
                    map.extend(inner);
                    format!("`{key}: [schema, {{type: null}}]` → the schema + `nullable: true`")
                }
                other => {
                    match map.get_mut("allOf") {
                        Some(Value::Array(all)) => all.push(other),
                        _ => {
                            map.insert("allOf".into(), Value::Array(vec![other]));
                        }
                    }
                    format!(
                        "`{key}: [schema, {{type: null}}]` → `allOf: [schema]` + `nullable: true`"
                    )
                }
            }
        }
        _ => format!("`{{type: null}}` branch of `{key}` → `nullable: true`"),
    };
    ctx.change_at(key, ChangeKind::NullBranch, message);
}

/// Only null is valid: whatever `enum` said, `enum: [null]` (with `nullable: true`).
fn set_null_enum(map: &mut Map<String, Value>) {
    map.insert("enum".into(), json!([null]));
}

fn schema_type(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let (mut types, has_null) = match map.get("type") {
        Some(Value::String(t)) if t == "null" => (Vec::new(), true),
        Some(Value::Array(list)) => {
            let mut types: Vec<String> = Vec::new();
            let mut has_null = false;
            for t in list.iter().filter_map(Value::as_str) {
                if t == "null" {
                    has_null = true;
                } else if !types.iter().any(|x| x == t) {
                    types.push(t.to_owned());
                }
            }
            (types, has_null)
        }
        _ => return,
    };
    let shown = map.get("type").map(short).unwrap_or_default();
    match types.len() {
        0 if has_null => {
            map.remove("type");
            map.insert("nullable".into(), Value::Bool(true));
            set_null_enum(map);
            ctx.change_at(
                "type",
                ChangeKind::NullType,
                format!(
                    "`type: {shown}` → `nullable: true` + `enum: [null]` (3.0 has no null type)"
                ),
            );
        }
        0 => {
            map.remove("type");
            ctx.change_at(
                "type",
                ChangeKind::TypeList,
                "empty `type` list removed".into(),
            );
        }
        1 => {
            let t = types.swap_remove(0);
            let message = if has_null {
                map.insert("nullable".into(), Value::Bool(true));
                format!("`type: {shown}` → `type: {t}` + `nullable: true`")
            } else {
                format!("`type: {shown}` → `type: {t}`")
            };
            map.insert("type".into(), Value::String(t));
            let kind = if has_null {
                ChangeKind::Nullable
            } else {
                ChangeKind::TypeList
            };
            ctx.change_at("type", kind, message);
        }
        n => {
            split_types(map, &types, has_null);
            ctx.change_at(
                "type",
                ChangeKind::MultipleTypes,
                format!("`type: {shown}` → `anyOf` of {n} single-type schemas"),
            );
        }
    }
}

fn keys_for(t: &str) -> &'static [&'static str] {
    match t {
        "string" => STRING_KEYS,
        "number" | "integer" => NUMBER_KEYS,
        "array" => ARRAY_KEYS,
        "object" => OBJECT_KEYS,
        _ => &[],
    }
}

fn value_has_type(v: &Value, t: &str) -> bool {
    match (v, t) {
        (Value::String(_), "string")
        | (Value::Bool(_), "boolean")
        | (Value::Array(_), "array")
        | (Value::Object(_), "object")
        | (Value::Number(_), "number") => true,
        (Value::Number(n), "integer") => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// `type: [a, b, …]` → `anyOf: [{type: a, …}, {type: b, …}]`, each branch with the
/// keywords that apply to its type (and the `enum` values of its type).
fn split_types(map: &mut Map<String, Value>, types: &[String], has_null: bool) {
    map.remove("type");
    let mut moved = Map::new();
    for key in STRING_KEYS
        .iter()
        .chain(NUMBER_KEYS)
        .chain(ARRAY_KEYS)
        .chain(OBJECT_KEYS)
    {
        if let Some(v) = map.remove(*key) {
            moved.insert((*key).to_owned(), v);
        }
    }
    let format = map.remove("format");
    let format_types: Vec<&str> = match format.as_ref().and_then(Value::as_str) {
        Some("int32" | "int64") => vec!["integer", "number"],
        Some("float" | "double") => vec!["number", "integer"],
        Some(_) => vec!["string"],
        None => Vec::new(),
    };
    let format_goes_anywhere = !types.iter().any(|t| format_types.contains(&t.as_str()));
    let values = match map.remove("enum") {
        Some(Value::Array(values)) => Some(values),
        _ => None,
    };
    let mut branches = Vec::with_capacity(types.len());
    for t in types {
        let mut branch = Map::new();
        branch.insert("type".into(), Value::String(t.clone()));
        for key in keys_for(t) {
            if let Some(v) = moved.get(*key) {
                branch.insert((*key).to_owned(), v.clone());
            }
        }
        if let Some(f) = &format
            && (format_goes_anywhere || format_types.contains(&t.as_str()))
        {
            branch.insert("format".into(), f.clone());
        }
        if has_null {
            branch.insert("nullable".into(), Value::Bool(true));
        }
        if let Some(values) = &values {
            let mine: Vec<Value> = values
                .iter()
                .filter(|v| value_has_type(v, t) || (has_null && v.is_null()))
                .cloned()
                .collect();
            if mine.iter().all(Value::is_null) {
                continue;
            }
            branch.insert("enum".into(), Value::Array(mine));
        }
        branches.push(Value::Object(branch));
    }
    if branches.is_empty() {
        // No `enum` value has any of the types: only null, or nothing, is valid.
        if has_null {
            map.insert("nullable".into(), Value::Bool(true));
            map.insert("enum".into(), json!([null]));
        } else {
            map.insert("not".into(), json!({}));
        }
        return;
    }
    if map.contains_key("anyOf") {
        let wrapped = json!({ "anyOf": branches });
        match map.get_mut("allOf") {
            Some(Value::Array(all)) => all.push(wrapped),
            _ => {
                map.insert("allOf".into(), Value::Array(vec![wrapped]));
            }
        }
    } else {
        map.insert("anyOf".into(), Value::Array(branches));
    }
}

/// 3.0 wants `required` and `enum` non-empty, and `required` without duplicates.
fn lists(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    if let Some(Value::Array(required)) = map.get_mut("required") {
        if required.is_empty() {
            map.remove("required");
            ctx.change_at(
                "required",
                ChangeKind::Removed,
                "empty `required` removed (3.0 wants at least one name)".into(),
            );
        } else {
            let before = required.len();
            let mut seen = std::collections::HashSet::new();
            required.retain(|r| seen.insert(r.as_str().unwrap_or_default().to_owned()));
            if required.len() != before {
                ctx.change_at(
                    "required",
                    ChangeKind::Removed,
                    "duplicate names in `required` removed".into(),
                );
            }
        }
    }
    if let Some(Value::Array(values)) = map.get("enum")
        && values.is_empty()
    {
        map.remove("enum");
        map.insert("not".into(), json!({}));
        ctx.change_at(
            "enum",
            ChangeKind::Removed,
            "empty `enum` (nothing valid) → `not: {}`".into(),
        );
    }
}

fn drop_unknown(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    let known = |k: &str| k.starts_with("x-") || is_schema_key(k);
    if map.keys().all(|k| known(k)) {
        return;
    }
    let ptr = &ctx.ptr;
    let changes = &mut ctx.changes;
    map.retain(|k, _| {
        let keep = known(k);
        if !keep {
            changes.push(crate::Change {
                pointer: pointer::join(ptr, k),
                kind: ChangeKind::Removed,
                message: format!("`{k}` has no OpenAPI 3.0 equivalent; removed"),
            });
        }
        keep
    });
}

/// `{$ref, siblings…}` → `{allOf: [{$ref}, {assertions…}], annotations…}`.
fn ref_siblings(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    if map.len() < 2 {
        return;
    }
    let Some(reference) = map.remove("$ref") else {
        return;
    };
    let siblings: Vec<String> = map.keys().cloned().collect();
    let moving: Vec<String> = siblings
        .iter()
        .filter(|k| !k.starts_with("x-") && !ANNOTATIONS.contains(&k.as_str()))
        .cloned()
        .collect();
    let mut rest = Map::new();
    for key in &moving {
        if let Some(v) = map.remove(key) {
            rest.insert(key.clone(), v);
        }
    }
    // Where things go, for the references into them: `$ref` to `allOf/0`, the branches of
    // an existing `allOf` one place down, the other assertions into the last branch.
    let at = |path: &[&str]| {
        path.iter().fold(ctx.ptr.clone(), |ptr, token| {
            crate::pointer::join(&ptr, token)
        })
    };
    let mut moves = vec![(at(&["$ref"]), at(&["allOf", "0", "$ref"]))];
    let mut all_of = vec![json!({ "$ref": reference })];
    if let Some(Value::Array(existing)) = rest.remove("allOf") {
        // Last first, so that no branch is moved twice.
        for i in (0..existing.len()).rev() {
            let (from, to) = (i.to_string(), (i + 1).to_string());
            moves.push((at(&["allOf", &from]), at(&["allOf", &to])));
        }
        all_of.extend(existing);
    }
    if !rest.is_empty() {
        let last = all_of.len().to_string();
        for key in rest.keys() {
            moves.push((at(&[key]), at(&["allOf", &last, key])));
        }
        all_of.push(Value::Object(rest));
    }
    ctx.moved.extend(moves);
    map.insert("allOf".into(), Value::Array(all_of));
    let shown = siblings.join(", ");
    ctx.change_at(
        "$ref",
        ChangeKind::RefSiblings,
        format!(
            "`$ref` with siblings ({shown}) → `allOf: [{{$ref}}, …]` (3.0 ignores `$ref` siblings)"
        ),
    );
}

/// A value as compact JSON, cut to 60 characters, for messages.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 60 {
        s
    } else {
        let mut cut: String = s.chars().take(57).collect();
        cut.push_str("...");
        cut
    }
}
