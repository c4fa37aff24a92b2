//! The interval syncer: under `SyncMode::Interval`, a thread that fsyncs
//! what is written but not yet durable, whenever no leader is busy.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::group::Mark;
use super::{Shared, Wal};

pub(super) fn spawn_syncer(shared: Weak<Shared>, every: Duration) -> JoinHandle<()> {
    std::thread::spawn(move || {
        loop {
            std::thread::park_timeout(every);
            let Some(sh) = shared.upgrade() else { return };
            if sh.stop.load(Ordering::SeqCst) {
                return;
            }
            sh.background_sync();
        }
    })
}

impl Shared {
    /// The interval syncer's tick: fsync if anything is unsynced and no
    /// leader is busy (a busy leader syncs on its own schedule).
    fn background_sync(&self) {
        let mut st = self.state.lock();
        if st.leader || st.poisoned.is_some() || st.durable_seq >= st.written_seq {
            return;
        }
        st.leader = true;
        drop(st);
        let r = {
            let mut cur = self.current.lock();
            self.sync_current(&mut cur, Mark::Yes)
        };
        if let Err(e) = r {
            self.state.lock().poisoned.get_or_insert(Arc::new(e));
        }
        self.lead();
    }
}

impl Wal {
    pub(super) fn stop_syncer(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.syncer.take() {
            if self.shared.check_process().is_err() {
                // A forked child: the syncer is a thread of the parent,
                // which does not exist here to be joined.
                std::mem::forget(h);
                return;
            }
            h.thread().unpark();
            let _ = h.join();
        }
    }
}
