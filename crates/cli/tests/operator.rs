//! The command line as an operator meets it: output that cannot be
//! written, bytes that must survive `scan` then `load`, `load`'s checks and
//! batches, failed writes that name their cause, read-only media, what
//! killed runs leave, `init` in a foreign directory, the engine's warnings,
//! key files.
//!
//! `SEALKV_TEST_BIN=PATH cargo test -p sealkv-cli --test operator` runs
//! them against another build of the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use support::{contents, limited, names, os, plaintext_db, process, sealkv, stderr, stdout};

/// A key file and an encrypted database with one record.
fn encrypted(dir: &Path) -> (String, String) {
    let key = dir.join("k.key");
    sealkv().arg("keygen").arg(&key).assert().success();
    let db = dir.join("db");
    let (db, key) = (db.display().to_string(), key.display().to_string());
    sealkv()
        .args(["--db", &db, "--key-file", &key, "init"])
        .assert()
        .success();
    sealkv()
        .args(["--db", &db, "--key-file", &key, "put", "user:1", "Ada"])
        .assert()
        .success();
    (db, key)
}

#[cfg(target_os = "linux")]
#[test]
fn output_that_cannot_be_written_is_exit_5() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    let full = || std::fs::File::create("/dev/full").unwrap();
    for args in [
        &["get", "user:1"][..],
        &["get", "--raw", "user:1"],
        &["scan"],
        &["--json", "scan"],
        &["stats"],
        &["--json", "stats"],
        &["verify"],
    ] {
        let out = process()
            .args(["--db", &db, "--key-file", &key])
            .args(args)
            .stdout(full())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output"),
            "{args:?}: {err}"
        );
    }
    // Help too.
    let out = process().arg("--help").stdout(full()).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    // A command that worked but whose warning was lost does not claim
    // success (a key file others can read draws a warning)...
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = process()
            .args(["--db", &db, "--key-file", &key, "get", "user:1"])
            .stderr(full())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5));
        assert_eq!(out.stdout, b"Ada\n", "the value itself got out");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // ...and a command that failed keeps its own code when its message is
    // lost.
    let out = process()
        .args(["--db", &db, "--key-file", &key, "get", "absent"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// Records that the old tab format changed or lost.
fn tricky_records() -> BTreeMap<Vec<u8>, Vec<u8>> {
    [
        (&b"user\t1"[..], &b"secret"[..]),
        (b"cr", b"ends in a carriage return\r"),
        (b"lf", b"two\nlines"),
        (b"\xff\xfe\x00binary key", b"\x80\x81 invalid utf-8 \xc3"),
        (b"{looks like json}", b"{\"key\":\"x\",\"value\":\"y\"}"),
        (b"back\\slash \\t", b"\\x41"),
        (b"", b""),
        (b" ", b"   "),
        ("bidi \u{202e}reversed".as_bytes(), "nbsp\u{a0}".as_bytes()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_vec(), v.to_vec()))
    .collect()
}

/// `scan` (with `flags`) of `from` into a file, then `load` (with the same
/// flags) of it into a new database; returns what the new one holds.
fn scan_then_load(
    root: &Path,
    from: &Path,
    flags: &[&str],
    n: usize,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let out = sealkv()
        .arg("--db")
        .arg(from)
        .args(flags)
        .arg("scan")
        .assert()
        .success();
    let file = root.join(format!("dump{n}"));
    std::fs::write(&file, &out.get_output().stdout).unwrap();
    let to = root.join(format!("copy{n}"));
    sealkv()
        .arg("--db")
        .arg(&to)
        .args(["--plaintext", "init"])
        .assert()
        .success();
    sealkv()
        .arg("--db")
        .arg(&to)
        .args(flags)
        .arg("load")
        .arg(&file)
        .assert()
        .success();
    contents(&to)
}

#[test]
fn scan_then_load_round_trips_any_bytes_in_every_form() {
    let tmp = tempfile::tempdir().unwrap();
    let from = tmp.path().join("from");
    let records = tricky_records();
    plaintext_db(&from, &records);
    for (n, flags) in [&[][..], &["--json"], &["--hex"], &["--hex", "--json"]]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            scan_then_load(tmp.path(), &from, flags, n),
            records,
            "{flags:?}"
        );
    }
    // The escaped text, as promised.
    let out = sealkv()
        .arg("--db")
        .arg(&from)
        .args(["scan", "--prefix", "user"])
        .assert()
        .success();
    assert_eq!(stdout(&out), "user\\t1\tsecret\n");
    let out = sealkv()
        .arg("--db")
        .arg(&from)
        .args(["get", "cr"])
        .assert()
        .success();
    assert_eq!(stdout(&out), "ends in a carriage return\\r\n");
    // Binary keys and values through arguments (--hex) and standard input.
    let db = from.display().to_string();
    sealkv()
        .args(["--db", &db, "--hex", "put", "00ff", "0a0d"])
        .assert()
        .success();
    sealkv()
        .args(["--db", &db, "--hex", "get", "00ff"])
        .assert()
        .success()
        .stdout("0a0d\n");
    sealkv()
        .args(["--db", &db, "put", "blob", "-"])
        .write_stdin(&b"\x00\x01\xff\r\n"[..])
        .assert()
        .success();
    sealkv()
        .args(["--db", &db, "get", "--raw", "blob"])
        .assert()
        .success()
        .stdout(&b"\x00\x01\xff\r\n"[..]);
    sealkv()
        .args(["--db", &db, "--hex", "put", "zz", "00"])
        .assert()
        .code(2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Random bytes survive `scan` then `load`, as text and as JSON.
    #[test]
    fn random_records_survive_scan_then_load(
        records in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 0..24),
            proptest::collection::vec(any::<u8>(), 0..64),
            1..40,
        )
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("from");
        plaintext_db(&from, &records);
        prop_assert_eq!(&scan_then_load(tmp.path(), &from, &[], 0), &records);
        prop_assert_eq!(&scan_then_load(tmp.path(), &from, &["--json"], 1), &records);
    }
}

/// A new plaintext database at `root/name`.
fn empty_db(root: &Path, name: &str) -> String {
    let db = root.join(name).display().to_string();
    sealkv()
        .args(["--db", &db, "--plaintext", "init"])
        .assert()
        .success();
    db
}

#[test]
fn load_checks_every_line_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let db = empty_db(tmp.path(), "db");
    let file = tmp.path().join("in.txt");
    let load = |text: &[u8]| {
        std::fs::write(&file, text).unwrap();
        sealkv()
            .args(["--db", &db, "load"])
            .arg(&file)
            .assert()
            .code(5)
    };
    for (text, line, says) in [
        (&b"a\t1\n   \nb\t2\n"[..], 2, "blank"),
        (b"a\t1\n\nb\t2\n", 2, "blank"),
        (b"a\t1\r\nb\t2\r\n", 1, "carriage return"),
        (b"user\t1\tsecret\n", 1, "more than one TAB"),
        (b"a\t\\q\n", 1, "unknown escape"),
    ] {
        let out = load(text);
        assert!(
            stderr(&out).contains(&format!("in.txt:{line}:")),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    // A bad line deep in the file: nothing before it was written either.
    let mut text = String::new();
    for i in 1..=5000 {
        if i == 3500 {
            text.push_str("no tab on this line\n");
        } else {
            text.push_str(&format!("key{i:05}\tvalue{i}\n"));
        }
    }
    let out = load(text.as_bytes());
    assert!(stderr(&out).contains("in.txt:3500:"), "{}", stderr(&out));
    assert!(contents(Path::new(&db)).is_empty());
}

#[test]
fn load_writes_batches_under_the_limit_or_all_at_once_with_atomic() {
    let tmp = tempfile::tempdir().unwrap();
    // 131 records of 1 MiB: each within the value limit, together over the
    // engine's 128 MiB batch limit.
    let file = tmp.path().join("big.tsv");
    let value = "v".repeat(1 << 20);
    let mut text = String::with_capacity(131 * ((1 << 20) + 16));
    for i in 0..131 {
        text.push_str(&format!("key{i:03}\t{value}\n"));
    }
    std::fs::write(&file, &text).unwrap();
    drop(text);
    let db = empty_db(tmp.path(), "db");
    let out = sealkv()
        .args(["--db", &db, "load"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(
        stdout(&out),
        format!(
            "loaded 131 records from {} in 44 batch(es)\n",
            file.display()
        )
    );
    let got = contents(Path::new(&db));
    assert_eq!(got.len(), 131);
    assert!(got.values().all(|v| v.len() == 1 << 20));
    // All or nothing cannot be had over the limit: refused before writing.
    let db = empty_db(tmp.path(), "atomic");
    let out = sealkv()
        .args(["--db", &db, "load", "--atomic"])
        .arg(&file)
        .assert()
        .code(5);
    assert!(stderr(&out).contains("batch limit"), "{}", stderr(&out));
    assert!(contents(Path::new(&db)).is_empty());

    // --batch-size splits a small file; --atomic takes it in one.
    let small = tmp.path().join("small.tsv");
    let lines: String = (0..10)
        .map(|i| format!("k{i}\t{}\n", "x".repeat(1000)))
        .collect();
    std::fs::write(&small, lines).unwrap();
    let db2 = empty_db(tmp.path(), "db2");
    sealkv()
        .args(["--db", &db2, "load", "--batch-size", "4096"])
        .arg(&small)
        .assert()
        .success()
        .stdout(format!(
            "loaded 10 records from {} in 3 batch(es)\n",
            small.display()
        ));
    let db3 = empty_db(tmp.path(), "db3");
    sealkv()
        .args(["--db", &db3, "load", "--atomic"])
        .arg(&small)
        .assert()
        .success()
        .stdout(format!(
            "loaded 10 records from {} in 1 batch(es)\n",
            small.display()
        ));
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_names_its_os_cause_and_what_was_committed() {
    let tmp = tempfile::tempdir().unwrap();
    // 12,000 records of about 500 bytes: batches of 4 MiB.
    let file = tmp.path().join("in.tsv");
    let lines: String = (0..12_000)
        .map(|i| format!("key{i:05}\t{}\n", "v".repeat(500)))
        .collect();
    std::fs::write(&file, lines).unwrap();

    // A full disk, as a file-size limit: the WAL cannot grow past 5 MB,
    // so the second batch fails part way.
    let db = empty_db(tmp.path(), "db");
    let args = ["--db", &db, "load", file.to_str().unwrap()];
    let out = limited(Some(5_000_000), None, true, &os(&args));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("File too large (os error 27)"), "{err}");
    assert!(err.contains("may or may not be applied"), "{err}");
    // "load committed N records (lines 1-N of FILE); lines A-B may or may
    // not be applied"
    let committed: u64 = err
        .split("load committed ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no commit report: {err}"));
    let doubt_end: u64 = err
        .split(" may or may not be applied (reopen the database and check them)")
        .next()
        .and_then(|s| s.rsplit('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no batch in doubt: {err}"));
    assert!(
        committed > 0 && committed < doubt_end && doubt_end <= 12_000,
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "lines {}-{doubt_end} may or may not",
            committed + 1
        )),
        "{err}"
    );
    assert!(err.contains(&format!("(lines 1-{committed} of")), "{err}");
    // Reopened, it holds every committed line, maybe the batch in doubt,
    // nothing after it, and verifies clean.
    sealkv().args(["--db", &db, "flush"]).assert().success();
    sealkv().args(["--db", &db, "verify"]).assert().success();
    let got = contents(Path::new(&db));
    let n = got.len() as u64;
    assert!(n == committed || n == doubt_end, "{n} records, {err}");
    for i in 0..n {
        assert!(got.contains_key(format!("key{i:05}").as_bytes()));
    }

    // Too many open files: the records are committed, closing fails, and
    // the message says both.
    let db = empty_db(tmp.path(), "db2");
    let args = ["--db", &db, "load", file.to_str().unwrap()];
    let out = limited(None, Some(8), false, &os(&args));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("Too many open files (os error 24)"), "{err}");
    assert!(
        err.contains("all 12000 records committed before closing the database failed"),
        "{err}"
    );
    assert_eq!(contents(Path::new(&db)).len(), 12_000);
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_import_names_its_os_cause_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let records: BTreeMap<Vec<u8>, Vec<u8>> = (0..12_000u32)
        .map(|i| (format!("key{i:05}").into_bytes(), vec![b'v'; 500]))
        .collect();
    let src = tmp.path().join("src");
    plaintext_db(&src, &records);
    let archive = tmp.path().join("a.skva");
    sealkv()
        .arg("--db")
        .arg(&src)
        .arg("export")
        .arg("--plaintext-export")
        .arg(&archive)
        .assert()
        .success();
    // A full disk, as a file-size limit: the new database's WAL cannot
    // grow past 3 MB.
    let dest = tmp.path().join("imported");
    let args = [
        "--db",
        dest.to_str().unwrap(),
        "--plaintext",
        "import",
        "--plaintext-archive",
        archive.to_str().unwrap(),
    ];
    let out = limited(Some(3_000_000), None, true, &os(&args));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("File too large (os error 27)"), "{err}");
    // Nothing was made: no "reopen the database", no destination, no
    // scratch left behind.
    assert!(
        err.contains(&format!(
            "nothing was imported: {} was not created",
            dest.display()
        )),
        "{err}"
    );
    assert!(!err.contains("reopen"), "{err}");
    assert!(!dest.exists());
    assert!(scratch_of(&dest).is_empty(), "{:?}", scratch_of(&dest));
}

/// Runs `sealkv ARGS` with `dir` read-only: permission bits for a user
/// they bind; for root, whom they do not, a read-only bind mount in a
/// private mount namespace (`unshare`, util-linux).
#[cfg(target_os = "linux")]
fn on_read_only(dir: &Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    let set = |mode_dir: u32, mode_file: u32| {
        for e in walk(dir) {
            let mode = if e.is_dir() { mode_dir } else { mode_file };
            std::fs::set_permissions(&e, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    set(0o500, 0o400);
    // Whether the bits bind this user: can it still create a file there?
    let probe = dir.join("write-probe");
    let bound = std::fs::File::create(&probe).is_err();
    let _ = std::fs::remove_file(&probe);
    let out = if bound {
        process().args(args).output().unwrap()
    } else {
        std::process::Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg("mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && shift && exec \"$@\"")
            .arg("sh")
            .arg(dir)
            .arg(support::bin())
            .args(args)
            .output()
            .unwrap()
    };
    set(0o700, 0o600);
    assert!(
        bound || !String::from_utf8_lossy(&out.stderr).contains("mount:"),
        "cannot make a read-only mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[cfg(target_os = "linux")]
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[cfg(target_os = "linux")]
#[test]
fn read_commands_work_on_read_only_media() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    sealkv()
        .args(["--db", &db, "--key-file", &key, "flush"])
        .assert()
        .success();
    let dir = Path::new(&db);
    let before = names(dir);
    let with_key = |args: &[&str]| {
        let mut v = vec!["--db", &db, "--key-file", &key];
        v.extend_from_slice(args);
        on_read_only(dir, &v)
    };
    for (args, want) in [
        (&["get", "user:1"][..], "Ada\n"),
        (&["scan"], "user:1\tAda\n"),
        (&["verify"], "ok: 1 entries"),
        (&["stats"], "encrypt_at_rest       true"),
    ] {
        let out = with_key(args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(want), "{args:?}: {text}");
    }
    // A write is refused, naming the cause.
    let out = with_key(&["put", "a", "b"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(names(dir), before, "nothing was created");
    // Without its lock file, which cannot be made there, it says why.
    std::fs::remove_file(dir.join(sealkv::layout::LOCK_FILE)).unwrap();
    let out = with_key(&["get", "user:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("LOCK") && err.contains("missing and cannot be created"),
        "{err}"
    );
}

/// The hidden siblings of `dest` (`.NAME.…`): what a run building it
/// leaves if killed.
fn scratch_of(dest: &Path) -> Vec<String> {
    let name = dest.file_name().unwrap().to_str().unwrap();
    names(dest.parent().unwrap())
        .into_iter()
        .filter(|n| n.starts_with(&format!(".{name}.")))
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn killed_backup_export_restore_and_import_leave_nothing_after_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    let records: BTreeMap<Vec<u8>, Vec<u8>> = (0..3000u32)
        .map(|i| (format!("key{i:05}").into_bytes(), vec![b'v'; 300]))
        .collect();
    plaintext_db(&src, &records);
    sealkv()
        .arg("--db")
        .arg(&src)
        .arg("flush")
        .assert()
        .success();
    let s = src.to_str().unwrap();
    let at = |n: &str| root.join(n).display().to_string();
    let (backup, restored, archive, imported, whole) = (
        at("backup"),
        at("restored"),
        at("a.skva"),
        at("imported"),
        at("whole.skva"),
    );
    sealkv()
        .args(["--db", s, "export", "--plaintext-export", &whole])
        .assert()
        .success();
    // Each killed by SIGXFSZ part way through writing its output.
    let runs: [(&str, Vec<&str>); 4] = [
        (&backup, vec!["--db", s, "backup", &backup]),
        (
            &archive,
            vec!["--db", s, "export", "--plaintext-export", &archive],
        ),
        (
            &imported,
            vec![
                "--db",
                &imported,
                "--plaintext",
                "import",
                "--plaintext-archive",
                &whole,
            ],
        ),
        (&restored, vec!["restore", &backup, &restored]),
    ];
    for (dest, args) in &runs {
        if *dest == restored {
            // A restore needs a backup to restore; this one removes what
            // the killed one left.
            let out = sealkv()
                .args(["--db", s, "backup", &backup])
                .assert()
                .success();
            assert!(
                stderr(&out).contains("removed what an interrupted"),
                "{}",
                stderr(&out)
            );
        }
        let out = limited(Some(300_000), None, false, &os(args));
        assert_eq!(out.status.code(), None, "{dest}: killed by a signal");
        let dest = Path::new(dest);
        let left = scratch_of(dest);
        assert_eq!(left.len(), 1, "{}: {left:?}", dest.display());
        assert!(!dest.exists() || dest == Path::new(&backup));
        // verify (of the database or the archive) mentions it.
        if dest != Path::new(&archive) && dest != Path::new(&backup) {
            let out = sealkv()
                .arg("--db")
                .arg(dest)
                .arg("verify")
                .assert()
                .code(5);
            assert!(stdout(&out).contains(&left[0]), "{}", stdout(&out));
        }
    }
    // The next run of each removes what the killed one left.
    for (dest, args) in &runs {
        if *dest == backup {
            continue;
        }
        let out = sealkv().args(args).assert().success();
        assert!(
            stderr(&out).contains("removed what an interrupted"),
            "{}",
            stderr(&out)
        );
        assert!(scratch_of(Path::new(dest)).is_empty(), "{dest}");
    }
    assert!(
        scratch_of(Path::new(&backup)).is_empty(),
        "the second backup removed it"
    );
    let out = sealkv()
        .args(["verify-archive", "--plaintext-archive", &archive])
        .assert()
        .success();
    assert!(!stdout(&out).contains("note:"), "{}", stdout(&out));
    assert_eq!(contents(Path::new(&imported)), records);
    assert_eq!(contents(Path::new(&restored)), records);

    // A look-alike holding what sealkv does not write is left alone.
    let dest = root.join("other");
    let fake = root.join(".other.sealkv-tmp-1-2-3");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(fake.join("notes.txt"), "mine").unwrap();
    let out = sealkv()
        .args(["--db", s, "backup"])
        .arg(&dest)
        .assert()
        .success();
    assert!(stderr(&out).contains("left alone"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(fake.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn init_refuses_a_foreign_directory_and_touches_nothing_in_it() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("k.key");
    sealkv().arg("keygen").arg(&key).assert().success();
    // Another program's directory with a `wal/` folder: not "corruption".
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("wal")).unwrap();
    std::fs::write(other.join("wal").join("log.txt"), "theirs").unwrap();
    let out = sealkv()
        .arg("--db")
        .arg(&other)
        .arg("--key-file")
        .arg(&key)
        .arg("init")
        .assert()
        .code(5);
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(names(&other), ["wal"]);
    // A foreign KEYS file is neither renamed nor read as ours.
    let keys = tmp.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("KEYS"), "someone else's keys").unwrap();
    sealkv()
        .arg("--db")
        .arg(&keys)
        .arg("--key-file")
        .arg(&key)
        .arg("init")
        .assert()
        .code(5);
    assert_eq!(names(&keys), ["KEYS"]);
    assert_eq!(
        std::fs::read_to_string(keys.join("KEYS")).unwrap(),
        "someone else's keys"
    );
    // An empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    sealkv()
        .arg("--db")
        .arg(&empty)
        .args(["--plaintext", "init"])
        .assert()
        .success();
}

#[test]
fn the_engines_warnings_reach_standard_error() {
    let tmp = tempfile::tempdir().unwrap();
    let db = empty_db(tmp.path(), "db");
    sealkv()
        .args(["--db", &db, "put", "a", "1"])
        .assert()
        .success();
    // A torn tail: half a record after the last one, as a crash leaves.
    let wal = Path::new(&db).join(sealkv::layout::WAL_DIR);
    let last = names(&wal).pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(wal.join(&last))
        .unwrap();
    std::io::Write::write_all(&mut f, &[0x5a; 200]).unwrap();
    drop(f);
    let out = sealkv().args(["--db", &db, "get", "a"]).assert().success();
    let err = stderr(&out);
    assert!(err.starts_with("sealkv: warning: "), "{err}");
    assert!(err.contains("torn tail") && err.contains(&last), "{err}");
    sealkv()
        .args(["--db", &db, "-q", "get", "a"])
        .assert()
        .success()
        .stderr("");
    let out = sealkv()
        .args(["--db", &db, "-vv", "get", "a"])
        .assert()
        .success();
    assert!(
        stderr(&out).contains("sealkv: debug: database opened"),
        "{}",
        stderr(&out)
    );
    sealkv()
        .args(["--db", &db, "-v", "-q", "get", "a"])
        .assert()
        .code(2);
}

#[test]
fn key_files_and_algorithms() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let get = || {
            sealkv()
                .args(["--db", &db, "--key-file", &key, "get", "user:1"])
                .assert()
                .success()
        };
        assert_eq!(stderr(&get()), "", "a private key file draws no warning");
        for (mode, who) in [(0o640, "its group"), (0o604, "others")] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = stderr(&get());
            assert!(
                err.starts_with("sealkv: warning: ")
                    && err.contains(who)
                    && err.contains("chmod 600"),
                "{err}"
            );
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Every algorithm of the provider is listed and can be chosen.
    let help = stdout(&sealkv().args(["init", "--help"]).assert().success());
    for alg in sealkv::crypto::EncryptionAlgorithm::ALL {
        assert!(help.contains(alg.name()), "{alg}: {help}");
        let db = tmp.path().join(alg.name()).display().to_string();
        sealkv()
            .args([
                "--db",
                &db,
                "--key-file",
                &key,
                "--algorithm",
                alg.name(),
                "init",
            ])
            .assert()
            .success();
        let out = sealkv()
            .args(["--db", &db, "--key-file", &key, "--json", "stats"])
            .assert()
            .success();
        let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(v["algorithm"], alg.name());
    }
    sealkv()
        .args(["--db", &db, "--algorithm", "rot13", "init"])
        .assert()
        .code(2);
}

#[cfg(target_os = "linux")]
#[test]
fn keygen_leaves_no_file_when_it_cannot_write_it_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("k.key");
    let out = limited(
        Some(10),
        None,
        true,
        &[std::ffi::OsStr::new("keygen"), key.as_os_str()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("File too large"), "{err}");
    assert!(!key.exists(), "a partial key file was left");
}

#[test]
fn every_report_has_a_json_form() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = encrypted(tmp.path());
    let json = |args: &[&str]| -> serde_json::Value {
        let out = sealkv()
            .args(["--db", &db, "--key-file", &key, "--json"])
            .args(args)
            .assert()
            .success();
        let text = stdout(&out);
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
        serde_json::from_str(&text).unwrap()
    };
    let at = |n: &str| tmp.path().join(n).display().to_string();
    let v = json(&["verify"]);
    assert_eq!(
        (v["clean"].clone(), v["entries"].clone()),
        (true.into(), 1.into())
    );
    assert!(v["findings"].as_array().unwrap().is_empty());
    let v = json(&["stats"]);
    assert!(v["pages"].is_u64() && v["cache_hit_rate"].is_f64(), "{v}");
    let v = json(&["backup", &at("b")]);
    assert_eq!(
        (v["seq"].clone(), v["encrypted"].clone()),
        (1.into(), true.into())
    );
    let v = json(&["restore", &at("b"), &at("r")]);
    assert!(v["new_data_key"].is_u64(), "{v}");
    let v = json(&["export", &at("a.skva")]);
    assert_eq!(
        (v["records"].clone(), v["protection"].clone()),
        (1.into(), "sealed".into())
    );
    assert_eq!(v["key"]["kind"], "raw", "{v}");
    let out = sealkv()
        .args([
            "--db",
            &at("i"),
            "--key-file",
            &key,
            "--json",
            "import",
            &at("a.skva"),
        ])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["records"], 1);
    let v = json(&["verify-archive", &at("a.skva")]);
    assert_eq!(v["records"], 1);
    let v = json(&["rotate-key"]);
    assert_eq!(v["active_data_key"], 2);
    let v = json(&["reencrypt"]);
    assert_eq!(v["retired"], serde_json::json!([1]));
    let v = json(&["get", "user:1"]);
    assert_eq!(v, serde_json::json!({"key": "user:1", "value": "Ada"}));
    let new = tmp.path().join("new.key");
    sealkv().arg("keygen").arg(&new).assert().success();
    let v = json(&["rekey", "--new-key-file", new.to_str().unwrap()]);
    assert!(v["registry_generation"].is_u64(), "{v}");
}
