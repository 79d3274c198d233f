//! The instance kit (`integrations/instance-node`), run by Node's test runner against this
//! fleetgate and the emulator: its unit tests, and `test/kit.test.js`, which starts (and
//! restarts) a fleetgate process of its own on this test's database.

use sqlx::PgPool;

use crate::{helpers::*, node::node_tests};

#[sqlx::test]
async fn the_instance_kit_passes_its_tests_against_fleetgate(pool: PgPool) {
    let tenant = TestTenant::start_with(roomy()).await;
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
    within(30, "acme placed", || async {
        app.http
            .get(app.url("/v1/instances/acme/config"))
            .bearer_auth(&key)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    let mut envs: Vec<(String, String)> = [
        ("FLEETGATE_BIN", env!("CARGO_BIN_EXE_fleetgate").to_owned()),
        ("DATABASE_URL", database_url(&pool).await),
        ("AUTH0_DOMAIN", app.tenant.base_url.clone()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("FLEETGATE_INSTANCE_AUDIENCE", INSTANCE_AUDIENCE.to_owned()),
        ("INSTANCE_AUDIENCE", INSTANCE_AUDIENCE.to_owned()),
        ("FLEETGATE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("FLEETGATE_PLATFORM_DOMAIN", PLATFORM_DOMAIN.to_owned()),
        ("EMULATOR_URL", app.tenant.base_url.clone()),
        ("ADMIN_URL", app.addr.clone()),
        ("ADMIN_TOKEN", app.admin_token.clone()),
        ("ACME_KEY", key),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    envs.extend(vars.into_iter().map(|(k, v)| (k.to_owned(), v)));
    node_tests("integrations/instance-node", &["test/"], envs, true).await;
}
