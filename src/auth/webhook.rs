//! Standard Webhooks (<https://www.standardwebhooks.com>) signatures on the deploy hook.
//! The HMAC, the `v1,` signature list, the constant-time comparison and the five-minute
//! timestamp window are the `standardwebhooks` crate's; this module adapts headers to it.

use secrecy::{ExposeSecret, SecretString};
use standardwebhooks::{Webhook, WebhookError};

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Longest `webhook-id` accepted (it becomes a primary key).
const MAX_ID_LEN: usize = 200;

pub struct WebhookVerifier(Webhook);

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {0} is not valid")]
    InvalidHeader(&'static str),
    #[error("webhook-timestamp is more than five minutes old")]
    TooOld,
    #[error("webhook-timestamp is more than five minutes in the future")]
    TooNew,
    #[error("no signature in webhook-signature matches")]
    BadSignature,
}

impl WebhookVerifier {
    /// `secret` was checked at start-up (`whsec_` + base64).
    pub fn new(secret: &SecretString) -> anyhow::Result<Self> {
        Webhook::new(secret.expose_secret()).map(Self).map_err(|_| {
            anyhow::anyhow!("FLEETGATE_WEBHOOK_SECRET is not a valid Standard Webhooks secret")
        })
    }

    /// Verifies a delivery and returns its `webhook-id`.
    pub fn verify<'a>(
        &self,
        body: &[u8],
        header: impl Fn(&str) -> Option<&'a [u8]>,
    ) -> Result<String, VerifyError> {
        let mut headers = http::HeaderMap::new();
        for name in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER] {
            let raw = header(name).ok_or(VerifyError::MissingHeader(name))?;
            let value =
                http::HeaderValue::from_bytes(raw).map_err(|_| VerifyError::InvalidHeader(name))?;
            headers.insert(name, value);
        }
        let id = headers[ID_HEADER]
            .to_str()
            .map_err(|_| VerifyError::InvalidHeader(ID_HEADER))?
            .to_owned();
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(VerifyError::InvalidHeader(ID_HEADER));
        }
        self.0.verify(body, &headers).map_err(|e| match e {
            WebhookError::MissingHeader(_) => VerifyError::MissingHeader(SIGNATURE_HEADER),
            WebhookError::InvalidTimestamp => VerifyError::InvalidHeader(TIMESTAMP_HEADER),
            WebhookError::TimestampTooOldError => VerifyError::TooOld,
            WebhookError::FutureTimestampError => VerifyError::TooNew,
            _ => VerifyError::BadSignature,
        })?;
        Ok(id)
    }

    /// The `webhook-signature` value for a delivery (used by `fleetgate hook send` and tests).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> anyhow::Result<String> {
        self.0
            .sign(id, timestamp, body)
            .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::new(&SecretString::from(SECRET)).unwrap()
    }

    fn verify(id: &str, ts: i64, sig: &str, body: &[u8]) -> Result<String, VerifyError> {
        let ts = ts.to_string();
        verifier().verify(body, |name| match name {
            ID_HEADER => Some(id.as_bytes()),
            TIMESTAMP_HEADER => Some(ts.as_bytes()),
            SIGNATURE_HEADER => Some(sig.as_bytes()),
            _ => None,
        })
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn signs_the_specification_vector() {
        assert_eq!(verifier().sign(ID, TS, BODY).unwrap(), SIGNATURE);
    }

    #[test]
    fn the_vector_is_refused_as_stale() {
        assert!(matches!(
            verify(ID, TS, SIGNATURE, BODY),
            Err(VerifyError::TooOld)
        ));
    }

    #[test]
    fn accepts_any_matching_signature_in_the_list() {
        let ts = now();
        let good = verifier().sign(ID, ts, BODY).unwrap();
        let list = format!("v1,Zm9vYmFy v2,abc {good} v1,bm9wZQ==");
        assert_eq!(verify(ID, ts, &list, BODY).unwrap(), ID);
    }

    #[test]
    fn refuses_tampering_truncation_and_window() {
        let ts = now();
        let good = verifier().sign(ID, ts, BODY).unwrap();
        assert!(matches!(
            verify(ID, ts, &good, br#"{"test": 2432232315}"#),
            Err(VerifyError::BadSignature)
        ));
        assert!(matches!(
            verify("msg_other", ts, &good, BODY),
            Err(VerifyError::BadSignature)
        ));
        assert!(matches!(
            verify(ID, ts + 1, &good, BODY),
            Err(VerifyError::BadSignature)
        ));
        assert!(matches!(
            verify(ID, ts, "v1,", BODY),
            Err(VerifyError::BadSignature)
        ));
        assert!(matches!(
            verify(ID, ts, &good[..good.len() - 4], BODY),
            Err(VerifyError::BadSignature)
        ));
        assert!(matches!(
            verify(ID, ts, &good.replace("v1,", "v2,"), BODY),
            Err(VerifyError::BadSignature)
        ));
        let old = ts - 301;
        let sig = verifier().sign(ID, old, BODY).unwrap();
        assert!(matches!(
            verify(ID, old, &sig, BODY),
            Err(VerifyError::TooOld)
        ));
        let new = ts + 301;
        let sig = verifier().sign(ID, new, BODY).unwrap();
        assert!(matches!(
            verify(ID, new, &sig, BODY),
            Err(VerifyError::TooNew)
        ));
        assert!(matches!(
            verify(ID, 0, &good, BODY).unwrap_err(),
            VerifyError::TooOld
        ));
        let other = WebhookVerifier::new(&SecretString::from(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ))
        .unwrap();
        let forged = other.sign(ID, ts, BODY).unwrap();
        assert!(matches!(
            verify(ID, ts, &forged, BODY),
            Err(VerifyError::BadSignature)
        ));
    }

    #[test]
    fn refuses_missing_and_malformed_headers() {
        let r = verifier().verify(BODY, |_| None);
        assert!(matches!(r, Err(VerifyError::MissingHeader(ID_HEADER))));
        let ts = now();
        let good = verifier().sign(ID, ts, BODY).unwrap();
        assert!(matches!(verify(ID, ts, &good, BODY).map(|_| ()), Ok(())));
        let r = verifier().verify(BODY, |name| match name {
            TIMESTAMP_HEADER => Some(b"yesterday".as_slice()),
            ID_HEADER => Some(ID.as_bytes()),
            _ => Some(good.as_bytes()),
        });
        assert!(matches!(
            r,
            Err(VerifyError::InvalidHeader(TIMESTAMP_HEADER))
        ));
        assert!(matches!(
            verify(&"x".repeat(201), ts, &good, BODY),
            Err(VerifyError::InvalidHeader(ID_HEADER))
        ));
    }
}
