//! Space on disk after a fill: writes `N` records (16-byte keys, 100-byte
//! values) in durable batches of 1,000 with the default configuration, in
//! random or sequential key order, then overwrites a quarter of them and
//! writes 1,000 more, then deletes nine in ten; after each phase it flushes
//! and prints the page file's size, live and free pages and the average
//! leaf fill (`Db::stats`) and the bytes the database directory allocates
//! on disk (as `sealkv bench --peers` counts them), then compacts (`Db::compact`) and prints them
//! again, with the file's size over the bytes of the records left.
//!
//! With `reads`, after the deletes it also times cold reads before and
//! after the compaction: it closes and reopens the database (the page
//! cache empty, the OS cache warm), gets every record left in random order
//! and scans them all, every value checked.
//!
//! ```text
//! cargo run --release -p sealkv --example space -- 1000000 random aes
//! cargo run --release -p sealkv --example space -- 1000000 sequential plain
//! cargo run --release -p sealkv --example space -- 1000000 random aes reads
//! ```

#![allow(clippy::print_stdout)]

use std::time::Instant;

use sealkv::crypto::MasterKey;
use sealkv::{Config, Db, WriteBatch};
use sealkv_fileio::SplitMix64;

/// Key `i` of the load, in the order asked for.
fn key(i: u64, random: bool) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(b"user-key");
    let n = if random { SplitMix64::mix(i) } else { i };
    key[8..].copy_from_slice(&n.to_be_bytes());
    key
}

/// Writes `f(i)` for every `i` of `range` in batches of 1,000.
fn batches(
    db: &Db,
    range: std::ops::Range<u64>,
    mut f: impl FnMut(&mut WriteBatch, u64),
) -> Result<(), sealkv::Error> {
    let mut batch = WriteBatch::new();
    for i in range {
        f(&mut batch, i);
        if batch.len() >= 1000 {
            db.write(&batch)?;
            batch = WriteBatch::new();
        }
    }
    db.write(&batch)
}

/// Bytes allocated on disk (`st_blocks` x 512) by the files of `dir`:
/// the page file, the log and the rest, as a peer's directory is counted.
fn allocated(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.blocks() * 512;
    }
    Ok(total)
}

fn report(db: &Db, phase: &str, start: Instant) -> Result<(), Box<dyn std::error::Error>> {
    db.flush()?;
    let s = db.stats()?;
    println!(
        "{phase:<28} {:>7.1} s  dir {:>7.1} MB  file {:>7.1} MB  pages {:>8}  live {:>8}  free {:>8}  leaves {:>8}  leaf fill {:.3}",
        start.elapsed().as_secs_f64(),
        allocated(db.path())? as f64 / 1e6,
        s.file_bytes as f64 / 1e6,
        s.pages,
        s.live_pages,
        s.free_pages,
        s.leaf_pages,
        s.leaf_fill(),
    );
    Ok(())
}

/// Compacts and reports, with the file's size over the `records` left
/// (16-byte keys, 100-byte values).
fn compact(
    db: &Db,
    phase: &str,
    start: Instant,
    records: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let r = db.compact()?;
    report(db, phase, start)?;
    println!(
        "{:<28} moved {} pages; file / record bytes {:.2}",
        "",
        r.pages_moved,
        r.bytes_after as f64 / (records * 116) as f64
    );
    Ok(())
}

/// Closes `db`, reopens it with `config` (the page cache empty), and
/// times gets of the records left (`i % 10 == 0`, in random order) and a
/// full scan, every value checked.
fn cold_reads(
    db: Db,
    config: &Config,
    phase: &str,
    n: u64,
    random: bool,
) -> Result<Db, Box<dyn std::error::Error>> {
    db.close()?;
    let db = Db::open_with_config(config.clone())?;
    let mut left: Vec<u64> = (0..n).filter(|i| i % 10 == 0).collect();
    let mut rng = SplitMix64::new(7);
    for i in (1..left.len()).rev() {
        left.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let start = Instant::now();
    for &i in &left {
        let v = db.get(key(i, random))?.ok_or("a record left is missing")?;
        if v.len() != 100 {
            return Err("a value of the wrong length".into());
        }
    }
    let gets = left.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut seen = 0u64;
    for item in db.iter()? {
        let (_, v) = item?;
        if v.len() != 100 {
            return Err("a value of the wrong length".into());
        }
        seen += 1;
    }
    if seen != left.len() as u64 {
        return Err(format!("the scan saw {seen} records, not {}", left.len()).into());
    }
    let scan = seen as f64 / start.elapsed().as_secs_f64();
    let s = db.stats()?;
    println!(
        "{phase:<28} cold gets {:>9.0}/s  cold scan {:>10.0}/s  ({} records, {} leaves, file {:.1} MB)",
        gets,
        scan,
        seen,
        s.leaf_pages,
        s.file_bytes as f64 / 1e6
    );
    Ok(db)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let random = match args.next().as_deref() {
        None | Some("random") => true,
        Some("sequential") => false,
        Some(other) => return Err(format!("order {other:?}: random or sequential").into()),
    };
    let mode = args.next().unwrap_or_else(|| "aes".into());
    let reads = match args.next().as_deref() {
        None => false,
        Some("reads") => true,
        Some(other) => return Err(format!("{other:?}: expected reads or nothing").into()),
    };
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path().join("db"));
    match mode.as_str() {
        "plain" => {}
        "aes" => config = config.encryption_key(MasterKey::from_hex(&"42".repeat(32))?),
        other => return Err(format!("mode {other:?}: expected plain or aes").into()),
    }
    let db = Db::open_with_config(config.clone())?;
    let start = Instant::now();
    let value = [0x5Au8; 100];
    batches(&db, 0..n, |b, i| {
        b.put(key(i, random), value);
    })?;
    report(&db, "load", start)?;
    compact(&db, "load, compact", start, n)?;
    let other = [0xA5u8; 100];
    batches(&db, 0..n / 4, |b, i| {
        b.put(key(i * 4, random), other);
    })?;
    batches(&db, n..n + 1000, |b, i| {
        b.put(key(i, random), value);
    })?;
    report(&db, "overwrite 1/4, 1,000 more", start)?;
    compact(&db, "overwrite, compact", start, n + 1000)?;
    batches(&db, 0..n + 1000, |b, i| {
        if i % 10 != 0 {
            b.delete(key(i, random));
        }
    })?;
    report(&db, "delete 9 in 10", start)?;
    let db = if reads {
        cold_reads(db, &config, "delete 9 in 10", n + 1000, random)?
    } else {
        db
    };
    compact(&db, "delete, compact", start, (n + 1000).div_ceil(10))?;
    let db = if reads {
        cold_reads(db, &config, "delete, compact", n + 1000, random)?
    } else {
        db
    };
    db.close()?;
    Ok(())
}
