//! The API round trip on a real disk and on the simulated one.

use sealkv::{Config, Db, Error, WriteBatch};
use sealkv_fileio::SimVfs;

use crate::support::{collect, key, modes, sim_config};

#[test]
fn put_get_delete_range_prefix_snapshot_across_flush_and_reopen() {
    for mode in modes() {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        for i in 0..500u32 {
            db.put(format!("k{i:04}"), format!("v{i}")).unwrap();
        }
        db.delete(b"k0007").unwrap();
        let snap = db.snapshot().unwrap();
        db.flush().unwrap();
        db.put(b"k0001", b"changed").unwrap();
        assert_eq!(db.get(b"k0001").unwrap().as_deref(), Some(&b"changed"[..]));
        assert_eq!(snap.get(b"k0001").unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(db.get(b"k0007").unwrap(), None);
        let all = collect(db.range::<&[u8]>(..).unwrap());
        assert_eq!(all.len(), 499);
        let back: Vec<_> = collect(db.prefix(b"k00").unwrap().rev());
        assert_eq!(back.first().unwrap().0, b"k0099".to_vec());
        assert_eq!(back.len(), 99);
        let window = collect(db.range(b"k0100".as_slice()..b"k0105".as_slice()).unwrap());
        assert_eq!(window.len(), 5);
        drop(snap);
        db.close().unwrap();

        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        assert_eq!(db.get(b"k0001").unwrap().as_deref(), Some(&b"changed"[..]));
        assert_eq!(db.get(b"k0499").unwrap().as_deref(), Some(&b"v499"[..]));
        assert_eq!(db.get(b"k0007").unwrap(), None);
        assert_eq!(collect(db.range::<&[u8]>(..).unwrap()).len(), 499);
        db.close().unwrap();
    }
}

#[test]
fn batches_apply_together_and_later_ops_win() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    let mut b = WriteBatch::new();
    b.put(b"a", b"1")
        .put(b"a", b"2")
        .put(b"b", b"x")
        .delete(b"b");
    db.write(&b).unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(db.get(b"b").unwrap(), None);
}

#[test]
fn real_disk_round_trip_and_second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put(b"x", b"y").unwrap();
    assert!(matches!(Db::open(dir.path()), Err(Error::Locked { .. })));
    db.close().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get(b"x").unwrap().as_deref(), Some(&b"y"[..]));
}

#[test]
fn read_only_sees_everything_and_refuses_writes() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    db.put(b"flushed", b"1").unwrap();
    db.flush().unwrap();
    db.put(b"in-wal", b"2").unwrap();
    drop(db);
    let ro = Db::open_with_config(sim_config(&vfs, None).read_only(true)).unwrap();
    assert_eq!(ro.get(b"flushed").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(ro.get(b"in-wal").unwrap().as_deref(), Some(&b"2"[..]));
    assert!(matches!(ro.put(b"z", b"z"), Err(Error::ReadOnly)));
    // A writer cannot open while a reader holds the shared lock.
    assert!(matches!(
        Db::open_with_config(sim_config(&vfs, None)),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn config_errors_are_typed() {
    let vfs = SimVfs::new();
    let base = || sim_config(&vfs, None);
    assert!(matches!(
        Db::open_with_config(base().encrypt_at_rest(true)),
        Err(Error::MissingKey)
    ));
    assert!(matches!(
        Db::open_with_config(base().page_size(3000)),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        Db::open_with_config(base().create_if_missing(false)),
        Err(Error::NotFound { .. })
    ));
    let dbg = format!("{:?}", Config::new("/x").encryption_key(key(0xab)));
    assert!(!dbg.contains("ab") && !dbg.contains("171"), "{dbg}");
}

#[test]
fn too_large_keys_and_values_are_refused() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    let big_key = vec![0u8; db.max_key_len() + 1];
    db.put(vec![1u8; db.max_key_len()], b"longest key").unwrap();
    db.flush().unwrap();
    assert!(matches!(
        db.put(&big_key, b"v"),
        Err(Error::TooLarge { what: "key", .. })
    ));
    let big_val = vec![0u8; sealkv::MAX_VALUE_LEN + 1];
    assert!(matches!(
        db.put(b"k", &big_val),
        Err(Error::TooLarge { what: "value", .. })
    ));
}

#[test]
fn closed_handles_answer_closed() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    let other = db.clone();
    db.close().unwrap();
    assert!(matches!(other.get(b"k"), Err(Error::Closed)));
    assert!(matches!(other.put(b"k", b"v"), Err(Error::Closed)));
}
