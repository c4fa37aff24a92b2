//! Every salt sealkv draws is fresh even when the provider's random source
//! is not: a deterministic generator seeded the same way in two processes
//! (or cloned by a `fork`) passes the random source's self-test, yet must
//! not give two writer sessions, two field values or two archives one salt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sealkv_crypto_envelope::archive::ArchiveKeys;
use sealkv_crypto_envelope::primitives::{RandomError, SecureRandom};
use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, Domain, EncryptionAlgorithm, KdfParams, KeyId, KeySource,
    Keyring, MasterKey, Passphrase, SecretKey, field,
};

/// A counter-mode generator with a fixed seed: each draw differs from the
/// last, so it passes the random source's self-test, but every fresh
/// instance (a new process, a forked child) repeats the same sequence.
struct FixedSeed(AtomicU64);

impl SecureRandom for FixedSeed {
    fn name(&self) -> &'static str {
        "fixed-seed counter"
    }

    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let n = self
                .0
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
            chunk.copy_from_slice(&n.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// A provider as a fresh process would build it.
fn fresh_process() -> Arc<CryptoProvider> {
    Arc::new(
        CryptoProvider::default()
            .with_random(Arc::new(FixedSeed(AtomicU64::new(0))))
            .expect("a fixed-seed generator passes the random source's self-test"),
    )
}

fn dek() -> DataKey {
    DataKey::new(
        KeyId(1),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(&[9; 32]).unwrap(),
    )
}

/// The salt of the first writer session and the first page it seals.
fn first_session(provider: Arc<CryptoProvider>) -> ([u8; 32], Vec<u8>) {
    let keyring = Keyring::new(DbId([1; 16]), provider);
    keyring.insert(dek());
    keyring.set_active(KeyId(1)).unwrap();
    let session = keyring.start_session().unwrap();
    let mut page = vec![0u8; 64];
    let mut tag = [0u8; 16];
    session
        .sealer(Domain::Page)
        .seal(b"page 0", &mut page, &mut tag)
        .unwrap();
    page.extend_from_slice(&tag);
    (session.salt().0, page)
}

#[test]
fn the_generator_repeats_across_fresh_instances() {
    // The premise: two instances give the same bytes, and the source is
    // accepted by the provider.
    let (a, b) = (fresh_process(), fresh_process());
    let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
    a.fill_random(&mut x).unwrap();
    b.fill_random(&mut y).unwrap();
    assert_eq!(x, y);
}

#[test]
fn two_processes_with_a_repeating_random_source_get_distinct_session_salts() {
    let (salt_a, page_a) = first_session(fresh_process());
    let (salt_b, page_b) = first_session(fresh_process());
    assert_ne!(salt_a, salt_b);
    // One (subkey, nonce 0) would seal one page to one ciphertext.
    assert_ne!(page_a, page_b);
}

#[test]
fn two_processes_with_a_repeating_random_source_get_distinct_field_salts() {
    let seal = || field::seal_randomized(&fresh_process(), &dek(), b"user/1", b"amount=100");
    let (a, b) = (seal().unwrap(), seal().unwrap());
    // Header (8 bytes), then the 32-byte salt.
    assert_ne!(a[8..40], b[8..40]);
    assert_ne!(a, b);
}

#[test]
fn two_processes_with_a_repeating_random_source_get_distinct_archive_salts() {
    let key = MasterKey::from_bytes(&[4; 32]).unwrap();
    let a = ArchiveKeys::generate(&fresh_process(), &key).unwrap();
    let b = ArchiveKeys::generate(&fresh_process(), &key).unwrap();
    assert_ne!(a.salt(), b.salt());
}

#[test]
fn two_processes_with_a_repeating_random_source_get_distinct_passphrase_salts() {
    let source = KeySource::Passphrase {
        passphrase: Passphrase::new("correct horse battery staple").unwrap(),
        params: KdfParams::FLOOR,
    };
    let salt = || {
        source
            .resolve_new(&fresh_process())
            .unwrap()
            .1
            .unwrap()
            .salt
    };
    assert_ne!(salt(), salt());
}

#[test]
fn two_processes_with_a_repeating_random_source_get_distinct_keys_and_ids() {
    let key = || SecretKey::random_from(&fresh_process()).unwrap();
    let (a, b) = (key(), key());
    assert_ne!(a.expose(), b.expose());
    let id = || DbId::random_from(&fresh_process()).unwrap();
    assert_ne!(id(), id());
}

#[test]
fn two_processes_with_a_repeating_random_source_get_distinct_registry_keys() {
    use sealkv_crypto_envelope::registry::KeyRegistry;
    let siv = EncryptionAlgorithm::Aes256GcmSiv.id();
    let kek = KeySource::Key(MasterKey::from_bytes(&[4; 32]).unwrap());
    // A deterministic seal is a function of the key alone: equal outputs
    // would mean equal keys.
    let sealed = |pick: fn(&mut KeyRegistry) -> DataKey| {
        let mut registry =
            KeyRegistry::create_with_provider(DbId([1; 16]), &kek, siv, fresh_process()).unwrap();
        let key = pick(&mut registry);
        field::seal_deterministic(registry.provider(), &key, b"user/1", b"amount=100").unwrap()
    };
    let data_key = |r: &mut KeyRegistry| r.data_key(r.active_data_key()).unwrap();
    assert_ne!(sealed(data_key), sealed(data_key));
    let field_key = |r: &mut KeyRegistry| {
        let id = r
            .add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id())
            .unwrap();
        r.field_key(id).unwrap()
    };
    assert_ne!(sealed(field_key), sealed(field_key));
}

#[test]
fn two_processes_with_a_repeating_random_source_get_distinct_registry_salts() {
    use sealkv_crypto_envelope::registry::KeyRegistry;
    let kek = KeySource::Passphrase {
        passphrase: Passphrase::new("correct horse battery staple").unwrap(),
        params: KdfParams::FLOOR,
    };
    // docs/FORMAT.md: the registry's Argon2id salt is bytes 28..60.
    let salt = || {
        let registry = KeyRegistry::create_with_provider(
            DbId([1; 16]),
            &kek,
            EncryptionAlgorithm::Aes256Gcm.id(),
            fresh_process(),
        )
        .unwrap();
        registry.to_bytes()[28..60].to_vec()
    };
    let (a, b) = (salt(), salt());
    assert_ne!(a, [0u8; 32]);
    assert_ne!(a, b);
}
