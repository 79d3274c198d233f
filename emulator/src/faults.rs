//! Injected faults: a share of answers that are 5xx, extra 429s, slow, or whose connection is
//! dropped after the request was processed (so the caller cannot know whether it took effect).

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of answers replaced by a 500 or 503.
    pub error_rate: f64,
    /// Share of answers replaced by a 429, whatever the bucket holds.
    pub rate_limit_rate: f64,
    /// Share of requests delayed by up to `latency_ms`.
    pub latency_rate: f64,
    pub latency_ms: u64,
    /// Share of requests whose connection is cut after processing, before the answer.
    pub drop_rate: f64,
    /// Once, right after the next successful PATCH of an application, a person appends this
    /// entry to this list (the PATCH answer does not show it; the next read does).
    pub concurrent_edit: Option<ConcurrentEdit>,
    /// Once, the next request to this `METHOD /path` (e.g. `POST /api/v2/clients`) is
    /// processed and its connection cut before the answer.
    pub drop_next: Option<String>,
    /// Draw faults from a generator seeded with this, so that the same requests in the same
    /// order meet the same faults (a test that must not depend on luck); without it, at random.
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrentEdit {
    pub field: String,
    pub entry: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    ServerError(u16),
    RateLimited,
    Drop,
}

impl Faults {
    /// The generator to draw from, when a seed is named.
    pub fn seeded_rng(&self) -> Option<StdRng> {
        self.seed.map(StdRng::seed_from_u64)
    }

    pub fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("latency_rate", self.latency_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        if self.latency_ms > 60_000 {
            return Err("latency_ms must be at most 60000".into());
        }
        if let Some(edit) = &self.concurrent_edit {
            let field = super::urls::UrlField::from_name(&edit.field)
                .ok_or("concurrent_edit.field must be one of the four URL lists")?;
            if !super::urls::is_valid(field, &edit.entry) {
                return Err(format!(
                    "concurrent_edit.entry is not a valid {} entry",
                    edit.field
                ));
            }
        }
        if let Some(target) = &self.drop_next {
            let well_formed = target.split_once(' ').is_some_and(|(method, path)| {
                ["GET", "POST", "PATCH", "DELETE"].contains(&method) && path.starts_with('/')
            });
            if !well_formed {
                return Err(
                    "drop_next must be a method and a path, e.g. 'POST /api/v2/clients'".into(),
                );
            }
        }
        Ok(())
    }

    /// What happens to one request.
    pub fn draw(&self, rng: &mut impl Rng) -> (Option<Duration>, Fault) {
        let latency = (self.latency_ms > 0 && rng.gen_bool(self.latency_rate))
            .then(|| Duration::from_millis(rng.gen_range(0..=self.latency_ms)));
        let fault = if rng.gen_bool(self.error_rate) {
            Fault::ServerError(if rng.gen_bool(0.5) { 500 } else { 503 })
        } else if rng.gen_bool(self.rate_limit_rate) {
            Fault::RateLimited
        } else if rng.gen_bool(self.drop_rate) {
            Fault::Drop
        } else {
            Fault::None
        };
        (latency, fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn rates_are_honoured_roughly_and_checked() {
        let f = Faults {
            error_rate: 0.3,
            drop_rate: 0.5,
            latency_rate: 1.0,
            latency_ms: 10,
            ..Default::default()
        };
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<_> = (0..10_000).map(|_| f.draw(&mut rng)).collect();
        let errors = draws
            .iter()
            .filter(|(_, f)| matches!(f, Fault::ServerError(_)))
            .count();
        assert!((2_700..3_300).contains(&errors), "{errors}");
        assert!(
            draws
                .iter()
                .all(|(l, _)| l.is_some_and(|d| d <= Duration::from_millis(10)))
        );
        assert!(Faults::default().draw(&mut rng) == (None, Fault::None));
        assert!(
            Faults {
                error_rate: 1.5,
                ..Default::default()
            }
            .check()
            .is_err()
        );
    }
}
