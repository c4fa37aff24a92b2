//! [`FileAnchor`]: the freshness anchor as a small file on another path.
//!
//! The file is two 512-byte slots (docs/FORMAT.md, "Freshness anchor
//! file"). An update writes the slot that does not hold the newest state,
//! with the next sequence number, and fdatasyncs: one sector-sized write,
//! so a power cut in the middle tears at most that slot, and the other
//! still holds the previous state. Each slot carries an HMAC-SHA256 under
//! the anchor subkey of the master key (two during a rekey) and a CRC32C
//! of the whole slot.

#![deny(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use sealkv_crypto_envelope::registry::ANCHOR_TAG_LEN;
use sealkv_crypto_envelope::{DbId, checksum_tag, verify_checksum_tag};
use sealkv_fileio::{FileError, FileOp, OpenMode, StdVfs, Vfs, VfsFile, write_atomic};

use super::{AnchorError, AnchorKeys, AnchorState, FreshnessAnchor};

const MAGIC: &[u8; 8] = b"SKVANCHR";
/// Version 2 records the lineage; version 1 (read, never written) did not.
const VERSION: u16 = 2;
const VERSION_1: u16 = 1;
/// Slot size: one sector, so one slot's write is one sector's.
const SLOT: usize = 512;
const FILE_LEN: usize = 2 * SLOT;
/// Bytes 0..120 of a slot: what the tags authenticate.
const BODY: usize = 120;
/// Version 1's body: no lineage.
const BODY_V1: usize = 104;
/// At most two tags (a rekey's old and new master keys).
const MAX_TAGS: usize = 2;
const CRC_LEN: usize = 16;

/// A decoded, checked slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    state: AnchorState,
    sequence: u64,
}

/// Why a slot does not count.
enum Bad {
    /// All zeros: never written.
    Empty,
    /// Damaged (checksum, magic, version, layout).
    Damaged(&'static str),
    /// Whole, but no tag verifies under the keys given.
    Unauthenticated,
}

fn word(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The `N` bytes of `bytes` at `at` (zeros past its end).
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .unwrap_or([0; N])
}

/// Slot bytes (`SLOT` long) for `state` with `sequence`.
fn encode(state: &AnchorState, sequence: u64, keys: &AnchorKeys) -> Vec<u8> {
    let mut body = [0u8; BODY];
    body[..8].copy_from_slice(MAGIC);
    body[8..10].copy_from_slice(&VERSION.to_be_bytes());
    // The tag count is part of what the tags authenticate.
    let count = keys.len().min(MAX_TAGS) as u16;
    body[10..12].copy_from_slice(&count.to_be_bytes());
    body[16..32].copy_from_slice(state.db_id.as_bytes());
    body[32..40].copy_from_slice(&state.commit.to_be_bytes());
    body[40..48].copy_from_slice(&state.registry_generation.to_be_bytes());
    body[48..56].copy_from_slice(&sequence.to_be_bytes());
    body[56..88].copy_from_slice(&state.registry_hash);
    body[88..104].copy_from_slice(&state.meta_tag);
    body[104..120].copy_from_slice(&state.lineage);
    let mut out = Vec::with_capacity(SLOT);
    out.extend_from_slice(&body);
    for t in keys.tags(&body).iter().take(MAX_TAGS) {
        out.extend_from_slice(t);
    }
    let crc = checksum_tag(b"sealkv/anchor/v1", &out);
    out.extend_from_slice(&crc);
    out.resize(SLOT, 0);
    out
}

fn decode(slot: &[u8], keys: &AnchorKeys) -> Result<Slot, Bad> {
    if slot.iter().all(|&b| b == 0) {
        return Err(Bad::Empty);
    }
    if slot.get(..8) != Some(&MAGIC[..]) {
        return Err(Bad::Damaged("bad magic: not a sealkv freshness anchor"));
    }
    let at = |i: usize| slot.get(i).copied().unwrap_or(0);
    // The version sets the body's length; the checksum below covers it,
    // so a damaged version is caught there or here.
    let body_len = match u16::from_be_bytes([at(8), at(9)]) {
        VERSION => BODY,
        VERSION_1 => BODY_V1,
        _ => return Err(Bad::Damaged("unknown version")),
    };
    let body = slot.get(..body_len).ok_or(Bad::Damaged("slot cut short"))?;
    let count = usize::from(u16::from_be_bytes([at(10), at(11)]));
    if count > MAX_TAGS {
        return Err(Bad::Damaged("too many tags"));
    }
    let end = body_len + count * ANCHOR_TAG_LEN;
    let (Some(covered), Some(crc)) = (slot.get(..end), slot.get(end..end + CRC_LEN)) else {
        return Err(Bad::Damaged("slot cut short"));
    };
    if !verify_checksum_tag(b"sealkv/anchor/v1", covered, crc) {
        return Err(Bad::Damaged("checksum mismatch (a torn write, or damage)"));
    }
    let tags: Vec<[u8; ANCHOR_TAG_LEN]> = covered
        .get(body_len..)
        .unwrap_or_default()
        .chunks_exact(ANCHOR_TAG_LEN)
        .filter_map(|c| <[u8; ANCHOR_TAG_LEN]>::try_from(c).ok())
        .collect();
    if !keys.verify(body, &tags) {
        return Err(Bad::Unauthenticated);
    }
    Ok(Slot {
        state: AnchorState {
            db_id: DbId(array(body, 16)),
            commit: word(body, 32),
            registry_generation: word(body, 40),
            registry_hash: array(body, 56),
            meta_tag: array(body, 88),
            // Version 1 recorded no lineage: zeros.
            lineage: array(body, 104),
        },
        sequence: word(body, 48),
    })
}

/// The open file and which slot holds the newest state.
struct Open {
    file: Arc<dyn VfsFile>,
    /// The newest valid slot (0 or 1) and its sequence number.
    newest: Option<(usize, u64)>,
}

/// A freshness anchor kept in a small file on another path: another
/// volume, another machine's mount, anywhere a restore of the database
/// directory does not reach. Updated in place (one 512-byte write and one
/// fdatasync per update), authenticated under the master key's anchor
/// subkey, and created with an fsync of its directory.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use sealkv::anchor::FileAnchor;
/// use sealkv::crypto::MasterKey;
/// use sealkv::{Config, Db};
/// let dir = tempfile::tempdir()?;
/// let anchor = Arc::new(FileAnchor::new(dir.path().join("db.anchor")));
/// let config = Config::new(dir.path().join("db"))
///     .encryption_key(MasterKey::from_bytes(&[7; 32])?)
///     .freshness_anchor(anchor);
/// let db = Db::open_with_config(config)?;
/// db.put(b"k", b"v")?;
/// db.close()?;
/// # Ok(())
/// # }
/// ```
pub struct FileAnchor {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    open: Mutex<Option<Open>>,
}

impl std::fmt::Debug for FileAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAnchor")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileAnchor {
    /// The anchor file at `path` on the real file system. It is created at
    /// the first update (its directory must exist: a missing mount is an
    /// error, not a directory to create); keep it outside the database
    /// directory.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self::with_vfs(Arc::new(StdVfs::new()), path)
    }

    /// The anchor file at `path` on `vfs` (tests use a simulated disk).
    pub fn with_vfs(vfs: Arc<dyn Vfs>, path: impl AsRef<Path>) -> Self {
        FileAnchor {
            vfs,
            path: path.as_ref().to_path_buf(),
            open: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, what: impl Into<String>) -> AnchorError {
        AnchorError::Corrupt {
            location: self.path.display().to_string(),
            what: what.into(),
        }
    }

    fn io(&self, op: FileOp) -> impl FnOnce(std::io::Error) -> AnchorError + '_ {
        move |e| AnchorError::Io(FileError::new(op, &self.path, e))
    }

    /// Opens the file (if it exists) and reads both slots.
    fn read(&self, keys: &AnchorKeys) -> Result<Option<(Open, Option<Slot>)>, AnchorError> {
        if !self.vfs.exists(&self.path).map_err(self.io(FileOp::Open))? {
            return Ok(None);
        }
        let file = self
            .vfs
            .open(&self.path, OpenMode::ReadWrite)
            .or_else(|_| self.vfs.open(&self.path, OpenMode::Read))
            .map_err(self.io(FileOp::Open))?;
        let len = file.len().map_err(self.io(FileOp::Read))?;
        if len != FILE_LEN as u64 {
            return Err(self.corrupt(format!(
                "the file is {len} bytes, not {FILE_LEN} (cut short or not an anchor)"
            )));
        }
        let mut bytes = [0u8; FILE_LEN];
        file.read_exact_at(&mut bytes, 0)
            .map_err(self.io(FileOp::Read))?;
        let mut best: Option<(usize, Slot)> = None;
        let mut why = Vec::new();
        let mut whole = false;
        for (i, raw) in bytes.chunks_exact(SLOT).enumerate() {
            match decode(raw, keys) {
                Ok(s) if best.is_none_or(|(_, b)| s.sequence > b.sequence) => best = Some((i, s)),
                Ok(_) | Err(Bad::Empty) => {}
                Err(Bad::Damaged(w)) => why.push(format!("slot {i}: {w}")),
                Err(Bad::Unauthenticated) => {
                    whole = true;
                    why.push(format!(
                    "slot {i} does not authenticate under {}",
                    if keys.is_keyed() {
                        "this database's master key (another key's or another database's anchor, or a forged one)"
                    } else {
                        "no key (it was written with a key: open the database with it)"
                    }
                    ));
                }
            }
        }
        if best.is_none() && whole {
            return Err(AnchorError::Unauthenticated {
                location: self.path.display().to_string(),
                what: why.join("; "),
            });
        }
        if best.is_none() && !why.is_empty() {
            return Err(self.corrupt(why.join("; ")));
        }
        let open = Open {
            file,
            newest: best.map(|(i, s)| (i, s.sequence)),
        };
        Ok(Some((open, best.map(|(_, s)| s))))
    }
}

impl FreshnessAnchor for FileAnchor {
    fn load(&self, keys: &AnchorKeys) -> Result<Option<AnchorState>, AnchorError> {
        let mut open = self.open.lock();
        match self.read(keys)? {
            None => {
                *open = None;
                Ok(None)
            }
            Some((o, slot)) => {
                *open = Some(o);
                Ok(slot.map(|s| s.state))
            }
        }
    }

    fn store(&self, state: &AnchorState, keys: &AnchorKeys) -> Result<(), AnchorError> {
        let mut open = self.open.lock();
        if open.is_none() {
            // Never loaded through this handle: find the newest slot. A
            // file that does not authenticate under these keys is replaced
            // slot by slot like any other.
            *open = match self.read(keys) {
                Ok(o) => o.map(|(o, _)| o),
                Err(AnchorError::Corrupt { .. } | AnchorError::Unauthenticated { .. }) => None,
                Err(e) => return Err(e),
            };
        }
        match open.as_mut() {
            None => {
                // A new file: slot 0, created whole and durably (with its
                // directory entry).
                let mut bytes = encode(state, 1, keys);
                bytes.resize(FILE_LEN, 0);
                write_atomic(self.vfs.as_ref(), &self.path, &bytes)?;
                let file = self
                    .vfs
                    .open(&self.path, OpenMode::ReadWrite)
                    .map_err(self.io(FileOp::Open))?;
                *open = Some(Open {
                    file,
                    newest: Some((0, 1)),
                });
            }
            Some(o) => {
                let (slot, sequence) = match o.newest {
                    Some((i, seq)) => (1 - i, seq.saturating_add(1)),
                    None => (0, 1),
                };
                let result = o
                    .file
                    .write_all_at(&encode(state, sequence, keys), (slot * SLOT) as u64)
                    .map_err(self.io(FileOp::Write))
                    .and_then(|()| o.file.sync_data().map_err(self.io(FileOp::Sync)));
                if let Err(e) = result {
                    // Which slot holds what is unknown now: read it again.
                    *open = None;
                    return Err(e);
                }
                o.newest = Some((slot, sequence));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use sealkv_fileio::SimVfs;

    fn state(commit: u64) -> AnchorState {
        AnchorState {
            db_id: DbId([4; 16]),
            commit,
            registry_generation: commit / 2,
            registry_hash: [commit as u8; 32],
            meta_tag: [5; 16],
            lineage: [6; 16],
        }
    }

    /// A version 1 slot (no lineage), as a build before lineages wrote it.
    fn encode_v1(state: &AnchorState, sequence: u64) -> Vec<u8> {
        let mut body = [0u8; BODY_V1];
        body[..8].copy_from_slice(MAGIC);
        body[8..10].copy_from_slice(&VERSION_1.to_be_bytes());
        body[16..32].copy_from_slice(state.db_id.as_bytes());
        body[32..40].copy_from_slice(&state.commit.to_be_bytes());
        body[40..48].copy_from_slice(&state.registry_generation.to_be_bytes());
        body[48..56].copy_from_slice(&sequence.to_be_bytes());
        body[56..88].copy_from_slice(&state.registry_hash);
        body[88..104].copy_from_slice(&state.meta_tag);
        let mut out = body.to_vec();
        let crc = checksum_tag(b"sealkv/anchor/v1", &out);
        out.extend_from_slice(&crc);
        out.resize(SLOT, 0);
        out
    }

    /// A file of version 1 reads with no lineage; the next update writes
    /// version 2 into the other slot, and the newest state wins.
    #[test]
    fn a_version_1_file_reads_without_a_lineage_and_is_upgraded() {
        let sim = SimVfs::new();
        sim.create_dir_all(Path::new("/anchors")).unwrap();
        let path = Path::new("/anchors/db.anchor");
        let old = AnchorState {
            lineage: [0; 16],
            ..state(3)
        };
        let mut bytes = encode_v1(&old, 1);
        bytes.resize(FILE_LEN, 0);
        sim.write_file(path, &bytes);
        let keys = AnchorKeys::none();
        let a = FileAnchor::with_vfs(Arc::new(sim.clone()), path);
        assert_eq!(a.load(&keys).unwrap(), Some(old));
        a.store(&state(4), &keys).unwrap();
        let b = FileAnchor::with_vfs(Arc::new(sim.clone()), path);
        assert_eq!(b.load(&keys).unwrap(), Some(state(4)));
        let bytes = sim.read_file(path).unwrap();
        assert_eq!(&bytes[SLOT + 8..SLOT + 10], &VERSION.to_be_bytes());
        // A version this build does not know is damage, named.
        let mut unknown = encode_v1(&old, 1);
        unknown[9] = 9;
        assert!(matches!(
            decode(&unknown, &keys),
            Err(Bad::Damaged("unknown version"))
        ));
    }

    #[test]
    fn keeps_the_newest_state_across_power_cuts_and_torn_slots() {
        let sim = SimVfs::new();
        let path = Path::new("/anchors/db.anchor");
        // The directory must exist: a missing mount is an error, not a
        // directory to create.
        let a = FileAnchor::with_vfs(Arc::new(sim.clone()), path);
        assert!(matches!(
            a.store(&state(1), &AnchorKeys::none()),
            Err(AnchorError::Io(_))
        ));
        sim.create_dir_all(Path::new("/anchors")).unwrap();
        let a = FileAnchor::with_vfs(Arc::new(sim.clone()), path);
        let keys = AnchorKeys::none();
        assert_eq!(a.load(&keys).unwrap(), None);
        for commit in 1..=5 {
            a.store(&state(commit), &keys).unwrap();
        }
        sim.crash();
        let b = FileAnchor::with_vfs(Arc::new(sim.clone()), path);
        assert_eq!(b.load(&keys).unwrap(), Some(state(5)));
        // The newest slot torn: the previous state is what remains.
        let mut bytes = sim.read_file(path).unwrap();
        let newest = (0..2).max_by_key(|i| word(&bytes[i * SLOT..], 48)).unwrap();
        bytes[newest * SLOT + 300] ^= 1;
        bytes[newest * SLOT + 40] ^= 1;
        sim.write_file(path, &bytes);
        assert_eq!(b.load(&keys).unwrap(), Some(state(4)));
        // Both damaged: an error naming the file, not "no anchor".
        bytes[(1 - newest) * SLOT + 33] ^= 1;
        sim.write_file(path, &bytes);
        let e = b.load(&keys).unwrap_err();
        assert!(
            matches!(&e, AnchorError::Corrupt { location, .. } if location.contains("db.anchor")),
            "{e:?}"
        );
        sim.write_file(path, &bytes[..700]);
        assert!(matches!(b.load(&keys), Err(AnchorError::Corrupt { .. })));
    }
}
