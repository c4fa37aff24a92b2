//! The plaintext mode's stand-in for a tag: CRC32C.
//!
//! With encryption at rest off, units keep exactly the same layout; the
//! 16-byte tag slot holds a CRC32C over the AAD and the body (little-endian,
//! in the first four bytes; the rest zero). It detects bit rot and torn
//! writes, not tampering: without a key there is nothing to authenticate
//! with.

/// Length of the tag slot in every unit, sealed or not.
pub const TAG_LEN: usize = 16;

/// The checksum "tag" over `aad` and `body`.
pub fn checksum_tag(aad: &[u8], body: &[u8]) -> [u8; TAG_LEN] {
    let crc = crc32c::crc32c_append(crc32c::crc32c(aad), body);
    let mut tag = [0u8; TAG_LEN];
    tag[..4].copy_from_slice(&crc.to_le_bytes());
    tag
}

/// Whether `tag` is the checksum tag of `aad` and `body`.
pub fn verify_checksum_tag(aad: &[u8], body: &[u8], tag: &[u8]) -> bool {
    tag == checksum_tag(aad, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_any_flip() {
        let tag = checksum_tag(b"hdr", b"body");
        assert!(verify_checksum_tag(b"hdr", b"body", &tag));
        assert!(!verify_checksum_tag(b"hdr", b"bodY", &tag));
        assert!(!verify_checksum_tag(b"hdR", b"body", &tag));
        let mut t = tag;
        t[15] ^= 1;
        assert!(!verify_checksum_tag(b"hdr", b"body", &t));
        // The CRC32C check value of "123456789" is 0xE3069283.
        assert_eq!(
            &checksum_tag(b"1234", b"56789")[..4],
            &0xE306_9283u32.to_le_bytes()
        );
    }
}
