//! A node's process killed in the middle of log writes: its log, reopened,
//! is a prefix-consistent continuation (no hole, no torn or misplaced
//! entry, every acknowledged append present) and openraft runs on it.
//!
//! The test re-runs its own binary as the child (`crash_child`, ignored
//! unless the parent names it), which appends, truncates and purges a
//! node's log through the storage API, printing `begin …` before and
//! `ack …` / `end …` after each operation. The parent SIGKILLs it right
//! after a chosen `begin` line, reopens the storage and checks it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Raft, RaftLogReader,
    RaftSnapshotBuilder, Vote,
};
use sealkv::crypto::MasterKey;
use sealkv_raft::local::Router;
use sealkv_raft::{LogStore, Request, SealRaft, StateMachine, open};

const CHILD_DIR: &str = "SEALKV_RAFT_CRASH_DIR";
const CHILD_SEED: &str = "SEALKV_RAFT_CRASH_SEED";
const NODE: u64 = 1;

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, NODE), index)
}

/// The value entry `(term, index)` carries: it names its own log id, so a
/// torn or misplaced entry shows.
fn value_of(term: u64, index: u64) -> Vec<u8> {
    let mut v = format!("{term}-{index}-").into_bytes();
    v.resize(300, b'x');
    v
}

fn entry(term: u64, index: u64) -> Entry<SealRaft> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::put(
            index.to_be_bytes().to_vec(),
            value_of(term, index),
        )),
    }
}

fn storage(dir: &std::path::Path, key: &MasterKey) -> (LogStore, StateMachine) {
    let options = common::node_options(dir, NODE, Some(key.clone()), Some(key));
    open(options).expect("open node storage")
}

/// The node's key (parent and child are separate processes; a fixed key
/// keeps it off the command line and the environment).
fn test_key() -> MasterKey {
    MasterKey::from_hex(&"5e".repeat(32)).expect("key")
}

fn say(line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes())
        .expect("stdout");
    out.flush().expect("stdout");
}

/// The child: writes to the log until it is killed.
#[tokio::test(flavor = "current_thread")]
#[ignore = "the child of crash_mid_append_keeps_a_prefix_consistent_log"]
async fn crash_child() {
    let (Ok(dir), Ok(seed)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_SEED)) else {
        return;
    };
    let key = test_key();
    let mut rng = seed.parse::<u64>().expect("seed").max(1);
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut log, mut sm) = storage(std::path::Path::new(&dir), &key);
    let state = log.get_log_state().await.expect("log state");
    let mut term = log
        .read_vote()
        .await
        .expect("vote")
        .map_or(1, |v| v.leader_id.term + 1);
    log.save_vote(&Vote::new(term, NODE))
        .await
        .expect("save vote");
    let mut applied = sm
        .applied_state()
        .await
        .expect("applied")
        .0
        .map(|id| id.index);
    let mut next_index = match state.last_log_id {
        Some(id) => id.index + 1,
        None => {
            // A new node's first entry: its membership, as `initialize`
            // writes it.
            let membership = Membership::new(vec![[NODE].into()], None);
            let first = Entry {
                log_id: LogId::new(CommittedLeaderId::new(0, 0), 0),
                payload: EntryPayload::Membership(membership),
            };
            log.blocking_append([first]).await.expect("append");
            1
        }
    };
    say("open".into());
    loop {
        match next() % 20 {
            // A new leader overwrites the tail: truncate above what was
            // applied, in a new term.
            0 if next_index >= 3 && applied.is_none_or(|a| next_index - 2 > a + 1) => {
                let at = next_index - 2;
                say(format!("begin truncate {at}"));
                log.truncate(log_id(term, at)).await.expect("truncate");
                say(format!("end truncate {at}"));
                next_index = at;
                term += 1;
                log.save_vote(&Vote::new(term, NODE))
                    .await
                    .expect("save vote");
            }
            // Apply, snapshot and purge, as openraft does.
            1 if next_index > 20 => {
                let from = applied.map_or(0, |a| a + 1);
                let entries = log
                    .try_get_log_entries(from..next_index)
                    .await
                    .expect("read");
                sm.apply(entries).await.expect("apply");
                applied = Some(next_index - 1);
                let snapshot = sm.build_snapshot().await.expect("snapshot");
                let upto = snapshot.meta.last_log_id.expect("applied").index - 5;
                let upto = log
                    .try_get_log_entries(upto..=upto)
                    .await
                    .expect("read")
                    .first()
                    .map(|e| e.log_id);
                if let Some(upto) = upto {
                    say(format!("begin purge {}", upto.index));
                    log.purge(upto).await.expect("purge");
                    say(format!("end purge {}", upto.index));
                }
            }
            _ => {
                let n = 1 + next() % 30;
                let batch: Vec<_> = (next_index..next_index + n)
                    .map(|i| entry(term, i))
                    .collect();
                say(format!("begin append {next_index} {}", next_index + n - 1));
                log.blocking_append(batch).await.expect("append");
                next_index += n;
                say(format!("ack {}", next_index - 1));
            }
        }
    }
}

/// What the parent saw the child do before the kill.
#[derive(Default)]
struct Seen {
    /// Every append up to this index was acknowledged (less what a
    /// truncation since removed or may have removed).
    floor: u64,
    /// The last line: the operation the kill interrupted, if it began and
    /// did not end.
    in_flight: bool,
}

fn run_child(dir: &std::path::Path, seed: u64, kill_after: usize) -> Seen {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_SEED, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Seen::default();
    let mut begins = 0;
    let mut opened = false;
    while let Some(Ok(line)) = lines.next() {
        // The test harness prints `test crash_child ... ` with no newline
        // before the child's first line.
        let line = line.rsplit("... ").next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["open"] => opened = true,
            ["begin", op, at, ..] => {
                seen.in_flight = true;
                if *op == "truncate" {
                    let at: u64 = at.parse().expect("index");
                    seen.floor = seen.floor.min(at.saturating_sub(1));
                }
                begins += 1;
                if begins >= kill_after {
                    child.kill().expect("kill the child");
                    break;
                }
            }
            ["ack", last] => {
                seen.in_flight = false;
                seen.floor = last.parse().expect("index");
            }
            ["end", ..] => seen.in_flight = false,
            _ => {}
        }
    }
    assert!(opened, "the child opened the storage");
    // What the child printed after the kill signal was sent still counts:
    // the operation may have finished before the kill landed.
    for line in lines.map_while(Result::ok) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ack", last] => {
                seen.in_flight = false;
                seen.floor = last.parse().expect("index");
            }
            ["end", ..] => seen.in_flight = false,
            _ => {}
        }
    }
    let _ = child.wait();
    seen
}

/// Reopens the storage and checks the log; returns its last index.
async fn check_log(dir: &std::path::Path, key: &MasterKey, seen: &Seen) -> u64 {
    let (mut log, mut sm) = storage(dir, key);
    let state = log.get_log_state().await.expect("log state");
    let last = state.last_log_id.expect("a log").index;
    let first = state.last_purged_log_id.map_or(0, |p| p.index + 1);
    let entries = log
        .try_get_log_entries(first..=last)
        .await
        .expect("no hole in the log");
    assert_eq!(
        entries.len() as u64,
        last + 1 - first,
        "every entry from the first to the last"
    );
    let mut term = 0;
    for e in &entries {
        assert!(e.log_id.leader_id.term >= term, "terms never go back");
        term = e.log_id.leader_id.term;
        if let EntryPayload::Normal(Request::Put { key, value, .. }) = &e.payload {
            assert_eq!(
                key,
                &e.log_id.index.to_be_bytes().to_vec(),
                "entry in its place"
            );
            assert_eq!(value, &value_of(term, e.log_id.index), "entry whole");
        }
    }
    assert!(
        last >= seen.floor,
        "acknowledged appends up to {} survive (log ends at {last})",
        seen.floor
    );
    let applied = sm.applied_state().await.expect("applied").0;
    assert!(
        applied.is_none_or(|a| a.index <= last),
        "nothing applied beyond the log"
    );
    last
}

#[test]
fn crash_mid_append_keeps_a_prefix_consistent_log() {
    let root = tempfile::tempdir().expect("temporary directory");
    let dir = root.path();
    let key = test_key();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut interrupted = 0;
    let cycles = 8;
    let mut last = 0;
    for cycle in 0..cycles {
        let seed = 0x00c0_ffee + cycle;
        let seen = run_child(dir, seed, 5 + (seed as usize * 7) % 40);
        interrupted += usize::from(seen.in_flight);
        last = runtime.block_on(check_log(dir, &key, &seen));
    }
    eprintln!(
        "crash: {cycles} kills, {interrupted} in the middle of a log write; log ends at {last}"
    );
    assert!(
        interrupted > 0,
        "no kill landed in the middle of a log write"
    );

    // openraft takes the log over: the node elects itself (it is the only
    // voter), commits and applies the whole log, and takes new writes.
    runtime.block_on(async {
        let (log, sm) = storage(dir, &key);
        let reader = sm.reader();
        let raft = Raft::new(NODE, common::raft_config(1000), Router::new(), log, sm)
            .await
            .expect("start raft on the crashed log");
        raft.wait(Some(Duration::from_secs(20)))
            .current_leader(NODE, "the node leads again")
            .await
            .expect("leader");
        let reply = raft
            .client_write(Request::put(b"after".to_vec(), b"crash".to_vec()))
            .await
            .expect("a new write");
        assert!(
            reply.log_id.index > last,
            "the new entry follows the crashed log"
        );
        raft.wait(Some(Duration::from_secs(20)))
            .applied_index_at_least(Some(reply.log_id.index), "applied")
            .await
            .expect("applied");
        let got = reader.get(None, last.to_be_bytes()).expect("read");
        assert!(got.is_some(), "the crashed log's last entry is applied");
        let (sm_report, log_report) = reader.verify().expect("verify");
        assert!(
            sm_report.is_clean() && log_report.is_clean(),
            "verify clean"
        );
        raft.shutdown().await.expect("shutdown");
    });
}

const CHILD_SOURCE: &str = "SEALKV_RAFT_CRASH_SOURCE";

/// The child of the install test: installs the source node's current
/// snapshot into the target node until it is killed.
#[tokio::test(flavor = "current_thread")]
#[ignore = "the child of crash_mid_install_finishes_the_install_at_open"]
async fn install_child() {
    let (Ok(target), Ok(source)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_SOURCE)) else {
        return;
    };
    let key = test_key();
    let (_source_log, mut source_sm) = storage(std::path::Path::new(&source), &key);
    let snapshot = source_sm
        .get_current_snapshot()
        .await
        .expect("read the source's snapshot")
        .expect("the source has a snapshot");
    let (_log, mut sm) = storage(std::path::Path::new(&target), &key);
    say("begin install".into());
    sm.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    say("end install".into());
}

#[test]
fn crash_mid_install_finishes_the_install_at_open() {
    let root = tempfile::tempdir().expect("temporary directory");
    let source = root.path().join("source");
    let key = test_key();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // A snapshot large enough that its import takes a while.
    let snapshot_id = runtime.block_on(async {
        let (_log, mut sm) = storage(&source, &key);
        let entries: Vec<_> = (1..=10_000).map(|i| entry(1, i)).collect();
        sm.apply(entries).await.expect("apply");
        sm.build_snapshot()
            .await
            .expect("snapshot")
            .meta
            .last_log_id
    });
    let staging = |target: &std::path::Path| common::node_dir(target, NODE).join("sm-incoming");
    let mut mid_import = 0;
    for attempt in 0..10 {
        let target = root.path().join(format!("target-{attempt}"));
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([
                "install_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, &target)
            .env(CHILD_SOURCE, &source)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let begun = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.ends_with("begin install"));
        assert!(begun, "the child began the install");
        // Killed as soon as the import has started.
        while !staging(&target).exists() && child.try_wait().expect("child").is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().expect("kill the child");
        let _ = child.wait();
        if !staging(&target).exists() {
            continue;
        }
        mid_import += 1;
        runtime.block_on(async {
            let (_log, mut sm) = storage(&target, &key);
            let applied = sm.applied_state().await.expect("applied").0;
            assert_eq!(
                applied, snapshot_id,
                "the interrupted install is finished at open"
            );
            let value = sm
                .reader()
                .get(None, 10_000u64.to_be_bytes())
                .expect("read");
            assert_eq!(value, Some(value_of(1, 10_000)));
        });
    }
    assert!(mid_import > 0, "no kill landed in the middle of an import");
}
