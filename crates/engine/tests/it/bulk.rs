//! Bulk deletes (`delete_range`, `delete_prefix`) and compaction against a
//! `BTreeMap` model, in bounded batches, through crashes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use proptest::prelude::*;
use sealkv::{Db, Error, SyncMode};
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs};

use crate::support::{collect, sim_config};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Step {
    /// Put key `(hi, lo)`; a big value when the flag is set (overflow pages).
    Put(u8, u8, u8, bool),
    /// Delete the range between two keys, `Excluded` upper bound when set.
    DeleteRange((u8, u8), (u8, u8), bool),
    /// Delete the keys starting with byte `hi` (and `lo` when given).
    DeletePrefix(u8, Option<u8>),
    /// The same in the named keyspace.
    KeyspaceDeletePrefix(u8),
    /// A transaction deleting a range, then committing.
    TxnDeleteRange((u8, u8), (u8, u8)),
    Flush,
    Compact,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let key = (0..4u8, any::<u8>());
    prop_oneof![
        10 => (0..4u8, any::<u8>(), any::<u8>(), prop::bool::weighted(0.1))
            .prop_map(|(h, l, v, big)| Step::Put(h, l, v, big)),
        2 => (key.clone(), key.clone(), any::<bool>()).prop_map(|(a, b, x)| Step::DeleteRange(a, b, x)),
        1 => (0..4u8, prop::option::of(any::<u8>())).prop_map(|(h, l)| Step::DeletePrefix(h, l)),
        1 => (0..4u8).prop_map(Step::KeyspaceDeletePrefix),
        1 => (key.clone(), key).prop_map(|(a, b)| Step::TxnDeleteRange(a, b)),
        1 => Just(Step::Flush),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

fn k((hi, lo): (u8, u8)) -> Vec<u8> {
    vec![hi, lo]
}

fn value(v: u8, big: bool) -> Vec<u8> {
    vec![v; if big { 5_000 } else { 300 }]
}

/// Removes the model's keys in `(lo, hi)`; returns how many.
fn remove(model: &mut Model, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> u64 {
    if matches!((&lo, &hi), (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) if a > b)
    {
        return 0;
    }
    if let (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b)) = (&lo, &hi)
        && a == b
    {
        return 0;
    }
    let gone: Vec<Vec<u8>> = model.range((lo, hi)).map(|(k, _)| k.clone()).collect();
    for key in &gone {
        model.remove(key);
    }
    gone.len() as u64
}

fn upper(b: Vec<u8>, excluded: bool) -> Bound<Vec<u8>> {
    if excluded {
        Bound::Excluded(b)
    } else {
        Bound::Included(b)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn bulk_deletes_and_compaction_match_the_model(
        steps in prop::collection::vec(step(), 1..70),
        mode in 0..4usize,
    ) {
        let alg = crate::support::modes()[mode];
        let sim = SimVfs::new();
        let config = || sim_config(&sim, alg);
        let mut db = Db::open_with_config(config()).unwrap();
        let mut model = Model::new();
        let mut other = Model::new();
        for s in steps {
            let ks = db.keyspace("other").unwrap();
            match s {
                Step::Put(h, l, v, big) => {
                    db.put(k((h, l)), value(v, big)).unwrap();
                    model.insert(k((h, l)), value(v, big));
                    ks.put(k((h, l)), value(v, false)).unwrap();
                    other.insert(k((h, l)), value(v, false));
                }
                Step::DeleteRange(a, b, excl) => {
                    let (lo, hi) = (Bound::Included(k(a)), upper(k(b), excl));
                    let got = db.delete_range((lo.clone(), hi.clone())).unwrap();
                    prop_assert_eq!(got, remove(&mut model, lo, hi));
                }
                Step::DeletePrefix(h, l) => {
                    let p: Vec<u8> = std::iter::once(h).chain(l).collect();
                    let want = model.keys().filter(|key| key.starts_with(&p)).count() as u64;
                    model.retain(|key, _| !key.starts_with(&p));
                    prop_assert_eq!(db.delete_prefix(&p).unwrap(), want);
                }
                Step::KeyspaceDeletePrefix(h) => {
                    let want = other.keys().filter(|key| key[0] == h).count() as u64;
                    other.retain(|key, _| key[0] != h);
                    prop_assert_eq!(ks.delete_prefix([h]).unwrap(), want);
                }
                Step::TxnDeleteRange(a, b) => {
                    let mut t = db.begin_transaction().unwrap();
                    let got = t.delete_range(k(a)..=k(b)).unwrap();
                    t.commit().unwrap();
                    prop_assert_eq!(got, remove(&mut model, Bound::Included(k(a)), Bound::Included(k(b))));
                }
                Step::Flush => db.flush().unwrap(),
                Step::Compact => {
                    db.compact().unwrap();
                }
                Step::Reopen => {
                    drop(ks);
                    db.close().unwrap();
                    db = Db::open_with_config(config()).unwrap();
                }
            }
            let ks = db.keyspace("other").unwrap();
            let want: Vec<_> = model.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
            prop_assert_eq!(collect(db.iter().unwrap()), want);
            let want: Vec<_> = other.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
            prop_assert_eq!(collect(ks.iter().unwrap()), want);
        }
        db.flush().unwrap();
        let report = db.verify().unwrap();
        prop_assert!(report.is_clean(), "{:?}", report);
    }
}

#[test]
fn a_bulk_delete_goes_in_bounded_batches_and_empties_its_pages() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    for i in 0..3_000u32 {
        db.put(format!("p/{i:05}"), [7u8; 100]).unwrap();
    }
    db.put("q", "kept").unwrap();
    db.flush().unwrap();
    let leaves = db.stats().unwrap().leaf_pages;
    assert!(leaves > 50, "{leaves} leaves");
    let writes = db.stats().unwrap().writes;
    assert_eq!(db.delete_prefix("p/").unwrap(), 3_000);
    // 3,000 keys in batches of at most 1,024: three batches.
    assert_eq!(db.stats().unwrap().writes - writes, 3);
    assert_eq!(db.delete_prefix("p/").unwrap(), 0);
    db.flush().unwrap();
    assert_eq!(
        collect(db.iter().unwrap()),
        vec![(b"q".to_vec(), b"kept".to_vec())]
    );
    assert_eq!(db.stats().unwrap().leaf_pages, 1);
}

#[test]
fn a_transaction_that_deleted_a_range_conflicts_with_a_write_into_it() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    db.put("a1", "x").unwrap();
    db.put("b1", "x").unwrap();
    let mut t = db.begin_transaction().unwrap();
    assert_eq!(t.delete_prefix("a").unwrap(), 1);
    db.put("a2", "y").unwrap();
    assert!(matches!(t.commit(), Err(Error::Conflict)));
    assert_eq!(db.get("a1").unwrap().as_deref(), Some(&b"x"[..]));
    let mut t = db.begin_transaction().unwrap();
    assert_eq!(t.delete_prefix("a").unwrap(), 2);
    db.put("b2", "y").unwrap();
    t.commit().unwrap();
    assert_eq!(db.prefix("a").unwrap().count(), 0);
    assert_eq!(db.prefix("b").unwrap().count(), 2);
}

#[test]
fn a_bulk_delete_on_a_read_only_or_dropped_keyspace_is_refused() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    let ks = db.keyspace("gone").unwrap();
    ks.put("a", "1").unwrap();
    assert!(db.drop_keyspace("gone").unwrap());
    assert!(matches!(
        ks.delete_prefix("a"),
        Err(Error::KeyspaceDropped { .. })
    ));
    db.put("a", "1").unwrap();
    drop(ks);
    db.close().unwrap();
    let db = Db::open_with_config(sim_config(&sim, None).read_only(true)).unwrap();
    assert!(matches!(db.delete_prefix("a"), Err(Error::ReadOnly)));
}

/// Keys of the bulk-delete crash workload: 2,500 under `p/` (three batches)
/// and 50 under `q/` that must survive.
fn crash_load(db: &Db) {
    for i in 0..2_500u32 {
        db.put(format!("p/{i:05}"), [1u8; 60]).unwrap();
    }
    for i in 0..50u32 {
        db.put(format!("q/{i:05}"), [2u8; 60]).unwrap();
    }
    db.flush().unwrap();
}

/// The delete, then a flush of its tombstones.
fn crash_work(db: &Db) -> Result<u64, Error> {
    let n = db.delete_prefix("p/")?;
    db.flush()?;
    Ok(n)
}

#[test]
fn a_crash_anywhere_in_a_bulk_delete_leaves_whole_batches() {
    let kinds = [OpKind::Write, OpKind::Sync, OpKind::SetLen];
    // A dry run counts the operations the work makes.
    let counts = {
        let sim = SimVfs::new();
        let faulty = FaultyVfs::over_sim(&sim);
        let db =
            Db::open_with_config(sim_config(&sim, None).vfs(Arc::new(faulty.clone()))).unwrap();
        crash_load(&db);
        let before = faulty.counts();
        assert_eq!(crash_work(&db).unwrap(), 2_500);
        let after = faulty.counts();
        kinds.map(|k| after.get(k) - before.get(k))
    };
    let mut cases = 0;
    // Crash points past the last operation this run made: the memtable
    // freezes during the delete, and how much the background flusher
    // writes before the work's own flush depends on timing, so a run may
    // make a few operations fewer than the dry run counted.
    let mut past_the_end = 0;
    for (ki, kind) in kinds.into_iter().enumerate() {
        for nth in 1..=counts[ki] {
            let sim = SimVfs::new();
            let faulty = FaultyVfs::over_sim(&sim);
            let config = sim_config(&sim, None)
                .vfs(Arc::new(faulty.clone()))
                .sync_mode(SyncMode::Always);
            let db = Db::open_with_config(config).unwrap();
            crash_load(&db);
            faulty.arm(FaultPlan::from(kind, nth));
            let done = crash_work(&db);
            std::mem::forget(db);
            if faulty.injected() == 0 {
                assert!(
                    done.is_ok(),
                    "{kind:?} #{nth}: no fault fired, yet the work failed"
                );
                past_the_end += 1;
                continue;
            }
            assert!(done.is_err(), "{kind:?} #{nth}: the work did not fail");
            sim.crash_torn(nth);
            let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
            let left: Vec<Vec<u8>> = db.prefix("p/").unwrap().map(|r| r.unwrap().0).collect();
            // Batches go in key order: what is left is a whole suffix, cut
            // at a batch boundary.
            let first = 2_500 - left.len() as u32;
            let want: Vec<Vec<u8>> = (first..2_500)
                .map(|i| format!("p/{i:05}").into_bytes())
                .collect();
            assert_eq!(left, want, "{kind:?} #{nth}");
            assert!(
                first.is_multiple_of(1024) || first == 2_500,
                "{kind:?} #{nth}: {first} deleted"
            );
            assert_eq!(db.prefix("q/").unwrap().count(), 50, "{kind:?} #{nth}");
            assert!(db.verify().unwrap().is_clean(), "{kind:?} #{nth}");
            cases += 1;
        }
    }
    assert!(cases > 10, "{cases} crash points");
    assert!(
        past_the_end <= 3,
        "{past_the_end} crash points past the work's last operation"
    );
}

/// A cut of the page file's tail that fails leaves the compaction done
/// (its commits stood) and the file as long; `Stats` counts it, and the
/// next compaction cuts.
#[test]
fn a_failed_cut_is_counted_in_stats_and_not_an_error() {
    let sim = SimVfs::new();
    let faulty = FaultyVfs::over_sim(&sim);
    let db = Db::open_with_config(sim_config(&sim, None).vfs(Arc::new(faulty.clone()))).unwrap();
    crash_load(&db);
    crash_work(&db).unwrap();
    assert_eq!(db.stats().unwrap().page_file_cut_failures, 0);
    faulty.arm(FaultPlan::from(OpKind::SetLen, 1));
    let report = db.compact().unwrap();
    assert!(faulty.injected() > 0, "no cut was tried");
    assert!(report.pages_moved > 0, "{report:?}");
    assert_eq!(report.bytes_after, report.bytes_before, "{report:?}");
    assert_eq!(
        db.stats().unwrap().page_file_cut_failures,
        faulty.injected()
    );
    faulty.disarm();
    let done = db.compact().unwrap();
    assert!(done.bytes_after < report.bytes_before, "{done:?}");
    assert_eq!(db.prefix("q/").unwrap().count(), 50);
    assert!(db.verify().unwrap().is_clean());
}
