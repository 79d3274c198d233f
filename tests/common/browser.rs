//! A browser as far as the emulator's login side needs one, without a browser: redirects are
//! not followed but returned, the emulator's cookies (its session, the login form's CSRF
//! cookie) are kept and sent back, the login form is filled in. Shared by the emulator's tests and fleetgate's (`#[path]`-included), each of which
//! uses a part of it.
#![allow(dead_code)]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::header;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The PKCE verifier every login uses (RFC 7636's example).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub struct Browser {
    /// The emulator's base URL.
    pub base: String,
    pub http: reqwest::Client,
    /// Cookie name → value (one host, every path).
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    fn keep_cookie(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (name, value) = v.split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() || v.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// `req` with this browser's cookies.
    pub fn with_cookies(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.cookies.is_empty() {
            return req;
        }
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        req.header(header::COOKIE, jar.join("; "))
    }

    /// Forgets the session (the emulator's `auth0` cookie), keeping the others.
    pub fn forget_session(&mut self) {
        self.cookies.remove("auth0");
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let req = self.with_cookies(self.http.get(url));
        let res = req.send().await.unwrap();
        self.keep_cookie(&res);
        res
    }

    /// `GET /authorize` for `client_id` back to `redirect_uri` (code flow, PKCE S256, state
    /// `st-1`, nonce `n-1`), with `extra` parameters added or replacing those.
    pub async fn authorize(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
        let mut params = vec![
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile email offline_access"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            params.retain(|(p, _)| p != k);
            params.push((k, v));
        }
        let query = serde_urlencoded::to_string(&params).unwrap();
        let url = format!("{}/authorize?{query}", self.base);
        self.get(&url).await
    }

    /// Fills in the login form of `page`.
    pub async fn log_in(&mut self, page: &str, email: &str, password: &str) -> reqwest::Response {
        let txn = between(page, "name=\"txn\" value=\"", "\"");
        assert!(page.contains("name=\"username\"") && page.contains("name=\"password\""));
        let res = self
            .with_cookies(self.http.post(format!("{}/u/login", self.base)))
            .form(&[
                ("txn", txn.as_str()),
                ("username", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        self.keep_cookie(&res);
        res
    }

    /// Fills in the social connection's page (the emulator's stand-in for Google's).
    pub async fn social_log_in(
        &mut self,
        page: &str,
        email: &str,
        name: &str,
    ) -> reqwest::Response {
        let txn = between(page, "name=\"txn\" value=\"", "\"");
        assert!(page.contains("action=\"/u/social\""), "{page}");
        let res = self
            .with_cookies(self.http.post(format!("{}/u/social", self.base)))
            .form(&[("txn", txn.as_str()), ("email", email), ("name", name)])
            .send()
            .await
            .unwrap();
        self.keep_cookie(&res);
        res
    }

    /// Logs in through the form (or at once, with a session): where the login ended, with
    /// its parameters (`code` and `state`, or `error`…).
    pub async fn login(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        email: &str,
        password: &str,
    ) -> (String, Value) {
        let mut res = self.authorize(client_id, redirect_uri, &[]).await;
        if res.status() == 200 {
            let page = res.text().await.unwrap();
            res = self.log_in(&page, email, password).await;
        }
        redirected(&res)
    }

    /// Exchanges a code from [`Self::authorize`] for tokens, optionally from a browser origin.
    pub async fn exchange(&self, client_id: &str, code: &str, redirect_uri: &str) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }
}

pub fn between(text: &str, start: &str, end: &str) -> String {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"))
        + start.len();
    text[from..][..text[from..].find(end).unwrap()].to_owned()
}

/// Where a redirect goes, and the parameters of its query or fragment.
pub fn redirected(res: &reqwest::Response) -> (String, Value) {
    assert_eq!(res.status(), 302, "{res:?}");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let (base, query) = location.split_once(['?', '#']).unwrap_or((&location, ""));
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let map: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k, json!(v))).collect();
    (base.to_owned(), Value::Object(map))
}

/// The payload of a JWT, unverified.
pub fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
