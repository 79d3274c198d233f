//! Trust across lifetimes: a deleted instance forgets who had access, keys die with the
//! access of whoever saw them, and identities from outside cannot forge audit lines.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

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
