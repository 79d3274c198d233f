//! The login relay (`FLEETGATE_LOGIN_MODE=relay`) over HTTP, with the emulator running the
//! project's Action: logins for instances no allow-list holds, and one test per attack in
//! docs/relay.md's threat model.

use serde_json::Value;
use sqlx::PgPool;

use crate::{browser::*, helpers::*, schema::Checker};

const ACME: &str = "https://www.acme.com/callback";
const BETA: &str = "https://www.beta.com/callback";
const DENIED: &str = "You do not have access to this application.";

fn claim(token: &Value, name: &str) -> Value {
    payload(token.as_str().unwrap())[format!("https://fleetgate.dev/{name}")].clone()
}

/// An error page: HTML, 400, and no redirect anywhere.
async fn error_page(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 400, "{res:?}");
    assert!(res.headers().get("location").is_none());
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.text().await.unwrap()
}

#[sqlx::test]
async fn an_instance_no_list_holds_logs_in_through_the_relay_bound_to_itself(pool: PgPool) {
    let w = relay_world(pool).await;
    // A new custom domain logs in as soon as its hook has answered; no list holds it.
    let (status, _) = w
        .app
        .hook(&deployed("gamma", &w.owner, &["www.gamma.com"]))
        .await;
    assert_eq!(status, 200);
    let (to, params) = w
        .login("https://www.gamma.com/callback", "owner@example.com", &[])
        .await;
    assert_eq!(to, "https://www.gamma.com/callback");
    assert_eq!(params["state"], "st-1", "the SPA's own state comes back");
    let (status, tokens) = w
        .exchange(
            params["code"].as_str().unwrap(),
            "https://www.gamma.com/callback",
            Some("https://www.gamma.com"),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claim(&tokens["access_token"], "instance"), "gamma");
    assert_eq!(claim(&tokens["id_token"], "role"), "owner");
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], w.relay_client.as_str());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["iss"], format!("{}/", w.app.tenant.base_url));
    for client in [&w.spa, &w.relay_client] {
        let lists = w.app.tenant.client(client).await;
        assert!(!lists.to_string().contains("gamma"), "{lists}");
    }

    // The instance's /config tells its SPA to log in at the relay.
    let (status, config) = w.app.get_json("/v1/instances/gamma/config").await;
    assert_eq!(status, 200);
    assert_eq!(config["login"], "relay");
    assert_eq!(config["domain"], w.relay.as_str());
    assert_eq!(config["client_id"], w.relay_client.as_str());
    assert_eq!(config["issuer"], format!("{}/", w.app.tenant.base_url));

    // A refresh stays at gamma, and rotates.
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, next) = w
        .refresh(&rt, "https://www.gamma.com", Some("https://www.gamma.com"))
        .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(claim(&next["access_token"], "instance"), "gamma");
    assert_ne!(next["refresh_token"], rt.as_str());

    // Someone without a grant gets the Action's one message at the instance.
    let (to, params) = w
        .login("https://www.gamma.com/callback", "eve@example.com", &[])
        .await;
    assert_eq!(to, "https://www.gamma.com/callback");
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["error_description"], DENIED);
    assert!(params.get("code").is_none());
}

#[sqlx::test]
async fn each_response_mode_answers_the_spa_where_it_asked(pool: PgPool) {
    let w = relay_world(pool).await;
    let (to, params) = w
        .login(ACME, "owner@example.com", &[("response_mode", "fragment")])
        .await;
    assert_eq!(to, ACME);
    assert!(params["code"].is_string());

    // form_post and web_message are pages: one script, its nonce in the policy, framable and
    // posting only to the SPA's origin.
    for (mode, redirect_uri, marker) in [
        (
            "form_post",
            ACME,
            "action=\"https://www.acme.com/callback\"",
        ),
        (
            "web_message",
            "https://www.acme.com",
            "\"type\":\"authorization_response\"",
        ),
    ] {
        let mut login = w
            .start(redirect_uri, &[("response_mode", mode), ("prompt", "none")])
            .await;
        // prompt=none without a session: the tenant's error, handed back in the same mode.
        let at_callback = w.sign_in(&mut login, "owner@example.com").await;
        let res = w
            .get(at_callback.headers()["location"].to_str().unwrap())
            .await;
        assert_eq!(res.status(), 200, "{mode}");
        let policy = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.contains("frame-ancestors https://www.acme.com")
                && policy.contains("script-src 'nonce-"),
            "{policy}"
        );
        let page = res.text().await.unwrap();
        assert!(page.contains(marker), "{page}");
        assert!(page.contains("login_required"), "{page}");
        assert!(page.contains("st-1"), "{page}");
        assert_eq!(page.matches("<script").count(), 1);
    }
}

#[sqlx::test]
async fn a_silent_login_with_a_session_at_the_tenant_is_posted_to_the_spa_and_bound_to_it(
    pool: PgPool,
) {
    // What auth0-spa-js does in a hidden iframe on a reload (getTokenSilently without a
    // refresh token): prompt=none, response_mode=web_message, its page's origin as
    // redirect_uri; the tenant's session (its cookie) answers without a form.
    const ORIGIN: &str = "https://www.acme.com";
    let w = relay_world(pool).await;
    let mut first = w.start(ACME, &[]).await;
    w.sign_in(&mut first, "owner@example.com").await;
    let silent = w
        .start(
            ORIGIN,
            &[("response_mode", "web_message"), ("prompt", "none")],
        )
        .await;
    let at_callback = first.at_tenant.get(&silent.upstream).await;
    assert_eq!(at_callback.status(), 302, "the session answers at once");
    let res = w
        .get(at_callback.headers()["location"].to_str().unwrap())
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(&format!(",\"{ORIGIN}\");")),
        "posted to the SPA only: {page}"
    );
    let code = page
        .split("\"code\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no code in {page}"));
    assert!(page.contains("\"state\":\"st-1\""), "{page}");
    let (status, tokens) = w.exchange(code, ORIGIN, Some(ORIGIN)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claim(&tokens["access_token"], "instance"), "acme");
    assert!(tokens["refresh_token"].is_string());
}

#[sqlx::test]
async fn a_redirect_uri_outside_the_registry_is_an_error_page_never_a_redirect(pool: PgPool) {
    let w = relay_world(pool).await;
    for redirect_uri in [
        "https://www.unknown.com/callback",
        // A suspended instance.
        "https://www.paused.com/callback",
        // Not the callback template's path, a slash more, a query, a port, http.
        "https://www.acme.com/elsewhere",
        "https://www.acme.com/callback/",
        "https://www.acme.com/callback?next=https://evil.com",
        "https://www.acme.com:8443/callback",
        "http://www.acme.com/callback",
        // Two labels under the platform domain: no wildcard stands for them.
        "https://x.acme.apps.example.com/callback",
        "https://*.apps.example.com/callback",
        // Userinfo and look-alike tricks.
        "https://www.acme.com@evil.com/callback",
        "https://evil.com@www.acme.com/callback",
        "https://www.acme.com.evil.com/callback",
        "https://www.acme.com%2F@evil.com/callback",
        "https://127.0.0.1/callback",
        "javascript:alert(1)//www.acme.com/callback",
        // An origin is good for silent logins (web_message) only.
        "https://www.acme.com",
    ] {
        let page = error_page(w.authorize(redirect_uri, &[]).await).await;
        assert!(
            page.contains("Callback URL mismatch") || page.contains("redirect_uri"),
            "{redirect_uri}: {page}"
        );
    }
    // The SPA's application, a parameter twice, or the relay's own parameter: an error page.
    let page = error_page(Browser::new(&w.relay).authorize(&w.spa, ACME, &[]).await).await;
    assert!(page.contains("Unknown client"), "{page}");
    let twice = format!(
        "{}/authorize?client_id={}&redirect_uri={ACME}&redirect_uri=https://evil.com/callback",
        w.relay, w.relay_client
    );
    error_page(w.get(&twice).await).await;
    error_page(w.authorize(ACME, &[("fleetgate_login", "x")]).await).await;

    // A good redirect URI without PKCE goes back to the SPA with an OAuth error.
    let res = w.authorize(ACME, &[("code_challenge", "")]).await;
    let (to, params) = redirected(&res);
    assert_eq!(to, ACME);
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "st-1");
}

#[sqlx::test]
async fn a_code_works_once_for_its_own_redirect_uri_origin_and_client(pool: PgPool) {
    let w = relay_world(pool).await;
    // Every answer of the token endpoint matches the spec (tests/api/bodies.rs leaves it here).
    let mut spec = Checker::new();
    let c = w.login(ACME, "owner@example.com", &[]).await.1["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = |client: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", client.to_owned()),
            ("code", c.clone()),
            ("redirect_uri", ACME.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ]
    };
    for (form, expected) in [
        (form(&w.spa), 401),
        (form(&w.relay_client), 200),
        (form(&w.relay_client), 403),
        (vec![("client_id", w.relay_client.clone())], 400),
    ] {
        let req = w.app.http.post(w.app.url("/oauth/token")).form(&form);
        let (status, body) = spec.check(reqwest::Method::POST, "/oauth/token", req).await;
        assert_eq!(status, expected, "{body}");
    }
    assert!(spec.failures.is_empty(), "{:?}", spec.failures);
    let code = |params: Value| params["code"].as_str().unwrap().to_owned();

    // Another instance's redirect URI or origin: refused, and the code is spent.
    let c = code(w.login(ACME, "owner@example.com", &[]).await.1);
    let (status, body) = w.exchange(&c, BETA, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant"))
    );
    let (status, _) = w.exchange(&c, ACME, None).await;
    assert_eq!(status, 403, "a code presented wrongly is spent");

    let c = code(w.login(ACME, "owner@example.com", &[]).await.1);
    let (status, body) = w.exchange(&c, ACME, Some("https://www.beta.com")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant"))
    );

    // Another client: refused before the code is looked at.
    let c = code(w.login(ACME, "owner@example.com", &[]).await.1);
    let (status, body, _) = w
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &w.spa),
                ("code", &c),
                ("redirect_uri", ACME),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A wrong PKCE verifier: the tenant refuses it.
    let (status, body, _) = w
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &w.relay_client),
                ("code", &c),
                ("redirect_uri", ACME),
                ("code_verifier", "x".repeat(43).as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant"))
    );

    // Good once; replayed, refused.
    let c = code(w.login(ACME, "owner@example.com", &[]).await.1);
    let (status, tokens) = w.exchange(&c, ACME, Some("https://www.acme.com")).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, body) = w.exchange(&c, ACME, Some("https://www.acme.com")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant"))
    );
    // A made-up code never reaches the tenant.
    let (status, _) = w.exchange("made-up", ACME, None).await;
    assert_eq!(status, 403);
}

#[sqlx::test]
async fn a_refresh_token_never_becomes_another_instances_token(pool: PgPool) {
    let w = relay_world(pool).await;
    // max@example.com owns beta and is granted at acme too.
    let res = w
        .app
        .admin(reqwest::Method::POST, "/v1/instances/acme/grants")
        .json(&serde_json::json!({"user_id": w.member, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (_, params) = w.login(ACME, "max@example.com", &[]).await;
    let (status, tokens) = w
        .exchange(params["code"].as_str().unwrap(), ACME, None)
        .await;
    assert_eq!(status, 200, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();

    // From beta's origin: refused.
    let (status, body) = w.refresh(&rt, BETA, Some("https://www.beta.com")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant"))
    );
    // With beta's redirect URI in the body (no origin, as a script would): still acme's.
    let (status, next) = w.refresh(&rt, BETA, None).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(claim(&next["access_token"], "instance"), "acme");
    assert_eq!(claim(&next["access_token"], "role"), "member");
    // A grant removed: the next refresh is refused by the Action.
    let current = next["refresh_token"].as_str().unwrap().to_owned();
    let (_, grants) = w.app.get_json("/v1/instances/acme/grants").await;
    let grant = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["user_id"] == w.member.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = w
        .app
        .admin(
            reqwest::Method::DELETE,
            &format!("/v1/instances/acme/grants/{grant}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, body) = w.refresh(&current, ACME, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );

    // The rotated-out token is refused by the tenant; a made-up one by the relay.
    let (status, _) = w.refresh(&rt, ACME, None).await;
    assert_eq!(status, 403);
    let (status, body) = w.refresh("made-up-refresh-token", ACME, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant"))
    );
}

#[sqlx::test]
async fn a_transaction_cannot_be_forged_altered_or_used_twice(pool: PgPool) {
    let w = relay_world(pool).await;
    // The callback of a login comes back once; a made-up state is no transaction.
    let mut login = w.start(ACME, &[]).await;
    let at_callback = w.sign_in(&mut login, "owner@example.com").await;
    let callback = at_callback.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.get(&callback).await.status(), 302);
    error_page(w.get(&callback).await).await;
    error_page(
        w.get(&format!(
            "{}/callback?code=x&state={}",
            w.relay,
            "A".repeat(43)
        ))
        .await,
    )
    .await;

    // The tenant's login URL replayed (the session makes it silent): the Action's decision
    // took the handle the first time, so the second login is denied.
    let again = login.at_tenant.get(&login.upstream.clone()).await;
    let (to, params) = redirected(&again);
    assert_eq!(to, format!("{}/callback", w.relay));
    assert_eq!(params["error"], "access_denied", "{params}");

    // Straight at the tenant with the relay's application: no handle, or a made-up one, or
    // the handle altered: denied.
    let relay_callback = format!("{}/callback", w.relay);
    let handle: String = url::Url::parse(&w.start(ACME, &[]).await.upstream)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "fleetgate_login")
        .unwrap()
        .1
        .into_owned();
    let mut altered = handle.clone();
    altered.replace_range(0..1, if handle.starts_with('A') { "B" } else { "A" });
    for extra in [
        vec![],
        vec![("fleetgate_login", "A".repeat(43))],
        vec![("fleetgate_login", altered)],
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut b = Browser::new(&w.app.tenant.base_url);
        let mut res = b.authorize(&w.relay_client, &relay_callback, &extra).await;
        if res.status() == 200 {
            let page = res.text().await.unwrap();
            res = b.log_in(&page, "owner@example.com", "pw").await;
        }
        let (to, params) = redirected(&res);
        assert_eq!(to, relay_callback);
        assert_eq!(params["error"], "access_denied", "{extra:?}: {params}");
    }
}

#[sqlx::test]
async fn cors_and_logout_answer_registered_instances_only(pool: PgPool) {
    let w = relay_world(pool).await;
    for (origin, allowed) in [
        ("https://www.acme.com", true),
        ("https://www.beta.com", true),
        ("https://www.paused.com", false),
        ("https://evil.com", false),
        ("null", false),
    ] {
        let res = w
            .app
            .http
            .request(reqwest::Method::OPTIONS, w.app.url("/oauth/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        let got = res.headers().get("access-control-allow-origin").cloned();
        assert_eq!(got.is_some(), allowed, "{origin}");
        let (_, _, got) = w
            .token(&[("grant_type", "refresh_token")], Some(origin))
            .await;
        assert_eq!(got.as_deref() == Some(origin), allowed, "{origin}");
    }

    // Logout: returnTo outside the registry is an error page.
    for return_to in [
        "https://evil.com/",
        "https://www.paused.com/",
        "https://www.acme.com/elsewhere",
        "https://www.acme.com@evil.com/",
    ] {
        let url = format!(
            "{}/v2/logout?client_id={}&returnTo={}",
            w.relay,
            w.relay_client,
            urlencode(return_to)
        );
        error_page(w.get(&url).await).await;
    }
    // A good one goes through the tenant's logout and back, once.
    let mut login = w.start(ACME, &[]).await;
    w.sign_in(&mut login, "owner@example.com").await;
    let url = format!(
        "{}/v2/logout?client_id={}&returnTo={}",
        w.relay,
        w.relay_client,
        urlencode("https://www.acme.com/?bye=1")
    );
    let res = w.get(&url).await;
    assert_eq!(res.status(), 302);
    let to_tenant = res.headers()["location"].to_str().unwrap().to_owned();
    let res = login.at_tenant.get(&to_tenant).await;
    assert_eq!(res.status(), 302, "{:?}", res.text().await);
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with(&format!("{}/logged-out?", w.relay)),
        "{back}"
    );
    let res = w.get(&back).await;
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "https://www.acme.com/?bye=1");
    error_page(w.get(&back).await).await;
    // The session ended: a silent login now needs a login.
    let res = login.at_tenant.get(&login.upstream.clone()).await;
    assert_eq!(res.status(), 200, "the login form again");

    // OIDC logout gives the state back.
    let url = format!(
        "{}/oidc/logout?client_id={}&post_logout_redirect_uri={}&state=s-9",
        w.relay,
        w.relay_client,
        urlencode("https://www.beta.com/")
    );
    let res = w.get(&url).await;
    let to_tenant = res.headers()["location"].to_str().unwrap().to_owned();
    let res = Browser::new(&w.app.tenant.base_url).get(&to_tenant).await;
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    let res = w.get(&back).await;
    assert_eq!(res.headers()["location"], "https://www.beta.com/?state=s-9");
}

#[sqlx::test]
async fn in_direct_mode_the_relay_is_off(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for path in ["/authorize", "/callback", "/v2/logout", "/logged-out"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_problem(res, 404, "relay_off").await;
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[sqlx::test]
async fn a_login_through_the_relays_application_is_decided_by_its_transaction_only(pool: PgPool) {
    let w = relay_world(pool).await;
    let decide = |body: Value| {
        let app = &w.app;
        async move {
            let res = app
                .http
                .post(app.url("/v1/login-decisions"))
                .bearer_auth(WORLD_ACTION_SECRET)
                .json(&body)
                .send()
                .await
                .unwrap();
            into_json(res).await
        }
    };
    let owner = w.owner.clone();
    // Through the relay's application, whatever else names an instance: refused.
    for named in [
        serde_json::json!({"redirect_uri": ACME}),
        serde_json::json!({"instance_id": "acme"}),
    ] {
        let mut body = serde_json::json!({"user_id": owner, "client_id": w.relay_client});
        body.as_object_mut()
            .unwrap()
            .extend(named.as_object().unwrap().clone());
        let (status, decision) = decide(body).await;
        assert_eq!(status, 200);
        assert_eq!(
            (decision["allow"].as_bool(), decision["reason"].as_str()),
            (Some(false), Some("relay_login_missing"))
        );
    }
    // A real handle decides once, for its own instance.
    let handle: String = url::Url::parse(&w.start(ACME, &[]).await.upstream)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "fleetgate_login")
        .unwrap()
        .1
        .into_owned();
    // Through another application it means nothing (and is not spent).
    let (_, decision) =
        decide(serde_json::json!({"user_id": owner, "client_id": w.spa, "relay_login": handle}))
            .await;
    assert_eq!(decision["reason"], "relay_login_elsewhere");
    let body =
        serde_json::json!({"user_id": owner, "client_id": w.relay_client, "relay_login": handle});
    let (_, decision) = decide(body.clone()).await;
    assert_eq!(
        (
            decision["allow"].as_bool(),
            decision["instance_id"].as_str()
        ),
        (Some(true), Some("acme"))
    );
    let (_, decision) = decide(body).await;
    assert_eq!(
        (decision["allow"].as_bool(), decision["reason"].as_str()),
        (Some(false), Some("relay_login_invalid"))
    );
    // Exactly one way of naming the instance.
    let (status, _) = decide(serde_json::json!({"user_id": owner, "client_id": w.relay_client, "relay_login": "x", "redirect_uri": ACME})).await;
    assert_eq!(status, 422);
}

/// The relay's hop writes commit without waiting for the log's flush (docs/relay.md, "What the
/// relay stores"), and that is theirs alone: each leaves its pooled connection as durable as
/// it found it, so whatever is written on that connection next — a deploy, a grant — waits for
/// the disk as before.
#[sqlx::test]
async fn the_relays_unflushed_writes_leave_their_connection_durable(pool: PgPool) {
    use fleetgate::{
        db::relay,
        domain::{Actor, Hostname, InstanceId, UserId},
    };
    let mut tx = pool.begin().await.unwrap();
    fleetgate::registry::Registry::new(None)
        .deploy(
            &mut tx,
            &Actor {
                name: "test".into(),
                request_id: None,
            },
            &InstanceId::parse("acme").unwrap(),
            &UserId::parse("auth0|owner").unwrap(),
            &[Hostname::parse("www.acme.com").unwrap()],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // One connection: every statement below runs on the one the writes used.
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let durable = || async {
        sqlx::query_scalar::<_, String>("SHOW synchronous_commit")
            .fetch_one(&one)
            .await
            .unwrap()
    };
    assert_eq!(durable().await, "on");
    let (handle, code, token) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    relay::insert(
        &one,
        &relay::NewTransaction {
            handle_hash: &handle,
            kind: "login",
            instance_id: "acme",
            return_to: ACME,
            state: Some("s"),
            response_mode: "query",
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
        },
    )
    .await
    .unwrap();
    assert_eq!(durable().await, "on", "after a transaction begun");
    assert!(relay::decide(&one, &handle).await.unwrap().is_some());
    let back = relay::come_back(&one, "login", &handle, Some(&code)).await;
    assert_eq!(back.unwrap().unwrap().return_to, ACME);
    assert_eq!(durable().await, "on", "after a transaction come back");
    assert!(relay::exchange(&one, &code, 300).await.unwrap().is_some());
    assert_eq!(durable().await, "on", "after a code exchanged");
    relay::bind_refresh_token(&one, &token, "acme", "www.acme.com")
        .await
        .unwrap();
    assert_eq!(durable().await, "on", "after a refresh token bound");
    let bound = relay::refresh_token(&one, &token, 60)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (bound.instance_id.as_str(), bound.host.as_deref()),
        ("acme", Some("www.acme.com"))
    );
    assert_eq!(durable().await, "on", "after a refresh token used");
}
