//! Any bytes opened as a key registry, with a fixed raw master key and with
//! a passphrase: must return a value or a typed error, never panic, never
//! allocate without bound.
//!
//! Most mutants stop at the file hash, so each input is also opened with its
//! trailing SHA-256 recomputed (raw key only: a passphrase would run Argon2
//! on every such input): that drives the fuzzer into the header and entry
//! parser, the key check and the MAC.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sealkv_crypto_envelope::registry::KeyRegistry;
use sealkv_crypto_envelope::{KdfParams, KeySource, MasterKey, Passphrase};
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = MasterKey::from_bytes(&[0x5a; 32]) else {
        return;
    };
    let raw = KeySource::Key(raw);
    if let Ok(reg) = KeyRegistry::open(data, &raw) {
        // What opens must round-trip exactly.
        assert_eq!(reg.to_bytes(), data);
        let _ = reg.to_keyring();
    }
    if let Some(body_len) = data.len().checked_sub(32) {
        let mut rehashed = data.to_vec();
        let hash = Sha256::digest(&data[..body_len]);
        rehashed[body_len..].copy_from_slice(&hash);
        if let Ok(reg) = KeyRegistry::open(&rehashed, &raw) {
            assert_eq!(reg.to_bytes(), rehashed);
        }
    }
    let Ok(passphrase) = Passphrase::new("fuzz passphrase") else {
        return;
    };
    let source = KeySource::Passphrase {
        passphrase,
        params: KdfParams::FLOOR,
    };
    if let Ok(reg) = KeyRegistry::open(data, &source) {
        assert_eq!(reg.to_bytes(), data);
    }
});
