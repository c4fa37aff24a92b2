//! [`MemoryAnchor`]: a freshness anchor held in memory, for tests.

use std::sync::Arc;

use parking_lot::Mutex;

use super::{AnchorError, AnchorKeys, AnchorState, FreshnessAnchor};

#[derive(Debug, Default)]
struct Held {
    state: Option<AnchorState>,
    stores: u64,
}

/// A freshness anchor kept in this process's memory: what a trusted
/// external store (a KMS, a TPM counter) would answer, without one. Clones
/// share the state, so a test keeps a handle across reopens and "restores
/// an older copy" of the directory beside it. It authenticates nothing
/// (nothing outside the process can write it).
#[derive(Debug, Clone, Default)]
pub struct MemoryAnchor {
    held: Arc<Mutex<Held>>,
}

impl MemoryAnchor {
    /// An empty anchor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state held, if any.
    pub fn state(&self) -> Option<AnchorState> {
        self.lock().state
    }

    /// How many times the engine stored a state.
    pub fn stores(&self) -> u64 {
        self.lock().stores
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Held> {
        self.held.lock()
    }
}

impl FreshnessAnchor for MemoryAnchor {
    fn load(&self, _keys: &AnchorKeys) -> Result<Option<AnchorState>, AnchorError> {
        Ok(self.lock().state)
    }

    fn store(&self, state: &AnchorState, _keys: &AnchorKeys) -> Result<(), AnchorError> {
        let mut held = self.lock();
        held.state = Some(*state);
        held.stores += 1;
        Ok(())
    }
}
