//! Options, sequence numbers, recovery reports and statistics.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sealkv_crypto_envelope::{DbId, Keyring};

/// A record's sequence number: dense, one per batch, starting at
/// [`WalOptions::first_seq`] for a new log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// When an append is acknowledged, and so what a crash can lose (stated in
/// full in `docs/WAL.md` of sealkv's repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Acknowledge after the fsync that covers the record: nothing
    /// acknowledged is lost, not even on power loss. Concurrent appenders
    /// share one fsync (group commit).
    #[default]
    Always,
    /// Acknowledge after the write reaches the OS; a background thread
    /// fsyncs at this interval. A process crash loses nothing acknowledged;
    /// a power loss can lose about the last interval's appends.
    Interval(Duration),
    /// Acknowledge after the write reaches the OS; fsync only on
    /// [`Wal::sync`](crate::Wal::sync), [`Wal::roll`](crate::Wal::roll),
    /// rotation and close. A power loss can lose everything since then.
    Never,
}

/// When one append is acknowledged, whatever the log's [`SyncMode`] (as
/// redb's `Durability` and RocksDB's `WriteOptions::sync`).
///
/// The log is one sequence, so the prefix property holds across a mix: an
/// fsync makes every record before it durable too, and a record that was
/// not fsynced can be lost in a power cut only together with every record
/// after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// As the log's [`SyncMode`] says.
    #[default]
    AsConfigured,
    /// Once an fsync covers the record (group commit shares it), whatever
    /// the sync mode.
    Sync,
    /// Once the record reaches the OS: a process crash loses nothing, a
    /// power cut may lose it (until a later fsync — the interval syncer,
    /// a synced append, a roll or a close — covers it).
    Buffered,
}

/// What recovery does with damage. Named after RocksDB's `WALRecoveryMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// The default. A torn tail (damage in the last segment past the point
    /// it was known fsynced, with nothing valid after it that proves
    /// otherwise) is cut, durably, and reported; any other damage is
    /// [`Error::Corruption`](crate::Error::Corruption).
    #[default]
    TolerateCorruptedTailRecords,
    /// Any damaged or incomplete record is `Corruption`, even a torn tail
    /// (for logs that are only ever closed cleanly).
    AbsoluteConsistency,
    /// Replay up to the first damaged record, then cut the log there
    /// (later records and segments are removed) and report it.
    PointInTimeRecovery,
    /// Skip every damaged region and replay every valid record after it,
    /// reporting each skip. Sequence numbers may then have gaps.
    SkipAnyCorruptedRecords,
}

/// How to open a [`Wal`](crate::Wal).
#[derive(Clone)]
pub struct WalOptions {
    /// The database the log belongs to (recorded in every header and AAD).
    pub db_id: DbId,
    /// The keyring to seal and open records with; `None` for a plaintext
    /// log (CRC32C instead of tags).
    pub keyring: Option<Arc<Keyring>>,
    /// When appends are acknowledged.
    pub sync_mode: SyncMode,
    /// A segment is rotated once it would grow past this many bytes (a
    /// single larger record still gets a segment of its own).
    pub segment_size: u64,
    /// What recovery does with damage.
    pub recovery_mode: RecoveryMode,
    /// The first sequence number replay delivers (the engine passes its
    /// last flushed sequence + 1): older records are skipped and whole
    /// segments older than it are removed. A new log starts numbering here.
    /// Must be at least 1.
    pub first_seq: Seq,
}

impl fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalOptions")
            .field("db_id", &self.db_id)
            .field("sealed", &self.keyring.is_some())
            .field("sync_mode", &self.sync_mode)
            .field("segment_size", &self.segment_size)
            .field("recovery_mode", &self.recovery_mode)
            .field("first_seq", &self.first_seq)
            .finish()
    }
}

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;

impl WalOptions {
    /// Options for database `db_id` with the defaults: plaintext,
    /// [`SyncMode::Always`], 64 MiB segments, the default recovery mode,
    /// numbering from 1.
    pub fn new(db_id: DbId) -> Self {
        WalOptions {
            db_id,
            keyring: None,
            sync_mode: SyncMode::Always,
            segment_size: DEFAULT_SEGMENT_SIZE,
            recovery_mode: RecoveryMode::default(),
            first_seq: Seq(1),
        }
    }

    /// The same options, sealing with `keyring`.
    #[must_use]
    pub fn sealed(mut self, keyring: Arc<Keyring>) -> Self {
        self.keyring = Some(keyring);
        self
    }
}

/// A torn tail that recovery cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Segment number.
    pub segment: u64,
    /// Where the segment now ends.
    pub offset: u64,
    /// Bytes cut.
    pub bytes_cut: u64,
    /// Records that authenticated after the damage and were cut with it
    /// (written, never known durable).
    pub records_discarded: u64,
}

/// A region a lenient recovery mode skipped or cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Segment number.
    pub segment: u64,
    /// Start of the region.
    pub offset: u64,
    /// Its length in bytes (to the end of the segment when cut).
    pub len: u64,
    /// Why.
    pub what: &'static str,
}

/// What [`Wal::open`](crate::Wal::open) found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Batches delivered to the replay callback.
    pub records_replayed: u64,
    /// Sequence number of the last valid record found (replayed or older
    /// than `first_seq`).
    pub last_seq: Option<Seq>,
    /// Segments read.
    pub segments_read: u64,
    /// Sync markers read (proofs that the bytes before them were durable).
    pub sync_markers: u64,
    /// A torn tail that was cut, if any.
    pub torn_tail: Option<TornTail>,
    /// Damage skipped or cut by a lenient recovery mode.
    pub skipped: Vec<Skipped>,
    /// Segments removed: older than `first_seq`, torn while being created,
    /// or after a point-in-time cut.
    pub segments_removed: Vec<u64>,
    /// Of those, newest segments that held no record and whose header was
    /// there whole but failed authentication or its structural checks.
    /// Nothing in them was acknowledged, so removing them loses nothing;
    /// but a crash leaves a header whole or not at all (it is written and
    /// fsynced alone, within one sector), so this is damage, reported.
    pub damaged_headers: Vec<Skipped>,
    /// The segment this writer session writes to.
    pub write_segment: u64,
}

/// Counters of a [`Wal`](crate::Wal) since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Batches appended.
    pub appends: u64,
    /// Record bytes written (headers and tags included).
    pub bytes_written: u64,
    /// Writes issued (one per commit group).
    pub writes: u64,
    /// fsyncs of segment files.
    pub syncs: u64,
    /// Sync markers written: empty sealed records after an fsync that
    /// prove everything before them was durable, so damage there is
    /// corruption rather than a torn tail.
    pub sync_markers: u64,
    /// Sync markers whose write failed and was taken back (the records
    /// before them stayed durable and acknowledged).
    pub sync_marker_failures: u64,
    /// Writer sessions started after the one made at open.
    pub sessions: u64,
    /// Explicit rolls that started a new segment.
    pub rolls: u64,
    /// Segments created (including the one made at open).
    pub segments_created: u64,
    /// Segments removed by [`Wal::retire`](crate::Wal::retire).
    pub segments_retired: u64,
}
