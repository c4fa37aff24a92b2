//! `Db::verify` while the flusher thread is inside a page-file commit.
//!
//! Both `engine_ops` fuzz findings ran `verify()` right after writes that
//! froze a memtable, so a background flush could still be committing while
//! it walked the file. This pauses the flusher at each write and fsync of
//! the page file in turn, calls `verify()` there, and requires it clean: a
//! commit in progress is not damage. The flusher is let go only once
//! `verify()` has met the commit — it logs that it waits for it (it holds
//! commits off) — so the two overlap at every pause point.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use sealkv::Db;
use sealkv_fileio::SimVfs;

use crate::hookvfs::HookVfs;
use crate::support::{modes, sim_config};

#[derive(Debug, Default)]
struct Gate {
    /// Page-file writes and fsyncs the flusher thread made so far.
    seen: u64,
    /// The one to stop before.
    stop_at: u64,
    paused: bool,
    go: bool,
}

/// Stops the flusher thread before its `stop_at`-th page-file write or
/// fsync until the test lets it go.
#[derive(Debug, Clone, Default)]
struct PauseVfs {
    sim: SimVfs,
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

impl PauseVfs {
    fn point(&self) {
        if std::thread::current().name() != Some("sealkv-flush") {
            return;
        }
        let (m, cv) = &*self.gate;
        let mut g = m.lock().unwrap();
        g.seen += 1;
        if g.seen == g.stop_at {
            g.paused = true;
            cv.notify_all();
            while !g.go {
                g = cv.wait(g).unwrap();
            }
        }
    }

    /// Whether the flusher is paused now (and not let go).
    fn is_paused(&self) -> bool {
        let g = self.gate.0.lock().unwrap();
        g.paused && !g.go
    }

    /// Waits until the flusher is paused; false if it never got there.
    fn wait_paused(&self) -> bool {
        let (m, cv) = &*self.gate;
        let g = m.lock().unwrap();
        let (g, _) = cv
            .wait_timeout_while(g, Duration::from_secs(10), |g| !g.paused)
            .unwrap();
        g.paused
    }

    /// The simulated disk, pausing here before page-file writes and fsyncs.
    fn vfs(&self) -> HookVfs {
        let me = self.clone();
        HookVfs::new(self.sim.clone(), move |_| {
            me.point();
            Ok(())
        })
    }

    fn release(&self) {
        let (m, cv) = &*self.gate;
        m.lock().unwrap().go = true;
        cv.notify_all();
    }
}

/// A database with free pages to reuse (three rounds of overwrites, each
/// flushed), then enough writes to freeze a memtable: the flusher thread
/// starts a commit that reuses them. Pauses it before its `stop_at`-th
/// page-file write or fsync and returns what `verify()` found there; with
/// `stop_at` 0, lets it run and returns `Err(how many there are)`.
fn run_with_pause(
    alg: Option<sealkv::crypto::EncryptionAlgorithm>,
    stop_at: u64,
) -> Result<Vec<String>, u64> {
    let vfs = PauseVfs::default();
    vfs.gate.0.lock().unwrap().stop_at = stop_at;
    let config = sim_config(&vfs.sim, alg).vfs(Arc::new(vfs.vfs()));
    let db = Db::open_with_config(config).unwrap();
    for round in 0..3u8 {
        for i in 0..40u32 {
            db.put(i.to_be_bytes(), vec![round; 1000]).unwrap();
        }
        db.flush().unwrap();
    }
    // Past the 64 KiB flush size: the last put freezes and wakes the
    // flusher.
    for i in 0..80u32 {
        db.put(i.to_be_bytes(), vec![9; 1000]).unwrap();
    }
    if stop_at == 0 {
        // Counting run: let the flusher finish (polled: nothing to race
        // here), report its pause points.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while db.stats().unwrap().flushes < 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "the flusher never ran"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let seen = vfs.gate.0.lock().unwrap().seen;
        db.close().unwrap();
        return Err(seen);
    }
    let paused = vfs.wait_paused();
    assert!(paused, "{alg:?}: the flusher reached pause point {stop_at}");
    let findings = {
        // On its own thread: a verify that holds commits off waits for the
        // paused one.
        let db = db.clone();
        let (tx, rx) = mpsc::channel();
        let verify = std::thread::spawn(move || {
            let log = WaitLog(Mutex::new(tx.clone()));
            let report = tracing::subscriber::with_default(log, || db.verify().unwrap());
            let _ = tx.send(Step::Done);
            report
        });
        // The overlap: verify meets the commit while the flusher is still
        // paused inside it, and (it holds commits off) waits for it.
        let first = first_step(&rx, alg, stop_at);
        assert!(
            vfs.is_paused(),
            "{alg:?} #{stop_at}: the flusher went on before verify met it"
        );
        assert_eq!(first, Step::Waits, "{alg:?} #{stop_at}");
        vfs.release();
        let report = verify.join().unwrap();
        report
            .findings
            .iter()
            .map(|f| f.what.clone())
            .collect::<Vec<_>>()
    };
    db.flush().unwrap();
    let after = db.verify().unwrap();
    assert!(
        after.is_clean(),
        "{alg:?}: after the flush: {:?}",
        after.findings
    );
    for i in 0..80u32 {
        assert_eq!(db.get(i.to_be_bytes()).unwrap(), Some(vec![9; 1000]));
    }
    db.close().unwrap();
    Ok(findings)
}

#[test]
fn verify_during_a_background_commit_finds_nothing() {
    for alg in modes() {
        let points = run_with_pause(alg, 0).unwrap_err();
        let mut bad = Vec::new();
        for stop_at in 1..=points {
            let findings = run_with_pause(alg, stop_at).unwrap();
            if !findings.is_empty() {
                bad.push((stop_at, findings));
            }
        }
        assert!(points >= 3, "{alg:?}: the flush wrote pages and its meta");
        assert!(bad.is_empty(), "{alg:?}: {points} pause points: {bad:?}");
    }
}

/// What the verify thread told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// It waits for a commit in progress.
    Waits,
    /// It returned.
    Done,
}

/// The first thing the verify thread tells (within a minute).
fn first_step(
    rx: &Receiver<Step>,
    alg: Option<sealkv::crypto::EncryptionAlgorithm>,
    stop_at: u64,
) -> Step {
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{alg:?} #{stop_at}: verify told nothing: {e}"))
}

/// The verify thread's own `tracing` subscriber (scoped to that thread):
/// tells the test when `Db::verify` logs that it waits for a commit.
struct WaitLog(Mutex<Sender<Step>>);

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for WaitLog {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        if m.0 == "verify waits for a commit in progress" {
            let _ = self.0.lock().unwrap().send(Step::Waits);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
