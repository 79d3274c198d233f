//! Instance lifecycle and domain kinds.

use std::{fmt, str::FromStr};

use super::{Hostname, ParseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Active,
    Suspended,
    Deleted,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    /// Whether an instance may go from `self` to `to` by suspend/resume/delete.
    /// A deleted instance comes back only through a new deploy.
    pub fn can_become(self, to: Self) -> bool {
        self == to || to == Self::Deleted || self != Self::Deleted
    }
}

impl FromStr for InstanceStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "deleted" => Ok(Self::Deleted),
            other => Err(ParseError::new(format!(
                "status '{}' is not one of active, suspended, deleted",
                other.escape_default()
            ))),
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform domain is a subdomain of the platform's own domain; every other host is custom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainKind {
    Platform,
    Custom,
}

impl DomainKind {
    pub fn of(host: &Hostname, platform_domain: Option<&Hostname>) -> Self {
        match platform_domain {
            Some(p) if host.is_under(p) => Self::Platform,
            _ => Self::Custom,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Custom => "custom",
        }
    }
}

impl FromStr for DomainKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "platform" => Ok(Self::Platform),
            "custom" => Ok(Self::Custom),
            other => Err(ParseError::new(format!(
                "domain kind '{}' is not platform or custom",
                other.escape_default()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_is_final_except_for_itself() {
        use InstanceStatus::*;
        assert!(Active.can_become(Suspended) && Suspended.can_become(Active));
        assert!(Active.can_become(Deleted) && Suspended.can_become(Deleted));
        assert!(Deleted.can_become(Deleted));
        assert!(!Deleted.can_become(Active) && !Deleted.can_become(Suspended));
    }

    #[test]
    fn kind_follows_the_platform_domain() {
        let p = Hostname::parse("apps.example.com").unwrap();
        let h = |s| Hostname::parse(s).unwrap();
        assert_eq!(
            DomainKind::of(&h("a.apps.example.com"), Some(&p)),
            DomainKind::Platform
        );
        assert_eq!(
            DomainKind::of(&h("a.b.apps.example.com"), Some(&p)),
            DomainKind::Platform
        );
        assert_eq!(
            DomainKind::of(&h("www.acme.com"), Some(&p)),
            DomainKind::Custom
        );
        assert_eq!(
            DomainKind::of(&h("a.apps.example.com"), None),
            DomainKind::Custom
        );
    }
}
