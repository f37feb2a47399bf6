//! Fault injection per target (an environment name, or `awx`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Faults set by `PUT /_sim/faults/{target}`. Missing fields mean "no fault of that kind".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Delay added before every answer, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability (0.0–1.0) that a call is answered 500.
    #[serde(default)]
    pub error_rate: f64,
    /// The next N calls are answered 429 with `Retry-After`.
    #[serde(default)]
    pub burst429: u64,
    /// Every call is answered 503 (the service is down).
    #[serde(default)]
    pub down: bool,
}

impl FaultSpec {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) || self.error_rate.is_nan() {
            return Err(format!(
                "errorRate must be within 0.0..=1.0, got {}",
                self.error_rate
            ));
        }
        Ok(())
    }
}

/// What the fault layer decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve normally.
    Pass,
    /// Answer 503.
    Down,
    /// Answer 429.
    TooMany,
    /// Answer 500.
    Error,
}

/// All configured faults.
#[derive(Debug, Default)]
pub struct Faults {
    specs: BTreeMap<String, FaultSpec>,
}

impl Faults {
    /// Replaces the faults of a target.
    pub fn set(&mut self, target: &str, spec: FaultSpec) {
        self.specs.insert(target.to_owned(), spec);
    }

    /// Clears the faults of a target.
    pub fn clear(&mut self, target: &str) {
        self.specs.remove(target);
    }

    /// Clears everything.
    pub fn clear_all(&mut self) {
        self.specs.clear();
    }

    /// The current faults (for `GET /_sim/faults`).
    pub fn all(&self) -> &BTreeMap<String, FaultSpec> {
        &self.specs
    }

    /// Decides the fate of one call to `target`; consumes one 429 of a burst.
    /// `roll` is a uniform random number in `[0, 1)`.
    pub fn decide(&mut self, target: &str, roll: f64) -> (Duration, Verdict) {
        let Some(spec) = self.specs.get_mut(target) else {
            return (Duration::ZERO, Verdict::Pass);
        };
        let latency = Duration::from_millis(spec.latency_ms);
        let verdict = if spec.down {
            Verdict::Down
        } else if spec.burst429 > 0 {
            spec.burst429 -= 1;
            Verdict::TooMany
        } else if roll < spec.error_rate {
            Verdict::Error
        } else {
            Verdict::Pass
        };
        (latency, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_consumed_then_passes() {
        let mut f = Faults::default();
        f.set(
            "dev",
            FaultSpec {
                burst429: 2,
                ..FaultSpec::default()
            },
        );
        assert_eq!(f.decide("dev", 0.5).1, Verdict::TooMany);
        assert_eq!(f.decide("dev", 0.5).1, Verdict::TooMany);
        assert_eq!(f.decide("dev", 0.5).1, Verdict::Pass);
        assert_eq!(f.decide("prod", 0.5).1, Verdict::Pass);
    }

    #[test]
    fn error_rate_uses_roll_and_down_wins() {
        let mut f = Faults::default();
        f.set(
            "awx",
            FaultSpec {
                error_rate: 0.5,
                latency_ms: 7,
                ..FaultSpec::default()
            },
        );
        assert_eq!(
            f.decide("awx", 0.1),
            (Duration::from_millis(7), Verdict::Error)
        );
        assert_eq!(f.decide("awx", 0.9).1, Verdict::Pass);
        f.set(
            "awx",
            FaultSpec {
                down: true,
                burst429: 3,
                ..FaultSpec::default()
            },
        );
        assert_eq!(f.decide("awx", 0.9).1, Verdict::Down);
        assert!(
            FaultSpec {
                error_rate: 1.5,
                ..FaultSpec::default()
            }
            .validate()
            .is_err()
        );
    }
}
