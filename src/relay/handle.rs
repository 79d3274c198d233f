//! The relay's handles (what names a transaction to the tenant and back) and how everything a
//! browser or an SPA holds is stored: its SHA-256, never the value.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, URL-safe: nobody can guess one, so nobody can forge a transaction.
pub fn new_handle() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a handle, a code or a refresh token.
pub fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Whether `value` could be a handle (43 URL-safe characters): anything else is not looked up.
pub fn well_formed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_random_well_formed_and_hashed() {
        let (a, b) = (new_handle(), new_handle());
        assert_ne!(a, b);
        assert!(well_formed(&a) && well_formed(&b));
        assert!(!well_formed("short") && !well_formed(&format!("{}=", &a[..42])));
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }
}
