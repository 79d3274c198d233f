//! The login relay across a fleet: a login begun on one replica finishes on another, and a
//! refresh token keeps its instance through either (its transactions and bindings live in
//! Postgres); in `overflow` mode, instances the pool has no room for log in through the relay;
//! 100,000 relayed instances cost the tenant no write.

use sqlx::PgPool;

use crate::{browser::*, helpers::*};

const ACME: &str = "https://www.acme.com/callback";

fn claim(token: &serde_json::Value, name: &str) -> serde_json::Value {
    payload(token.as_str().unwrap())[format!("https://fleetgate.dev/{name}")].clone()
}

#[sqlx::test]
async fn a_login_begun_on_one_replica_finishes_on_another(pool: PgPool) {
    let w = relay_world(pool).await;
    let mut vars = w.vars.clone();
    vars.push(("FLEETGATE_LISTEN", "127.0.0.1:0".to_owned()));
    let (other, stop, _) = spawn_process(&w.app.pool, &w.app.tenant.base_url, &vars);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    until_ready(&http, &other).await;
    // The status page's view: relayed instances are never out of step.
    let (_, status) = w.app.get_json("/v1/reconcile/status").await;
    assert_eq!(status["login"]["mode"], "relay");
    assert_eq!(status["login"]["relay_url"], w.relay.as_str());
    assert_eq!(status["unsynced_total"], 0, "{status}");

    // Begun at the first replica; the tenant's answer reaches the other (the platform's proxy
    // sends the relay's origin to any replica), and so does the exchange.
    let mut login = w.start(ACME, &[]).await;
    let at_callback = w.sign_in(&mut login, "owner@example.com").await;
    let location = at_callback.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let query = location.split_once('?').unwrap().1;
    let res = http
        .get(format!("{other}/callback?{query}"))
        .send()
        .await
        .unwrap();
    let (to, params) = redirected(&res);
    assert_eq!(to, ACME);
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", w.relay_client.as_str()),
        ("code", params["code"].as_str().unwrap()),
        ("redirect_uri", ACME),
        ("code_verifier", VERIFIER),
    ];
    let res = http
        .post(format!("{other}/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: serde_json::Value = res.json().await.unwrap();
    assert_eq!(claim(&tokens["access_token"], "instance"), "acme");
    // The callback and the code were taken there: not again here.
    assert_eq!(w.get(&location).await.status(), 400);
    let (status, _) = w
        .exchange(params["code"].as_str().unwrap(), ACME, None)
        .await;
    assert_eq!(status, 403);

    // A refresh through either replica keeps the binding; each rotation is recorded by the
    // replica that made it and honoured by the other.
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    for at in [w.app.addr.clone(), other.clone(), w.app.addr.clone()] {
        let res = http
            .post(format!("{at}/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", w.relay_client.as_str()),
                ("refresh_token", rt.as_str()),
                ("redirect_uri", "https://www.beta.com/callback"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "at {at}");
        let next: serde_json::Value = res.json().await.unwrap();
        assert_eq!(claim(&next["access_token"], "instance"), "acme");
        rt = next["refresh_token"].as_str().unwrap().to_owned();
    }
    stop.cancel();
}

#[sqlx::test]
async fn in_overflow_mode_what_fits_nowhere_logs_in_through_the_relay_and_passes_succeed(
    pool: PgPool,
) {
    // Two entries per list: the wildcard and www.acme.com; beta (www.beta.com) fits nowhere.
    let w = relay_world_with(
        pool,
        &[
            ("FLEETGATE_LOGIN_MODE", "overflow".to_owned()),
            ("FLEETGATE_ALLOWLIST_CAP", "2".to_owned()),
        ],
    )
    .await;
    let config = |id: &'static str| {
        let app = &w.app;
        async move {
            let (status, body) = app.get_json(&format!("/v1/instances/{id}/config")).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while config("acme").await["login"] != "direct" {
        assert!(
            std::time::Instant::now() < until,
            "acme never went live at the tenant"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let acme = config("acme").await;
    assert_eq!(acme["client_id"], w.spa.as_str());
    assert_eq!(acme["domain"], w.app.tenant.base_url.as_str());
    let beta = config("beta").await;
    assert_eq!(
        (beta["login"].as_str(), beta["client_id"].as_str()),
        (Some("relay"), Some(w.relay_client.as_str()))
    );
    let spa = w.app.tenant.client(&w.spa).await;
    assert!(!spa.to_string().contains("www.beta.com"), "{spa}");
    let (_, status) = w.app.get_json("/v1/reconcile/status").await;
    assert_eq!(status["login"]["mode"], "overflow");
    assert!(!status["unsynced"].to_string().contains("beta"), "{status}");

    // The passes succeed, saying nothing of beta; beta logs in through the relay.
    let (_, runs) = w.app.get_json("/v1/reconcile/runs").await;
    let finished: Vec<&serde_json::Value> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["outcome"].is_null())
        .collect();
    assert!(!finished.is_empty(), "{runs}");
    assert!(finished.iter().all(|r| r["outcome"] != "failed"), "{runs}");
    let (to, params) = w
        .login("https://www.beta.com/callback", "max@example.com", &[])
        .await;
    assert_eq!(to, "https://www.beta.com/callback");
    let (status, tokens) = w
        .exchange(
            params["code"].as_str().unwrap(),
            "https://www.beta.com/callback",
            None,
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claim(&tokens["access_token"], "instance"), "beta");

    // A new instance logs in through the relay right after its hook, whatever the pool.
    let (status, _) = w
        .app
        .hook(&deployed("gamma", &w.owner, &["www.gamma.com"]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(config("gamma").await["login"], "relay");
}

/// Management API writes the emulator has answered so far.
async fn tenant_writes(w: &RelayWorld) -> u64 {
    let stats = w.app.tenant.stats().await;
    stats
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            k.contains(" /api/v2/")
                && ["POST ", "PATCH ", "PUT ", "DELETE "]
                    .iter()
                    .any(|m| k.starts_with(m))
        })
        .map(|(_, v)| v.as_u64().unwrap_or(0))
        .sum()
}

#[sqlx::test]
async fn a_hundred_thousand_relayed_instances_cost_the_tenant_no_write(pool: PgPool) {
    let w = relay_world(pool).await;
    // 100,000 custom-domain instances in the registry (written straight in: through hooks
    // they would take minutes), then more deployed through hooks as a platform does.
    for sql in [
        "INSERT INTO instances (id, owner) SELECT 'bulk-' || n, $1 FROM generate_series(1, 100000) n",
        "INSERT INTO domains (hostname, instance_id, kind) \
         SELECT 'www.bulk' || n || '.com', 'bulk-' || n, 'custom' FROM generate_series(1, 100000) n",
    ] {
        sqlx::query(sql)
            .bind(&w.owner)
            .execute(&w.app.pool)
            .await
            .unwrap();
    }
    let before = tenant_writes(&w).await;
    for i in 0..20 {
        let (status, body) = w
            .app
            .hook(&deployed(
                &format!("hooked-{i}"),
                &w.owner,
                &[&format!("www.hooked{i}.com")],
            ))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // The passes those deploys start have run (the last one after the last deploy).
    let (_, runs) = w.app.get_json("/v1/reconcile/runs").await;
    let seen = runs["items"][0]["id"].as_i64().unwrap_or(0);
    let res = w
        .app
        .admin(reqwest::Method::POST, "/v1/reconcile")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, runs) = w.app.get_json("/v1/reconcile/runs").await;
    assert!(
        runs["items"][0]["id"].as_i64().unwrap_or(0) > seen,
        "{runs}"
    );
    assert_eq!(
        tenant_writes(&w).await,
        before,
        "no Management API write for relayed instances' deploys"
    );

    // A login at one of them, picked at random, works and is bound to it.
    let n = 1 + rand::random::<u32>() % 100_000;
    let callback = format!("https://www.bulk{n}.com/callback");
    // The replica's memory hears of rows written straight in by their notifications (200,000
    // here, read again in batches): bounded, not timed.
    let t = std::time::Instant::now();
    while w.authorize(&callback, &[]).await.status() != 302 {
        assert!(
            t.elapsed().as_secs() < 60,
            "{callback} still unknown after 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (to, params) = w.login(&callback, "owner@example.com", &[]).await;
    assert_eq!(to, callback);
    let (status, tokens) = w
        .exchange(params["code"].as_str().unwrap(), &callback, None)
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claim(&tokens["access_token"], "instance"),
        format!("bulk-{n}").as_str()
    );
}
