//! The self-test of one AEAD algorithm (the module docs list the checks).

use std::collections::HashMap;

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

/// The short message of the generated checks: four distinct 16-byte blocks.
const MESSAGE: [u8; 64] = pattern();

/// Length of the page-sized message: a page and an odd tail, so a bulk path
/// that differs past some length, and a partial last block, are sealed too.
const PAGE_LEN: usize = 4096 + 13;

/// The page-sized message of the generated checks; no 16-byte block
/// repeats.
const PAGE: [u8; PAGE_LEN] = pattern();

/// Length of the large message: 64 KiB and an odd tail, past the length
/// where a cipher's bulk path (wide pipelines, a parallel split) takes
/// over.
const LARGE_LEN: usize = 64 * 1024 + 13;

/// The large message of the generated checks (a static: too big to copy
/// onto the stack at each use).
static LARGE: [u8; LARGE_LEN] = pattern();

/// The counters the large message is sealed at: the first and the last.
const LARGE_COUNTERS: [u64; 2] = [0, u64::MAX];

/// Bytes in which no 16-byte block repeats (byte `i` mixes `i` with an odd
/// multiplier; a unit test checks the blocks are distinct).
const fn pattern<const N: usize>() -> [u8; N] {
    let mut m = [0u8; N];
    let mut i = 0;
    while i < N {
        m[i] = ((i as u32).wrapping_mul(0x9e37_79b1) >> 13) as u8 ^ (i >> 4) as u8;
        i += 1;
    }
    m
}

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
/// is the error. Costs about 250 seals and opens of at most a page (4 KiB
/// and 13 bytes), about 25 more for a misuse-resistance claim, and ten of a
/// 64 KiB message: a few milliseconds in an optimised build.
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
    if builtin == Some(EncryptionAlgorithm::Aes256GcmSiv) {
        counter_wrap(algorithm, id)?;
    }
    // `decode_all` returns at least two vectors.
    let key = &decoded[0].key;
    let aead = build(algorithm, id, key)?;
    let sealed = counter_nonces(aead.as_ref())?;
    let large = large_message(aead.as_ref())?;
    nonce_bytes(aead.as_ref(), &decoded[0].nonce)?;
    if let Some(b) = builtin {
        same_as_reference(b, key, &sealed, &large)?;
    }
    if algorithm.misuse_resistant() {
        misuse_resistant(aead.as_ref())?;
    }
    Ok(())
}

/// Decodes one vector.
fn decode(vector: usize, v: &KnownAnswer) -> Result<Decoded, Check> {
    let weak = |reason| Check::WeakVector { vector, reason };
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
    let key: [u8; KEY_LEN] = key
        .as_slice()
        .try_into()
        .map_err(|_| weak("a key of the wrong length"))?;
    let key = SecretKey::published(key);
    Ok(Decoded {
        key,
        nonce,
        aad,
        plaintext,
        ciphertext,
        tag,
    })
}

/// Decodes and vets the published vectors.
fn decode_all(published: &[KnownAnswer]) -> Result<Vec<Decoded>, Check> {
    let mut out: Vec<Decoded> = Vec::with_capacity(published.len());
    for (i, v) in published.iter().enumerate() {
        let weak = |reason| Check::WeakVector { vector: i, reason };
        let decoded = decode(i, v)?;
        if repeats_a_word(&decoded.nonce) {
            return Err(weak(
                "a 32-bit word repeats in the nonce (it cannot tell nonce words apart)",
            ));
        }
        if repeats_a_word(decoded.key.expose()) {
            return Err(weak(
                "a 32-bit word repeats in the key (it cannot tell key words apart)",
            ));
        }
        out.push(decoded);
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

/// AES-256-GCM-SIV's counter-wrap vectors (RFC 8452 C.3) seal and open.
fn counter_wrap(algorithm: &dyn AeadAlgorithm, id: AlgorithmId) -> Result<(), Check> {
    for (i, v) in vectors::AES_256_GCM_SIV_COUNTER_WRAP.iter().enumerate() {
        let v = decode(i, v)?;
        let aead = build(algorithm, id, &v.key)?;
        known_answer(aead.as_ref(), i, &v).map_err(|_| Check::CounterWrap { vector: i })?;
    }
    Ok(())
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

/// What a message sealed at one counter gave.
struct CounterSeal {
    counter: u64,
    message: Sealed,
    page: Sealed,
}

/// Seals [`MESSAGE`] and [`PAGE`] at every counter of [`COUNTERS`]: each
/// opens back and refuses tampering, sealing twice gives one output, and no
/// 16-byte block of keystream (ciphertext XOR plaintext of the page) turns
/// up twice, at any position, within one counter or across two. Returns
/// what was sealed.
fn counter_nonces(aead: &dyn Aead) -> Result<Vec<CounterSeal>, Check> {
    let mut sealed = Vec::with_capacity(COUNTERS.len());
    for counter in COUNTERS {
        let nonce = nonce_for(counter);
        let mut both = Vec::with_capacity(2);
        for message in [&MESSAGE[..], &PAGE[..]] {
            let (ct, tag) =
                seal(aead, &nonce, AAD, message).ok_or(Check::CounterNonceRoundTrip { counter })?;
            if seal(aead, &nonce, AAD, message).as_ref() != Some(&(ct.clone(), tag)) {
                return Err(Check::NotDeterministic);
            }
            if opens(aead, &nonce, AAD, &ct, &tag).as_deref() != Some(message) {
                return Err(Check::CounterNonceRoundTrip { counter });
            }
            tamper(aead, &nonce, AAD, &ct, &tag)?;
            both.push((ct, tag));
        }
        let page = both.pop().ok_or(Check::Construction("sealing failed"))?;
        let message = both.pop().ok_or(Check::Construction("sealing failed"))?;
        sealed.push(CounterSeal {
            counter,
            message,
            page,
        });
    }
    let keystreams = sealed
        .iter()
        .map(|s| (s.counter, keystream_blocks(&s.page.0, &PAGE)));
    match shared_block(keystreams) {
        None => Ok(sealed),
        Some((first, second)) if first == second => Err(Check::KeystreamRepeats),
        Some((first, second)) => Err(Check::CounterNoncesShareKeystream { first, second }),
    }
}

/// Seals [`LARGE`] at each of [`LARGE_COUNTERS`]: each opens back and
/// refuses its last ciphertext byte flipped, and no 16-byte block of
/// keystream turns up twice, within one counter or across the two. Returns
/// what was sealed, by counter.
fn large_message(aead: &dyn Aead) -> Result<Vec<(u64, Sealed)>, Check> {
    let mut sealed = Vec::with_capacity(LARGE_COUNTERS.len());
    for counter in LARGE_COUNTERS {
        let nonce = nonce_for(counter);
        let (ct, tag) =
            seal(aead, &nonce, AAD, &LARGE).ok_or(Check::CounterNonceRoundTrip { counter })?;
        if opens(aead, &nonce, AAD, &ct, &tag).as_deref() != Some(&LARGE[..]) {
            return Err(Check::CounterNonceRoundTrip { counter });
        }
        let mut flipped = ct.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 0x80;
        }
        if opens(aead, &nonce, AAD, &flipped, &tag).is_some() {
            return Err(Check::AcceptsFlippedCiphertext);
        }
        sealed.push((counter, (ct, tag)));
    }
    let keystreams = sealed
        .iter()
        .map(|(counter, (ct, _))| (*counter, keystream_blocks(ct, &LARGE)));
    match shared_block(keystreams) {
        None => Ok(sealed),
        Some((first, second)) if first == second => Err(Check::KeystreamRepeats),
        Some((first, second)) => Err(Check::CounterNoncesShareKeystream { first, second }),
    }
}

/// Ciphertext XOR plaintext, the keystream of a stream cipher (and, for
/// any cipher, what must not repeat between two nonces), as its whole
/// 16-byte blocks; a partial last block is left out.
fn keystream_blocks(ciphertext: &[u8], plaintext: &[u8]) -> Vec<u128> {
    ciphertext
        .chunks_exact(16)
        .zip(plaintext.chunks_exact(16))
        .map(|(c, p)| block(c) ^ block(p))
        .collect()
}

/// A 16-byte block as one number (`bytes` is 16 bytes long).
fn block(bytes: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(bytes);
    u128::from_le_bytes(b)
}

/// The labels of two of `streams` that have a block in common, at any
/// positions (the same label twice for a block repeated within one
/// stream); `None` if every block is unique.
fn shared_block<L: Copy>(streams: impl IntoIterator<Item = (L, Vec<u128>)>) -> Option<(L, L)> {
    let mut seen: HashMap<u128, L> = HashMap::new();
    for (label, stream) in streams {
        for b in stream {
            if let Some(first) = seen.insert(b, label) {
                return Some((first, label));
            }
        }
    }
    None
}

/// Every byte of the nonce must change the keystream: the page sealed under
/// `nonce` and under `nonce` with each byte flipped shares no 16-byte
/// block of keystream, at any position.
fn nonce_bytes(aead: &dyn Aead, nonce: &[u8]) -> Result<(), Check> {
    let mut streams = Vec::with_capacity(nonce.len() + 1);
    let base = seal(aead, nonce, AAD, &PAGE).ok_or(Check::Construction("sealing failed"))?;
    streams.push((None, keystream_blocks(&base.0, &PAGE)));
    for byte in 0..nonce.len() {
        let mut n = nonce.to_vec();
        n[byte] ^= 0x01;
        let other = seal(aead, &n, AAD, &PAGE).ok_or(Check::Construction("sealing failed"))?;
        streams.push((Some(byte), keystream_blocks(&other.0, &PAGE)));
    }
    match shared_block(streams) {
        None => Ok(()),
        Some((_, Some(byte)) | (Some(byte), None)) => Err(Check::IgnoresNonceByte { byte }),
        Some((None, None)) => Err(Check::KeystreamRepeats),
    }
}

/// A built-in id must produce the RustCrypto reference's output at every
/// counter nonce, for the short message and the page-sized one, and at
/// both counters of the large one.
fn same_as_reference(
    builtin: EncryptionAlgorithm,
    key: &SecretKey,
    sealed: &[CounterSeal],
    large: &[(u64, Sealed)],
) -> Result<(), Check> {
    let reference = crate::rustcrypto::ALGORITHMS
        .iter()
        .find(|a| a.id() == builtin.id())
        .ok_or(Check::ReservedId)?;
    let aead = reference
        .new_aead(key)
        .map_err(|_| Check::Construction("the reference cipher could not be built"))?;
    for ours in sealed {
        let nonce = nonce_for(ours.counter);
        if seal(aead.as_ref(), &nonce, AAD, &MESSAGE).as_ref() != Some(&ours.message)
            || seal(aead.as_ref(), &nonce, AAD, &PAGE).as_ref() != Some(&ours.page)
        {
            return Err(Check::DiffersFromBuiltin {
                counter: ours.counter,
            });
        }
    }
    for (counter, ours) in large {
        if seal(aead.as_ref(), &nonce_for(*counter), AAD, &LARGE).as_ref() != Some(ours) {
            return Err(Check::DiffersFromBuiltin { counter: *counter });
        }
    }
    Ok(())
}

/// The length of the message whose every block the misuse-resistance check
/// flips: seventeen blocks, the last one partial.
const FLIPPED_LEN: usize = 256 + 13;

/// Claimed misuse resistance: a message, and the same message with one
/// byte flipped, sealed under one key and nonce, share no 16-byte block of
/// keystream at any position. A stream cipher would repeat all of it; a
/// synthetic IV taken from part of the message only would repeat it for a
/// flip elsewhere. The flips: one in every 16-byte block (the partial last
/// one included) of a 269-byte message, and in the first, last and three
/// spread-out blocks of the page, so a length-dependent path is covered
/// without sealing the page once per block.
fn misuse_resistant(aead: &dyn Aead) -> Result<(), Check> {
    let short = &PAGE[..FLIPPED_LEN];
    let every_block = (0..FLIPPED_LEN).step_by(16);
    flips_change_all_keystream(aead, short, every_block)?;
    let spread = [
        0,
        PAGE_LEN / 4,
        PAGE_LEN / 2,
        3 * PAGE_LEN / 4,
        PAGE_LEN - 1,
    ];
    flips_change_all_keystream(aead, &PAGE, spread)
}

/// `message` sealed under one nonce, and again with byte `i` flipped for
/// each of `flips`: no keystream block of a flipped one is the original's.
fn flips_change_all_keystream(
    aead: &dyn Aead,
    message: &[u8],
    flips: impl IntoIterator<Item = usize>,
) -> Result<(), Check> {
    let nonce = nonce_for(7);
    let base = seal(aead, &nonce, AAD, message).ok_or(Check::Construction("sealing failed"))?;
    let mut base = keystream_blocks(&base.0, message);
    base.sort_unstable();
    let mut m = message.to_vec();
    for flip in flips {
        m[flip] ^= 0x01;
        let other = seal(aead, &nonce, AAD, &m).ok_or(Check::Construction("sealing failed"))?;
        if keystream_blocks(&other.0, &m)
            .iter()
            .any(|b| base.binary_search(b).is_ok())
        {
            return Err(Check::NotMisuseResistant);
        }
        m[flip] ^= 0x01;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks of `bytes` themselves (its keystream against zeros).
    fn blocks(bytes: &[u8]) -> Vec<u128> {
        keystream_blocks(bytes, &vec![0; bytes.len()])
    }

    #[test]
    fn the_generated_messages_repeat_no_block() {
        assert_eq!(shared_block([(0, blocks(&MESSAGE))]), None);
        assert_eq!(shared_block([(0, blocks(&PAGE))]), None);
        assert_eq!(&PAGE[..64], &MESSAGE[..]);
        assert_eq!(&LARGE[..PAGE_LEN], &PAGE[..]);
    }

    #[test]
    fn shared_blocks_are_found_at_any_position() {
        let a: Vec<u8> = (0..64).collect();
        let mut b: Vec<u8> = (100..164).collect();
        b[32..48].copy_from_slice(&a[0..16]);
        assert_eq!(
            shared_block([(1, blocks(&a)), (2, blocks(&b))]),
            Some((1, 2))
        );
        let mut c = a.clone();
        c[48..64].copy_from_slice(&a[16..32]);
        assert_eq!(shared_block([(3, blocks(&c))]), Some((3, 3)));
        // A partial last block is not compared.
        assert_eq!(
            shared_block([(4, blocks(&a[..8])), (5, blocks(&a[..8]))]),
            None
        );
        // The keystream is ciphertext XOR plaintext, block by block.
        assert_eq!(
            keystream_blocks(&[0xff; 20], &[0x0f; 20]),
            vec![u128::from_le_bytes([0xf0; 16])]
        );
    }
}
