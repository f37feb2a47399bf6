//! Readiness state: caches synced and, when leader election is on, the lease held.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What `/readyz` reports.
#[derive(Debug)]
pub struct Health {
    caches_expected: usize,
    caches_synced: AtomicUsize,
    leader_required: bool,
    leader: AtomicBool,
}

impl Health {
    /// `caches` controllers must sync before the process is ready.
    pub fn new(caches: usize, leader_required: bool) -> Health {
        Health {
            caches_expected: caches,
            caches_synced: AtomicUsize::new(0),
            leader_required,
            leader: AtomicBool::new(false),
        }
    }

    /// One controller's cache is synced.
    pub fn cache_synced(&self) {
        self.caches_synced.fetch_add(1, Ordering::SeqCst);
    }

    /// Controllers stopped (lease lost): their caches must sync again.
    pub fn caches_reset(&self) {
        self.caches_synced.store(0, Ordering::SeqCst);
    }

    /// Records whether this replica holds the lease.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
    }

    /// Whether this replica holds the lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if self.leader_required && !self.is_leader() {
            return Err("not the leader: another replica holds the lease".into());
        }
        let synced = self.caches_synced.load(Ordering::SeqCst);
        if synced < self.caches_expected {
            return Err(format!(
                "caches syncing: {synced}/{} controllers ready",
                self.caches_expected
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_lease_and_synced_caches() {
        let h = Health::new(2, true);
        assert!(h.readiness().unwrap_err().contains("leader"));
        h.set_leader(true);
        assert!(h.readiness().unwrap_err().contains("0/2"));
        h.cache_synced();
        h.cache_synced();
        assert!(h.readiness().is_ok());
        h.caches_reset();
        assert!(h.readiness().is_err());
        let single = Health::new(1, false);
        single.cache_synced();
        assert!(single.readiness().is_ok());
    }
}
