//! Test helpers shared by sealkv's crates (a dev-dependency only).
//!
//! - [`Canaries`] and [`scan_for_plaintext`]: write recognisable keys and
//!   values, then prove that no file holds any of them — nor any 8-byte
//!   window of them — when encryption at rest is on.
//! - [`nonces`]: every sealed unit (WAL header, record, page) written to
//!   the disk, with the (key id, salt, domain, counter) its header names,
//!   parsed from the bytes written — and the nonces that repeat.
//! - [`hook::HookVfs`]: a file system that calls a test's hook before each
//!   file read, write, fsync and length change (to watch, pause or fail).
//! - [`proof::print_proof`]: the summary line a long proof prints for
//!   `cargo xtask proof`.
//! - [`fuzz_inputs`] and [`write_fuzz_seed`]: the committed seed corpus and
//!   crash regressions of a cargo-fuzz target, replayed by stable tests.
//! - [`secrets`]: key hygiene — a scanner for every form a key or a
//!   passphrase could leak in, and a capture of every `tracing` event.
//!
//! # Example
//!
//! ```
//! use sealkv_testkit::{Canaries, scan_for_plaintext};
//!
//! let canaries = Canaries::new(4);
//! let files = vec![("data".to_string(), vec![0u8; 64])];
//! assert!(scan_for_plaintext(&files, &canaries).is_empty());
//! let leaky = vec![("wal".to_string(), canaries.key(2).to_vec())];
//! assert_eq!(scan_for_plaintext(&leaky, &canaries).len(), 1);
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;

pub mod hook;
pub mod nonces;
pub mod proof;
pub mod secrets;
use sealkv_fileio::{SimVfs, SplitMix64, Vfs};

/// The window length scanned for: any 8 consecutive bytes of a canary.
pub const WINDOW: usize = 8;

/// Recognisable plaintext keys and values: each 32 bytes long, made of a
/// fixed tag and a pseudo-random tail, so no window of them occurs by chance
/// in ciphertext or in sealkv's own headers.
#[derive(Debug, Clone)]
pub struct Canaries {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
}

fn canary(prefix: &[u8], i: usize) -> Vec<u8> {
    let mut rng = SplitMix64::new((i as u64) ^ u64::from_le_bytes(*b"sealkvCN"));
    let mut v = prefix.to_vec();
    v.extend_from_slice(format!("{i:06}").as_bytes());
    while v.len() < 32 {
        // Printable bytes, so a leak is easy to see in a hex dump.
        v.push(b'a' + (rng.next_u64() % 26) as u8);
    }
    v
}

impl Canaries {
    /// `n` canary keys and `n` canary values.
    pub fn new(n: usize) -> Self {
        Canaries {
            keys: (0..n).map(|i| canary(b"CANARYKEY-", i)).collect(),
            values: (0..n).map(|i| canary(b"CANARYVAL-", i)).collect(),
        }
    }

    /// Canary key `i`.
    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[i]
    }

    /// Canary value `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        &self.values[i]
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The same canaries without the keys: for scans where keys are
    /// expected on disk (field-level encryption in a plaintext database
    /// seals values only).
    pub fn values_only(&self) -> Canaries {
        Canaries {
            keys: Vec::new(),
            values: self.values.clone(),
        }
    }

    /// Every key and value.
    pub fn all(&self) -> impl Iterator<Item = &[u8]> {
        self.keys
            .iter()
            .chain(self.values.iter())
            .map(Vec::as_slice)
    }
}

/// A place where plaintext was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The file.
    pub file: String,
    /// Offset of the window in the file.
    pub offset: usize,
    /// The window that matched.
    pub window: Vec<u8>,
}

/// Every place in `files` (name, contents) where an 8-byte window of any
/// canary occurs. Reports at most one leak per file and canary window start.
pub fn scan_for_plaintext(files: &[(String, Vec<u8>)], canaries: &Canaries) -> Vec<Leak> {
    let mut windows: HashSet<&[u8]> = HashSet::new();
    for c in canaries.all() {
        if c.len() < WINDOW {
            windows.insert(c);
        } else {
            windows.extend(c.windows(WINDOW));
        }
    }
    let mut leaks = Vec::new();
    for (name, bytes) in files {
        if bytes.len() < WINDOW {
            continue;
        }
        let mut last_hit: Option<usize> = None;
        for (offset, w) in bytes.windows(WINDOW).enumerate() {
            if windows.contains(w) {
                // Report runs once, not once per overlapping window.
                if last_hit.is_none_or(|l| offset > l + WINDOW) {
                    leaks.push(Leak {
                        file: name.clone(),
                        offset,
                        window: w.to_vec(),
                    });
                }
                last_hit = Some(offset);
            }
        }
    }
    leaks
}

/// Every file under `dir` on the real file system, recursively, as (path,
/// contents).
pub fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Every live file of a [`SimVfs`] under `dir`, as (path, contents).
pub fn read_sim_tree(vfs: &SimVfs, dir: &Path) -> Vec<(String, Vec<u8>)> {
    vfs.files()
        .into_iter()
        .filter(|p| p.starts_with(dir) && vfs.exists(p).unwrap_or(false))
        .filter_map(|p| Some((p.display().to_string(), vfs.read_file(&p).ok()?)))
        .collect()
}

/// The repository's `fuzz/` directory.
fn fuzz_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every committed input of fuzz target `target`: its seed corpus
/// (`fuzz/corpus/TARGET/`) and the inputs that ever crashed it
/// (`fuzz/regressions/TARGET/`), as (file name, bytes), sorted. Stable
/// tests run each through the target's entry point, so a crash found by
/// the fuzzer stays a regression test without nightly.
pub fn fuzz_inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let p = entry.unwrap().path();
            if p.is_file() {
                let name = format!(
                    "{kind}/{target}/{}",
                    p.file_name().unwrap().to_string_lossy()
                );
                out.push((name, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Writes `bytes` as seed `name` of fuzz target `target`
/// (`fuzz/corpus/TARGET/NAME`): for the ignored tests that regenerate the
/// committed seeds from real files.
pub fn write_fuzz_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_any_window_and_only_real_ones() {
        let c = Canaries::new(3);
        let mut bytes = vec![0u8; 100];
        bytes[40..48].copy_from_slice(&c.value(1)[10..18]);
        let files = vec![("f".to_string(), bytes)];
        let leaks = scan_for_plaintext(&files, &c);
        assert_eq!(leaks.len(), 1);
        assert_eq!(leaks[0].offset, 40);
        let clean = vec![("g".to_string(), (0..=255u8).collect::<Vec<_>>())];
        assert!(scan_for_plaintext(&clean, &c).is_empty());
    }
}
