//! The pages of the login side: the login form, error pages, and the answers that carry a
//! result back to the application (redirects, `form_post` and `web_message` pages). Plain
//! HTML; every value shown is escaped.

use actix_web::{HttpResponse, http::StatusCode};
use serde_json::{Map, Value};

use super::state::ResponseMode;
use crate::matching::origin_of;

/// Text for an HTML text node or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a page of the emulator's own (the login form, errors, messages) may do: nothing but
/// show itself, never inside another site's frame (clickjacking the login form). The pages
/// that carry a result back run a script and, for `web_message`, live in the application's
/// iframe: they are made by [`page`] alone.
const OWN_PAGE_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

fn own_page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let mut answer = page(status, title, body);
    let headers = answer.headers_mut();
    headers.insert(
        actix_web::http::header::X_FRAME_OPTIONS,
        actix_web::http::header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        actix_web::http::header::CONTENT_SECURITY_POLICY,
        actix_web::http::header::HeaderValue::from_static(OWN_PAGE_POLICY),
    );
    answer
}

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <meta name=\"viewport\" content=\"width=device-width\"></head><body>\n{body}\n</body></html>\n",
            escape(title)
        ))
}

/// An error page, as Auth0 shows one instead of redirecting (a callback URL mismatch, an
/// unknown client, a bad logout URL): status 400, never a redirect.
pub fn error_page(error: &str, description: &str) -> HttpResponse {
    own_page(
        StatusCode::BAD_REQUEST,
        "Error",
        &format!(
            "<h1>Oops!, something went wrong</h1>\n<p id=\"error\">{}: {}</p>",
            escape(error),
            escape(description)
        ),
    )
}

/// What the login form shows.
pub struct LoginPage<'a> {
    pub txn: &'a str,
    /// The application's name, as Auth0's Universal Login names it.
    pub application: &'a str,
    /// The host the login returns to (the instance).
    pub site: &'a str,
    /// The email filled in (`login_hint`, or what was typed).
    pub hint: &'a str,
    pub error: Option<&'a str>,
    /// The tenant's first users: their email and a link starting this login with it filled in.
    pub users: &'a [(String, String)],
    /// How many more users the tenant has.
    pub unlisted: usize,
    /// This login through the social connection instead (the stand-in provider page).
    pub social: &'a str,
}

/// The stand-in for a social provider's page (there is no network to reach Google's).
pub struct SocialPage<'a> {
    pub txn: &'a str,
    pub application: &'a str,
    pub site: &'a str,
    pub hint: &'a str,
    pub error: Option<&'a str>,
}

/// How many users the form lists.
pub const USERS_LISTED: usize = 20;

/// The emulator's own pages' look: plain, readable, narrow.
const STYLE: &str = "<style>body{font-family:system-ui,sans-serif;background:#f3f4f6;color:#222;margin:0}\
main{max-width:24rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin:0 0 .3rem}label{display:block;margin:.9rem 0 .2rem;font-size:.9rem}\
input{display:block;width:100%;box-sizing:border-box;padding:.55rem;font-size:1rem;margin-top:.25rem}\
button{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem;background:#3056d3;color:#fff;border:0;border-radius:.3rem}\
#error{color:#a00}.muted{color:#666;font-size:.85rem}details{margin-top:1.5rem}ul{padding-left:1.2rem}</style>";

/// The login form: `username` (the email) and `password`, posted without JavaScript.
pub fn login_form(p: &LoginPage) -> HttpResponse {
    let error = p.error.map_or(String::new(), |e| {
        format!("<p id=\"error\" role=\"alert\">{}</p>\n", escape(e))
    });
    let users = if p.users.is_empty() {
        String::new()
    } else {
        let items: String = p
            .users
            .iter()
            .map(|(email, link)| {
                format!(
                    "<li><a href=\"{}\">{}</a></li>",
                    escape(link),
                    escape(email)
                )
            })
            .collect();
        let more = if p.unlisted > 0 {
            format!("<p class=\"muted\">… and {} more.</p>", p.unlisted)
        } else {
            String::new()
        };
        format!(
            "<details><summary>Users of this emulator</summary><ul>{items}</ul>{more}\
             <p class=\"muted\">Their passwords are where they were made (scripts/dev prints its users').</p></details>"
        )
    };
    own_page(
        StatusCode::OK,
        "Log in",
        &format!(
            "{STYLE}<main>\n<h1>Log in</h1>\n\
             <p id=\"continue\">to continue to <strong>{site}</strong> <span class=\"muted\">({application})</span></p>\n{error}\
             <form method=\"POST\" action=\"/u/login\">\n\
             <input type=\"hidden\" name=\"txn\" value=\"{txn}\">\n\
             <label>Email address <input type=\"email\" name=\"username\" value=\"{hint}\" autocomplete=\"username\" required></label>\n\
             <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required{focus}></label>\n\
             <button type=\"submit\" name=\"action\" value=\"default\">Continue</button>\n</form>\n\
             <p><a id=\"social\" href=\"{social}\">Continue with Google (emulated)</a></p>\n{users}\n\
             <p class=\"muted\">Auth0 emulator: a local stand-in for the tenant's login page.</p>\n</main>",
            site = escape(p.site),
            application = escape(p.application),
            txn = escape(p.txn),
            hint = escape(p.hint),
            focus = if p.hint.is_empty() { "" } else { " autofocus" },
            social = escape(p.social),
        ),
    )
}

/// The social connection's page: what Google would ask and tell the tenant (the person's
/// email, verified by the provider, and name), posted to `/u/social`.
pub fn social_form(p: &SocialPage) -> HttpResponse {
    let error = p.error.map_or(String::new(), |e| {
        format!("<p id=\"error\" role=\"alert\">{}</p>\n", escape(e))
    });
    own_page(
        StatusCode::OK,
        "Continue with Google (emulated)",
        &format!(
            "{STYLE}<main>\n<h1>Continue with Google (emulated)</h1>\n\
             <p id=\"continue\">to continue to <strong>{site}</strong> <span class=\"muted\">({application})</span></p>\n{error}\
             <p class=\"muted\">There is no network here: this page stands in for Google's. The tenant gets the \
             email (verified, as Google vouches for it) and the name given here; the user is \
             <code>google-oauth2|…</code>, another user than one with the same email and a password.</p>\n\
             <form method=\"POST\" action=\"/u/social\">\n\
             <input type=\"hidden\" name=\"txn\" value=\"{txn}\">\n\
             <label>Google account's email <input type=\"email\" name=\"email\" value=\"{hint}\" autocomplete=\"username\" required autofocus></label>\n\
             <label>Name <input type=\"text\" name=\"name\" autocomplete=\"name\"></label>\n\
             <button type=\"submit\">Continue</button>\n</form>\n\
             <p class=\"muted\">Auth0 emulator: a local stand-in for the tenant's social connection.</p>\n</main>",
            site = escape(p.site),
            application = escape(p.application),
            txn = escape(p.txn),
            hint = escape(p.hint),
        ),
    )
}

/// A plain page saying something (e.g. logged out).
pub fn message(title: &str, text: &str) -> HttpResponse {
    own_page(
        StatusCode::OK,
        title,
        &format!("<h1>{}</h1>\n<p>{}</p>", escape(title), escape(text)),
    )
}

/// The string parameters of `params`.
fn string_pairs(params: &Map<String, Value>) -> Vec<(&str, &str)> {
    params
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .collect()
}

/// `params`' string parameters, URL-encoded (`a=1&b=2`).
pub fn query_string(params: &Map<String, Value>) -> String {
    serde_urlencoded::to_string(string_pairs(params)).expect("strings encode")
}

/// Carries `params` (a code, or an error) to the application at `redirect_uri` the way
/// `mode` says.
pub fn respond(
    mode: ResponseMode,
    redirect_uri: &str,
    params: &Map<String, Value>,
) -> HttpResponse {
    let pairs = string_pairs(params);
    let encoded = query_string(params);
    match mode {
        ResponseMode::Query | ResponseMode::Fragment => {
            let sep = if mode == ResponseMode::Fragment {
                "#"
            } else if redirect_uri.contains('?') {
                "&"
            } else {
                "?"
            };
            HttpResponse::Found()
                .insert_header(("location", format!("{redirect_uri}{sep}{encoded}")))
                .insert_header(("cache-control", "no-store"))
                .finish()
        }
        ResponseMode::FormPost => {
            let inputs: String = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                        escape(k),
                        escape(v)
                    )
                })
                .collect();
            page(
                StatusCode::OK,
                "Submit this form",
                &format!(
                    "<form method=\"post\" name=\"hiddenform\" action=\"{}\">\n{inputs}\
                     <noscript><button type=\"submit\">Continue</button></noscript>\n</form>\n\
                     <script>document.forms[0].submit();</script>",
                    escape(redirect_uri)
                ),
            )
        }
        ResponseMode::WebMessage => {
            // Posted only to the redirect URI's origin, which /authorize checked against the
            // application's web origins.
            let origin = origin_of(redirect_uri).unwrap_or_default();
            let message =
                serde_json::json!({ "type": "authorization_response", "response": params });
            page(
                StatusCode::OK,
                "Authorization response",
                &format!(
                    "<script>\n(function () {{\n  var target = window.opener || window.parent;\n  \
                     target.postMessage({message}, {origin});\n}})();\n</script>",
                    message = script_json(&message),
                    origin = script_json(&Value::String(origin)),
                ),
            )
        }
    }
}

/// JSON safe inside a `<script>` element.
fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> Map<String, Value> {
        json!({"code": "abc", "state": "s&t"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            script_json(&json!("</script>")),
            "\"\\u003c/script\\u003e\""
        );
    }

    #[test]
    fn results_go_back_as_the_mode_says() {
        let q = respond(ResponseMode::Query, "https://a.example.com/cb", &params());
        assert_eq!(q.status(), 302);
        assert_eq!(
            q.headers().get("location").unwrap(),
            "https://a.example.com/cb?code=abc&state=s%26t"
        );
        let q = respond(
            ResponseMode::Query,
            "https://a.example.com/cb?x=1",
            &params(),
        );
        assert_eq!(
            q.headers().get("location").unwrap(),
            "https://a.example.com/cb?x=1&code=abc&state=s%26t"
        );
        let f = respond(
            ResponseMode::Fragment,
            "https://a.example.com/cb",
            &params(),
        );
        assert_eq!(
            f.headers().get("location").unwrap(),
            "https://a.example.com/cb#code=abc&state=s%26t"
        );
        assert_eq!(
            respond(
                ResponseMode::WebMessage,
                "https://a.example.com/cb",
                &params()
            )
            .status(),
            200
        );
        assert_eq!(
            respond(
                ResponseMode::FormPost,
                "https://a.example.com/cb",
                &params()
            )
            .status(),
            200
        );
    }
}
