//! The keys themselves: `fgi_` + 32 random bytes (base64url), stored only as a SHA-256 hash.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "fgi_";
/// `fgi_` and 43 base64url characters.
const LEN: usize = PREFIX.len() + 43;

pub type KeyHash = [u8; 32];

/// A new key, and the hash to store.
pub fn generate() -> (SecretString, KeyHash) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&key);
    (SecretString::from(key), hash)
}

pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether a bearer token is shaped like an instance key (and so is not a JWT).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Whether a token has an instance key's exact shape; anything else cannot be one.
pub fn well_formed(token: &str) -> bool {
    token.len() == LEN
        && token[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_differ() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert!(
            well_formed(a.expose_secret()),
            "{}",
            a.expose_secret().len()
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(ha, hash(a.expose_secret()));
        assert!(!well_formed("fgi_short"));
        assert!(!well_formed(&format!("fgi_{}", "a".repeat(42) + "=")));
    }
}
