//! A DNS host name as it may appear in an Auth0 allow-list entry.

use std::fmt;

use super::{ParseError, printable};

/// Longest host name DNS allows, in ASCII (punycode) form.
const MAX_LEN: usize = 253;
/// Longest label DNS allows.
const MAX_LABEL_LEN: usize = 63;

/// A lower-cased, ASCII (punycode) host name with at least two labels.
///
/// It can be placed between `https://` and a path without changing the
/// meaning of the URL: no scheme, port, path, wildcard, IP literal,
/// whitespace, comma or trailing dot can survive [`Hostname::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    /// Parses a host name, converting internationalised names to punycode.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let fail = |rule: &str| {
            Err(ParseError::new(format!(
                "host '{}' {rule}",
                printable(input)
            )))
        };
        if input.is_empty() {
            return fail("is empty");
        }
        if input.len() > 4 * MAX_LEN {
            return fail("is too long");
        }
        if input.contains("://") {
            return fail("must not contain a scheme (give the bare host, e.g. www.example.com)");
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("must not contain whitespace or control characters");
        }
        if input.contains(',') {
            return fail("must not contain commas");
        }
        if input.contains('*') {
            return fail("must not contain a wildcard");
        }
        if input.contains('/') || input.contains('?') || input.contains('#') {
            return fail("must not contain a path, query or fragment");
        }
        if input.contains('@') {
            return fail("must not contain user information ('@')");
        }
        if is_ip_literal(input) {
            return fail("must be a name, not an IP address");
        }
        if input.contains(':') {
            return fail("must not contain a port");
        }
        if input.ends_with('.') {
            return fail("must not end with a dot");
        }
        let ascii = idna::uts46::Uts46::new()
            .to_ascii(
                input.as_bytes(),
                idna::uts46::AsciiDenyList::EMPTY,
                idna::uts46::Hyphens::Allow,
                idna::uts46::DnsLength::Ignore,
            )
            .map_err(|_| {
                ParseError::new(format!(
                    "host '{}' is not a valid internationalised domain name (IDNA)",
                    printable(input)
                ))
            })?;
        check_ascii(&ascii)
            .map_err(|rule| ParseError::new(format!("host '{}' {rule}", printable(input))))?;
        Ok(Self(ascii.into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is exactly one label below `parent` (`a.apps.example.com` under `apps.example.com`).
    pub fn is_single_label_under(&self, parent: &Hostname) -> bool {
        self.0
            .strip_suffix(parent.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.'))
    }

    /// True when `self` is below `parent` at any depth (not equal to it).
    pub fn is_under(&self, parent: &Hostname) -> bool {
        self.0
            .strip_suffix(parent.as_str())
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
    }
}

/// The rules every ASCII form must meet, whatever it was converted from.
fn check_ascii(ascii: &str) -> Result<(), String> {
    if ascii.len() > MAX_LEN {
        return Err(format!("is longer than {MAX_LEN} characters"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err("must have at least two labels (e.g. example.com)".into());
    }
    for label in labels {
        if label.is_empty() {
            return Err("must not contain an empty label ('..')".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "has a label longer than {MAX_LABEL_LEN} characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "has label '{}' with characters other than letters, digits and hyphens",
                printable(label)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "has label '{label}' starting or ending with a hyphen"
            ));
        }
    }
    if ascii
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("must not end in an all-numeric label (IP addresses are not accepted)".into());
    }
    Ok(())
}

fn is_ip_literal(input: &str) -> bool {
    let bare = input.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().is_ok()
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

super::deserialize_via_parse!(Hostname);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> String {
        Hostname::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).0
    }

    fn err(s: &str) -> String {
        Hostname::parse(s).expect_err(s).to_string()
    }

    #[test]
    fn lower_cases_and_converts_to_punycode() {
        assert_eq!(ok("WWW.Example.COM"), "www.example.com");
        assert_eq!(ok("bücher.de"), "xn--bcher-kva.de");
        assert_eq!(ok("xn--bcher-kva.de"), "xn--bcher-kva.de");
        assert_eq!(ok("ａｃｍｅ.example.com"), "acme.example.com");
        assert_eq!(ok("a-b.c0.io"), "a-b.c0.io");
    }

    #[test]
    fn cyrillic_look_alike_is_a_different_host() {
        assert_ne!(ok("exаmple.com"), "example.com");
        assert!(ok("exаmple.com").starts_with("xn--"));
    }

    #[test]
    fn each_rule_is_named() {
        assert!(err("").contains("empty"));
        assert!(err("https://a.com").contains("scheme"));
        assert!(err("a.com:8080").contains("port"));
        assert!(err("a.com/callback").contains("path"));
        assert!(err("a.com?x").contains("path"));
        assert!(err("a.com#x").contains("path"));
        assert!(err("*.a.com").contains("wildcard"));
        assert!(err("a.com,b.com").contains("comma"));
        assert!(err("a .com").contains("whitespace"));
        assert!(err("a.com\n").contains("whitespace"));
        assert!(err("a.com.").contains("end with a dot"));
        assert!(err("1.2.3.4").contains("IP address"));
        assert!(err("[::1]").contains("IP address"));
        assert!(err("::1").contains("IP address"));
        assert!(err("localhost").contains("two labels"));
        assert!(err("a..com").contains("empty label"));
        assert!(err("-a.com").contains("hyphen"));
        assert!(err("a-.com").contains("hyphen"));
        assert!(err("a_b.com").contains("letters, digits and hyphens"));
        assert!(err("user@a.com").contains("'@'"));
        assert!(err(&format!("{}.com", "a".repeat(64))).contains("longer than 63"));
        assert!(
            err(&format!("{}.com", vec!["a".repeat(60); 5].join("."))).contains("longer than 253")
        );
        assert!(err("a.123").contains("all-numeric"));
        assert!(err("a%2ecom.com").contains("letters, digits"));
        assert!(err("a．com／x.com").contains("letters, digits"));
    }

    #[test]
    fn error_echo_is_bounded_and_escaped() {
        let long = format!("{}\u{7}", "x".repeat(5000));
        assert!(err(&long).len() < 200);
        assert!(err("a\u{1b}.com").contains("\\u{1b}"));
    }

    #[test]
    fn subdomain_relations() {
        let apps = Hostname::parse("apps.example.com").unwrap();
        let one = Hostname::parse("acme.apps.example.com").unwrap();
        let two = Hostname::parse("a.b.apps.example.com").unwrap();
        let other = Hostname::parse("xapps.example.com").unwrap();
        assert!(one.is_single_label_under(&apps) && one.is_under(&apps));
        assert!(!two.is_single_label_under(&apps) && two.is_under(&apps));
        assert!(!other.is_under(&apps) && !apps.is_under(&apps));
    }

    proptest! {
        #[test]
        fn parsed_hosts_are_canonical_and_safe(s in "\\PC{0,80}") {
            if let Ok(h) = Hostname::parse(&s) {
                prop_assert!(h.0.len() <= MAX_LEN);
                prop_assert!(h.0.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
                prop_assert_eq!(Hostname::parse(&h.0).unwrap(), h.clone());
            }
        }

        #[test]
        fn valid_ldh_names_round_trip(labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", 2..5)) {
            let name = labels.join(".");
            prop_assume!(!labels.last().unwrap().bytes().all(|b| b.is_ascii_digit()));
            prop_assume!(!labels.iter().any(|l| l.starts_with("xn--") || l.get(2..4) == Some("--")));
            prop_assert_eq!(ok(&name.to_uppercase()), name);
        }
    }
}
