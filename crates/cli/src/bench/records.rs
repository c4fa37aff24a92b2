//! The records every engine holds: keys, checkable values, scattered
//! orders, and the model of what each record holds now.
//!
//! Keys are 16 bytes (`"user-key"` and a big-endian index), so the records
//! are dense: indices `0..n` in key order. A value is derived from its
//! record's index and a version number, and the [`Model`] keeps each
//! record's version as of the last commit, so every read is checked
//! against exactly the value last committed. Random orders come from a
//! bijection on the index space (no shuffled table in memory).

use std::path::Path;

use crate::exit::CliError;

/// Bytes in a key.
pub(crate) const KEY_LEN: usize = 16;

/// The 16-byte key of record `i`.
pub(crate) fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(b"user-key");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// The record index inside a 16-byte key, if it is one of ours.
pub(crate) fn index_of(key: &[u8]) -> Option<u64> {
    if key.len() != KEY_LEN || !key.starts_with(b"user-key") {
        return None;
    }
    key.get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// Fills `buf` with the value of record `i` at `version`.
pub(crate) fn value_into(i: u64, version: u8, buf: &mut [u8]) {
    let mut x = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(version).wrapping_mul(0xD1B5_4A32_D192_ED03))
        | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x.to_le_bytes()
    };
    // Whole words as plain stores (a per-chunk `copy_from_slice` of a
    // variable length was a memcpy call per 8 bytes: 3% of a 4 KiB profile).
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&next());
    }
    let rest = chunks.into_remainder();
    let n = rest.len();
    rest.copy_from_slice(&next()[..n]);
}

/// The error of a record that did not read back as last committed.
pub(crate) fn mismatch(i: u64) -> CliError {
    CliError::CheckFailed(format!("bench: record {i} did not read back as written"))
}

/// The version of every record as of the last commit: records `0..len()`,
/// each written at least once. One byte a record: a version wraps after 256
/// writes of the same record, which only a stale read of exactly that age
/// could hide.
#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    versions: Vec<u8>,
}

impl Model {
    /// `n` records, every one at version 0 (a fresh load).
    pub(crate) fn loaded(n: u64) -> Self {
        Model {
            versions: vec![0; usize::try_from(n).unwrap_or(usize::MAX)],
        }
    }

    /// How many records there are.
    pub(crate) fn len(&self) -> u64 {
        self.versions.len() as u64
    }

    /// The version of record `i`, if it exists.
    pub(crate) fn version(&self, i: u64) -> Option<u8> {
        self.versions.get(usize::try_from(i).ok()?).copied()
    }

    /// Records a committed write of record `i` at `version`: an existing
    /// record, or the next new one (`i == len()`).
    pub(crate) fn commit(&mut self, i: u64, version: u8) {
        match usize::try_from(i) {
            Ok(at) if at < self.versions.len() => {
                if let Some(v) = self.versions.get_mut(at) {
                    *v = version;
                }
            }
            _ => self.versions.push(version),
        }
    }

    /// Checks `got`, the value read for record `i`, against the model
    /// (`scratch` is reused for the expected value).
    pub(crate) fn check(
        &self,
        i: u64,
        got: Option<&[u8]>,
        scratch: &mut Vec<u8>,
        value_len: usize,
    ) -> Result<(), CliError> {
        let version = self.version(i).ok_or_else(|| mismatch(i))?;
        check_version(i, version, got, scratch, value_len)
    }

    /// Every record one version ahead of what was written: a model that no
    /// read can match (for the tests of the checks).
    #[cfg(test)]
    pub(crate) fn skew(&mut self) {
        for v in &mut self.versions {
            *v = v.wrapping_add(1);
        }
    }
}

/// Checks `got` against the value of record `i` at `version`.
pub(crate) fn check_version(
    i: u64,
    version: u8,
    got: Option<&[u8]>,
    scratch: &mut Vec<u8>,
    value_len: usize,
) -> Result<(), CliError> {
    scratch.resize(value_len, 0);
    value_into(i, version, scratch);
    if got == Some(&scratch[..]) {
        Ok(())
    } else {
        Err(mismatch(i))
    }
}

/// A bijection on `0..n`, for visiting every record once in a scattered
/// order: an invertible mix on the next power of two, walked until it lands
/// inside the range.
pub(crate) struct Scatter {
    n: u64,
    bits: u32,
    mask: u64,
    salt: u64,
}

impl Scatter {
    pub(crate) fn new(n: u64, salt: u64) -> Self {
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        Scatter {
            n,
            bits,
            mask,
            salt: salt & mask,
        }
    }

    fn mix(&self, mut x: u64) -> u64 {
        x = (x ^ self.salt) & self.mask;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & self.mask;
        x ^= x >> (self.bits / 2 + 1);
        x = x.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) & self.mask;
        x ^= x >> (self.bits / 2 + 1);
        x
    }

    /// The `i`-th index of the order (`i < n`).
    pub(crate) fn at(&self, i: u64) -> u64 {
        let mut x = self.mix(i);
        while x >= self.n {
            x = self.mix(x);
        }
        x
    }
}

/// Removes a benchmark directory if it exists.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), CliError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CliError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// A fresh, empty directory at `dir`.
#[cfg(feature = "peers")]
pub(crate) fn fresh_dir(dir: &Path) -> Result<(), CliError> {
    remove_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_visits_every_index_once() {
        for n in [1u64, 2, 3, 7, 1000, 4097] {
            let s = Scatter::new(n, 5);
            let mut seen: Vec<u64> = (0..n).map(|i| s.at(i)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
        // And it does scatter.
        let s = Scatter::new(1000, 5);
        assert_ne!(
            (0..10).map(|i| s.at(i)).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn values_differ_by_index_and_version() {
        let mut a = [0u8; 100];
        let mut b = [0u8; 100];
        value_into(1, 0, &mut a);
        value_into(2, 0, &mut b);
        assert_ne!(a, b);
        value_into(1, 1, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn keys_sort_by_index_and_give_it_back() {
        assert!(key(255) < key(256));
        assert_eq!(index_of(&key(1 << 40)), Some(1 << 40));
        assert_eq!(index_of(b"user-key"), None);
        assert_eq!(index_of(b"other-ky\0\0\0\0\0\0\0\x01"), None);
    }

    #[test]
    fn the_model_checks_the_last_committed_version() {
        let mut m = Model::loaded(3);
        let mut scratch = Vec::new();
        let mut v = vec![0u8; 20];
        value_into(1, 0, &mut v);
        assert!(m.check(1, Some(&v), &mut scratch, 20).is_ok());
        m.commit(1, 1);
        // The old value, another record's value, a missing record and a
        // record past the end all fail.
        for (i, got) in [
            (1, Some(&v[..])),
            (0, Some(&v[..])),
            (2, None),
            (3, Some(&v[..])),
        ] {
            match m.check(i, got, &mut scratch, 20) {
                Err(CliError::CheckFailed(msg)) => {
                    assert!(msg.contains(&format!("record {i} ")), "{msg}")
                }
                other => panic!("{i}: {other:?}"),
            }
        }
        value_into(1, 1, &mut v);
        assert!(m.check(1, Some(&v), &mut scratch, 20).is_ok());
        // A new record appends.
        m.commit(3, 0);
        assert_eq!(m.len(), 4);
        assert_eq!(m.version(3), Some(0));
    }
}
