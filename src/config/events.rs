//! Outbound events: where they are delivered, how they are signed, and how often a failed
//! delivery is tried again.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, Result, Vars, check_webhook_secret, seconds_within};

/// Standard Webhooks' (Svix's) schedule: after the first attempt, tried again 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h and 10 h later (about 28 hours in all), then given up.
pub const DEFAULT_RETRY_SCHEDULE: &str = "5,300,1800,7200,18000,36000,36000";

#[derive(Debug, Clone)]
pub struct EventsSettings {
    /// The one endpoint every event is POSTed to.
    pub url: reqwest::Url,
    /// `whsec_…`: the Standard Webhooks secret the receiver verifies with.
    pub secret: SecretString,
    /// The wait before each retry, in order; its length is the number of retries.
    pub retry_schedule: Vec<Duration>,
    /// How long one attempt may take (connect, send, answer).
    pub timeout: Duration,
    /// Delivered and failed events are forgotten this many days after they finished.
    pub kept_days: i32,
}

/// `FLEETGATE_EVENTS_URL` and its companions; None when no URL is set (no event is recorded).
pub(super) fn events_settings(vars: &Vars) -> Result<Option<EventsSettings>> {
    let Some(raw) = vars.optional("FLEETGATE_EVENTS_URL") else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(&raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.username().is_empty() && u.password().is_none() && u.fragment().is_none())
        .ok_or(ConfigError {
            var: "FLEETGATE_EVENTS_URL",
            message: "must be an http or https URL without user or fragment, e.g. https://platform.example/hooks/fleetgate".into(),
        })?;
    let secret = vars
        .optional("FLEETGATE_EVENTS_SECRET")
        .ok_or(ConfigError {
            var: "FLEETGATE_EVENTS_SECRET",
            message: "is required when FLEETGATE_EVENTS_URL is set".into(),
        })?;
    check_webhook_secret(&secret).map_err(|message| ConfigError {
        var: "FLEETGATE_EVENTS_SECRET",
        message: message.into(),
    })?;
    if vars.optional("FLEETGATE_WEBHOOK_SECRET").as_deref() == Some(secret.as_str()) {
        return Err(ConfigError {
            var: "FLEETGATE_EVENTS_SECRET",
            message: "must differ from FLEETGATE_WEBHOOK_SECRET: whoever receives events must not be able to sign deploy hooks".into(),
        });
    }
    Ok(Some(EventsSettings {
        url,
        secret: SecretString::from(secret),
        retry_schedule: vars.parsed(
            "FLEETGATE_EVENTS_RETRY_SCHEDULE",
            parse_schedule(DEFAULT_RETRY_SCHEDULE).expect("the default parses"),
            parse_schedule,
        )?,
        timeout: vars.parsed(
            "FLEETGATE_EVENTS_TIMEOUT_SECS",
            Duration::from_secs(15),
            seconds_within(1..=120, "must be a number of seconds from 1 to 120"),
        )?,
        kept_days: vars.parsed("FLEETGATE_EVENTS_KEPT_DAYS", 30, |s| {
            s.parse::<i32>()
                .ok()
                .filter(|n| (1..=3650).contains(n))
                .ok_or("must be a whole number of days from 1 to 3650")
        })?,
    }))
}

impl EventsSettings {
    /// Whether events would cross a network in clear text (http to a host other than this one).
    pub fn in_clear(&self) -> bool {
        self.url.scheme() == "http"
            && !matches!(
                self.url.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            )
            && !matches!(self.url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            && self.url.host_str() != Some("localhost")
    }

    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }
}

/// Seconds (fractions allowed) before each retry, comma-separated: at most 20 retries, each
/// from 0.01 s to a day.
fn parse_schedule(s: &str) -> std::result::Result<Vec<Duration>, &'static str> {
    const RULE: &str = "must be a comma-separated list of at most 20 waits in seconds, each from 0.01 to 86400, e.g. 5,300,1800";
    let waits: Vec<Duration> = s
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| (0.01..=86_400.0).contains(n))
                .map(Duration::from_secs_f64)
        })
        .collect::<Option<_>>()
        .ok_or(RULE)?;
    if waits.is_empty() || waits.len() > 20 {
        return Err(RULE);
    }
    Ok(waits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_standard_webhooks_and_spans_about_a_day() {
        let waits = parse_schedule(DEFAULT_RETRY_SCHEDULE).unwrap();
        assert_eq!(waits.len(), 7);
        let total: Duration = waits.iter().sum();
        assert!(
            (27 * 3600..29 * 3600).contains(&total.as_secs()),
            "{total:?}"
        );
    }

    #[test]
    fn a_schedule_takes_fractions_and_refuses_nonsense() {
        assert_eq!(
            parse_schedule("0.1, 2").unwrap(),
            vec![Duration::from_millis(100), Duration::from_secs(2)]
        );
        for bad in ["", "x", "0", "-1", "1,,2", "90000", "NaN"] {
            assert!(parse_schedule(bad).is_err(), "{bad}");
        }
    }
}
