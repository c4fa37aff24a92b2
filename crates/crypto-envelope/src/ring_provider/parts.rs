//! `ring`'s HKDF-SHA256, HMAC-SHA256 and system random generator as
//! provider parts.

use ring::rand::SecureRandom as _;

use crate::primitives::{Kdf, Mac, PrimitiveError, RandomError, SecureRandom};

/// `ring::hkdf` with SHA-256.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingHkdf;

/// An output length, as `ring::hkdf` wants it.
struct OutputLen(usize);

impl ring::hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl Kdf for RingHkdf {
    fn name(&self) -> &'static str {
        "hkdf-sha256 (ring)"
    }

    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), PrimitiveError> {
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
        prk.expand(info, OutputLen(out.len()))
            .and_then(|okm| okm.fill(out))
            .map_err(|_| PrimitiveError::OutputLength)
    }
}

/// `ring::hmac` with SHA-256.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingHmac;

impl Mac for RingHmac {
    fn name(&self) -> &'static str {
        "hmac-sha256 (ring)"
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        let mut ctx = ring::hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

/// `ring::rand::SystemRandom`: the operating system's generator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingRandom;

impl SecureRandom for RingRandom {
    fn name(&self) -> &'static str {
        "SystemRandom (ring)"
    }

    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| RandomError::new("SystemRandom (ring)", "unspecified error"))
    }
}
