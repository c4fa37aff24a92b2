//! Opening and creating a database: lock, keys, page file, WAL replay, and
//! the checks that tie them together: the registry against the meta page,
//! the directory against its freshness anchor, the log against the page
//! file. They must belong to one database and continue one another, or the
//! open is refused rather than serving an older state.
//!
//! Creation writes the key registry first (generation 1), then the page
//! file, then the WAL directory; then the registry is advanced to
//! generation 2 and recorded in a meta page, which marks the creation
//! complete. A directory with a registry at generation 1 but no page file
//! and no WAL segment is an interrupted creation: the registry is set aside
//! as `KEYS.interrupted` and the creation starts over. A registry past
//! generation 1 without a page file is a lost page file: refused, as is one
//! the key given cannot read, and a missing page file beside WAL segments.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use parking_lot::{Mutex, RwLock};
use sealkv_core_store::{OpenReport, Store};
use sealkv_crypto_envelope::DbId;
use sealkv_fileio::{FileError, FileOp, LockKind, Vfs, VfsLock};

use crate::anchor::{AnchorKeys, AnchorState};
use crate::config::Config;
use crate::db::{Db, Inner, Memtables};
use crate::error::Error;
use crate::flush::{self, FlushSignal, FlushState};
use crate::freshness::Freshness;
use crate::keys::KeyState;
use crate::keyspace::catalog::Catalog;
use crate::layout::{DATA_FILE, KEYS_FILE, LOCK_FILE, WAL_DIR};
use crate::memtable::Memtable;
use crate::meta::EngineMeta;
use crate::poison::Poison;
use crate::publish::Publisher;
use crate::stats::Counters;
use crate::txn::conflict::ConflictWindow;

/// Bytes of recent write sets kept for transactions to check against: a
/// transaction still open after this much has been written since its start
/// fails with a conflict.
const CONFLICT_WINDOW_BYTES: usize = 64 << 20;
use crate::verify::{Finding, OpenFindings};

fn io(op: FileOp, path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(FileError::new(op, path, e))
}

fn exists(vfs: &dyn Vfs, path: &Path) -> Result<bool, Error> {
    vfs.exists(path).map_err(io(FileOp::Open, path))
}

fn take_lock(config: &Config) -> Result<Box<dyn VfsLock>, Error> {
    let path = config.path.join(LOCK_FILE);
    let kind = if config.read_only {
        LockKind::Shared
    } else {
        LockKind::Exclusive
    };
    config.vfs.lock(&path, kind).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                path: config.path.clone(),
            }
        } else {
            Error::Io(FileError::new(FileOp::Lock, &path, e))
        }
    })
}

/// A registry without a page file and without WAL segments is what an
/// interrupted creation leaves (the registry is made durable first). It
/// sealed nothing yet, but it is not deleted — it could be the only copy of
/// the keys of a page file moved away — only renamed to
/// `KEYS.interrupted[.N]`, durably, so the creation can start over.
fn set_aside_interrupted_registry(vfs: &dyn Vfs, dir: &Path, keys: &Path) -> Result<(), Error> {
    set_aside(vfs, dir, keys, KEYS_FILE)?;
    tracing::warn!(
        path = %keys.display(),
        "a key registry without a page file (an interrupted creation) was set aside"
    );
    Ok(())
}

/// Whether the page file holds nothing at all: empty, or zeros no longer
/// than a new page file's first pages. That is what a creation stopped
/// before its first write reached the file leaves (the process killed
/// between creating the file and writing it, or its write lost): no page
/// file with a commit in it is ever shorter, or all zeros.
fn page_file_holds_nothing(vfs: &dyn Vfs, data: &Path) -> Result<bool, Error> {
    let file = vfs
        .open(data, sealkv_fileio::OpenMode::Read)
        .map_err(io(FileOp::Open, data))?;
    let len = file.len().map_err(io(FileOp::Read, data))?;
    let first_pages = 3 * u64::from(sealkv_core_store::MAX_PAGE_SIZE);
    if len > first_pages {
        return Ok(false);
    }
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_exact_at(&mut bytes, 0)
        .map_err(io(FileOp::Read, data))?;
    Ok(bytes.iter().all(|&b| b == 0))
}

/// Renames `path` (the file `name` in `dir`) to `name.interrupted[.N]`,
/// durably: what an interrupted creation left is kept, never deleted.
fn set_aside(vfs: &dyn Vfs, dir: &Path, path: &Path, name: &str) -> Result<(), Error> {
    let mut n = 0u32;
    let target = loop {
        let name = if n == 0 {
            format!("{name}.interrupted")
        } else {
            format!("{name}.interrupted.{n}")
        };
        let candidate = dir.join(name);
        if !exists(vfs, &candidate)? {
            break candidate;
        }
        n = n.saturating_add(1);
        if n == u32::MAX {
            return Err(Error::InvalidConfig(
                "too many KEYS.interrupted files in the database directory".into(),
            ));
        }
    };
    vfs.rename(path, &target)
        .map_err(io(FileOp::Rename, path))?;
    vfs.sync_dir(dir).map_err(io(FileOp::SyncDir, dir))
}

/// Whether `wal/` holds any file.
fn wal_has_segments(vfs: &dyn Vfs, dir: &Path) -> Result<bool, Error> {
    let wal = dir.join(WAL_DIR);
    if !exists(vfs, &wal)? {
        return Ok(false);
    }
    Ok(!vfs
        .read_dir(&wal)
        .map_err(io(FileOp::Dir, &wal))?
        .is_empty())
}

/// A directory with a key registry and no page file: an interrupted
/// creation (the registry is written first, at generation 1, and advanced
/// to 2 once the database is complete), or a database whose page file was
/// lost. `Ok` for an interrupted creation (which may be set aside and
/// started over); a lost page file is refused, naming it.
fn registry_without_page_file(config: &Config, data: &Path, keys: &Path) -> Result<(), Error> {
    let lost = |why: String| Error::Corruption {
        file: data.to_path_buf(),
        what: format!(
            "the page file is missing, but the key registry (KEYS) {why}. Restore data.sealkv (and wal/) from a backup, or move KEYS away to create a new database here"
        ),
    };
    if config.key.is_none() {
        return Err(lost(
            "is there (no key was given to read it, so it is not set aside)".into(),
        ));
    }
    let registry = KeyState::open(config, keys)?;
    match registry.generation() {
        1 => Ok(()),
        g => Err(lost(format!(
            "records a completed creation (generation {g})"
        ))),
    }
}

pub(crate) fn open(config: Config) -> Result<Db, Error> {
    config.validate()?;
    let vfs = config.vfs.clone();
    let dir = config.path.clone();
    let data = dir.join(DATA_FILE);
    let keys_path = dir.join(KEYS_FILE);
    if !exists(&*vfs, &data)? {
        if exists(&*vfs, &keys_path)? {
            registry_without_page_file(&config, &data, &keys_path)?;
        }
        if config.read_only || !config.create_if_missing {
            return Err(Error::NotFound { path: dir });
        }
    }
    vfs.create_dir_all(&dir).map_err(io(FileOp::Dir, &dir))?;
    let lock = take_lock(&config)?;
    let freshness = Freshness::new(&config);

    let mut create = !exists(&*vfs, &data)?;
    // A page file that holds nothing beside no WAL segment: a creation
    // stopped before its first pages reached the file. It is set aside and
    // the creation starts over (a registry beside it is checked first: a
    // completed creation's registry is a lost page file, refused).
    if !create
        && !config.read_only
        && config.create_if_missing
        && !wal_has_segments(&*vfs, &dir)?
        && page_file_holds_nothing(&*vfs, &data)?
    {
        if exists(&*vfs, &keys_path)? {
            registry_without_page_file(&config, &data, &keys_path)?;
        }
        set_aside(&*vfs, &dir, &data, DATA_FILE)?;
        tracing::warn!(
            path = %data.display(),
            "a page file that holds nothing (an interrupted creation) was set aside"
        );
        create = true;
    }
    let mut open_findings = OpenFindings::default();
    // The data key of the meta page a fell-back open stepped back to: the
    // recording of a newer registry, deferred past the WAL replay, seals
    // under it.
    let mut deferred_meta_key = None;
    let OpenedFiles {
        keys,
        sealed,
        store,
        ..
    } = if create {
        if wal_has_segments(&*vfs, &dir)? {
            return Err(Error::Corruption {
                file: data,
                what: "the page file is missing but the WAL holds segments".into(),
            });
        }
        if let Some(f) = &freshness {
            f.check_new(&dir)?;
        }
        if exists(&*vfs, &keys_path)? {
            // Checked above, before the lock; again under it.
            registry_without_page_file(&config, &data, &keys_path)?;
            set_aside_interrupted_registry(&*vfs, &dir, &keys_path)?;
        }
        let db_id = DbId::random_from(&config.provider)?;
        // With a key, a registry even for a plaintext database: it holds
        // the field keys.
        let keys = match &config.key {
            Some(_) => Some(KeyState::create(&config, &keys_path, db_id)?),
            None => None,
        };
        let sealed = config.encrypt_at_rest;
        let ring = keys
            .as_ref()
            .filter(|_| sealed)
            .map(|k| k.keyring().clone());
        // The page file records the engine's fields from its first meta
        // page on (their version says its keys carry keyspace prefixes).
        let first_meta = EngineMeta {
            registry_generation: keys.as_ref().map_or(0, KeyState::generation),
            registry_hash: keys.as_ref().map_or([0; 32], KeyState::fingerprint),
            lineage: Some(crate::meta::new_lineage(&config.provider)?),
            ..EngineMeta::default()
        };
        let store = crate::storeglue::create(&config, &data, db_id, ring, first_meta.encode())?;
        open_findings.txn = store.stats().txn;
        OpenedFiles {
            registry_created: keys.is_some(),
            keys,
            sealed,
            store,
            report: None,
        }
    } else {
        let existing = open_existing(&config, &data, &keys_path, freshness.as_ref())?;
        check_registry(&dir, &existing)?;
        let report = existing.report.as_ref();
        if let (Some(f), Some(report)) = (&freshness, report) {
            let present = AnchorState {
                db_id: existing.store.db_id(),
                commit: report.newest_txn,
                registry_generation: existing.keys.as_ref().map_or(0, KeyState::generation),
                registry_hash: existing
                    .keys
                    .as_ref()
                    .map_or([0; 32], KeyState::fingerprint),
                meta_tag: report.newest_meta_tag,
                lineage: crate::keycommit::lineage_of(&report.newest_app_meta, &data)?,
            };
            // What the open serves, when it is not the newest meta page.
            let served = match report.fell_back {
                Some(_) => {
                    let last = existing.store.last_commit();
                    Some(AnchorState {
                        commit: last.txn,
                        meta_tag: last.meta_tag,
                        lineage: crate::keycommit::lineage_of(&last.app_meta, &data)?,
                        ..present
                    })
                }
                None => None,
            };
            // A registry made by this open (a plaintext database opened
            // with a key for the first time) did not authenticate the
            // anchor before.
            let keys = match &existing.keys {
                Some(k) if !existing.registry_created => AnchorKeys::new(vec![k.anchor_key()]),
                _ => AnchorKeys::none(),
            };
            f.check(&dir, &present, served.as_ref(), &keys)?;
        }
        if let Some(report) = report {
            store_findings(&data, report, &mut open_findings);
        }
        // The transaction the open found, before the commit below: a
        // commit since rewrote the other meta slot, so `verify` reports
        // what the open saw in it.
        open_findings.txn = existing.store.stats().txn;
        if let (false, Some(k), Some(report)) = (config.read_only, &existing.keys, report) {
            if report.fell_back.is_some() {
                // The open stepped back to the older meta slot: nothing is
                // committed over the file before the WAL replay has shown
                // that the log continues that older state. The recording
                // commit waits for the end of the open.
                deferred_meta_key = report.meta_key;
            } else {
                crate::keycommit::record_newer_registry_at_open(
                    &existing.store,
                    k,
                    report.meta_key,
                    &dir,
                )?;
            }
        }
        existing
    };
    let meta = EngineMeta::decode(store.read().app_meta(), &data)?;

    let active = Arc::new(Memtable::sized_for(config.memtable_size));
    // The WAL replay checks that the log continues the page file exactly,
    // so a fallback to the older meta that would skip acknowledged writes
    // is refused there.
    let replay = crate::walglue::open(
        &config,
        &dir,
        store.db_id(),
        keys.as_ref().filter(|_| sealed),
        &meta,
        &active,
    )?;
    for d in &replay.damaged_headers {
        tracing::warn!(
            segment = d.segment,
            what = d.what,
            "a WAL segment holding no record had a damaged header; it was removed"
        );
        open_findings
            .stepped_around
            .push(crate::verify::damaged_header_finding(&dir, d));
    }

    tracing::debug!(
        path = %dir.display(),
        created = create,
        read_only = config.read_only,
        encrypted = sealed,
        algorithm = %keys
            .as_ref()
            .filter(|_| sealed)
            .map_or_else(|| "none".to_string(), |k| k.algorithm().to_string()),
        active_key = %keys
            .as_ref()
            .filter(|_| sealed)
            .map_or_else(|| "none".to_string(), |k| k.active_data_key().to_string()),
        registry_generation = keys.as_ref().map_or(0, KeyState::generation),
        applied_seq = meta.applied_seq,
        replayed_batches = replay.last_seq.saturating_sub(meta.applied_seq),
        torn_tails = replay.torn_tails,
        "database opened"
    );
    let signal = Arc::new(FlushSignal::default());
    let inner = Arc::new(Inner {
        config: config.clone(),
        dir: dir.clone(),
        keys,
        sealed,
        wal: replay.wal,
        store,
        mems: RwLock::new(Memtables {
            active,
            frozen: Default::default(),
        }),
        gate: RwLock::new(()),
        publisher: Publisher::new(replay.last_seq),
        flush_state: Mutex::new(FlushState { meta }),
        signal: signal.clone(),
        flusher: Mutex::new(None),
        poisoned: Poison::default(),
        closed: AtomicBool::new(false),
        opened_by: sealkv_fileio::OpenedBy::current(),
        counters: Counters::default(),
        torn_tails: AtomicU64::new(replay.torn_tails),
        catalog: Catalog::default(),
        conflicts: Mutex::new(ConflictWindow::new(replay.last_seq, CONFLICT_WINDOW_BYTES)),
        instance: crate::db::next_instance(),
        freshness,
        open_findings,
        _lock: lock,
    });
    if inner.wal.is_some() {
        // Before anything else can commit: a registry newer than the page
        // file records is recorded now, a new database marked complete,
        // the freshness anchor brought up to date.
        inner.settle_at_open(deferred_meta_key)?;
        let handle = flush::spawn(Arc::downgrade(&inner), signal, config.wal_flush_interval)
            .map_err(io(FileOp::Open, &dir))?;
        *inner.flusher.lock() = Some(handle);
    }
    Catalog::load(&inner)?;
    if !config.read_only {
        Catalog::purge_unfinished(&inner)?;
    }
    Ok(Db { inner })
}

/// The registry must be the one the page file was written with, or newer
/// (a key operation whose recording commit a crash interrupted; the open
/// records it). Older, or the same generation with another hash (the
/// registry of another copy of this database), is a rollback: the meta
/// page is the authenticated evidence.
fn check_registry(dir: &Path, existing: &OpenedFiles) -> Result<(), Error> {
    let Some(k) = &existing.keys else {
        return Ok(());
    };
    let meta = EngineMeta::decode(existing.store.read().app_meta(), &dir.join(DATA_FILE))?;
    let (generation, fingerprint) = (k.generation(), k.fingerprint());
    let older = meta.registry_generation > generation;
    let other = meta.registry_generation == generation
        && meta.registry_hash != [0; 32]
        && meta.registry_hash != fingerprint;
    if older || other {
        return Err(Error::Rollback {
            file: dir.join(KEYS_FILE),
            what: format!(
                "the key registry (generation {generation}) is not the one the page file was written with (generation {}): an older registry, or one from another copy of this database, was put back",
                meta.registry_generation
            ),
        });
    }
    Ok(())
}

/// What the page file's open stepped around, as findings for `verify`: a
/// fall-back to the older meta slot, or a meta slot that did not
/// authenticate (a commit since may have rewritten it by the time `verify`
/// runs, so the open's view is kept).
fn store_findings(data: &Path, report: &OpenReport, out: &mut OpenFindings) {
    if let Some(why) = &report.fell_back {
        tracing::warn!(%why, "the newest meta page was unusable; opened the older one");
        out.stepped_around.push(Finding {
            file: data.to_path_buf(),
            what: format!(
                "the open fell back to the older meta slot (page {}, transaction {}): the newest, transaction {}, was unusable: {why}. The WAL replay continued the older state, so nothing acknowledged was lost",
                report.meta_page, report.txn, report.newest_txn
            ),
        });
    } else if let Some(why) = &report.other_slot {
        out.other_slot = Some(Finding {
            file: data.to_path_buf(),
            what: format!(
                "at open, the other meta slot did not authenticate ({why}); the open used transaction {} (page {}). A power cut while a commit wrote its meta page leaves this, and then nothing acknowledged was lost (the WAL replay continued the state); otherwise the slot was damaged",
                report.txn, report.meta_page
            ),
        });
    }
}

/// The key registry and the page file, opened or created.
struct OpenedFiles {
    /// The key registry, if the database has one or was given a key.
    keys: Option<KeyState>,
    /// Whether the registry was made by this open (a new database, or a
    /// plaintext database opened with a key for the first time).
    registry_created: bool,
    /// Whether the WAL and the page file are sealed.
    sealed: bool,
    store: Store,
    /// What opening the page file found (`None` for a new database).
    report: Option<OpenReport>,
}

/// Opens the registry (if any) and the page file of an existing database,
/// telling an encrypted database from a plaintext one.
/// With a freshness anchor, the registry is checked against it before the
/// page file opens.
fn open_existing(
    config: &Config,
    data: &Path,
    keys_path: &Path,
    freshness: Option<&Freshness>,
) -> Result<OpenedFiles, Error> {
    use crate::storeglue::Opened;
    let has_registry = exists(&*config.vfs, keys_path)?;
    let keys = match (&config.key, has_registry) {
        (Some(_), true) => Some(KeyState::open(config, keys_path)?),
        _ => None,
    };
    if let (Some(f), Some(k)) = (freshness, &keys) {
        f.check_registry(&config.path, k, &AnchorKeys::new(vec![k.anchor_key()]))?;
    }
    let ring = keys.as_ref().map(|k| k.keyring().clone());
    match crate::storeglue::open(config, data, ring)? {
        Opened::Store(store, report) => {
            let sealed = keys.is_some();
            if !sealed && config.encrypt_at_rest {
                return Err(Error::PlaintextDatabase {
                    path: config.path.clone(),
                });
            }
            if let (true, Some(k), Some(asked)) = (sealed, &keys, config.algorithm)
                && k.algorithm() != asked
            {
                return Err(Error::AlgorithmMismatch {
                    database: k.algorithm(),
                    config: asked,
                });
            }
            // A plaintext database opened with a key (encrypt_at_rest off)
            // and no registry yet: make one, for field keys — once the
            // database is known to be in a format this build reads, so a
            // refused open writes nothing.
            let (keys, registry_created) = match (keys, &config.key) {
                (None, Some(_)) if !config.read_only => {
                    EngineMeta::decode(store.read().app_meta(), data)?;
                    (
                        Some(KeyState::create(config, keys_path, store.db_id())?),
                        true,
                    )
                }
                (keys, _) => (keys, false),
            };
            Ok(OpenedFiles {
                keys,
                registry_created,
                sealed,
                store,
                report: Some(report),
            })
        }
        Opened::Encrypted if !has_registry => Err(Error::Corruption {
            file: keys_path.to_path_buf(),
            what: "the page file is encrypted but the key registry is missing".into(),
        }),
        Opened::Encrypted => Err(Error::EncryptedDatabase),
        // A plaintext database whose registry holds only field keys.
        Opened::Plaintext => {
            if config.encrypt_at_rest {
                return Err(Error::PlaintextDatabase {
                    path: config.path.clone(),
                });
            }
            match crate::storeglue::open(config, data, None)? {
                Opened::Store(store, report) => Ok(OpenedFiles {
                    keys,
                    registry_created: false,
                    sealed: false,
                    store,
                    report: Some(report),
                }),
                _ => Err(Error::Corruption {
                    file: data.to_path_buf(),
                    what: "the page file changed its protection while opening".into(),
                }),
            }
        }
    }
}
