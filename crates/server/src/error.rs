//! The one error type at the HTTP edge: JSON `{error, details}` with the right status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::sessions::{ApplyError, OpenError};
use keyboardia_core::protocol::EditError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, machine-readable code.
    pub error: &'static str,
    /// A sentence for people.
    pub details: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, details: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            details: details.into(),
        }
    }
    pub fn bad_request(details: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", details)
    }
    pub fn not_found(details: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", details)
    }
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TOO_LARGE",
            format!("the request body is larger than {limit} bytes"),
        )
    }
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "something went wrong on the server; nothing was changed",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "details": self.details });
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read, so this connection cannot carry another
            // request; say so, or a client may reuse it and fail its next request.
            res.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        res
    }
}

impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> ApiError {
        match e {
            OpenError::NotFound(_) => ApiError::not_found(e.to_string()),
            OpenError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                e.to_string(),
            ),
            OpenError::Storage(e) => ApiError::internal(e),
        }
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> ApiError {
        match e {
            ApplyError::Edit(EditError::ReadOnly) => ApiError::new(
                StatusCode::FORBIDDEN,
                "READ_ONLY",
                EditError::ReadOnly.to_string(),
            ),
            ApplyError::Edit(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_EDIT", e.to_string())
            }
            ApplyError::Storage(e) => ApiError::internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(e)
    }
}
