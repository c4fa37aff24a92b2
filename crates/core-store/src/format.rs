//! On-disk constants, the file header (page 0) and the header every other
//! page starts with. See the `# Page file` section of `docs/FORMAT.md`.

use sealkv_crypto_envelope::DbId;

use crate::error::{Result, StoreError};

/// The file's magic bytes.
pub(crate) const MAGIC: &[u8; 8] = b"SEALKVPF";
/// The page-file format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Length of the clear header at the start of every page but page 0.
pub(crate) const PAGE_HEADER_LEN: usize = 64;
/// Length of the tag (or CRC32C slot) at the end of every page but page 0.
pub(crate) const TAG_LEN: usize = 16;
/// The smallest page size.
pub const MIN_PAGE_SIZE: u32 = 4096;
/// The largest page size.
pub const MAX_PAGE_SIZE: u32 = 65536;
/// The default page size.
pub const DEFAULT_PAGE_SIZE: u32 = 4096;
/// The default bound of the decrypted-page cache, in bytes: 256 MiB. The
/// cache holds what was read, up to this bound (a small database never
/// fills it); 256 MiB keeps the whole tree of about 1.8 million records of
/// 100 bytes.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;
/// The longest value stored (longer ones get [`StoreError::ValueTooLarge`]).
pub const MAX_VALUE_LEN: usize = 64 << 20;
/// The longest application metadata a meta page holds.
pub const MAX_APP_META: usize = 1024;
/// The deepest tree descended (root at depth 0): a branch holds at least
/// two children, so real trees stay far shallower; past it the tree is
/// corrupt (a crafted cycle or chain).
pub(crate) const MAX_DEPTH: usize = 64;
/// Page number of meta slot A; slot B is the next page.
pub(crate) const META_A: u64 = 1;
/// The first page that can hold tree, overflow or free-list data.
pub(crate) const FIRST_DATA_PAGE: u64 = 3;

/// A page's tag as recorded by whoever points at it.
pub type Tag = [u8; TAG_LEN];

/// What a page holds (byte 0 of its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PageKind {
    Meta = 1,
    Branch = 2,
    Leaf = 3,
    Overflow = 4,
    FreeList = 5,
}

impl PageKind {
    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => PageKind::Meta,
            2 => PageKind::Branch,
            3 => PageKind::Leaf,
            4 => PageKind::Overflow,
            5 => PageKind::FreeList,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            PageKind::Meta => "meta",
            PageKind::Branch => "branch",
            PageKind::Leaf => "leaf",
            PageKind::Overflow => "overflow",
            PageKind::FreeList => "free-list",
        }
    }
}

/// Page 0: the public header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub(crate) page_size: u32,
    pub(crate) encrypted: bool,
    pub(crate) algorithm: u16,
    pub(crate) db_id: DbId,
}

impl FileHeader {
    /// Encodes the header into a full page.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let p = self.page_size as usize;
        let mut b = vec![0u8; p];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        b[10..14].copy_from_slice(&self.page_size.to_be_bytes());
        b[14] = u8::from(self.encrypted);
        b[16..18].copy_from_slice(&self.algorithm.to_be_bytes());
        b[20..36].copy_from_slice(self.db_id.as_bytes());
        let crc = crc32c::crc32c(&b[..p - 4]);
        b[p - 4..].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// Decodes the first bytes of the file; `page` must be the whole page
    /// 0 once the page size is known (call [`FileHeader::peek_page_size`]).
    pub(crate) fn decode(page: &[u8]) -> Result<Self> {
        let bad = |what: &str| StoreError::corrupt(0, what);
        if page.get(0..8) != Some(MAGIC.as_slice()) {
            return Err(bad("bad magic: not a sealkv page file"));
        }
        let version = be16(page, 8).ok_or_else(|| bad("header truncated"))?;
        let page_size = be32(page, 10).ok_or_else(|| bad("header truncated"))?;
        let checksum_ok = check_page_size(page_size).is_ok()
            && page.len() == page_size as usize
            && be32(page, page.len() - 4)
                .is_some_and(|stored| crc32c::crc32c(&page[..page.len() - 4]) == stored);
        // The version field is believed only once the checksum vouches for
        // it: a flipped bit there is damage, not a newer format.
        if version != FORMAT_VERSION {
            return Err(if checksum_ok {
                StoreError::UnsupportedVersion(version)
            } else {
                bad(&format!(
                    "header checksum mismatch (its version field says {version}: a damaged header, or a format this build does not read)"
                ))
            });
        }
        check_page_size(page_size).map_err(|_| bad("invalid page size"))?;
        let p = page_size as usize;
        if page.len() != p {
            return Err(bad("header truncated"));
        }
        if !checksum_ok {
            return Err(bad("header checksum mismatch"));
        }
        let encrypted = match page[14] {
            0 => false,
            1 => true,
            _ => return Err(bad("invalid flags")),
        };
        let algorithm = be16(page, 16).ok_or_else(|| bad("header truncated"))?;
        let reserved_zero =
            |r: std::ops::Range<usize>| page.get(r).is_some_and(|b| b.iter().all(|&x| x == 0));
        if !(reserved_zero(15..16) && reserved_zero(18..20) && reserved_zero(36..p - 4)) {
            return Err(bad("non-zero reserved header bytes"));
        }
        if encrypted == (algorithm == 0) {
            return Err(bad("algorithm does not match the encryption flag"));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&page[20..36]);
        Ok(FileHeader {
            page_size,
            encrypted,
            algorithm,
            db_id: DbId(id),
        })
    }

    /// The page size recorded in the first 14 bytes of a file, if the magic
    /// matches.
    pub(crate) fn peek_page_size(start: &[u8]) -> Option<u32> {
        if start.get(0..8) != Some(MAGIC.as_slice()) {
            return None;
        }
        be32(start, 10)
    }
}

/// Refuses page sizes that are not a power of two from 4 KiB to 64 KiB.
pub(crate) fn check_page_size(p: u32) -> Result<()> {
    if p.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&p) {
        Ok(())
    } else {
        Err(StoreError::InvalidPageSize(p))
    }
}

/// The clear header of a sealed (or checksummed) page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageHeader {
    pub(crate) kind: PageKind,
    pub(crate) dek: u32,
    pub(crate) counter: u64,
    pub(crate) salt: [u8; 32],
    pub(crate) page: u64,
    pub(crate) txn: u64,
}

impl PageHeader {
    pub(crate) fn write(&self, b: &mut [u8]) {
        debug_assert!(b.len() >= PAGE_HEADER_LEN);
        b[0] = self.kind as u8;
        b[1] = FORMAT_VERSION as u8;
        b[2..4].fill(0);
        b[4..8].copy_from_slice(&self.dek.to_be_bytes());
        b[8..16].copy_from_slice(&self.counter.to_be_bytes());
        b[16..48].copy_from_slice(&self.salt);
        b[48..56].copy_from_slice(&self.page.to_be_bytes());
        b[56..64].copy_from_slice(&self.txn.to_be_bytes());
    }

    pub(crate) fn read(b: &[u8], page: u64) -> Result<Self> {
        let bad = |what: &str| StoreError::corrupt(page, what);
        let h = b
            .get(..PAGE_HEADER_LEN)
            .ok_or_else(|| bad("page truncated"))?;
        let kind = PageKind::from_byte(h[0]).ok_or_else(|| bad("unknown page kind"))?;
        if u16::from(h[1]) != FORMAT_VERSION || h[2] != 0 || h[3] != 0 {
            return Err(bad("bad page format version"));
        }
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&h[16..48]);
        Ok(PageHeader {
            kind,
            dek: be32(h, 4).unwrap_or(0),
            counter: be64(h, 8).unwrap_or(0),
            salt,
            page: be64(h, 48).unwrap_or(0),
            txn: be64(h, 56).unwrap_or(0),
        })
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

pub(crate) fn tag_at(b: &[u8], at: usize) -> Option<Tag> {
    b.get(at..at + TAG_LEN)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_any_flip_detected() {
        let h = FileHeader {
            page_size: 4096,
            encrypted: true,
            algorithm: 1,
            db_id: DbId([9; 16]),
        };
        let b = h.encode();
        assert_eq!(FileHeader::decode(&b).unwrap(), h);
        for i in [8usize, 9, 12, 14, 17, 25, 100, 4095] {
            let mut c = b.clone();
            c[i] ^= 0x10;
            // A flip is damage (the version field included): Corruption,
            // never "unsupported version".
            let e = FileHeader::decode(&c).unwrap_err();
            assert!(
                matches!(e, StoreError::Corruption { page: 0, .. }),
                "flip at {i}: {e:?}"
            );
        }
        let mut c = b.clone();
        c[0] ^= 1;
        assert!(FileHeader::decode(&c).is_err());
        // Another version with a checksum that vouches for it.
        let mut c = b.clone();
        c[9] = 2;
        let crc = crc32c::crc32c(&c[..4092]);
        c[4092..].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            FileHeader::decode(&c),
            Err(StoreError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn non_zero_reserved_header_bytes_are_corrupt() {
        let h = FileHeader {
            page_size: 4096,
            encrypted: true,
            algorithm: 1,
            db_id: DbId([9; 16]),
        };
        let b = h.encode();
        for i in [15usize, 18, 19, 36, 100, 4091] {
            let mut c = b.clone();
            c[i] = 1;
            // A valid checksum: only the reserved byte is wrong.
            let crc = crc32c::crc32c(&c[..4092]);
            c[4092..].copy_from_slice(&crc.to_be_bytes());
            let e = FileHeader::decode(&c).unwrap_err();
            assert!(
                matches!(e, StoreError::Corruption { page: 0, .. }),
                "byte {i}: {e:?}"
            );
        }
    }

    #[test]
    fn page_sizes() {
        assert!(check_page_size(4096).is_ok());
        assert!(check_page_size(65536).is_ok());
        assert!(check_page_size(2048).is_err());
        assert!(check_page_size(5000).is_err());
        assert!(check_page_size(1 << 17).is_err());
    }
}
