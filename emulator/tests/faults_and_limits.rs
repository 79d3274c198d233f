//! The Management API rate limit and injected faults.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleetgate_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn header(res: &reqwest::Response, name: &str) -> u64 {
    res.headers()[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn free_plan_bucket_headers_429_and_refill() {
    let emu = TestEmulator::start(EmulatorConfig {
        rate_limit_burst: 2,
        rate_limit_per_second: 2.0,
        ..config()
    })
    .await;
    let t = emu.management_token().await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let res = emu
            .http
            .get(emu.url("/api/v2/clients"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(header(&res, "x-ratelimit-limit"), 2);
        let reset = header(&res, "x-ratelimit-reset");
        assert!(
            reset >= now && reset <= now + 2,
            "reset is a Unix time in seconds: {reset} vs {now}"
        );
        answers.push((
            res.status().as_u16(),
            header(&res, "x-ratelimit-remaining"),
            res.json::<Value>().await.unwrap(),
        ));
    }
    assert_eq!((answers[0].0, answers[0].1), (200, 1));
    assert_eq!((answers[1].0, answers[1].1), (200, 0));
    let limited = answers.iter().filter(|a| a.0 == 429).count();
    assert!(limited >= 2, "a burst beyond 2 meets 429s: {answers:?}");
    let body = &answers.iter().find(|a| a.0 == 429).unwrap().2;
    assert_eq!(
        body,
        &json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached", "errorCode": "too_many_requests"})
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ok = [0; 2].len();
    for _ in 0..ok {
        let res = emu
            .http
            .get(emu.url("/api/v2/clients"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "refilled at 2/s");
    }
    // Errors carry the headers too.
    let res = emu
        .http
        .get(emu.url("/api/v2/clients/nope"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-ratelimit-remaining"));
}

#[tokio::test]
async fn injected_errors_429s_latency_and_dropped_connections() {
    let emu = TestEmulator::start(config()).await;
    let t = emu.management_token().await;
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/clients/{spa}");

    emu.set_faults(json!({"error_rate": 1.0})).await;
    let (s, body) = emu.call(Method::GET, "/api/v2/clients", &t, None).await;
    assert!(s == 500 || s == 503, "{s}");
    assert_eq!(body["statusCode"], s);
    let res = emu
        .http
        .post(emu.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_server_error(),
        "the token endpoint fails too"
    );

    emu.set_faults(json!({"rate_limit_rate": 1.0})).await;
    assert_mgmt_error(
        &emu.call(Method::GET, "/api/v2/clients", &t, None).await,
        429,
        Some("too_many_requests"),
        "Global limit",
    );

    emu.set_faults(json!({"latency_rate": 1.0, "latency_ms": 300}))
        .await;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert_eq!(
            emu.call(Method::GET, "/api/v2/clients", &t, None).await.0,
            200
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "some latency was added"
    );

    // A dropped connection: the caller gets no answer, yet the change was made.
    emu.set_faults(json!({"drop_rate": 1.0})).await;
    let res = emu
        .http
        .patch(emu.url(&path))
        .bearer_auth(&t)
        .json(&json!({"callbacks": ["https://dropped.example.com/cb"]}))
        .send()
        .await;
    let failed = match res {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(failed, "the connection was cut");
    emu.set_faults(json!({})).await;
    let (_, c) = emu.call(Method::GET, &path, &t, None).await;
    assert_eq!(c["callbacks"], json!(["https://dropped.example.com/cb"]));

    assert_eq!(emu.put_faults(json!({"error_rate": 2})).await, 400);
    let stats: Value = emu.get_json("/emulator/stats").await;
    assert!(
        stats["GET /api/v2/clients 429"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(
        stats["GET /api/v2/clients 200"].as_u64().unwrap() >= 5,
        "{stats}"
    );
}

#[tokio::test]
async fn a_person_edits_right_after_the_next_write_once() {
    let emu = TestEmulator::start(config()).await;
    let t = emu.management_token().await;
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/clients/{spa}");
    emu.set_faults(json!({"concurrent_edit": {"field": "callbacks", "entry": "https://person.example.com/cb"}})).await;
    let (_, answer) = emu
        .call(
            Method::PATCH,
            &path,
            &t,
            Some(json!({"callbacks": ["https://a.example.com/cb"]})),
        )
        .await;
    assert_eq!(
        answer["callbacks"],
        json!(["https://a.example.com/cb"]),
        "the write's answer does not show the edit"
    );
    let (_, now) = emu.call(Method::GET, &path, &t, None).await;
    assert_eq!(
        now["callbacks"],
        json!(["https://a.example.com/cb", "https://person.example.com/cb"])
    );
    emu.call(Method::PATCH, &path, &t, Some(json!({"callbacks": []})))
        .await;
    let (_, later) = emu.call(Method::GET, &path, &t, None).await;
    assert_eq!(later["callbacks"], json!([]), "only once");
    assert_eq!(
        emu.put_faults(json!({"concurrent_edit": {"field": "callbacks", "entry": "nope"}}))
            .await,
        400
    );
}

#[tokio::test]
async fn the_next_request_to_a_route_is_dropped_once_after_taking_effect() {
    let emu = TestEmulator::start(config()).await;
    let t = emu.management_token().await;
    emu.set_faults(json!({"drop_next": "POST /api/v2/clients"}))
        .await;
    let (_, before) = emu.call(Method::GET, "/api/v2/clients", &t, None).await;
    assert_eq!(before.as_array().unwrap().len(), 2, "other routes answer");
    let create = || {
        emu.http
            .post(emu.url("/api/v2/clients"))
            .bearer_auth(&t)
            .json(&json!({"name": "made", "app_type": "spa"}))
            .send()
    };
    let failed = match create().await {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(failed, "the connection was cut");
    let (_, after) = emu.call(Method::GET, "/api/v2/clients", &t, None).await;
    assert_eq!(
        after.as_array().unwrap().len(),
        3,
        "yet the client was made"
    );
    assert_eq!(create().await.unwrap().status(), 201, "only once");
    assert_eq!(emu.put_faults(json!({"drop_next": "clients"})).await, 400);
}
