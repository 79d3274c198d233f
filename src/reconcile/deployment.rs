//! One application, one deployment: every deployment marks the applications it manages with
//! its id (`client_metadata.fleetgate_deployment`), and leaves alone an application another
//! deployment marked, unless told to take it over (`FLEETGATE_TAKE_OVER_APPLICATIONS`). Two
//! deployments on one application would each keep their own entries and never remove the
//! other's: safe, but half-managed, and nothing else would say so. Pure.

/// The `client_metadata` key holding the id of the deployment that manages an application.
pub const MARK: &str = "fleetgate_deployment";

/// What a pass does with an application, from its mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stance {
    /// Marked as ours: manage it.
    Ours,
    /// Unmarked: manage it, and mark it.
    Mark,
    /// Another deployment's, listed to take over: manage it, mark it ours, audit it.
    TakeOver { from: String },
    /// Another deployment's: leave it alone, and fail the pass saying so.
    Theirs { other: String },
}

impl Stance {
    /// Whether this deployment manages the application (writes it, places instances on it).
    pub fn manages(&self) -> bool {
        !matches!(self, Self::Theirs { .. })
    }
}

/// The stance toward application `client_id` marked `mark`, for deployment `ours`.
pub fn stance(mark: Option<&str>, ours: &str, client_id: &str, take_over: &[String]) -> Stance {
    match mark.map(str::trim).filter(|m| !m.is_empty()) {
        None => Stance::Mark,
        Some(m) if m == ours => Stance::Ours,
        Some(other) if take_over.iter().any(|c| c == client_id) => Stance::TakeOver {
            from: other.to_owned(),
        },
        Some(other) => Stance::Theirs {
            other: other.to_owned(),
        },
    }
}

/// The pass's problem for an application another deployment manages.
pub fn refusal(client_id: &str, other: &str, ours: &str) -> String {
    format!(
        "application {client_id} is managed by another fleetgate deployment ({other}; this one is {ours}), so this one left it alone: give each deployment applications of its own, or set FLEETGATE_TAKE_OVER_APPLICATIONS={client_id} here to take it over"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_application_is_managed_only_by_the_deployment_that_marked_it() {
        let take = vec!["app-b".to_owned()];
        assert_eq!(stance(None, "us", "app-a", &[]), Stance::Mark);
        assert_eq!(stance(Some(" "), "us", "app-a", &[]), Stance::Mark);
        assert_eq!(stance(Some("us"), "us", "app-a", &take), Stance::Ours);
        assert_eq!(
            stance(Some("them"), "us", "app-a", &take),
            Stance::Theirs {
                other: "them".into()
            }
        );
        assert_eq!(
            stance(Some("them"), "us", "app-b", &take),
            Stance::TakeOver {
                from: "them".into()
            }
        );
        assert!(Stance::Ours.manages() && Stance::Mark.manages());
        assert!(
            !Stance::Theirs {
                other: "them".into()
            }
            .manages()
        );
        let said = refusal("app-a", "them", "us");
        assert!(said.contains("app-a") && said.contains("them") && said.contains("us"));
        assert!(said.contains("FLEETGATE_TAKE_OVER_APPLICATIONS=app-a"));
    }
}
