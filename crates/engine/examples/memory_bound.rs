//! Peak memory of a random fill: writes `N` records (16-byte keys in a
//! random order, 100-byte values) in durable batches of 1,000 with the
//! default configuration, plaintext then AES-256-GCM, each in its own
//! process run, and prints the process's peak RSS (`VmHWM` from
//! `/proc/self/status`, Linux only) as it goes and at the end.
//!
//! ```text
//! cargo run --release -p sealkv --example memory_bound -- 1000000 aes
//! cargo run --release -p sealkv --example memory_bound -- 1000000 plain
//! ```
//!
//! A third argument sets `flush_commit_size` in MiB (default: the
//! configuration's default), to compare its cost.
//!
//! One mode per run: the allocator keeps freed memory, so a second mode in
//! the same process would start at the first one's high mark.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use sealkv::crypto::MasterKey;
use sealkv::{Config, Db, WriteBatch};
use sealkv_fileio::SplitMix64;

/// A `/proc/self/status` field in MiB (0 where there is none).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let mode = args.next().unwrap_or_else(|| "aes".into());
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path().join("db"));
    if let Some(mib) = args.next() {
        config = config.flush_commit_size(mib.parse::<u64>()? << 20);
    }
    match mode.as_str() {
        "plain" => {}
        "aes" => config = config.encryption_key(MasterKey::from_hex(&"42".repeat(32))?),
        other => return Err(format!("mode {other:?}: expected plain or aes").into()),
    }
    let db = Db::open_with_config(config)?;
    let start = Instant::now();
    let value = [0x5Au8; 100];
    let mut batch = WriteBatch::new();
    let every = (n / 10).max(1);
    for i in 0..n {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(b"user-key");
        key[8..].copy_from_slice(&SplitMix64::mix(i).to_be_bytes());
        batch.put(key, value);
        if batch.len() >= 1000 {
            db.write(&batch)?;
            batch = WriteBatch::new();
        }
        if (i + 1) % every == 0 {
            println!(
                "{mode} {:>9} records  {:6.1} s  VmRSS {:7.1} MiB  VmHWM {:7.1} MiB",
                i + 1,
                start.elapsed().as_secs_f64(),
                status_mib("VmRSS:"),
                status_mib("VmHWM:"),
            );
        }
    }
    db.write(&batch)?;
    db.close()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{mode} done: {n} records in {secs:.1} s ({:.0} ops/s, close included)  peak RSS (VmHWM) {:.1} MiB",
        n as f64 / secs,
        status_mib("VmHWM:"),
    );
    Ok(())
}
