//! Fault injection through the file trait: the standard workload (puts,
//! batches, deletes, flushes, a WAL segment roll, a data-key rotation and
//! a re-encryption) with the k-th write, fsync, directory fsync, length
//! change, rename, remove, open or read failing — EIO, ENOSPC, or a short
//! write — for every k the workload reaches (sampled evenly where the count
//! is large). After each: the failing operation returned an error (a short
//! write is completed by the retry and must not be one); a failed write
//! leaves the database refusing writes (`Poisoned`), and a database still
//! writable after another failed step keeps working (a flush, a write);
//! nothing acknowledged is lost and no batch is partial after a power cut
//! (plain or with torn writes; an injected fsync failure drops the writes
//! it covered, as on Linux) and a reopen; the reopened database verifies
//! clean and writes.
//!
//! The quick tests take 16 positions per kind and fault in three modes;
//! `every_fault_position_in_every_mode` (ignored; seconds in release)
//! takes all of them in all four modes.

// The sweep prints its counts (with --nocapture): they are the figures
// docs/RELIABILITY.md reports.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::Arc;

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, Error, WriteBatch};
use sealkv_fileio::{FaultKind, FaultPlan, FaultyVfs, OpKind, SimVfs};

use crate::support::{collect, modes, sim_config};

type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// What the workload was told.
#[derive(Default)]
struct Log {
    /// Batches acknowledged, in order.
    acked: Vec<Ops>,
    /// A batch whose write failed: its outcome is unknown.
    doubt: Option<Ops>,
    /// The first error and the step that returned it.
    failed: Option<(&'static str, Error)>,
}

impl Log {
    fn write(&mut self, db: &Db, ops: Ops) -> Result<(), Error> {
        let mut b = WriteBatch::new();
        for (k, v) in &ops {
            match v {
                Some(v) => b.put(k, v),
                None => b.delete(k),
            };
        }
        match db.write(&b) {
            Ok(()) => {
                self.acked.push(ops);
                Ok(())
            }
            Err(e) => {
                assert!(
                    self.doubt.is_none(),
                    "a second write failed after the first"
                );
                // A failed write names the injected OS error as its cause.
                // One refused because an earlier step failed (a background
                // flush) says so and was not applied: it must be absent
                // after the crash; any other is in doubt.
                match &e {
                    Error::Poisoned {
                        cause,
                        outcome_unknown: false,
                    } => assert_injected(cause),
                    Error::Poisoned { cause, .. } => {
                        assert_injected(cause);
                        self.doubt = Some(ops);
                    }
                    _ => self.doubt = Some(ops),
                }
                Err(e)
            }
        }
    }

    fn put(&mut self, db: &Db, k: String, v: Vec<u8>) -> Result<(), Error> {
        self.write(db, vec![(k.into_bytes(), Some(v))])
    }

    /// The contents with or without the doubtful batch.
    fn states(&self) -> Vec<BTreeMap<Vec<u8>, Vec<u8>>> {
        let mut base = BTreeMap::new();
        let apply = |m: &mut BTreeMap<Vec<u8>, Vec<u8>>, ops: &Ops| {
            for (k, v) in ops {
                match v {
                    Some(v) => m.insert(k.clone(), v.clone()),
                    None => m.remove(k),
                };
            }
        };
        for ops in &self.acked {
            apply(&mut base, ops);
        }
        let mut out = vec![base.clone()];
        if let Some(ops) = &self.doubt {
            apply(&mut base, ops);
            out.push(base);
        }
        out
    }
}

/// The cause of a poisoned database is the OS error the fault injected.
fn assert_injected(cause: &sealkv::PoisonCause) {
    let io = cause
        .io_error()
        .unwrap_or_else(|| panic!("the cause is not an I/O error: {cause}"));
    assert!(io.to_string().contains("injected fault"), "{cause}");
    assert!(cause.to_string().contains("injected fault"), "{cause}");
}

fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("value-{i:05}-").into_bytes();
    v.resize(len, b'a' + (i % 26) as u8);
    v
}

/// The standard workload; stops at the first error, recording the step.
fn workload(db: &Db, sealed: bool, log: &mut Log) {
    let r = (|| -> Result<(), (&'static str, Error)> {
        let w = |e| ("write", e);
        for i in 0..12 {
            log.put(db, format!("single/{i:03}"), value(i, 100))
                .map_err(w)?;
        }
        for i in 0..6 {
            let mut ops: Ops = (0..4)
                .map(|j| {
                    (
                        format!("batch/{i:02}/{j}").into_bytes(),
                        Some(value(i * 4 + j, 200)),
                    )
                })
                .collect();
            ops.push((format!("single/{i:03}").into_bytes(), None));
            log.write(db, ops).map_err(w)?;
        }
        for i in 6..10 {
            log.write(db, vec![(format!("single/{i:03}").into_bytes(), None)])
                .map_err(w)?;
        }
        db.flush().map_err(|e| ("flush", e))?;
        // 24 x 3 KB: past the 64 KiB WAL segment and memtable sizes, so the
        // log rolls and the background flusher runs.
        for i in 0..24 {
            log.put(db, format!("big/{i:03}"), value(i, 3000))
                .map_err(w)?;
        }
        if sealed {
            db.rotate_data_key().map_err(|e| ("rotate_data_key", e))?;
        }
        for i in 0..5 {
            log.put(db, format!("after/{i:03}"), value(i, 150))
                .map_err(w)?;
        }
        log.write(
            db,
            vec![
                (b"big/000".to_vec(), None),
                (b"after/000".to_vec(), Some(value(99, 50))),
            ],
        )
        .map_err(w)?;
        db.flush().map_err(|e| ("flush", e))?;
        if sealed {
            db.reencrypt(&mut |_| std::ops::ControlFlow::Continue(()))
                .map_err(|e| ("reencrypt", e))?;
        }
        for i in 0..3 {
            log.put(db, format!("last/{i:03}"), value(i, 80))
                .map_err(w)?;
        }
        Ok(())
    })();
    if let Err(f) = r {
        log.failed = Some(f);
    }
}

/// One injected fault: the position and what it is.
#[derive(Debug, Clone, Copy)]
struct Case {
    mode: Option<EncryptionAlgorithm>,
    op: OpKind,
    fault: FaultKind,
    nth: u64,
}

/// What one case showed.
#[derive(Debug, Default)]
struct Outcome {
    /// The fault was reached.
    injected: bool,
    /// The step that returned the error, if any.
    failed: Option<&'static str>,
    poisoned: bool,
    /// The fault hit a WAL sync marker's write, which is taken back and
    /// counted, not an error (the writes before it were durable).
    marker: bool,
}

fn run_case(c: Case) -> Outcome {
    let sim = SimVfs::new();
    let faulty = FaultyVfs::over_sim(&sim);
    let config = sim_config(&sim, c.mode).vfs(Arc::new(faulty.clone()));
    let mut log = Log::default();
    let mut out = Outcome::default();
    // Armed after creation: creation's own faults are
    // `faults_while_creating_leave_a_directory_that_opens`.
    let opened = Db::open_with_config(config);
    faulty.arm(FaultPlan::once(c.op, c.nth).with_fault(c.fault));
    match opened {
        Ok(db) => {
            workload(&db, c.mode.is_some(), &mut log);
            if let Some((step, e)) = log.failed.take() {
                out.failed = Some(step);
                assert!(
                    !matches!(
                        e,
                        Error::Corruption { .. } | Error::Rollback { .. } | Error::WrongKey
                    ),
                    "{c:?}: an I/O fault reported as {e}"
                );
                // Durability is in doubt after any failed step that wrote:
                // a probe write is refused, or it is acknowledged (and must
                // then survive the crash like any other).
                match db.put(b"probe", b"p") {
                    Ok(()) => log
                        .acked
                        .push(vec![(b"probe".to_vec(), Some(b"p".to_vec()))]),
                    Err(Error::Poisoned {
                        cause,
                        outcome_unknown,
                    }) => {
                        // Refused, so not applied; the cause is the first
                        // failure, the injected one.
                        assert!(!outcome_unknown, "{c:?}: the probe's outcome is known");
                        assert_injected(&cause);
                        out.poisoned = true;
                    }
                    Err(e) => panic!("{c:?}: the probe after {step} failed with {e}"),
                }
                if step == "write" {
                    assert!(
                        out.poisoned,
                        "{c:?}: a failed write left the database writable"
                    );
                }
                if !out.poisoned {
                    // Still writable: it must go on working — a flush (its
                    // meta records the registry the engine believes in) and
                    // a last write, both kept after the crash.
                    db.flush()
                        .unwrap_or_else(|e| panic!("{c:?}: flush after {step} failed: {e}"));
                    db.put(b"probe2", b"q").unwrap();
                    log.acked
                        .push(vec![(b"probe2".to_vec(), Some(b"q".to_vec()))]);
                }
            }
            out.marker = db.stats().is_ok_and(|s| s.wal_sync_marker_failures > 0);
            // A power cut: no close, no final sync.
            std::mem::forget(db);
        }
        Err(e) => {
            out.failed = Some("open");
            assert!(
                !matches!(
                    e,
                    Error::Corruption { .. } | Error::Rollback { .. } | Error::WrongKey
                ),
                "{c:?}: an I/O fault at creation reported as {e}"
            );
        }
    }
    out.injected = faulty.injected() > 0;
    if c.nth.is_multiple_of(2) {
        sim.crash();
    } else {
        sim.crash_torn(c.nth);
    }
    let db = Db::open_with_config(sim_config(&sim, c.mode))
        .unwrap_or_else(|e| panic!("{c:?} ({out:?}): reopen after the crash failed: {e}"));
    let got: BTreeMap<_, _> = collect(db.range::<&[u8]>(..).unwrap())
        .into_iter()
        .collect();
    let states = log.states();
    assert!(
        states.contains(&got),
        "{c:?} ({out:?}): after the crash the database holds {} keys, not the {} acknowledged (or {} with the batch in doubt); missing: {:?}",
        got.len(),
        states[0].len(),
        states.last().map_or(0, BTreeMap::len),
        states[0]
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    );
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{c:?} ({out:?}): {:?}", report.findings);
    db.put(b"after-crash", b"ok").unwrap();
    assert_eq!(db.get(b"after-crash").unwrap().as_deref(), Some(&b"ok"[..]));
    out
}

const KINDS: [OpKind; 8] = [
    OpKind::Read,
    OpKind::Write,
    OpKind::Sync,
    OpKind::SyncDir,
    OpKind::SetLen,
    OpKind::Rename,
    OpKind::Remove,
    OpKind::Open,
];

/// Operation counts of the unfaulted workload after creation, by kind.
fn counts(mode: Option<EncryptionAlgorithm>) -> BTreeMap<String, u64> {
    let sim = SimVfs::new();
    let faulty = FaultyVfs::over_sim(&sim);
    let db = Db::open_with_config(sim_config(&sim, mode).vfs(Arc::new(faulty.clone()))).unwrap();
    let before = faulty.counts();
    let mut log = Log::default();
    workload(&db, mode.is_some(), &mut log);
    assert!(log.failed.is_none());
    std::mem::forget(db);
    let after = faulty.counts();
    KINDS
        .iter()
        .map(|k| (format!("{k:?}"), after.get(*k) - before.get(*k)))
        .collect()
}

/// Positions 1..=n, all of them up to `budget`, else `budget` spread evenly
/// (always the first and the last).
fn positions(n: u64, budget: u64) -> Vec<u64> {
    if n <= budget {
        return (1..=n).collect();
    }
    let mut v: Vec<u64> = (0..budget)
        .map(|i| 1 + i * (n - 1) / (budget - 1))
        .collect();
    v.dedup();
    v
}

fn sweep(mode: Option<EncryptionAlgorithm>, budget: u64) -> (u64, u64) {
    let n = counts(mode);
    let plan = [
        (OpKind::Write, FaultKind::Eio),
        (OpKind::Write, FaultKind::NoSpace),
        (OpKind::Write, FaultKind::ShortWrite),
        (OpKind::Sync, FaultKind::Eio),
        (OpKind::SyncDir, FaultKind::Eio),
        (OpKind::SetLen, FaultKind::NoSpace),
        (OpKind::Rename, FaultKind::Eio),
        (OpKind::Remove, FaultKind::Eio),
        (OpKind::Open, FaultKind::Eio),
        (OpKind::Read, FaultKind::Eio),
    ];
    let (mut cases, mut injected) = (0, 0);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (op, fault) in plan {
        let total = n[&format!("{op:?}")];
        for nth in positions(total, budget) {
            let c = Case {
                mode,
                op,
                fault,
                nth,
            };
            let out = run_case(c);
            cases += 1;
            injected += u64::from(out.injected);
            let what = match (out.injected, out.failed, out.poisoned) {
                (false, _, _) => "not reached".to_string(),
                (true, None, _) if out.marker => "sync marker taken back".to_string(),
                (true, None, _) => "no error".to_string(),
                (true, Some(step), p) => {
                    format!("{step} failed{}", if p { ", poisoned" } else { "" })
                }
            };
            *seen.entry(format!("{op:?}/{fault:?}: {what}")).or_default() += 1;
            if fault == FaultKind::ShortWrite {
                assert!(out.failed.is_none(), "{c:?}: a short write became an error");
            } else if out.injected && !out.marker {
                assert!(out.failed.is_some(), "{c:?}: the fault was swallowed");
            }
        }
    }
    eprintln!("{mode:?}: {seen:#?}");
    (cases, injected)
}

/// Positions per operation kind in the quick sweep (each case runs the
/// whole workload, a crash and a reopen).
const QUICK: u64 = 16;

fn quick(mode: Option<EncryptionAlgorithm>) {
    let (cases, injected) = sweep(mode, QUICK);
    eprintln!("faults {mode:?}: {cases} positions, {injected} faults reached");
    assert!(
        injected * 10 >= cases * 9,
        "{injected} of {cases} faults reached"
    );
}

#[test]
fn fault_positions_plaintext() {
    quick(None);
}

#[test]
fn fault_positions_aes_256_gcm() {
    quick(Some(EncryptionAlgorithm::Aes256Gcm));
}

#[test]
fn fault_positions_chacha20_poly1305() {
    quick(Some(EncryptionAlgorithm::ChaCha20Poly1305));
}

/// Every position of every operation kind, in every mode (about 2,300
/// cases): `cargo test --release -p sealkv --test it faults::every -- --ignored --nocapture`.
#[test]
#[ignore = "long: every fault position in every mode; run in release"]
fn every_fault_position_in_every_mode() {
    let (mut cases, mut injected) = (0, 0);
    for mode in modes() {
        let (c, i) = sweep(mode, u64::MAX);
        eprintln!("faults {mode:?}: {c} positions, {i} faults reached");
        cases += c;
        injected += i;
    }
    eprintln!("faults: {cases} positions in all, {injected} faults reached, every one handled");
}

/// BUG (open.rs, creation): a fault (or a crash) while a new encrypted
/// database is being created, after the key registry `KEYS` is written and
/// before the page file is, leaves a directory that never opens again:
/// every later `Db::open` fails with "key registry /db/KEYS exists already"
/// (`Error::Registry`), although open.rs's module docs say such an
/// interrupted creation "is started over". Nothing acknowledged is at
/// stake (nothing was), but the user must delete `KEYS` by hand. Found by
/// failing the 2nd write or the 2nd directory fsync of the creation.
#[test]
fn faults_while_creating_leave_a_directory_that_opens() {
    for mode in modes() {
        for op in [
            OpKind::Write,
            OpKind::Sync,
            OpKind::SyncDir,
            OpKind::Rename,
            OpKind::Open,
        ] {
            for nth in 1..=12 {
                let sim = SimVfs::new();
                let faulty = FaultyVfs::over_sim(&sim);
                faulty.arm(FaultPlan::once(op, nth));
                let created =
                    Db::open_with_config(sim_config(&sim, mode).vfs(Arc::new(faulty.clone())));
                if let Ok(db) = created {
                    std::mem::forget(db);
                }
                sim.crash();
                let db = Db::open_with_config(sim_config(&sim, mode)).unwrap_or_else(|e| {
                    panic!("{mode:?} {op:?} #{nth}: the directory does not open: {e}")
                });
                db.put(b"k", b"v").unwrap();
            }
        }
    }
}
