//! The registry's byte format (version 1). Big-endian throughout.
//!
//! ```text
//! header (public, 89 bytes)
//!   0   8  magic "SKVKEYS\0"
//!   8   2  format version (1)
//!   10  16 database id
//!   26  1  KEK kind: 1 raw key, 2 passphrase (Argon2id)
//!   27  32 Argon2id salt (zeros for a raw key)
//!   59  4  Argon2id memory (KiB)     } zeros for a raw key
//!   63  4  Argon2id passes           }
//!   67  4  Argon2id lanes            }
//!   71  2  default algorithm id (of new data keys)
//!   73  8  generation (increases on every change)
//!   81  4  active data key id
//!   85  4  entry count n (at most 65 536)
//! 89   32  key check: HMAC-SHA256(KEK subkey "key-check", header)
//! 121  n x 68-byte entries
//!   0   4  key id
//!   4   1  purpose: 1 data key, 2 field key
//!   5   2  algorithm id
//!   7   1  state: 1 live, 2 retired (data), 3 destroyed (field)
//!   8   12 nonce                     } zeros when retired or destroyed:
//!   20  48 wrapped key + tag         } the key is gone from the file
//! then 32  MAC: HMAC-SHA256(KEK subkey "registry-mac", everything before)
//! then 32  SHA-256 of everything before (unkeyed: tells damage from a
//!          wrong key before any key is derived)
//! ```
//!
//! A wrapped key is the 32-byte key sealed with AES-256-GCM-SIV under the
//! KEK subkey "wrap", with a random nonce per write and AAD
//! `"sealkv/v1/registry-entry" || version || db id || key id || purpose ||
//! algorithm`, so an entry cannot be moved to another id, purpose,
//! algorithm or database.

use crate::algorithm::AlgorithmId;
use crate::ids::DbId;
use crate::keys::{KdfParams, KeyId};

use super::RegistryError;

pub(crate) const MAGIC: &[u8; 8] = b"SKVKEYS\0";
pub(crate) const VERSION: u16 = 1;
pub(crate) const HEADER_LEN: usize = 89;
pub(crate) const CHECK_LEN: usize = 32;
pub(crate) const ENTRY_LEN: usize = 68;
pub(crate) const MAC_LEN: usize = 32;
pub(crate) const HASH_LEN: usize = 32;
pub(crate) const WRAP_NONCE_LEN: usize = 12;
pub(crate) const WRAPPED_LEN: usize = 48;
/// Most entries a registry holds.
pub(crate) const MAX_ENTRIES: usize = 1 << 16;
/// Longest valid registry file.
pub const MAX_FILE_LEN: usize =
    HEADER_LEN + CHECK_LEN + MAX_ENTRIES * ENTRY_LEN + MAC_LEN + HASH_LEN;
pub(crate) const ENTRY_AAD_LABEL: &[u8] = b"sealkv/v1/registry-entry";

/// How the KEK is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KekKind {
    Raw,
    Passphrase { salt: [u8; 32], params: KdfParams },
}

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Data,
    Field,
}

impl Purpose {
    pub(crate) fn byte(self) -> u8 {
        match self {
            Purpose::Data => 1,
            Purpose::Field => 2,
        }
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            Purpose::Data => "data",
            Purpose::Field => "field",
        }
    }
}

/// Whether a key's bytes are still in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Live,
    Retired,
    Destroyed,
}

impl State {
    pub(crate) fn byte(self) -> u8 {
        match self {
            State::Live => 1,
            State::Retired => 2,
            State::Destroyed => 3,
        }
    }
}

/// The public header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) db_id: DbId,
    pub(crate) kek: KekKind,
    pub(crate) algorithm: AlgorithmId,
    pub(crate) generation: u64,
    pub(crate) active: KeyId,
    pub(crate) count: u32,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_be_bytes());
        h[10..26].copy_from_slice(self.db_id.as_bytes());
        match self.kek {
            KekKind::Raw => h[26] = 1,
            KekKind::Passphrase { salt, params } => {
                h[26] = 2;
                h[27..59].copy_from_slice(&salt);
                h[59..63].copy_from_slice(&params.memory_kib.to_be_bytes());
                h[63..67].copy_from_slice(&params.iterations.to_be_bytes());
                h[67..71].copy_from_slice(&params.parallelism.to_be_bytes());
            }
        }
        h[71..73].copy_from_slice(&self.algorithm.0.to_be_bytes());
        h[73..81].copy_from_slice(&self.generation.to_be_bytes());
        h[81..85].copy_from_slice(&self.active.0.to_be_bytes());
        h[85..89].copy_from_slice(&self.count.to_be_bytes());
        h
    }

    /// Parses a header; checks magic and version only (the rest is
    /// trusted once the hash and key check pass).
    pub(crate) fn decode(b: &[u8]) -> Result<Header, RegistryError> {
        let b: &[u8; HEADER_LEN] = b
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(RegistryError::corrupt("shorter than the header", 0))?;
        if &b[0..8] != MAGIC {
            return Err(RegistryError::corrupt(
                "not a sealkv key registry (bad magic)",
                0,
            ));
        }
        let version = u16::from_be_bytes([b[8], b[9]]);
        if version != VERSION {
            return Err(RegistryError::UnsupportedVersion(version));
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut db = [0u8; 16];
        db.copy_from_slice(&b[10..26]);
        let kek = match b[26] {
            1 => KekKind::Raw,
            2 => {
                let mut salt = [0u8; 32];
                salt.copy_from_slice(&b[27..59]);
                KekKind::Passphrase {
                    salt,
                    params: KdfParams {
                        memory_kib: u32_at(59),
                        iterations: u32_at(63),
                        parallelism: u32_at(67),
                    },
                }
            }
            _ => return Err(RegistryError::corrupt("unknown KEK kind", 26)),
        };
        let mut gen_bytes = [0u8; 8];
        gen_bytes.copy_from_slice(&b[73..81]);
        Ok(Header {
            db_id: DbId(db),
            kek,
            algorithm: AlgorithmId(u16::from_be_bytes([b[71], b[72]])),
            generation: u64::from_be_bytes(gen_bytes),
            active: KeyId(u32_at(81)),
            count: u32_at(85),
        })
    }
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) id: KeyId,
    pub(crate) purpose: Purpose,
    pub(crate) algorithm: AlgorithmId,
    pub(crate) state: State,
    pub(crate) nonce: [u8; WRAP_NONCE_LEN],
    pub(crate) wrapped: [u8; WRAPPED_LEN],
}

impl RawEntry {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0.to_be_bytes());
        out.push(self.purpose.byte());
        out.extend_from_slice(&self.algorithm.0.to_be_bytes());
        out.push(self.state.byte());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.wrapped);
    }

    /// Parses the entry at `at` (whose bytes are `b`).
    pub(crate) fn decode(b: &[u8], at: usize) -> Result<RawEntry, RegistryError> {
        let b: &[u8; ENTRY_LEN] = b
            .try_into()
            .map_err(|_| RegistryError::corrupt("truncated entry", at))?;
        let purpose = match b[4] {
            1 => Purpose::Data,
            2 => Purpose::Field,
            _ => return Err(RegistryError::corrupt("unknown key purpose", at + 4)),
        };
        let state = match b[7] {
            1 => State::Live,
            2 => State::Retired,
            3 => State::Destroyed,
            _ => return Err(RegistryError::corrupt("unknown key state", at + 7)),
        };
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        nonce.copy_from_slice(&b[8..20]);
        let mut wrapped = [0u8; WRAPPED_LEN];
        wrapped.copy_from_slice(&b[20..68]);
        Ok(RawEntry {
            id: KeyId(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            purpose,
            algorithm: AlgorithmId(u16::from_be_bytes([b[5], b[6]])),
            state,
            nonce,
            wrapped,
        })
    }

    /// The AAD that binds a wrapped key to its place.
    pub(crate) fn aad(&self, db_id: &DbId) -> Vec<u8> {
        let mut a = Vec::with_capacity(ENTRY_AAD_LABEL.len() + 2 + 16 + 4 + 1 + 2);
        a.extend_from_slice(ENTRY_AAD_LABEL);
        a.extend_from_slice(&VERSION.to_be_bytes());
        a.extend_from_slice(db_id.as_bytes());
        a.extend_from_slice(&self.id.0.to_be_bytes());
        a.push(self.purpose.byte());
        a.extend_from_slice(&self.algorithm.0.to_be_bytes());
        a
    }
}
