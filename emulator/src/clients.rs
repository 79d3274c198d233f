//! Applications ("clients") as the Management API stores and validates them. Pure: bodies in,
//! clients or Auth0-style validation messages out.

use rand::{Rng, distributions::Alphanumeric};
use serde_json::{Map, Value, json};

use super::urls::{MAX_URL_LEN, MAX_URLS, UrlField, is_valid};

pub type Client = Map<String, Value>;

/// A validation failure, already worded as Auth0 words the `message` of a 400 `invalid_body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

fn invalid(inner: impl std::fmt::Display, property: Option<&str>) -> Invalid {
    match property {
        Some(p) => Invalid(format!(
            "Payload validation error: '{inner}' on property {p}."
        )),
        None => Invalid(format!("Payload validation error: '{inner}'.")),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    String,
    Bool,
    Object,
    StringArray,
    Urls(UrlField),
    Enum(&'static [&'static str]),
    EnumArray(&'static [&'static str]),
    InitiateLoginUri,
    Metadata,
}

const APP_TYPES: &[&str] = &[
    "native",
    "spa",
    "regular_web",
    "non_interactive",
    "rms",
    "box",
    "cloudbees",
    "concur",
    "dropbox",
    "mscrm",
    "echosign",
    "egnyte",
    "newrelic",
    "office365",
    "salesforce",
    "sentry",
    "sharepoint",
    "slack",
    "springcm",
    "zendesk",
    "zoom",
    "sso_integration",
    "oag",
];
const AUTH_METHODS: &[&str] = &["none", "client_secret_post", "client_secret_basic"];
const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "implicit",
    "refresh_token",
    "client_credentials",
    "password",
    "http://auth0.com/oauth/grant-type/password-realm",
    "http://auth0.com/oauth/grant-type/mfa-oob",
    "http://auth0.com/oauth/grant-type/mfa-otp",
    "http://auth0.com/oauth/grant-type/mfa-recovery-code",
    "urn:ietf:params:oauth:grant-type:device_code",
];
const ORG_USAGE: &[&str] = &["deny", "allow", "require"];
const ORG_BEHAVIOR: &[&str] = &["no_prompt", "pre_login_prompt", "post_login_prompt"];

/// The body properties the emulator knows, with their types. Anything else is refused, as
/// Auth0 refuses additional properties.
fn kind_of(key: &str) -> Option<Kind> {
    Some(match key {
        "name" | "description" | "logo_uri" => Kind::String,
        "is_first_party"
        | "oidc_conformant"
        | "sso"
        | "sso_disabled"
        | "cross_origin_authentication"
        | "custom_login_page_on"
        | "is_token_endpoint_ip_header_trusted" => Kind::Bool,
        "jwt_configuration" | "refresh_token" | "native_social_login" | "mobile" => Kind::Object,
        "allowed_clients" => Kind::StringArray,
        "app_type" => Kind::Enum(APP_TYPES),
        "token_endpoint_auth_method" => Kind::Enum(AUTH_METHODS),
        "organization_usage" => Kind::Enum(ORG_USAGE),
        "organization_require_behavior" => Kind::Enum(ORG_BEHAVIOR),
        "grant_types" => Kind::EnumArray(GRANT_TYPES),
        "initiate_login_uri" => Kind::InitiateLoginUri,
        "client_metadata" => Kind::Metadata,
        other => Kind::Urls(UrlField::from_name(other)?),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expect(v: &Value, want: &str, key: &str) -> Result<(), Invalid> {
    if type_name(v) == want {
        Ok(())
    } else {
        Err(invalid(
            format!("Expected type {want} but found type {}", type_name(v)),
            Some(key),
        ))
    }
}

fn check_property(key: &str, v: &Value, kind: Kind) -> Result<(), Invalid> {
    match kind {
        Kind::String => expect(v, "string", key),
        Kind::Bool => expect(v, "boolean", key),
        Kind::Object => expect(v, "object", key),
        Kind::StringArray => {
            expect(v, "array", key)?;
            for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                expect(item, "string", &format!("{key}[{i}]"))?;
            }
            Ok(())
        }
        Kind::Enum(allowed) => {
            expect(v, "string", key)?;
            let s = v.as_str().unwrap_or_default();
            if allowed.contains(&s) {
                Ok(())
            } else {
                Err(invalid(format!("No enum match for: \"{s}\""), Some(key)))
            }
        }
        Kind::EnumArray(allowed) => {
            expect(v, "array", key)?;
            for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                check_property(&format!("{key}[{i}]"), item, Kind::Enum(allowed))?;
            }
            Ok(())
        }
        Kind::InitiateLoginUri => {
            expect(v, "string", key)?;
            let s = v.as_str().unwrap_or_default();
            let https =
                url::Url::parse(s).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if s.is_empty() || https {
                Ok(())
            } else {
                Err(invalid(
                    format!(
                        "Object didn't pass validation for format absolute-https-uri-or-empty: {s}"
                    ),
                    Some(key),
                ))
            }
        }
        Kind::Metadata => {
            expect(v, "object", key)?;
            for (k, item) in v.as_object().into_iter().flatten() {
                match item {
                    Value::String(s) if s.chars().count() <= 255 => {}
                    Value::Null => {} // deletes the key (PATCH)
                    Value::String(_) => {
                        return Err(invalid(
                            "String is too long, maximum 255",
                            Some(&format!("{key}.{k}")),
                        ));
                    }
                    other => {
                        return Err(invalid(
                            format!("Expected type string but found type {}", type_name(other)),
                            Some(&format!("{key}.{k}")),
                        ));
                    }
                }
            }
            if v.as_object().is_some_and(|m| m.len() > 10) {
                return Err(invalid("Too many properties, maximum 10", Some(key)));
            }
            Ok(())
        }
        Kind::Urls(field) => {
            expect(v, "array", key)?;
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.len() > MAX_URLS {
                return Err(invalid(
                    format!("Array is too long ({}), maximum {MAX_URLS}", items.len()),
                    Some(key),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let prop = format!("{key}[{i}]");
                expect(item, "string", &prop)?;
                let s = item.as_str().unwrap_or_default();
                if s.len() > MAX_URL_LEN {
                    return Err(invalid(
                        format!(
                            "String is too long ({} chars), maximum {MAX_URL_LEN}",
                            s.len()
                        ),
                        Some(&prop),
                    ));
                }
                if !is_valid(field, s) {
                    return Err(invalid(
                        format!(
                            "Object didn't pass validation for format {}: {s}",
                            field.format()
                        ),
                        Some(&format!("{prop} ({})", field.description())),
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Checks a create (`POST`) or update (`PATCH`) body.
pub fn validate(body: &Value, creating: bool) -> Result<&Map<String, Value>, Invalid> {
    let map = body.as_object().ok_or_else(|| {
        invalid(
            format!("Expected type object but found type {}", type_name(body)),
            None,
        )
    })?;
    for (key, value) in map {
        let kind = kind_of(key)
            .ok_or_else(|| invalid(format!("Additional properties not allowed: {key}"), None))?;
        if value.is_null() && !matches!(kind, Kind::Metadata) {
            return Err(invalid(
                "Expected type ".to_owned() + expected_name(kind) + " but found type null",
                Some(key),
            ));
        }
        check_property(key, value, kind)?;
    }
    if creating {
        match map.get("name").and_then(Value::as_str) {
            None => return Err(invalid("Missing required property: name", None)),
            Some("") => {
                return Err(invalid(
                    "String is too short (0 chars), minimum 1",
                    Some("name"),
                ));
            }
            Some(_) => {}
        }
    } else if map.get("name").and_then(Value::as_str) == Some("") {
        return Err(invalid(
            "String is too short (0 chars), minimum 1",
            Some("name"),
        ));
    }
    Ok(map)
}

fn expected_name(kind: Kind) -> &'static str {
    match kind {
        Kind::String | Kind::Enum(_) | Kind::InitiateLoginUri => "string",
        Kind::Bool => "boolean",
        Kind::Object | Kind::Metadata => "object",
        Kind::StringArray | Kind::EnumArray(_) | Kind::Urls(_) => "array",
    }
}

fn random(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new client as `POST /api/v2/clients` creates it from a validated body.
pub fn create(body: &Map<String, Value>, tenant: &str) -> Client {
    let app_type = body.get("app_type").and_then(Value::as_str);
    let grant_types = match app_type {
        Some("non_interactive") => json!(["client_credentials"]),
        Some("spa") | Some("native") => json!(["authorization_code", "implicit", "refresh_token"]),
        _ => json!([
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials"
        ]),
    };
    let mut client: Client = serde_json::from_value(json!({
        "tenant": tenant,
        "global": false,
        "is_token_endpoint_ip_header_trusted": false,
        "is_first_party": true,
        "oidc_conformant": false,
        "sso_disabled": false,
        "cross_origin_authentication": false,
        "custom_login_page_on": true,
        "callback_url_template": false,
        "jwt_configuration": {"secret_encoded": false, "lifetime_in_seconds": 36000},
        "grant_types": grant_types,
        "token_endpoint_auth_method": "client_secret_post",
        "client_id": random(32),
        "client_secret": random(64),
    }))
    .expect("a literal object");
    apply(&mut client, body);
    client
}

/// Applies a validated `PATCH` body: arrays and scalars replace, `client_metadata` merges
/// key by key (`null` deletes a key), `initiate_login_uri: ""` removes it.
pub fn apply(client: &mut Client, body: &Map<String, Value>) {
    for (key, value) in body {
        match key.as_str() {
            "client_metadata" => {
                let meta = client.entry("client_metadata").or_insert_with(|| json!({}));
                if let (Some(meta), Some(changes)) = (meta.as_object_mut(), value.as_object()) {
                    for (k, v) in changes {
                        if v.is_null() {
                            meta.remove(k);
                        } else {
                            meta.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            "initiate_login_uri" if value.as_str() == Some("") => {
                client.remove(key);
            }
            _ => {
                client.insert(key.clone(), value.clone());
            }
        }
    }
}

/// `fields=a,b` with `include_fields=true` keeps only those; with `false` drops them.
pub fn project(client: &Client, fields: Option<&str>, include: bool) -> Client {
    let Some(fields) = fields.filter(|f| !f.is_empty()) else {
        return client.clone();
    };
    let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
    client
        .iter()
        .filter(|(k, _)| wanted.contains(&k.as_str()) == include)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: Value, creating: bool) -> String {
        validate(&body, creating).unwrap_err().0
    }

    #[test]
    fn create_has_auth0_defaults_and_no_url_fields() {
        let body = json!({"name": "app", "app_type": "spa", "token_endpoint_auth_method": "none"});
        let c = create(validate(&body, true).unwrap(), "t");
        assert_eq!(c["client_id"].as_str().unwrap().len(), 32);
        assert!(
            c["client_id"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert!(c["client_secret"].is_string());
        assert_eq!(
            c["grant_types"],
            json!(["authorization_code", "implicit", "refresh_token"])
        );
        assert_eq!(c["token_endpoint_auth_method"], "none");
        assert_eq!(c["oidc_conformant"], false);
        assert_eq!(c["jwt_configuration"]["lifetime_in_seconds"], 36000);
        for f in UrlField::ALL {
            assert!(!c.contains_key(f.name()));
        }
    }

    #[test]
    fn patch_replaces_arrays_and_merges_metadata() {
        let mut c = create(validate(&json!({"name": "a", "callbacks": ["https://a.com/cb"], "client_metadata": {"x": "1", "y": "2"}}), true).unwrap(), "t");
        let patch =
            json!({"callbacks": ["https://b.com/cb"], "client_metadata": {"x": null, "z": "3"}});
        apply(&mut c, validate(&patch, false).unwrap());
        assert_eq!(c["callbacks"], json!(["https://b.com/cb"]));
        assert_eq!(c["client_metadata"], json!({"y": "2", "z": "3"}));
        apply(&mut c, validate(&json!({"callbacks": []}), false).unwrap());
        assert_eq!(c["callbacks"], json!([]));
    }

    #[test]
    fn messages_follow_auth0() {
        assert_eq!(
            err(json!({"name": "a", "colour": "red"}), true),
            "Payload validation error: 'Additional properties not allowed: colour'."
        );
        assert_eq!(
            err(json!({"description": "x"}), true),
            "Payload validation error: 'Missing required property: name'."
        );
        assert_eq!(
            err(json!({"callbacks": "https://a.com"}), false),
            "Payload validation error: 'Expected type array but found type string' on property callbacks."
        );
        let many: Vec<String> = (0..101).map(|i| format!("https://h{i}.com/cb")).collect();
        assert_eq!(
            err(json!({"callbacks": many}), false),
            "Payload validation error: 'Array is too long (101), maximum 100' on property callbacks."
        );
        let e = err(
            json!({"web_origins": ["https://a.com", "https://*.com"]}),
            false,
        );
        assert!(e.starts_with("Payload validation error: 'Object didn't pass validation for format url-with-placeholders: https://*.com' on property web_origins[1] (Comma-separated"), "{e}");
        assert!(
            err(json!({"callbacks": ["x"]}), false)
                .contains("format callback-url: x' on property callbacks[0]")
        );
        assert!(err(json!({"app_type": "toaster"}), false).contains("No enum match"));
        assert!(
            err(json!({"initiate_login_uri": "http://a.com"}), false)
                .contains("initiate_login_uri")
        );
        assert!(err(json!({"callbacks": null}), false).contains("found type null"));
        assert!(err(json!([1]), false).contains("Expected type object"));
        assert!(validate(&json!({"callbacks": (0..100).map(|i| format!("https://h{i}.com/cb")).collect::<Vec<_>>()}), false).is_ok());
    }

    #[test]
    fn fields_projection() {
        let c = create(
            validate(&json!({"name": "a", "callbacks": []}), true).unwrap(),
            "t",
        );
        let only = project(&c, Some("client_id,callbacks"), true);
        assert_eq!(only.len(), 2);
        let without = project(&c, Some("client_secret"), false);
        assert!(!without.contains_key("client_secret") && without.contains_key("client_id"));
    }
}
