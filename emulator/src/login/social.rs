//! The social connection (`google-oauth2`), with the emulator's own page standing in for the
//! provider's (no network here): `/authorize?connection=google-oauth2`, or the login form's
//! "Continue with Google (emulated)", shows it; `POST /u/social` logs the person in as the
//! connection's user with that email (made at the first login, email verified), as Auth0 does
//! when Google answers.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{
    authorize::{logged_in, named, pending_of},
    pages::{SocialPage, social_form},
    state::Authorization,
};
use crate::{
    Emu,
    users::{GOOGLE_CONNECTION, User, is_email},
};

/// The provider's page for login `txn`.
pub(super) fn page(
    emu: &Emu,
    authorization: &Authorization,
    txn: &str,
    hint: &str,
    error: Option<&str>,
) -> HttpResponse {
    let (application, site) = named(&emu.tenant.lock().expect("tenant lock"), authorization);
    social_form(&SocialPage {
        txn,
        application: &application,
        site: &site,
        hint,
        error,
    })
}

#[derive(serde::Deserialize)]
pub struct SocialForm {
    txn: String,
    email: String,
    #[serde(default)]
    name: String,
}

/// `POST /u/social`: the provider said who this is.
pub async fn login(
    emu: web::Data<Emu>,
    req: HttpRequest,
    form: web::Form<SocialForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let authorization = match pending_of(&emu, &req, &form.txn) {
        Ok(a) => a,
        Err(page) => return *page,
    };
    let email = form.email.trim();
    if !is_email(email) {
        return page(
            &emu,
            &authorization,
            &form.txn,
            email,
            Some("Give the Google account's email address."),
        );
    }
    let user_id = emu.change(
        |tenant| match tenant.user_by_email(GOOGLE_CONNECTION, email) {
            Some(user) => user.user_id.clone(),
            None => {
                let user = User::social(GOOGLE_CONNECTION, email, form.name.trim());
                let id = user.user_id.clone();
                tenant.users.push(user);
                id
            }
        },
    );
    logged_in(&emu, &req, &authorization, &form.txn, &user_id).await
}
