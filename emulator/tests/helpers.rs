use fleetgate_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

pub const FIXTURE_KEY: &str = include_str!("../../tests/fixtures/test-key.pem");

pub struct TestEmulator {
    pub base: String,
    pub http: reqwest::Client,
    pub tenant: Value,
    _stop: DropGuard,
}

/// A config with a generous bucket, so only the rate-limit tests meet it.
pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rate_limit_burst: 10_000,
        rate_limit_per_second: 10_000.0,
        signing_key_pem: Some(FIXTURE_KEY.to_owned()),
        ..EmulatorConfig::default()
    }
}

impl TestEmulator {
    pub async fn start(config: EmulatorConfig) -> Self {
        let emulator = Emulator::build(config).unwrap();
        let base = emulator.base_url().to_owned();
        let stop = CancellationToken::new();
        tokio::spawn(emulator.run_until_stopped(stop.clone()));
        let http = reqwest::Client::new();
        let tenant = http
            .get(format!("{base}/emulator/tenant"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            base,
            http,
            tenant,
            _stop: stop.drop_guard(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`'s JSON body (no credentials).
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `PUT /emulator/faults`; answers the status.
    pub async fn put_faults(&self, faults: Value) -> u16 {
        self.http
            .put(self.url("/emulator/faults"))
            .json(&faults)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Sets the faults (replacing all of them).
    pub async fn set_faults(&self, faults: Value) {
        assert_eq!(self.put_faults(faults).await, 200);
    }

    pub fn m2m(&self) -> (String, String) {
        (
            self.tenant["m2m_client_id"].as_str().unwrap().to_owned(),
            self.tenant["m2m_client_secret"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .http
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// A Management API token of the seeded M2M application (all four clients scopes).
    pub async fn management_token(&self) -> String {
        let (id, secret) = self.m2m();
        let audience = format!("{}/api/v2/", self.base);
        let (status, body) = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("audience", &audience),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    pub async fn create_client(&self, token: &str, body: Value) -> Value {
        let (status, client) = self
            .call(reqwest::Method::POST, "/api/v2/clients", token, Some(body))
            .await;
        assert_eq!(status, 201, "{client}");
        client
    }
}

/// Asserts an Auth0 Management API error body.
pub fn assert_mgmt_error(got: &(u16, Value), status: u16, error_code: Option<&str>, message: &str) {
    let (s, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["statusCode"], json!(status), "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(body["errorCode"].as_str(), error_code, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(message),
        "{body}"
    );
}

/// The payload of a JWT, unverified (the tests check claims; signatures are checked elsewhere).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
