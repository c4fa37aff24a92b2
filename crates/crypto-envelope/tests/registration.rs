//! What a provider keeps of a plugin it registered: the answers the
//! self-test checked, not whatever the plugin answers later; a failed
//! re-check that sticks; and buffers wiped after a failed open, whatever
//! the plugin left in them. Each plugin here is a faithful AES-256-GCM
//! whose claims and `open` follow switches the test flips after
//! registration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicUsize, Ordering};

use sealkv_crypto_envelope::field::{self, FieldError};
use sealkv_crypto_envelope::selftest::{Check, vectors};
use sealkv_crypto_envelope::{
    Aead, AeadAlgorithm, AeadError, AlgorithmId, CryptoError, CryptoProvider, DataKey, DbId,
    Domain, EncryptionAlgorithm, KeyId, Keyring, KnownAnswer, SecretKey, hazmat,
};

/// Where a switchable plugin reads its answers.
struct Switches {
    id: &'static AtomicU16,
    misuse_resistant: &'static AtomicBool,
    nonce_len: &'static AtomicUsize,
    /// How `open` behaves: one of the `OPEN_*` values.
    open: &'static AtomicU8,
}

/// `open` is AES-256-GCM's.
const OPEN_FAITHFUL: u8 = 0;
/// `open` decrypts without checking the tag.
const OPEN_IGNORES_TAG: u8 = 1;
/// `open` decrypts, then checks the tag: a failure leaves the plaintext
/// of the forged or damaged message in the buffer.
const OPEN_LEAVES_PLAINTEXT: u8 = 2;

/// RustCrypto's AES-256-GCM, answering from its switches on every call.
struct Switchable(Switches);

/// The cipher it builds: reports the switches' id and nonce length.
struct SwitchableAead {
    inner: Box<dyn Aead>,
    id: &'static AtomicU16,
    nonce_len: &'static AtomicUsize,
    open: &'static AtomicU8,
}

impl SwitchableAead {
    /// GCM's keystream applied to `buf`: sealing under the same nonce
    /// decrypts (the tag it computes is thrown away).
    fn decrypt_unchecked(&self, nonce: &[u8], aad: &[u8], buf: &mut [u8]) {
        let mut scratch = [0u8; 16];
        let _ = self
            .inner
            .seal_in_place_detached(nonce, aad, buf, &mut scratch);
    }
}

impl Aead for SwitchableAead {
    fn algorithm(&self) -> AlgorithmId {
        AlgorithmId(self.id.load(Ordering::SeqCst))
    }
    fn nonce_len(&self) -> usize {
        self.nonce_len.load(Ordering::SeqCst)
    }
    fn tag_len(&self) -> usize {
        16
    }
    fn seal_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        self.inner.seal_in_place_detached(nonce, aad, buf, tag)
    }
    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        let ciphertext = buf.to_vec();
        let opened = self.inner.open_in_place_detached(nonce, aad, buf, tag);
        let mode = self.open.load(Ordering::SeqCst);
        match opened {
            Err(e) if mode != OPEN_FAITHFUL => {
                buf.copy_from_slice(&ciphertext);
                self.decrypt_unchecked(nonce, aad, buf);
                if mode == OPEN_IGNORES_TAG {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            opened => opened,
        }
    }
}

impl AeadAlgorithm for Switchable {
    fn id(&self) -> AlgorithmId {
        AlgorithmId(self.0.id.load(Ordering::SeqCst))
    }
    fn name(&self) -> &'static str {
        "switchable-gcm"
    }
    fn key_len(&self) -> usize {
        32
    }
    fn nonce_len(&self) -> usize {
        self.0.nonce_len.load(Ordering::SeqCst)
    }
    fn tag_len(&self) -> usize {
        16
    }
    fn misuse_resistant(&self) -> bool {
        self.0.misuse_resistant.load(Ordering::SeqCst)
    }
    fn known_answers(&self) -> &'static [KnownAnswer] {
        vectors::AES_256_GCM
    }
    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        let inner = hazmat::builtin(
            &CryptoProvider::rustcrypto(),
            EncryptionAlgorithm::Aes256Gcm,
            key,
        )
        .map_err(|_| AeadError::InvalidLength)?;
        Ok(Box::new(SwitchableAead {
            inner,
            id: self.0.id,
            nonce_len: self.0.nonce_len,
            open: self.0.open,
        }))
    }
}

fn data_key(id: u16) -> DataKey {
    DataKey::new(
        KeyId(3),
        AlgorithmId(id),
        SecretKey::from_bytes(&[5; 32]).unwrap(),
    )
}

#[test]
fn a_misuse_resistance_claim_is_taken_once_at_registration() {
    static ID: AtomicU16 = AtomicU16::new(0x8124);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let provider = CryptoProvider::default()
        .with_algorithm(Arc::new(Switchable(Switches {
            id: &ID,
            misuse_resistant: &CLAIM,
            nonce_len: &NONCE_LEN,
            open: &OPEN,
        })))
        .expect("a faithful AES-256-GCM claiming no misuse resistance");
    let key = data_key(0x8124);
    assert!(matches!(
        field::seal_deterministic(&provider, &key, b"amount", b"amount=100"),
        Err(FieldError::NotMisuseResistant(_))
    ));

    // The plugin now claims misuse resistance it was never tested for:
    // the provider keeps the claim it checked, so deterministic sealing
    // (which would reuse one GCM keystream for every value) stays refused.
    CLAIM.store(true, Ordering::SeqCst);
    assert!(
        !provider
            .algorithm(AlgorithmId(0x8124))
            .unwrap()
            .misuse_resistant
    );
    assert!(
        provider
            .algorithms()
            .all(|a| a.id != AlgorithmId(0x8124) || !a.misuse_resistant)
    );
    assert!(matches!(
        field::seal_deterministic(&provider, &key, b"amount", b"amount=100"),
        Err(FieldError::NotMisuseResistant(_))
    ));
}

#[test]
fn an_id_that_changes_after_registration_takes_over_nothing() {
    static ID: AtomicU16 = AtomicU16::new(0x8125);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let provider = CryptoProvider::from_algorithms(vec![Arc::new(Switchable(Switches {
        id: &ID,
        misuse_resistant: &CLAIM,
        nonce_len: &NONCE_LEN,
        open: &OPEN,
    }))])
    .expect("a faithful AES-256-GCM under a private id");

    // The plugin now answers AES-256-GCM's built-in id: the provider
    // still holds it under the id it was checked with, and holds nothing
    // under id 1, so a database recorded as AES-256-GCM cannot be sealed
    // or opened with the plugin.
    ID.store(EncryptionAlgorithm::Aes256Gcm.id().0, Ordering::SeqCst);
    let builtin = EncryptionAlgorithm::Aes256Gcm.id();
    assert!(matches!(
        provider.algorithm(builtin),
        Err(CryptoError::UnsupportedAlgorithm(id)) if id == builtin
    ));
    assert_eq!(provider.find_algorithm("aes-256-gcm").ok(), None);
    let key = SecretKey::from_bytes(&[5; 32]).unwrap();
    assert!(matches!(
        hazmat::new_aead(&provider, builtin, &key),
        Err(CryptoError::UnsupportedAlgorithm(_))
    ));
    let info = provider.algorithm(AlgorithmId(0x8125)).unwrap();
    assert_eq!((info.name, info.is_builtin()), ("switchable-gcm", false));
    // The ciphers it builds now report id 1: refused, not used as 0x8125.
    assert!(matches!(
        hazmat::new_aead(&provider, AlgorithmId(0x8125), &key),
        Err(CryptoError::ProviderRejected { .. })
    ));
    let keyring = Keyring::new(DbId([1; 16]), Arc::new(provider));
    keyring.insert(data_key(0x8125));
    keyring.set_active(KeyId(3)).unwrap();
    assert!(matches!(
        keyring.start_session(),
        Err(CryptoError::ProviderRejected { .. })
    ));
}

#[test]
fn a_cipher_built_later_with_another_nonce_length_is_refused() {
    static ID: AtomicU16 = AtomicU16::new(0x8126);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let provider = CryptoProvider::default()
        .with_algorithm(Arc::new(Switchable(Switches {
            id: &ID,
            misuse_resistant: &CLAIM,
            nonce_len: &NONCE_LEN,
            open: &OPEN,
        })))
        .expect("12-byte nonces at registration");
    let key = SecretKey::from_bytes(&[5; 32]).unwrap();
    hazmat::new_aead(&provider, AlgorithmId(0x8126), &key).unwrap();

    NONCE_LEN.store(24, Ordering::SeqCst);
    assert_eq!(
        hazmat::aead_algorithm(&provider, AlgorithmId(0x8126))
            .unwrap()
            .nonce_len(),
        12,
        "the provider keeps the length it checked"
    );
    assert!(matches!(
        hazmat::new_aead(&provider, AlgorithmId(0x8126), &key),
        Err(CryptoError::ProviderRejected { .. })
    ));
}

#[test]
fn a_plugin_that_fails_a_recheck_is_refused_from_then_on() {
    static ID: AtomicU16 = AtomicU16::new(0x8127);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let provider = Arc::new(
        CryptoProvider::default()
            .with_algorithm(Arc::new(Switchable(Switches {
                id: &ID,
                misuse_resistant: &CLAIM,
                nonce_len: &NONCE_LEN,
                open: &OPEN,
            })))
            .expect("a faithful AES-256-GCM under a private id"),
    );
    let clone = CryptoProvider::clone(&provider);
    let keyring = Keyring::new(DbId([1; 16]), provider.clone());
    keyring.insert(data_key(0x8127));
    keyring.set_active(KeyId(3)).unwrap();
    keyring.start_session().unwrap();
    provider.self_test_again().unwrap();

    // The plugin breaks: its open now ignores the tag. The re-check says
    // so...
    OPEN.store(OPEN_IGNORES_TAG, Ordering::SeqCst);
    let failure = provider.self_test_again().unwrap_err();
    assert_eq!(failure.check(), &Check::AcceptsFlippedTag);
    assert!(failure.subject().contains("switchable-gcm"), "{failure}");

    // ...and from then on every use is refused with that failure, through
    // this provider and a clone taken before the re-check, even once the
    // plugin behaves again.
    OPEN.store(OPEN_FAITHFUL, Ordering::SeqCst);
    let key = SecretKey::from_bytes(&[5; 32]).unwrap();
    for p in [provider.as_ref(), &clone] {
        assert!(matches!(
            hazmat::new_aead(p, AlgorithmId(0x8127), &key),
            Err(CryptoError::SelfTest(f)) if f.check() == &Check::AcceptsFlippedTag
        ));
        assert!(matches!(p.self_test(), Err(CryptoError::SelfTest(_))));
        // The other algorithms are not affected.
        hazmat::builtin(p, EncryptionAlgorithm::Aes256Gcm, &key).unwrap();
    }
    assert!(matches!(
        keyring.start_session(),
        Err(CryptoError::SelfTest(f)) if f.check() == &Check::AcceptsFlippedTag
    ));
    assert_eq!(
        provider.self_test_again().unwrap_err().check(),
        &Check::AcceptsFlippedTag,
        "a later re-check reports the mark, not a fresh run"
    );
}

/// Seals `plaintext` with `aead` at nonce 1, flips a tag byte, opens it
/// and returns what the failed open left in the buffer.
fn left_after_a_failed_open(aead: &dyn Aead, plaintext: &[u8]) -> Vec<u8> {
    let nonce = hazmat::nonce_for(1);
    let mut buf = plaintext.to_vec();
    let mut tag = [0u8; 16];
    aead.seal_in_place_detached(&nonce, b"aad", &mut buf, &mut tag)
        .unwrap();
    tag[0] ^= 1;
    assert_eq!(
        aead.open_in_place_detached(&nonce, b"aad", &mut buf, &tag),
        Err(AeadError::Authentication)
    );
    buf
}

#[test]
fn a_failed_open_leaves_zeros_whatever_the_cipher_left() {
    static ID: AtomicU16 = AtomicU16::new(0x8128);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let plugin = || {
        Switchable(Switches {
            id: &ID,
            misuse_resistant: &CLAIM,
            nonce_len: &NONCE_LEN,
            open: &OPEN,
        })
    };
    let provider = Arc::new(
        CryptoProvider::default()
            .with_algorithm(Arc::new(plugin()))
            .expect("a faithful AES-256-GCM under a private id"),
    );
    OPEN.store(OPEN_LEAVES_PLAINTEXT, Ordering::SeqCst);
    let secret = b"amount=100 for account 4711, page body".to_vec();
    let key = SecretKey::from_bytes(&[5; 32]).unwrap();

    // The premise: the plugin's own cipher leaves the plaintext behind.
    let raw = plugin().new_aead(&key).unwrap();
    assert_eq!(left_after_a_failed_open(raw.as_ref(), &secret), secret);

    // A cipher the provider hands out leaves zeros.
    let zeros = vec![0u8; secret.len()];
    let aead = hazmat::new_aead(&provider, AlgorithmId(0x8128), &key).unwrap();
    assert_eq!(left_after_a_failed_open(aead.as_ref(), &secret), zeros);

    // So does a unit opened through the keyring.
    let keyring = Keyring::new(DbId([1; 16]), provider.clone());
    keyring.insert(data_key(0x8128));
    keyring.set_active(KeyId(3)).unwrap();
    let session = keyring.start_session().unwrap();
    let sealer = session.sealer(Domain::Page);
    let mut buf = secret.clone();
    let mut tag = [0u8; 16];
    let counter = sealer.seal(b"page 7", &mut buf, &mut tag).unwrap();
    tag[15] ^= 1;
    assert!(
        keyring
            .open(sealer.subkey_id(), counter, b"page 7", &mut buf, &tag)
            .is_err()
    );
    assert_eq!(buf, zeros);

    // And every built-in algorithm's cipher (RustCrypto's leave the
    // ciphertext; the contract would let them leave anything).
    for info in provider.algorithms().filter(|a| a.is_builtin()) {
        let aead = hazmat::new_aead(&provider, info.id, &key).unwrap();
        assert_eq!(
            left_after_a_failed_open(aead.as_ref(), &secret),
            zeros,
            "{}",
            info.name
        );
    }
}

#[test]
fn a_failed_recheck_stops_openers_and_sealers_already_built() {
    static ID: AtomicU16 = AtomicU16::new(0x8129);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let provider = Arc::new(
        CryptoProvider::default()
            .with_algorithm(Arc::new(Switchable(Switches {
                id: &ID,
                misuse_resistant: &CLAIM,
                nonce_len: &NONCE_LEN,
                open: &OPEN,
            })))
            .expect("a faithful AES-256-GCM under a private id"),
    );
    let keyring = Keyring::new(DbId([1; 16]), provider.clone());
    keyring.insert(data_key(0x8129));
    keyring.set_active(KeyId(3)).unwrap();
    let session = keyring.start_session().unwrap();
    let sealer = session.sealer(Domain::Page);
    let mut sealed = b"amount=100".to_vec();
    let mut tag = [0u8; 16];
    let counter = sealer.seal(b"page 7", &mut sealed, &mut tag).unwrap();
    // Opening once caches the opener; an opener taken out is held too.
    let mut copy = sealed.clone();
    keyring
        .open(sealer.subkey_id(), counter, b"page 7", &mut copy, &tag)
        .unwrap();
    assert_eq!(copy, b"amount=100");
    let held = keyring.opener(sealer.subkey_id()).unwrap();

    OPEN.store(OPEN_IGNORES_TAG, Ordering::SeqCst);
    assert_eq!(
        provider.self_test_again().unwrap_err().check(),
        &Check::AcceptsFlippedTag
    );

    // A forged unit (a flipped tag) is refused by the cached opener, the
    // held one and the running session's own open, with the failure...
    let mut forged_tag = tag;
    forged_tag[0] ^= 1;
    let refused = |r: Result<(), CryptoError>| matches!(r, Err(CryptoError::SelfTest(f)) if f.check() == &Check::AcceptsFlippedTag);
    let mut buf = sealed.clone();
    assert!(refused(keyring.open(
        sealer.subkey_id(),
        counter,
        b"page 7",
        &mut buf,
        &forged_tag
    )));
    assert!(refused(held.open(
        counter,
        b"page 7",
        &mut buf,
        &forged_tag
    )));
    assert!(refused(sealer.open(
        counter,
        b"page 7",
        &mut buf,
        &forged_tag
    )));
    assert_eq!(buf, sealed, "a refused open leaves the buffer untouched");
    // ...and the running session seals nothing more.
    let mut more = b"amount=200".to_vec();
    assert!(refused(
        sealer.seal(b"page 8", &mut more, &mut tag).map(|_| ())
    ));
    assert_eq!(more, b"amount=200");
    let ticket = session.sealer(Domain::Wal).draw().unwrap();
    assert!(refused(
        session
            .sealer(Domain::Wal)
            .seal_with(ticket, b"", &mut more, &mut tag)
    ));
}

#[test]
fn the_hazmat_factory_checks_and_wraps_what_it_builds() {
    static ID: AtomicU16 = AtomicU16::new(0x812a);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let provider = CryptoProvider::default()
        .with_algorithm(Arc::new(Switchable(Switches {
            id: &ID,
            misuse_resistant: &CLAIM,
            nonce_len: &NONCE_LEN,
            open: &OPEN,
        })))
        .expect("a faithful AES-256-GCM under a private id");
    let factory = hazmat::aead_algorithm(&provider, AlgorithmId(0x812a)).unwrap();
    let key = SecretKey::from_bytes(&[5; 32]).unwrap();

    // A failed open leaves zeros, whatever the plugin's cipher left.
    OPEN.store(OPEN_LEAVES_PLAINTEXT, Ordering::SeqCst);
    let secret = b"amount=100 for account 4711".to_vec();
    let aead = factory.new_aead(&key).unwrap();
    assert_eq!(
        left_after_a_failed_open(aead.as_ref(), &secret),
        vec![0u8; secret.len()]
    );
    OPEN.store(OPEN_FAITHFUL, Ordering::SeqCst);

    // A cipher that no longer matches what the self-test saw is refused.
    ID.store(EncryptionAlgorithm::Aes256Gcm.id().0, Ordering::SeqCst);
    assert_eq!(factory.new_aead(&key).err(), Some(AeadError::InvalidLength));
    ID.store(0x812a, Ordering::SeqCst);
    NONCE_LEN.store(24, Ordering::SeqCst);
    assert_eq!(factory.new_aead(&key).err(), Some(AeadError::InvalidLength));
    NONCE_LEN.store(12, Ordering::SeqCst);
    factory.new_aead(&key).unwrap();
}

#[test]
fn a_built_cipher_reports_the_checked_id_and_lengths() {
    static ID: AtomicU16 = AtomicU16::new(0x812b);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let provider = Arc::new(
        CryptoProvider::default()
            .with_algorithm(Arc::new(Switchable(Switches {
                id: &ID,
                misuse_resistant: &CLAIM,
                nonce_len: &NONCE_LEN,
                open: &OPEN,
            })))
            .expect("a faithful AES-256-GCM under a private id"),
    );
    let key = SecretKey::from_bytes(&[5; 32]).unwrap();
    let aead = hazmat::new_aead(&provider, AlgorithmId(0x812b), &key).unwrap();
    let keyring = Keyring::new(DbId([1; 16]), provider.clone());
    keyring.insert(data_key(0x812b));
    keyring.set_active(KeyId(3)).unwrap();
    let session = keyring.start_session().unwrap();

    // The plugin's cipher now answers otherwise; what was built does not.
    ID.store(EncryptionAlgorithm::Aes256Gcm.id().0, Ordering::SeqCst);
    NONCE_LEN.store(24, Ordering::SeqCst);
    assert_eq!(aead.algorithm(), AlgorithmId(0x812b));
    assert_eq!((aead.nonce_len(), aead.tag_len()), (12, 16));
    assert_eq!(
        session.sealer(Domain::Page).algorithm(),
        AlgorithmId(0x812b)
    );
    ID.store(0x812b, Ordering::SeqCst);
    NONCE_LEN.store(12, Ordering::SeqCst);
}

/// An archive's chunk sealer and opener, built before the re-check, stop
/// with the failed check once `self_test_again` marks their algorithm
/// failed: a backup in progress seals nothing more with a cipher that no
/// longer checks tags, and a restore opens nothing with one.
#[test]
fn a_failed_recheck_stops_archive_chunk_sealers_and_openers() {
    use sealkv_crypto_envelope::MasterKey;
    use sealkv_crypto_envelope::archive::{ArchiveKeys, ArchiveReadKeys};
    static ID: AtomicU16 = AtomicU16::new(0x812c);
    static CLAIM: AtomicBool = AtomicBool::new(false);
    static NONCE_LEN: AtomicUsize = AtomicUsize::new(12);
    static OPEN: AtomicU8 = AtomicU8::new(OPEN_FAITHFUL);
    let provider = CryptoProvider::default()
        .with_algorithm(Arc::new(Switchable(Switches {
            id: &ID,
            misuse_resistant: &CLAIM,
            nonce_len: &NONCE_LEN,
            open: &OPEN,
        })))
        .expect("a faithful AES-256-GCM under a private id");
    let algorithm = AlgorithmId(0x812c);
    let key = MasterKey::from_bytes(&[9; 32]).unwrap();
    let keys = ArchiveKeys::generate(&provider, &key).unwrap();
    let read_keys = ArchiveReadKeys::derive(&provider, &key, keys.salt()).unwrap();
    let mut sealer = keys.into_sealer(&provider, algorithm).unwrap();
    let opener = read_keys.opener(&provider, algorithm).unwrap();
    let mut chunk = b"chunk zero".to_vec();
    let mut tag = [0u8; 16];
    let index = sealer
        .seal_next(false, b"aad", &mut chunk, &mut tag)
        .unwrap();
    let sealed = chunk.clone();
    opener.open(index, false, b"aad", &mut chunk, &tag).unwrap();
    assert_eq!(chunk, b"chunk zero", "both work before the re-check");

    OPEN.store(OPEN_IGNORES_TAG, Ordering::SeqCst);
    assert_eq!(
        provider.self_test_again().unwrap_err().check(),
        &Check::AcceptsFlippedTag
    );

    let refused = |r: Result<(), CryptoError>| matches!(r, Err(CryptoError::SelfTest(f)) if f.check() == &Check::AcceptsFlippedTag);
    let mut forged_tag = tag;
    forged_tag[0] ^= 1;
    let mut buf = sealed.clone();
    assert!(refused(opener.open(
        index,
        false,
        b"aad",
        &mut buf,
        &forged_tag
    )));
    assert_eq!(buf, sealed, "a refused open leaves the chunk untouched");
    let mut next = b"chunk one".to_vec();
    assert!(refused(
        sealer
            .seal_next(true, b"aad", &mut next, &mut tag)
            .map(|_| ())
    ));
    assert_eq!(next, b"chunk one", "a refused seal leaves the chunk clear");
}
