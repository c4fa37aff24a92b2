//! Project tasks, run as `cargo xtask <task>`.
//!
//! - `ci`: what CI runs — format check, clippy with warnings denied, the
//!   whole test suite (the long proofs at their reduced size, through
//!   `proof --quick`), the docs with warnings denied, and `cargo package`
//!   of every library crate. If `cargo xtask ci` passes locally, CI will be
//!   green. It leaves out the worked cipher plugin (`sealkv-aws-lc`), whose
//!   AWS-LC build takes minutes.
//! - `package`: `cargo package` of every library crate, as `ci` runs it.
//! - `plugin`: the worked cipher plugin — clippy, its tests (self-test,
//!   byte equality with the built-in AES-256-GCM, a database through every
//!   operation) and the CLI built with it (`--features aws-lc`).
//! - `fuzz [TARGET] [--seconds N | --runs N] [--no-sanitizer]`: runs
//!   cargo-fuzz targets (nightly), all of them without a TARGET; fails
//!   saying how to install cargo-fuzz when it is missing.
//! - `bench [ARGS]`: the one-run report — builds the CLI in release with the
//!   `ring` provider, runs `sealkv bench ARGS` (e.g. `--n 1000000`), prints
//!   the report and writes it into `docs/PERFORMANCE.md` between the
//!   `<!-- bench:begin -->` and `<!-- bench:end -->` markers. With
//!   `--peers`, builds with the `peers` feature too (redb, SQLite, LMDB and
//!   fjall beside sealkv).
//! - `criterion [ARGS]`: the criterion suite (`cargo bench -p sealkv-benches`).
//! - `crash [--cycles N] [--mode M] [--seed S] [--anchor] [--compact]`: the
//!   crash-kill harness, in release (see `crash.rs`).
//! - `proof [--quick] [--cycles N] [--seed S]`: every long proof the docs
//!   quote (crash-kill cycles, every fault position, every crash point of
//!   the fuzz regressions, the full tamper matrices) and one summary table
//!   of their counts, written into `docs/RELIABILITY.md` (see `proof.rs`).
//! - `help`, `--help`: the tasks (exit 0).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod crash;
mod proof;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("$ {program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(root());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed: {status}", args.join(" ")))
    }
}

/// The crates a library user can pick, bottom to top: each is packaged
/// (and its package built) by `cargo xtask ci`.
const LIBRARY_CRATES: [&str; 7] = [
    "sealkv-fileio",
    "sealkv-crypto-envelope",
    "sealkv-core-wal",
    "sealkv-core-store",
    "sealkv",
    "sealkv-backup",
    "sealkv-collections",
];

/// The crate CI leaves out: it builds AWS-LC (`cargo xtask plugin` runs it).
const PLUGIN_CRATE: &str = "sealkv-aws-lc";

fn ci() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--exclude",
            PLUGIN_CRATE,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    // The long proofs' tests run once, through `proof --quick` below, which
    // also checks the counts they print.
    let mut test = vec!["test", "--workspace", "--exclude", PLUGIN_CRATE, "--"];
    for filter in proof::test_filters() {
        test.extend(["--skip", filter]);
    }
    run("cargo", &test, &[])?;
    proof::proof(&["--quick".to_string()])?;
    // The optional `ring` provider: its known-answer and property tests, and
    // a database written by each provider opened with the other. Only the
    // crates it touches are rebuilt (ring compiles in about 15 s).
    run(
        "cargo",
        &[
            "clippy",
            "-p",
            "sealkv-crypto-envelope",
            "-p",
            "sealkv",
            "-p",
            "sealkv-cli",
            "--features",
            "ring",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run(
        "cargo",
        &["test", "-p", "sealkv-crypto-envelope", "--features", "ring"],
        &[],
    )?;
    run(
        "cargo",
        &[
            "test",
            "-p",
            "sealkv",
            "--features",
            "ring",
            "--test",
            "it",
            "provider_interop",
        ],
        &[],
    )?;
    run(
        "cargo",
        &["doc", "--workspace", "--exclude", PLUGIN_CRATE, "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    package()
}

/// `cargo package` of every library crate in one run: cargo packages them
/// in dependency order and resolves each one's dependencies on the others
/// from a local registry of the packages it just made (no publishing), then
/// builds every package from its own files, so a README or source file
/// left out of a package fails here. `--allow-dirty` packages the working
/// tree as it is, so the check runs before a commit too.
fn package() -> Result<(), String> {
    forget_unpacked_packages()?;
    let target = root().join("target").join("package-verify");
    forget_built_packages(&target)?;
    let target = target.to_string_lossy().into_owned();
    let mut args = vec!["package", "--allow-dirty", "--target-dir", target.as_str()];
    for name in LIBRARY_CRATES {
        args.extend(["-p", name]);
    }
    run("cargo", &args, &[])
}

/// Removes cargo's unpacked copies of our packages from earlier runs.
///
/// To verify a package against the others, cargo unpacks them from its
/// local registry into `$CARGO_HOME/registry/src/-HASH/NAME-VERSION` (a
/// local registry's directory name starts with `-`) and reuses such a copy
/// on the next run at the same version, so a crate whose code changed since
/// would be built against the stale copy of its dependency. Only those
/// directories are removed; crates.io's sources are left alone.
fn forget_unpacked_packages() -> Result<(), String> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for name in LIBRARY_CRATES {
            let unpacked = registry
                .path()
                .join(format!("{name}-{}", env!("CARGO_PKG_VERSION")));
            if unpacked.exists() {
                std::fs::remove_dir_all(&unpacked)
                    .map_err(|e| format!("cannot remove {}: {e}", unpacked.display()))?;
            }
        }
    }
    Ok(())
}

/// Removes what an earlier verification built of our crates in `target`
/// (its own target directory, so nothing else is built there).
///
/// cargo takes a registry crate at a given version as unchanging, so a
/// dependency built by an earlier run would be reused even though the
/// package behind it changed; third-party dependencies stay built.
fn forget_built_packages(target: &Path) -> Result<(), String> {
    for dir in [".fingerprint", "deps", "build"] {
        let Ok(entries) = std::fs::read_dir(target.join("debug").join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("sealkv") || name.starts_with("libsealkv")) {
                continue;
            }
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// The worked cipher plugin and the CLI built with it.
fn plugin() -> Result<(), String> {
    run(
        "cargo",
        &[
            "clippy",
            "-p",
            PLUGIN_CRATE,
            "-p",
            "sealkv-cli",
            "--features",
            "sealkv-cli/aws-lc",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run("cargo", &["test", "-p", PLUGIN_CRATE], &[])?;
    run(
        "cargo",
        &[
            "test",
            "-p",
            "sealkv-cli",
            "--features",
            "aws-lc",
            "--test",
            "plugin",
        ],
        &[],
    )?;
    run(
        "cargo",
        &["doc", "-p", PLUGIN_CRATE, "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

fn fuzz(args: &[String]) -> Result<(), String> {
    // A time budget by default; `--runs N` gives an execution budget
    // instead (the figures in docs/RELIABILITY.md are in executions).
    let mut budget = "-max_total_time=60".to_string();
    let mut sanitizer = None;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let n = it.next().ok_or("--seconds needs a number")?;
                budget = format!("-max_total_time={n}");
            }
            "--runs" => {
                let n = it.next().ok_or("--runs needs a number")?;
                budget = format!("-runs={n}");
            }
            // Every target is safe Rust over safe dependencies; without
            // AddressSanitizer the engine_ops target runs about 5x faster.
            "--no-sanitizer" => sanitizer = Some("--sanitizer=none"),
            _ => targets.push(a.clone()),
        }
    }
    let out = Command::new("cargo")
        .args(["+nightly", "fuzz", "list"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo-fuzz (on the nightly toolchain) is needed and `cargo +nightly fuzz list` failed: {}\n\
             install it with `rustup toolchain install nightly` and `cargo install cargo-fuzz`",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let known: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if targets.is_empty() {
        targets = known;
    } else if let Some(t) = targets.iter().find(|t| !known.contains(t)) {
        return Err(format!(
            "no fuzz target {t:?}; the targets: {}",
            known.join(", ")
        ));
    }
    if targets.is_empty() {
        return Err("cargo fuzz list names no target".into());
    }
    for t in &targets {
        // New inputs go to a work corpus under fuzz/target (ignored by git);
        // the committed seeds are read from fuzz/corpus/TARGET but never
        // written, so a run leaves the tree clean and the stable tests that
        // replay fuzz/corpus stay as fast as in CI.
        let work = format!("fuzz/target/corpus/{t}");
        let seeds = format!("fuzz/corpus/{t}");
        std::fs::create_dir_all(root().join(&work))
            .map_err(|e| format!("cannot create {work}: {e}"))?;
        let mut a = vec!["+nightly", "fuzz", "run"];
        a.extend(sanitizer);
        a.extend([t.as_str(), work.as_str(), seeds.as_str()]);
        a.extend(["--", budget.as_str(), "-print_final_stats=1"]);
        run("cargo", &a, &[])?;
    }
    Ok(())
}

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// `cargo xtask bench`: runs the CLI's report and writes it into
/// docs/PERFORMANCE.md.
fn bench(args: &[String]) -> Result<(), String> {
    // `--peers` (redb, SQLite, LMDB and fjall beside sealkv) needs the CLI's
    // `peers` feature.
    let features = if args.iter().any(|a| a == "--peers") {
        "ring,peers"
    } else {
        "ring"
    };
    let mut cmd_args: Vec<&str> = vec![
        "run",
        "--release",
        "--quiet",
        "-p",
        "sealkv-cli",
        "--features",
        features,
        "--",
        "bench",
    ];
    cmd_args.extend(args.iter().map(String::as_str));
    eprintln!("$ cargo {}", cmd_args.join(" "));
    let out = Command::new("cargo")
        .args(&cmd_args)
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("`sealkv bench` failed: {}", out.status));
    }
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{report}");
    if args.iter().any(|a| a == "--json") {
        return Ok(());
    }
    let command = if args.is_empty() {
        "cargo xtask bench".to_string()
    } else {
        format!("cargo xtask bench {}", args.join(" "))
    };
    let section = format!(
        "{BEGIN}\n\nCommand: `{command}` (runs `cargo {}`).\n\n{}\n{END}",
        cmd_args.join(" "),
        report.trim_end()
    );
    let path = root().join("docs").join("PERFORMANCE.md");
    let doc = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        return Err(format!(
            "{} has no {BEGIN} ... {END} section to replace",
            path.display()
        ));
    };
    if e < b {
        return Err(format!("{}: {END} before {BEGIN}", path.display()));
    }
    let new = format!("{}{section}{}", &doc[..b], &doc[e + END.len()..]);
    std::fs::write(&path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("xtask: wrote the report into {}", path.display());
    Ok(())
}

/// `cargo xtask --help`.
const USAGE: &str = "\
usage: cargo xtask <TASK> [ARGS]

tasks:
  ci                        what CI runs: fmt check, clippy -D warnings, every test
                            (the long proofs reduced), the ring provider's tests,
                            rustdoc -D warnings, package (not the cipher plugin)
  package                   `cargo package` of every library crate, checked
  plugin                    the worked cipher plugin (sealkv-aws-lc, builds AWS-LC)
                            and the CLI built with it
  fuzz [TARGET...] [--seconds N | --runs N] [--no-sanitizer]
                            cargo-fuzz targets on nightly (all without TARGET;
                            needs `cargo install cargo-fuzz`)
  bench [ARGS]              the one-run report (`sealkv bench ARGS`, release, ring),
                            written into docs/PERFORMANCE.md; --peers adds redb and SQLite
  criterion [ARGS]          the criterion suite (cargo bench -p sealkv-benches)
  crash [--cycles N] [--mode M] [--seed S] [--anchor] [--compact]
                            the crash-kill harness, in release (--anchor: with a
                            freshness anchor file beside each database;
                            --compact: compactions and range deletes too;
                            --mode hsm: under a key wrapper, a SoftHSM2 token
                            where installed)
  proof [--quick] [--cycles N] [--seed S] [--jobs N]
                            every long proof and one summary table of their
                            counts (written into docs/RELIABILITY.md)
  help, --help, -h          this text";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("ci") => ci(),
        Some("package") => package(),
        Some("plugin") => plugin(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("criterion") => {
            let mut a = vec!["bench", "-p", "sealkv-benches"];
            a.extend(args[1..].iter().map(String::as_str));
            run("cargo", &a, &[])
        }
        Some("crash") => crash::crash(&args[1..]),
        Some("proof") => proof::proof(&args[1..]),
        Some(other) => Err(format!("no task {other:?}\n{USAGE}")),
        None => Err(format!("no task given\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
