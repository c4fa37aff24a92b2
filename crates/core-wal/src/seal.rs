//! Sealing and opening records and headers: AEAD under the writer
//! session's WAL subkey, or CRC32C in plaintext mode.

#![deny(clippy::indexing_slicing)]

use std::sync::Arc;

use sealkv_crypto_envelope::{
    DomainSealer, NonceTicket, Opener, TAG_LEN, checksum_tag, verify_checksum_tag,
};

use crate::error::Result;
use crate::format::{CTX_LEN, HEADER_LEN, RECORD_HEADER_LEN, SegmentHeader, record_aad};

/// How this writer protects what it writes.
#[derive(Debug, Clone)]
pub(crate) enum Protect {
    /// CRC32C in the tag slot.
    Plain,
    /// AEAD under the session's WAL sealer.
    Sealed(Arc<DomainSealer>),
}

impl Protect {
    /// Draws a nonce for one seal (none in plaintext mode). Done under the
    /// log's lock so counters follow sequence numbers; the seal itself runs
    /// outside it.
    pub(crate) fn draw(&self) -> Result<Option<NonceTicket>> {
        match self {
            Protect::Plain => Ok(None),
            Protect::Sealed(s) => Ok(Some(s.draw()?)),
        }
    }

    /// Seals a record laid out in `rec` (header, body, tag slot) in place.
    /// The header must already hold the ticket's counter.
    pub(crate) fn seal_record(
        &self,
        ticket: Option<NonceTicket>,
        ctx: &[u8; CTX_LEN],
        rec: &mut [u8],
    ) -> Result<()> {
        let body_end = rec.len().saturating_sub(TAG_LEN);
        let (head, rest) = rec.split_at_mut(RECORD_HEADER_LEN.min(body_end));
        let (body, tag) = rest.split_at_mut(body_end.saturating_sub(head.len()));
        let aad = record_aad(ctx, head);
        match (self, ticket) {
            (Protect::Sealed(s), Some(t)) => s.seal_with(t, &aad, body, tag)?,
            _ => tag.copy_from_slice(&checksum_tag(&aad, body)),
        }
        Ok(())
    }

    /// Fills in the tag of an encoded segment header.
    pub(crate) fn seal_header(
        &self,
        ticket: Option<NonceTicket>,
        header: &mut [u8; HEADER_LEN],
    ) -> Result<()> {
        let aad: [u8; HEADER_LEN - TAG_LEN] = {
            let mut a = [0u8; HEADER_LEN - TAG_LEN];
            a.copy_from_slice(SegmentHeader::aad(header));
            a
        };
        let tag = SegmentHeader::tag_mut(header);
        match (self, ticket) {
            (Protect::Sealed(s), Some(t)) => s.seal_with(t, &aad, &mut [], tag)?,
            _ => tag.copy_from_slice(&checksum_tag(&aad, &[])),
        }
        Ok(())
    }
}

/// How a reader verifies one segment's units.
#[derive(Debug, Clone)]
pub(crate) enum Verify {
    /// CRC32C.
    Plain,
    /// AEAD under the segment's session subkey.
    Sealed(Opener),
}

impl Verify {
    /// Verifies the header's tag.
    pub(crate) fn header(&self, header: &SegmentHeader, bytes: &[u8]) -> bool {
        let Some(bytes) = bytes.get(..HEADER_LEN) else {
            return false;
        };
        let (aad, tag) = bytes.split_at(HEADER_LEN - TAG_LEN);
        match self {
            Verify::Plain => verify_checksum_tag(aad, &[], tag),
            Verify::Sealed(o) => o.open(header.counter, aad, &mut [], tag).is_ok(),
        }
    }

    /// Verifies (and, sealed, decrypts in place) a record body; `head` is
    /// the record header bytes, `body_tag` the body followed by the tag.
    pub(crate) fn record(
        &self,
        ctx: &[u8; CTX_LEN],
        head: &[u8],
        counter: u64,
        body_tag: &mut [u8],
    ) -> bool {
        let Some(body_len) = body_tag.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let (body, tag) = body_tag.split_at_mut(body_len);
        let aad = record_aad(ctx, head);
        match self {
            Verify::Plain => verify_checksum_tag(&aad, body, tag),
            Verify::Sealed(o) => o.open(counter, &aad, body, tag).is_ok(),
        }
    }
}
