//! `/api/v2/clients`: list, create, read, update, delete applications.

use actix_web::{HttpResponse, http::StatusCode, web};
use serde_json::{Value, json};

use super::{
    Emu, clients,
    errors::{inexistent_client, invalid_body, json_response, management as error},
};

#[derive(serde::Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    per_page: Option<String>,
    include_totals: Option<String>,
    fields: Option<String>,
    include_fields: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct FieldsQuery {
    fields: Option<String>,
    include_fields: Option<String>,
}

fn query_error(message: String) -> HttpResponse {
    error(400, &message, Some("invalid_query_string"))
}

fn flag(name: &str, raw: Option<&str>, default: bool) -> Result<bool, HttpResponse> {
    match raw {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(query_error(format!(
            "Query validation error: 'Expected type boolean but found type string' on property {name}."
        ))),
    }
}

fn number(
    name: &str,
    raw: Option<&str>,
    default: u64,
    max: u64,
    description: &str,
) -> Result<u64, HttpResponse> {
    let Some(raw) = raw else { return Ok(default) };
    let n: u64 = raw
        .parse()
        .map_err(|_| query_error(format!("Query validation error: 'Expected type integer but found type string' on property {name} ({description}).")))?;
    if n > max {
        return Err(query_error(format!(
            "Query validation error: 'Too big: must be at most {max}' on property {name} ({description})."
        )));
    }
    Ok(n)
}

fn body_json(body: &[u8]) -> Result<Value, HttpResponse> {
    serde_json::from_slice(body).map_err(|_| {
        error(
            400,
            "Invalid request payload JSON format",
            Some("invalid_body"),
        )
    })
}

pub async fn list(emu: web::Data<Emu>, q: web::Query<ListQuery>) -> HttpResponse {
    let run = || -> Result<HttpResponse, HttpResponse> {
        let page = number(
            "page",
            q.page.as_deref(),
            0,
            u32::MAX as u64,
            "Page index of the results to return. First page is 0.",
        )?;
        let per_page = number(
            "per_page",
            q.per_page.as_deref(),
            50,
            100,
            "Number of results per page. Default value is 50, maximum value is 100",
        )?;
        let totals = flag("include_totals", q.include_totals.as_deref(), false)?;
        let include = flag("include_fields", q.include_fields.as_deref(), true)?;
        let tenant = emu.tenant.lock().expect("tenant lock");
        let start = (page * per_page) as usize;
        let items: Vec<Value> = tenant
            .clients
            .iter()
            .skip(start)
            .take(per_page as usize)
            .map(|c| Value::Object(clients::project(c, q.fields.as_deref(), include)))
            .collect();
        let body = if totals {
            json!({"total": tenant.clients.len(), "start": start, "limit": per_page, "clients": items})
        } else {
            Value::Array(items)
        };
        Ok(json_response(StatusCode::OK, &body))
    };
    run().unwrap_or_else(|e| e)
}

pub async fn get(
    emu: web::Data<Emu>,
    id: web::Path<String>,
    q: web::Query<FieldsQuery>,
) -> HttpResponse {
    let include = match flag("include_fields", q.include_fields.as_deref(), true) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let tenant = emu.tenant.lock().expect("tenant lock");
    match tenant.client(&id) {
        Some(c) => json_response(
            StatusCode::OK,
            &Value::Object(clients::project(c, q.fields.as_deref(), include)),
        ),
        None => inexistent_client(),
    }
}

pub async fn create(emu: web::Data<Emu>, body: web::Bytes) -> HttpResponse {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let fields = match clients::validate(&body, true) {
        Ok(f) => f,
        Err(e) => return invalid_body(&e.0),
    };
    emu.change(|tenant| {
        if tenant.clients.len() >= tenant.max_clients {
            // Not published by Auth0; the status and wording are the emulator's best guess.
            return error(
                403,
                &format!(
                    "You reached the limit of {} applications for this tenant.",
                    tenant.max_clients
                ),
                Some("too_many_entities"),
            );
        }
        let client = clients::create(fields, tenant.tenant_name());
        let body = Value::Object(client.clone());
        tenant.clients.push(client);
        json_response(StatusCode::CREATED, &body)
    })
}

pub async fn patch(emu: web::Data<Emu>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let fields = match clients::validate(&body, false) {
        Ok(f) => f,
        Err(e) => return invalid_body(&e.0),
    };
    emu.change(|tenant| match tenant.client_mut(&id) {
        Some(client) => {
            clients::apply(client, fields);
            json_response(StatusCode::OK, &Value::Object(client.clone()))
        }
        None => inexistent_client(),
    })
}

/// Deleting an absent client answers 204 as well, as Auth0 does.
pub async fn delete(emu: web::Data<Emu>, id: web::Path<String>) -> HttpResponse {
    emu.change(|tenant| {
        tenant
            .clients
            .retain(|c| c.get("client_id").and_then(Value::as_str) != Some(id.as_str()));
        tenant.grants.retain(|g| g.client_id != *id);
    });
    HttpResponse::NoContent().finish()
}
