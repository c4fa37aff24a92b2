//! The bench report: machine description, peak RSS, the markdown tables
//! (sealkv's modes, the peers, disk space) and the JSON lines.

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
        .map(|per_engine| {
            per_engine
                .iter()
                .take(results.modes.len())
                .map(|s| median(s))
                .collect()
        })
        .unwrap_or_default()
}

/// Medians of one workload, per peer (`None` for a peer that does not run
/// it); `None` if no peer ran it.
fn peer_medians(results: &Results, w: usize) -> Option<Vec<Option<f64>>> {
    let per_peer = results.samples.get(w)?.get(results.modes.len()..)?;
    if per_peer.iter().all(|s| s.is_empty()) {
        return None;
    }
    Some(
        per_peer
            .iter()
            .map(|s| (!s.is_empty()).then(|| median(s)))
            .collect(),
    )
}

/// The best peer of a row: its name and figure.
fn best_peer(results: &Results, peers: &[Option<f64>]) -> Option<(&'static str, f64)> {
    results
        .peers
        .iter()
        .zip(peers)
        .filter_map(|(name, x)| Some((*name, (*x)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The median of one engine's disk-space samples of `slot`.
fn space_median(results: &Results, engine: usize, slot: usize) -> Option<u64> {
    let mut v = results.space.get(engine)?.get(slot)?.clone();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Every engine's column name: sealkv's modes, then the peers.
fn engine_names(results: &Results) -> Vec<String> {
    results
        .modes
        .iter()
        .map(|m| format!("sealkv {}", m.name))
        .chain(results.peers.iter().map(|p| p.to_string()))
        .collect()
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
    if workload.is_latency() {
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
        for (w, workload) in results.suite.workloads() {
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
        print_given_up(o, results);
        print_peers_markdown(
            o,
            results,
            options.cache_mib.unwrap_or_else(default_cache_mib),
        );
        // Disk space is sampled after the key-value load and overwrite.
        if results.suite.includes(Workload::FillRandom) {
            print_space_markdown(o, results);
        }
    }
    out!(o);
    out!(
        o,
        "Workloads (N = the records of the table), in the order they run; each opens the \
         database the ones before it left and closes it (the engine's own cache starts cold, \
         the OS page cache stays warm):"
    );
    out!(o);
    for w in Workload::ALL
        .into_iter()
        .filter(|w| options.suite.includes(*w))
    {
        let own = if w.is_people() {
            " (sealkv and SQLite)"
        } else if w.peers_run() {
            ""
        } else {
            " (sealkv only)"
        };
        out!(o, "- `{}`{own}: {}.", w.name(), w.describe());
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
/// median, the best peer and encrypted sealkv's ratio to it.
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
        "#### Against {} ({} records, {}-byte values)",
        join_names(&results.peers),
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
    header.push_str(" best peer |");
    rule.push_str("---|");
    for (_, name) in &encrypted {
        header.push_str(&format!(" {name} ÷ best peer |"));
        rule.push_str("---:|");
    }
    out!(o, "{header}");
    out!(o, "{rule}");
    for (w, workload) in results.suite.workloads() {
        let Some(peers) = peer_medians(results, w) else {
            continue;
        };
        let med = medians(results, w);
        let at = |i: usize| med.get(i).copied().unwrap_or(0.0);
        let (best_name, best) = best_peer(results, &peers).unwrap_or(("-", 0.0));
        let mut line = format!("| {} |", workload.name());
        for (i, _) in &cols {
            line.push_str(&format!(" {} |", cell(workload, at(*i))));
        }
        for x in &peers {
            match x {
                Some(x) => line.push_str(&format!(" {} |", cell(workload, *x))),
                None => line.push_str(" - |"),
            }
        }
        line.push_str(&format!(" {best_name} |"));
        for (i, _) in &encrypted {
            line.push_str(&format!(" {:.2} |", at(*i) / best.max(1e-9)));
        }
        out!(o, "{line}");
    }
    out!(o);
    out!(
        o,
        "The same workload code, records, operations and checks for every engine; the peers run \
         in the same rounds, interleaved with sealkv's modes, each at its defaults. Durable \
         commits: redb write transactions with Durability::Immediate; SQLite (bundled) in WAL \
         mode with synchronous=FULL, WITHOUT ROWID tables with a BLOB primary key, \
         transactions BEGIN IMMEDIATE on a connection per thread; LMDB (through heed, bundled) \
         with its default flags (an fsync at each commit), one named database per table; \
         fjall batches and write transactions with PersistMode::SyncAll, the transactions on \
         its single-writer transactional database. Caches: sealkv {cache_mib} MiB, redb 1 GiB, \
         SQLite 2,000 KiB, LMDB none of its own (the OS page cache), fjall 32 MiB (each its \
         default). A ratio above 1 means encrypted sealkv is ahead of the best peer (for \
         syncwrite, in puts per second: 1 / median latency)."
    );
}

/// The transactions an engine gave up on and the bench ran again, per
/// workload and engine, if there were any.
fn given_up(results: &Results) -> Vec<(Workload, Vec<(String, u64)>)> {
    let names = engine_names(results);
    Workload::ALL
        .into_iter()
        .zip(&results.given_up)
        .filter_map(|(w, per_engine)| {
            let counts: Vec<(String, u64)> = names
                .iter()
                .zip(per_engine)
                .filter(|(_, n)| **n > 0)
                .map(|(name, n)| (name.clone(), *n))
                .collect();
            (!counts.is_empty()).then_some((w, counts))
        })
        .collect()
}

fn print_given_up(o: &mut String, results: &Results) {
    let rows = given_up(results);
    if rows.is_empty() {
        return;
    }
    let listed: Vec<String> = rows
        .iter()
        .map(|(w, counts)| {
            let per: Vec<String> = counts.iter().map(|(n, c)| format!("{n} {c}")).collect();
            format!("{}: {}", w.name(), per.join(", "))
        })
        .collect();
    out!(o);
    out!(
        o,
        "Transactions the engine gave up on (a conflict after its own retries) that the bench \
         ran again, all rounds together (the time is in the figures): {}.",
        listed.join("; ")
    );
}

/// "a", "a and b", "a, b and c".
fn join_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Megabytes (10^6 bytes), as `du --si` and the issues count them.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Prints the disk space each engine's database took.
fn print_space_markdown(o: &mut String, results: &Results) {
    out!(o);
    out!(
        o,
        "#### Disk space ({} records, {}-byte values)",
        results.shape.records,
        results.shape.value_len
    );
    out!(o);
    out!(o, "| engine | after the load | after the overwrite |");
    out!(o, "|---|---:|---:|");
    for (e, name) in engine_names(results).iter().enumerate() {
        let load = space_median(results, e, 0);
        let over = space_median(results, e, 1);
        let show = |b: Option<u64>| b.map_or_else(|| "-".into(), megabytes);
        out!(o, "| {name} | {} | {} |", show(load), show(over));
    }
    out!(o);
    out!(
        o,
        "Bytes allocated on disk (st_blocks × 512 over the database directory, in MB of 10^6 \
         bytes; median of the rounds), measured with the database closed: after fillrandom \
         (N records), and after overwrite (a quarter of them rewritten)."
    );
}

/// Prints one JSON object per workload: the contract's fields
/// (`workload`, `plaintext_ops_per_sec`, `encrypted_ops_per_sec` for the
/// first encrypted mode — AES-256-GCM with the default provider unless
/// `--only` names another — and `ratio`), every mode's figure, and with
/// `--peers` every peer's, the best peer and the encrypted figure over it.
/// Latency rows add the medians in milliseconds; the rows after which disk
/// space is measured add each engine's allocated bytes.
pub(crate) fn print_json(o: &mut String, results: &Results) {
    use serde_json::{Map, Value, json};
    let named = |names: &mut dyn Iterator<Item = &str>, xs: &[f64]| -> Map<String, Value> {
        names
            .zip(xs)
            .map(|(n, x)| (n.to_string(), json!(x)))
            .collect()
    };
    for (w, workload) in results.suite.workloads() {
        let med = medians(results, w);
        let plain = med.first().copied().unwrap_or(0.0);
        let enc = med.get(1).copied().unwrap_or(0.0);
        let mut obj = Map::new();
        obj.insert("workload".into(), json!(workload.name()));
        obj.insert("records".into(), json!(results.shape.records));
        obj.insert("value_len".into(), json!(results.shape.value_len));
        obj.insert("plaintext_ops_per_sec".into(), json!(plain));
        obj.insert("encrypted_ops_per_sec".into(), json!(enc));
        obj.insert("ratio".into(), json!(enc / plain.max(1e-9)));
        obj.insert(
            "modes_ops_per_sec".into(),
            named(&mut results.modes.iter().map(|m| m.name), &med).into(),
        );
        let latency_ms =
            |xs: &[f64]| -> Vec<f64> { xs.iter().map(|x| 1e3 / x.max(1e-9)).collect() };
        if workload.is_latency() {
            obj.insert(
                "modes_median_latency_ms".into(),
                named(&mut results.modes.iter().map(|m| m.name), &latency_ms(&med)).into(),
            );
        }
        // With --peers, on the workloads they ran.
        if let Some(per_peer) = peer_medians(results, w) {
            let (best_name, best) = best_peer(results, &per_peer).unwrap_or(("", 0.0));
            // Only the peers that ran it.
            let (names, peers): (Vec<&str>, Vec<f64>) = results
                .peers
                .iter()
                .zip(&per_peer)
                .filter_map(|(name, x)| Some((*name, (*x)?)))
                .unzip();
            obj.insert(
                "peers_ops_per_sec".into(),
                named(&mut names.iter().copied(), &peers).into(),
            );
            if workload.is_latency() {
                obj.insert(
                    "peers_median_latency_ms".into(),
                    named(&mut names.iter().copied(), &latency_ms(&peers)).into(),
                );
            }
            obj.insert("best_peer".into(), json!(best_name));
            obj.insert("best_peer_ops_per_sec".into(), json!(best));
            obj.insert(
                "encrypted_over_best_peer".into(),
                json!(enc / best.max(1e-9)),
            );
        }
        if let Some((_, counts)) = given_up(results).into_iter().find(|(g, _)| *g == workload) {
            let map: Map<String, Value> = counts.into_iter().map(|(n, c)| (n, json!(c))).collect();
            obj.insert("transactions_given_up".into(), map.into());
        }
        if let Some(slot) = workload.space_slot() {
            let bytes = |range: std::ops::Range<usize>, names: &mut dyn Iterator<Item = &str>| {
                names
                    .zip(range)
                    .filter_map(|(n, e)| {
                        Some((n.to_string(), json!(space_median(results, e, slot)?)))
                    })
                    .collect::<Map<String, Value>>()
            };
            let m = results.modes.len();
            obj.insert(
                "modes_allocated_bytes".into(),
                bytes(0..m, &mut results.modes.iter().map(|m| m.name)).into(),
            );
            if !results.peers.is_empty() {
                obj.insert(
                    "peers_allocated_bytes".into(),
                    bytes(
                        m..m + results.peers.len(),
                        &mut results.peers.iter().copied(),
                    )
                    .into(),
                );
            }
        }
        out!(o, "{}", Value::Object(obj));
    }
}
