//! The provider self-test: every built-in passes it, and broken ciphers and
//! parts are refused at registration with an error naming the failed check.
//! The broken ciphers are the ones a provider once accepted: an `open` that
//! ignores the tag, and a nonce function that copies nonce word 0 into all
//! three words. Each test first shows the defect is real (the tampered
//! message opens, two counters share a keystream), then that the provider
//! refuses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sealkv_crypto_envelope::primitives::{
    Kdf, KeyedMac, Mac, PasswordHash, PrimitiveError, RandomError, SecureRandom,
};
use sealkv_crypto_envelope::selftest::{self, Check, vectors};
use sealkv_crypto_envelope::{
    Aead, AeadAlgorithm, AeadError, AlgorithmId, CryptoError, CryptoProvider, EncryptionAlgorithm,
    KdfParams, KnownAnswer, SecretKey, hazmat,
};

/// Every provider this build has.
fn providers() -> Vec<CryptoProvider> {
    #[allow(unused_mut)]
    let mut p = vec![CryptoProvider::rustcrypto()];
    #[cfg(feature = "ring")]
    p.push(CryptoProvider::ring());
    p
}

#[test]
fn every_builtin_provider_passes_its_self_test() {
    for provider in providers() {
        provider.self_test().unwrap();
        for info in provider.algorithms() {
            // Run afresh, not the cached verdict.
            selftest::check_algorithm(hazmat::aead_algorithm(&provider, info.id).unwrap())
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn builtin_vectors_have_keys_and_nonces_without_repeated_words() {
    for set in [
        vectors::AES_256_GCM,
        vectors::CHACHA20_POLY1305,
        vectors::AES_256_GCM_SIV,
    ] {
        assert!(set.len() >= 2);
        for v in set {
            for field in [v.key, v.nonce] {
                let bytes = hex::decode(field).unwrap();
                let words: Vec<_> = bytes.chunks(4).collect();
                for (i, w) in words.iter().enumerate() {
                    assert!(!words[i + 1..].contains(w), "{}: {field}", v.source);
                }
            }
        }
    }
}

/// How a test cipher misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Defect {
    /// None: a faithful wrapper of the built-in.
    None,
    /// `open` decrypts without checking the tag.
    OpenIgnoresTag,
    /// Nonce word 0 is copied into words 1 and 2 before use.
    CopiesNonceWord0,
    /// The same, only when word 0 is zero, as in every sealkv counter
    /// nonce (and in no published AES-256-GCM vector).
    CopiesZeroNonceWord0,
    /// A bulk path for messages over 128 bytes that seals them all under
    /// the all-zero nonce (every published vector is shorter).
    ZeroNonceAbove128,
    /// A bulk path for messages over 128 bytes that reverses the nonce's
    /// bytes: distinct nonces stay distinct, but it is not the algorithm.
    ReversedNonceAbove128,
    /// Seals messages over 8 KiB (longer than a page) under the all-zero
    /// nonce.
    ZeroNonceAbove8K,
    /// Reverses the nonce's bytes for messages over 8 KiB.
    ReversedNonceAbove8K,
}

/// A built-in cipher under any id, name and claims, with a defect.
struct Plugin {
    id: u16,
    name: &'static str,
    inner: EncryptionAlgorithm,
    defect: Defect,
    misuse_resistant: bool,
    nonce_len: usize,
    vectors: &'static [KnownAnswer],
}

impl Plugin {
    fn new(id: u16, inner: EncryptionAlgorithm, defect: Defect) -> Self {
        Plugin {
            id,
            name: "test-plugin",
            inner,
            defect,
            misuse_resistant: inner.misuse_resistant(),
            nonce_len: 12,
            vectors: match inner {
                EncryptionAlgorithm::Aes256Gcm => vectors::AES_256_GCM,
                EncryptionAlgorithm::ChaCha20Poly1305 => vectors::CHACHA20_POLY1305,
                _ => vectors::AES_256_GCM_SIV,
            },
        }
    }

    fn arc(self) -> Arc<dyn AeadAlgorithm> {
        Arc::new(self)
    }
}

struct PluginAead {
    inner: Box<dyn Aead>,
    id: AlgorithmId,
    defect: Defect,
}

impl PluginAead {
    /// The nonce it really uses for a message of `len` bytes.
    fn nonce(&self, nonce: &[u8], len: usize) -> Vec<u8> {
        match self.defect {
            Defect::CopiesNonceWord0 if nonce.len() == 12 => nonce[..4].repeat(3),
            Defect::CopiesZeroNonceWord0 if nonce.len() == 12 && nonce[..4] == [0; 4] => {
                nonce[..4].repeat(3)
            }
            Defect::ZeroNonceAbove128 if len > 128 => vec![0; nonce.len()],
            Defect::ReversedNonceAbove128 if len > 128 => nonce.iter().rev().copied().collect(),
            Defect::ZeroNonceAbove8K if len > 8192 => vec![0; nonce.len()],
            Defect::ReversedNonceAbove8K if len > 8192 => nonce.iter().rev().copied().collect(),
            _ => nonce.to_vec(),
        }
    }
}

impl Aead for PluginAead {
    fn algorithm(&self) -> AlgorithmId {
        self.id
    }
    fn nonce_len(&self) -> usize {
        12
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
        self.inner
            .seal_in_place_detached(&self.nonce(nonce, buf.len()), aad, buf, tag)
    }
    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        if self.defect == Defect::OpenIgnoresTag {
            // GCM and ChaCha20 encrypt by XOR with a keystream: sealing the
            // ciphertext again decrypts it, and the tag is never looked at.
            let mut scratch = [0u8; 16];
            return self
                .inner
                .seal_in_place_detached(nonce, aad, buf, &mut scratch);
        }
        self.inner
            .open_in_place_detached(&self.nonce(nonce, buf.len()), aad, buf, tag)
    }
}

impl AeadAlgorithm for Plugin {
    fn id(&self) -> AlgorithmId {
        AlgorithmId(self.id)
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn key_len(&self) -> usize {
        32
    }
    fn nonce_len(&self) -> usize {
        self.nonce_len
    }
    fn tag_len(&self) -> usize {
        16
    }
    fn misuse_resistant(&self) -> bool {
        self.misuse_resistant
    }
    fn known_answers(&self) -> &'static [KnownAnswer] {
        self.vectors
    }
    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        let inner = hazmat::builtin(&CryptoProvider::rustcrypto(), self.inner, key)
            .map_err(|_| AeadError::InvalidLength)?;
        Ok(Box::new(PluginAead {
            inner,
            id: AlgorithmId(self.id),
            defect: self.defect,
        }))
    }
}

/// The check a registration failed on, or `None` if it was accepted.
fn refusal(algorithm: Arc<dyn AeadAlgorithm>) -> Option<Check> {
    match CryptoProvider::default().with_algorithm(algorithm) {
        Ok(_) => None,
        Err(CryptoError::SelfTest(f)) => Some(f.check().clone()),
        Err(e) => panic!("refused for another reason: {e}"),
    }
}

#[test]
fn an_open_that_ignores_the_tag_is_refused() {
    // The defect is real: a tampered "amount=100" opens as "amount=900".
    let key = SecretKey::from_bytes(&[0x42; 32]).unwrap();
    let broken = Plugin::new(1, EncryptionAlgorithm::Aes256Gcm, Defect::OpenIgnoresTag)
        .new_aead(&key)
        .unwrap();
    let nonce = hazmat::nonce_for(9);
    let mut msg = b"amount=100".to_vec();
    let mut tag = [0u8; 16];
    broken
        .seal_in_place_detached(&nonce, b"", &mut msg, &mut tag)
        .unwrap();
    msg[7] ^= b'1' ^ b'9';
    broken
        .open_in_place_detached(&nonce, b"", &mut msg, &tag)
        .unwrap();
    assert_eq!(msg, b"amount=900");

    // Claiming AES-256-GCM's id, or a private one: refused on the tag.
    for id in [1, 0x8001] {
        assert_eq!(
            refusal(Plugin::new(id, EncryptionAlgorithm::Aes256Gcm, Defect::OpenIgnoresTag).arc()),
            Some(Check::AcceptsFlippedTag),
            "id {id:#x}"
        );
    }
    assert_eq!(
        refusal(
            Plugin::new(
                0x8001,
                EncryptionAlgorithm::ChaCha20Poly1305,
                Defect::OpenIgnoresTag
            )
            .arc()
        ),
        Some(Check::AcceptsFlippedTag)
    );
}

#[test]
fn a_nonce_function_that_copies_word_0_is_refused() {
    // The defect is real: counters 0 and 1 seal under the same keystream.
    let key = SecretKey::from_bytes(&[0x42; 32]).unwrap();
    let broken = Plugin::new(1, EncryptionAlgorithm::Aes256Gcm, Defect::CopiesNonceWord0)
        .new_aead(&key)
        .unwrap();
    let seal = |counter| {
        let mut buf = vec![0u8; 32];
        let mut tag = [0u8; 16];
        broken
            .seal_in_place_detached(&hazmat::nonce_for(counter), b"", &mut buf, &mut tag)
            .unwrap();
        buf
    };
    assert_eq!(seal(0), seal(1));

    // The published vectors' nonces have distinct words: the first one
    // already seals wrong, under a built-in id or a private one.
    for (id, inner) in [
        (1, EncryptionAlgorithm::Aes256Gcm),
        (2, EncryptionAlgorithm::ChaCha20Poly1305),
        (0x8001, EncryptionAlgorithm::Aes256Gcm),
    ] {
        assert_eq!(
            refusal(Plugin::new(id, inner, Defect::CopiesNonceWord0).arc()),
            Some(Check::KnownAnswerSeal { vector: 0 }),
            "id {id:#x}"
        );
    }
}

#[test]
fn counter_nonces_that_share_a_keystream_are_refused_past_the_vectors() {
    // Passes every published vector, yet seals all counter nonces under
    // the all-zero nonce: the counter check names the first two counters.
    assert_eq!(
        refusal(
            Plugin::new(
                0x8001,
                EncryptionAlgorithm::Aes256Gcm,
                Defect::CopiesZeroNonceWord0
            )
            .arc()
        ),
        Some(Check::CounterNoncesShareKeystream {
            first: 0,
            second: 1
        })
    );
}

#[test]
fn a_builtin_id_that_misbehaves_past_128_bytes_is_refused() {
    // The defect is real: two pages sealed at counters 0 and 1 share
    // their whole keystream (the published vectors are all shorter).
    let key = SecretKey::from_bytes(&[0x42; 32]).unwrap();
    let broken = Plugin::new(1, EncryptionAlgorithm::Aes256Gcm, Defect::ZeroNonceAbove128)
        .new_aead(&key)
        .unwrap();
    let page = |counter, fill: u8| {
        let mut buf = vec![fill; 4096];
        let mut tag = [0u8; 16];
        broken
            .seal_in_place_detached(&hazmat::nonce_for(counter), b"", &mut buf, &mut tag)
            .unwrap();
        buf.iter().map(|b| b ^ fill).collect::<Vec<_>>()
    };
    assert_eq!(page(0, 0x11), page(1, 0x22));

    // Refused, as AES-256-GCM and under a private id: the page-sized
    // message at every counter shows the shared keystream.
    for id in [1, 0x8001] {
        assert_eq!(
            refusal(
                Plugin::new(
                    id,
                    EncryptionAlgorithm::Aes256Gcm,
                    Defect::ZeroNonceAbove128
                )
                .arc()
            ),
            Some(Check::CounterNoncesShareKeystream {
                first: 0,
                second: 1
            }),
            "id {id:#x}"
        );
    }
    // A bulk path that keeps nonces distinct but is not AES-256-GCM: the
    // reference comparison at the page's length refuses it under id 1
    // (counter 0's nonce reads the same reversed).
    assert_eq!(
        refusal(
            Plugin::new(
                1,
                EncryptionAlgorithm::Aes256Gcm,
                Defect::ReversedNonceAbove128
            )
            .arc()
        ),
        Some(Check::DiffersFromBuiltin { counter: 1 })
    );
}

#[test]
fn a_cipher_that_misbehaves_past_a_page_is_refused() {
    // Under a private id, a bulk path that seals long messages under one
    // nonce shows as keystream shared by the large message's two counters.
    assert_eq!(
        refusal(
            Plugin::new(
                0x8002,
                EncryptionAlgorithm::Aes256Gcm,
                Defect::ZeroNonceAbove8K
            )
            .arc()
        ),
        Some(Check::CounterNoncesShareKeystream {
            first: 0,
            second: u64::MAX
        })
    );
    // Under a built-in id, one that is not the algorithm differs from the
    // reference (counter 0's nonce reads the same reversed).
    for inner in [
        EncryptionAlgorithm::Aes256Gcm,
        EncryptionAlgorithm::ChaCha20Poly1305,
    ] {
        assert_eq!(
            refusal(Plugin::new(inner.id().0, inner, Defect::ReversedNonceAbove8K).arc()),
            Some(Check::DiffersFromBuiltin { counter: u64::MAX }),
            "{inner:?}"
        );
    }
}

/// A homebrew CTR-and-MAC cipher whose counter block is the nonce plus the
/// block index: nonce `n` at block 1 is nonce `n + 1` at block 0, so
/// consecutive counter nonces share all but one block of keystream, one
/// block apart.
struct OffsetCtr;

struct OffsetCtrAead(Vec<u8>);

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{KeyInit, Mac as _};
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

impl OffsetCtrAead {
    fn xor(&self, nonce: &[u8], buf: &mut [u8]) {
        let mut n = [0u8; 16];
        n[4..].copy_from_slice(nonce);
        let n = u128::from_be_bytes(n);
        for (j, chunk) in buf.chunks_mut(16).enumerate() {
            let block = n.wrapping_add(j as u128).to_be_bytes();
            let ks = hmac_sha256(&self.0, &[&block]);
            for (b, k) in chunk.iter_mut().zip(ks) {
                *b ^= k;
            }
        }
    }

    fn tag(&self, nonce: &[u8], aad: &[u8], ct: &[u8]) -> [u8; 16] {
        let len = (aad.len() as u64).to_be_bytes();
        let t = hmac_sha256(&self.0, &[b"tag", nonce, &len, aad, ct]);
        t[..16].try_into().unwrap()
    }
}

impl Aead for OffsetCtrAead {
    fn algorithm(&self) -> AlgorithmId {
        AlgorithmId(0x8123)
    }
    fn nonce_len(&self) -> usize {
        12
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
        self.xor(nonce, buf);
        tag.copy_from_slice(&self.tag(nonce, aad, buf));
        Ok(())
    }
    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        if self.tag(nonce, aad, buf)[..] != *tag {
            return Err(AeadError::Authentication);
        }
        self.xor(nonce, buf);
        Ok(())
    }
}

/// Known answers generated by the cipher itself (keys and nonces of
/// distinct words), leaked to `'static` as the trait asks.
fn self_made_vectors(aead: impl Fn(&SecretKey) -> Box<dyn Aead>) -> &'static [KnownAnswer] {
    let leak = |bytes: &[u8]| -> &'static str { Box::leak(hex::encode(bytes).into_boxed_str()) };
    let mut out = Vec::new();
    for (kb, nb) in [(0x00u8, 0x40u8), (0x80, 0xc0)] {
        let key: Vec<u8> = (0..32).map(|i| kb.wrapping_add(i)).collect();
        let nonce: Vec<u8> = (0..12).map(|i| nb.wrapping_add(i)).collect();
        let aad = b"vector aad";
        let plaintext = b"a plaintext of some length, 40 bytes...";
        let mut ct = plaintext.to_vec();
        let mut tag = [0u8; 16];
        aead(&SecretKey::from_bytes(&key).unwrap())
            .seal_in_place_detached(&nonce, aad, &mut ct, &mut tag)
            .unwrap();
        out.push(KnownAnswer {
            source: "self-made",
            key: leak(&key),
            nonce: leak(&nonce),
            aad: leak(aad),
            plaintext: leak(plaintext),
            ciphertext: leak(&ct),
            tag: leak(&tag),
        });
    }
    Box::leak(out.into_boxed_slice())
}

impl AeadAlgorithm for OffsetCtr {
    fn id(&self) -> AlgorithmId {
        AlgorithmId(0x8123)
    }
    fn name(&self) -> &'static str {
        "offset-ctr"
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
        self_made_vectors(|key| Box::new(OffsetCtrAead(key.expose().to_vec())))
    }
    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        Ok(Box::new(OffsetCtrAead(key.expose().to_vec())))
    }
}

#[test]
fn a_counter_block_of_nonce_plus_block_index_is_refused() {
    // The defect is real: a page sealed at counter 1 repeats the keystream
    // of the page at counter 0, one block earlier.
    let aead = OffsetCtrAead(vec![9; 32]);
    let keystream = |counter| {
        let mut buf = vec![0u8; 4096];
        let mut tag = [0u8; 16];
        aead.seal_in_place_detached(&hazmat::nonce_for(counter), b"", &mut buf, &mut tag)
            .unwrap();
        buf
    };
    assert_eq!(keystream(0)[16..], keystream(1)[..4096 - 16]);

    // No 16-byte ciphertext block is shared at the same position, so only
    // a comparison at any position refuses it.
    assert_eq!(
        refusal(Arc::new(OffsetCtr)),
        Some(Check::CounterNoncesShareKeystream {
            first: 0,
            second: 1
        })
    );
}

/// Vectors of the kind that let the word-copying cipher through: every
/// nonce byte equal. (Self-consistent but useless: generated, not
/// published.)
static REPEATING: &[KnownAnswer] = &[
    KnownAnswer {
        source: "every byte equal",
        key: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        nonce: "a5a5a5a5a5a5a5a5a5a5a5a5",
        aad: "",
        plaintext: "",
        ciphertext: "",
        tag: "00000000000000000000000000000000",
    },
    KnownAnswer {
        source: "every byte equal",
        key: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        nonce: "b6b6b6b6b6b6b6b6b6b6b6b6",
        aad: "",
        plaintext: "",
        ciphertext: "",
        tag: "00000000000000000000000000000000",
    },
];

#[test]
fn vectors_with_repeating_bytes_or_too_few_are_refused() {
    let mut weak = Plugin::new(0x8001, EncryptionAlgorithm::Aes256Gcm, Defect::None);
    weak.vectors = REPEATING;
    assert!(matches!(
        refusal(weak.arc()),
        Some(Check::WeakVector { vector: 0, .. })
    ));
    let mut none = Plugin::new(0x8001, EncryptionAlgorithm::Aes256Gcm, Defect::None);
    none.vectors = &[];
    assert_eq!(refusal(none.arc()), Some(Check::TooFewVectors { given: 0 }));
    let mut one = Plugin::new(0x8001, EncryptionAlgorithm::Aes256Gcm, Defect::None);
    one.vectors = &vectors::AES_256_GCM[..1];
    assert_eq!(refusal(one.arc()), Some(Check::TooFewVectors { given: 1 }));
    // Another algorithm's vectors do not pass.
    let mut wrong = Plugin::new(0x8001, EncryptionAlgorithm::Aes256Gcm, Defect::None);
    wrong.vectors = vectors::CHACHA20_POLY1305;
    assert_eq!(
        refusal(wrong.arc()),
        Some(Check::KnownAnswerSeal { vector: 0 })
    );
}

#[test]
fn a_claimed_misuse_resistance_must_show() {
    // ChaCha20-Poly1305 is a stream cipher: claiming misuse resistance
    // under a private id is refused...
    let mut liar = Plugin::new(0x8001, EncryptionAlgorithm::ChaCha20Poly1305, Defect::None);
    liar.misuse_resistant = true;
    assert_eq!(refusal(liar.arc()), Some(Check::NotMisuseResistant));
    // ...and under a built-in id, the claim must match the built-in's, and
    // the output too.
    let gcm_as_siv = Plugin::new(3, EncryptionAlgorithm::Aes256Gcm, Defect::None);
    assert!(!gcm_as_siv.misuse_resistant);
    assert_eq!(
        refusal(gcm_as_siv.arc()),
        Some(Check::MisuseResistanceClaim)
    );
    let mut claiming = Plugin::new(3, EncryptionAlgorithm::Aes256Gcm, Defect::None);
    claiming.misuse_resistant = true;
    assert_eq!(
        refusal(claiming.arc()),
        Some(Check::KnownAnswerSeal { vector: 0 })
    );
    // AES-256-GCM-SIV under a private id shows it and is accepted.
    let siv = Plugin::new(0x8002, EncryptionAlgorithm::Aes256GcmSiv, Defect::None);
    assert_eq!(refusal(siv.arc()), None);
}

/// A synthetic-IV cipher whose IV covers only a sample of the message:
/// its first 16 bytes, its middle byte and its last 16 bytes (every byte the
/// tamper check flips). Two messages that differ anywhere else, under one
/// nonce, share their keystream: it is not misuse-resistant.
struct SampledSiv;

struct SampledSivAead(Vec<u8>);

impl SampledSivAead {
    fn iv(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> [u8; 16] {
        let len = plaintext.len();
        let sample = [
            &plaintext[..len.min(16)],
            plaintext.get(len / 2..len / 2 + 1).unwrap_or_default(),
            &plaintext[len.saturating_sub(16)..],
        ];
        let lens = [(aad.len() as u64).to_be_bytes(), (len as u64).to_be_bytes()];
        let iv = hmac_sha256(
            &self.0,
            &[
                b"iv", nonce, &lens[0], aad, &lens[1], sample[0], sample[1], sample[2],
            ],
        );
        iv[..16].try_into().unwrap()
    }

    fn xor(&self, iv: &[u8], buf: &mut [u8]) {
        for (j, chunk) in buf.chunks_mut(16).enumerate() {
            let ks = hmac_sha256(&self.0, &[b"ks", iv, &(j as u64).to_be_bytes()]);
            for (b, k) in chunk.iter_mut().zip(ks) {
                *b ^= k;
            }
        }
    }
}

impl Aead for SampledSivAead {
    fn algorithm(&self) -> AlgorithmId {
        AlgorithmId(0x8124)
    }
    fn nonce_len(&self) -> usize {
        12
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
        let iv = self.iv(nonce, aad, buf);
        self.xor(&iv, buf);
        tag.copy_from_slice(&iv);
        Ok(())
    }
    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        self.xor(tag, buf);
        if self.iv(nonce, aad, buf)[..] != *tag {
            buf.fill(0);
            return Err(AeadError::Authentication);
        }
        Ok(())
    }
}

impl AeadAlgorithm for SampledSiv {
    fn id(&self) -> AlgorithmId {
        AlgorithmId(0x8124)
    }
    fn name(&self) -> &'static str {
        "sampled-siv"
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
    fn misuse_resistant(&self) -> bool {
        true
    }
    fn known_answers(&self) -> &'static [KnownAnswer] {
        self_made_vectors(|key| Box::new(SampledSivAead(key.expose().to_vec())))
    }
    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        Ok(Box::new(SampledSivAead(key.expose().to_vec())))
    }
}

#[test]
fn a_misuse_resistance_that_covers_a_sample_of_the_message_is_refused() {
    // The defect is real: two pages that differ in byte 16 only, sealed
    // under one key and nonce, share all their keystream.
    let aead = SampledSivAead(vec![9; 32]);
    let keystream = |plaintext: &[u8]| {
        let mut buf = plaintext.to_vec();
        let mut tag = [0u8; 16];
        aead.seal_in_place_detached(&hazmat::nonce_for(7), b"", &mut buf, &mut tag)
            .unwrap();
        buf.iter()
            .zip(plaintext)
            .map(|(c, p)| c ^ p)
            .collect::<Vec<_>>()
    };
    let a = vec![0x11u8; 4096];
    let mut b = a.clone();
    b[16] ^= 1;
    assert_eq!(keystream(&a), keystream(&b));
    // A flip in the first or last byte (or the middle one) is seen.
    for i in [0, 2048, 4095] {
        let mut c = a.clone();
        c[i] ^= 1;
        assert_ne!(keystream(&a)[..16], keystream(&c)[..16], "flip at {i}");
    }

    // Refused: a byte is flipped in every block of the page.
    assert_eq!(
        refusal(Arc::new(SampledSiv)),
        Some(Check::NotMisuseResistant)
    );
}

#[test]
fn only_96_bit_nonces_are_supported() {
    let mut xchacha = Plugin::new(0x8001, EncryptionAlgorithm::ChaCha20Poly1305, Defect::None);
    xchacha.nonce_len = 24;
    let err = CryptoProvider::default()
        .with_algorithm(xchacha.arc())
        .unwrap_err();
    let CryptoError::SelfTest(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        f.check(),
        &Check::Shape {
            key_len: 32,
            nonce_len: 24,
            tag_len: 16
        }
    );
    let text = err.to_string();
    assert!(text.contains("test-plugin"), "{text}");
    assert!(text.contains("12-byte (96-bit) nonces"), "{text}");
    assert!(text.contains("24-byte nonces"), "{text}");
}

#[test]
fn ids_and_names_are_checked() {
    // A reserved id that names no built-in.
    assert_eq!(
        refusal(Plugin::new(77, EncryptionAlgorithm::Aes256Gcm, Defect::None).arc()),
        Some(Check::ReservedId)
    );
    // A built-in id taken by another algorithm's output.
    assert!(matches!(
        refusal(Plugin::new(1, EncryptionAlgorithm::ChaCha20Poly1305, Defect::None).arc()),
        Some(Check::KnownAnswerSeal { .. })
    ));
    // A faithful replacement of a built-in is accepted and keeps its name.
    let p = CryptoProvider::default()
        .with_algorithm(Plugin::new(1, EncryptionAlgorithm::Aes256Gcm, Defect::None).arc())
        .unwrap();
    let info = p.algorithm(AlgorithmId(1)).unwrap();
    assert_eq!(
        (info.name, info.implementation),
        ("aes-256-gcm", "test-plugin")
    );
    // A private id under a built-in's name, or under a name taken: refused.
    let mut named = Plugin::new(0x8001, EncryptionAlgorithm::Aes256Gcm, Defect::None);
    named.name = "AES_256_GCM";
    assert!(matches!(
        CryptoProvider::default().with_algorithm(named.arc()),
        Err(CryptoError::ProviderRejected { .. })
    ));
    let p = CryptoProvider::default()
        .with_algorithm(Plugin::new(0x8001, EncryptionAlgorithm::Aes256Gcm, Defect::None).arc())
        .unwrap();
    assert!(matches!(
        p.clone().with_algorithm(
            Plugin::new(0x8002, EncryptionAlgorithm::Aes256Gcm, Defect::None).arc()
        ),
        Err(CryptoError::ProviderRejected { .. })
    ));
    // Found by name; two with one id in one list are refused.
    assert_eq!(
        p.find_algorithm(" Test_Plugin ").unwrap(),
        AlgorithmId(0x8001)
    );
    assert!(
        p.find_algorithm("nope")
            .unwrap_err()
            .known()
            .contains(&"test-plugin")
    );
    assert!(matches!(
        CryptoProvider::from_algorithms(vec![
            Plugin::new(0x8001, EncryptionAlgorithm::Aes256Gcm, Defect::None).arc(),
            Plugin::new(0x8001, EncryptionAlgorithm::Aes256Gcm, Defect::None).arc(),
        ]),
        Err(CryptoError::ProviderRejected { .. })
    ));
}

/// A KDF, MAC, password hash or random source that is subtly wrong.
struct SaltlessKdf;

impl Kdf for SaltlessKdf {
    fn name(&self) -> &'static str {
        "saltless"
    }
    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        _salt: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), PrimitiveError> {
        hkdf::Hkdf::<sha2::Sha256>::new(None, ikm)
            .expand_multi_info(info, out)
            .map_err(|_| PrimitiveError::OutputLength)
    }
}

struct FirstPartMac;

impl Mac for FirstPartMac {
    fn name(&self) -> &'static str {
        "first part only"
    }
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        use hmac::{KeyInit, Mac as _};
        let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
        m.update(parts.first().copied().unwrap_or_default());
        m.finalize().into_bytes().into()
    }
}

/// Faithful with the key given each time; its prepared key drops the
/// key's last byte, as a part that mishandles long keys might.
struct ShortPreparedMac;

fn rfc_hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{KeyInit, Mac as _};
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

impl Mac for ShortPreparedMac {
    fn name(&self) -> &'static str {
        "short prepared key"
    }
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        rfc_hmac(key, parts)
    }
    fn keyed(&self, key: &[u8]) -> Option<Box<dyn KeyedMac>> {
        Some(Box::new(Prepared(key[..key.len() - 1].to_vec())))
    }
}

struct Prepared(Vec<u8>);

impl KeyedMac for Prepared {
    fn hmac_sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        rfc_hmac(&self.0, parts)
    }
}

struct WrongVersionArgon2;

impl PasswordHash for WrongVersionArgon2 {
    fn name(&self) -> &'static str {
        "argon2id v0x10"
    }
    fn argon2id(
        &self,
        passphrase: &[u8],
        salt: &[u8],
        params: KdfParams,
        out: &mut [u8],
    ) -> Result<(), PrimitiveError> {
        let p = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(out.len()),
        )
        .unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x10, p)
            .hash_password_into(passphrase, salt, out)
            .map_err(|_| PrimitiveError::Parameters("argon2"))
    }
}

struct StuckRandom;

impl SecureRandom for StuckRandom {
    fn name(&self) -> &'static str {
        "stuck"
    }
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        buf.fill(4);
        Ok(())
    }
}

fn part_check(result: Result<CryptoProvider, CryptoError>) -> Check {
    match result {
        Err(CryptoError::SelfTest(f)) => f.check().clone(),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn broken_parts_are_refused_and_faithful_ones_accepted() {
    let p = CryptoProvider::default;
    assert_eq!(
        part_check(p().with_kdf(Arc::new(SaltlessKdf))),
        Check::PartKnownAnswer { vector: 0 }
    );
    assert_eq!(
        part_check(p().with_mac(Arc::new(FirstPartMac))),
        Check::MacDataParts
    );
    assert_eq!(
        part_check(p().with_mac(Arc::new(ShortPreparedMac))),
        Check::MacKeyed { vector: 0 }
    );
    assert_eq!(
        part_check(p().with_password_hash(Arc::new(WrongVersionArgon2))),
        Check::PartKnownAnswer { vector: 0 }
    );
    assert_eq!(
        part_check(p().with_random(Arc::new(StuckRandom))),
        Check::RandomSource("two draws gave the same bytes")
    );
    let faithful = p().with_kdf(Arc::new(FaithfulKdf)).unwrap();
    faithful.self_test().unwrap();
    assert!(format!("{faithful:?}").contains("faithful hkdf"));
}

struct FaithfulKdf;

impl Kdf for FaithfulKdf {
    fn name(&self) -> &'static str {
        "faithful hkdf"
    }
    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), PrimitiveError> {
        hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm)
            .expand_multi_info(info, out)
            .map_err(|_| PrimitiveError::OutputLength)
    }
}

/// An HKDF that expands only the first two info parts (a wrapper written
/// for two-part labels).
struct TwoPartHkdf;

impl Kdf for TwoPartHkdf {
    fn name(&self) -> &'static str {
        "two-part hkdf"
    }
    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), PrimitiveError> {
        let info: Vec<u8> = info
            .iter()
            .take(2)
            .flat_map(|p| p.iter().copied())
            .collect();
        hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm)
            .expand(&info, out)
            .map_err(|_| PrimitiveError::OutputLength)
    }
}

/// An HMAC that reads only the first two data parts.
struct TwoPartMac;

impl Mac for TwoPartMac {
    fn name(&self) -> &'static str {
        "two-part hmac"
    }
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        use hmac::{KeyInit, Mac as _};
        let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
        for p in parts.iter().take(2) {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

#[test]
fn a_kdf_or_mac_that_reads_only_two_parts_is_refused() {
    // The defect is real: session labels have four parts (prefix,
    // "/session/", database id, domain), so the WAL's and the pages'
    // subkeys of one session would be one key, and WAL record 0 and page
    // 0 would share a (key, nonce).
    let label = |domain: u8| -> [Vec<u8>; 4] {
        [
            b"sealkv/v1".to_vec(),
            b"/session/".to_vec(),
            vec![1; 16],
            vec![domain],
        ]
    };
    let subkey = |domain| {
        let parts = label(domain);
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut out = [0u8; 32];
        TwoPartHkdf
            .hkdf_sha256(&[9; 32], &[7; 32], &parts, &mut out)
            .unwrap();
        out
    };
    assert_eq!(subkey(1), subkey(2));

    // It passes RFC 5869 with the info whole or in halves; four parts,
    // one of them empty, refuse it.
    let p = CryptoProvider::default;
    assert_eq!(
        part_check(p().with_kdf(Arc::new(TwoPartHkdf))),
        Check::KdfInfoParts
    );
    assert_eq!(
        part_check(p().with_mac(Arc::new(TwoPartMac))),
        Check::MacDataParts
    );
}
