//! The CLI contract: commands, flags and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;

fn sealkv() -> Command {
    Command::cargo_bin("sealkv").unwrap()
}

#[test]
fn keygen_writes_a_private_hex_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.key");
    sealkv()
        .arg("keygen")
        .arg(&path)
        .assert()
        .success()
        .stdout("");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    assert!(text[..64].bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let second = sealkv()
        .arg("keygen")
        .arg(&path)
        .assert()
        .code(5)
        .stdout("");
    let err = String::from_utf8(second.get_output().stderr.clone()).unwrap();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "not overwritten"
    );
    // Two keys differ.
    let other = dir.path().join("k2.key");
    sealkv().arg("keygen").arg(&other).assert().success();
    assert_ne!(std::fs::read_to_string(&other).unwrap(), text);
}

#[test]
fn usage_errors_exit_2() {
    sealkv().assert().code(2);
    sealkv().arg("no-such-command").assert().code(2);
    sealkv().args(["keygen"]).assert().code(2);
    sealkv()
        .args([
            "export",
            "f",
            "--archive-key-file",
            "k",
            "--plaintext-export",
        ])
        .assert()
        .code(2);
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "keygen",
        "init",
        "put",
        "get",
        "delete",
        "scan",
        "load",
        "flush",
        "stats",
        "verify",
        "backup",
        "restore",
        "export",
        "import",
        "verify-archive",
        "rekey",
        "rotate-key",
        "reencrypt",
        "bench",
        "demo",
    ] {
        let out = sealkv().args([cmd, "--help"]).assert().success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(
            text.contains("Example:") || text.contains("Examples:"),
            "{cmd}: {text}"
        );
    }
}

#[test]
fn global_options_are_accepted_after_the_command() {
    // Parses (exit 3: the variable holds no key), not a usage error.
    sealkv()
        .env_remove("SEALKV_TEST_UNSET")
        .args([
            "get",
            "k",
            "--db",
            "/nonexistent",
            "--key-env",
            "SEALKV_TEST_UNSET",
        ])
        .assert()
        .code(3);
}
