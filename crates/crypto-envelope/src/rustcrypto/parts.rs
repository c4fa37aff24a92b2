//! RustCrypto's HKDF-SHA256, HMAC-SHA256 and Argon2id, and `getrandom`, as
//! provider parts.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::KdfParams;
use crate::primitives::{
    Kdf, KeyedMac, Mac, PasswordHash, PrimitiveError, RandomError, SecureRandom,
};

/// RustCrypto's `hkdf` over `sha2`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HkdfSha256;

impl Kdf for HkdfSha256 {
    fn name(&self) -> &'static str {
        "hkdf-sha256 (RustCrypto)"
    }

    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), PrimitiveError> {
        Hkdf::<Sha256>::new(Some(salt), ikm)
            .expand_multi_info(info, out)
            .map_err(|_| PrimitiveError::OutputLength)
    }
}

/// RustCrypto's `hmac` over `sha2`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HmacSha256;

impl Mac for HmacSha256 {
    fn name(&self) -> &'static str {
        "hmac-sha256 (RustCrypto)"
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        // HMAC takes keys of any length: construction cannot fail.
        let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
            debug_assert!(false, "HMAC accepts any key length");
            return [0; 32];
        };
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    fn keyed(&self, key: &[u8]) -> Option<Box<dyn KeyedMac>> {
        let m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
        Some(Box::new(PreparedHmacSha256(m)))
    }
}

/// An `Hmac<Sha256>` right after its key: the inner and outer pad states.
/// They are wiped on drop (the workspace builds `sha2` with its `zeroize`
/// feature, so each SHA-256 state zeroizes itself), and every MAC runs on
/// a copy, which is wiped the same way.
struct PreparedHmacSha256(Hmac<Sha256>);

impl KeyedMac for PreparedHmacSha256 {
    fn hmac_sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

/// RustCrypto's `argon2`, its working memory wiped before it is freed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Argon2id;

impl PasswordHash for Argon2id {
    fn name(&self) -> &'static str {
        "argon2id (RustCrypto)"
    }

    fn argon2id(
        &self,
        passphrase: &[u8],
        salt: &[u8],
        params: KdfParams,
        out: &mut [u8],
    ) -> Result<(), PrimitiveError> {
        let argon_params = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(out.len()),
        )
        .map_err(|_| PrimitiveError::Parameters("rejected by Argon2"))?;
        let blocks = argon_params.block_count();
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon_params,
        );
        // Argon2's working memory holds values derived from the passphrase:
        // own it, and wipe it before it is freed.
        let mut blocks_vec: Vec<argon2::Block> = Vec::new();
        blocks_vec
            .try_reserve_exact(blocks)
            .map_err(|_| PrimitiveError::OutOfMemory)?;
        blocks_vec.resize(blocks, argon2::Block::default());
        let mut memory = Zeroizing::new(blocks_vec);
        argon
            .hash_password_into_with_memory(passphrase, salt, out, &mut memory[..])
            .map_err(|_| PrimitiveError::Parameters("Argon2 failed"))
    }
}

/// The operating system's CSPRNG through `getrandom`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OsRandom;

impl SecureRandom for OsRandom {
    fn name(&self) -> &'static str {
        "getrandom (OS)"
    }

    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(|e| RandomError::new("getrandom (OS)", e))
    }
}

#[cfg(test)]
mod tests {
    /// Compile-time proof that a prepared HMAC key wipes its pad states on
    /// drop: `Hmac<Sha256>` holds two SHA-256 block states, which zeroize
    /// themselves with `sha2`'s `zeroize` feature on (its buffer holds no
    /// key bytes once the key is absorbed).
    #[test]
    fn prepared_hmac_states_zeroize_on_drop() {
        fn wipes<T: zeroize::ZeroizeOnDrop>() {}
        wipes::<sha2::block_api::Sha256VarCore>();
    }
}
