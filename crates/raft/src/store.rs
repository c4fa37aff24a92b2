//! A node's directory and how to open its storage.
//!
//! ```text
//! <dir>/log/                      the log database (raft.log, raft.meta)
//! <dir>/sm-<generation>/          the state machine database in use
//! <dir>/snapshots/snapshot-<n>.archive   the current snapshot (sealed)
//! ```
//!
//! Every file under `<dir>` is a sealkv database file or a sealkv archive:
//! with an encrypted configuration and a snapshot key, all of it is sealed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::crypto::KeySource;
use sealkv::{Config, Db};
use sealkv_backup::ExportOptions;

use crate::error::StoreError;
use crate::log_store::LogStore;
use crate::state_machine::{
    StateMachine, archive_name, file_number, incoming_name, read_snapshot_record,
    remove_dir_if_present,
};

type ConfigFn = dyn Fn(&Path) -> Config + Send + Sync;

/// How to open a node's storage: its directory, the [`Config`] of its
/// databases, and the key its snapshots are sealed under.
#[derive(Clone)]
pub struct StoreOptions {
    dir: PathBuf,
    config: Arc<ConfigFn>,
    snapshot_key: Option<KeySource>,
    cluster_id: Vec<u8>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("dir", &self.dir)
            .field("sealed_snapshots", &self.snapshot_key.is_some())
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// A node's storage in `dir`; `config` makes the [`Config`] of each of
    /// its databases from the directory it is given (the log database, the
    /// state machine databases, the ones snapshots are imported into), so
    /// it carries the node's key, cipher and tuning.
    ///
    /// The node's own files (its directories, the snapshot archives, the
    /// renames of an install) are on the operating system's file system
    /// (`std::fs`): a [`Config::vfs`] reaches the databases only, so a
    /// node does not run on a virtual file system.
    ///
    /// Snapshots are unsealed archives until [`StoreOptions::snapshot_key`]
    /// names a key; a node any of whose databases is encrypted refuses to
    /// open without one.
    pub fn new(
        dir: impl Into<PathBuf>,
        config: impl Fn(&Path) -> Config + Send + Sync + 'static,
    ) -> Self {
        StoreOptions {
            dir: dir.into(),
            config: Arc::new(config),
            snapshot_key: None,
            cluster_id: Vec::new(),
        }
    }

    /// The key snapshots are sealed under (each archive under a salt of its
    /// own). Snapshots travel between nodes, so every node of a cluster
    /// needs the same snapshot key; each keeps its own master key for its
    /// databases.
    #[must_use]
    pub fn snapshot_key(mut self, key: KeySource) -> Self {
        self.snapshot_key = Some(key);
        self
    }

    /// The id of the cluster the node belongs to (default: empty). The
    /// state machine records it, so every snapshot carries it, and a node
    /// refuses a snapshot of another cluster even when it opens under the
    /// same snapshot key; a node's directory opened with another id is
    /// refused ([`StoreError::OtherCluster`]). Give each cluster that shares
    /// a snapshot key with another an id of its own. It is not secret.
    #[must_use]
    pub fn cluster_id(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.cluster_id = id.into();
        self
    }

    pub(crate) fn cluster(&self) -> &[u8] {
        &self.cluster_id
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn config_for(&self, dir: &Path) -> Config {
        (self.config)(dir)
    }

    pub(crate) fn snapshot_key_source(&self) -> Option<&KeySource> {
        self.snapshot_key.as_ref()
    }

    /// Refuses an encrypted database of a node without a snapshot key:
    /// its snapshots would be written in clear. Every database the node
    /// opens is checked (the configuration may differ by path).
    pub(crate) fn refuse_clear_snapshots_of(&self, db: &Db) -> Result<(), StoreError> {
        if db.stats()?.encryption.encrypt_at_rest && self.snapshot_key.is_none() {
            return Err(StoreError::InvalidOptions(
                "an encrypted node needs a snapshot key: its snapshots would be written in clear"
                    .into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn export_options(&self) -> ExportOptions {
        match &self.snapshot_key {
            Some(key) => ExportOptions::sealed(key.clone()),
            None => ExportOptions::plaintext_unencrypted(),
        }
    }
}

/// The paths of a node's directory.
#[derive(Debug, Clone)]
pub(crate) struct NodeDir {
    root: PathBuf,
}

impl NodeDir {
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn log(&self) -> PathBuf {
        self.root.join("log")
    }

    fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub(crate) fn state_machine(&self, generation: u64) -> PathBuf {
        self.root.join(format!("sm-{generation}"))
    }

    /// Where a snapshot is imported before it is checked and renamed.
    pub(crate) fn staging(&self) -> PathBuf {
        self.root.join("sm-incoming")
    }

    pub(crate) fn archive(&self, file: u64) -> PathBuf {
        self.snapshots().join(archive_name(file))
    }

    pub(crate) fn incoming(&self, file: u64) -> PathBuf {
        self.snapshots().join(incoming_name(file))
    }

    pub(crate) fn is_incoming(&self, path: &Path) -> bool {
        path.parent() == Some(self.snapshots().as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("incoming-") && file_number(n).is_some())
    }

    /// Fsyncs the node directory (after a rename in it).
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        sync_dir(&self.root)
    }

    pub(crate) fn sync_snapshots(&self) -> Result<(), StoreError> {
        sync_dir(&self.snapshots())
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(StoreError::io(dir))
}

/// Opens (or creates) the storage of the node in `options.dir()`: the log
/// store and the state machine openraft runs on.
///
/// What a crash left is cleaned up first: a state machine database older
/// than the newest complete one (an install that did not finish removing
/// it), a half-imported snapshot, archives that are not the current
/// snapshot's (an export or a transfer that did not finish); and an install
/// a crash interrupted is finished (the snapshot's archive imported again).
/// A log purged past what the state machine holds, with no snapshot to
/// cover the gap, is refused ([`StoreError::PurgedPastState`]).
pub fn open(options: StoreOptions) -> Result<(LogStore, StateMachine), StoreError> {
    let dir = NodeDir {
        root: options.dir.clone(),
    };
    create_private_dir(dir.root())?;
    create_private_dir(&dir.snapshots())?;
    let log_db = options.config_for(&dir.log()).open()?;
    options.refuse_clear_snapshots_of(&log_db)?;
    let log = LogStore::new(log_db)?;
    let record = read_snapshot_record(&log)?;

    // The newest complete state machine database is the current one.
    let mut generations = Vec::new();
    for entry in std::fs::read_dir(dir.root()).map_err(StoreError::io(dir.root()))? {
        let entry = entry.map_err(StoreError::io(dir.root()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(g) = name.strip_prefix("sm-").and_then(|g| g.parse::<u64>().ok()) {
            generations.push(g);
        }
    }
    generations.sort_unstable();
    let generation = generations.last().copied().unwrap_or(1);
    remove_dir_if_present(&dir.staging())?;
    for old in generations.iter().filter(|&&g| g != generation) {
        remove_dir_if_present(&dir.state_machine(*old))?;
    }

    // Only the current snapshot's archive stays.
    let mut highest = record.as_ref().map_or(0, |r| r.file);
    let snapshots = dir.snapshots();
    for entry in std::fs::read_dir(&snapshots).map_err(StoreError::io(&snapshots))? {
        let entry = entry.map_err(StoreError::io(&snapshots))?;
        let path = entry.path();
        let name = entry.file_name();
        let number = name.to_str().and_then(file_number);
        if let Some(n) = number {
            highest = highest.max(n);
        }
        let keep = record.as_ref().is_some_and(|r| path == dir.archive(r.file));
        if !keep {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path)(e)),
            }
        }
    }
    if let Some(r) = &record
        && !dir.archive(r.file).exists()
    {
        return Err(StoreError::Corrupt {
            what: "snapshot record (its archive is missing)",
        });
    }
    let next_file = highest.checked_add(1).ok_or(StoreError::Corrupt {
        what: "snapshot file number",
    })?;
    let sm = StateMachine::open(dir, options, log.clone(), generation, next_file)?;
    if let Some(r) = &record {
        sm.finish_install(r)?;
        log.raise_purge_limit(r.meta.last_log_id)?;
    }
    // The log must reach back to what the state machine holds: entries
    // purged past it can come from nowhere (openraft would fail on the
    // first read of them).
    let purged = log.durable_purged()?;
    let applied = sm.reader().applied()?;
    if purged > applied {
        return Err(StoreError::PurgedPastState {
            purged: purged.map_or(0, |id| id.index),
            applied: applied.map(|id| id.index),
        });
    }
    // What the state machine holds on disk covers the log up to its
    // applied id: openraft purges up to it at start when the log ends
    // before it, and that purge may reach the disk.
    log.raise_purge_limit(applied)?;
    Ok((log, sm))
}
