//! The registry's byte layout (format version 2, big-endian; version 1 is
//! still read): parsing into plain fields, and the constants both
//! directions share. No cryptography
//! here beyond the unkeyed SHA-256; docs/FORMAT.md documents every byte.

use sha2::{Digest, Sha256};

use crate::algorithm::AlgorithmId;
use crate::ids::DbId;
use crate::keys::{KdfParams, KeyId};

use super::error::RegistryError;
use super::{KekKind, KeyPurpose, KeyState};

/// The file's first eight bytes.
pub(super) const MAGIC: &[u8; 8] = b"SEALKEYS";
/// The format version this build writes.
pub(super) const VERSION: u16 = 2;
/// The format version that introduced the wrapper section, named in every
/// wrap context.
const WRAPPER_SECTION_VERSION: u16 = 2;
/// The older format version this build still reads: no wrapper section.
pub(super) const VERSION_1: u16 = 1;
/// The context a key wrapper binds a wrapped root key to (its AEAD's
/// associated data, a KMS's encryption context): `SEALKEYS`, the format
/// version that introduced the wrapper section (2, a u16: a later version
/// keeps naming 2 for the wrapped keys it reads), the database id (16 bytes), then the wrapper kind and the
/// key id, each as a u16 length and its bytes. A wrapped root key copied
/// from another database, or recorded under another kind or key id, then
/// fails at the unwrap.
pub(super) fn wrap_context(db_id: &DbId, kind: &str, key_id: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(MAGIC.len() + 2 + 16 + 4 + kind.len() + key_id.len());
    c.extend_from_slice(MAGIC);
    c.extend_from_slice(&WRAPPER_SECTION_VERSION.to_be_bytes());
    c.extend_from_slice(&db_id.0);
    for part in [kind.as_bytes(), key_id.as_bytes()] {
        // Both are bounded far below u16::MAX (MAX_WRAPPER_KIND_LEN,
        // MAX_WRAPPING_KEY_ID_LEN), at creation and when parsed.
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        c.extend_from_slice(&len.to_be_bytes());
        c.extend_from_slice(part);
    }
    c
}

/// Length of the fixed public header (magic through key count).
pub(super) const HEADER_LEN: usize = 90;
/// Length of a MAC, the key check or the hash.
pub(super) const DIGEST_LEN: usize = 32;
/// Offset of the first entry of a registry without a wrapper section.
#[cfg(test)]
pub(super) const ENTRIES_OFFSET: usize = HEADER_LEN + 2 + DIGEST_LEN;
/// Length of an entry's fixed part.
pub(super) const ENTRY_FIXED_LEN: usize = 8;
/// Length of a wrapped key: 32 bytes of ciphertext and a 16-byte tag.
pub(super) const WRAPPED_LEN: usize = 48;
/// The shortest valid registry (version 1): header, key check, no
/// entries, MAC, hash.
pub(super) const MIN_LEN: usize = HEADER_LEN + DIGEST_LEN + 2 * DIGEST_LEN;

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

/// The key wrapper that wrapped the registry's root key, and the wrapped
/// root key, as stored (all public).
#[derive(Clone, PartialEq, Eq)]
pub(super) struct StoredWrap {
    pub(super) kind: String,
    pub(super) key_id: String,
    pub(super) wrapped: Vec<u8>,
}

/// The public header, decoded.
pub(super) struct Header {
    pub(super) db_id: DbId,
    pub(super) kek_kind: KekKind,
    pub(super) kdf: Option<StoredKdf>,
    pub(super) wrap: Option<StoredWrap>,
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
    /// The format version read.
    pub(super) version: u16,
    pub(super) header: Header,
    /// The fixed header and (from version 2) the wrapper section: what the
    /// key check covers.
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
    if version != VERSION && version != VERSION_1 {
        return Err(RegistryError::UnsupportedVersion(version));
    }
    debug_assert_eq!(r.pos, OFF_DB_ID);
    let db_id = DbId(r.array("database id")?);
    let kek_kind = match r.u8("KEK kind")? {
        1 => KekKind::Raw,
        2 => KekKind::Passphrase,
        3 if version >= VERSION => KekKind::Wrapped,
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
        KekKind::Raw | KekKind::Wrapped => {
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
    let wrap = if version >= VERSION {
        parse_wrapper_section(&mut r, kek_kind)?
    } else {
        None
    };
    let header_len = r.pos;
    let key_check = r.take(DIGEST_LEN, "key check")?;
    let entries_at = r.pos;

    let mac_at = body.len() - DIGEST_LEN;
    // Each entry takes at least ENTRY_FIXED_LEN bytes: bound the count by the
    // length before allocating for it.
    let room = mac_at
        .checked_sub(entries_at)
        .ok_or(corrupt("registry shorter than its fixed parts", entries_at))?
        / ENTRY_FIXED_LEN;
    if key_count as usize > room {
        return Err(corrupt("key count larger than the file", OFF_KEY_COUNT));
    }
    // Bounded: the count comes from the file, before any key check.
    let mut entries = Vec::with_capacity((key_count as usize).min(4096));
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
        return Err(corrupt("not exactly one active data key", entries_at));
    }
    let (mac_input, rest) = body.split_at(mac_at);
    Ok(Parsed {
        version,
        header: Header {
            db_id,
            kek_kind,
            kdf,
            wrap,
            default_algorithm,
            generation,
            next_id,
            key_count,
        },
        header_bytes: body.get(..header_len).ok_or(corrupt("header", 0))?,
        key_check,
        mac_input,
        mac: rest,
        entries,
    })
}

/// The wrapper section of a version-2 header: its length (u16), then for a
/// wrapped root key the wrapper kind (u8 length, ASCII), the wrapping key
/// id (u8 length, UTF-8) and the wrapped root key (u16 length); empty for
/// the other KEK kinds.
fn parse_wrapper_section(
    r: &mut Reader<'_>,
    kek_kind: KekKind,
) -> Result<Option<StoredWrap>, RegistryError> {
    let at = r.pos;
    let len = usize::from(r.u16("wrapper section length")?);
    let start = r.pos;
    if kek_kind != KekKind::Wrapped {
        return if len == 0 {
            Ok(None)
        } else {
            Err(corrupt("wrapper section for a key that is not wrapped", at))
        };
    }
    let kind_len = usize::from(r.u8("wrapper kind length")?);
    let kind = r.take(kind_len, "wrapper kind")?;
    let id_len = usize::from(r.u8("wrapping key id length")?);
    let key_id = r.take(id_len, "wrapping key id")?;
    let wrapped_len = usize::from(r.u16("wrapped root key length")?);
    let wrapped = r.take(wrapped_len, "wrapped root key")?;
    if r.pos - start != len {
        return Err(corrupt("wrapper section length does not add up", at));
    }
    let kind = std::str::from_utf8(kind)
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= crate::MAX_WRAPPER_KIND_LEN && k.is_ascii())
        .ok_or(corrupt("wrapper kind is not 1 to 32 ASCII bytes", start))?;
    let key_id = std::str::from_utf8(key_id)
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or(corrupt("wrapping key id is not UTF-8", start))?;
    if wrapped.is_empty() || wrapped.len() > crate::MAX_WRAPPED_LEN {
        return Err(corrupt("wrapped root key length out of bounds", start));
    }
    Ok(Some(StoredWrap {
        kind: kind.to_string(),
        key_id: key_id.to_string(),
        wrapped: wrapped.to_vec(),
    }))
}

/// Encodes the public header: the fixed part and the wrapper section.
pub(super) fn encode_header(h: &Header) -> Vec<u8> {
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
            KekKind::Wrapped => 3,
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
    let mut header = out.to_vec();
    let mut section = Vec::new();
    if let Some(wrap) = &h.wrap {
        // The lengths were checked when the wrapper reported them.
        debug_assert!(wrap.kind.len() <= crate::MAX_WRAPPER_KIND_LEN);
        debug_assert!(wrap.key_id.len() <= crate::MAX_WRAPPING_KEY_ID_LEN);
        debug_assert!(wrap.wrapped.len() <= crate::MAX_WRAPPED_LEN);
        section.push(wrap.kind.len() as u8);
        section.extend_from_slice(wrap.kind.as_bytes());
        section.push(wrap.key_id.len() as u8);
        section.extend_from_slice(wrap.key_id.as_bytes());
        section.extend_from_slice(&(wrap.wrapped.len() as u16).to_be_bytes());
        section.extend_from_slice(&wrap.wrapped);
    }
    header.extend_from_slice(&(section.len() as u16).to_be_bytes());
    header.extend_from_slice(&section);
    header
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
/// and the format version (`version`: the one read, or [`VERSION`]).
pub(super) fn wrap_aad(
    version: u16,
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
    w.put(&version.to_be_bytes());
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
