//! The process a file handle was opened in.
//!
//! A child forked after a database's files were opened holds copies of
//! everything the parent's handle keeps in memory (writer sessions with
//! their nonce counters, file positions, free lists) and shares its
//! `flock`: a write from the child would reuse nonces and race the parent
//! in the same files. Each layer that writes or seals keeps an [`OpenedBy`] and
//! refuses to write when [`OpenedBy::check`] says the process changed.
//! The check compares process ids: a guard against the common mistake
//! (a handle used across a `fork`), not a proof.

use std::sync::atomic::{AtomicU32, Ordering};

/// The process that opened a handle.
#[derive(Debug)]
pub struct OpenedBy(AtomicU32);

/// A handle used in another process than the one that opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forked {
    /// The process that opened the handle.
    pub opened_by: u32,
    /// The process asking.
    pub current: u32,
}

impl OpenedBy {
    /// The calling process.
    pub fn current() -> Self {
        OpenedBy(AtomicU32::new(std::process::id()))
    }

    /// `Ok` in the process that opened the handle, else who opened it and
    /// who asks. One `getpid` call.
    pub fn check(&self) -> Result<(), Forked> {
        let opened_by = self.0.load(Ordering::Relaxed);
        let current = std::process::id();
        if opened_by == current {
            Ok(())
        } else {
            Err(Forked { opened_by, current })
        }
    }

    /// Lets tests reach the checks without forking: the handle takes
    /// itself for opened by process `pid`.
    #[doc(hidden)]
    pub fn pretend(&self, pid: u32) {
        self.0.store(pid, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_process_is_told_apart_with_both_ids() {
        let opened = OpenedBy::current();
        assert_eq!(opened.check(), Ok(()));
        let other = std::process::id().wrapping_add(1);
        opened.pretend(other);
        assert_eq!(
            opened.check(),
            Err(Forked {
                opened_by: other,
                current: std::process::id()
            })
        );
    }
}
