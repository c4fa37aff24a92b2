//! Hot physical backups (`Db::backup_to`): a consistent copy as of one
//! sequence number while writers go on, sealed as the live files, opening
//! and verifying on its own; refusals and failures leave nothing behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{BackupOptions, Config, Db, Error, SyncMode};
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, StdVfs};
use sealkv_testkit::{Canaries, read_tree, scan_for_plaintext};

use crate::support::{collect, key, modes};

fn config(path: &Path, alg: Option<EncryptionAlgorithm>) -> Config {
    let mut c = Config::new(path)
        .sync_mode(SyncMode::Never)
        .memtable_size(64 << 10)
        .wal_segment_size(64 << 10);
    if let Some(alg) = alg {
        c = c.encryption_key(key(7)).encryption_algorithm(alg);
    }
    c
}

fn entry_key(t: u64, i: u64) -> Vec<u8> {
    format!("t{t}/{i:08}").into_bytes()
}

fn entry_value(t: u64, i: u64) -> Vec<u8> {
    format!("value {t}/{i} ")
        .repeat(1 + (i % 7) as usize)
        .into_bytes()
}

/// What writer `t` has after its first `k` batches: batch `i` puts
/// `t/i`, sets `t/last` to `i` and deletes `t/(i-5)`.
fn model_of(t: u64, k: u64, out: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in k.saturating_sub(5)..k {
        out.insert(entry_key(t, i), entry_value(t, i));
    }
    if k > 0 {
        out.insert(
            format!("t{t}/last").into_bytes(),
            (k - 1).to_string().into_bytes(),
        );
    }
}

fn write_batch(db: &Db, t: u64, i: u64) {
    let mut b = sealkv::WriteBatch::new();
    b.put(entry_key(t, i), entry_value(t, i))
        .put(format!("t{t}/last"), i.to_string());
    if i >= 5 {
        b.delete(entry_key(t, i - 5));
    }
    db.write(&b).unwrap();
}

fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    collect(db.range::<&[u8]>(..).unwrap())
        .into_iter()
        .collect()
}

#[test]
fn a_backup_taken_while_writers_write_is_the_state_at_its_sequence_number() {
    const WRITERS: u64 = 3;
    for alg in modes() {
        let root = tempfile::tempdir().unwrap();
        let db = Db::open_with_config(config(&root.path().join("live"), alg)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Vec<AtomicU64>> =
            Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
        let handles: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (db, stop, acked) = (db.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) || i < 300 {
                        write_batch(&db, t, i);
                        i += 1;
                        acked[t as usize].store(i, Ordering::SeqCst);
                    }
                    i
                })
            })
            .collect();
        while acked.iter().any(|a| a.load(Ordering::SeqCst) < 200) {
            std::thread::yield_now();
        }
        let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
        let dest = root.path().join("backup");
        let mut calls = 0;
        let report = db
            .backup_to(&dest, &mut |p| {
                calls += 1;
                assert!(p.pages_done <= p.pages_total && p.bytes_done <= p.bytes_total);
            })
            .unwrap();
        let after: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
        stop.store(true, Ordering::Relaxed);
        let totals: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(calls >= 1);
        assert_eq!(report.encrypted, alg.is_some());

        let copy = Db::open_with_config(config(&dest, alg)).unwrap();
        let report_v = copy.verify().unwrap();
        assert!(report_v.is_clean(), "{alg:?}: {report_v:?}");
        // Each writer's batches in the copy are a prefix of what it wrote,
        // at least what was acknowledged before the backup began.
        let mut model = BTreeMap::new();
        let mut sum = 0;
        for t in 0..WRITERS {
            let k = match copy.get(format!("t{t}/last")).unwrap() {
                Some(v) => String::from_utf8(v).unwrap().parse::<u64>().unwrap() + 1,
                None => 0,
            };
            assert!(
                k >= before[t as usize],
                "{alg:?}: writer {t} has {k} batches in the backup, {} were acknowledged before it began",
                before[t as usize]
            );
            assert!(k <= after[t as usize] + 1, "{alg:?}: writer {t}");
            model_of(t, k, &mut model);
            sum += k;
        }
        assert_eq!(contents(&copy), model, "{alg:?}");
        // Every batch is one sequence number: the backup holds exactly the
        // first `seq` of them.
        assert_eq!(report.seq, sum, "{alg:?}");
        copy.close().unwrap();

        // The live database has everything and is unaffected.
        let mut live_model = BTreeMap::new();
        for (t, k) in totals.iter().enumerate() {
            model_of(t as u64, *k, &mut live_model);
        }
        assert_eq!(contents(&db), live_model);
        assert!(db.verify().unwrap().is_clean());
        db.close().unwrap();
    }
}

#[test]
fn an_encrypted_backup_holds_no_plaintext_and_opens_only_with_the_key() {
    let canaries = Canaries::new(200);
    for alg in modes() {
        let root = tempfile::tempdir().unwrap();
        let db = Db::open_with_config(config(&root.path().join("live"), alg)).unwrap();
        for i in 0..canaries.len() {
            db.put(canaries.key(i), canaries.value(i)).unwrap();
        }
        // Deleted records leave free pages behind: they must not travel.
        for i in 0..canaries.len() / 2 {
            db.delete(canaries.key(i)).unwrap();
        }
        db.flush().unwrap();
        let dest = root.path().join("backup");
        let report = db.backup_to(&dest, &mut |_| {}).unwrap();
        assert!(report.pages_copied > 0);
        let leaks = scan_for_plaintext(&read_tree(&dest), &canaries);
        match alg {
            Some(_) => assert!(leaks.is_empty(), "{alg:?}: {leaks:?}"),
            // The scan finds plaintext where there is some.
            None => assert!(!leaks.is_empty()),
        }
        if alg.is_some() {
            assert!(matches!(Db::open(&dest), Err(Error::EncryptedDatabase)));
            let wrong = Config::new(&dest).encryption_key(key(8));
            assert!(matches!(Db::open_with_config(wrong), Err(Error::WrongKey)));
        }
        let copy = Db::open_with_config(config(&dest, alg)).unwrap();
        assert!(copy.verify().unwrap().is_clean());
        let want: Vec<_> = (canaries.len() / 2..canaries.len())
            .map(|i| (canaries.key(i).to_vec(), canaries.value(i).to_vec()))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        assert_eq!(collect(copy.range::<&[u8]>(..).unwrap()), want);
        // The copy is a database of its own: it writes on.
        copy.put(b"new", b"row").unwrap();
        copy.close().unwrap();
        db.close().unwrap();
    }
}

#[test]
fn rotating_on_backup_gives_the_copy_a_data_key_of_its_own() {
    let root = tempfile::tempdir().unwrap();
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);
    let db = Db::open_with_config(config(&root.path().join("live"), alg)).unwrap();
    db.put(b"a", b"1").unwrap();
    let live_key = db.stats().unwrap().encryption.active_key;
    let dest = root.path().join("backup");
    let options = BackupOptions::new().rotate_data_key(true);
    let report = db.backup_with(&dest, &options, &mut |_| {}).unwrap();
    let copy = Db::open_with_config(config(&dest, alg)).unwrap();
    let copy_key = copy.stats().unwrap().encryption.active_key;
    assert!(report.rotated_to.is_some());
    assert_eq!(copy_key, report.rotated_to);
    assert_ne!(copy_key, live_key);
    assert_eq!(copy.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert!(copy.verify().unwrap().is_clean());
    assert_eq!(db.stats().unwrap().encryption.active_key, live_key);
}

#[test]
fn an_existing_destination_is_refused_unless_replacing_is_asked() {
    let root = tempfile::tempdir().unwrap();
    let db = Db::open_with_config(config(&root.path().join("live"), None)).unwrap();
    db.put(b"a", b"1").unwrap();
    let dest = root.path().join("backup");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("keep"), b"mine").unwrap();
    let err = db.backup_to(&dest, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::DestinationExists { path } if path == &dest),
        "{err:?}"
    );
    assert_eq!(std::fs::read(dest.join("keep")).unwrap(), b"mine");

    let first = root.path().join("first");
    db.backup_to(&first, &mut |_| {}).unwrap();
    db.put(b"a", b"2").unwrap();
    let options = BackupOptions::new().replace_existing(true);
    db.backup_with(&first, &options, &mut |_| {}).unwrap();
    let copy = Db::open(&first).unwrap();
    assert_eq!(copy.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
    copy.close().unwrap();
    // Nothing else is left beside the live database and the two
    // destinations.
    let mut names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["backup", "first", "live"]);
}

#[test]
fn a_failing_backup_leaves_no_destination_and_the_live_database_working() {
    let plans = [
        FaultPlan::once(OpKind::Write, 1),
        FaultPlan::once(OpKind::Write, 3),
        FaultPlan::once(OpKind::Sync, 1),
        FaultPlan::once(OpKind::Sync, 4),
        FaultPlan::once(OpKind::SyncDir, 1),
        FaultPlan::once(OpKind::Open, 2),
        FaultPlan::once(OpKind::Rename, 1),
        FaultPlan::from(OpKind::Read, 5),
    ];
    for alg in [None, Some(EncryptionAlgorithm::ChaCha20Poly1305)] {
        for plan in plans {
            let root = tempfile::tempdir().unwrap();
            let faulty = Arc::new(FaultyVfs::new(Arc::new(StdVfs::new())));
            let live = root.path().join("live");
            let db = Db::open_with_config(config(&live, alg).vfs(faulty.clone())).unwrap();
            for i in 0..500u64 {
                write_batch(&db, 0, i);
            }
            db.flush().unwrap();
            let dest = root.path().join("backup");
            faulty.arm(plan);
            let result = db.backup_to(&dest, &mut |_| {});
            faulty.disarm();
            assert!(result.is_err(), "{alg:?} {plan:?}: the fault was not hit");
            assert!(faulty.injected() >= 1);
            assert!(!dest.exists(), "{alg:?} {plan:?}");
            let names: Vec<_> = std::fs::read_dir(root.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                names,
                ["live"],
                "{alg:?} {plan:?}: a temporary directory was left"
            );
            // The live database goes on, and a second try succeeds.
            write_batch(&db, 0, 500);
            let mut model = BTreeMap::new();
            model_of(0, 501, &mut model);
            assert_eq!(contents(&db), model);
            let report = db.backup_to(&dest, &mut |_| {}).unwrap();
            assert_eq!(report.seq, 501);
            db.close().unwrap();
            let copy = Db::open_with_config(config(&dest, alg)).unwrap();
            assert_eq!(contents(&copy), model);
            assert!(copy.verify().unwrap().is_clean());
        }
    }
}

#[test]
fn an_empty_database_backs_up() {
    for alg in modes() {
        let root = tempfile::tempdir().unwrap();
        let db = Db::open_with_config(config(&root.path().join("live"), alg)).unwrap();
        let dest = root.path().join("backup");
        let report = db.backup_to(&dest, &mut |_| {}).unwrap();
        assert_eq!(report.seq, 0);
        let copy = Db::open_with_config(config(&dest, alg)).unwrap();
        assert!(contents(&copy).is_empty());
        assert!(copy.verify().unwrap().is_clean());
    }
}

#[test]
fn the_field_key_registry_of_a_plaintext_database_travels_even_without_the_key() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let with_key = |p: &Path| Config::new(p).encryption_key(key(3)).encrypt_at_rest(false);
    let db = Db::open_with_config(with_key(&live)).unwrap();
    let field = db.create_field_key().unwrap();
    db.put_sealed(b"ssn", b"078-05-1120", field).unwrap();
    db.close().unwrap();
    // Opened without the key, the registry is still copied.
    let db = Db::open(&live).unwrap();
    let dest = root.path().join("backup");
    db.backup_to(&dest, &mut |_| {}).unwrap();
    assert!(dest.join("KEYS").exists());
    let copy = Db::open_with_config(with_key(&dest)).unwrap();
    assert_eq!(
        copy.get_sealed(b"ssn", None).unwrap().as_deref(),
        Some(&b"078-05-1120"[..])
    );
    assert!(copy.verify().unwrap().is_clean());
}

#[test]
fn a_read_only_handle_backs_up_only_what_its_page_file_holds() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let db = Db::open_with_config(config(&live, None)).unwrap();
    db.put(b"flushed", b"1").unwrap();
    db.flush().unwrap();
    db.put(b"in the log only", b"2").unwrap();
    drop(db);
    let ro = Db::open_with_config(config(&live, None).read_only(true)).unwrap();
    let dest = root.path().join("backup");
    assert!(matches!(
        ro.backup_to(&dest, &mut |_| {}),
        Err(Error::ReadOnly)
    ));
    assert!(!dest.exists());
    drop(ro);
    // Flushed, a read-only handle backs it up.
    Db::open_with_config(config(&live, None))
        .unwrap()
        .close()
        .unwrap();
    let ro = Db::open_with_config(config(&live, None).read_only(true)).unwrap();
    let report = ro.backup_to(&dest, &mut |_| {}).unwrap();
    assert_eq!(report.seq, 2);
    let copy = Db::open(&dest).unwrap();
    assert_eq!(
        copy.get(b"in the log only").unwrap().as_deref(),
        Some(&b"2"[..])
    );
}

/// Six backups while a writer writes; in the middle of each backup's page
/// copy (its first progress call, its snapshot held) the data key is
/// rotated, and a re-encryption then runs while the backup finishes: each
/// copy opens, verifies and holds exactly the writes up to its sequence
/// number; keys rotated away are retired while the backups go on, and all
/// of them once they are done.
#[test]
fn backups_taken_while_keys_rotate_and_reencryption_retires_them_open_and_verify() {
    const ROUNDS: usize = 6;
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);
    let root = tempfile::tempdir().unwrap();
    let db = Db::open_with_config(config(&root.path().join("live"), alg)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                write_batch(&db, 0, i);
                i += 1;
            }
            i
        })
    };
    // The backup says "copying" and waits for "rotated"; the rotator then
    // re-encrypts and sends its report.
    let (copying_tx, copying_rx) = mpsc::channel::<()>();
    let (rotated_tx, rotated_rx) = mpsc::channel::<()>();
    let (report_tx, report_rx) = mpsc::channel();
    let rotator = {
        let db = db.clone();
        std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                copying_rx.recv().unwrap();
                db.rotate_data_key().unwrap();
                rotated_tx.send(()).unwrap();
                let report = db
                    .reencrypt(&mut |_| std::ops::ControlFlow::Continue(()))
                    .unwrap();
                report_tx.send(report).unwrap();
            }
        })
    };
    let mut retired = Vec::new();
    for n in 0..ROUNDS {
        let dest = root.path().join(format!("backup{n}"));
        let before = db.stats().unwrap().encryption.active_key;
        let mut rotated_during_copy = false;
        let report = db
            .backup_to(&dest, &mut |_| {
                if !rotated_during_copy {
                    copying_tx.send(()).unwrap();
                    rotated_rx.recv().unwrap();
                    rotated_during_copy = true;
                }
            })
            .unwrap();
        assert!(rotated_during_copy, "backup {n}: no progress call");
        assert_ne!(db.stats().unwrap().encryption.active_key, before);
        let copy = Db::open_with_config(config(&dest, alg)).unwrap();
        // The copy keeps the key it was captured under.
        assert_eq!(copy.stats().unwrap().encryption.active_key, before);
        let v = copy.verify().unwrap();
        assert!(v.is_clean(), "backup {n}: {v:?}");
        let mut model = BTreeMap::new();
        model_of(0, report.seq, &mut model);
        assert_eq!(contents(&copy), model, "backup {n}");
        copy.close().unwrap();
        // The rotation's re-encryption ends before the next backup.
        retired.extend(report_rx.recv().unwrap().retired);
    }
    rotator.join().unwrap();
    assert!(
        !retired.is_empty(),
        "no data key was retired while the backups ran"
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // With no backup holding a snapshot, the rest go: every key rotated
    // away is retired, once.
    for _ in 0..2 {
        let report = db
            .reencrypt(&mut |_| std::ops::ControlFlow::Continue(()))
            .unwrap();
        retired.extend(report.retired);
    }
    let mut unique = retired.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), retired.len(), "{retired:?}");
    assert_eq!(retired.len(), ROUNDS, "{retired:?}");
    let keys = db.stats().unwrap().encryption.data_keys;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn a_destination_that_is_or_holds_the_database_is_refused_even_when_replacing() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let db = Db::open_with_config(config(&live, None)).unwrap();
    db.put(b"a", b"1").unwrap();
    let replace = BackupOptions::new().replace_existing(true);
    for dest in [
        live.clone(),
        root.path().to_path_buf(),
        live.join("inside"),
        live.join("wal").join("x"),
        root.path().join("live").join("..").join("live"),
    ] {
        let err = db.backup_with(&dest, &replace, &mut |_| {}).unwrap_err();
        assert!(
            matches!(err, Error::InvalidDestination { ref path, .. } if *path == dest),
            "{}: {err:?}",
            dest.display()
        );
    }
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    db.close().unwrap();
    let db = Db::open_with_config(config(&live, None)).unwrap();
    assert!(db.verify().unwrap().is_clean());
    assert!(!live.join("inside").exists());
}

/// A destination that is a symbolic link is refused, even with replace:
/// replacing it would remove what it points to.
#[cfg(unix)]
#[test]
fn a_symlinked_destination_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let db = sealkv::Db::open(&live).unwrap();
    db.put(b"k", b"v").unwrap();
    let target = tmp.path().join("older-backup");
    db.backup_to(&target, &mut |_| {}).unwrap();
    let link = tmp.path().join("latest");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let options = sealkv::BackupOptions::new().replace_existing(true);
    let err = db.backup_with(&link, &options, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, sealkv::Error::InvalidDestination { ref path, .. } if *path == link),
        "{err:?}"
    );
    assert!(
        target.join("data.sealkv").exists(),
        "the linked backup was touched"
    );
    let link_to_live = tmp.path().join("to-live");
    std::os::unix::fs::symlink(&live, &link_to_live).unwrap();
    assert!(
        db.backup_with(&link_to_live, &options, &mut |_| {})
            .is_err()
    );
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}
