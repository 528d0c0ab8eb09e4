//! Client tokens: HS256 JWTs naming exactly one tenant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who holds it.
    pub sub: String,
    /// The one tenant it may see.
    pub tenant: TenantId,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

/// A token that was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

/// Mints a token for `tenant`, valid for `ttl`.
pub fn mint_token(
    secret: &str,
    subject: &str,
    tenant: &TenantId,
    ttl: Duration,
) -> Result<String, TokenError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = Claims {
        sub: subject.to_owned(),
        tenant: tenant.clone(),
        iat: now,
        exp: now + ttl.as_secs(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Checks signature and expiry; returns the claims.
pub fn verify_token(secret: &str, token: &str) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // No grace: an expired token is refused at once (tokens are minted on the same clocks).
    validation.leeway = 0;
    // The library's own `exp < now` lets a token through during its last second; asking for
    // one more second of life makes a token over at `exp`, as the WebSocket's expiry timer has it.
    validation.reject_tokens_expiring_in_less_than = 1;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )?;
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_wrong_secret() {
        let t = TenantId::new("acme").unwrap();
        let token = mint_token("s3cret-s3cret-s3cret", "dev", &t, Duration::from_secs(60)).unwrap();
        assert_eq!(
            verify_token("s3cret-s3cret-s3cret", &token).unwrap().tenant,
            t
        );
        assert!(verify_token("other-secret-other", &token).is_err());
    }

    #[test]
    fn a_token_is_over_at_its_expiry() {
        let t = TenantId::new("acme").unwrap();
        let token = mint_token("s3cret-s3cret-s3cret", "dev", &t, Duration::ZERO).unwrap();
        assert!(verify_token("s3cret-s3cret-s3cret", &token).is_err());
    }
}
