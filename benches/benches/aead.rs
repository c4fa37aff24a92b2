//! Seal and open throughput of each algorithm at 4 KiB and 64 KiB, through
//! sealkv's `Aead` trait and through a `DomainSealer` (the path pages and WAL
//! records take), next to the raw cipher crate for comparison.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use aead::{AeadInOut, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, Domain, EncryptionAlgorithm, KeyId, Keyring, SecretKey,
    nonce_for,
};

const SIZES: [usize; 2] = [4 * 1024, 64 * 1024];

fn bench_aead(c: &mut Criterion) {
    let provider = CryptoProvider::default();
    let key = SecretKey::from_bytes(&[0x42; 32]).expect("32 bytes");
    for alg in EncryptionAlgorithm::ALL {
        let aead = provider.builtin(alg, &key).expect("builtin algorithm");
        let mut group = c.benchmark_group(format!("aead/{alg}"));
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let mut buf = vec![0u8; size];
            let mut tag = [0u8; 16];
            group.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
                b.iter(|| {
                    aead.seal_in_place_detached(&nonce_for(1), b"aad", &mut buf, &mut tag)
                        .expect("seal");
                    black_box(&tag);
                })
            });
            let mut sealed = vec![0u8; size];
            aead.seal_in_place_detached(&nonce_for(1), b"aad", &mut sealed, &mut tag)
                .expect("seal");
            group.bench_with_input(BenchmarkId::new("open", size), &size, |b, _| {
                b.iter(|| {
                    buf.copy_from_slice(&sealed);
                    aead.open_in_place_detached(&nonce_for(1), b"aad", &mut buf, &tag)
                        .expect("open");
                    black_box(&buf);
                })
            });
        }
        group.finish();
    }
}

fn bench_session_vs_raw(c: &mut Criterion) {
    let keyring = Keyring::new(DbId([1; 16]), Arc::new(CryptoProvider::default()));
    keyring.insert(DataKey::new(
        KeyId(1),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(&[7; 32]).expect("32 bytes"),
    ));
    keyring.set_active(KeyId(1)).expect("key 1");
    let mut group = c.benchmark_group("seal-path/aes-256-gcm");
    let size = 4 * 1024;
    group.throughput(Throughput::Bytes(size as u64));
    let mut buf = vec![0u8; size];
    let mut tag = [0u8; 16];
    let raw = aes_gcm::Aes256Gcm::new_from_slice(&[7; 32]).expect("32 bytes");
    group.bench_function("raw-crate", |b| {
        let nonce = aes_gcm::Nonce::from(nonce_for(1));
        b.iter(|| {
            let t = raw
                .encrypt_inout_detached(&nonce, b"aad", buf.as_mut_slice().into())
                .expect("seal");
            black_box(t);
        })
    });
    // A fresh session per batch of iterations keeps the counter far from
    // its limit however long criterion runs.
    group.bench_function("domain-sealer", |b| {
        b.iter_custom(|iters| {
            let session = keyring.start_session().expect("session");
            let sealer = session.sealer(Domain::Page);
            let start = std::time::Instant::now();
            for _ in 0..iters {
                let ctr = sealer.seal(b"aad", &mut buf, &mut tag).expect("seal");
                black_box(ctr);
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_aead, bench_session_vs_raw);
criterion_main!(benches);
