//! The Management API token: fetched by client credentials, cached until shortly before it
//! expires, one request in flight for all callers.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{Auth0Error, MAX_ATTEMPTS, ManagementClient, budget, jitter};

/// A cached token is replaced this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

pub(super) struct CachedToken {
    value: SecretString,
    refresh_at: Instant,
}

impl ManagementClient {
    /// The cached token, or a new one; concurrent callers share one token request.
    pub(super) async fn token(&self) -> Result<SecretString, Auth0Error> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    async fn fetch_token(&self) -> Result<CachedToken, Auth0Error> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: String,
            expires_in: u64,
        }
        let body = serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": self.creds.client_id,
            "client_secret": self.creds.client_secret.expose_secret(),
            "audience": self.audience(),
        });
        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            let sent = self
                .http
                .post(format!("{}/oauth/token", self.creds.base_url))
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(res) if res.status().is_success() => match res.json::<TokenAnswer>().await {
                    Ok(t) => {
                        let lifetime = Duration::from_secs(t.expires_in);
                        let margin = TOKEN_MARGIN.min(lifetime / 10);
                        return Ok(CachedToken {
                            value: SecretString::from(t.access_token),
                            refresh_at: Instant::now() + lifetime - margin,
                        });
                    }
                    Err(e) => last = format!("unreadable token answer: {}", e.without_url()),
                },
                Ok(res)
                    if res.status().is_client_error()
                        && res.status() != StatusCode::TOO_MANY_REQUESTS =>
                {
                    let status = res.status().as_u16();
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    let error = body["error"].as_str().unwrap_or("unknown");
                    let description = body["error_description"].as_str().unwrap_or("");
                    return Err(Auth0Error::Token(format!(
                        "{status} {error}: {description}"
                    )));
                }
                Ok(res) => last = format!("token endpoint answered {}", res.status().as_u16()),
                Err(e) => last = e.without_url().to_string(),
            }
            self.pause(budget::backoff(attempt, jitter(1.0)), "backoff")
                .await;
        }
        Err(Auth0Error::Token(last))
    }
}
