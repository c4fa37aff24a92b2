//! Backup throughput, sealed vs plaintext: fills a database with about
//! `MB` megabytes (default 256) of 100-byte values, flushes, then times
//! `Db::backup_to`.
//!
//! ```text
//! cargo run --release -p sealkv --example backup_throughput -- 256
//! ```

#![allow(clippy::print_stdout)]

use std::time::Instant;

use sealkv::crypto::{EncryptionAlgorithm, MasterKey};
use sealkv::{Config, Db, SyncMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mb: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(256);
    let modes = [
        ("plaintext", None),
        ("aes-256-gcm", Some(EncryptionAlgorithm::Aes256Gcm)),
        (
            "chacha20-poly1305",
            Some(EncryptionAlgorithm::ChaCha20Poly1305),
        ),
    ];
    for (name, alg) in modes {
        let dir = tempfile::tempdir()?;
        let mut config = Config::new(dir.path().join("live")).sync_mode(SyncMode::Never);
        if let Some(alg) = alg {
            config = config
                .encryption_key(MasterKey::from_hex(&"42".repeat(32))?)
                .encryption_algorithm(alg);
        }
        let db = Db::open_with_config(config)?;
        let value = vec![0x5Au8; 100];
        let records = mb * (1 << 20) / 116;
        let mut batch = sealkv::WriteBatch::new();
        for i in 0..records {
            batch.put(format!("key{i:012}"), &value);
            if batch.len() >= 1000 {
                db.write(&batch)?;
                batch = sealkv::WriteBatch::new();
            }
        }
        db.write(&batch)?;
        db.flush()?;
        let start = Instant::now();
        let report = db.backup_to(&dir.path().join("backup"), &mut |_| {})?;
        let secs = start.elapsed().as_secs_f64();
        let size = report.bytes as f64 / (1 << 20) as f64;
        println!(
            "{name:>18}: backup of {size:.0} MiB ({} pages, {} records) in {secs:.2} s = {:.0} MB/s",
            report.pages,
            records,
            size / secs
        );
        db.close()?;
    }
    Ok(())
}
