//! The replicated state machine: openraft's [`RaftStateMachine`] on a
//! sealkv database whose keyspaces are the application's.
//!
//! Each `apply` is one batch (or a few, if very large): the requests'
//! writes and, in the keyspace `raft.sm`, the last applied log id and the
//! last membership. A sealkv snapshot therefore always holds a state and
//! the log id it is the state *of*, which is what a raft snapshot is.
//!
//! Snapshots are sealed export archives of such a sealkv snapshot
//! (`sealkv-backup`'s export, each archive under a salt of its own). A
//! received snapshot is installed by importing its archive into a new
//! database directory beside the current one (`sm-<generation>`), checked
//! against its metadata, renamed into place and only then used: a crash at
//! any point leaves either the old state machine or the new one, whole.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StoredMembership,
};
use parking_lot::{Mutex, RwLock};
use sealkv::{Db, Durability, Keyspace, MAX_VALUE_LEN, VerifyReport, WriteBatch};
use sealkv_backup::ImportOptions;
use sealkv_backup::archive::{export_snapshot, import};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::codec::{decode, encode};
use crate::error::{IntoStorage, StoreError};
use crate::log_store::LogStore;
use crate::snapshot::{SnapshotFile, archive_salt, check_archive};
use crate::store::{NodeDir, StoreOptions};
use crate::types::{NodeId, RESERVED_PREFIX, Request, Response, SealRaft};

/// The keyspace of the state machine's own records.
pub const SM_KEYSPACE: &str = "raft.sm";

const APPLIED: &[u8] = b"applied";
/// The cluster id ([`StoreOptions::cluster_id`]), recorded by every node
/// so that every snapshot carries it.
pub(crate) const CLUSTER: &[u8] = b"cluster";
const MEMBERSHIP: &[u8] = b"membership";
/// The current snapshot's record, in the log database (which is never
/// replaced, unlike the state machine's): a [`SnapshotRecord`].
const CURRENT_SNAPSHOT: &[u8] = b"snapshot.v2";
/// Where a record without the archive's salt ([`LegacyRecord`]) is read
/// from; replaced by [`CURRENT_SNAPSHOT`] on the next change.
const LEGACY_SNAPSHOT: &[u8] = b"snapshot";

/// An apply is split into batches of about this many bytes.
const APPLY_BATCH_BYTES: usize = 16 << 20;

type Membership = StoredMembership<NodeId, BasicNode>;

/// One application record of a state machine: `(keyspace, key, value)`,
/// the default keyspace named `""`.
pub type Record = (String, Vec<u8>, Vec<u8>);
type Meta = SnapshotMeta<NodeId, BasicNode>;

/// Which archive file holds the current snapshot, and what it is.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotRecord {
    pub(crate) meta: Meta,
    /// The archive's number: `snapshots/snapshot-<file>.archive`.
    pub(crate) file: u64,
    /// The archive's salt (random per archive): which archive it is, so
    /// another one put in its place is not sent. `None` in a record
    /// written before salts were recorded.
    pub(crate) salt: Option<[u8; 32]>,
}

/// A snapshot record as first written, without the salt.
#[derive(Deserialize)]
struct LegacyRecord {
    meta: Meta,
    file: u64,
}

/// What [`Shared::record_current`] did.
enum Recorded {
    /// The current snapshot is newer: nothing was recorded.
    Superseded,
    /// The snapshot is current; the one it replaced (its archive kept).
    Replaced(Option<SnapshotRecord>),
}

/// The state machine database in use.
struct Current {
    db: Db,
    meta: Keyspace,
    generation: u64,
}

pub(crate) struct Shared {
    dir: NodeDir,
    options: StoreOptions,
    log: LogStore,
    current: RwLock<Current>,
    /// Held by `apply` and by an install while it replaces the database.
    apply_lock: Mutex<()>,
    /// Serializes changes of the current snapshot.
    snapshot_lock: Mutex<()>,
    /// Held (shared) by each snapshot build while it exports from a state
    /// machine database, and by `Reader::contents` while it iterates one;
    /// an install takes it exclusively before it closes and removes the
    /// database it replaced.
    exports: RwLock<()>,
    next_file: AtomicU64,
}

/// openraft's state machine on a sealkv database. Cheap to clone (clones
/// share it); a clone is also the snapshot builder.
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine")
            .field("dir", &self.shared.dir.root())
            .finish_non_exhaustive()
    }
}

/// Reads of a node's state machine for the application, valid across
/// snapshot installs (which replace the database underneath). For a
/// linearizable read, call `Raft::ensure_linearizable` on the leader
/// first, then read here.
#[derive(Clone)]
pub struct Reader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("dir", &self.shared.dir.root())
            .finish_non_exhaustive()
    }
}

fn read_record<T: serde::de::DeserializeOwned>(
    snap: &sealkv::Snapshot,
    meta: &Keyspace,
    key: &[u8],
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    match snap.get_in(meta, key)? {
        Some(bytes) => Ok(Some(decode(&bytes, what)?)),
        None => Ok(None),
    }
}

/// The applied log id and membership a state machine database records.
fn applied_in(db: &Db, meta: &Keyspace) -> Result<(Option<LogId<NodeId>>, Membership), StoreError> {
    let snap = db.snapshot()?;
    let applied = read_record(&snap, meta, APPLIED, "applied log id")?;
    let membership = read_record(&snap, meta, MEMBERSHIP, "membership")?.unwrap_or_default();
    Ok((applied, membership))
}

impl Shared {
    fn open_current(&self, generation: u64) -> Result<Current, StoreError> {
        let db = self
            .options
            .config_for(&self.dir.state_machine(generation))
            .open()?;
        self.options.refuse_clear_snapshots_of(&db)?;
        let meta = db.keyspace(SM_KEYSPACE)?;
        Ok(Current {
            db,
            meta,
            generation,
        })
    }

    fn record(&self) -> Result<Option<SnapshotRecord>, StoreError> {
        read_snapshot_record(&self.log)
    }

    /// Makes archive `file` (described by `meta`) the current snapshot,
    /// then removes the one it replaces; `false` if it is older than the
    /// current one, which stays current (and `file` is removed).
    fn set_current_snapshot(&self, meta: &Meta, file: u64) -> Result<bool, StoreError> {
        match self.record_current(meta, file)? {
            Recorded::Superseded => Ok(false),
            Recorded::Replaced(previous) => {
                self.retire(previous, file)?;
                Ok(true)
            }
        }
    }

    /// Records archive `file` (described by `meta`) as the current
    /// snapshot, durably, keeping the archive of the one it replaces (see
    /// [`Shared::retire`]); a snapshot older than the current one is not
    /// recorded and its file is removed.
    fn record_current(&self, meta: &Meta, file: u64) -> Result<Recorded, StoreError> {
        let _guard = self.snapshot_lock.lock();
        let previous = self.record()?;
        if let Some(prev) = &previous
            && prev.meta.last_log_id > meta.last_log_id
        {
            remove_file_if_present(&self.dir.archive(file))?;
            return Ok(Recorded::Superseded);
        }
        let salt = archive_salt(&self.dir.archive(file), self.options.snapshot_key_source())?;
        let record = SnapshotRecord {
            meta: meta.clone(),
            file,
            salt: Some(salt),
        };
        self.write_record(Some(&record))?;
        Ok(Recorded::Replaced(previous))
    }

    /// Writes (or, for `None`, removes) the current snapshot's record,
    /// synced.
    fn write_record(&self, record: Option<&SnapshotRecord>) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        match record {
            Some(record) => batch.put_in(
                self.log.meta(),
                CURRENT_SNAPSHOT,
                encode(record, "snapshot record")?,
            ),
            None => batch.delete_in(self.log.meta(), CURRENT_SNAPSHOT),
        };
        batch.delete_in(self.log.meta(), LEGACY_SNAPSHOT);
        self.log.db().write_with(&batch, Durability::Sync)?;
        Ok(())
    }

    /// Removes the archive of `previous`, replaced by archive `file`.
    fn retire(&self, previous: Option<SnapshotRecord>, file: u64) -> Result<(), StoreError> {
        if let Some(prev) = previous
            && prev.file != file
        {
            remove_file_if_present(&self.dir.archive(prev.file))?;
        }
        Ok(())
    }

    fn apply(
        &self,
        entries: impl IntoIterator<Item = Entry<SealRaft>>,
    ) -> Result<Vec<Response>, StoreError> {
        let _guard = self.apply_lock.lock();
        let current = self.current.read();
        let mut batch = WriteBatch::new();
        let mut responses = Vec::new();
        let mut last = None;
        for entry in entries {
            let log_id = entry.log_id;
            last = Some(log_id);
            let response = match entry.payload {
                EntryPayload::Blank => Response::Applied,
                EntryPayload::Normal(request) => stage(&current.db, &mut batch, request)?,
                EntryPayload::Membership(membership) => {
                    let stored = StoredMembership::new(Some(log_id), membership);
                    batch.put_in(&current.meta, MEMBERSHIP, encode(&stored, "membership")?);
                    Response::Applied
                }
            };
            responses.push(response);
            if batch.size_in_bytes() >= APPLY_BATCH_BYTES {
                batch.put_in(&current.meta, APPLIED, encode(&log_id, "applied log id")?);
                current.db.write_with(&batch, Durability::Buffered)?;
                batch.clear();
            }
        }
        if let Some(log_id) = last {
            batch.put_in(&current.meta, APPLIED, encode(&log_id, "applied log id")?);
            // Not synced: what a crash takes back is applied again from the
            // log, which keeps every entry a snapshot does not cover (and a
            // snapshot is built only from a flushed state).
            current.db.write_with(&batch, Durability::Buffered)?;
        }
        Ok(responses)
    }

    fn build(&self) -> Result<Snapshot<SealRaft>, StoreError> {
        // An install that replaces the database meanwhile keeps it open
        // until this export is done.
        let exporting = self.exports.read();
        let (db, snap, meta_ks) = {
            let current = self.current.read();
            // The snapshot first, then the flush: everything the snapshot
            // holds is then durable, so the log it lets openraft purge is
            // never needed again. (Flushing first would let an apply slip
            // in between, into the snapshot but not onto the disk.)
            let snap = current.db.snapshot()?;
            current.db.flush()?;
            (current.db.clone(), snap, current.meta.clone())
        };
        let applied: Option<LogId<NodeId>> =
            read_record(&snap, &meta_ks, APPLIED, "applied log id")?;
        let membership: Membership =
            read_record(&snap, &meta_ks, MEMBERSHIP, "membership")?.unwrap_or_default();
        let file = self.next_file.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.archive(file);
        export_snapshot(
            &snap,
            db.id(),
            &path,
            &self.options.export_options(),
            &mut |_| {},
        )?;
        drop((snap, db, meta_ks, exporting));
        let snapshot_id = match &applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, file),
            None => format!("0-0-{file}"),
        };
        let meta = Meta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id,
        };
        let std_file = std::fs::File::open(&path).map_err(StoreError::io(&path))?;
        let current = self.set_current_snapshot(&meta, file)?;
        if current {
            self.log.raise_purge_limit(meta.last_log_id)?;
        }
        if !current {
            // An install made a newer snapshot current meanwhile: that one
            // is the node's snapshot now.
            drop(std_file);
            return self.current_snapshot()?.ok_or(StoreError::Corrupt {
                what: "snapshot record (missing after an install)",
            });
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotFile::new(path, tokio::fs::File::from_std(std_file))),
        })
    }

    /// The current snapshot, for openraft to send. Its archive is checked
    /// first (read whole and authenticated, and its salt compared with the
    /// record's): a damaged archive, or another one put in its place, is
    /// not sent; a new snapshot is built from the state machine instead.
    fn current_snapshot(&self) -> Result<Option<Snapshot<SealRaft>>, StoreError> {
        let guard = self.snapshot_lock.lock();
        let Some(record) = self.record()? else {
            return Ok(None);
        };
        let path = self.dir.archive(record.file);
        let checked = check_archive(
            &path,
            self.options.snapshot_key_source(),
            self.options.cluster(),
        );
        let sound = match checked {
            Ok(salt) => record.salt.is_none_or(|recorded| recorded == salt),
            Err(e) => {
                tracing::warn!(error = %e, "the current snapshot's archive fails its check");
                false
            }
        };
        if !sound {
            tracing::warn!(path = %path.display(), "building a new snapshot in place of a bad archive");
            drop(guard);
            return self.build().map(Some);
        }
        let file = std::fs::File::open(&path).map_err(StoreError::io(&path))?;
        Ok(Some(Snapshot {
            meta: record.meta,
            snapshot: Box::new(SnapshotFile::new(path, tokio::fs::File::from_std(file))),
        }))
    }

    fn begin_receiving(&self) -> Result<SnapshotFile, StoreError> {
        let file = self.next_file.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.incoming(file);
        let std_file = private_file(&path)?;
        Ok(SnapshotFile::incoming(
            path,
            tokio::fs::File::from_std(std_file),
            self.options.snapshot_key_source().cloned(),
            self.options.cluster().to_vec(),
        ))
    }

    /// Installs archive `file` (complete and synced) as the state machine.
    ///
    /// The archive is recorded as the current snapshot (durably) before
    /// the import starts: if a crash interrupts the import, opening the
    /// node runs it again ([`StateMachine::finish_install`]). openraft asks
    /// for the log to be purged up to the snapshot as soon as it hands it
    /// over; the log keeps that purge pending until the import has
    /// succeeded (see [`LogStore`]), so a crash before the record or a
    /// failed import leaves the log that still brings the state machine up
    /// to date.
    fn install(&self, meta: &Meta, file: u64) -> Result<(), StoreError> {
        let Recorded::Replaced(previous) = self.record_current(meta, file)? else {
            // Older than the node's current snapshot: nothing to install.
            return Ok(());
        };
        match self.import_current(meta, file) {
            Ok(()) => {
                // Installed: the log may now be purged up to it.
                self.log.raise_purge_limit(meta.last_log_id)?;
                self.retire(previous, file)
            }
            Err(e) => {
                // A bad archive (damaged, under another key, lying about
                // what it holds) changed nothing: the previous snapshot is
                // current again.
                {
                    let _guard = self.snapshot_lock.lock();
                    self.write_record(previous.as_ref())?;
                }
                remove_file_if_present(&self.dir.archive(file))?;
                Err(e)
            }
        }
    }

    /// Imports archive `file`, the current snapshot, as the state machine.
    fn import_current(&self, meta: &Meta, file: u64) -> Result<(), StoreError> {
        let archive = self.dir.archive(file);
        let staging = self.dir.staging();
        remove_dir_if_present(&staging)?;
        let result = (|| {
            import(
                &archive,
                self.options.snapshot_key_source(),
                &staging,
                &|p: &Path| self.options.config_for(p),
                &ImportOptions::new(),
                &mut |_| {},
            )?;
            // What the archive holds must be what openraft was told it is.
            let db = self.options.config_for(&staging).open()?;
            let meta_ks = db.keyspace(SM_KEYSPACE)?;
            let (applied, membership) = applied_in(&db, &meta_ks)?;
            drop(meta_ks);
            db.close()?;
            if applied != meta.last_log_id || membership != meta.last_membership {
                return Err(StoreError::SnapshotMismatch);
            }
            Ok(())
        })();
        if let Err(e) = result {
            remove_dir_if_present(&staging)?;
            return Err(e);
        }
        let applying = self.apply_lock.lock();
        let generation = self.current.read().generation + 1;
        let dest = self.dir.state_machine(generation);
        std::fs::rename(&staging, &dest).map_err(StoreError::io(&dest))?;
        self.dir.sync()?;
        let next = self.open_current(generation)?;
        let old = std::mem::replace(&mut *self.current.write(), next);
        let old_dir = self.dir.state_machine(old.generation);
        drop(old.meta);
        // Builds still exporting from the old database finish first.
        let drained = self.exports.write();
        old.db.close()?;
        drop(drained);
        remove_dir_if_present(&old_dir)?;
        drop(applying);
        Ok(())
    }

    fn get(&self, keyspace: Option<&str>, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let current = self.current.read();
        match keyspace {
            None => Ok(current.db.get(key)?),
            Some(name) => {
                // Looking a keyspace up by name creates it: only look up
                // one that exists.
                if !current.db.keyspaces()?.iter().any(|n| n == name) {
                    return Ok(None);
                }
                Ok(current.db.keyspace(name)?.get(key)?)
            }
        }
    }

    fn contents(&self) -> Result<Vec<Record>, StoreError> {
        // An install meanwhile keeps the database open until this is done.
        let _reading = self.exports.read();
        let snap = self.current.read().db.snapshot()?;
        let mut out = Vec::new();
        for item in snap.iter() {
            let (k, v) = item?;
            out.push((String::new(), k, v));
        }
        for name in snap.keyspaces()? {
            if name.starts_with(RESERVED_PREFIX) {
                continue;
            }
            for item in snap.iter_named(&name)? {
                let (k, v) = item?;
                out.push((name.clone(), k, v));
            }
        }
        Ok(out)
    }
}

/// Adds `request`'s write to `batch`, or refuses it — the same way on every
/// node, since it depends only on the request and the database's limits.
fn stage(db: &Db, batch: &mut WriteBatch, request: Request) -> Result<Response, StoreError> {
    let (key, value) = match &request {
        Request::Put { key, value, .. } => (key, Some(value)),
        Request::Delete { key, .. } => (key, None),
    };
    // Every refusal is decided before the keyspace is looked up: looking
    // one up creates it, durably, even for a request then refused.
    if request
        .keyspace()
        .is_some_and(|n| n.starts_with(RESERVED_PREFIX))
    {
        return Ok(Response::Refused(format!(
            "keyspaces named {RESERVED_PREFIX}* belong to replication"
        )));
    }
    if key.len() > db.max_key_len() {
        return Ok(Response::Refused("key too large".into()));
    }
    if value.is_some_and(|v| v.len() > MAX_VALUE_LEN) {
        return Ok(Response::Refused("value too large".into()));
    }
    let keyspace = match request.keyspace() {
        None => None,
        Some(name) => match db.keyspace(name) {
            Ok(ks) => Some(ks),
            Err(sealkv::Error::InvalidKeyspaceName { .. }) => {
                return Ok(Response::Refused("invalid keyspace name".into()));
            }
            Err(e) => return Err(e.into()),
        },
    };
    match (&keyspace, value) {
        (Some(ks), Some(v)) => batch.put_in(ks, key, v),
        (Some(ks), None) => batch.delete_in(ks, key),
        (None, Some(v)) => batch.put(key, v),
        (None, None) => batch.delete(key),
    };
    Ok(Response::Applied)
}

fn remove_file_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::io(path)(e)),
        _ => Ok(()),
    }
}

pub(crate) fn remove_dir_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::io(path)(e)),
        _ => Ok(()),
    }
}

/// A new file only its owner can read.
fn private_file(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map_err(StoreError::io(path))
}

impl StateMachine {
    /// The state machine of the node in `dir`, using state machine database
    /// `generation`.
    pub(crate) fn open(
        dir: NodeDir,
        options: StoreOptions,
        log: LogStore,
        generation: u64,
        next_file: u64,
    ) -> Result<Self, StoreError> {
        let db = options.config_for(&dir.state_machine(generation)).open()?;
        options.refuse_clear_snapshots_of(&db)?;
        let meta = db.keyspace(SM_KEYSPACE)?;
        match meta.get(CLUSTER)? {
            Some(recorded) if recorded != options.cluster() => {
                return Err(StoreError::OtherCluster {
                    what: "state machine",
                });
            }
            Some(_) => {}
            None => {
                let mut batch = WriteBatch::new();
                batch.put_in(&meta, CLUSTER, options.cluster());
                db.write_with(&batch, Durability::Sync)?;
            }
        }
        Ok(StateMachine {
            shared: Arc::new(Shared {
                dir,
                options,
                log,
                current: RwLock::new(Current {
                    db,
                    meta,
                    generation,
                }),
                apply_lock: Mutex::new(()),
                snapshot_lock: Mutex::new(()),
                exports: RwLock::new(()),
                next_file: AtomicU64::new(next_file),
            }),
        })
    }

    /// Completes an install a crash interrupted: if the state machine is
    /// behind the current snapshot `record`, imports the snapshot's archive.
    pub(crate) fn finish_install(&self, record: &SnapshotRecord) -> Result<(), StoreError> {
        let applied = {
            let current = self.shared.current.read();
            applied_in(&current.db, &current.meta)?.0
        };
        if applied < record.meta.last_log_id {
            self.shared.import_current(&record.meta, record.file)?;
        }
        Ok(())
    }

    /// A reader of this state machine for the application.
    pub fn reader(&self) -> Reader {
        Reader {
            shared: self.shared.clone(),
        }
    }
}

pub(crate) fn read_snapshot_record(log: &LogStore) -> Result<Option<SnapshotRecord>, StoreError> {
    if let Some(bytes) = log.meta().get(CURRENT_SNAPSHOT)? {
        return Ok(Some(decode(&bytes, "snapshot record")?));
    }
    match log.meta().get(LEGACY_SNAPSHOT)? {
        Some(bytes) => {
            let legacy: LegacyRecord = decode(&bytes, "snapshot record")?;
            Ok(Some(SnapshotRecord {
                meta: legacy.meta,
                file: legacy.file,
                salt: None,
            }))
        }
        None => Ok(None),
    }
}

impl Reader {
    /// The value of `key` in keyspace `keyspace` (the default keyspace for
    /// `None`) as this node has applied it.
    pub fn get(
        &self,
        keyspace: Option<&str>,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared.get(keyspace, key.as_ref())
    }

    /// The last log id this node has applied.
    pub fn applied(&self) -> Result<Option<LogId<NodeId>>, StoreError> {
        let current = self.shared.current.read();
        Ok(applied_in(&current.db, &current.meta)?.0)
    }

    /// Every application record, as `(keyspace, key, value)` (the default
    /// keyspace as `""`), in keyspace then key order, from one snapshot.
    pub fn contents(&self) -> Result<Vec<Record>, StoreError> {
        self.shared.contents()
    }

    /// A full integrity check of the state machine database and of the log
    /// database ([`sealkv::Db::verify`]).
    pub fn verify(&self) -> Result<(VerifyReport, VerifyReport), StoreError> {
        let sm = self.shared.current.read().db.verify()?;
        let log = self.shared.log.db().verify()?;
        Ok((sm, log))
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        self.shared.dir.root()
    }
}

impl RaftSnapshotBuilder<SealRaft> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<SealRaft>, StorageError<NodeId>> {
        self.shared
            .build()
            .storage(ErrorSubject::Snapshot(None), ErrorVerb::Write)
    }
}

impl RaftStateMachine<SealRaft> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        let current = self.shared.current.read();
        applied_in(&current.db, &current.meta).storage(ErrorSubject::StateMachine, ErrorVerb::Read)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<SealRaft>> + Send,
        I::IntoIter: Send,
    {
        self.shared
            .apply(entries)
            .storage(ErrorSubject::StateMachine, ErrorVerb::Write)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<SnapshotFile>, StorageError<NodeId>> {
        self.shared
            .begin_receiving()
            .map(Box::new)
            .storage(ErrorSubject::Snapshot(None), ErrorVerb::Write)
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError<NodeId>> {
        let subject = || ErrorSubject::Snapshot(Some(meta.signature()));
        let installed = match self.receive(*snapshot).await {
            Ok(file) => self.shared.install(meta, file),
            Err(e) => Err(e),
        };
        if installed.is_err() {
            // An append waiting for this install's purge fails rather than
            // waiting for ever (this worker raises the limit itself, without
            // going through openraft's core, so nothing else would wake it).
            self.shared.log.install_failed();
        }
        installed.storage(subject(), ErrorVerb::Write)
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<SealRaft>>, StorageError<NodeId>> {
        self.shared
            .current_snapshot()
            .storage(ErrorSubject::Snapshot(None), ErrorVerb::Read)
    }
}

impl StateMachine {
    /// Makes the received data a complete, synced archive file of this
    /// node's and returns its number: the file it was written into if that
    /// is one of ours, else a copy.
    async fn receive(&self, mut data: SnapshotFile) -> Result<u64, StoreError> {
        let source = data.path().to_path_buf();
        let io = |e| StoreError::io(source.clone())(e);
        data.file_mut().flush().await.map_err(io)?;
        if !data.verified() {
            // Not received through openraft's transfer (which checks it
            // before the install): checked here, where a failure stops the
            // node.
            check_archive(
                &source,
                self.shared.options.snapshot_key_source(),
                self.shared.options.cluster(),
            )?;
        }
        let file = self.shared.next_file.fetch_add(1, Ordering::Relaxed);
        let dest = self.shared.dir.archive(file);
        let ours = self.shared.dir.is_incoming(&source);
        if ours {
            data.file_mut().sync_all().await.map_err(io)?;
            data.keep();
            drop(data);
            std::fs::rename(&source, &dest).map_err(StoreError::io(&dest))?;
        } else {
            let part = self.shared.dir.incoming(file);
            let mut out = tokio::fs::File::from_std(private_file(&part)?);
            let part_io = |e| StoreError::io(part.clone())(e);
            data.file_mut().seek(SeekFrom::Start(0)).await.map_err(io)?;
            tokio::io::copy(data.file_mut(), &mut out)
                .await
                .map_err(part_io)?;
            out.sync_all().await.map_err(part_io)?;
            drop(out);
            std::fs::rename(&part, &dest).map_err(StoreError::io(&dest))?;
        }
        self.shared.dir.sync_snapshots()?;
        Ok(file)
    }
}

/// The archive file number in a name `snapshot-<n>.archive` or
/// `incoming-<n>.part`.
pub(crate) fn file_number(name: &str) -> Option<u64> {
    let stem = name
        .strip_prefix("snapshot-")
        .and_then(|s| s.strip_suffix(".archive"))
        .or_else(|| {
            name.strip_prefix("incoming-")
                .and_then(|s| s.strip_suffix(".part"))
        })?;
    stem.parse().ok()
}

/// The archive paths a node keeps.
pub(crate) fn archive_name(file: u64) -> PathBuf {
    PathBuf::from(format!("snapshot-{file:020}.archive"))
}

/// The path a snapshot arrives in.
pub(crate) fn incoming_name(file: u64) -> PathBuf {
    PathBuf::from(format!("incoming-{file:020}.part"))
}
