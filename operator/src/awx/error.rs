//! Errors of AWX calls.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::gateway::retry::Failure;

/// A failed AWX call.
///
/// Displays as `failed to <operation> on AWX (<base url>): <cause>`.
#[derive(Debug, thiserror::Error)]
#[error("failed to {operation} on AWX ({base_url}): {kind}")]
pub struct AwxError {
    /// What was attempted, e.g. `launch job template 7 ("deploy-api")`.
    pub operation: String,
    /// AWX's base URL.
    pub base_url: String,
    /// What went wrong.
    pub kind: AwxErrorKind,
}

/// What went wrong in an AWX call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwxErrorKind {
    /// The launch needs variables the extra vars do not give (named).
    MissingVariables(Vec<String>),
    /// The launch needs passwords the operator cannot give (named).
    PasswordsNeeded(Vec<String>),
    /// No job template of that name.
    TemplateNotFound(String),
    /// Several job templates of that name (in different organizations); their ids.
    AmbiguousTemplate {
        /// The name looked up.
        name: String,
        /// The ids of the templates bearing it.
        ids: Vec<u64>,
    },
    /// AWX answered with an error status.
    Status {
        /// The HTTP status code.
        status: u16,
        /// AWX's `detail`, or its field errors, or the raw body.
        detail: String,
        /// Attempts made before giving up.
        attempts: usize,
    },
    /// No answer within the per-request timeout.
    Timeout {
        /// The per-request timeout.
        after: Duration,
        /// Attempts made before giving up.
        attempts: usize,
    },
    /// AWX could not be reached.
    Connect {
        /// The transport error.
        message: String,
        /// Attempts made before giving up.
        attempts: usize,
    },
    /// The answer was not what the documented API returns.
    Decode(String),
    /// The request could not be built or sent.
    Request(String),
}

impl fmt::Display for AwxErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tries = |f: &mut fmt::Formatter<'_>, attempts: usize| {
            if attempts > 1 {
                write!(f, " (after {attempts} attempts)")
            } else {
                Ok(())
            }
        };
        match self {
            Self::MissingVariables(names) => write!(
                f,
                "the launch needs variables that were not given: {}",
                names.join(", ")
            ),
            Self::PasswordsNeeded(names) => write!(
                f,
                "the launch needs passwords the operator cannot give: {}",
                names.join(", ")
            ),
            Self::TemplateNotFound(name) => write!(f, "no job template is named {name:?}"),
            Self::AmbiguousTemplate { name, ids } => write!(
                f,
                "{} job templates are named {name:?} (ids {}); refer to one by id",
                ids.len(),
                ids.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Status {
                status,
                detail,
                attempts,
            } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "AWX answered {status} {reason}")?;
                if !detail.trim().is_empty() {
                    write!(f, ": {}", detail.trim())?;
                }
                tries(f, *attempts)
            }
            Self::Timeout { after, attempts } => {
                write!(f, "AWX did not answer within {after:?}")?;
                tries(f, *attempts)
            }
            Self::Connect { message, attempts } => {
                write!(f, "AWX could not be reached: {message}")?;
                tries(f, *attempts)
            }
            Self::Decode(message) => write!(f, "unexpected answer: {message}"),
            Self::Request(message) => write!(f, "the request could not be sent: {message}"),
        }
    }
}

impl AwxError {
    /// Whether a later retry may succeed (timeouts, connection errors, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            AwxErrorKind::Timeout { .. } | AwxErrorKind::Connect { .. } => true,
            AwxErrorKind::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// Whether the template or job does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.kind,
            AwxErrorKind::TemplateNotFound(_) | AwxErrorKind::Status { status: 404, .. }
        )
    }

    /// Whether AWX refused the token (401) or its permissions (403).
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self.kind,
            AwxErrorKind::Status {
                status: 401 | 403,
                ..
            }
        )
    }

    /// The variables a launch is missing, when that is the error.
    pub fn missing_variables(&self) -> Option<&[String]> {
        match &self.kind {
            AwxErrorKind::MissingVariables(names) => Some(names),
            _ => None,
        }
    }

    /// The HTTP status AWX answered, if it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            AwxErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short label for metrics and Event reasons.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            AwxErrorKind::MissingVariables(_) => "MissingVariables",
            AwxErrorKind::PasswordsNeeded(_) => "PasswordsNeeded",
            AwxErrorKind::TemplateNotFound(_) => "NotFound",
            AwxErrorKind::AmbiguousTemplate { .. } => "AmbiguousTemplate",
            AwxErrorKind::Status { status: 404, .. } => "NotFound",
            AwxErrorKind::Status {
                status: 401 | 403, ..
            } => "Unauthorized",
            AwxErrorKind::Status { status: 429, .. } => "Throttled",
            AwxErrorKind::Status { status, .. } if *status >= 500 => "AwxError",
            AwxErrorKind::Status { .. } => "Rejected",
            AwxErrorKind::Timeout { .. } => "Timeout",
            AwxErrorKind::Connect { .. } => "Unreachable",
            AwxErrorKind::Decode(_) => "UnexpectedAnswer",
            AwxErrorKind::Request(_) => "RequestFailed",
        }
    }
}

impl AwxErrorKind {
    /// Turns a failed attempt (after its retries) into an error kind. A 400 naming
    /// `variables_needed_to_start` becomes [`AwxErrorKind::MissingVariables`].
    pub fn from_failure(failure: Failure, attempts: usize) -> Self {
        match failure {
            Failure::Connect(message) => Self::Connect { message, attempts },
            Failure::Timeout(after) => Self::Timeout { after, attempts },
            Failure::Status { status, body, .. } => {
                let value = serde_json::from_str::<Value>(&body).ok();
                if status == 400
                    && let Some(names) = value
                        .as_ref()
                        .and_then(|v| v.get("variables_needed_to_start"))
                        .map(missing_variable_names)
                    && !names.is_empty()
                {
                    return Self::MissingVariables(names);
                }
                Self::Status {
                    status,
                    detail: value
                        .as_ref()
                        .map_or_else(|| body.trim().to_owned(), describe),
                    attempts,
                }
            }
            Failure::Other(message) => Self::Request(message),
        }
    }
}

/// `["'api_name' value missing", …]` (or a single string) → `["api_name", …]`.
pub fn missing_variable_names(value: &Value) -> Vec<String> {
    let items: Vec<&str> = match value {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => vec![s.as_str()],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(|item| {
            let quoted = item
                .split_once('\'')
                .and_then(|(_, rest)| rest.split_once('\''))
                .map(|(name, _)| name);
            quoted
                .unwrap_or_else(|| item.split_whitespace().next().unwrap_or(item))
                .to_owned()
        })
        .collect()
}

/// AWX's `detail`, or its `field: messages` map rendered on one line.
fn describe(value: &Value) -> String {
    if let Some(detail) = value.get("detail").and_then(Value::as_str) {
        return detail.to_owned();
    }
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(field, messages)| {
                let text = match messages {
                    Value::Array(items) => items
                        .iter()
                        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join("; "),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{field}: {text}")
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, body: &str) -> AwxErrorKind {
        AwxErrorKind::from_failure(
            Failure::Status {
                status,
                body: body.into(),
                retry_after: None,
            },
            1,
        )
    }

    #[test]
    fn names_missing_variables() {
        let kind = status(
            400,
            r#"{"variables_needed_to_start":["'api_name' value missing","'stage' value missing"]}"#,
        );
        assert_eq!(
            kind,
            AwxErrorKind::MissingVariables(vec!["api_name".into(), "stage".into()])
        );
        assert_eq!(
            kind.to_string(),
            "the launch needs variables that were not given: api_name, stage"
        );
    }

    #[test]
    fn describes_details_and_field_errors() {
        assert_eq!(
            status(
                401,
                r#"{"detail":"Authentication credentials were not provided."}"#
            )
            .to_string(),
            "AWX answered 401 Unauthorized: Authentication credentials were not provided."
        );
        assert_eq!(
            status(
                400,
                r#"{"extra_vars":["Must be a valid JSON or YAML dictionary."]}"#
            )
            .to_string(),
            "AWX answered 400 Bad Request: extra_vars: Must be a valid JSON or YAML dictionary."
        );
        assert_eq!(
            status(502, "bad gateway").to_string(),
            "AWX answered 502 Bad Gateway: bad gateway"
        );
    }

    #[test]
    fn classification() {
        let error = |kind| AwxError {
            operation: "read job 1".into(),
            base_url: "http://127.0.0.1:5555".into(),
            kind,
        };
        assert!(error(status(404, r#"{"detail":"Not found."}"#)).is_not_found());
        assert!(error(AwxErrorKind::TemplateNotFound("x".into())).is_not_found());
        assert!(error(status(403, "{}")).is_unauthorized());
        assert!(error(status(503, "{}")).is_transient());
        assert!(!error(status(400, "{}")).is_transient());
        assert!(
            error(AwxErrorKind::Timeout {
                after: Duration::from_secs(1),
                attempts: 4
            })
            .is_transient()
        );
        assert_eq!(
            error(AwxErrorKind::TemplateNotFound("deploy".into())).to_string(),
            "failed to read job 1 on AWX (http://127.0.0.1:5555): no job template is named \"deploy\""
        );
    }
}
