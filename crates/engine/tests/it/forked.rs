//! A handle used in a child forked after the open: every write refuses
//! (the child holds copies of the writer sessions' nonce counters and of
//! the files' positions), reads go on, and nothing on disk changes.
//! `Db::pretend_opened_by` stands in for the fork.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sealkv::anchor::{AnchorPolicy, FileAnchor};
use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, Error, WriteBatch};
use sealkv_fileio::{SimVfs, Vfs};

use crate::support::sim_config;

/// Every file of the simulated disk, with its bytes.
fn disk(vfs: &SimVfs) -> BTreeMap<PathBuf, Vec<u8>> {
    vfs.files()
        .into_iter()
        .map(|p| {
            let bytes = vfs.read_file(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn forked(e: &Error) -> bool {
    matches!(e, Error::ForkedProcess { opened_by, current }
        if *current == std::process::id() && *opened_by != *current)
}

/// An encrypted database on `vfs` whose freshness anchor file (on the
/// same disk) lags its commits, so a close would bring it up to date.
fn open(vfs: &SimVfs) -> Db {
    vfs.create_dir_all(Path::new("/anchors")).unwrap();
    let anchor = FileAnchor::with_vfs(Arc::new(vfs.clone()), "/anchors/db.anchor");
    Db::open_with_config(
        sim_config(vfs, Some(EncryptionAlgorithm::Aes256Gcm))
            .freshness_anchor(Arc::new(anchor))
            .anchor_policy(AnchorPolicy::Interval(Duration::from_secs(3600))),
    )
    .unwrap()
}

#[test]
fn every_write_in_a_forked_child_refuses_and_changes_nothing_on_disk() {
    let vfs = SimVfs::new();
    let db = open(&vfs);
    let field_key = db.create_field_key().unwrap();
    db.put(b"kept", b"before the fork").unwrap();
    db.put(b"unflushed", b"in the log").unwrap();
    db.flush().unwrap();
    db.put(b"memtable", b"only in the log and memory").unwrap();
    let before = disk(&vfs);

    db.pretend_opened_by(std::process::id().wrapping_add(1));
    let mut batch = WriteBatch::new();
    batch.put(b"b", b"v");
    let refusals: Vec<(&str, Error)> = vec![
        ("put", db.put(b"k", b"v").unwrap_err()),
        ("delete", db.delete(b"kept").unwrap_err()),
        ("batch", db.write(&batch).unwrap_err()),
        (
            "transaction",
            db.transaction(|tx| tx.put(b"t", b"v")).unwrap_err(),
        ),
        (
            "put_sealed",
            db.put_sealed(b"s", b"v", field_key).unwrap_err(),
        ),
        ("flush", db.flush().unwrap_err()),
        ("compact", db.compact().unwrap_err()),
        ("create_field_key", db.create_field_key().unwrap_err()),
        ("keyspace", db.keyspace("new").unwrap_err()),
        (
            "backup",
            db.backup_to(Path::new("/backup"), &mut |_| {}).unwrap_err(),
        ),
    ];
    for (what, e) in &refusals {
        assert!(forked(e), "{what}: {e:?}");
    }
    // Reads go on, the memtable's included.
    assert_eq!(db.get(b"kept").unwrap().unwrap(), b"before the fork");
    assert_eq!(
        db.get(b"memtable").unwrap().unwrap(),
        b"only in the log and memory"
    );
    assert_eq!(db.iter().unwrap().count(), 3);
    assert_eq!(disk(&vfs), before, "a refused write changed a file");

    // Back in the process that opened it, nothing was poisoned.
    db.pretend_opened_by(std::process::id());
    db.put(b"after", b"v").unwrap();
    db.flush().unwrap();
    assert_eq!(db.get(b"after").unwrap().unwrap(), b"v");
    assert_eq!(db.get(b"k").unwrap(), None);
}

#[test]
fn a_forked_child_closes_or_drops_the_handle_without_writing_or_waiting() {
    for close in [true, false] {
        let vfs = SimVfs::new();
        let db = open(&vfs);
        db.put(b"k", b"in the memtable and the log").unwrap();
        let before = disk(&vfs);
        db.pretend_opened_by(std::process::id().wrapping_add(1));
        if close {
            // No flush, no anchor update, no log sync, no join of the
            // parent's flusher (a thread the child does not have).
            assert!(forked(&db.clone().close().unwrap_err()));
            assert!(matches!(db.put(b"x", b"v"), Err(Error::Closed)));
        }
        drop(db);
        assert_eq!(disk(&vfs), before, "close: {close}");
    }
}
