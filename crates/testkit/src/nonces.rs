//! Nonces read from the bytes that reach the disk: [`DiskWrites`] keeps a
//! copy of every write made through it, and [`DiskWrites::units`] parses
//! each sealed unit out of them — a WAL segment header, a WAL record or
//! sync marker, a page — with the (data key id, session salt, domain,
//! counter) its clear header names, by the layouts of `docs/FORMAT.md`.
//! A test that checks nonce uniqueness this way does not take the sealer's
//! word for what it sealed: it sees what an attacker who watches the disk
//! sees, every version of every page and record ever written included.
//!
//! Two units under the same key id, salt and domain (so the same subkey)
//! and the same counter are a nonce reuse unless they are the same bytes
//! (one unit written twice).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use sealkv_fileio::Vfs;

use crate::hook::{FileEvent, HookVfs};

/// The nonce of one sealed unit: the subkey's inputs that vary (data key
/// id, session salt, domain) and the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonceId {
    /// The data key id in the unit's header.
    pub key_id: u32,
    /// The writer session's salt.
    pub salt: [u8; 32],
    /// The subkey's domain: 1 WAL, 2 pages, 3 meta pages.
    pub domain: u8,
    /// The nonce counter.
    pub counter: u64,
}

/// One sealed unit as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedUnit {
    /// The file written.
    pub file: PathBuf,
    /// Where in it.
    pub offset: u64,
    /// What its header names.
    pub nonce: NonceId,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Two different units sealed under one (subkey, nonce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reuse {
    /// The nonce.
    pub nonce: NonceId,
    /// The first unit's file and offset.
    pub first: (PathBuf, u64),
    /// The other's.
    pub second: (PathBuf, u64),
}

/// One entry of the log.
#[derive(Debug, Clone)]
enum Entry {
    /// A write of these bytes at this offset.
    Write(PathBuf, u64, Vec<u8>),
    /// A directory copied outside the recorder (a `cp -r`).
    Copy(PathBuf, PathBuf),
}

type Log = Arc<Mutex<Vec<Entry>>>;

/// Every write that reaches the file system through [`DiskWrites::vfs`],
/// in order. Clones share the log.
#[derive(Debug, Clone, Default)]
pub struct DiskWrites {
    log: Log,
}

const WAL_MAGIC: &[u8; 8] = b"SEALKVWL";
const WAL_HEADER_LEN: usize = 128;
const RECORD_OVERHEAD: usize = 48;
const PAGE_MAGIC: &[u8; 8] = b"SEALKVPF";

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().unwrap())
}
fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap())
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}
fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// What a file's first write said about the units that follow.
#[derive(Debug, Clone, Copy)]
enum FileKind {
    /// A sealed WAL segment: its session's key id, salt and domain.
    Wal {
        key_id: u32,
        salt: [u8; 32],
        domain: u8,
    },
    /// A page file with pages of this size.
    Pages { page_size: usize },
    /// Plaintext, or not a file of units (the key registry, the lock).
    Other,
}

impl DiskWrites {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// `inner`, with every write through it recorded here.
    pub fn vfs(&self, inner: Arc<dyn Vfs>) -> HookVfs {
        let log = self.log.clone();
        HookVfs::new(inner, move |e| {
            if let FileEvent::Write { path, offset, buf } = e {
                log.lock()
                    .push(Entry::Write(path.to_path_buf(), offset, buf.to_vec()));
            }
            Ok::<(), io::Error>(())
        })
    }

    /// Notes that the directory `from` was copied to `to` behind the
    /// recorder's back (`SimVfs::copy_tree`): the copies' later writes hold
    /// units of the same kinds as the originals'.
    pub fn copied(&self, from: &Path, to: &Path) {
        self.log
            .lock()
            .push(Entry::Copy(from.to_path_buf(), to.to_path_buf()));
    }

    /// How many writes (and copies) were recorded.
    pub fn len(&self) -> usize {
        self.log.lock().len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every sealed unit written, in order. A file's kind is read from its
    /// first write at offset 0 (a WAL segment header, or page 0 of a page
    /// file); plaintext units (key id 0) and zeroed pages are left out.
    ///
    /// # Panics
    ///
    /// If a write does not hold whole units (a test of nonce uniqueness
    /// must see every unit whole).
    pub fn units(&self) -> Vec<SealedUnit> {
        let log = self.log.lock();
        let mut kinds: HashMap<PathBuf, FileKind> = HashMap::new();
        let mut out = Vec::new();
        for entry in log.iter() {
            let (path, offset, buf) = match entry {
                Entry::Write(path, offset, buf) => (path, offset, buf),
                Entry::Copy(from, to) => {
                    let copies: Vec<_> = kinds
                        .iter()
                        .filter_map(|(p, k)| {
                            let rest = p.strip_prefix(from).ok()?;
                            Some((to.join(rest), *k))
                        })
                        .collect();
                    kinds.extend(copies);
                    continue;
                }
            };
            if *offset == 0 {
                kinds.insert(path.clone(), kind_of(buf));
            }
            match kinds.get(path) {
                Some(FileKind::Wal {
                    key_id,
                    salt,
                    domain,
                }) => wal_units(path, *offset, buf, (*key_id, *salt, *domain), &mut out),
                Some(FileKind::Pages { page_size }) => {
                    page_units(path, *offset, buf, *page_size, &mut out)
                }
                Some(FileKind::Other) => {}
                None => panic!(
                    "{}: written at {offset} before its header was",
                    path.display()
                ),
            }
        }
        out
    }
}

fn kind_of(first: &[u8]) -> FileKind {
    if first.len() >= WAL_HEADER_LEN && first.starts_with(WAL_MAGIC) {
        let sealed = first[10] & 1 == 1;
        if !sealed {
            return FileKind::Other;
        }
        return FileKind::Wal {
            key_id: le32(&first[16..]),
            salt: first[64..96].try_into().unwrap(),
            domain: first[14],
        };
    }
    if first.len() >= 16 && first.starts_with(PAGE_MAGIC) {
        let page_size = be32(&first[10..]) as usize;
        return FileKind::Pages { page_size };
    }
    FileKind::Other
}

/// The units of one write to a sealed WAL segment: the header (at offset
/// 0) and every record and sync marker after it.
fn wal_units(
    path: &Path,
    offset: u64,
    buf: &[u8],
    (key_id, salt, domain): (u32, [u8; 32], u8),
    out: &mut Vec<SealedUnit>,
) {
    let mut at = 0usize;
    if offset == 0 {
        out.push(SealedUnit {
            file: path.to_path_buf(),
            offset: 0,
            nonce: NonceId {
                key_id,
                salt,
                domain,
                counter: le64(&buf[40..]),
            },
            bytes: buf[..WAL_HEADER_LEN].to_vec(),
        });
        at = WAL_HEADER_LEN;
    }
    while at < buf.len() {
        let rest = &buf[at..];
        assert!(
            rest.len() >= RECORD_OVERHEAD,
            "{}: a write at {offset} ends inside a record header",
            path.display()
        );
        let len = RECORD_OVERHEAD + le32(rest) as usize;
        assert!(
            rest.len() >= len,
            "{}: a write at {offset} ends inside a record",
            path.display()
        );
        out.push(SealedUnit {
            file: path.to_path_buf(),
            offset: offset + at as u64,
            nonce: NonceId {
                key_id,
                salt,
                domain,
                counter: le64(&rest[16..]),
            },
            bytes: rest[..len].to_vec(),
        });
        at += len;
    }
}

/// The sealed pages of one write to a page file (page 0, the clear
/// header, and zeroed pages hold no unit).
fn page_units(path: &Path, offset: u64, buf: &[u8], ps: usize, out: &mut Vec<SealedUnit>) {
    assert!(
        offset.is_multiple_of(ps as u64) && buf.len().is_multiple_of(ps),
        "{}: a write of {} bytes at {offset} is not whole pages",
        path.display(),
        buf.len()
    );
    for (i, page) in buf.chunks_exact(ps).enumerate() {
        let at = offset + (i * ps) as u64;
        if at == 0 || page.iter().all(|&b| b == 0) {
            continue;
        }
        let key_id = be32(&page[4..]);
        if key_id == 0 {
            continue;
        }
        out.push(SealedUnit {
            file: path.to_path_buf(),
            offset: at,
            nonce: NonceId {
                key_id,
                salt: page[16..48].try_into().unwrap(),
                domain: if page[0] == 1 { 3 } else { 2 },
                counter: be64(&page[8..]),
            },
            bytes: page.to_vec(),
        });
    }
}

/// Every nonce under which two different units were sealed.
pub fn reuses(units: &[SealedUnit]) -> Vec<Reuse> {
    let mut first: HashMap<NonceId, &SealedUnit> = HashMap::new();
    let mut out = Vec::new();
    for u in units {
        match first.get(&u.nonce) {
            Some(f) if f.bytes != u.bytes => out.push(Reuse {
                nonce: u.nonce,
                first: (f.file.clone(), f.offset),
                second: (u.file.clone(), u.offset),
            }),
            Some(_) => {}
            None => {
                first.insert(u.nonce, u);
            }
        }
    }
    out
}

/// How many sessions (distinct salts) the units were sealed in.
pub fn sessions(units: &[SealedUnit]) -> usize {
    units
        .iter()
        .map(|u| u.nonce.salt)
        .collect::<std::collections::HashSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealkv_fileio::{OpenMode, SimVfs};

    fn wal_header(salt: u8) -> Vec<u8> {
        let mut h = vec![0u8; WAL_HEADER_LEN];
        h[..8].copy_from_slice(WAL_MAGIC);
        h[10] = 1;
        h[14] = 1;
        h[16..20].copy_from_slice(&7u32.to_le_bytes());
        h[64..96].fill(salt);
        h
    }

    fn record(counter: u64, body: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; RECORD_OVERHEAD + body.len()];
        r[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
        r[16..24].copy_from_slice(&counter.to_le_bytes());
        r[32..32 + body.len()].copy_from_slice(body);
        r
    }

    fn page(counter: u64, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; 4096];
        p[0] = 3;
        p[4..8].copy_from_slice(&1u32.to_be_bytes());
        p[8..16].copy_from_slice(&counter.to_be_bytes());
        p[16..48].fill(9);
        p
    }

    #[test]
    fn finds_a_counter_sealed_twice_and_only_that() {
        let writes = DiskWrites::new();
        let vfs = writes.vfs(Arc::new(SimVfs::new()));
        vfs.create_dir_all(Path::new("/w")).unwrap();
        vfs.create_dir_all(Path::new("/d")).unwrap();
        let wal = vfs
            .open(Path::new("/w/1.wal"), OpenMode::CreateNew)
            .unwrap();
        wal.write_all_at(&wal_header(1), 0).unwrap();
        let mut two = record(1, b"a");
        two.extend(record(2, b"bb"));
        wal.write_all_at(&two, 128).unwrap();
        // Another session (another salt) may use the same counters.
        let other = vfs
            .open(Path::new("/w/2.wal"), OpenMode::CreateNew)
            .unwrap();
        other.write_all_at(&wal_header(2), 0).unwrap();
        other.write_all_at(&record(1, b"a"), 128).unwrap();
        let pages = vfs
            .open(Path::new("/d/data.sealkv"), OpenMode::CreateNew)
            .unwrap();
        let mut header = vec![0u8; 4096];
        header[..8].copy_from_slice(PAGE_MAGIC);
        header[10..14].copy_from_slice(&4096u32.to_be_bytes());
        pages.write_all_at(&header, 0).unwrap();
        let mut run = page(5, 1);
        run.extend(vec![0u8; 4096]);
        pages.write_all_at(&run, 4096).unwrap();
        // The same page written again is one unit, not a reuse.
        pages.write_all_at(&page(5, 1), 4096).unwrap();
        let units = writes.units();
        assert_eq!(units.len(), 2 + 1 + 2 + 1 + 1);
        assert_eq!(sessions(&units), 3);
        assert!(reuses(&units).is_empty());

        // A third record under counter 2 of the first session, and a page
        // under counter 5 with other bytes: both reuses.
        wal.write_all_at(&record(2, b"cc"), 128 + two.len() as u64)
            .unwrap();
        pages.write_all_at(&page(5, 2), 3 * 4096).unwrap();
        let found = reuses(&writes.units());
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].nonce.counter, 2);
        assert_eq!(found[1].nonce.counter, 5);
    }
}
