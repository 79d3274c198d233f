//! Grants: managing them, who may, instance keys, polling (snapshot, ETag, since, wait) and
//! login decisions.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

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
        into_json(
            self.as_bearer(ACTION_SECRET, Method::POST, "/v1/login-decisions")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

pub fn login(user: &str, email: Option<&str>, verified: bool, uri: &str) -> Value {
    json!({ "user_id": user, "email": email, "email_verified": verified, "redirect_uri": uri, "client_id": "spa" })
}

#[sqlx::test]
async fn grants_are_added_changed_removed_and_audited(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let admin = f.app.admin_token.clone();
    let (status, ann) = f
        .grant(&admin, "acme", json!({"user_id": "auth0|ann"}))
        .await;
    assert_eq!(status, 201, "{ann}");
    assert_eq!(
        ann["role"], "member",
        "the first configured role is the default"
    );
    let (status, inv) = f
        .grant(
            &admin,
            "acme",
            json!({"email": "Bob@Example.COM", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(
        (inv["email"].as_str(), inv["user_id"].as_str()),
        (Some("bob@example.com"), None)
    );

    let (status, dup) = f
        .grant(&admin, "acme", json!({"user_id": "auth0|ann"}))
        .await;
    assert_eq!((status, dup["code"].as_str()), (409, Some("grant_exists")));
    let (status, dup) = f
        .grant(&admin, "acme", json!({"email": "bob@example.com"}))
        .await;
    assert_eq!((status, dup["code"].as_str()), (409, Some("grant_exists")));
    for bad in [
        json!({"user_id": "auth0|x", "role": "owner"}),
        json!({"user_id": "auth0|x", "email": "x@example.com"}),
        json!({}),
        json!({"user_id": "not-a-user-id"}),
        json!({"email": "x@localhost"}),
        json!({"user_id": "auth0|x", "extra": 1}),
    ] {
        let (status, body) = f.grant(&admin, "acme", bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{bad}: {body}"
        );
    }
    let (status, _) = f.grant(&admin, "nope", json!({"user_id": "auth0|x"})).await;
    assert_eq!(status, 404);

    let path = format!("/v1/instances/acme/grants/{}", ann["id"].as_str().unwrap());
    let (status, patched) = into_json(
        f.app
            .admin(Method::PATCH, &path)
            .json(&json!({"role": "admin"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, patched["role"].as_str()), (200, Some("admin")));
    let res = f.app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = f.app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = f
        .app
        .admin(Method::DELETE, "/v1/instances/acme/grants/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;

    let (_, snap) = f.app.get_json("/v1/instances/acme/grants").await;
    assert_eq!(snap["revision"], 4, "four changes, four revisions: {snap}");
    assert_eq!(snap["owner"], OWNER);
    assert_eq!(snap["grants"].as_array().unwrap().len(), 1);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE target_id = 'acme' AND action LIKE 'grant.%' ORDER BY id",
    )
    .fetch_all(&f.app.pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "grant.added",
            "grant.added",
            "grant.role_changed",
            "grant.removed"
        ]
    );

    let (status, mine) = into_json(
        f.as_bearer(
            &f.user("auth0|owner-1"),
            Method::GET,
            "/v1/users/auth0%7Cowner-1/grants",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(
        mine["items"],
        json!([{"instance_id": "acme", "status": "active", "role": "owner", "grant_id": null}])
    );
    let res = f
        .as_bearer(
            &f.user("auth0|ann"),
            Method::GET,
            "/v1/users/auth0%7Cowner-1/grants",
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
}

#[sqlx::test]
async fn owners_and_instance_admins_manage_their_instance_only(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let other = f
        .app
        .hook(&deployed(
            "other",
            "auth0|owner-2",
            &["other.apps.example.com"],
        ))
        .await
        .1;
    let other_key = other["instance_key"].as_str().unwrap().to_owned();
    let owner = f.user(OWNER);
    let (status, body) = f
        .grant(
            &owner,
            "acme",
            json!({"user_id": "auth0|ann", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = f
        .grant(&owner, "acme", json!({"user_id": "auth0|max"}))
        .await;
    assert_eq!(status, 201, "{body}");
    // An instance admin manages grants and reads the instance.
    let ann = f.user("auth0|ann");
    let (status, body) = f
        .grant(&ann, "acme", json!({"email": "new@example.com"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let res = f
        .as_bearer(&ann, Method::GET, "/v1/instances/acme")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'grant.added' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&f.app.pool)
    .await
    .unwrap();
    assert_eq!(actor, "instance-admin:auth0|ann");

    let before = f.app.snapshot().await;
    let grants_before: i64 = sqlx::query_scalar("SELECT count(*) FROM grants")
        .fetch_one(&f.app.pool)
        .await
        .unwrap();
    // Everyone else learns nothing: the same 404 as for an instance that does not exist.
    let nobody = f.app.get_json("/v1/instances/ghost/grants").await.1["detail"].clone();
    for (who, bearer) in [
        ("a member", f.user("auth0|max")),
        ("a stranger", f.user("auth0|eve")),
        ("another owner", f.user("auth0|owner-2")),
        ("another instance's key", other_key.clone()),
    ] {
        for (method, path) in [
            (Method::GET, "/v1/instances/acme"),
            (Method::GET, "/v1/instances/acme/grants"),
            (Method::GET, "/v1/instances/acme/config"),
            (Method::POST, "/v1/instances/acme/keys/rotate"),
        ] {
            let res = f
                .as_bearer(&bearer, method.clone(), path)
                .send()
                .await
                .unwrap();
            let detail = assert_problem(res, 404, "not_found").await;
            assert_eq!(
                detail.replace("acme", "ghost"),
                nobody.as_str().unwrap(),
                "{who} {method} {path}"
            );
        }
        let (status, _) = f
            .grant(
                &bearer,
                "acme",
                json!({"user_id": "auth0|eve", "role": "admin"}),
            )
            .await;
        assert_eq!(status, 404, "{who}");
    }
    // The instance's own key reads but does not manage; admin routes are closed to it.
    let (status, _) = f
        .grant(&f.key, "acme", json!({"user_id": "auth0|eve"}))
        .await;
    assert_eq!(status, 404);
    for bearer in [f.key.clone(), ACTION_SECRET.to_owned(), owner.clone()] {
        let res = f
            .as_bearer(&bearer, Method::GET, "/v1/instances")
            .send()
            .await
            .unwrap();
        assert_problem(res, 403, "forbidden").await;
    }
    let res = f
        .as_bearer(ACTION_SECRET, Method::GET, "/v1/instances/acme/grants")
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = f
        .app
        .http
        .get(f.app.url("/v1/instances/acme/grants"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let res = f
        .as_bearer("fgi_not-a-key", Method::GET, "/v1/instances/acme/grants")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(f.app.snapshot().await, before);
    let grants_after: i64 = sqlx::query_scalar("SELECT count(*) FROM grants")
        .fetch_one(&f.app.pool)
        .await
        .unwrap();
    assert_eq!(grants_before, grants_after);
}

#[sqlx::test]
async fn instance_keys_are_issued_once_rotated_with_grace_and_revoked_on_delete(pool: PgPool) {
    let f = fleet(pool, &[("FLEETGATE_KEY_ROTATION_GRACE_SECS", "2".into())]).await;
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM instance_keys")
        .fetch_all(&f.app.pool)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 1);
    assert!(
        !hashes[0].windows(4).any(|w| w == b"fgi_"),
        "only a hash is stored"
    );
    // A second deploy issues no new key.
    let again = f.app.deploy("acme", &["acme.apps.example.com"]).await;
    assert!(again.get("instance_key").is_none());
    assert_eq!(f.poll("", None).await.0, 200);

    let (status, rotated) = into_json(
        f.app
            .admin(Method::POST, "/v1/instances/acme/keys/rotate")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{rotated}");
    let new = rotated["instance_key"].as_str().unwrap().to_owned();
    assert_ne!(new, f.key);
    let read = |key: String| {
        let f = &f;
        async move {
            f.as_bearer(&key, Method::GET, "/v1/instances/acme/grants")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(read(new.clone()).await, 200);
    assert_eq!(
        read(f.key.clone()).await,
        200,
        "the old key works during the grace period"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(read(f.key.clone()).await, 401, "and not after it");
    assert_eq!(read(new.clone()).await, 200);

    let (status, _) = f.app.hook(&event("instance.deleted", "acme")).await;
    assert_eq!(status, 200);
    assert_eq!(
        read(new.clone()).await,
        401,
        "a deleted instance's keys stop working"
    );
    let back = f.app.deploy("acme", &["acme.apps.example.com"]).await;
    let fresh = back["instance_key"]
        .as_str()
        .expect("a redeploy after deletion issues a key")
        .to_owned();
    assert_eq!(read(fresh).await, 200);
}

#[sqlx::test]
async fn polls_get_etags_304s_and_deltas(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let (status, tag, snap) = f.poll("", None).await;
    assert_eq!((status, tag.as_deref()), (StatusCode::OK, Some("\"0\"")));
    assert_eq!(
        snap,
        json!({"instance_id": "acme", "revision": 0, "owner": OWNER, "grants": []})
    );
    assert_eq!(f.poll("", Some("\"0\"")).await.0, StatusCode::NOT_MODIFIED);
    assert_eq!(f.poll("?since=0", None).await.0, StatusCode::NOT_MODIFIED);

    let admin = f.app.admin_token.clone();
    let ann = f
        .grant(&admin, "acme", json!({"user_id": "auth0|ann"}))
        .await
        .1;
    let bob = f
        .grant(&admin, "acme", json!({"user_id": "auth0|bob"}))
        .await
        .1;
    f.app
        .admin(
            Method::PATCH,
            &format!("/v1/instances/acme/grants/{}", ann["id"].as_str().unwrap()),
        )
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    f.app
        .admin(
            Method::DELETE,
            &format!("/v1/instances/acme/grants/{}", bob["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    let (status, tag, snap) = f.poll("", Some("\"0\"")).await;
    assert_eq!((status, tag.as_deref()), (StatusCode::OK, Some("\"4\"")));
    assert_eq!(snap["grants"].as_array().unwrap().len(), 1);

    let (_, _, delta) = f.poll("?since=1", None).await;
    assert_eq!(delta["from"], 1);
    assert_eq!(delta["revision"], 4);
    assert_eq!(
        delta["added"],
        json!([]),
        "bob came and went after 1: {delta}"
    );
    assert_eq!(delta["updated"][0]["role"], "admin");
    assert_eq!(delta["removed"], json!([]));
    let (_, _, delta) = f.poll("?since=2", None).await;
    assert_eq!(delta["removed"], json!([bob["id"]]));

    // An owner change is part of the log (and ends the keys issued before it: the hook's
    // answer carries the new one).
    let (_, moved) = f
        .app
        .hook(&deployed(
            "acme",
            "auth0|owner-9",
            &["acme.apps.example.com"],
        ))
        .await;
    let key = moved["instance_key"].as_str().unwrap();
    let res = f
        .as_bearer(key, Method::GET, "/v1/instances/acme/grants?since=4")
        .send()
        .await
        .unwrap();
    let tag = res.headers()["etag"].to_str().unwrap().to_owned();
    let delta: Value = res.json().await.unwrap();
    assert_eq!(
        (tag.as_str(), &delta["owner"]),
        ("\"5\"", &json!("auth0|owner-9"))
    );

    for bad in ["?since=-1", "?since=x", "?wait=61", "?since=99", "?limit=1"] {
        let res = f
            .as_bearer(key, Method::GET, &format!("/v1/instances/acme/grants{bad}"))
            .send()
            .await
            .unwrap();
        assert_problem(res, 400, "invalid_query").await;
    }
}

#[sqlx::test]
async fn a_delta_from_a_pruned_revision_is_410(pool: PgPool) {
    let f = fleet(pool, &[("FLEETGATE_GRANT_CHANGES_KEPT", "2".into())]).await;
    for n in 0..5 {
        let (status, _) = f
            .grant(
                &f.app.admin_token,
                "acme",
                json!({"user_id": format!("auth0|u{n}")}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let res = f
        .as_bearer(&f.key, Method::GET, "/v1/instances/acme/grants?since=2")
        .send()
        .await
        .unwrap();
    assert!(
        assert_problem(res, 410, "revision_gone")
            .await
            .contains("snapshot")
    );
    let (status, _, delta) = f.poll("?since=3", None).await;
    assert_eq!(status, 200);
    assert_eq!(delta["added"].as_array().unwrap().len(), 2);
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM grant_changes")
        .fetch_one(&f.app.pool)
        .await
        .unwrap();
    assert_eq!(kept, 2);
}

/// Many writers, one reader following deltas: the reader ends with exactly the final state
/// and saw every revision in order.
#[sqlx::test]
async fn deltas_under_concurrent_writers_never_skip_or_reorder(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let writers = (0..6).map(|w| {
        let f = &f;
        async move {
            let mut mine: Vec<String> = vec![];
            for n in 0..20 {
                if n % 3 == 2 {
                    let id = mine.remove(0);
                    let res = f
                        .app
                        .admin(Method::DELETE, &format!("/v1/instances/acme/grants/{id}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 204);
                } else if n % 4 == 3 {
                    let id = &mine[0];
                    let res = f
                        .app
                        .admin(Method::PATCH, &format!("/v1/instances/acme/grants/{id}"))
                        .json(&json!({"role": "admin"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                } else {
                    let (status, g) = f
                        .grant(
                            &f.app.admin_token,
                            "acme",
                            json!({"user_id": format!("auth0|w{w}n{n}")}),
                        )
                        .await;
                    assert_eq!(status, 201, "{g}");
                    mine.push(g["id"].as_str().unwrap().to_owned());
                }
            }
        }
    });
    let reader = async {
        let (_, _, snap) = f.poll("", None).await;
        let mut state: fleetgate::domain::grant::Snapshot = serde_json::from_value(snap).unwrap();
        let mut deltas = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let (status, _, body) = f
                .poll(&format!("?since={}&wait=1", state.revision), None)
                .await;
            if status == StatusCode::OK {
                let delta: fleetgate::domain::grant::Delta = serde_json::from_value(body).unwrap();
                assert_eq!(delta.from, state.revision, "deltas follow on");
                state = fleetgate::grants::delta::apply(&state, &delta);
                deltas += 1;
            }
            if state.revision == 120 {
                break;
            }
        }
        (state, deltas)
    };
    let (_, (state, deltas)) = tokio::join!(futures_util::future::join_all(writers), reader);
    let (_, _, fin) = f.poll("", None).await;
    assert_eq!(fin["revision"], 120);
    let fin: fleetgate::domain::grant::Snapshot = serde_json::from_value(fin).unwrap();
    let sorted = |s: &fleetgate::domain::grant::Snapshot| {
        let mut g = s.grants.clone();
        g.sort_by_key(|g| g.id);
        g
    };
    assert_eq!(state.revision, fin.revision);
    assert_eq!(sorted(&state), sorted(&fin));
    assert!(deltas > 1, "the reader followed along ({deltas} deltas)");
    let revisions: Vec<i64> = sqlx::query_scalar(
        "SELECT revision FROM grant_changes WHERE instance_id = 'acme' ORDER BY revision",
    )
    .fetch_all(&f.app.pool)
    .await
    .unwrap();
    assert_eq!(revisions, (1..=120).collect::<Vec<i64>>(), "gap-free");
}

#[sqlx::test]
async fn a_long_poll_wakes_when_another_process_changes_a_grant(pool: PgPool) {
    let f = fleet(pool.clone(), &[]).await;
    let (other, stop, _task) = spawn_process(&pool, &f.app.tenant.base_url, &[]);
    // Wait until the other process serves.
    for _ in 0..50 {
        if f.app
            .http
            .get(format!("{other}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let poll = f.poll("?wait=30", Some("\"0\""));
    let write = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let res = f
            .app
            .http
            .post(format!("{other}/v1/instances/acme/grants"))
            .bearer_auth(&f.app.admin_token)
            .json(&json!({"user_id": "auth0|ann"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        Instant::now()
    };
    let ((status, tag, body), written) = tokio::join!(poll, write);
    let woke = started.elapsed();
    assert_eq!(
        (status, tag.as_deref()),
        (StatusCode::OK, Some("\"1\"")),
        "{body}"
    );
    // Woken by the change, not by the 30 s timeout (the latency is measured in bench/grants).
    assert!(woke < Duration::from_secs(15), "{woke:?}");
    eprintln!(
        "woken {:?} after the write returned",
        Instant::now() - written
    );
    stop.cancel();
}

/// The no-change path answers from memory: it works while the tables it would read are
/// locked by someone else.
#[sqlx::test]
async fn the_no_change_poll_does_not_touch_the_database(pool: PgPool) {
    let f = fleet(pool.clone(), &[]).await;
    assert_eq!(f.poll("", Some("\"0\"")).await.0, StatusCode::NOT_MODIFIED);
    // The memory is loaded (the listener says so on /metrics) before the tables are locked.
    let mut in_step = false;
    for _ in 0..100 {
        if f.app
            .metrics()
            .await
            .contains("fleetgate_grants_memory_in_step 1")
        {
            in_step = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(in_step, "the grants memory never got in step");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE instances, grant_revisions, grants, grant_changes, instance_keys IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let quick = tokio::time::timeout(Duration::from_secs(10), async {
        (
            f.poll("", Some("\"0\"")).await.0,
            f.poll("?since=0&wait=1", None).await.0,
        )
    })
    .await;
    tx.rollback().await.unwrap();
    assert_eq!(
        quick.expect("answered while the tables were locked"),
        (StatusCode::NOT_MODIFIED, StatusCode::NOT_MODIFIED)
    );
}

#[sqlx::test]
async fn login_decisions_for_each_case(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let admin = f.app.admin_token.clone();
    f.grant(
        &admin,
        "acme",
        json!({"user_id": "auth0|ann", "role": "admin"}),
    )
    .await;
    let (_, invite) = f
        .grant(&admin, "acme", json!({"email": "bob@example.com"}))
        .await;
    let uri = "https://www.acme.com/callback?x=1";
    let cases = [
        (login(OWNER, None, false, uri), true, "owner", Some("owner")),
        (
            login("auth0|ann", None, false, uri),
            true,
            "granted",
            Some("admin"),
        ),
        (
            login("auth0|eve", Some("eve@example.com"), true, uri),
            false,
            "not_granted",
            None,
        ),
        (
            login("auth0|bob", Some("bob@example.com"), false, uri),
            false,
            "email_not_verified",
            None,
        ),
        (
            login(OWNER, None, false, "https://nobody.example.org/cb"),
            false,
            "unknown_host",
            None,
        ),
        (
            login(OWNER, None, false, "https://127.0.0.1/cb"),
            false,
            "unknown_host",
            None,
        ),
        (
            login(OWNER, None, false, "https://WWW.ACME.COM:8443/cb"),
            true,
            "owner",
            Some("owner"),
        ),
    ];
    for (body, allow, reason, role) in cases {
        let (status, d) = f.decide(body.clone()).await;
        assert_eq!(status, 200, "{d}");
        assert_eq!(
            (
                d["allow"].as_bool(),
                d["reason"].as_str(),
                d["role"].as_str()
            ),
            (Some(allow), Some(reason), role),
            "{body}"
        );
        if reason != "unknown_host" {
            assert_eq!(d["instance_id"], "acme");
        }
    }

    // Accepting an invitation binds it, which instances see as a change.
    let (_, tag, _) = f.poll("", None).await;
    let (_, d) = f
        .decide(login("auth0|bob", Some("Bob@Example.com"), true, uri))
        .await;
    assert_eq!(
        (
            d["allow"].as_bool(),
            d["reason"].as_str(),
            d["role"].as_str()
        ),
        (Some(true), Some("invitation_accepted"), Some("member"))
    );
    let (status, _, delta) = f
        .poll(&format!("?since={}", tag.unwrap().trim_matches('"')), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(delta["updated"][0]["id"], invite["id"]);
    assert_eq!(delta["updated"][0]["user_id"], "auth0|bob");
    let (_, d) = f.decide(login("auth0|bob", None, false, uri)).await;
    assert_eq!(
        d["reason"], "granted",
        "bound: the email is no longer needed"
    );
    // Someone else with the same (now used) email does not get in.
    let (_, d) = f
        .decide(login("auth0|bob2", Some("bob@example.com"), true, uri))
        .await;
    assert_eq!(d["reason"], "not_granted");

    let res = f
        .as_bearer(&admin, Method::POST, "/v1/login-decisions")
        .json(&login(OWNER, None, false, uri))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = f
        .as_bearer(&f.key, Method::POST, "/v1/login-decisions")
        .json(&login(OWNER, None, false, uri))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = f
        .as_bearer(
            "wrong-secret-wrong-secret-wrong-secret",
            Method::POST,
            "/v1/login-decisions",
        )
        .json(&login(OWNER, None, false, uri))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    f.app.hook(&event("instance.suspended", "acme")).await;
    let (_, d) = f.decide(login(OWNER, None, false, uri)).await;
    assert_eq!(
        (d["allow"].as_bool(), d["reason"].as_str()),
        (Some(false), Some("instance_suspended"))
    );
    f.app.hook(&event("instance.deleted", "acme")).await;
    let (_, d) = f.decide(login(OWNER, None, false, uri)).await;
    assert_eq!(
        d["reason"], "unknown_host",
        "a deleted instance's hosts are released"
    );

    let before = f.app.snapshot().await;
    for bad in [
        json!({"user_id": OWNER, "redirect_uri": "not a url"}),
        json!({"user_id": OWNER, "redirect_uri": "ftp://www.acme.com/"}),
        json!({"user_id": "nobody", "redirect_uri": uri}),
        json!({"redirect_uri": uri}),
        json!({"user_id": OWNER, "redirect_uri": uri, "surprise": true}),
    ] {
        let (status, body) = f.decide(bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    assert_eq!(f.app.snapshot().await, before);
}

#[sqlx::test]
async fn login_decisions_are_off_without_the_action_secret(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app
        .admin(Method::POST, "/v1/login-decisions")
        .json(&login(OWNER, None, false, "https://www.acme.com/cb"))
        .send()
        .await
        .unwrap();
    assert!(
        assert_problem(res, 409, "login_decisions_disabled")
            .await
            .contains("FLEETGATE_ACTION_SECRET")
    );
}

/// Redirect URIs built to pass for an instance's host: none of them is let in.
#[sqlx::test]
async fn hostile_redirect_uris_never_resolve_to_an_instance(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let before = f.app.snapshot().await;
    for uri in [
        "https://www.acme.com@evil.example.org/callback",
        "https://evil.example.org\\@www.acme.com/callback",
        "https://evil.example.org/?redirect=https://www.acme.com/callback",
        "https://evil.example.org/#@www.acme.com",
        "https://www.acme.com.evil.example.org/callback",
        "https://www.acme.com%2eevil.example.org/callback",
        "https://evilwww.acme.com/callback",
        "https://www.acme.com./callback",
        "https://*.apps.example.com/callback",
        "https://xn--www.acme.com/callback",
        "https://[::1]/callback",
        "https://127.0.0.1/callback",
        "https://www.аcme.com/callback",
    ] {
        let (status, d) = f.decide(login(OWNER, None, false, uri)).await;
        assert!(
            status == 422 || (status == 200 && d["allow"] == false && d["instance_id"].is_null()),
            "{uri}: {status} {d}"
        );
    }
    assert_eq!(f.app.snapshot().await, before);
}
