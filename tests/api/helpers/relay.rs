//! The login relay's world: fleetgate in `relay` mode on a port chosen first (its relay URL
//! is its own address), the emulator running the project's Action against it, the relay's own
//! confidential application, and instances whose logins go through the relay (no allow-list
//! holds them).

use serde_json::{Value, json};
use sqlx::PgPool;

use super::*;
use crate::browser::{Browser, VERIFIER, redirected};

pub struct RelayWorld {
    pub app: TestApp,
    /// fleetgate's address, which is also the relay's public origin here.
    pub relay: String,
    pub relay_client: String,
    /// The instances' SPA application (the pool's primary), whose lists must not change.
    pub spa: String,
    pub owner: String,
    pub member: String,
    /// fleetgate's settings beyond the tests' defaults (for another replica: with its own
    /// `FLEETGATE_LISTEN`).
    pub vars: Vec<(&'static str, String)>,
}

/// The relay's application as a person sets it up in the dashboard (docs/relay.md): a
/// Regular Web Application with rotation and the trusted IP header; its lists left to fleetgate.
pub async fn relay_application(tenant: &TestTenant) -> (String, String) {
    let res = tenant
        .management(reqwest::Method::POST, "/clients")
        .json(&json!({
            "name": "fleetgate relay",
            "app_type": "regular_web",
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "refresh_token": {"rotation_type": "rotating", "leeway": 0},
            "is_token_endpoint_ip_header_trusted": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let client: Value = res.json().await.unwrap();
    (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// `acme` (owner@example.com; acme.apps.example.com, www.acme.com) and `beta` (max@example.com;
/// www.beta.com) deployed; `paused` (www.paused.com, owner@example.com) suspended; the relay's
/// application keeps its callback.
pub async fn relay_world(pool: PgPool) -> RelayWorld {
    relay_world_with(pool, &[]).await
}

/// Like [`relay_world`], with more settings for fleetgate (the last value of a setting wins).
pub async fn relay_world_with(pool: PgPool, extra: &[(&'static str, String)]) -> RelayWorld {
    let ActionTenant {
        port,
        tenant,
        owner,
        member,
    } = action_tenant().await;
    let relay = format!("http://127.0.0.1:{port}");
    let (relay_client, relay_secret) = relay_application(&tenant).await;
    let mut vars = tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    vars.extend([
        ("FLEETGATE_LISTEN", format!("127.0.0.1:{port}")),
        ("FLEETGATE_ACTION_SECRET", WORLD_ACTION_SECRET.to_owned()),
        ("FLEETGATE_LOGIN_MODE", "relay".to_owned()),
        ("FLEETGATE_RELAY_URL", relay.clone()),
        ("FLEETGATE_RELAY_CLIENT_ID", relay_client.clone()),
        ("FLEETGATE_RELAY_CLIENT_SECRET", relay_secret),
    ]);
    vars.extend(extra.iter().cloned());
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    vars.retain(|(k, _)| *k != "FLEETGATE_LISTEN");
    for event in [
        deployed("acme", &owner, &["acme.apps.example.com", "www.acme.com"]),
        deployed("beta", &member, &["www.beta.com"]),
        deployed("paused", &owner, &["www.paused.com"]),
        event("instance.suspended", "paused"),
    ] {
        let (status, body) = app.hook(&event).await;
        assert_eq!(status, 200, "{body}");
    }
    let w = RelayWorld {
        app,
        relay,
        relay_client,
        spa,
        owner,
        member,
        vars,
    };
    let callback = format!("{}/callback", w.relay);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let client = w.app.tenant.client(&w.relay_client).await;
        let listed = fleetgate::domain::field::entries(&client["callbacks"]);
        if listed.contains(&callback) {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the relay's callback was never listed: {client}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    w
}

/// A login as a browser makes it through the relay.
pub struct RelayLogin {
    /// Where the relay sent the browser first (the tenant's `/authorize`).
    pub upstream: String,
    /// The browser at the tenant (its session cookie).
    pub at_tenant: Browser,
}

impl RelayWorld {
    /// `GET /authorize` at the relay for `redirect_uri` (code flow, PKCE S256, state `st-1`,
    /// nonce `n-1`, offline_access), with `extra` parameters.
    pub async fn authorize(&self, redirect_uri: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        Browser::new(&self.relay)
            .authorize(&self.relay_client, redirect_uri, extra)
            .await
    }

    /// Starts a login at the relay and follows it to the tenant's login form.
    pub async fn start(&self, redirect_uri: &str, extra: &[(&str, &str)]) -> RelayLogin {
        let res = self.authorize(redirect_uri, extra).await;
        assert_eq!(res.status(), 302, "{:?}", res.text().await);
        let upstream = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            upstream.starts_with(&self.app.tenant.base_url),
            "{upstream}"
        );
        RelayLogin {
            upstream,
            at_tenant: Browser::new(&self.app.tenant.base_url),
        }
    }

    /// Logs `email` in at the tenant: the tenant's answer at the relay's callback.
    pub async fn sign_in(&self, login: &mut RelayLogin, email: &str) -> reqwest::Response {
        let upstream = login.upstream.clone();
        let mut res = login.at_tenant.get(&upstream).await;
        if res.status() == 200 {
            let page = res.text().await.unwrap();
            res = login.at_tenant.log_in(&page, email, "pw").await;
        }
        assert_eq!(res.status(), 302);
        res
    }

    /// A whole login through the relay: where it ended (the SPA's redirect URI) and with what.
    pub async fn login(
        &self,
        redirect_uri: &str,
        email: &str,
        extra: &[(&str, &str)],
    ) -> (String, Value) {
        let mut login = self.start(redirect_uri, extra).await;
        let at_callback = self.sign_in(&mut login, email).await;
        let callback = at_callback.headers()["location"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            callback.starts_with(&format!("{}/callback?", self.relay)),
            "{callback}"
        );
        let res = self.get(&callback).await;
        redirected(&res)
    }

    /// A GET that does not follow redirects.
    pub async fn get(&self, url: &str) -> reqwest::Response {
        Browser::new(&self.relay)
            .http
            .get(url)
            .send()
            .await
            .unwrap()
    }

    /// `POST /oauth/token` at the relay with this form, from `origin` if given.
    pub async fn token(
        &self,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (u16, Value, Option<String>) {
        let mut req = self.app.http.post(self.app.url("/oauth/token")).form(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.unwrap();
        let allowed = res
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status().as_u16(), res.json().await.unwrap(), allowed)
    }

    /// Exchanges a code as the SPA at `redirect_uri` does.
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        origin: Option<&str>,
    ) -> (u16, Value) {
        let (status, body, _) = self
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &self.relay_client),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", VERIFIER),
                ],
                origin,
            )
            .await;
        (status, body)
    }

    /// Refreshes as the SPA does (its redirect URI in the body), from `origin` if given.
    pub async fn refresh(
        &self,
        token: &str,
        redirect_uri: &str,
        origin: Option<&str>,
    ) -> (u16, Value) {
        let (status, body, _) = self
            .token(
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &self.relay_client),
                    ("refresh_token", token),
                    ("redirect_uri", redirect_uri),
                ],
                origin,
            )
            .await;
        (status, body)
    }
}
