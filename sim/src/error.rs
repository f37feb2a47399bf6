//! Error answers in the products' documented shapes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A gateway error: answered as `{"errorDetails": "..."}` with its status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct GatewayError {
    pub status: StatusCode,
    pub message: String,
}

impl GatewayError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "errorDetails": self.message }))).into_response()
    }
}

/// An AWX error: a JSON body (usually `{"detail": "..."}`) with its status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {body}")]
pub struct AwxError {
    pub status: StatusCode,
    pub body: Value,
}

impl AwxError {
    pub fn detail(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "detail": detail.into() }),
        }
    }
    pub fn not_found() -> Self {
        Self::detail(StatusCode::NOT_FOUND, crate::assumed::AWX_404_OBJECT)
    }
    pub fn bad_request(body: Value) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body,
        }
    }
}

impl IntoResponse for AwxError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
