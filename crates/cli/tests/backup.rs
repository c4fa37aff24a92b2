//! `backup` and `restore` from the shell: round trip and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;

fn sealkv() -> Command {
    Command::cargo_bin("sealkv").unwrap()
}

fn keygen(path: &Path) -> String {
    sealkv().arg("keygen").arg(path).assert().success();
    path.display().to_string()
}

fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(out.get_output().stderr.clone()).unwrap()
}

#[test]
fn backup_then_restore_then_get_with_the_contract_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let key = keygen(&root.join("k.key"));
    let other = keygen(&root.join("other.key"));
    let db = root.join("db").display().to_string();
    let with_key = |args: &[&str]| {
        let mut c = sealkv();
        c.args(["--key-file", &key]).args(args);
        c
    };
    with_key(&["--db", &db, "init"]).assert().success();
    with_key(&["--db", &db, "put", "user:1", "Ada"])
        .assert()
        .success();
    with_key(&["--db", &db, "put", "user:2", "Grace"])
        .assert()
        .success();

    let backup = root.join("backup").display().to_string();
    let out = with_key(&["--db", &db, "backup", &backup])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("backup at sequence 2"), "{text}");
    assert!(text.contains("encrypted"), "{text}");
    // The live database writes on; the backup does not see it.
    with_key(&["--db", &db, "put", "user:3", "Barbara"])
        .assert()
        .success();

    // An existing destination: exit 5, one line on stderr, nothing on stdout.
    let out = with_key(&["--db", &db, "backup", &backup])
        .assert()
        .code(5)
        .stdout("");
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let restored = root.join("restored").display().to_string();
    // Wrong key: 3; no key: 3; nothing restored.
    sealkv()
        .args(["--key-file", &other, "restore", &backup, &restored])
        .assert()
        .code(3)
        .stdout("");
    sealkv()
        .args(["restore", &backup, &restored])
        .assert()
        .code(3)
        .stdout("");
    assert!(!Path::new(&restored).exists());

    let out = with_key(&["restore", &backup, &restored])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("new data key"), "{text}");
    with_key(&["--db", &restored, "get", "user:2"])
        .assert()
        .success()
        .stdout("Grace\n");
    with_key(&["--db", &restored, "get", "user:3"])
        .assert()
        .code(1);
    with_key(&["--db", &restored, "verify"]).assert().success();
    // Restoring again onto it: 5.
    with_key(&["restore", &backup, &restored])
        .assert()
        .code(5)
        .stdout("");

    // A damaged backup: 4, and nothing restored.
    let data = root.join("backup").join(sealkv::layout::DATA_FILE);
    let mut bytes = std::fs::read(&data).unwrap();
    for page in 3..bytes.len() / 4096 {
        let p = &mut bytes[page * 4096..(page + 1) * 4096];
        if p.iter().any(|&b| b != 0) {
            p[200] ^= 1;
        }
    }
    std::fs::write(&data, &bytes).unwrap();
    let again = root.join("again").display().to_string();
    with_key(&["restore", &backup, &again])
        .assert()
        .code(4)
        .stdout("");
    assert!(!Path::new(&again).exists());
}

#[test]
fn backup_of_a_missing_database_fails_and_a_plaintext_one_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let missing = root.join("none").display().to_string();
    let dest = root.join("b").display().to_string();
    sealkv()
        .args(["--db", &missing, "backup", &dest])
        .assert()
        .code(5)
        .stdout("");
    assert!(!Path::new(&dest).exists());
    // A plaintext database backs up and restores without a key.
    let db = root.join("plain").display().to_string();
    sealkv()
        .args(["--db", &db, "init", "--plaintext"])
        .assert()
        .success();
    sealkv()
        .args(["--db", &db, "put", "a", "1"])
        .assert()
        .success();
    sealkv()
        .args(["--db", &db, "backup", &dest])
        .assert()
        .success();
    let restored = root.join("r").display().to_string();
    let out = sealkv()
        .args(["restore", &dest, &restored])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!text.contains("new data key"), "{text}");
    sealkv()
        .args(["--db", &restored, "get", "a"])
        .assert()
        .success()
        .stdout("1\n");
}
