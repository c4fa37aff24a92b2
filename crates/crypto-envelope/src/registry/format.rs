//! The registry's byte layout (format version 1, big-endian): parsing into
//! plain fields, and the constants both directions share. No cryptography
//! here beyond the unkeyed SHA-256; docs/FORMAT.md documents every byte.

use sha2::{Digest, Sha256};

use crate::algorithm::AlgorithmId;
use crate::ids::DbId;
use crate::keys::{KdfParams, KeyId};

use super::error::RegistryError;
use super::{KekKind, KeyPurpose, KeyState};

/// The file's first eight bytes.
pub(super) const MAGIC: &[u8; 8] = b"SEALKEYS";
/// The format version this build writes and reads.
pub(super) const VERSION: u16 = 1;
/// Length of the public header (magic through key count).
pub(super) const HEADER_LEN: usize = 90;
/// Offset of the key-check value.
pub(super) const KEY_CHECK_OFFSET: usize = HEADER_LEN;
/// Length of a MAC, the key check or the hash.
pub(super) const DIGEST_LEN: usize = 32;
/// Offset of the first entry.
pub(super) const ENTRIES_OFFSET: usize = KEY_CHECK_OFFSET + DIGEST_LEN;
/// Length of an entry's fixed part.
pub(super) const ENTRY_FIXED_LEN: usize = 8;
/// Length of a wrapped key: 32 bytes of ciphertext and a 16-byte tag.
pub(super) const WRAPPED_LEN: usize = 48;
/// The shortest valid registry: header, key check, no entries, MAC, hash.
pub(super) const MIN_LEN: usize = ENTRIES_OFFSET + 2 * DIGEST_LEN;

const OFF_VERSION: usize = 8;
const OFF_DB_ID: usize = 10;
const OFF_KEK_KIND: usize = 26;
const OFF_RESERVED: usize = 27;
const OFF_SALT: usize = 28;
const OFF_KDF: usize = 60;
const OFF_ALGORITHM: usize = 72;
pub(super) const OFF_GENERATION: usize = 74;
const OFF_NEXT_ID: usize = 82;
const OFF_KEY_COUNT: usize = 86;

/// The passphrase KDF's salt and cost, as stored.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct StoredKdf {
    pub(super) salt: [u8; 32],
    pub(super) params: KdfParams,
}

/// The public header, decoded.
pub(super) struct Header {
    pub(super) db_id: DbId,
    pub(super) kek_kind: KekKind,
    pub(super) kdf: Option<StoredKdf>,
    pub(super) default_algorithm: AlgorithmId,
    pub(super) generation: u64,
    pub(super) next_id: u32,
    pub(super) key_count: u32,
}

/// One entry, decoded (the wrapped key still sealed).
pub(super) struct RawEntry {
    pub(super) id: KeyId,
    pub(super) purpose: KeyPurpose,
    pub(super) state: KeyState,
    pub(super) algorithm: AlgorithmId,
    pub(super) wrapped: Option<[u8; WRAPPED_LEN]>,
    pub(super) offset: u64,
}

/// A registry whose structure and hash check out, before any key is used.
pub(super) struct Parsed<'a> {
    pub(super) header: Header,
    /// Bytes `0..HEADER_LEN`: what the key check covers.
    pub(super) header_bytes: &'a [u8],
    pub(super) key_check: &'a [u8],
    /// Everything the registry MAC covers.
    pub(super) mac_input: &'a [u8],
    pub(super) mac: &'a [u8],
    pub(super) entries: Vec<RawEntry>,
}

fn corrupt(what: &'static str, offset: usize) -> RegistryError {
    RegistryError::Corruption {
        what,
        offset: offset as u64,
    }
}

/// A little cursor that never panics: every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RegistryError> {
        let end = self.pos.checked_add(n).ok_or(corrupt(what, self.pos))?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(corrupt(what, self.pos))?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RegistryError> {
        let at = self.pos;
        self.take(N, what)?
            .try_into()
            .map_err(|_| corrupt(what, at))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RegistryError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, RegistryError> {
        self.array(what).map(u16::from_be_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RegistryError> {
        self.array(what).map(u32::from_be_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RegistryError> {
        self.array(what).map(u64::from_be_bytes)
    }
}

/// SHA-256 of `bytes`.
pub(super) fn sha256(bytes: &[u8]) -> [u8; DIGEST_LEN] {
    Sha256::digest(bytes).into()
}

/// Checks, in order: length and magic, the file hash, the version, then the
/// whole structure. Passes only bytes whose every field is well-formed; no
/// key is needed or used.
pub(super) fn parse(bytes: &[u8]) -> Result<Parsed<'_>, RegistryError> {
    if bytes.len() < MAGIC.len() || bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(corrupt("not a key registry (bad magic)", 0));
    }
    if bytes.len() < MIN_LEN {
        return Err(corrupt(
            "registry shorter than its fixed parts",
            bytes.len(),
        ));
    }
    let hash_at = bytes.len() - DIGEST_LEN;
    let (body, hash) = bytes.split_at(hash_at);
    if sha256(body)[..] != hash[..] {
        return Err(corrupt("file hash mismatch", hash_at));
    }
    let mut r = Reader {
        bytes: body,
        pos: OFF_VERSION,
    };
    let version = r.u16("version")?;
    if version != VERSION {
        return Err(RegistryError::UnsupportedVersion(version));
    }
    debug_assert_eq!(r.pos, OFF_DB_ID);
    let db_id = DbId(r.array("database id")?);
    let kek_kind = match r.u8("KEK kind")? {
        1 => KekKind::Raw,
        2 => KekKind::Passphrase,
        _ => return Err(corrupt("unknown KEK kind", OFF_KEK_KIND)),
    };
    if r.u8("reserved")? != 0 {
        return Err(corrupt("reserved byte is not zero", OFF_RESERVED));
    }
    debug_assert_eq!(r.pos, OFF_SALT);
    let salt: [u8; 32] = r.array("KDF salt")?;
    debug_assert_eq!(r.pos, OFF_KDF);
    let params = KdfParams {
        memory_kib: r.u32("KDF memory")?,
        iterations: r.u32("KDF passes")?,
        parallelism: r.u32("KDF lanes")?,
    };
    let kdf = match kek_kind {
        KekKind::Raw => {
            if salt != [0; 32]
                || params
                    != (KdfParams {
                        memory_kib: 0,
                        iterations: 0,
                        parallelism: 0,
                    })
            {
                return Err(corrupt("KDF fields set for a raw master key", OFF_SALT));
            }
            None
        }
        KekKind::Passphrase => {
            params.check().map_err(RegistryError::KdfCost)?;
            Some(StoredKdf { salt, params })
        }
    };
    debug_assert_eq!(r.pos, OFF_ALGORITHM);
    let default_algorithm = AlgorithmId(r.u16("default algorithm")?);
    debug_assert_eq!(r.pos, OFF_GENERATION);
    let generation = r.u64("generation")?;
    if generation == 0 {
        return Err(corrupt("generation is zero", OFF_GENERATION));
    }
    debug_assert_eq!(r.pos, OFF_NEXT_ID);
    let next_id = r.u32("next key id")?;
    debug_assert_eq!(r.pos, OFF_KEY_COUNT);
    let key_count = r.u32("key count")?;
    debug_assert_eq!(r.pos, HEADER_LEN);
    let key_check = r.take(DIGEST_LEN, "key check")?;

    let mac_at = body.len() - DIGEST_LEN;
    // Each entry takes at least ENTRY_FIXED_LEN bytes: bound the count by the
    // length before allocating for it.
    let room = (mac_at - ENTRIES_OFFSET) / ENTRY_FIXED_LEN;
    if key_count as usize > room {
        return Err(corrupt("key count larger than the file", OFF_KEY_COUNT));
    }
    let mut entries = Vec::with_capacity(key_count as usize);
    let mut data_active = 0usize;
    let mut last_id: Option<u32> = None;
    for _ in 0..key_count {
        let offset = r.pos;
        if offset >= mac_at {
            return Err(corrupt("entries run into the MAC", offset));
        }
        let id = r.u32("key id")?;
        if last_id.is_some_and(|l| id <= l) || id == 0 || id >= next_id {
            return Err(corrupt(
                "key ids not increasing, zero, or not below the next id",
                offset,
            ));
        }
        last_id = Some(id);
        let purpose = match r.u8("purpose")? {
            1 => KeyPurpose::Data,
            2 => KeyPurpose::Field,
            _ => return Err(corrupt("unknown key purpose", offset + 4)),
        };
        let state = match (purpose, r.u8("state")?) {
            (_, 1) => KeyState::Active,
            (KeyPurpose::Data, 2) => KeyState::Readable,
            (KeyPurpose::Data, 3) => KeyState::Retired,
            (KeyPurpose::Field, 4) => KeyState::Destroyed,
            _ => return Err(corrupt("key state impossible for its purpose", offset + 5)),
        };
        if purpose == KeyPurpose::Data && state == KeyState::Active {
            data_active += 1;
        }
        let algorithm = AlgorithmId(r.u16("algorithm")?);
        let wrapped = if state.has_material() {
            Some(r.array::<WRAPPED_LEN>("wrapped key")?)
        } else {
            None
        };
        entries.push(RawEntry {
            id: KeyId(id),
            purpose,
            state,
            algorithm,
            wrapped,
            offset: offset as u64,
        });
    }
    if r.pos != mac_at {
        return Err(corrupt("entries do not end where the MAC starts", r.pos));
    }
    if data_active != 1 {
        return Err(corrupt("not exactly one active data key", ENTRIES_OFFSET));
    }
    let (mac_input, rest) = body.split_at(mac_at);
    Ok(Parsed {
        header: Header {
            db_id,
            kek_kind,
            kdf,
            default_algorithm,
            generation,
            next_id,
            key_count,
        },
        header_bytes: body.get(..HEADER_LEN).ok_or(corrupt("header", 0))?,
        key_check,
        mac_input,
        mac: rest,
        entries,
    })
}

/// Encodes the public header.
pub(super) fn encode_header(h: &Header) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    let mut w = Writer {
        out: &mut out,
        pos: 0,
    };
    w.put(MAGIC);
    w.put(&VERSION.to_be_bytes());
    w.put(h.db_id.as_bytes());
    w.put(&[
        match h.kek_kind {
            KekKind::Raw => 1,
            KekKind::Passphrase => 2,
        },
        0,
    ]);
    let (salt, p) = match &h.kdf {
        Some(k) => (k.salt, k.params),
        None => (
            [0; 32],
            KdfParams {
                memory_kib: 0,
                iterations: 0,
                parallelism: 0,
            },
        ),
    };
    w.put(&salt);
    w.put(&p.memory_kib.to_be_bytes());
    w.put(&p.iterations.to_be_bytes());
    w.put(&p.parallelism.to_be_bytes());
    w.put(&h.default_algorithm.0.to_be_bytes());
    w.put(&h.generation.to_be_bytes());
    w.put(&h.next_id.to_be_bytes());
    w.put(&h.key_count.to_be_bytes());
    debug_assert_eq!(w.pos, HEADER_LEN);
    out
}

struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        // The header is a fixed layout of fixed-size fields: this cannot run
        // past the end; stay total anyway.
        if let Some(dst) = self.out.get_mut(self.pos..self.pos + b.len()) {
            dst.copy_from_slice(b);
        } else {
            debug_assert!(false, "header field past the header");
        }
        self.pos += b.len();
    }
}

/// Appends one entry.
pub(super) fn encode_entry(
    out: &mut Vec<u8>,
    id: KeyId,
    purpose: KeyPurpose,
    state: KeyState,
    algorithm: AlgorithmId,
    wrapped: Option<&[u8; WRAPPED_LEN]>,
) {
    debug_assert_eq!(state.has_material(), wrapped.is_some());
    out.extend_from_slice(&id.0.to_be_bytes());
    out.push(match purpose {
        KeyPurpose::Data => 1,
        KeyPurpose::Field => 2,
    });
    out.push(match state {
        KeyState::Active => 1,
        KeyState::Readable => 2,
        KeyState::Retired => 3,
        KeyState::Destroyed => 4,
    });
    out.extend_from_slice(&algorithm.0.to_be_bytes());
    if let Some(w) = wrapped {
        out.extend_from_slice(w);
    }
}

/// The AAD that binds a wrapped key to its database, id, purpose, algorithm
/// and the format version.
pub(super) fn wrap_aad(
    db_id: &DbId,
    id: KeyId,
    purpose: KeyPurpose,
    algorithm: AlgorithmId,
) -> [u8; 33] {
    let mut aad = [0u8; 33];
    let mut w = Writer {
        out: &mut aad,
        pos: 0,
    };
    w.put(MAGIC);
    w.put(&VERSION.to_be_bytes());
    w.put(db_id.as_bytes());
    w.put(&id.0.to_be_bytes());
    w.put(&[match purpose {
        KeyPurpose::Data => 1,
        KeyPurpose::Field => 2,
    }]);
    w.put(&algorithm.0.to_be_bytes());
    debug_assert_eq!(w.pos, 33);
    aad
}

/// The wrapping nonce of key `id`: eight zero bytes, then the id.
pub(super) fn wrap_nonce(id: KeyId) -> [u8; 12] {
    let mut n = [0u8; 12];
    let mut w = Writer {
        out: &mut n,
        pos: 8,
    };
    w.put(&id.0.to_be_bytes());
    n
}
