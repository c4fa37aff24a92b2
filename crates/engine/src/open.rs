//! Opening and creating a database: lock, keys, page file, WAL replay, and
//! the checks that tie them together: the registry, the page file and the
//! log must belong to one database and continue one another, or the open
//! is refused rather than serving an older state.
//!
//! Creation writes the key registry first, then the page file, then the
//! WAL directory; the page file is the commit point. A directory with a
//! registry but no page file and no WAL segment is an interrupted creation:
//! the registry is set aside as `KEYS.interrupted` and the creation starts
//! over; with WAL segments it is refused.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use parking_lot::{Mutex, RwLock};
use sealkv_core_store::{OpenReport, Store};
use sealkv_crypto_envelope::DbId;
use sealkv_fileio::{FileError, FileOp, LockKind, Vfs, VfsLock};

use crate::config::Config;
use crate::db::{Db, Inner, Memtables};
use crate::error::Error;
use crate::flush::{self, FlushSignal, FlushState};
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
    let mut n = 0u32;
    let target = loop {
        let name = if n == 0 {
            format!("{KEYS_FILE}.interrupted")
        } else {
            format!("{KEYS_FILE}.interrupted.{n}")
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
    tracing::warn!(
        from = %keys.display(),
        to = %target.display(),
        "a key registry without a page file (an interrupted creation) was set aside"
    );
    vfs.rename(keys, &target)
        .map_err(io(FileOp::Rename, keys))?;
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

pub(crate) fn open(config: Config) -> Result<Db, Error> {
    config.validate()?;
    let vfs = config.vfs.clone();
    let dir = config.path.clone();
    let data = dir.join(DATA_FILE);
    if !exists(&*vfs, &data)? && (config.read_only || !config.create_if_missing) {
        return Err(Error::NotFound { path: dir });
    }
    vfs.create_dir_all(&dir).map_err(io(FileOp::Dir, &dir))?;
    let lock = take_lock(&config)?;

    let create = !exists(&*vfs, &data)?;
    let keys_path = dir.join(KEYS_FILE);
    let OpenedFiles {
        keys,
        sealed,
        store,
        report,
    } = if create {
        if wal_has_segments(&*vfs, &dir)? {
            return Err(Error::Corruption {
                file: data,
                what: "the page file is missing but the WAL holds segments".into(),
            });
        }
        if exists(&*vfs, &keys_path)? {
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
            ..EngineMeta::default()
        };
        let store = crate::storeglue::create(&config, &data, db_id, ring, first_meta.encode())?;
        OpenedFiles {
            keys,
            sealed,
            store,
            report: None,
        }
    } else {
        open_existing(&config, &data, &keys_path)?
    };
    let meta = EngineMeta::decode(store.read().app_meta(), &data)?;
    if let Some(k) = &keys {
        let (generation, fingerprint) = (k.generation(), k.fingerprint());
        let older = meta.registry_generation > generation;
        // A rotation is durable in the registry before the page file records
        // it, so a newer registry is normal; at the same generation it must
        // be the very registry the page file was written with.
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
    }

    let active = Arc::new(Memtable::new());
    if let Some(why) = report.as_ref().and_then(|r| r.fell_back.as_ref()) {
        tracing::warn!(%why, "the newest meta page was unusable; opened the older one");
    }
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
        counters: Counters::default(),
        torn_tails: AtomicU64::new(replay.torn_tails),
        catalog: Catalog::default(),
        conflicts: Mutex::new(ConflictWindow::new(replay.last_seq, CONFLICT_WINDOW_BYTES)),
        instance: crate::db::next_instance(),
        _lock: lock,
    });
    if inner.wal.is_some() {
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

/// The key registry and the page file, opened or created.
struct OpenedFiles {
    /// The key registry, if the database has one or was given a key.
    keys: Option<KeyState>,
    /// Whether the WAL and the page file are sealed.
    sealed: bool,
    store: Store,
    /// What opening the page file found (`None` for a new database).
    report: Option<OpenReport>,
}

/// Opens the registry (if any) and the page file of an existing database,
/// telling an encrypted database from a plaintext one.
fn open_existing(config: &Config, data: &Path, keys_path: &Path) -> Result<OpenedFiles, Error> {
    use crate::storeglue::Opened;
    let has_registry = exists(&*config.vfs, keys_path)?;
    let keys = match (&config.key, has_registry) {
        (Some(_), true) => Some(KeyState::open(config, keys_path)?),
        _ => None,
    };
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
            let keys = match (keys, &config.key) {
                (None, Some(_)) if !config.read_only => {
                    EngineMeta::decode(store.read().app_meta(), data)?;
                    Some(KeyState::create(config, keys_path, store.db_id())?)
                }
                (keys, _) => keys,
            };
            Ok(OpenedFiles {
                keys,
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
