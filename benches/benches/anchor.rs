//! The cost of a freshness anchor per commit, on the real disk: one
//! durable commit (a put of one 100-byte record, then `flush`: the WAL
//! append with its fsync, the page-file commit with its two fsyncs) with no
//! anchor, with a `FileAnchor` updated after every commit (one 512-byte
//! write and one fdatasync more), and with `AnchorPolicy::Interval` (an
//! update at most once a second), plaintext and AES-256-GCM.
//!
//! `cargo bench -p sealkv-benches --bench anchor -- --warm-up-time 1 --measurement-time 5`
//!
//! The figure that matters is each anchored/unanchored time ratio.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sealkv::anchor::{AnchorPolicy, FileAnchor};
use sealkv::crypto::MasterKey;
use sealkv::{Config, Db, SyncMode};

fn open(dir: &std::path::Path, sealed: bool, anchor: &str) -> Db {
    let mut c = Config::new(dir.join("db")).sync_mode(SyncMode::Always);
    if sealed {
        c = c.encryption_key(MasterKey::from_bytes(&[0x42; 32]).unwrap());
    }
    let file = || Arc::new(FileAnchor::new(dir.join("db.anchor")));
    match anchor {
        "every-commit" => c = c.freshness_anchor(file()),
        "interval-1s" => {
            c = c
                .freshness_anchor(file())
                .anchor_policy(AnchorPolicy::Interval(Duration::from_secs(1)))
        }
        _ => {}
    }
    Db::open_with_config(c).unwrap()
}

fn bench_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("anchor/commit");
    g.sample_size(30);
    let value = [0xA5u8; 100];
    for (mode, sealed) in [("plaintext", false), ("aes-256-gcm", true)] {
        for anchor in ["none", "every-commit", "interval-1s"] {
            let dir = tempfile::tempdir().unwrap();
            let db = open(dir.path(), sealed, anchor);
            let mut i = 0u64;
            g.bench_function(BenchmarkId::new(anchor, mode), |b| {
                b.iter(|| {
                    i += 1;
                    db.put(i.to_be_bytes(), value).unwrap();
                    db.flush().unwrap();
                });
            });
            db.close().unwrap();
        }
    }
    g.finish();
}

criterion_group!(benches, bench_commit);
criterion_main!(benches);
