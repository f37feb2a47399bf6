//! Second pass: rewrites a checked OpenAPI 3.1 document into OpenAPI 3.0.3 in place,
//! walking it structurally (so only schema positions are treated as schemas).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::check::{METHODS, Plan};
use crate::pointer::{self, LocalRef};
use crate::schema::convert_schema;
use crate::{Change, ChangeKind, TARGET_VERSION};

const ROOT_KEYS: &[&str] = &[
    "openapi",
    "info",
    "servers",
    "paths",
    "components",
    "security",
    "tags",
    "externalDocs",
];
const INFO_KEYS: &[&str] = &[
    "title",
    "description",
    "termsOfService",
    "contact",
    "license",
    "version",
];
const LICENSE_KEYS: &[&str] = &["name", "url"];
const COMPONENT_KEYS: &[&str] = &[
    "schemas",
    "responses",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "securitySchemes",
    "links",
    "callbacks",
];
const PATH_ITEM_KEYS: &[&str] = &[
    "$ref",
    "summary",
    "description",
    "servers",
    "parameters",
    "get",
    "put",
    "post",
    "delete",
    "options",
    "head",
    "patch",
    "trace",
];
const OPERATION_KEYS: &[&str] = &[
    "tags",
    "summary",
    "description",
    "externalDocs",
    "operationId",
    "parameters",
    "requestBody",
    "responses",
    "callbacks",
    "deprecated",
    "security",
    "servers",
];
const PARAMETER_KEYS: &[&str] = &[
    "name",
    "in",
    "description",
    "required",
    "deprecated",
    "allowEmptyValue",
    "style",
    "explode",
    "allowReserved",
    "schema",
    "content",
    "example",
    "examples",
];
const HEADER_KEYS: &[&str] = &[
    "description",
    "required",
    "deprecated",
    "allowEmptyValue",
    "style",
    "explode",
    "allowReserved",
    "schema",
    "content",
    "example",
    "examples",
];
const REQUEST_BODY_KEYS: &[&str] = &["description", "content", "required"];
const RESPONSE_KEYS: &[&str] = &["description", "headers", "content", "links"];
const MEDIA_TYPE_KEYS: &[&str] = &["schema", "example", "examples", "encoding"];
const ENCODING_KEYS: &[&str] = &[
    "contentType",
    "headers",
    "style",
    "explode",
    "allowReserved",
];

/// How deep chains of Path Item references are followed.
const MAX_PATH_ITEM_CHAIN: usize = 16;

/// State of the conversion walk.
pub(crate) struct Ctx<'p> {
    /// JSON pointer of the current position, in source coordinates.
    pub ptr: String,
    pub changes: Vec<Change>,
    pub plan: &'p Plan,
    /// Converted `$defs` entries, to insert into `components.schemas`.
    pub hoisted: Vec<(String, Value)>,
    /// `components.pathItems`, taken out of the document before the walk.
    path_items: Map<String, Value>,
    /// Names of `mutualTLS` security schemes (removed).
    mtls: HashSet<String>,
    /// (pointer, reference) of local references whose target may have moved.
    pub refs_to_check: Vec<(String, String)>,
    /// (from, to): subtrees the conversion moved, in source pointers, innermost first (a
    /// schema is rewritten after its subschemas).
    pub moved: Vec<(String, String)>,
}

impl Ctx<'_> {
    /// Records a change at the current position.
    pub fn change(&mut self, kind: ChangeKind, message: String) {
        self.changes.push(Change {
            pointer: self.ptr.clone(),
            kind,
            message,
        });
    }

    /// Records a change at `current/key`.
    pub fn change_at(&mut self, key: &str, kind: ChangeKind, message: String) {
        self.changes.push(Change {
            pointer: pointer::join(&self.ptr, key),
            kind,
            message,
        });
    }

    /// Notes a local reference (at `current/$ref`) to check once the document is built.
    /// References to a whole component (`#/components/<kind>/<name>`) cannot dangle.
    pub fn note_ref(&mut self, reference: &str) {
        let Some(rest) = reference.strip_prefix("#/components/") else {
            if reference.starts_with('#') {
                self.refs_to_check
                    .push((pointer::join(&self.ptr, "$ref"), reference.to_owned()));
            }
            return;
        };
        let mut parts = rest.split('/');
        let stable = matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(kind), Some(_), None) if COMPONENT_KEYS.contains(&kind)
        );
        if !stable {
            self.refs_to_check
                .push((pointer::join(&self.ptr, "$ref"), reference.to_owned()));
        }
    }

    /// Removes every key that is neither in `allowed` nor an `x-` extension.
    fn retain_known(&mut self, map: &mut Map<String, Value>, allowed: &[&str], what: &str) {
        if map
            .keys()
            .all(|k| k.starts_with("x-") || allowed.contains(&k.as_str()))
        {
            return;
        }
        let ptr = &self.ptr;
        let changes = &mut self.changes;
        map.retain(|k, _| {
            let keep = k.starts_with("x-") || allowed.contains(&k.as_str());
            if !keep {
                changes.push(Change {
                    pointer: pointer::join(ptr, k),
                    kind: ChangeKind::Removed,
                    message: format!("`{k}` is not allowed in an OpenAPI 3.0 {what}; removed"),
                });
            }
            keep
        });
    }

    fn enter(&mut self, key: &str) -> usize {
        pointer::push(&mut self.ptr, key)
    }

    fn enter_index(&mut self, index: usize) -> usize {
        pointer::push_index(&mut self.ptr, index)
    }

    fn leave(&mut self, len: usize) {
        self.ptr.truncate(len);
    }

    /// Runs `f` on `map[key]` with the pointer pushed.
    fn field(
        &mut self,
        map: &mut Map<String, Value>,
        key: &str,
        f: impl FnOnce(&mut Self, &mut Value),
    ) {
        if let Some(v) = map.get_mut(key) {
            let len = self.enter(key);
            f(self, v);
            self.leave(len);
        }
    }

    /// Runs `f` on each entry of the object `v` (skipping `x-` keys when asked).
    fn each_entry(
        &mut self,
        v: &mut Value,
        skip_extensions: bool,
        mut f: impl FnMut(&mut Self, &mut Value),
    ) {
        if let Value::Object(map) = v {
            for (k, item) in map.iter_mut() {
                if skip_extensions && k.starts_with("x-") {
                    continue;
                }
                let len = self.enter(k);
                f(self, item);
                self.leave(len);
            }
        }
    }

    /// Runs `f` on each item of the array `v`.
    fn each_item(&mut self, v: &mut Value, mut f: impl FnMut(&mut Self, &mut Value)) {
        if let Value::Array(items) = v {
            for (i, item) in items.iter_mut().enumerate() {
                let len = self.enter_index(i);
                f(self, item);
                self.leave(len);
            }
        }
    }
}

/// Converts the document in place and returns the changes.
pub(crate) fn convert_document(doc: &mut Value, plan: &Plan) -> Vec<Change> {
    let mut ctx = Ctx {
        ptr: String::with_capacity(256),
        changes: Vec::new(),
        plan,
        hoisted: Vec::new(),
        path_items: Map::new(),
        mtls: HashSet::new(),
        refs_to_check: Vec::new(),
        moved: Vec::new(),
    };
    let Value::Object(root) = doc else {
        return ctx.changes;
    };

    let old = root.insert("openapi".into(), Value::String(TARGET_VERSION.into()));
    let old = old.as_ref().and_then(Value::as_str).unwrap_or("3.1");
    ctx.change_at(
        "openapi",
        ChangeKind::Version,
        format!("`openapi: {old}` → `{TARGET_VERSION}`"),
    );

    if let Some(webhooks) = root.remove("webhooks") {
        let n = webhooks.as_object().map_or(0, Map::len);
        ctx.change_at(
            "webhooks",
            ChangeKind::Removed,
            format!("{n} webhook(s) removed: OpenAPI 3.0 has no webhooks"),
        );
    }

    ctx.field(root, "info", info);
    ctx.field(root, "components", components);
    match root.get_mut("paths") {
        Some(paths) => {
            let len = ctx.enter("paths");
            ctx.each_entry(paths, true, path_item);
            ctx.leave(len);
        }
        None => {
            root.insert("paths".into(), json!({}));
            ctx.change_at(
                "paths",
                ChangeKind::Added,
                "`paths` is required in OpenAPI 3.0; added an empty one".into(),
            );
        }
    }
    ctx.field(root, "security", security);
    ctx.retain_known(root, ROOT_KEYS, "document");

    if !ctx.path_items.is_empty() {
        let names: Vec<&str> = ctx.path_items.keys().map(String::as_str).collect();
        let message = format!(
            "`components.pathItems` ({}) removed: OpenAPI 3.0 has none; references to them were inlined",
            names.join(", ")
        );
        ctx.changes.push(Change {
            pointer: "/components/pathItems".into(),
            kind: ChangeKind::Removed,
            message,
        });
    }

    if !ctx.hoisted.is_empty() {
        let components = root
            .entry("components")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(components) = components {
            let schemas = components
                .entry("schemas")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(schemas) = schemas {
                for (name, schema) in ctx.hoisted.drain(..) {
                    schemas.insert(name, schema);
                }
            }
        }
    }

    for (at, reference) in std::mem::take(&mut ctx.refs_to_check) {
        let found = match pointer::parse_local(&reference) {
            Some(LocalRef::Pointer(p)) => pointer::resolve(doc, &p).is_some(),
            _ => false,
        };
        if !found && let Some(change) = follow_moves(doc, &at, &reference, &ctx.moved) {
            ctx.changes.push(change);
            continue;
        }
        if !found {
            ctx.changes.push(Change {
                pointer: at,
                kind: ChangeKind::Warning,
                message: format!(
                    "reference {reference:?} points at something the conversion moved or removed"
                ),
            });
        }
    }
    ctx.changes
}

/// `ptr` after the moves (each applied once, innermost first).
fn relocated(ptr: &str, moved: &[(String, String)]) -> String {
    let mut ptr = ptr.to_owned();
    for (from, to) in moved {
        if let Some(rest) = ptr.strip_prefix(from.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            ptr = format!("{to}{rest}");
        }
    }
    ptr
}

/// Rewrites the reference at `at` (source pointer of a `$ref`) whose target the conversion
/// moved, when the moves lead to it; the change to report, or `None` to leave it dangling.
fn follow_moves(
    doc: &mut Value,
    at: &str,
    reference: &str,
    moved: &[(String, String)],
) -> Option<Change> {
    let Some(LocalRef::Pointer(target)) = pointer::parse_local(reference) else {
        return None;
    };
    // Only plain references: a percent-encoded one would need encoding again.
    if reference != format!("#{target}") {
        return None;
    }
    let new_target = relocated(&target, moved);
    pointer::resolve(doc, &new_target)?;
    let site = relocated(at, moved);
    let slot = doc.pointer_mut(&site)?;
    if slot.as_str() != Some(reference) {
        return None;
    }
    let new_reference = format!("#{new_target}");
    *slot = Value::String(new_reference.clone());
    Some(Change {
        pointer: site,
        kind: ChangeKind::RefSiblings,
        message: format!(
            "reference {reference:?} → {new_reference:?}: its target moved into `allOf`"
        ),
    })
}

fn info(ctx: &mut Ctx<'_>, v: &mut Value) {
    let Value::Object(info) = v else { return };
    if let Some(Value::Object(license)) = info.get_mut("license") {
        let len = ctx.enter("license");
        if let Some(id) = license.remove("identifier") {
            match id.as_str() {
                Some(id) if !license.contains_key("url") => {
                    let url = format!("https://spdx.org/licenses/{id}.html");
                    ctx.change_at(
                        "identifier",
                        ChangeKind::Removed,
                        format!("`identifier: {id}` → `url: {url}` (3.0 has no SPDX identifier)"),
                    );
                    license.insert("url".into(), Value::String(url));
                }
                _ => ctx.change_at(
                    "identifier",
                    ChangeKind::Removed,
                    "`identifier` removed: OpenAPI 3.0 has no SPDX identifier".into(),
                ),
            }
        }
        ctx.retain_known(license, LICENSE_KEYS, "License Object");
        ctx.leave(len);
    }
    ctx.retain_known(info, INFO_KEYS, "Info Object");
}

fn components(ctx: &mut Ctx<'_>, v: &mut Value) {
    let Value::Object(comps) = v else { return };
    if let Some(Value::Object(items)) = comps.remove("pathItems") {
        ctx.path_items = items;
    }
    if let Some(Value::Object(schemes)) = comps.get_mut("securitySchemes") {
        let len = ctx.enter("securitySchemes");
        let mtls: Vec<String> = schemes
            .iter()
            .filter(|(_, s)| s.get("type").and_then(Value::as_str) == Some("mutualTLS"))
            .map(|(k, _)| k.clone())
            .collect();
        for name in mtls {
            schemes.remove(&name);
            ctx.change_at(
                &name,
                ChangeKind::Removed,
                "security scheme of type `mutualTLS` removed: OpenAPI 3.0 has no such type".into(),
            );
            ctx.mtls.insert(name);
        }
        for (name, scheme) in schemes.iter_mut() {
            let l = ctx.enter(name);
            reference_only(ctx, scheme);
            ctx.leave(l);
        }
        ctx.leave(len);
    }
    ctx.field(comps, "schemas", |ctx, m| {
        ctx.each_entry(m, false, |ctx, s| convert_schema(s, ctx, false));
    });
    ctx.field(comps, "responses", |ctx, m| {
        ctx.each_entry(m, false, response)
    });
    ctx.field(comps, "parameters", |ctx, m| {
        ctx.each_entry(m, false, parameter)
    });
    ctx.field(comps, "examples", |ctx, m| {
        ctx.each_entry(m, false, plain_ref)
    });
    ctx.field(comps, "requestBodies", |ctx, m| {
        ctx.each_entry(m, false, request_body);
    });
    ctx.field(comps, "headers", |ctx, m| ctx.each_entry(m, false, header));
    ctx.field(comps, "links", |ctx, m| ctx.each_entry(m, false, plain_ref));
    ctx.field(comps, "callbacks", |ctx, m| {
        ctx.each_entry(m, false, callback)
    });
    ctx.retain_known(comps, COMPONENT_KEYS, "Components Object");
}

/// If `v` is a Reference Object, drops the siblings of `$ref` (3.1 allows `summary` and
/// `description`) and returns true.
fn reference_only(ctx: &mut Ctx<'_>, v: &mut Value) -> bool {
    let Value::Object(map) = v else { return false };
    let Some(Value::String(reference)) = map.get("$ref") else {
        return false;
    };
    ctx.note_ref(reference);
    if map.len() > 1 {
        let ptr = &ctx.ptr;
        let changes = &mut ctx.changes;
        map.retain(|k, _| {
            let keep = k == "$ref";
            if !keep {
                changes.push(Change {
                    pointer: pointer::join(ptr, k),
                    kind: ChangeKind::Removed,
                    message: format!(
                        "`{k}` next to `$ref` removed: an OpenAPI 3.0 Reference Object has only `$ref`"
                    ),
                });
            }
            keep
        });
    }
    true
}

/// `reference_only` for maps of Example, Link and Security Scheme Objects.
fn plain_ref(ctx: &mut Ctx<'_>, v: &mut Value) {
    reference_only(ctx, v);
}

fn path_item(ctx: &mut Ctx<'_>, v: &mut Value) {
    inline_path_item(ctx, v);
    let Value::Object(item) = v else { return };
    if let Some(Value::String(r)) = item.get("$ref") {
        ctx.note_ref(r);
    }
    ctx.field(item, "parameters", |ctx, ps| ctx.each_item(ps, parameter));
    for method in METHODS {
        ctx.field(item, method, operation);
    }
    ctx.retain_known(item, PATH_ITEM_KEYS, "Path Item Object");
}

/// Replaces a reference to `components.pathItems` by (a copy of) its target; the
/// referencing object's own fields win.
fn inline_path_item(ctx: &mut Ctx<'_>, v: &mut Value) {
    let mut hops = 0;
    while let Some(name) = path_item_ref(v) {
        hops += 1;
        let Some(target) = ctx.path_items.get(&name).cloned() else {
            return;
        };
        if hops > MAX_PATH_ITEM_CHAIN {
            ctx.change_at(
                "$ref",
                ChangeKind::Warning,
                "chain of Path Item references too long; left as is".into(),
            );
            return;
        }
        let Value::Object(mut merged) = target else {
            return;
        };
        // The target's own `$ref` (a chain) is followed on the next turn.
        if let Value::Object(own) = std::mem::take(v) {
            for (k, val) in own {
                if k != "$ref" {
                    merged.insert(k, val);
                }
            }
        }
        *v = Value::Object(merged);
        ctx.change_at(
            "$ref",
            ChangeKind::Inlined,
            format!("reference to `#/components/pathItems/{name}` replaced by its content (3.0 has no reusable Path Items)"),
        );
    }
}

fn path_item_ref(v: &Value) -> Option<String> {
    let r = v.get("$ref")?.as_str()?;
    match pointer::parse_local(r)? {
        LocalRef::Pointer(p) => {
            let name = p.strip_prefix("/components/pathItems/")?;
            if name.contains('/') {
                return None;
            }
            Some(name.replace("~1", "/").replace("~0", "~"))
        }
        LocalRef::Anchor(_) => None,
    }
}

fn operation(ctx: &mut Ctx<'_>, v: &mut Value) {
    let Value::Object(op) = v else { return };
    ctx.field(op, "parameters", |ctx, ps| ctx.each_item(ps, parameter));
    ctx.field(op, "requestBody", request_body);
    let empty = op
        .get("responses")
        .and_then(Value::as_object)
        .is_none_or(|r| r.keys().all(|k| k.starts_with("x-")));
    if empty {
        let responses = op
            .entry("responses")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(responses) = responses {
            responses.insert("default".into(), json!({"description": "Default response"}));
        }
        ctx.change_at(
            "responses",
            ChangeKind::Added,
            "OpenAPI 3.0 requires at least one response; added `default`".into(),
        );
    } else {
        ctx.field(op, "responses", |ctx, rs| {
            ctx.each_entry(rs, true, response)
        });
    }
    ctx.field(op, "callbacks", |ctx, cbs| {
        ctx.each_entry(cbs, true, callback)
    });
    ctx.field(op, "security", security);
    ctx.retain_known(op, OPERATION_KEYS, "Operation Object");
}

fn callback(ctx: &mut Ctx<'_>, v: &mut Value) {
    if !reference_only(ctx, v) {
        ctx.each_entry(v, true, path_item);
    }
}

fn parameter(ctx: &mut Ctx<'_>, v: &mut Value) {
    if reference_only(ctx, v) {
        return;
    }
    let Value::Object(p) = v else { return };
    schema_and_content(ctx, p);
    ctx.retain_known(p, PARAMETER_KEYS, "Parameter Object");
}

fn header(ctx: &mut Ctx<'_>, v: &mut Value) {
    if reference_only(ctx, v) {
        return;
    }
    let Value::Object(h) = v else { return };
    schema_and_content(ctx, h);
    ctx.retain_known(h, HEADER_KEYS, "Header Object");
}

fn schema_and_content(ctx: &mut Ctx<'_>, map: &mut Map<String, Value>) {
    ctx.field(map, "schema", |ctx, s| convert_schema(s, ctx, false));
    ctx.field(map, "content", content);
    ctx.field(map, "examples", |ctx, m| {
        ctx.each_entry(m, false, plain_ref)
    });
}

fn request_body(ctx: &mut Ctx<'_>, v: &mut Value) {
    if reference_only(ctx, v) {
        return;
    }
    let Value::Object(b) = v else { return };
    ctx.field(b, "content", content);
    ctx.retain_known(b, REQUEST_BODY_KEYS, "Request Body Object");
}

fn response(ctx: &mut Ctx<'_>, v: &mut Value) {
    if reference_only(ctx, v) {
        return;
    }
    let Value::Object(r) = v else { return };
    ctx.field(r, "headers", |ctx, hs| ctx.each_entry(hs, false, header));
    ctx.field(r, "content", content);
    ctx.field(r, "links", |ctx, ls| ctx.each_entry(ls, false, plain_ref));
    ctx.retain_known(r, RESPONSE_KEYS, "Response Object");
}

fn content(ctx: &mut Ctx<'_>, v: &mut Value) {
    ctx.each_entry(v, false, |ctx, media| {
        let Value::Object(media) = media else { return };
        ctx.field(media, "schema", |ctx, s| convert_schema(s, ctx, false));
        ctx.field(media, "examples", |ctx, m| {
            ctx.each_entry(m, false, plain_ref)
        });
        ctx.field(media, "encoding", |ctx, encs| {
            ctx.each_entry(encs, false, |ctx, enc| {
                let Value::Object(enc) = enc else { return };
                ctx.field(enc, "headers", |ctx, hs| ctx.each_entry(hs, false, header));
                ctx.retain_known(enc, ENCODING_KEYS, "Encoding Object");
            });
        });
        ctx.retain_known(media, MEDIA_TYPE_KEYS, "Media Type Object");
    });
}

/// Removes security requirements that name a `mutualTLS` scheme (3.0 cannot express them).
fn security(ctx: &mut Ctx<'_>, v: &mut Value) {
    if ctx.mtls.is_empty() {
        return;
    }
    let Value::Array(reqs) = v else { return };
    let mtls = &ctx.mtls;
    let mut removed = Vec::new();
    let mut i = 0;
    reqs.retain(|req| {
        let uses = req
            .as_object()
            .is_some_and(|r| r.keys().any(|k| mtls.contains(k)));
        if uses {
            removed.push(i);
        }
        i += 1;
        !uses
    });
    for i in removed {
        let len = ctx.enter_index(i);
        ctx.change(
            ChangeKind::Warning,
            "security requirement using a `mutualTLS` scheme removed; enforce mTLS on the gateway"
                .into(),
        );
        ctx.leave(len);
    }
}
