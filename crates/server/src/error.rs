//! The one error type at the HTTP edge: the core's [`api::ApiError`] (`{error, details}` with a
//! status) as an axum response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyboardia_core::api;

use crate::sessions::{ApplyError, OpenError};

#[derive(Debug)]
pub struct ApiError(pub api::ApiError);

/// An internal error: logged here, reported to the client without details.
pub fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError(api::ApiError::internal())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, Json(self.0.body())).into_response();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
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

impl From<api::ApiError> for ApiError {
    fn from(e: api::ApiError) -> ApiError {
        ApiError(e)
    }
}

impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> ApiError {
        match e {
            OpenError::NotFound(id) => ApiError(api::ApiError::no_session(id)),
            OpenError::ShuttingDown => ApiError(api::ApiError::unavailable(e.to_string())),
            OpenError::Storage(e) => internal(e),
        }
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> ApiError {
        match e {
            ApplyError::Edit(e) => ApiError(e.into()),
            ApplyError::Storage(e) => internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        internal(e)
    }
}
