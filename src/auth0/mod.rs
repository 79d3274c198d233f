//! The Auth0 Management API client: a cached client-credentials token (one request in flight
//! for all callers), a budget that honours the rate-limit headers before being told no, waits
//! on 429, retries of 5xx, timeouts and dropped connections with backoff and jitter (creations
//! only when they surely did not arrive), a timeout on every call, and errors typed with
//! Auth0's `statusCode`/`errorCode`/`message`.

pub mod budget;
mod error;
mod token;

pub use error::Auth0Error;

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rand::Rng;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use self::budget::Budget;
use crate::metrics::Metrics;

/// Attempts per call, the first included.
const MAX_ATTEMPTS: u32 = 6;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a call may be sent again after a failure that leaves its effect unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// GET, PATCH (whole arrays) and DELETE: sending again does no harm.
    Safe,
    /// POST creates: sent again only when it surely did not reach Auth0 (no connection, or
    /// 429); otherwise the caller is told and finds out what happened.
    OnlyUnsent,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    /// `https://tenant.auth0.com` or the emulator's base URL, without trailing slash.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Counters of the calls made, for run records (Prometheus has the rest).
#[derive(Debug, Default)]
pub struct CallCounters {
    pub calls: AtomicU64,
    pub retries: AtomicU64,
}

pub struct ManagementClient {
    http: reqwest::Client,
    creds: Credentials,
    metrics: Metrics,
    token: tokio::sync::Mutex<Option<token::CachedToken>>,
    budget: Mutex<Budget>,
    pub counters: CallCounters,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn jitter(max: f64) -> f64 {
    rand::thread_rng().gen_range(0.0..max)
}

fn header_u64(res: &reqwest::Response, name: &str) -> Option<u64> {
    res.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

fn header_f64(res: &reqwest::Response, name: &str) -> Option<f64> {
    res.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// What to do with an answer.
enum Outcome {
    Done(Value),
    Retry(Auth0Error, Duration),
    Fail(Auth0Error),
}

impl ManagementClient {
    pub fn new(creds: Credentials, metrics: Metrics) -> Self {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .expect("a default HTTP client builds");
        Self {
            http,
            creds,
            metrics,
            token: tokio::sync::Mutex::new(None),
            budget: Mutex::new(Budget::default()),
            counters: CallCounters::default(),
        }
    }

    pub fn audience(&self) -> String {
        format!("{}/api/v2/", self.creds.base_url)
    }

    /// `GET /api/v2/clients/{id}`, only `fields` when given.
    pub async fn get_client(&self, id: &str, fields: &[&str]) -> Result<Value, Auth0Error> {
        let query = if fields.is_empty() {
            String::new()
        } else {
            format!("?fields={}&include_fields=true", fields.join(","))
        };
        self.call(Method::GET, &format!("clients/{id}{query}"), None)
            .await
    }

    /// `PATCH /api/v2/clients/{id}`: each array sent replaces the stored one.
    pub async fn patch_client(&self, id: &str, body: &Value) -> Result<Value, Auth0Error> {
        self.call(Method::PATCH, &format!("clients/{id}"), Some(body))
            .await
    }

    /// `POST /api/v2/clients`, never repeated once it may have reached Auth0: on an error
    /// that [`Auth0Error::maybe_applied`], look for the application before creating another.
    pub async fn create_client(&self, body: &Value) -> Result<Value, Auth0Error> {
        self.call_with(Method::POST, "clients", Some(body), Replay::OnlyUnsent)
            .await
    }

    /// `GET /api/v2/clients`, every page, only `fields`.
    pub async fn list_clients(&self, fields: &[&str]) -> Result<Vec<Value>, Auth0Error> {
        const PER_PAGE: usize = 100;
        let mut all = Vec::new();
        for page in 0.. {
            let path = format!(
                "clients?fields={}&include_fields=true&page={page}&per_page={PER_PAGE}",
                fields.join(",")
            );
            let items = match self.call(Method::GET, &path, None).await? {
                Value::Array(items) => items,
                other => {
                    return Err(Auth0Error::Transport(format!(
                        "GET /clients answered {} instead of a list",
                        crate::domain::printable(&other.to_string())
                    )));
                }
            };
            let last = items.len() < PER_PAGE;
            all.extend(items);
            if last {
                break;
            }
        }
        Ok(all)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Auth0Error> {
        self.call_with(method, path, body, Replay::Safe).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        replay: Replay,
    ) -> Result<Value, Auth0Error> {
        let url = format!("{}/api/v2/{path}", self.creds.base_url);
        let mut last = Auth0Error::Transport("no attempt made".into());
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            let wait = self
                .budget
                .lock()
                .expect("budget lock")
                .wait_before(now_unix(), jitter(0.25));
            self.pause(wait, "rate_limit").await;
            let token = self.token().await?;
            self.budget.lock().expect("budget lock").spend();
            self.counters.calls.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token.expose_secret());
            if let Some(b) = body {
                req = req.json(b);
            }
            let started = Instant::now();
            let sent = req.send().await;
            self.metrics
                .auth0_call_seconds
                .with_label_values(&[method.as_str()])
                .observe(started.elapsed().as_secs_f64());
            let status = sent
                .as_ref()
                .map_or("error".to_owned(), |r| r.status().as_u16().to_string());
            self.metrics
                .auth0_calls
                .with_label_values(&[method.as_str(), &status])
                .inc();
            let outcome = match sent {
                Err(e) if replay == Replay::OnlyUnsent && !e.is_connect() => {
                    Outcome::Fail(Auth0Error::Transport(e.without_url().to_string()))
                }
                Err(e) => Outcome::Retry(
                    Auth0Error::Transport(e.without_url().to_string()),
                    budget::backoff(attempt, jitter(1.0)),
                ),
                Ok(res) => match self.judge(res, attempt).await {
                    Outcome::Retry(e, _) if replay == Replay::OnlyUnsent && e.maybe_applied() => {
                        Outcome::Fail(e)
                    }
                    judged => judged,
                },
            };
            match outcome {
                Outcome::Done(v) => return Ok(v),
                Outcome::Fail(e) => return Err(e),
                Outcome::Retry(e, wait) => {
                    tracing::debug!(%method, path, attempt, error = %e, wait_ms = wait.as_millis() as u64, "Management API call will be retried");
                    let reason = if e.status() == Some(429) {
                        "rate_limit"
                    } else {
                        "backoff"
                    };
                    last = e;
                    self.pause(wait, reason).await;
                }
            }
        }
        Err(last)
    }

    async fn judge(&self, res: reqwest::Response, attempt: u32) -> Outcome {
        let status = res.status();
        self.budget.lock().expect("budget lock").observe(
            header_u64(&res, "x-ratelimit-remaining"),
            header_u64(&res, "x-ratelimit-reset"),
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = budget::after_429(
                header_f64(&res, "retry-after"),
                header_u64(&res, "x-ratelimit-reset"),
                now_unix(),
                jitter(0.5),
            );
            return Outcome::Retry(api_error(status, res).await, wait);
        }
        if status == StatusCode::UNAUTHORIZED {
            // The token may have expired or its key been rotated: fetch a new one, once.
            *self.token.lock().await = None;
            let e = api_error(status, res).await;
            return if attempt == 0 {
                Outcome::Retry(e, Duration::ZERO)
            } else {
                Outcome::Fail(e)
            };
        }
        if status.is_server_error() {
            return Outcome::Retry(
                api_error(status, res).await,
                budget::backoff(attempt, jitter(1.0)),
            );
        }
        if !status.is_success() {
            return Outcome::Fail(api_error(status, res).await);
        }
        match res.text().await {
            Ok(text) if text.is_empty() => Outcome::Done(Value::Null),
            Ok(text) => match serde_json::from_str(&text) {
                Ok(v) => Outcome::Done(v),
                Err(_) => Outcome::Retry(
                    Auth0Error::Transport("the answer was not JSON".into()),
                    budget::backoff(attempt, jitter(1.0)),
                ),
            },
            // The connection dropped while the body was read.
            Err(e) => Outcome::Retry(
                Auth0Error::Transport(e.without_url().to_string()),
                budget::backoff(attempt, jitter(1.0)),
            ),
        }
    }

    async fn pause(&self, wait: Duration, reason: &str) {
        if !wait.is_zero() {
            self.metrics
                .auth0_wait_seconds
                .with_label_values(&[reason])
                .inc_by(wait.as_secs_f64());
            tokio::time::sleep(wait).await;
        }
    }
}

async fn api_error(status: StatusCode, res: reqwest::Response) -> Auth0Error {
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Auth0Error::Api {
        status: status.as_u16(),
        error_code: body["errorCode"].as_str().map(String::from),
        message: body["message"]
            .as_str()
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
            .to_owned(),
    }
}
