//! The social connection: `connection=google-oauth2` (or the login form's link) shows the
//! emulator's stand-in for Google's page; the person it names is a `google-oauth2|…` user with
//! a verified email, another user than the database one with the same email.

use serde_json::Value;

use crate::{browser::*, helpers::*, login::*};

#[tokio::test]
async fn a_social_login_makes_a_user_of_its_own_with_a_verified_email() {
    let (emu, spa, ann) = setup(config()).await;
    let mut b = Browser::new(&emu.base);

    // The database login form offers the social connection.
    let form = b.authorize(&spa, CALLBACK, &[]).await.text().await.unwrap();
    let link = between(&form, "id=\"social\" href=\"", "\"").replace("&amp;", "&");
    assert!(
        link.contains("connection=google-oauth2") && link.contains("state=st-1"),
        "{link}"
    );

    let res = b
        .authorize(&spa, CALLBACK, &[("connection", "google-oauth2")])
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Continue with Google (emulated)"), "{page}");
    assert!(!page.contains("name=\"password\""));
    // Something that is no address is asked again.
    let again = b.social_log_in(&page, "ann at example", "Ann G").await;
    assert_eq!(again.status(), 200);
    let page = again.text().await.unwrap();
    assert!(
        page.contains("id=\"error\"") && page.contains("Give the Google account"),
        "{page}"
    );
    let res = b.social_log_in(&page, "ann@example.com", "Ann G").await;
    let (to, params) = redirected(&res);
    assert_eq!(
        (to.as_str(), &params["state"]),
        (CALLBACK, &Value::from("st-1"))
    );
    let (status, tokens) = b
        .exchange(&spa, params["code"].as_str().unwrap(), CALLBACK)
        .await;
    assert_eq!(status, 200, "{tokens}");
    let id = payload(tokens["id_token"].as_str().unwrap());
    let sub = id["sub"].as_str().unwrap().to_owned();
    assert!(sub.starts_with("google-oauth2|") && sub != ann, "{sub}");
    assert_eq!(
        (&id["email"], &id["email_verified"]),
        (&Value::from("ann@example.com"), &Value::from(true))
    );
    assert_eq!(id["name"], "Ann G");

    // The same person again is the same user; the tenant now has two users with that email.
    b.forget_session();
    let page = b
        .authorize(&spa, CALLBACK, &[("connection", "google-oauth2")])
        .await
        .text()
        .await
        .unwrap();
    let (_, params) = redirected(&b.social_log_in(&page, "ANN@example.com", "").await);
    let (_, tokens) = b
        .exchange(&spa, params["code"].as_str().unwrap(), CALLBACK)
        .await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["sub"],
        sub.as_str()
    );
    let users: Value = emu.get_json("/emulator/users").await;
    let anns: Vec<&Value> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == "ann@example.com")
        .collect();
    assert_eq!(anns.len(), 2, "{users}");
    let social = anns.iter().find(|u| u["user_id"] == sub.as_str()).unwrap();
    assert_eq!(social["identities"][0]["provider"], "google-oauth2");
    assert_eq!(social["identities"][0]["isSocial"], true);

    // The password form still logs in the database user; a social user has no password.
    let mut other = Browser::new(&emu.base);
    let (_, params) = other
        .login(&spa, CALLBACK, "ann@example.com", ANN_PASSWORD)
        .await;
    let (_, tokens) = other
        .exchange(&spa, params["code"].as_str().unwrap(), CALLBACK)
        .await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["sub"],
        ann.as_str()
    );

    // An unknown connection goes back to the application as an error.
    let res = b
        .authorize(&spa, CALLBACK, &[("connection", "github")])
        .await;
    let (_, params) = redirected(&res);
    assert_eq!(params["error"], "invalid_request");
    assert!(
        params["error_description"]
            .as_str()
            .unwrap()
            .contains("github")
    );
}
