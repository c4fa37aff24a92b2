//! In-order publication of sequence numbers.
//!
//! Writers get their sequence numbers from the WAL in order but finish
//! (apply to the memtable) in any order. Readers must never see batch `n`
//! without every batch before it, so the visible sequence number advances
//! only over a gap-free prefix of finished batches.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::memtable::Seq;

/// The highest sequence number readers may see, advanced in order.
#[derive(Debug, Default)]
pub(crate) struct Publisher {
    visible: AtomicU64,
    finished: Mutex<BTreeSet<Seq>>,
}

impl Publisher {
    /// Starts with everything up to `seq` visible.
    pub(crate) fn new(seq: Seq) -> Self {
        Publisher {
            visible: AtomicU64::new(seq),
            finished: Mutex::new(BTreeSet::new()),
        }
    }

    /// The visible sequence number: every batch at or below it is applied.
    pub(crate) fn visible(&self) -> Seq {
        self.visible.load(Ordering::Acquire)
    }

    /// Marks batch `seq` applied, and makes visible every batch of the
    /// gap-free run it completes.
    pub(crate) fn finish(&self, seq: Seq) {
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        let mut visible = self.visible.load(Ordering::Acquire);
        debug_assert!(seq > visible, "sequence number {seq} finished twice");
        finished.insert(seq);
        while finished.remove(&(visible + 1)) {
            visible += 1;
        }
        self.visible.store(visible, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_waits_for_gaps() {
        let p = Publisher::new(10);
        p.finish(12);
        assert_eq!(p.visible(), 10);
        p.finish(13);
        assert_eq!(p.visible(), 10);
        p.finish(11);
        assert_eq!(p.visible(), 13);
    }
}
