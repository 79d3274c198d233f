//! The Auth0 emulator as a test's tenant, signing with the fixture key so that tests can also
//! forge tokens with it.

use fleetgate_emulator::{Emulator, EmulatorConfig, keys::SigningKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::*;

/// The Auth0 emulator, signing with [`TEST_KEY`].
pub struct TestTenant {
    pub base_url: String,
    pub key: SigningKey,
    http: reqwest::Client,
    _stop: DropGuard,
}

impl TestTenant {
    pub async fn start() -> Self {
        Self::start_with(Self::config()).await
    }

    /// The emulator's settings for tests: fixture key, fleetgate's audience.
    pub fn config() -> EmulatorConfig {
        EmulatorConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            api_audience: AUDIENCE.into(),
            instance_audience: INSTANCE_AUDIENCE.into(),
            signing_key_pem: Some(TEST_KEY.into()),
            ..EmulatorConfig::default()
        }
    }

    pub async fn start_with(config: EmulatorConfig) -> Self {
        let emulator = Emulator::build(config).unwrap();
        let base_url = emulator.base_url().to_owned();
        let stop = CancellationToken::new();
        tokio::spawn(emulator.run_until_stopped(stop.clone()));
        let key = SigningKey::from_pem(TEST_KEY).unwrap();
        Self {
            base_url,
            key,
            http: reqwest::Client::new(),
            _stop: stop.drop_guard(),
        }
    }

    /// The emulator's seeded tenant (M2M credentials, SPA client id).
    pub async fn seeded(&self) -> Value {
        self.http
            .get(format!("{}/emulator/tenant", self.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Settings that turn fleetgate's reconciler on with the emulator's seeded applications.
    pub async fn reconciler_vars(&self) -> Vec<(&'static str, String)> {
        let seeded = self.seeded().await;
        let text = |k: &str| seeded[k].as_str().unwrap().to_owned();
        vec![
            ("AUTH0_CLIENT_ID", text("m2m_client_id")),
            ("AUTH0_CLIENT_SECRET", text("m2m_client_secret")),
            ("AUTH0_SPA_CLIENT_ID", text("spa_client_id")),
        ]
    }

    /// An application as the Management API returns it.
    pub async fn client(&self, id: &str) -> Value {
        self.management(reqwest::Method::GET, &format!("/clients/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A Management API request "as a person in the dashboard", with an all-scopes token.
    pub fn management(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let now = chrono::Utc::now().timestamp();
        let token = self.key.sign(&json!({
            "iss": self.issuer(), "sub": "person@clients", "aud": format!("{}/api/v2/", self.base_url),
            "iat": now, "exp": now + 600, "scope": "read:clients update:clients create:clients delete:clients",
        }));
        self.http
            .request(method, format!("{}/api/v2{path}", self.base_url))
            .bearer_auth(token)
    }

    /// A person sets one field of an application in the dashboard (`entries`: its new value).
    pub async fn person_sets(&self, client_id: &str, field: &str, entries: Value) {
        let res = self
            .management(reqwest::Method::PATCH, &format!("/clients/{client_id}"))
            .json(&json!({ field: entries }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    /// Creates an application in the tenant, as a person would in the dashboard; answers its
    /// client id.
    pub async fn create_application(&self, name: &str) -> String {
        self.create_application_with(json!({"name": name, "app_type": "spa"}))
            .await
    }

    /// Creates an application from this Management API body (e.g. with `client_metadata`);
    /// answers its client id.
    pub async fn create_application_with(&self, body: Value) -> String {
        let res = self
            .management(reqwest::Method::POST, "/clients")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let created: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "the application was not created: {created}");
        created["client_id"].as_str().unwrap().to_owned()
    }

    pub async fn http_put_faults(&self, faults: Value) {
        let res = self
            .http
            .put(format!("{}/emulator/faults", self.base_url))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/emulator/stats", self.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn kid(&self) -> &str {
        &self.key.kid
    }

    /// How often fleetgate fetched the JWKS, as the emulator counted it.
    pub async fn jwks_fetches(&self) -> u64 {
        let stats: Value = self
            .http
            .get(format!("{}/emulator/stats", self.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["GET /.well-known/jwks.json 200"]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn issuer(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// Claims of a valid admin token; tests change them to make bad ones.
    pub fn claims(&self, permissions: &[&str]) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer(), "sub": "auth0|admin-1", "aud": [AUDIENCE, format!("{}/userinfo", self.base_url)],
            "iat": now, "exp": now + 3600, "azp": ADMIN_CLIENT, "scope": "openid", "permissions": permissions,
        })
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign(claims)
    }
}

pub fn sign_with(pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(String::from);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}
