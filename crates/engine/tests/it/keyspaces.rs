//! Named keyspaces: separation, batches across them, drops, names on disk.

use std::collections::BTreeMap;
use std::sync::Arc;

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Config, Db, Durability, Error, WriteBatch};
use sealkv_fileio::{SimVfs, Vfs};

use crate::support::{collect, dir, modes, sim_config};

#[test]
fn keyspaces_are_separate_and_listed() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    let users = db.keyspace("users").unwrap();
    let orders = db.keyspace("orders").unwrap();
    db.put(b"k", b"default").unwrap();
    users.put(b"k", b"users").unwrap();
    orders.put(b"k", b"orders").unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"default"[..]));
    assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"users"[..]));
    assert_eq!(orders.get(b"k").unwrap().as_deref(), Some(&b"orders"[..]));
    users.delete(b"k").unwrap();
    assert_eq!(users.get(b"k").unwrap(), None);
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"default"[..]));
    // Each iterates its own keys only, with no prefix showing.
    orders.put(b"k2", b"o2").unwrap();
    assert_eq!(
        collect(orders.iter().unwrap()),
        vec![
            (b"k".to_vec(), b"orders".to_vec()),
            (b"k2".to_vec(), b"o2".to_vec())
        ]
    );
    assert_eq!(
        collect(db.iter().unwrap()),
        vec![(b"k".to_vec(), b"default".to_vec())]
    );
    assert_eq!(collect(users.iter().unwrap().rev()), vec![]);
    assert_eq!(
        db.keyspaces().unwrap(),
        vec!["orders".to_string(), "users".to_string()]
    );
    assert_eq!(db.stats().unwrap().keyspaces, 2);
    // Asking again gives the same keyspace.
    assert_eq!(
        db.keyspace("orders")
            .unwrap()
            .get(b"k2")
            .unwrap()
            .as_deref(),
        Some(&b"o2"[..])
    );
    // Handles are clones of the database: the files close with the last.
    drop((users, orders));
    db.close().unwrap();

    // All of it survives a reopen, and keeps working after a flush.
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    let orders = db.keyspace("orders").unwrap();
    assert_eq!(orders.get(b"k").unwrap().as_deref(), Some(&b"orders"[..]));
    db.flush().unwrap();
    assert_eq!(
        collect(orders.prefix(b"k").unwrap()),
        vec![
            (b"k".to_vec(), b"orders".to_vec()),
            (b"k2".to_vec(), b"o2".to_vec())
        ]
    );
    assert_eq!(db.keyspaces().unwrap().len(), 2);
}

#[test]
fn keys_at_the_edges_of_a_keyspace_stay_inside_it() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    for k in [&b""[..], b"\x00", b"\xff", b"\xff\xff\xff"] {
        a.put(k, b"a").unwrap();
        b.put(k, b"b").unwrap();
        db.put(k, b"d").unwrap();
    }
    for (ks, v) in [(&a, b"a"), (&b, b"b")] {
        let all = collect(ks.iter().unwrap());
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|(_, val)| val == v));
        assert_eq!(collect(ks.prefix(b"\xff").unwrap()).len(), 2);
        assert_eq!(collect(ks.range(&b"\x00"[..]..).unwrap().rev()).len(), 3);
    }
    assert_eq!(collect(db.prefix(b"").unwrap()).len(), 4);
}

#[test]
fn bad_names_and_foreign_handles_are_refused() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    assert!(matches!(
        db.keyspace(""),
        Err(Error::InvalidKeyspaceName { len: 0, max: 255 })
    ));
    assert!(matches!(
        db.keyspace(&"x".repeat(256)),
        Err(Error::InvalidKeyspaceName { len: 256, .. })
    ));
    assert!(db.keyspace(&"x".repeat(255)).is_ok());
    let other_sim = SimVfs::new();
    let other = Db::open_with_config(sim_config(&other_sim, None)).unwrap();
    let theirs = other.keyspace("users").unwrap();
    let mut batch = WriteBatch::new();
    batch.put_in(&theirs, b"k", b"v");
    assert!(matches!(
        db.write(&batch),
        Err(Error::ForeignKeyspace { name }) if name == "users"
    ));
    let mut tx = db.begin_transaction().unwrap();
    assert!(matches!(
        tx.get_in(&theirs, b"k"),
        Err(Error::ForeignKeyspace { .. })
    ));
    // Nothing was written anywhere.
    assert_eq!(collect(db.iter().unwrap()), vec![]);
    assert_eq!(theirs.get(b"k").unwrap(), None);
}

#[test]
fn a_read_only_database_reads_keyspaces_and_creates_none() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    db.keyspace("users").unwrap().put(b"1", b"ada").unwrap();
    db.close().unwrap();
    let db = Db::open_with_config(sim_config(&sim, None).read_only(true)).unwrap();
    assert_eq!(
        db.keyspace("users").unwrap().get(b"1").unwrap().as_deref(),
        Some(&b"ada"[..])
    );
    assert!(matches!(
        db.keyspace("missing"),
        Err(Error::KeyspaceNotFound { name }) if name == "missing"
    ));
    assert!(matches!(db.drop_keyspace("users"), Err(Error::ReadOnly)));
}

/// One batch over three keyspaces is one log record: a torn power cut
/// keeps all of it or none of it.
#[test]
fn a_batch_across_keyspaces_is_all_or_nothing_after_a_crash() {
    for alg in modes() {
        let mut saw = [false; 2];
        for seed in 0..24u64 {
            let sim = SimVfs::new();
            let db = Db::open_with_config(sim_config(&sim, alg)).unwrap();
            let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
            db.put(b"before", b"1").unwrap();
            let mut batch = WriteBatch::new();
            for i in 0..50u32 {
                let k = i.to_be_bytes();
                batch
                    .put_in(&a, k, [1; 300])
                    .put_in(&b, k, [2; 300])
                    .put(k, [3; 300]);
            }
            db.write_with(&batch, Durability::Buffered).unwrap();
            let crashed = sim.fork_crashed_torn(seed);
            std::mem::forget(db);
            let db = Db::open_with_config(sim_config(&crashed, alg)).unwrap();
            assert_eq!(db.get(b"before").unwrap().as_deref(), Some(&b"1"[..]));
            let counts = [
                collect(db.keyspace("a").unwrap().iter().unwrap()).len(),
                collect(db.keyspace("b").unwrap().iter().unwrap()).len(),
                collect(db.iter().unwrap()).len() - 1,
            ];
            assert!(
                counts == [0, 0, 0] || counts == [50, 50, 50],
                "{alg:?} seed {seed}: {counts:?}"
            );
            saw[usize::from(counts[0] == 50)] = true;
        }
        // Both outcomes happened: the cut really fell on the record.
        assert_eq!(saw, [true, true], "{alg:?}");
    }
}

#[test]
fn dropping_a_keyspace_removes_its_data_and_its_handles() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, Some(EncryptionAlgorithm::Aes256Gcm))).unwrap();
    let temp = db.keyspace("temp").unwrap();
    let keep = db.keyspace("keep").unwrap();
    for i in 0..2000u32 {
        temp.put(i.to_be_bytes(), [7u8; 100]).unwrap();
    }
    keep.put(b"k", b"v").unwrap();
    db.flush().unwrap();
    assert!(db.drop_keyspace("temp").unwrap());
    assert!(!db.drop_keyspace("temp").unwrap());
    assert_eq!(db.keyspaces().unwrap(), vec!["keep".to_string()]);
    let dropped =
        |r: Result<(), Error>| matches!(r, Err(Error::KeyspaceDropped { name }) if name == "temp");
    assert!(dropped(temp.get(b"x").map(|_| ())));
    assert!(dropped(temp.put(b"x", b"y")));
    assert!(dropped(temp.iter().map(|_| ())));
    let mut batch = WriteBatch::new();
    batch.put(b"default", b"1").put_in(&temp, b"x", b"y");
    assert!(dropped(db.write(&batch)));
    assert_eq!(db.get(b"default").unwrap(), None, "a refused batch wrote");
    // A new keyspace of the same name starts empty.
    let again = db.keyspace("temp").unwrap();
    assert_eq!(collect(again.iter().unwrap()), vec![]);
    assert_eq!(keep.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    drop((temp, keep, again));
    db.close().unwrap();
    let db = Db::open_with_config(sim_config(&sim, Some(EncryptionAlgorithm::Aes256Gcm))).unwrap();
    assert_eq!(
        db.keyspaces().unwrap(),
        vec!["keep".to_string(), "temp".to_string()]
    );
    assert_eq!(
        collect(db.keyspace("temp").unwrap().iter().unwrap()),
        vec![]
    );
    assert!(db.verify().unwrap().is_clean());
}

/// The pages a dropped keyspace held are reused: writing as much again
/// into another keyspace does not grow the file much.
#[test]
fn a_dropped_keyspace_gives_its_pages_back() {
    let sim = SimVfs::new();
    let db = Db::open_with_config(sim_config(&sim, None)).unwrap();
    let fill = |name: &str| {
        let ks = db.keyspace(name).unwrap();
        for chunk in 0..20u32 {
            let mut batch = WriteBatch::new();
            for i in 0..200u32 {
                batch.put_in(&ks, (chunk * 200 + i).to_be_bytes(), [9u8; 200]);
            }
            db.write(&batch).unwrap();
        }
        db.flush().unwrap();
    };
    fill("first");
    let pages = db.stats().unwrap().pages;
    db.drop_keyspace("first").unwrap();
    // Two flushes: pages freed by one commit are reusable from the next
    // but one.
    for _ in 0..3 {
        db.put(b"tick", b"tock").unwrap();
        db.flush().unwrap();
    }
    fill("second");
    let after = db.stats().unwrap().pages;
    assert!(
        after <= pages + pages / 5,
        "{pages} pages before, {after} after"
    );
}

/// No keyspace name reaches the disk in clear in an encrypted database.
#[test]
fn keyspace_names_are_sealed_on_disk() {
    let sim = SimVfs::new();
    let name = "canary-keyspace-name-4f1e";
    {
        let db = Db::open_with_config(sim_config(
            &sim,
            Some(EncryptionAlgorithm::ChaCha20Poly1305),
        ))
        .unwrap();
        db.keyspace(name).unwrap().put(b"k", b"v").unwrap();
        db.keyspace("other").unwrap().put(b"k", b"v").unwrap();
        db.drop_keyspace("other").unwrap();
        db.flush().unwrap();
        db.keyspace(name).unwrap().put(b"k2", b"v2").unwrap();
        db.close().unwrap();
    }
    let mut found = Vec::new();
    for file in sim.files() {
        let bytes = sim.read_file(&file).unwrap();
        for needle in [name.as_bytes(), b"other"] {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(file.clone());
            }
        }
    }
    assert!(found.is_empty(), "names in clear in {found:?}");
    // The negative control: a plaintext database shows them.
    let plain = SimVfs::new();
    let db = Db::open_with_config(sim_config(&plain, None)).unwrap();
    db.keyspace(name).unwrap().put(b"k", b"v").unwrap();
    db.close().unwrap();
    let shows = plain.files().iter().any(|f| {
        plain
            .read_file(f)
            .unwrap()
            .windows(name.len())
            .any(|w| w == name.as_bytes())
    });
    assert!(shows);
}

/// A model of several keyspaces under random batches, flushes and
/// reopens: every read agrees with it.
#[test]
fn keyspaces_match_a_model_across_flushes_and_reopens() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    let op = (0u8..4, 0u8..3, 0u8..12, proptest::option::of(0u8..8));
    runner
        .run(&prop::collection::vec(op, 1..120), |ops| {
            let sim = SimVfs::new();
            let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
            let config = || Config::new(dir()).vfs(vfs.clone()).memtable_size(64 << 10);
            let mut db = Db::open_with_config(config()).unwrap();
            let names = ["a", "b", "c"];
            let mut model: BTreeMap<(u8, u8), Vec<u8>> = BTreeMap::new();
            for (what, ks, key, value) in ops {
                match what {
                    0 | 1 => {
                        let k = db.keyspace(names[usize::from(ks)]).unwrap();
                        match value {
                            Some(v) => {
                                k.put([key], [v; 600]).unwrap();
                                model.insert((ks, key), vec![v; 600]);
                            }
                            None => {
                                k.delete([key]).unwrap();
                                model.remove(&(ks, key));
                            }
                        }
                    }
                    2 => db.flush().unwrap(),
                    _ => {
                        db.close().unwrap();
                        db = Db::open_with_config(config()).unwrap();
                    }
                }
            }
            for (i, name) in names.iter().enumerate() {
                let got = collect(db.keyspace(name).unwrap().iter().unwrap());
                let want: Vec<_> = model
                    .range((i as u8, 0)..=(i as u8, u8::MAX))
                    .map(|((_, k), v)| (vec![*k], v.clone()))
                    .collect();
                prop_assert_eq!(got, want);
            }
            prop_assert_eq!(collect(db.iter().unwrap()), vec![]);
            Ok(())
        })
        .unwrap();
}
