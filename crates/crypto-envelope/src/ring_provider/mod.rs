//! The `ring` provider (cargo feature `ring`): AES-256-GCM and
//! ChaCha20-Poly1305, HKDF-SHA256, HMAC-SHA256 and the random generator from
//! the `ring` crate, whose assembly ciphers run three to four times faster
//! than the pure-Rust default on x86-64 and ARMv8.
//!
//! It produces exactly the default provider's bytes (same algorithms, same
//! ids; the self-test checks each part against published vectors and the
//! ciphers against the reference at counter nonces, and the interop tests
//! run a database written with each provider through the other). `ring` has
//! no AES-256-GCM-SIV and no Argon2id:
//! [`CryptoProvider::ring`](crate::CryptoProvider::ring) keeps RustCrypto's
//! for those.

mod aead;
mod parts;

pub(crate) use aead::ALGORITHMS;
pub(crate) use parts::{RingHkdf, RingHmac, RingRandom};
