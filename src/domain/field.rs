//! The four allow-lists of an Auth0 application that fleetgate manages.

use std::fmt;

/// Auth0's cap on each list.
pub const MAX_URLS_PER_FIELD: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Callbacks,
    AllowedLogoutUrls,
    WebOrigins,
    AllowedOrigins,
}

impl Field {
    pub const ALL: [Field; 4] = [
        Self::Callbacks,
        Self::AllowedLogoutUrls,
        Self::WebOrigins,
        Self::AllowedOrigins,
    ];

    /// The property name in the Management API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Callbacks => "callbacks",
            Self::AllowedLogoutUrls => "allowed_logout_urls",
            Self::WebOrigins => "web_origins",
            Self::AllowedOrigins => "allowed_origins",
        }
    }

    /// Origins are matched on scheme, host and port only, so their templates carry no path.
    pub fn is_origin(self) -> bool {
        matches!(self, Self::WebOrigins | Self::AllowedOrigins)
    }
}

/// The entries of a list as the Management API returns it (absent or not a list: none).
pub fn entries(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
