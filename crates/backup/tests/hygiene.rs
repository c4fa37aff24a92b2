//! Key hygiene: a full workload in every mode — create, writes,
//! flush, reopen, rotation, rekey, re-encryption, field-level encryption,
//! physical backup and restore, export and import, a key wrapper (and an
//! archive sealed under it), a wrong
//! key, damaged files — with every `tracing` event captured at TRACE level. No form of
//! any key or passphrase may appear in the captured logs, nor in the
//! `Debug` or `Display` of any error returned or of the key-carrying types
//! — nor any data key, field key or derived subkey made during the run
//! (recorded through the crypto crate's test-only `secret-census` feature);
//! every file written is `0600` and every directory `0700`.
//!
//! It lives in the backup crate because it drives the engine and the
//! backup crate together (the engine's tests cannot use this crate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use sealkv::crypto::registry::{KeyRegistry, RegistryFile};
use sealkv::crypto::{
    EncryptionAlgorithm, KdfParams, KeySource, MasterKey, Passphrase, SoftwareWrapper,
};
use sealkv::{Config, Db, Error};
use sealkv_backup::archive::{self, ExportOptions, ImportOptions};
use sealkv_backup::{RestoreOptions, restore, verify_backup};
use sealkv_fileio::SplitMix64;
use sealkv_testkit::secrets::{SecretScanner, capture_logs};

/// Deterministic key bytes that differ in every 8-byte window, and from
/// mode to mode.
fn key_bytes(seed: u8) -> [u8; 32] {
    let mut rng = SplitMix64::new(u64::from(seed));
    let mut out = [0u8; 32];
    for b in &mut out {
        *b = (rng.next_u64() >> 24) as u8;
    }
    out
}

fn passphrase_text(seed: u8) -> String {
    // No English word that a log line could hold by chance.
    format!("tangerine-orbit-lantern-{seed}-Qz7vX")
}

/// Every secret of the run, and the text that must not hold any of them.
#[derive(Default)]
struct Evidence {
    scanner: SecretScanner,
    secrets: usize,
    texts: Vec<(String, String)>,
}

impl Evidence {
    fn key(&mut self, name: &str, seed: u8) -> MasterKey {
        let bytes = key_bytes(seed);
        self.scanner.add_key(name, &bytes);
        self.secrets += 1;
        MasterKey::from_bytes(&bytes).unwrap()
    }

    fn passphrase(&mut self, name: &str, seed: u8) -> Passphrase {
        let text = passphrase_text(seed);
        self.scanner.add_text(name, &text);
        self.secrets += 1;
        Passphrase::new(text).unwrap()
    }

    /// Records the `Debug` of `value`.
    fn debug(&mut self, what: &str, value: &dyn Debug) {
        self.texts
            .push((format!("{what} (Debug)"), format!("{value:?}")));
    }

    /// Records an error's `Debug` and `Display` and returns it.
    fn error<E: Debug + std::fmt::Display>(&mut self, what: &str, e: E) -> E {
        self.texts
            .push((format!("{what} (Debug)"), format!("{e:?}")));
        self.texts
            .push((format!("{what} (Display)"), e.to_string()));
        e
    }

    /// Unwraps `r`, recording its error if it failed.
    fn ok<T, E: Debug + std::fmt::Display>(&mut self, what: &str, r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("{what}: {}", self.error(what, e)),
        }
    }

    /// Expects an error, recording it.
    fn err<T, E: Debug + std::fmt::Display>(&mut self, what: &str, r: Result<T, E>) -> E {
        match r {
            Ok(_) => panic!("{what}: expected an error"),
            Err(e) => self.error(what, e),
        }
    }
}

fn config(path: &Path, key: &MasterKey, alg: Option<EncryptionAlgorithm>) -> Config {
    let c = Config::new(path)
        .encryption_key(key.clone())
        .wal_segment_size(64 << 10)
        .memtable_size(64 << 10)
        // Fsyncs add nothing to what is logged, and cost minutes here.
        .sync_mode(sealkv::SyncMode::Never);
    match alg {
        Some(a) => c.encrypt_at_rest(true).encryption_algorithm(a),
        None => c.encrypt_at_rest(false),
    }
}

fn fill(db: &Db, round: u32) {
    for i in 0..1500u32 {
        db.put(
            format!("h/{:05}", i % 900),
            format!("round {round} value {i}").repeat(4),
        )
        .unwrap();
        if i % 9 == 0 {
            db.delete(format!("h/{:05}", i / 3)).unwrap();
        }
    }
}

/// The whole workload for one mode, under `root`.
fn workload(ev: &mut Evidence, root: &Path, alg: Option<EncryptionAlgorithm>, seed: u8) {
    let name = alg.map_or("plaintext".to_string(), |a| a.to_string());
    let k1 = ev.key(&format!("{name} master key"), seed);
    let k2 = ev.key(&format!("{name} second master key"), seed + 1);
    let k3 = ev.key(&format!("{name} archive key"), seed + 2);
    let pass = ev.passphrase(&format!("{name} archive passphrase"), seed);
    let live = root.join("live");

    // Create, write, flush, reopen.
    let cfg = config(&live, &k1, alg);
    ev.debug("Config", &cfg);
    ev.debug("MasterKey", &k1);
    ev.debug("KeySource::Key", &KeySource::Key(k1.clone()));
    ev.debug("Passphrase", &pass);
    let db = ev.ok("open (create)", Db::open_with_config(cfg.clone()));
    fill(&db, 1);
    ev.ok("flush", db.flush());
    ev.debug("Db", &db);
    ev.debug("Stats", &ev_stats(&db));
    ev.ok("close", db.close());
    let db = ev.ok("reopen", Db::open_with_config(cfg));
    fill(&db, 2);

    // Rotation and re-encryption (encrypted at rest only).
    if alg.is_some() {
        let id = ev.ok("rotate", db.rotate_data_key());
        fill(&db, 3);
        let report = ev.ok(
            "reencrypt",
            db.reencrypt(&mut |_| std::ops::ControlFlow::Continue(())),
        );
        assert!(report.complete);
        assert!(report.retired.iter().all(|&r| r != id));
        ev.debug("ReencryptReport", &report);
    } else {
        let e = ev.err("rotate a plaintext database", db.rotate_data_key());
        assert!(matches!(e, Error::NotEncrypted { .. }), "{e:?}");
    }

    // Field-level encryption.
    let fk = ev.ok("field key", db.create_field_key());
    ev.ok("put_sealed", db.put_sealed("f/1", "secret field", fk));
    let got = ev.ok("get_sealed", db.get_sealed("f/1", None));
    assert_eq!(got.as_deref(), Some(&b"secret field"[..]));
    let dk = ev.ok("deterministic key", db.create_deterministic_field_key());
    ev.ok(
        "put_deterministic",
        db.put_deterministic("f/2", "ssn", dk, b"ssn"),
    );
    ev.ok("destroy field key", db.destroy_field_key(fk));
    let e = ev.err("read a shredded value", db.get_sealed("f/1", None));
    assert!(matches!(e, Error::KeyDestroyed(_)), "{e:?}");

    // Rekey to the second master key; the first is refused afterwards.
    ev.ok("rekey", db.rekey(KeySource::Key(k2.clone())));
    let registry_bytes = std::fs::read(live.join("KEYS")).unwrap();
    let registry = ev.ok(
        "registry",
        KeyRegistry::open(&registry_bytes, &KeySource::Key(k2.clone())),
    );
    ev.debug("KeyRegistry", &registry);
    let active = registry.active_data_key();
    if alg.is_some() {
        let dek = ev.ok("data key", registry.data_key(active));
        ev.debug("DataKey", &dek);
    }
    ev.debug(
        "RegistryFile",
        &RegistryFile::new(std::sync::Arc::new(sealkv_fileio_std()), &live),
    );
    let e = ev.err(
        "registry under the old key",
        KeyRegistry::open(&registry_bytes, &KeySource::Key(k1.clone())),
    );
    let _ = e;

    // Physical backup, check, restore.
    let backup = root.join("backup");
    ev.ok("backup", db.backup_to(&backup, &mut |_| {}));
    let bcfg = config(&backup, &k2, alg);
    let summary = ev.ok("verify_backup", verify_backup(&bcfg));
    ev.debug("BackupSummary", &summary);
    let restored = root.join("restored");
    let report = ev.ok(
        "restore",
        restore(&bcfg, &restored, &RestoreOptions::new(), &mut |_| {}),
    );
    ev.debug("BackupReport", &report);
    let e = ev.err(
        "verify_backup with the old key",
        verify_backup(&config(&backup, &k1, alg)),
    );
    assert!(
        matches!(e, sealkv_backup::RestoreError::Db(Error::WrongKey)),
        "{e:?}"
    );

    // Export under a raw key and under a passphrase; check; import.
    let file = root.join("export.skva");
    let src = KeySource::Key(k3.clone());
    ev.ok(
        "export",
        archive::export(&db, &file, &ExportOptions::sealed(src.clone()), &mut |_| {}),
    );
    let s = ev.ok(
        "verify_archive",
        archive::verify_archive(&file, Some(&src), &mut |_| {}),
    );
    ev.debug("ArchiveSummary", &s);
    let pfile = root.join("export-pass.skva");
    let psrc = KeySource::Passphrase {
        passphrase: pass.clone(),
        params: KdfParams::FLOOR,
    };
    ev.debug("KeySource::Passphrase", &psrc);
    ev.ok(
        "export (passphrase)",
        archive::export(
            &db,
            &pfile,
            &ExportOptions::sealed(psrc.clone()),
            &mut |_| {},
        ),
    );
    let imported = root.join("imported");
    let icfg = |d: &Path| config(d, &k3, alg);
    ev.ok(
        "import",
        archive::import(
            &pfile,
            Some(&psrc),
            &imported,
            &icfg,
            &ImportOptions::new(),
            &mut |_| {},
        ),
    );
    let wrong = KeySource::Key(k1.clone());
    let e = ev.err(
        "verify_archive with a wrong key",
        archive::verify_archive(&file, Some(&wrong), &mut |_| {}),
    );
    assert!(
        matches!(e, sealkv_backup::ArchiveError::WrongKey { .. }),
        "{e:?}"
    );
    let wrong_pass = KeySource::Passphrase {
        passphrase: Passphrase::new(passphrase_text(seed.wrapping_add(100))).unwrap(),
        params: KdfParams::FLOOR,
    };
    let e = ev.err(
        "import with a wrong passphrase",
        archive::import(
            &pfile,
            Some(&wrong_pass),
            &root.join("no"),
            &icfg,
            &ImportOptions::new(),
            &mut |_| {},
        ),
    );
    assert!(!root.join("no").exists(), "{e}");
    ev.ok("close", db.close());

    // Wrong key.
    let e = ev.err(
        "open with the old key",
        Db::open_with_config(config(&live, &k1, alg)),
    );
    assert!(matches!(e, Error::WrongKey), "{e:?}");

    // Damaged files: a flipped byte in a copy's registry and page file.
    for (file, at) in [("KEYS", 40usize), ("data.sealkv", 4096 * 3 + 200)] {
        let copy = root.join(format!("damaged-{file}"));
        copy_tree(&restored, &copy);
        let path = copy.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        match Db::open_with_config(config(&copy, &k2, alg)) {
            Err(e) => {
                ev.error(&format!("open with a damaged {file}"), e);
            }
            Ok(db) => {
                let r = ev.ok("verify a damaged copy", db.verify());
                ev.debug("VerifyReport", &r);
                match db.range::<&[u8]>(..) {
                    Ok(it) => {
                        for r in it {
                            if let Err(e) = r {
                                ev.error("read a damaged copy", e);
                            }
                        }
                    }
                    Err(e) => {
                        ev.error("range over a damaged copy", e);
                    }
                }
            }
        }
    }

    for dir in [&live, &backup, &restored, &imported] {
        check_private(dir);
    }
    for f in [&file, &pfile] {
        check_private(f);
    }
}

fn ev_stats(db: &Db) -> sealkv::Stats {
    db.stats().unwrap()
}

fn sealkv_fileio_std() -> sealkv_fileio::StdVfs {
    sealkv_fileio::StdVfs::new()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Files `0600`, directories `0700`, all the way down.
fn check_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut stack: Vec<PathBuf> = vec![path.to_path_buf()];
        while let Some(p) = stack.pop() {
            let m = std::fs::metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o777;
            let want = if m.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode, want, "{} has mode {mode:o}", p.display());
            if m.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            }
        }
    }
}

#[test]
fn no_key_byte_reaches_a_log_line_an_error_or_debug_output_and_files_are_private() {
    let logs = capture_logs();
    // Record every key made from here on (data keys, subkeys...).
    sealkv_crypto_envelope::census::start();
    let mut ev = Evidence::default();
    let mut modes = vec![None];
    modes.extend(EncryptionAlgorithm::ALL.map(Some));
    for (i, alg) in modes.into_iter().enumerate() {
        let root = tempfile::tempdir().unwrap();
        workload(&mut ev, root.path(), alg, 10 * i as u8 + 1);
    }

    // A database opened with a passphrase, rekeyed to a raw key.
    let root = tempfile::tempdir().unwrap();
    let pass = ev.passphrase("database passphrase", 99);
    let k = ev.key("after passphrase", 98);
    let cfg =
        Config::new(root.path().join("p")).passphrase_with_cost(pass.clone(), KdfParams::FLOOR);
    ev.debug("Config (passphrase)", &cfg);
    let db = ev.ok("open (passphrase)", Db::open_with_config(cfg.clone()));
    db.put("a", "b").unwrap();
    ev.ok("rekey (passphrase to key)", db.rekey(KeySource::Key(k)));
    ev.ok("close", db.close());
    let e = ev.err("open with the old passphrase", Db::open_with_config(cfg));
    // The registry now wants a raw key: refused before any derivation.
    assert!(matches!(e, Error::WrongKey | Error::Registry(_)), "{e:?}");
    check_private(&root.path().join("p"));

    // A database under a key wrapper (the in-process stand-in for an HSM,
    // whose wrapping key the scanner knows): its root key and subkeys are
    // in the census; rekeyed to a raw key and back; a wrong wrapper.
    let root = tempfile::tempdir().unwrap();
    let wrapping = ev.key("wrapping key", 97);
    let wrapper = KeySource::Wrapper(std::sync::Arc::new(SoftwareWrapper::new(
        "hygiene-hsm-key",
        wrapping,
    )));
    let other = ev.key("another wrapping key", 96);
    let wrong = KeySource::Wrapper(std::sync::Arc::new(SoftwareWrapper::new(
        "hygiene-hsm-key",
        other,
    )));
    let raw = ev.key("raw key between wrappers", 95);
    let cfg = Config::new(root.path().join("w")).key_source(wrapper.clone());
    ev.debug("Config (wrapper)", &cfg);
    ev.debug("KeySource::Wrapper", &wrapper);
    let db = ev.ok("open (wrapper)", Db::open_with_config(cfg.clone()));
    db.put("a", "b").unwrap();
    ev.ok("rotate (wrapper)", db.rotate_data_key());
    ev.ok("rekey (wrapper to key)", db.rekey(KeySource::Key(raw)));
    ev.ok("rekey (key to wrapper)", db.rekey(wrapper.clone()));
    ev.ok("close", db.close());
    let e = ev.err(
        "open with another wrapping key",
        Db::open_with_config(Config::new(root.path().join("w")).key_source(wrong.clone())),
    );
    assert!(matches!(e, Error::WrongKey), "{e:?}");
    let db = ev.ok("reopen (wrapper)", Db::open_with_config(cfg));
    // An archive sealed under the wrapper: a random archive key of its
    // own (in the census), wrapped; a wrong wrapper's error text.
    let wrapped_archive = root.path().join("wrapped.skva");
    let summary = ev.ok(
        "export (wrapper)",
        archive::export(
            &db,
            &wrapped_archive,
            &ExportOptions::sealed(wrapper.clone()),
            &mut |_| {},
        ),
    );
    ev.debug("ArchiveSummary (wrapper)", &summary);
    ev.err(
        "verify archive with another wrapping key",
        archive::verify_archive(&wrapped_archive, Some(&wrong), &mut |_| {}),
    );
    ev.ok(
        "verify archive (wrapper)",
        archive::verify_archive(&wrapped_archive, Some(&wrapper), &mut |_| {}),
    );
    ev.ok("close", db.close());
    check_private(&root.path().join("w"));

    let captured = logs.snapshot();
    let text = String::from_utf8_lossy(&captured);
    // The capture saw the life-cycle events at every level it enables.
    for event in [
        "database opened",
        "key registry created",
        "key registry opened",
        "flush started",
        "flush committed",
        "WAL segment started",
        "WAL segments retired",
        "data key rotated",
        "re-encryption complete",
        "data key retired",
        "field key destroyed",
        "every key re-wrapped",
        "physical backup finished",
        "physical backup restored",
        "archive export finished",
        "archive import finished",
        "TRACE",
    ] {
        assert!(text.contains(event), "no {event:?} event captured");
    }
    // Every key made during the run — data keys, field keys, the subkeys
    // derived from them, key-encryption subkeys, Argon2id outputs — has no
    // public accessor; the census (a test-only feature) recorded each.
    let mut made = std::collections::HashSet::new();
    for k in sealkv_crypto_envelope::census::recorded_keys() {
        if made.insert(*k) {
            ev.scanner
                .add_key(&format!("key #{} made during the run", made.len()), &k[..]);
        }
    }
    // Two workloads of every mode rotate, re-encrypt and rekey: far more
    // keys are made than the master keys the test chose.
    assert!(made.len() > 100, "{} keys made", made.len());
    ev.secrets += made.len();
    assert!(ev.scanner.len() > 500);
    let mut leaks = Vec::new();
    for found in ev.scanner.scan(&captured) {
        leaks.push(format!("tracing output: {found}"));
    }
    for (what, t) in &ev.texts {
        for found in ev.scanner.scan(t.as_bytes()) {
            leaks.push(format!("{what}: {found}"));
        }
    }
    assert!(ev.texts.len() > 50, "{}", ev.texts.len());
    println!(
        "scanned {} captured tracing lines ({} bytes) and {} Debug/Display texts for {} forms of {} secrets",
        logs.count(),
        captured.len(),
        ev.texts.len(),
        ev.scanner.len(),
        ev.secrets,
    );
    sealkv_testkit::proof::print_proof(
        "key-hygiene",
        "every-mode",
        &[
            ("cases", ev.secrets as u64),
            ("forms", ev.scanner.len() as u64),
            ("trace_lines", logs.count()),
            ("trace_bytes", captured.len() as u64),
            ("texts", ev.texts.len() as u64),
            ("found", leaks.len() as u64),
        ],
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}
