//! Who may act on one instance: admins on any; the owner and the instance's own admins (by
//! their Auth0 token) to read it and manage its grants; the instance's key to read its own
//! config and grants (and is told so, 403, when it asks for more). Anyone else is told the
//! instance does not exist, exactly as if it did not, so that no caller learns about
//! instances that are not theirs.

use std::sync::Arc;

use actix_web::HttpRequest;

use super::{AppState, error::ApiError, request_id};
use crate::{
    domain::InstanceId,
    domain::{Actor, InstanceUnavailable},
    grants::{GrantError, Standing},
    http::caller::{ADMIN_PERMISSION, Caller, caller, credentials_required},
};

/// What the route does with the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Read its config or grants: also open to the instance's own key.
    Read,
    /// Read or change it as a person: admins, the owner, instance admins.
    Manage,
}

/// The role a grant needs to manage its instance.
pub const INSTANCE_ADMIN_ROLE: &str = "admin";

/// How the caller got access; names the actor in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Admin(String),
    Owner(String),
    InstanceAdmin(String),
    Instance(Arc<str>),
}

impl Access {
    /// Who is calling, for per-caller limits: an instance (whichever of its keys) or a user.
    pub fn caller_key(&self) -> String {
        match self {
            Access::Instance(id) => format!("instance:{id}"),
            Access::Admin(sub) | Access::Owner(sub) | Access::InstanceAdmin(sub) => {
                format!("user:{sub}")
            }
        }
    }

    pub fn actor(&self, req: &HttpRequest) -> Actor {
        let (kind, who): (&str, &str) = match self {
            Access::Admin(sub) => ("admin", sub),
            Access::Owner(sub) => ("owner", sub),
            Access::InstanceAdmin(sub) => ("instance-admin", sub),
            Access::Instance(id) => ("instance", &**id),
        };
        Actor::new(kind, who, request_id(req))
    }
}

/// Decides access to instance `id` for the request's caller. Only a person who is not an
/// admin costs a database read.
pub async fn instance(
    state: &AppState,
    req: &HttpRequest,
    id: &InstanceId,
    want: Want,
) -> Result<Access, ApiError> {
    of(state, caller(req), id, want).await
}

/// Decides access to instance `id` for `caller`.
pub async fn of(
    state: &AppState,
    caller: Option<Caller>,
    id: &InstanceId,
    want: Want,
) -> Result<Access, ApiError> {
    let hidden = || ApiError::from(InstanceUnavailable::not_found(id));
    match caller {
        None => Err(credentials_required()),
        Some(Caller::Action) => Err(ApiError::forbidden(
            None,
            "the Action's secret may only ask for login decisions",
        )),
        Some(Caller::Instance(own)) if &*own == id.as_str() && want == Want::Read => {
            Ok(Access::Instance(own))
        }
        // Its own instance exists for it: say what a key may do rather than hide it.
        Some(Caller::Instance(own)) if &*own == id.as_str() => Err(ApiError::forbidden(
            None,
            "an instance key may read only its own instance's config and grants; managing it takes a person's token",
        )),
        Some(Caller::Instance(_)) => Err(hidden()),
        Some(Caller::User(claims)) if claims.has_permission(ADMIN_PERMISSION) => {
            Ok(Access::Admin(claims.sub))
        }
        Some(Caller::User(claims)) => {
            Box::pin(async {
                match state.grants.standing(id, &claims.sub).await {
                    Ok(Standing::Owner) => Ok(Access::Owner(claims.sub)),
                    Ok(Standing::Granted(role)) if role == INSTANCE_ADMIN_ROLE => {
                        Ok(Access::InstanceAdmin(claims.sub))
                    }
                    Ok(_) | Err(GrantError::Instance(InstanceUnavailable::NotFound(_))) => {
                        Err(hidden())
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await
        }
    }
}
