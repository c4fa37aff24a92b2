//! The self-tests of the provider parts: KDF, MAC, password hash, random
//! source.

use crate::keys::KdfParams;
use crate::primitives::{Kdf, Mac, PasswordHash, SecureRandom};

use super::vectors::{ARGON2ID, HKDF_SHA256, HMAC_SHA256};
use super::{Check, SelfTestFailure, unhex};

fn failure(kind: &str, name: &str, check: Check) -> SelfTestFailure {
    SelfTestFailure::new(format!("{kind} {name}"), check)
}

/// The ways the input of a KDF or MAC is split into parts: in two halves,
/// and in four (thirds with an empty part second), as sealkv's labels have
/// up to four parts. An implementation that reads only some of the parts,
/// or stops at an empty one, gives another output.
fn splits(input: &[u8]) -> [Vec<&[u8]>; 2] {
    let (a, b) = input.split_at(input.len() / 2);
    let (c, rest) = input.split_at(input.len() / 3);
    let (d, e) = rest.split_at(input.len() / 3);
    [vec![a, b], vec![c, &[], d, e]]
}

/// RFC 5869's HKDF-SHA256 vectors, with the info whole and split in parts.
pub fn check_kdf(kdf: &dyn Kdf) -> Result<(), SelfTestFailure> {
    let fail = |check| failure("kdf", kdf.name(), check);
    for (i, v) in HKDF_SHA256.iter().enumerate() {
        let weak = || {
            fail(Check::WeakVector {
                vector: i,
                reason: "not hex",
            })
        };
        let (Some(ikm), Some(salt), Some(info), Some(okm)) =
            (unhex(v.ikm), unhex(v.salt), unhex(v.info), unhex(v.okm))
        else {
            return Err(weak());
        };
        let mut out = vec![0u8; okm.len()];
        if kdf.hkdf_sha256(&ikm, &salt, &[&info], &mut out).is_err() || out != okm {
            return Err(fail(Check::PartKnownAnswer { vector: i }));
        }
        for parts in splits(&info) {
            let mut out = vec![0u8; okm.len()];
            if kdf.hkdf_sha256(&ikm, &salt, &parts, &mut out).is_err() || out != okm {
                return Err(fail(Check::KdfInfoParts));
            }
        }
        debug_assert!(!v.source.is_empty());
    }
    Ok(())
}

/// RFC 4231's HMAC-SHA256 vectors, the data whole and split in parts.
pub fn check_mac(mac: &dyn Mac) -> Result<(), SelfTestFailure> {
    let fail = |check| failure("mac", mac.name(), check);
    for (i, v) in HMAC_SHA256.iter().enumerate() {
        let (Some(key), Some(data), Some(expected)) = (unhex(v.key), unhex(v.data), unhex(v.mac))
        else {
            return Err(fail(Check::WeakVector {
                vector: i,
                reason: "not hex",
            }));
        };
        if mac.hmac_sha256(&key, &[&data])[..] != expected[..] {
            return Err(fail(Check::PartKnownAnswer { vector: i }));
        }
        for parts in splits(&data) {
            if mac.hmac_sha256(&key, &parts)[..] != expected[..] {
                return Err(fail(Check::MacDataParts));
            }
        }
        // A prepared key gives the same MACs, twice over (the states are
        // copied per MAC, not consumed).
        if let Some(keyed) = mac.keyed(&key) {
            for _ in 0..2 {
                if keyed.hmac_sha256(&[&data])[..] != expected[..] {
                    return Err(fail(Check::MacKeyed { vector: i }));
                }
            }
        }
        debug_assert!(!v.source.is_empty());
    }
    Ok(())
}

/// The Argon2id reference implementation's vectors (256 KiB each).
pub fn check_password_hash(hash: &dyn PasswordHash) -> Result<(), SelfTestFailure> {
    let fail = |check| failure("password hash", hash.name(), check);
    for (i, v) in ARGON2ID.iter().enumerate() {
        let Some(expected) = unhex(v.hash) else {
            return Err(fail(Check::WeakVector {
                vector: i,
                reason: "not hex",
            }));
        };
        let params = KdfParams {
            memory_kib: v.memory_kib,
            iterations: v.iterations,
            parallelism: v.parallelism,
        };
        let mut out = vec![0u8; expected.len()];
        if hash.argon2id(v.password, v.salt, params, &mut out).is_err() || out != expected {
            return Err(fail(Check::PartKnownAnswer { vector: i }));
        }
        debug_assert!(!v.source.is_empty());
    }
    Ok(())
}

/// The random source fills a buffer, and two 32-byte draws differ (a
/// generator stuck on one output is caught; randomness cannot be proven).
pub fn check_random(random: &dyn SecureRandom) -> Result<(), SelfTestFailure> {
    let fail = |why| failure("random source", random.name(), Check::RandomSource(why));
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    random.fill(&mut a).map_err(|_| fail("it failed to fill"))?;
    random.fill(&mut b).map_err(|_| fail("it failed to fill"))?;
    if a == b {
        return Err(fail("two draws gave the same bytes"));
    }
    Ok(())
}
