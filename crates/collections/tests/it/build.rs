//! Indexes declared after records exist are built; dropped ones go.

use sealkv_collections::{Collection, Error, Index};

use crate::support::{User, norm, open_db, schema, user};

fn base() -> sealkv_collections::Schema<User, u64> {
    sealkv_collections::Schema::new("users", |u: &User| u.id).tenant(|u| u.tenant.clone())
}

#[test]
fn a_new_index_is_built_over_stored_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), true);
    let plain = Collection::open(&db, base()).unwrap();
    // More than one build step.
    for i in 0..600u64 {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        plain
            .insert(&user(
                i,
                tenant,
                &format!("n{i}"),
                (i % 50) as u32,
                &format!("u{i}@x.org"),
            ))
            .unwrap();
    }
    let users = Collection::open(&db, schema()).unwrap();
    assert_eq!(users.find("age", &7u32).unwrap().len(), 12);
    assert_eq!(users.find_unique("name", "n599").unwrap().unwrap().id, 599);
    assert_eq!(
        users
            .find_in_tenant("globex", "email", &norm("U301@x.org"))
            .unwrap()[0]
            .id,
        301
    );
    let report = users.verify().unwrap();
    assert!(
        report.is_clean(),
        "{:?}",
        &report.findings[..3.min(report.findings.len())]
    );
    assert_eq!((report.records, report.entries), (600, 1800));
    // The old handle knows nothing of the new indexes: refused.
    assert!(matches!(
        plain.insert(&user(1000, "acme", "z", 1, "z@x")),
        Err(Error::SchemaChanged { .. })
    ));

    // Dropping the indexes again deletes their entries.
    let plain = Collection::open(&db, base()).unwrap();
    let report = plain.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.entries, 0);
    // Records still list the dropped entries until rewritten; deleting
    // one works.
    assert!(plain.delete(&5).unwrap());
    assert_eq!(plain.count().unwrap(), 599);
}

#[test]
fn a_unique_index_over_shared_values_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let plain = Collection::open(&db, base()).unwrap();
    plain.insert(&user(1, "acme", "ada", 1, "a@x")).unwrap();
    plain.insert(&user(2, "acme", "ada", 2, "b@x")).unwrap();
    let err = Collection::open(
        &db,
        base().index("name", Index::unique(), |u| u.name.clone()),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::UniqueViolation { index, .. } if index == "name"),
        "{err:?}"
    );
    let plain = Collection::open(&db, base()).unwrap();
    let report = plain.verify().unwrap();
    assert!(report.is_clean() && report.entries == 0, "{report:?}");
    // A non-unique one builds.
    let by_name = Collection::open(
        &db,
        base().index("name", Index::plain(), |u| u.name.clone()),
    )
    .unwrap();
    assert_eq!(by_name.find("name", "ada").unwrap().len(), 2);
}

#[test]
fn an_index_declared_again_differently_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    drop(Collection::open(&db, schema()).unwrap());
    for changed in [
        base().index("age", Index::unique(), |u| u.age),
        base().index("age", Index::plain().blind(), |u| u.age),
        base().index("age", Index::plain(), |u| u64::from(u.age)),
    ] {
        let err = Collection::open(&db, changed).unwrap_err();
        assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
    }
}

#[test]
fn records_of_an_older_schema_version_are_upgraded_on_read() {
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct V1 {
        id: u64,
        name: String,
    }
    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct V2 {
        id: u64,
        name: String,
        admin: bool,
    }
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let v1 = Collection::open(
        &db,
        sealkv_collections::Schema::new("people", |p: &V1| p.id),
    )
    .unwrap();
    v1.insert(&V1 {
        id: 1,
        name: "ada".into(),
    })
    .unwrap();
    let v2 = Collection::open(
        &db,
        sealkv_collections::Schema::new("people", |p: &V2| p.id)
            .version(2)
            .upgrade(1, |old: V1| V2 {
                id: old.id,
                name: old.name,
                admin: false,
            }),
    )
    .unwrap();
    assert_eq!(
        v2.get(&1).unwrap().unwrap(),
        V2 {
            id: 1,
            name: "ada".into(),
            admin: false
        }
    );
    v2.insert(&V2 {
        id: 2,
        name: "bo".into(),
        admin: true,
    })
    .unwrap();
    let err = v1.get(&2).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NewerSchema {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let no_upgrade = Collection::open(
        &db,
        sealkv_collections::Schema::new("people", |p: &V2| p.id).version(3),
    )
    .unwrap();
    assert!(matches!(
        no_upgrade.get(&1),
        Err(Error::NoUpgrade { version: 1, .. })
    ));
}

/// A power cut while an index is being built over stored records: at the
/// next open that declares the index, the build goes on from where it
/// stopped, and every record is found through it exactly once.
#[test]
fn an_index_build_cut_by_a_power_failure_goes_on_at_the_next_open() {
    use std::sync::Arc;

    use sealkv::SyncMode;
    use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs};

    // Three build steps.
    const RECORDS: u64 = 600;
    let config = |vfs: Arc<dyn sealkv_fileio::Vfs>| {
        sealkv::Config::new("/db")
            .vfs(vfs)
            .sync_mode(SyncMode::Always)
            .encryption_key(crate::support::key())
    };
    let name = |i: u64| format!("n{i}");
    // Index entries stored: the three indexes of `schema()` per record
    // once built.
    let entries = |db: &sealkv::Db| {
        db.keyspace("sealkv.collection.users")
            .unwrap()
            .prefix([0x02])
            .unwrap()
            .count() as u64
    };
    let mut cut_midway = 0;
    let mut cut_before_any = 0;
    let mut cut_after_filling = 0;
    let mut completed = false;
    for nth_sync in 1.. {
        let sim = SimVfs::new();
        let db = sealkv::Db::open_with_config(config(Arc::new(sim.clone()))).unwrap();
        let plain = Collection::open(&db, base()).unwrap();
        db.transaction(|tx| {
            let mut plain = plain.in_tx(tx);
            for i in 0..RECORDS {
                let tenant = if i % 2 == 0 { "acme" } else { "globex" };
                plain.insert(&user(
                    i,
                    tenant,
                    &name(i),
                    (i % 50) as u32,
                    &format!("u{i}@x"),
                ))?;
            }
            Ok::<_, Error>(())
        })
        .unwrap();
        drop(plain);
        drop(db);

        let faulty = FaultyVfs::over_sim(&sim);
        faulty.arm(FaultPlan::from(OpKind::Sync, nth_sync));
        // The open itself syncs too: a cut there leaves nothing built.
        let cut = match sealkv::Db::open_with_config(config(Arc::new(faulty.clone()))) {
            Ok(db) => {
                let built = Collection::open(&db, schema());
                let cut = built.is_err();
                // A killed process: nothing dropped, nothing more synced.
                std::mem::forget(built);
                std::mem::forget(db);
                cut
            }
            Err(_) => true,
        };
        if faulty.injected() == 0 {
            // The whole build ran before the armed sync: every cut point
            // has been tried.
            assert!(!cut);
            completed = true;
            break;
        }
        assert!(cut, "the build reported success past a failed sync");
        sim.crash_torn(nth_sync);

        let db = sealkv::Db::open_with_config(config(Arc::new(sim.clone()))).unwrap();
        match entries(&db) {
            0 => cut_before_any += 1,
            n if n < 3 * RECORDS => cut_midway += 1,
            // Every entry written, the index not yet marked built.
            n if n == 3 * RECORDS => cut_after_filling += 1,
            n => panic!("{n} entries before the build went on"),
        }
        let users = Collection::open(&db, schema()).unwrap();
        assert_eq!(entries(&db), 3 * RECORDS, "cut at sync {nth_sync}");
        for i in (0..RECORDS).step_by(97) {
            assert_eq!(users.find_unique("name", &name(i)).unwrap().unwrap().id, i);
        }
        assert_eq!(users.find("age", &7u32).unwrap().len(), 12);
        let report = users.verify().unwrap();
        assert!(report.is_clean(), "cut at sync {nth_sync}: {report:?}");
        assert_eq!((report.records, report.entries), (RECORDS, 3 * RECORDS));
    }
    assert!(completed);
    // The build commits a step of records at a time: some cuts left part
    // of the index built, and the next open finished it.
    assert!(cut_midway >= 2, "{cut_midway} cuts inside the build");
    assert!(cut_before_any >= 1, "{cut_before_any} cuts before it");
    assert!(cut_after_filling >= 1, "{cut_after_filling} cuts after it");
}
