//! The relay's own application (`FLEETGATE_RELAY_CLIENT_ID`): its lists hold the relay's
//! callback, its logout return and its origin, which each pass adds when missing (and never
//! removes anything else), and its settings that the relay relies on are checked.

use serde_json::{Value, json};

use super::{ReconcileError, Reconciler, reconciler::lists_of};
use crate::{config::RelaySettings, domain::Field};

/// The entries the relay's application must list, per field.
pub fn relay_entries(relay: &RelaySettings) -> [(Field, String); 3] {
    [
        (Field::Callbacks, relay.callback()),
        (Field::AllowedLogoutUrls, relay.logged_out()),
        (Field::WebOrigins, relay.url.clone()),
    ]
}

/// What is wrong with the relay's application for the relay, in words an operator can act on.
pub fn problems(client: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let method = client["token_endpoint_auth_method"].as_str().unwrap_or("");
    if !matches!(method, "client_secret_post" | "client_secret_basic") {
        out.push(format!(
            "its token endpoint authentication is '{method}': make it a Regular Web Application (client_secret_post), so its codes and refresh tokens are exchanged with its secret only"
        ));
    }
    let grants: Vec<&str> = client["grant_types"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for needed in ["authorization_code", "refresh_token"] {
        if !grants.contains(&needed) {
            out.push(format!("its grant types lack {needed}"));
        }
    }
    if client["refresh_token"]["rotation_type"].as_str() != Some("rotating") {
        out.push(
            "refresh-token rotation is off: turn on Rotation (refresh_token.rotation_type rotating), so a stolen refresh token is revoked at its first reuse".into(),
        );
    }
    if client["is_token_endpoint_ip_header_trusted"].as_bool() != Some(true) {
        out.push(
            "\"Trust Token Endpoint IP Header\" is off: without it the tenant's attack protection sees the relay's address for every user".into(),
        );
    }
    out
}

impl Reconciler {
    /// Adds the relay's entries its application lacks; answers what is wrong with its
    /// settings (which stops nothing: logins may still work).
    pub(super) async fn keep_relay_app(
        &self,
        relay: &RelaySettings,
    ) -> Result<Vec<String>, ReconcileError> {
        let fields = [
            "callbacks",
            "allowed_logout_urls",
            "web_origins",
            "allowed_origins",
            "token_endpoint_auth_method",
            "grant_types",
            "refresh_token",
            "is_token_endpoint_ip_header_trusted",
        ];
        let client = self.client.get_client(&relay.client_id, &fields).await?;
        let lists = lists_of(&client);
        let mut patch = serde_json::Map::new();
        for (field, entry) in relay_entries(relay) {
            let list = &lists[&field];
            if !list.contains(&entry) {
                let mut next = list.clone();
                next.push(entry);
                patch.insert(field.name().to_owned(), json!(next));
            }
        }
        if !patch.is_empty() {
            tracing::info!(client_id = %relay.client_id, fields = ?patch.keys().collect::<Vec<_>>(), "adding the relay's entries to its application");
            self.client
                .patch_client(&relay.client_id, &Value::Object(patch))
                .await?;
        }
        Ok(problems(&client)
            .into_iter()
            .map(|p| format!("the relay's application {}: {p}", relay.client_id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_set_relay_application_has_no_problems_and_each_wrong_setting_is_named() {
        let good = json!({
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "refresh_token": {"rotation_type": "rotating"},
            "is_token_endpoint_ip_header_trusted": true,
        });
        assert!(problems(&good).is_empty());
        let bad = json!({
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "refresh_token": {"rotation_type": "non-rotating"},
        });
        let found = problems(&bad).join("\n");
        for words in [
            "'none'",
            "refresh_token",
            "Rotation",
            "Trust Token Endpoint IP Header",
        ] {
            assert!(found.contains(words), "{words} in {found}");
        }
    }
}
