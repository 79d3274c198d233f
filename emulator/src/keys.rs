//! The tenant's RS256 signing keys: the current one signs, the previous one is still
//! published in the JWKS until the next rotation (as Auth0 does during a rotation).
//!
//! Tokens are signed with `ring` (about four times faster than the pure-Rust `rsa` crate
//! jsonwebtoken's backend uses, which also parses the key again for every signature): a
//! tenant signs two tokens per code exchange, and the relay's benchmark puts the emulator
//! behind a thousand exchanges a second. jsonwebtoken reads the key and makes its JWK.

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header,
    jwk::{Jwk, PublicKeyUse, ThumbprintHash},
};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::Value;

pub struct SigningKey {
    pub kid: String,
    pem: String,
    pair: RsaKeyPair,
    random: ring::rand::SystemRandom,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key.
    pub fn generate() -> anyhow::Result<Self> {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .context("generating an RSA key")?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .context("encoding the RSA key")?;
        Self::from_pem(&pem)
    }

    /// A key from its PEM (PKCS#1 or PKCS#8); the kid is its RFC 7638 thumbprint.
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).context("reading the RSA key")?;
        // ring reads PKCS#8; a PKCS#1 key (which jsonwebtoken keeps as DER) is re-encoded.
        let pkcs8 = <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_der(
            encoding.inner(),
        )
        .context("reading the RSA key")?
        .to_pkcs8_der()
        .context("encoding the RSA key")?;
        let pair = RsaKeyPair::from_pkcs8(pkcs8.as_bytes())
            .map_err(|e| anyhow::anyhow!("reading the RSA key: {e}"))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)?;
        Ok(Self {
            kid,
            pem: pem.to_owned(),
            pair,
            random: ring::rand::SystemRandom::new(),
            decoding,
            jwk,
        })
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The public key as published in `/.well-known/jwks.json`.
    pub fn public_jwk(&self) -> Value {
        serde_json::to_value(&self.jwk).expect("a JWK serialises")
    }

    /// A JWS in compact serialisation (RFC 7515 §7.1): the header and claims as base64url
    /// JSON, and their RS256 signature.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let json = |v: Vec<u8>| URL_SAFE_NO_PAD.encode(v);
        let mut token = format!(
            "{}.{}",
            json(serde_json::to_vec(&header).expect("a header serialises")),
            json(serde_json::to_vec(claims).expect("claims serialise")),
        );
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &self.random,
                token.as_bytes(),
                &mut signature,
            )
            .expect("RS256 signing cannot fail with a valid key");
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        token
    }
}
