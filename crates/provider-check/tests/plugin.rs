//! A cipher plugin under a private id, through every operation: the
//! stand-in plugin here wraps RustCrypto's ChaCha20-Poly1305 (cheap to
//! build, so CI runs it); `crates/aws-lc-plugin` runs the same check on a
//! real third-party implementation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sealkv::crypto::selftest::vectors;
use sealkv::crypto::{
    Aead, AeadAlgorithm, AeadError, AlgorithmId, CryptoProvider, EncryptionAlgorithm, KnownAnswer,
    SecretKey, hazmat,
};

/// ChaCha20-Poly1305 under private id 0x8ABC.
struct StandIn;

impl AeadAlgorithm for StandIn {
    fn id(&self) -> AlgorithmId {
        AlgorithmId(0x8ABC)
    }
    fn name(&self) -> &'static str {
        "chacha20-poly1305-stand-in"
    }
    fn key_len(&self) -> usize {
        32
    }
    fn nonce_len(&self) -> usize {
        12
    }
    fn tag_len(&self) -> usize {
        16
    }
    fn known_answers(&self) -> &'static [KnownAnswer] {
        vectors::CHACHA20_POLY1305
    }
    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        let inner = hazmat::builtin(
            &CryptoProvider::rustcrypto(),
            EncryptionAlgorithm::ChaCha20Poly1305,
            key,
        )
        .map_err(|_| AeadError::InvalidLength)?;
        Ok(Box::new(Relabelled(inner)))
    }
}

/// The wrapped cipher, reporting the plugin's id.
struct Relabelled(Box<dyn Aead>);

impl Aead for Relabelled {
    fn algorithm(&self) -> AlgorithmId {
        AlgorithmId(0x8ABC)
    }
    fn nonce_len(&self) -> usize {
        self.0.nonce_len()
    }
    fn tag_len(&self) -> usize {
        self.0.tag_len()
    }
    fn seal_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        self.0.seal_in_place_detached(nonce, aad, buf, tag)
    }
    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        self.0.open_in_place_detached(nonce, aad, buf, tag)
    }
}

#[test]
fn a_plugin_algorithm_goes_through_every_operation() {
    let provider = Arc::new(
        CryptoProvider::default()
            .with_algorithm(Arc::new(StandIn))
            .unwrap(),
    );
    let id = provider
        .find_algorithm("chacha20-poly1305-stand-in")
        .unwrap();
    assert_eq!(id, AlgorithmId(0x8ABC));
    let dir = tempfile::tempdir().unwrap();
    let report = sealkv_provider_check::round_trip(provider, id, dir.path()).unwrap();
    assert_eq!(
        report.steps,
        [
            "create",
            "reopen",
            "verify",
            "a provider without the algorithm is refused",
            "rotate and re-encrypt",
            "rekey",
            "backup and restore",
            "export and verify the archive",
            "import into a database of the plugin's algorithm",
            "import into a built-in algorithm's database",
        ]
    );
}

#[test]
fn an_algorithm_the_provider_lacks_fails_the_creation() {
    let dir = tempfile::tempdir().unwrap();
    let err = sealkv_provider_check::round_trip(
        Arc::new(CryptoProvider::default()),
        AlgorithmId(0x8ABC),
        dir.path(),
    )
    .unwrap_err();
    assert_eq!(err.step, "create");
}
