//! The tenant of a request, from the JWT in the `Authorization` header or the
//! `access_token` query parameter.

use axum::extract::{FromRequestParts, Query};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use leadbus_shared::TenantId;
use leadbus_shared::auth::verify_token;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Finds and checks the token; returns its tenant.
pub fn tenant_from(
    headers: &HeaderMap,
    query_token: Option<&str>,
    secret: &str,
) -> Result<TenantId, ApiError> {
    claims_from(headers, query_token, secret).map(|c| c.tenant)
}

/// The checked claims of the request's token (tenant and expiry).
pub fn claims_from(
    headers: &HeaderMap,
    query_token: Option<&str>,
    secret: &str,
) -> Result<leadbus_shared::auth::Claims, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = header.or(query_token).ok_or(ApiError::Unauthorized(
        "missing token: send Authorization: Bearer <jwt> or ?access_token=<jwt>",
    ))?;
    verify_token(secret, token.trim())
        .map_err(|_| ApiError::Unauthorized("token is invalid or expired"))
}

/// The token's tenant, as a handler argument: every route that takes it answers 401 without
/// a valid token.
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

#[derive(Debug, Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let query = Query::<TokenQuery>::from_request_parts(parts, state)
            .await
            .map(|q| q.0.access_token)
            .unwrap_or_default();
        tenant_from(&parts.headers, query.as_deref(), &state.config.jwt_secret).map(Tenant)
    }
}
