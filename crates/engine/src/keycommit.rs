//! Key operations made durable: every change of the key registry is
//! recorded in a meta page (its generation and hash) before the operation
//! returns, and then in the freshness anchor.
//!
//! The order, and what a crash at each point leaves:
//!
//! 1. The new registry is written (temporary file, fsync, rename, fsync of
//!    the directory). Before the rename: the old registry, the old state.
//! 2. An empty page-file commit whose meta page records the new generation
//!    and hash. Before it is durable: the registry is newer than the meta
//!    page, which an open accepts (the operation had not returned) and
//!    records at once with the same commit. After it: a registry older
//!    than the meta page is `Rollback`.
//! 3. The freshness anchor (if any) is updated. Before: the directory is
//!    one commit ahead of its anchor, which an open accepts.
//!
//! A rotation makes the commit of step 2 before the WAL and the page file
//! start sessions under the new data key: that meta page is sealed under
//! the old key, which an older registry still holds, so it proves the
//! newer generation even to an open with the older registry.

use sealkv_crypto_envelope::registry::AnchorKey;

use crate::anchor::{AnchorKeys, AnchorState};
use crate::db::Inner;
use crate::error::Error;
use crate::flush::FlushState;
use crate::keys::KeyState;
use crate::poison::PoisonCause;

impl Inner {
    /// Runs `change` on the key registry under the flush lock (so it
    /// serialises with flushes and with other key operations), then
    /// records the registry in the page file and the freshness anchor.
    pub(crate) fn key_operation<T>(
        &self,
        change: impl FnOnce(&KeyState, &mut FlushState) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let keys = self.keys.as_ref().ok_or(Error::MissingKey)?;
        let mut st = self.lock_flush()?;
        let out = change(keys, &mut st)?;
        self.record_registry(&mut st)?;
        Ok(out)
    }

    /// Whether the meta page records the registry as it is now.
    pub(crate) fn registry_recorded(&self, st: &FlushState) -> bool {
        self.keys.as_ref().is_none_or(|k| {
            st.meta.registry_generation == k.generation()
                && st.meta.registry_hash == k.fingerprint()
        })
    }

    /// An empty page-file commit whose meta page records the registry as
    /// it is now (with the rest of the engine's fields unchanged), then
    /// the freshness anchor, whatever its policy.
    pub(crate) fn record_registry(&self, st: &mut FlushState) -> Result<(), Error> {
        if !self.registry_recorded(st) {
            let txn = self.store.write().map_err(|e| self.store_error(e))?;
            let cursor = st.meta.reencrypt_cursor.clone();
            self.commit_meta(st, txn, cursor)?;
            tracing::debug!(
                generation = st.meta.registry_generation,
                "key registry recorded in the page file"
            );
        }
        self.committed(true)
    }

    /// What the directory holds now, for the freshness anchor.
    pub(crate) fn anchor_state(&self) -> AnchorState {
        AnchorState {
            db_id: self.store.db_id(),
            commit: self.store.stats().txn,
            registry_generation: self.keys.as_ref().map_or(0, KeyState::generation),
        }
    }

    /// The keys the freshness anchor is authenticated with.
    pub(crate) fn anchor_keys(&self) -> AnchorKeys {
        match &self.keys {
            Some(k) => AnchorKeys::new(vec![k.anchor_key()]),
            None => AnchorKeys::none(),
        }
    }

    /// After a durable commit: updates the freshness anchor (per its
    /// policy, or at once with `force`). A failure stops writes, as a
    /// failed commit does (the commit itself is durable; the anchor lags,
    /// which the next open accepts).
    pub(crate) fn committed(&self, force: bool) -> Result<(), Error> {
        let Some(f) = &self.freshness else {
            return Ok(());
        };
        f.record(self.anchor_state(), &self.anchor_keys(), force)
            .map_err(|e| self.anchor_failed(e))
    }

    /// Stops writes after a failed update of the freshness anchor, with it
    /// as the cause: the anchor's file may hold the update or not, and the
    /// operation that made it is not known to have finished.
    fn anchor_failed(&self, e: Error) -> Error {
        Error::Poisoned {
            cause: self.poison(PoisonCause::engine(e)),
            outcome_unknown: true,
        }
    }

    /// Before a rekey writes its registry: the freshness anchor is stored
    /// again, authenticated under both the old master key and the new one,
    /// so whichever registry a crash leaves opens it. Runs under the
    /// registry lock (`generation` is the registry's, unchanged yet).
    pub(crate) fn anchor_for_rekey(
        &self,
        keys: [AnchorKey; 2],
        generation: u64,
    ) -> Result<(), Error> {
        let Some(f) = &self.freshness else {
            return Ok(());
        };
        let state = AnchorState {
            db_id: self.store.db_id(),
            commit: self.store.stats().txn,
            registry_generation: generation,
        };
        f.record_always(state, &AnchorKeys::new(keys.to_vec()))
            .map_err(|e| self.anchor_failed(e))
    }

    /// At the end of a writable open: marks the creation complete (a
    /// registry at generation 1), records a registry newer than the meta
    /// page (a key operation a crash interrupted after its registry was
    /// written), and brings the freshness anchor up to date.
    pub(crate) fn settle_at_open(&self) -> Result<(), Error> {
        let mut st = self.lock_flush()?;
        if let Some(keys) = &self.keys
            && keys.generation() == 1
        {
            keys.advance_generation()?;
        }
        self.record_registry(&mut st)
    }
}
