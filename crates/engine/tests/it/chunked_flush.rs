//! A flush of a memtable larger than `flush_commit_size` makes several
//! page-file commits, in key order; readers, snapshots and a crash at any
//! point between (or inside) those commits lose nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Config, Db, SyncMode, WriteBatch};
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs};

use crate::support::{collect, sim_config};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Small commits: a memtable of a few hundred records takes dozens.
fn config(sim: &SimVfs, alg: Option<EncryptionAlgorithm>) -> Config {
    sim_config(sim, alg)
        .memtable_size(1 << 20)
        .flush_commit_size(4 << 10)
}

fn key(i: u32) -> Vec<u8> {
    format!("key/{:05}", (i * 7919) % 10_000).into_bytes()
}

/// Round 0 puts 400 keys; round 1 overwrites the even ones, deletes every
/// third and adds 200 new ones, in batches of 20 (each acknowledged).
fn write_round(db: &Db, round: u32, model: &mut Model) {
    let mut b = WriteBatch::new();
    let mut ops = 0;
    let mut push = |b: &mut WriteBatch, k: Vec<u8>, v: Option<Vec<u8>>| {
        match &v {
            Some(v) => b.put(&k, v),
            None => b.delete(&k),
        };
        ops += 1;
        if ops % 20 == 0 {
            db.write(b).unwrap();
            *b = WriteBatch::new();
        }
        v
    };
    let value = |i: u32| format!("r{round}/v{i:05}/{}", "x".repeat(90)).into_bytes();
    if round == 0 {
        for i in 0..400 {
            let v = push(&mut b, key(i), Some(value(i)));
            model.insert(key(i), v.unwrap_or_default());
        }
    } else {
        for i in 0..400 {
            if i % 3 == 0 {
                push(&mut b, key(i), None);
                model.remove(&key(i));
            } else if i % 2 == 0 {
                let v = push(&mut b, key(i), Some(value(i)));
                model.insert(key(i), v.unwrap_or_default());
            }
        }
        for i in 400..600 {
            let v = push(&mut b, key(i), Some(value(i)));
            model.insert(key(i), v.unwrap_or_default());
        }
    }
    db.write(&b).unwrap();
}

fn check(db: &Db, model: &Model, what: &str) {
    let all: Vec<(Vec<u8>, Vec<u8>)> = collect(db.range::<&[u8]>(..).unwrap());
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all.len(), want.len(), "{what}: key count");
    assert!(all == want, "{what}: contents differ from the model");
    for i in (0..600).step_by(7) {
        assert_eq!(
            db.get(key(i)).unwrap().as_ref(),
            model.get(&key(i)),
            "{what}: key {i}"
        );
    }
}

#[test]
fn a_large_flush_is_several_commits_and_reads_stay_right() {
    for alg in [None, Some(EncryptionAlgorithm::Aes256Gcm)] {
        let sim = SimVfs::new();
        let db = Db::open_with_config(config(&sim, alg)).unwrap();
        let mut model = Model::new();
        write_round(&db, 0, &mut model);
        db.flush().unwrap();
        let before = db.stats().unwrap();
        let old = model.clone();
        let snap = db.snapshot().unwrap();
        write_round(&db, 1, &mut model);
        let mut iter = db.range::<&[u8]>(..).unwrap();
        let first = iter.next().unwrap().unwrap();
        db.flush().unwrap();
        let after = db.stats().unwrap();
        assert_eq!(after.flushes - before.flushes, 1, "one flush");
        // About 180 counted bytes per record, 4 KiB per commit.
        let commits = after.flush_commits - before.flush_commits;
        assert!(
            commits >= 10,
            "a 70 KiB memtable took {commits} commits, want many"
        );
        assert_eq!(after.applied_seq, after.last_seq, "everything applied");
        // An iterator opened before the flush still sees its own state.
        let mut seen = vec![first];
        seen.extend(collect(iter));
        let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert!(seen == want, "iterator across the flush");
        // A snapshot from before the second round still reads the first.
        for (k, v) in &old {
            assert_eq!(snap.get(k).unwrap().as_ref(), Some(v));
        }
        drop(snap);
        check(&db, &model, "after the chunked flush");
        db.close().unwrap();
        let db = Db::open_with_config(config(&sim, alg)).unwrap();
        check(&db, &model, "after reopen");
        db.close().unwrap();
    }
}

/// Two rounds written and acknowledged, the second not yet flushed.
fn prepare(sim: &SimVfs, vfs: &FaultyVfs, alg: Option<EncryptionAlgorithm>) -> (Db, Model) {
    let cfg = config(sim, alg)
        .vfs(Arc::new(vfs.clone()))
        .sync_mode(SyncMode::Always);
    let db = Db::open_with_config(cfg).unwrap();
    let mut model = Model::new();
    write_round(&db, 0, &mut model);
    db.flush().unwrap();
    write_round(&db, 1, &mut model);
    (db, model)
}

#[test]
fn a_crash_between_the_commits_of_a_flush_loses_nothing() {
    for alg in [None, Some(EncryptionAlgorithm::ChaCha20Poly1305)] {
        // A dry run counts the fsyncs of the flush: one crash point each.
        let syncs = {
            let sim = SimVfs::new();
            let vfs = FaultyVfs::over_sim(&sim);
            let (db, _) = prepare(&sim, &vfs, alg);
            let s0 = vfs.counts().get(OpKind::Sync);
            let c0 = db.stats().unwrap().flush_commits;
            db.flush().unwrap();
            let commits = db.stats().unwrap().flush_commits - c0;
            assert!(commits >= 10, "{commits} commits");
            vfs.counts().get(OpKind::Sync) - s0
        };
        assert!(syncs >= 20, "{syncs} fsyncs for a chunked flush");
        for nth in 1..=syncs {
            let sim = SimVfs::new();
            let vfs = FaultyVfs::over_sim(&sim);
            let (db, model) = prepare(&sim, &vfs, alg);
            // The disk dies at the nth fsync of the flush: the commits before
            // it are durable, the rest are not.
            vfs.arm(FaultPlan::from(OpKind::Sync, nth));
            let _ = db.flush();
            assert!(vfs.injected() > 0, "nth {nth}: no fault hit the flush");
            std::mem::forget(db);
            sim.crash_torn(nth);
            let db = Db::open_with_config(config(&sim, alg))
                .unwrap_or_else(|e| panic!("nth {nth}: reopen failed: {e}"));
            check(&db, &model, &format!("crash at fsync {nth} of the flush"));
            // And the next flush completes what the crashed one began.
            db.flush().unwrap();
            db.close().unwrap();
            let db = Db::open_with_config(config(&sim, alg)).unwrap();
            check(&db, &model, &format!("reopen after fsync {nth}"));
            db.close().unwrap();
        }
    }
}
