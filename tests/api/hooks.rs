//! The deploy hook: signatures, events, idempotency, conflicts.

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn deploy_creates_then_brings_domains_to_exactly_the_list(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let created = app
        .deploy("acme", &["acme.apps.example.com", "WWW.Acme-Bakery.com"])
        .await;
    assert_eq!(created["id"], "acme");
    assert_eq!(created["owner"], "auth0|owner-1");
    assert_eq!(created["status"], "active");
    assert_eq!(
        hosts(&created),
        ["acme.apps.example.com", "www.acme-bakery.com"]
    );
    assert_eq!(created["domains"][0]["kind"], "platform");
    assert_eq!(created["domains"][1]["kind"], "custom");

    let updated = app
        .deploy("acme", &["acme.apps.example.com", "shop.acme-bakery.com"])
        .await;
    assert_eq!(
        hosts(&updated),
        ["acme.apps.example.com", "shop.acme-bakery.com"]
    );
    assert_eq!(updated["created_at"], created["created_at"]);

    // The released host is free for another instance.
    let other = app.deploy("other", &["www.acme-bakery.com"]).await;
    assert_eq!(hosts(&other), ["www.acme-bakery.com"]);
    assert_eq!(app.audit_count("acme").await, 2);

    // The same state again is no change and leaves no audit entry.
    app.deploy("acme", &["shop.acme-bakery.com", "acme.apps.example.com"])
        .await;
    assert_eq!(app.audit_count("acme").await, 2);
}

#[sqlx::test]
async fn redelivery_has_its_effect_once_and_gets_the_same_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let event = deployed("acme", "auth0|owner-1", &["acme.apps.example.com"]);
    let mut first = app.hook_with_id("msg_1", &event).await;
    // Meanwhile the instance changes; the redelivery must not undo that.
    app.deploy("acme", &["acme.apps.example.com", "www.acme.com"])
        .await;
    let again = app.hook_with_id("msg_1", &event).await;
    // The instance key is in the first answer only (fleetgate keeps just its hash).
    let key = first.1.as_object_mut().unwrap().remove("instance_key");
    assert!(key.is_some_and(|k| k.as_str().unwrap().starts_with("fgi_")));
    assert_eq!(first, again);
    let (_, now) = app.get_json("/v1/instances/acme").await;
    assert_eq!(hosts(&now), ["acme.apps.example.com", "www.acme.com"]);
    assert_eq!(app.audit_count("acme").await, 2);
}

/// A redelivery is applied again in a transaction that is abandoned: when applying it now
/// would fail (its host went to another instance, its instance was deleted since), it still
/// gets the answer it got the first time, and changes nothing.
#[sqlx::test]
async fn a_redelivery_that_could_no_longer_apply_gets_the_recorded_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let event = deployed("acme", "auth0|owner-1", &["www.acme.com"]);
    let mut first = app.hook_with_id("msg_host", &event).await;
    assert_eq!(first.0, 200, "{}", first.1);
    first.1.as_object_mut().unwrap().remove("instance_key");
    app.deploy("acme", &["acme.apps.example.com"]).await;
    app.deploy("globex", &["www.acme.com"]).await;
    let suspend = json!({"type": "instance.suspended", "data": {"instance_id": "acme"}});
    let suspended = app.hook_with_id("msg_suspend", &suspend).await;
    assert_eq!(suspended.0, 200, "{}", suspended.1);
    let deleted = json!({"type": "instance.deleted", "data": {"instance_id": "acme"}});
    assert_eq!(app.hook_with_id("msg_delete", &deleted).await.0, 200);
    let before = app.snapshot().await;

    let res = app
        .signed_hook(
            "msg_host",
            chrono::Utc::now().timestamp(),
            event.to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["webhook-replayed"], "true");
    assert_eq!(into_json(res).await, first, "the host is globex's now");
    // A deleted instance cannot be suspended: the first answer all the same.
    assert_eq!(app.hook_with_id("msg_suspend", &suspend).await, suspended);
    assert_eq!(app.snapshot().await, before, "nothing changed");
}

#[sqlx::test]
async fn concurrent_duplicate_deliveries_apply_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = deployed("acme", "auth0|owner-1", &["acme.apps.example.com"]).to_string();
    let ts = chrono::Utc::now().timestamp();
    let sends = (0..8).map(|_| app.signed_hook("msg_same", ts, body.clone()).send());
    let answers = futures_util::future::join_all(sends).await;
    let mut bodies = Vec::new();
    for res in answers {
        let (status, body) = into_json(res.unwrap()).await;
        assert_eq!(status, 200, "{body}");
        bodies.push(body);
    }
    let keys = bodies
        .iter_mut()
        .filter_map(|b| b.as_object_mut().unwrap().remove("instance_key"))
        .count();
    assert_eq!(keys, 1, "one delivery took effect and issued the key");
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(app.audit_count("acme").await, 1);
}

#[sqlx::test]
async fn bad_stale_or_missing_signatures_are_401_and_change_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = deployed("acme", "auth0|owner-1", &["acme.apps.example.com"]).to_string();
    let now = chrono::Utc::now().timestamp();
    let before = app.snapshot().await;

    let stale = app
        .signed_hook("msg_a", now - 360, body.clone())
        .send()
        .await
        .unwrap();
    assert!(
        assert_problem(stale, 401, "unauthorized")
            .await
            .contains("five minutes old")
    );
    let future = app
        .signed_hook("msg_b", now + 360, body.clone())
        .send()
        .await
        .unwrap();
    assert!(
        assert_problem(future, 401, "unauthorized")
            .await
            .contains("future")
    );

    let tampered = app.raw_hook(
        "msg_c",
        now,
        &signature("msg_c", now, &body),
        "application/json",
        body.replace("acme.apps", "evil.apps"),
    );
    let tampered = tampered.send().await.unwrap();
    assert_eq!(
        tampered.headers()["www-authenticate"],
        r#"Webhook-Signature realm="fleetgate""#
    );
    assert_problem(tampered, 401, "unauthorized").await;

    let empty_sig = app
        .raw_hook("msg_d", now, "v1,", "application/json", body.clone())
        .send()
        .await
        .unwrap();
    assert_problem(empty_sig, 401, "unauthorized").await;

    let unsigned = app
        .http
        .post(app.url("/v1/hooks/deploy"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(
        assert_problem(unsigned, 401, "unauthorized")
            .await
            .contains("missing header webhook-id")
    );

    let res = app
        .signed_hook("msg_e", now, body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Replaying the same delivery later with a new timestamp but the old signature fails.
    let replay = app.raw_hook(
        "msg_e",
        now + 1,
        &signature("msg_e", now, &body),
        "application/json",
        body.clone(),
    );
    let replay = replay.send().await.unwrap();
    assert_problem(replay, 401, "unauthorized").await;
    let after = app.snapshot().await;
    assert_eq!(after["audit"], before["audit"].as_i64().unwrap() + 1);
}

#[sqlx::test]
async fn a_host_owned_by_another_instance_is_409_and_nothing_changes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.deploy("acme", &["www.acme.com"]).await;
    app.deploy("bravo", &["bravo.apps.example.com"]).await;
    let before = app.snapshot().await;
    let (status, body) = app
        .hook(&deployed(
            "bravo",
            "auth0|owner-2",
            &["bravo2.apps.example.com", "WWW.ACME.COM"],
        ))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (409, "host_taken"),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("'www.acme.com' already belongs to instance 'acme'")
    );
    assert_eq!(app.snapshot().await, before);
    // Not acknowledged, so not recorded: the same id may be retried once the conflict is gone.
    let (status, _) = app
        .hook(&deployed("new", "auth0|owner-2", &["www.acme.com"]))
        .await;
    assert_eq!(status, 409);
}

#[sqlx::test]
async fn suspend_resume_delete_and_redeploy(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.deploy("acme", &["www.acme.com"]).await;
    let (s, body) = app.hook(&event("instance.suspended", "acme")).await;
    assert_eq!((s, body["status"].as_str().unwrap()), (200, "suspended"));
    // A deploy of a suspended instance updates it but keeps it suspended.
    let redeployed = app
        .deploy("acme", &["www.acme.com", "acme.apps.example.com"])
        .await;
    assert_eq!(redeployed["status"], "suspended");
    let (s, body) = app.hook(&event("instance.resumed", "acme")).await;
    assert_eq!((s, body["status"].as_str().unwrap()), (200, "active"));
    let (s, body) = app.hook(&event("instance.deleted", "acme")).await;
    assert_eq!((s, body["status"].as_str().unwrap()), (200, "deleted"));
    assert!(hosts(&body).is_empty(), "deleting releases every host");
    // A deleted instance cannot be suspended or resumed, only deployed again.
    let (s, body) = app.hook(&event("instance.resumed", "acme")).await;
    assert_eq!(
        (s, body["code"].as_str().unwrap()),
        (409, "invalid_transition"),
        "{body}"
    );
    let back = app.deploy("acme", &["www.acme.com"]).await;
    assert_eq!(back["status"], "active");
    let (s, body) = app.hook(&event("instance.suspended", "nobody")).await;
    assert_eq!(
        (s, body["code"].as_str().unwrap()),
        (404, "not_found"),
        "{body}"
    );
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE target_id = 'acme' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "instance.deployed",
            "instance.suspended",
            "instance.deployed",
            "instance.resumed",
            "instance.deleted",
            "instance.deployed"
        ]
    );
    let actor: String = sqlx::query_scalar("SELECT actor FROM audit_log ORDER BY id LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(actor.starts_with("hook:msg_"), "{actor}");
}

#[sqlx::test]
async fn malformed_events_are_4xx_naming_what_is_wrong(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let before = app.snapshot().await;
    let cases = [
        (
            json!({"type": "instance.exploded", "data": {"instance_id": "acme"}}),
            422,
            "unknown event type 'instance.exploded'",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "auth0|x", "domains": ["a.com:443"]}}),
            422,
            "host 'a.com:443' must not contain a port",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "auth0|x", "domains": ["*.apps.example.com"]}}),
            422,
            "wildcard",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "auth0|x", "domains": ["a.com,b.com"]}}),
            422,
            "commas",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "auth0|x", "domains": ["a.com", "A.COM"]}}),
            422,
            "more than once",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "auth0|x", "domains": ["apps.example.com"]}}),
            422,
            "platform domain itself",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "Acme", "owner": "auth0|x", "domains": []}}),
            422,
            "lower-case",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "nobody", "domains": []}}),
            422,
            "user id 'nobody'",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "auth0|x"}}),
            422,
            "missing field `domains`",
        ),
        (
            json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "auth0|x", "domains": [], "extra": 1}}),
            422,
            "unknown field `extra`",
        ),
        (
            json!({"type": "instance.suspended"}),
            422,
            "missing field `data`",
        ),
    ];
    for (event, status, needle) in cases {
        let (got, body) = app.hook(&event).await;
        assert_eq!(got, status, "{event}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{event}: {body}"
        );
    }
    let now = chrono::Utc::now().timestamp();
    let not_json = app
        .signed_hook("msg_x", now, "{not json".into())
        .send()
        .await
        .unwrap();
    assert_problem(not_json, 400, "invalid_json").await;
    let wrong_type = app
        .raw_hook(
            "msg_y",
            now,
            &signature("msg_y", now, "{}"),
            "text/plain",
            "{}".into(),
        )
        .send()
        .await
        .unwrap();
    assert_problem(wrong_type, 415, "unsupported_media_type").await;
    let huge = app
        .signed_hook("msg_z", now, format!("\"{}\"", "x".repeat(300 * 1024)))
        .send()
        .await
        .unwrap();
    assert_problem(huge, 413, "payload_too_large").await;
    assert_eq!(app.snapshot().await, before);
}

/// Hosts built to smuggle extra allow-list entries, wildcards or other hosts: every one is
/// refused with a 422 naming the host, and nothing changes.
#[sqlx::test]
async fn hostile_hosts_are_refused_and_change_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.deploy("acme", &["www.acme.com"]).await;
    let before = app.snapshot().await;
    let long_label = format!("{}.com", "a".repeat(64));
    let long_name = format!("{}.com", vec!["abcdefghij"; 25].join("."));
    let hostile = [
        "evil.com,https://attacker.com",
        "evil.com https://attacker.com",
        "evil.com\thttps://attacker.com",
        "*.apps.example.com",
        "a*.example.com",
        "attacker.com@www.acme.com",
        "www.acme.com/callback",
        "www.acme.com?x=https://attacker.com",
        "www.acme.com#frag",
        "www%2eacme.com",
        "www.acme.com%2f..",
        "www.acme.com.",
        "www..acme.com",
        ".acme.com",
        "-acme.com",
        "acme-.com",
        "https://www.acme.com",
        "//attacker.com",
        "www.acme.com:443",
        "127.0.0.1",
        "[::1]",
        "0x7f.0.0.1",
        "localhost",
        "www.acme.com\u{0}",
        "www.acme.com\r\nx-injected: 1",
        "www．acme．com/x",
        "ｗｗｗ.acme.com/evil",
        "\u{202e}moc.evil",
        "a_b.acme.com",
        "",
        " ",
        &long_label,
        &long_name,
    ];
    for host in hostile {
        let (status, body) = app.hook(&deployed("acme", "auth0|owner-1", &[host])).await;
        assert_eq!(status, 422, "{host:?} was not refused: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("host '"),
            "{host:?}: {body}"
        );
    }
    // Look-alikes and case variants are other hosts or the same host, never a second entry.
    let (status, body) = app
        .hook(&deployed(
            "acme",
            "auth0|owner-1",
            &["WWW.ACME.COM", "www.acme.com"],
        ))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(app.snapshot().await, before);
    let (status, body) = app
        .hook(&deployed("acme", "auth0|owner-1", &["www.аcme.com"]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        hosts(&body)[0].starts_with("www.xn--"),
        "a Cyrillic look-alike is a different, punycoded host: {body}"
    );
}

/// A deploy's answer is the instance as stored (it is made from what the writes returned, not
/// read again), and a deploy issues a key to an instance that holds none — here after an
/// admin gave it another owner, which revoked its keys.
#[sqlx::test]
async fn the_answer_is_the_stored_instance_and_a_keyless_instance_gets_a_key(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let stored = || async { app.get_json("/v1/instances/acme").await.1 };
    let without_key = |mut answer: serde_json::Value| {
        let key = answer.as_object_mut().unwrap().remove("instance_key");
        (answer, key)
    };
    for hosts in [
        &["acme.apps.example.com"][..],
        &["www.acme.com", "acme.apps.example.com"],
        &["www.acme.com"],
    ] {
        let (answer, _) = without_key(app.deploy("acme", hosts).await);
        assert_eq!(answer, stored().await, "after deploying {hosts:?}");
    }

    let res = app
        .admin(reqwest::Method::PATCH, "/v1/instances/acme")
        .json(&json!({"owner": "auth0|owner-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let event = deployed("acme", "auth0|owner-2", &["www.acme.com"]);
    let (status, answer) = app.hook(&event).await;
    assert_eq!(status, 200, "{answer}");
    let (answer, key) = without_key(answer);
    assert!(
        key.is_some_and(|k| k.as_str().unwrap().starts_with("fgi_")),
        "the keyless instance got a key"
    );
    assert_eq!(answer, stored().await);
    let (_, again) = app.hook(&event).await;
    assert_eq!(without_key(again), (answer, None), "a keyed one gets none");

    let suspend = json!({"type": "instance.suspended", "data": {"instance_id": "acme"}});
    let (_, suspended) = app.hook(&suspend).await;
    assert_eq!(suspended, stored().await);
}
