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
//!   answers `commit` with `registry_generation` 0 (not recorded: every
//!   registry change is itself a commit, so the commit number covers it).
//!
//! [`MemoryAnchor`] keeps the state in memory, for tests.

mod file;
mod memory;

use std::fmt;
use std::time::Duration;

use sealkv_crypto_envelope::DbId;
use sealkv_crypto_envelope::registry::{ANCHOR_TAG_LEN, AnchorKey};
use sealkv_fileio::FileError;

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
}

impl AnchorState {
    /// Whether a directory in state `self` is at or newer than `anchor`
    /// (the registry generation is compared only where the anchor recorded
    /// one).
    pub fn is_at_or_after(&self, anchor: &AnchorState) -> bool {
        self.commit >= anchor.commit && self.registry_generation >= anchor.registry_generation
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
    /// The anchor's bytes are damaged, or do not authenticate under this
    /// database's master key.
    #[error("freshness anchor {location}: {what}")]
    Corrupt {
        /// Where the anchor is (a path, a key name).
        location: String,
        /// What is wrong.
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
