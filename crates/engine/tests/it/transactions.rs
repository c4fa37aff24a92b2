//! Serializable transactions: what a transaction sees, when its commit is
//! refused, and a concurrent model check that every committed history is
//! serializable.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Barrier, Mutex};

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, Durability, Error};
use sealkv_fileio::SimVfs;

use crate::support::{collect, sim_config};

fn db() -> (SimVfs, Db) {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, Some(EncryptionAlgorithm::Aes256Gcm))).unwrap();
    (sim, db)
}

#[test]
fn a_transaction_reads_its_snapshot_and_its_own_writes() {
    let (_sim, db) = db();
    let ks = db.keyspace("ks").unwrap();
    db.put(b"a", b"1").unwrap();
    ks.put(b"x", b"1").unwrap();
    let mut tx = db.begin_transaction().unwrap();
    db.put(b"a", b"2").unwrap(); // after the snapshot
    assert_eq!(tx.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    tx.put(b"a", b"mine").unwrap();
    tx.delete_in(&ks, b"x").unwrap();
    tx.put_in(&ks, b"y", b"new").unwrap();
    assert_eq!(tx.get(b"a").unwrap().as_deref(), Some(&b"mine"[..]));
    assert_eq!(tx.get_in(&ks, b"x").unwrap(), None);
    // Iterators merge the writes over the snapshot.
    assert_eq!(
        collect(tx.range_in(&ks, ..b"zz".as_slice()).unwrap()),
        vec![(b"y".to_vec(), b"new".to_vec())]
    );
    assert_eq!(
        collect(tx.prefix(b"").unwrap().rev()),
        vec![(b"a".to_vec(), b"mine".to_vec())]
    );
    // Nothing is visible outside before the commit.
    assert_eq!(ks.get(b"y").unwrap(), None);
    tx.rollback();
    assert_eq!(ks.get(b"x").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn a_read_changed_after_the_snapshot_refuses_the_commit_and_writes_nothing() {
    let (_sim, db) = db();
    let ks = db.keyspace("ks").unwrap();
    db.put(b"a", b"0").unwrap();
    let mut tx = db.begin_transaction().unwrap();
    let _ = tx.get(b"a").unwrap();
    tx.put_in(&ks, b"other", b"x").unwrap();
    db.put(b"a", b"changed").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict)));
    assert_eq!(ks.get(b"other").unwrap(), None);
    assert_eq!(db.stats().unwrap().conflicts, 1);

    // A write elsewhere does not refuse it.
    let mut tx = db.begin_transaction().unwrap();
    let _ = tx.get(b"a").unwrap();
    tx.put(b"a", b"mine").unwrap();
    db.put(b"b", b"elsewhere").unwrap();
    ks.put(b"a", b"same key, other keyspace").unwrap();
    tx.commit().unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"mine"[..]));
}

#[test]
fn a_key_appearing_in_an_iterated_range_refuses_the_commit() {
    let (_sim, db) = db();
    db.put(b"p/1", b"x").unwrap();
    db.put(b"p/5", b"x").unwrap();
    db.put(b"q", b"x").unwrap();

    // Run to its end: the whole prefix was read, gaps included.
    let mut tx = db.begin_transaction().unwrap();
    assert_eq!(collect(tx.prefix(b"p/").unwrap()).len(), 2);
    tx.put(b"count", b"2").unwrap();
    db.put(b"p/3", b"phantom").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict)));

    // Stopped after the first key: only up to it counts as read.
    let mut tx = db.begin_transaction().unwrap();
    let first = tx.prefix(b"p/").unwrap().next().unwrap().unwrap();
    assert_eq!(first.0, b"p/1");
    tx.put(b"first", &first.0).unwrap();
    db.put(b"p/4", b"past what it read").unwrap();
    tx.commit().unwrap();

    let mut tx = db.begin_transaction().unwrap();
    let _ = tx.prefix(b"p/").unwrap().next();
    tx.put(b"first", b"again").unwrap();
    db.put(b"p/0", b"before the first").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict)));

    // From the back, the same.
    let mut tx = db.begin_transaction().unwrap();
    let last = tx.prefix(b"p/").unwrap().next_back().unwrap().unwrap();
    assert_eq!(last.0, b"p/5");
    tx.put(b"last", b"5").unwrap();
    db.put(b"p/2", b"below what it read").unwrap();
    tx.commit().unwrap();
    let mut tx = db.begin_transaction().unwrap();
    let _ = tx.prefix(b"p/").unwrap().next_back();
    tx.put(b"last", b"6").unwrap();
    db.put(b"p/6", b"above").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict)));
}

#[test]
fn reads_without_own_writes_see_the_snapshot_while_writers_commit() {
    let (_sim, db) = db();
    for k in [&b"k1"[..], b"k3", b"k5"] {
        db.put(k, b"old").unwrap();
    }
    // Nothing in the memtables: the transaction's reads go to the tree
    // alone.
    db.flush().unwrap();
    assert_eq!(db.stats().unwrap().memtable_bytes, 0);
    let mut tx = db.begin_transaction().unwrap();
    let mut iter = tx.range::<&[u8]>(..).unwrap();
    assert_eq!(iter.next().unwrap().unwrap().0, b"k1");
    // Writers commit into the range while the iterator is open.
    db.put(b"k2", b"new").unwrap();
    db.put(b"k3", b"new").unwrap();
    db.delete(b"k5").unwrap();
    // The overlap happened: the memtable holds the writes, a fresh read
    // sees them.
    assert!(db.stats().unwrap().memtable_bytes > 0);
    assert_eq!(db.get(b"k2").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(db.get(b"k5").unwrap(), None);
    let old = |k: &[u8]| (k.to_vec(), b"old".to_vec());
    assert_eq!(collect(iter), vec![old(b"k3"), old(b"k5")]);
    assert_eq!(tx.get(b"k2").unwrap(), None);
    assert_eq!(tx.get(b"k3").unwrap().as_deref(), Some(&b"old"[..]));
    // And after the writes reach the tree.
    db.flush().unwrap();
    assert_eq!(db.stats().unwrap().memtable_bytes, 0);
    assert_eq!(tx.get(b"k5").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(
        collect(tx.range::<&[u8]>(..).unwrap().rev()),
        vec![old(b"k5"), old(b"k3"), old(b"k1")]
    );
    // What it read counts: a write of its own is refused.
    tx.put(b"mine", b"x").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict)));
    assert_eq!(db.get(b"mine").unwrap(), None);
}

#[test]
fn every_key_read_counts_at_commit() {
    let (_sim, db) = db();
    let keys: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("key{i:05}").into_bytes())
        .collect();
    for k in &keys {
        db.put(k, b"v").unwrap();
    }
    db.flush().unwrap();
    // Another writer changes one key read among many (the 150th); a
    // transaction that read them all is refused, one that read all but
    // it commits.
    for skip in [None, Some(150)] {
        let mut tx = db.begin_transaction().unwrap();
        for (i, k) in keys.iter().enumerate() {
            if Some(i) != skip {
                assert_eq!(tx.get(k).unwrap().as_deref(), Some(&b"v"[..]));
            }
        }
        tx.put(b"mine", b"x").unwrap();
        db.put(&keys[150], b"changed").unwrap();
        let outcome = tx.commit();
        match skip {
            None => assert!(matches!(outcome, Err(Error::Conflict)), "{outcome:?}"),
            Some(_) => outcome.unwrap(),
        }
    }
}

#[test]
fn a_reader_reads_as_the_transaction_does_while_writers_commit() {
    let (_sim, db) = db();
    let ks = db.keyspace("ks").unwrap();
    let key = |i: u32| format!("key{i:05}").into_bytes();
    for i in 0..2_000 {
        ks.put(key(i), b"old").unwrap();
    }
    db.flush().unwrap();
    let mut tx = db.begin_transaction().unwrap();
    tx.put_in(&ks, key(10), b"mine").unwrap();
    tx.delete_in(&ks, key(20)).unwrap();
    // Writers commit over keys the reader is about to read.
    for i in (0..2_000).step_by(3) {
        ks.put(key(i), b"new").unwrap();
    }
    ks.put(key(5_000), b"new").unwrap();
    // The overlap happened: a fresh read sees the writes.
    assert_eq!(ks.get(key(0)).unwrap().as_deref(), Some(&b"new"[..]));
    {
        let mut reader = tx.reader_in(&ks).unwrap();
        // Ascending runs, a jump back, keys absent from the snapshot.
        let order = (0..2_000).step_by(7).chain((0..50).rev()).chain([5_000, 3]);
        for i in order {
            let want: Option<&[u8]> = match i {
                10 => Some(b"mine"),
                20 | 5_000 => None,
                _ => Some(b"old"),
            };
            assert_eq!(reader.get(key(i)).unwrap().as_deref(), want, "key {i}");
        }
    }
    // What the reader read counts: the commit is refused.
    assert!(matches!(tx.commit(), Err(Error::Conflict)));
    assert_eq!(ks.get(key(10)).unwrap().as_deref(), Some(&b"old"[..]));

    // A reader over a keyspace dropped meanwhile is refused, as the
    // transaction's own reads are.
    let mut tx = db.begin_transaction().unwrap();
    let mut reader = tx.reader_in(&ks).unwrap();
    assert!(reader.get(key(1)).unwrap().is_some());
    assert!(db.drop_keyspace("ks").unwrap());
    assert!(matches!(
        reader.get(key(1)),
        Err(Error::KeyspaceDropped { .. })
    ));
}

#[test]
fn reads_only_never_conflict_and_blind_writes_are_never_refused() {
    let (_sim, db) = db();
    db.put(b"a", b"0").unwrap();
    let mut reader = db.begin_transaction().unwrap();
    let _ = reader.get(b"a").unwrap();
    let _ = collect(reader.range::<&[u8]>(..).unwrap());
    let mut blind = db.begin_transaction().unwrap();
    blind.put(b"a", b"blind").unwrap();
    db.put(b"a", b"1").unwrap();
    reader.commit().unwrap();
    blind.commit().unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"blind"[..]));
}

#[test]
fn transaction_retries_a_conflict_and_returns_errors_as_they_are() {
    let (_sim, db) = db();
    db.put(b"n", 0u64.to_be_bytes()).unwrap();
    let mut attempts = 0;
    let out = db
        .transaction(|tx| {
            attempts += 1;
            let n = u64::from_be_bytes(tx.get(b"n")?.unwrap().try_into().unwrap());
            if attempts == 1 {
                // Another writer changes what this attempt read.
                db.put(b"n", 100u64.to_be_bytes())?;
            }
            tx.put(b"n", (n + 1).to_be_bytes())?;
            Ok::<_, Error>(n)
        })
        .unwrap();
    assert_eq!((attempts, out), (2, 100));
    assert_eq!(db.get(b"n").unwrap(), Some(101u64.to_be_bytes().to_vec()));
    assert_eq!(db.stats().unwrap().transaction_retries, 1);

    #[derive(Debug, PartialEq)]
    enum AppError {
        Db,
        Refused,
    }
    impl From<Error> for AppError {
        fn from(_: Error) -> Self {
            AppError::Db
        }
    }
    let r: Result<(), AppError> = db.transaction(|tx| {
        tx.put(b"n", b"never")?;
        Err(AppError::Refused)
    });
    assert_eq!(r, Err(AppError::Refused));
    assert_eq!(db.get(b"n").unwrap(), Some(101u64.to_be_bytes().to_vec()));

    // With retries exhausted, the conflict comes back.
    let sim = SimVfs::new();
    let strict = Db::open_with_config(sim_config(&sim, None).transaction_retries(0)).unwrap();
    let r = strict.transaction(|tx| {
        let _ = tx.get(b"k")?;
        strict.put(b"k", b"always changed")?;
        tx.put(b"k", b"mine")
    });
    assert!(matches!(r, Err(Error::Conflict)));
}

#[test]
fn compare_and_swap_and_update_fetch() {
    let (_sim, db) = db();
    let ks = db.keyspace("ks").unwrap();
    assert_eq!(db.compare_and_swap(b"k", None, Some(b"1")).unwrap(), Ok(()));
    let miss = db
        .compare_and_swap(b"k", None, Some(b"2"))
        .unwrap()
        .unwrap_err();
    assert_eq!(miss.current.as_deref(), Some(&b"1"[..]));
    assert_eq!(miss.proposed.as_deref(), Some(&b"2"[..]));
    assert_eq!(db.compare_and_swap(b"k", Some(b"1"), None).unwrap(), Ok(()));
    assert_eq!(db.get(b"k").unwrap(), None);
    assert_eq!(ks.get(b"k").unwrap(), None);
    for i in 1..=3u8 {
        let new = ks
            .update_fetch(b"c", |v| Some(vec![v.map_or(0, |v| v[0]) + 1]))
            .unwrap();
        assert_eq!(new, Some(vec![i]));
    }
    assert_eq!(ks.update_fetch(b"c", |_| None).unwrap(), None);
    assert_eq!(ks.get(b"c").unwrap(), None);
}

/// A buffered commit is not fsynced: a power cut loses it, and never a
/// synced write before it.
#[test]
fn a_buffered_transaction_may_be_lost_in_a_power_cut() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    db.put(b"synced", b"1").unwrap();
    let mut tx = db.begin_transaction().unwrap();
    tx.set_durability(Durability::Buffered);
    tx.put(b"buffered", b"1").unwrap();
    tx.commit().unwrap();
    assert_eq!(db.get(b"buffered").unwrap().as_deref(), Some(&b"1"[..]));
    sim.crash();
    std::mem::forget(db);
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    assert_eq!(db.get(b"synced").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"buffered").unwrap(), None);
}

/// Bank transfers from several threads: one committed transaction per
/// transfer, each reading two balances and writing both. Every balance
/// carries a version (bumped by each write), so the check can rebuild the
/// order of writes per account: each version written exactly once (no
/// lost update), each transaction read the version just before the one it
/// wrote, and the transactions ordered by those reads-from edges form no
/// cycle — the history is serializable. The total never changes, in any
/// snapshot.
fn bank(threads: usize, transfers: usize, accounts: u32) {
    let (_sim, db) = db();
    let bank = db.keyspace("bank").unwrap();
    let start = 1_000u64;
    for a in 0..accounts {
        bank.put(a.to_be_bytes(), encode(start, 0)).unwrap();
    }
    // (account, version read, version written) per committed transaction.
    type Txn = Vec<(u32, u64, u64)>;
    let log: Arc<Mutex<Vec<Txn>>> = Arc::default();
    let gate = Arc::new(Barrier::new(threads + 1));
    // Every thread's first transfer moves money from account 0 to 1, and
    // its first attempt waits here after its reads: all of them read the
    // same versions, so all but one must be refused — the contention the
    // test is about happens for certain, whatever the scheduling.
    let first = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (db, bank, log, gate, first) = (
                db.clone(),
                bank.clone(),
                log.clone(),
                gate.clone(),
                first.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                gate.wait();
                for j in 0..transfers {
                    let (from, to) = if j == 0 {
                        (0, 1)
                    } else {
                        let from = (next(&mut rng) % u64::from(accounts)) as u32;
                        let to = (from + 1 + (next(&mut rng) % u64::from(accounts - 1)) as u32)
                            % accounts;
                        (from, to)
                    };
                    let amount = next(&mut rng) % 50;
                    let mut attempt = 0;
                    let txn = db
                        .transaction(|tx| {
                            attempt += 1;
                            let (fb, fv) = decode(&tx.get_in(&bank, from.to_be_bytes())?.unwrap());
                            let (tb, tv) = decode(&tx.get_in(&bank, to.to_be_bytes())?.unwrap());
                            if j == 0 && attempt == 1 {
                                first.wait();
                            }
                            let amount = amount.min(fb);
                            tx.put_in(&bank, from.to_be_bytes(), encode(fb - amount, fv + 1))?;
                            tx.put_in(&bank, to.to_be_bytes(), encode(tb + amount, tv + 1))?;
                            Ok::<_, Error>(vec![(from, fv, fv + 1), (to, tv, tv + 1)])
                        })
                        .unwrap();
                    log.lock().unwrap().push(txn);
                }
            })
        })
        .collect();
    // An auditor: every snapshot sums to the same total.
    let auditor = {
        let (db, bank, gate) = (db.clone(), bank.clone(), gate.clone());
        std::thread::spawn(move || {
            gate.wait();
            let mut audits = 0;
            for _ in 0..20 {
                let snap = db.snapshot().unwrap();
                let total: u64 = snap
                    .iter_in(&bank)
                    .unwrap()
                    .map(|r| decode(&r.unwrap().1).0)
                    .sum();
                assert_eq!(total, start * u64::from(accounts));
                audits += 1;
            }
            audits
        })
    };
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(auditor.join().unwrap(), 20);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), threads * transfers);

    // Each (account, version) written by exactly one transaction.
    let mut writer: HashMap<(u32, u64), usize> = HashMap::new();
    for (i, txn) in log.iter().enumerate() {
        for &(acct, read, wrote) in txn {
            assert_eq!(wrote, read + 1);
            assert!(
                writer.insert((acct, wrote), i).is_none(),
                "lost update on {acct}@{wrote}"
            );
        }
    }
    // Every version up to the last one of each account was written, and the
    // final balances sum to the start.
    let finals: BTreeMap<u32, (u64, u64)> = collect(bank.iter().unwrap())
        .into_iter()
        .map(|(k, v)| (u32::from_be_bytes(k.try_into().unwrap()), decode(&v)))
        .collect();
    for (&acct, &(_, version)) in &finals {
        for v in 1..=version {
            assert!(writer.contains_key(&(acct, v)), "{acct}@{v} missing");
        }
    }
    assert_eq!(
        finals.values().map(|(b, _)| b).sum::<u64>(),
        start * u64::from(accounts)
    );

    // Serializable: the edges "wrote the version T read" -> T and
    // T -> "wrote the next version" form no cycle (Kahn's algorithm).
    let n = log.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for (i, txn) in log.iter().enumerate() {
        for &(acct, read, wrote) in txn {
            if let Some(&w) = writer.get(&(acct, read)) {
                out[w].push(i);
                indegree[i] += 1;
            }
            if let Some(&next_writer) = writer.get(&(acct, wrote + 1)) {
                out[i].push(next_writer);
                indegree[next_writer] += 1;
            }
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut ordered = 0;
    while let Some(i) = ready.pop() {
        ordered += 1;
        for &j in &out[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.push(j);
            }
        }
    }
    assert_eq!(ordered, n, "the committed transactions form a cycle");
    let stats = db.stats().unwrap();
    assert_eq!(stats.transactions, (threads * transfers) as u64);
    // The first transfers all read the same versions of accounts 0 and 1:
    // all but one were refused at least once.
    assert!(
        stats.conflicts >= threads as u64 - 1,
        "{} conflicts",
        stats.conflicts
    );
    assert_eq!(stats.transaction_retries, stats.conflicts);
}

fn encode(balance: u64, version: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&balance.to_be_bytes());
    out[8..].copy_from_slice(&version.to_be_bytes());
    out
}

fn decode(v: &[u8]) -> (u64, u64) {
    (
        u64::from_be_bytes(v[..8].try_into().unwrap()),
        u64::from_be_bytes(v[8..16].try_into().unwrap()),
    )
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn concurrent_transfers_are_serializable() {
    bank(4, 150, 6);
}

#[test]
#[ignore = "long: many transfers on few accounts (run with --ignored)"]
fn concurrent_transfers_are_serializable_long() {
    bank(8, 5_000, 10);
}

/// One step of a transaction in the model test.
#[derive(Debug, Clone)]
enum TxStep {
    Put(u8, u8),
    Delete(u8),
    Get(u8),
    /// Keys in `lo..hi`, forwards or backwards.
    Range(u8, u8, bool),
}

fn tx_step() -> impl proptest::strategy::Strategy<Value = TxStep> {
    use proptest::prelude::*;
    prop_oneof![
        (0u8..12, any::<u8>()).prop_map(|(k, v)| TxStep::Put(k, v)),
        (0u8..12).prop_map(TxStep::Delete),
        (0u8..12).prop_map(TxStep::Get),
        (0u8..12, 0u8..12, any::<bool>()).prop_map(|(a, b, rev)| TxStep::Range(a, b, rev)),
    ]
}

/// The model's contents: (in the keyspace, not the default one; key) ->
/// value.
type ModelContents = BTreeMap<(bool, Vec<u8>), Vec<u8>>;

/// Keys share a long prefix, as a collection's keys do.
fn model_key(k: u8) -> Vec<u8> {
    let mut key = b"shared/prefix/".to_vec();
    key.push(k);
    key
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]

    /// A transaction over a snapshot reads its own writes over the
    /// snapshot, in a keyspace and the default one alike, and its commit
    /// leaves exactly the model's contents.
    #[test]
    fn a_transaction_reads_and_commits_as_a_model_does(
        before in proptest::collection::btree_map(0u8..12, proptest::prelude::any::<u8>(), 0..8),
        steps in proptest::collection::vec((proptest::prelude::any::<bool>(), tx_step()), 0..60),
    ) {
        let (_sim, db) = db();
        let ks = db.keyspace("ks").unwrap();
        let mut model = ModelContents::new();
        for (k, v) in &before {
            db.put(model_key(*k), [*v]).unwrap();
            ks.put(model_key(*k), [*v, 1]).unwrap();
            model.insert((false, model_key(*k)), vec![*v]);
            model.insert((true, model_key(*k)), vec![*v, 1]);
        }
        let mut tx = db.begin_transaction().unwrap();
        for (in_ks, step) in &steps {
            let in_ks = *in_ks;
            match step {
                TxStep::Put(k, v) => {
                    if in_ks { tx.put_in(&ks, model_key(*k), [*v]).unwrap() } else { tx.put(model_key(*k), [*v]).unwrap() }
                    model.insert((in_ks, model_key(*k)), vec![*v]);
                }
                TxStep::Delete(k) => {
                    if in_ks { tx.delete_in(&ks, model_key(*k)).unwrap() } else { tx.delete(model_key(*k)).unwrap() }
                    model.remove(&(in_ks, model_key(*k)));
                }
                TxStep::Get(k) => {
                    let got = if in_ks { tx.get_in(&ks, model_key(*k)).unwrap() } else { tx.get(model_key(*k)).unwrap() };
                    proptest::prop_assert_eq!(got.as_ref(), model.get(&(in_ks, model_key(*k))));
                }
                TxStep::Range(a, b, rev) => {
                    let (lo, hi) = (model_key(*a), model_key(*b));
                    let iter = if in_ks {
                        tx.range_in(&ks, lo.clone()..hi.clone()).unwrap()
                    } else {
                        tx.range(lo.clone()..hi.clone()).unwrap()
                    };
                    let got = if *rev { collect(iter.rev()) } else { collect(iter) };
                    let mut want: Vec<(Vec<u8>, Vec<u8>)> = model
                        .iter()
                        .filter(|((m, k), _)| *m == in_ks && *k >= lo && *k < hi)
                        .map(|((_, k), v)| (k.clone(), v.clone()))
                        .collect();
                    if *rev {
                        want.reverse();
                    }
                    proptest::prop_assert_eq!(got, want);
                }
            }
        }
        tx.commit().unwrap();
        // As a list: a key yielded twice would show.
        let stored = collect(db.prefix(b"").unwrap())
            .into_iter()
            .map(|(k, v)| ((false, k), v))
            .chain(collect(ks.prefix(b"").unwrap()).into_iter().map(|(k, v)| ((true, k), v)))
            .collect::<Vec<_>>();
        proptest::prop_assert_eq!(stored, model.into_iter().collect::<Vec<_>>());
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// `TxnReader::get_into` through one reused buffer and
    /// `TxnIter::next_ref` read what the model says the transaction sees:
    /// its snapshot (part flushed to the tree, part in the memtable) under
    /// its own writes, never a write committed after the snapshot; and
    /// what they read counts at commit as `get` and `next` count it.
    #[test]
    fn buffered_reads_see_the_snapshot_and_own_writes(
        stored in proptest::collection::btree_map(0u16..400, 0u8..4, 0..200),
        flush_below in 0u16..400,
        own in proptest::collection::btree_map(0u16..400, proptest::option::of(0u8..4), 0..20),
        later in proptest::collection::btree_map(0u16..400, 0u8..4, 1..20),
        probes in proptest::collection::vec(0u16..420, 0..120),
        range in (0u16..420, 0u16..420),
    ) {
        let (_sim, db) = db();
        let ks = db.keyspace("ks").unwrap();
        let key = |i: u16| format!("key{i:05}").into_bytes();
        let value = |i: u16, v: u8| format!("value {i} {v}").repeat(usize::from(v) * 3 + 1).into_bytes();
        let mut model = BTreeMap::new();
        // Keys below `flush_below` reach the tree, the rest stay in the
        // memtable.
        for (&i, &v) in stored.range(..flush_below) {
            ks.put(key(i), value(i, v)).unwrap();
            model.insert(key(i), value(i, v));
        }
        db.flush().unwrap();
        for (&i, &v) in stored.range(flush_below..) {
            ks.put(key(i), value(i, v)).unwrap();
            model.insert(key(i), value(i, v));
        }
        let mut tx = db.begin_transaction().unwrap();
        for (&i, v) in &own {
            match v {
                Some(v) => {
                    let mine = [&b"mine "[..], &[b'0' + v]].concat();
                    tx.put_in(&ks, key(i), &mine).unwrap();
                    model.insert(key(i), mine);
                }
                None => {
                    tx.delete_in(&ks, key(i)).unwrap();
                    model.remove(&key(i));
                }
            }
        }
        // Committed after the snapshot: never seen by the transaction.
        for (&i, &v) in &later {
            ks.put(key(i), value(i, v + 10)).unwrap();
        }
        let mut read = std::collections::BTreeSet::new();
        {
            let mut reader = tx.reader_in(&ks).unwrap();
            let mut buf = b"stale".to_vec();
            for &p in &probes {
                let want = model.get(&key(p));
                let found = reader.get_into(key(p), &mut buf).unwrap();
                proptest::prop_assert_eq!(found, want.is_some(), "key {}", p);
                proptest::prop_assert_eq!(buf.as_slice(), want.map_or(&[][..], Vec::as_slice), "key {}", p);
                read.insert(p);
            }
        }
        let (lo, hi) = (range.0.min(range.1), range.0.max(range.1));
        let mut iter = tx.range_in(&ks, key(lo)..key(hi)).unwrap();
        let mut seen = Vec::new();
        while let Some(entry) = iter.next_ref() {
            let (k, v) = entry.unwrap();
            seen.push((k.to_vec(), v.to_vec()));
        }
        drop(iter);
        let want: Vec<_> = model
            .range(key(lo)..key(hi))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        proptest::prop_assert_eq!(seen, want);
        // A later write to a key read (probed where the transaction has
        // no write of its own, or inside the range) is a conflict;
        // otherwise the commit goes through.
        let touched = later
            .keys()
            .any(|i| (read.contains(i) && !own.contains_key(i)) || (lo..hi).contains(i));
        tx.put_in(&ks, b"commit", b"x").unwrap();
        let outcome = tx.commit();
        if touched {
            proptest::prop_assert!(matches!(outcome, Err(Error::Conflict)), "{:?}", outcome);
        } else {
            proptest::prop_assert!(outcome.is_ok(), "{:?}", outcome);
        }
    }
}
