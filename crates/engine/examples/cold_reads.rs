//! Reads on a cold page cache, plaintext against AES-256-GCM in one run:
//! the shape of YCSB workloads C and E right after a reopen, for
//! measuring what encryption costs there and for profiling.
//!
//! `cargo run --release -p sealkv --example cold_reads -- [RECORDS] [OPS] [ROUNDS] [MODE] [churn]`
//!
//! Loads RECORDS records (16-byte keys, 100-byte values, durable batches
//! of 1,000, random order) into a plaintext and an AES-256-GCM database,
//! closes them, then for ROUNDS rounds, the modes interleaved: reopen and
//! time OPS gets of zipfian-chosen keys (theta 0.99, scattered over the
//! key space), and reopen and time OPS / 10 scans of 1 to 100 items from
//! zipfian starts. Prints each phase's time per operation, the page-cache
//! misses per operation, and encrypted ÷ plaintext throughput per round.
//! MODE (`plain` or `aes`; anything else: both) runs only that mode, for
//! a profiler; `churn` first runs what `sealkv bench` runs between its
//! load and YCSB C (a quarter of the records overwritten, 100 single
//! durable puts, YCSB A's and B's updates), each in a session of its own.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use sealkv::crypto::MasterKey;
use sealkv::{Config, Db, WriteBatch};

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"user-key");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Gray et al.'s zipfian over `0..n`, theta 0.99, each draw hashed over
/// the key space (as YCSB's scrambled zipfian).
struct Zipf {
    n: f64,
    theta: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    fn new(n: u64) -> Self {
        let theta = 0.99;
        let zeta = |m: u64| (1..=m).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta(2) / zetan);
        Zipf {
            n: n as f64,
            theta,
            zetan,
            eta,
        }
    }

    fn draw(&self, rng: &mut u64) -> u64 {
        let u = (next(rng) >> 11) as f64 / (1u64 << 53) as f64;
        let uz = u * self.zetan;
        let item = if uz < 1.0 {
            0
        } else if uz < 1.0 + 0.5f64.powf(self.theta) {
            1
        } else {
            (self.n * (self.eta * u - self.eta + 1.0).powf(1.0 / (1.0 - self.theta))) as u64
        };
        // Scatter the popular items (FNV-1a of the draw).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in item.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        h % self.n as u64
    }
}

fn config(dir: &Path, aes: bool) -> Config {
    let c = Config::new(dir);
    if aes {
        c.encryption_key(MasterKey::from_bytes(&[7; 32]).unwrap())
    } else {
        c
    }
}

fn load(dir: &Path, aes: bool, records: u64) {
    let db = Db::open_with_config(config(dir, aes)).unwrap();
    let value = [0x5au8; 100];
    let mut batch = WriteBatch::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut order: Vec<u64> = (0..records).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (next(&mut rng) % (i as u64 + 1)) as usize);
    }
    for i in order {
        batch.put(key(i), value);
        if batch.len() == 1000 {
            db.write(&batch).unwrap();
            batch.clear();
        }
    }
    db.write(&batch).unwrap();
    db.close().unwrap();
}

/// What the bench runs between the load and YCSB C: a quarter of the
/// records overwritten (batches of 1,000), 100 single durable puts, then
/// YCSB A's and B's updates (groups of 100, zipfian keys), each step in a
/// session of its own.
fn churn(dir: &Path, aes: bool, records: u64, ops: u64, zipf: &Zipf) {
    let session = |f: &mut dyn FnMut(&Db)| {
        let db = Db::open_with_config(config(dir, aes)).unwrap();
        f(&db);
        db.close().unwrap();
    };
    let value = [0xa5u8; 100];
    session(&mut |db| {
        let mut batch = WriteBatch::new();
        for i in (0..records).step_by(4) {
            batch.put(key(i), value);
            if batch.len() == 1000 {
                db.write(&batch).unwrap();
                batch.clear();
            }
        }
        db.write(&batch).unwrap();
    });
    session(&mut |db| {
        for i in 0..100 {
            let mut batch = WriteBatch::new();
            batch.put(key(records + i), value);
            db.write(&batch).unwrap();
        }
    });
    let mut rng = 0x1234_5678_9abc_def1u64;
    for updates in [ops / 2, ops / 20] {
        session(&mut |db| {
            let mut batch = WriteBatch::new();
            for _ in 0..updates {
                batch.put(key(zipf.draw(&mut rng)), value);
                if batch.len() == 100 {
                    db.write(&batch).unwrap();
                    batch.clear();
                }
            }
            db.write(&batch).unwrap();
        });
    }
}

/// The timed gets (a function of its own, so a profiler can collect it
/// alone: `valgrind --tool=callgrind --toggle-collect='*get_phase*'`).
#[inline(never)]
fn get_phase(db: &Db, zipf: &Zipf, ops: u64, rng: &mut u64) {
    for _ in 0..ops {
        let v = db.get(key(zipf.draw(rng))).unwrap().unwrap();
        assert_eq!(v.len(), 100);
    }
}

/// The timed scans.
#[inline(never)]
fn scan_phase(db: &Db, zipf: &Zipf, scans: u64, rng: &mut u64) -> u64 {
    let mut items = 0u64;
    for _ in 0..scans {
        let from = key(zipf.draw(rng));
        let n = 1 + next(rng) % 100;
        for item in db.range(from.as_slice()..).unwrap().take(n as usize) {
            let (_, value) = item.unwrap();
            assert_eq!(value.len(), 100);
            items += 1;
        }
    }
    items
}

/// Reopens and times one phase: (seconds, cache misses).
fn phase(dir: &Path, aes: bool, run: impl FnOnce(&Db)) -> (f64, u64) {
    let db = Db::open_with_config(config(dir, aes)).unwrap();
    let before = db.stats().unwrap().cache_misses;
    let start = Instant::now();
    run(&db);
    let t = start.elapsed().as_secs_f64();
    let misses = db.stats().unwrap().cache_misses - before;
    db.close().unwrap();
    (t, misses)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| {
        args.get(i)
            .map(|a| a.parse().expect("a number"))
            .unwrap_or(default)
    };
    let records = num(0, 100_000);
    let ops = num(1, 10_000);
    let rounds = num(2, 5);
    let modes: Vec<bool> = match args.get(3).map(String::as_str) {
        Some("plain") => vec![false],
        Some("aes") => vec![true],
        _ => vec![false, true],
    };
    let churned = args.get(4).is_some_and(|a| a == "churn");
    let root = tempfile::tempdir().unwrap();
    for &aes in &modes {
        load(&root.path().join(aes.to_string()), aes, records);
    }
    let zipf = Zipf::new(records);
    if churned {
        for &aes in &modes {
            churn(&root.path().join(aes.to_string()), aes, records, ops, &zipf);
        }
    }
    let scans = (ops / 10).max(1);
    for round in 0..rounds {
        let mut gets = [0.0; 2];
        let mut scanned = [0.0; 2];
        for (k, &aes) in modes.iter().enumerate() {
            let dir = root.path().join(aes.to_string());
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ round;
            let (t, m) = phase(&dir, aes, |db| get_phase(db, &zipf, ops, &mut rng));
            gets[k] = ops as f64 / t;
            let mut items = 0;
            let (ts, ms) = phase(&dir, aes, |db| {
                items = scan_phase(db, &zipf, scans, &mut rng);
            });
            scanned[k] = scans as f64 / ts;
            println!(
                "round {round} {:5}: gets {:.2} µs ({:.2} misses/get), scans {:.1} µs ({:.2} misses/scan, {items} items)",
                if aes { "aes" } else { "plain" },
                t * 1e6 / ops as f64,
                m as f64 / ops as f64,
                ts * 1e6 / scans as f64,
                ms as f64 / scans as f64,
            );
        }
        if modes.len() == 2 {
            println!(
                "round {round} aes ÷ plain: gets {:.2}, scans {:.2}",
                gets[1] / gets[0],
                scanned[1] / scanned[0]
            );
        }
    }
}
