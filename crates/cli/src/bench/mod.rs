//! `sealkv bench`: the one-run plaintext vs encrypted report.
//!
//! Every workload runs for every mode (plaintext, AES-256-GCM and
//! ChaCha20-Poly1305 with the default provider, and with `ring` when built
//! with that feature) interleaved in this one process, for several rounds
//! with the mode order rotated each round; the report gives each mode's
//! median and its ratio to plaintext, and each mode's peak RSS. `cargo xtask
//! bench` runs this and writes the report into `docs/PERFORMANCE.md`.

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
        let results = measure(tmp.path(), &modes, shape, options.rounds)?;
        if options.json {
            report::print_json(&results);
        }
        all.push(results);
    }
    if !options.json {
        report::print_markdown(&machine.finish(), options, &all);
    }
    Ok(())
}

/// Runs every workload for every mode, `rounds` times, interleaved.
fn measure(root: &Path, modes: &[Mode], shape: Shape, rounds: u32) -> Result<Results, CliError> {
    let targets: Vec<Target> = modes
        .iter()
        .enumerate()
        .map(|(i, mode)| Target {
            mode: mode.clone(),
            dir: root.join(format!("v{}-m{i}", shape.value_len)),
            shape,
        })
        .collect();
    let mut samples = vec![vec![Vec::new(); modes.len()]; Workload::ALL.len()];
    // A bar over the runs, on standard error when it is a terminal.
    let runs = u64::from(rounds) * (Workload::ALL.len() * targets.len()) as u64;
    let bar = crate::progress::count(runs, "bench", " runs");
    report::reset_peak_rss();
    for round in 0..rounds as usize {
        for (w, workload) in Workload::ALL.into_iter().enumerate() {
            // Rotate the order of the modes each round, so none always runs
            // first (cold) or last.
            for k in 0..targets.len() {
                let m = (k + round) % targets.len();
                let Some(target) = targets.get(m) else {
                    continue;
                };
                let measure = target.run(workload)?;
                bar.inc(1);
                if let Some(s) = samples.get_mut(w).and_then(|s| s.get_mut(m)) {
                    s.push(measure);
                }
            }
        }
    }
    bar.finish_and_clear();
    let peak_rss = report::peak_rss();
    for t in &targets {
        workload::remove_dir(&t.dir)?;
    }
    Ok(Results {
        shape,
        modes: modes.to_vec(),
        samples,
        peak_rss,
    })
}
