//! What a Management API call can fail with.

#[derive(Debug, Clone, thiserror::Error)]
pub enum Auth0Error {
    /// Auth0 refused the call (4xx other than 429, or a 5xx after all retries).
    #[error("Auth0 answered {status} {}: {message}", error_code.as_deref().unwrap_or("-"))]
    Api {
        status: u16,
        error_code: Option<String>,
        message: String,
    },
    /// No answer (timeout, refused or dropped connection) after all retries.
    #[error("Auth0 could not be reached: {0}")]
    Transport(String),
    /// The M2M token could not be had.
    #[error("no Management API token: {0}")]
    Token(String),
}

impl Auth0Error {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the request may have taken effect although no success came back: the
    /// connection dropped or timed out after sending, or Auth0 answered 5xx.
    pub fn maybe_applied(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500,
            Self::Transport(_) => true,
            Self::Token(_) => false,
        }
    }
}
