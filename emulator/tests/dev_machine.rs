//! The emulator runs on a developer's machine with real-looking secrets, and any web page the
//! developer visits can reach it: logins bound to the browser that started them, requests only
//! for this machine's names, control routes closed to other sites, secrets kept to the user.

use std::process::Stdio;

use reqwest::{Method, header};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{
    browser::*,
    helpers::*,
    login::{ANN_PASSWORD, CALLBACK, setup},
    node::repository,
};

#[tokio::test]
async fn the_login_form_is_bound_to_the_browser_that_started_it() {
    // ann's account stands for the attacker's.
    let (emu, spa, _) = setup(config()).await;
    let mut victim = Browser::new(&emu.base);
    let form = victim.authorize(&spa, CALLBACK, &[]).await;
    assert_eq!(form.status(), 200);
    assert_eq!(form.headers()["x-frame-options"], "DENY");
    let policy = form.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let page = form.text().await.unwrap();
    let txn = between(&page, "name=\"txn\" value=\"", "\"");
    let post = |from: &Browser, origin: Option<&str>| {
        let mut req = from
            .with_cookies(from.http.post(emu.url("/u/login")))
            .form(&[
                ("txn", txn.as_str()),
                ("username", "ann@example.com"),
                ("password", ANN_PASSWORD),
            ]);
        if let Some(origin) = origin {
            req = req.header(header::ORIGIN, origin);
        }
        req.send()
    };
    // The attacker's page posts the victim's browser a form of the attacker's own login, or
    // makes the victim's browser post one: the first arrives without the victim's cookie, the
    // second with a foreign Origin (and, SameSite=Lax, without the cookie too).
    let attacker = Browser::new(&emu.base);
    for (from, origin) in [
        (&attacker, None),
        (&victim, Some("https://attacker.example")),
    ] {
        let res = post(from, origin).await.unwrap();
        assert_eq!(res.status(), 400, "{origin:?}");
        assert!(res.headers().get(header::LOCATION).is_none());
        assert!(
            res.headers().get(header::SET_COOKIE).is_none(),
            "no session"
        );
    }
    // The browser that started it, from the emulator's own page, logs in.
    let own = emu.base.clone();
    let res = post(&victim, Some(&own)).await.unwrap();
    let (to, params) = redirected(&res);
    assert_eq!(to, CALLBACK);
    assert!(params["code"].is_string(), "{params}");
}

#[tokio::test]
async fn only_requests_for_this_machine_are_served() {
    let (emu, spa, _) = setup(config()).await;
    let secret = emu.m2m().1;
    let authorize =
        format!("/authorize?client_id={spa}&response_type=code&redirect_uri={CALLBACK}");
    for (method, path) in [
        (Method::GET, "/emulator/tenant"),
        (Method::POST, "/emulator/users/token"),
        (Method::GET, "/.well-known/jwks.json"),
        (Method::GET, authorize.as_str()),
        (Method::POST, "/oauth/token"),
    ] {
        // What a page on a DNS-rebound name of its own sends.
        let res = emu
            .http
            .request(method.clone(), emu.url(path))
            .header(header::HOST, "attacker.example:4010")
            .json(&json!({"sub": "auth0|ops", "permissions": ["fleet:admin"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 421, "{method} {path}");
        let body = res.text().await.unwrap();
        assert!(
            !body.contains(&secret) && !body.contains("access_token"),
            "{body}"
        );
    }
    let port = emu.base.rsplit(':').next().unwrap();
    for local in [format!("localhost:{port}"), format!("[::1]:{port}")] {
        let res = emu
            .http
            .get(emu.url("/emulator/tenant"))
            .header(header::HOST, local.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{local}");
    }
}

#[tokio::test]
async fn control_routes_refuse_other_sites_and_bodies_that_are_not_json() {
    let emu = TestEmulator::start(config()).await;
    let create = |email: &str| json!({"email": email, "email_verified": true}).to_string();
    let users = || async {
        emu.http
            .get(emu.url("/emulator/users"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    let before = users().await;
    // A cross-site form or `fetch` without preflight: text/plain.
    let res = emu
        .http
        .post(emu.url("/emulator/users"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(create("plain@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    for (origin, status) in [("https://attacker.example", 403), ("null", 403)] {
        let res = emu
            .http
            .post(emu.url("/emulator/users"))
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(create("cross-site@example.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{origin}");
    }
    assert_eq!(users().await, before, "nothing was created");
    // A page of this machine (an example instance) and a tool (no Origin) may.
    let res = emu
        .http
        .post(emu.url("/emulator/users"))
        .header(header::ORIGIN, "http://acme.apps.localhost:5080")
        .header(header::CONTENT_TYPE, "application/json")
        .body(create("local@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A URL with a control character (or a user name before its host) is never a place to send
/// a browser: `/authorize` and both logouts answer an error page, and a logout refused so
/// leaves the session as it was.
#[tokio::test]
async fn urls_that_are_no_header_value_are_refused_before_matching() {
    let (emu, spa, _) = setup(config()).await;
    let mut browser = Browser::new(&emu.base);
    let (_, params) = browser
        .login(&spa, CALLBACK, "ann@example.com", ANN_PASSWORD)
        .await;
    assert!(params["code"].is_string(), "{params}");
    for (route, parameter) in [
        ("/v2/logout", "returnTo"),
        ("/oidc/logout", "post_logout_redirect_uri"),
    ] {
        for smuggled in [
            "https://acme.apps.example.com/?\n",
            "https://acme.apps.example.com/\r\nSet-Cookie: x=1",
            "https://acme.apps.example.com/\u{7f}",
            "https://evil.example@acme.apps.example.com/",
        ] {
            let query =
                serde_urlencoded::to_string([("client_id", spa.as_str()), (parameter, smuggled)])
                    .unwrap();
            let res = browser.get(&emu.url(&format!("{route}?{query}"))).await;
            assert_eq!(res.status(), 400, "{route} {smuggled:?}");
            assert!(res.headers().get(header::LOCATION).is_none());
        }
    }
    let silent = browser
        .authorize(&spa, CALLBACK, &[("prompt", "none")])
        .await;
    let (_, params) = redirected(&silent);
    assert!(params["code"].is_string(), "the session was kept: {params}");
    for smuggled in [
        "https://acme.apps.example.com/call\nback",
        "https://acme.apps.example.com/callback\r\n",
        "https://acme.apps.example.com/call\tback",
        "https://evil.example@acme.apps.example.com/callback",
    ] {
        let res = browser.authorize(&spa, smuggled, &[]).await;
        assert_eq!(res.status(), 400, "{smuggled:?}");
        assert!(res.headers().get(header::LOCATION).is_none());
        let page = res.text().await.unwrap();
        assert!(page.contains("Callback URL mismatch"), "{page}");
    }
}

/// `fleetgate-emulator` as a developer runs it: its state file is theirs only, its log shows no
/// secret, and the Action's secrets can come from a file (not the process list).
#[tokio::test]
async fn the_emulator_keeps_its_secrets_to_its_user() {
    let dir = std::env::temp_dir().join(format!("fleetgate-emu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("tenant.json");
    let secrets = dir.join("action-secrets");
    std::fs::write(&secrets, "# the Action's\nFLEETGATE_URL=http://127.0.0.1:9\n\nFLEETGATE_ACTION_SECRET=from-the-file\n").unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetgate-emulator"))
        .args(["--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .args([
            "--action",
            "integrations/auth0-action/post-login.js",
            "--action-secret-file",
        ])
        .arg(&secrets)
        .current_dir(repository())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    while !printed.contains("seeded tenant") {
        printed += &lines
            .next_line()
            .await
            .unwrap()
            .expect("the emulator prints its tenant");
    }
    printed += &lines.next_line().await.unwrap().unwrap();
    let base = between(&printed, "AUTH0_DOMAIN=", ")");
    let tenant: Value = reqwest::get(format!("{base}/emulator/tenant"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = tenant["m2m_client_secret"].as_str().unwrap();
    assert!(!printed.contains(secret), "{printed}");
    assert!(printed.contains("m2m_client_id"), "{printed}");
    // The Action got its secret from the file: it asks fleetgate (unreachable here) instead of
    // saying it is not configured.
    let http = reqwest::Client::new();
    let m2m: Value = http
        .post(format!("{base}/oauth/token"))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": tenant["m2m_client_id"],
            "client_secret": secret, "audience": tenant["management_audience"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let spa = tenant["spa_client_id"].as_str().unwrap();
    let patched = http
        .patch(format!("{base}/api/v2/clients/{spa}"))
        .bearer_auth(m2m["access_token"].as_str().unwrap())
        .json(&json!({ "callbacks": [CALLBACK] }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    http.post(format!("{base}/emulator/users"))
        .json(&json!({"email": "dev@example.com", "email_verified": true}))
        .send()
        .await
        .unwrap();
    let (_, params) = Browser::new(&base)
        .login(spa, CALLBACK, "dev@example.com", "password")
        .await;
    assert_eq!(params["error"], "access_denied", "{params}");
    assert!(
        params["error_description"]
            .as_str()
            .unwrap()
            .contains("temporarily unavailable"),
        "{params}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Stopped as a developer stops it (SIGTERM), so it removes its Action harness file.
    let pid = child.id().unwrap().to_string();
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(stopped.success());
    let stderr = child.wait_with_output().await.unwrap().stderr;
    assert!(!String::from_utf8_lossy(&stderr).contains(secret));
    // A file of secrets that is not NAME=VALUE stops the start, naming the line.
    std::fs::write(&secrets, "FLEETGATE_URL=http://127.0.0.1:9\njust-a-value\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetgate-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--action",
            "integrations/auth0-action/post-login.js",
            "--action-secret-file",
        ])
        .arg(&secrets)
        .current_dir(repository())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 2"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn users_are_created_and_listed_without_their_passwords() {
    let (emu, _, user_id) = setup(config()).await;
    let res = emu
        .http
        .post(emu.url("/emulator/users"))
        .json(&json!({"email": "ann@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = emu
        .http
        .post(emu.url("/emulator/users"))
        .json(&json!({"email": "not-an-email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let users: Value = emu.get_json("/emulator/users").await;
    assert_eq!(users[0]["user_id"], user_id);
    assert!(!users.to_string().contains("s3cret"));
}

#[tokio::test]
async fn the_login_page_names_the_site_and_lists_the_users_to_log_in_as() {
    let (emu, spa, _) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    let page = b.authorize(&spa, CALLBACK, &[]).await.text().await.unwrap();
    let shown = between(&page, "<p id=\"continue\">", "</p>");
    assert!(
        shown.contains("<strong>acme.apps.example.com</strong>") && shown.contains("fleetgate SPA"),
        "the instance the login returns to, and the application: {shown}"
    );
    // ann is listed; her link starts the same login with her email filled in.
    let link = between(&page, "<li><a href=\"", "\">ann@example.com</a>").replace("&amp;", "&");
    let res = b.get(&emu.url(&link)).await;
    assert_eq!(res.status(), 200);
    let again = res.text().await.unwrap();
    assert!(again.contains("value=\"ann@example.com\""), "{again}");
    let res = b.log_in(&again, "ann@example.com", ANN_PASSWORD).await;
    let (to, params) = redirected(&res);
    assert_eq!(
        (to.as_str(), params["state"].as_str()),
        (CALLBACK, Some("st-1")),
        "the same login: its redirect URI and state"
    );
    // A tenant of many users: the first twenty, and how many more.
    for n in 0..21 {
        let res = emu
            .http
            .post(emu.url("/emulator/users"))
            .json(&json!({ "email": format!("u{n}@example.com") }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let mut other = Browser::new(&emu.base);
    let page = other
        .authorize(&spa, CALLBACK, &[])
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("<li><a href=").count(), 20, "{page}");
    assert!(page.contains("… and 2 more."), "{page}");
}
