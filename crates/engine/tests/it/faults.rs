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
//! One test per mode (plaintext and each algorithm). At the reduced size
//! (CI) each takes 16 positions per kind and fault; with
//! `SEALKV_PROOF=full` (`cargo xtask proof`) every position. The positions
//! come from a counted dry run of the workload, and every one must be
//! reached. Each test prints its counts as a `PROOF` line (the figures
//! `docs/RELIABILITY.md` reports) before it asserts on them.

// The sweep prints what each kind of fault led to (with --nocapture).
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
            // Flushed first, so the rotation's commit never races the
            // background flusher: which of the two commits first changes
            // the page file's writes (138 or 143 of them under
            // AES-256-GCM), and the positions the sweep must reach come
            // from a dry run.
            db.flush().map_err(|e| ("flush", e))?;
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
    /// After the crash an acknowledged write was missing or changed.
    lost: bool,
    /// After the crash the database held neither the acknowledged state nor
    /// that state with the batch in doubt (a partial batch, a stray value).
    wrong: bool,
    /// What `verify` found after the reopen.
    findings: usize,
    /// Why the case failed, if it did.
    problem: Option<String>,
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
    if !states.contains(&got) {
        let acked = &states[0];
        let with_doubt = states.last().unwrap_or(acked);
        // A write is lost if neither allowed state explains what was read.
        let lost: Vec<String> = acked
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(*v) && got.get(*k) != with_doubt.get(*k))
            .take(5)
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect();
        out.lost = !lost.is_empty();
        out.wrong = !out.lost;
        out.problem = Some(format!(
            "{c:?} ({:?}): after the crash the database holds {} keys, not the {} acknowledged (or {} with the batch in doubt); lost: {lost:?}",
            out.failed,
            got.len(),
            acked.len(),
            with_doubt.len(),
        ));
    }
    let report = db.verify().unwrap();
    out.findings = report.findings.len();
    if !report.is_clean() && out.problem.is_none() {
        out.problem = Some(format!("{c:?}: verify found {:?}", report.findings));
    }
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

/// Runs the sweep in `mode` (`budget` positions per kind and fault), prints
/// its `PROOF` line and what each kind of fault led to, then asserts:
/// every fault reached, surfaced (a short write completed instead), and
/// nothing lost, wrong or found by `verify` after the crash.
fn sweep(mode: Option<EncryptionAlgorithm>, budget: u64) {
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
    let mut count = BTreeMap::<&str, u64>::new();
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (op, fault) in plan {
        let total = n[&format!("{op:?}")];
        // A plaintext database renames nothing (no key registry).
        assert!(
            total > 0 || op == OpKind::Rename && mode.is_none(),
            "{mode:?}: the workload makes no {op:?}"
        );
        for nth in positions(total, budget) {
            let c = Case {
                mode,
                op,
                fault,
                nth,
            };
            let out = run_case(c);
            let mut add = |k, yes: bool| *count.entry(k).or_default() += u64::from(yes);
            add("cases", true);
            add("reached", out.injected);
            // The fault surfaced as an error of the step it hit.
            add("detected", out.failed.is_some());
            add("poisoned", out.poisoned);
            add(
                "marker_taken_back",
                out.injected && out.failed.is_none() && out.marker,
            );
            add(
                "short_write_completed",
                fault == FaultKind::ShortWrite && out.failed.is_none(),
            );
            add("lost", out.lost);
            add("wrong", out.wrong);
            add("verify_findings", out.findings > 0);
            let what = match (out.injected, out.failed, out.poisoned) {
                (false, _, _) => "not reached".to_string(),
                (true, None, _) if out.marker => "sync marker taken back".to_string(),
                (true, None, _) => "no error".to_string(),
                (true, Some(step), p) => {
                    format!("{step} failed{}", if p { ", poisoned" } else { "" })
                }
            };
            *seen.entry(format!("{op:?}/{fault:?}: {what}")).or_default() += 1;
            if !out.injected {
                problems.push(format!("{c:?}: the fault was never reached"));
            } else if fault == FaultKind::ShortWrite {
                if out.failed.is_some() {
                    problems.push(format!("{c:?}: a short write became an error"));
                }
            } else if !out.marker && out.failed.is_none() {
                problems.push(format!("{c:?}: the fault was swallowed"));
            }
            problems.extend(out.problem);
        }
    }
    eprintln!("{mode:?}: {seen:#?}");
    let part = mode.map_or("plaintext".to_string(), |a| a.to_string());
    let counts: Vec<(&str, u64)> = count.into_iter().collect();
    sealkv_testkit::proof::print_proof("faults", &part, &counts);
    assert!(problems.is_empty(), "{mode:?}: {problems:#?}");
}

/// Positions per operation kind at the reduced size (each case runs the
/// whole workload, a crash and a reopen).
const QUICK: u64 = 16;

fn sweep_sized(mode: Option<EncryptionAlgorithm>) {
    let budget = if sealkv_testkit::proof::full_size() {
        u64::MAX
    } else {
        QUICK
    };
    sweep(mode, budget);
}

#[test]
fn fault_positions_plaintext() {
    sweep_sized(None);
}

#[test]
fn fault_positions_aes_256_gcm() {
    sweep_sized(Some(EncryptionAlgorithm::Aes256Gcm));
}

#[test]
fn fault_positions_chacha20_poly1305() {
    sweep_sized(Some(EncryptionAlgorithm::ChaCha20Poly1305));
}

#[test]
fn fault_positions_aes_256_gcm_siv() {
    sweep_sized(Some(EncryptionAlgorithm::Aes256GcmSiv));
}

/// A fault (and then a power cut, or the process killed) at any write,
/// fsync, directory fsync, rename or open of a database's creation leaves
/// a directory that opens: an interrupted creation is started over
/// (open.rs sets a lone `KEYS` aside as `KEYS.interrupted`, a page file
/// that holds nothing as `data.sealkv.interrupted`), and the new database
/// writes. Every
/// position of each kind, counted by a dry run of the creation, is failed
/// once, must be reached and must fail the creation.
#[test]
fn faults_while_creating_leave_a_directory_that_opens() {
    const OPS: [OpKind; 5] = [
        OpKind::Write,
        OpKind::Sync,
        OpKind::SyncDir,
        OpKind::Rename,
        OpKind::Open,
    ];
    for mode in modes() {
        let creation = {
            let sim = SimVfs::new();
            let faulty = FaultyVfs::over_sim(&sim);
            let db =
                Db::open_with_config(sim_config(&sim, mode).vfs(Arc::new(faulty.clone()))).unwrap();
            std::mem::forget(db);
            faulty.counts()
        };
        // A plaintext creation renames nothing (no key registry).
        assert!(
            OPS.iter()
                .all(|op| creation.get(*op) > 0 || *op == OpKind::Rename && mode.is_none()),
            "{mode:?}: {creation:?}"
        );
        for (op, power_cut) in OPS.into_iter().flat_map(|op| [(op, true), (op, false)]) {
            for nth in 1..=creation.get(op) {
                let sim = SimVfs::new();
                let faulty = FaultyVfs::over_sim(&sim);
                faulty.arm(FaultPlan::once(op, nth));
                let created =
                    Db::open_with_config(sim_config(&sim, mode).vfs(Arc::new(faulty.clone())));
                assert_eq!(faulty.injected(), 1, "{mode:?} {op:?} #{nth}: not reached");
                // The creation fails with the I/O error, never as damage.
                let e = match created {
                    Ok(_) => panic!("{mode:?} {op:?} #{nth}: the creation hid its fault"),
                    Err(e) => e,
                };
                assert!(
                    !matches!(
                        e,
                        Error::Corruption { .. } | Error::Rollback { .. } | Error::WrongKey
                    ),
                    "{mode:?} {op:?} #{nth}: an I/O fault at creation reported as {e}"
                );
                // A power cut keeps what was synced; a killed process
                // (the handles dropped unsynced) what was written.
                if power_cut {
                    sim.crash();
                }
                let db = Db::open_with_config(sim_config(&sim, mode)).unwrap_or_else(|e| {
                    panic!(
                        "{mode:?} {op:?} #{nth} (power cut: {power_cut}): the directory does not open: {e}"
                    )
                });
                db.put(b"k", b"v").unwrap();
            }
        }
    }
}
