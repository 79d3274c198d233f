//! An email address as an invitation names it: `local@host`.
//!
//! Two addresses are the same invitation only when they name the same mailbox: the domain is
//! compared after IDNA (UTS 46 mapping, punycode) and ASCII lower-casing; the local part
//! exactly, but for ASCII letters, which are folded. Unicode case rules never apply to the
//! local part (`\u{212A}im` — KELVIN SIGN — is not `kim`), and a local part that is not in
//! Unicode normal form NFKC is refused, so no two spellings of one mailbox exist.

use std::fmt;

use super::{Hostname, ParseError, printable};

/// ASCII lower-cased; the local part is 1–64 printable characters in NFKC without
/// whitespace, commas, quotes or angle brackets; the domain is a valid [`Hostname`] (IDNA to
/// punycode); at most 254 characters in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        // The echo is made only for a refusal: the login decision parses one per login.
        let shown = || printable(input);
        let fail = |rule: &str| Err(ParseError::new(format!("email '{}' {rule}", shown())));
        let Some((local, domain)) = input.rsplit_once('@') else {
            return fail("must look like name@example.com");
        };
        if local.is_empty() || local.chars().count() > 64 {
            return fail("must have 1 to 64 characters before the @");
        }
        if local.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, ',' | '"' | '<' | '>' | '@' | '\\')
        }) {
            return fail(
                "must not contain whitespace, control characters, commas, quotes, <, >, \\ or a second @",
            );
        }
        if !unicode_normalization::is_nfkc(local) {
            return fail(
                "has characters before the @ that are not in Unicode normal form NFKC (e.g. a KELVIN SIGN for K)",
            );
        }
        let domain = Hostname::parse(domain)
            .map_err(|e| ParseError::new(format!("email '{}' has a bad domain: {e}", shown())))?;
        let email = format!("{}@{}", local.to_ascii_lowercase(), domain.as_str());
        if email.len() > 254 {
            return fail("is longer than 254 characters");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

super::deserialize_via_parse!(Email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ascii_letters_of_the_local_part_are_folded() {
        assert_eq!(
            Email::parse("KIM@Corp.COM").unwrap().as_str(),
            "kim@corp.com"
        );
        // Unicode lower-casing would make these `kim` and `émile`: other mailboxes.
        assert_ne!(
            Email::parse("K\u{130}M@corp.com").unwrap().as_str(),
            "kim@corp.com"
        );
        assert_eq!(
            Email::parse("Émile@corp.com").unwrap().as_str(),
            "Émile@corp.com"
        );
        // The domain is a host name: IDNA maps it (KELVIN SIGN included) as DNS would.
        assert_eq!(
            Email::parse("kim@\u{212A}orp.com").unwrap().as_str(),
            "kim@korp.com"
        );
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            Email::parse("Ann.Lee+x@Example.COM").unwrap().as_str(),
            "ann.lee+x@example.com"
        );
        assert_eq!(
            Email::parse("a@bücher.de").unwrap().as_str(),
            "a@xn--bcher-kva.de"
        );
        for (bad, rule) in [
            ("nobody", "name@example.com"),
            ("@example.com", "1 to 64"),
            ("a b@example.com", "whitespace"),
            ("a,b@example.com", "commas"),
            ("a@localhost", "bad domain"),
            ("a@exa mple.com", "bad domain"),
            ("\u{212A}im@corp.com", "NFKC"),
            ("ﬁona@corp.com", "NFKC"),
        ] {
            let e = Email::parse(bad).unwrap_err().to_string();
            assert!(e.contains(rule), "{bad}: {e}");
        }
    }
}
