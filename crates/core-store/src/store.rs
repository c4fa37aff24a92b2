//! The store: opening and creating the page file, shared state, page
//! loading, reader tracking.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::ThreadId;

use parking_lot::{Condvar, Mutex, RwLock};
use sealkv_crypto_envelope::{DbId, KeyId, Keyring};
use sealkv_fileio::{FileError, FileOp, LockKind, OpenMode, Vfs, VfsFile, VfsLock};

use crate::cache::PageCache;
use crate::error::{Result, StoreError};
use crate::format::{
    DEFAULT_PAGE_SIZE, FIRST_DATA_PAGE, FileHeader, MAX_APP_META, META_A, PAGE_HEADER_LEN,
    PageKind, TAG_LEN, Tag, check_page_size,
};
use crate::meta::{FreeEntry, Meta, decode_free};
use crate::node::{ChildRef, Node};
use crate::seal::{Mode, PageSealer};

/// How to create or open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Page size for a new file (a power of two from 4 KiB to 64 KiB); an
    /// existing file keeps its own.
    pub page_size: u32,
    /// Bytes of decoded pages the cache may hold (default
    /// [`DEFAULT_CACHE_BYTES`](crate::DEFAULT_CACHE_BYTES)).
    pub cache_bytes: usize,
    /// The keyring: `None` = plaintext (CRC32C per page).
    pub keyring: Option<Arc<Keyring>>,
    /// The database id: for a new plaintext file (default: random; an
    /// encrypted file takes the keyring's); when opening, a file with
    /// another id is refused.
    pub db_id: Option<DbId>,
    /// Open read-only (a shared lock; no writer session).
    pub read_only: bool,
    /// The application metadata of a new file's first meta page (at most
    /// [`MAX_APP_META`](crate::MAX_APP_META) bytes), so a file is never
    /// without it, not even after a crash right after its creation.
    /// Ignored when opening.
    pub initial_app_meta: Vec<u8>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            page_size: DEFAULT_PAGE_SIZE,
            cache_bytes: crate::DEFAULT_CACHE_BYTES,
            keyring: None,
            db_id: None,
            read_only: false,
            initial_app_meta: Vec::new(),
        }
    }
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// The committed transaction the store opened at.
    pub txn: u64,
    /// The newest transaction whose meta page authenticated: `txn`, unless
    /// the open fell back past it (see `fell_back`). What a freshness check
    /// compares with: the file holds an authenticated record of this
    /// commit even when its tree was unusable.
    pub newest_txn: u64,
    /// The meta slot (page 1 or 2) it came from.
    pub meta_page: u64,
    /// Set when the newest meta page authenticated but its tree or free
    /// list did not, and the older meta was taken instead: what was wrong.
    /// The engine must check its WAL anchor before trusting the older state.
    pub fell_back: Option<String>,
    /// What was wrong with the other meta slot, if it did not authenticate
    /// (normal on a fresh file and after a crash during a commit).
    pub other_slot: Option<String>,
    /// Pages in the file (high-water mark).
    pub page_count: u64,
    /// Free pages.
    pub free_pages: u64,
    /// The data key the opened meta page is sealed under (`None` for a
    /// plaintext file). A registry the meta page records can open it.
    pub meta_key: Option<KeyId>,
    /// The tag (AEAD tag, or checksum in a plaintext file) of the meta page
    /// of `newest_txn`: it tells that meta page from any other of the same
    /// transaction number (another copy's).
    pub newest_meta_tag: Tag,
    /// The application metadata of the meta page of `newest_txn`
    /// (authenticated with it): what the newest commit recorded, even
    /// when the open fell back past it.
    pub newest_app_meta: Vec<u8>,
}

/// The last committed transaction, read as one: its number, its meta
/// page's tag and its application metadata always belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastCommit {
    /// The transaction number.
    pub txn: u64,
    /// The tag of its meta page.
    pub meta_tag: Tag,
    /// Its application metadata.
    pub app_meta: Vec<u8>,
}

/// Counters, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoreStats {
    /// Last committed transaction.
    pub txn: u64,
    /// Pages in the file (high-water mark).
    pub page_count: u64,
    /// Free pages (reusable now or later).
    pub free_pages: u64,
    /// Cache hits.
    pub cache_hits: u64,
    /// Cache misses.
    pub cache_misses: u64,
    /// Bytes held by the cache.
    pub cache_bytes: usize,
    /// Pages read from the file.
    pub pages_read: u64,
    /// Pages written to the file.
    pub pages_written: u64,
    /// Commits made by this handle.
    pub commits: u64,
    /// Cuts of the file's free tail that failed (the commits stood; the
    /// file stays longer until a later commit's cut succeeds): a sign of a
    /// failing disk or file system.
    pub tail_cut_failures: u64,
    /// Live read snapshots.
    pub readers: usize,
    /// The transaction the oldest live read snapshot holds, if any.
    pub oldest_reader: Option<u64>,
}

/// A committed state readers can hold.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) meta: Meta,
    /// The tag of the meta page that records `meta`.
    pub(crate) meta_tag: Tag,
}

/// The writer's private state.
pub(crate) struct WriterState {
    pub(crate) free: Vec<FreeEntry>,
    pub(crate) chain: Vec<ChildRef>,
    pub(crate) file_len: u64,
}

pub(crate) struct WriterGate {
    pub(crate) owner: Option<ThreadId>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn VfsFile>,
    _lock: Box<dyn VfsLock>,
    pub(crate) sealer: PageSealer,
    pub(crate) cache: PageCache,
    pub(crate) current: RwLock<Arc<Snapshot>>,
    pub(crate) readers: Mutex<BTreeMap<u64, usize>>,
    pub(crate) gate: Mutex<WriterGate>,
    pub(crate) gate_cv: Condvar,
    pub(crate) wstate: Mutex<WriterState>,
    pub(crate) poisoned: AtomicBool,
    pub(crate) read_only: bool,
    pub(crate) pages_read: AtomicU64,
    pub(crate) pages_written: AtomicU64,
    /// Cuts of the free tail that failed (see `StoreStats`).
    pub(crate) tail_cut_failures: AtomicU64,
    pub(crate) commits: AtomicU64,
    /// What [`Store::space`] measured of each tree page's subtree.
    pub(crate) space_memo: Mutex<crate::space::SpaceMemo>,
    /// The process that opened the store. A child forked after the open
    /// holds a copy of its writer session (salt and nonce counter) and of
    /// its free list: a commit there would reuse nonces and race the
    /// parent's writes to the same pages, so a write refuses.
    pub(crate) opened_by: sealkv_fileio::OpenedBy,
}

/// A page file: a copy-on-write B+tree of sealed pages.
///
/// `Store` is cheap to clone (an `Arc`) and `Send + Sync`: any number of
/// threads may hold [`ReadTxn`](crate::ReadTxn)s while one thread at a time
/// holds the [`WriteTxn`](crate::WriteTxn).
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("page_size", &self.inner.sealer.page_size)
            .field(
                "encrypted",
                &matches!(self.inner.sealer.mode, Mode::Sealed { .. }),
            )
            .field("read_only", &self.inner.read_only)
            .finish_non_exhaustive()
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn take_lock(vfs: &dyn Vfs, path: &Path, kind: LockKind) -> Result<Box<dyn VfsLock>> {
    let lp = lock_path(path);
    vfs.lock(&lp, kind).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            StoreError::Locked
        } else {
            StoreError::Io(FileError::new(FileOp::Lock, &lp, e))
        }
    })
}

impl Store {
    /// Creates a new, empty page file at `path` (it must not exist).
    pub fn create(
        vfs: Arc<dyn Vfs>,
        path: &Path,
        options: StoreOptions,
    ) -> Result<(Store, OpenReport)> {
        check_page_size(options.page_size)?;
        if options.read_only {
            return Err(StoreError::ReadOnly);
        }
        let lock = take_lock(&*vfs, path, LockKind::Exclusive)?;
        let (db_id, algorithm, mode) = match &options.keyring {
            Some(k) => {
                let session = k.start_session()?;
                if options.db_id.is_some_and(|id| id != *k.db_id()) {
                    return Err(StoreError::WrongDatabase);
                }
                (
                    *k.db_id(),
                    session.algorithm().0,
                    Mode::Sealed {
                        keyring: k.clone(),
                        session: Some(RwLock::new(Arc::new(session))),
                    },
                )
            }
            None => (
                match options.db_id {
                    Some(id) => id,
                    None => DbId::random()?,
                },
                0,
                Mode::Plain,
            ),
        };
        let header = FileHeader {
            page_size: options.page_size,
            encrypted: options.keyring.is_some(),
            algorithm,
            db_id,
        };
        let file = vfs
            .open(path, OpenMode::CreateNew)
            .map_err(FileError::with(FileOp::Open, path))?;
        let sealer = PageSealer {
            db_id,
            algorithm,
            page_size: options.page_size as usize,
            mode,
        };
        let meta = Meta {
            txn: 0,
            root: None,
            page_count: FIRST_DATA_PAGE,
            free_head: None,
            free_pages: 0,
            app_meta: options.initial_app_meta.clone(),
        };
        if meta.app_meta.len() > MAX_APP_META {
            return Err(StoreError::AppMetaTooLarge {
                len: meta.app_meta.len(),
                max: MAX_APP_META,
            });
        }
        let p = options.page_size as usize;
        let mut buf = header.encode();
        let mut mpage = vec![0u8; p];
        meta.encode(&mut mpage[PAGE_HEADER_LEN..p - TAG_LEN]);
        let meta_tag = sealer.seal(&mut mpage, PageKind::Meta, META_A, 0)?;
        buf.extend_from_slice(&mpage);
        buf.resize(p * FIRST_DATA_PAGE as usize, 0);
        let wr = |e| StoreError::Io(FileError::new(FileOp::Write, path, e));
        file.write_all_at(&buf, 0).map_err(wr)?;
        file.sync_all()
            .map_err(|e| StoreError::Io(FileError::new(FileOp::Sync, path, e)))?;
        if let Some(dir) = path.parent() {
            vfs.sync_dir(dir)
                .map_err(|e| StoreError::Io(FileError::new(FileOp::SyncDir, dir, e)))?;
        }
        let report = OpenReport {
            txn: 0,
            newest_txn: 0,
            meta_page: META_A,
            fell_back: None,
            other_slot: None,
            page_count: FIRST_DATA_PAGE,
            free_pages: 0,
            meta_key: None,
            newest_meta_tag: meta_tag,
            newest_app_meta: meta.app_meta.clone(),
        };
        let store = Store::assemble(Parts {
            path,
            file,
            lock,
            sealer,
            cache_bytes: options.cache_bytes,
            meta,
            meta_tag,
            free: FreeList::default(),
            read_only: false,
        })?;
        Ok((store, report))
    }

    /// Opens an existing page file, starting a new writer session unless
    /// `read_only`.
    pub fn open(
        vfs: Arc<dyn Vfs>,
        path: &Path,
        options: StoreOptions,
    ) -> Result<(Store, OpenReport)> {
        let kind = if options.read_only {
            LockKind::Shared
        } else {
            LockKind::Exclusive
        };
        let lock = take_lock(&*vfs, path, kind)?;
        let mode = if options.read_only {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        };
        let file = vfs
            .open(path, mode)
            .map_err(FileError::with(FileOp::Open, path))?;
        let rd = |e| StoreError::Io(FileError::new(FileOp::Read, path, e));
        let file_len = file.len().map_err(rd)?;
        let mut start = [0u8; 16];
        let n = file.read_at(&mut start, 0).map_err(rd)?;
        let page_size = FileHeader::peek_page_size(start.get(..n).unwrap_or(&[]))
            .ok_or_else(|| StoreError::corrupt(0, "bad magic: not a sealkv page file"))?;
        check_page_size(page_size).map_err(|_| StoreError::corrupt(0, "invalid page size"))?;
        let p = page_size as u64;
        if file_len < p * FIRST_DATA_PAGE {
            return Err(StoreError::corrupt(
                0,
                "file shorter than its header and meta pages",
            ));
        }
        let mut hbuf = vec![0u8; p as usize];
        file.read_exact_at(&mut hbuf, 0).map_err(rd)?;
        let header = FileHeader::decode(&hbuf)?;
        if options.db_id.is_some_and(|id| id != header.db_id) {
            return Err(StoreError::WrongDatabase);
        }
        let mode = match (&options.keyring, header.encrypted) {
            (None, true) => return Err(StoreError::EncryptedStore),
            (Some(_), false) => return Err(StoreError::NotEncrypted),
            (None, false) => Mode::Plain,
            (Some(k), true) => {
                if *k.db_id() != header.db_id {
                    return Err(StoreError::WrongDatabase);
                }
                // The active key's algorithm must be the file's, read-only
                // or not. A read-only open needs no active key; when there
                // is one, a session is started only to read its algorithm
                // (starting a session seals nothing).
                let s = if options.read_only && k.active().is_none() {
                    None
                } else {
                    let s = k.start_session()?;
                    if s.algorithm().0 != header.algorithm {
                        return Err(StoreError::AlgorithmMismatch {
                            file: header.algorithm,
                            key: s.algorithm().0,
                        });
                    }
                    Some(s)
                };
                let session = s
                    .filter(|_| !options.read_only)
                    .map(|s| RwLock::new(Arc::new(s)));
                Mode::Sealed {
                    keyring: k.clone(),
                    session,
                }
            }
        };
        let sealer = PageSealer {
            db_id: header.db_id,
            algorithm: header.algorithm,
            page_size: page_size as usize,
            mode,
        };
        // Both meta slots; newest first. A slot whose header names a data
        // key the keyring lacks is a slot that does not open (its key id is
        // not authenticated: damage and an older keyring look alike); the
        // other slot may still.
        let mut metas = Vec::new();
        let mut problems = Vec::new();
        let mut missing_key = None;
        let mut unwritten = None;
        for slot in [META_A, META_A + 1] {
            let mut buf = vec![0u8; p as usize];
            file.read_exact_at(&mut buf, slot * p).map_err(rd)?;
            if buf.iter().all(|&b| b == 0) {
                // Never written (the second slot of a new file).
                unwritten = Some(slot);
                continue;
            }
            match sealer
                .open(&mut buf, slot, &[PageKind::Meta])
                .and_then(|h| Ok((Meta::decode(&buf[PAGE_HEADER_LEN..], slot)?, h.dek)))
            {
                Ok((m, dek)) if m.txn % 2 == slot - META_A => {
                    let mut tag = Tag::default();
                    tag.copy_from_slice(&buf[buf.len() - TAG_LEN..]);
                    metas.push((slot, m, dek, tag));
                }
                Ok(_) => problems.push(format!("meta page {slot}: transaction in the wrong slot")),
                Err(e @ StoreError::MissingKey { .. }) => {
                    problems.push(e.to_string());
                    missing_key.get_or_insert(e);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        metas.sort_by_key(|m| std::cmp::Reverse(m.1.txn));
        let newest_txn = metas.first().map(|m| m.1.txn);
        let newest_meta_tag = metas.first().map_or_else(Tag::default, |m| m.3);
        let newest_app_meta = metas
            .first()
            .map_or_else(Vec::new, |m| m.1.app_meta.clone());
        if let Some(slot) = unwritten
            && newest_txn != Some(0)
        {
            problems.push(format!("meta page {slot}: all zeros"));
        }
        let mut last_err = None;
        for (slot, meta, dek, meta_tag) in metas {
            match check_meta(&file, &sealer, &meta, file_len, path) {
                Ok(free) => {
                    let report = OpenReport {
                        txn: meta.txn,
                        newest_txn: newest_txn.unwrap_or(meta.txn),
                        meta_page: slot,
                        fell_back: last_err.as_ref().map(|e: &StoreError| e.to_string()),
                        other_slot: (!problems.is_empty()).then(|| problems.join("; ")),
                        page_count: meta.page_count,
                        free_pages: free.entries.len() as u64,
                        meta_key: sealer.sealed().then_some(KeyId(dek)),
                        newest_meta_tag,
                        newest_app_meta: newest_app_meta.clone(),
                    };
                    let store = Store::assemble(Parts {
                        path,
                        file,
                        lock,
                        sealer,
                        cache_bytes: options.cache_bytes,
                        meta,
                        meta_tag,
                        free,
                        read_only: options.read_only,
                    })?;
                    return Ok((store, report));
                }
                Err(e @ StoreError::Io(_)) => return Err(e),
                Err(e) => {
                    last_err = Some(e);
                }
            }
        }
        if let Some(e) = missing_key {
            return Err(e);
        }
        Err(last_err.unwrap_or_else(|| {
            StoreError::corrupt(
                META_A,
                format!("no valid meta page: {}", problems.join("; ")),
            )
        }))
    }

    fn assemble(parts: Parts<'_>) -> Result<Store> {
        let Parts {
            path,
            file,
            lock,
            sealer,
            cache_bytes,
            meta,
            meta_tag,
            free: FreeList {
                entries: free,
                chain,
            },
            read_only,
        } = parts;
        let file_len = file
            .len()
            .map_err(|e| StoreError::Io(FileError::new(FileOp::Read, path, e)))?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                file,
                _lock: lock,
                sealer,
                cache: PageCache::new(cache_bytes),
                current: RwLock::new(Arc::new(Snapshot { meta, meta_tag })),
                readers: Mutex::new(BTreeMap::new()),
                gate: Mutex::new(WriterGate { owner: None }),
                gate_cv: Condvar::new(),
                wstate: Mutex::new(WriterState {
                    free,
                    chain,
                    file_len,
                }),
                poisoned: AtomicBool::new(false),
                read_only,
                pages_read: AtomicU64::new(0),
                pages_written: AtomicU64::new(0),
                tail_cut_failures: AtomicU64::new(0),
                commits: AtomicU64::new(0),
                space_memo: Mutex::new(crate::space::SpaceMemo::default()),
                opened_by: sealkv_fileio::OpenedBy::current(),
            }),
        })
    }

    /// Starts a new writer session under the keyring's active data key:
    /// call it after rotating the data key, so new pages are sealed under
    /// the new key (old pages stay readable under the key they record).
    /// A plaintext store has nothing to do; a read-only one refuses.
    pub fn new_session(&self) -> Result<()> {
        self.inner.sealer.new_session(None)
    }

    /// Starts a new writer session under data key `id`, which the keyring
    /// holds but need not be its active key: to record a newer key registry
    /// in a meta page sealed under the key the current meta page is sealed
    /// under (see [`OpenReport::meta_key`]), which the registry it replaces
    /// also holds. Call [`Store::new_session`] afterwards to seal under the
    /// active key.
    pub fn new_session_under(&self, id: KeyId) -> Result<()> {
        self.inner.sealer.new_session(Some(id))
    }

    /// The page size.
    pub fn page_size(&self) -> u32 {
        self.inner.sealer.page_size as u32
    }

    /// The longest key this store accepts (a quarter of a page, less
    /// entry overhead: 964 bytes with 4 KiB pages).
    pub fn max_key_len(&self) -> usize {
        max_key_len(self.inner.sealer.body_len())
    }

    /// The database id.
    pub fn db_id(&self) -> DbId {
        self.inner.sealer.db_id
    }

    /// The tag (AEAD tag, or checksum in a plaintext file) of the meta page
    /// of the last committed transaction: a freshness anchor records it to
    /// tell this file's commit from another copy's of the same number.
    pub fn meta_tag(&self) -> Tag {
        self.inner.snapshot().meta_tag
    }

    /// The last committed transaction's number, meta page tag and
    /// application metadata, from one committed state (separate reads
    /// could straddle a commit).
    pub fn last_commit(&self) -> LastCommit {
        let snap = self.inner.snapshot();
        LastCommit {
            txn: snap.meta.txn,
            meta_tag: snap.meta_tag,
            app_meta: snap.meta.app_meta.clone(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> StoreStats {
        let i = &self.inner;
        let snap = i.snapshot();
        let (readers, oldest_reader) = {
            let r = i.readers.lock();
            (r.values().sum(), oldest_held(&r))
        };
        let (cache_bytes, cache_hits, cache_misses) = i.cache.counters();
        StoreStats {
            txn: snap.meta.txn,
            page_count: snap.meta.page_count,
            free_pages: snap.meta.free_pages,
            cache_hits,
            cache_misses,
            cache_bytes,
            pages_read: i.pages_read.load(Ordering::Relaxed),
            pages_written: i.pages_written.load(Ordering::Relaxed),
            commits: i.commits.load(Ordering::Relaxed),
            tail_cut_failures: i.tail_cut_failures.load(Ordering::Relaxed),
            readers,
            oldest_reader,
        }
    }
}

pub(crate) fn max_key_len(body: usize) -> usize {
    body / 4 - 40
}

/// A page file opened and checked: what a [`Store`] is assembled from.
struct Parts<'a> {
    path: &'a Path,
    file: Arc<dyn VfsFile>,
    lock: Box<dyn VfsLock>,
    sealer: PageSealer,
    cache_bytes: usize,
    /// The committed state the store opens at.
    meta: Meta,
    /// The tag of its meta page.
    meta_tag: Tag,
    /// That state's free list.
    free: FreeList,
    read_only: bool,
}

/// A committed state's free list, as loaded from its pages.
#[derive(Debug, Default)]
pub(crate) struct FreeList {
    /// The free pages, in list order.
    pub(crate) entries: Vec<FreeEntry>,
    /// The free-list pages holding them, first to last.
    pub(crate) chain: Vec<ChildRef>,
}

/// Checks a meta's root and free list; returns the free list.
fn check_meta(
    file: &Arc<dyn VfsFile>,
    sealer: &PageSealer,
    meta: &Meta,
    file_len: u64,
    path: &Path,
) -> Result<FreeList> {
    let p = sealer.page_size as u64;
    if meta.txn == u64::MAX {
        return Err(StoreError::corrupt(
            META_A + meta.txn % 2,
            "transaction id at its maximum (no next commit)",
        ));
    }
    if meta.page_count < FIRST_DATA_PAGE || meta.page_count.saturating_mul(p) > file_len {
        return Err(StoreError::corrupt(
            META_A + meta.txn % 2,
            "page count beyond the end of the file (truncated?)",
        ));
    }
    if let Some(root) = meta.root {
        let mut buf = vec![0u8; p as usize];
        read_page(file, sealer, root.page, meta.page_count, &mut buf, path)?;
        sealer.open_expected(
            &mut buf,
            root.page,
            &root.tag,
            &[PageKind::Branch, PageKind::Leaf],
        )?;
    }
    load_free_list(file, sealer, meta, path)
}

/// Reads page `page` raw (no authentication) into `buf`.
pub(crate) fn read_page(
    file: &Arc<dyn VfsFile>,
    sealer: &PageSealer,
    page: u64,
    page_count: u64,
    buf: &mut [u8],
    path: &Path,
) -> Result<()> {
    if page < FIRST_DATA_PAGE || page >= page_count {
        return Err(StoreError::corrupt(page, "page number out of range"));
    }
    let p = sealer.page_size as u64;
    file.read_exact_at(buf, page * p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            StoreError::corrupt(page, "page beyond the end of the file")
        } else {
            StoreError::Io(FileError::new(FileOp::Read, path, e))
        }
    })
}

pub(crate) fn load_free_list(
    file: &Arc<dyn VfsFile>,
    sealer: &PageSealer,
    meta: &Meta,
    path: &Path,
) -> Result<FreeList> {
    let mut out = Vec::new();
    let mut chain = Vec::new();
    let mut next = meta.free_head;
    let mut buf = vec![0u8; sealer.page_size];
    let mut hops = 0u64;
    while let Some(r) = next {
        hops += 1;
        if hops > meta.page_count {
            return Err(StoreError::corrupt(r.page, "free list loops"));
        }
        read_page(file, sealer, r.page, meta.page_count, &mut buf, path)?;
        sealer.open_expected(&mut buf, r.page, &r.tag, &[PageKind::FreeList])?;
        let (n, entries) = decode_free(&buf[PAGE_HEADER_LEN..sealer.page_size - TAG_LEN], r.page)?;
        for e in &entries {
            if e.page < FIRST_DATA_PAGE || e.page >= meta.page_count {
                return Err(StoreError::corrupt(r.page, "free-list entry out of range"));
            }
            if e.freed > meta.txn {
                return Err(StoreError::corrupt(
                    r.page,
                    "free-list entry freed after its meta's transaction",
                ));
            }
        }
        out.extend(entries);
        chain.push(r);
        next = n;
    }
    if out.len() as u64 != meta.free_pages {
        return Err(StoreError::corrupt(
            meta.free_head.map_or(META_A, |r| r.page),
            "free-list length differs from the meta page's count",
        ));
    }
    Ok(FreeList {
        entries: out,
        chain,
    })
}

impl Inner {
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    /// Reads, authenticates and decodes a tree node, through the cache.
    pub(crate) fn load_node(&self, r: ChildRef, page_count: u64) -> Result<Node> {
        self.load_node_caching(r, page_count, true)
    }

    /// Like [`Inner::load_node`], for a node a write transaction replaces:
    /// a cached copy is used, but a node read from the file is not cached.
    /// The commit frees the page, so no reader of a later version looks the
    /// entry up again: caching it would only push out nodes readers use
    /// (a flush of random keys rewrites most leaves of the tree) and, on a
    /// write-heavy load, fill the cache with dead nodes.
    pub(crate) fn load_node_to_replace(&self, r: ChildRef, page_count: u64) -> Result<Node> {
        self.load_node_caching(r, page_count, false)
    }

    fn load_node_caching(&self, r: ChildRef, page_count: u64, keep: bool) -> Result<Node> {
        if let Some(n) = self.cache.get(r.page, &r.tag) {
            return Ok(n);
        }
        self.read_node(r, page_count, keep)
    }

    /// `f` of a tree node, through the cache: on a hit, under the cache
    /// shard's lock without taking a reference (`f` must not use the
    /// cache); on a miss, of the node read and cached as by
    /// [`Inner::load_node`].
    pub(crate) fn visit_node<R>(
        &self,
        r: ChildRef,
        page_count: u64,
        f: impl Fn(&Node) -> R,
    ) -> Result<R> {
        if let Some(out) = self.cache.visit(r.page, &r.tag, &f) {
            return Ok(out);
        }
        Ok(f(&self.read_node(r, page_count, true)?))
    }

    /// Reads, authenticates and decodes a tree node, and caches it if
    /// `keep`.
    fn read_node(&self, r: ChildRef, page_count: u64, keep: bool) -> Result<Node> {
        let node = with_page_buf(self.sealer.page_size, |buf| {
            self.read_raw(r.page, page_count, buf)?;
            let h = self.sealer.open_expected(
                buf,
                r.page,
                &r.tag,
                &[PageKind::Branch, PageKind::Leaf],
            )?;
            let body = buf
                .get(PAGE_HEADER_LEN..self.sealer.page_size - TAG_LEN)
                .ok_or_else(|| StoreError::corrupt(r.page, "page truncated"))?;
            Node::decode_used(h.kind == PageKind::Leaf, body, r.page)
        })?;
        if keep {
            self.cache.insert(r.page, r.tag, node.clone());
        }
        Ok(node)
    }

    pub(crate) fn read_raw(&self, page: u64, page_count: u64, buf: &mut [u8]) -> Result<()> {
        self.pages_read.fetch_add(1, Ordering::Relaxed);
        read_page(&self.file, &self.sealer, page, page_count, buf, &self.path)
    }

    /// Reads an overflow value of `len` bytes starting at `first`.
    pub(crate) fn read_overflow(
        &self,
        first: ChildRef,
        len: u64,
        page_count: u64,
    ) -> Result<Vec<u8>> {
        // A cached value was read and authenticated whole under this very
        // first-page tag (which commits to the rest of the chain): no
        // page is read or decrypted twice while it stays cached.
        if let Some(v) = self.cache.get_value(first.page, &first.tag)
            && v.len() as u64 == len
        {
            return Ok(v.to_vec());
        }
        // `len` comes from the leaf: grow with the pages actually read
        // instead of trusting it for a large reservation up front.
        let mut out = Vec::new();
        with_page_buf(self.sealer.page_size, |buf| {
            self.read_chain(first, len, page_count, buf, &mut out)
        })?;
        if out.len() as u64 != len {
            return Err(StoreError::corrupt(
                first.page,
                "overflow chain shorter than its value",
            ));
        }
        self.cache
            .insert_value(first.page, first.tag, Arc::from(out.as_slice()));
        Ok(out)
    }

    /// Appends the data of the overflow chain from `first` to `out`, one
    /// page at a time through `buf`, failing once it passes `len` bytes.
    fn read_chain(
        &self,
        first: ChildRef,
        len: u64,
        page_count: u64,
        buf: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let mut next = Some(first);
        let mut hops = 0;
        while let Some(r) = next {
            hops += 1;
            if hops > page_count {
                return Err(StoreError::corrupt(r.page, "overflow chain loops"));
            }
            self.read_raw(r.page, page_count, buf)?;
            self.sealer
                .open_expected(buf, r.page, &r.tag, &[PageKind::Overflow])?;
            let body = buf
                .get(PAGE_HEADER_LEN..self.sealer.page_size - TAG_LEN)
                .ok_or_else(|| StoreError::corrupt(r.page, "page truncated"))?;
            let (n, data) = overflow_body(body, r.page)?;
            out.extend_from_slice(data);
            if out.len() as u64 > len {
                return Err(StoreError::corrupt(
                    r.page,
                    "overflow chain longer than its value",
                ));
            }
            next = n;
        }
        Ok(())
    }

    /// Registers a reader at the current snapshot.
    ///
    /// The newest snapshot's count stays in the map at zero when its last
    /// reader goes (see [`Inner::unregister_reader`]), so a run of point
    /// reads between two commits inserts and removes no map entry; it is
    /// removed here once a newer snapshot takes a reader.
    pub(crate) fn register_reader(&self) -> Arc<Snapshot> {
        let mut r = self.readers.lock();
        let snap = self.snapshot();
        let txn = snap.meta.txn;
        match r.entry(txn) {
            Entry::Occupied(mut held) => *held.get_mut() += 1,
            Entry::Vacant(slot) => {
                slot.insert(1);
                // A newer snapshot's first reader: the zero the previous
                // newest one may have kept goes.
                let idle_before = r
                    .range(..txn)
                    .next_back()
                    .filter(|&(_, &c)| c == 0)
                    .map(|(&t, _)| t);
                if let Some(t) = idle_before {
                    r.remove(&t);
                }
            }
        }
        snap
    }

    /// Unregisters a reader of snapshot `txn`. A count that drops to zero
    /// is removed, except the newest one's (kept for the next reader of
    /// the same snapshot): the map holds at most that one zero.
    pub(crate) fn unregister_reader(&self, txn: u64) {
        let mut r = self.readers.lock();
        let newest = r.keys().next_back().copied();
        if let Some(c) = r.get_mut(&txn) {
            *c = c.saturating_sub(1);
            if *c == 0 && newest != Some(txn) {
                r.remove(&txn);
            }
        }
    }

    /// The oldest snapshot a reader holds, if any.
    pub(crate) fn oldest_reader(&self) -> Option<u64> {
        oldest_held(&self.readers.lock())
    }
}

/// The oldest snapshot of `readers` with a reader (a count kept at zero
/// holds nothing).
pub(crate) fn oldest_held(readers: &BTreeMap<u64, usize>) -> Option<u64> {
    readers.iter().find(|&(_, &c)| c > 0).map(|(&t, _)| t)
}

/// Overflow page body: `u64 next | next tag | u32 len | data`.
pub(crate) const OVERFLOW_HEAD: usize = 28;

pub(crate) fn overflow_body(body: &[u8], page: u64) -> Result<(Option<ChildRef>, &[u8])> {
    use crate::format::{be32, be64, tag_at};
    let bad = || StoreError::corrupt(page, "overflow page malformed");
    let np = be64(body, 0).ok_or_else(bad)?;
    let tag: Tag = tag_at(body, 8).ok_or_else(bad)?;
    let len = be32(body, 24).ok_or_else(bad)? as usize;
    let data = body
        .get(OVERFLOW_HEAD..OVERFLOW_HEAD + len)
        .ok_or_else(bad)?;
    Ok(((np != 0).then_some(ChildRef { page: np, tag }), data))
}

thread_local! {
    /// A page buffer per thread for reads that decode what they read
    /// (tree nodes, overflow values) instead of keeping the buffer: one
    /// allocation per thread instead of one per cache miss.
    static PAGE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a page buffer of `size` bytes: this thread's reused buffer,
/// or a fresh one if that is already in use (a nested call). Its contents
/// on entry are unspecified: `f` must fill what it reads. The reused
/// buffer is wiped afterwards, so a decrypted page does not outlive the
/// read in a buffer that lives as long as the thread (and the database).
fn with_page_buf<R>(size: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    PAGE_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.resize(size, 0);
            let r = f(&mut buf);
            buf.fill(0);
            r
        }
        Err(_) => f(&mut vec![0u8; size]),
    })
}
