//! A fleetgate with the login Action's secret and one instance, `acme`, whose key it holds:
//! the fixture of the grants, polling, trust and login-decision tests.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::*;

pub const ACTION_SECRET: &str = "action-secret-0123456789abcdef0123456789";
pub const OWNER: &str = "auth0|owner-1";

pub struct Fleet {
    pub app: TestApp,
    /// The key of instance `acme`, from its first deploy.
    pub key: String,
}

pub async fn fleet(pool: PgPool, extra: &[(&str, String)]) -> Fleet {
    let mut vars = vec![("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned())];
    vars.extend(extra.iter().cloned());
    let app = TestApp::spawn_with(pool, TestTenant::start().await, &vars).await;
    let acme = app
        .deploy("acme", &["acme.apps.example.com", "www.acme.com"])
        .await;
    Fleet {
        key: acme["instance_key"].as_str().unwrap().to_owned(),
        app,
    }
}

impl Fleet {
    pub fn user(&self, sub: &str) -> String {
        let mut claims = self.app.tenant.claims(&[]);
        claims["sub"] = sub.into();
        self.app.tenant.sign(&claims)
    }

    pub fn as_bearer(&self, bearer: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(method, self.app.url(path))
            .bearer_auth(bearer)
    }

    pub async fn grant(&self, bearer: &str, instance: &str, body: Value) -> (u16, Value) {
        into_json(
            self.as_bearer(
                bearer,
                Method::POST,
                &format!("/v1/instances/{instance}/grants"),
            )
            .json(&body)
            .send()
            .await
            .unwrap(),
        )
        .await
    }

    pub async fn poll(
        &self,
        query: &str,
        etag: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut req = self.as_bearer(
            &self.key,
            Method::GET,
            &format!("/v1/instances/acme/grants{query}"),
        );
        if let Some(tag) = etag {
            req = req.header("if-none-match", tag);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let tag = res
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = if status == StatusCode::NOT_MODIFIED {
            Value::Null
        } else {
            res.json().await.unwrap()
        };
        (status, tag, body)
    }

    pub async fn decide(&self, body: Value) -> (u16, Value) {
        decide_at(&self.app, &body).await
    }
}

/// A login decision asked of `app` (any replica), as the Action asks it.
pub async fn decide_at(app: &TestApp, body: &Value) -> (u16, Value) {
    into_json(
        app.http
            .post(app.url("/v1/login-decisions"))
            .bearer_auth(ACTION_SECRET)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub fn login(user: &str, email: Option<&str>, verified: bool, uri: &str) -> Value {
    json!({ "user_id": user, "email": email, "email_verified": verified, "redirect_uri": uri, "client_id": "spa" })
}

pub async fn status_with(f: &Fleet, key: &str) -> u16 {
    f.as_bearer(key, Method::GET, "/v1/instances/acme/grants")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub async fn rotate(f: &Fleet, bearer: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = f.as_bearer(bearer, Method::POST, "/v1/instances/acme/keys/rotate");
    if let Some(b) = body {
        req = req.json(&b);
    }
    into_json(req.send().await.unwrap()).await
}

/// A long-poll of acme's grants with `key`, parked past `since` for up to `wait` seconds on a
/// connection of its own; its answer when it ends.
pub fn park(
    f: &Fleet,
    key: &str,
    since: i64,
    wait: u32,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = reqwest::Client::new()
        .get(f.app.url(&format!(
            "/v1/instances/acme/grants?since={since}&wait={wait}"
        )))
        .bearer_auth(key);
    tokio::spawn(async move { request.send().await.unwrap() })
}
