//! The tenant of a request, from the JWT in the `Authorization` header or the
//! `access_token` query parameter.

use axum::http::HeaderMap;
use leadbus_shared::TenantId;
use leadbus_shared::auth::verify_token;

use crate::error::ApiError;

/// Finds and checks the token; returns its tenant.
pub fn tenant_from(
    headers: &HeaderMap,
    query_token: Option<&str>,
    secret: &str,
) -> Result<TenantId, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = header.or(query_token).ok_or(ApiError::Unauthorized(
        "missing token: send Authorization: Bearer <jwt> or ?access_token=<jwt>",
    ))?;
    verify_token(secret, token.trim())
        .map(|claims| claims.tenant)
        .map_err(|_| ApiError::Unauthorized("token is invalid or expired"))
}
