//! Compaction online: writers (puts, deletes, range deletes, batches and
//! transactions) and readers (snapshots) run while `Db::compact` runs again
//! and again, against a `BTreeMap` model per writer.
//!
//! Each writer owns its keys (`w<N>/...`), so its model is exact whatever
//! the others do; transactions also increment one shared counter, so they
//! conflict and retry. A writer publishes the model after each operation
//! (its version) before starting it, and marks the version acknowledged
//! once it returned: a snapshot taken between must show, for each writer,
//! one of the versions from the last acknowledged to the last started —
//! never a mix, never a hole. Readers hold each snapshot until a
//! compaction ends and read it again: the same contents. Every writer
//! checks the live database against its model at checkpoints; at the end
//! the whole database equals the models, `verify` is clean, and a reopen
//! reads the same.
//!
//! Overlap is counted, not assumed: the compactor bumps `began` before each
//! `compact()` and `ended` after it, and an operation that starts and ends
//! while one compaction is running (began = ended + 1 before, ended
//! unchanged after) counts as inside it. The test asserts that writes and
//! snapshot reads ran inside compactions that moved pages.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, Error, WriteBatch};
use sealkv_fileio::{SimVfs, SplitMix64};

use crate::support::{collect, sim_config};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// A model with each value's hash in place of the value: what a writer
/// publishes for every version (small enough to keep them all).
type Digest = BTreeMap<Vec<u8>, u64>;

fn digest<'a>(pairs: impl IntoIterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> Digest {
    pairs
        .into_iter()
        .map(|(k, v)| {
            let mut h = DefaultHasher::new();
            v.hash(&mut h);
            (k.clone(), h.finish())
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const WRITERS: usize = 3;
const READERS: usize = 2;
/// Keys per writer.
const KEYS: u64 = 200;
/// Operations each writer makes at least.
const MIN_OPS: u64 = 300;
/// A writer compares the database with its model every this many
/// operations.
const CHECKPOINT: u64 = 50;
/// Compactions that moved pages with a write inside, at least, before the
/// run stops.
const WANT_OVERLAPS: usize = 3;
/// The run gives up (and the test fails) after this many compactions.
const MAX_COMPACTIONS: u64 = 2000;
const COUNTER: &[u8] = b"counter";

fn key(w: usize, k: u64) -> Vec<u8> {
    format!("w{w}/{k:03}").into_bytes()
}

fn prefix(w: usize) -> Vec<u8> {
    format!("w{w}/").into_bytes()
}

/// A value naming its writer and version; one in twenty takes overflow
/// pages.
fn value(w: usize, v: u64, rng: &mut SplitMix64) -> Vec<u8> {
    let len = if rng.below(20) == 0 {
        4000 + rng.below(3000)
    } else {
        20 + rng.below(180)
    };
    let mut out = format!("{w}:{v}:").into_bytes();
    out.resize(len as usize, (v % 251) as u8);
    out
}

/// One writer's published state: its model after each version (as a
/// digest), and the versions started and acknowledged.
#[derive(Default)]
struct Published {
    history: Mutex<Vec<Arc<Digest>>>,
    started: AtomicU64,
    acked: AtomicU64,
}

/// Compactions begun and ended, and what ran inside them.
#[derive(Default)]
struct Overlap {
    began: AtomicU64,
    ended: AtomicU64,
    /// Pages moved, by compaction number (from 1).
    moved: Mutex<BTreeMap<u64, u64>>,
    /// Compactions with a whole write inside.
    writes_inside: Mutex<BTreeSet<u64>>,
    /// Compactions with a whole snapshot scan inside.
    reads_inside: Mutex<BTreeSet<u64>>,
    /// Snapshots read again, the same, after a compaction ended.
    held_across: AtomicU64,
    stop: AtomicBool,
}

impl Overlap {
    /// The compaction running now, if any, with the count ended.
    fn running(&self) -> (Option<u64>, u64) {
        let e = self.ended.load(SeqCst);
        let b = self.began.load(SeqCst);
        ((b == e + 1).then_some(b), e)
    }

    /// Runs `f`; if it ran whole inside one compaction, records it in `set`.
    fn inside<T>(&self, set: &Mutex<BTreeSet<u64>>, f: impl FnOnce() -> T) -> T {
        let (during, ended) = self.running();
        let out = f();
        if let Some(n) = during
            && self.ended.load(SeqCst) == ended
        {
            lock(set).insert(n);
        }
        out
    }

    /// Compactions that moved pages and had something of `set` inside.
    fn moving(&self, set: &Mutex<BTreeSet<u64>>) -> usize {
        let moved = lock(&self.moved);
        lock(set)
            .iter()
            .filter(|n| moved.get(n).is_some_and(|m| *m > 0))
            .count()
    }
}

/// What a writer's operation does to its model (applied before the
/// operation starts, so readers know the version).
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    DeleteRange(Vec<u8>, Vec<u8>),
    Batch(Vec<(Vec<u8>, Vec<u8>)>),
    /// Moves the value of the first key to the second (deleting the first)
    /// and increments the counter, in one transaction.
    Move(Vec<u8>, Vec<u8>),
}

fn choose(w: usize, v: u64, rng: &mut SplitMix64) -> Op {
    let k = |rng: &mut SplitMix64| key(w, rng.below(KEYS));
    match rng.below(100) {
        0..45 => Op::Put(k(rng), value(w, v, rng)),
        45..65 => Op::Delete(k(rng)),
        65..75 => {
            let lo = rng.below(KEYS);
            let hi = (lo + 1 + rng.below(30)).min(KEYS);
            Op::DeleteRange(key(w, lo), key(w, hi))
        }
        75..85 => Op::Batch((0..20).map(|_| (k(rng), value(w, v, rng))).collect()),
        _ => Op::Move(k(rng), k(rng)),
    }
}

fn apply_to_model(m: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) => {
            m.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            m.remove(k);
        }
        Op::DeleteRange(lo, hi) => m.retain(|k, _| k < lo || k >= hi),
        Op::Batch(pairs) => m.extend(pairs.iter().cloned()),
        Op::Move(from, to) => {
            if let Some(v) = m.remove(from) {
                m.insert(to.clone(), v);
            } else {
                m.remove(to);
            }
        }
    }
}

/// Runs `op` against the database; returns the transactions committed.
fn apply_to_db(db: &Db, op: &Op) -> Result<u64, Error> {
    match op {
        Op::Put(k, v) => db.put(k, v).map(|()| 0),
        Op::Delete(k) => db.delete(k).map(|()| 0),
        Op::DeleteRange(lo, hi) => db.delete_range(lo.clone()..hi.clone()).map(|_| 0),
        Op::Batch(pairs) => {
            let mut b = WriteBatch::new();
            for (k, v) in pairs {
                b.put(k.clone(), v.clone());
            }
            db.write(&b).map(|()| 0)
        }
        Op::Move(from, to) => loop {
            let done = db.transaction(|tx| {
                match tx.get(from)? {
                    Some(v) => {
                        tx.delete(from)?;
                        tx.put(to, v)?;
                    }
                    None => tx.delete(to)?,
                }
                let n = tx.get(COUNTER)?.map_or(0, |c| {
                    u64::from_be_bytes(c.try_into().expect("an 8-byte counter"))
                });
                tx.put(COUNTER, (n + 1).to_be_bytes())?;
                Ok::<_, Error>(())
            });
            match done {
                Ok(()) => return Ok(1),
                // Gave up after its retries: nothing written; again.
                Err(Error::Conflict) => {}
                Err(e) => return Err(e),
            }
        },
    }
}

/// The pairs of `pairs` under writer `w`'s prefix.
fn project(pairs: &[(Vec<u8>, Vec<u8>)], w: usize) -> Model {
    let p = prefix(w);
    pairs
        .iter()
        .filter(|(k, _)| k.starts_with(&p))
        .cloned()
        .collect()
}

/// Writer `w`: its operations until it made `MIN_OPS` and the run stops;
/// returns its final model and the transactions it committed.
fn writer(db: &Db, w: usize, me: &Published, overlap: &Overlap) -> (Model, u64) {
    let mut rng = SplitMix64::new(0xC0FFEE ^ w as u64);
    let mut model = Model::new();
    let mut txns = 0;
    let mut v = 0u64;
    while v < MIN_OPS || !overlap.stop.load(SeqCst) {
        v += 1;
        let op = choose(w, v, &mut rng);
        apply_to_model(&mut model, &op);
        lock(&me.history).push(Arc::new(digest(&model)));
        me.started.store(v, SeqCst);
        txns += overlap.inside(&overlap.writes_inside, || {
            apply_to_db(db, &op).unwrap_or_else(|e| panic!("writer {w}, op {v}: {e}"))
        });
        me.acked.store(v, SeqCst);
        if v.is_multiple_of(CHECKPOINT) {
            let live = project(&collect(db.prefix(prefix(w)).unwrap()), w);
            assert!(live == model, "writer {w} at op {v}: the database differs");
        }
    }
    (model, txns)
}

/// Takes snapshots, checks each against the writers' published versions,
/// holds it until a compaction ends and reads it again.
fn reader(db: &Db, published: &[Published], overlap: &Overlap) -> u64 {
    let mut snapshots = 0;
    while !overlap.stop.load(SeqCst) {
        let lo: Vec<u64> = published.iter().map(|p| p.acked.load(SeqCst)).collect();
        let snap = db.snapshot().unwrap();
        let hi: Vec<u64> = published.iter().map(|p| p.started.load(SeqCst)).collect();
        let ended = overlap.ended.load(SeqCst);
        let first = overlap.inside(&overlap.reads_inside, || collect(snap.iter()));
        for (w, p) in published.iter().enumerate() {
            let seen = digest(&project(&first, w));
            let history = lock(&p.history);
            let ok = (lo[w]..=hi[w]).any(|v| match v {
                0 => seen.is_empty(),
                v => *history[v as usize - 1] == seen,
            });
            assert!(
                ok,
                "a snapshot shows writer {w} in no state between its versions {} and {}",
                lo[w], hi[w]
            );
        }
        // Held across a compaction: the same contents after it.
        while overlap.ended.load(SeqCst) == ended && !overlap.stop.load(SeqCst) {
            std::thread::yield_now();
        }
        if overlap.ended.load(SeqCst) > ended {
            assert!(
                collect(snap.iter()) == first,
                "a snapshot read differently after a compaction"
            );
            overlap.held_across.fetch_add(1, SeqCst);
        }
        snapshots += 1;
    }
    snapshots
}

/// Compacts again and again until every writer made its operations and
/// enough compactions that moved pages had writes and reads inside.
fn compactor(db: &Db, published: &[Published], overlap: &Overlap) {
    loop {
        let writers_done = published.iter().all(|p| p.acked.load(SeqCst) >= MIN_OPS);
        let enough = overlap.moving(&overlap.writes_inside) >= WANT_OVERLAPS
            && overlap.moving(&overlap.reads_inside) >= 1;
        if (writers_done && enough) || overlap.began.load(SeqCst) >= MAX_COMPACTIONS {
            break;
        }
        let n = overlap.began.fetch_add(1, SeqCst) + 1;
        let report = db.compact().unwrap();
        lock(&overlap.moved).insert(n, report.pages_moved);
        overlap.ended.fetch_add(1, SeqCst);
    }
    overlap.stop.store(true, SeqCst);
}

#[test]
fn compaction_runs_under_writers_and_readers_and_matches_the_model() {
    let vfs = SimVfs::new();
    let config = || sim_config(&vfs, Some(EncryptionAlgorithm::Aes256Gcm));
    let db = Db::open_with_config(config()).unwrap();
    let published: Vec<Published> = (0..WRITERS).map(|_| Published::default()).collect();
    let overlap = Overlap::default();
    let (models, snapshots) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, me, overlap) = (&db, &published[w], &overlap);
                s.spawn(move || writer(db, w, me, overlap))
            })
            .collect();
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (db, published, overlap) = (&db, &published, &overlap);
                s.spawn(move || reader(db, published, overlap))
            })
            .collect();
        compactor(&db, &published, &overlap);
        let models: Vec<(Model, u64)> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        let snapshots: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
        (models, snapshots)
    });
    let txns: u64 = models.iter().map(|(_, n)| n).sum();

    // The overlap happened: compactions that moved pages ran while writes
    // and snapshot scans were under way, and snapshots outlived them.
    let compactions = overlap.ended.load(SeqCst);
    assert!(compactions < MAX_COMPACTIONS, "too few overlaps");
    let moved: u64 = lock(&overlap.moved).values().sum();
    assert!(moved > 0, "no compaction moved a page");
    assert!(overlap.moving(&overlap.writes_inside) >= WANT_OVERLAPS);
    assert!(overlap.moving(&overlap.reads_inside) >= 1);
    assert!(overlap.held_across.load(SeqCst) > 0);
    assert!(txns > 0 && snapshots > 0);

    // The end: the database equals the models and the counter the
    // transactions committed.
    let mut want = Model::new();
    for (model, _) in &models {
        want.extend(model.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    want.insert(COUNTER.to_vec(), txns.to_be_bytes().to_vec());
    let check = |db: &Db| {
        let got: Model = collect(db.iter().unwrap()).into_iter().collect();
        assert!(got == want, "the database differs from the models");
    };
    check(&db);
    let report = db.compact().unwrap();
    assert!(report.bytes_after <= report.bytes_before);
    check(&db);
    let verified = db.verify().unwrap();
    assert!(verified.is_clean(), "{:?}", verified.findings);
    db.close().unwrap();
    let db = Db::open_with_config(config()).unwrap();
    check(&db);
    assert!(db.verify().unwrap().is_clean());
    eprintln!(
        "compact_race: {compactions} compactions ({moved} pages moved), {} with writes inside, {} with snapshot reads inside, {} snapshots held across one, {txns} transactions, {snapshots} snapshots",
        overlap.moving(&overlap.writes_inside),
        overlap.moving(&overlap.reads_inside),
        overlap.held_across.load(SeqCst)
    );
}
