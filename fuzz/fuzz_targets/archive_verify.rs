//! Any bytes read as a logical export archive, with a fixed raw archive key,
//! with a software key wrapper under the same fixed key (archives of key
//! kind 3: the wrapper section's parser and the unwrap) and with no key:
//! must return records or a typed error, never panic, never allocate
//! without bound.
//!
//! Most mutants stop at the header's CRC32C or a chunk's tag, so each input
//! is also read with the header CRC and the wrapper section's CRC
//! recomputed and, for a plaintext
//! archive, every chunk's CRC32C checksum tag recomputed over its frame:
//! the plaintext mode is the "null cipher" that lets the fuzzer reach the
//! frame, record and trailer parsers. Sealed chunks stay behind their AEAD
//! tags, which a mutant cannot forge without the key.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sealkv_backup::archive::{ArchiveReader, format};
use sealkv_crypto_envelope::{
    CryptoProvider, KeySource, MasterKey, SoftwareWrapper, checksum_tag,
};

fn read(data: &[u8], key: Option<&KeySource>, provider: &CryptoProvider) {
    let Ok(mut reader) = ArchiveReader::open(data, Path::new("fuzz.skva"), key, provider) else {
        return;
    };
    let mut n = 0u64;
    while let Ok(Some(_)) = reader.next_record() {
        n += 1;
    }
    assert!(n <= data.len() as u64);
}

/// The input with its header CRC and (plaintext mode) chunk checksums
/// recomputed, as far as the frames can be walked.
fn fix_up(data: &[u8]) -> Option<Vec<u8>> {
    let h = format::HEADER_LEN;
    let mut out = data.to_vec();
    let crc = crc32c::crc32c(out.get(..h - 4)?);
    out.get_mut(h - 4..h)?.copy_from_slice(&crc.to_le_bytes());
    if out.get(11) == Some(&3) {
        // Key kind 3: the wrapper section of W bytes (header bytes 84..88)
        // follows the header and ends with its own CRC32C.
        let w = u32::from_le_bytes(out.get(84..88)?.try_into().ok()?) as usize;
        let end = h.checked_add(w)?;
        if w >= 4 && end <= out.len() {
            let crc = crc32c::crc32c(out.get(h..end - 4)?);
            out.get_mut(end - 4..end)?.copy_from_slice(&crc.to_le_bytes());
        }
    }
    if out.get(10) != Some(&0) {
        return Some(out);
    }
    let header: Vec<u8> = out.get(..h)?.to_vec();
    let (mut at, mut index) = (h, 0u64);
    while at + format::FRAME_LEN <= out.len() {
        let frame: Vec<u8> = out.get(at..at + format::FRAME_LEN)?.to_vec();
        let len = u32::from_le_bytes(frame.get(4..8)?.try_into().ok()?) as usize;
        let body = at + format::FRAME_LEN;
        let tag = body.checked_add(len)?;
        if tag + format::CHUNK_TAG_LEN > out.len() {
            break;
        }
        let mut aad = header.clone();
        aad.extend_from_slice(&index.to_le_bytes());
        aad.extend_from_slice(&frame);
        let t = checksum_tag(&aad, out.get(body..tag)?);
        out.get_mut(tag..tag + format::CHUNK_TAG_LEN)?.copy_from_slice(&t);
        at = tag + format::CHUNK_TAG_LEN;
        index += 1;
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let provider = CryptoProvider::default();
    let Ok(raw) = MasterKey::from_bytes(&[0x5a; 32]) else {
        return;
    };
    let Ok(wrapping) = MasterKey::from_bytes(&[0x5a; 32]) else {
        return;
    };
    let raw = KeySource::Key(raw);
    let wrapped = KeySource::Wrapper(Arc::new(SoftwareWrapper::new("fuzz", wrapping)));
    read(data, Some(&raw), &provider);
    read(data, Some(&wrapped), &provider);
    read(data, None, &provider);
    if let Some(fixed) = fix_up(data) {
        read(&fixed, Some(&raw), &provider);
        read(&fixed, Some(&wrapped), &provider);
    }
});
