//! The aws-lc-rs plugin: it passes the provider self-test, writes exactly
//! AES-256-GCM's bytes, and a database sealed with it goes through every
//! operation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sealkv_crypto_envelope::selftest::{self, vectors};
use sealkv_crypto_envelope::{
    AeadAlgorithm, CryptoProvider, EncryptionAlgorithm, SecretKey, hazmat,
};

#[test]
fn the_plugin_passes_the_self_test_and_is_found_by_name() {
    selftest::check_algorithm(&sealkv_aws_lc::AwsLcAes256Gcm).unwrap();
    let provider = sealkv_aws_lc::register(CryptoProvider::default()).unwrap();
    provider.self_test().unwrap();
    assert_eq!(
        provider.find_algorithm("AES_256_GCM_AWS_LC").unwrap(),
        sealkv_aws_lc::ID
    );
    let names: Vec<_> = provider.algorithms().map(|a| a.name).collect();
    assert_eq!(
        names,
        [
            "aes-256-gcm",
            "chacha20-poly1305",
            "aes-256-gcm-siv",
            "aes-256-gcm-aws-lc"
        ]
    );
    assert_eq!(
        sealkv_aws_lc::AwsLcAes256Gcm.known_answers(),
        vectors::AES_256_GCM
    );
}

#[test]
fn it_seals_exactly_what_the_builtin_aes_256_gcm_seals() {
    let provider = sealkv_aws_lc::register(CryptoProvider::default()).unwrap();
    let key = SecretKey::from_bytes(&[0x17; 32]).unwrap();
    let ours = hazmat::new_aead(&provider, sealkv_aws_lc::ID, &key).unwrap();
    let builtin = hazmat::builtin(&provider, EncryptionAlgorithm::Aes256Gcm, &key).unwrap();
    for counter in [0, 1, 1 << 32, u64::MAX] {
        let nonce = hazmat::nonce_for(counter);
        let (mut a, mut b) = (vec![5u8; 100], vec![5u8; 100]);
        let (mut ta, mut tb) = ([0u8; 16], [0u8; 16]);
        ours.seal_in_place_detached(&nonce, b"aad", &mut a, &mut ta)
            .unwrap();
        builtin
            .seal_in_place_detached(&nonce, b"aad", &mut b, &mut tb)
            .unwrap();
        assert_eq!((a, ta), (b, tb), "counter {counter}");
    }
}

#[test]
fn a_database_sealed_with_the_plugin_goes_through_every_operation() {
    let provider = Arc::new(sealkv_aws_lc::register(CryptoProvider::default()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let report =
        sealkv_provider_check::round_trip(provider, sealkv_aws_lc::ID, dir.path()).unwrap();
    assert_eq!(report.steps.len(), 10, "{:?}", report.steps);
    assert!(
        report
            .steps
            .contains(&"a provider without the algorithm is refused")
    );
}
