//! OpenAPI 3.1 → 3.0 conversion.
//!
//! [`convert`] rewrites an OpenAPI 3.1 document, held as a [`serde_json::Value`], into an
//! OpenAPI 3.0.3 document and lists every change it made ([`Change`]): JSON Schema 2020-12
//! constructs become their OpenAPI 3.0 equivalents (`type: [T, "null"]` → `nullable`,
//! `const` → `enum`, numeric `exclusiveMinimum` → boolean form, `$ref` siblings → `allOf`,
//! …) and what 3.0 cannot express is removed and reported. Only schema-object positions are
//! rewritten as schemas: the document is walked structurally, so a property *named* `const`
//! is left alone. Swagger 2.0 and OpenAPI 3.0 documents pass through untouched.
//!
//! Malformed documents are refused with a [`ConvertError`] that names the JSON pointer of
//! the problem (missing `openapi`/`info`, wrong types, unresolvable local `$ref`s).

mod check;
mod cli;
mod document;
mod pointer;
mod schema;

use std::fmt;

use serde_json::Value;

pub use cli::run_cli;

/// The version of the source document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecVersion {
    /// Swagger 2.0 (`swagger: "2.0"`).
    Swagger2,
    /// OpenAPI 3.0.x.
    OpenApi30,
    /// OpenAPI 3.1.x.
    OpenApi31,
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpecVersion::Swagger2 => "2.0",
            SpecVersion::OpenApi30 => "3.0.x",
            SpecVersion::OpenApi31 => "3.1.x",
        })
    }
}

/// The `openapi` version written into converted documents.
pub const TARGET_VERSION: &str = "3.0.3";

/// What kind of rewrite a [`Change`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// `openapi: 3.1.x` → `3.0.3`.
    Version,
    /// `type: [T, "null"]` → `type: T` + `nullable: true`.
    Nullable,
    /// `type: [T]` → `type: T`; an empty type list removed.
    TypeList,
    /// Several non-null types → `anyOf` of single-type schemas.
    MultipleTypes,
    /// `type: "null"` alone → `nullable: true` + `enum: [null]`.
    NullType,
    /// A `{type: "null"}` branch of `anyOf`/`oneOf` → `nullable: true`.
    NullBranch,
    /// `const` → single-value `enum`.
    Const,
    /// Numeric `exclusiveMinimum`/`exclusiveMaximum` → boolean form.
    ExclusiveBound,
    /// Schema `examples` (array) → `example` (first).
    Examples,
    /// `$ref` with sibling keywords → `allOf`.
    RefSiblings,
    /// `contentEncoding`/`contentMediaType` → `format`.
    ContentFormat,
    /// Boolean schema → `{}` or `{not: {}}`.
    BooleanSchema,
    /// `prefixItems` folded into `items`.
    PrefixItems,
    /// `patternProperties` folded into `additionalProperties`.
    PatternProperties,
    /// `$defs` moved into `components.schemas`.
    Hoisted,
    /// A `$ref` target rewritten (moved `$defs`, `$anchor`, `$id`).
    RefRewritten,
    /// A reference to `components.pathItems` replaced by its target.
    Inlined,
    /// A field or keyword that OpenAPI 3.0 cannot express, removed.
    Removed,
    /// A field that OpenAPI 3.0 requires, added.
    Added,
    /// Something the converter could not carry over faithfully (e.g. a `$ref` whose
    /// target was removed); the output may need a look.
    Warning,
}

impl ChangeKind {
    /// A short kebab-case name, stable for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Version => "version",
            ChangeKind::Nullable => "nullable",
            ChangeKind::TypeList => "type-list",
            ChangeKind::MultipleTypes => "multiple-types",
            ChangeKind::NullType => "null-type",
            ChangeKind::NullBranch => "null-branch",
            ChangeKind::Const => "const",
            ChangeKind::ExclusiveBound => "exclusive-bound",
            ChangeKind::Examples => "examples",
            ChangeKind::RefSiblings => "ref-siblings",
            ChangeKind::ContentFormat => "content-format",
            ChangeKind::BooleanSchema => "boolean-schema",
            ChangeKind::PrefixItems => "prefix-items",
            ChangeKind::PatternProperties => "pattern-properties",
            ChangeKind::Hoisted => "hoisted",
            ChangeKind::RefRewritten => "ref-rewritten",
            ChangeKind::Inlined => "inlined",
            ChangeKind::Removed => "removed",
            ChangeKind::Added => "added",
            ChangeKind::Warning => "warning",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change made by the conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// JSON pointer of the changed location, in the *source* document (`""` is the root).
    pub pointer: String,
    /// What kind of change.
    pub kind: ChangeKind,
    /// What was done, for a person.
    pub message: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", pointer::display(&self.pointer), self.message)
    }
}

/// The result of [`convert`].
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The OpenAPI 3.0 document (or the untouched input for 2.0 and 3.0 sources).
    pub document: Value,
    /// The version of the source document.
    pub source_version: SpecVersion,
    /// Every change made, in document order; empty for 2.0 and 3.0 sources.
    pub changes: Vec<Change>,
}

impl Conversion {
    /// Whether the document was passed through untouched (Swagger 2.0 or OpenAPI 3.0).
    pub fn passed_through(&self) -> bool {
        self.source_version != SpecVersion::OpenApi31
    }

    /// A one-line summary: what was converted, or that nothing was.
    pub fn summary(&self) -> String {
        match self.source_version {
            SpecVersion::OpenApi31 => format!(
                "converted OpenAPI {} to {TARGET_VERSION}: {} change(s)",
                self.source_version,
                self.changes.len()
            ),
            SpecVersion::OpenApi30 => {
                "source is OpenAPI 3.0.x: passed through unchanged".to_owned()
            }
            SpecVersion::Swagger2 => "source is Swagger 2.0: passed through unchanged".to_owned(),
        }
    }
}

impl fmt::Display for Conversion {
    /// The report: the summary line, then one line per change.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        for change in &self.changes {
            writeln!(f, "  [{}] {change}", change.kind)?;
        }
        Ok(())
    }
}

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The input is neither JSON nor YAML.
    #[error("failed to parse the document as {format}: {message}")]
    Parse {
        /// `JSON` or `YAML`.
        format: &'static str,
        /// The parser's message (with line and column).
        message: String,
    },
    /// The document is not a well-formed OpenAPI/Swagger document.
    #[error("invalid document at {}: {message}", pointer::display(.pointer))]
    Invalid {
        /// JSON pointer of the problem.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// The `openapi`/`swagger` version is not 2.0, 3.0.x or 3.1.x.
    #[error("unsupported version {version:?} at {}: expected swagger 2.0 or openapi 3.0.x/3.1.x", pointer::display(.pointer))]
    UnsupportedVersion {
        /// `/openapi` or `/swagger`.
        pointer: String,
        /// The version found.
        version: String,
    },
    /// A local `$ref` points at nothing.
    #[error("unresolvable reference {reference:?} at {}", pointer::display(.pointer))]
    UnresolvedRef {
        /// JSON pointer of the `$ref`.
        pointer: String,
        /// The reference.
        reference: String,
    },
}

impl ConvertError {
    /// JSON pointer of the problem, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            ConvertError::Parse { .. } => None,
            ConvertError::Invalid { pointer, .. }
            | ConvertError::UnsupportedVersion { pointer, .. }
            | ConvertError::UnresolvedRef { pointer, .. } => Some(pointer),
        }
    }

    pub(crate) fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        ConvertError::Invalid {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Input format of [`convert_str`] and [`run_cli`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (the input starts with `{`).
    Json,
    /// YAML (anything else).
    Yaml,
}

impl Format {
    /// JSON if the first non-blank character is `{` or `[`, YAML otherwise.
    pub fn detect(input: &str) -> Format {
        match input
            .trim_start_matches('\u{feff}')
            .trim_start()
            .as_bytes()
            .first()
        {
            Some(b'{' | b'[') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Parses JSON or YAML (see [`Format::detect`]) into a value.
pub fn parse(input: &str) -> Result<(Value, Format), ConvertError> {
    let input = input.trim_start_matches('\u{feff}');
    let format = Format::detect(input);
    let value = match format {
        Format::Json => serde_json::from_str(input).map_err(|e| ConvertError::Parse {
            format: "JSON",
            message: e.to_string(),
        })?,
        Format::Yaml => serde_yaml::from_str(input).map_err(|e| ConvertError::Parse {
            format: "YAML",
            message: e.to_string(),
        })?,
    };
    Ok((value, format))
}

/// Detects the version of a document (the root must be an object).
pub fn detect_version(doc: &Value) -> Result<SpecVersion, ConvertError> {
    let Value::Object(root) = doc else {
        return Err(ConvertError::invalid(
            "",
            format!(
                "the document must be an object, found {}",
                check::type_name(doc)
            ),
        ));
    };
    if let Some(v) = root.get("swagger") {
        return match v {
            Value::String(s) if s == "2.0" => Ok(SpecVersion::Swagger2),
            Value::String(s) => Err(ConvertError::UnsupportedVersion {
                pointer: "/swagger".into(),
                version: s.clone(),
            }),
            other => Err(ConvertError::invalid(
                "/swagger",
                format!("must be a string, found {}", check::type_name(other)),
            )),
        };
    }
    match root.get("openapi") {
        None => Err(ConvertError::invalid(
            "/openapi",
            "missing required field `openapi` (nor is there `swagger`)",
        )),
        Some(Value::String(s)) => {
            if s.starts_with("3.0.") {
                Ok(SpecVersion::OpenApi30)
            } else if s.starts_with("3.1.") {
                Ok(SpecVersion::OpenApi31)
            } else {
                Err(ConvertError::UnsupportedVersion {
                    pointer: "/openapi".into(),
                    version: s.clone(),
                })
            }
        }
        Some(other) => Err(ConvertError::invalid(
            "/openapi",
            format!("must be a string, found {}", check::type_name(other)),
        )),
    }
}

/// Converts an OpenAPI 3.1 document to OpenAPI 3.0.3.
///
/// Swagger 2.0 and OpenAPI 3.0 documents are returned untouched with no changes (see
/// [`Conversion::summary`]). A malformed document is refused with the JSON pointer of the
/// problem.
pub fn convert(mut doc: Value) -> Result<Conversion, ConvertError> {
    let source_version = detect_version(&doc)?;
    if source_version != SpecVersion::OpenApi31 {
        check::check_info(&doc)?;
        return Ok(Conversion {
            document: doc,
            source_version,
            changes: Vec::new(),
        });
    }
    let plan = check::check(&doc)?;
    let changes = document::convert_document(&mut doc, &plan);
    Ok(Conversion {
        document: doc,
        source_version,
        changes,
    })
}

/// Parses JSON or YAML and converts it (see [`convert`]).
pub fn convert_str(input: &str) -> Result<Conversion, ConvertError> {
    let (doc, _) = parse(input)?;
    convert(doc)
}
