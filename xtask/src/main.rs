//! Project tasks, run as `cargo xtask <task>`.
//!
//! - `ci`: what CI runs — format check, clippy with warnings denied, the
//!   whole test suite, and the docs with warnings denied. If `cargo xtask ci`
//!   passes locally, CI will be green.
//! - `fuzz [TARGET] [--seconds N]`: runs cargo-fuzz targets (nightly).
//! - `bench`: the criterion suite.

#![allow(clippy::print_stdout, clippy::print_stderr)]

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

fn ci() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run("cargo", &["test", "--workspace"], &[])?;
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
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    Ok(())
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let mut seconds = "60".to_string();
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" {
            seconds = it.next().ok_or("--seconds needs a number")?.clone();
        } else {
            targets.push(a.clone());
        }
    }
    if targets.is_empty() {
        let out = Command::new("cargo")
            .args(["+nightly", "fuzz", "list"])
            .current_dir(root())
            .output()
            .map_err(|e| format!("cannot run cargo fuzz: {e} (cargo install cargo-fuzz)"))?;
        targets = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
    }
    for t in &targets {
        let max_time = format!("-max_total_time={seconds}");
        run(
            "cargo",
            &["+nightly", "fuzz", "run", t, "--", &max_time],
            &[],
        )?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("bench") => run("cargo", &["bench", "-p", "sealkv-benches"], &[]),
        _ => Err("usage: cargo xtask <ci | fuzz [TARGET] [--seconds N] | bench>".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
