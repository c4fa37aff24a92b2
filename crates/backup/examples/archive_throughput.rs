//! Export, verify and import throughput, sealed vs plaintext, in one run.
//!
//! ```sh
//! cargo run --release -p sealkv-backup --example archive_throughput -- 200000
//! ```
//!
//! MB/s are of key and value bytes (10^6 bytes per MB). The source database
//! is encrypted (AES-256-GCM); imports go into a new encrypted database of
//! the same kind, so "import" includes the engine's own sealing and writes.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use sealkv::crypto::{EncryptionAlgorithm, KeySource, MasterKey};
use sealkv::{Config, Db, SyncMode, WriteBatch};
use sealkv_backup::archive::{self, ExportOptions, ImportOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(200_000), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let key = MasterKey::random()?;
    let config = |d: &Path| {
        Config::new(d)
            .encrypt_at_rest(true)
            .encryption_key(key.clone())
            .encryption_algorithm(EncryptionAlgorithm::Aes256Gcm)
            .sync_mode(SyncMode::Never)
    };
    let db = Db::open_with_config(config(&dir.path().join("src")))?;
    let mut batch = WriteBatch::new();
    for i in 0..n {
        let value: Vec<u8> = (0..100).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        batch.put(format!("user/{i:010}"), value);
        if batch.len() == 1000 {
            db.write(&batch)?;
            batch.clear();
        }
    }
    db.write(&batch)?;
    db.flush()?;
    // Warm the page cache, so the first export does not pay for it alone.
    let warm = db.range::<&[u8]>(..)?.count();
    assert_eq!(warm, n);

    println!("{n} records; MB/s of key+value bytes");
    println!("{:<26}{:>10}{:>10}{:>10}", "", "export", "verify", "import");
    let ks = KeySource::Key(MasterKey::random()?);
    for (name, opts) in [
        ("sealed AES-256-GCM", ExportOptions::sealed(ks.clone())),
        (
            "sealed ChaCha20-Poly1305",
            ExportOptions::sealed(ks.clone()).algorithm(EncryptionAlgorithm::ChaCha20Poly1305),
        ),
        ("plaintext (CRC32C)", ExportOptions::plaintext_unencrypted()),
    ] {
        let file = dir.path().join(format!("{}.skva", name.replace(' ', "_")));
        let t = Instant::now();
        let s = archive::export(&db, &file, &opts, &mut |_| {})?;
        let export = t.elapsed().as_secs_f64();
        let t = Instant::now();
        archive::verify_archive(&file, Some(&ks), &mut |_| {})?;
        let verify = t.elapsed().as_secs_f64();
        let dest = dir.path().join(format!("dst-{}", name.replace(' ', "_")));
        let t = Instant::now();
        archive::import(
            &file,
            Some(&ks),
            &dest,
            &config,
            &ImportOptions::new(),
            &mut |_| {},
        )?;
        let import = t.elapsed().as_secs_f64();
        let mb = s.data_bytes as f64 / 1e6;
        println!(
            "{name:<26}{:>10.1}{:>10.1}{:>10.1}",
            mb / export,
            mb / verify,
            mb / import
        );
    }
    db.close()?;
    Ok(())
}
