//! Callers over time: parked long-polls end with their client, are capped per caller and ask
//! for their caller again before answering; failed authentication from one address is slowed,
//! an expired token never is.

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

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
