//! The tenant's RS256 signing keys: the current one signs, the previous one is still
//! published in the JWKS until the next rotation (as Auth0 does during a rotation).

use anyhow::Context;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header,
    jwk::{Jwk, PublicKeyUse, ThumbprintHash},
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::Value;

pub struct SigningKey {
    pub kid: String,
    pem: String,
    encoding: EncodingKey,
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
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)?;
        Ok(Self {
            kid,
            pem: pem.to_owned(),
            encoding,
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

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("RS256 signing cannot fail with a valid key")
    }
}
