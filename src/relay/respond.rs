//! What the relay answers a browser: the tenant's answer handed to the SPA in the response
//! mode it asked for, and error pages that never redirect. Pure.

use super::{authorize::ResponseMode, params};

/// An answer for the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToBrowser {
    /// 302 to this URL.
    Redirect(String),
    /// 200 with this page; its one inline script runs only with `nonce`, and it may be framed
    /// by (and post forms to) `origin` only: the SPA's.
    Page {
        html: String,
        nonce: String,
        origin: String,
    },
    /// An error page (400), which links nowhere.
    Error { title: String, message: String },
}

/// The SPA's answer (`code` and `state`, or `error`, `error_description` and `state`) at
/// its redirect URI, as `mode` delivers it. `nonce` is the page's script nonce.
pub fn to_spa(
    mode: ResponseMode,
    redirect_uri: &str,
    answer: &[(&str, &str)],
    nonce: &str,
) -> ToBrowser {
    let origin = url::Url::parse(redirect_uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    match mode {
        ResponseMode::Query => ToBrowser::Redirect(params::with_query(redirect_uri, answer)),
        ResponseMode::Fragment => {
            ToBrowser::Redirect(format!("{redirect_uri}#{}", params::encode(answer)))
        }
        ResponseMode::FormPost => {
            let inputs: String = answer
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        escape(k),
                        escape(v)
                    )
                })
                .collect();
            ToBrowser::Page {
                html: format!(
                    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signing in…</title></head><body>\
                     <form method=\"post\" action=\"{}\">{inputs}<noscript><button>Continue</button></noscript></form>\
                     <script nonce=\"{nonce}\">document.forms[0].submit();</script></body></html>",
                    escape(redirect_uri)
                ),
                nonce: nonce.to_owned(),
                origin,
            }
        }
        ResponseMode::WebMessage => {
            // auth0-spa-js listens for {type: "authorization_response", response} from the
            // origin it logs in at (the relay's), and the message goes to the SPA's origin only.
            let response: serde_json::Map<String, serde_json::Value> = answer
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            let message =
                serde_json::json!({"type": "authorization_response", "response": response});
            ToBrowser::Page {
                html: format!(
                    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signing in…</title></head><body>\
                     <script nonce=\"{nonce}\">(function(){{var t=window.opener||window.parent;t.postMessage({},{});}})();</script></body></html>",
                    script_json(&message),
                    script_json(&serde_json::Value::from(origin.as_str())),
                ),
                nonce: nonce.to_owned(),
                origin,
            }
        }
    }
}

/// An error page: what went wrong, and that the way on is to start again from the site.
pub fn error_page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head>\
         <body><main><h1>{t}</h1><p>{m}</p><p>Go back to the site you came from and sign in again.</p></main></body></html>",
        t = escape(title),
        m = escape(message)
    )
}

/// Text for HTML content or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// JSON that can sit inside a `<script>`: no `<`, `>` or `&` that could end it.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "https://www.acme.com/callback";

    #[test]
    fn each_response_mode_delivers_the_answer_where_the_spa_asked() {
        let answer = [("code", "c&1"), ("state", "s 1")];
        assert_eq!(
            to_spa(ResponseMode::Query, URI, &answer, "n"),
            ToBrowser::Redirect(format!("{URI}?code=c%261&state=s+1"))
        );
        assert_eq!(
            to_spa(ResponseMode::Fragment, URI, &answer, "n"),
            ToBrowser::Redirect(format!("{URI}#code=c%261&state=s+1"))
        );
        let ToBrowser::Page { html, .. } = to_spa(ResponseMode::FormPost, URI, &answer, "n") else {
            panic!()
        };
        assert!(html.contains("action=\"https://www.acme.com/callback\""));
        assert!(html.contains("value=\"c&amp;1\""));
        let ToBrowser::Page { html, .. } = to_spa(
            ResponseMode::WebMessage,
            "https://www.acme.com",
            &answer,
            "n",
        ) else {
            panic!()
        };
        assert!(html.contains(r#""type":"authorization_response""#));
        assert!(html.contains(r#","https://www.acme.com");"#), "{html}");
        assert!(html.contains(r#""code":"c\u00261""#), "{html}");
    }

    #[test]
    fn nothing_given_can_end_a_script_or_open_a_tag() {
        let answer = [("state", "</script><script>alert(1)</script>")];
        for mode in [ResponseMode::WebMessage, ResponseMode::FormPost] {
            let ToBrowser::Page { html, .. } = to_spa(mode, URI, &answer, "n") else {
                panic!()
            };
            assert_eq!(html.matches("<script").count(), 1, "{html}");
        }
        assert!(!error_page("<b>", "<img src=x>").contains("<img"));
    }
}
