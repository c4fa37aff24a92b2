//! The self-test of one AEAD algorithm (the module docs list the checks).

use crate::aead::{Aead, AeadAlgorithm};
use crate::algorithm::{AlgorithmId, EncryptionAlgorithm};
use crate::checksum::TAG_LEN;
use crate::keys::{KEY_LEN, SecretKey};
use crate::session::{NONCE_LEN, nonce_for};

use super::vectors::{self, KnownAnswer};
use super::{Check, SelfTestFailure, unhex};

/// The counters every algorithm is sealed at: both ends of each nonce word
/// the counter reaches.
const COUNTERS: [u64; 6] = [0, 1, 2, 0xffff_ffff, 1 << 32, u64::MAX];

/// The message of the generated checks: four distinct 16-byte blocks.
const MESSAGE: [u8; 64] = {
    let mut m = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        m[i] = (i as u8).wrapping_mul(37).wrapping_add(11);
        i += 1;
    }
    m
};

/// The AAD of the generated checks.
const AAD: &[u8] = b"sealkv self-test aad";

/// A sealed message: ciphertext and tag.
type Sealed = (Vec<u8>, [u8; TAG_LEN]);

/// A decoded published vector.
struct Decoded {
    key: SecretKey,
    nonce: Vec<u8>,
    aad: Vec<u8>,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

/// Runs every check of the module docs on `algorithm`; the first that fails
/// is the error. Costs a few dozen seals of at most a few hundred bytes.
pub fn check_algorithm(algorithm: &dyn AeadAlgorithm) -> Result<(), SelfTestFailure> {
    let fail = |check| {
        SelfTestFailure::new(
            format!("algorithm {} ({:#06x})", algorithm.name(), algorithm.id().0),
            check,
        )
    };
    run(algorithm).map_err(fail)
}

fn run(algorithm: &dyn AeadAlgorithm) -> Result<(), Check> {
    let (key_len, nonce_len, tag_len) = (
        algorithm.key_len(),
        algorithm.nonce_len(),
        algorithm.tag_len(),
    );
    if (key_len, nonce_len, tag_len) != (KEY_LEN, NONCE_LEN, TAG_LEN) {
        return Err(Check::Shape {
            key_len,
            nonce_len,
            tag_len,
        });
    }
    let id = algorithm.id();
    let builtin = EncryptionAlgorithm::from_id(id);
    if id.is_reserved() && builtin.is_none() {
        return Err(Check::ReservedId);
    }
    if builtin.is_some_and(|b| b.misuse_resistant() != algorithm.misuse_resistant()) {
        return Err(Check::MisuseResistanceClaim);
    }
    let published = match builtin {
        Some(b) => vectors::for_builtin(b),
        None => algorithm.known_answers(),
    };
    let decoded = decode_all(published)?;
    for (i, v) in decoded.iter().enumerate() {
        let aead = build(algorithm, id, &v.key)?;
        known_answer(aead.as_ref(), i, v)?;
        tamper(aead.as_ref(), &v.nonce, &v.aad, &v.ciphertext, &v.tag)?;
    }
    // `decode_all` returns at least two vectors.
    let key = &decoded[0].key;
    let aead = build(algorithm, id, key)?;
    let sealed = counter_nonces(aead.as_ref())?;
    nonce_bytes(aead.as_ref(), &decoded[0].nonce)?;
    if let Some(b) = builtin {
        same_as_reference(b, key, &sealed)?;
    }
    if algorithm.misuse_resistant() {
        misuse_resistant(aead.as_ref())?;
    }
    Ok(())
}

/// Decodes and vets the published vectors.
fn decode_all(published: &[KnownAnswer]) -> Result<Vec<Decoded>, Check> {
    let mut out: Vec<Decoded> = Vec::with_capacity(published.len());
    for (i, v) in published.iter().enumerate() {
        let weak = |reason| Check::WeakVector { vector: i, reason };
        let (Some(key), Some(nonce), Some(aad), Some(plaintext), Some(ciphertext), Some(tag)) = (
            unhex(v.key),
            unhex(v.nonce),
            unhex(v.aad),
            unhex(v.plaintext),
            unhex(v.ciphertext),
            unhex(v.tag),
        ) else {
            return Err(weak("a field is not hex"));
        };
        if key.len() != KEY_LEN || nonce.len() != NONCE_LEN || tag.len() != TAG_LEN {
            return Err(weak("a key, nonce or tag of the wrong length"));
        }
        if ciphertext.len() != plaintext.len() {
            return Err(weak("ciphertext and plaintext lengths differ"));
        }
        if repeats_a_word(&nonce) {
            return Err(weak(
                "a 32-bit word repeats in the nonce (it cannot tell nonce words apart)",
            ));
        }
        if repeats_a_word(&key) {
            return Err(weak(
                "a 32-bit word repeats in the key (it cannot tell key words apart)",
            ));
        }
        let key = SecretKey::from_bytes(&key).map_err(|_| weak("a key of the wrong length"))?;
        out.push(Decoded {
            key,
            nonce,
            aad,
            plaintext,
            ciphertext,
            tag,
        });
    }
    let distinct_nonces = out
        .iter()
        .enumerate()
        .any(|(i, a)| out[i + 1..].iter().any(|b| b.nonce != a.nonce));
    if out.len() < 2 || !distinct_nonces {
        return Err(Check::TooFewVectors { given: out.len() });
    }
    Ok(out)
}

/// Whether two of the 32-bit words of `bytes` are equal.
fn repeats_a_word(bytes: &[u8]) -> bool {
    let words: Vec<&[u8]> = bytes.chunks(4).collect();
    words
        .iter()
        .enumerate()
        .any(|(i, w)| words[i + 1..].contains(w))
}

/// Builds the cipher and checks it is what the algorithm says.
fn build(
    algorithm: &dyn AeadAlgorithm,
    id: AlgorithmId,
    key: &SecretKey,
) -> Result<Box<dyn Aead>, Check> {
    let aead = algorithm
        .new_aead(key)
        .map_err(|_| Check::Construction("new_aead failed on a valid key"))?;
    if aead.algorithm() != id {
        return Err(Check::Construction(
            "the cipher reports another algorithm id",
        ));
    }
    if aead.nonce_len() != NONCE_LEN || aead.tag_len() != TAG_LEN {
        return Err(Check::Construction(
            "the cipher reports another nonce or tag length than its algorithm",
        ));
    }
    Ok(aead)
}

fn seal(aead: &dyn Aead, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Option<Sealed> {
    let mut buf = plaintext.to_vec();
    let mut tag = [0u8; TAG_LEN];
    aead.seal_in_place_detached(nonce, aad, &mut buf, &mut tag)
        .ok()?;
    Some((buf, tag))
}

fn opens(
    aead: &dyn Aead,
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Vec<u8>> {
    let mut buf = ciphertext.to_vec();
    aead.open_in_place_detached(nonce, aad, &mut buf, tag)
        .ok()?;
    Some(buf)
}

fn known_answer(aead: &dyn Aead, vector: usize, v: &Decoded) -> Result<(), Check> {
    match seal(aead, &v.nonce, &v.aad, &v.plaintext) {
        Some((ct, tag)) if ct == v.ciphertext && tag[..] == v.tag[..] => {}
        _ => return Err(Check::KnownAnswerSeal { vector }),
    }
    match opens(aead, &v.nonce, &v.aad, &v.ciphertext, &v.tag) {
        Some(pt) if pt == v.plaintext => Ok(()),
        _ => Err(Check::KnownAnswerOpen { vector }),
    }
}

/// `open` must refuse a flipped byte of the tag, the ciphertext (when there
/// is one) and the AAD (when there is one), at the first, a middle and the
/// last position.
fn tamper(
    aead: &dyn Aead,
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<(), Check> {
    let positions = |len: usize| [0, len / 2, len.saturating_sub(1)];
    for i in positions(tag.len()) {
        let mut t = tag.to_vec();
        t[i] ^= 0x01;
        if opens(aead, nonce, aad, ciphertext, &t).is_some() {
            return Err(Check::AcceptsFlippedTag);
        }
    }
    if !ciphertext.is_empty() {
        for i in positions(ciphertext.len()) {
            let mut c = ciphertext.to_vec();
            c[i] ^= 0x80;
            if opens(aead, nonce, aad, &c, tag).is_some() {
                return Err(Check::AcceptsFlippedCiphertext);
            }
        }
    }
    if !aad.is_empty() {
        for i in positions(aad.len()) {
            let mut a = aad.to_vec();
            a[i] ^= 0x01;
            if opens(aead, nonce, &a, ciphertext, tag).is_some() {
                return Err(Check::AcceptsFlippedAad);
            }
        }
    }
    Ok(())
}

/// Seals [`MESSAGE`] at every counter of [`COUNTERS`]: no two share a
/// 16-byte ciphertext block, each opens back and refuses tampering, and
/// sealing twice gives one output. Returns the sealed messages.
fn counter_nonces(aead: &dyn Aead) -> Result<Vec<Sealed>, Check> {
    let mut sealed = Vec::with_capacity(COUNTERS.len());
    for counter in COUNTERS {
        let nonce = nonce_for(counter);
        let (ct, tag) =
            seal(aead, &nonce, AAD, &MESSAGE).ok_or(Check::CounterNonceRoundTrip { counter })?;
        if seal(aead, &nonce, AAD, &MESSAGE).as_ref() != Some(&(ct.clone(), tag)) {
            return Err(Check::NotDeterministic);
        }
        if opens(aead, &nonce, AAD, &ct, &tag).as_deref() != Some(&MESSAGE[..]) {
            return Err(Check::CounterNonceRoundTrip { counter });
        }
        tamper(aead, &nonce, AAD, &ct, &tag)?;
        sealed.push((ct, tag));
    }
    for (i, (a, _)) in sealed.iter().enumerate() {
        for (j, (b, _)) in sealed.iter().enumerate().skip(i + 1) {
            if shares_a_block(a, b) {
                return Err(Check::CounterNoncesShareKeystream {
                    first: COUNTERS[i],
                    second: COUNTERS[j],
                });
            }
        }
    }
    Ok(sealed)
}

/// Whether two ciphertexts have a 16-byte block in common at one position.
fn shares_a_block(a: &[u8], b: &[u8]) -> bool {
    a.chunks(16).zip(b.chunks(16)).any(|(x, y)| x == y)
}

/// Every byte of the nonce must change the ciphertext.
fn nonce_bytes(aead: &dyn Aead, nonce: &[u8]) -> Result<(), Check> {
    let base = seal(aead, nonce, AAD, &MESSAGE).ok_or(Check::Construction("sealing failed"))?;
    for byte in 0..nonce.len() {
        let mut n = nonce.to_vec();
        n[byte] ^= 0x01;
        let other = seal(aead, &n, AAD, &MESSAGE).ok_or(Check::Construction("sealing failed"))?;
        if shares_a_block(&base.0, &other.0) {
            return Err(Check::IgnoresNonceByte { byte });
        }
    }
    Ok(())
}

/// A built-in id must produce the RustCrypto reference's output at every
/// counter nonce.
fn same_as_reference(
    builtin: EncryptionAlgorithm,
    key: &SecretKey,
    sealed: &[Sealed],
) -> Result<(), Check> {
    let reference = crate::rustcrypto::ALGORITHMS
        .iter()
        .find(|a| a.id() == builtin.id())
        .ok_or(Check::ReservedId)?;
    let aead = reference
        .new_aead(key)
        .map_err(|_| Check::Construction("the reference cipher could not be built"))?;
    for (counter, ours) in COUNTERS.into_iter().zip(sealed) {
        if seal(aead.as_ref(), &nonce_for(counter), AAD, &MESSAGE).as_ref() != Some(ours) {
            return Err(Check::DiffersFromBuiltin { counter });
        }
    }
    Ok(())
}

/// Claimed misuse resistance: two messages that differ in their last byte,
/// or in their first, sealed under one key and nonce, share no ciphertext
/// block (a stream cipher would repeat every block the messages share).
fn misuse_resistant(aead: &dyn Aead) -> Result<(), Check> {
    let nonce = nonce_for(7);
    let base = seal(aead, &nonce, AAD, &MESSAGE).ok_or(Check::Construction("sealing failed"))?;
    for flip in [MESSAGE.len() - 1, 0] {
        let mut m = MESSAGE;
        m[flip] ^= 0x01;
        let other = seal(aead, &nonce, AAD, &m).ok_or(Check::Construction("sealing failed"))?;
        if shares_a_block(&base.0, &other.0) {
            return Err(Check::NotMisuseResistant);
        }
    }
    Ok(())
}
