//! Published known-answer vectors: the built-in algorithms' (sealkv checks
//! any implementation of a built-in id against these), and the parts'.
//!
//! Every AEAD vector here but the counter-wrap ones
//! ([`AES_256_GCM_SIV_COUNTER_WRAP`], checked on their own) has a key and a
//! nonce in which no 32-bit word repeats, so an implementation that
//! mishandles part of either (copies a nonce word, ignores half the key)
//! cannot match them by accident. A
//! plugin that implements a built-in algorithm under a private id can return
//! the matching set from
//! [`AeadAlgorithm::known_answers`](crate::AeadAlgorithm::known_answers).

/// One published AEAD test vector, in hex, with the tag apart from the
/// ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownAnswer {
    /// Where it is published (for failure reports and readers).
    pub source: &'static str,
    /// The key.
    pub key: &'static str,
    /// The nonce.
    pub nonce: &'static str,
    /// The associated data.
    pub aad: &'static str,
    /// The plaintext.
    pub plaintext: &'static str,
    /// The ciphertext, without the tag.
    pub ciphertext: &'static str,
    /// The tag.
    pub tag: &'static str,
}

/// AES-256-GCM: NIST CAVP, `gcmEncryptExtIV256.rsp` (96-bit IVs).
pub const AES_256_GCM: &[KnownAnswer] = &[
    KnownAnswer {
        source: "NIST CAVP gcmEncryptExtIV256, Keylen 256 IVlen 96 PTlen 256 AADlen 128, count 0",
        key: "37ccdba1d929d6436c16bba5b5ff34deec88ed7df3d15d0f4ddf80c0c731ee1f",
        nonce: "5c1b21c8998ed6299006d3f9",
        aad: "22ed235946235a85a45bc5fad7140bfa",
        plaintext: "ad4260e3cdc76bcc10c7b2c06b80b3be948258e5ef20c508a81f51e96a518388",
        ciphertext: "3b335f8b08d33ccdcad228a74700f1007542a4d1e7fc1ebe3f447fe71af29816",
        tag: "1fbf49cc46f458bf6e88f6370975e6d4",
    },
    KnownAnswer {
        source: "NIST CAVP gcmEncryptExtIV256, Keylen 256 IVlen 96 PTlen 256 AADlen 128, count 1",
        key: "2c11470e6f136bec73351619288f819fb2bbba451857aadfb78384074612778a",
        nonce: "4e6cc2bcc15a46d51e88958d",
        aad: "05d29369922fdac1a7b37f07953fe175",
        plaintext: "3b3186a02475f536d80d8bd326ecc8b33dd04f66f8ba1d20917952410b05c2ed",
        ciphertext: "6380945a08977e87b294b9e412a26aebeeb8960c512439bac36636763cd91c0c",
        tag: "1029a3c4be1d90123c1b404513efde53",
    },
    KnownAnswer {
        source: "NIST CAVP gcmEncryptExtIV256, Keylen 256 IVlen 96 PTlen 104 AADlen 160, count 0",
        key: "69b458f2644af9020463b40ee503cdf083d693815e2659051ae0d039e606a970",
        nonce: "8d1da8ab5f91ccd09205944b",
        aad: "036ad5e5494ef817a8af2f5828784a4bfedd1653",
        plaintext: "f3e0e09224256bf21a83a5de8d",
        ciphertext: "c0a62d77e6031bfdc6b13ae217",
        tag: "a794a9aaee48cd92e47761bf1baff0af",
    },
];

/// ChaCha20-Poly1305: RFC 8439, section 2.8.2 and appendix A.5.
pub const CHACHA20_POLY1305: &[KnownAnswer] = &[
    KnownAnswer {
        source: "RFC 8439, section 2.8.2",
        key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        nonce: "070000004041424344454647",
        aad: "50515253c0c1c2c3c4c5c6c7",
        plaintext: "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a204966204920636f756c64206f6666657220796f75206f6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73637265656e20776f756c642062652069742e",
        ciphertext: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
        tag: "1ae10b594f09e26a7e902ecbd0600691",
    },
    KnownAnswer {
        source: "RFC 8439, appendix A.5",
        key: "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
        nonce: "000000000102030405060708",
        aad: "f33388860000000000004e91",
        plaintext: "496e7465726e65742d4472616674732061726520647261667420646f63756d656e74732076616c696420666f722061206d6178696d756d206f6620736978206d6f6e74687320616e64206d617920626520757064617465642c207265706c616365642c206f72206f62736f6c65746564206279206f7468657220646f63756d656e747320617420616e792074696d652e20497420697320696e617070726f70726961746520746f2075736520496e7465726e65742d447261667473206173207265666572656e6365206d6174657269616c206f7220746f2063697465207468656d206f74686572207468616e206173202fe2809c776f726b20696e2070726f67726573732e2fe2809d",
        ciphertext: "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b",
        tag: "eead9d67890cbb22392336fea1851f38",
    },
];

/// AES-256-GCM-SIV: RFC 8452, appendix C.2 (the vectors with random keys
/// and nonces).
pub const AES_256_GCM_SIV: &[KnownAnswer] = &[
    KnownAnswer {
        source: "RFC 8452, appendix C.2 (plaintext 3 bytes, AAD 5 bytes)",
        key: "bae8e37fc83441b16034566b7a806c46bb91c3c5aedb64a6c590bc84d1a5e269",
        nonce: "e4b47801afc0577e34699b9e",
        aad: "4fbdc66f14",
        plaintext: "671fdd",
        ciphertext: "0eaccb",
        tag: "93da9bb81333aee0c785b240d319719d",
    },
    KnownAnswer {
        source: "RFC 8452, appendix C.2 (plaintext 9 bytes, AAD 15 bytes)",
        key: "d1894728b3fed1473c528b8426a582995929a1499e9ad8780c8d63d0ab4149c0",
        nonce: "9f572c614b4745914474e7c7",
        aad: "489c8fde2be2cf97e74e932d4ed87d",
        plaintext: "c9882e5386fd9f92ec",
        ciphertext: "0df9e308678244c44b",
        tag: "c0fd3dc6628dfe55ebb0b9fb2295c8c2",
    },
    KnownAnswer {
        source: "RFC 8452, appendix C.2 (plaintext 21 bytes, AAD 35 bytes)",
        key: "3c535de192eaed3822a2fbbe2ca9dfc88255e14a661b8aa82cc54236093bbc23",
        nonce: "688089e55540db1872504e1c",
        aad: "734320ccc9d9bbbb19cb81b2af4ecbc3e72834321f7aa0f70b7282b4f33df23f167541",
        plaintext: "ced532ce4159b035277d4dfbb7db62968b13cd4eec",
        ciphertext: "626660c26ea6612fb17ad91e8e767639edd6c9faee",
        tag: "9d6c7029675b89eaf4ba1ded1a286594",
    },
];

/// AES-256-GCM-SIV: RFC 8452, appendix C.3, the counter-wrap tests. Their
/// tags begin `ffffffff`, so the 32-bit block counter wraps to zero inside
/// the message: an implementation that carries into the next word (or
/// counts in 64 or 128 bits) gets the second block wrong. Key and nonce
/// are all zero, so they are checked apart from [`AES_256_GCM_SIV`] (whose
/// keys and nonces repeat no word), only for the built-in id.
pub const AES_256_GCM_SIV_COUNTER_WRAP: &[KnownAnswer] = &[
    KnownAnswer {
        source: "RFC 8452, appendix C.3 (counter wrap, plaintext 32 bytes)",
        key: "0000000000000000000000000000000000000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        plaintext: "000000000000000000000000000000004db923dc793ee6497c76dcc03a98e108",
        ciphertext: "f3f80f2cf0cb2dd9c5984fcda908456cc537703b5ba70324a6793a7bf218d3ea",
        tag: "ffffffff000000000000000000000000",
    },
    KnownAnswer {
        source: "RFC 8452, appendix C.3 (counter wrap, plaintext 24 bytes)",
        key: "0000000000000000000000000000000000000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        plaintext: "eb3640277c7ffd1303c7a542d02d3e4c0000000000000000",
        ciphertext: "18ce4f0b8cb4d0cac65fea8f79257b20888e53e72299e56d",
        tag: "ffffffff000000000000000000000000",
    },
];

/// The vectors of built-in algorithm `algorithm`.
pub(crate) fn for_builtin(algorithm: crate::EncryptionAlgorithm) -> &'static [KnownAnswer] {
    match algorithm {
        crate::EncryptionAlgorithm::Aes256Gcm => AES_256_GCM,
        crate::EncryptionAlgorithm::ChaCha20Poly1305 => CHACHA20_POLY1305,
        crate::EncryptionAlgorithm::Aes256GcmSiv => AES_256_GCM_SIV,
    }
}

/// One published HKDF-SHA256 vector (hex; OKM of any length).
pub(crate) struct HkdfVector {
    pub(crate) source: &'static str,
    pub(crate) ikm: &'static str,
    pub(crate) salt: &'static str,
    pub(crate) info: &'static str,
    pub(crate) okm: &'static str,
}

/// HKDF-SHA256: RFC 5869, appendix A, test cases 1 and 3.
pub(crate) const HKDF_SHA256: &[HkdfVector] = &[
    HkdfVector {
        source: "RFC 5869, A.1",
        ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        salt: "000102030405060708090a0b0c",
        info: "f0f1f2f3f4f5f6f7f8f9",
        okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    },
    HkdfVector {
        source: "RFC 5869, A.3",
        ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        salt: "",
        info: "",
        okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    },
];

/// One published HMAC-SHA256 vector (hex).
pub(crate) struct HmacVector {
    pub(crate) source: &'static str,
    pub(crate) key: &'static str,
    pub(crate) data: &'static str,
    pub(crate) mac: &'static str,
}

/// HMAC-SHA256: RFC 4231, test cases 1, 2 and 6 (a key longer than the
/// block).
pub(crate) const HMAC_SHA256: &[HmacVector] = &[
    HmacVector {
        source: "RFC 4231, 4.2",
        key: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        data: "4869205468657265",
        mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    },
    HmacVector {
        source: "RFC 4231, 4.3",
        key: "4a656665",
        data: "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    },
    HmacVector {
        source: "RFC 4231, 4.7",
        key: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        data: "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
        mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    },
];

/// One published Argon2id (version 0x13) vector, no secret or associated
/// data, 32-byte output.
pub(crate) struct Argon2Vector {
    pub(crate) source: &'static str,
    pub(crate) password: &'static [u8],
    pub(crate) salt: &'static [u8],
    pub(crate) memory_kib: u32,
    pub(crate) iterations: u32,
    pub(crate) parallelism: u32,
    pub(crate) hash: &'static str,
}

/// Argon2id: the reference implementation's test suite (phc-winner-argon2
/// `src/test.c`), at 256 KiB so the check costs under a millisecond.
pub(crate) const ARGON2ID: &[Argon2Vector] = &[
    Argon2Vector {
        source: "phc-winner-argon2 test.c, Argon2id v=19 t=2 m=2^8 p=1",
        password: b"password",
        salt: b"somesalt",
        memory_kib: 256,
        iterations: 2,
        parallelism: 1,
        hash: "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe",
    },
    Argon2Vector {
        source: "phc-winner-argon2 test.c, Argon2id v=19 t=2 m=2^8 p=2",
        password: b"password",
        salt: b"somesalt",
        memory_kib: 256,
        iterations: 2,
        parallelism: 2,
        hash: "6d093c501fd5999645e0ea3bf620d7b8be7fd2db59c20d9fff9539da2bf57037",
    },
];
