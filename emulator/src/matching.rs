//! How Auth0 matches what a login asks for against an application's allow-lists: a
//! `redirect_uri` against `callbacks` (exactly: scheme, host, port, path, query, trailing
//! slash), an origin against `web_origins` / `allowed_origins` (scheme, host and port; an
//! entry's path is ignored), a logout `returnTo` against `allowed_logout_urls` (query and
//! fragment ignored). A wildcard entry's `*` stands for one label's worth of characters within
//! the leftmost label (never a dot); an entry with `{organization_name}` never matches a login
//! made outside an organization, which is every login the emulator sees.

use url::Url;

const ORG: &str = "{organization_name}";

/// The parts of a URL that matching compares.
struct Parts {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

/// The parts of an http(s) URL; None for anything else, and for a URL a browser could not be
/// sent to as written: one with a control character (a URL parser drops tabs and newlines,
/// a `Location` header cannot carry them) or with a user name or password before its host.
fn parts(raw: &str) -> Option<Parts> {
    if raw.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    Some(Parts {
        scheme: url.scheme().to_owned(),
        host: url.host_str()?.to_ascii_lowercase(),
        port: url.port_or_known_default(),
        path: url.path().to_owned(),
        query: url.query().map(str::to_owned),
    })
}

/// Whether `host` matches the entry's host, which may hold one `*` in its leftmost label.
fn host_matches(pattern: &str, host: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == host;
    }
    let (first, rest) = pattern.split_once('.').unwrap_or((pattern, ""));
    let (host_first, host_rest) = host.split_once('.').unwrap_or((host, ""));
    if rest != host_rest || rest.is_empty() {
        return false;
    }
    let Some((prefix, suffix)) = first.split_once('*') else {
        return false;
    };
    host_first.len() > prefix.len() + suffix.len()
        && host_first.starts_with(prefix)
        && host_first.ends_with(suffix)
        && is_label(host_first)
}

/// A DNS label a host can have: letters, digits and hyphens, 1 to 63, neither starting nor
/// ending with a hyphen (so `-` alone stands for no label at all).
fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn usable(entry: &str) -> Option<Parts> {
    if entry.contains(ORG) {
        return None;
    }
    parts(entry)
}

/// Whether a login's `redirect_uri` is the callback `entry`.
pub fn callback_matches(entry: &str, redirect_uri: &str) -> bool {
    if redirect_uri.contains('#') {
        return false;
    }
    let (Some(e), Some(u)) = (usable(entry), parts(redirect_uri)) else {
        return false;
    };
    e.scheme == u.scheme
        && e.port == u.port
        && e.path == u.path
        && e.query == u.query
        && host_matches(&e.host, &u.host)
}

/// Whether a browser `origin` (`scheme://host[:port]`) is allowed by the origin `entry`.
pub fn origin_matches(entry: &str, origin: &str) -> bool {
    let (Some(e), Some(o)) = (usable(entry), parts(origin)) else {
        return false;
    };
    e.scheme == o.scheme && e.port == o.port && host_matches(&e.host, &o.host)
}

/// Whether a logout's `returnTo` is allowed by the logout URL `entry`.
pub fn logout_matches(entry: &str, return_to: &str) -> bool {
    let (Some(e), Some(u)) = (usable(entry), parts(return_to)) else {
        return false;
    };
    e.scheme == u.scheme && e.port == u.port && e.path == u.path && host_matches(&e.host, &u.host)
}

/// The origin (`scheme://host[:port]`) of a URL, as a browser sends it.
pub fn origin_of(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_match_exactly() {
        let entry = "https://www.acme.com/callback";
        assert!(callback_matches(entry, "https://www.acme.com/callback"));
        assert!(callback_matches(entry, "https://WWW.ACME.COM/callback"));
        assert!(callback_matches(entry, "https://www.acme.com:443/callback"));
        for other in [
            "https://www.acme.com/callback/",
            "https://www.acme.com:8443/callback",
            "http://www.acme.com/callback",
            "https://www.acme.com/callback?x=1",
            "https://www.acme.com/callback#frag",
            "https://www.acme.com/Callback",
            "https://acme.com/callback",
            "https://www.acme.com.evil.org/callback",
            "https://evil.example@www.acme.com/callback",
            "https://www.acme.com/call\nback",
            "https://www.acme.com/callback\t",
            "not a url",
        ] {
            assert!(!callback_matches(entry, other), "{other}");
        }
        assert!(callback_matches(
            "http://localhost:3000/cb?tenant=a",
            "http://localhost:3000/cb?tenant=a"
        ));
    }

    #[test]
    fn a_wildcard_stands_for_one_label() {
        let entry = "https://*.apps.example.com/callback";
        assert!(callback_matches(
            entry,
            "https://acme.apps.example.com/callback"
        ));
        assert!(callback_matches(
            entry,
            "https://a-b-1.apps.example.com/callback"
        ));
        for other in [
            "https://a.b.apps.example.com/callback",
            "https://apps.example.com/callback",
            "https://.apps.example.com/callback",
            "https://-.apps.example.com/callback",
            "https://-acme.apps.example.com/callback",
            "https://acme-.apps.example.com/callback",
            "https://a_b.apps.example.com/callback",
            "https://acme.apps.example.com/other",
            "https://acme.apps.example.org/callback",
        ] {
            assert!(!callback_matches(entry, other), "{other}");
        }
        let affixed = "https://pr-*-x.example.com/cb";
        assert!(callback_matches(affixed, "https://pr-12-x.example.com/cb"));
        assert!(!callback_matches(affixed, "https://pr--x.example.com/cb"));
        assert!(!callback_matches(affixed, "https://qr-12-x.example.com/cb"));
    }

    #[test]
    fn organization_entries_never_match_outside_an_organization() {
        let entry = "https://{organization_name}.example.com/callback";
        assert!(!callback_matches(
            entry,
            "https://acme.example.com/callback"
        ));
        assert!(!callback_matches(
            entry,
            "https://{organization_name}.example.com/callback"
        ));
        assert!(!origin_matches(
            "https://{organization_name}.example.com",
            "https://acme.example.com"
        ));
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(origin_matches(
            "https://www.acme.com",
            "https://www.acme.com"
        ));
        assert!(origin_matches(
            "https://www.acme.com/some/path",
            "https://www.acme.com"
        ));
        assert!(origin_matches(
            "https://*.apps.example.com",
            "https://acme.apps.example.com"
        ));
        assert!(!origin_matches(
            "https://www.acme.com",
            "http://www.acme.com"
        ));
        assert!(!origin_matches(
            "https://www.acme.com",
            "https://www.acme.com:8443"
        ));
        assert!(!origin_matches(
            "https://*.apps.example.com",
            "https://a.b.apps.example.com"
        ));
        assert_eq!(
            origin_of("https://www.acme.com:443/callback?x=1").as_deref(),
            Some("https://www.acme.com")
        );
        assert_eq!(
            origin_of("http://acme.test:8080/cb").as_deref(),
            Some("http://acme.test:8080")
        );
    }

    #[test]
    fn logout_urls_ignore_query_and_fragment() {
        let entry = "https://www.acme.com/";
        assert!(logout_matches(entry, "https://www.acme.com/"));
        assert!(logout_matches(entry, "https://www.acme.com/?bye=1#top"));
        assert!(!logout_matches(entry, "https://www.acme.com/other"));
        assert!(!logout_matches(entry, "https://evil.com/"));
        assert!(!logout_matches(entry, "https://www.acme.com/?\n"));
        assert!(!logout_matches(entry, "https://www.acme.com/\x7f"));
        assert!(logout_matches(
            "https://*.apps.example.com/",
            "https://acme.apps.example.com/"
        ));
    }
}
