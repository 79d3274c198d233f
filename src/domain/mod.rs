//! Parsed value types. Every value that reaches the registry went through one of these.

mod actor;
mod email;
pub mod field;
pub mod grant;
mod hostname;
mod instance_id;
mod status;
pub mod templates;
mod unavailable;
mod user_id;

pub use actor::Actor;
pub use email::Email;
pub use field::Field;
pub use hostname::Hostname;
pub use instance_id::InstanceId;
pub use status::{DomainKind, InstanceStatus};
pub use templates::Templates;
pub use unavailable::InstanceUnavailable;
pub use user_id::UserId;

/// Why an input was rejected, in words that name the value and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// The input as it may be echoed in an error: bounded, control characters escaped.
pub fn printable(input: &str) -> String {
    const MAX_ECHO: usize = 100;
    let mut out: String = input
        .chars()
        .take(MAX_ECHO)
        .flat_map(char::escape_default)
        .collect();
    if input.chars().count() > MAX_ECHO {
        out.push('…');
    }
    out
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Implements `Deserialize` through `parse`, so request bodies hold parsed values only.
macro_rules! deserialize_via_parse {
    ($ty:ty) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use deserialize_via_parse;
