//! Any bytes opened as a key registry, with a fixed raw master key and with
//! a passphrase: must return a value or a typed error, never panic, never
//! allocate without bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sealkv_crypto_envelope::registry::KeyRegistry;
use sealkv_crypto_envelope::{KdfParams, KeySource, MasterKey, Passphrase};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = MasterKey::from_bytes(&[0x5a; 32]) else {
        return;
    };
    if let Ok(reg) = KeyRegistry::open(data, &KeySource::Key(raw)) {
        // What opens must round-trip exactly.
        assert_eq!(reg.to_bytes(), data);
        let _ = reg.to_keyring();
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
