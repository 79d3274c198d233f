//! What the access page shows a person: `GET /v1/me/instances` (the instances they own or
//! administer) and `GET /v1/instances/{id}/people` (an instance's owner, grants and
//! invitations, with when each person last logged in). Changing access goes through the
//! grants routes, with the same person's token.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{
    AppState,
    access::{self, Access, Want},
    caller::{ADMIN_PERMISSION, Caller, caller, credentials_required},
    error::ApiError,
    instances::path_id,
};
use crate::{domain::InstanceId, grants::People, reconcile::LoginStatus};

#[derive(Serialize)]
struct MyInstances {
    user_id: String,
    /// Holds `fleet:admin`: may open any instance's people, and the status view.
    operator: bool,
    items: Vec<MyInstance>,
}

#[derive(Serialize)]
struct MyInstance {
    instance_id: String,
    status: String,
    /// `owner` or `admin`.
    role: String,
    hosts: Vec<String>,
    /// Whether its hosts can log in now (None: fleetgate's reconciler is off, so it cannot tell).
    login: Option<LoginStatus>,
}

pub async fn my_instances(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let claims = match caller(&req) {
        None => return Err(credentials_required()),
        Some(Caller::User(claims)) => claims,
        Some(_) => {
            return Err(ApiError::forbidden(
                None,
                "only a person's token (for fleetgate's audience) has instances of its own",
            ));
        }
    };
    let mut items = Vec::new();
    for managed in state.grants.managed_by(&claims.sub).await? {
        let id = InstanceId::parse(&managed.instance_id)
            .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
        let instance = state.registry.get(&id).await?;
        let hosts = instance.hostnames();
        let login = match &state.reconciler {
            Some(r) => Some(r.login_status(instance).await?),
            None => None,
        };
        items.push(MyInstance {
            instance_id: managed.instance_id,
            status: managed.status,
            role: managed.role,
            hosts,
            login,
        });
    }
    Ok(HttpResponse::Ok().json(MyInstances {
        operator: claims.has_permission(ADMIN_PERMISSION),
        user_id: claims.sub,
        items,
    }))
}

#[derive(Serialize)]
struct PeopleAnswer {
    #[serde(flatten)]
    people: People,
    /// The caller's own standing: `operator`, `owner` or `admin` (what they may change follows
    /// from it: an instance admin manages grants, not keys or the owner).
    you: &'static str,
}

pub async fn people(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let you = match access::instance(&state, &req, &id, Want::Manage).await? {
        Access::Admin(_) => "operator",
        Access::Owner(_) => "owner",
        Access::InstanceAdmin(_) => "admin",
        Access::Instance(_) => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "an instance key was given a person's access"
            )));
        }
    };
    Ok(HttpResponse::Ok().json(PeopleAnswer {
        people: state.grants.people(&id).await?,
        you,
    }))
}
