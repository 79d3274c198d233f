//! A real fleetgate on port 0 against a per-test Postgres database, and the calls tests make
//! to it (deploy hooks signed with the test secret, admin requests, problem checks).

use fleetgate::{auth::webhook::WebhookVerifier, config::Settings, startup::Application};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::*;

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
        hook_request(
            &self.http,
            &self.addr,
            id,
            ts,
            signature,
            content_type,
            body,
        )
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

/// A deploy-hook request to the fleetgate at `addr`, with exactly these header values.
pub fn hook_request(
    http: &reqwest::Client,
    addr: &str,
    id: &str,
    ts: i64,
    signature: &str,
    content_type: &str,
    body: String,
) -> reqwest::RequestBuilder {
    http.post(format!("{addr}/v1/hooks/deploy"))
        .header("content-type", content_type)
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
}

/// `event`, signed with the test secret under a fresh webhook id, sent to the fleetgate at
/// `addr` (one started by [`spawn_process`]; a [`TestApp`] has [`TestApp::hook`]).
pub async fn send_hook(http: &reqwest::Client, addr: &str, event: &Value) -> (u16, Value) {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let ts = chrono::Utc::now().timestamp();
    let body = event.to_string();
    let sig = signature(&id, ts, &body);
    into_json(
        hook_request(http, addr, &id, ts, &sig, "application/json", body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A reconcile pass run by the fleetgate at `addr` for `admin` (a token); its run, which must
/// be answered 200.
pub async fn reconcile_at(http: &reqwest::Client, addr: &str, admin: &str) -> Value {
    let res = http
        .post(format!("{addr}/v1/reconcile"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    let (status, run) = into_json(res).await;
    assert_eq!(status, 200, "{run}");
    run
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
