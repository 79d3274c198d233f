//! What becomes of an event after an attempt. Pure.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Delivered,
    /// Tried again this long from now.
    Retry(Duration),
    /// Every attempt of the schedule failed.
    GivenUp,
}

impl After {
    pub fn status(self) -> &'static str {
        match self {
            After::Delivered => "delivered",
            After::Retry(_) => "pending",
            After::GivenUp => "failed",
        }
    }

    /// The outcome label of `fleetgate_event_deliveries_total`.
    pub fn outcome(self) -> &'static str {
        match self {
            After::Delivered => "delivered",
            After::Retry(_) => "retry",
            After::GivenUp => "failed",
        }
    }
}

/// `attempts_made` counts this attempt (1 for the first). A 2xx answer delivers; anything else
/// (another status, no answer) waits `schedule[attempts_made - 1]`, or gives up when the
/// schedule is spent. Redirects are failures: a receiver's address is the configured one.
pub fn after_attempt(success: bool, attempts_made: u32, schedule: &[Duration]) -> After {
    if success {
        return After::Delivered;
    }
    match schedule.get(attempts_made.saturating_sub(1) as usize) {
        Some(wait) => After::Retry(*wait),
        None => After::GivenUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_follow_the_schedule_then_give_up() {
        let s = [Duration::from_secs(5), Duration::from_secs(300)];
        assert_eq!(after_attempt(false, 1, &s), After::Retry(s[0]));
        assert_eq!(after_attempt(false, 2, &s), After::Retry(s[1]));
        assert_eq!(after_attempt(false, 3, &s), After::GivenUp);
        assert_eq!(after_attempt(true, 3, &s), After::Delivered);
        assert_eq!(after_attempt(false, 1, &[]), After::GivenUp);
    }
}
