//! Every error is problem+json; operations endpoints; request ids; database outages.

use reqwest::Method;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn framework_errors_are_problem_json(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    // Under /v1/ the caller comes first: a wrong method is a 401 without credentials.
    let res = app
        .http
        .request(Method::PUT, app.url("/v1/instances"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .admin(Method::PUT, "/v1/instances")
        .send()
        .await
        .unwrap();
    assert_problem(res, 405, "method_not_allowed").await;
    let res = app
        .admin(Method::POST, "/v1/instances")
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "invalid_json").await;
    let res = app
        .admin(Method::POST, "/v1/instances")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
    let huge = format!(
        r#"{{"id":"a","owner":"auth0|x","domains":["{}"]}}"#,
        "a".repeat(70 * 1024)
    );
    let res = app
        .admin(Method::POST, "/v1/instances")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, "payload_too_large").await;
    let res = app
        .admin(Method::POST, "/v1/instances")
        .json(&serde_json::json!({"id": "a", "owner": 5}))
        .send()
        .await
        .unwrap();
    let detail = assert_problem(res, 422, "validation_failed").await;
    assert!(
        detail.contains("owner") || detail.contains("integer"),
        "{detail}"
    );
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let res = app
        .admin(Method::POST, "/v1/instances")
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());

    // Huge headers: a 64 KiB bearer token, and a hundred 1 KiB headers.
    let before = app.snapshot().await;
    let res = app
        .http
        .post(app.url("/v1/instances"))
        .bearer_auth("x".repeat(64 * 1024))
        .json(&serde_json::json!({"id": "big", "owner": "auth0|x"}))
        .send()
        .await;
    assert!(
        res.is_err() || res.as_ref().unwrap().status().is_client_error(),
        "{res:?}"
    );
    let mut req = app
        .admin(Method::POST, "/v1/instances")
        .json(&serde_json::json!({"id": "many", "owner": "auth0|x"}));
    for n in 0..100 {
        req = req.header(format!("x-filler-{n}"), "y".repeat(1024));
    }
    let res = req.send().await;
    assert!(
        res.is_err() || res.as_ref().unwrap().status().is_client_error(),
        "{res:?}"
    );
    assert_eq!(app.snapshot().await, before);
}

/// Ready means the memory polls are answered from was loaded: while its first load waits
/// (here on a locked table), `/readyz` is 503 though the database answers, and 200 after.
#[sqlx::test]
async fn readyz_waits_for_the_memory_of_keys_and_revisions(pool: PgPool) {
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE instance_keys IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let tenant = TestTenant::start().await;
    let (addr, _stop, _task) = spawn_process(&pool, &tenant.base_url, &[]);
    let http = reqwest::Client::new();
    let ready = || http.get(format!("{addr}/readyz")).send();
    let mut first = None;
    for _ in 0..100 {
        if let Ok(res) = ready().await {
            first = Some(res);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let res = first.expect("the server answers");
    let body = res.text().await.unwrap();
    assert!(body.contains("still being loaded"), "{body}");
    lock.rollback().await.unwrap();
    let mut status = 0;
    for _ in 0..100 {
        status = ready().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "ready once the memory is loaded");
}

#[sqlx::test]
async fn health_ready_metrics_and_request_ids(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"].len(), 36);
    let res = app
        .http
        .get(app.url("/readyz"))
        .header("x-request-id", "trace-abc.1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc.1");
    assert_eq!(res.status(), 200);
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "bad id");

    app.deploy("acme", &["www.acme.com"]).await;
    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"fleetgate_http_requests_total{endpoint="/v1/hooks/deploy",method="POST",status="200"} 1"#), "{metrics}");
    assert!(metrics.contains("fleetgate_http_requests_duration_seconds_bucket"));
}

#[tokio::test]
async fn database_down_is_503_not_500() {
    let tenant = TestTenant::start().await;
    let settings = settings(&tenant.base_url);
    // Nothing listens on port 1: every connection attempt fails at once.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy("postgres://postgres@127.0.0.1:1/fleetgate")
        .unwrap();
    let app = fleetgate::startup::Application::build(&settings, pool).unwrap();
    let addr = format!("http://127.0.0.1:{}", app.port());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::new();
    let token = tenant.sign(&tenant.claims(&["fleet:admin"]));

    assert_eq!(
        http.get(format!("{addr}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_problem(
        http.get(format!("{addr}/readyz")).send().await.unwrap(),
        503,
        "service_unavailable",
    )
    .await;
    let res = http
        .get(format!("{addr}/v1/instances"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(res, 503, "service_unavailable").await;
    let body = deployed("acme", "auth0|o", &["www.acme.com"]).to_string();
    let ts = chrono::Utc::now().timestamp();
    let sig = signature("msg_1", ts, &body);
    let res = http
        .post(format!("{addr}/v1/hooks/deploy"))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    let detail = assert_problem(res, 503, "service_unavailable").await;
    assert!(
        !detail.contains("127.0.0.1:1"),
        "no internals in the body: {detail}"
    );
    stop.cancel();
}

/// With `FLEETGATE_METRICS_LISTEN`, `/metrics` is served on that address only: the API's
/// listener, which the internet may reach, no longer answers it.
#[sqlx::test]
async fn metrics_can_listen_on_an_address_of_their_own(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let settings = settings_with(
        &tenant.base_url,
        &[("FLEETGATE_METRICS_LISTEN", "127.0.0.1:0".into())],
    );
    let app = fleetgate::startup::Application::build(&settings, pool).unwrap();
    let api = format!("http://127.0.0.1:{}", app.port());
    let metrics = format!("http://127.0.0.1:{}", app.metrics_port().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{api}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = http.get(format!("{api}/metrics")).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    let text = http
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("fleetgate_http_requests_total") && text.contains("/healthz"),
        "the API's requests are counted: {text}"
    );
    let res = http
        .get(format!("{metrics}/v1/instances"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = http
        .post(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 405, "method_not_allowed").await;
    stop.cancel();
    served.await.unwrap().unwrap();
}

/// `/metrics` answers GET only: any other method is a 405 (schemathesis's
/// `unsupported_method`), on the API's listener and on a metrics listener of its own.
#[sqlx::test]
async fn metrics_answer_other_methods_405(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for method in ["TRACE", "POST", "DELETE"] {
        let res = app
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/metrics"),
            )
            .send()
            .await
            .unwrap();
        assert_problem(res, 405, "method_not_allowed").await;
    }
}

/// Every metric the shipped alert rules and dashboard name (`deploy/`) is one fleetgate
/// exports, seen on `/metrics` after a little of everything happened.
#[sqlx::test]
async fn the_shipped_alerts_and_dashboard_name_only_exported_metrics(pool: PgPool) {
    let tenant = TestTenant::start_with(fleetgate_emulator::EmulatorConfig {
        // Calls after the first wait for the rate limit: every Management API metric moves.
        rate_limit_burst: 1,
        rate_limit_per_second: 2.0,
        ..TestTenant::config()
    })
    .await;
    let vars = tenant.reconciler_vars().await;
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    app.deploy("acme", &["www.acme.com"]).await;
    let res = app
        .admin(Method::POST, "/v1/reconcile")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let exported = app.metrics().await;
    let root = env!("CARGO_MANIFEST_DIR");
    let mut named = Vec::new();
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/fleetgate.json",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        for (at, _) in text.match_indices("fleetgate_") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name)
                .to_owned();
            named.push((file, family));
        }
    }
    assert!(named.len() > 10, "{named:?}");
    for (file, family) in named {
        assert!(
            exported.contains(&format!("# TYPE {family} ")),
            "{file} names {family}, which /metrics does not export:\n{exported}"
        );
    }
}

/// The request head limit docs/api.md states is the one enforced (actix-http's): a head of up to
/// 128 KiB (request line, headers and the blank line: 131,072 bytes) with up to 96 header
/// fields is served; one byte or one field more is 431, before any of fleetgate's code runs.
#[sqlx::test]
async fn request_heads_over_128_kib_or_96_fields_are_431(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(pool).await;
    let status_of = |head: Vec<u8>| {
        let addr = app.addr.trim_start_matches("http://").to_owned();
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(&head).await.unwrap();
            let mut answer = vec![0; 64];
            let n = stream.read(&mut answer).await.unwrap();
            String::from_utf8_lossy(&answer[..n])
                .split("\r\n")
                .next()
                .unwrap()
                .to_owned()
        }
    };
    const LIMIT: usize = 128 * 1024;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    assert!(
        readme.contains("over 128 KiB (131,072 bytes), or with more than 96 header\nfields: 431"),
        "docs/api.md states the limit tested here"
    );
    let padded = |total: usize| {
        let start = b"GET /healthz HTTP/1.1\r\nHost: fleetgate\r\nX-Pad: ";
        let end = b"\r\n\r\n";
        let mut head = start.to_vec();
        head.resize(total - end.len(), b'a');
        head.extend_from_slice(end);
        assert_eq!(head.len(), total);
        head
    };
    assert_eq!(status_of(padded(LIMIT)).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_of(padded(LIMIT + 1)).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let fields = |count: usize| {
        let mut head = b"GET /healthz HTTP/1.1\r\nHost: fleetgate\r\n".to_vec();
        for i in 1..count {
            head.extend_from_slice(format!("X-Field-{i}: a\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    };
    assert_eq!(status_of(fields(96)).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_of(fields(97)).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}
