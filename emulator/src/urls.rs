//! Auth0's rules for the URLs in an application's allow-lists (see docs/auth0.md).

/// The longest URL accepted. Auth0 publishes none; the emulator picks a generous one.
pub const MAX_URL_LEN: usize = 2048;
/// Auth0's documented cap on each list.
pub const MAX_URLS: usize = 100;
const ORG: &str = "{organization_name}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlField {
    Callbacks,
    AllowedLogoutUrls,
    WebOrigins,
    AllowedOrigins,
}

impl UrlField {
    pub const ALL: [UrlField; 4] = [
        Self::Callbacks,
        Self::AllowedLogoutUrls,
        Self::WebOrigins,
        Self::AllowedOrigins,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Callbacks => "callbacks",
            Self::AllowedLogoutUrls => "allowed_logout_urls",
            Self::WebOrigins => "web_origins",
            Self::AllowedOrigins => "allowed_origins",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn format(self) -> &'static str {
        match self {
            Self::Callbacks => "callback-url",
            _ => "url-with-placeholders",
        }
    }

    /// The description Auth0's schema gives the field, quoted in its validation messages.
    pub fn description(self) -> &'static str {
        match self {
            Self::Callbacks => {
                "Comma-separated list of URLs whitelisted for Auth0 to use as a callback to the client after authentication."
            }
            Self::AllowedLogoutUrls => {
                "Comma-separated list of URLs that are valid to redirect to after logout from Auth0. Wildcards are allowed for subdomains."
            }
            Self::WebOrigins => {
                "Comma-separated list of allowed origins for use with Cross-Origin Authentication, Device Flow, and web message response mode."
            }
            Self::AllowedOrigins => {
                "Comma-separated list of URLs allowed to make requests from JavaScript to Auth0 API (typically used with CORS). By default, all your callback URLs will be allowed. This field allows you to enter other origins if necessary. You can also use wildcards at the subdomain level (e.g., https://*.contoso.com). Query strings and hash information are not taken into account when validating these URLs."
            }
        }
    }

    fn allows_organization_placeholder(self) -> bool {
        matches!(self, Self::Callbacks | Self::AllowedOrigins)
    }
}

/// Whether `value` is an acceptable entry of `field`.
pub fn is_valid(field: UrlField, value: &str) -> bool {
    check(field, value).is_some()
}

fn check(field: UrlField, value: &str) -> Option<()> {
    if value.is_empty()
        || value.len() > MAX_URL_LEN
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let (scheme, rest) = value.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if tail.contains('*') || tail.contains(ORG) || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    if let Some(p) = port {
        p.parse::<u16>().ok().filter(|p| *p > 0)?;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let stars = value.matches('*').count();
    let orgs = value.matches(ORG).count();
    let mut probe_labels = labels.clone();
    match (stars, orgs) {
        (0, 0) => {}
        (1, 0) => {
            // One wildcard, in the leftmost label, with at least two labels after it.
            if !labels[0].contains('*') || labels.len() < 3 {
                return None;
            }
        }
        (0, 1) => {
            if !field.allows_organization_placeholder() || labels[0] != ORG || labels.len() < 3 {
                return None;
            }
        }
        _ => return None,
    }
    let probe_first = labels[0].replace('*', "x").replace(ORG, "org");
    probe_labels[0] = &probe_first;
    let probe = format!(
        "{scheme}://{}{}{tail}",
        probe_labels.join("."),
        port.map(|p| format!(":{p}")).unwrap_or_default()
    );
    let url = url::Url::parse(&probe).ok()?;
    match url.host()? {
        url::Host::Domain(d) => d
            .split('.')
            .all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .then_some(()),
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => Some(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UrlField::*;

    #[test]
    fn accepts_ordinary_urls() {
        for url in [
            "https://www.acme.com/callback",
            "http://localhost:3000/callback",
            "https://acme.apps.example.com",
            "http://127.0.0.1:8080/",
            "https://xn--bcher-kva.de/cb?x=1",
        ] {
            assert!(is_valid(Callbacks, url), "{url}");
            assert!(is_valid(WebOrigins, url), "{url}");
        }
    }

    #[test]
    fn wildcard_rules() {
        assert!(is_valid(Callbacks, "https://*.apps.example.com/callback"));
        assert!(is_valid(WebOrigins, "https://pr-*-x.example.com"));
        assert!(
            !is_valid(Callbacks, "https://*.com"),
            "needs two labels after the wildcard"
        );
        assert!(
            !is_valid(Callbacks, "https://sub.*.example.com"),
            "leftmost label only"
        );
        assert!(!is_valid(Callbacks, "https://*.*.example.com"), "one star");
        assert!(!is_valid(Callbacks, "https://*-*.example.com"), "one star");
        assert!(
            !is_valid(Callbacks, "https://a.example.com/*"),
            "not in the path"
        );
        assert!(!is_valid(Callbacks, "ftp://*.example.com"));
    }

    #[test]
    fn organization_placeholder_rules() {
        assert!(is_valid(
            Callbacks,
            "https://{organization_name}.example.com/callback"
        ));
        assert!(is_valid(
            AllowedOrigins,
            "https://{organization_name}.example.com"
        ));
        assert!(!is_valid(
            WebOrigins,
            "https://{organization_name}.example.com"
        ));
        assert!(!is_valid(
            AllowedLogoutUrls,
            "https://{organization_name}.example.com"
        ));
        assert!(
            !is_valid(Callbacks, "https://x{organization_name}.example.com"),
            "whole label"
        );
        assert!(
            !is_valid(Callbacks, "https://a.{organization_name}.example.com"),
            "leftmost"
        );
        assert!(
            !is_valid(Callbacks, "https://{organization_name}.*.example.com"),
            "never with *"
        );
        assert!(!is_valid(
            Callbacks,
            "https://{organization_name}.{organization_name}.example.com"
        ));
        assert!(!is_valid(
            Callbacks,
            "https://example.com/{organization_name}"
        ));
    }

    #[test]
    fn rejects_junk() {
        for url in [
            "",
            "www.acme.com",
            "javascript:alert(1)",
            "https://",
            "https://a b.com",
            "https://a.com,https://b.com",
            "https://user@a.com",
            "https://a.com:99999",
            "https://a.com:0",
            "https://a,b.com",
            "https://a!.com",
            "ftp://a.com",
            &format!("https://a.com/{}", "x".repeat(MAX_URL_LEN)),
        ] {
            assert!(!is_valid(Callbacks, url), "{url}");
        }
    }
}
