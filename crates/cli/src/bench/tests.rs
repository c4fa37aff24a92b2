//! The workloads on sealkv: each runs and leaves the records the model
//! says, and every check fails on a value that is not what was written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::engine::{Body, Check, Open, PeopleWork, Reader, Store, Txn, Visit};
use super::people::{People, Person, Table as PeopleTable, VisitPerson};
use super::*;

pub(super) fn target(root: &Path, mode: usize) -> Target {
    Target::new(
        Mode::all().swap_remove(mode),
        root.join(format!("m{mode}")),
        None,
    )
}

/// Every record of `engine`'s database, in key order.
pub(super) fn dump(engine: &dyn Engine) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    engine
        .session(Open::Existing, &mut |store| {
            all.clear();
            store.reader()?.scan(&[], u64::MAX, &mut |k, v| {
                all.push((k.to_vec(), v.to_vec()));
                Ok(())
            })?;
            Ok(())
        })
        .unwrap();
    all
}

/// What the model says the database holds.
pub(super) fn expected(model: &Model, value_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..model.len())
        .map(|i| {
            let mut v = vec![0u8; value_len];
            records::value_into(i, model.version(i).unwrap(), &mut v);
            (records::key(i).to_vec(), v)
        })
        .collect()
}

/// The workloads that read (and so check) what they read.
pub(super) fn checks(w: Workload) -> bool {
    !matches!(
        w,
        Workload::FillSeq
            | Workload::FillRandom
            | Workload::Overwrite
            | Workload::SyncWrite
            | Workload::CollInsert
            | Workload::CollInsertSealed
    )
}

/// Checks one measure of `w`: a throughput of some operations in some
/// time, or a latency for the latency workload.
pub(super) fn assert_measured(w: Workload, m: Measure) {
    match m {
        Measure::Throughput { ops, elapsed } => {
            assert!(!w.is_latency(), "{w:?}");
            assert!(ops > 0 && elapsed > std::time::Duration::ZERO, "{w:?}");
        }
        Measure::Latency(d) => {
            assert!(w.is_latency(), "{w:?}");
            assert!(d > std::time::Duration::ZERO);
        }
    }
}

#[test]
fn every_workload_runs_in_order_and_leaves_what_the_model_says() {
    let tmp = tempfile::tempdir().unwrap();
    // 1,234 records: a batch of 1,000 and a partial one.
    let shape = Shape {
        records: 1_234,
        value_len: 100,
    };
    // Plaintext and AES-256-GCM.
    for mode in [0, 1] {
        let t = target(tmp.path(), mode);
        let mut model = Model::default();
        // The collections workloads run last, in a fresh database of their
        // own: the records are checked before them.
        let (people, records): (Vec<Workload>, Vec<Workload>) =
            Workload::ALL.into_iter().partition(|w| w.is_people());
        assert_eq!(Workload::ALL[records.len()..], people[..]);
        for w in records.into_iter().chain(people.iter().copied()) {
            let m = workload::run(w, &t, &mut model, shape)
                .unwrap_or_else(|e| panic!("{} {w:?}: {e}", t.name()));
            assert_measured(w, m);
            if w == Workload::Mix {
                // The load, the syncwrite puts and the inserts of D and E.
                assert!(model.len() > shape.records + workload::SYNC_PUTS as u64);
                // Updates happened: some record is past version 1.
                assert!((0..model.len()).any(|i| model.version(i).unwrap() > 1));
                assert_eq!(dump(&t), expected(&model, shape.value_len), "{}", t.name());
            }
        }
        // The ranges returned every person: 200 ranges of 2 ages of 100
        // cover each age 4 times, whatever the mode.
        let rows = people::range(&t, PeopleTable::Sealed, shape).unwrap();
        assert!(
            matches!(rows, Measure::Throughput { ops, .. } if ops == 4 * shape.records),
            "{rows:?}"
        );
    }
}

/// A wrapper whose reads return each value with its last byte one higher:
/// what a wrong value on disk would look like to the workloads.
struct Corrupt<'a>(&'a dyn Engine);

fn corrupt(v: Option<&[u8]>) -> Option<Vec<u8>> {
    let mut v = v?.to_vec();
    if let Some(b) = v.last_mut() {
        *b = b.wrapping_add(1);
    }
    Some(v)
}

impl Engine for Corrupt<'_> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn dir(&self) -> &Path {
        self.0.dir()
    }

    fn session(
        &self,
        open: Open,
        work: &mut dyn FnMut(&dyn Store) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        self.0
            .session(open, &mut |store| work(&CorruptStore(store)))
    }

    fn runs_people(&self) -> bool {
        self.0.runs_people()
    }

    fn people(
        &self,
        fresh: bool,
        table: PeopleTable,
        work: PeopleWork<'_>,
    ) -> Result<(), CliError> {
        self.0
            .people(fresh, table, &mut |people| work(&CorruptPeople(people)))
    }
}

/// A `person` table whose reads return each person with one more letter
/// in the name.
struct CorruptPeople<'a>(&'a dyn People);

fn corrupt_person(mut p: Person) -> Person {
    p.name.push('!');
    p
}

impl People for CorruptPeople<'_> {
    fn insert(&self, ids: &[u64]) -> Result<(), CliError> {
        self.0.insert(ids)
    }

    fn by_email(&self, email: &str) -> Result<Option<Person>, CliError> {
        Ok(self.0.by_email(email)?.map(corrupt_person))
    }

    fn by_age(&self, lo: u32, hi: u32, visit: VisitPerson<'_>) -> Result<(), CliError> {
        self.0.by_age(lo, hi, &mut |p| visit(corrupt_person(p)))
    }
}

struct CorruptStore<'a>(&'a dyn Store);

impl Store for CorruptStore<'_> {
    fn write(&self, batch: &engine::Batch) -> Result<(), CliError> {
        self.0.write(batch)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError> {
        Ok(Box::new(CorruptReader(self.0.reader()?)))
    }

    fn transaction(&self, body: Body<'_>) -> Result<(), CliError> {
        self.0.transaction(&mut |tx| body(&mut CorruptTxn(tx)))
    }
}

struct CorruptReader<'a>(Box<dyn Reader + 'a>);

impl Reader for CorruptReader<'_> {
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError> {
        self.0.get(key, &mut |got| check(corrupt(got).as_deref()))
    }

    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError> {
        self.0.scan(start, limit, &mut |k, v| {
            visit(k, corrupt(Some(v)).as_deref().unwrap_or_default())
        })
    }
}

struct CorruptTxn<'a>(&'a mut dyn Txn);

impl Txn for CorruptTxn<'_> {
    fn get(&mut self, table: engine::Table, key: &[u8]) -> Result<Option<Vec<u8>>, CliError> {
        Ok(corrupt(self.0.get(table, key)?.as_deref()))
    }

    fn put(&mut self, table: engine::Table, key: &[u8], value: &[u8]) -> Result<(), CliError> {
        self.0.put(table, key, value)
    }
}

/// Runs every workload in order on `engine`, the ones that check through
/// [`Corrupt`]: each of those must fail its check, the others succeed.
pub(super) fn every_check_fails_on_a_wrong_value(engine: &dyn Engine) {
    let shape = Shape {
        records: 500,
        value_len: 24,
    };
    let mut model = Model::default();
    for w in Workload::ALL {
        if w.is_people() && !engine.runs_people() {
            continue;
        }
        if !checks(w) {
            workload::run(w, engine, &mut model, shape).unwrap();
            continue;
        }
        // From the model before the run: a failed run may have committed
        // part of its writes, which the next workload's run must not see
        // as wrong.
        let mut scratch = model.clone();
        match workload::run(w, &Corrupt(engine), &mut scratch, shape) {
            Err(CliError::CheckFailed(msg)) => assert!(msg.starts_with("bench: "), "{msg}"),
            other => panic!("{} {w:?}: {other:?}", engine.name()),
        }
        // Reload, so the next workload starts from what the model says.
        if !w.is_people() {
            workload::run(Workload::FillRandom, engine, &mut model, shape).unwrap();
        }
    }
}

#[test]
fn a_wrong_value_fails_every_workload_that_reads() {
    let tmp = tempfile::tempdir().unwrap();
    every_check_fails_on_a_wrong_value(&target(tmp.path(), 1));
}

#[test]
fn a_model_ahead_of_the_database_fails_the_reads_and_the_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let t = target(tmp.path(), 0);
    let shape = Shape {
        records: 300,
        value_len: 50,
    };
    let mut model = Model::default();
    workload::run(Workload::FillRandom, &t, &mut model, shape).unwrap();
    model.skew();
    for w in [Workload::ReadRandomCold, Workload::Scan, Workload::YcsbC] {
        match workload::run(w, &t, &mut model, shape) {
            Err(CliError::CheckFailed(msg)) => assert!(msg.contains("did not read back"), "{msg}"),
            other => panic!("{w:?}: {other:?}"),
        }
    }
}

#[test]
fn a_missing_record_fails_the_scan_count_and_the_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let t = target(tmp.path(), 0);
    let shape = Shape {
        records: 50,
        value_len: 8,
    };
    let mut model = Model::default();
    workload::run(Workload::FillRandom, &t, &mut model, shape).unwrap();
    {
        let db = t.open(false).unwrap();
        db.delete(records::key(49)).unwrap();
        db.close().unwrap();
    }
    match workload::run(Workload::Scan, &t, &mut model, shape) {
        Err(CliError::CheckFailed(m)) => assert!(m.contains("saw 49 records, 50 were"), "{m}"),
        other => panic!("{other:?}"),
    }
    match workload::run(Workload::ReadRandomCold, &t, &mut model, shape) {
        Err(CliError::CheckFailed(m)) => assert!(m.contains("record 49 "), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_runs_leave_no_database_behind_and_sample_the_disk_space() {
    let tmp = tempfile::tempdir().unwrap();
    let modes: Vec<Mode> = Mode::all().into_iter().take(2).collect();
    let shape = Shape {
        records: 200,
        value_len: 100,
    };
    let options = Options {
        records: shape.records,
        rounds: 2,
        value_len: Some(shape.value_len),
        only: None,
        json: false,
        peers: false,
        cache_mib: None,
        suite: Suite::All,
    };
    let results = measure(tmp.path(), &modes, &[], shape, &options).unwrap();
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    assert_eq!(results.samples.len(), Workload::ALL.len());
    for per_engine in &results.samples {
        assert!(per_engine.iter().all(|s| s.len() == 2));
    }
    for [load, over] in &results.space {
        assert_eq!((load.len(), over.len()), (2, 2));
        // 200 records of 116 bytes at least, on disk.
        assert!(load.iter().all(|&b| b >= 200 * 116), "{load:?}");
        assert!(over.iter().all(|&b| b > 0), "{over:?}");
    }
}
