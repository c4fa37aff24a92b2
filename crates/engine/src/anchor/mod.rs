//! Freshness anchors: a record, kept outside the database directory, of how
//! far the database has come, so that a whole-directory restore of an older
//! copy is caught.
//!
//! Everything inside the directory can be put back together, from one older
//! copy: the key registry, the page file and the WAL agree with each other,
//! and nothing in them says a newer state ever existed. A
//! [`FreshnessAnchor`] is somewhere else — a file on another volume, a KMS,
//! a TPM monotonic counter — that the engine tells, after each durable
//! commit, which commit the page file is at ([`AnchorState`]), and reads
//! back at open: a directory *older* than its anchor is
//! [`Error::Rollback`](crate::Error::Rollback); a directory at or newer than
//! it is accepted.
//!
//! # Ordering
//!
//! The anchor is updated only *after* the commit it describes is durable,
//! and a directory at or newer than the anchor is accepted, so a crash
//! between the two (the directory one commit ahead) never causes a false
//! rollback. A key operation updates it before it returns, whatever the
//! [`AnchorPolicy`].
//!
//! # Implementing one
//!
//! [`FreshnessAnchor::store`] must be durable when it returns, and
//! [`FreshnessAnchor::load`] must return the last state stored (or a later
//! one; never an earlier one). Where the record lives somewhere an attacker
//! could write, authenticate its bytes with the [`AnchorKeys`] passed in
//! (HMAC-SHA256 under a subkey of the master key bound to the database id):
//! [`FileAnchor`] does. A trusted store needs no tag:
//!
//! - **KMS**: keep the state as a small versioned secret or a key's tag,
//!   updated with a conditional write (compare-and-set on the version) so
//!   that it never goes backwards; `load` reads it.
//! - **TPM**: an NV monotonic counter holds `commit` (it can only grow):
//!   `store` increments it to `state.commit` (refusing to go down), `load`
//!   answers `commit` with `registry_generation` 0 and zero
//!   `registry_hash`, `meta_tag` and `lineage` (not recorded: every
//!   registry change is itself a commit, so the commit number covers it; a
//!   copy that went its own way to the same commit number, or a backup put
//!   back before the database committed past it, is then not told apart).
//!   Keep `lineage` beside the counter (an NV index written with the
//!   counter's first increment, or a sealed file) to catch those too.
//!
//! [`MemoryAnchor`] keeps the state in memory, for tests.

mod file;
mod memory;

use std::fmt;
use std::time::Duration;

use sealkv_crypto_envelope::DbId;
use sealkv_crypto_envelope::registry::{ANCHOR_TAG_LEN, AnchorKey};
use sealkv_fileio::FileError;

pub use crate::freshness::ensure_no_database_recorded;
pub use file::FileAnchor;
pub use memory::MemoryAnchor;

/// How far a database has come: what an anchor records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorState {
    /// The database (as in every file header).
    pub db_id: DbId,
    /// The page file's commit (transaction) number: it grows by one with
    /// every commit, and every key operation commits.
    pub commit: u64,
    /// The key registry's generation at that commit (0: none, or not
    /// recorded by this anchor).
    pub registry_generation: u64,
    /// The SHA-256 trailer of the key registry at that generation (zeros:
    /// none, or not recorded by this anchor): it tells this registry from
    /// another copy's at the same generation.
    pub registry_hash: [u8; 32],
    /// The tag of the page file's meta page of that commit (zeros: not
    /// recorded by this anchor): it tells this page file's commit from
    /// another copy's of the same number.
    pub meta_tag: [u8; 16],
    /// The random id of the line of commits the page file belongs to
    /// (zeros: none, or not recorded by this anchor). A database draws one
    /// when it is created, and every copy that becomes a database of its
    /// own (a backup, a restore) draws its own, so a copy put where the
    /// anchored database was is told apart whatever its commit number.
    pub lineage: [u8; 16],
}

impl AnchorState {
    /// Whether a directory in state `self` is at or newer than `anchor`
    /// (the registry generation is compared only where the anchor recorded
    /// one).
    pub fn is_at_or_after(&self, anchor: &AnchorState) -> bool {
        self.commit >= anchor.commit && self.registry_generation >= anchor.registry_generation
    }

    /// Whether a directory in state `self` belongs to another line of
    /// commits than the one `anchor` records: a copy that became a
    /// database of its own (a backup, a restore), put where the anchored
    /// database was. An anchor that recorded no lineage (zeros) accepts
    /// any; one that did refuses a directory without one (a page file of
    /// a format older than lineages, put back).
    pub fn other_lineage(&self, anchor: &AnchorState) -> bool {
        anchor.lineage != [0; 16] && self.lineage != anchor.lineage
    }

    /// What of a directory in state `self` is not what `anchor` records at
    /// the same point: at the same commit, another meta page; at the same
    /// registry generation, another registry. Either is a copy of the
    /// database that went its own way (or an older one put back and moved
    /// on as far). Fields the anchor did not record (zeros) are not
    /// compared.
    pub fn diverges_from(&self, anchor: &AnchorState) -> Option<&'static str> {
        let recorded = |b: &[u8]| b.iter().any(|&x| x != 0);
        if self.commit == anchor.commit
            && recorded(&anchor.meta_tag)
            && self.meta_tag != anchor.meta_tag
        {
            return Some("the meta page of that commit is not the one the anchor records");
        }
        if self.registry_generation == anchor.registry_generation
            && recorded(&anchor.registry_hash)
            && self.registry_hash != anchor.registry_hash
        {
            return Some("the key registry at that generation is not the one the anchor records");
        }
        None
    }
}

/// When the engine updates the anchor. Key operations and `close` always
/// update it (before they return); this sets what ordinary commits
/// (flushes, re-encryption steps, backups' zeroing commits) do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AnchorPolicy {
    /// After every page-file commit (the default). The anchor is never
    /// more than the commit in flight behind. Costs one anchor update per
    /// commit (for [`FileAnchor`], one 512-byte write and one fdatasync).
    #[default]
    EveryCommit,
    /// After a commit only once `interval` has passed since the last
    /// update: the anchor may lag by the commits of one interval (plus any
    /// since the last update, until the next commit or `close`), so an
    /// older copy from within that window is accepted.
    Interval(Duration),
}

/// The keys an anchor authenticates its bytes with: the anchor subkey of
/// the database's master key (two during a rekey, the old master key's and
/// the new one's, so a crash in between opens with either), or none for a
/// database without a key registry.
#[derive(Clone, Default)]
pub struct AnchorKeys {
    keys: Vec<AnchorKey>,
}

impl fmt::Debug for AnchorKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnchorKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl AnchorKeys {
    /// No key: a database without a key registry. An anchor can then only
    /// checksum its bytes (it detects damage and an accidental restore, not
    /// a forger).
    pub fn none() -> Self {
        AnchorKeys::default()
    }

    pub(crate) fn new(keys: Vec<AnchorKey>) -> Self {
        AnchorKeys { keys }
    }

    /// Whether there is a key to authenticate with.
    pub fn is_keyed(&self) -> bool {
        !self.keys.is_empty()
    }

    /// How many keys (and so tags): 0, 1, or 2 during a rekey.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key (same as `!is_keyed()`).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// One tag of `message` per key (none without a key).
    pub fn tags(&self, message: &[u8]) -> Vec<[u8; ANCHOR_TAG_LEN]> {
        self.keys.iter().map(|k| k.tag(message)).collect()
    }

    /// Whether `tags` authenticate `message`: with keys, one of them is a
    /// tag under one of the keys; without, there are none.
    pub fn verify(&self, message: &[u8], tags: &[[u8; ANCHOR_TAG_LEN]]) -> bool {
        if self.keys.is_empty() {
            return tags.is_empty();
        }
        tags.iter()
            .any(|t| self.keys.iter().any(|k| k.verify(message, t)))
    }
}

/// What can go wrong reading or updating an anchor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The anchor's bytes are damaged (a checksum, the layout).
    #[error("freshness anchor {location}: {what}")]
    Corrupt {
        /// Where the anchor is (a path, a key name).
        location: String,
        /// What is wrong.
        what: String,
    },
    /// The anchor's bytes are whole but do not authenticate under the keys
    /// given: written under another master key (an older one, after a
    /// rekey), for another database, forged, or, given no key, written
    /// with one.
    #[error("freshness anchor {location}: {what}")]
    Unauthenticated {
        /// Where the anchor is.
        location: String,
        /// Why.
        what: String,
    },
    /// The anchor records another database.
    #[error(
        "freshness anchor {location} records database {anchor}, the directory holds database {directory}: the anchor belongs to another database, or the directory was replaced"
    )]
    OtherDatabase {
        /// Where the anchor is.
        location: String,
        /// The database it records.
        anchor: DbId,
        /// The directory's database.
        directory: DbId,
    },
    /// An I/O error, with its path.
    #[error(transparent)]
    Io(#[from] FileError),
    /// Another implementation's failure (a KMS, a TPM).
    #[error("freshness anchor: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// A record, outside the database directory, of how far the database has
/// come. See the [module docs](self).
pub trait FreshnessAnchor: Send + Sync + fmt::Debug {
    /// The last state stored, authenticated with `keys` where the
    /// implementation authenticates; `None` if it holds none yet.
    fn load(&self, keys: &AnchorKeys) -> Result<Option<AnchorState>, AnchorError>;

    /// Records `state`, durably (it survives a power cut once this
    /// returns), authenticated with `keys` where the implementation
    /// authenticates. States only grow.
    fn store(&self, state: &AnchorState, keys: &AnchorKeys) -> Result<(), AnchorError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lineage: [u8; 16]) -> AnchorState {
        AnchorState {
            db_id: DbId([1; 16]),
            commit: 5,
            registry_generation: 2,
            registry_hash: [3; 32],
            meta_tag: [4; 16],
            lineage,
        }
    }

    /// An anchor that recorded a lineage refuses another, and a directory
    /// without one (a page file written before lineages, put back); one
    /// that recorded none (written before lineages) accepts any.
    #[test]
    fn a_recorded_lineage_refuses_another_and_none() {
        let anchor = state([7; 16]);
        assert!(!state([7; 16]).other_lineage(&anchor));
        assert!(state([8; 16]).other_lineage(&anchor));
        assert!(state([0; 16]).other_lineage(&anchor));
        let unrecorded = state([0; 16]);
        assert!(!state([8; 16]).other_lineage(&unrecorded));
        assert!(!state([0; 16]).other_lineage(&unrecorded));
    }
}
