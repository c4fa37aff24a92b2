//! Recovery: reads every segment at open, replays valid records in order,
//! and decides what damage means (the argument is in `docs/WAL.md`).

#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv_crypto_envelope::{Domain, SubkeyId, TAG_LEN};
use sealkv_fileio::{FileError, FileOp, OpenMode, Vfs, VfsFile};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::format::{
    HEADER_LEN, MAX_SEQ, RECORD_HEADER_LEN, RecordHeader, SegmentHeader, parse_segment_name,
};
use crate::options::{RecoveryMode, RecoveryReport, Seq, Skipped, TornTail, WalOptions};
use crate::reader::SegmentReader;
use crate::seal::Verify;

/// Largest record body accepted (writer and reader).
pub(crate) const MAX_BODY_LEN: usize = 256 << 20;
/// How far past the expected sequence a record found after damage may be.
const SEQ_WINDOW: u64 = 1 << 32;
/// A damage scan may read and check at most this many times the segment's
/// length (plus [`SCAN_WORK_SLACK`]) before it gives up with Corruption.
const SCAN_WORK_FACTOR: u64 = 4;
/// Room for the reader's chunked reads on small segments.
const SCAN_WORK_SLACK: u64 = 4 << 20;

/// The replay callback's error.
pub(crate) type ReplayError = Box<dyn std::error::Error + Send + Sync>;

/// What the writer needs from recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) report: RecoveryReport,
    /// Next sequence number to assign.
    pub(crate) next_seq: u64,
    /// Kept segments and their first sequence numbers.
    pub(crate) segments: BTreeMap<u64, u64>,
    /// Highest segment number seen (kept or removed).
    pub(crate) max_segment: u64,
}

struct Seg {
    n: u64,
    path: PathBuf,
    file: Arc<dyn VfsFile>,
    len: u64,
    header: Option<(SegmentHeader, Verify)>,
    bad_header: &'static str,
    /// Whether a whole header is there (not cut short, not all zeros):
    /// the header is written in one sector, so a crash leaves it whole or
    /// not at all, and a whole one that fails is damage.
    header_written: bool,
    /// A refusal (wrong mode, missing key...) raised only if the segment
    /// is still needed: an obsolete segment under a retired key is fine.
    refusal: Option<Error>,
}

/// A valid record found by scanning past damage.
struct Found {
    off: u64,
    hdr: RecordHeader,
}

pub(crate) struct Recovery<'a> {
    pub(crate) vfs: &'a dyn Vfs,
    pub(crate) dir: &'a Path,
    pub(crate) opts: &'a WalOptions,
    /// Read and replay only: nothing is cut, removed or written (a torn
    /// tail is still left out of the replay and reported).
    pub(crate) read_only: bool,
}

fn io(op: FileOp, path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(FileError::new(op, path, e))
}

impl Recovery<'_> {
    fn open_segment(&self, n: u64, path: PathBuf) -> Result<Seg> {
        let file = self
            .vfs
            .open(
                &path,
                if self.read_only {
                    OpenMode::Read
                } else {
                    OpenMode::ReadWrite
                },
            )
            .map_err(io(FileOp::Open, &path))?;
        let len = file.len().map_err(io(FileOp::Read, &path))?;
        let mut seg = Seg {
            n,
            path,
            file,
            len,
            header: None,
            bad_header: "",
            header_written: false,
            refusal: None,
        };
        let mut bytes = [0u8; HEADER_LEN];
        if len < HEADER_LEN as u64 {
            seg.bad_header = "segment shorter than its header";
            return Ok(seg);
        }
        seg.file
            .read_exact_at(&mut bytes, 0)
            .map_err(io(FileOp::Read, &seg.path))?;
        seg.header_written = bytes.iter().any(|&b| b != 0);
        let Some(h) = SegmentHeader::decode(&bytes) else {
            seg.bad_header = "not a segment header of this format";
            return Ok(seg);
        };
        let verify = match self.verifier(n, &h, &bytes) {
            Ok(v) => v,
            Err(Error::Corruption { what, .. }) => {
                seg.bad_header = what;
                return Ok(seg);
            }
            Err(e) => {
                seg.refusal = Some(e);
                return Ok(seg);
            }
        };
        if !verify.header(&h, &bytes) {
            seg.bad_header = "segment header fails authentication";
            return Ok(seg);
        }
        if h.db_id != self.opts.db_id {
            seg.refusal = Some(Error::WrongDatabase { segment: n });
            return Ok(seg);
        }
        if h.segment != n {
            seg.bad_header = "segment header names another segment number";
            return Ok(seg);
        }
        seg.header = Some((h, verify));
        Ok(seg)
    }

    /// How to verify a segment with header `h` (encoded as `bytes`), or why
    /// it cannot be read. Header fields are not yet authenticated here, so
    /// a mode mismatch is named only when the header otherwise checks out;
    /// a header that cannot be what it claims is `Corruption`.
    fn verifier(&self, n: u64, h: &SegmentHeader, bytes: &[u8; HEADER_LEN]) -> Result<Verify> {
        let corrupt = |what| Error::Corruption {
            segment: n,
            offset: 0,
            what,
        };
        Ok(match (&self.opts.keyring, h.sealed) {
            (None, true) => {
                // Unverifiable without a key; but a plaintext header with
                // its flag flipped is damage, not a sealed log.
                let mut plain = *bytes;
                plain[10] &= !1;
                if Verify::Plain.header(h, &plain) {
                    return Err(corrupt("segment header's sealed flag is flipped"));
                }
                return Err(Error::EncryptedLog { segment: n });
            }
            (Some(_), false) => {
                if Verify::Plain.header(h, bytes) {
                    return Err(Error::PlaintextLog { segment: n });
                }
                return Err(corrupt("segment header fails authentication"));
            }
            (None, false) => Verify::Plain,
            (Some(ring), true) => {
                // An unauthenticated claim: a flipped key id also lands
                // here (see WAL.md). A flipped algorithm fails the tag.
                if !ring.contains(h.dek) {
                    return Err(Error::MissingKey {
                        segment: n,
                        dek: h.dek,
                    });
                }
                let id = SubkeyId {
                    dek: h.dek,
                    salt: h.salt,
                    domain: Domain::Wal,
                };
                Verify::Sealed(ring.opener(&id)?)
            }
        })
    }

    fn remove(&self, seg: &Seg, report: &mut RecoveryReport) -> Result<()> {
        if self.read_only {
            report.segments_removed.push(seg.n);
            return Ok(());
        }
        self.vfs
            .remove_file(&seg.path)
            .map_err(io(FileOp::Remove, &seg.path))?;
        report.segments_removed.push(seg.n);
        Ok(())
    }

    fn cut(&self, seg: &Seg, at: u64) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        seg.file
            .set_len(at)
            .map_err(io(FileOp::SetLen, &seg.path))?;
        seg.file.sync_data().map_err(io(FileOp::Sync, &seg.path))
    }

    pub(crate) fn run(
        &self,
        replay: &mut dyn FnMut(Seq, Batch) -> Result<(), ReplayError>,
    ) -> Result<Recovered> {
        let mode = self.opts.recovery_mode;
        let from = self.opts.first_seq.0;
        let mut report = RecoveryReport::default();
        let mut names: Vec<(u64, PathBuf)> = self
            .vfs
            .read_dir(self.dir)
            .map_err(io(FileOp::Dir, self.dir))?
            .into_iter()
            .filter_map(|p| parse_segment_name(&p).map(|n| (n, p)))
            .collect();
        names.sort();
        let max_segment = names.last().map_or(0, |(n, _)| *n);
        let mut segs = Vec::with_capacity(names.len());
        for (n, p) in names {
            segs.push(self.open_segment(n, p)?);
        }
        let mut removed_any = false;
        // A last segment whose header never became durable was being
        // created when the process died: nothing in it was acknowledged.
        if let Some(last) = segs.last()
            && last.header.is_none()
            && last.refusal.is_none()
        {
            let mut r = SegmentReader::new(last.file.clone(), last.path.clone(), last.len);
            let header_only = last.len <= HEADER_LEN as u64 || r.zero_from(HEADER_LEN as u64)?;
            if header_only {
                if last.header_written {
                    report.damaged_headers.push(Skipped {
                        segment: last.n,
                        offset: 0,
                        len: last.len,
                        what: last.bad_header,
                    });
                }
                self.remove(last, &mut report)?;
                removed_any = true;
                segs.pop();
            }
        }
        // Segments wholly older than `first_seq` are obsolete.
        let start = segs
            .iter()
            .rposition(|s| s.header.as_ref().is_some_and(|(h, _)| h.first_seq <= from))
            .unwrap_or(0);
        for s in segs.drain(..start) {
            self.remove(&s, &mut report)?;
            removed_any = true;
        }

        if let Some(e) = segs.iter_mut().find_map(|s| s.refusal.take()) {
            return Err(e);
        }
        let mut expected: Option<u64> = None;
        let mut kept = BTreeMap::new();
        let mut body = Vec::new();
        let count = segs.len();
        let mut stop_at: Option<usize> = None;
        'segments: for (i, seg) in segs.iter().enumerate() {
            let is_last = i + 1 == count;
            if i > 0 && segs.get(i - 1).is_some_and(|p| p.n + 1 != seg.n) {
                let what = "a segment is missing";
                match mode {
                    RecoveryMode::SkipAnyCorruptedRecords => report.skipped.push(Skipped {
                        segment: seg.n,
                        offset: 0,
                        len: 0,
                        what,
                    }),
                    RecoveryMode::PointInTimeRecovery => {
                        stop_at = Some(i);
                        break 'segments;
                    }
                    _ => {
                        return Err(Error::Corruption {
                            segment: seg.n.saturating_sub(1),
                            offset: 0,
                            what,
                        });
                    }
                }
            }
            let Some((h, verify)) = &seg.header else {
                match mode {
                    RecoveryMode::SkipAnyCorruptedRecords => {
                        report.skipped.push(Skipped {
                            segment: seg.n,
                            offset: 0,
                            len: seg.len,
                            what: seg.bad_header,
                        });
                        kept.insert(seg.n, expected.unwrap_or(from));
                        continue;
                    }
                    RecoveryMode::PointInTimeRecovery => {
                        report.skipped.push(Skipped {
                            segment: seg.n,
                            offset: 0,
                            len: seg.len,
                            what: seg.bad_header,
                        });
                        stop_at = Some(i);
                        break 'segments;
                    }
                    _ => {
                        return Err(Error::Corruption {
                            segment: seg.n,
                            offset: 0,
                            what: seg.bad_header,
                        });
                    }
                }
            };
            report.segments_read += 1;
            let mut next = match expected {
                None if h.first_seq > from => {
                    let what = "the log starts after the first sequence to replay";
                    if mode != RecoveryMode::SkipAnyCorruptedRecords {
                        return Err(Error::Corruption {
                            segment: seg.n,
                            offset: 0,
                            what,
                        });
                    }
                    report.skipped.push(Skipped {
                        segment: seg.n,
                        offset: 0,
                        len: 0,
                        what,
                    });
                    h.first_seq
                }
                None => h.first_seq,
                Some(e) if h.first_seq == e => e,
                Some(e) => {
                    let what = "segment does not continue the sequence of the one before";
                    match mode {
                        RecoveryMode::SkipAnyCorruptedRecords if h.first_seq > e => {
                            report.skipped.push(Skipped {
                                segment: seg.n,
                                offset: 0,
                                len: 0,
                                what,
                            });
                            h.first_seq
                        }
                        RecoveryMode::SkipAnyCorruptedRecords => e,
                        RecoveryMode::PointInTimeRecovery => {
                            report.skipped.push(Skipped {
                                segment: seg.n,
                                offset: 0,
                                len: seg.len,
                                what,
                            });
                            stop_at = Some(i);
                            break 'segments;
                        }
                        _ => {
                            return Err(Error::Corruption {
                                segment: seg.n,
                                offset: 0,
                                what,
                            });
                        }
                    }
                }
            };
            kept.insert(seg.n, h.first_seq);
            let mut r = Records {
                reader: SegmentReader::new(seg.file.clone(), seg.path.clone(), seg.len),
                verify,
                ctx: h.context(),
                markers: h.has_markers(),
                segment: seg.n,
                body: &mut body,
            };
            let mut off = HEADER_LEN as u64;
            let check = if mode == RecoveryMode::SkipAnyCorruptedRecords {
                Check::NextMoved
            } else {
                Check::Next
            };
            // Skip mode reports once per segment that records were moved.
            let mut moved_reported = false;
            while off < seg.len {
                let read = r.read(off, next, check)?;
                if let Ok(hdr) = &read
                    && hdr.durable_mark > off
                    && !moved_reported
                {
                    moved_reported = true;
                    report.skipped.push(Skipped {
                        segment: seg.n,
                        offset: off,
                        len: 0,
                        what: "record's durable mark is past its own offset: bytes before it were removed",
                    });
                }
                match read {
                    Ok(hdr) if hdr.marker => {
                        // Proof of durability only; nothing to replay.
                        report.sync_markers += 1;
                        off += hdr.total_len();
                    }
                    Ok(hdr) => {
                        let batch = Batch::decode(r.body.get(..hdr.len as usize).unwrap_or(&[]));
                        let Ok(batch) = batch else {
                            // Authenticated yet malformed: written that way,
                            // which the writer cannot do. Never skip it.
                            return Err(Error::Corruption {
                                segment: seg.n,
                                offset: off,
                                what: "an authenticated record holds a malformed batch",
                            });
                        };
                        if hdr.seq >= from {
                            replay(Seq(hdr.seq), batch).map_err(|source| Error::Replay {
                                seq: hdr.seq,
                                source,
                            })?;
                            report.records_replayed += 1;
                        }
                        report.last_seq = Some(Seq(hdr.seq));
                        next = hdr.seq + 1;
                        off += hdr.total_len();
                    }
                    Err(what) => {
                        // Damage at `off`. Look for valid records after it.
                        let bad = off;
                        let mut found: Option<Found> = None;
                        let mut discarded = 0u64;
                        let mut proven = !is_last;
                        // Start at `bad` itself: a valid record out of
                        // sequence there is evidence too.
                        let mut p = bad;
                        // Work allowed to the whole scan (see find_valid).
                        let limit = r.reader.work() + SCAN_WORK_FACTOR * seg.len + SCAN_WORK_SLACK;
                        while let Some(f) = r.find_valid(p, next, limit)? {
                            if found.is_none() {
                                found = Some(Found {
                                    off: f.off,
                                    hdr: f.hdr,
                                });
                            }
                            discarded += 1;
                            if f.hdr.durable_mark > bad {
                                proven = true;
                            }
                            if proven || mode == RecoveryMode::SkipAnyCorruptedRecords {
                                break;
                            }
                            p = f.off + f.hdr.total_len();
                        }
                        let zero_tail = found.is_none() && r.reader.zero_from(bad)?;
                        let corruption = Error::Corruption {
                            segment: seg.n,
                            offset: bad,
                            what,
                        };
                        match mode {
                            RecoveryMode::SkipAnyCorruptedRecords => {
                                if let Some(f) = found {
                                    // Resume at the record found, expecting
                                    // its sequence: the strict read then
                                    // takes what the scan took. One found at
                                    // the damage offset itself would fail
                                    // the same way again: refuse rather
                                    // than loop.
                                    if f.off == bad && f.hdr.seq == next {
                                        return Err(corruption);
                                    }
                                    report.skipped.push(Skipped {
                                        segment: seg.n,
                                        offset: bad,
                                        len: f.off - bad,
                                        what,
                                    });
                                    off = f.off;
                                    next = f.hdr.seq;
                                    continue;
                                }
                                if !is_last {
                                    report.skipped.push(Skipped {
                                        segment: seg.n,
                                        offset: bad,
                                        len: seg.len - bad,
                                        what,
                                    });
                                    expected = Some(next);
                                    continue 'segments;
                                }
                            }
                            RecoveryMode::TolerateCorruptedTailRecords if proven => {
                                return Err(corruption);
                            }
                            RecoveryMode::AbsoluteConsistency if !(is_last && zero_tail) => {
                                return Err(corruption);
                            }
                            RecoveryMode::PointInTimeRecovery if proven => {
                                self.cut(seg, bad)?;
                                report.skipped.push(Skipped {
                                    segment: seg.n,
                                    offset: bad,
                                    len: seg.len - bad,
                                    what,
                                });
                                stop_at = Some(i + 1);
                                expected = Some(next);
                                break 'segments;
                            }
                            _ => {}
                        }
                        // A torn tail: cut it durably before anything new
                        // is written, so the next crash cannot make it look
                        // like damage in the middle of the log.
                        self.cut(seg, bad)?;
                        report.torn_tail = Some(TornTail {
                            segment: seg.n,
                            offset: bad,
                            bytes_cut: seg.len - bad,
                            records_discarded: discarded,
                        });
                        break;
                    }
                }
            }
            expected = Some(next);
        }
        if let Some(i) = stop_at {
            for s in segs.get(i..).unwrap_or(&[]) {
                kept.remove(&s.n);
                self.remove(s, &mut report)?;
                removed_any = true;
            }
        }
        // What was replayed may still sit unsynced in the OS cache (a
        // previous session under `Never` or `Interval` that died without
        // a power cut). Make it durable before the new session writes a
        // segment after it: otherwise a later power cut could lose the end
        // of this segment while keeping the next one — a hole in the
        // middle of the log.
        for s in &segs {
            if kept.contains_key(&s.n) && !self.read_only {
                s.file.sync_data().map_err(io(FileOp::Sync, &s.path))?;
            }
        }
        // Every record kept is older than `first_seq` (the engine flushed
        // past the end of the log): the segments are obsolete, and keeping
        // them would leave a sequence gap before the new segment.
        if expected.is_some_and(|e| e < from) {
            for s in &segs {
                if kept.remove(&s.n).is_some() {
                    self.remove(s, &mut report)?;
                    removed_any = true;
                }
            }
        }
        if removed_any && !self.read_only {
            self.vfs
                .sync_dir(self.dir)
                .map_err(io(FileOp::SyncDir, self.dir))?;
        }
        let next_seq = expected.unwrap_or(from).max(from);
        // The new segment follows the last one kept: numbering it after a
        // removed one (torn while being created, or cut by a point-in-time
        // recovery) would leave a gap the next open calls corruption. A
        // reused number is safe: the removal is durable (directory fsynced
        // above) and the new segment's session has a new salt.
        let max_segment = kept.keys().next_back().copied().unwrap_or(max_segment);
        Ok(Recovered {
            report,
            next_seq,
            segments: kept,
            max_segment,
        })
    }
}

/// How strictly [`read_record`] checks a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The record expected next: sequence `next` exactly, and a durable
    /// mark at or before the record (the writer never claims more).
    Next,
    /// The same, but a durable mark past the record is taken: bytes before
    /// it were removed. Skip mode replays every record that authenticates
    /// in sequence, wherever it now sits.
    NextMoved,
    /// The damage scan: the sequence may fall in a window at or past
    /// `next`, and a mark past the record is evidence of removed bytes.
    Scan,
}

/// One segment's records as recovery reads them: the reader, how the
/// segment's records are verified, and the buffer a record's body is
/// opened into.
struct Records<'a> {
    reader: SegmentReader,
    verify: &'a Verify,
    /// The segment's record context (bound into every record's AAD).
    ctx: [u8; crate::format::CTX_LEN],
    /// Whether the segment's format has sync markers.
    markers: bool,
    segment: u64,
    /// The plaintext body of the last record read.
    body: &'a mut Vec<u8>,
}

impl Records<'_> {
    /// Reads and verifies the record at `off` under `check`. On success
    /// the plaintext body is in `self.body[..len]`.
    fn read(
        &mut self,
        off: u64,
        next: u64,
        check: Check,
    ) -> Result<Result<RecordHeader, &'static str>> {
        let r = &mut self.reader;
        let body = &mut *self.body;
        let Some(head) = r.get(off, RECORD_HEADER_LEN)? else {
            return Ok(Err("record header cut short"));
        };
        let mut head_bytes = [0u8; RECORD_HEADER_LEN];
        head_bytes.copy_from_slice(head);
        let Some(hdr) = RecordHeader::decode(&head_bytes) else {
            return Ok(Err("record header is malformed"));
        };
        // A marker is written at the synced end, right after the fsync: its
        // mark is its own offset, and it has no body. Only version 2 has them.
        if hdr.marker && (!self.markers || hdr.len != 0 || hdr.durable_mark != off) {
            return Ok(Err("sync marker is malformed"));
        }
        let seq_ok = if check == Check::Scan {
            hdr.seq >= next && hdr.seq - next < SEQ_WINDOW
        } else {
            hdr.seq == next
        };
        if !seq_ok || hdr.seq > MAX_SEQ {
            return Ok(Err("record out of sequence"));
        }
        if hdr.len as usize > MAX_BODY_LEN {
            return Ok(Err("record length beyond the limit"));
        }
        // A mark past the record's own offset means bytes before it were
        // removed; the damage scan treats it as proof of corruption.
        if hdr.durable_mark < HEADER_LEN as u64 {
            return Ok(Err("record's durable mark is impossible"));
        }
        // A strict read also wants the mark at or before the record (the
        // writer never claims more than was synced before it). A scan takes
        // such a record as evidence instead: bytes before it were removed.
        if check == Check::Next && hdr.durable_mark > off {
            return Ok(Err("record's durable mark is past its own offset"));
        }
        if off + hdr.total_len() > r.len() {
            return Ok(Err("record cut short"));
        }
        let n = hdr.len as usize + TAG_LEN;
        let Some(bt) = r.get(off + RECORD_HEADER_LEN as u64, n)? else {
            return Ok(Err("record cut short"));
        };
        body.clear();
        body.extend_from_slice(bt);
        r.charge(n as u64);
        if !self
            .verify
            .record(&self.ctx, &head_bytes, hdr.counter, body)
        {
            return Ok(Err("record fails authentication"));
        }
        Ok(Ok(hdr))
    }

    /// The first valid record at or after `from`, scanning byte by byte.
    ///
    /// A scan stops with Corruption (never a cut) once the reader's work
    /// passes `limit`: a value full of fake record headers would otherwise make
    /// it read and check a body at nearly every byte (quadratic).
    fn find_valid(&mut self, from: u64, next: u64, limit: u64) -> Result<Option<Found>> {
        let mut p = from;
        while p + (RECORD_HEADER_LEN + TAG_LEN) as u64 <= self.reader.len() {
            if self.reader.work() > limit {
                return Err(Error::Corruption {
                    segment: self.segment,
                    offset: from,
                    what: "damage scan gave up: too many candidate records",
                });
            }
            if let Ok(hdr) = self.read(p, next, Check::Scan)? {
                return Ok(Some(Found { off: p, hdr }));
            }
            p += 1;
        }
        Ok(None)
    }
}
