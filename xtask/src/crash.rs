//! `cargo xtask crash [--cycles N] [--mode plaintext|aes|chacha|siv|hsm|all]
//! [--seed S] [--dir D] [--anchor] [--compact] [--software-wrapper] [--verbose]`: the crash-kill harness
//! (`crates/crashtest`, binary `sealkv-crash`), built in release. A child
//! process writes batches under `SyncMode::Always` and is SIGKILLed at
//! random instants, aimed at flushes, key operations and re-encryption;
//! the parent reopens and checks every acknowledged batch. `--anchor` runs
//! both with a freshness anchor file beside each database; `--compact`
//! adds compactions and range deletes to the child's work; `--mode hsm`
//! runs a database under a key wrapper (a SoftHSM2 token where installed,
//! else or with `--software-wrapper` the in-process test wrapper). Exits nonzero
//! on any finding. CI runs a small number of cycles as a test.

/// Runs the harness with `args` passed through (1,000 cycles if `--cycles`
/// is not given).
pub(crate) fn crash(args: &[String]) -> Result<(), String> {
    let mut cmd: Vec<String> = [
        "run",
        "--release",
        "--quiet",
        "-p",
        "sealkv-crashtest",
        "--bin",
        "sealkv-crash",
        "--",
    ]
    .map(String::from)
    .to_vec();
    if !args.iter().any(|a| a == "--cycles") {
        cmd.extend(["--cycles".to_string(), "1000".to_string()]);
    }
    cmd.extend(args.iter().cloned());
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    crate::run("cargo", &refs, &[])
}
