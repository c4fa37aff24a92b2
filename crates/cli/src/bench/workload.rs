//! The workloads `sealkv bench` times, written once against [`Engine`]:
//! sealkv's modes and the peers run the same code.
//!
//! Each workload opens the database the ones before it left (a fresh one
//! for the fills), runs, and closes it, so every workload starts with the
//! engine's own cache cold (the operating system's page cache stays warm).

use std::time::{Duration, Instant};

use super::engine::{Batch, Engine, Open, Reader, Store};
use super::people::{self, Table as PeopleTable};
use super::records::{Model, Scatter, index_of, mismatch};
use super::{txn, ycsb};
use crate::exit::CliError;

/// Records per durable batch in the fill and overwrite workloads.
pub(crate) const BATCH: u64 = 1_000;
/// Durable single puts timed for the syncwrite median.
pub(crate) const SYNC_PUTS: usize = 100;

/// The records of one run: how many, how large their values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) records: u64,
    pub(crate) value_len: usize,
}

/// What one workload measured: operations and elapsed time, or a median
/// latency.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Measure {
    /// `ops` operations in `elapsed`.
    Throughput { ops: u64, elapsed: Duration },
    /// The median of single-operation latencies.
    Latency(Duration),
}

impl Measure {
    /// Operations per second (for a latency, its inverse).
    pub(crate) fn ops_per_sec(self) -> f64 {
        match self {
            Measure::Throughput { ops, elapsed } => ops as f64 / elapsed.as_secs_f64().max(1e-9),
            Measure::Latency(d) => 1.0 / d.as_secs_f64().max(1e-9),
        }
    }
}

/// Which workloads a run times: `sealkv bench --suite`. Each suite is
/// whole on its own (the key-value workloads start from their own fill,
/// the collections ones from a fresh database), so any of them runs alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Suite {
    /// Every workload.
    #[default]
    All,
    /// The key-value workloads: fills, reads, scan, overwrite, syncwrite,
    /// YCSB, transactions, mix.
    KeyValue,
    /// The typed-collection workloads (`coll-*`).
    Collections,
}

impl Suite {
    /// Whether this suite times `workload`.
    pub(crate) fn includes(self, workload: Workload) -> bool {
        match self {
            Suite::All => true,
            Suite::KeyValue => !workload.is_people(),
            Suite::Collections => workload.is_people(),
        }
    }

    /// The workloads it times, with their places in [`Workload::ALL`], in
    /// the order they run.
    pub(crate) fn workloads(self) -> impl Iterator<Item = (usize, Workload)> {
        Workload::ALL
            .into_iter()
            .enumerate()
            .filter(move |(_, w)| self.includes(*w))
    }
}

/// The workloads, in the order they run (each needs the ones before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    FillSeq,
    FillRandom,
    ReadRandomCold,
    ReadRandomWarm,
    Scan,
    Overwrite,
    SyncWrite,
    YcsbA,
    YcsbB,
    YcsbC,
    YcsbD,
    YcsbE,
    YcsbF,
    TxnIncrement,
    TxnTransfer,
    Mix,
    CollInsert,
    CollLookup,
    CollRange,
    CollInsertSealed,
    CollLookupSealed,
    CollRangeSealed,
}

impl Workload {
    pub(crate) const ALL: [Workload; 22] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::ReadRandomCold,
        Workload::ReadRandomWarm,
        Workload::Scan,
        Workload::Overwrite,
        Workload::SyncWrite,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbD,
        Workload::YcsbE,
        Workload::YcsbF,
        Workload::TxnIncrement,
        Workload::TxnTransfer,
        Workload::Mix,
        Workload::CollInsert,
        Workload::CollLookup,
        Workload::CollRange,
        Workload::CollInsertSealed,
        Workload::CollLookupSealed,
        Workload::CollRangeSealed,
    ];

    /// The name in the report and in `--json`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::ReadRandomCold => "readrandom-after-reopen",
            Workload::ReadRandomWarm => "readrandom-warm",
            Workload::Scan => "scan",
            Workload::Overwrite => "overwrite",
            Workload::SyncWrite => "syncwrite",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbC => "ycsb-c",
            Workload::YcsbD => "ycsb-d",
            Workload::YcsbE => "ycsb-e",
            Workload::YcsbF => "ycsb-f",
            Workload::TxnIncrement => "txn-increment",
            Workload::TxnTransfer => "txn-transfer",
            Workload::Mix => "mix-90-10",
            Workload::CollInsert => "coll-insert",
            Workload::CollLookup => "coll-lookup",
            Workload::CollRange => "coll-range",
            Workload::CollInsertSealed => "coll-insert-sealed",
            Workload::CollLookupSealed => "coll-lookup-sealed",
            Workload::CollRangeSealed => "coll-range-sealed",
        }
    }

    /// What is timed, for the report's legend.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Workload::FillSeq => {
                "N puts in key order into a fresh database, durable batches of 1,000, timed until the database is closed (the data durable in the tree)"
            }
            Workload::FillRandom => "as fillseq, keys in random order, into a fresh database",
            Workload::ReadRandomCold => {
                "after a close and a reopen of the fillrandom database: N gets in random order in one read view, every value checked (the engine's cache cold, the OS page cache warm)"
            }
            Workload::ReadRandomWarm => {
                "the same N gets again in the same process, the second pass timed"
            }
            Workload::Scan => {
                "after a reopen: one full forward scan to warm the cache, the second timed, every value and the count checked"
            }
            Workload::Overwrite => {
                "N/4 puts over existing keys (every fourth key) in random order, durable batches of 1,000, timed until the database is closed"
            }
            Workload::SyncWrite => {
                "median latency of one put committed with an fsync (100 puts of new keys); ops/s = 1/median"
            }
            Workload::YcsbA => {
                "YCSB A: 50% reads, 50% updates, scrambled zipfian keys (theta 0.99); N/10 operations (at least 100), updates committed durably in groups of 100, every read checked"
            }
            Workload::YcsbB => "YCSB B: 95% reads, 5% updates, as A",
            Workload::YcsbC => "YCSB C: reads only, as A",
            Workload::YcsbD => {
                "YCSB D: 95% reads of the latest records (zipfian distance from the newest), 5% inserts of new records, committed in groups of 100"
            }
            Workload::YcsbE => {
                "YCSB E: 95% scans of 1-100 records (uniform) from a scrambled zipfian start, 5% inserts; N/100 operations (at least 10), every scanned record and each scan's count checked"
            }
            Workload::YcsbF => {
                "YCSB F: 50% reads, 50% read-modify-writes (read, check, write the next version), 100 read-modify-writes per durable transaction"
            }
            Workload::TxnIncrement => {
                "2 threads, each N/1,000 (20-1,000) durable transactions that read one of 4 counters and write it back plus one; each counter checked against the committed increments"
            }
            Workload::TxnTransfer => {
                "2 threads, each N/1,000 (20-1,000) durable transactions that move 1-100 between two of 64 accounts if the first holds it; the total checked"
            }
            Workload::Mix => {
                "N operations: 90% random gets (checked), 10% puts committed durably 100 at a time"
            }
            Workload::CollInsert => {
                "a typed table of N persons (id, email, name, age; sealkv-collections, postcard records) with a unique index on the email and a plain one on the age: N inserts in scattered id order into a fresh database, 1,000 per durable transaction (SQLite: the same table and indexes, WAL, synchronous=FULL)"
            }
            Workload::CollLookup => {
                "after a reopen: N/5 persons found by email through the unique index, each whole record checked"
            }
            Workload::CollRange => {
                "after a reopen: 200 ranges of 2 ages (of 100) through the age index, each row checked (age, order, whole record) and each range's count; ops/s = rows returned per second"
            }
            Workload::CollInsertSealed => {
                "as coll-insert, the email sealed (field-encrypted under the collection's field key; in plaintext mode too) and its unique index blind (an HMAC tag: neither the email nor a deterministic ciphertext on disk); SQLite runs its plain table again"
            }
            Workload::CollLookupSealed => "as coll-lookup, on the sealed table, by the blind index",
            Workload::CollRangeSealed => "as coll-range, on the sealed table",
        }
    }

    /// Whether it is a collections workload (run by the engines whose
    /// [`Engine::runs_people`] says so).
    pub(crate) fn is_people(self) -> bool {
        matches!(
            self,
            Workload::CollInsert
                | Workload::CollLookup
                | Workload::CollRange
                | Workload::CollInsertSealed
                | Workload::CollLookupSealed
                | Workload::CollRangeSealed
        )
    }

    /// Whether an engine runs it: sealkv's modes run every workload, a
    /// peer those [`Workload::peers_run`] names, the collections ones only
    /// if it has a `person` table.
    pub(crate) fn runs_on(self, engine: &dyn Engine, is_peer: bool) -> bool {
        if self.is_people() {
            engine.runs_people()
        } else {
            !is_peer || self.peers_run()
        }
    }

    /// Whether the peer engines run it (the others are sealkv's own).
    pub(crate) fn peers_run(self) -> bool {
        !matches!(
            self,
            Workload::FillSeq | Workload::ReadRandomWarm | Workload::Mix
        )
    }

    /// The disk-space sample taken right after it (its database closed):
    /// 0 after the load, 1 after the overwrite.
    pub(crate) fn space_slot(self) -> Option<usize> {
        match self {
            Workload::FillRandom => Some(0),
            Workload::Overwrite => Some(1),
            _ => None,
        }
    }

    /// Whether its figure is a latency (shown in ms, not ops/s).
    pub(crate) fn is_latency(self) -> bool {
        self == Workload::SyncWrite
    }
}

/// Runs `workload` on `engine`, whose records the model describes.
pub(crate) fn run(
    workload: Workload,
    engine: &dyn Engine,
    model: &mut Model,
    shape: Shape,
) -> Result<Measure, CliError> {
    match workload {
        Workload::FillSeq => fill(engine, model, shape, |i| i),
        Workload::FillRandom => {
            let order = Scatter::new(shape.records, 7);
            fill(engine, model, shape, |i| order.at(i))
        }
        Workload::ReadRandomCold => read_random(engine, model, shape, false),
        Workload::ReadRandomWarm => read_random(engine, model, shape, true),
        Workload::Scan => scan(engine, model, shape),
        Workload::Overwrite => overwrite(engine, model, shape),
        Workload::SyncWrite => sync_write(engine, model, shape),
        Workload::YcsbA => ycsb::run(engine, model, shape, ycsb::Kind::A),
        Workload::YcsbB => ycsb::run(engine, model, shape, ycsb::Kind::B),
        Workload::YcsbC => ycsb::run(engine, model, shape, ycsb::Kind::C),
        Workload::YcsbD => ycsb::run(engine, model, shape, ycsb::Kind::D),
        Workload::YcsbE => ycsb::run(engine, model, shape, ycsb::Kind::E),
        Workload::YcsbF => ycsb::run(engine, model, shape, ycsb::Kind::F),
        Workload::TxnIncrement => txn::increment(engine, shape),
        Workload::TxnTransfer => txn::transfer(engine, shape),
        Workload::Mix => mix(engine, model, shape),
        Workload::CollInsert => people::insert(engine, PeopleTable::Plain, shape),
        Workload::CollLookup => people::lookup(engine, PeopleTable::Plain, shape),
        Workload::CollRange => people::range(engine, PeopleTable::Plain, shape),
        Workload::CollInsertSealed => people::insert(engine, PeopleTable::Sealed, shape),
        Workload::CollLookupSealed => people::lookup(engine, PeopleTable::Sealed, shape),
        Workload::CollRangeSealed => people::range(engine, PeopleTable::Sealed, shape),
    }
}

/// Commits `count` records, record `i` of the run being `record(i)` (index
/// and version), in durable batches of [`BATCH`].
fn put_batches(
    store: &dyn Store,
    value_len: usize,
    count: u64,
    record: impl Fn(u64) -> (u64, u8),
) -> Result<(), CliError> {
    let mut batch = Batch::new(value_len);
    for i in 0..count {
        let (index, version) = record(i);
        batch.push(index, version);
        if batch.len() as u64 == BATCH {
            store.write(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.write(&batch)?;
    }
    Ok(())
}

/// Loads records `0..n` at version 0 into a fresh database, in the order
/// `order(i)`, timed until it is closed.
fn fill(
    engine: &dyn Engine,
    model: &mut Model,
    shape: Shape,
    order: impl Fn(u64) -> u64,
) -> Result<Measure, CliError> {
    let mut start = None;
    engine.session(Open::Fresh, &mut |store| {
        start = Some(Instant::now());
        put_batches(store, shape.value_len, shape.records, |i| (order(i), 0))
    })?;
    *model = Model::loaded(shape.records);
    Ok(Measure::Throughput {
        ops: shape.records,
        elapsed: start.map(|s| s.elapsed()).unwrap_or_default(),
    })
}

/// Gets every record in a random order through `reader`, checking each.
fn read_all(reader: &mut dyn Reader, model: &Model, value_len: usize) -> Result<(), CliError> {
    let n = model.len();
    let order = Scatter::new(n, 11);
    let mut scratch = Vec::with_capacity(value_len);
    for i in 0..n {
        let k = order.at(i);
        reader.get(&super::records::key(k), &mut |got| {
            model.check(k, got, &mut scratch, value_len)
        })?;
    }
    Ok(())
}

fn read_random(
    engine: &dyn Engine,
    model: &Model,
    shape: Shape,
    warm: bool,
) -> Result<Measure, CliError> {
    let mut elapsed = None;
    engine.session(Open::Existing, &mut |store| {
        let mut reader = store.reader()?;
        if warm {
            read_all(reader.as_mut(), model, shape.value_len)?;
        }
        let start = Instant::now();
        read_all(reader.as_mut(), model, shape.value_len)?;
        elapsed = Some(start.elapsed());
        Ok(())
    })?;
    Ok(Measure::Throughput {
        ops: model.len(),
        elapsed: elapsed.unwrap_or_default(),
    })
}

/// One full scan through `reader`: every record in key order, each checked,
/// and the count.
fn scan_all(reader: &mut dyn Reader, model: &Model, value_len: usize) -> Result<u64, CliError> {
    let mut next = 0u64;
    let mut scratch = Vec::with_capacity(value_len);
    let seen = reader.scan(&[], u64::MAX, &mut |k, v| {
        let i = index_of(k).ok_or_else(|| mismatch(next))?;
        if i != next {
            return Err(mismatch(next));
        }
        model.check(i, Some(v), &mut scratch, value_len)?;
        next += 1;
        Ok(())
    })?;
    if seen != model.len() {
        return Err(CliError::CheckFailed(format!(
            "bench: scan saw {seen} records, {} were written",
            model.len()
        )));
    }
    Ok(seen)
}

fn scan(engine: &dyn Engine, model: &Model, shape: Shape) -> Result<Measure, CliError> {
    let mut timed = None;
    engine.session(Open::Existing, &mut |store| {
        scan_all(store.reader()?.as_mut(), model, shape.value_len)?;
        let start = Instant::now();
        let seen = scan_all(store.reader()?.as_mut(), model, shape.value_len)?;
        timed = Some((seen, start.elapsed()));
        Ok(())
    })?;
    let (ops, elapsed) = timed.unwrap_or_default();
    Ok(Measure::Throughput { ops, elapsed })
}

/// Every fourth record, in random order, one version on.
fn overwrite(engine: &dyn Engine, model: &mut Model, shape: Shape) -> Result<Measure, CliError> {
    let quarter = model.len().div_ceil(4);
    let order = Scatter::new(quarter, 13);
    let next = |i: u64| {
        let k = order.at(i) * 4;
        (k, model.version(k).unwrap_or(0).wrapping_add(1))
    };
    let mut start = None;
    engine.session(Open::Existing, &mut |store| {
        start = Some(Instant::now());
        put_batches(store, shape.value_len, quarter, next)
    })?;
    let elapsed = start.map(|s| s.elapsed()).unwrap_or_default();
    let written: Vec<(u64, u8)> = (0..quarter).map(next).collect();
    for (k, v) in written {
        model.commit(k, v);
    }
    Ok(Measure::Throughput {
        ops: quarter,
        elapsed,
    })
}

/// [`SYNC_PUTS`] new records, each committed alone with an fsync; the
/// median latency.
fn sync_write(engine: &dyn Engine, model: &mut Model, shape: Shape) -> Result<Measure, CliError> {
    let mut times = Vec::with_capacity(SYNC_PUTS);
    engine.session(Open::Existing, &mut |store| {
        let mut batch = Batch::new(shape.value_len);
        for _ in 0..SYNC_PUTS {
            let i = model.len();
            batch.clear();
            batch.push(i, 0);
            let start = Instant::now();
            store.write(&batch)?;
            times.push(start.elapsed());
            model.commit(i, 0);
        }
        Ok(())
    })?;
    times.sort();
    Ok(Measure::Latency(
        times.get(times.len() / 2).copied().unwrap_or_default(),
    ))
}

/// 90% gets, 10% puts (one version on), the puts committed 100 at a time.
fn mix(engine: &dyn Engine, model: &mut Model, shape: Shape) -> Result<Measure, CliError> {
    let n = shape.records;
    let mut elapsed = None;
    engine.session(Open::Existing, &mut |store| {
        let order = Scatter::new(model.len(), 17);
        let mut scratch = Vec::with_capacity(shape.value_len);
        let mut batch = Batch::new(shape.value_len);
        let mut pending: Vec<(u64, u8)> = Vec::with_capacity(100);
        let start = Instant::now();
        for i in 0..n {
            let k = order.at(i % model.len().max(1));
            if i % 10 == 9 {
                // The scattered order visits each record once per pass: no
                // record twice in a group.
                pending.push((k, model.version(k).unwrap_or(0).wrapping_add(1)));
                if pending.len() == 100 {
                    commit_pending(store, model, &mut batch, &mut pending)?;
                }
            } else {
                let m = &*model;
                store.reader()?.get(&super::records::key(k), &mut |got| {
                    m.check(k, got, &mut scratch, shape.value_len)
                })?;
            }
        }
        commit_pending(store, model, &mut batch, &mut pending)?;
        elapsed = Some(start.elapsed());
        Ok(())
    })?;
    Ok(Measure::Throughput {
        ops: n,
        elapsed: elapsed.unwrap_or_default(),
    })
}

fn commit_pending(
    store: &dyn Store,
    model: &mut Model,
    batch: &mut Batch,
    pending: &mut Vec<(u64, u8)>,
) -> Result<(), CliError> {
    if pending.is_empty() {
        return Ok(());
    }
    batch.clear();
    for &(k, v) in pending.iter() {
        batch.push(k, v);
    }
    store.write(batch)?;
    for (k, v) in pending.drain(..) {
        model.commit(k, v);
    }
    Ok(())
}
