//! WAL append throughput: 1 and 8 threads, `SyncMode::Always` and `Never`,
//! 100-byte and 4 KiB values, plaintext vs AES-256-GCM vs
//! ChaCha20-Poly1305, on the real disk (a tempdir through `StdVfs`).
//!
//! `cargo bench -p sealkv-benches --bench wal -- --warm-up-time 1 --measurement-time 2`
//!
//! The figure that matters is each sealed/plaintext throughput ratio for
//! the same threads, sync mode and value size.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealkv_core_wal::{Batch, SyncMode, Wal, WalOptions};
use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, EncryptionAlgorithm, KeyId, Keyring, SecretKey,
};
use sealkv_fileio::{StdVfs, Vfs};

fn options(alg: Option<EncryptionAlgorithm>, sync: SyncMode) -> WalOptions {
    let db = DbId([9; 16]);
    let mut o = WalOptions::new(db);
    o.sync_mode = sync;
    o.segment_size = 32 << 20;
    if let Some(alg) = alg {
        let ring = Keyring::new(db, Arc::new(CryptoProvider::default()));
        ring.insert(DataKey::new(
            KeyId(1),
            alg.id(),
            SecretKey::from_bytes(&[0x42; 32]).expect("32 bytes"),
        ));
        ring.set_active(KeyId(1)).expect("key 1");
        o = o.sealed(Arc::new(ring));
    }
    o
}

fn batch(value_len: usize) -> Batch {
    let mut b = Batch::new();
    b.put(b"a-sixteen-b-key!", &vec![0xA5; value_len]);
    b
}

/// Appends `iters` batches from `threads` threads; returns the time taken.
fn run(wal: &Arc<Wal>, threads: usize, iters: u64, b: &Arc<Batch>) -> Duration {
    let start = Instant::now();
    if threads == 1 {
        for _ in 0..iters {
            wal.append(b).expect("append");
        }
    } else {
        let per = iters.div_ceil(threads as u64);
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let wal = wal.clone();
                let b = b.clone();
                std::thread::spawn(move || {
                    for _ in 0..per {
                        wal.append(&b).expect("append");
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("thread");
        }
    }
    start.elapsed()
}

fn bench_wal(c: &mut Criterion) {
    let protections = [
        ("plaintext", None),
        ("aes-256-gcm", Some(EncryptionAlgorithm::Aes256Gcm)),
        (
            "chacha20-poly1305",
            Some(EncryptionAlgorithm::ChaCha20Poly1305),
        ),
    ];
    for (sync_name, sync) in [("never", SyncMode::Never), ("always", SyncMode::Always)] {
        for threads in [1usize, 8] {
            for value_len in [100usize, 4096] {
                let mut group =
                    c.benchmark_group(format!("wal-append/{sync_name}/{threads}t/{value_len}B"));
                group.throughput(Throughput::Bytes(value_len as u64));
                if sync == SyncMode::Always {
                    group.sample_size(10);
                }
                for (name, alg) in protections {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs::new());
                    let (wal, _) =
                        Wal::open(vfs, dir.path().join("wal"), options(alg, sync), |_, _| {
                            Ok::<(), std::io::Error>(())
                        })
                        .expect("open");
                    let wal = Arc::new(wal);
                    let b = Arc::new(batch(value_len));
                    group.bench_function(BenchmarkId::from_parameter(name), |bench| {
                        bench.iter_custom(|iters| {
                            let t = run(&wal, threads, iters, &b);
                            // Keep the disk footprint small, untimed.
                            wal.roll().expect("roll");
                            let done = wal.next_seq().0 - 1;
                            wal.retire(sealkv_core_wal::Seq(done)).expect("retire");
                            t
                        })
                    });
                }
                group.finish();
            }
        }
    }
}

criterion_group!(benches, bench_wal);
criterion_main!(benches);
