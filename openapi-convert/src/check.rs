//! First pass over an OpenAPI 3.1 document: refuses malformed documents (with the JSON
//! pointer of the problem), resolves every local `$ref`, and plans what the conversion
//! moves (`$defs` into `components.schemas`, `$anchor`/`$id` targets).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::ConvertError;
use crate::pointer::{self, LocalRef};

/// The eight HTTP methods a Path Item may hold in both 3.0 and 3.1.
pub(crate) const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// JSON Schema type names.
pub(crate) const TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// Nesting deeper than this is refused (it also bounds the converter's recursion).
pub(crate) const MAX_DEPTH: usize = 200;

/// What the conversion needs to know about the whole document before rewriting it.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Source pointer of each `$defs`/`definitions` entry → its new name in
    /// `components.schemas`.
    pub hoist: HashMap<String, String>,
    /// `$anchor` name → source pointer of the schema that declares it.
    pub anchors: HashMap<String, String>,
    /// `$id` → source pointer of the schema that declares it.
    pub ids: HashMap<String, String>,
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `info` must be an object with string `title` and `version` (checked for every version).
pub(crate) fn check_info(doc: &Value) -> Result<(), ConvertError> {
    let info = match doc.get("info") {
        None => {
            return Err(ConvertError::invalid(
                "/info",
                "missing required field `info`",
            ));
        }
        Some(Value::Object(info)) => info,
        Some(other) => {
            return Err(ConvertError::invalid(
                "/info",
                format!("must be an object, found {}", type_name(other)),
            ));
        }
    };
    for field in ["title", "version"] {
        match info.get(field) {
            Some(Value::String(_)) => {}
            None => {
                return Err(ConvertError::invalid(
                    "/info",
                    format!("missing required field `{field}`"),
                ));
            }
            Some(other) => {
                return Err(ConvertError::invalid(
                    pointer::join("/info", field),
                    format!("must be a string, found {}", type_name(other)),
                ));
            }
        }
    }
    if let Some(license) = info.get("license") {
        let Value::Object(license) = license else {
            return Err(ConvertError::invalid(
                "/info/license",
                format!("must be an object, found {}", type_name(license)),
            ));
        };
        match license.get("name") {
            Some(Value::String(_)) => {}
            None => {
                return Err(ConvertError::invalid(
                    "/info/license",
                    "missing required field `name`",
                ));
            }
            Some(other) => {
                return Err(ConvertError::invalid(
                    "/info/license/name",
                    format!("must be a string, found {}", type_name(other)),
                ));
            }
        }
    }
    Ok(())
}

/// Checks a 3.1 document and plans its conversion.
pub(crate) fn check(doc: &Value) -> Result<Plan, ConvertError> {
    check_info(doc)?;
    let mut c = Checker {
        doc,
        resolved: HashSet::new(),
        ptr: String::with_capacity(256),
        refs: Vec::new(),
        defs: Vec::new(),
        plan: Plan::default(),
        depth: 0,
    };
    c.root(doc)?;
    c.resolve_anchor_refs()?;
    c.plan_hoisting(doc);
    Ok(c.plan)
}

struct Checker<'a> {
    doc: &'a Value,
    /// Local references already resolved.
    resolved: HashSet<String>,
    ptr: String,
    /// (pointer of the `$ref`, the reference) for `#anchor` references, resolved once
    /// every `$anchor` is known.
    refs: Vec<(String, String)>,
    /// Source pointers of `$defs`/`definitions` entries.
    defs: Vec<String>,
    plan: Plan,
    depth: usize,
}

type R = Result<(), ConvertError>;

impl<'a> Checker<'a> {
    fn err(&self, key: Option<&str>, message: String) -> ConvertError {
        let pointer = match key {
            Some(k) => pointer::join(&self.ptr, k),
            None => self.ptr.clone(),
        };
        ConvertError::Invalid { pointer, message }
    }

    fn wrong(&self, key: Option<&str>, expected: &str, found: &Value) -> ConvertError {
        self.err(
            key,
            format!("must be {expected}, found {}", type_name(found)),
        )
    }

    fn object<'v>(&self, v: &'v Value) -> Result<&'v Map<String, Value>, ConvertError> {
        match v {
            Value::Object(m) => Ok(m),
            other => Err(self.wrong(None, "an object", other)),
        }
    }

    fn array<'v>(&self, v: &'v Value) -> Result<&'v [Value], ConvertError> {
        match v {
            Value::Array(a) => Ok(a),
            other => Err(self.wrong(None, "an array", other)),
        }
    }

    /// Runs `f` on `map[key]` with the pointer pushed, if the field is there.
    fn field(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        f: impl FnOnce(&mut Self, &Value) -> R,
    ) -> R {
        if let Some(v) = map.get(key) {
            let len = pointer::push(&mut self.ptr, key);
            f(self, v)?;
            self.ptr.truncate(len);
        }
        Ok(())
    }

    /// `v` must be an object; runs `f` on each entry (skipping `x-` extensions when asked).
    fn each_entry(
        &mut self,
        v: &Value,
        skip_extensions: bool,
        mut f: impl FnMut(&mut Self, &str, &Value) -> R,
    ) -> R {
        let map = self.object(v)?;
        for (k, item) in map {
            if skip_extensions && k.starts_with("x-") {
                continue;
            }
            let len = pointer::push(&mut self.ptr, k);
            f(self, k, item)?;
            self.ptr.truncate(len);
        }
        Ok(())
    }

    /// `v` must be an array; runs `f` on each item.
    fn each_item(&mut self, v: &Value, mut f: impl FnMut(&mut Self, &Value) -> R) -> R {
        let items = self.array(v)?;
        for (i, item) in items.iter().enumerate() {
            let len = pointer::push_index(&mut self.ptr, i);
            f(self, item)?;
            self.ptr.truncate(len);
        }
        Ok(())
    }

    fn string_field(&self, map: &Map<String, Value>, key: &str, required: bool) -> R {
        match map.get(key) {
            Some(Value::String(_)) => Ok(()),
            Some(other) => Err(self.wrong(Some(key), "a string", other)),
            None if required => Err(self.err(None, format!("missing required field `{key}`"))),
            None => Ok(()),
        }
    }

    fn enter(&mut self) -> R {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(None, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn root(&mut self, doc: &Value) -> R {
        let root = self.object(doc)?;
        self.field(root, "servers", Self::servers)?;
        self.field(root, "paths", |c, v| {
            c.each_entry(v, true, |c, k, item| {
                if !k.starts_with('/') {
                    return Err(c.err(None, "a path must start with `/`".into()));
                }
                c.path_item(item)
            })
        })?;
        self.field(root, "webhooks", |c, v| c.object(v).map(|_| ()))?;
        self.field(root, "components", Self::components)?;
        self.field(root, "security", Self::security)?;
        self.field(root, "tags", |c, v| {
            c.each_item(v, |c, tag| {
                let tag = c.object(tag)?;
                c.string_field(tag, "name", true)
            })
        })?;
        self.field(root, "externalDocs", |c, v| {
            let docs = c.object(v)?;
            c.string_field(docs, "url", true)
        })
    }

    fn servers(&mut self, v: &Value) -> R {
        self.each_item(v, |c, server| {
            let server = c.object(server)?;
            c.string_field(server, "url", true)?;
            c.field(server, "variables", |c, vars| {
                c.each_entry(vars, false, |c, _, var| {
                    let var = c.object(var)?;
                    c.string_field(var, "default", true)
                })
            })
        })
    }

    fn security(&mut self, v: &Value) -> R {
        self.each_item(v, |c, req| {
            c.each_entry(req, false, |c, _, scopes| c.array(scopes).map(|_| ()))
        })
    }

    fn components(&mut self, v: &Value) -> R {
        let comps = self.object(v)?;
        self.field(comps, "schemas", |c, m| {
            c.each_entry(m, false, |c, _, s| c.schema(s))
        })?;
        self.field(comps, "responses", |c, m| {
            c.each_entry(m, false, |c, _, r| c.response(r))
        })?;
        self.field(comps, "parameters", |c, m| {
            c.each_entry(m, false, |c, _, p| c.parameter(p))
        })?;
        self.field(comps, "examples", |c, m| {
            c.each_entry(m, false, |c, _, e| c.ref_or_object(e).map(|_| ()))
        })?;
        self.field(comps, "requestBodies", |c, m| {
            c.each_entry(m, false, |c, _, b| c.request_body(b))
        })?;
        self.field(comps, "headers", |c, m| {
            c.each_entry(m, false, |c, _, h| c.header(h))
        })?;
        self.field(comps, "securitySchemes", |c, m| {
            c.each_entry(m, false, |c, _, s| {
                if let Some(s) = c.ref_or_object(s)? {
                    c.string_field(s, "type", true)?;
                }
                Ok(())
            })
        })?;
        self.field(comps, "links", |c, m| {
            c.each_entry(m, false, |c, _, l| c.ref_or_object(l).map(|_| ()))
        })?;
        self.field(comps, "callbacks", |c, m| {
            c.each_entry(m, false, |c, _, cb| c.callback(cb))
        })?;
        self.field(comps, "pathItems", |c, m| {
            c.each_entry(m, false, |c, _, p| c.path_item(p))
        })
    }

    /// Records `$ref` if present. `Ok(None)` for a Reference Object, `Ok(Some(map))`
    /// for an inline object.
    fn ref_or_object<'v>(
        &mut self,
        v: &'v Value,
    ) -> Result<Option<&'v Map<String, Value>>, ConvertError> {
        let map = self.object(v)?;
        if self.reference(map)? {
            Ok(None)
        } else {
            Ok(Some(map))
        }
    }

    /// Resolves the `$ref` of `map`, if any; true if there is one.
    fn reference(&mut self, map: &Map<String, Value>) -> Result<bool, ConvertError> {
        match map.get("$ref") {
            None => Ok(false),
            Some(Value::String(r)) => {
                if r.starts_with('#') && !self.resolved.contains(r.as_str()) {
                    match pointer::parse_local(r) {
                        Some(LocalRef::Pointer(p)) if pointer::resolve(self.doc, &p).is_some() => {
                            self.resolved.insert(r.clone());
                        }
                        Some(LocalRef::Anchor(_)) => {
                            self.refs
                                .push((pointer::join(&self.ptr, "$ref"), r.clone()));
                        }
                        _ => {
                            return Err(ConvertError::UnresolvedRef {
                                pointer: pointer::join(&self.ptr, "$ref"),
                                reference: r.clone(),
                            });
                        }
                    }
                }
                Ok(true)
            }
            Some(other) => Err(self.wrong(Some("$ref"), "a string", other)),
        }
    }

    fn path_item(&mut self, v: &Value) -> R {
        self.enter()?;
        let item = self.object(v)?;
        self.reference(item)?;
        self.field(item, "servers", Self::servers)?;
        self.field(item, "parameters", |c, ps| c.each_item(ps, Self::parameter))?;
        for method in METHODS {
            self.field(item, method, Self::operation)?;
        }
        self.depth -= 1;
        Ok(())
    }

    fn operation(&mut self, v: &Value) -> R {
        let op = self.object(v)?;
        self.field(op, "tags", |c, tags| {
            c.each_item(tags, |c, t| match t {
                Value::String(_) => Ok(()),
                other => Err(c.wrong(None, "a string", other)),
            })
        })?;
        self.string_field(op, "operationId", false)?;
        self.field(op, "parameters", |c, ps| c.each_item(ps, Self::parameter))?;
        self.field(op, "requestBody", Self::request_body)?;
        self.field(op, "responses", |c, rs| {
            c.each_entry(rs, true, |c, _, r| c.response(r))
        })?;
        self.field(op, "callbacks", |c, cbs| {
            c.each_entry(cbs, true, |c, _, cb| c.callback(cb))
        })?;
        self.field(op, "security", Self::security)?;
        self.field(op, "servers", Self::servers)
    }

    fn callback(&mut self, v: &Value) -> R {
        if self.ref_or_object(v)?.is_some() {
            self.each_entry(v, true, |c, _, item| c.path_item(item))?;
        }
        Ok(())
    }

    fn parameter(&mut self, v: &Value) -> R {
        let Some(p) = self.ref_or_object(v)? else {
            return Ok(());
        };
        self.string_field(p, "name", true)?;
        self.string_field(p, "in", true)?;
        if let Some(Value::String(location)) = p.get("in")
            && !["query", "header", "path", "cookie"].contains(&location.as_str())
        {
            return Err(self.err(
                Some("in"),
                format!("must be query, header, path or cookie, found {location:?}"),
            ));
        }
        self.schema_and_content(p)
    }

    fn header(&mut self, v: &Value) -> R {
        match self.ref_or_object(v)? {
            Some(h) => self.schema_and_content(h),
            None => Ok(()),
        }
    }

    fn schema_and_content(&mut self, map: &Map<String, Value>) -> R {
        self.field(map, "schema", Self::schema)?;
        self.field(map, "content", Self::content)?;
        self.field(map, "examples", Self::examples)
    }

    fn examples(&mut self, v: &Value) -> R {
        self.each_entry(v, false, |c, _, e| c.ref_or_object(e).map(|_| ()))
    }

    fn request_body(&mut self, v: &Value) -> R {
        let Some(b) = self.ref_or_object(v)? else {
            return Ok(());
        };
        if !b.contains_key("content") {
            return Err(self.err(None, "missing required field `content`".into()));
        }
        self.field(b, "content", Self::content)
    }

    fn response(&mut self, v: &Value) -> R {
        let Some(r) = self.ref_or_object(v)? else {
            return Ok(());
        };
        self.string_field(r, "description", true)?;
        self.field(r, "headers", |c, hs| {
            c.each_entry(hs, false, |c, _, h| c.header(h))
        })?;
        self.field(r, "content", Self::content)?;
        self.field(r, "links", |c, ls| {
            c.each_entry(ls, false, |c, _, l| c.ref_or_object(l).map(|_| ()))
        })
    }

    fn content(&mut self, v: &Value) -> R {
        self.each_entry(v, false, |c, _, media| {
            let media = c.object(media)?;
            c.field(media, "schema", Self::schema)?;
            c.field(media, "examples", Self::examples)?;
            c.field(media, "encoding", |c, encs| {
                c.each_entry(encs, false, |c, _, enc| {
                    let enc = c.object(enc)?;
                    c.field(enc, "headers", |c, hs| {
                        c.each_entry(hs, false, |c, _, h| c.header(h))
                    })
                })
            })
        })
    }

    fn schema(&mut self, v: &Value) -> R {
        let map = match v {
            Value::Bool(_) => return Ok(()),
            Value::Object(map) => map,
            other => return Err(self.wrong(None, "a schema (object or boolean)", other)),
        };
        self.enter()?;
        // One pass over the keywords (most schemas have a handful).
        for (key, value) in map {
            let k = key.as_str();
            match k {
                "$ref" => {
                    self.reference(map)?;
                }
                "$anchor" | "$id" => {
                    let Value::String(name) = value else {
                        return Err(self.wrong(Some(k), "a string", value));
                    };
                    let names = if k == "$anchor" {
                        &mut self.plan.anchors
                    } else {
                        &mut self.plan.ids
                    };
                    names.insert(name.clone(), self.ptr.clone());
                }
                "type" => self.schema_type(value)?,
                "properties" | "patternProperties" => {
                    let len = pointer::push(&mut self.ptr, k);
                    self.each_entry(value, false, |c, _, s| c.schema(s))?;
                    self.ptr.truncate(len);
                }
                "$defs" | "definitions" => {
                    let len = pointer::push(&mut self.ptr, k);
                    self.each_entry(value, false, |c, _, s| {
                        c.defs.push(c.ptr.clone());
                        c.schema(s)
                    })?;
                    self.ptr.truncate(len);
                }
                "items" | "additionalProperties" | "not" => {
                    let len = pointer::push(&mut self.ptr, k);
                    self.schema(value)?;
                    self.ptr.truncate(len);
                }
                "prefixItems" | "allOf" | "anyOf" | "oneOf" => {
                    let len = pointer::push(&mut self.ptr, k);
                    self.each_item(value, Self::schema)?;
                    self.ptr.truncate(len);
                }
                "required" => {
                    let len = pointer::push(&mut self.ptr, k);
                    self.each_item(value, |c, name| match name {
                        Value::String(_) => Ok(()),
                        other => Err(c.wrong(None, "a string", other)),
                    })?;
                    self.ptr.truncate(len);
                }
                "enum" if !value.is_array() => {
                    return Err(self.wrong(Some(k), "an array", value));
                }
                "minimum" | "maximum" | "multipleOf" if !value.is_number() => {
                    return Err(self.wrong(Some(k), "a number", value));
                }
                "exclusiveMinimum" | "exclusiveMaximum"
                    if !value.is_number() && !value.is_boolean() =>
                {
                    return Err(self.wrong(Some(k), "a number", value));
                }
                "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
                | "maxProperties"
                    if !value.is_u64() =>
                {
                    return Err(self.wrong(Some(k), "a non-negative integer", value));
                }
                "format" | "pattern" | "title" | "description" if !value.is_string() => {
                    return Err(self.wrong(Some(k), "a string", value));
                }
                "readOnly" | "writeOnly" | "deprecated" | "uniqueItems" | "nullable"
                    if !value.is_boolean() =>
                {
                    return Err(self.wrong(Some(k), "a boolean", value));
                }
                "discriminator" => {
                    let len = pointer::push(&mut self.ptr, k);
                    let d = self.object(value)?;
                    self.string_field(d, "propertyName", true)?;
                    self.ptr.truncate(len);
                }
                _ => {}
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn schema_type(&self, t: &Value) -> R {
        let known = |s: &str| TYPES.contains(&s);
        match t {
            Value::String(s) if known(s) => Ok(()),
            Value::String(s) => Err(self.err(
                Some("type"),
                format!("unknown type {s:?} (expected one of {})", TYPES.join(", ")),
            )),
            Value::Array(list) => {
                for (i, item) in list.iter().enumerate() {
                    match item {
                        Value::String(s) if known(s) => {}
                        other => {
                            let mut p = pointer::join(&self.ptr, "type");
                            pointer::push_index(&mut p, i);
                            return Err(ConvertError::Invalid {
                                pointer: p,
                                message: format!(
                                    "must be one of {}, found {}",
                                    TYPES.join(", "),
                                    match other {
                                        Value::String(s) => format!("{s:?}"),
                                        v => type_name(v).to_owned(),
                                    }
                                ),
                            });
                        }
                    }
                }
                Ok(())
            }
            other => Err(self.wrong(Some("type"), "a string or an array of strings", other)),
        }
    }

    fn resolve_anchor_refs(&self) -> R {
        for (at, reference) in &self.refs {
            let found = match pointer::parse_local(reference) {
                Some(LocalRef::Anchor(a)) => self.plan.anchors.contains_key(&a),
                _ => false,
            };
            if !found {
                return Err(ConvertError::UnresolvedRef {
                    pointer: at.clone(),
                    reference: reference.clone(),
                });
            }
        }
        Ok(())
    }

    /// Names each `$defs` entry in `components.schemas`: `<Owner>_<name>`, made unique.
    fn plan_hoisting(&mut self, doc: &Value) {
        if self.defs.is_empty() {
            return;
        }
        let mut taken: HashSet<String> = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for def in &self.defs {
            let owner = def
                .strip_prefix("/components/schemas/")
                .and_then(|rest| rest.split('/').next())
                .unwrap_or("Schema");
            let name = def.rsplit('/').next().unwrap_or("def");
            let base = sanitize(&format!("{owner}_{name}"));
            let mut candidate = base.clone();
            let mut n = 2;
            while taken.contains(&candidate) {
                candidate = format!("{base}_{n}");
                n += 1;
            }
            taken.insert(candidate.clone());
            self.plan.hoist.insert(def.clone(), candidate);
        }
    }
}

/// Keeps the characters OpenAPI allows in component names (`[a-zA-Z0-9.\-_]`).
fn sanitize(name: &str) -> String {
    // Pointer tokens are escaped (`~0`, `~1`); their `~` becomes `_` here.
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
