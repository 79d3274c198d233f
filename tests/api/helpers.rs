//! A real fleetgate on port 0 against a per-test Postgres database, with the Auth0 emulator
//! as its tenant (signing with a fixture key, so tests can also forge tokens with it).

use fleetgate::{auth::webhook::WebhookVerifier, config::Settings, startup::Application};
use fleetgate_emulator::{Emulator, EmulatorConfig, keys::SigningKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::{CancellationToken, DropGuard};

pub const AUDIENCE: &str = "https://fleetgate.test/api";
pub const INSTANCE_AUDIENCE: &str = "https://instances.fleetgate.test/api";
pub const PLATFORM_DOMAIN: &str = "apps.example.com";
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const TEST_KEY: &str = include_str!("../fixtures/test-key.pem");
pub const TEST_PUBLIC_KEY: &[u8] = include_bytes!("../fixtures/test-key.pub.pem");
pub const OTHER_KEY: &str = include_str!("../fixtures/other-key.pem");
/// The application tests' admin and owner tokens are issued to (`FLEETGATE_ADMIN_CLIENTS`).
pub const ADMIN_CLIENT: &str = "admin-tool";

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

    /// Creates an application in the tenant, as a person would in the dashboard; answers its
    /// client id.
    pub async fn create_application(&self, name: &str) -> String {
        let res = self
            .management(reqwest::Method::POST, "/clients")
            .json(&json!({"name": name, "app_type": "spa"}))
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

pub struct TestApp {
    pub addr: String,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub tenant: TestTenant,
    pub admin_token: String,
    _stop: DropGuard,
}

pub fn settings(tenant_url: &str) -> Settings {
    settings_with(tenant_url, &[])
}

pub fn settings_with(tenant_url: &str, extra: &[(&str, String)]) -> Settings {
    let mut vars: Vec<(&str, String)> = vec![
        (
            "DATABASE_URL",
            "postgres://unused-the-pool-is-given".to_owned(),
        ),
        ("FLEETGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("AUTH0_DOMAIN", tenant_url.to_owned()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("FLEETGATE_INSTANCE_AUDIENCE", INSTANCE_AUDIENCE.to_owned()),
        ("FLEETGATE_PLATFORM_DOMAIN", PLATFORM_DOMAIN.to_owned()),
        ("FLEETGATE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        // The application of the tokens tests sign ([`TestTenant::claims`]).
        ("FLEETGATE_ADMIN_CLIENTS", ADMIN_CLIENT.to_owned()),
    ];
    vars.extend(extra.iter().cloned());
    // The last value of a variable wins: `extra` overrides the defaults.
    Settings::from_lookup(|k| {
        vars.iter()
            .rev()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, TestTenant::start().await, &[]).await
    }

    pub async fn spawn_with(pool: PgPool, tenant: TestTenant, extra: &[(&str, String)]) -> Self {
        let app =
            Application::build(&settings_with(&tenant.base_url, extra), pool.clone()).unwrap();
        let addr = format!("http://127.0.0.1:{}", app.port());
        let stop = CancellationToken::new();
        tokio::spawn(app.run_until_stopped(stop.clone()));
        let admin_token = tenant.sign(&tenant.claims(&["fleet:admin"]));
        // Ready (its memory of keys and revisions loaded) within moments.
        let http = reqwest::Client::new();
        for _ in 0..250 {
            let ready = http.get(format!("{addr}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self {
            addr,
            pool,
            http,
            tenant,
            admin_token,
            _stop: stop.drop_guard(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.addr)
    }

    /// An admin request to `path`.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        into_json(self.admin(reqwest::Method::GET, path).send().await.unwrap()).await
    }

    /// Signs and sends a deploy-hook event with a fresh webhook id.
    pub async fn hook(&self, event: &Value) -> (u16, Value) {
        self.hook_with_id(&format!("msg_{}", uuid::Uuid::new_v4().simple()), event)
            .await
    }

    pub async fn hook_with_id(&self, id: &str, event: &Value) -> (u16, Value) {
        let body = event.to_string();
        into_json(
            self.signed_hook(id, chrono::Utc::now().timestamp(), body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub fn signed_hook(&self, id: &str, ts: i64, body: String) -> reqwest::RequestBuilder {
        self.raw_hook(id, ts, &signature(id, ts, &body), "application/json", body)
    }

    /// A deploy-hook request with exactly these header values.
    pub fn raw_hook(
        &self,
        id: &str,
        ts: i64,
        signature: &str,
        content_type: &str,
        body: String,
    ) -> reqwest::RequestBuilder {
        self.http
            .post(self.url("/v1/hooks/deploy"))
            .header("content-type", content_type)
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
    }

    pub async fn deploy(&self, id: &str, domains: &[&str]) -> Value {
        let (status, body) = self.hook(&deployed(id, "auth0|owner-1", domains)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// What `GET /metrics` exports now.
    pub async fn metrics(&self) -> String {
        let res = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    pub async fn audit_count(&self, instance: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE target_id = $1")
            .bind(instance)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Everything the registry holds, to prove a refused request changed nothing.
    pub async fn snapshot(&self) -> Value {
        sqlx::query_scalar(
            "SELECT json_build_object( \
               'instances', (SELECT coalesce(json_agg(i ORDER BY id), '[]') FROM instances i), \
               'domains', (SELECT coalesce(json_agg(d ORDER BY hostname), '[]') FROM domains d), \
               'audit', (SELECT count(*) FROM audit_log), \
               'deliveries', (SELECT count(*) FROM webhook_deliveries))",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

/// The Standard Webhooks signature of a delivery under the test secret.
pub fn signature(id: &str, ts: i64, body: &str) -> String {
    WebhookVerifier::new(&SecretString::from(WEBHOOK_SECRET))
        .unwrap()
        .sign(id, ts, body.as_bytes())
        .unwrap()
}

/// A fleetgate "process" on the test database: a pool of its own (as a separate process would
/// have), its own server. Answers its address, its stop token and its task.
pub fn spawn_process(
    pool: &PgPool,
    tenant_url: &str,
    vars: &[(&str, String)],
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .connect_lazy_with((*pool.connect_options()).clone());
    let app = Application::build(&settings_with(tenant_url, vars), own).unwrap();
    let addr = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
    (addr, stop, handle)
}

pub fn deployed(id: &str, owner: &str, domains: &[&str]) -> Value {
    json!({ "type": "instance.deployed", "data": { "instance_id": id, "owner": owner, "domains": domains } })
}

pub fn event(kind: &str, id: &str) -> Value {
    json!({ "type": kind, "data": { "instance_id": id } })
}

pub async fn into_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        },
    )
}

/// Asserts a problem+json answer with this status and code, returning its detail.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "status {}",
        res.status()
    );
    let (got, body) = into_json(res).await;
    assert_eq!(
        (got, body["code"].as_str().unwrap_or_default()),
        (status, code),
        "{body}"
    );
    assert_eq!(body["status"], status);
    body["detail"].as_str().unwrap().to_owned()
}

pub fn hosts(instance: &Value) -> Vec<String> {
    instance["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hostname"].as_str().unwrap().to_owned())
        .collect()
}
