//! A writer session: the sealer every record and header of its segments
//! is sealed with, and what a segment header records of it.

use std::sync::Arc;

use sealkv_crypto_envelope::{AlgorithmId, DbId, Domain, KeyId, Keyring, SessionSalt, TAG_LEN};

use crate::error::{Error, Result};
use crate::format::SegmentHeader;
use crate::seal::Protect;

#[derive(Debug)]
pub(super) struct Session {
    pub(super) db_id: DbId,
    pub(super) sealed: bool,
    pub(super) algorithm: AlgorithmId,
    pub(super) dek: KeyId,
    pub(super) salt: SessionSalt,
}

/// One writer session: how it seals and what its headers record.
#[derive(Debug)]
pub(super) struct Sealing {
    pub(super) protect: Protect,
    pub(super) session: Session,
}

impl Sealing {
    /// Starts a new writer session (a fresh salt) under the active key, or
    /// the plaintext "session".
    pub(super) fn start(keyring: Option<&Arc<Keyring>>, db_id: DbId) -> Result<Sealing> {
        let Some(ring) = keyring else {
            return Ok(Sealing {
                protect: Protect::Plain,
                session: Session {
                    db_id,
                    sealed: false,
                    algorithm: AlgorithmId(0),
                    dek: KeyId(0),
                    salt: SessionSalt([0; 32]),
                },
            });
        };
        if *ring.db_id() != db_id {
            return Err(Error::WrongDatabase { segment: 0 });
        }
        let ws = ring.start_session()?;
        let sealer = ws.sealer(Domain::Wal).clone();
        if sealer.tag_len() != TAG_LEN {
            return Err(Error::InvalidOptions("the algorithm's tag is not 16 bytes"));
        }
        Ok(Sealing {
            protect: Protect::Sealed(sealer),
            session: Session {
                db_id,
                sealed: true,
                algorithm: ws.algorithm(),
                dek: ws.dek(),
                salt: *ws.salt(),
            },
        })
    }
}

impl Session {
    pub(super) fn header(&self, segment: u64, first_seq: u64, counter: u64) -> SegmentHeader {
        SegmentHeader {
            version: crate::format::VERSION,
            sealed: self.sealed,
            algorithm: self.algorithm,
            dek: self.dek,
            segment,
            first_seq,
            counter,
            db_id: self.db_id,
            salt: self.salt,
        }
    }
}
