//! The CLI's PKCS#11 options against a SoftHSM2 token made in a temporary
//! directory: `keygen --pkcs11`, every command with `--pkcs11-module`,
//! `--pkcs11-token` and `--pkcs11-key`, the PIN from the environment only,
//! rekey into and out of the token.
//!
//! Without SoftHSM2 the test says loudly that it is skipped, except under
//! CI (`CI` set to anything but `0` or `false`), where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{sealkv, stderr, stdout};

const TOKEN: &str = "sealkv-cli";
const PIN: &str = "271828";

fn module() -> Option<PathBuf> {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The module and a SoftHSM2 configuration naming a fresh token directory.
fn token(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let util = Command::new("softhsm2-util").arg("--version").output();
    let (Some(module), Ok(_)) = (module(), util) else {
        assert!(
            !in_ci(),
            "SoftHSM2 is not installed, and CI must run the PKCS#11 tests"
        );
        eprintln!(
            "\n*** SKIPPED: the CLI PKCS#11 test needs SoftHSM2 (apt-get install softhsm2) ***\n"
        );
        return None;
    };
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "31415926",
            "--pin",
            PIN,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((module, conf))
}

#[test]
fn pkcs11_keygen_open_rekey_and_wrong_labels_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((module, conf)) = token(tmp.path()) else {
        return;
    };
    let db = tmp.path().join("db");
    let hsm = |key: &str| {
        let mut c = sealkv();
        c.env("SOFTHSM2_CONF", &conf)
            .env("SEALKV_PKCS11_PIN", PIN)
            .arg("--db")
            .arg(&db)
            .arg("--pkcs11-module")
            .arg(&module)
            .args(["--pkcs11-token", TOKEN, "--pkcs11-key", key]);
        c
    };
    let all_output = std::cell::RefCell::new(String::new());
    let run_ok = |mut c: assert_cmd::Command, args: &[&str]| {
        let out = c.args(args).assert().success();
        let text = stdout(&out) + &stderr(&out);
        all_output.borrow_mut().push_str(&text);
        text
    };

    run_ok(hsm("master"), &["keygen", "--pkcs11"]);
    run_ok(hsm("master"), &["init"]);
    run_ok(hsm("master"), &["put", "user:1", "Ada"]);
    let got = run_ok(hsm("master"), &["get", "user:1"]);
    assert!(got.contains("Ada"), "{got}");
    run_ok(hsm("master"), &["verify"]);

    // A key label that is not in the token: the wrong key, exit 3.
    let out = hsm("other").args(["get", "user:1"]).assert().code(3);
    all_output.borrow_mut().push_str(&stderr(&out));
    // A PIN the token refuses: exit 3 as well.
    let out = hsm("master")
        .env("SEALKV_PKCS11_PIN", "000000")
        .args(["get", "user:1"])
        .assert()
        .code(3);
    all_output.borrow_mut().push_str(&stderr(&out));
    // The PIN is never an argument: there is no option for it.
    hsm("master")
        .args(["--pkcs11-pin", PIN, "get", "user:1"])
        .assert()
        .code(2);

    // Rekey to a second token key, then out to a key file and back in.
    run_ok(hsm("second"), &["keygen", "--pkcs11"]);
    run_ok(hsm("master"), &["rekey", "--new-pkcs11-key", "second"]);
    hsm("master").args(["get", "user:1"]).assert().code(3);
    let key_file = tmp.path().join("raw.key");
    sealkv().arg("keygen").arg(&key_file).assert().success();
    run_ok(
        hsm("second"),
        &["rekey", "--new-key-file", key_file.to_str().unwrap()],
    );
    let out = sealkv()
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key_file)
        .args(["get", "user:1"])
        .assert()
        .success();
    assert!(stdout(&out).contains("Ada"));
    let mut back = sealkv();
    back.env("SOFTHSM2_CONF", &conf)
        .env("SEALKV_PKCS11_PIN", PIN)
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key_file)
        .arg("--pkcs11-module")
        .arg(&module)
        .args(["--pkcs11-token", TOKEN]);
    run_ok(back, &["rekey", "--new-pkcs11-key", "master"]);
    let got = run_ok(hsm("master"), &["get", "user:1"]);
    assert!(got.contains("Ada"));

    // Export sealed under the token key alone, verify and import it with
    // the same options; another key label is the wrong key.
    let archive = tmp.path().join("export.skva");
    let archive_arg = archive.to_str().unwrap();
    run_ok(hsm("master"), &["export", archive_arg]);
    let checked = run_ok(hsm("master"), &["verify-archive", archive_arg]);
    assert!(checked.contains("1 records"), "{checked}");
    assert!(
        checked.contains("under its own archive key, wrapped by the pkcs11 wrapper's key"),
        "{checked}"
    );
    hsm("second")
        .args(["verify-archive", archive_arg])
        .assert()
        .code(3);
    let imported = tmp.path().join("imported");
    let mut into = sealkv();
    into.env("SOFTHSM2_CONF", &conf)
        .env("SEALKV_PKCS11_PIN", PIN)
        .arg("--db")
        .arg(&imported)
        .arg("--pkcs11-module")
        .arg(&module)
        .args(["--pkcs11-token", TOKEN, "--pkcs11-key", "master"]);
    run_ok(into, &["import", archive_arg]);
    let mut read = sealkv();
    read.env("SOFTHSM2_CONF", &conf)
        .env("SEALKV_PKCS11_PIN", PIN)
        .arg("--db")
        .arg(&imported)
        .arg("--pkcs11-module")
        .arg(&module)
        .args(["--pkcs11-token", TOKEN, "--pkcs11-key", "master"]);
    let got = run_ok(read, &["get", "user:1"]);
    assert!(got.contains("Ada"), "{got}");

    // A module that is not there: a clear error naming it.
    let out = sealkv()
        .env("SEALKV_PKCS11_PIN", PIN)
        .arg("--db")
        .arg(&db)
        .args(["--pkcs11-module", "/nonexistent/libmissing.so"])
        .args([
            "--pkcs11-token",
            TOKEN,
            "--pkcs11-key",
            "master",
            "get",
            "user:1",
        ])
        .assert()
        .code(6);
    assert!(
        stderr(&out).contains("/nonexistent/libmissing.so"),
        "{}",
        stderr(&out)
    );

    // The token gone (pulled out, a network HSM down): an outage, exit 6,
    // not the wrong key.
    let empty = tmp.path().join("no-tokens");
    std::fs::create_dir_all(&empty).unwrap();
    let gone = tmp.path().join("gone.conf");
    std::fs::write(
        &gone,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            empty.display()
        ),
    )
    .unwrap();
    let out = hsm("master")
        .env("SOFTHSM2_CONF", &gone)
        .args(["get", "user:1"])
        .assert()
        .code(6);
    assert!(stderr(&out).contains("unavailable"), "{}", stderr(&out));
    // The archive sealed under the token cannot be read without it: the
    // same outage, exit 6.
    let out = hsm("master")
        .env("SOFTHSM2_CONF", &gone)
        .args(["verify-archive", archive_arg])
        .assert()
        .code(6);
    all_output.borrow_mut().push_str(&stderr(&out));
    let help = stdout(&sealkv().arg("--help").assert().success());
    assert!(help.contains("6 key wrapper unreachable"), "{help}");

    assert!(
        !all_output.borrow().contains(PIN),
        "the PIN reached the output"
    );
}
