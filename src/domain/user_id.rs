//! An Auth0 user id such as `auth0|65f1…` or `google-oauth2|1043…`.

use std::fmt;

use super::{ParseError, printable};

/// `{connection-strategy}|{id}`: printable, no whitespace, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        // The echo is made only for a refusal: ids are parsed on every request.
        let shown = || printable(input);
        let fail = |rule: &str| Err(ParseError::new(format!("user id '{}' {rule}", shown())));
        if input.is_empty() {
            return fail("is empty");
        }
        if input.len() > 255 {
            return fail("is longer than 255 characters");
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("must not contain whitespace or control characters");
        }
        match input.split_once('|') {
            Some((provider, id)) if !provider.is_empty() && !id.is_empty() => {
                Ok(Self(input.to_owned()))
            }
            _ => fail("must look like an Auth0 user id: '<provider>|<id>', e.g. 'auth0|abc123'"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

super::deserialize_via_parse!(UserId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_auth0_ids_and_names_each_rule() {
        for good in ["auth0|abc", "google-oauth2|1043", "samlp|corp|jdoe"] {
            assert!(UserId::parse(good).is_ok(), "{good}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("abc", "<provider>|<id>"),
            ("|abc", "<provider>|<id>"),
            ("auth0|", "<provider>|<id>"),
            ("auth0|a b", "whitespace"),
            (&format!("auth0|{}", "x".repeat(300)), "longer than 255"),
        ] {
            let e = UserId::parse(bad).unwrap_err().to_string();
            assert!(e.contains(rule), "{bad}: {e}");
        }
    }
}
