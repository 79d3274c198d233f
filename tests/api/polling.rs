//! Polling an instance's grants: snapshots with ETags, `since` deltas, 410 for a pruned
//! revision, long-polls woken by another process, and the no-change poll from memory.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

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
    until_ready(&f.app.http, &other).await;
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

/// A database restored from a dump (or a promoted replica) is behind what instances saw: its
/// revisions would be reused for other changes. Finding where its rows are written has moved,
/// fleetgate moves every revision past any handed out before, so each poller is answered a
/// snapshot (410 for a delta, 200 for an old ETag), never "no change" or a delta from a
/// history the restore lost. The first start only records where it is.
#[sqlx::test]
async fn after_a_restore_every_poller_starts_again_from_a_snapshot(pool: PgPool) {
    let f = fleet(pool.clone(), &[]).await;
    let lineage = || async {
        let l: Option<String> = sqlx::query_scalar("SELECT lineage FROM deployment")
            .fetch_one(&pool)
            .await
            .unwrap();
        l
    };
    assert!(lineage().await.is_some(), "recorded at start");
    assert_eq!(
        fleetgate::grants::lineage::ensure(&pool).await.unwrap(),
        None,
        "not moved"
    );
    let (status, ann) = f
        .grant(&f.app.admin_token, "acme", json!({"user_id": "auth0|ann"}))
        .await;
    assert_eq!(status, 201, "{ann}");
    let (_, tag, snapshot) = f.poll("", None).await;
    let seen = snapshot["revision"].as_i64().unwrap();
    assert_eq!(seen, 1);

    // Restored elsewhere: the recorded lineage is not where the rows are now.
    sqlx::query("UPDATE deployment SET lineage = 'another-cluster:1:16384'")
        .execute(&pool)
        .await
        .unwrap();
    let moved = fleetgate::grants::lineage::ensure(&pool).await.unwrap();
    let to = moved.expect("moved");
    assert!(to > chrono::Utc::now().timestamp_millis() - 60_000, "{to}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'registry.lineage_changed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // Once this replica heard of it: a delta from before is gone, an old ETag gets the snapshot.
    within(10, "the poller told its delta is gone", || async {
        f.poll(&format!("?since={seen}"), None).await.0 == StatusCode::GONE
    })
    .await;
    let (status, new_tag, again) = f.poll("", tag.as_deref()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["revision"], json!(to));
    assert_eq!(
        again["grants"], snapshot["grants"],
        "the same grants, at a new revision"
    );
    assert_ne!(new_tag, tag);
    // Changes go on from there.
    f.grant(&f.app.admin_token, "acme", json!({"user_id": "auth0|bob"}))
        .await;
    let (status, _, delta) = f.poll(&format!("?since={to}"), None).await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    assert_eq!(delta["revision"], json!(to + 1));
    // Where the server keeps its control data from fleetgate, the operator says so instead
    // (`fleetgate restored`): the same move.
    let forced = fleetgate::grants::lineage::force(&pool).await.unwrap();
    assert!(forced > to + 1);
    within(10, "a delta from before the move is gone", || async {
        f.poll(&format!("?since={}", to + 1), None).await.0 == StatusCode::GONE
    })
    .await;
    // A lineage never recorded (a dump from a release before them) while revisions were
    // handed out: moved too. An instance made after a move starts above it.
    sqlx::query("UPDATE deployment SET lineage = NULL")
        .execute(&pool)
        .await
        .unwrap();
    let again = fleetgate::grants::lineage::ensure(&pool).await.unwrap();
    assert!(again.is_some_and(|r| r > forced), "{again:?}");
    let delta = f.app.deploy("delta", &["www.delta.com"]).await;
    let (status, _) = f
        .grant(&f.app.admin_token, "delta", json!({"user_id": "auth0|cy"}))
        .await;
    assert_eq!(status, 201);
    let key = delta["instance_key"].as_str().unwrap();
    let (_, first) = into_json(
        f.as_bearer(key, reqwest::Method::GET, "/v1/instances/delta/grants")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first["revision"], json!(again.unwrap() + 1), "{first}");
    // A dump restored over this same database (`pg_restore --clean` makes its tables anew):
    // noticed too.
    for statement in [
        "ALTER TABLE deployment RENAME TO deployment_before",
        "CREATE TABLE deployment (LIKE deployment_before INCLUDING ALL)",
        "INSERT INTO deployment SELECT * FROM deployment_before",
        "DROP TABLE deployment_before",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let in_place = fleetgate::grants::lineage::ensure(&pool).await.unwrap();
    assert!(
        in_place.is_some_and(|r| r > again.unwrap() + 1),
        "{in_place:?}"
    );
}
