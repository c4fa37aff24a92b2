//! The background flusher: turns frozen memtables into page-file commits.
//!
//! One thread per open database. It wakes when a memtable is frozen, when
//! `wal_flush_interval` passes, or at shutdown; it holds only a weak
//! reference to the database, so dropping the last `Db` handle ends it.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::db::Inner;

/// What wakes the flusher.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    /// Frozen memtables are waiting.
    pub(crate) work: bool,
    /// The database is closing.
    pub(crate) stop: bool,
}

/// The flusher's mailbox and the condition writers wait on for backlog.
#[derive(Debug, Default)]
pub(crate) struct FlushSignal {
    pub(crate) state: Mutex<Signal>,
    pub(crate) wake: Condvar,
    /// Notified after each flush (writers waiting on backlog, `flush()`).
    pub(crate) done: Condvar,
}

impl FlushSignal {
    /// Asks the flusher to run.
    pub(crate) fn kick(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.work = true;
        self.wake.notify_all();
    }

    /// Asks the flusher to stop.
    pub(crate) fn stop(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.stop = true;
        self.wake.notify_all();
        self.done.notify_all();
    }
}

/// Starts the flusher thread for `db`.
pub(crate) fn spawn(
    db: Weak<Inner>,
    signal: Arc<FlushSignal>,
    interval: Option<Duration>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sealkv-flush".into())
        .spawn(move || run(db, signal, interval))
}

fn run(db: Weak<Inner>, signal: Arc<FlushSignal>, interval: Option<Duration>) {
    let tick = interval.unwrap_or(Duration::from_secs(3600));
    let mut last = Instant::now();
    loop {
        {
            let mut st = signal.state.lock().unwrap_or_else(|p| p.into_inner());
            while !st.work && !st.stop {
                let elapsed = last.elapsed();
                if interval.is_some() && elapsed >= tick {
                    break;
                }
                let wait = tick.saturating_sub(elapsed);
                st = signal
                    .wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if st.stop {
                return;
            }
            st.work = false;
        }
        let Some(db) = db.upgrade() else { return };
        let by_interval = interval.is_some_and(|_| last.elapsed() >= tick);
        last = Instant::now();
        // Errors poison the database inside `background_flush`; the thread
        // keeps running so `close()` can still join it.
        db.background_flush(by_interval);
        drop(db);
        signal.done.notify_all();
    }
}
