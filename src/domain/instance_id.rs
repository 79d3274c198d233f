//! The id of an instance: a DNS-label slug chosen by the platform.

use std::fmt;

use super::{ParseError, printable};

/// A lower-case DNS label: 1–63 letters, digits and hyphens, not starting or ending with a hyphen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        // The echo is made only for a refusal: ids are parsed on every request.
        let shown = || printable(input);
        let fail = |rule: &str| Err(ParseError::new(format!("instance id '{}' {rule}", shown())));
        if input.is_empty() {
            return fail("is empty");
        }
        if input.len() > 63 {
            return fail("is longer than 63 characters");
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return fail("may contain only lower-case letters, digits and hyphens");
        }
        if input.starts_with('-') || input.ends_with('-') {
            return fail("must not start or end with a hyphen");
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

super::deserialize_via_parse!(InstanceId);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_slugs_and_names_each_rule() {
        for good in ["a", "acme", "acme-bakery-2", &"x".repeat(63)] {
            assert!(InstanceId::parse(good).is_ok(), "{good}");
        }
        let cases = [
            ("", "empty"),
            ("Acme", "lower-case"),
            ("a_b", "lower-case"),
            ("a.b", "lower-case"),
            ("-a", "hyphen"),
            ("a-", "hyphen"),
            (&"x".repeat(64), "longer than 63"),
        ];
        for (bad, rule) in cases {
            let e = InstanceId::parse(bad).unwrap_err().to_string();
            assert!(e.contains(rule), "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn parsed_ids_are_dns_labels(s in "\\PC{0,70}") {
            if let Ok(id) = InstanceId::parse(&s) {
                prop_assert!(!id.0.is_empty() && id.0.len() <= 63);
                prop_assert!(id.0.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                prop_assert!(!id.0.starts_with('-') && !id.0.ends_with('-'));
            }
        }
    }
}
