//! Seal and open throughput of each algorithm at 4 KiB and 64 KiB, through
//! sealkv's `Aead` trait and through a `DomainSealer` (the path pages and WAL
//! records take), next to the raw cipher crate for comparison. With
//! `--features ring` the `ring` provider is measured too, and with
//! `--features aws-lc-rs` the raw aws-lc-rs ciphers (the second provider we
//! measured and did not pick):
//!
//! `cargo bench -p sealkv-benches --features ring,aws-lc-rs --bench aead`
//!
//! The `selftest/*` groups measure the provider self-test, which runs once
//! per process before a provider's first use.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use aead::{AeadInOut, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealkv_crypto_envelope::hazmat::{self, nonce_for};
use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, Domain, EncryptionAlgorithm, KeyId, Keyring, SecretKey, selftest,
};

const SIZES: [usize; 2] = [4 * 1024, 64 * 1024];

/// Every provider this build has, by name.
fn providers() -> Vec<(&'static str, CryptoProvider)> {
    #[allow(unused_mut)]
    let mut p = vec![("rustcrypto", CryptoProvider::rustcrypto())];
    #[cfg(feature = "ring")]
    p.push(("ring", CryptoProvider::ring()));
    p
}

fn bench_aead(c: &mut Criterion) {
    for (pname, provider) in providers() {
        bench_provider(c, pname, &provider);
    }
}

fn bench_provider(c: &mut Criterion, pname: &str, provider: &CryptoProvider) {
    let key = SecretKey::from_bytes(&[0x42; 32]).expect("32 bytes");
    for alg in EncryptionAlgorithm::ALL {
        let aead = hazmat::builtin(provider, alg, &key).expect("builtin algorithm");
        let mut group = c.benchmark_group(format!("aead/{pname}/{alg}"));
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

/// The raw aws-lc-rs ciphers, sealing in place at each size.
#[cfg(feature = "aws-lc-rs")]
fn bench_aws_lc_rs(c: &mut Criterion) {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    for (name, alg) in [
        ("aes-256-gcm", &AES_256_GCM),
        ("chacha20-poly1305", &CHACHA20_POLY1305),
    ] {
        let key = LessSafeKey::new(UnboundKey::new(alg, &[0x42; 32]).expect("32 bytes"));
        let mut group = c.benchmark_group(format!("aead/aws-lc-rs-raw/{name}"));
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let mut buf = vec![0u8; size];
            group.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
                b.iter(|| {
                    let tag = key
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce_for(1)),
                            Aad::from(b"aad"),
                            &mut buf,
                        )
                        .expect("seal");
                    black_box(tag);
                })
            });
        }
        group.finish();
    }
}

#[cfg(not(feature = "aws-lc-rs"))]
fn bench_aws_lc_rs(_: &mut Criterion) {}

/// What the self-test costs: each built-in algorithm's checks run afresh,
/// and a whole provider's (every algorithm and part). A process pays the
/// provider figure at most once, before its first seal or derivation (the
/// verdicts are cached); compare it with the `engine/open` figures.
fn bench_selftest(c: &mut Criterion) {
    for (pname, provider) in providers() {
        let mut group = c.benchmark_group(format!("selftest/{pname}"));
        for info in provider.algorithms() {
            let alg = hazmat::aead_algorithm(&provider, info.id).expect("algorithm");
            group.bench_function(info.name, |b| {
                b.iter(|| selftest::check_algorithm(black_box(alg)).expect("passes"))
            });
        }
        group.bench_function("whole provider", |b| {
            b.iter(|| black_box(&provider).self_test_again().expect("passes"))
        });
        group.finish();
    }
}

criterion_group!(
    benches,
    bench_aead,
    bench_session_vs_raw,
    bench_aws_lc_rs,
    bench_selftest
);
criterion_main!(benches);
