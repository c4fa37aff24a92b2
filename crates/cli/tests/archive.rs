//! The archive commands from the shell: export, import, verify-archive,
//! and their exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;

fn sealkv() -> Command {
    Command::cargo_bin("sealkv").unwrap()
}

fn keygen(path: &Path) {
    sealkv().arg("keygen").arg(path).assert().success();
}

fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(out.get_output().stderr.clone()).unwrap()
}

fn stdout(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// An encrypted database with a few records, and its key file.
fn setup(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("db.key");
    keygen(&key);
    let db = dir.join("db");
    sealkv()
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key)
        .arg("init")
        .assert()
        .success();
    for (k, v) in [("user:1", "ada"), ("user:2", "grace"), ("zeta", "last")] {
        sealkv()
            .arg("--db")
            .arg(&db)
            .arg("--key-file")
            .arg(&key)
            .args(["put", k, v])
            .assert()
            .success();
    }
    (db, key)
}

fn scan(db: &Path, key: Option<&Path>) -> String {
    let mut c = sealkv();
    c.arg("--db").arg(db);
    if let Some(k) = key {
        c.arg("--key-file").arg(k);
    }
    stdout(&c.arg("scan").assert().success())
}

#[test]
fn export_verify_import_round_trip_under_the_database_key() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = setup(dir.path());
    let file = dir.path().join("a.skva");
    let out = sealkv()
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key)
        .arg("export")
        .arg(&file)
        .assert()
        .success();
    assert!(stdout(&out).contains("3 records"), "{}", stdout(&out));
    let out = sealkv()
        .arg("--key-file")
        .arg(&key)
        .arg("verify-archive")
        .arg(&file)
        .assert()
        .success();
    let text = stdout(&out);
    assert!(text.starts_with("ok: 3 records"), "{text}");
    assert!(
        text.contains("sealed with aes-256-gcm under a raw key"),
        "{text}"
    );

    // Migration: import into a ChaCha database under a new key, the archive
    // opened with the old one.
    let new_key = dir.path().join("new.key");
    keygen(&new_key);
    let dest = dir.path().join("copy");
    sealkv()
        .arg("--db")
        .arg(&dest)
        .arg("--key-file")
        .arg(&new_key)
        .args(["--algorithm", "chacha20-poly1305", "import"])
        .arg(&file)
        .arg("--archive-key-file")
        .arg(&key)
        .assert()
        .success();
    assert_eq!(scan(&dest, Some(&new_key)), scan(&db, Some(&key)));
    assert_eq!(
        scan(&dest, Some(&new_key)),
        "user:1\tada\nuser:2\tgrace\nzeta\tlast\n"
    );
    // The new database is encrypted: without a key it does not open.
    sealkv().arg("--db").arg(&dest).arg("scan").assert().code(3);

    // Encrypted -> plaintext: the key options open the archive only.
    let plain = dir.path().join("plain");
    sealkv()
        .arg("--db")
        .arg(&plain)
        .arg("--key-file")
        .arg(&key)
        .args(["--plaintext", "import"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(scan(&plain, None), scan(&db, Some(&key)));

    // An existing destination is refused (exit 5) and left alone.
    let out = sealkv()
        .arg("--db")
        .arg(&dest)
        .arg("--key-file")
        .arg(&new_key)
        .arg("import")
        .arg(&file)
        .arg("--archive-key-file")
        .arg(&key)
        .assert()
        .code(5)
        .stdout("");
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // So is an existing archive file.
    sealkv()
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key)
        .arg("export")
        .arg(&file)
        .assert()
        .code(5);
}

#[test]
fn a_separate_archive_key_and_a_plaintext_export() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = setup(dir.path());
    let backup_key = dir.path().join("backup.key");
    keygen(&backup_key);
    let file = dir.path().join("b.skva");
    sealkv()
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key)
        .arg("export")
        .arg(&file)
        .arg("--archive-key-file")
        .arg(&backup_key)
        .assert()
        .success();
    sealkv()
        .arg("verify-archive")
        .arg(&file)
        .arg("--archive-key-file")
        .arg(&backup_key)
        .assert()
        .success();
    // The database key is not the archive key: exit 3, nothing on stdout.
    let out = sealkv()
        .arg("--key-file")
        .arg(&key)
        .arg("verify-archive")
        .arg(&file)
        .assert()
        .code(3)
        .stdout("");
    assert!(stderr(&out).contains("wrong key"), "{}", stderr(&out));
    // No key at all for a sealed archive: exit 3.
    sealkv().arg("verify-archive").arg(&file).assert().code(3);

    // Plaintext export: loud, readable, verifiable without a key.
    let pfile = dir.path().join("p.skva");
    let out = sealkv()
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key)
        .arg("export")
        .arg(&pfile)
        .arg("--plaintext-export")
        .assert()
        .success();
    assert!(stderr(&out).contains("NOT encrypted"), "{}", stderr(&out));
    let bytes = std::fs::read(&pfile).unwrap();
    assert!(bytes.windows(5).any(|w| w == b"grace"));
    assert!(
        !std::fs::read(&file)
            .unwrap()
            .windows(5)
            .any(|w| w == b"grace")
    );
    let out = sealkv()
        .arg("verify-archive")
        .arg(&pfile)
        .assert()
        .success();
    assert!(stdout(&out).contains("PLAINTEXT"), "{}", stdout(&out));
    // Plaintext archive -> plaintext database needs no key.
    let dest = dir.path().join("p-db");
    sealkv()
        .arg("--db")
        .arg(&dest)
        .args(["--plaintext", "import"])
        .arg(&pfile)
        .assert()
        .success();
    assert_eq!(scan(&dest, None), scan(&db, Some(&key)));
    // A key given for a plaintext archive: refused (anyone can write one),
    // exit 4, nothing imported; --plaintext-archive reads it on purpose.
    let out = sealkv()
        .arg("--key-file")
        .arg(&key)
        .arg("verify-archive")
        .arg(&pfile)
        .assert()
        .code(4)
        .stdout("");
    assert!(stderr(&out).contains("NOT sealed"), "{}", stderr(&out));
    let enc = dir.path().join("p-enc");
    sealkv()
        .arg("--db")
        .arg(&enc)
        .arg("--key-file")
        .arg(&key)
        .arg("import")
        .arg(&pfile)
        .assert()
        .code(4);
    assert!(!enc.exists());
    sealkv()
        .arg("--db")
        .arg(&enc)
        .arg("--key-file")
        .arg(&key)
        .args(["import", "--plaintext-archive"])
        .arg(&pfile)
        .assert()
        .success();
    assert_eq!(scan(&enc, Some(&key)), scan(&db, Some(&key)));
    // Neither a key nor --plaintext for the new database: usage error.
    sealkv()
        .arg("--db")
        .arg(dir.path().join("p-db2"))
        .arg("import")
        .arg(&pfile)
        .assert()
        .code(2);
    // A plaintext database exported without a key nor --plaintext-export:
    // refused (exports are sealed by default), exit 3.
    sealkv()
        .arg("--db")
        .arg(&dest)
        .arg("export")
        .arg(dir.path().join("x.skva"))
        .assert()
        .code(3);
    assert!(!dir.path().join("x.skva").exists());
}

#[test]
fn damaged_archives_exit_4_and_import_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = setup(dir.path());
    let file = dir.path().join("a.skva");
    sealkv()
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key)
        .arg("export")
        .arg(&file)
        .assert()
        .success();
    let bytes = std::fs::read(&file).unwrap();

    // Truncated.
    let cut = dir.path().join("cut.skva");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let out = sealkv()
        .arg("--key-file")
        .arg(&key)
        .arg("verify-archive")
        .arg(&cut)
        .assert()
        .code(4)
        .stdout("");
    let err = stderr(&out);
    assert!(err.contains("truncated") && err.contains("chunk"), "{err}");

    // A flipped byte in a chunk.
    let mut flipped = bytes.clone();
    flipped[200] ^= 0x40;
    let bad = dir.path().join("bad.skva");
    std::fs::write(&bad, &flipped).unwrap();
    let out = sealkv()
        .arg("--key-file")
        .arg(&key)
        .arg("verify-archive")
        .arg(&bad)
        .assert()
        .code(4);
    assert!(stderr(&out).contains("chunk 0"), "{}", stderr(&out));
    let dest = dir.path().join("dest");
    sealkv()
        .arg("--db")
        .arg(&dest)
        .arg("--key-file")
        .arg(&key)
        .arg("import")
        .arg(&bad)
        .assert()
        .code(4);
    assert!(!dest.exists());

    // Not an archive at all, and a missing file.
    let junk = dir.path().join("junk.skva");
    std::fs::write(&junk, vec![7u8; 500]).unwrap();
    sealkv().arg("verify-archive").arg(&junk).assert().code(4);
    sealkv()
        .arg("verify-archive")
        .arg(dir.path().join("absent.skva"))
        .assert()
        .code(5);
    // The key never shows in errors.
    let hex = std::fs::read_to_string(&key).unwrap();
    assert!(!err.contains(hex.trim()));
}
