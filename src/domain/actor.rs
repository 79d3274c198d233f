//! Who made a change, as the audit log names them.

/// Who made a change, as written to the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `kind:identity`: `hook:<webhook-id>`, `admin:<sub>`, `owner:<sub>`, …
    pub name: String,
    pub request_id: Option<String>,
}

/// The longest identity an actor name keeps.
const MAX_IDENTITY: usize = 512;

impl Actor {
    /// `kind:identity`, the identity (a token's `sub`, a webhook id: input from outside)
    /// bounded and with control characters escaped, so an audit line can never be forged or
    /// split by a newline in it.
    pub fn new(kind: &str, identity: &str, request_id: Option<String>) -> Self {
        let mut name = format!("{kind}:");
        for c in identity.chars().take(MAX_IDENTITY) {
            if c.is_control() {
                name.extend(c.escape_default());
            } else {
                name.push(c);
            }
        }
        Self { name, request_id }
    }
}

#[cfg(test)]
mod tests {
    use super::Actor;

    #[test]
    fn actor_identities_cannot_split_or_forge_a_line() {
        let a = Actor::new("admin", "auth0|eve\nadmin:auth0|root\u{7}", None);
        assert_eq!(a.name, "admin:auth0|eve\\nadmin:auth0|root\\u{7}");
        assert_eq!(
            Actor::new("owner", "auth0|josé", None).name,
            "owner:auth0|josé"
        );
        let long = Actor::new("hook", &"x".repeat(10_000), None);
        assert_eq!(long.name.len(), "hook:".len() + 512);
    }
}
