//! The login relay against what outside probes tried: a link whose `state` names another
//! transaction than its handle (a mix-up between instances), transactions and refresh tokens
//! outliving their site's suspension or move, oversized and malformed input.

use serde_json::Value;
use sqlx::PgPool;

use crate::{browser::*, helpers::*};

const ACME: &str = "https://www.acme.com/callback";
const BETA: &str = "https://www.beta.com/callback";

/// The handle of a login the relay began (its `fleetgate_login` at the tenant).
fn handle_of(upstream: &str) -> String {
    url::Url::parse(upstream)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "fleetgate_login")
        .unwrap()
        .1
        .into_owned()
}

/// `upstream` with `key` set to `value`.
fn with(upstream: &str, key: &str, value: &str) -> String {
    let mut url = url::Url::parse(upstream).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

async fn error_page(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 400, "{res:?}");
    assert!(res.headers().get("location").is_none());
    res.text().await.unwrap()
}

/// Sends each hook and expects it acknowledged.
async fn acknowledged(w: &RelayWorld, events: &[Value]) {
    for event in events {
        let (status, body) = w.app.hook(event).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// A refresh of `token` is refused as one the relay does not know (any more).
async fn assert_forgotten(w: &RelayWorld, token: &str, when: &str) {
    let (status, body) = w.refresh(token, ACME, None).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (403, Some("Unknown or invalid refresh token.")),
        "{when}: {body}"
    );
}

#[sqlx::test]
async fn a_link_whose_state_names_another_transaction_delivers_no_code(pool: PgPool) {
    let w = relay_world(pool).await;
    // The owner of beta begins a login at acme (the victim's instance) and one at beta (his),
    // and sends the victim acme's tenant link with beta's transaction as its state.
    let at_acme = w.start(ACME, &[]).await;
    let at_beta = w.start(BETA, &[]).await;
    let beta_handle = handle_of(&at_beta.upstream);
    let mut victim = Browser::new(&w.app.tenant.base_url);
    let link = with(&at_acme.upstream, "state", &beta_handle);
    let mut res = victim.get(&link).await;
    if res.status() == 200 {
        let page = res.text().await.unwrap();
        res = victim.log_in(&page, "owner@example.com", "pw").await;
    }
    // The Action refuses a login whose state is not its handle: no code, for anyone.
    let (to, params) = redirected(&res);
    assert_eq!(to, format!("{}/callback", w.relay));
    assert_eq!(params["error"], "access_denied", "{params}");
    assert!(params.get("code").is_none());
    let res = w.get(res.headers()["location"].to_str().unwrap()).await;
    let (to, params) = redirected(&res);
    assert_eq!(to, BETA);
    assert!(params.get("code").is_none(), "{params}");

    // Both made to name beta's transaction: decided for beta, where the victim has no access.
    let link = with(&link, "fleetgate_login", &beta_handle);
    let mut res = victim.get(&link).await;
    if res.status() == 200 {
        let page = res.text().await.unwrap();
        res = victim.log_in(&page, "owner@example.com", "pw").await;
    }
    let (_, params) = redirected(&res);
    assert_eq!(params["error"], "access_denied", "{params}");
}

#[sqlx::test]
async fn a_transaction_delivers_nothing_once_its_site_is_suspended(pool: PgPool) {
    let w = relay_world(pool).await;
    // One login back from the tenant, not yet at the relay's callback; one with its code.
    let mut pending = w.start(BETA, &[]).await;
    let at_callback = w.sign_in(&mut pending, "max@example.com").await;
    let callback = at_callback.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, params) = w.login(BETA, "max@example.com", &[]).await;
    let code = params["code"].as_str().unwrap().to_owned();
    let (status, _) = w.app.hook(&event("instance.suspended", "beta")).await;
    assert_eq!(status, 200);
    let page = error_page(w.get(&callback).await).await;
    assert!(page.contains("cannot sign in now"), "{page}");
    let (status, body) = w.exchange(&code, BETA, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );
}

#[sqlx::test]
async fn a_refresh_token_is_good_only_at_its_own_site_while_that_site_is_its_instances(
    pool: PgPool,
) {
    // Found by the third outside probe: whoever is given a site next serves pages that can
    // read what browsers kept there (auth0-spa-js's refresh tokens in localStorage), and a
    // server sends whatever Origin it likes, or none.
    let w = relay_world(pool).await;
    let (_, params) = w.login(ACME, "owner@example.com", &[]).await;
    let (status, tokens) = w
        .exchange(params["code"].as_str().unwrap(), ACME, None)
        .await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["refresh_token"].as_str().unwrap().to_owned();
    // From another of acme's own sites: not where it was handed out.
    let (status, body) = w
        .refresh(&token, ACME, Some("https://acme.apps.example.com"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );
    // Without an Origin, while www.acme.com is acme's: good (and rotated).
    let (status, next) = w.refresh(&token, ACME, None).await;
    assert_eq!(status, 200, "{next}");
    let token = next["refresh_token"].as_str().unwrap().to_owned();
    // Suspended: refused at its site, whatever the request carries; resumed: good again.
    let (status, _) = w.app.hook(&event("instance.suspended", "acme")).await;
    assert_eq!(status, 200);
    let (status, body) = w.refresh(&token, ACME, None).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (
            403,
            Some("The site this refresh token was issued to cannot sign in now")
        ),
        "{body}"
    );
    let (status, _) = w.app.hook(&event("instance.resumed", "acme")).await;
    assert_eq!(status, 200);
    let (status, next) = w.refresh(&token, ACME, None).await;
    assert_eq!(status, 200, "{next}");
    let token = next["refresh_token"].as_str().unwrap().to_owned();

    // www.acme.com moves to mallory's new instance; acme keeps its platform subdomain.
    acknowledged(
        &w,
        &[
            deployed("acme", &w.owner, &["acme.apps.example.com"]),
            deployed("mallory", &w.member, &["www.acme.com"]),
        ],
    )
    .await;
    for origin in [
        None,
        Some("https://www.acme.com"),
        Some("https://acme.apps.example.com"),
    ] {
        let (status, body) = w.refresh(&token, ACME, origin).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("invalid_grant")),
            "{origin:?}: {body}"
        );
    }
    // Given back, the site does not bring back what was collected while it was away: a host
    // leaving its instance forgets its refresh tokens.
    acknowledged(
        &w,
        &[
            deployed("mallory", &w.member, &["www.mallory.com"]),
            deployed("acme", &w.owner, &["acme.apps.example.com", "www.acme.com"]),
        ],
    )
    .await;
    assert_forgotten(&w, &token, "given back").await;
}

#[sqlx::test]
async fn a_refresh_token_dies_when_its_instance_changes_owner_or_is_deleted(pool: PgPool) {
    // Found by the re-check of the third probe: the next owner of an instance (by an owner
    // change, or its deletion and a deploy again under the same id) could grant its earlier
    // users and refresh, from a server, the tokens they left on its sites.
    let w = relay_world(pool).await;
    let refresh_token = |params: Value| {
        let w = &w;
        async move {
            let code = params["code"].as_str().unwrap().to_owned();
            let (status, tokens) = w.exchange(&code, ACME, None).await;
            assert_eq!(status, 200, "{tokens}");
            tokens["refresh_token"].as_str().unwrap().to_owned()
        }
    };
    let token = refresh_token(w.login(ACME, "owner@example.com", &[]).await.1).await;
    let (status, body) = w
        .app
        .hook(&deployed(
            "acme",
            &w.member,
            &["acme.apps.example.com", "www.acme.com"],
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let res = w
        .app
        .admin(reqwest::Method::POST, "/v1/instances/acme/grants")
        .json(&serde_json::json!({"user_id": w.owner, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "the new owner lets the old one in");
    assert_forgotten(&w, &token, "after an owner change").await;

    // Deleted, then deployed again as it was: its earlier tokens stay forgotten.
    let token = refresh_token(w.login(ACME, "max@example.com", &[]).await.1).await;
    let (status, next) = w.refresh(&token, ACME, None).await;
    assert_eq!(status, 200, "good before: {next}");
    let token = next["refresh_token"].as_str().unwrap().to_owned();
    acknowledged(
        &w,
        &[
            event("instance.deleted", "acme"),
            deployed(
                "acme",
                &w.member,
                &["acme.apps.example.com", "www.acme.com"],
            ),
        ],
    )
    .await;
    assert_forgotten(&w, &token, "after a deletion").await;
}

#[sqlx::test]
async fn oversized_or_malformed_input_is_refused_before_anything_is_stored(pool: PgPool) {
    let w = relay_world(pool).await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM relay_transactions")
            .fetch_one(&w.app.pool)
            .await
            .unwrap()
    };
    let before = count().await;
    let long = "a".repeat(2049);
    for extra in [
        vec![("state", long.as_str())],
        vec![("state", "a\u{0}b")],
        vec![("state", "a\r\nb")],
        vec![("login_hint", long.as_str())],
    ] {
        error_page(w.authorize(ACME, &extra).await).await;
    }
    let logout = |return_to: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &w.relay_client)
            .append_pair("returnTo", return_to)
            .finish();
        format!("{}/v2/logout?{query}", w.relay)
    };
    for return_to in [
        format!("https://www.acme.com/?{long}"),
        "https://www.acme.com/?x\r\nSet-Cookie: a=b".to_owned(),
        "https://www.acme.com/?\u{0}".to_owned(),
    ] {
        error_page(w.get(&logout(&return_to)).await).await;
    }
    assert_eq!(count().await, before, "nothing was stored");
    // The token endpoint: a JSON body too, answered as OAuth errors.
    let res = w
        .app
        .http
        .post(w.app.url("/oauth/token"))
        .json(&serde_json::json!({"grant_type": "refresh_token", "client_id": w.relay_client, "refresh_token": "a\u{0}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");

    // Too many parameters (the third probe stalled a worker with 44,000 in one body): refused
    // before each is compared with the others, in a query, a form and a JSON body.
    let many: Vec<(String, String)> = (0..20_000)
        .map(|i| (format!("p{i}"), String::new()))
        .collect();
    let extra: Vec<(&str, &str)> = many[..100]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = error_page(w.authorize(ACME, &extra).await).await;
    assert!(page.contains("more than 64 parameters"), "{page}");
    let form = w.app.http.post(w.app.url("/oauth/token")).form(&many);
    let json = w.app.http.post(w.app.url("/oauth/token")).json(
        &many
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect::<serde_json::Map<String, Value>>(),
    );
    for req in [form, json] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["error_description"], "more than 64 parameters",
            "{body}"
        );
    }
    assert_eq!(count().await, before, "nothing was stored");
}

#[sqlx::test]
async fn a_code_presented_with_another_transaction_is_never_exchanged_for_it(pool: PgPool) {
    let w = relay_world(pool).await;
    // Two logins, each back from the tenant (decided, with a code), not yet at the callback.
    let mut at_acme = w.start(ACME, &[]).await;
    let to_acme = w.sign_in(&mut at_acme, "owner@example.com").await;
    let mut at_beta = w.start(BETA, &[]).await;
    let to_beta = w.sign_in(&mut at_beta, "max@example.com").await;
    let (_, acme) = redirected(&to_acme);
    let (_, beta) = redirected(&to_beta);
    let callback = |code: &Value, state: &Value| {
        format!(
            "{}/callback?code={}&state={}",
            w.relay,
            code.as_str().unwrap(),
            state.as_str().unwrap()
        )
    };
    // A code for a transaction the Action has not decided: refused.
    let undecided = handle_of(&w.start(BETA, &[]).await.upstream);
    error_page(
        w.get(&callback(&acme["code"], &Value::from(undecided)))
            .await,
    )
    .await;
    // acme's code with beta's transaction reaches beta's callback, but is never exchanged
    // there: the tokens it stands for are bound to acme.
    let res = w.get(&callback(&acme["code"], &beta["state"])).await;
    let (to, params) = redirected(&res);
    assert_eq!(to, BETA);
    let (status, body) = w
        .exchange(params["code"].as_str().unwrap(), BETA, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );
    // The same code for a second transaction: refused (not a 500), and the first keeps it.
    error_page(w.get(&callback(&acme["code"], &acme["state"])).await).await;
    let metrics = w.app.metrics().await;
    assert!(
        metrics.contains("fleetgate_relay_steps_total{outcome=\"error\",step=\"callback\"} 0"),
        "{metrics}"
    );
}
