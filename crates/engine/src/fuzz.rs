//! The entry point of the "operation sequence" fuzz target: the engine
//! against a `BTreeMap` model, with flushes, reopens, crashes, key
//! rotation and re-encryption, and (mode bit 3) named keyspaces, keyspace
//! drops, transactions and multi-keyspace batches, on a simulated disk.
//!
//! Two ways to run a program. *Background* (the engine as users run it):
//! size-triggered flushes run on the flusher thread, so where a crash
//! lands in one of them depends on timing. *Deterministic*: after every
//! operation the harness flushes what the operation froze on its own
//! thread (the flusher finds nothing left, or flushes it while the harness
//! waits on the flush lock: the same I/O either way), so a program always
//! does the same I/O in the same order; a crash can then be placed at any
//! disk-changing operation of the run ([`FuzzOptions::crash_at`], counted
//! by [`crashvfs::CrashVfs`]), inside a flush, a WAL append, a rotation or
//! an open.

mod crashvfs;
mod keyspace_ops;
mod model;

use std::ops::ControlFlow;
use std::sync::Arc;

use parking_lot::MutexGuard;
use sealkv_crypto_envelope::{EncryptionAlgorithm, MasterKey};
use sealkv_fileio::SimVfs;

use crate::db::Inner;
use crate::flush::FlushState;
use crate::{Config, Db, Error, SyncMode, WriteBatch};
use crashvfs::{CrashPlan, CrashVfs};
use model::{Model, assert_reads_as, pairs, read_as_one_of};

/// The most operations one input runs (longer inputs are cut).
const MAX_OPS: usize = 160;

/// Mode byte bit: run deterministically (see the module docs).
const DETERMINISTIC: u8 = 1 << 2;
/// Mode byte bit: keyspace and transaction operations join the others.
const KEYSPACES: u8 = 1 << 3;
/// Mode byte bit: the next two bytes (big-endian) place a crash at that
/// disk-changing operation (plus one); implies deterministic.
const CRASH_POINT: u8 = 1 << 4;

/// Operations without [`KEYSPACES`] (an operation is its program byte
/// modulo this), and with it.
const BASIC_OPS: u8 = 14;
const ALL_OPS: u8 = 20;

/// How [`fuzz_ops_with`] runs a program.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FuzzOptions {
    /// Flush what each operation froze before the next one, on the
    /// harness's thread, so the run's I/O is the same every time.
    pub deterministic: bool,
    /// With `deterministic`: lose power just before the n-th (1-based)
    /// disk-changing operation of the run (writes, fsyncs, length changes,
    /// renames, removals, creating opens), reopen the disk found and go on
    /// with the program. The operation in flight may have taken effect or
    /// not, unless it was acknowledged.
    pub crash_at: Option<u64>,
    /// Which unsynced writes that crash keeps, loses or tears.
    pub crash_seed: u64,
}

/// One operation of a run, with the disk-changing operation counts around
/// it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRecord {
    /// The operation (the program byte modulo 14, or 20 with keyspace
    /// operations on).
    pub op: u8,
    /// Disk-changing operations counted before it.
    pub start: u64,
    /// ... after it.
    pub end: u64,
    /// ... after the flush that followed it in deterministic mode (the
    /// same as `end` when it froze nothing).
    pub settled: u64,
}

/// What a run did.
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuzzRun {
    /// Each operation run, in order.
    pub ops: Vec<OpRecord>,
    /// Disk-changing operations counted in the whole run (the final
    /// verify and close included).
    pub total: u64,
    /// Index in `ops` of the operation (or the flush after it) the
    /// `crash_at` crash interrupted (`ops.len()` for the final verify and
    /// close), if it fired.
    pub crashed_in: Option<usize>,
}

/// Reads `bytes` as a program — a mode byte, then operations (put,
/// delete, batch, flush, reopen, crash with torn writes, rotate, a
/// re-encryption pass stopped after its first step or run to the end,
/// snapshot, point read, range scan; with mode bit 3 also a put into a
/// named keyspace made on demand, a keyspace drop, a multi-key
/// read-modify-write transaction across keyspaces, a transaction that
/// scans a range and commits, rolls back or meets a conflict, a batch
/// across keyspaces, and a compare-and-swap) — and runs it on a database
/// in a simulated file system and on a model (a `BTreeMap` per keyspace).
/// The mode byte's low two bits pick the protection (plaintext or an
/// algorithm); bit 2 runs deterministically; bit 3 adds the keyspace and
/// transaction operations; bit 4 takes the next two bytes as a crash
/// point (see [`FuzzOptions`]). Every write is durable
/// (`SyncMode::Always`), so after any crash the database must read exactly
/// as the model, every keyspace of it (the operation a crash interrupted
/// whole or absent, or a creation it acknowledged kept); at the end it
/// must also verify clean. Panics on any difference and on any error the crash did
/// not cause, which is what the fuzzer looks for. Used by the `engine_ops`
/// fuzz target and by tests; not part of the API.
#[doc(hidden)]
pub fn fuzz_ops(bytes: &[u8]) {
    let Some((&mode, rest)) = bytes.split_first() else {
        return;
    };
    let mut options = FuzzOptions {
        deterministic: mode & (DETERMINISTIC | CRASH_POINT) != 0,
        ..FuzzOptions::default()
    };
    if mode & CRASH_POINT != 0 {
        let (hi, lo) = (rest.first().copied(), rest.get(1).copied());
        let at = u64::from(hi.unwrap_or(0)) << 8 | u64::from(lo.unwrap_or(0));
        options.crash_at = Some(at + 1);
        options.crash_seed = at;
    }
    fuzz_ops_with(bytes, options);
}

/// [`fuzz_ops`] with the way of running given by `options` instead of the
/// mode byte's bits 2 and 4 (its protection bits still count; a crash
/// point in the bytes is skipped). Returns what the run did; panics as
/// [`fuzz_ops`] does.
#[doc(hidden)]
// `SEALKV_FUZZ_TRACE` prints each operation, to debug an input by hand.
#[allow(clippy::print_stderr)]
pub fn fuzz_ops_with(bytes: &[u8], options: FuzzOptions) -> FuzzRun {
    let Some((&mode, mut rest)) = bytes.split_first() else {
        return FuzzRun::default();
    };
    if mode & CRASH_POINT != 0 {
        rest = rest.get(2..).unwrap_or(&[]);
    }
    let alg = match mode % 4 {
        0 => None,
        n => EncryptionAlgorithm::ALL.get(usize::from(n) - 1).copied(),
    };
    let deterministic = options.deterministic;
    let plan = CrashPlan::new(
        options.crash_at.filter(|_| deterministic),
        options.crash_seed,
    );
    let vfs = CrashVfs::new(SimVfs::new(), plan.clone());
    let config = |vfs: &CrashVfs| {
        let mut c = Config::new("/fuzz/db")
            .vfs(Arc::new(vfs.clone()))
            .sync_mode(SyncMode::Always)
            .memtable_size(64 << 10)
            .wal_segment_size(64 << 10)
            .cache_size(64 << 10);
        if let (Some(alg), Ok(key)) = (alg, MasterKey::from_bytes(&[7; 32])) {
            c = c.encryption_key(key).encryption_algorithm(alg);
        }
        c
    };
    // `SEALKV_FUZZ_TRACE=1` prints each operation (to debug a found input).
    let trace = std::env::var_os("SEALKV_FUZZ_TRACE").is_some();
    let mut run = FuzzRun::default();
    // Whether a power cut happened (see `assert_verifies`).
    let mut crashed = false;
    let mut model = Model::default();
    let ops = if mode & KEYSPACES != 0 {
        ALL_OPS
    } else {
        BASIC_OPS
    };
    let (mut db, mut vfs) = open_until_up(vfs, &plan, &config);
    // The page file's transaction at the last open: a meta slot torn by a
    // power cut is rewritten by the first commit after it.
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        if run.ops.len() >= MAX_OPS {
            break;
        }
        let op = byte % ops;
        let start = plan.count();
        if trace {
            eprintln!(
                "op {}: {op} (disk ops so far {start}, next bytes {:?})",
                run.ops.len() + 1,
                rest.get(..4)
            );
        }
        let mut arg = || match rest.split_first() {
            Some((&b, t)) => {
                rest = t;
                b
            }
            None => 0,
        };
        // What the model becomes if the operation takes effect.
        let mut after: Option<Model> = None;
        // States an operation of several commits may leave when a crash
        // cuts it short, besides the state before it and `after`.
        let mut between: Vec<Model> = Vec::new();
        // The state a crash cannot go back past: what the operation's
        // first commits left, once acknowledged.
        let mut acked: Option<Model> = None;
        // Deterministic mode: a write holds the flush lock until what it
        // froze is flushed here, so the flusher thread it wakes finds
        // nothing (and the counts around the write are exact).
        let holder =
            (deterministic && matches!(op, 0..=5 | 11 | 14..=19)).then(|| db.inner.clone());
        let guard = holder.as_ref().map(|inner| lock_flush(inner));
        let outcome: Result<(), Error> = match op {
            0..=3 => {
                let (k, v) = (key(arg()), value(arg(), arg()));
                let mut next = model.clone();
                next.default.insert(k.clone(), v.clone());
                after = Some(next);
                db.put(&k, &v)
            }
            4 => {
                let k = key(arg());
                let mut next = model.clone();
                next.default.remove(&k);
                after = Some(next);
                db.delete(&k)
            }
            5 => {
                let mut batch = WriteBatch::new();
                let mut next = model.clone();
                for _ in 0..arg() % 8 + 1 {
                    let k = key(arg());
                    let a = arg();
                    if a % 3 == 0 {
                        batch.delete(&k);
                        next.default.remove(&k);
                    } else {
                        let v = value(a, arg());
                        batch.put(&k, &v);
                        next.default.insert(k, v);
                    }
                }
                after = Some(next);
                db.write(&batch)
            }
            6 => db.flush(),
            7 => {
                let reopened = db.close().and_then(|()| Db::open_with_config(config(&vfs)));
                match reopened {
                    Ok(new) => {
                        db = new;
                    }
                    Err(e) => {
                        // A crash in the close's flush or in the open:
                        // open what it left (nothing was in doubt).
                        let Some(found) = plan.take_crashed() else {
                            panic!("reopen failed on a healthy simulated disk: {e}")
                        };
                        vfs.kill();
                        (db, vfs) =
                            open_until_up(CrashVfs::new(found, plan.clone()), &plan, &config);
                    }
                }
                assert_reads_as(&db, &model);
                Ok(())
            }
            8 => {
                // A power cut: the disk as it would be found, unsynced
                // writes torn, forked off; the old instance is killed and
                // dropped, and whatever its threads still do lands on the
                // old disk and fails, as a killed process never touches
                // its files again.
                let found = vfs.sim().fork_crashed_torn(u64::from(arg()));
                vfs.kill();
                drop(db);
                crashed = true;
                (db, vfs) = open_until_up(CrashVfs::new(found, plan.clone()), &plan, &config);
                // Every acknowledged write, right away: a loss later
                // overwritten would go unseen at the end.
                assert_reads_as(&db, &model);
                Ok(())
            }
            9 if alg.is_some() => db.rotate_data_key().map(|_| ()),
            10 if alg.is_some() => {
                let stop = arg() % 2 == 0;
                db.reencrypt(&mut |_| {
                    if stop {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .map(|report| assert!(stop || report.complete, "an unstopped pass completes"))
            }
            11 => {
                let snap = must(db.snapshot(), "snapshot");
                let k = key(arg());
                let mut next = model.clone();
                next.default
                    .insert(k.clone(), b"after the snapshot".to_vec());
                after = Some(next);
                let put = db.put(&k, b"after the snapshot");
                if put.is_ok() && !plan.fired() {
                    assert_eq!(collect(snap.range::<&[u8]>(..)), pairs(&model.default));
                }
                put
            }
            12 => {
                let k = key(arg());
                assert_eq!(must(db.get(&k), "get"), model.default.get(&k).cloned());
                Ok(())
            }
            // (Without encryption, 9 and 10 scan too.)
            9 | 10 | 13 => {
                let (a, b) = (key(arg()), key(arg()));
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let want: Vec<_> = model
                    .default
                    .range(lo.clone()..hi.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut back = collect(must(db.range(lo..hi), "range").rev());
                back.reverse();
                assert_eq!(back, want);
                Ok(())
            }
            14..=19 => {
                let (outcome, effect) = keyspace_ops::run(op, &db, &model, &mut arg, &plan);
                (after, between, acked) = (effect.after, effect.between, effect.acked);
                outcome
            }
            // `op` is below `ops`: nothing else.
            _ => Ok(()),
        };
        let end = plan.count();
        let flushed = match (guard, &holder) {
            (Some(guard), Some(inner)) => settle(inner, guard),
            _ if deterministic => settle(&db.inner, lock_flush(&db.inner)),
            _ => Ok(()),
        };
        drop(holder);
        let settled = plan.count();
        if let Some(found) = plan.take_crashed() {
            // The power went out inside the operation or the flush after
            // it: an acknowledged write must be there, one that failed may
            // be or not (or be as far as it was acknowledged).
            let candidates = match after {
                Some(next) if outcome.is_ok() => vec![next],
                Some(next) => {
                    let mut c = vec![acked.unwrap_or(model)];
                    c.extend(between);
                    c.push(next);
                    c
                }
                None => vec![acked.unwrap_or(model)],
            };
            (db, vfs) = reopen_after(db, &vfs, found, &plan, &config);
            model = read_as_one_of(&db, candidates);
        } else {
            must(outcome, "operation");
            must(flushed, "flush");
            if let Some(next) = after {
                model = next;
            }
        }
        run.ops.push(OpRecord {
            op,
            start,
            end,
            settled,
        });
    }
    assert_reads_as(&db, &model);
    let report = must(db.verify(), "verify");
    assert_verifies(&report, crashed || plan.fired());
    if let Err(e) = db.close() {
        let Some(found) = plan.take_crashed() else {
            panic!("close failed on a healthy simulated disk: {e}")
        };
        vfs.kill();
        let (db, _) = open_until_up(CrashVfs::new(found, plan.clone()), &plan, &config);
        assert_reads_as(&db, &model);
        let report = must(db.verify(), "verify after a crash in close");
        assert_verifies(&report, true);
        must(db.close(), "close");
    }
    run.total = plan.count();
    run.crashed_in = plan.at().filter(|&at| at <= run.total).map(|at| {
        run.ops
            .iter()
            .position(|o| o.start < at && at <= o.settled)
            .unwrap_or(run.ops.len())
    });
    run
}

/// `verify()` must find nothing, with one exception after a power cut: a
/// commit's meta page written but not yet fsynced when the power went out
/// may be torn; the open then takes the other slot (the state before that
/// commit, with the WAL replayed over it: nothing is lost) and `verify`
/// reports it — the torn slot as "damaged" until the next commit rewrites
/// it, and what the open found in any case (the finding says nothing
/// acknowledged was lost). That is the disk as it was, not a loss. The same
/// holds for a free page recorded as zeroed that a commit cut by the power
/// had begun to reuse: the torn write is neither zero nor a sealed page, and
/// no meta page refers to it. `torn_possible`: a power cut happened.
fn assert_verifies(report: &crate::VerifyReport, torn_possible: bool) {
    let torn_meta = |f: &crate::Finding| {
        torn_possible
            && (f.what.contains("other meta slot (the fallback) is damaged")
                || f.what
                    .starts_with("at open, the other meta slot did not authenticate")
                || f.what.contains("free page recorded as zeroed is not zero"))
    };
    assert!(
        report.findings.iter().all(torn_meta),
        "verify: {:?}",
        report.findings
    );
}

/// Opens the database on `vfs`; if the power goes out while it opens (the
/// plan's crash point), opens what that crash left.
fn open_until_up(
    mut vfs: CrashVfs,
    plan: &Arc<CrashPlan>,
    config: &dyn Fn(&CrashVfs) -> Config,
) -> (Db, CrashVfs) {
    loop {
        match Db::open_with_config(config(&vfs)) {
            Ok(db) => return (db, vfs),
            Err(e) => match plan.take_crashed() {
                Some(found) => {
                    vfs.kill();
                    vfs = CrashVfs::new(found, plan.clone());
                }
                None => panic!("open failed on a healthy simulated disk: {e}"),
            },
        }
    }
}

/// The flush lock.
fn lock_flush(inner: &Inner) -> MutexGuard<'_, FlushState> {
    inner.flush_state.lock()
}

/// In deterministic mode, after each operation: flushes what it froze,
/// under the flush lock `st` (which a write held since before it began).
fn settle(inner: &Inner, mut st: MutexGuard<'_, FlushState>) -> Result<(), Error> {
    inner.poisoned.check()?;
    inner.flush_frozen(&mut st)
}

/// Kills the instance on `vfs` and opens the disk `found` after its crash.
fn reopen_after(
    db: Db,
    vfs: &CrashVfs,
    found: SimVfs,
    plan: &Arc<CrashPlan>,
    config: &dyn Fn(&CrashVfs) -> Config,
) -> (Db, CrashVfs) {
    vfs.kill();
    drop(db);
    open_until_up(CrashVfs::new(found, plan.clone()), plan, config)
}

/// One of 64 keys, so operations collide.
fn key(b: u8) -> Vec<u8> {
    vec![b'k', b % 64]
}

/// A value of 0 to ~10 KiB (some past a page: overflow chains).
fn value(fill: u8, len: u8) -> Vec<u8> {
    let len = match len % 4 {
        0 => usize::from(len),
        1 | 2 => usize::from(len) * 8,
        _ => usize::from(len) * 40,
    };
    vec![fill; len]
}

fn must<T>(r: Result<T, Error>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed on a healthy simulated disk: {e}"),
    }
}

fn collect(it: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), Error>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    must(it.collect(), "iterate")
}
