//! Trust across lifetimes: a deleted instance forgets who had access, keys die with the
//! access of whoever saw them, and identities from outside cannot forge audit lines.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{grants::*, helpers::*};

async fn status_with(f: &Fleet, key: &str) -> u16 {
    f.as_bearer(key, Method::GET, "/v1/instances/acme/grants")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn rotate(f: &Fleet, bearer: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = f.as_bearer(bearer, Method::POST, "/v1/instances/acme/keys/rotate");
    if let Some(b) = body {
        req = req.json(&b);
    }
    into_json(req.send().await.unwrap()).await
}

/// A long-poll of acme's grants with `key`, parked past `since` for up to `wait` seconds on a
/// connection of its own; its answer when it ends.
fn park(f: &Fleet, key: &str, since: i64, wait: u32) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = reqwest::Client::new()
        .get(f.app.url(&format!(
            "/v1/instances/acme/grants?since={since}&wait={wait}"
        )))
        .bearer_auth(key);
    tokio::spawn(async move { request.send().await.unwrap() })
}

/// Deleting an instance removes its grants and invitations, each in its change log (a
/// follower sees them go) and its audit log; deploying the same id again, for a new owner,
/// starts empty: neither the old admin grantee nor the old invitation gets in.
#[sqlx::test]
async fn deletion_forgets_grants_and_a_redeploy_starts_empty(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    for body in [
        json!({"user_id": "auth0|ann", "role": "admin"}),
        json!({"email": "bob@example.com"}),
    ] {
        assert_eq!(f.grant(&f.app.admin_token, "acme", body).await.0, 201);
    }
    let (_, _, before) = f.poll("", None).await;
    let revision = before["revision"].as_i64().unwrap();

    let (status, _) = f.app.hook(&event("instance.deleted", "acme")).await;
    assert_eq!(status, 200);
    let removed: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, action FROM audit_log WHERE target_id = 'acme' AND action = 'grant.removed'",
    )
    .fetch_all(&f.app.pool)
    .await
    .unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(removed.iter().all(|(actor, _)| actor.starts_with("hook:")));

    // Back, for someone else: a new key, nothing from before.
    let (status, back) = f
        .app
        .hook(&deployed(
            "acme",
            "auth0|owner-2",
            &["acme.apps.example.com"],
        ))
        .await;
    assert_eq!(status, 200, "{back}");
    let key = back["instance_key"].as_str().expect("a new key").to_owned();
    let delta: Value = f
        .as_bearer(
            &key,
            Method::GET,
            &format!("/v1/instances/acme/grants?since={revision}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(delta["removed"].as_array().unwrap().len(), 2, "{delta}");
    assert_eq!(delta["owner"], "auth0|owner-2", "{delta}");
    let snapshot: Value = f
        .as_bearer(&key, Method::GET, "/v1/instances/acme/grants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snapshot["grants"], json!([]), "{snapshot}");
    for (user, email) in [("auth0|ann", None), ("auth0|bob", Some("bob@example.com"))] {
        let (status, d) = f
            .decide(login(
                user,
                email,
                true,
                "https://acme.apps.example.com/callback",
            ))
            .await;
        assert_eq!(
            (status, d["allow"].clone()),
            (200, json!(false)),
            "{user}: {d}"
        );
    }
    let (_, d) = f
        .decide(login(
            "auth0|owner-2",
            None,
            true,
            "https://acme.apps.example.com/callback",
        ))
        .await;
    assert_eq!(d["role"], "owner", "{d}");
}

/// Keys are held by the owner and fleetgate admins only: an instance admin can neither rotate
/// nor list them; a rotation can revoke the previous keys at once; a new owner (by deploy
/// hook or by an admin) ends every key issued before; each key records who minted it.
#[sqlx::test]
async fn keys_die_with_the_access_of_whoever_saw_them(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    assert_eq!(
        f.grant(
            &f.app.admin_token,
            "acme",
            json!({"user_id": "auth0|ann", "role": "admin"})
        )
        .await
        .0,
        201
    );
    let ann = f.user("auth0|ann");
    let owner = f.user(OWNER);
    let (status, _) = rotate(&f, &ann, None).await;
    assert_eq!(status, 403, "an instance admin may not rotate");
    let res = f
        .as_bearer(&ann, Method::GET, "/v1/instances/acme/keys")
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    assert_eq!(status_with(&f, &f.key).await, 200, "the key still works");

    // The owner rotates and revokes the previous key at once.
    let (status, rotated) = rotate(&f, &owner, Some(json!({"revoke_previous": true}))).await;
    assert_eq!(status, 201, "{rotated}");
    assert!(rotated["previous_keys_expire_at"].is_null(), "{rotated}");
    let owners_key = rotated["instance_key"].as_str().unwrap().to_owned();
    assert_eq!(status_with(&f, &f.key).await, 401, "revoked at once");
    assert_eq!(status_with(&f, &owners_key).await, 200);
    let (status, bad) = rotate(&f, &owner, Some(json!({"revoke_previous": "yes"}))).await;
    assert_eq!(status, 422, "{bad}");

    // An admin mints another (the owner's stays in its grace period); both are listed with
    // who minted them, never the key or its hash.
    let (_, by_admin) = rotate(&f, &f.app.admin_token, None).await;
    let admins_key = by_admin["instance_key"].as_str().unwrap().to_owned();
    let (status, keys) = f.app.get_json("/v1/instances/acme/keys").await;
    assert_eq!(status, 200, "{keys}");
    let minted: Vec<&str> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["minted_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        minted,
        ["admin:auth0|admin-1", &format!("owner:{OWNER}")],
        "{keys}"
    );
    let text = keys.to_string();
    assert!(
        !text.contains(&admins_key) && !text.contains("hash"),
        "{text}"
    );

    // A new owner by deploy hook: every earlier key ends, the hook's answer has a new one.
    let (status, moved) = f
        .app
        .hook(&deployed(
            "acme",
            "auth0|owner-2",
            &["acme.apps.example.com", "www.acme.com"],
        ))
        .await;
    assert_eq!(status, 200);
    for old in [&owners_key, &admins_key] {
        assert_eq!(
            status_with(&f, old).await,
            401,
            "a key from before the new owner"
        );
    }
    let new_owners = moved["instance_key"]
        .as_str()
        .expect("a key for the new owner");
    assert_eq!(status_with(&f, new_owners).await, 200);
    // The previous owner has no access left to rotate with.
    assert_eq!(rotate(&f, &owner, None).await.0, 404);

    // A new owner by an admin: keys end too; the new owner rotates to get one.
    let res = f
        .app
        .admin(Method::PATCH, "/v1/instances/acme")
        .json(&json!({"owner": "auth0|owner-3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(status_with(&f, new_owners).await, 401);
    let (status, fresh) = rotate(&f, &f.user("auth0|owner-3"), None).await;
    assert_eq!(status, 201, "{fresh}");
    assert_eq!(
        status_with(&f, fresh["instance_key"].as_str().unwrap()).await,
        200
    );
}

/// A token's `sub` is input from outside: a newline in it cannot split or forge an audit
/// entry's actor.
#[sqlx::test]
async fn actors_from_outside_are_escaped_in_the_audit_log(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let mut claims = f.app.tenant.claims(&["fleet:admin"]);
    claims["sub"] = json!("auth0|eve\nadmin:auth0|root");
    let res = f
        .as_bearer(
            &f.app.tenant.sign(&claims),
            Method::POST,
            "/v1/instances/acme/grants",
        )
        .json(&json!({"user_id": "auth0|max"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'grant.added' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&f.app.pool)
    .await
    .unwrap();
    assert_eq!(actor, "admin:auth0|eve\\nadmin:auth0|root");
}

/// An invitation is claimed only by the mailbox it names: Unicode case rules never apply to
/// the local part, so `\u{212A}im` (KELVIN SIGN) cannot claim `kim`'s invitation.
#[sqlx::test]
async fn look_alike_emails_do_not_claim_an_invitation(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let (status, _) = f
        .grant(&f.app.admin_token, "acme", json!({"email": "kim@corp.com"}))
        .await;
    assert_eq!(status, 201);
    let uri = "https://www.acme.com/callback";
    for look_alike in ["\u{212A}im@corp.com", "\u{212A}IM@CORP.COM"] {
        let (status, d) = f
            .decide(login("auth0|mallory", Some(look_alike), true, uri))
            .await;
        assert_eq!(
            (status, d["allow"].clone()),
            (200, json!(false)),
            "{look_alike}: {d}"
        );
    }
    let (status, _) = f
        .grant(
            &f.app.admin_token,
            "acme",
            json!({"email": "\u{212A}im@corp.com"}),
        )
        .await;
    assert_eq!(status, 422, "no invitation for a spelling that is not NFKC");
    let (_, d) = f
        .decide(login("auth0|kim", Some("Kim@Corp.com"), true, uri))
        .await;
    assert_eq!(d["reason"], "invitation_accepted", "{d}");
}

/// Parked long-polls end when their client hangs up (the gauge drops within a second instead
/// of after the poll's wait), and one caller may park only so many at once: the next is
/// answered 429 at once, and other callers are not affected.
#[sqlx::test]
async fn long_polls_end_with_their_client_and_are_capped_per_caller(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let (_, _, snapshot) = f.poll("", None).await;
    let revision = snapshot["revision"].as_i64().unwrap();
    let parked = || async {
        let text = f.app.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix("fleetgate_grants_parked_polls")?
                    .trim()
                    .parse::<i64>()
                    .ok()
            })
            .unwrap()
    };
    let url = f.app.url(&format!(
        "/v1/instances/acme/grants?since={revision}&wait=60"
    ));
    let cap = 4;
    let mut waiting = Vec::new();
    for _ in 0..cap {
        // A client of its own each: a connection each, closed when its task is aborted.
        let request = reqwest::Client::new().get(&url).bearer_auth(&f.key);
        waiting.push(tokio::spawn(async move { request.send().await }));
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while parked().await < cap {
        assert!(std::time::Instant::now() < until, "the polls did not park");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let started = std::time::Instant::now();
    let res = f
        .as_bearer(
            &f.key,
            Method::GET,
            &format!("/v1/instances/acme/grants?since={revision}&wait=60"),
        )
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "answered at once"
    );
    assert_eq!(res.headers()["retry-after"], "1");
    assert_problem(res, 429, "too_many_polls").await;
    // Another caller (the owner) still parks.
    let owner = f.user(OWNER);
    let other = {
        let request = reqwest::Client::new().get(&url).bearer_auth(owner);
        tokio::spawn(async move { request.send().await })
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while parked().await < cap + 1 {
        assert!(
            std::time::Instant::now() < until,
            "the owner's poll did not park"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The clients hang up.
    for task in waiting.into_iter().chain([other]) {
        task.abort();
    }
    let hung_up = std::time::Instant::now();
    while parked().await > 0 {
        assert!(
            hung_up.elapsed() < std::time::Duration::from_secs(1),
            "{} polls still parked {:?} after their clients left",
            parked().await,
            hung_up.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// An address that keeps failing to authenticate is answered 429 with `Retry-After` once its
/// quota is spent; a valid credential from the same address still gets in, and other
/// addresses are not affected.
#[sqlx::test]
async fn repeated_failed_authentication_from_one_address_is_slowed(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool,
        TestTenant::start().await,
        &[("FLEETGATE_AUTH_FAILURES_PER_MINUTE", "5".into())],
    )
    .await;
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let attacker = from("127.0.0.1");
    let instances = app.url("/v1/instances");
    for bearer in ["junk", "fgi_junk", "eyJhbGciOiJub25lIn0.e30.", "x", "y"] {
        let res = attacker
            .get(&instances)
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "within the quota");
    }
    for bearer in [None, Some("junk")] {
        let mut req = attacker.get(&instances);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let res = req.send().await.unwrap();
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=12).contains(&wait), "Retry-After {wait}");
        assert_problem(res, 429, "too_many_failed_authentications").await;
    }
    let valid = attacker
        .get(&instances)
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        valid.status(),
        200,
        "a valid credential from the same address gets in"
    );
    let other = from("127.0.0.2")
        .get(&instances)
        .bearer_auth("junk")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401, "another address has its own quota");
}

/// A long-poll parked before its key was revoked answers with the key's refusal, never with the
/// change that woke it (an invitation: an email the revoked key must not learn), nor with a
/// 304 when its wait ends. The key's successor polls on.
#[sqlx::test]
async fn a_parked_poll_asks_for_its_caller_again_before_it_answers(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let (_, _, snapshot) = f.poll("", None).await;
    let revision = snapshot["revision"].as_i64().unwrap();
    let woken = park(&f, &f.key, revision, 30);
    let timed_out = park(&f, &f.key, revision, 2);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, rotated) = rotate(
        &f,
        &f.app.admin_token,
        Some(json!({"revoke_previous": true})),
    )
    .await;
    assert_eq!(status, 201, "{rotated}");
    // Nothing changed: the short poll's wait ends, and it is refused rather than told 304.
    assert_problem(timed_out.await.unwrap(), 401, "unauthorized").await;
    let (status, _) = f
        .grant(
            &f.app.admin_token,
            "acme",
            json!({"email": "secret-invitee@example.com"}),
        )
        .await;
    assert_eq!(status, 201);
    let text = assert_problem(woken.await.unwrap(), 401, "unauthorized").await;
    assert!(!text.contains("secret-invitee"), "{text}");
    let successor = rotated["instance_key"].as_str().unwrap();
    let res = f
        .as_bearer(
            successor,
            Method::GET,
            &format!("/v1/instances/acme/grants?since={revision}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the new key is answered");
}

/// The same when the key ends with its owner's access (a new owner) or with its instance (a
/// deletion): the change that ends the key is the change that wakes the poll, and the poll
/// still answers 401, never the change.
#[sqlx::test]
async fn a_parked_poll_is_refused_when_its_keys_end_with_the_change_that_wakes_it(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let (status, _) = f
        .grant(
            &f.app.admin_token,
            "acme",
            json!({"user_id": "auth0|member-1"}),
        )
        .await;
    assert_eq!(status, 201);
    for (what, method, body) in [
        (
            "a new owner",
            Method::PATCH,
            Some(json!({"owner": "auth0|owner-2"})),
        ),
        ("a deletion", Method::DELETE, None),
    ] {
        // A key the current owner's side holds (the first one ended with the previous change).
        let (status, rotated) = rotate(&f, &f.app.admin_token, None).await;
        assert_eq!(status, 201, "{what}: {rotated}");
        let key = rotated["instance_key"].as_str().unwrap().to_owned();
        let (_, snapshot) = into_json(
            f.as_bearer(&key, Method::GET, "/v1/instances/acme/grants")
                .send()
                .await
                .unwrap(),
        )
        .await;
        let revision = snapshot["revision"].as_i64().unwrap();
        let parked = park(&f, &key, revision, 30);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let mut change = f.app.admin(method, "/v1/instances/acme");
        if let Some(body) = body {
            change = change.json(&body);
        }
        assert!(change.send().await.unwrap().status().is_success(), "{what}");
        let text = assert_problem(parked.await.unwrap(), 401, "unauthorized").await;
        assert!(
            !text.contains("owner-2") && !text.contains("member-1"),
            "{what}: {text}"
        );
    }
}

/// A token the tenant signed that has merely expired (or is not valid yet) is a 401 saying so,
/// never a 429, even from an address over its quota of failures, and does not spend that
/// quota: its caller can tell it should get a new token.
#[sqlx::test]
async fn an_expired_token_is_told_so_and_never_throttled(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool,
        TestTenant::start().await,
        &[("FLEETGATE_AUTH_FAILURES_PER_MINUTE", "2".into())],
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let t = &app.tenant;
    let mut expired = t.claims(&["fleet:admin"]);
    expired["exp"] = json!(now - 120);
    let mut early = t.claims(&["fleet:admin"]);
    early["nbf"] = json!(now + 600);
    let (expired, early) = (t.sign(&expired), t.sign(&early));
    let get = |bearer: &str| {
        app.http
            .get(app.url("/v1/instances"))
            .bearer_auth(bearer)
            .send()
    };
    let told = |res: reqwest::Response, needle: &'static str| async move {
        let challenge = res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains(needle), "{challenge}");
        let detail = assert_problem(res, 401, "unauthorized").await;
        assert!(detail.contains(needle), "{detail}");
    };
    // Within the quota, expired tokens spend none of it: two failures still follow.
    for _ in 0..3 {
        told(get(&expired).await.unwrap(), "expired").await;
    }
    for _ in 0..2 {
        assert_eq!(get("junk").await.unwrap().status(), 401, "within the quota");
    }
    assert_problem(
        get("junk").await.unwrap(),
        429,
        "too_many_failed_authentications",
    )
    .await;
    // Over the quota: still told, not held back.
    told(get(&expired).await.unwrap(), "expired").await;
    told(get(&early).await.unwrap(), "not valid yet").await;
}

/// A refresh-token exchange has no redirect URI: the Action names the instance it recorded
/// at login, and fleetgate decides again (a grant removed or an instance suspended since then
/// stops the refresh). Exactly one of the two may be given.
#[sqlx::test]
async fn login_decisions_for_a_named_instance(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let ask = |body: Value| f.decide(body);
    let named = |user: &str, instance: &str| json!({"user_id": user, "instance_id": instance});
    let (status, d) = ask(named(OWNER, "acme")).await;
    assert_eq!(
        (status, d["allow"].clone(), d["role"].clone()),
        (200, json!(true), json!("owner")),
        "{d}"
    );
    let (_, d) = ask(named("auth0|eve", "acme")).await;
    assert_eq!(
        (d["allow"].clone(), d["reason"].clone()),
        (json!(false), json!("not_granted"))
    );
    let (_, d) = ask(named(OWNER, "ghost")).await;
    assert_eq!(
        (d["allow"].clone(), d["reason"].clone()),
        (json!(false), json!("unknown_instance"))
    );
    f.app.hook(&event("instance.suspended", "acme")).await;
    let (_, d) = ask(named(OWNER, "acme")).await;
    assert_eq!(d["reason"], "instance_suspended");
    let both = json!({"user_id": OWNER, "instance_id": "acme", "redirect_uri": "https://www.acme.com/callback"});
    let neither = json!({"user_id": OWNER});
    for bad in [both, neither, named(OWNER, "Not An Id")] {
        let (status, body) = ask(bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
}

/// While a replica's memory of keys is not in step with the database (starting, or its
/// notifications interrupted), a key is looked up in the database instead: a live key still
/// names its instance, an unknown or malformed one does not.
#[sqlx::test]
async fn keys_are_read_from_the_database_while_the_memory_is_not_in_step(pool: PgPool) {
    use fleetgate::{
        domain::{Actor, Hostname, InstanceId, UserId},
        keys::{self, KeyCache},
        registry::Registry,
    };
    use secrecy::ExposeSecret;

    let actor = Actor {
        name: "test".into(),
        request_id: None,
    };
    let id = InstanceId::parse("acme").unwrap();
    let mut tx = pool.begin().await.unwrap();
    Registry::new(None)
        .deploy(
            &mut tx,
            &actor,
            &id,
            &UserId::parse("auth0|owner").unwrap(),
            &[Hostname::parse("www.acme.com").unwrap()],
        )
        .await
        .unwrap();
    let key = keys::issue(&mut tx, "acme", "test").await.unwrap();
    tx.commit().await.unwrap();
    let (stranger, _) = keys::generate();

    let never_loaded = keys::Keys::new(
        pool.clone(),
        std::sync::Arc::new(KeyCache::default()),
        std::time::Duration::ZERO,
    );
    let of = async |key: &str| never_loaded.instance_of(key).await.unwrap();
    assert_eq!(of(key.expose_secret()).await.as_deref(), Some("acme"));
    assert_eq!(of(stranger.expose_secret()).await, None);
    assert_eq!(of("fgi_not-a-key").await, None);
}
