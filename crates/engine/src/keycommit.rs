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
//! newer generation even to an open with the older registry. An open that
//! finds the registry newer than the meta page does the same, before the
//! WAL opens and before the page file seals anything under the registry's
//! active key ([`record_newer_registry_at_open`]): its meta page is sealed
//! under the key the meta page it replaces is sealed under.

use std::path::Path;

use sealkv_core_store::Store;
use sealkv_crypto_envelope::KeyId;
use sealkv_crypto_envelope::registry::AnchorKey;

use crate::anchor::{AnchorKeys, AnchorState};
use crate::db::Inner;
use crate::error::Error;
use crate::flush::FlushState;
use crate::keys::KeyState;
use crate::layout::DATA_FILE;
use crate::meta::{EngineMeta, Lineage};
use crate::poison::PoisonCause;

/// At a writable open, before the WAL opens: a registry newer than the
/// meta page records (a key operation a crash cut short after its registry
/// was written) is recorded at once, in a meta page sealed under
/// `meta_key`, the data key of the meta page the store opened. The
/// registry that meta page records holds that key, so the older registry
/// put back still opens the new meta page and meets the newer generation
/// (`Rollback`); a meta page sealed under a data key the rotation just
/// added would be one the older registry cannot open, and the open would
/// fall back to the slot before it. The page file then seals under the
/// registry's active key again. Every other field of the meta page is
/// kept as it is.
pub(crate) fn record_newer_registry_at_open(
    store: &Store,
    keys: &KeyState,
    meta_key: Option<KeyId>,
    dir: &Path,
) -> Result<(), Error> {
    let data = dir.join(DATA_FILE);
    let mut meta = EngineMeta::decode(store.read().app_meta(), &data)?;
    if meta.registry_generation == keys.generation() && meta.registry_hash == keys.fingerprint() {
        return Ok(());
    }
    let err = |e| crate::errmap::store(dir, e);
    if let Some(id) = meta_key {
        store.new_session_under(id).map_err(err)?;
    }
    meta.registry_generation = keys.generation();
    meta.registry_hash = keys.fingerprint();
    let mut txn = store.write().map_err(err)?;
    txn.set_app_meta(&meta.encode()).map_err(err)?;
    txn.commit().map_err(err)?;
    if meta_key.is_some() {
        store.new_session().map_err(err)?;
    }
    tracing::debug!(
        generation = meta.registry_generation,
        "a key registry newer than the page file was recorded at open"
    );
    Ok(())
}

/// The lineage a committed meta page's engine fields record (zeros for
/// none: a page file of version 2 not yet rewritten, which is what an
/// anchor records as "no lineage").
pub(crate) fn lineage_of(app_meta: &[u8]) -> Lineage {
    EngineMeta::decode(app_meta, Path::new(DATA_FILE))
        .ok()
        .and_then(|m| m.lineage)
        .unwrap_or_default()
}

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

    /// What the directory holds now, for the freshness anchor: the last
    /// commit's number, meta page tag and lineage read as one committed
    /// state, with the registry.
    pub(crate) fn anchor_state(&self) -> AnchorState {
        let last = self.store.last_commit();
        AnchorState {
            db_id: self.store.db_id(),
            commit: last.txn,
            registry_generation: self.keys.as_ref().map_or(0, KeyState::generation),
            registry_hash: self.keys.as_ref().map_or([0; 32], KeyState::fingerprint),
            meta_tag: last.meta_tag,
            lineage: lineage_of(&last.app_meta),
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
    /// registry lock (`generation` and `registry_hash` are the registry's,
    /// unchanged yet).
    pub(crate) fn anchor_for_rekey(
        &self,
        keys: [AnchorKey; 2],
        generation: u64,
        registry_hash: [u8; 32],
    ) -> Result<(), Error> {
        let Some(f) = &self.freshness else {
            return Ok(());
        };
        let last = self.store.last_commit();
        let state = AnchorState {
            db_id: self.store.db_id(),
            commit: last.txn,
            registry_generation: generation,
            registry_hash,
            meta_tag: last.meta_tag,
            lineage: lineage_of(&last.app_meta),
        };
        f.record_always(state, &AnchorKeys::new(keys.to_vec()))
            .map_err(|e| self.anchor_failed(e))
    }

    /// At the end of a writable open: marks the creation complete (a
    /// registry at generation 1), draws a lineage for a page file that has
    /// none (version 2) or for a copy that becomes a database of its own,
    /// records a registry newer than the meta page (a key operation a
    /// crash interrupted after its registry was written, or one whose
    /// recording the open deferred past a fall-back), and brings the
    /// freshness anchor up to date.
    ///
    /// `meta_key` is the data key of the meta page the store opened, when
    /// the registry is newer than it: the recording commit is sealed under
    /// it, as [`record_newer_registry_at_open`] explains.
    pub(crate) fn settle_at_open(&self, meta_key: Option<KeyId>) -> Result<(), Error> {
        let mut st = self.lock_flush()?;
        if let Some(keys) = &self.keys
            && keys.generation() == 1
        {
            keys.advance_generation()?;
        }
        let err = |e| crate::errmap::store(&self.dir, e);
        let under_meta_key = meta_key.filter(|_| !self.registry_recorded(&st));
        if let Some(id) = under_meta_key {
            self.store.new_session_under(id).map_err(err)?;
        }
        if st.meta.lineage.is_none() || self.config.new_lineage {
            st.meta.lineage = Some(crate::meta::new_lineage(&self.config.provider)?);
            let txn = self.store.write().map_err(|e| self.store_error(e))?;
            let cursor = st.meta.reencrypt_cursor.clone();
            self.commit_meta(&mut st, txn, cursor)?;
            tracing::debug!("a new lineage id recorded in the page file");
        }
        self.record_registry(&mut st)?;
        if under_meta_key.is_some() {
            self.store.new_session().map_err(err)?;
        }
        Ok(())
    }
}
