//! Engine workloads, plaintext vs AES-256-GCM, on the real disk:
//! fillseq and fillrandom (batches of 1,000, durable per batch), overwrite,
//! readrandom with a warm cache (after a flush), a full scan, and a 90/10
//! read/write mix.
//!
//! `cargo bench -p sealkv-benches --bench engine -- --warm-up-time 1 --measurement-time 3`
//!
//! The figure that matters is each encrypted/plaintext throughput ratio.
//! `engine/open` times an open and close of an existing database.
//! `engine/txn-range` times a range of ten keys read inside a transaction
//! that holds many writes of its own (a lookup by index in the middle of a
//! large write transaction).

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealkv::crypto::MasterKey;
use sealkv::{Config, Db, SyncMode, WriteBatch};

const N: u64 = 20_000;
const VALUE: usize = 100;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"user-key");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// A pseudo-random permutation step (an LCG over 2^64), for random keys.
fn scramble(i: u64) -> u64 {
    i.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        % N
}

fn open(dir: &std::path::Path, sealed: bool) -> Db {
    let mut c = Config::new(dir)
        .sync_mode(SyncMode::Always)
        .memtable_size(16 << 20)
        .cache_size(256 << 20);
    if sealed {
        c = c.encryption_key(MasterKey::from_bytes(&[0x42; 32]).unwrap());
    }
    Db::open_with_config(c).unwrap()
}

fn fill(db: &Db, random: bool) {
    let value = vec![0xA5u8; VALUE];
    let mut b = WriteBatch::new();
    for i in 0..N {
        let k = if random { scramble(i) } else { i };
        b.put(key(k), &value);
        if b.len() == 1000 {
            db.write(&b).unwrap();
            b.clear();
        }
    }
    db.write(&b).unwrap();
}

fn modes() -> [(&'static str, bool); 2] {
    [("plaintext", false), ("aes-256-gcm", true)]
}

fn bench_fill(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/fill");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    for (name, sealed) in modes() {
        for (workload, random) in [("fillseq", false), ("fillrandom", true)] {
            g.bench_function(BenchmarkId::new(workload, name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tempfile::tempdir().unwrap();
                        let db = open(dir.path(), sealed);
                        let start = Instant::now();
                        fill(&db, random);
                        total += start.elapsed();
                        db.close().unwrap();
                    }
                    total
                });
            });
        }
    }
    g.finish();
}

fn bench_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/read");
    for (name, sealed) in modes() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), sealed);
        fill(&db, false);
        db.flush().unwrap();
        // Warm the cache.
        for i in 0..N {
            db.get(key(i)).unwrap();
        }
        g.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        g.bench_function(BenchmarkId::new("readrandom", name), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                db.get(key(scramble(i))).unwrap().unwrap()
            });
        });
        g.throughput(Throughput::Elements(N));
        g.bench_function(BenchmarkId::new("scan", name), |b| {
            b.iter(|| db.range::<&[u8]>(..).unwrap().count());
        });
        let value = vec![0x5Au8; VALUE];
        g.throughput(Throughput::Elements(100));
        g.bench_function(BenchmarkId::new("overwrite-batch100", name), |b| {
            b.iter(|| {
                let mut wb = WriteBatch::new();
                for _ in 0..100 {
                    i = i.wrapping_add(1);
                    wb.put(key(scramble(i)), &value);
                }
                db.write(&wb).unwrap();
            });
        });
        g.throughput(Throughput::Elements(10));
        g.bench_function(BenchmarkId::new("mix-90-10", name), |b| {
            b.iter(|| {
                for j in 0..10 {
                    i = i.wrapping_add(1);
                    if j == 0 {
                        db.put(key(scramble(i)), &value).unwrap();
                    } else {
                        db.get(key(scramble(i))).unwrap();
                    }
                }
            });
        });
        db.close().unwrap();
    }
    g.finish();
}

/// Opening and closing an existing database of `N` records (flushed), with
/// and without encryption: the figure the once-per-process provider
/// self-test (`aead` bench, `selftest/*`) is compared with.
fn bench_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/open");
    for (name, sealed) in modes() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), sealed);
        fill(&db, false);
        db.close().unwrap();
        group.bench_function(name, |b| {
            b.iter(|| open(dir.path(), sealed).close().unwrap())
        });
    }
    group.finish();
}

/// A range of ten keys read, again and again, inside one transaction that
/// wrote `writes` keys of its own (unflushed, plaintext: the cost is the
/// transaction's own writes merged into the range).
fn bench_txn_range(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/txn-range");
    for writes in [100u64, 5_000] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), false);
        let mut tx = db.begin_transaction().unwrap();
        for i in 0..writes {
            // 7,919 is prime: a permutation of 0..writes.
            tx.put(key(i * 7_919 % writes), b"v").unwrap();
        }
        let mut start = 0u64;
        group.bench_with_input(
            BenchmarkId::from_parameter(writes),
            &writes,
            |b, &writes| {
                b.iter(|| {
                    start = (start + 13) % (writes - 10);
                    let rows = tx.range(key(start)..key(start + 10)).unwrap().count();
                    assert_eq!(rows, 10);
                })
            },
        );
        tx.rollback();
    }
    group.finish();
}

criterion_group!(benches, bench_fill, bench_read, bench_open, bench_txn_range);
criterion_main!(benches);
