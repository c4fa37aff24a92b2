//! Rollback and damage from the outside: an older `KEYS` put back after a
//! key command, a directory older than its `--anchor-file`, and the three
//! things `verify` must report — each exits 4 naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn sealkv() -> Command {
    Command::cargo_bin("sealkv").unwrap()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    db: PathBuf,
    key: PathBuf,
    key2: PathBuf,
    anchor: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let key = tmp.path().join("k1.key");
    let key2 = tmp.path().join("k2.key");
    for k in [&key, &key2] {
        sealkv().arg("keygen").arg(k).assert().success();
    }
    let anchor = tmp.path().join("db.anchor");
    Fixture {
        _tmp: tmp,
        db,
        key,
        key2,
        anchor,
    }
}

/// `sealkv --db DB --key-file KEY ARGS...`
fn run<S: AsRef<std::ffi::OsStr>>(
    f: &Fixture,
    key: &Path,
    args: &[S],
) -> assert_cmd::assert::Assert {
    sealkv()
        .arg("--db")
        .arg(&f.db)
        .arg("--key-file")
        .arg(key)
        .args(args)
        .assert()
}

fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stdout.clone()).unwrap()
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stderr.clone()).unwrap()
}

#[test]
fn an_older_keys_put_back_after_a_rekey_exits_4() {
    let f = fixture();
    run(&f, &f.key, &["init"]).success();
    run(&f, &f.key, &["put", "a", "1"]).success();
    run(&f, &f.key, &["flush"]).success();
    let old = std::fs::read(f.db.join("KEYS")).unwrap();
    run(
        &f,
        &f.key,
        &["rekey", "--new-key-file", f.key2.to_str().unwrap()],
    )
    .success();
    std::fs::write(f.db.join("KEYS"), &old).unwrap();
    // The old key opens the old registry, which the page file says is
    // older than the one it was written with.
    let a = run(&f, &f.key, &["get", "a"]).code(4);
    assert!(stderr_of(&a).contains("rollback"), "{}", stderr_of(&a));
    let a = run(&f, &f.key, &["verify"]).code(4);
    assert!(stderr_of(&a).contains("KEYS"), "{}", stderr_of(&a));
}

/// `rotate-key`, then the older `KEYS` put back and the newest WAL
/// segments that hold only a header removed: new writes would otherwise be
/// sealed under the data key rotated away from.
#[test]
fn an_older_keys_put_back_after_a_rotation_exits_4() {
    let f = fixture();
    run(&f, &f.key, &["init"]).success();
    run(&f, &f.key, &["put", "a", "1"]).success();
    run(&f, &f.key, &["flush"]).success();
    let old = std::fs::read(f.db.join("KEYS")).unwrap();
    run(&f, &f.key, &["rotate-key"]).success();
    std::fs::write(f.db.join("KEYS"), &old).unwrap();
    let mut segs: Vec<PathBuf> = std::fs::read_dir(f.db.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let mut removed = 0;
    while let Some(newest) = segs.pop() {
        if std::fs::metadata(&newest).unwrap().len() > 128 {
            break;
        }
        std::fs::remove_file(&newest).unwrap();
        removed += 1;
    }
    assert!(removed > 0, "the rotation left a header-only segment");
    let a = run(&f, &f.key, &["put", "b", "2"]).code(4);
    assert!(stderr_of(&a).contains("KEYS"), "{}", stderr_of(&a));
    run(&f, &f.key, &["verify"]).code(4);
}

#[test]
fn a_directory_older_than_its_anchor_file_exits_4() {
    let f = fixture();
    let anchor = f.anchor.to_str().unwrap().to_string();
    let with_anchor = |args: &[&'static str]| -> Vec<String> {
        let mut v = vec!["--anchor-file".to_string(), anchor.clone()];
        v.extend(args.iter().map(|a| a.to_string()));
        v
    };
    run(&f, &f.key, &with_anchor(&["init"])).success();
    run(&f, &f.key, &with_anchor(&["put", "balance", "100"])).success();
    let copy = f._tmp.path().join("copy");
    copy_dir(&f.db, &copy);
    run(&f, &f.key, &with_anchor(&["put", "balance", "0"])).success();
    run(&f, &f.key, &with_anchor(&["flush"])).success();
    std::fs::remove_dir_all(&f.db).unwrap();
    copy_dir(&copy, &f.db);
    let a = run(&f, &f.key, &with_anchor(&["get", "balance"])).code(4);
    assert!(stderr_of(&a).contains("anchor"), "{}", stderr_of(&a));
    run(&f, &f.key, &with_anchor(&["verify"])).code(4);
    // Without the anchor the old copy opens: the documented limit.
    let a = run(&f, &f.key, &["get", "balance"]).success();
    assert_eq!(stdout_of(&a).trim(), "100");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" && !e.file_name().to_string_lossy().ends_with(".lock") {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `sealkv --db DB --key-file KEY --anchor-file ANCHOR ARGS...`.
fn anchored(db: &Path, key: &Path, anchor: &str, args: &[&str]) -> assert_cmd::assert::Assert {
    sealkv()
        .arg("--db")
        .arg(db)
        .arg("--key-file")
        .arg(key)
        .args(["--anchor-file", anchor])
        .args(args)
        .assert()
}

/// A copy of the anchored database `db`, put back after one more commit,
/// is refused (exit 4).
fn an_older_copy_put_back_exits_4(db: &Path, key: &Path, anchor: &str) {
    let mut name = db.file_name().unwrap().to_os_string();
    name.push("-copy");
    let copy = db.with_file_name(name);
    copy_dir(db, &copy);
    anchored(db, key, anchor, &["put", "b", "1"]).success();
    anchored(db, key, anchor, &["flush"]).success();
    std::fs::remove_dir_all(db).unwrap();
    std::fs::rename(&copy, db).unwrap();
    anchored(db, key, anchor, &["get", "a"]).code(4);
}

/// Half of the page file cut after a load whose records are all still in
/// the WAL: the open falls back to the older meta slot (losing nothing),
/// and `verify` says so.
#[test]
fn verify_reports_a_fall_back_to_the_older_meta_slot() {
    let f = fixture();
    run(&f, &f.key, &["init"]).success();
    let lines: String = (0..50)
        .map(|i| format!("key{i:03}\t{}\n", "v".repeat(4000)))
        .collect();
    let input = f._tmp.path().join("load.tsv");
    std::fs::write(&input, lines).unwrap();
    // `load` ends with the flush of its close; the records stay in the WAL
    // (retired one flush behind, and by the next writable open).
    run(&f, &f.key, &["load", input.to_str().unwrap()]).success();
    let data = f.db.join("data.sealkv");
    let bytes = std::fs::read(&data).unwrap();
    let used = bytes
        .chunks(4096)
        .rposition(|p| p.iter().any(|&b| b != 0))
        .unwrap()
        + 1;
    assert!(used > 50);
    std::fs::write(&data, &bytes[..used / 2 * 4096]).unwrap();
    let a = run(&f, &f.key, &["verify"]).code(4);
    let out = stdout_of(&a);
    assert!(
        out.contains("data.sealkv") && out.contains("fell back"),
        "{out} {}",
        stderr_of(&a)
    );
}

/// A byte flipped in the header of the newest WAL segment, which holds no
/// record.
#[test]
fn verify_reports_a_damaged_header_of_an_empty_segment() {
    let f = fixture();
    run(&f, &f.key, &["init"]).success();
    run(&f, &f.key, &["put", "a", "1"]).success();
    run(&f, &f.key, &["flush"]).success();
    let mut segs: Vec<PathBuf> = std::fs::read_dir(f.db.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let newest = segs.pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    assert_eq!(bytes.len(), 128, "header only");
    bytes[40] ^= 1;
    std::fs::write(&newest, &bytes).unwrap();
    let a = run(&f, &f.key, &["verify"]).code(4);
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    let out = stdout_of(&a);
    assert!(out.contains(&name) && out.contains("header"), "{out}");
}

/// After `reencrypt` the free pages are zeroed; one written over is
/// reported, naming the page.
#[test]
fn verify_reports_a_zeroed_free_page_that_is_not_zero() {
    let f = fixture();
    run(&f, &f.key, &["init"]).success();
    let lines: String = (0..400)
        .map(|i| format!("key{i:04}\t{}\n", "v".repeat(200)))
        .collect();
    let input = f._tmp.path().join("load.tsv");
    std::fs::write(&input, lines).unwrap();
    run(&f, &f.key, &["load", input.to_str().unwrap()]).success();
    run(&f, &f.key, &["flush"]).success();
    run(&f, &f.key, &["rotate-key"]).success();
    run(&f, &f.key, &["reencrypt"]).success();
    run(&f, &f.key, &["verify"]).success();
    let data = f.db.join("data.sealkv");
    let mut bytes = std::fs::read(&data).unwrap();
    let pages: Vec<&[u8]> = bytes.chunks(4096).collect();
    let last_used = pages
        .iter()
        .rposition(|p| p.iter().any(|&b| b != 0))
        .unwrap();
    // A zero page below the last page in use: a zeroed free page.
    let page = (3..last_used)
        .find(|&p| pages[p].iter().all(|&b| b == 0))
        .expect("a zeroed free page");
    bytes[page * 4096 + 100..page * 4096 + 200].fill(0x5A);
    std::fs::write(&data, &bytes).unwrap();
    let a = run(&f, &f.key, &["verify"]).code(4);
    let out = stdout_of(&a);
    assert!(
        out.contains("data.sealkv") && out.contains(&format!("page {page}")),
        "{out}"
    );
}

/// `restore --anchor-file PATH`: a restore puts an older state back on
/// purpose, so the anchor is pointed at the restored database (replaced
/// whole, never edited in place): the restored database then opens with
/// it, and an older copy of the restored one put back is caught by it.
#[test]
fn restore_with_an_anchor_file_anchors_the_restored_database() {
    let f = fixture();
    let anchor = f.anchor.to_str().unwrap();
    run(&f, &f.key, &["--anchor-file", anchor, "init"]).success();
    run(&f, &f.key, &["--anchor-file", anchor, "put", "a", "1"]).success();
    let backup = f.db.with_file_name("backup");
    run(
        &f,
        &f.key,
        &["--anchor-file", anchor, "backup", backup.to_str().unwrap()],
    )
    .success();
    // The live database moves on, well past the backup's commits.
    for i in 0..8 {
        let v = i.to_string();
        run(&f, &f.key, &["--anchor-file", anchor, "put", "a", &v]).success();
        run(&f, &f.key, &["--anchor-file", anchor, "flush"]).success();
    }
    let restored = f.db.with_file_name("restored");
    sealkv()
        .arg("--key-file")
        .arg(&f.key)
        .args(["--anchor-file", anchor, "restore"])
        .arg(&backup)
        .arg(&restored)
        .assert()
        .success();
    let in_restored = |args: &[&str]| anchored(&restored, &f.key, anchor, args);
    let a = in_restored(&["get", "a"]).success();
    assert_eq!(stdout_of(&a).trim(), "1");
    // The anchor now follows the restored database: an older copy of it
    // put back is caught.
    an_older_copy_put_back_exits_4(&restored, &f.key, anchor);
}

/// `restore --anchor-file PATH` stopped after the restored database was
/// in place but before the anchor pointed at it (here: the staged anchor
/// cannot be written, as a crash at that point leaves it): the restored
/// database is refused with the old anchor (exit 4); running the same
/// restore again says what was left and anchors nothing (exit 5); once
/// the destination is removed, the restore runs whole. An existing
/// destination is refused.
#[test]
fn restore_with_an_anchor_file_stopped_before_the_anchor_step_is_redone_from_scratch() {
    let f = fixture();
    let anchor = f.anchor.to_str().unwrap();
    run(&f, &f.key, &["--anchor-file", anchor, "init"]).success();
    run(&f, &f.key, &["--anchor-file", anchor, "put", "a", "1"]).success();
    let backup = f.db.with_file_name("backup");
    run(
        &f,
        &f.key,
        &["--anchor-file", anchor, "backup", backup.to_str().unwrap()],
    )
    .success();
    run(&f, &f.key, &["--anchor-file", anchor, "put", "a", "2"]).success();
    run(&f, &f.key, &["--anchor-file", anchor, "flush"]).success();
    let restored = f.db.with_file_name("restored");
    let restore = |dest: &Path| {
        sealkv()
            .arg("--key-file")
            .arg(&f.key)
            .args(["--anchor-file", anchor, "restore"])
            .arg(&backup)
            .arg(dest)
            .assert()
    };
    let mut staged = f.anchor.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    std::fs::create_dir(&staged).unwrap();
    let a = restore(&restored).failure();
    assert!(restored.join("data.sealkv").exists(), "{}", stderr_of(&a));
    let in_restored = |args: &[&str]| anchored(&restored, &f.key, anchor, args);
    in_restored(&["get", "a"]).code(4);
    std::fs::remove_dir(&staged).unwrap();
    // The rerun says what was left and how to finish; it anchors nothing
    // (the directory may have been replaced since).
    let a = restore(&restored).code(5);
    assert!(
        stderr_of(&a).contains("a restore that stopped before its anchor step"),
        "{}",
        stderr_of(&a)
    );
    in_restored(&["get", "a"]).code(4);
    std::fs::remove_dir_all(&restored).unwrap();
    restore(&restored).success();
    let a = in_restored(&["get", "a"]).success();
    assert_eq!(stdout_of(&a).trim(), "1");
    // The live database is now the other copy; a second run finds nothing
    // left to finish.
    run(&f, &f.key, &["--anchor-file", anchor, "get", "a"]).code(4);
    let a = restore(&restored).code(5);
    assert!(
        stderr_of(&a).contains("already exists"),
        "{}",
        stderr_of(&a)
    );
    let other = f.db.with_file_name("other");
    copy_dir(&f.db, &other);
    let a = restore(&other).code(5);
    assert!(
        stderr_of(&a).contains("already exists"),
        "{}",
        stderr_of(&a)
    );
}

/// An `import` or `restore` with `--anchor-file PATH` holds `PATH.lock`
/// while it replaces the anchor: a second one with the same PATH (here
/// the lock is held by the test, as the first run would hold it) is
/// refused before it creates or restores anything, and leaves PATH alone.
#[test]
fn a_second_import_or_restore_with_the_same_anchor_file_is_refused() {
    let f = fixture();
    run(&f, &f.key, &["init"]).success();
    run(&f, &f.key, &["put", "a", "1"]).success();
    let archive = f.db.with_file_name("data.skva");
    run(&f, &f.key, &["export", archive.to_str().unwrap()]).success();
    let backup = f.db.with_file_name("backup");
    run(&f, &f.key, &["backup", backup.to_str().unwrap()]).success();
    let anchor = f.anchor.to_str().unwrap();
    let mut lock_name = f.anchor.as_os_str().to_owned();
    lock_name.push(".lock");
    let held = std::fs::File::create(PathBuf::from(lock_name)).unwrap();
    held.try_lock().unwrap();
    let imported = f.db.with_file_name("imported");
    let a = sealkv()
        .arg("--db")
        .arg(&imported)
        .arg("--key-file")
        .arg(&f.key)
        .args(["--anchor-file", anchor, "import"])
        .arg(&archive)
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains("another import or restore"),
        "{}",
        stderr_of(&a)
    );
    let restored = f.db.with_file_name("restored");
    let a = sealkv()
        .arg("--key-file")
        .arg(&f.key)
        .args(["--anchor-file", anchor, "restore"])
        .arg(&backup)
        .arg(&restored)
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains("another import or restore"),
        "{}",
        stderr_of(&a)
    );
    assert!(!imported.exists() && !restored.exists());
    assert!(!f.anchor.exists());
    drop(held);
    sealkv()
        .arg("--db")
        .arg(&imported)
        .arg("--key-file")
        .arg(&f.key)
        .args(["--anchor-file", anchor, "import"])
        .arg(&archive)
        .assert()
        .success();
    assert!(f.anchor.exists());
}

/// `import --anchor-file PATH`: the new database is anchored from its
/// creation, as with `init`; an anchor that records a database already
/// is refused (exit 4) before anything is imported.
#[test]
fn import_with_an_anchor_file_anchors_the_new_database() {
    let f = fixture();
    run(&f, &f.key, &["init"]).success();
    run(&f, &f.key, &["put", "a", "1"]).success();
    let archive = f.db.with_file_name("data.skva");
    run(&f, &f.key, &["export", archive.to_str().unwrap()]).success();
    let imported = f.db.with_file_name("imported");
    let anchor = f.anchor.to_str().unwrap();
    let import = |dest: &Path| {
        sealkv()
            .arg("--db")
            .arg(dest)
            .arg("--key-file")
            .arg(&f.key)
            .args(["--anchor-file", anchor, "import"])
            .arg(&archive)
            .assert()
    };
    import(&imported).success();
    assert!(f.anchor.exists(), "the import did not anchor the database");
    let in_imported = |args: &[&str]| anchored(&imported, &f.key, anchor, args);
    let a = in_imported(&["get", "a"]).success();
    assert_eq!(stdout_of(&a).trim(), "1");
    an_older_copy_put_back_exits_4(&imported, &f.key, anchor);
    // The anchor records a database: a second import beside it is refused.
    let second = f.db.with_file_name("second");
    let a = import(&second).code(4);
    assert!(stderr_of(&a).contains("anchor"), "{}", stderr_of(&a));
    assert!(!second.exists());
}

/// A backup put in place of the live directory before the live database
/// committed past the backup's last commit number: the backup is another
/// line of commits, so the live database's anchor refuses it (exit 4,
/// saying another copy stands there); `restore --anchor-file` of the same
/// backup points the anchor at the restored copy, which then opens.
#[test]
fn a_backup_put_in_place_of_the_anchored_directory_exits_4() {
    let f = fixture();
    let anchor = f.anchor.to_str().unwrap();
    run(&f, &f.key, &["--anchor-file", anchor, "init"]).success();
    run(&f, &f.key, &["--anchor-file", anchor, "put", "a", "1"]).success();
    let backup = f.db.with_file_name("backup");
    run(
        &f,
        &f.key,
        &["--anchor-file", anchor, "backup", backup.to_str().unwrap()],
    )
    .success();
    run(&f, &f.key, &["--anchor-file", anchor, "put", "a", "2"]).success();
    let kept = f.db.with_file_name("backup-kept");
    copy_dir(&backup, &kept);
    std::fs::remove_dir_all(&f.db).unwrap();
    std::fs::rename(&backup, &f.db).unwrap();
    let a = run(&f, &f.key, &["--anchor-file", anchor, "get", "a"]).code(4);
    assert!(stderr_of(&a).contains("another copy"), "{}", stderr_of(&a));
    let restored = f.db.with_file_name("restored");
    sealkv()
        .arg("--key-file")
        .arg(&f.key)
        .args(["--anchor-file", anchor, "restore"])
        .arg(&kept)
        .arg(&restored)
        .assert()
        .success();
    let a = sealkv()
        .arg("--db")
        .arg(&restored)
        .arg("--key-file")
        .arg(&f.key)
        .args(["--anchor-file", anchor, "get", "a"])
        .assert()
        .success();
    assert_eq!(stdout_of(&a).trim(), "1");
}

/// A failed `import --anchor-file PATH` leaves no anchor naming the
/// database it did not create (nor its temporary file beside PATH).
#[test]
fn a_failed_import_leaves_no_anchor() {
    let f = fixture();
    run(&f, &f.key, &["init"]).success();
    for i in 0..200 {
        run(&f, &f.key, &["put", &format!("k{i}"), "v"]).success();
    }
    let archive = f.db.with_file_name("data.skva");
    run(&f, &f.key, &["export", archive.to_str().unwrap()]).success();
    // Damage near the end: the import has created its database (and, with
    // an anchor, anchored it) by the time it meets the damage.
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    std::fs::write(&archive, &bytes).unwrap();
    let imported = f.db.with_file_name("imported");
    let a = sealkv()
        .arg("--db")
        .arg(&imported)
        .arg("--key-file")
        .arg(&f.key)
        .args(["--anchor-file", f.anchor.to_str().unwrap(), "import"])
        .arg(&archive)
        .assert()
        .failure();
    assert!(!imported.exists(), "{}", stderr_of(&a));
    assert!(!f.anchor.exists(), "the failed import left an anchor");
    assert!(
        !f.anchor.with_file_name("db.anchor.new").exists(),
        "the failed import left the anchor's temporary file"
    );
}
