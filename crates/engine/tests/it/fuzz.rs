//! The operation-sequence fuzz target's body (`sealkv::fuzz_ops`, the
//! engine against a `BTreeMap` model) on stable: its committed seeds and
//! crash regressions, in background and deterministic mode, the
//! regressions again with a crash at every disk operation of the flush
//! they hit, the keyspace and transaction operations with a crash at
//! disk operations inside them, and random programs through proptest.

use proptest::prelude::*;
use sealkv::{FuzzOptions, FuzzRun, fuzz_ops, fuzz_ops_with};

/// Mode byte bits of `fuzz_ops` (see its docs).
const DETERMINISTIC: u8 = 1 << 2;
const KEYSPACES: u8 = 1 << 3;
const CRASH_POINT: u8 = 1 << 4;

/// The operations `fuzz_ops` adds with `KEYSPACES`: a put into a keyspace
/// made on demand (14), a drop (15), a read-modify-write transaction
/// (16), a transaction over a range that commits, rolls back or conflicts
/// (17), a batch across keyspaces (18), a compare-and-swap (19).
const KEYSPACE_OPS: std::ops::RangeInclusive<u8> = 14..=19;

fn deterministic() -> FuzzOptions {
    FuzzOptions {
        deterministic: true,
        ..FuzzOptions::default()
    }
}

fn regressions() -> Vec<(String, Vec<u8>)> {
    let all = sealkv_testkit::fuzz_inputs("engine_ops");
    let regs: Vec<_> = all
        .into_iter()
        .filter(|(name, _)| name.starts_with("regressions/"))
        .collect();
    assert_eq!(regs.len(), 4, "the committed engine_ops findings");
    regs
}

#[test]
fn committed_fuzz_inputs_hold() {
    let inputs = sealkv_testkit::fuzz_inputs("engine_ops");
    assert!(!inputs.is_empty(), "the seed corpus is committed");
    for (_, bytes) in inputs {
        // As committed (background flushes for every input so far), and
        // deterministic.
        fuzz_ops(&bytes);
        fuzz_ops_with(&bytes, deterministic());
    }
}

/// Deterministic mode does the same disk operations in the same order on
/// every run, so a crash point names the same place every time.
#[test]
fn deterministic_runs_repeat_exactly() {
    for (name, bytes) in sealkv_testkit::fuzz_inputs("engine_ops") {
        let first = fuzz_ops_with(&bytes, deterministic());
        assert!(first.total > 0, "{name}");
        for _ in 0..2 {
            assert_eq!(fuzz_ops_with(&bytes, deterministic()), first, "{name}");
        }
    }
}

/// The disk operations a crash can interrupt from each size-triggered
/// flush on (in deterministic mode it runs right after the write that
/// froze the memtable; in background mode it runs on while the following
/// operations do): from its first disk operation up to the next crash
/// operation (8), or to the end of the run (the final verify and close).
fn flush_windows(run: &FuzzRun) -> std::collections::BTreeSet<u64> {
    let mut out = std::collections::BTreeSet::new();
    for (i, op) in run.ops.iter().enumerate() {
        if op.settled == op.end {
            continue;
        }
        let until = run.ops[i + 1..]
            .iter()
            .find(|o| o.op == 8)
            .map_or(run.total, |o| o.start);
        out.extend(op.end + 1..=until);
    }
    out
}

/// Every committed `engine_ops` regression, replayed deterministically with
/// the power cut at each disk operation of the window it covers, torn two
/// ways: the database must read as the model after every crash and verify
/// clean at the end, and every planned crash must fire. The reduced size
/// (CI) cuts at every disk operation of each flush a write triggered and of
/// everything after it up to the next crash operation or the end (where
/// the findings were); `SEALKV_PROOF=full` (`cargo xtask proof`) at every
/// disk operation of the whole run.
#[test]
fn regressions_survive_power_cuts_at_their_disk_operations() {
    let full = sealkv_testkit::proof::full_size();
    let (mut runs, mut crashed) = (0, 0);
    for (name, bytes) in regressions() {
        let clean = fuzz_ops_with(&bytes, deterministic());
        let points: Vec<u64> = if full {
            (1..=clean.total).collect()
        } else {
            flush_windows(&clean).into_iter().collect()
        };
        assert!(!points.is_empty(), "{name}: a write triggers a flush");
        let (mut part_runs, mut part_crashed) = (0, 0);
        for &k in &points {
            let (r, c) = crash_at(&bytes, k);
            part_runs += r;
            part_crashed += c;
        }
        let part = name.rsplit('/').next().unwrap_or(&name);
        sealkv_testkit::proof::print_proof(
            "fuzz-crash-points",
            part,
            &[
                ("cases", part_runs),
                ("crashed", part_crashed),
                ("points", points.len() as u64),
                ("disk_ops", clean.total),
            ],
        );
        runs += part_runs;
        crashed += part_crashed;
    }
    assert_eq!(crashed, runs, "every planned crash fires");
    assert!(runs > 100, "{runs} crash runs");
}

/// Runs `bytes` with the power cut at disk operation `k`, torn two ways
/// (the run checks the database against the model after the crash and at
/// its end); returns the runs made and how many crashed as planned.
fn crash_at(bytes: &[u8], k: u64) -> (u64, u64) {
    let mut crashed = 0;
    for seed in [k, !k] {
        let run = fuzz_ops_with(
            bytes,
            FuzzOptions {
                deterministic: true,
                crash_at: Some(k),
                crash_seed: seed,
            },
        );
        crashed += u64::from(run.crashed_in.is_some());
    }
    (2, crashed)
}

/// The mode byte turns deterministic mode and a crash point on: the same
/// program with bit 4 and a crash point crashes there.
#[test]
fn the_mode_byte_chooses_deterministic_mode_and_a_crash_point() {
    let mut p = program(1 | DETERMINISTIC, 5, 120);
    fuzz_ops(&p);
    let clean = fuzz_ops_with(&p, deterministic());
    let at = clean.total / 2;
    let opts = FuzzOptions {
        deterministic: true,
        crash_at: Some(at + 1),
        crash_seed: at,
    };
    // The crash point's two bytes, which `fuzz_ops_with` skips.
    p[0] |= CRASH_POINT;
    p.splice(1..1, (at as u16).to_be_bytes());
    let run = fuzz_ops_with(&p, opts);
    assert!(run.crashed_in.is_some());
    fuzz_ops(&p);
}

/// A program that runs every operation in turn with arguments from a
/// simple generator, in mode `mode` (with `KEYSPACES`, the keyspace and
/// transaction operations too).
fn program(mode: u8, seed: u64, len: usize) -> Vec<u8> {
    let ops = if mode & KEYSPACES != 0 { 20 } else { 14 };
    let mut x = seed;
    let mut out = vec![mode];
    for i in 0..len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Every opcode in turn, then arguments from the generator.
        out.push(if i % 4 == 0 {
            (i / 4 % ops) as u8
        } else {
            (x >> 56) as u8
        });
    }
    out
}

/// The committed seeds with keyspace and transaction operations.
fn keyspace_seeds() -> Vec<(String, Vec<u8>)> {
    let seeds: Vec<_> = sealkv_testkit::fuzz_inputs("engine_ops")
        .into_iter()
        .filter(|(name, _)| name.contains("every-op-keyspaces"))
        .collect();
    assert_eq!(seeds.len(), 4, "the committed keyspace seeds");
    seeds
}

/// The crash points of keyspace seed `bytes`: at the reduced size every
/// third disk operation inside its keyspace and transaction operations
/// (and the flush right after each), at full size every disk operation of
/// its run; and how many disk operations the run made.
fn keyspace_crash_points(name: &str, bytes: &[u8], full: bool) -> (Vec<u64>, u64) {
    let clean = fuzz_ops_with(bytes, deterministic());
    let inside: Vec<u64> = clean
        .ops
        .iter()
        .filter(|o| KEYSPACE_OPS.contains(&o.op))
        .flat_map(|o| o.start + 1..=o.settled)
        .collect();
    assert!(
        inside.len() > 20,
        "{name}: {} disk operations inside keyspace operations",
        inside.len()
    );
    let points = if full {
        (1..=clean.total).collect()
    } else {
        inside.into_iter().skip(2).step_by(3).collect()
    };
    (points, clean.total)
}

/// The keyspace seeds replayed deterministically with the power cut at
/// disk operations inside their keyspace and transaction operations (a
/// keyspace's creation and first put, a drop and its purge batches, a
/// transaction's commit, a batch across keyspaces, a compare-and-swap)
/// and the flushes right after them, torn two ways: after each cut every
/// keyspace reads as the model (the operation whole or absent, a creation
/// it acknowledged kept), the run verifies clean at its end, and every
/// planned crash fires. The reduced size (CI) cuts at every third disk
/// operation inside those operations; `SEALKV_PROOF=full` (`cargo xtask
/// proof`) at every disk operation of the seeds' whole runs.
#[test]
fn keyspace_operations_survive_power_cuts_inside_them() {
    let full = sealkv_testkit::proof::full_size();
    let mut kinds = std::collections::BTreeSet::new();
    let (mut runs, mut crashed) = (0, 0);
    for (name, bytes) in keyspace_seeds() {
        let (points, disk_ops) = keyspace_crash_points(&name, &bytes, full);
        let (mut part_runs, mut part_crashed) = (0, 0);
        for &k in &points {
            for seed in [k, !k] {
                let run = fuzz_ops_with(
                    &bytes,
                    FuzzOptions {
                        deterministic: true,
                        crash_at: Some(k),
                        crash_seed: seed,
                    },
                );
                part_runs += 1;
                if let Some(i) = run.crashed_in {
                    part_crashed += 1;
                    kinds.extend(run.ops.get(i).map(|o| o.op));
                }
            }
        }
        let part = name.rsplit('/').next().unwrap_or(&name);
        sealkv_testkit::proof::print_proof(
            "fuzz-keyspace-crash-points",
            part,
            &[
                ("cases", part_runs),
                ("crashed", part_crashed),
                ("points", points.len() as u64),
                ("disk_ops", disk_ops),
            ],
        );
        runs += part_runs;
        crashed += part_crashed;
    }
    assert_eq!(crashed, runs, "every planned crash fires");
    assert!(runs > 100, "{runs} crash runs");
    // The cuts landed inside every kind of keyspace operation that writes
    // (a rolled-back or refused transaction alone writes nothing).
    kinds.retain(|op| KEYSPACE_OPS.contains(op));
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        KEYSPACE_OPS.collect::<Vec<_>>()
    );
}

/// Regenerates the committed seeds of `engine_ops`: one program per
/// protection mode, background and deterministic, and one per protection
/// mode with the keyspace and transaction operations, deterministic
/// (`cargo test -p sealkv --test it write_fuzz_seeds -- --ignored`).
#[test]
#[ignore = "writes into fuzz/corpus"]
fn write_fuzz_seeds() {
    for mode in 0..4u8 {
        let p = program(mode, u64::from(mode) + 1, 240);
        fuzz_ops(&p);
        sealkv_testkit::write_fuzz_seed("engine_ops", &format!("every-op-mode-{mode}"), &p);
        let p = program(mode | DETERMINISTIC, u64::from(mode) + 1, 240);
        fuzz_ops(&p);
        sealkv_testkit::write_fuzz_seed(
            "engine_ops",
            &format!("every-op-deterministic-mode-{mode}"),
            &p,
        );
        let p = program(mode | DETERMINISTIC | KEYSPACES, u64::from(mode) + 11, 240);
        fuzz_ops(&p);
        sealkv_testkit::write_fuzz_seed(
            "engine_ops",
            &format!("every-op-keyspaces-mode-{mode}"),
            &p,
        );
    }
}

/// Random programs (a random mode byte, so about half with the keyspace
/// and transaction operations and a quarter with a crash point) for
/// `SEALKV_FUZZ_SECONDS` seconds (default 60), from seed
/// `SEALKV_FUZZ_SEED`: the fuzz body on stable, without coverage
/// guidance, where cargo-fuzz is not at hand (`SEALKV_FUZZ_SECONDS=600
/// cargo test --release -p sealkv --test it random_programs_for_a_time_budget
/// -- --ignored --nocapture`). A failing program is printed in hex.
#[test]
#[ignore = "runs for a time budget"]
fn random_programs_for_a_time_budget() {
    let number = |var: &str, default: u64| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = number("SEALKV_FUZZ_SECONDS", 60);
    let mut x = number("SEALKV_FUZZ_SEED", 1);
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as u32
    };
    let started = std::time::Instant::now();
    let (mut runs, mut keyspace_runs) = (0u64, 0u64);
    while started.elapsed().as_secs() < seconds {
        let len = 1 + next() as usize % 240;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let outcome = std::panic::catch_unwind(|| fuzz_ops(&bytes));
        assert!(
            outcome.is_ok(),
            "failing program: {}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        runs += 1;
        keyspace_runs += u64::from(bytes[0] & KEYSPACES != 0);
    }
    eprintln!(
        "{runs} random programs ({keyspace_runs} with keyspace operations) in {:.0} s, no failure",
        started.elapsed().as_secs_f64()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_read_as_the_model(bytes in prop::collection::vec(any::<u8>(), 1..200)) {
        fuzz_ops(&bytes);
    }

    /// Random programs with a crash at a random disk operation: the point
    /// is drawn as a fraction of the disk operations a clean run of the
    /// same program makes, so the crash always fires.
    #[test]
    fn random_programs_survive_a_crash_anywhere(
        bytes in prop::collection::vec(any::<u8>(), 1..160),
        at in 0.0f64..1.0,
        seed in any::<u64>(),
    ) {
        let clean = fuzz_ops_with(&bytes, deterministic());
        prop_assert!(clean.total > 0);
        let k = 1 + (at * clean.total as f64) as u64 % clean.total;
        let run = fuzz_ops_with(&bytes, FuzzOptions { deterministic: true, crash_at: Some(k), crash_seed: seed });
        prop_assert!(run.crashed_in.is_some(), "the crash at {} of {} fired", k, clean.total);
    }
}

/// The first `engine_ops` finding ("meta slot holds transaction 16, newer
/// than the one opened (15)") came from the first harness, which crashed
/// the *shared* simulated disk (`SimVfs::crash_torn`) and reopened it while
/// the killed instance's flusher was still inside a commit. A `SimFile`
/// write checked its handle's epoch before taking the file's lock, and the
/// crash kept the same inodes for the reopened disk: a meta-page write the
/// flusher had started before the crash could land after the reopen, in
/// the reopened file. This replays that exact interleaving (the commit's
/// meta-page write held back past the crash and the reopen, then landing)
/// and gets the very finding; the harness now forks the crashed disk, so
/// no write of a killed instance can reach the reopened one.
#[test]
fn the_first_finding_is_a_write_of_the_killed_instance_landing_after_the_reopen() {
    use std::io;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use sealkv::{Config, Db, SyncMode};
    use sealkv_fileio::{OpenMode, SimVfs, Vfs};

    use crate::hookvfs::{HookVfs, PageFileOp};

    /// The disk a crash then left, and the write held back (offset, bytes).
    type Held = Option<(SimVfs, u64, Vec<u8>)>;

    /// Holds back the next meta-page write of the page file: forks the
    /// disk as a power cut then would leave it, keeps the write, fails it.
    #[derive(Debug, Clone, Default)]
    struct HoldMeta {
        sim: SimVfs,
        armed: Arc<AtomicBool>,
        held: Arc<Mutex<Held>>,
    }
    impl HoldMeta {
        fn vfs(&self) -> HookVfs {
            let me = self.clone();
            HookVfs::new(self.sim.clone(), move |op| match op {
                PageFileOp::Write { offset, buf }
                    if (offset == 4096 || offset == 8192)
                        && me.armed.swap(false, Ordering::SeqCst) =>
                {
                    let fork = me.sim.fork_crashed_torn(1);
                    *me.held.lock().unwrap() = Some((fork, offset, buf.to_vec()));
                    Err(io::Error::other("killed"))
                }
                _ => Ok(()),
            })
        }
    }

    for alg in crate::support::modes() {
        let config = |vfs: Arc<dyn Vfs>| {
            let mut c = Config::new("/db")
                .vfs(vfs)
                .sync_mode(SyncMode::Always)
                .memtable_size(64 << 10);
            if let Some(alg) = alg {
                c = c
                    .encryption_key(crate::support::key(7))
                    .encryption_algorithm(alg);
            }
            c
        };
        let hold = HoldMeta::default();
        let db = Db::open_with_config(config(Arc::new(hold.vfs()))).unwrap();
        db.put(b"a", b"1").unwrap();
        db.flush().unwrap();
        db.put(b"b", b"2").unwrap();
        // The flush's commit writes its pages, fsyncs, then its meta page:
        // the power goes out just before that write reaches the file.
        hold.armed.store(true, Ordering::SeqCst);
        assert!(db.flush().is_err());
        drop(db);
        let (found, offset, meta) = hold.held.lock().unwrap().take().unwrap();
        let db = Db::open_with_config(config(Arc::new(found.clone()))).unwrap();
        assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
        assert!(
            db.verify().unwrap().is_clean(),
            "{alg:?}: clean after the crash"
        );
        // The killed instance's write lands now, in the reopened file.
        let file = found
            .open(Path::new("/db/data.sealkv"), OpenMode::ReadWrite)
            .unwrap();
        file.write_all_at(&meta, offset).unwrap();
        let report = db.verify().unwrap();
        assert_eq!(report.findings.len(), 1, "{alg:?}: {:?}", report.findings);
        assert!(
            report.findings[0]
                .what
                .contains("newer than the one opened"),
            "{alg:?}: {:?}",
            report.findings
        );
        // The database itself reads on as it was.
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    }
}
