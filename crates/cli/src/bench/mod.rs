//! `sealkv bench`: the one-run comparison report.
//!
//! Every workload runs for every mode (plaintext, AES-256-GCM and
//! ChaCha20-Poly1305 with the default provider, and with `ring` when built
//! with that feature) interleaved in this one process, for several rounds
//! with the mode order rotated each round; the report gives each mode's
//! median and its ratio to plaintext, the disk space each database takes,
//! and the peak RSS. `cargo xtask bench` runs this and writes the report
//! into `docs/PERFORMANCE.md`.
//!
//! With `--peers` (a build with feature `peers`), redb, SQLite, LMDB and
//! fjall run the same workloads ([`workload`], written once against
//! [`engine::Engine`]) in the same rounds, interleaved with sealkv's modes,
//! and a second table gives encrypted sealkv over the best of them.

mod engine;
#[cfg(feature = "peers")]
mod peers;
mod people;
mod records;
mod report;
mod space;
mod target;
mod txn;
mod workload;
mod ycsb;

use std::path::Path;

use crate::exit::CliError;
use engine::Engine;
use records::{Model, remove_dir};
use target::{Mode, Target};
pub(crate) use workload::Suite;
use workload::{Measure, Shape, Workload};

/// The options of one `sealkv bench` run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Records per workload at 100-byte values.
    pub(crate) records: u64,
    /// Rounds of every workload per mode.
    pub(crate) rounds: u32,
    /// Only this value size, instead of 100 bytes and then 4 KiB.
    pub(crate) value_len: Option<usize>,
    /// Only plaintext and the mode of this name.
    pub(crate) only: Option<String>,
    /// JSON lines instead of the markdown report.
    pub(crate) json: bool,
    /// Also run the peer engines (redb, SQLite, LMDB, fjall; feature
    /// `peers`).
    pub(crate) peers: bool,
    /// sealkv's page cache in MiB, if not the configuration's default.
    pub(crate) cache_mib: Option<u64>,
    /// The workloads timed.
    pub(crate) suite: Suite,
}

/// The usage error of `--peers` in a build without the feature.
const NO_PEERS: &str = "bench: --peers needs a build with the `peers` feature \
     (cargo build --release -p sealkv-cli --features peers)";

/// The peer engines for one shape, their databases under `root`.
#[cfg(feature = "peers")]
fn peer_engines(root: &Path, shape: Shape) -> Result<Vec<Box<dyn Engine>>, CliError> {
    Ok(peers::all(root, shape))
}

/// Without feature `peers` there are none: a usage error.
#[cfg(not(feature = "peers"))]
fn peer_engines(_root: &Path, _shape: Shape) -> Result<Vec<Box<dyn Engine>>, CliError> {
    Err(CliError::Usage(NO_PEERS.into()))
}

/// Default records per workload: about a minute for the whole report on a
/// two-core machine.
pub(crate) const DEFAULT_RECORDS: u64 = 100_000;
/// Default rounds.
pub(crate) const DEFAULT_ROUNDS: u32 = 3;

/// The measurements of one value size.
pub(crate) struct Results {
    pub(crate) shape: Shape,
    pub(crate) modes: Vec<Mode>,
    /// The peer engines' names (empty without `--peers`).
    pub(crate) peers: Vec<&'static str>,
    /// The workloads timed (the others have no samples).
    pub(crate) suite: Suite,
    /// `samples[workload][engine]`, the engines being the modes then the
    /// peers: one measure per round (none for a workload the peers do not
    /// run).
    pub(crate) samples: Vec<Vec<Vec<Measure>>>,
    /// `space[engine][slot]`: bytes on disk after the load (slot 0) and
    /// after the overwrite (slot 1), one sample per round.
    pub(crate) space: Vec<[Vec<u64>; 2]>,
    /// `given_up[workload][engine]`: transactions the engine gave up on
    /// (conflict after its own retries), over all rounds, that the bench
    /// ran again.
    pub(crate) given_up: Vec<Vec<u64>>,
    /// Peak RSS in bytes of the whole process while these ran, if the
    /// kernel tells. One figure, not one per mode: the allocator keeps freed
    /// memory, so a mode's run starts at the high mark of the one before.
    pub(crate) peak_rss: Option<u64>,
}

/// Runs the benchmark under `parent` (a temporary directory inside it) and
/// prints the report.
pub(crate) fn run(parent: Option<&Path>, options: &Options) -> Result<(), CliError> {
    if options.records == 0 || options.rounds == 0 {
        return Err(CliError::Usage(
            "bench: --n and --rounds must be at least 1".into(),
        ));
    }
    if options.peers && !cfg!(feature = "peers") {
        return Err(CliError::Usage(NO_PEERS.into()));
    }
    let mut modes = Mode::all();
    if let Some(only) = &options.only {
        if !modes.iter().any(|m| m.name == only.as_str()) {
            let names: Vec<_> = modes.iter().map(|m| m.name).collect();
            return Err(CliError::Usage(format!(
                "bench: no mode {only:?}; this build has {}",
                names.join(", ")
            )));
        }
        modes.retain(|m| m.algorithm.is_none() || m.name == only.as_str());
    }
    let tmp = match parent {
        Some(p) => tempfile::Builder::new()
            .prefix("sealkv-bench")
            .tempdir_in(p),
        None => tempfile::Builder::new().prefix("sealkv-bench").tempdir(),
    }
    .map_err(|source| CliError::Io {
        path: parent.unwrap_or(Path::new("/tmp")).to_path_buf(),
        source,
    })?;
    let shapes = match options.value_len {
        Some(v) => vec![Shape {
            records: options.records,
            value_len: v,
        }],
        None => vec![
            Shape {
                records: options.records,
                value_len: 100,
            },
            Shape {
                records: (options.records / 10).max(1),
                value_len: 4096,
            },
        ],
    };
    let machine = report::Machine::probe(tmp.path());
    let mut all = Vec::new();
    for shape in shapes {
        let peers = if options.peers {
            peer_engines(tmp.path(), shape)?
        } else {
            Vec::new()
        };
        let results = measure(tmp.path(), &modes, &peers, shape, options)?;
        if options.json {
            let mut o = String::new();
            report::print_json(&mut o, &results);
            crate::output::print_str(&o)?;
        }
        all.push(results);
    }
    if !options.json {
        let mut o = String::new();
        report::print_markdown(&mut o, &machine.finish(), options, &all);
        crate::output::print_str(&o)?;
    }
    Ok(())
}

/// Runs every workload of the suite for every mode and peer, `rounds`
/// times, interleaved.
fn measure(
    root: &Path,
    modes: &[Mode],
    peers: &[Box<dyn Engine>],
    shape: Shape,
    options: &Options,
) -> Result<Results, CliError> {
    let Options {
        rounds,
        cache_mib,
        suite,
        ..
    } = *options;
    let targets: Vec<Target> = modes
        .iter()
        .enumerate()
        .map(|(i, mode)| {
            Target::new(
                mode.clone(),
                root.join(format!("v{}-m{i}", shape.value_len)),
                cache_mib,
            )
        })
        .collect();
    let engines: Vec<&dyn Engine> = targets
        .iter()
        .map(|t| t as &dyn Engine)
        .chain(peers.iter().map(|p| p.as_ref()))
        .collect();
    let count = engines.len();
    let mut models = vec![Model::default(); count];
    let mut samples = vec![vec![Vec::new(); count]; Workload::ALL.len()];
    let mut space: Vec<[Vec<u64>; 2]> = vec![[Vec::new(), Vec::new()]; count];
    let mut given_up = vec![vec![0u64; count]; Workload::ALL.len()];
    // A bar over the runs, on standard error when it is a terminal (the
    // peers' runs of workloads they skip count too: they take no time).
    let runs = u64::from(rounds) * (suite.workloads().count() * count) as u64;
    let bar = crate::progress::count(runs, "bench", " runs");
    report::reset_peak_rss();
    for round in 0..rounds as usize {
        for (w, workload) in suite.workloads() {
            // Rotate the order of the engines each round, so none always
            // runs first (cold) or last.
            for k in 0..count {
                let e = (k + round) % count;
                bar.inc(1);
                let is_peer = e >= targets.len();
                let (Some(engine), Some(model)) = (engines.get(e), models.get_mut(e)) else {
                    continue;
                };
                if !workload.runs_on(*engine, is_peer) {
                    continue;
                }
                let measure = workload::run(workload, *engine, model, shape)?;
                if let Some(s) = samples.get_mut(w).and_then(|s| s.get_mut(e)) {
                    s.push(measure);
                }
                if let Some(n) = given_up.get_mut(w).and_then(|g| g.get_mut(e)) {
                    *n += engine.take_given_up();
                }
                if let Some(slot) = workload.space_slot()
                    && let Some(s) = space.get_mut(e).and_then(|s| s.get_mut(slot))
                {
                    s.push(space::allocated_bytes(engine.dir())?);
                }
            }
        }
    }
    bar.finish_and_clear();
    let peak_rss = report::peak_rss();
    for e in &engines {
        remove_dir(e.dir())?;
    }
    Ok(Results {
        shape,
        modes: modes.to_vec(),
        peers: peers.iter().map(|p| p.name()).collect(),
        suite,
        samples,
        space,
        given_up,
        peak_rss,
    })
}

#[cfg(test)]
mod tests;
