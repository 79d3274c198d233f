//! The command line: `fleetgate plan`, `fleetgate migrate`, settings refused at start-up.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn plan_prints_what_a_pass_would_change_and_changes_nothing(pool: PgPool) {
    // The registry, written by a fleetgate without the reconciler.
    let app = TestApp::spawn(pool.clone()).await;
    app.deploy("acme", &["www.acme.com"]).await;
    let vars = app.tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    let db = database_url(&pool).await;
    let mut cmd = fleetgate(&db, &app.tenant, &vars);
    cmd.arg("plan");
    let out = succeeded(cmd).await;
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");
    let primary = &plan["applications"][0];
    assert_eq!(primary["client_id"], spa.as_str());
    let callbacks = primary["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "callbacks")
        .unwrap();
    assert_eq!(
        callbacks["added"],
        serde_json::json!(["https://www.acme.com/callback"])
    );
    // A dry run: Auth0 and the run history are untouched.
    assert!(app.tenant.client(&spa).await["callbacks"].is_null());
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs, 0);
}

#[sqlx::test]
async fn plan_without_the_reconciler_says_what_to_set(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let mut cmd = fleetgate(&database_url(&pool).await, &tenant, &[]);
    cmd.arg("plan");
    let out = output(cmd).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_SPA_CLIENT_ID"),
        "{stderr}"
    );
}

#[sqlx::test]
async fn migrate_applies_every_migration_and_can_run_again(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let db = database_url(&pool).await;
    for _ in 0..2 {
        let mut cmd = fleetgate(&db, &tenant, &[]);
        cmd.arg("migrate");
        let out = succeeded(cmd).await;
        assert_eq!(String::from_utf8_lossy(&out.stdout), "migrations applied\n");
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    let files = std::fs::read_dir("migrations").unwrap().count();
    assert_eq!(applied as usize, files);
}

#[sqlx::test]
async fn a_bad_setting_stops_serve_naming_the_variable_not_the_secret(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let db = database_url(&pool).await;
    let bad_secret = "whsec_c2VjcmV0LWJ1dC10b28tc2hvcnQ";
    let cases: [(&str, &str, &str); 3] = [
        (
            "FLEETGATE_WEBHOOK_SECRET",
            bad_secret,
            "FLEETGATE_WEBHOOK_SECRET",
        ),
        ("FLEETGATE_LISTEN", "not-an-address", "FLEETGATE_LISTEN"),
        ("AUTH0_DOMAIN", "", "AUTH0_DOMAIN"),
    ];
    for (name, value, named) in cases {
        let mut cmd = fleetgate(&db, &tenant, &[(name, value.to_owned())]);
        cmd.arg("serve");
        let out = output(cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}={value:?} was accepted");
        assert!(stderr.contains(named), "{name}: {stderr}");
        assert!(!stderr.contains("c2VjcmV0"), "the secret leaked: {stderr}");
    }
}

/// Every setting the service reads is documented in docs/operating.md (its settings table) and
/// in .env.example.
#[test]
fn every_setting_is_documented() {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |f: &str| std::fs::read_to_string(format!("{root}/{f}")).unwrap();
    let (config, operating, example) = (
        read("src/config/mod.rs")
            + &read("src/config/features.rs")
            + &read("src/config/relay.rs")
            + &read("src/config/events.rs"),
        read("docs/operating.md"),
        read(".env.example"),
    );
    let mut names: Vec<&str> = config
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            (s.starts_with("FLEETGATE_") || s.starts_with("AUTH0_") || *s == "DATABASE_URL")
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() > 25, "{names:?}");
    for name in names {
        assert!(
            operating.contains(&format!("`{name}`")),
            "docs/operating.md does not document {name}"
        );
        assert!(
            example.contains(name),
            ".env.example does not document {name}"
        );
    }
}

#[sqlx::test]
async fn hook_send_signs_a_delivery_and_shows_a_redelivery_was_replayed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let db = database_url(&pool).await;
    let event = r#"{"type":"instance.deployed","data":{"instance_id":"gamma","owner":"auth0|o","domains":["gamma.example.com"]}}"#;
    let send = || {
        let mut cmd = fleetgate(&db, &app.tenant, &[]);
        cmd.args([
            "hook",
            "send",
            "--id",
            "msg_cli_1",
            "--url",
            &app.addr,
            event,
        ]);
        output(cmd)
    };
    let first = send().await;
    let shown = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(shown.starts_with("200 OK"), "{shown}");
    assert!(
        shown.contains("\"instance_key\""),
        "the first deploy issues a key: {shown}"
    );
    assert!(!shown.contains("webhook-replayed"), "{shown}");
    let again = send().await;
    let shown = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{shown}");
    assert!(shown.contains("webhook-replayed: true"), "{shown}");
    assert!(
        !shown.contains("\"instance_key\""),
        "a replay never repeats the key: {shown}"
    );
}

/// `fleetgate events listen` verifies and prints what fleetgate sends it, and refuses what is
/// not signed with its secret.
#[sqlx::test]
async fn events_listen_prints_each_verified_event_once(pool: PgPool) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut listen = std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate"))
        .env_clear()
        .args(["events", "listen", "--port", &port.to_string()])
        .env("FLEETGATE_EVENTS_SECRET", EVENTS_SECRET)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let http = reqwest::Client::new();
    within(10, "the receiver listening", || async {
        http.post(&url).send().await.is_ok()
    })
    .await;
    let f = fleet(
        pool,
        &[
            ("FLEETGATE_EVENTS_URL", url.clone()),
            ("FLEETGATE_EVENTS_SECRET", EVENTS_SECRET.to_owned()),
        ],
    )
    .await;
    let (status, _) = f
        .grant(
            &f.app.admin_token,
            "acme",
            json!({"email": "erin@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201);
    within(10, "the event delivered", || async {
        let (_, page) = f.app.get_json("/v1/events?status=delivered").await;
        page["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    let (_, page) = f.app.get_json("/v1/events").await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    // A forged delivery (signed with the deploy hook's secret) is refused.
    let forged = r#"{"type":"grant.invited","data":{}}"#;
    let ts = chrono::Utc::now().timestamp();
    let res = http
        .post(&url)
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature("msg_forged", ts, forged))
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let _ = listen.kill();
    let out = listen.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    let line = printed
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(
        line.contains("grant.invited") && line.contains("erin@example.com"),
        "{line}"
    );
    assert!(printed.contains("refused a delivery"), "{printed}");
}

/// `scripts/dev` never uses or drops a database it did not make: it records the identity of
/// the one it made (server and oid) and drops only that one on a fresh start; a database named
/// `fleetgate` that is not the one recorded (someone else's, or one made again since) stops it,
/// naming DATABASE_URL, and is left as it was. (A copy of the scripts, so the repository's
/// `.dev/` is not touched; the copy stops at the build, which comes after the database.)
#[tokio::test]
async fn scripts_dev_never_drops_a_database_it_did_not_make() {
    let server = std::env::var("DATABASE_URL").expect("DATABASE_URL names the test server");
    let admin = sqlx::PgPool::connect(&server).await.unwrap();
    let oid = || async {
        sqlx::query_scalar::<_, sqlx::postgres::types::Oid>(
            "SELECT oid FROM pg_database WHERE datname = 'fleetgate'",
        )
        .fetch_optional(&admin)
        .await
        .unwrap()
    };
    let copy = std::env::temp_dir().join(format!("fleetgate-dev-{}", std::process::id()));
    std::fs::create_dir_all(copy.join("scripts")).unwrap();
    for script in ["dev", "postgres.sh", "processes.sh"] {
        let from = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(from, copy.join("scripts").join(script)).unwrap();
    }
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(copy.join("scripts/dev"));
        cmd.args(args).env("DATABASE_URL", &server);
        output(cmd)
    };
    let refused = |out: std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("DATABASE_URL") && stderr.contains("not made by scripts/dev"),
            "{stderr}"
        );
    };
    // A developer's own `fleetgate` database on this server is only looked at.
    let made_here = oid().await.is_none();
    if made_here {
        // Its own database: made, then made afresh on --reset.
        let out = run(&[]).await;
        let first = oid().await.expect("scripts/dev made its database");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("not made by"));
        let _ = run(&["--reset"]).await;
        let second = oid().await.expect("made again");
        assert_ne!(first, second, "--reset dropped the one it made");
        // What it keeps in .dev/ is its user's only.
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &str| {
            std::fs::metadata(copy.join(path))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode(".dev"), mode(".dev/database")), (0o700, 0o600));
        // Someone else's, of the same name, made after scripts/dev's went.
        sqlx::query("DROP DATABASE fleetgate WITH (FORCE)")
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query("CREATE DATABASE fleetgate")
            .execute(&admin)
            .await
            .unwrap();
    }
    let theirs = oid().await.unwrap();
    for args in [&[][..], &["--reset"][..]] {
        refused(run(args).await);
        assert_eq!(
            oid().await,
            Some(theirs),
            "{args:?}: their database is still there"
        );
    }
    if made_here {
        sqlx::query("DROP DATABASE IF EXISTS fleetgate WITH (FORCE)")
            .execute(&admin)
            .await
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(&copy);
}
