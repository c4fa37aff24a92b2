//! Power cuts under the log store: what an fsync did not cover is lost
//! (or torn), unlike a killed process whose writes the OS still holds.
//!
//! A fixed workload of votes and appends runs through openraft's storage
//! API (each append waits for its callback) on a simulated disk. At every
//! write or fsync of the log database in turn, the disk is forked as a
//! power cut at that instant would leave it (unsynced writes lost, kept or
//! torn per sector); the same happens between every two operations. Each
//! fork is opened again and must hold every entry and the vote whose
//! callback or call returned before the cut, a hole-free log of exactly
//! the entries written, and a log openraft can append to.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
use parking_lot::Mutex;
use sealkv::Config;
use sealkv::crypto::{KeySource, MasterKey};
use sealkv_fileio::{SimVfs, Vfs};
use sealkv_raft::{Request, SealRaft, StoreOptions, open};
use sealkv_testkit::hook::{FileEvent, HookVfs};

const NODE: u64 = 1;

/// One step of the workload.
#[derive(Clone, Copy, Debug)]
enum Step {
    Vote(u64),
    /// Entries `from..=to`, in one append.
    Append(u64, u64),
}

/// Votes and appends of one to four entries, the term rising twice.
fn workload() -> Vec<Step> {
    let mut steps = vec![Step::Vote(1)];
    let mut next = 1;
    for i in 0..24u64 {
        if i == 8 || i == 16 {
            steps.push(Step::Vote(1 + i / 8));
        }
        let n = 1 + (i * 7) % 4;
        steps.push(Step::Append(next, next + n - 1));
        next += n;
    }
    steps
}

/// The term of entry `index` in [`workload`].
fn term_of(steps: &[Step], index: u64) -> u64 {
    let mut term = 0;
    for step in steps {
        match *step {
            Step::Vote(t) => term = t,
            Step::Append(from, to) if (from..=to).contains(&index) => return term,
            Step::Append(..) => {}
        }
    }
    panic!("entry {index} is not in the workload")
}

fn entry(term: u64, index: u64) -> Entry<SealRaft> {
    let mut value = format!("{term}-{index}-").into_bytes();
    value.resize(200 + (index as usize * 37) % 500, b'v');
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, NODE), index),
        payload: EntryPayload::Normal(Request::put(index.to_be_bytes().to_vec(), value)),
    }
}

/// How far the workload had come when a cut happened.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// The last entry whose append's callback had fired.
    acked: u64,
    /// The last entry handed to `append`.
    submitted: u64,
    /// The last vote whose `save_vote` had returned.
    vote: Option<Vote<u64>>,
    /// A step had started and not returned.
    in_flight: bool,
}

/// One power cut: the disk it left and how far the workload had come.
struct Cut {
    disk: SimVfs,
    at: Progress,
    what: String,
}

/// Watches the log database's writes and fsyncs, forking the disk at one.
struct Watch {
    progress: Mutex<Progress>,
    /// Writes and fsyncs of the log database since the workload began.
    ops: Mutex<u64>,
    armed: Mutex<bool>,
    /// Which op to cut at (1-based), and the seed of the torn writes.
    target: Option<(u64, u64)>,
    cut: Mutex<Option<Cut>>,
}

fn options(root: &Path, vfs: Arc<dyn Vfs>) -> StoreOptions {
    let key = MasterKey::from_hex(&"3c".repeat(32)).expect("key");
    let snapshot_key = KeySource::Key(key.clone());
    StoreOptions::new(root.to_path_buf(), move |p| {
        Config::new(p).encryption_key(key.clone()).vfs(vfs.clone())
    })
    .snapshot_key(snapshot_key)
}

/// Runs the workload on a new disk; returns the ops counted and the cuts
/// taken between steps (and the one at the target op, if it was reached).
fn run(root: &Path, target: Option<(u64, u64)>) -> (u64, Vec<Cut>) {
    let sim = SimVfs::new();
    let watch = Arc::new(Watch {
        progress: Mutex::new(Progress::default()),
        ops: Mutex::new(0),
        armed: Mutex::new(false),
        target,
        cut: Mutex::new(None),
    });
    let log_dir: PathBuf = root.join("log");
    let hook = {
        let watch = watch.clone();
        let sim = sim.clone();
        HookVfs::new(Arc::new(sim.clone()), move |event| {
            let counted = matches!(event, FileEvent::Write { .. } | FileEvent::Sync { .. });
            if !counted || !event.path().starts_with(&log_dir) || !*watch.armed.lock() {
                return Ok(());
            }
            let mut ops = watch.ops.lock();
            *ops += 1;
            if let Some((nth, seed)) = watch.target
                && *ops == nth
            {
                let at = *watch.progress.lock();
                let kind = match event {
                    FileEvent::Write { .. } => "write",
                    _ => "fsync",
                };
                *watch.cut.lock() = Some(Cut {
                    disk: sim.fork_crashed_torn(seed),
                    at,
                    what: format!("before {kind} #{nth} (seed {seed})"),
                });
            }
            Ok(())
        })
    };
    let steps = workload();
    let mut cuts = Vec::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut log, _sm) = open(options(root, Arc::new(hook))).expect("open");
        *watch.armed.lock() = true;
        for (i, step) in steps.iter().enumerate() {
            watch.progress.lock().in_flight = true;
            match *step {
                Step::Vote(term) => {
                    let vote = Vote::new(term, NODE);
                    log.save_vote(&vote).await.expect("save vote");
                    watch.progress.lock().vote = Some(vote);
                }
                Step::Append(from, to) => {
                    let entries: Vec<_> =
                        (from..=to).map(|i| entry(term_of(&steps, i), i)).collect();
                    watch.progress.lock().submitted = to;
                    log.blocking_append(entries).await.expect("append");
                    watch.progress.lock().acked = to;
                }
            }
            let at = {
                let mut p = watch.progress.lock();
                p.in_flight = false;
                *p
            };
            if target.is_none() {
                cuts.push(Cut {
                    disk: sim.fork_crashed_torn(i as u64),
                    at,
                    what: format!("after step {i} ({step:?})"),
                });
            }
        }
        *watch.armed.lock() = false;
    });
    let ops = *watch.ops.lock();
    cuts.extend(watch.cut.lock().take());
    (ops, cuts)
}

/// Opens the disk a cut left and checks the log on it.
fn check(root: &Path, cut: Cut) {
    let Cut { disk, at, what } = cut;
    let steps = workload();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut log, _sm) =
            open(options(root, Arc::new(disk))).unwrap_or_else(|e| panic!("{what}: open: {e}"));
        let vote = log.read_vote().await.expect("read vote");
        assert!(
            vote >= at.vote,
            "{what}: vote {vote:?} rolled back from {:?}",
            at.vote
        );
        let state = log.get_log_state().await.expect("log state");
        let last = state.last_log_id.map_or(0, |id| id.index);
        assert!(
            last >= at.acked,
            "{what}: the log ends at {last}, entry {} was acknowledged",
            at.acked
        );
        assert!(
            last <= at.submitted,
            "{what}: the log ends at {last}, only {} entries were written",
            at.submitted
        );
        let entries = log
            .try_get_log_entries(0..=last)
            .await
            .unwrap_or_else(|e| panic!("{what}: read: {e}"));
        let expected: Vec<_> = (1..=last).map(|i| entry(term_of(&steps, i), i)).collect();
        assert!(
            entries == expected,
            "{what}: the log is not the entries written"
        );
        // The log goes on from where it stopped.
        let next = entry(9, last + 1);
        log.blocking_append([next.clone()])
            .await
            .unwrap_or_else(|e| panic!("{what}: append after reopening: {e}"));
        let tail = log
            .try_get_log_entries(last + 1..)
            .await
            .expect("read the new tail");
        assert!(tail == vec![next], "{what}: the appended entry reads back");
    });
}

#[test]
fn power_cuts_never_lose_an_acknowledged_append_or_vote() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let root = temp.path().join("node");
    let (ops, between) = run(&root, None);
    assert!(ops > 50, "only {ops} writes and fsyncs of the log database");
    let mut cut_between = 0;
    for cut in between {
        assert!(!cut.at.in_flight);
        cut_between += 1;
        check(&root, cut);
    }
    let mut mid_append = 0;
    let mut mid_vote = 0;
    for nth in 1..=ops {
        for seed in [nth, nth + ops] {
            let (_, mut cuts) = run(&root, Some((nth, seed)));
            let cut = cuts
                .pop()
                .unwrap_or_else(|| panic!("op {nth} was not reached"));
            assert!(cut.at.in_flight, "{}: no step was running", cut.what);
            if cut.at.submitted > cut.at.acked {
                mid_append += 1;
            } else {
                mid_vote += 1;
            }
            check(&root, cut);
        }
    }
    eprintln!(
        "{cut_between} cuts between steps, {mid_append} mid-append, {mid_vote} mid-vote, \
         over {ops} writes and fsyncs"
    );
    assert!(cut_between >= 25, "{cut_between} cuts between steps");
    assert!(mid_append >= 50, "{mid_append} cuts mid-append");
    assert!(mid_vote >= 3, "{mid_vote} cuts mid-vote");
}
