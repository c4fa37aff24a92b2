//! `cargo xtask` as a command: its help, and a clear failure when a tool a
//! task needs is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

#[test]
fn help_lists_the_tasks_and_exits_0() {
    for flag in ["--help", "-h", "help"] {
        let out = xtask().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8(out.stdout).unwrap();
        for task in [
            "ci",
            "package",
            "plugin",
            "fuzz",
            "bench",
            "criterion",
            "crash",
            "proof",
        ] {
            assert!(
                text.contains(&format!("\n  {task}")),
                "{flag}: {task}: {text}"
            );
        }
    }
    let out = xtask().arg("no-such-task").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no task \"no-such-task\""));
}

/// With a `cargo` on the PATH that has no `fuzz` subcommand (as without
/// cargo-fuzz), `fuzz` fails and says how to install it.
#[cfg(unix)]
#[test]
fn fuzz_without_cargo_fuzz_fails_saying_how_to_install_it() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let cargo = bin.path().join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\necho \"error: no such command: \\`fuzz\\`\" >&2\nexit 101\n",
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = xtask()
        .args(["fuzz", "--seconds", "1"])
        .env("PATH", bin.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no such command"), "{err}");
    assert!(err.contains("cargo install cargo-fuzz"), "{err}");
}
