//! `sealkv bench`: the one-run plaintext vs encrypted report.
//!
//! Every workload runs for every mode (plaintext, AES-256-GCM and
//! ChaCha20-Poly1305 with the default provider, and with `ring` when built
//! with that feature) interleaved in this one process, for several rounds
//! with the mode order rotated each round; the report gives each mode's
//! median and its ratio to plaintext, and each mode's peak RSS. `cargo xtask
//! bench` runs this and writes the report into `docs/PERFORMANCE.md`.
//!
//! With `--peers` (a build with feature `peers`), redb and SQLite run issue
//! 8's comparison workloads in the same rounds, interleaved with sealkv's
//! modes, and a second table gives encrypted sealkv over the best of them.

#[cfg(feature = "peers")]
mod peers;
mod report;
mod workload;

use std::path::Path;

use crate::exit::CliError;
use workload::{Measure, Mode, Shape, Target, Workload};

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
    /// Also run the peer engines (redb, SQLite; feature `peers`).
    pub(crate) peers: bool,
    /// sealkv's page cache in MiB, if not the configuration's default.
    pub(crate) cache_mib: Option<u64>,
}

/// Another engine run beside sealkv's modes (`--peers`), on the workloads
/// of the peer comparison (fill, cold and warm random reads, scan, single
/// durable puts).
pub(crate) trait Peer {
    /// Column name in the report.
    fn name(&self) -> &'static str;
    /// The directory its database lives in (removed after the run).
    fn dir(&self) -> &Path;
    /// Runs `workload`, assuming the ones before it in [`Workload::ALL`]
    /// ran; `None` for a workload this peer does not run.
    fn run(&self, workload: Workload) -> Result<Option<Measure>, CliError>;
}

/// The usage error of `--peers` in a build without the feature.
const NO_PEERS: &str = "bench: --peers needs a build with the `peers` feature \
     (cargo build --release -p sealkv-cli --features peers)";

/// The peer engines for one shape, their databases under `root`.
#[cfg(feature = "peers")]
fn peer_engines(root: &Path, shape: Shape) -> Result<Vec<Box<dyn Peer>>, CliError> {
    Ok(peers::all(root, shape))
}

/// Without feature `peers` there are none: a usage error.
#[cfg(not(feature = "peers"))]
fn peer_engines(_root: &Path, _shape: Shape) -> Result<Vec<Box<dyn Peer>>, CliError> {
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
    /// `samples[workload][mode]`: one measure per round.
    pub(crate) samples: Vec<Vec<Vec<Measure>>>,
    /// The peer engines' names (empty without `--peers`).
    pub(crate) peers: Vec<&'static str>,
    /// `peer_samples[workload][peer]`: one measure per round, none for a
    /// workload the peers do not run.
    pub(crate) peer_samples: Vec<Vec<Vec<Measure>>>,
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
        let results = measure(
            tmp.path(),
            &modes,
            &peers,
            shape,
            options.rounds,
            options.cache_mib,
        )?;
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

/// Runs every workload for every mode and peer, `rounds` times,
/// interleaved.
fn measure(
    root: &Path,
    modes: &[Mode],
    peers: &[Box<dyn Peer>],
    shape: Shape,
    rounds: u32,
    cache_mib: Option<u64>,
) -> Result<Results, CliError> {
    let targets: Vec<Target> = modes
        .iter()
        .enumerate()
        .map(|(i, mode)| Target {
            mode: mode.clone(),
            dir: root.join(format!("v{}-m{i}", shape.value_len)),
            shape,
            cache_mib,
        })
        .collect();
    let mut samples = vec![vec![Vec::new(); modes.len()]; Workload::ALL.len()];
    let mut peer_samples = vec![vec![Vec::new(); peers.len()]; Workload::ALL.len()];
    // A bar over the runs, on standard error when it is a terminal (the
    // peers' runs of workloads they skip count too: they take no time).
    let engines = targets.len() + peers.len();
    let runs = u64::from(rounds) * (Workload::ALL.len() * engines) as u64;
    let bar = crate::progress::count(runs, "bench", " runs");
    report::reset_peak_rss();
    for round in 0..rounds as usize {
        for (w, workload) in Workload::ALL.into_iter().enumerate() {
            // Rotate the order of the modes (and peers) each round, so none
            // always runs first (cold) or last.
            for k in 0..engines {
                let m = (k + round) % engines;
                if let Some(target) = targets.get(m) {
                    let measure = target.run(workload)?;
                    if let Some(s) = samples.get_mut(w).and_then(|s| s.get_mut(m)) {
                        s.push(measure);
                    }
                } else {
                    let p = m.saturating_sub(targets.len());
                    if let Some(peer) = peers.get(p)
                        && let Some(measure) = peer.run(workload)?
                        && let Some(s) = peer_samples.get_mut(w).and_then(|s| s.get_mut(p))
                    {
                        s.push(measure);
                    }
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let peak_rss = report::peak_rss();
    for t in &targets {
        workload::remove_dir(&t.dir)?;
    }
    for p in peers {
        workload::remove_dir(p.dir())?;
    }
    Ok(Results {
        shape,
        modes: modes.to_vec(),
        samples,
        peers: peers.iter().map(|p| p.name()).collect(),
        peer_samples,
        peak_rss,
    })
}
