//! Known-answer tests through the `Aead` trait: RFC 8439 (ChaCha20-Poly1305),
//! the GCM specification's AES-256 test cases (as used by NIST CAVP and
//! Wycheproof), and RFC 8452 (AES-256-GCM-SIV). Each vector must seal to the
//! published ciphertext and tag, open back, and fail to open once any of
//! ciphertext, tag, nonce or AAD is changed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealkv_crypto_envelope::{AeadError, CryptoProvider, EncryptionAlgorithm, SecretKey, hazmat};

struct Vector {
    name: &'static str,
    alg: EncryptionAlgorithm,
    key: &'static str,
    nonce: &'static str,
    aad: &'static str,
    pt: &'static str,
    ct: &'static str,
    tag: &'static str,
}

/// Every provider this build has, by name.
fn providers() -> Vec<(&'static str, CryptoProvider)> {
    #[allow(unused_mut)]
    let mut p = vec![("rustcrypto", CryptoProvider::rustcrypto())];
    #[cfg(feature = "ring")]
    p.push(("ring", CryptoProvider::ring()));
    p
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

const LADIES: &str = "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a204966204920636f756c64206f6666657220796f75206f6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73637265656e20776f756c642062652069742e";

const VECTORS: &[Vector] = &[
    // RFC 8439, section 2.8.2.
    Vector {
        name: "rfc8439 2.8.2",
        alg: EncryptionAlgorithm::ChaCha20Poly1305,
        key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        nonce: "070000004041424344454647",
        aad: "50515253c0c1c2c3c4c5c6c7",
        pt: LADIES,
        ct: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
        tag: "1ae10b594f09e26a7e902ecbd0600691",
    },
    // GCM spec test case 13 (AES-256, empty plaintext).
    Vector {
        name: "gcm tc13",
        alg: EncryptionAlgorithm::Aes256Gcm,
        key: "0000000000000000000000000000000000000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        pt: "",
        ct: "",
        tag: "530f8afbc74536b9a963b4f1c4cb738b",
    },
    // GCM spec test case 14.
    Vector {
        name: "gcm tc14",
        alg: EncryptionAlgorithm::Aes256Gcm,
        key: "0000000000000000000000000000000000000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        pt: "00000000000000000000000000000000",
        ct: "cea7403d4d606b6e074ec5d3baf39d18",
        tag: "d0d1c8a799996bf0265b98b5d48ab919",
    },
    // GCM spec test case 16 (AES-256 with AAD).
    Vector {
        name: "gcm tc16",
        alg: EncryptionAlgorithm::Aes256Gcm,
        key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        nonce: "cafebabefacedbaddecaf888",
        aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        pt: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        ct: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        tag: "76fc6ece0f4e1768cddf8853bb2d551b",
    },
    // RFC 8452, appendix C.2 (AES-256-GCM-SIV), first two vectors.
    Vector {
        name: "rfc8452 c.2 #1",
        alg: EncryptionAlgorithm::Aes256GcmSiv,
        key: "0100000000000000000000000000000000000000000000000000000000000000",
        nonce: "030000000000000000000000",
        aad: "",
        pt: "",
        ct: "",
        tag: "07f5f4169bbf55a8400cd47ea6fd400f",
    },
    Vector {
        name: "rfc8452 c.2 #2",
        alg: EncryptionAlgorithm::Aes256GcmSiv,
        key: "0100000000000000000000000000000000000000000000000000000000000000",
        nonce: "030000000000000000000000",
        aad: "",
        pt: "0100000000000000",
        ct: "c2ef328e5c71c83b",
        tag: "843122130f7364b761e0b97427e3df28",
    },
];

#[test]
fn vectors_seal_to_the_published_answer_and_open_back() {
    for (pname, provider) in providers() {
        seal_vectors(pname, &provider);
    }
}

fn seal_vectors(pname: &str, provider: &CryptoProvider) {
    for v in VECTORS {
        let aead =
            hazmat::builtin(provider, v.alg, &SecretKey::from_bytes(&h(v.key)).unwrap()).unwrap();
        let (nonce, aad) = (h(v.nonce), h(v.aad));
        let mut buf = h(v.pt);
        let mut tag = [0u8; 16];
        aead.seal_in_place_detached(&nonce, &aad, &mut buf, &mut tag)
            .unwrap();
        assert_eq!(
            hex::encode(&buf),
            v.ct.replace(' ', ""),
            "{pname} {}: ciphertext",
            v.name
        );
        assert_eq!(hex::encode(tag), v.tag, "{pname} {}: tag", v.name);
        aead.open_in_place_detached(&nonce, &aad, &mut buf, &tag)
            .unwrap();
        assert_eq!(buf, h(v.pt), "{pname} {}: plaintext", v.name);
        assert_eq!(aead.algorithm(), v.alg.id());
        assert_eq!((aead.nonce_len(), aead.tag_len()), (12, 16));
    }
}

#[test]
fn vectors_must_fail_to_open_when_anything_changes() {
    for (pname, provider) in providers() {
        tamper_vectors(pname, &provider);
    }
}

fn tamper_vectors(pname: &str, provider: &CryptoProvider) {
    for v in VECTORS {
        let aead =
            hazmat::builtin(provider, v.alg, &SecretKey::from_bytes(&h(v.key)).unwrap()).unwrap();
        let (nonce, aad, ct, tag) = (h(v.nonce), h(v.aad), h(v.ct), h(v.tag));
        let fails = |nonce: &[u8], aad: &[u8], ct: &[u8], tag: &[u8]| {
            let mut buf = ct.to_vec();
            aead.open_in_place_detached(nonce, aad, &mut buf, tag)
        };
        assert_eq!(fails(&nonce, &aad, &ct, &tag), Ok(()), "{pname} {}", v.name);
        let mut t = tag.clone();
        t[0] ^= 0x80;
        assert_eq!(
            fails(&nonce, &aad, &ct, &t),
            Err(AeadError::Authentication),
            "{pname} {}: tag",
            v.name
        );
        let mut n = nonce.clone();
        n[11] ^= 1;
        assert_eq!(
            fails(&n, &aad, &ct, &tag),
            Err(AeadError::Authentication),
            "{pname} {}: nonce",
            v.name
        );
        let mut a = aad.clone();
        a.push(0);
        assert_eq!(
            fails(&nonce, &a, &ct, &tag),
            Err(AeadError::Authentication),
            "{pname} {}: aad",
            v.name
        );
        if !ct.is_empty() {
            let mut c = ct.clone();
            c[ct.len() - 1] ^= 1;
            assert_eq!(
                fails(&nonce, &aad, &c, &tag),
                Err(AeadError::Authentication),
                "{pname} {}: ct",
                v.name
            );
            // Truncating the ciphertext is a change too.
            assert_eq!(
                fails(&nonce, &aad, &ct[..ct.len() - 1], &tag),
                Err(AeadError::Authentication),
                "{pname} {}: truncated",
                v.name
            );
        }
        // Wrong lengths are rejected, not panicked on.
        assert_eq!(
            fails(&nonce[..8], &aad, &ct, &tag),
            Err(AeadError::InvalidLength)
        );
        assert_eq!(
            fails(&nonce, &aad, &ct, &tag[..15]),
            Err(AeadError::InvalidLength)
        );
    }
}

#[test]
fn append_and_detached_forms_agree() {
    for (_, provider) in providers() {
        append_vs_detached(&provider);
    }
}

fn append_vs_detached(provider: &CryptoProvider) {
    for alg in EncryptionAlgorithm::ALL {
        let aead =
            hazmat::builtin(provider, alg, &SecretKey::from_bytes(&[9; 32]).unwrap()).unwrap();
        let nonce = [4u8; 12];
        let mut appended = b"some plaintext".to_vec();
        aead.seal_in_place_append(&nonce, b"aad", &mut appended)
            .unwrap();
        assert_eq!(appended.len(), 14 + 16);
        let mut detached = b"some plaintext".to_vec();
        let mut tag = [0u8; 16];
        aead.seal_in_place_detached(&nonce, b"aad", &mut detached, &mut tag)
            .unwrap();
        assert_eq!(&appended[..14], &detached[..]);
        assert_eq!(&appended[14..], &tag[..]);
        let pt = aead
            .open_in_place_append(&nonce, b"aad", &mut appended)
            .unwrap();
        assert_eq!(pt, b"some plaintext");
        let mut short = vec![0u8; 15];
        assert_eq!(
            aead.open_in_place_append(&nonce, b"aad", &mut short)
                .unwrap_err(),
            AeadError::InvalidLength
        );
    }
}
