//! The data commands and their exit codes, on real databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;

fn sealkv() -> Command {
    Command::cargo_bin("sealkv").unwrap()
}

/// A key file and an initialized encrypted database.
fn encrypted(dir: &Path) -> (String, String) {
    let key = dir.join("k.key");
    sealkv().arg("keygen").arg(&key).assert().success();
    let db = dir.join("db");
    sealkv()
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key)
        .arg("init")
        .assert()
        .success()
        .stdout("");
    (db.display().to_string(), key.display().to_string())
}

#[test]
fn put_get_delete_scan_flush_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    let k = |args: &[&str]| {
        let mut c = sealkv();
        c.args(["--db", &db, "--key-file", &key]).args(args);
        c
    };
    k(&["put", "user:1", "Ada"]).assert().success().stdout("");
    k(&["put", "user:2", "-"])
        .write_stdin("Grace")
        .assert()
        .success();
    k(&["put", "other", "x"]).assert().success();
    k(&["get", "user:1"]).assert().success().stdout("Ada\n");
    k(&["get", "--raw", "user:1"])
        .assert()
        .success()
        .stdout("Ada");
    k(&["get", "nope"]).assert().code(1).stdout("");
    k(&["scan", "--prefix", "user:"])
        .assert()
        .success()
        .stdout("user:1\tAda\nuser:2\tGrace\n");
    k(&["scan", "--start", "user:2", "--json"])
        .assert()
        .success()
        .stdout("{\"key\":\"user:2\",\"value\":\"Grace\"}\n");
    k(&["scan", "--limit", "1"])
        .assert()
        .success()
        .stdout("other\tx\n");
    k(&["delete", "user:1"]).assert().success();
    k(&["get", "user:1"]).assert().code(1);
    k(&["flush"]).assert().success();
    let out = k(&["stats"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("encrypt_at_rest       true"), "{text}");
    assert!(text.contains("aes-256-gcm"), "{text}");
    let key_hex = std::fs::read_to_string(&key).unwrap();
    assert!(!text.contains(key_hex.trim()), "stats shows no key");
    let json = k(&["stats", "--json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(v["encrypt_at_rest"], true);
    assert_eq!(v["algorithm"], "aes-256-gcm");
    assert!(v["last_seq"].as_u64().unwrap() >= 3, "{v}");
    assert!(v["data_keys"][0]["pages"].is_u64(), "{v}");
}

#[test]
fn key_problems_exit_3_and_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, _key) = encrypted(tmp.path());
    // No key for an encrypted database.
    let out = sealkv()
        .args(["--db", &db, "get", "k"])
        .assert()
        .code(3)
        .stdout("");
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("encrypted"), "{err}");
    // The wrong key.
    let other = tmp.path().join("other.key");
    sealkv().arg("keygen").arg(&other).assert().success();
    sealkv()
        .args(["--db", &db, "--key-file"])
        .arg(&other)
        .args(["get", "k"])
        .assert()
        .code(3);
    // A bad key file.
    let bad = tmp.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    sealkv()
        .args(["--db", &db, "--key-file"])
        .arg(&bad)
        .args(["get", "k"])
        .assert()
        .code(3);
}

#[test]
fn init_usage_and_existing_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let db = db.to_str().unwrap();
    // Neither a key nor --plaintext; both.
    sealkv().args(["--db", db, "init"]).assert().code(2);
    let key = tmp.path().join("k.key");
    sealkv().arg("keygen").arg(&key).assert().success();
    sealkv()
        .args(["--db", db, "--plaintext", "--key-file"])
        .arg(&key)
        .arg("init")
        .assert()
        .code(2);
    sealkv()
        .args(["--db", db, "--plaintext", "init"])
        .assert()
        .success();
    sealkv()
        .args(["--db", db, "--plaintext", "init"])
        .assert()
        .code(5);
    sealkv()
        .args(["--db", db, "put", "a", "b"])
        .assert()
        .success();
    sealkv()
        .args(["--db", db, "get", "a"])
        .assert()
        .success()
        .stdout("b\n");
}

#[test]
fn rotating_a_plaintext_database_exits_5_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let db = db.to_str().unwrap();
    sealkv()
        .args(["--db", db, "--plaintext", "init"])
        .assert()
        .success();
    for command in ["rotate-key", "reencrypt"] {
        let out = sealkv().args(["--db", db, command]).assert().code(5);
        let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(err.contains("plaintext"), "{command}: {err}");
    }
    let inside = Path::new(db).join("inside").display().to_string();
    let out = sealkv()
        .args(["--db", db, "backup", &inside])
        .assert()
        .code(5);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("backup destination"), "{err}");
}

#[test]
fn load_reads_tab_and_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let db = db.to_str().unwrap();
    sealkv()
        .args(["--db", db, "--plaintext", "init"])
        .assert()
        .success();
    let file = tmp.path().join("in.txt");
    std::fs::write(&file, "a\t1\n{\"key\":\"b\",\"value\":\"2\"}\nc\t3\n").unwrap();
    sealkv()
        .args(["--db", db, "load"])
        .arg(&file)
        .assert()
        .success();
    sealkv()
        .args(["--db", db, "scan"])
        .assert()
        .success()
        .stdout("a\t1\nb\t2\nc\t3\n");
    std::fs::write(&file, "no tab here\n").unwrap();
    let out = sealkv()
        .args(["--db", db, "load"])
        .arg(&file)
        .assert()
        .code(5);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("in.txt:1"), "{err}");
}

#[test]
fn a_second_writer_is_refused_with_exit_5() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let handle = sealkv::Db::open(&db).unwrap();
    sealkv()
        .args(["--db", db.to_str().unwrap(), "put", "a", "b"])
        .assert()
        .code(5);
    drop(handle);
}

#[test]
fn verify_exits_0_when_clean_and_4_on_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    let k = |args: &[&str]| {
        let mut c = sealkv();
        c.args(["--db", &db, "--key-file", &key]).args(args);
        c
    };
    for i in 0..200 {
        k(&["put", &format!("key{i}"), "value"]).assert().success();
    }
    k(&["flush"]).assert().success();
    k(&["verify"]).assert().success();
    let data = Path::new(&db).join(sealkv::layout::DATA_FILE);
    let mut bytes = std::fs::read(&data).unwrap();
    for at in (3 * 4096 + 100..bytes.len()).step_by(4096) {
        bytes[at] ^= 1;
    }
    std::fs::write(&data, &bytes).unwrap();
    let out = k(&["verify"]).assert().code(4);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains(sealkv::layout::DATA_FILE), "{err}");
}

#[test]
fn demo_runs_and_finds_no_plaintext() {
    let out = sealkv().arg("demo").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("texts: 0 found"), "{text}");
    assert!(text.contains("0 problems"), "{text}");
    assert!(text.contains("crypto-shredding"), "{text}");
    assert!(text.contains("data-key rotation"), "{text}");
    assert!(
        text.contains("hot backup")
            && text.contains("the copy verifies with 0 problems and reads the same (ok)"),
        "{text}"
    );
    assert!(text.contains("retired data keys [1]"), "{text}");
    assert!(text.contains("old master key now gets WrongKey"), "{text}");
}

#[test]
fn rotate_key_and_rekey() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    sealkv()
        .args(["--db", &db, "--key-file", &key, "put", "a", "1"])
        .assert()
        .success();
    sealkv()
        .args(["--db", &db, "--key-file", &key, "rotate-key"])
        .assert()
        .success()
        .stdout("active data key: 2\n");
    let out = sealkv()
        .args(["--db", &db, "--key-file", &key, "reencrypt"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("reencrypted 1 entries") && text.contains("retired data keys: 1"),
        "{text}"
    );
    let out = sealkv()
        .args(["--db", &db, "--key-file", &key, "stats"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let line = text.lines().find(|l| l.starts_with("data_keys")).unwrap();
    assert!(line.contains(" 2(") && !line.contains(" 1("), "{line}");
    let new = tmp.path().join("new.key");
    sealkv().arg("keygen").arg(&new).assert().success();
    sealkv()
        .args(["--db", &db, "--key-file", &key, "rekey", "--new-key-file"])
        .arg(&new)
        .assert()
        .success();
    sealkv()
        .args(["--db", &db, "--key-file", &key, "get", "a"])
        .assert()
        .code(3);
    sealkv()
        .args(["--db", &db, "--key-file"])
        .arg(&new)
        .args(["get", "a"])
        .assert()
        .success()
        .stdout("1\n");
}

#[test]
fn a_passphrase_from_the_environment_opens_and_a_wrong_one_is_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db").display().to_string();
    let with = |phrase: &str, args: &[&str]| {
        let mut c = sealkv();
        c.env("SEALKV_TEST_PASSPHRASE", phrase)
            .args(["--db", &db, "--passphrase-env", "SEALKV_TEST_PASSPHRASE"])
            .args(args);
        c
    };
    let good = "correct horse battery staple, and then some";
    with(good, &["init"]).assert().success();
    with(good, &["put", "k", "v"]).assert().success();
    with(good, &["get", "k"]).assert().success().stdout("v\n");
    let out = with("a wrong passphrase entirely", &["get", "k"])
        .assert()
        .code(3)
        .stdout("");
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(!err.contains("wrong passphrase entirely"), "{err}");
}

#[test]
fn keyspaces_keep_their_records_apart_and_drop_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    let k = |args: &[&str]| {
        let mut c = sealkv();
        c.args(["--db", &db, "--key-file", &key]).args(args);
        c
    };
    // Reading or deleting in a keyspace that does not exist creates none.
    k(&["--keyspace", "users", "get", "1"])
        .assert()
        .code(1)
        .stdout("");
    k(&["--keyspace", "users", "scan"])
        .assert()
        .success()
        .stdout("");
    k(&["--keyspace", "users", "delete", "1"])
        .assert()
        .success();
    k(&["keyspaces"]).assert().success().stdout("");

    k(&["put", "1", "default"]).assert().success();
    k(&["--keyspace", "users", "put", "1", "Ada"])
        .assert()
        .success();
    k(&["--keyspace", "orders", "put", "1", "book"])
        .assert()
        .success();
    let file = tmp.path().join("more.tsv");
    std::fs::write(&file, "2\tGrace\n3\tEdsger\n").unwrap();
    k(&["--keyspace", "users", "load"])
        .arg(&file)
        .assert()
        .success();
    k(&["keyspaces"])
        .assert()
        .success()
        .stdout("orders\nusers\n");
    k(&["--json", "keyspaces"])
        .assert()
        .success()
        .stdout("{\"keyspace\":\"orders\"}\n{\"keyspace\":\"users\"}\n");
    k(&["get", "1"]).assert().success().stdout("default\n");
    k(&["--keyspace", "users", "get", "1"])
        .assert()
        .success()
        .stdout("Ada\n");
    k(&["--keyspace", "users", "scan", "--start", "2"])
        .assert()
        .success()
        .stdout("2\tGrace\n3\tEdsger\n");
    k(&["scan"]).assert().success().stdout("1\tdefault\n");
    k(&["--keyspace", "orders", "delete", "1"])
        .assert()
        .success();
    k(&["--keyspace", "orders", "scan"])
        .assert()
        .success()
        .stdout("");

    k(&["keyspaces", "--drop", "users"])
        .assert()
        .success()
        .stdout("dropped keyspace users\n");
    k(&["keyspaces"]).assert().success().stdout("orders\n");
    k(&["--keyspace", "users", "scan"])
        .assert()
        .success()
        .stdout("");
    let out = k(&["keyspaces", "--drop", "users"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no keyspace \"users\""), "{err}");
    // A new keyspace of the dropped name starts empty.
    k(&["--keyspace", "users", "put", "9", "new"])
        .assert()
        .success();
    k(&["--keyspace", "users", "scan"])
        .assert()
        .success()
        .stdout("9\tnew\n");
    k(&["verify"]).assert().success();

    // An export of one keyspace imports as that keyspace alone.
    let archive = tmp.path().join("users.skva");
    k(&["--keyspace", "users", "export"])
        .arg(&archive)
        .assert()
        .success();
    let copy = tmp.path().join("copy").display().to_string();
    sealkv()
        .args(["--db", &copy, "--key-file", &key, "import"])
        .arg(&archive)
        .assert()
        .success();
    let c = |args: &[&str]| {
        let mut c = sealkv();
        c.args(["--db", &copy, "--key-file", &key]).args(args);
        c
    };
    c(&["keyspaces"]).assert().success().stdout("users\n");
    c(&["scan"]).assert().success().stdout("");
    c(&["--keyspace", "users", "scan"])
        .assert()
        .success()
        .stdout("9\tnew\n");
}

#[test]
fn a_malformed_load_creates_no_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    let file = tmp.path().join("bad.tsv");
    std::fs::write(&file, "1\tok\nno tab here\n").unwrap();
    sealkv()
        .args([
            "--db",
            &db,
            "--key-file",
            &key,
            "--keyspace",
            "users",
            "load",
        ])
        .arg(&file)
        .assert()
        .code(5);
    sealkv()
        .args(["--db", &db, "--key-file", &key, "keyspaces"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn a_keyspace_name_out_of_bounds_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    let long = "n".repeat(sealkv::MAX_KEYSPACE_NAME_LEN + 1);
    let out = sealkv()
        .args([
            "--db",
            &db,
            "--key-file",
            &key,
            "--keyspace",
            &long,
            "put",
            "k",
            "v",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keyspace name"), "{err}");
}
