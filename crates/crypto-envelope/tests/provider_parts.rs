//! The `ring` provider's parts (HKDF, HMAC, random source, and ciphers)
//! write the bytes the default provider writes: a registry, a session's
//! units, a field-sealed value and an archive's chunks made with either
//! provider open with the other, in both directions.

#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sealkv_crypto_envelope::archive::{ArchiveKeys, ArchiveReadKeys};
use sealkv_crypto_envelope::registry::KeyRegistry;
use sealkv_crypto_envelope::{
    CryptoProvider, DbId, Domain, EncryptionAlgorithm, KdfParams, KeySource, MasterKey, Passphrase,
    field, hazmat,
};

fn pairs() -> [(Arc<CryptoProvider>, Arc<CryptoProvider>); 2] {
    let (rc, ring) = (
        Arc::new(CryptoProvider::rustcrypto()),
        Arc::new(CryptoProvider::ring()),
    );
    [(rc.clone(), ring.clone()), (ring, rc)]
}

fn sources() -> [KeySource; 2] {
    [
        KeySource::Key(MasterKey::from_bytes(&[0x33; 32]).unwrap()),
        KeySource::Passphrase {
            passphrase: Passphrase::new("interop passphrase").unwrap(),
            params: KdfParams::FLOOR,
        },
    ]
}

#[test]
fn registries_and_sessions_interoperate_both_ways() {
    for (writer, reader) in pairs() {
        for source in sources() {
            for alg in EncryptionAlgorithm::ALL {
                let db = DbId::random_from(&writer).unwrap();
                let mut reg =
                    KeyRegistry::create_with_provider(db, &source, alg.id(), writer.clone())
                        .unwrap();
                let field_key = reg
                    .add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id())
                    .unwrap();
                let bytes = reg.to_bytes();
                // Key check (HMAC), MAC, HKDF-derived wrapping keys: all
                // agree, or this open fails.
                let opened =
                    KeyRegistry::open_with_provider(&bytes, &source, reader.clone()).unwrap();
                assert_eq!(opened.to_bytes(), bytes, "{alg}");

                // A session's unit (HKDF session subkeys, the cipher).
                let ring_w = reg.to_keyring().unwrap();
                let ring_r = opened.to_keyring().unwrap();
                let session = ring_w.start_session().unwrap();
                let sealer = session.sealer(Domain::Page);
                let mut buf = b"page body".to_vec();
                let mut tag = [0u8; 16];
                let counter = sealer.seal(b"aad", &mut buf, &mut tag).unwrap();
                ring_r
                    .open(sealer.subkey_id(), counter, b"aad", &mut buf, &tag)
                    .unwrap();
                assert_eq!(buf, b"page body");

                // Field encryption, both modes.
                let fk_w = reg.field_key(field_key).unwrap();
                let fk_r = opened.field_key(field_key).unwrap();
                let r = field::seal_randomized(&writer, &fk_w, b"rec", b"v").unwrap();
                assert_eq!(field::open(&reader, &fk_r, b"rec", &r).unwrap(), b"v");
                let d = field::seal_deterministic(&writer, &fk_w, b"f", b"v").unwrap();
                assert_eq!(
                    field::seal_deterministic(&reader, &fk_r, b"f", b"v").unwrap(),
                    d
                );
            }
        }
    }
}

#[test]
fn archive_keys_interoperate_both_ways() {
    let key = MasterKey::from_bytes(&[0x44; 32]).unwrap();
    for (writer, reader) in pairs() {
        for alg in EncryptionAlgorithm::ALL {
            let keys = ArchiveKeys::generate(&writer, &key).unwrap();
            let salt = *keys.salt();
            let check = keys.key_check(b"header");
            let mut sealer = keys.into_sealer(&writer, alg.id()).unwrap();
            let mut body = b"chunk".to_vec();
            let mut tag = [0u8; 16];
            let index = sealer
                .seal_next(true, b"header", &mut body, &mut tag)
                .unwrap();
            let read = ArchiveReadKeys::derive(&reader, &key, &salt).unwrap();
            assert!(read.verify_key_check(b"header", &check));
            read.opener(&reader, alg.id())
                .unwrap()
                .open(index, true, b"header", &mut body, &tag)
                .unwrap();
            assert_eq!(body, b"chunk");
        }
    }
}

#[test]
fn passphrase_keys_agree_across_providers() {
    let p = Passphrase::new("the same passphrase").unwrap();
    let [(rc, ring), _] = pairs();
    let a = hazmat::master_key_from_passphrase(&rc, &p, &[5; 32], KdfParams::FLOOR).unwrap();
    let b = hazmat::master_key_from_passphrase(&ring, &p, &[5; 32], KdfParams::FLOOR).unwrap();
    // Compared through what they derive: a registry under one opens under
    // the other.
    let reg = KeyRegistry::create_with_provider(
        DbId([1; 16]),
        &KeySource::Key(a),
        EncryptionAlgorithm::Aes256Gcm.id(),
        rc,
    )
    .unwrap();
    KeyRegistry::open_with_provider(&reg.to_bytes(), &KeySource::Key(b), ring).unwrap();
}
