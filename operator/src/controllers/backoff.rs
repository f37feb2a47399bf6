//! Per-object retry delays for transient failures: exponential, capped, jittered, reset on
//! success.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Failure counts per object key.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Delays from `min`, doubling, up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records one more failure of `key` and returns the delay before the next attempt:
    /// `min * 2^(n-1)` capped at `max`, then 80–120 % of that.
    pub fn next(&self, key: &str) -> Duration {
        let n = {
            let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(key.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let exp = 2u32.saturating_pow(n.saturating_sub(1).min(30));
        let base = self.min.saturating_mul(exp).min(self.max);
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        base.mul_f64(jitter)
    }

    /// Forgets the failures of `key` (after a success).
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_resets() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let d: Vec<Duration> = (0..6).map(|_| b.next("a")).collect();
        assert!(
            d[0] >= Duration::from_millis(800) && d[0] <= Duration::from_millis(1200),
            "{d:?}"
        );
        assert!(
            d[2] >= Duration::from_millis(3200) && d[2] <= Duration::from_millis(4800),
            "{d:?}"
        );
        assert!(d[5] <= Duration::from_secs(12), "capped: {d:?}");
        assert!(b.next("other") <= Duration::from_millis(1200), "per object");
        b.reset("a");
        assert!(b.next("a") <= Duration::from_millis(1200));
    }
}
