//! The tenant's signing keys (`/.well-known/jwks.json`), cached.
//!
//! Keys are kept for a configured time. A token naming a key we do not know triggers at most
//! one refetch per [`MIN_REFETCH`], shared by all callers, so a flood of junk tokens cannot
//! hammer the tenant. If the tenant cannot be reached, the keys we have stay in use.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    DecodingKey,
    jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use tokio::sync::{Mutex, RwLock};

/// Shortest time between two fetches caused by unknown key ids.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("no signing key with this kid")]
    UnknownKey,
    #[error("signing keys cannot be fetched: {0}")]
    Unavailable(String),
}

pub struct Jwks {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    keys: RwLock<Keys>,
    /// Held while fetching; holds when the last fetch was attempted.
    fetch: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
}

impl Jwks {
    pub fn new(url: String, ttl: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .expect("a default HTTP client builds");
        Self {
            url,
            http,
            ttl,
            keys: RwLock::default(),
            fetch: Mutex::new(None),
        }
    }

    /// The key with this id, fetching the key set when it is stale or does not have it.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, JwksError> {
        {
            let keys = self.keys.read().await;
            let fresh = keys.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
            if let (true, Some(key)) = (fresh, keys.by_kid.get(kid)) {
                return Ok(key.clone());
            }
        }
        let fetched = self.refresh(kid).await;
        let keys = self.keys.read().await;
        match (keys.by_kid.get(kid), fetched) {
            (Some(key), _) => Ok(key.clone()),
            (None, Err(e)) if keys.by_kid.is_empty() => Err(e),
            (None, _) => Err(JwksError::UnknownKey),
        }
    }

    /// Fetches the key set, one caller at a time and at most once per [`MIN_REFETCH`].
    /// When the fetch fails the keys we had stay in use.
    async fn refresh(&self, kid: &str) -> Result<(), JwksError> {
        let mut last_attempt = self.fetch.lock().await;
        {
            let keys = self.keys.read().await;
            let fresh = keys.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
            if fresh && keys.by_kid.contains_key(kid) {
                return Ok(()); // another caller fetched it while we waited
            }
        }
        if last_attempt.is_some_and(|t| t.elapsed() < MIN_REFETCH) {
            return Ok(());
        }
        // Recorded only once the fetch has ended: a caller dropped mid-fetch (its request was
        // answered or cancelled) must not stop the next caller from fetching.
        let fetched = self.fetch_keys().await;
        *last_attempt = Some(Instant::now());
        let by_kid = fetched.inspect_err(|e| {
            tracing::warn!(url = %self.url, error = %e, "fetching signing keys failed");
        })?;
        *self.keys.write().await = Keys {
            by_kid,
            fetched_at: Some(Instant::now()),
        };
        Ok(())
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<DecodingKey>>, JwksError> {
        let unavailable = |e: reqwest::Error| JwksError::Unavailable(e.without_url().to_string());
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let keys: HashMap<_, _> = set
            .keys
            .iter()
            .filter(|jwk| is_rs256_signing_key(jwk))
            .filter_map(|jwk| {
                Some((
                    jwk.common.key_id.clone()?,
                    Arc::new(DecodingKey::from_jwk(jwk).ok()?),
                ))
            })
            .collect();
        tracing::info!(count = keys.len(), "fetched signing keys");
        Ok(keys)
    }
}

/// Only RSA keys meant for signatures with RS256 (or no stated algorithm) can verify our tokens.
fn is_rs256_signing_key(jwk: &Jwk) -> bool {
    matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
        && jwk
            .common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == PublicKeyUse::Signature)
        && jwk
            .common
            .key_algorithm
            .is_none_or(|a| a == KeyAlgorithm::RS256)
}
