//! The YCSB core workloads A-F (Cooper et al., "Benchmarking Cloud Serving
//! Systems with YCSB", SoCC 2010) over the loaded records.
//!
//! | workload | operations | key choice |
//! |---|---|---|
//! | A | 50% read, 50% update | scrambled zipfian |
//! | B | 95% read, 5% update | scrambled zipfian |
//! | C | 100% read | scrambled zipfian |
//! | D | 95% read, 5% insert | latest |
//! | E | 95% scan of 1-100 records, 5% insert | scrambled zipfian start |
//! | F | 50% read, 50% read-modify-write | scrambled zipfian |
//!
//! The generators are YCSB's: the zipfian of Gray et al. ("Quickly
//! generating billion-record synthetic databases", 1994) with theta 0.99;
//! the scrambled zipfian draws from 10^10 items and hashes the draw (FNV-1a
//! 64) onto the records, so the hot records are spread over the key space;
//! "latest" draws a zipfian distance back from the newest record.
//!
//! Every read and every scanned record is checked against the [`Model`].
//! Updates and inserts are committed durably in groups of [`GROUP`] (one
//! batch), read-modify-writes in groups of [`GROUP`] per transaction
//! ([`Store::transaction`]); a read never sees a write of an uncommitted
//! group, and the model changes only when a group commits.

use std::time::Instant;

use sealkv::fileio::SplitMix64;

use super::engine::{Batch, Engine, Open, Store, Table};
use super::records::{Model, check_version, index_of, key, mismatch, value_into};
use super::workload::{Measure, Shape};
use crate::exit::CliError;

/// Writes per durable commit (updates and inserts; read-modify-writes per
/// transaction).
pub(crate) const GROUP: usize = 100;
/// YCSB's zipfian constant.
const THETA: f64 = 0.99;
/// The scrambled zipfian's item space, and its zeta (YCSB's constants).
const SCRAMBLED_ITEMS: u64 = 10_000_000_000;
const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;
/// The longest scan of workload E.
const MAX_SCAN: u64 = 100;

/// Operations per workload for `n` records: a tenth of the records (at
/// least 100), and a tenth of that for E, whose operations are scans.
pub(crate) fn operations(kind: Kind, n: u64) -> u64 {
    let ops = (n / 10).max(100);
    if kind == Kind::E { ops / 10 } else { ops }
}

/// One of the core workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    A,
    B,
    C,
    D,
    E,
    F,
}

/// The operation mix of a workload, in percent.
struct Mix {
    read: u64,
    update: u64,
    insert: u64,
    scan: u64,
    rmw: u64,
}

/// One operation of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Update,
    Insert,
    Scan,
    ReadModifyWrite,
}

impl Mix {
    /// The operation for a roll of `dice` in `0..100`.
    fn pick(&self, dice: u64) -> Op {
        let mut edge = 0;
        for (share, op) in [
            (self.read, Op::Read),
            (self.update, Op::Update),
            (self.insert, Op::Insert),
            (self.scan, Op::Scan),
            (self.rmw, Op::ReadModifyWrite),
        ] {
            edge += share;
            if dice < edge {
                return op;
            }
        }
        Op::Read
    }
}

impl Kind {
    fn mix(self) -> Mix {
        let none = Mix {
            read: 0,
            update: 0,
            insert: 0,
            scan: 0,
            rmw: 0,
        };
        match self {
            Kind::A => Mix {
                read: 50,
                update: 50,
                ..none
            },
            Kind::B => Mix {
                read: 95,
                update: 5,
                ..none
            },
            Kind::C => Mix { read: 100, ..none },
            Kind::D => Mix {
                read: 95,
                insert: 5,
                ..none
            },
            Kind::E => Mix {
                scan: 95,
                insert: 5,
                ..none
            },
            Kind::F => Mix {
                read: 50,
                rmw: 50,
                ..none
            },
        }
    }

    /// The seed of the workload's choices: the same for every engine, so
    /// all run the same operations.
    fn seed(self) -> u64 {
        0x5943_5342_0000_0000
            | match self {
                Kind::A => 1,
                Kind::B => 2,
                Kind::C => 3,
                Kind::D => 4,
                Kind::E => 5,
                Kind::F => 6,
            }
    }
}

/// A number in `[0, 1)` from 53 random bits.
fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `initial` plus the sum of `1 / i^theta` for `i` in `from+1..=to`.
fn zeta(from: u64, to: u64, theta: f64, initial: f64) -> f64 {
    (from..to).fold(initial, |sum, i| sum + 1.0 / ((i + 1) as f64).powf(theta))
}

/// YCSB's `ZipfianGenerator`: item 0 the most popular, then 1, and so on.
#[derive(Debug, Clone)]
pub(crate) struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zeta2: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// Over `0..items` (zeta computed in `items` steps).
    pub(crate) fn new(items: u64) -> Self {
        Self::with_zeta(items, zeta(0, items, THETA, 0.0))
    }

    /// Over `0..items`, with zeta(items) already known.
    fn with_zeta(items: u64, zetan: f64) -> Self {
        let theta = THETA;
        let mut z = Zipfian {
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta2: zeta(0, 2, theta, 0.0),
            zetan,
            eta: 0.0,
        };
        z.eta = z.compute_eta();
        z
    }

    fn compute_eta(&self) -> f64 {
        (1.0 - (2.0 / self.items.max(1) as f64).powf(1.0 - self.theta))
            / (1.0 - self.zeta2 / self.zetan)
    }

    /// Extends the items to `0..items` (zeta updated incrementally, as
    /// YCSB does when the record count grows).
    pub(crate) fn grow(&mut self, items: u64) {
        if items > self.items {
            self.zetan = zeta(self.items, items, self.theta, self.zetan);
            self.items = items;
            self.eta = self.compute_eta();
        }
    }

    /// The next item, in `0..items`.
    pub(crate) fn next(&self, rng: &mut SplitMix64) -> u64 {
        let u = unit(rng);
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.items.saturating_sub(1));
        }
        let x = self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        (x as u64).min(self.items.saturating_sub(1))
    }
}

/// FNV-1a over the 8 bytes of `x`, as YCSB's `fnvhash64` (which takes the
/// absolute value of the signed result).
fn fnv64(mut x: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for _ in 0..8 {
        h ^= x & 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
        x >>= 8;
    }
    (h as i64).unsigned_abs()
}

/// YCSB's `ScrambledZipfianGenerator`: zipfian popularity, the popular
/// records scattered over the key space.
pub(crate) struct Scrambled {
    zipf: Zipfian,
}

impl Scrambled {
    pub(crate) fn new() -> Self {
        Scrambled {
            zipf: Zipfian::with_zeta(SCRAMBLED_ITEMS + 1, SCRAMBLED_ZETAN),
        }
    }

    /// A record in `0..count`.
    pub(crate) fn next(&self, rng: &mut SplitMix64, count: u64) -> u64 {
        fnv64(self.zipf.next(rng)) % count.max(1)
    }
}

/// YCSB's `SkewedLatestGenerator`: the newest records the most popular.
pub(crate) struct Latest {
    zipf: Zipfian,
}

impl Latest {
    pub(crate) fn new(count: u64) -> Self {
        Latest {
            zipf: Zipfian::new(count.saturating_sub(1)),
        }
    }

    /// A record in `0..count` (never record 0 once there are two, as in
    /// YCSB).
    pub(crate) fn next(&mut self, rng: &mut SplitMix64, count: u64) -> u64 {
        let newest = count.saturating_sub(1);
        self.zipf.grow(newest);
        newest - self.zipf.next(rng).min(newest)
    }
}

/// The writes of the current group, not yet committed.
struct Pending {
    /// Record and version, one entry per record.
    writes: Vec<(u64, u8)>,
    /// How many of them are inserts (records past the model's end).
    inserts: u64,
}

impl Pending {
    /// The version an update of `i` writes: one past the pending one, else
    /// one past the committed one.
    fn next_version(&self, model: &Model, i: u64) -> u8 {
        let current = self
            .writes
            .iter()
            .find(|(k, _)| *k == i)
            .map(|(_, v)| *v)
            .or_else(|| model.version(i))
            .unwrap_or(0);
        current.wrapping_add(1)
    }

    fn update(&mut self, i: u64, version: u8) {
        match self.writes.iter_mut().find(|(k, _)| *k == i) {
            Some(slot) => slot.1 = version,
            None => self.writes.push((i, version)),
        }
    }

    /// Commits the group as one durable batch and applies it to the model.
    fn commit(
        &mut self,
        store: &dyn Store,
        model: &mut Model,
        batch: &mut Batch,
    ) -> Result<(), CliError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        batch.clear();
        for &(i, v) in &self.writes {
            batch.push(i, v);
        }
        store.write(batch)?;
        // Inserts are numbered from the model's end in order, so they
        // append in order.
        for (i, v) in self.writes.drain(..) {
            model.commit(i, v);
        }
        self.inserts = 0;
        Ok(())
    }
}

/// Runs workload `kind` on `engine` (opened once; open and close untimed)
/// and returns its throughput.
pub(crate) fn run(
    engine: &dyn Engine,
    model: &mut Model,
    shape: Shape,
    kind: Kind,
) -> Result<Measure, CliError> {
    let ops = operations(kind, shape.records);
    let open = if kind == Kind::F {
        Open::Transactional
    } else {
        Open::Existing
    };
    let mut elapsed = None;
    engine.session(open, &mut |store| {
        // The "latest" chooser is set up before the clock starts: it sums
        // a zeta term per record, which would otherwise be timed as part
        // of the engine's operations. Only D draws from it; the others
        // get an empty one, which costs nothing to set up.
        let mut latest = Latest::new(if kind == Kind::D { model.len() } else { 0 });
        let start = Instant::now();
        operate(store, model, shape.value_len, kind, ops, &mut latest)?;
        elapsed = Some(start.elapsed());
        Ok(())
    })?;
    Ok(Measure::Throughput {
        ops,
        elapsed: elapsed.unwrap_or_default(),
    })
}

/// The operations of one run.
fn operate(
    store: &dyn Store,
    model: &mut Model,
    value_len: usize,
    kind: Kind,
    ops: u64,
    latest: &mut Latest,
) -> Result<(), CliError> {
    let mix = kind.mix();
    let mut rng = SplitMix64::new(kind.seed());
    let scrambled = Scrambled::new();
    // Inserts may take E's start keys past the loaded records; YCSB sizes
    // the chooser for them and draws again above the newest.
    let expected_new = ops * mix.insert / 100 * 2;
    let mut pending = Pending {
        writes: Vec::with_capacity(GROUP),
        inserts: 0,
    };
    let mut rmw: Vec<u64> = Vec::with_capacity(GROUP);
    let mut batch = Batch::new(value_len);
    let mut scratch = Vec::with_capacity(value_len);
    for _ in 0..ops {
        let count = model.len();
        let choose = |rng: &mut SplitMix64, latest: &mut Latest| -> u64 {
            if kind == Kind::D {
                latest.next(rng, count)
            } else if kind == Kind::E {
                loop {
                    let i = scrambled.next(rng, count + expected_new);
                    if i < count {
                        break i;
                    }
                }
            } else {
                scrambled.next(rng, count)
            }
        };
        match mix.pick(rng.below(100)) {
            Op::Read => {
                let i = choose(&mut rng, latest);
                let m = &*model;
                store
                    .reader()?
                    .get(&key(i), &mut |got| m.check(i, got, &mut scratch, value_len))?;
            }
            Op::Update => {
                let i = choose(&mut rng, latest);
                let v = pending.next_version(model, i);
                pending.update(i, v);
            }
            Op::Insert => {
                let i = count + pending.inserts;
                pending.inserts += 1;
                pending.update(i, 0);
            }
            Op::Scan => {
                let start = choose(&mut rng, latest);
                let len = 1 + rng.below(MAX_SCAN);
                scan(store, model, start, len, &mut scratch, value_len)?;
            }
            Op::ReadModifyWrite => {
                rmw.push(choose(&mut rng, latest));
                if rmw.len() == GROUP {
                    read_modify_write(store, model, &rmw, value_len)?;
                    rmw.clear();
                }
            }
        }
        if pending.writes.len() == GROUP {
            pending.commit(store, model, &mut batch)?;
        }
    }
    pending.commit(store, model, &mut batch)?;
    if !rmw.is_empty() {
        read_modify_write(store, model, &rmw, value_len)?;
    }
    Ok(())
}

/// Scans `len` records from record `start`, checking each, and that the
/// scan saw exactly the records that exist there.
fn scan(
    store: &dyn Store,
    model: &Model,
    start: u64,
    len: u64,
    scratch: &mut Vec<u8>,
    value_len: usize,
) -> Result<(), CliError> {
    let mut next = start;
    let seen = store.reader()?.scan(&key(start), len, &mut |k, v| {
        let i = index_of(k).ok_or_else(|| mismatch(next))?;
        if i != next {
            return Err(mismatch(next));
        }
        model.check(i, Some(v), scratch, value_len)?;
        next += 1;
        Ok(())
    })?;
    let expected = len.min(model.len().saturating_sub(start));
    if seen != expected {
        return Err(CliError::CheckFailed(format!(
            "bench: a scan of {len} from record {start} saw {seen} records, {expected} exist"
        )));
    }
    Ok(())
}

/// One durable transaction over `records`: reads each (checked), writes it
/// back one version on; then the model follows.
fn read_modify_write(
    store: &dyn Store,
    model: &mut Model,
    records: &[u64],
    value_len: usize,
) -> Result<(), CliError> {
    let mut written: Vec<(u64, u8)> = Vec::with_capacity(records.len());
    let mut value = vec![0u8; value_len];
    let mut scratch = Vec::with_capacity(value_len);
    let m = &*model;
    store.transaction(&mut |tx| {
        // A retry starts over on a fresh snapshot.
        written.clear();
        for &i in records {
            let current = written
                .iter()
                .find(|(k, _)| *k == i)
                .map(|(_, v)| *v)
                .or_else(|| m.version(i))
                .ok_or_else(|| mismatch(i))?;
            let got = tx.get(Table::Records, &key(i))?;
            check_version(i, current, got.as_deref(), &mut scratch, value_len)?;
            let next = current.wrapping_add(1);
            value_into(i, next, &mut value);
            tx.put(Table::Records, &key(i), &value)?;
            match written.iter_mut().find(|(k, _)| *k == i) {
                Some(slot) => slot.1 = next,
                None => written.push((i, next)),
            }
        }
        Ok(())
    })?;
    for (i, v) in written {
        model.commit(i, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mix_shares_out_every_roll_as_the_paper_says() {
        let share = |kind: Kind, op: Op| (0..100).filter(|&d| kind.mix().pick(d) == op).count();
        assert_eq!(share(Kind::A, Op::Update), 50);
        assert_eq!(share(Kind::B, Op::Read), 95);
        assert_eq!(share(Kind::C, Op::Read), 100);
        assert_eq!(share(Kind::D, Op::Insert), 5);
        assert_eq!(share(Kind::E, Op::Scan), 95);
        assert_eq!(share(Kind::F, Op::ReadModifyWrite), 50);
        for kind in [Kind::A, Kind::B, Kind::C, Kind::D, Kind::E, Kind::F] {
            let m = kind.mix();
            assert_eq!(
                m.read + m.update + m.insert + m.scan + m.rmw,
                100,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn the_zipfian_favours_the_first_items_in_decreasing_order() {
        let z = Zipfian::new(1000);
        let mut rng = SplitMix64::new(1);
        let mut counts = vec![0u64; 1000];
        for _ in 0..200_000 {
            let i = z.next(&mut rng);
            counts[i as usize] += 1;
        }
        // P(0) = 1 / zeta(1000, 0.99), about 13%; then 1/2^0.99 of that.
        let p0 = counts[0] as f64 / 200_000.0;
        assert!((0.11..0.15).contains(&p0), "{p0}");
        assert!(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[9]);
        // The tail is reached.
        assert!(counts[500..].iter().sum::<u64>() > 0);
    }

    #[test]
    fn growing_the_zipfian_matches_computing_it_afresh() {
        let mut z = Zipfian::new(100);
        z.grow(5000);
        let fresh = Zipfian::new(5000);
        assert!((z.zetan - fresh.zetan).abs() < 1e-9);
        assert!((z.eta - fresh.eta).abs() < 1e-9);
    }

    #[test]
    fn the_scrambled_zipfian_stays_in_range_and_spreads_the_hot_records() {
        let s = Scrambled::new();
        let mut rng = SplitMix64::new(2);
        let mut counts = vec![0u64; 1000];
        for _ in 0..100_000 {
            counts[s.next(&mut rng, 1000) as usize] += 1;
        }
        let mut hot: Vec<usize> = (0..1000).collect();
        hot.sort_by_key(|&i| std::cmp::Reverse(counts[i]));
        // Skewed: the ten hottest records take about 13% (the first ten
        // of 10^10 zipfian items, 2.93 / 26.47, plus what hashes onto
        // them), ten times their uniform share...
        let top: u64 = hot[..10].iter().map(|&i| counts[i]).sum();
        assert!((10_000..16_000).contains(&top), "{top}");
        // ...and they are not the first records.
        assert!(hot[..10].iter().any(|&i| i >= 100), "{:?}", &hot[..10]);
    }

    #[test]
    fn latest_prefers_the_newest_records_and_follows_inserts() {
        let mut l = Latest::new(1000);
        let mut rng = SplitMix64::new(3);
        let draws: Vec<u64> = (0..10_000).map(|_| l.next(&mut rng, 1000)).collect();
        assert!(draws.iter().all(|&i| i < 1000));
        let recent = draws.iter().filter(|&&i| i >= 990).count();
        assert!(recent > 3_000, "{recent}");
        // After inserts the newest record is the favourite.
        let after: Vec<u64> = (0..1000).map(|_| l.next(&mut rng, 1100)).collect();
        assert!(after.iter().filter(|&&i| i == 1099).count() > 50);
    }

    #[test]
    fn fnv_is_fnv1a_over_the_little_endian_bytes_made_non_negative() {
        // FNV-1a, byte by byte, as the FNV reference describes it.
        fn reference(bytes: &[u8]) -> u64 {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
        }
        for x in [0u64, 1, 255, 256, 0xdead_beef, u64::MAX] {
            let h = reference(&x.to_le_bytes());
            assert_eq!(fnv64(x), (h as i64).unsigned_abs(), "{x}");
            assert!(fnv64(x) <= 1 << 63);
        }
    }
}
