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

/// What decides whether a valid token of the tenant was minted for fleetgate or at an
/// instance: its audiences, the application it was issued to and the instance claim.
#[derive(serde::Deserialize)]
struct Binding {
    #[serde(default)]
    aud: Audiences,
    /// The application the token was issued to (Auth0's claim; `client_id` in the RFC 9068
    /// profile of access tokens).
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Default, serde::Deserialize)]
#[serde(untagged)]
enum Audiences {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl Audiences {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audiences::One(a) => a == audience,
            Audiences::Many(all) => all.iter().any(|a| a == audience),
            Audiences::None => false,
        }
    }
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
    /// Signed by the tenant, but past its `exp`: the caller should get a new one.
    #[error("the token has expired; get a new one")]
    Expired,
    /// Signed by the tenant, but before its `nbf`.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error(
        "the token was issued to an application whose tokens fleetgate does not accept (FLEETGATE_ADMIN_CLIENTS, FLEETGATE_UI_CLIENT_ID)"
    )]
    WrongApplication,
    #[error("the token was issued for an instance, not for fleetgate: {0}")]
    ForAnInstance(&'static str),
    #[error("the tenant's signing keys cannot be fetched")]
    KeysUnavailable,
}

pub struct TokenVerifier {
    jwks: Jwks,
    validation: Validation,
    instance_audience: String,
    instance_claim: String,
    admin_clients: Vec<String>,
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
            instance_audience: auth0.instance_audience.clone(),
            instance_claim: format!("{}instance", auth0.claim_namespace),
            admin_clients: auth0.admin_clients.clone(),
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
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                // The signature is checked before the claims: these two are the tenant's.
                match e.kind() {
                    K::ExpiredSignature => return TokenError::Expired,
                    K::ImmatureSignature => return TokenError::NotYetValid,
                    _ => {}
                }
                TokenError::Invalid(match e.kind() {
                    K::InvalidIssuer => "wrong issuer",
                    K::InvalidAudience => "wrong audience",
                    K::InvalidSignature => "bad signature",
                    K::MissingRequiredClaim(_) => "a required claim is missing",
                    K::InvalidAlgorithm => "wrong algorithm",
                    _ => "it cannot be decoded",
                })
            })?;
        let binding: Binding = serde_json::from_value(data.claims.clone())
            .map_err(|_| TokenError::Invalid("it cannot be decoded"))?;
        // A token a user got by logging in at an instance is valid on that instance's API
        // only. Were it accepted here, every instance (and whoever runs its code) could act on
        // fleetgate as the user who logged in there.
        if binding.aud.contains(&self.instance_audience) {
            return Err(TokenError::ForAnInstance(
                "its audience is the instances' API (FLEETGATE_INSTANCE_AUDIENCE)",
            ));
        }
        if binding.other.contains_key(&self.instance_claim) {
            return Err(TokenError::ForAnInstance(
                "it carries the instance claim of a login at an instance",
            ));
        }
        // Whatever the Action did (a login it let through while fleetgate was unreachable
        // carries no instance claim), a token an instance's application obtained is not an
        // operator's: only fleetgate's own applications' tokens are.
        let application = match (&binding.azp, &binding.client_id) {
            (Some(azp), Some(client_id)) if azp != client_id => None,
            (azp, client_id) => azp.as_ref().or(client_id.as_ref()),
        };
        if !application.is_some_and(|a| self.admin_clients.contains(a)) {
            return Err(TokenError::WrongApplication);
        }
        serde_json::from_value(data.claims).map_err(|_| TokenError::Invalid("it cannot be decoded"))
    }
}
