//! Sealed fields and blind-indexed values never reach a file — of the
//! database, its backups or its exports — in any encoding, even in a
//! database with encryption at rest off.

use sealkv::crypto::KeySource;
use sealkv_backup::archive::{self, ExportOptions};
use sealkv_testkit::secrets::SecretScanner;
use sealkv_testkit::{Canaries, read_tree};

use crate::support::{User, key, open_db, users};
use sealkv_collections::Sealed;

/// Every place a canary occurs, in any form the testkit's scanner knows:
/// raw, lower and upper hex, standard and URL-safe base64, and every 8-byte
/// window raw and in hex.
fn leaks(files: &[(String, Vec<u8>)], canaries: &Canaries) -> Vec<String> {
    let mut scanner = SecretScanner::new();
    for (i, c) in canaries.all().enumerate() {
        scanner.add_key(&format!("canary {i}"), c);
    }
    files
        .iter()
        .flat_map(|(name, bytes)| {
            scanner
                .scan(bytes)
                .into_iter()
                .map(move |f| format!("{name}: {f}"))
        })
        .collect()
}

#[test]
fn no_file_holds_a_sealed_value_in_any_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let db = open_db(&root.join("db"), false); // encryption at rest off
    let users = users(&db);
    let canaries = Canaries::new(40);
    // Not sealed: the control that proves the scan sees what is there.
    let visible = b"VISIBLE-NAME-wqzkhvbnfrtxplmsdc".to_vec();
    for i in 0..40 {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        users
            .insert(&User {
                id: i as u64,
                tenant: if i % 2 == 0 { "acme" } else { "globex" }.into(),
                name: format!("{}{i}", text(&visible)),
                age: 30,
                email: Sealed::new(text(canaries.key(i))),
                ssn: Sealed::new(text(canaries.value(i))),
            })
            .unwrap();
    }
    // Through the log, the memtable, the pages and a rewrite.
    db.flush().unwrap();
    users.update(&3, |u| u.age = 31).unwrap();
    assert_eq!(
        users
            .get(&3)
            .unwrap()
            .unwrap()
            .ssn
            .value()
            .unwrap()
            .as_bytes(),
        canaries.value(3)
    );
    db.backup_to(&root.join("backup"), &mut |_| {}).unwrap();
    let master = KeySource::Key(key());
    archive::export(
        &db,
        &root.join("sealed.skva"),
        &ExportOptions::sealed(master),
        &mut |_| {},
    )
    .unwrap();
    archive::export(
        &db,
        &root.join("plain.skva"),
        &ExportOptions::plaintext_unencrypted(),
        &mut |_| {},
    )
    .unwrap();
    drop(users);
    db.close().unwrap();

    let files = read_tree(root);
    assert!(files.len() >= 6, "{} files", files.len());
    let control: Vec<_> = ["/db/", "/backup/", "plain.skva"]
        .iter()
        .map(|part| {
            files
                .iter()
                .filter(|(n, _)| n.contains(part))
                .any(|(_, b)| b.windows(visible.len()).any(|w| w == visible))
        })
        .collect();
    assert_eq!(
        control,
        [true, true, true],
        "the scan must see the unsealed field"
    );
    let found = leaks(&files, &canaries);
    assert!(found.is_empty(), "sealed values on disk: {found:?}");
}
