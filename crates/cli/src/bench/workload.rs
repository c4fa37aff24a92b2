//! The engine workloads `sealkv bench` times, one database per mode.
//!
//! Keys are 16 bytes (`"user-key"` and a big-endian index); values are
//! derived from the index and a round number so every read is checked
//! against what was written. Random orders come from a bijection on the
//! index space (no shuffled table in memory, so peak RSS is the engine's).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealkv::crypto::{CryptoProvider, EncryptionAlgorithm, MasterKey};
use sealkv::{Config, Db, WriteBatch};

use crate::exit::CliError;

/// Records per durable batch in the fill and overwrite workloads.
pub(crate) const BATCH: u64 = 1_000;
/// Durable single puts timed for the commit-latency median.
pub(crate) const SINGLE_PUTS: usize = 60;

/// One way of storing the data: plaintext, or an algorithm from a provider.
#[derive(Clone)]
pub(crate) struct Mode {
    /// Column name in the report.
    pub(crate) name: &'static str,
    pub(crate) algorithm: Option<EncryptionAlgorithm>,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl Mode {
    /// Plaintext, then AES-256-GCM and ChaCha20-Poly1305 with the default
    /// provider, then (feature `ring`) both with the `ring` provider.
    pub(crate) fn all() -> Vec<Mode> {
        let rc = Arc::new(CryptoProvider::rustcrypto());
        #[allow(unused_mut)]
        let mut modes = vec![
            Mode {
                name: "plaintext",
                algorithm: None,
                provider: rc.clone(),
            },
            Mode {
                name: "aes-256-gcm",
                algorithm: Some(EncryptionAlgorithm::Aes256Gcm),
                provider: rc.clone(),
            },
            Mode {
                name: "chacha20-poly1305",
                algorithm: Some(EncryptionAlgorithm::ChaCha20Poly1305),
                provider: rc,
            },
        ];
        #[cfg(feature = "ring")]
        {
            let ring = Arc::new(CryptoProvider::ring());
            modes.push(Mode {
                name: "aes-256-gcm (ring)",
                algorithm: Some(EncryptionAlgorithm::Aes256Gcm),
                provider: ring.clone(),
            });
            modes.push(Mode {
                name: "chacha20-poly1305 (ring)",
                algorithm: Some(EncryptionAlgorithm::ChaCha20Poly1305),
                provider: ring,
            });
        }
        modes
    }
}

/// The records of one run: how many, how large their values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) records: u64,
    pub(crate) value_len: usize,
}

/// One mode's database directory and options.
pub(crate) struct Target {
    pub(crate) mode: Mode,
    pub(crate) dir: PathBuf,
    pub(crate) shape: Shape,
    /// The page cache in MiB; `None`: the configuration's default.
    pub(crate) cache_mib: Option<u64>,
}

/// What one workload measured: operations and elapsed time, or a median
/// latency.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Measure {
    /// `ops` operations in `elapsed`.
    Throughput { ops: u64, elapsed: Duration },
    /// The median of single-operation latencies.
    Latency(Duration),
}

impl Measure {
    /// Operations per second (for a latency, its inverse).
    pub(crate) fn ops_per_sec(self) -> f64 {
        match self {
            Measure::Throughput { ops, elapsed } => ops as f64 / elapsed.as_secs_f64().max(1e-9),
            Measure::Latency(d) => 1.0 / d.as_secs_f64().max(1e-9),
        }
    }
}

/// The workloads, in the order they run (each needs the ones before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    FillSeq,
    FillRandom,
    ReadRandomCold,
    ReadRandomWarm,
    Scan,
    Overwrite,
    Mix,
    SinglePut,
}

impl Workload {
    pub(crate) const ALL: [Workload; 8] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::ReadRandomCold,
        Workload::ReadRandomWarm,
        Workload::Scan,
        Workload::Overwrite,
        Workload::Mix,
        Workload::SinglePut,
    ];

    /// The name in the report and in `--json`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::ReadRandomCold => "readrandom-after-reopen",
            Workload::ReadRandomWarm => "readrandom-warm",
            Workload::Scan => "scan",
            Workload::Overwrite => "overwrite",
            Workload::Mix => "mix-90-10",
            Workload::SinglePut => "single-put-durable",
        }
    }

    /// What is timed, for the report's legend.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Workload::FillSeq => {
                "N puts in key order, durable batches of 1,000, then flush and close (timed to the data durable in the tree)"
            }
            Workload::FillRandom => "as fillseq, keys in random order, into a fresh database",
            Workload::ReadRandomCold => {
                "after a reopen of the fillrandom database: N gets in random order, every value checked (page cache cold, OS cache warm)"
            }
            Workload::ReadRandomWarm => "the same N gets again, page cache warm",
            Workload::Scan => "one full forward scan, every value checked",
            Workload::Overwrite => {
                "N puts over existing keys in random order, durable batches of 1,000, then flush"
            }
            Workload::Mix => {
                "N operations: 90% random gets, 10% puts committed durably 100 at a time"
            }
            Workload::SinglePut => {
                "median latency of one durable put (SyncMode::Always: fsync per commit); ops/s = 1/median"
            }
        }
    }
}

/// The 16-byte key of record `i`.
pub(crate) fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"user-key");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Fills `buf` with the value of record `i` in `round`.
pub(crate) fn value_into(i: u64, round: u64, buf: &mut [u8]) {
    let mut x = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(round.wrapping_mul(0xD1B5_4A32_D192_ED03))
        | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x.to_le_bytes()
    };
    // Whole words as plain stores (a per-chunk `copy_from_slice` of a
    // variable length was a memcpy call per 8 bytes: 3% of a 4 KiB profile).
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&next());
    }
    let rest = chunks.into_remainder();
    let n = rest.len();
    rest.copy_from_slice(&next()[..n]);
}

/// A bijection on `0..n`, for visiting every record once in a scattered
/// order: an invertible mix on the next power of two, walked until it lands
/// inside the range.
pub(crate) struct Scatter {
    n: u64,
    bits: u32,
    mask: u64,
    salt: u64,
}

impl Scatter {
    pub(crate) fn new(n: u64, salt: u64) -> Self {
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        Scatter {
            n,
            bits,
            mask,
            salt: salt & mask,
        }
    }

    fn mix(&self, mut x: u64) -> u64 {
        x = (x ^ self.salt) & self.mask;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & self.mask;
        x ^= x >> (self.bits / 2 + 1);
        x = x.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) & self.mask;
        x ^= x >> (self.bits / 2 + 1);
        x
    }

    /// The `i`-th index of the order (`i < n`).
    pub(crate) fn at(&self, i: u64) -> u64 {
        let mut x = self.mix(i);
        while x >= self.n {
            x = self.mix(x);
        }
        x
    }
}

impl Target {
    fn config(&self, create: bool) -> Result<Config, CliError> {
        let mut c = Config::new(&self.dir)
            .create_if_missing(create)
            .crypto_provider(self.mode.provider.clone());
        if let Some(mib) = self.cache_mib {
            c = c.cache_size(mib << 20);
        }
        if let Some(alg) = self.mode.algorithm {
            // A fixed benchmark key: the data is throwaway.
            let key =
                MasterKey::from_bytes(&[0x42; 32]).map_err(|e| CliError::Key(e.to_string()))?;
            c = c.encryption_key(key).encryption_algorithm(alg);
        }
        Ok(c)
    }

    fn open(&self, create: bool) -> Result<Db, CliError> {
        Ok(Db::open_with_config(self.config(create)?)?)
    }

    /// A fresh, empty database directory for this mode.
    fn fresh(&self) -> Result<(), CliError> {
        remove_dir(&self.dir)?;
        Ok(())
    }

    /// Runs `workload`, assuming the ones before it in [`Workload::ALL`]
    /// ran on this target.
    pub(crate) fn run(&self, workload: Workload) -> Result<Measure, CliError> {
        let n = self.shape.records;
        match workload {
            Workload::FillSeq | Workload::FillRandom => {
                self.fresh()?;
                let db = self.open(true)?;
                let order = Scatter::new(n, 7);
                let random = workload == Workload::FillRandom;
                let start = Instant::now();
                self.put_batches(&db, 0, |i| if random { order.at(i) } else { i })?;
                db.flush()?;
                db.close()?;
                Ok(Measure::Throughput {
                    ops: n,
                    elapsed: start.elapsed(),
                })
            }
            Workload::ReadRandomCold | Workload::ReadRandomWarm => {
                // Cold: a fresh open (empty page cache). Warm: the same
                // database, read twice, the second pass timed.
                let db = self.open(false)?;
                let order = Scatter::new(n, 11);
                if workload == Workload::ReadRandomWarm {
                    self.read_all(&db, &order, 0)?;
                }
                let start = Instant::now();
                self.read_all(&db, &order, 0)?;
                let elapsed = start.elapsed();
                db.close()?;
                Ok(Measure::Throughput { ops: n, elapsed })
            }
            Workload::Scan => {
                let db = self.open(false)?;
                // Warm the cache with one scan, time the second.
                self.scan(&db)?;
                let start = Instant::now();
                let seen = self.scan(&db)?;
                let elapsed = start.elapsed();
                db.close()?;
                Ok(Measure::Throughput { ops: seen, elapsed })
            }
            Workload::Overwrite => {
                let db = self.open(false)?;
                let order = Scatter::new(n, 13);
                let start = Instant::now();
                self.put_batches(&db, 1, |i| order.at(i))?;
                db.flush()?;
                let elapsed = start.elapsed();
                db.close()?;
                Ok(Measure::Throughput { ops: n, elapsed })
            }
            Workload::Mix => {
                let db = self.open(false)?;
                let start = Instant::now();
                self.mix(&db)?;
                let elapsed = start.elapsed();
                db.close()?;
                Ok(Measure::Throughput { ops: n, elapsed })
            }
            Workload::SinglePut => {
                let db = self.open(false)?;
                let mut value = vec![0u8; self.shape.value_len];
                let mut times = Vec::with_capacity(SINGLE_PUTS);
                for i in 0..SINGLE_PUTS as u64 {
                    value_into(i, 3, &mut value);
                    let start = Instant::now();
                    db.put(key(n + i), &value)?;
                    times.push(start.elapsed());
                }
                db.close()?;
                times.sort();
                Ok(Measure::Latency(
                    times.get(times.len() / 2).copied().unwrap_or_default(),
                ))
            }
        }
    }

    /// Puts every record (index from `index(i)`) in round `round`, in
    /// durable batches of [`BATCH`].
    fn put_batches(&self, db: &Db, round: u64, index: impl Fn(u64) -> u64) -> Result<(), CliError> {
        let mut value = vec![0u8; self.shape.value_len];
        let mut batch = WriteBatch::new();
        for i in 0..self.shape.records {
            let k = index(i);
            value_into(k, round, &mut value);
            batch.put(key(k), &value);
            if batch.len() as u64 == BATCH {
                db.write(&batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            db.write(&batch)?;
        }
        Ok(())
    }

    /// Gets every record in `order` and checks its value against `round`.
    fn read_all(&self, db: &Db, order: &Scatter, round: u64) -> Result<(), CliError> {
        let mut expected = vec![0u8; self.shape.value_len];
        for i in 0..self.shape.records {
            let k = order.at(i);
            value_into(k, round, &mut expected);
            let got = db.get(key(k))?;
            if got.as_deref() != Some(&expected[..]) {
                return Err(mismatch(k));
            }
        }
        Ok(())
    }

    /// Scans everything, checking each value against fillrandom's (the scan
    /// runs before overwrite); returns the count.
    fn scan(&self, db: &Db) -> Result<u64, CliError> {
        let mut seen = 0u64;
        let mut expected = vec![0u8; self.shape.value_len];
        for item in db.range::<&[u8]>(..)? {
            let (k, v) = item?;
            let i = k
                .get(8..16)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| mismatch(seen))?;
            value_into(i, 0, &mut expected);
            if v != expected {
                return Err(mismatch(i));
            }
            seen += 1;
        }
        if seen != self.shape.records {
            return Err(CliError::CheckFailed(format!(
                "bench: scan saw {seen} records, {} were written",
                self.shape.records
            )));
        }
        Ok(seen)
    }

    /// 90% gets, 10% puts (round 2), the puts committed 100 at a time.
    fn mix(&self, db: &Db) -> Result<(), CliError> {
        let n = self.shape.records;
        let order = Scatter::new(n, 17);
        let mut value = vec![0u8; self.shape.value_len];
        let mut batch = WriteBatch::new();
        for i in 0..n {
            let k = order.at(i);
            if i % 10 == 9 {
                value_into(k, 2, &mut value);
                batch.put(key(k), &value);
                if batch.len() == 100 {
                    db.write(&batch)?;
                    batch.clear();
                }
            } else if db.get(key(k))?.is_none() {
                return Err(mismatch(k));
            }
        }
        if !batch.is_empty() {
            db.write(&batch)?;
        }
        Ok(())
    }
}

/// The error of a record that did not read back as written.
pub(crate) fn mismatch(i: u64) -> CliError {
    CliError::CheckFailed(format!("bench: record {i} did not read back as written"))
}

/// Removes a benchmark directory if it exists.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), CliError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CliError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_visits_every_index_once() {
        for n in [1u64, 2, 3, 7, 1000, 4097] {
            let s = Scatter::new(n, 5);
            let mut seen: Vec<u64> = (0..n).map(|i| s.at(i)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
        // And it does scatter.
        let s = Scatter::new(1000, 5);
        assert_ne!(
            (0..10).map(|i| s.at(i)).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn values_differ_by_index_and_round() {
        let mut a = [0u8; 100];
        let mut b = [0u8; 100];
        value_into(1, 0, &mut a);
        value_into(2, 0, &mut b);
        assert_ne!(a, b);
        value_into(1, 1, &mut b);
        assert_ne!(a, b);
    }
}
