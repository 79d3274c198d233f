//! The login relay across replicas: a login begun on one finishes on another, and a refresh
//! token keeps its instance through either (its transactions and bindings live in Postgres).

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
