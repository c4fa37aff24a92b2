//! Property tests: every algorithm round-trips random keys, nonces, AAD and
//! lengths up to 64 KiB, and any single bit flipped in ciphertext, tag,
//! nonce or AAD makes opening fail — with every provider this build has.
//! With `--features ring`, `ring` and RustCrypto must also produce the same
//! bytes and open each other's output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sealkv_crypto_envelope::{AeadError, CryptoProvider, EncryptionAlgorithm, SecretKey, hazmat};

fn alg() -> impl Strategy<Value = EncryptionAlgorithm> {
    prop::sample::select(EncryptionAlgorithm::ALL.to_vec())
}

/// Every provider this build has.
fn providers() -> Vec<CryptoProvider> {
    #[allow(unused_mut)]
    let mut p = vec![CryptoProvider::rustcrypto()];
    #[cfg(feature = "ring")]
    p.push(CryptoProvider::ring());
    p
}

fn provider() -> impl Strategy<Value = CryptoProvider> {
    prop::sample::select(providers())
}

/// Which part of a sealed message to damage.
#[derive(Debug, Clone, Copy)]
enum Part {
    Ciphertext,
    Tag,
    Nonce,
    Aad,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trip(
        provider in provider(),
        alg in alg(),
        key in prop::array::uniform32(any::<u8>()),
        nonce in prop::array::uniform12(any::<u8>()),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        len in prop_oneof![0usize..64, 64usize..=65536],
        fill in any::<u8>(),
    ) {
        let aead = hazmat::builtin(&provider, alg, &SecretKey::from_bytes(&key).unwrap())
            .unwrap();
        let pt: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ fill).collect();
        let mut buf = pt.clone();
        let mut tag = [0u8; 16];
        aead.seal_in_place_detached(&nonce, &aad, &mut buf, &mut tag).unwrap();
        if len >= 16 {
            prop_assert_ne!(&buf, &pt);
        }
        aead.open_in_place_detached(&nonce, &aad, &mut buf, &tag).unwrap();
        prop_assert_eq!(buf, pt);
    }

    #[test]
    fn any_single_bit_flip_fails(
        provider in provider(),
        alg in alg(),
        key in prop::array::uniform32(any::<u8>()),
        nonce in prop::array::uniform12(any::<u8>()),
        aad in prop::collection::vec(any::<u8>(), 1..48),
        pt in prop::collection::vec(any::<u8>(), 1..512),
        part in prop_oneof![
            Just(Part::Ciphertext), Just(Part::Tag), Just(Part::Nonce), Just(Part::Aad)
        ],
        pick in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let aead = hazmat::builtin(&provider, alg, &SecretKey::from_bytes(&key).unwrap())
            .unwrap();
        let mut ct = pt.clone();
        let mut tag = [0u8; 16];
        aead.seal_in_place_detached(&nonce, &aad, &mut ct, &mut tag).unwrap();
        let (mut nonce, mut aad) = (nonce, aad);
        {
            let target: &mut [u8] = match part {
                Part::Ciphertext => &mut ct,
                Part::Tag => &mut tag,
                Part::Nonce => &mut nonce,
                Part::Aad => &mut aad,
            };
            let i = pick.index(target.len());
            target[i] ^= 1 << bit;
        }
        let result = aead.open_in_place_detached(&nonce, &aad, &mut ct, &tag);
        prop_assert_eq!(result, Err(AeadError::Authentication));
    }

    /// `ring` seals to RustCrypto's exact bytes, and each opens the other's.
    #[cfg(feature = "ring")]
    #[test]
    fn ring_and_rustcrypto_agree(
        alg in alg(),
        key in prop::array::uniform32(any::<u8>()),
        nonce in prop::array::uniform12(any::<u8>()),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        pt in prop::collection::vec(any::<u8>(), 0..5000),
    ) {
        let key = SecretKey::from_bytes(&key).unwrap();
        let ring = hazmat::builtin(&CryptoProvider::ring(), alg, &key).unwrap();
        let rc = hazmat::builtin(&CryptoProvider::rustcrypto(), alg, &key).unwrap();
        let (mut a, mut b) = (pt.clone(), pt.clone());
        let (mut ta, mut tb) = ([0u8; 16], [0u8; 16]);
        ring.seal_in_place_detached(&nonce, &aad, &mut a, &mut ta).unwrap();
        rc.seal_in_place_detached(&nonce, &aad, &mut b, &mut tb).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(ta, tb);
        rc.open_in_place_detached(&nonce, &aad, &mut a, &ta).unwrap();
        ring.open_in_place_detached(&nonce, &aad, &mut b, &tb).unwrap();
        prop_assert_eq!(&a, &pt);
        prop_assert_eq!(&b, &pt);
    }
}
