//! A full scenario with every log at TRACE, then a search of the logs for every secret:
//! the webhook secret, the M2M client secret, bearer tokens, webhook signatures, instance keys,
//! the Action's secret.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use fleetgate::{auth::webhook::WebhookVerifier, config::Settings, startup::Application};
use fleetgate_emulator::{Emulator, EmulatorConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const ACTION_SECRET: &str = "the-action-secret-never-logged-0123456789";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[sqlx::test]
async fn no_secret_reaches_the_logs(pool: PgPool) {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let emulator = Emulator::build(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rate_limit_burst: 100,
        rate_limit_per_second: 100.0,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let base = emulator.base_url().to_owned();
    let stop = CancellationToken::new();
    tokio::spawn(emulator.run_until_stopped(stop.clone()));
    let http = reqwest::Client::new();
    let tenant: Value = http
        .get(format!("{base}/emulator/tenant"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m2m_secret = tenant["m2m_client_secret"].as_str().unwrap().to_owned();
    let vars = [
        ("DATABASE_URL", "postgres://unused".to_owned()),
        ("FLEETGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("AUTH0_DOMAIN", base.clone()),
        ("AUTH0_AUDIENCE", "https://fleetgate.local/api".to_owned()),
        (
            "FLEETGATE_INSTANCE_AUDIENCE",
            "https://instances.fleetgate.local/api".to_owned(),
        ),
        ("FLEETGATE_PLATFORM_DOMAIN", "apps.example.com".to_owned()),
        ("FLEETGATE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        (
            "AUTH0_CLIENT_ID",
            tenant["m2m_client_id"].as_str().unwrap().to_owned(),
        ),
        ("AUTH0_CLIENT_SECRET", m2m_secret.clone()),
        ("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned()),
        (
            "AUTH0_SPA_CLIENT_ID",
            tenant["spa_client_id"].as_str().unwrap().to_owned(),
        ),
    ];
    let settings =
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    tracing::info!(?settings, "settings as they would be logged");
    let app = Application::build(&settings, pool).unwrap();
    let addr = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(stop.clone()));

    // Deploy hooks: a good one, a forged one.
    let body = json!({"type": "instance.deployed", "data": {"instance_id": "acme", "owner": "auth0|alice", "domains": ["www.acme.com"]}}).to_string();
    let ts = chrono::Utc::now().timestamp();
    let signature = WebhookVerifier::new(&SecretString::from(WEBHOOK_SECRET))
        .unwrap()
        .sign("msg_1", ts, body.as_bytes())
        .unwrap();
    let mut answers = vec![];
    for sig in [
        signature.as_str(),
        "v1,Zm9yZ2VkIHNpZ25hdHVyZSBmb3IgdGVzdGluZyAxMjM0NTY=",
    ] {
        let answer = http
            .post(format!("{addr}/v1/hooks/deploy"))
            .header("content-type", "application/json")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        answers.push(answer.json::<Value>().await.unwrap());
    }
    let first_key = answers[0]["instance_key"].as_str().unwrap().to_owned();
    // Admin calls with a good token and a bad one; a reconcile pass (M2M token, Management API).
    let minted: Value = http
        .post(format!("{base}/emulator/users/token"))
        .json(&json!({"sub": "auth0|admin", "permissions": ["fleet:admin"], "client_id": tenant["m2m_client_id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_token = minted["access_token"].as_str().unwrap().to_owned();
    http.get(format!("{addr}/v1/instances"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    http.get(format!("{addr}/v1/instances"))
        .bearer_auth(format!("{admin_token}x"))
        .send()
        .await
        .unwrap();
    let run: Value = http
        .post(format!("{addr}/v1/reconcile"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(run["outcome"], "failed", "{run}");
    // Grants: a rotation, polls with both keys and a wrong one, a login decision.
    let rotated: Value = http
        .post(format!("{addr}/v1/instances/acme/keys/rotate"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second_key = rotated["instance_key"].as_str().unwrap().to_owned();
    for key in [
        &first_key,
        &second_key,
        &format!("{}x", &second_key[..second_key.len() - 1]),
    ] {
        http.get(format!("{addr}/v1/instances/acme/grants?wait=0"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
    }
    let decision = http
        .post(format!("{addr}/v1/login-decisions"))
        .bearer_auth(ACTION_SECRET)
        .json(&json!({"user_id": "auth0|alice", "redirect_uri": "https://www.acme.com/cb"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decision.status(), 200);
    stop.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.len() > 10_000,
        "TRACE logging was captured ({} bytes)",
        text.len()
    );
    let key = WEBHOOK_SECRET.trim_start_matches("whsec_");
    for (what, secret) in [
        ("webhook secret", key),
        ("M2M client secret", m2m_secret.as_str()),
        ("admin bearer token", admin_token.as_str()),
        ("webhook signature", signature.trim_start_matches("v1,")),
        ("first instance key", first_key.as_str()),
        ("rotated instance key", second_key.as_str()),
        ("Action secret", ACTION_SECRET),
    ] {
        assert!(!text.contains(secret), "the {what} appears in the logs");
    }
    // No token of any kind (fleetgate's own Management API token included): JWTs start with eyJ.
    let jwt = text
        .match_indices("eyJ")
        .find(|(i, _)| text[*i..].chars().take(200).filter(|c| *c == '.').count() >= 2);
    assert!(
        jwt.is_none(),
        "a JWT appears in the logs: {}",
        &text[jwt.unwrap().0.saturating_sub(200)..jwt.unwrap().0 + 50]
    );
}
