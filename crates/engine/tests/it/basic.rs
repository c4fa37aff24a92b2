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
    for mode in modes() {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        let mut b = WriteBatch::new();
        b.put(b"a", b"1")
            .put(b"a", b"2")
            .put(b"b", b"x")
            .delete(b"b");
        db.write(&b).unwrap();
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(db.get(b"b").unwrap(), None);
    }
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
    for mode in modes() {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        db.put(b"flushed", b"1").unwrap();
        db.flush().unwrap();
        db.put(b"in-wal", b"2").unwrap();
        drop(db);
        let ro = Db::open_with_config(sim_config(&vfs, mode).read_only(true)).unwrap();
        assert_eq!(ro.get(b"flushed").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(ro.get(b"in-wal").unwrap().as_deref(), Some(&b"2"[..]));
        assert!(matches!(ro.put(b"z", b"z"), Err(Error::ReadOnly)));
        // A writer cannot open while a reader holds the shared lock.
        assert!(matches!(
            Db::open_with_config(sim_config(&vfs, mode)),
            Err(Error::Locked { .. })
        ));
    }
}

#[test]
fn iter_walks_every_key_both_ways_and_config_opens() {
    let vfs = SimVfs::new();
    let db = sim_config(&vfs, None).open().unwrap();
    for i in 0..300u32 {
        db.put(format!("k{i:04}"), format!("v{i}")).unwrap();
    }
    db.delete(b"k0003").unwrap();
    let snap = db.snapshot().unwrap();
    db.flush().unwrap();
    db.put(b"k9999", b"after the snapshot").unwrap();
    let all = collect(db.iter().unwrap());
    assert_eq!(all, collect(db.range::<&[u8]>(..).unwrap()));
    assert_eq!(all.len(), 300);
    assert_eq!(all.first().unwrap().0, b"k0000".to_vec());
    assert_eq!(all.last().unwrap().0, b"k9999".to_vec());
    let mut back = collect(db.iter().unwrap().rev());
    back.reverse();
    assert_eq!(back, all);
    let then = collect(snap.iter());
    assert_eq!(then.len(), 299);
    assert!(then.iter().all(|(k, _)| k.as_slice() != b"k9999"));
    drop(snap);
    db.close().unwrap();
    assert!(matches!(
        Db::open_with_config(sim_config(&vfs, None))
            .unwrap()
            .iter()
            .map(|i| i.count()),
        Ok(300)
    ));
}

#[test]
#[allow(deprecated)]
fn the_deprecated_wal_flush_size_sets_the_memtable_size() {
    let old = Config::new("/db").wal_flush_size(1 << 20);
    let new = Config::new("/db").memtable_size(1 << 20);
    assert_eq!(format!("{old:?}"), format!("{new:?}"));
    assert_ne!(
        format!("{old:?}"),
        format!("{:?}", Config::new("/db").memtable_size(2 << 20))
    );
    let vfs = SimVfs::new();
    assert!(matches!(
        Db::open_with_config(sim_config(&vfs, None).wal_flush_size(1024)),
        Err(Error::InvalidConfig(_))
    ));
}

/// What docs/CONFIGURATION.md says `read_only` answers where there is no
/// database.
#[test]
fn read_only_where_there_is_no_database() {
    let vfs = SimVfs::new();
    let ro = || sim_config(&vfs, None).read_only(true);
    assert!(matches!(
        Db::open_with_config(ro()),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        Db::open_with_config(ro().create_if_missing(false)),
        Err(Error::NotFound { .. })
    ));
    sealkv::fileio::Vfs::create_dir_all(&vfs, sim_config(&vfs, None).path()).unwrap();
    assert!(matches!(
        Db::open_with_config(ro()),
        Err(Error::NotFound { .. })
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
    // The key is 32 bytes of 0xab: no hex ("abab", as field names such
    // as `memtable_size` hold a lone "ab") and no decimal of it.
    let dbg = format!("{:?}", Config::new("/x").encryption_key(key(0xab)));
    assert!(!dbg.contains("abab") && !dbg.contains("171"), "{dbg}");
}

#[test]
fn too_large_keys_and_values_are_refused() {
    for mode in modes() {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
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
}

#[test]
fn closed_handles_answer_closed() {
    for mode in modes() {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        let other = db.clone();
        db.close().unwrap();
        assert!(matches!(other.get(b"k"), Err(Error::Closed)));
        assert!(matches!(other.put(b"k", b"v"), Err(Error::Closed)));
    }
}

#[test]
fn verify_is_clean_then_names_a_damaged_page() {
    for mode in modes() {
        let vfs = SimVfs::new();
        let alg = mode;
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        for i in 0..300u32 {
            db.put(format!("k{i:05}"), vec![7u8; 100]).unwrap();
        }
        db.flush().unwrap();
        db.put(b"in-wal", b"x").unwrap();
        let report = db.verify().unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.entries, 300);
        assert_eq!(report.wal_records, 1);
        // A leaf (kind 3) of the tree: the branches above it stay whole,
        // so the database opens and verify must name that page.
        // (The roles of the state the close leaves: it flushes `in-wal`.)
        let path = crate::support::dir().join("data.sealkv");
        db.close().unwrap();
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        let tree: Vec<u64> = db
            .page_roles()
            .unwrap()
            .into_iter()
            .filter(|(_, role)| *role == "tree")
            .map(|(p, _)| p)
            .collect();
        db.close().unwrap();
        let mut bytes = vfs.read_file(&path).unwrap();
        let leaf = *tree
            .iter()
            .find(|&&p| bytes[p as usize * 4096] == 3)
            .unwrap();
        bytes[leaf as usize * 4096 + 100] ^= 0x01;
        vfs.write_file(&path, &bytes);
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        let report = db.verify().unwrap();
        assert!(!report.findings.is_empty(), "{mode:?}: {report:?}");
        for f in &report.findings {
            assert!(f.file.ends_with("data.sealkv"), "{mode:?}: {f:?}");
            assert!(
                f.what.starts_with(&format!("page {leaf}:")),
                "{mode:?}: leaf {leaf} damaged, found {f:?}"
            );
        }
        // A read of a key on that leaf is an error naming the file, never a
        // value.
        let hits = (0..300u32)
            .filter(|i| {
                match db.get(format!("k{i:05}")) {
                    Ok(v) => {
                        assert_eq!(v, Some(vec![7u8; 100]), "{mode:?}: k{i:05}");
                        false
                    }
                    Err(e) => {
                        assert!(
                            matches!(&e, Error::Corruption { file, .. } if file.ends_with("data.sealkv")),
                            "{mode:?}: {e:?}"
                        );
                        true
                    }
                }
            })
            .count();
        assert!(hits > 0, "{mode:?}: no key lives on leaf {leaf}");
    }
}

#[test]
fn concurrent_writers_and_readers_lose_nothing() {
    use std::sync::Arc;
    for mode in modes() {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        let db = Arc::new(db);
        let writers: Vec<_> = (0..4u32)
            .map(|t| {
                let db = db.clone();
                std::thread::spawn(move || {
                    for i in 0..300u32 {
                        let mut b = WriteBatch::new();
                        b.put(format!("t{t}/{i:04}/a"), [t as u8; 64])
                            .put(format!("t{t}/{i:04}/b"), [t as u8; 64]);
                        db.write(&b).unwrap();
                    }
                })
            })
            .collect();
        let reader = {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    // Batches are atomic for readers too: a snapshot never sees
                    // half of one.
                    let snap = db.snapshot().unwrap();
                    let keys: Vec<_> = collect(snap.range::<&[u8]>(..));
                    assert_eq!(keys.len() % 2, 0, "a torn batch was visible");
                }
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        reader.join().unwrap();
        assert_eq!(collect(db.range::<&[u8]>(..).unwrap()).len(), 4 * 300 * 2);
        let db = Arc::try_unwrap(db).unwrap();
        db.close().unwrap();
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        assert_eq!(collect(db.range::<&[u8]>(..).unwrap()).len(), 2400);
    }
}
