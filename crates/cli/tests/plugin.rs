//! The tool built with the worked cipher plugin (feature `aws-lc`): a
//! database created with `--algorithm aes-256-gcm-aws-lc` shows it in
//! `stats`, round-trips its records, and is refused by nothing that has
//! the plugin. Run by `cargo xtask plugin`.

#![cfg(feature = "aws-lc")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;

fn sealkv() -> Command {
    Command::cargo_bin("sealkv").unwrap()
}

fn stdout(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn a_database_sealed_with_the_plugin_shows_it_in_stats() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("db.key");
    let db = dir.path().join("db");
    sealkv().arg("keygen").arg(&key).assert().success();
    let with_db = || {
        let mut c = sealkv();
        c.arg("--db").arg(&db).arg("--key-file").arg(&key);
        c
    };
    with_db()
        .args(["--algorithm", "aes-256-gcm-aws-lc", "init"])
        .assert()
        .success();
    with_db().args(["put", "user:1", "ada"]).assert().success();
    let stats = stdout(&with_db().arg("stats").assert().success());
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("algorithm") && l.contains("aes-256-gcm-aws-lc")),
        "{stats}"
    );
    let got = stdout(&with_db().args(["get", "user:1"]).assert().success());
    assert_eq!(got.trim(), "ada");
    with_db().arg("verify").assert().success();
    // A name no provider part holds is a usage error (exit 2) naming the
    // choices.
    let out = with_db()
        .args(["--algorithm", "rot13", "stats"])
        .assert()
        .code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("aes-256-gcm-aws-lc"), "{err}");
}
