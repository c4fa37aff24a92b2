//! Short range scans and point reads over a memtable full of updates: the
//! shape of YCSB workloads E and C after A and B, for profiling.
//!
//! `cargo run --release -p sealkv --example short_scans -- [RECORDS] [UPDATES] [SCANS]`
//!
//! Loads RECORDS records (16-byte keys, 100-byte values) and flushes them,
//! writes UPDATES random overwrites that stay in the memtable, then times
//! SCANS scans of 1 to 100 items from random starts and as many gets, all
//! encrypted (AES-256-GCM).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

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

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let records = args.first().copied().unwrap_or(1_000_000);
    let updates = args.get(1).copied().unwrap_or(200_000);
    let scans = args.get(2).copied().unwrap_or(50_000);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with_config(
        Config::new(dir.path())
            .encryption_key(MasterKey::from_bytes(&[7; 32]).unwrap())
            .memtable_size(256 << 20),
    )
    .unwrap();
    let value = [0x5au8; 100];
    let mut batch = WriteBatch::new();
    for i in 0..records {
        batch.put(key(i), value);
        if batch.len() == 1000 {
            db.write(&batch).unwrap();
            batch.clear();
        }
    }
    db.write(&batch).unwrap();
    db.flush().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    batch.clear();
    for _ in 0..updates {
        batch.put(key(next(&mut rng) % records), [0xa5u8; 100]);
        if batch.len() == 100 {
            db.write(&batch).unwrap();
            batch.clear();
        }
    }
    db.write(&batch).unwrap();
    let stats = db.stats().unwrap();
    println!(
        "{records} records flushed, {updates} updates in {} MiB of memtable",
        stats.memtable_bytes >> 20
    );

    let start = Instant::now();
    let items = scan_phase(&db, records, scans, &mut rng);
    let t = start.elapsed();
    println!(
        "short scans: {:.1} µs each ({:.0} scans/s, {items} items)",
        t.as_secs_f64() * 1e6 / scans as f64,
        scans as f64 / t.as_secs_f64()
    );

    let start = Instant::now();
    get_phase(&db, records, scans, &mut rng);
    let t = start.elapsed();
    println!(
        "gets: {:.2} µs each ({:.0} gets/s)",
        t.as_secs_f64() * 1e6 / scans as f64,
        scans as f64 / t.as_secs_f64()
    );
}

/// The timed scans (a function of its own, so a profiler can collect it
/// alone: `valgrind --tool=callgrind --toggle-collect='*scan_phase*'`).
#[inline(never)]
fn scan_phase(db: &Db, records: u64, scans: u64, rng: &mut u64) -> u64 {
    let mut items = 0u64;
    for _ in 0..scans {
        let from = key(next(rng) % records);
        let n = 1 + next(rng) % 100;
        for item in db.range(from.as_slice()..).unwrap().take(n as usize) {
            let (_, value) = item.unwrap();
            assert_eq!(value.len(), 100);
            items += 1;
        }
    }
    items
}

/// The timed gets.
#[inline(never)]
fn get_phase(db: &Db, records: u64, gets: u64, rng: &mut u64) {
    for _ in 0..gets {
        db.get(key(next(rng) % records)).unwrap().unwrap();
    }
}
