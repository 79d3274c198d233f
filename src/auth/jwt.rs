//! Validation of access tokens issued by the Auth0 tenant.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, Validation};

use super::jwks::{Jwks, JwksError};
use crate::config::Auth0Settings;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// The claims fleetgate reads from an access token.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl Claims {
    /// Whether the token carries this permission, in `permissions` (RBAC) or in `scope`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
            || self
                .scope
                .as_deref()
                .is_some_and(|s| s.split(' ').any(|p| p == permission))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token must be signed with RS256")]
    WrongAlgorithm,
    #[error("the token header has no kid")]
    NoKeyId,
    #[error("the token was not signed by a key of the tenant")]
    UnknownKey,
    #[error("the token is not valid: {0}")]
    Invalid(&'static str),
    #[error("the tenant's signing keys cannot be fetched")]
    KeysUnavailable,
}

pub struct TokenVerifier {
    jwks: Jwks,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(auth0: &Auth0Settings) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.set_issuer(&[auth0.issuer()]);
        validation.set_audience(&[&auth0.audience]);
        validation.required_spec_claims =
            HashSet::from(["exp", "iss", "aud", "sub"].map(String::from));
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            jwks: Jwks::new(auth0.jwks_url(), auth0.jwks_cache),
            validation,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        let key = self.jwks.key(&kid).await.map_err(|e| match e {
            JwksError::UnknownKey => TokenError::UnknownKey,
            JwksError::Unavailable(_) => TokenError::KeysUnavailable,
        })?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            TokenError::Invalid(match e.kind() {
                K::ExpiredSignature => "it has expired",
                K::ImmatureSignature => "it is not valid yet (nbf)",
                K::InvalidIssuer => "wrong issuer",
                K::InvalidAudience => "wrong audience",
                K::InvalidSignature => "bad signature",
                K::MissingRequiredClaim(_) => "a required claim is missing",
                K::InvalidAlgorithm => "wrong algorithm",
                _ => "it cannot be decoded",
            })
        })?;
        Ok(data.claims)
    }
}
