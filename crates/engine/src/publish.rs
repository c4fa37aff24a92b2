//! In-order publication of sequence numbers.
//!
//! Writers get their sequence numbers from the WAL in order but finish
//! (apply to the memtable) in any order. Readers must never see batch `n`
//! without every batch before it, so the visible sequence number advances
//! only over a gap-free prefix of finished batches.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::memtable::Seq;

/// The highest sequence number readers may see, advanced in order.
#[derive(Debug, Default)]
pub(crate) struct Publisher {
    visible: AtomicU64,
    finished: Mutex<BTreeSet<Seq>>,
    /// Notified whenever `visible` advances.
    advanced: Condvar,
}

impl Publisher {
    /// Starts with everything up to `seq` visible.
    pub(crate) fn new(seq: Seq) -> Self {
        Publisher {
            visible: AtomicU64::new(seq),
            finished: Mutex::new(BTreeSet::new()),
            advanced: Condvar::new(),
        }
    }

    /// The visible sequence number: every batch at or below it is applied.
    pub(crate) fn visible(&self) -> Seq {
        self.visible.load(Ordering::Acquire)
    }

    /// Marks batch `seq` applied, and makes visible every batch of the
    /// gap-free run it completes.
    pub(crate) fn finish(&self, seq: Seq) {
        let mut finished = self.finished.lock();
        let mut visible = self.visible.load(Ordering::Acquire);
        debug_assert!(seq > visible, "sequence number {seq} finished twice");
        finished.insert(seq);
        while finished.remove(&(visible + 1)) {
            visible += 1;
        }
        self.visible.store(visible, Ordering::Release);
        drop(finished);
        self.advanced.notify_all();
    }

    /// Waits until batch `seq` is visible; false if `give_up` said to stop
    /// first (checked every few milliseconds: a batch before `seq` that
    /// failed is never finished, and the database is then poisoned).
    pub(crate) fn wait_visible(&self, seq: Seq, give_up: impl Fn() -> bool) -> bool {
        // One writer, or the batches before this one already done: no lock.
        if self.visible.load(Ordering::Acquire) >= seq {
            return true;
        }
        let mut finished = self.finished.lock();
        loop {
            if self.visible.load(Ordering::Acquire) >= seq {
                return true;
            }
            if give_up() {
                return false;
            }
            self.advanced
                .wait_for(&mut finished, Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn visibility_advances_over_gap_free_runs_and_waiters_see_it() {
        let p = Arc::new(Publisher::new(0));
        p.finish(2);
        assert_eq!(p.visible(), 0, "batch 1 is still being applied");
        let waiter = {
            let p = p.clone();
            std::thread::spawn(move || p.wait_visible(2, || false))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "batch 2 is not visible yet");
        p.finish(1);
        assert!(waiter.join().unwrap_or(false));
        assert_eq!(p.visible(), 2);
        assert!(p.wait_visible(1, || true), "already visible: no wait");
    }

    #[test]
    fn a_waiter_gives_up_when_told() {
        let p = Arc::new(Publisher::new(0));
        p.finish(2);
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (p, stop) = (p.clone(), stop.clone());
            std::thread::spawn(move || p.wait_visible(2, || stop.load(Ordering::Acquire)))
        };
        stop.store(true, Ordering::Release);
        assert!(!waiter.join().unwrap_or(true));
        assert_eq!(p.visible(), 0);
    }
}
