//! HTTP errors: one type, answered as JSON `{ "error": ..., "message": ... }` with a status
//! that says what was wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadbus_shared::validate::Rejection;
use serde_json::json;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or a bad or expired one (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// An event failed validation (400, with the rejection's kind).
    #[error("{}", .0.reason)]
    Rejected(Rejection),
    /// The request names another tenant (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing of this tenant by that name (404); another tenant's data looks the same.
    #[error("{0}")]
    NotFound(String),
    /// The body is over the size limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A dependency is down, or the gateway is draining (503).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The status and the machine-readable `error` field.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Rejected(_) => (StatusCode::BAD_REQUEST, "invalid_event"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let mut body = json!({ "error": code, "message": self.to_string() });
        if let ApiError::Rejected(rejection) = &self {
            body["kind"] = json!(rejection.kind);
        }
        (status, Json(body)).into_response()
    }
}
