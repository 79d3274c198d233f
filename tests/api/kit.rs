//! The instance kit (`integrations/instance-node`), run by Node's test runner against this
//! fleetgate and the emulator: its unit tests, and `test/kit.test.js`, which starts (and
//! restarts) a fleetgate process of its own on this test's database.

use std::process::Command;

use sqlx::PgPool;

use crate::{helpers::*, replicas::database_url};

#[sqlx::test]
async fn the_instance_kit_passes_its_tests_against_fleetgate(pool: PgPool) {
    let tenant = TestTenant::start_with(fleetgate::emulator::EmulatorConfig {
        rate_limit_burst: 1000,
        rate_limit_per_second: 1000.0,
        ..TestTenant::config()
    })
    .await;
    let mut vars = tenant.reconciler_vars().await;
    vars.push(("FLEETGATE_GRANT_CHANGES_KEPT", "2".to_owned()));
    let app = TestApp::spawn_with(pool.clone(), tenant, &vars).await;
    let acme = app.deploy("acme", &["acme.apps.example.com"]).await;
    let (status, _) = app
        .hook(&deployed("beta", "auth0|owner-2", &["www.beta.com"]))
        .await;
    assert_eq!(status, 200);
    // The kit reads /config, which answers once a pass has placed the instance.
    let key = acme["instance_key"].as_str().unwrap().to_owned();
    crate::replicas::within(30, "acme placed", || async {
        app.http
            .get(app.url("/v1/instances/acme/config"))
            .bearer_auth(&key)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/integrations/instance-node");
    assert!(
        std::path::Path::new(dir).join("node_modules").exists(),
        "run `npm ci` in integrations/instance-node first (scripts/test does)"
    );
    let mut cmd = Command::new("node");
    cmd.args(["--test", "test/"])
        .current_dir(dir)
        .env("FLEETGATE_BIN", env!("CARGO_BIN_EXE_fleetgate"))
        .env("DATABASE_URL", database_url(&pool).await)
        .env("AUTH0_DOMAIN", &app.tenant.base_url)
        .env("AUTH0_AUDIENCE", AUDIENCE)
        .env("FLEETGATE_INSTANCE_AUDIENCE", INSTANCE_AUDIENCE)
        .env("INSTANCE_AUDIENCE", INSTANCE_AUDIENCE)
        .env("FLEETGATE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("FLEETGATE_PLATFORM_DOMAIN", PLATFORM_DOMAIN)
        .env("EMULATOR_URL", &app.tenant.base_url)
        .env("ADMIN_URL", &app.addr)
        .env("ADMIN_TOKEN", &app.admin_token)
        .env("ACME_KEY", &key);
    for (k, v) in &vars {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || {
        cmd.output()
            .expect("node (18 or later) must be installed to test the instance kit")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "{stdout}"
    );
}
