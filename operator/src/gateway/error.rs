//! Errors of gateway calls: which call, on which gateway, and what the gateway answered.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::retry::Failure;

/// A failed gateway call.
///
/// Displays as `failed to <operation> on gateway <environment> (<base url>): <cause>`.
#[derive(Debug, thiserror::Error)]
#[error("failed to {operation} on gateway {environment} ({base_url}): {kind}")]
pub struct GatewayError {
    /// What was attempted, e.g. `create API "petstore" 1.0`.
    pub operation: String,
    /// A stable label of the call for metrics, e.g. `create_api`.
    pub op: &'static str,
    /// The gateway's environment name.
    pub environment: Arc<str>,
    /// The gateway's base URL.
    pub base_url: Arc<str>,
    /// What went wrong.
    pub kind: GatewayErrorKind,
}

/// What went wrong in a gateway call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayErrorKind {
    /// The gateway answered with an error status.
    Status {
        /// The HTTP status code.
        status: u16,
        /// The gateway's `errorDetails` (or the raw body when it has none).
        details: String,
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
    /// The gateway could not be reached.
    Connect {
        /// The transport error.
        message: String,
        /// Attempts made before giving up.
        attempts: usize,
    },
    /// The answer was not what the documented API returns.
    Decode(String),
    /// The request was refused before sending (e.g. OpenAPI 3.1 on a gateway without it).
    Unsupported(String),
    /// The request could not be built or sent.
    Request(String),
}

impl fmt::Display for GatewayErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tries = |f: &mut fmt::Formatter<'_>, attempts: usize| {
            if attempts > 1 {
                write!(f, " (after {attempts} attempts)")
            } else {
                Ok(())
            }
        };
        match self {
            Self::Status {
                status,
                details,
                attempts,
            } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "the gateway answered {status} {reason}")?;
                if !details.trim().is_empty() {
                    write!(f, ": {}", details.trim())?;
                }
                tries(f, *attempts)
            }
            Self::Timeout { after, attempts } => {
                write!(f, "the gateway did not answer within {after:?}")?;
                tries(f, *attempts)
            }
            Self::Connect { message, attempts } => {
                write!(f, "the gateway could not be reached: {message}")?;
                tries(f, *attempts)
            }
            Self::Decode(message) => write!(f, "unexpected answer: {message}"),
            Self::Unsupported(message) => write!(f, "{message}"),
            Self::Request(message) => write!(f, "the request could not be sent: {message}"),
        }
    }
}

impl GatewayError {
    /// Whether a later retry may succeed (timeouts, connection errors, 429, 5xx): the
    /// controller should back off and requeue rather than wait for a spec change.
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            GatewayErrorKind::Timeout { .. } | GatewayErrorKind::Connect { .. } => true,
            GatewayErrorKind::Status { status, .. } => *status == 429 || *status >= 500,
            GatewayErrorKind::Decode(_)
            | GatewayErrorKind::Unsupported(_)
            | GatewayErrorKind::Request(_) => false,
        }
    }

    /// Whether the object does not exist on the gateway.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the gateway refused our credentials (401) or permissions (403).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// The HTTP status the gateway answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            GatewayErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The gateway's `errorDetails`, if it answered with an error status.
    pub fn details(&self) -> Option<&str> {
        match &self.kind {
            GatewayErrorKind::Status { details, .. } => Some(details),
            _ => None,
        }
    }

    /// A short label for metrics and Event reasons.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            GatewayErrorKind::Status { status: 404, .. } => "NotFound",
            GatewayErrorKind::Status {
                status: 401 | 403, ..
            } => "Unauthorized",
            GatewayErrorKind::Status { status: 429, .. } => "Throttled",
            GatewayErrorKind::Status { status, .. } if *status >= 500 => "GatewayError",
            GatewayErrorKind::Status { .. } => "Rejected",
            GatewayErrorKind::Timeout { .. } => "Timeout",
            GatewayErrorKind::Connect { .. } => "Unreachable",
            GatewayErrorKind::Decode(_) => "UnexpectedAnswer",
            GatewayErrorKind::Unsupported(_) => "Unsupported",
            GatewayErrorKind::Request(_) => "RequestFailed",
        }
    }
}

/// The `errorDetails` of an error body, or the trimmed body when it has none.
pub fn error_details(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errorDetails")
                .and_then(|d| d.as_str())
                .map(|d| d.trim().to_owned())
        })
        .unwrap_or_else(|| body.trim().to_owned())
}

impl GatewayErrorKind {
    /// Turns a failed attempt (after its retries) into an error kind.
    pub fn from_failure(failure: Failure, attempts: usize) -> Self {
        match failure {
            Failure::Connect(message) => Self::Connect { message, attempts },
            Failure::Timeout(after) => Self::Timeout { after, attempts },
            Failure::Status { status, body, .. } => Self::Status {
                status,
                details: error_details(&body),
                attempts,
            },
            Failure::Other(message) => Self::Request(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: GatewayErrorKind) -> GatewayError {
        GatewayError {
            operation: "read API abc".into(),
            op: "get_api",
            environment: "dev".into(),
            base_url: "http://127.0.0.1:5555/gateways/dev".into(),
            kind,
        }
    }

    #[test]
    fn message_names_call_gateway_and_answer() {
        let e = error(GatewayErrorKind::from_failure(
            Failure::Status {
                status: 404,
                body: r#"{"errorDetails":" Alias with id: abc does not exist."}"#.into(),
                retry_after: None,
            },
            1,
        ));
        assert_eq!(
            e.to_string(),
            "failed to read API abc on gateway dev (http://127.0.0.1:5555/gateways/dev): \
             the gateway answered 404 Not Found: Alias with id: abc does not exist."
        );
        assert!(e.is_not_found());
        assert!(!e.is_transient());
        assert_eq!(e.reason(), "NotFound");
    }

    #[test]
    fn classification() {
        let status = |status| {
            error(GatewayErrorKind::Status {
                status,
                details: String::new(),
                attempts: 4,
            })
        };
        assert!(status(429).is_transient());
        assert!(status(500).is_transient());
        assert!(status(503).is_transient());
        assert!(!status(400).is_transient());
        assert!(status(401).is_unauthorized());
        assert!(!status(401).is_transient());
        let timeout = error(GatewayErrorKind::Timeout {
            after: Duration::from_millis(500),
            attempts: 3,
        });
        assert!(timeout.is_transient());
        assert!(
            timeout
                .to_string()
                .ends_with("within 500ms (after 3 attempts)")
        );
        assert!(
            error(GatewayErrorKind::Connect {
                message: "refused".into(),
                attempts: 1
            })
            .is_transient()
        );
        assert!(!error(GatewayErrorKind::Decode("x".into())).is_transient());
        assert!(!error(GatewayErrorKind::Unsupported("x".into())).is_not_found());
    }

    #[test]
    fn details_fall_back_to_the_body() {
        assert_eq!(error_details(r#"{"errorDetails":"dup"}"#), "dup");
        assert_eq!(error_details("  plain text "), "plain text");
        assert_eq!(error_details(r#"{"other":1}"#), r#"{"other":1}"#);
    }
}
