//! The default, pure-Rust provider: RustCrypto's ciphers, HKDF, HMAC and
//! Argon2id, and the operating system's random generator.

mod aead;
mod parts;

pub(crate) use aead::ALGORITHMS;
pub(crate) use parts::{Argon2id, HkdfSha256, HmacSha256, OsRandom};
