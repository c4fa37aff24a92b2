//! The crash-kill harness, small: 52 kill-and-reopen cycles, 13 in each
//! mode (plaintext and each algorithm), with blind batches, transactions
//! and keyspace drops under the kill; the same with a freshness anchor, in
//! compaction mode, and in the HSM mode (a key wrapper's master key).
//! `cargo xtask crash --cycles N` runs it big, in release.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;

fn figure(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{stdout}"))
}

/// Runs the harness in a temporary directory with `args`, prints its report
/// (the `PROOF` lines are read by `cargo xtask proof`, which runs these
/// tests with --nocapture), asserts that it succeeded and returns the
/// directory (kept until dropped) and its standard output.
fn run_harness(args: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sealkv-crash"))
        .args(args)
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "harness failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (dir, stdout)
}

#[test]
fn fifty_two_kill_cycles_lose_no_acknowledged_batch() {
    let (_dir, stdout) = run_harness(&["--cycles", "52", "--mode", "all", "--seed", "7"]);
    assert!(stdout.starts_with("crash-kill: 52 cycles"), "{stdout}");
    assert_eq!(figure(&stdout, "lost acknowledged batches:"), 0);
    assert_eq!(figure(&stdout, "partial or wrong batches:"), 0);
    assert_eq!(figure(&stdout, "wrong scratch keyspaces:"), 0);
    // Transactions ran, conflicted and retried, and keyspaces were
    // dropped, under the kill.
    assert!(figure(&stdout, "transactions committed:") > 0, "{stdout}");
    assert!(figure(&stdout, "conflicts retried:") > 0, "{stdout}");
    assert!(figure(&stdout, "keyspace drops:") > 0, "{stdout}");
    assert_eq!(figure(&stdout, "verify findings:"), 0);
    assert_eq!(figure(&stdout, "findings:"), 0);
    // Every mode ran its share and acknowledged batches.
    for mode in [
        "plaintext",
        "aes-256-gcm ",
        "chacha20-poly1305",
        "aes-256-gcm-siv",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(mode))
            .unwrap_or_else(|| panic!("no line for {mode}:\n{stdout}"));
        assert!(line.contains(" 13 cycles"), "{line}");
        assert!(!line.contains(" 0 batches acknowledged"), "{line}");
    }
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_sealkv-crash"))
        .args(["--mode", "rot13"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mode"));
}

/// The same with a freshness anchor file beside each database: a kill
/// between a commit and the anchor's update never makes the reopen a
/// rollback (or an anchor error).
#[test]
fn kill_cycles_with_a_freshness_anchor_reopen_without_a_false_rollback() {
    let (dir, stdout) = run_harness(&[
        "--cycles", "24", "--mode", "all", "--seed", "11", "--anchor",
    ]);
    assert!(stdout.starts_with("freshness anchor:"), "{stdout}");
    assert!(stdout.contains("PROOF name=crash-kill-anchor "), "{stdout}");
    assert_eq!(figure(&stdout, "lost acknowledged batches:"), 0);
    assert_eq!(figure(&stdout, "findings:"), 0);
    // Some kills hit a flush or a key operation: a commit the anchor
    // follows.
    let kills = stdout
        .lines()
        .find(|l| l.starts_with("kills:"))
        .unwrap_or_else(|| panic!("no kills line:\n{stdout}"));
    assert!(
        [
            "at begin flush",
            "at begin rekey",
            "at begin field key",
            "at begin rotate",
        ]
        .iter()
        .any(|m| kills.contains(m)),
        "{kills}"
    );
    // The anchors exist, beside the directories.
    for mode in ["plaintext", "aes-256-gcm"] {
        assert!(dir.path().join(format!("{mode}.anchor")).exists(), "{mode}");
    }
}

/// Compaction mode: compactions (`Db::compact`) and range deletes
/// (`delete_range`) under the kill, beside the writes, deletes and
/// transactions; nothing acknowledged lost, nothing partial, `verify`
/// clean, and a clear cut short leaves a tail in key order, never a hole.
#[test]
fn kill_cycles_inside_compactions_and_range_deletes_lose_nothing() {
    let (_dir, stdout) = run_harness(&[
        "--cycles",
        "24",
        "--mode",
        "all",
        "--seed",
        "13",
        "--compact",
    ]);
    assert!(stdout.starts_with("compaction mode:"), "{stdout}");
    assert!(
        stdout.contains("PROOF name=crash-kill-compact "),
        "{stdout}"
    );
    assert_eq!(figure(&stdout, "lost acknowledged batches:"), 0);
    assert_eq!(figure(&stdout, "partial or wrong batches:"), 0);
    assert_eq!(figure(&stdout, "wrong scratch keyspaces:"), 0);
    assert_eq!(figure(&stdout, "verify findings:"), 0);
    assert_eq!(figure(&stdout, "findings:"), 0);
    // Compactions ran and moved pages, and some kill hit one.
    let compactions = stdout
        .lines()
        .find(|l| l.starts_with("compactions:"))
        .unwrap_or_else(|| panic!("no compactions line:\n{stdout}"));
    let counts: Vec<u64> = compactions
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(counts[0] > 0 && counts[1] > 0, "{compactions}");
    let kills = stdout
        .lines()
        .find(|l| l.starts_with("kills:"))
        .unwrap_or_else(|| panic!("no kills line:\n{stdout}"));
    assert!(kills.contains("at begin compact"), "{kills}");
}

/// Where SoftHSM2's module is, if installed.
fn softhsm_installed() -> bool {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Runs the harness in the HSM mode; returns its stdout.
fn hsm_run(cycles: &str, seed: &str, extra: &[&str]) -> String {
    let (_dir, stdout) = run_harness(
        &[
            &["--cycles", cycles, "--mode", "hsm", "--seed", seed][..],
            extra,
        ]
        .concat(),
    );
    assert_eq!(figure(&stdout, "lost acknowledged batches:"), 0);
    assert_eq!(figure(&stdout, "partial or wrong batches:"), 0);
    assert_eq!(figure(&stdout, "verify findings:"), 0);
    assert_eq!(figure(&stdout, "findings:"), 0);
    let put_back = stdout
        .lines()
        .find(|l| l.starts_with("older KEYS put back"))
        .unwrap_or_else(|| panic!("no put-back line:\n{stdout}"));
    assert!(!put_back.contains("no cycle changed KEYS"), "{put_back}");
    stdout
}

/// The harness on a database whose master key is a key wrapper's: a
/// SoftHSM2 token where SoftHSM2 is installed (required under CI), and the
/// in-process test wrapper. Kills land in its opens (the token's unwrap)
/// and its rekeys (a new root key wrapped by the token); an older `KEYS`
/// put back after a key operation is refused as in the raw-key modes.
#[test]
fn kill_cycles_under_an_hsm_key_lose_nothing_and_refuse_an_older_registry() {
    assert!(
        softhsm_installed() || !in_ci(),
        "SoftHSM2 is not installed, and CI must run the HSM crash mode"
    );
    let stdout = hsm_run("16", "17", &[]);
    let first = stdout.lines().next().unwrap_or_default();
    if softhsm_installed() {
        assert!(first.contains("a SoftHSM2 token"), "{first}");
    } else {
        println!("\n*** SoftHSM2 is not installed: the HSM mode ran on the test wrapper ***\n");
        assert!(first.contains("test wrapper"), "{first}");
    }
    assert!(
        stdout.contains("PROOF name=crash-kill-hsm part=hsm cases=16 "),
        "{stdout}"
    );
    let software = hsm_run("8", "5", &["--software-wrapper"]);
    assert!(
        software
            .lines()
            .next()
            .unwrap_or_default()
            .contains("test wrapper"),
        "{software}"
    );
}
