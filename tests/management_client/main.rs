//! fleetgate's Management API client against the emulator: token caching, the rate-limit
//! budget, retries through injected faults, typed errors. (The emulator's own test helpers
//! drive it.)

#[path = "../../emulator/tests/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;

use fleetgate::{
    auth0::{Auth0Error, Credentials, ManagementClient},
    metrics::Metrics,
};
use fleetgate_emulator::EmulatorConfig;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

fn client(emu: &TestEmulator) -> ManagementClient {
    let (id, secret) = emu.m2m();
    ManagementClient::new(
        Credentials {
            base_url: emu.base.clone(),
            client_id: id,
            client_secret: SecretString::from(secret),
        },
        Metrics::new(),
    )
}

async fn stats(emu: &TestEmulator) -> Value {
    emu.http
        .get(emu.url("/emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn count(stats: &Value, key: &str) -> u64 {
    stats[key].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn one_token_serves_many_concurrent_calls() {
    let emu = TestEmulator::start(config()).await;
    let c = Arc::new(client(&emu));
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    let calls = (0..10).map(|_| {
        let (c, spa) = (c.clone(), spa.clone());
        tokio::spawn(async move { c.get_client(&spa, &["client_id", "callbacks"]).await })
    });
    for call in calls {
        let got = call.await.unwrap().unwrap();
        assert_eq!(got, json!({"client_id": spa}));
    }
    let s = stats(&emu).await;
    assert_eq!(count(&s, "POST /oauth/token 200"), 1, "{s}");
    assert_eq!(count(&s, "GET /api/v2/clients/{id} 200"), 10, "{s}");
}

#[tokio::test]
async fn the_budget_avoids_429s_at_the_free_plan_limit() {
    let emu = TestEmulator::start(EmulatorConfig {
        rate_limit_burst: 2,
        rate_limit_per_second: 2.0,
        ..config()
    })
    .await;
    let c = client(&emu);
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    for i in 0..8 {
        let body = json!({"callbacks": [format!("https://h{i}.example.com/callback")]});
        c.patch_client(&spa, &body).await.unwrap();
    }
    let s = stats(&emu).await;
    assert_eq!(count(&s, "PATCH /api/v2/clients/{id} 200"), 8, "{s}");
    assert_eq!(
        count(&s, "PATCH /api/v2/clients/{id} 429"),
        0,
        "waited for the reset instead of being told no: {s}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "8 calls at 2/s after a burst of 2 take ~3 s"
    );
}

#[tokio::test]
async fn calls_get_through_30_percent_faults() {
    let emu = TestEmulator::start(config()).await;
    let c = client(&emu);
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    // Seeded: with six attempts per call, unseeded draws failed a call in about one run of 125.
    emu.set_faults(json!({"error_rate": 0.1, "rate_limit_rate": 0.1, "drop_rate": 0.1, "latency_rate": 0.3, "latency_ms": 50, "seed": 2026}))
        .await;
    for i in 0..20 {
        let want = json!([format!("https://r{i}.example.com/callback")]);
        let got = c
            .patch_client(&spa, &json!({"callbacks": want}))
            .await
            .unwrap();
        assert_eq!(got["callbacks"], want);
    }
    emu.set_faults(json!({})).await;
    let now = c.get_client(&spa, &["callbacks"]).await.unwrap();
    assert_eq!(
        now["callbacks"],
        json!(["https://r19.example.com/callback"])
    );
    let s = stats(&emu).await;
    let failures: u64 = s
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("PATCH") && !k.ends_with(" 200"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert!(
        failures > 0
            || c.counters
                .retries
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0,
        "faults were met: {s}"
    );
}

#[tokio::test]
async fn errors_are_typed_with_auth0_fields() {
    let emu = TestEmulator::start(config()).await;
    let c = client(&emu);
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    match c
        .patch_client(&spa, &json!({"callbacks": ["https://*.com/cb"]}))
        .await
    {
        Err(Auth0Error::Api {
            status: 400,
            error_code: Some(code),
            message,
        }) => {
            assert_eq!(code, "invalid_body");
            assert!(message.contains("callback-url"));
        }
        other => panic!("{other:?}"),
    }
    match c.get_client("nope", &[]).await {
        Err(e @ Auth0Error::Api { .. }) => assert_eq!(
            (e.status(), e.to_string().contains("inexistent_client")),
            (Some(404), true)
        ),
        other => panic!("{other:?}"),
    }
    let wrong = ManagementClient::new(
        Credentials {
            base_url: emu.base.clone(),
            client_id: emu.m2m().0,
            client_secret: SecretString::from("wrong"),
        },
        Metrics::new(),
    );
    match wrong.get_client(&spa, &[]).await {
        Err(Auth0Error::Token(m)) => {
            assert!(m.contains("access_denied") && !m.contains("wrong"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_creation_is_not_sent_again_once_it_may_have_arrived() {
    let emu = TestEmulator::start(config()).await;
    let c = client(&emu);
    emu.set_faults(json!({"drop_next": "POST /api/v2/clients"}))
        .await;
    let lost = c
        .create_client(&json!({"name": "made once", "app_type": "spa"}))
        .await
        .expect_err("the answer was cut");
    assert!(lost.maybe_applied(), "{lost}");
    let s = stats(&emu).await;
    assert_eq!(count(&s, "POST /api/v2/clients 201"), 1, "sent once: {s}");
    let all = c.list_clients(&["name"]).await.unwrap();
    assert_eq!(
        all.iter().filter(|a| a["name"] == "made once").count(),
        1,
        "{all:?}"
    );
    // Where it surely did not arrive (a 429: a fifth of the answers), it is sent again.
    emu.set_faults(json!({"rate_limit_rate": 0.2})).await;
    for n in 0..10 {
        c.create_client(&json!({"name": format!("app {n}"), "app_type": "spa"}))
            .await
            .expect("429s are waited out");
    }
}
