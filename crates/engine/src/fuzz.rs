//! The entry point of the "operation sequence" fuzz target: the engine
//! against a `BTreeMap` model, with flushes, reopens, crashes, key
//! rotation and re-encryption, on a simulated disk.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use sealkv_crypto_envelope::{EncryptionAlgorithm, MasterKey};
use sealkv_fileio::SimVfs;

use crate::{Config, Db, SyncMode, WriteBatch};

/// The most operations one input runs (longer inputs are cut).
const MAX_OPS: usize = 160;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Reads `bytes` as a program — a protection mode, then operations (put,
/// delete, batch, flush, reopen, crash with torn writes, rotate, a
/// re-encryption pass stopped after its first step or run to the end,
/// snapshot, point read, range scan) — and runs it on a database in a
/// simulated file system and on a `BTreeMap`. Every write is durable
/// (`SyncMode::Always`), so after any crash the database must read exactly
/// as the model; at the end it must also verify clean. Panics on any
/// difference and on any error (the simulated disk never fails), which is
/// what the fuzzer looks for. Used by the `engine_ops` fuzz target and a
/// proptest; not part of the API.
#[doc(hidden)]
// `SEALKV_FUZZ_TRACE` prints each operation, to debug an input by hand.
#[allow(clippy::print_stderr)]
pub fn fuzz_ops(bytes: &[u8]) {
    let Some((&mode, mut rest)) = bytes.split_first() else {
        return;
    };
    let alg = match mode % 4 {
        0 => None,
        n => EncryptionAlgorithm::ALL.get(usize::from(n) - 1).copied(),
    };
    let mut sim = SimVfs::new();
    let config = |sim: &SimVfs| {
        let mut c = Config::new("/fuzz/db")
            .vfs(Arc::new(sim.clone()))
            .sync_mode(SyncMode::Always)
            .wal_flush_size(64 << 10)
            .wal_segment_size(64 << 10)
            .cache_size(64 << 10);
        if let (Some(alg), Ok(key)) = (alg, MasterKey::from_bytes(&[7; 32])) {
            c = c.encryption_key(key).encryption_algorithm(alg);
        }
        c
    };
    // `SEALKV_FUZZ_TRACE=1` prints each operation (to debug a found input).
    let trace = std::env::var_os("SEALKV_FUZZ_TRACE").is_some();
    let mut db = must(Db::open_with_config(config(&sim)), "open");
    let mut model = Model::new();
    let mut ops = 0;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        ops += 1;
        if ops > MAX_OPS {
            break;
        }
        if trace {
            eprintln!("op {ops}: {} (next bytes {:?})", op % 14, rest.get(..4));
        }
        let mut arg = || match rest.split_first() {
            Some((&b, t)) => {
                rest = t;
                b
            }
            None => 0,
        };
        match op % 14 {
            0..=3 => {
                let (k, v) = (key(arg()), value(arg(), arg()));
                must(db.put(&k, &v), "put");
                model.insert(k, v);
            }
            4 => {
                let k = key(arg());
                must(db.delete(&k), "delete");
                model.remove(&k);
            }
            5 => {
                let mut batch = WriteBatch::new();
                let mut next = model.clone();
                for _ in 0..arg() % 8 + 1 {
                    let k = key(arg());
                    let a = arg();
                    if a % 3 == 0 {
                        batch.delete(&k);
                        next.remove(&k);
                    } else {
                        let v = value(a, arg());
                        batch.put(&k, &v);
                        next.insert(k, v);
                    }
                }
                must(db.write(&batch), "write");
                model = next;
            }
            6 => must(db.flush(), "flush"),
            7 => {
                must(db.close(), "close");
                db = must(Db::open_with_config(config(&sim)), "reopen");
                assert_reads_as(&db, &model);
            }
            8 => {
                // A power cut: the disk as it would be found, unsynced
                // writes torn, forked off; the old instance is dropped and
                // whatever its threads still do lands on the old disk, as
                // a killed process never touches its files again.
                let crashed = sim.fork_crashed_torn(u64::from(arg()));
                drop(db);
                sim = crashed;
                db = must(Db::open_with_config(config(&sim)), "open after a crash");
                // Every acknowledged write, right away: a loss later
                // overwritten would go unseen at the end.
                assert_reads_as(&db, &model);
            }
            9 if alg.is_some() => {
                must(db.rotate_data_key(), "rotate");
            }
            10 if alg.is_some() => {
                let stop = arg() % 2 == 0;
                let report = must(
                    db.reencrypt(&mut |_| {
                        if stop {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    }),
                    "reencrypt",
                );
                assert!(stop || report.complete, "an unstopped pass completes");
            }
            11 => {
                let snap = must(db.snapshot(), "snapshot");
                let k = key(arg());
                must(db.put(&k, b"after the snapshot"), "put");
                assert_eq!(collect(snap.range::<&[u8]>(..)), pairs(&model));
                model.insert(k, b"after the snapshot".to_vec());
            }
            12 => {
                let k = key(arg());
                assert_eq!(must(db.get(&k), "get"), model.get(&k).cloned());
            }
            _ => {
                let (a, b) = (key(arg()), key(arg()));
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let want: Vec<_> = model
                    .range(lo.clone()..hi.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut back = collect(must(db.range(lo..hi), "range").rev());
                back.reverse();
                assert_eq!(back, want);
            }
        }
    }
    assert_reads_as(&db, &model);
    let report = must(db.verify(), "verify");
    assert!(report.is_clean(), "verify: {:?}", report.findings);
    must(db.close(), "close");
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

fn must<T>(r: Result<T, crate::Error>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed on a healthy simulated disk: {e}"),
    }
}

fn collect(
    it: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), crate::Error>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    must(it.collect(), "iterate")
}

/// The whole database, forward, must equal the model.
fn assert_reads_as(db: &Db, model: &Model) {
    assert_eq!(collect(must(db.range::<&[u8]>(..), "range")), pairs(model));
}

fn pairs(model: &Model) -> Vec<(Vec<u8>, Vec<u8>)> {
    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
