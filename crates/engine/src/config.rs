//! [`Config`]: how a database is opened.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sealkv_crypto_envelope::{
    AlgorithmId, CryptoProvider, EncryptionAlgorithm, KdfParams, KeySource, MasterKey, Passphrase,
};
use sealkv_fileio::{StdVfs, Vfs};

pub use sealkv_core_wal::{RecoveryMode, SyncMode};

use crate::anchor::{AnchorPolicy, FreshnessAnchor};
use crate::db::Db;
use crate::error::Error;

/// The default page-cache bound of [`Config::cache_size`]: 256 MiB.
///
/// The cache fills only with pages that were read, so a small database uses
/// what it has; 256 MiB holds the whole tree of about 1.8 million records of
/// 16-byte keys and 100-byte values, where reads and scans no longer pay a
/// page read and an AEAD open per miss.
pub const DEFAULT_CACHE_SIZE: u64 = sealkv_core_store::DEFAULT_CACHE_BYTES as u64;

/// The default of [`Config::transaction_retries`].
pub const DEFAULT_TRANSACTION_RETRIES: u32 = 64;

/// Smallest and largest page sizes.
const PAGE_SIZES: std::ops::RangeInclusive<u32> = 4096..=65536;

/// How to open (or create) a database.
///
/// Build one with [`Config::new`] and the builder methods; every option has
/// a sane default. `Debug` never shows the key.
///
/// ```
/// use sealkv::{Config, SyncMode};
/// use sealkv::crypto::MasterKey;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::new("/tmp/my-db")
///     .encryption_key(MasterKey::from_hex(&"11".repeat(32))?)
///     .sync_mode(SyncMode::Always)
///     .cache_size(128 << 20);
/// assert!(!format!("{config:?}").contains("1111"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) path: PathBuf,
    pub(crate) encrypt_at_rest: bool,
    pub(crate) key: Option<KeySource>,
    /// `None`: AES-256-GCM for a new database, whatever an existing one uses.
    pub(crate) algorithm: Option<AlgorithmId>,
    pub(crate) sync_mode: SyncMode,
    pub(crate) memtable_size: u64,
    pub(crate) flush_commit_size: u64,
    pub(crate) wal_flush_interval: Option<Duration>,
    pub(crate) wal_segment_size: u64,
    pub(crate) page_size: u32,
    pub(crate) cache_size: u64,
    pub(crate) recovery_mode: RecoveryMode,
    pub(crate) read_only: bool,
    pub(crate) create_if_missing: bool,
    pub(crate) transaction_retries: u32,
    pub(crate) provider: Arc<CryptoProvider>,
    /// Set only by a backup finishing its copy: the live database's open
    /// registry, which opens the copy's (identical) registry without asking
    /// the key source again.
    pub(crate) registry_copy_of: Option<sealkv_crypto_envelope::registry::KeyRegistry>,
    /// Set only by a backup finishing its copy: the copy becomes a
    /// database of its own, so its open draws a new lineage id and commits
    /// it before anything else.
    pub(crate) new_lineage: bool,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) anchor: Option<Arc<dyn FreshnessAnchor>>,
    pub(crate) anchor_policy: AnchorPolicy,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match &self.key {
            None => "none",
            Some(KeySource::Key(_)) => "raw key <redacted>",
            Some(KeySource::Passphrase { .. }) => "passphrase <redacted>",
            Some(KeySource::Provider(_)) => "key provider",
            Some(KeySource::Wrapper(_)) => "key wrapper",
        };
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("encrypt_at_rest", &self.encrypt_at_rest)
            .field("encryption_key", &key)
            .field("encryption_algorithm", &self.algorithm)
            .field("sync_mode", &self.sync_mode)
            .field("memtable_size", &self.memtable_size)
            .field("flush_commit_size", &self.flush_commit_size)
            .field("wal_flush_interval", &self.wal_flush_interval)
            .field("page_size", &self.page_size)
            .field("cache_size", &self.cache_size)
            .field("recovery_mode", &self.recovery_mode)
            .field("read_only", &self.read_only)
            .field("transaction_retries", &self.transaction_retries)
            .field("freshness_anchor", &self.anchor)
            .field("anchor_policy", &self.anchor_policy)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for the database at `path`: plaintext, AES-256-GCM when
    /// encryption is turned on, `SyncMode::Always`, 64 MiB memtables,
    /// 4 KiB pages, a [`DEFAULT_CACHE_SIZE`] (256 MiB) page cache, created if
    /// missing.
    #[must_use]
    pub fn new(path: impl AsRef<Path>) -> Self {
        Config {
            path: path.as_ref().to_path_buf(),
            encrypt_at_rest: false,
            key: None,
            algorithm: None,
            sync_mode: SyncMode::Always,
            memtable_size: 64 << 20,
            flush_commit_size: 16 << 20,
            wal_flush_interval: None,
            wal_segment_size: 64 << 20,
            page_size: 4096,
            cache_size: DEFAULT_CACHE_SIZE,
            recovery_mode: RecoveryMode::default(),
            read_only: false,
            create_if_missing: true,
            transaction_retries: DEFAULT_TRANSACTION_RETRIES,
            provider: Arc::new(CryptoProvider::default()),
            registry_copy_of: None,
            new_lineage: false,
            vfs: Arc::new(StdVfs::new()),
            anchor: None,
            anchor_policy: AnchorPolicy::default(),
        }
    }

    /// How many times [`Db::transaction`](crate::Db::transaction) runs a
    /// closure again after a conflict before it answers
    /// [`Error::Conflict`] (default [`DEFAULT_TRANSACTION_RETRIES`]).
    #[must_use]
    pub fn transaction_retries(mut self, retries: u32) -> Self {
        self.transaction_retries = retries;
        self
    }

    /// Seal every byte written (default off). Needs a key.
    #[must_use]
    pub fn encrypt_at_rest(mut self, on: bool) -> Self {
        self.encrypt_at_rest = on;
        self
    }

    /// The master key, and turns `encrypt_at_rest` on. To hold field keys
    /// in a plaintext database, call `.encrypt_at_rest(false)` after this.
    #[must_use]
    pub fn encryption_key(mut self, key: MasterKey) -> Self {
        self.key = Some(KeySource::Key(key));
        self.encrypt_at_rest = true;
        self
    }

    /// A passphrase instead of a raw key (through Argon2id with the default
    /// cost for a new database; an existing one uses its stored cost), and
    /// turns `encrypt_at_rest` on.
    #[must_use]
    pub fn passphrase(mut self, passphrase: Passphrase) -> Self {
        self.key = Some(KeySource::passphrase(passphrase));
        self.encrypt_at_rest = true;
        self
    }

    /// Any [`KeySource`] (a raw key, a passphrase with a chosen cost, or a
    /// `KeyProvider` such as a KMS), and turns `encrypt_at_rest` on.
    #[must_use]
    pub fn key_source(mut self, source: KeySource) -> Self {
        self.key = Some(source);
        self.encrypt_at_rest = true;
        self
    }

    /// A key wrapper (an HSM or KMS key that never leaves it, see
    /// [`KeyWrapper`](crate::crypto::KeyWrapper)) instead of a master key,
    /// and turns `encrypt_at_rest` on.
    #[must_use]
    pub fn key_wrapper(self, wrapper: Arc<dyn crate::crypto::KeyWrapper>) -> Self {
        self.key_source(KeySource::Wrapper(wrapper))
    }

    /// A passphrase with an explicit Argon2id cost for a new database.
    #[must_use]
    pub fn passphrase_with_cost(self, passphrase: Passphrase, params: KdfParams) -> Self {
        self.key_source(KeySource::Passphrase { passphrase, params })
    }

    /// The cipher for a new database (default AES-256-GCM): a built-in
    /// [`EncryptionAlgorithm`], or the id of any algorithm the
    /// [`crypto_provider`](Config::crypto_provider) holds, such as a plugin
    /// registered under a private id
    /// ([`CryptoProvider::find_algorithm`] finds one by name). The database
    /// records the id; an id the provider lacks fails the creation with
    /// `UnknownAlgorithm`, and opening the database later needs a provider
    /// that holds it. Naming another algorithm than an existing database's is
    /// `AlgorithmMismatch`; not naming one opens whatever the database uses.
    #[must_use]
    pub fn encryption_algorithm(mut self, algorithm: impl Into<AlgorithmId>) -> Self {
        self.algorithm = Some(algorithm.into());
        self
    }

    /// The algorithm a new database gets.
    pub(crate) fn algorithm_for_new(&self) -> AlgorithmId {
        self.algorithm
            .unwrap_or(EncryptionAlgorithm::Aes256Gcm.id())
    }

    /// When writes are made durable (default `Always`).
    #[must_use]
    pub fn sync_mode(mut self, mode: SyncMode) -> Self {
        self.sync_mode = mode;
        self
    }

    /// The memtable size (bytes, default 64 MiB): when the active
    /// memtable holds this much it is frozen and flushed to the page file.
    /// Writers wait while frozen memtables hold more than twice this.
    #[must_use]
    pub fn memtable_size(mut self, bytes: u64) -> Self {
        self.memtable_size = bytes;
        self
    }

    /// The old name of [`Config::memtable_size`]: what it sets is the
    /// memtable's size, not the WAL's.
    #[deprecated(since = "0.1.0", note = "renamed to `memtable_size`")]
    #[must_use]
    pub fn wal_flush_size(self, bytes: u64) -> Self {
        self.memtable_size(bytes)
    }

    /// Most memtable bytes (as `memtable_size` counts them) one page-file
    /// commit of a flush takes (default 16 MiB): a larger frozen memtable
    /// is flushed in several commits, in key order, so the copy a commit
    /// holds stays this small. Readers see the frozen memtable until its
    /// last commit, and the WAL is retired only after it, so a crash
    /// between the commits loses nothing (the log is replayed over them).
    /// Each commit costs two fsyncs and rewrites the free list.
    #[must_use]
    pub fn flush_commit_size(mut self, bytes: u64) -> Self {
        self.flush_commit_size = bytes;
        self
    }

    /// Flush at least this often when there are writes (default: only by
    /// size, `flush()` and `close()`).
    #[must_use]
    pub fn wal_flush_interval(mut self, every: Option<Duration>) -> Self {
        self.wal_flush_interval = every;
        self
    }

    /// Size at which a WAL segment rolls over (default 64 MiB).
    #[must_use]
    pub fn wal_segment_size(mut self, bytes: u64) -> Self {
        self.wal_segment_size = bytes;
        self
    }

    /// Page size of a new database: a power of two from 4 KiB to 64 KiB.
    #[must_use]
    pub fn page_size(mut self, bytes: u32) -> Self {
        self.page_size = bytes;
        self
    }

    /// The most bytes of decrypted pages kept in memory (default
    /// [`DEFAULT_CACHE_SIZE`], 256 MiB). The cache holds what reads and
    /// flushes touched, up to this bound: a database smaller than it never
    /// fills it. Peak memory is this plus the memtables plus a constant
    /// (measured in `docs/PERFORMANCE.md` of sealkv's repository, "Memory").
    #[must_use]
    pub fn cache_size(mut self, bytes: u64) -> Self {
        self.cache_size = bytes;
        self
    }

    /// How WAL damage is treated at open (default: a torn tail is cut,
    /// anything else is `Corruption`).
    #[must_use]
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Open for reading only, with a shared lock that excludes writers.
    #[must_use]
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Create the database if the directory holds none (default on).
    #[must_use]
    pub fn create_if_missing(mut self, on: bool) -> Self {
        self.create_if_missing = on;
        self
    }

    /// The cryptography: ciphers, KDF, MAC, password hash and random source
    /// (default: RustCrypto and the operating system's generator). Every
    /// part of it passes its self-test before first use.
    #[must_use]
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// The file system (default: the real one). Tests use a simulated or
    /// fault-injecting one.
    #[must_use]
    pub fn vfs(mut self, vfs: Arc<dyn Vfs>) -> Self {
        self.vfs = vfs;
        self
    }

    /// A freshness anchor outside the directory (default: none): the
    /// engine records in it how far the database has come after each
    /// durable commit (per [`Config::anchor_policy`]) and checks it at
    /// open, so a whole-directory restore of an older copy is
    /// [`Error::Rollback`]. See [`crate::anchor`]; [`FileAnchor`] keeps it
    /// in a file on another path.
    ///
    /// [`FileAnchor`]: crate::anchor::FileAnchor
    #[must_use]
    pub fn freshness_anchor(mut self, anchor: Arc<dyn FreshnessAnchor>) -> Self {
        self.anchor = Some(anchor);
        self
    }

    /// When ordinary commits update the freshness anchor (default: every
    /// commit). Key operations and `close` always update it.
    #[must_use]
    pub fn anchor_policy(mut self, policy: AnchorPolicy) -> Self {
        self.anchor_policy = policy;
        self
    }

    /// Opens (or creates) the database this configuration describes:
    /// the same as [`Db::open_with_config`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = sealkv::Config::new(dir.path()).cache_size(8 << 20).open()?;
    /// db.put(b"k", b"v")?;
    /// assert_eq!(db.iter()?.count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(self) -> Result<Db, Error> {
        Db::open_with_config(self)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the options against each other.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.encrypt_at_rest && self.key.is_none() {
            return Err(Error::MissingKey);
        }
        if !self.page_size.is_power_of_two() || !PAGE_SIZES.contains(&self.page_size) {
            return Err(Error::InvalidConfig(format!(
                "page size {} is not a power of two from 4 KiB to 64 KiB",
                self.page_size
            )));
        }
        if self.memtable_size < 64 << 10 {
            return Err(Error::InvalidConfig(format!(
                "memtable_size {} is below the minimum of 64 KiB",
                self.memtable_size
            )));
        }
        if self.flush_commit_size < 4 << 10 {
            return Err(Error::InvalidConfig(format!(
                "flush_commit_size {} is below the minimum of 4 KiB",
                self.flush_commit_size
            )));
        }
        if self.wal_segment_size < 64 << 10 {
            return Err(Error::InvalidConfig(format!(
                "wal_segment_size {} is below the minimum of 64 KiB",
                self.wal_segment_size
            )));
        }
        if self.wal_flush_interval == Some(Duration::ZERO) {
            return Err(Error::InvalidConfig(
                "wal_flush_interval must be longer than zero".into(),
            ));
        }
        if self.read_only && self.create_if_missing && !self.path_exists()? {
            return Err(Error::InvalidConfig(
                "read_only cannot create a database: the directory holds none".into(),
            ));
        }
        Ok(())
    }

    fn path_exists(&self) -> Result<bool, Error> {
        self.vfs.exists(&self.path).map_err(|e| {
            Error::Io(sealkv_fileio::FileError::new(
                sealkv_fileio::FileOp::Open,
                &self.path,
                e,
            ))
        })
    }
}
