//! The login relay's own cost per hop, and token exchanges through it. fleetgate in `relay`
//! mode as a process of its own (its relay on its own address), the Auth0 emulator in this
//! process with no Action (the login decision is not a relay hop: bench/run grants measures
//! it), and the open-loop generator in another process. Logins are prepared here (the
//! tenant's login, with a session, is not the relay's), then each hop is sent at `--rate`:
//!
//! - authorize: `GET /authorize` (check the redirect URI against the registry, write the
//!   transaction, redirect to the tenant): all of it the relay's own cost;
//! - callback: `GET /callback` (take the transaction once, record the code, redirect to the
//!   SPA): all of it the relay's own;
//! - token: `POST /oauth/token` with the code (take it once, exchange it at the tenant with
//!   the relay's secret, record the refresh token), against the same exchange made at the
//!   emulator directly, interleaved with it in one run (`--token-hop-rate` each, for
//!   `--token-hop-seconds`): the difference is the relay's.
//!
//! Then token exchanges offered through the relay at `--token-rate` (default 1,250/s, above
//! the 1,000/s it is held to, so that what it achieves is what it can) and, the reference, to
//! the emulator alone.
//!
//! Each login runs the project's post-login Action (Node, in the emulator), which binds it to
//! its instance as the relay requires; preparing thousands of them takes a few minutes.
//!
//!     bench/run relay [--rate 500] [--seconds 4] [--token-hop-rate 150]
//!                     [--token-hop-seconds 8] [--token-rate 1250] [--authorize-only 1]

mod common;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{open_loop, process, report};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const INSTANCES: usize = 50;

fn main() -> anyhow::Result<()> {
    if common::child_role()? {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

fn callback_of(i: usize) -> String {
    format!("https://www.bench{}.com/callback", i % INSTANCES)
}

async fn run() -> anyhow::Result<()> {
    let rate = common::arg("--rate", 500);
    let seconds = common::arg("--seconds", 4);
    let token_rate = common::arg("--token-rate", 1250);
    let db = common::BenchDb::create("relay").await?;
    let dir = common::scratch("relay")?;
    let port = process::free_port()?;
    let relay = format!("http://127.0.0.1:{port}");
    let action = fleetgate_emulator::login::action::ActionConfig {
        file: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/integrations/auth0-action/post-login.js"
        )
        .into(),
        secrets: [
            ("FLEETGATE_URL".to_owned(), relay.clone()),
            (
                "FLEETGATE_ACTION_SECRET".to_owned(),
                common::ACTION_SECRET.to_owned(),
            ),
        ]
        .into(),
    };
    let tenant = common::Tenant::start_with_action(Some(action)).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let emu = tenant.base_url.clone();
    let seeded: Value = http
        .get(format!("{emu}/emulator/tenant"))
        .send()
        .await?
        .json()
        .await?;
    let text = |k: &str| seeded[k].as_str().unwrap_or_default().to_owned();
    let management: Value = http
        .post(format!("{emu}/oauth/token"))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": text("m2m_client_id"),
            "client_secret": text("m2m_client_secret"), "audience": text("management_audience")}),
        )
        .send()
        .await?
        .json()
        .await?;
    let relay_app: Value = http
        .post(format!("{emu}/api/v2/clients"))
        .bearer_auth(management["access_token"].as_str().unwrap_or_default())
        .json(&json!({"name": "relay", "app_type": "regular_web",
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "refresh_token": {"rotation_type": "rotating"}, "is_token_endpoint_ip_header_trusted": true}))
        .send()
        .await?
        .json()
        .await?;
    let relay_client = relay_app["client_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let spa = text("spa_client_id");
    let owner: Value = http
        .post(format!("{emu}/emulator/users"))
        .json(&json!({"email": "owner@example.com", "password": "pw", "email_verified": true}))
        .send()
        .await?
        .json()
        .await?;
    let owner = owner["user_id"].as_str().unwrap_or_default().to_owned();
    // The reference logs in at the tenant directly, through the SPA application: a person's
    // entry on its callbacks (fleetgate never removes one it did not add).
    let spa_callback = "https://www.bench0.com/callback";
    http.patch(format!("{emu}/api/v2/clients/{}", text("spa_client_id")))
        .bearer_auth(management["access_token"].as_str().unwrap_or_default())
        .json(&json!({"callbacks": [spa_callback]}))
        .send()
        .await?;

    let mut vars = common::fleetgate_vars(&db.url, &tenant);
    vars.extend([
        ("FLEETGATE_LISTEN", format!("127.0.0.1:{port}")),
        ("AUTH0_CLIENT_ID", text("m2m_client_id")),
        ("AUTH0_CLIENT_SECRET", text("m2m_client_secret")),
        ("AUTH0_SPA_CLIENT_ID", spa.clone()),
        ("FLEETGATE_LOGIN_MODE", "relay".to_owned()),
        ("FLEETGATE_RELAY_URL", relay.clone()),
        ("FLEETGATE_RELAY_CLIENT_ID", relay_client.clone()),
        (
            "FLEETGATE_RELAY_CLIENT_SECRET",
            relay_app["client_secret"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
    ]);
    let (server, _) = process::fleetgate(&vars, &dir).await?;
    let signer = fleetgate::auth::webhook::WebhookVerifier::new(&secrecy::SecretString::from(
        common::WEBHOOK_SECRET,
    ))?;
    for i in 0..INSTANCES {
        let event = json!({"type": "instance.deployed", "data": {"instance_id": format!("bench-{i}"),
            "owner": owner, "domains": [format!("www.bench{i}.com")]}});
        let url = format!("{}/v1/hooks/deploy", server.base);
        let id = format!("msg_{i}");
        let sent = common::send_hook(&http, &url, &signer, &id, event.to_string()).await;
        anyhow::ensure!(sent, "the deploy hook of bench-{i} was refused");
    }
    // The relay's application lists its callback after the first pass.
    let callback = format!("{relay}/callback");
    for attempt in 0..300 {
        anyhow::ensure!(attempt < 299, "the relay's callback was never listed");
        let c: Value = http
            .get(format!("{emu}/api/v2/clients/{relay_client}"))
            .bearer_auth(management["access_token"].as_str().unwrap_or_default())
            .send()
            .await?
            .json()
            .await?;
        if c["callbacks"].to_string().contains(&callback) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let authorize_url = |base: &str, client: &str, redirect: &str, state: &str| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", "openid offline_access")
            .append_pair("state", state)
            .append_pair("nonce", "n")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{base}/authorize?{q}")
    };
    // A session at the tenant: every later login there is answered at once.
    let session = session_cookie(
        &http,
        &emu,
        &authorize_url(&emu, &relay_client, &callback, "session"),
    )
    .await?;
    let total = (rate * seconds) as usize;
    let get = |url: String| open_loop::Request {
        method: "GET".into(),
        url,
        headers: vec![],
        body: None,
    };

    println!(
        "the relay at {rate} logins/s for {seconds} s, each hop open loop from another process"
    );
    // The first second after a start is not the steady state (each pooled connection's first
    // statements): sent, shown, not counted.
    let warm: Vec<_> = (0..rate as usize)
        .map(|i| {
            get(authorize_url(
                &relay,
                &relay_client,
                &callback_of(i),
                &format!("w{i}"),
            ))
        })
        .collect();
    let cold = open_loop::run(&dir, rate, warm)?;
    print_hop("authorize, first second (not counted)", &cold);
    // Hop 1: /authorize.
    let authorizes: Vec<_> = (0..total)
        .map(|i| {
            get(authorize_url(
                &relay,
                &relay_client,
                &callback_of(i),
                &format!("a{i}"),
            ))
        })
        .collect();
    let authorize = open_loop::run(&dir, rate, authorizes)?;
    print_hop("authorize", &authorize);
    let authorize_row = || {
        report::row(
            &format!("relay: authorize hop p99 at {rate} logins/s"),
            format!("{:.2} ms", authorize.p99_ms),
            "<= 2 ms",
            Some(authorize.p99_ms <= 2.0 && authorize.errors == 0),
        )
    };
    if common::arg("--authorize-only", 0) == 1 {
        authorize_row();
        server.stop()?;
        db.drop().await?;
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }

    // The tenant's part of each login, prepared here: the relay's redirect, then the tenant's
    // answer (with the session, after the Action) back to the relay's callback.
    let relay_login = |prefix: &'static str| {
        let (http, session) = (http.clone(), session.clone());
        let (relay, relay_client) = (relay.clone(), relay_client.clone());
        move |i: usize| {
            let (http, session) = (http.clone(), session.clone());
            let url = authorize_url(
                &relay,
                &relay_client,
                &callback_of(i),
                &format!("{prefix}{i}"),
            );
            async move {
                let to_tenant = location(&http, &url, None).await?;
                location(&http, &to_tenant, Some(&session)).await
            }
        }
    };
    let callbacks = prepare(total, relay_login("c")).await?;
    // The reference's codes: logins at the tenant directly, through the SPA application.
    let hop_rate = common::arg("--token-hop-rate", 150);
    let hop_total = ((hop_rate * common::arg("--token-hop-seconds", 8)) as usize).min(total);
    let direct_code = |i: usize| {
        let (http, session) = (http.clone(), session.clone());
        let url = authorize_url(&emu, &spa, spa_callback, &format!("d{i}"));
        async move { location(&http, &url, Some(&session)).await }
    };
    let direct_codes: Vec<String> = prepare(hop_total, direct_code)
        .await?
        .iter()
        .map(|back| param(back, "code"))
        .collect();
    // Hop 2: /callback; each answer's code is exchanged next.
    let callback_hop = open_loop::run(&dir, rate, callbacks.iter().cloned().map(get).collect())?;
    print_hop("callback", &callback_hop);
    let codes: Vec<String> = callbacks.iter().map(|c| param(c, "code")).collect();

    // Hop 3: the code's exchange, through the relay and (the reference) at the tenant itself,
    // interleaved in one run. The emulator signs two RS256 tokens per exchange in this
    // process, on the same two cores as everything else: at this rate the machine is far from
    // busy, so what is compared is each exchange's own path, not a queue.
    let token = |base: &str, client: &str, code: &str, redirect: &str| open_loop::Request {
        method: "POST".into(),
        url: format!("{base}/oauth/token"),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: Some(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("client_id", client)
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect)
                .append_pair("code_verifier", VERIFIER)
                .finish(),
        ),
    };
    let (through, direct) = open_loop::run_paired(
        &dir,
        hop_rate,
        codes
            .iter()
            .take(hop_total)
            .enumerate()
            .map(|(i, c)| token(&relay, &relay_client, c, &callback_of(i)))
            .collect(),
        direct_codes
            .iter()
            .map(|c| token(&emu, &spa, c, spa_callback))
            .collect(),
    )?;
    print_hop(
        &format!("token at {hop_rate}/s (through the relay)"),
        &through,
    );
    print_hop(
        &format!("token at {hop_rate}/s (at the tenant directly, interleaved)"),
        &direct,
    );

    // Token exchanges at a higher rate, for 2 s.
    let n = (token_rate * 2) as usize;
    let at_callbacks = prepare(n, relay_login("t")).await?;
    for c in &at_callbacks {
        location(&http, c, None).await?;
    }
    let more: Vec<_> = at_callbacks
        .iter()
        .enumerate()
        .map(|(i, c)| token(&relay, &relay_client, &param(c, "code"), &callback_of(i)))
        .collect();
    let burst = open_loop::run(&dir, token_rate, more)?;
    // The same offered straight to the tenant: what the emulator itself answers.
    let tenant_codes: Vec<_> = prepare(n, |i| direct_code(i + hop_total))
        .await?
        .iter()
        .map(|back| token(&emu, &spa, &param(back, "code"), spa_callback))
        .collect();
    let tenant_burst = open_loop::run(&dir, token_rate, tenant_codes)?;
    print_hop(
        &format!("token exchanges offered at {token_rate}/s to the tenant directly"),
        &tenant_burst,
    );
    print_hop(
        &format!("token exchanges offered at {token_rate}/s"),
        &burst,
    );

    let own = (through.p99_ms - direct.p99_ms).max(0.0);
    let clean = |o: &open_loop::Outcome| o.errors == 0;
    authorize_row();
    report::row(
        &format!("relay: callback hop p99 at {rate} logins/s"),
        format!("{:.2} ms", callback_hop.p99_ms),
        "<= 2 ms",
        Some(callback_hop.p99_ms <= 2.0 && clean(&callback_hop)),
    );
    report::row(
        &format!("relay: token hop p99 beyond the tenant's own, at {hop_rate}/s"),
        format!(
            "{own:.2} ms ({:.2} vs {:.2})",
            through.p99_ms, direct.p99_ms
        ),
        "<= 2 ms",
        Some(own <= 2.0 && clean(&through)),
    );
    println!(
        "token exchanges: {:.0}/s through the relay, {:.0}/s at the tenant directly (the emulator's own limit here)",
        burst.achieved_per_second, tenant_burst.achieved_per_second
    );
    report::row(
        "relay: token exchanges per second",
        format!(
            "{:.0}/s ({} errors; the tenant alone {:.0}/s)",
            burst.achieved_per_second, burst.errors, tenant_burst.achieved_per_second
        ),
        ">= 1000/s",
        Some(burst.achieved_per_second >= 1000.0 && clean(&burst)),
    );
    server.stop()?;
    db.drop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Runs `f(i)` for every `i` below `n`, a few at a time (each login runs the Action, a Node
/// process); answers what each produced, in order.
async fn prepare<F, Fut>(n: usize, f: F) -> anyhow::Result<Vec<String>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>> + Send + 'static,
{
    const AT_ONCE: usize = 8;
    let mut out = vec![String::new(); n];
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < n || !running.is_empty() {
        while next < n && running.len() < AT_ONCE {
            let work = f(next);
            let i = next;
            running.spawn(async move { (i, work.await) });
            next += 1;
        }
        if let Some(done) = running.join_next().await {
            let (i, value) = done?;
            out[i] = value?;
        }
    }
    Ok(out)
}

fn print_hop(name: &str, o: &open_loop::Outcome) {
    println!(
        "  {name}: sent {}, errors {}, achieved {:.0}/s; ms p50 {:.2}  p99 {:.2}  max {:.2} (generator late p99 {:.2})",
        o.sent, o.errors, o.achieved_per_second, o.p50_ms, o.p99_ms, o.max_ms, o.late_p99_ms
    );
}

/// Where `url` redirects to (with the tenant's session cookie if given).
async fn location(
    http: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
) -> anyhow::Result<String> {
    let mut req = http.get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let res = req.send().await?;
    anyhow::ensure!(res.status() == 302, "{url} answered {}", res.status());
    Ok(res.headers()["location"].to_str()?.to_owned())
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}

/// Logs in once at the tenant's form (shown for `authorize`): the session cookie.
async fn session_cookie(
    http: &reqwest::Client,
    emu: &str,
    authorize: &str,
) -> anyhow::Result<String> {
    let page = http.get(authorize).send().await?;
    anyhow::ensure!(
        page.status() == 200,
        "the tenant's login form: {} at {authorize}",
        page.status()
    );
    let csrf = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("_csrf="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let html = page.text().await?;
    let txn = html
        .split("name=\"txn\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let res = http
        .post(format!("{emu}/u/login"))
        .header("cookie", csrf)
        .form(&[
            ("txn", txn.as_str()),
            ("username", "owner@example.com"),
            ("password", "pw"),
        ])
        .send()
        .await?;
    let status = res.status();
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let explained = if status.is_client_error() {
        res.text().await.unwrap_or_default()
    } else {
        String::new()
    };
    let session = cookies
        .iter()
        .find(|v| v.starts_with("auth0="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    session.ok_or_else(|| {
        anyhow::anyhow!("no session from the tenant's login form ({status}: {explained})")
    })
}
