//! Segments: rolling to a new segment file, switching the leader to it,
//! moving to a new writer session, retiring segments a flush made obsolete,
//! and reading which data keys the live ones were sealed under.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv_crypto_envelope::KeyId;
use sealkv_fileio::{FileOp, OpenMode, Vfs, VfsFile};

use super::session::Sealing;
use super::{Current, Shared, State, Wal, io_err};
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, SegmentHeader, segment_path};
use crate::options::Seq;

impl Wal {
    /// Starts a new segment: the current one is fsynced, and every later
    /// record goes to a fresh segment (the engine rolls at each memtable
    /// freeze, so a flush can [`retire`](Wal::retire) whole segments).
    /// Returns the new segment's number. Rolling an empty segment is a
    /// no-op that returns it.
    pub fn roll(&self) -> Result<u64> {
        let sh = &*self.shared;
        sh.check_process()?;
        let target = {
            let mut st = sh.state.lock();
            if st.res_end > HEADER_LEN as u64 {
                st.res_segment += 1;
                st.res_end = HEADER_LEN as u64;
                st.res_ctx = st.sealing.session.header(st.res_segment, 0, 0).context();
                let (n, sealing) = (st.res_segment, st.sealing.clone());
                st.res_sealing.insert(n, sealing);
                st.stats.rolls += 1;
            }
            st.res_segment
        };
        self.create_reserved(target)
    }

    /// Starts a new writer session (a fresh salt, under the keyring's
    /// active data key) in a new segment, which it returns. The engine
    /// calls it after rotating the data key, so new records are sealed
    /// under the new key; the log also does it by itself when a session
    /// has spent its nonces.
    pub fn new_session(&self) -> Result<u64> {
        let sh = &*self.shared;
        sh.check_process()?;
        let target = {
            let mut st = sh.state.lock();
            if let Some(p) = &st.poisoned {
                return Err(Error::Poisoned { cause: p.clone() });
            }
            sh.rotate_session(&mut st)?;
            st.res_segment
        };
        self.create_reserved(target)
    }

    /// Syncs the current segment and creates segment `target` (reserved
    /// by the caller) unless a record already did.
    fn create_reserved(&self, target: u64) -> Result<u64> {
        // Every record reserved before is written once we lead; records
        // reserved after belong to `target` or later.
        self.exclusive(|sh, cur| {
            sh.seal_tail(cur)?;
            if cur.segment < target {
                // The session `target` was reserved under, not the current
                // one: another thread may have rotated it since.
                let (first_seq, sealing) = {
                    let st = sh.state.lock();
                    let sealing = st.res_sealing.get(&target).unwrap_or(&st.sealing);
                    (st.slot_base, sealing.clone())
                };
                sh.switch(cur, target, first_seq, &sealing)?;
            }
            Ok(target)
        })
    }

    /// Removes every segment whose records all have sequence numbers at or
    /// below `up_to` (a flush made them obsolete), never the one being
    /// written; the directory is fsynced after. Returns how many.
    pub fn retire(&self, up_to: Seq) -> Result<usize> {
        let sh = &*self.shared;
        sh.check_process()?;
        let victims: Vec<u64> = {
            let st = sh.state.lock();
            let firsts: Vec<(u64, u64)> = st.segments.iter().map(|(a, b)| (*a, *b)).collect();
            firsts
                .windows(2)
                .filter(|w| w[1].1 <= up_to.0.saturating_add(1))
                .map(|w| w[0].0)
                .collect()
        };
        if victims.is_empty() {
            return Ok(0);
        }
        for n in &victims {
            let path = segment_path(&sh.dir, *n);
            sh.vfs
                .remove_file(&path)
                .map_err(io_err(FileOp::Remove, &path))?;
            let mut st = sh.state.lock();
            st.segments.remove(n);
            st.stats.segments_retired += 1;
        }
        sh.vfs
            .sync_dir(&sh.dir)
            .map_err(io_err(FileOp::SyncDir, &sh.dir))?;
        tracing::debug!(
            up_to_seq = up_to.0,
            segments = ?victims,
            "WAL segments retired"
        );
        Ok(victims.len())
    }

    /// How many live segments (not yet retired) each data key id sealed,
    /// read from their headers (0 is plaintext). Used to decide when a
    /// data key can be retired: a segment under it must be retired first.
    pub fn key_usage(&self) -> Result<BTreeMap<KeyId, u64>> {
        let sh = &*self.shared;
        let live: Vec<u64> = sh.state.lock().segments.keys().copied().collect();
        let mut usage = BTreeMap::new();
        for n in live {
            let path = segment_path(&sh.dir, n);
            let file = match sh.vfs.open(&path, OpenMode::Read) {
                Ok(f) => f,
                // Retired meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(FileOp::Open, &path)(e)),
            };
            let mut bytes = [0u8; HEADER_LEN];
            file.read_exact_at(&mut bytes, 0)
                .map_err(io_err(FileOp::Read, &path))?;
            let h = SegmentHeader::decode(&bytes).ok_or(Error::Corruption {
                segment: n,
                offset: 0,
                what: "not a segment header of this format",
            })?;
            *usage.entry(h.dek).or_insert(0) += 1;
        }
        Ok(usage)
    }
}

impl Shared {
    /// Makes the current segment durable, then creates segment `n` (and
    /// any number between, empty, so numbers stay contiguous), each with
    /// its header and directory entry fsynced, and makes `n` current.
    /// Each segment gets the session it was reserved under; `sealing` is
    /// for any that has none recorded.
    pub(super) fn switch(
        &self,
        cur: &mut Current,
        n: u64,
        first_seq: u64,
        sealing: &Arc<Sealing>,
    ) -> Result<()> {
        debug_assert!(n > cur.segment);
        self.seal_tail(cur)?;
        while cur.segment < n {
            let next = cur.segment + 1;
            let reserved = self.state.lock().res_sealing.get(&next).cloned();
            let sealing = match reserved {
                Some(s) => s,
                None => Arc::clone(sealing),
            };
            let (file, path) = create_segment(&*self.vfs, &self.dir, &sealing, next, first_seq)?;
            cur.segment = next;
            cur.path = path;
            cur.file = file;
            cur.ctx = sealing.session.header(next, first_seq, 0).context();
            cur.sealing = sealing;
            cur.next_seq = first_seq;
            cur.end = HEADER_LEN as u64;
            cur.synced = HEADER_LEN as u64;
            cur.records_end = HEADER_LEN as u64;
            cur.claimed = HEADER_LEN as u64;
            let mut st = self.state.lock();
            st.segments.insert(next, first_seq);
            // Created: drop its reservation (and any older one).
            st.res_sealing = st.res_sealing.split_off(&(next + 1));
            st.stats.segments_created += 1;
            st.synced_segment = next;
            st.synced_end = HEADER_LEN as u64;
            tracing::debug!(
                segment = next,
                first_seq,
                data_key = %cur.sealing.session.dek,
                path = %cur.path.display(),
                "WAL segment started"
            );
        }
        Ok(())
    }

    /// Replaces the writer session; later reservations go to a new
    /// segment, since a segment's header names one session.
    pub(super) fn rotate_session(&self, st: &mut State) -> Result<()> {
        st.sealing = Arc::new(Sealing::start(self.keyring.as_ref(), self.db_id)?);
        st.res_segment += 1;
        st.res_end = HEADER_LEN as u64;
        st.res_ctx = st.sealing.session.header(st.res_segment, 0, 0).context();
        let (n, sealing) = (st.res_segment, st.sealing.clone());
        st.res_sealing.insert(n, sealing);
        st.stats.sessions += 1;
        Ok(())
    }
}

/// Creates segment `n`: header written and fsynced, directory fsynced.
pub(super) fn create_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    sealing: &Sealing,
    n: u64,
    first_seq: u64,
) -> Result<(Arc<dyn VfsFile>, PathBuf)> {
    let Sealing { protect, session } = sealing;
    let path = segment_path(dir, n);
    let ticket = protect.draw()?;
    let counter = ticket.as_ref().map_or(0, |t| t.counter());
    let mut header = session.header(n, first_seq, counter).encode();
    protect.seal_header(ticket, &mut header)?;
    let file = vfs
        .open(&path, OpenMode::CreateNew)
        .map_err(io_err(FileOp::Open, &path))?;
    file.write_all_at(&header, 0)
        .map_err(io_err(FileOp::Write, &path))?;
    file.sync_data().map_err(io_err(FileOp::Sync, &path))?;
    vfs.sync_dir(dir).map_err(io_err(FileOp::SyncDir, dir))?;
    Ok((file, path))
}
