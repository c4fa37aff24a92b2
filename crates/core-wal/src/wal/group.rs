//! Group commit: an append reserves its place under the lock, seals
//! outside it, and whoever finds no leader and the oldest slot ready leads:
//! it writes every ready record with one write and fsyncs once (per the
//! sync mode), then a sync marker when the log goes idle.

use std::sync::Arc;
use std::time::Instant;

use sealkv_crypto_envelope::CryptoError;
use sealkv_fileio::FileOp;

use super::{Current, Ready, Shared, State, Wal, io_err};
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, RECORD_HEADER_LEN, RECORD_OVERHEAD, RecordHeader};
use crate::options::{Durability, Seq, SyncMode};
use crate::recovery::MAX_BODY_LEN;
use parking_lot::MutexGuard;

/// Whether [`Shared::sync_current`] writes a sync marker after its fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    No,
    Yes,
    /// Only if no record is reserved (the log is idle).
    IfIdle,
}

/// Record buffers kept for reuse, and the largest one kept.
const POOL_MAX: usize = 64;
const POOL_BUF_MAX: usize = 1 << 20;
/// A commit group stops growing past this many bytes.
const GROUP_MAX: usize = 4 << 20;

impl Wal {
    /// Appends `batch` as one record and returns its sequence number once
    /// it is durable per the [`SyncMode`]. Concurrent appends share writes
    /// and fsyncs. An error means the outcome is unknown: the record may
    /// or may not be found after reopening.
    pub fn append(&self, batch: &Batch) -> Result<Seq> {
        match self.append_with(batch, Durability::AsConfigured, |_| true)? {
            Some(seq) => Ok(seq),
            // Admitted unconditionally above: never refused.
            None => Err(Error::InvalidOptions("the append was not admitted")),
        }
    }

    /// [`append`](Wal::append) with the acknowledgement `durability` asks
    /// for, and an admission check: `admit` runs under the log's
    /// reservation lock with the sequence number the record would get,
    /// before anything is reserved. If it says no, nothing is appended and
    /// the answer is `Ok(None)`; if yes, the record takes that number and
    /// no other append can be numbered between the check and it. (The
    /// engine checks a transaction's reads against the batches numbered
    /// after its snapshot there.) `admit` must be quick: every appender
    /// waits for it.
    pub fn append_with(
        &self,
        batch: &Batch,
        durability: Durability,
        admit: impl FnOnce(Seq) -> bool,
    ) -> Result<Option<Seq>> {
        let sh = &*self.shared;
        let body = batch.encoded();
        if body.len() > MAX_BODY_LEN {
            return Err(Error::RecordTooLarge {
                len: body.len(),
                max: MAX_BODY_LEN,
            });
        }
        let total = body.len() + RECORD_OVERHEAD;
        sh.check_process()?;
        let mut st = sh.state.lock();
        if let Some(p) = &st.poisoned {
            return Err(Error::Poisoned { cause: p.clone() });
        }
        if st.closed {
            return Err(Error::Closed);
        }
        let ticket = match st.sealing.protect.draw() {
            Ok(t) => t,
            // A session that has spent its nonces is replaced: nothing is
            // sealed again under an earlier session's subkey; its records
            // go to a new segment.
            Err(Error::Crypto(CryptoError::SessionExhausted(_))) => {
                sh.rotate_session(&mut st)?;
                st.sealing.protect.draw()?
            }
            Err(e) => return Err(e),
        };
        // Admission comes after everything that can fail before the record
        // is numbered, so an admitted batch always takes `next_seq`. A
        // refused one leaves its nonce counter unused (counters only need
        // to be unique, not dense).
        if !admit(Seq(st.next_seq)) {
            return Ok(None);
        }
        let sealing = st.sealing.clone();
        let mut buf = st.pool.pop().unwrap_or_default();
        // Reserve: sequence, segment (rotating by size), durable mark.
        if st.res_end > HEADER_LEN as u64 && st.res_end + total as u64 > sh.segment_size {
            st.res_segment += 1;
            st.res_end = HEADER_LEN as u64;
            st.res_ctx = sealing.session.header(st.res_segment, 0, 0).context();
            let n = st.res_segment;
            st.res_sealing.insert(n, sealing.clone());
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let segment = st.res_segment;
        let durable_mark = if st.synced_segment == segment {
            st.synced_end
        } else {
            HEADER_LEN as u64
        };
        debug_assert!(durable_mark <= st.res_end);
        st.res_end += total as u64;
        let ctx = st.res_ctx;
        st.slots.push_back(None);
        drop(st);
        let sync = match durability {
            Durability::AsConfigured => sh.sync_mode == SyncMode::Always,
            Durability::Sync => true,
            Durability::Buffered => false,
        };

        // Encode and seal outside the lock.
        buf.clear();
        buf.reserve(total);
        buf.resize(RECORD_HEADER_LEN, 0);
        buf.extend_from_slice(body);
        buf.resize(total, 0);
        let hdr = RecordHeader {
            len: body.len() as u32,
            marker: false,
            seq,
            counter: ticket.as_ref().map_or(0, |t| t.counter()),
            durable_mark,
        };
        hdr.encode_into(&mut buf);
        let sealed = sealing.protect.seal_record(ticket, &ctx, &mut buf);

        let mut st = sh.state.lock();
        if let Err(e) = sealed {
            // The sequence number is lost; later records can never be
            // written in order. Poison the log.
            let e = Arc::new(e);
            st.poisoned.get_or_insert(e.clone());
            sh.cond.notify_all();
            return Err(Error::Poisoned { cause: e });
        }
        let idx = (seq - st.slot_base) as usize;
        if let Some(slot) = st.slots.get_mut(idx) {
            *slot = Some(Ready {
                seq,
                segment,
                buf,
                sync,
                sealing,
            });
        }
        st.stats.appends += 1;
        self.wait(st, seq, sync)?;
        Ok(Some(Seq(seq)))
    }

    /// Waits until `seq` is written (or durable, with `durable`), leading
    /// commit groups whenever nobody else is.
    fn wait<'a>(&'a self, mut st: MutexGuard<'a, State>, seq: u64, durable: bool) -> Result<()> {
        let sh = &*self.shared;
        loop {
            let done = if durable {
                st.durable_seq >= seq
            } else {
                st.written_seq >= seq
            };
            if done {
                return Ok(());
            }
            if let Some(p) = &st.poisoned {
                return Err(Error::Poisoned { cause: p.clone() });
            }
            if !st.leader && matches!(st.slots.front(), Some(Some(_))) {
                st.leader = true;
                drop(st);
                self.shared.lead();
                st = sh.state.lock();
                continue;
            }
            st = sh.wait_on(st);
        }
    }

    /// Takes the leader role once every reserved record is written; runs
    /// `f` on the current segment, then leads whatever queued meanwhile.
    pub(super) fn exclusive<T>(
        &self,
        f: impl FnOnce(&Shared, &mut Current) -> Result<T>,
    ) -> Result<T> {
        let sh = &*self.shared;
        sh.check_process()?;
        let mut st = sh.state.lock();
        loop {
            if let Some(p) = &st.poisoned {
                return Err(Error::Poisoned { cause: p.clone() });
            }
            if !st.leader {
                if st.slots.is_empty() {
                    break;
                }
                if matches!(st.slots.front(), Some(Some(_))) {
                    st.leader = true;
                    drop(st);
                    sh.lead();
                    st = sh.state.lock();
                    continue;
                }
            }
            st = sh.wait_on(st);
        }
        st.leader = true;
        drop(st);
        let out = {
            let mut cur = sh.current.lock();
            f(sh, &mut cur)
        };
        let out = out.map_err(|e| {
            // A failed fsync, write or segment creation: the state of the
            // file is unknown, so the log takes no more appends.
            let e = Arc::new(e);
            sh.state.lock().poisoned.get_or_insert(e.clone());
            Error::Poisoned { cause: e }
        });
        sh.lead();
        out
    }
}

impl Shared {
    /// Leads commit groups until no ready record is left, then gives up
    /// the role. Called with `state.leader` set by the caller.
    pub(super) fn lead(&self) {
        let mut cur = self.current.lock();
        loop {
            // Take the ready records at the front, one segment at a time.
            let mut taken = std::mem::take(&mut cur.taken);
            let mut st = self.state.lock();
            if st.poisoned.is_none() {
                let mut bytes = 0usize;
                let mut seg = None;
                while let Some(Some(r)) = st.slots.front() {
                    if seg.is_some_and(|s| s != r.segment) || bytes >= GROUP_MAX {
                        break;
                    }
                    seg = Some(r.segment);
                    bytes += r.buf.len();
                    if let Some(Some(r)) = st.slots.pop_front() {
                        taken.push(r);
                    }
                    st.slot_base += 1;
                }
            }
            if taken.is_empty() {
                st.leader = false;
                let wake = st.waiters > 0;
                drop(st);
                cur.taken = taken;
                if wake {
                    self.cond.notify_all();
                }
                return;
            }
            drop(st);
            let result = self.commit(&mut cur, &taken);
            let mut st = self.state.lock();
            match result {
                Ok(synced) => {
                    let last = taken.last().map_or(0, |r| r.seq);
                    st.written_seq = last;
                    if synced {
                        st.durable_seq = last;
                    }
                    st.synced_segment = cur.segment;
                    st.synced_end = cur.synced;
                }
                Err(e) => {
                    st.poisoned.get_or_insert(Arc::new(e));
                }
            }
            for r in taken.drain(..) {
                // Keep ordinary buffers; let a huge one go.
                if st.pool.len() < POOL_MAX && r.buf.capacity() <= POOL_BUF_MAX {
                    st.pool.push(r.buf);
                }
            }
            // A notify is a syscall; skip it when nobody waits (a waiter
            // checks its condition under this lock before it sleeps).
            let wake = st.waiters > 0;
            drop(st);
            cur.taken = taken;
            if wake {
                self.cond.notify_all();
            }
        }
    }

    /// Sleeps on `cond`, counted in `waiters`.
    fn wait_on<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.waiters += 1;
        self.cond.wait(&mut st);
        st.waiters -= 1;
        st
    }

    /// Writes one group; returns whether it was fsynced.
    fn commit(&self, cur: &mut Current, taken: &[Ready]) -> Result<bool> {
        if let Some(r) = taken.first()
            && r.segment != cur.segment
        {
            self.switch(cur, r.segment, r.seq, &r.sealing)?;
        }
        let bytes: usize = taken.iter().map(|r| r.buf.len()).sum();
        let result = if let [one] = taken {
            cur.file.write_all_at(&one.buf, cur.end)
        } else {
            let mut group = std::mem::take(&mut cur.group);
            group.clear();
            for r in taken {
                group.extend_from_slice(&r.buf);
            }
            let r = cur.file.write_all_at(&group, cur.end);
            cur.group = group;
            r
        };
        result.map_err(io_err(FileOp::Write, &cur.path))?;
        cur.end += bytes as u64;
        cur.records_end = cur.end;
        if let Some(r) = taken.last() {
            cur.next_seq = r.seq + 1;
        }
        {
            let mut st = self.state.lock();
            st.stats.writes += 1;
            st.stats.bytes_written += bytes as u64;
            // Written to the OS: what an fsync from here on makes durable.
            if let Some(r) = taken.last() {
                st.written_seq = r.seq;
            }
        }
        // A record whose appender waits for an fsync gets one, whatever the
        // mode; under `Always` that is every record not asked to be
        // buffered.
        let sync = taken.iter().any(|r| r.sync)
            || match self.sync_mode {
                SyncMode::Always | SyncMode::Never => false,
                SyncMode::Interval(d) => cur.last_sync.elapsed() >= d,
            };
        if sync {
            self.sync_current(cur, Mark::IfIdle)?;
        }
        Ok(sync)
    }

    /// fsyncs the current segment if it has unsynced bytes; with `mark`,
    /// then writes a sync marker if the fsync covered records that nothing
    /// written after them vouches for yet. The marker itself is left
    /// unsynced (the next fsync covers it; [`Shared::seal_tail`] syncs it).
    pub(super) fn sync_current(&self, cur: &mut Current, mark: Mark) -> Result<()> {
        if cur.synced < cur.end {
            cur.file
                .sync_data()
                .map_err(io_err(FileOp::Sync, &cur.path))?;
            cur.synced = cur.end;
            self.state.lock().stats.syncs += 1;
        }
        cur.last_sync = Instant::now();
        // Durable now, whatever happens to the marker.
        let idle = {
            let mut st = self.state.lock();
            st.synced_segment = cur.segment;
            st.synced_end = cur.synced;
            st.durable_seq = st.written_seq;
            st.slots.is_empty()
        };
        let want = match mark {
            Mark::No => false,
            Mark::Yes => true,
            // A record reserved meanwhile will be written and fsynced in
            // its own group, which decides again: a marker is only worth
            // its write when the log goes idle.
            Mark::IfIdle => idle,
        };
        if want && cur.records_end > cur.claimed && cur.synced >= cur.records_end {
            self.write_marker(cur)?;
        }
        Ok(())
    }

    /// fsyncs the current segment, writes a sync marker if one is due, and
    /// fsyncs that too: the segment's end is durable and proven (before a
    /// roll or a close, when nothing may follow it in this segment).
    pub(super) fn seal_tail(&self, cur: &mut Current) -> Result<()> {
        self.sync_current(cur, Mark::Yes)?;
        self.sync_current(cur, Mark::No)
    }

    /// Writes a sync marker at the end of the current segment, right after
    /// an fsync: a sealed, empty record whose durable mark is its own
    /// offset. Recovery takes it as proof that every byte before it was
    /// durable, so damage there is `Corruption`, never a torn tail.
    fn write_marker(&self, cur: &mut Current) -> Result<()> {
        debug_assert_eq!(cur.synced, cur.end, "a marker follows an fsync");
        let ticket = match cur.sealing.protect.draw() {
            Ok(t) => t,
            // The session has spent its nonces: the next append moves to a
            // new session and segment, whose records carry marks. Without
            // the marker this tail is only as well proven as before.
            Err(Error::Crypto(CryptoError::SessionExhausted(_))) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut rec = [0u8; RECORD_OVERHEAD];
        RecordHeader {
            len: 0,
            marker: true,
            seq: cur.next_seq,
            counter: ticket.as_ref().map_or(0, |t| t.counter()),
            durable_mark: cur.end,
        }
        .encode_into(&mut rec);
        cur.sealing
            .protect
            .seal_record(ticket, &cur.ctx, &mut rec)?;
        if cur.file.write_all_at(&rec, cur.end).is_err() {
            // The marker is an extra proof, not a promise: the records
            // before it are durable already. Take back whatever part of it
            // reached the file, so it can never sit as garbage before a
            // later record or segment; only if that fails too is the file's
            // state unknown.
            cur.file
                .set_len(cur.end)
                .map_err(io_err(FileOp::SetLen, &cur.path))?;
            self.state.lock().stats.sync_marker_failures += 1;
            return Ok(());
        }
        cur.claimed = cur.end;
        cur.end += RECORD_OVERHEAD as u64;
        let mut st = self.state.lock();
        st.stats.sync_markers += 1;
        st.stats.bytes_written += RECORD_OVERHEAD as u64;
        // Keep the size accounting of reservations in step with the file.
        if st.res_segment == cur.segment {
            st.res_end += RECORD_OVERHEAD as u64;
        }
        Ok(())
    }
}
