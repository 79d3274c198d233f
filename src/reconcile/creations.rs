//! New applications for a full pool: created with the primary's relevant settings, each
//! creation written ahead with a mark so that one whose answer was lost is found (and joins
//! the pool) instead of made twice; each application counts against the tenant's limit.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{
    ReconcileError, Reconciler,
    placement::{self, AppLists},
    shard::{Demand, Placement},
};
use crate::{auth0::Auth0Error, db};

/// Tries at creating an application whose answers are lost before giving up for this pass.
const CREATE_ATTEMPTS: usize = 3;
/// The `client_metadata` key naming one creation of an application.
const CREATION_MARK: &str = "fleetgate_creation";
/// What an application fleetgate creates copies from the primary.
const COPIED_SETTINGS: [&str; 10] = [
    "app_type",
    "token_endpoint_auth_method",
    "grant_types",
    "oidc_conformant",
    "jwt_configuration",
    "cross_origin_authentication",
    "sso_disabled",
    "custom_login_page_on",
    "is_first_party",
    "initiate_login_uri",
];
/// A creation whose application Auth0 still does not list after this long was never made.
const LOST_CREATION_SECS: f64 = 600.0;

impl Reconciler {
    /// Creates applications while some instance has no room and a new application would
    /// take one (recording each in the pool), placing the pool again after each.
    pub(super) async fn grow(
        &self,
        conn: &mut sqlx::PgConnection,
        apps: &mut Vec<AppLists>,
        demands: &[Demand],
        placements: &mut BTreeMap<String, Placement>,
        problems: &mut Vec<String>,
    ) -> Result<(), ReconcileError> {
        let (opts, cap) = (self.options(), self.settings.cap);
        while placements.values().any(|p| *p == Placement::Unplaced) {
            let (unplaced, fits_new) = placement::unplaced(demands, placements, opts, cap);
            if !fits_new {
                let ids: Vec<&str> = unplaced.iter().map(|d| d.instance_id.as_str()).collect();
                problems.push(format!(
                    "instance(s) {} need more entries than even a new application has room for (FLEETGATE_ALLOWLIST_CAP {cap}, less the wildcard entries every application carries): raise the cap or give them fewer hosts; no application was created",
                    ids.join(", "),
                ));
                break;
            }
            // Written ahead: if the answer is lost, a later pass finds the application.
            let mark = uuid::Uuid::new_v4().to_string();
            db::applications::begin_creation(conn, &mark).await?;
            match self.create_application(apps.len(), &mark).await {
                Ok(client_id) => {
                    db::applications::created(conn, &mark, &client_id).await?;
                    tracing::info!(client_id, "created an application: the pool was full");
                    apps.push(AppLists::empty(client_id));
                    *placements = super::shard::assign(demands, &placement::rooms(apps, opts, cap));
                }
                Err(e) => {
                    if !e.maybe_applied() {
                        db::applications::forget_creation(conn, &mark).await?;
                    }
                    problems.push(format!("creating another application failed ({e}); raise the tenant's application limit or register an application with room"));
                    break;
                }
            }
        }
        Ok(())
    }

    /// A new application with the primary's relevant settings.
    async fn create_application(&self, index: usize, mark: &str) -> Result<String, Auth0Error> {
        // Only what is copied (and the name): not, say, the primary's client secret.
        let fields: Vec<&str> = COPIED_SETTINGS.iter().copied().chain(["name"]).collect();
        let primary = self
            .client
            .get_client(self.application_id(), &fields)
            .await?;
        let mut body = Map::new();
        for key in COPIED_SETTINGS {
            if let Some(v) = primary.get(key).filter(|v| !v.is_null()) {
                body.insert(key.to_owned(), v.clone());
            }
        }
        let name = primary["name"].as_str().unwrap_or("fleetgate");
        body.insert(
            "name".into(),
            json!(format!("{name} (fleetgate shard {index})")),
        );
        // Marks this creation, so that one whose answer was lost is found instead of made twice
        // (each application counts against the tenant's limit).
        body.insert(
            "client_metadata".into(),
            json!({ "fleetgate_shard_of": self.application_id(), CREATION_MARK: mark }),
        );
        let body = Value::Object(body);
        let mut last = None;
        for _ in 0..CREATE_ATTEMPTS {
            match self.client.create_client(&body).await {
                Ok(created) => {
                    return created["client_id"]
                        .as_str()
                        .map(String::from)
                        .ok_or_else(|| {
                            Auth0Error::Transport("the created application has no client_id".into())
                        });
                }
                Err(e) if e.maybe_applied() => {
                    if let Some(found) = self.created_by(&[mark]).await?.remove(mark) {
                        tracing::info!(
                            client_id = found,
                            "found the application whose creation answer was lost"
                        );
                        return Ok(found);
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// The applications that these creations made, by mark, as far as Auth0 has them.
    async fn created_by(&self, marks: &[&str]) -> Result<BTreeMap<String, String>, Auth0Error> {
        let clients = self
            .client
            .list_clients(&["client_id", "client_metadata"])
            .await?;
        Ok(clients
            .iter()
            .filter_map(|c| {
                let mark = c["client_metadata"][CREATION_MARK].as_str()?;
                let client_id = c["client_id"].as_str()?;
                marks
                    .contains(&mark)
                    .then(|| (mark.to_owned(), client_id.to_owned()))
            })
            .collect())
    }

    /// Settles creations an earlier pass left open (its answer lost, or the process died
    /// before recording it): an application Auth0 has joins the pool; one still missing after
    /// `LOST_CREATION_SECS` was never made.
    pub(super) async fn settle_creations(&self) -> Result<(), ReconcileError> {
        let mut conn = self.pool.acquire().await?;
        let open = db::applications::unsettled_creations(&mut conn).await?;
        if open.is_empty() {
            return Ok(());
        }
        let marks: Vec<&str> = open.iter().map(|(m, _)| m.as_str()).collect();
        let found = match self.created_by(&marks).await {
            Ok(found) => found,
            Err(e) => {
                // Housekeeping: the next pass tries again.
                tracing::warn!(error = %e, "cannot look for applications whose creation answer was lost");
                return Ok(());
            }
        };
        for (mark, age_secs) in &open {
            match found.get(mark) {
                Some(client_id) => {
                    db::applications::created(&mut conn, mark, client_id).await?;
                    tracing::warn!(
                        client_id,
                        "an application created earlier, its answer lost, joins the pool"
                    );
                }
                None if *age_secs > LOST_CREATION_SECS => {
                    db::applications::forget_creation(&mut conn, mark).await?;
                }
                None => {}
            }
        }
        Ok(())
    }
}
