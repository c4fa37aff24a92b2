//! Sealing and opening whole pages: the one place the page format meets the
//! crypto envelope.
//!
//! A page is `header (64, clear) | body (sealed) | tag (16)`. The AAD binds
//! the database id, the algorithm, the page size, the format version, the
//! page's *slot* number (not the one it claims) and the whole clear header
//! (kind, DEK id, nonce counter, session salt, txn). Plaintext mode keeps the
//! layout and puts a CRC32C over the same AAD and the body in the tag slot.

use std::sync::Arc;

use parking_lot::RwLock;
use sealkv_crypto_envelope::{
    CryptoError, DbId, Domain, KeyId, Keyring, SessionSalt, SubkeyId, WriterSession, checksum_tag,
};

use crate::error::{Result, StoreError};
use crate::format::{FORMAT_VERSION, PAGE_HEADER_LEN, PageHeader, PageKind, TAG_LEN, Tag};

const AAD_LABEL: &[u8; 14] = b"sealkv/page/v1";
const AAD_LEN: usize = 14 + 16 + 2 + 4 + 2 + 8 + PAGE_HEADER_LEN;

/// How pages are protected.
pub(crate) enum Mode {
    /// CRC32C in the tag slot.
    Plain,
    /// AEAD; `session` is present when the store is open for writing.
    Sealed {
        keyring: Arc<Keyring>,
        session: Option<RwLock<Arc<WriterSession>>>,
    },
}

/// Seals and opens the pages of one file.
pub(crate) struct PageSealer {
    pub(crate) db_id: DbId,
    pub(crate) algorithm: u16,
    pub(crate) page_size: usize,
    pub(crate) mode: Mode,
}

impl PageSealer {
    /// Starts a new writer session under data key `under`, or the
    /// keyring's active one (after a data-key rotation): every page sealed
    /// from now on records the new session's salt and key.
    pub(crate) fn new_session(&self, under: Option<KeyId>) -> crate::error::Result<()> {
        match &self.mode {
            Mode::Plain => Ok(()),
            Mode::Sealed { session: None, .. } => Err(StoreError::ReadOnly),
            Mode::Sealed {
                session: Some(slot),
                keyring,
            } => {
                let fresh = match under {
                    Some(id) => keyring.start_session_under(id)?,
                    None => keyring.start_session()?,
                };
                if fresh.algorithm().0 != self.algorithm {
                    return Err(StoreError::AlgorithmMismatch {
                        file: self.algorithm,
                        key: fresh.algorithm().0,
                    });
                }
                let fresh = Arc::new(fresh);
                *slot.write() = fresh;
                Ok(())
            }
        }
    }
}

impl PageSealer {
    /// Whether pages are sealed (not checksummed).
    pub(crate) fn sealed(&self) -> bool {
        matches!(self.mode, Mode::Sealed { .. })
    }

    pub(crate) fn body_len(&self) -> usize {
        self.page_size - PAGE_HEADER_LEN - TAG_LEN
    }

    fn aad(&self, page: u64, header: &[u8]) -> [u8; AAD_LEN] {
        let mut a = [0u8; AAD_LEN];
        a[..14].copy_from_slice(AAD_LABEL);
        a[14..30].copy_from_slice(self.db_id.as_bytes());
        a[30..32].copy_from_slice(&self.algorithm.to_be_bytes());
        a[32..36].copy_from_slice(&(self.page_size as u32).to_be_bytes());
        a[36..38].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        a[38..46].copy_from_slice(&page.to_be_bytes());
        a[46..].copy_from_slice(&header[..PAGE_HEADER_LEN]);
        a
    }

    /// Seals a full page buffer whose body is already filled in; writes the
    /// header and the tag and returns the tag.
    pub(crate) fn seal(&self, buf: &mut [u8], kind: PageKind, page: u64, txn: u64) -> Result<Tag> {
        debug_assert_eq!(buf.len(), self.page_size);
        let p = self.page_size;
        let mut tag = [0u8; TAG_LEN];
        match &self.mode {
            Mode::Plain => {
                PageHeader {
                    kind,
                    dek: 0,
                    counter: 0,
                    salt: [0; 32],
                    page,
                    txn,
                }
                .write(buf);
                let aad = self.aad(page, buf);
                tag = plain_tag(&aad, &buf[PAGE_HEADER_LEN..p - TAG_LEN], txn);
            }
            Mode::Sealed { session, keyring } => {
                let slot = session.as_ref().ok_or(StoreError::ReadOnly)?;
                let domain = if kind == PageKind::Meta {
                    Domain::Meta
                } else {
                    Domain::Page
                };
                let mut session = slot.read().clone();
                let ticket = match session.sealer(domain).draw() {
                    Ok(t) => t,
                    Err(CryptoError::SessionExhausted(_)) => {
                        // 2^32 seals in this writer session: start a new one (new
                        // salt, new subkeys) under the same data key and go on
                        // under it. The same key, not the active one: a
                        // session started under a held key (to seal a meta
                        // page an older registry must still open) stays
                        // under it; moving to the active key is the
                        // caller's, after a rotation.
                        let fresh = Arc::new(keyring.start_session_under(session.dek())?);
                        *slot.write() = fresh.clone();
                        session = fresh;
                        session.sealer(domain).draw()?
                    }
                    Err(e) => return Err(e.into()),
                };
                let sealer = session.sealer(domain);
                PageHeader {
                    kind,
                    dek: session.dek().0,
                    counter: ticket.counter(),
                    salt: session.salt().0,
                    page,
                    txn,
                }
                .write(buf);
                let aad = self.aad(page, buf);
                sealer.seal_with(
                    ticket,
                    &aad,
                    &mut buf[PAGE_HEADER_LEN..p - TAG_LEN],
                    &mut tag,
                )?;
            }
        }
        buf[p - TAG_LEN..].copy_from_slice(&tag);
        Ok(tag)
    }

    /// Authenticates (and decrypts in place) page `page` read into `buf`.
    /// Checks the header's kind against `want` and its page number against
    /// the slot. Returns the header.
    pub(crate) fn open(&self, buf: &mut [u8], page: u64, want: &[PageKind]) -> Result<PageHeader> {
        let p = self.page_size;
        if buf.len() != p {
            return Err(StoreError::corrupt(page, "page truncated"));
        }
        let h = PageHeader::read(buf, page)?;
        let aad = self.aad(page, buf);
        let (body, tag) = buf[PAGE_HEADER_LEN..].split_at_mut(p - PAGE_HEADER_LEN - TAG_LEN);
        match &self.mode {
            Mode::Plain => {
                if plain_tag(&aad, body, h.txn) != *tag {
                    return Err(StoreError::corrupt(page, "checksum mismatch"));
                }
            }
            Mode::Sealed { keyring, .. } => {
                let domain = if h.kind == PageKind::Meta {
                    Domain::Meta
                } else {
                    Domain::Page
                };
                let id = SubkeyId {
                    dek: KeyId(h.dek),
                    salt: SessionSalt(h.salt),
                    domain,
                };
                match keyring.open(&id, h.counter, &aad, body, tag) {
                    Ok(()) => {}
                    Err(CryptoError::MissingDataKey(_)) => {
                        return Err(StoreError::MissingKey {
                            page,
                            dek: KeyId(h.dek),
                        });
                    }
                    Err(_) => return Err(StoreError::corrupt(page, "authentication failed")),
                }
            }
        }
        if h.page != page {
            return Err(StoreError::corrupt(page, "page number mismatch"));
        }
        if !want.contains(&h.kind) {
            return Err(StoreError::corrupt(
                page,
                format!(
                    "expected a {} page, found a {} page",
                    want_name(want),
                    h.kind.name()
                ),
            ));
        }
        Ok(h)
    }

    /// Opens `buf` as page `page` and checks its tag against what the parent
    /// expects: a mismatch that still authenticates is a rollback — an
    /// older version of this slot, of whatever kind it was then (the kind
    /// is checked after the tag: a stale page of another kind is as much a
    /// rollback as a stale page of this kind).
    pub(crate) fn open_expected(
        &self,
        buf: &mut [u8],
        page: u64,
        expected: &Tag,
        want: &[PageKind],
    ) -> Result<PageHeader> {
        let p = self.page_size;
        let stored = buf.get(p - TAG_LEN..).unwrap_or(&[]) == expected.as_slice();
        let any = [
            PageKind::Meta,
            PageKind::Branch,
            PageKind::Leaf,
            PageKind::Overflow,
            PageKind::FreeList,
        ];
        let h = self.open(buf, page, if stored { want } else { &any })?;
        if !stored {
            return Err(StoreError::Rollback { page });
        }
        Ok(h)
    }
}

impl PageSealer {
    /// Plaintext mode: recomputes the tag of page `page` in `buf` from its
    /// own header, whatever the bytes (the fuzz target uses it to get past
    /// the checksums and into the parsers).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn plain_retag(&self, buf: &mut [u8], page: u64) {
        let p = self.page_size;
        if buf.len() != p {
            return;
        }
        let txn = crate::format::be64(buf, 56).unwrap_or(0);
        let aad = self.aad(page, buf);
        let tag = plain_tag(&aad, &buf[PAGE_HEADER_LEN..p - TAG_LEN], txn);
        buf[p - TAG_LEN..].copy_from_slice(&tag);
    }
}

/// Plaintext mode's tag: the CRC32C of AAD and body (bytes 0..4, as
/// `checksum_tag` makes it), then the writing transaction id (bytes 4..12),
/// so that two versions of one page never share a tag (the cache key and
/// the parent's freshness check) even when their CRCs collide.
fn plain_tag(aad: &[u8], body: &[u8], txn: u64) -> Tag {
    let mut tag = checksum_tag(aad, body);
    tag[4..12].copy_from_slice(&txn.to_be_bytes());
    tag
}

fn want_name(want: &[PageKind]) -> &'static str {
    match want {
        [k] => k.name(),
        _ => "tree",
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use sealkv_crypto_envelope::{CryptoProvider, DataKey, EncryptionAlgorithm, SecretKey};

    /// A session that runs out of nonces is replaced by one under the
    /// same data key, not the keyring's active one: a session started
    /// under an older held key keeps sealing under it.
    #[test]
    fn an_exhausted_session_restarts_under_its_own_data_key() {
        let alg = EncryptionAlgorithm::Aes256Gcm.id();
        let keyring = Keyring::new(DbId([7; 16]), Arc::new(CryptoProvider::default()));
        for (id, secret) in [(1, [1; 32]), (2, [2; 32])] {
            keyring.insert(DataKey::new(
                KeyId(id),
                alg,
                SecretKey::from_bytes(&secret).unwrap(),
            ));
        }
        keyring.set_active(KeyId(2)).unwrap();
        let keyring = Arc::new(keyring);
        let sealer = PageSealer {
            db_id: DbId([7; 16]),
            algorithm: alg.0,
            page_size: 4096,
            mode: Mode::Sealed {
                session: Some(RwLock::new(Arc::new(keyring.start_session().unwrap()))),
                keyring: keyring.clone(),
            },
        };
        sealer.new_session(Some(KeyId(1))).unwrap();
        let Mode::Sealed {
            session: Some(slot),
            ..
        } = &sealer.mode
        else {
            unreachable!()
        };
        let before = slot.read().clone();
        before.sealer(Domain::Meta).spend_all();
        let mut buf = vec![0u8; 4096];
        sealer.seal(&mut buf, PageKind::Meta, 1, 9).unwrap();
        let header = PageHeader::read(&buf, 1).unwrap();
        assert_eq!(
            header.dek, 1,
            "the new session left the key it was started under"
        );
        assert_ne!(header.salt, before.salt().0, "no new session was started");
        sealer.open(&mut buf, 1, &[PageKind::Meta]).unwrap();
    }
}
