//! The bench report: machine description, peak RSS, the markdown table and
//! the JSON lines.

use std::path::{Path, PathBuf};

use super::workload::{Measure, Workload};
use super::{Options, Results};

/// One line of the report into the `String` it is built in (writing to a
/// `String` cannot fail; the whole report is written out, checked, at the
/// end).
macro_rules! out {
    ($o:expr) => {
        $o.push('\n')
    };
    ($o:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($arg)*);
    }};
}

/// What the report says about the machine it ran on.
pub(crate) struct Machine {
    cpu: String,
    cpus: usize,
    memory: String,
    kernel: String,
    load_before: String,
    load_after: String,
    dir: PathBuf,
    fs: String,
}

/// The file system type `dir` lives on, from `/proc/mounts` (the longest
/// mount point that is a prefix of it).
fn fs_type(dir: &Path) -> String {
    read("/proc/mounts")
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(at).then(|| (at.len(), kind.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, kind)| kind)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Machine {
    /// Reads the CPU, memory, kernel and load before the run.
    pub(crate) fn probe(dir: &Path) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let memory = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| format!("{:.1} GiB", kb as f64 / (1 << 20) as f64))
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            load_before: loadavg(),
            load_after: String::new(),
            dir: dir.to_path_buf(),
            fs: fs_type(dir),
        }
    }

    /// Records the load after the run.
    pub(crate) fn finish(mut self) -> Self {
        self.load_after = loadavg();
        self
    }
}

/// Resets the kernel's peak-RSS mark to the current RSS (Linux 4.0+:
/// writing 5 to `/proc/self/clear_refs`). Best effort.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak RSS in bytes since the last reset (`VmHWM`), if the kernel tells.
pub(crate) fn peak_rss() -> Option<u64> {
    read("/proc/self/status")
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// The median ops/s of one workload for one mode.
fn median(samples: &[Measure]) -> f64 {
    let mut v: Vec<f64> = samples.iter().map(|m| m.ops_per_sec()).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Medians of one workload, per mode.
fn medians(results: &Results, w: usize) -> Vec<f64> {
    results
        .samples
        .get(w)
        .map(|per_mode| per_mode.iter().map(|s| median(s)).collect())
        .unwrap_or_default()
}

/// Medians of one workload, per peer; `None` if the peers did not run it.
fn peer_medians(results: &Results, w: usize) -> Option<Vec<f64>> {
    let per_peer = results.peer_samples.get(w)?;
    if per_peer.is_empty() || per_peer.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(per_peer.iter().map(|s| median(s)).collect())
}

/// The sealkv modes of the peers table: plaintext and AES-256-GCM with each
/// provider, those this run has (`--only` may leave some out).
const PEER_TABLE_MODES: [&str; 3] = ["plaintext", "aes-256-gcm", "aes-256-gcm (ring)"];

fn ops(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn cell(workload: Workload, x: f64) -> String {
    if workload == Workload::SinglePut {
        format!("{:.2} ms", 1e3 / x.max(1e-9))
    } else {
        ops(x)
    }
}

/// Prints the whole report as markdown.
pub(crate) fn print_markdown(
    o: &mut String,
    machine: &Machine,
    options: &Options,
    all: &[Results],
) {
    let build = if cfg!(debug_assertions) {
        "debug build (figures not representative: use --release)"
    } else {
        "release build"
    };
    let features = if cfg!(feature = "ring") {
        "providers: RustCrypto (default), ring"
    } else {
        "providers: RustCrypto (default); build with --features ring for the ring provider"
    };
    out!(
        o,
        "Machine: {} ({} logical CPUs), {} RAM, Linux {}; load average {} before, {} after \
         (a shared machine: compare ratios, not absolute figures). Databases under {} ({}). \
         sealkv {} {build}, {features}.",
        machine.cpu,
        machine.cpus,
        machine.memory,
        machine.kernel,
        machine.load_before,
        machine.load_after,
        machine.dir.display(),
        machine.fs,
        env!("CARGO_PKG_VERSION"),
    );
    out!(o);
    let config = match options.cache_mib {
        None => format!(
            "Default configuration (SyncMode::Always, 64 MiB memtable, {} MiB page cache",
            default_cache_mib()
        ),
        Some(m) => format!(
            "Default configuration but for the page cache (SyncMode::Always, 64 MiB \
             memtable, {m} MiB page cache from --cache-mib"
        ),
    };
    out!(
        o,
        "{config}, 4 KiB pages), 16-byte keys, {} round(s) per workload and mode, interleaved \
         in one process with the mode order rotated each round; each cell is the median ops/s, \
         (ratio to plaintext) beside it.",
        options.rounds
    );
    for results in all {
        out!(o);
        out!(
            o,
            "### {} records, {}-byte values",
            results.shape.records,
            results.shape.value_len
        );
        out!(o);
        let mut header = String::from("| workload |");
        let mut rule = String::from("|---|");
        for m in &results.modes {
            header.push_str(&format!(" {} |", m.name));
            rule.push_str("---:|");
        }
        out!(o, "{header}");
        out!(o, "{rule}");
        for (w, workload) in Workload::ALL.into_iter().enumerate() {
            let med = medians(results, w);
            let base = med.first().copied().unwrap_or(0.0);
            let mut line = format!("| {} |", workload.name());
            for (i, x) in med.iter().enumerate() {
                if i == 0 {
                    line.push_str(&format!(" {} |", cell(workload, *x)));
                } else {
                    line.push_str(&format!(
                        " {} ({:.2}) |",
                        cell(workload, *x),
                        x / base.max(1e-9)
                    ));
                }
            }
            out!(o, "{line}");
        }
        if let Some(b) = results.peak_rss {
            let peers = if results.peers.is_empty() {
                ""
            } else {
                ", the peer engines' runs included"
            };
            out!(o);
            out!(
                o,
                "Peak RSS of the whole process while this table ran{peers}: {:.1} MiB \
                 (configured bounds: {} MiB page cache + 64 MiB memtable).",
                b as f64 / (1 << 20) as f64,
                options.cache_mib.unwrap_or_else(default_cache_mib)
            );
        }
        print_peers_markdown(
            o,
            results,
            options.cache_mib.unwrap_or_else(default_cache_mib),
        );
    }
    out!(o);
    out!(o, "Workloads (N = the records of the table):");
    out!(o);
    for w in Workload::ALL {
        out!(o, "- `{}`: {}.", w.name(), w.describe());
    }
    out!(
        o,
        "- peak RSS: the process's VmHWM, reset when the table starts; one figure for all \
         modes, since the allocator keeps freed memory and a mode's run starts at the high \
         mark of the one before."
    );
}

/// The engine's default page cache, in MiB.
fn default_cache_mib() -> u64 {
    sealkv::DEFAULT_CACHE_SIZE >> 20
}

/// Prints the table against the peer engines, if they ran: each engine's
/// median ops/s and encrypted sealkv's ratio to the best peer.
fn print_peers_markdown(o: &mut String, results: &Results, cache_mib: u64) {
    if results.peers.is_empty() {
        return;
    }
    let cols: Vec<(usize, &str)> = PEER_TABLE_MODES
        .iter()
        .filter_map(|name| {
            let i = results.modes.iter().position(|m| m.name == *name)?;
            Some((i, *name))
        })
        .collect();
    let encrypted: Vec<(usize, &str)> = cols
        .iter()
        .copied()
        .filter(|(i, _)| results.modes.get(*i).is_some_and(|m| m.algorithm.is_some()))
        .collect();
    out!(o);
    out!(
        o,
        "#### Against redb and SQLite ({} records, {}-byte values)",
        results.shape.records,
        results.shape.value_len
    );
    out!(o);
    let mut header = String::from("| workload |");
    let mut rule = String::from("|---|");
    for (_, name) in &cols {
        header.push_str(&format!(" sealkv {name} |"));
        rule.push_str("---:|");
    }
    for p in &results.peers {
        header.push_str(&format!(" {p} |"));
        rule.push_str("---:|");
    }
    for (_, name) in &encrypted {
        header.push_str(&format!(" {name} ÷ best peer |"));
        rule.push_str("---:|");
    }
    out!(o, "{header}");
    out!(o, "{rule}");
    for (w, workload) in Workload::ALL.into_iter().enumerate() {
        let Some(peers) = peer_medians(results, w) else {
            continue;
        };
        let med = medians(results, w);
        let at = |i: usize| med.get(i).copied().unwrap_or(0.0);
        let best = peers.iter().copied().fold(0.0, f64::max);
        let mut line = format!("| {} |", workload.name());
        for (i, _) in &cols {
            line.push_str(&format!(" {} |", cell(workload, at(*i))));
        }
        for x in &peers {
            line.push_str(&format!(" {} |", cell(workload, *x)));
        }
        for (i, _) in &encrypted {
            line.push_str(&format!(" {:.2} |", at(*i) / best.max(1e-9)));
        }
        out!(o, "{line}");
    }
    out!(o);
    out!(
        o,
        "Same records, orders and checks as sealkv's workloads; the peers in the same rounds, \
         interleaved with sealkv's modes. Durable batches: redb one write transaction per \
         1,000 records with Durability::Immediate; SQLite (bundled) WAL journal, \
         synchronous=FULL, one transaction per 1,000 records into a WITHOUT ROWID table with a \
         BLOB primary key. Caches: sealkv {} MiB, redb 1 GiB (its default), SQLite 2,000 KiB \
         (its default). A ratio above 1 means encrypted sealkv is ahead of the best plaintext peer (for \
         single-put-durable, in puts per second: 1 / median latency).",
        cache_mib
    );
}

/// Prints one JSON object per workload: the contract's fields
/// (`workload`, `plaintext_ops_per_sec`, `encrypted_ops_per_sec` for the
/// first encrypted mode — AES-256-GCM with the default provider unless
/// `--only` names another — and `ratio`) and every mode's figure.
pub(crate) fn print_json(o: &mut String, results: &Results) {
    for (w, workload) in Workload::ALL.into_iter().enumerate() {
        let med = medians(results, w);
        let plain = med.first().copied().unwrap_or(0.0);
        let enc = med.get(1).copied().unwrap_or(0.0);
        let modes: serde_json::Map<String, serde_json::Value> = results
            .modes
            .iter()
            .zip(&med)
            .map(|(m, x)| (m.name.to_string(), serde_json::json!(x)))
            .collect();
        let mut obj = serde_json::json!({
            "workload": workload.name(),
            "records": results.shape.records,
            "value_len": results.shape.value_len,
            "plaintext_ops_per_sec": plain,
            "encrypted_ops_per_sec": enc,
            "ratio": enc / plain.max(1e-9),
            "modes_ops_per_sec": modes,
        });
        // With --peers, on the workloads they ran: each peer's figure and
        // the encrypted figure above over the best of them.
        if let (Some(peers), Some(fields)) = (peer_medians(results, w), obj.as_object_mut()) {
            let best = peers.iter().copied().fold(0.0, f64::max);
            let by_name: serde_json::Map<String, serde_json::Value> = results
                .peers
                .iter()
                .zip(&peers)
                .map(|(p, x)| (p.to_string(), serde_json::json!(x)))
                .collect();
            fields.insert("peers_ops_per_sec".into(), by_name.into());
            fields.insert(
                "encrypted_over_best_peer".into(),
                serde_json::json!(enc / best.max(1e-9)),
            );
        }
        out!(o, "{obj}");
    }
}
