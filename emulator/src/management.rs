//! `/api/v2/clients`: list, create, read, update, delete applications.

use actix_web::{HttpResponse, http::StatusCode, web};
use serde_json::{Value, json};

use super::{
    Emu, clients,
    errors::{MgmtError, json_response},
};

type Answer = Result<HttpResponse, MgmtError>;

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

fn query_error(message: String) -> MgmtError {
    MgmtError::new(400, message, Some("invalid_query_string"))
}

fn flag(name: &str, raw: Option<&str>, default: bool) -> Result<bool, MgmtError> {
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
) -> Result<u64, MgmtError> {
    let Some(raw) = raw else { return Ok(default) };
    let n: u64 = raw.parse().map_err(|_| {
        query_error(format!(
            "Query validation error: 'Expected type integer but found type string' on property {name} ({description})."
        ))
    })?;
    if n > max {
        return Err(query_error(format!(
            "Query validation error: 'Too big: must be at most {max}' on property {name} ({description})."
        )));
    }
    Ok(n)
}

fn body_json(body: &[u8]) -> Result<Value, MgmtError> {
    serde_json::from_slice(body)
        .map_err(|_| MgmtError::invalid_body("Invalid request payload JSON format"))
}

pub async fn list(emu: web::Data<Emu>, q: web::Query<ListQuery>) -> Answer {
    let page = number(
        "page",
        q.page.as_deref(),
        0,
        u64::from(u32::MAX),
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
}

pub async fn get(emu: web::Data<Emu>, id: web::Path<String>, q: web::Query<FieldsQuery>) -> Answer {
    let include = flag("include_fields", q.include_fields.as_deref(), true)?;
    let tenant = emu.tenant.lock().expect("tenant lock");
    let client = tenant
        .client(&id)
        .ok_or_else(MgmtError::inexistent_client)?;
    Ok(json_response(
        StatusCode::OK,
        &Value::Object(clients::project(client, q.fields.as_deref(), include)),
    ))
}

pub async fn create(emu: web::Data<Emu>, body: web::Bytes) -> Answer {
    let body = body_json(&body)?;
    let fields = clients::validate(&body, true).map_err(|e| MgmtError::invalid_body(e.0))?;
    emu.change(|tenant| {
        if tenant.clients.len() >= tenant.max_clients {
            // Not published by Auth0; the status and wording are the emulator's best guess.
            return Err(MgmtError::new(
                403,
                format!(
                    "You reached the limit of {} applications for this tenant.",
                    tenant.max_clients
                ),
                Some("too_many_entities"),
            ));
        }
        let client = clients::create(fields, tenant.tenant_name());
        let body = Value::Object(client.clone());
        tenant.clients.push(client);
        Ok(json_response(StatusCode::CREATED, &body))
    })
}

pub async fn patch(emu: web::Data<Emu>, id: web::Path<String>, body: web::Bytes) -> Answer {
    let body = body_json(&body)?;
    let fields = clients::validate(&body, false).map_err(|e| MgmtError::invalid_body(e.0))?;
    emu.change(|tenant| {
        let client = tenant
            .client_mut(&id)
            .ok_or_else(MgmtError::inexistent_client)?;
        clients::apply(client, fields);
        let answer = json_response(StatusCode::OK, &Value::Object(client.clone()));
        if let Some(edit) = emu
            .faults
            .write()
            .expect("faults lock")
            .concurrent_edit
            .take()
        {
            // A person, right after this write, in the dashboard.
            let list = client.entry(edit.field).or_insert_with(|| json!([]));
            if let Some(items) = list.as_array_mut() {
                items.push(json!(edit.entry));
            }
        }
        Ok(answer)
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
