//! An end-to-end check for a cipher plugin: a database sealed with the
//! plugin's algorithm goes through every operation that reads or writes
//! sealed bytes, and each step checks what it must.
//!
//! A plugin enters a [`CryptoProvider`] only after its self-test
//! ([`sealkv::crypto::selftest`]); [`round_trip`] then shows the rest of
//! sealkv works with it: create, reopen, `verify`, a provider without the
//! plugin refused, field encryption, data-key rotation and re-encryption,
//! rekey, hot backup and restore, a sealed export with the plugin's
//! algorithm, its verification, and imports into a plugin database and a
//! built-in one. A plugin crate runs it in its tests:
//!
//! ```
//! use std::sync::Arc;
//! use sealkv::crypto::{CryptoProvider, EncryptionAlgorithm};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! // With a plugin: `CryptoProvider::default().with_algorithm(plugin)?` and its id.
//! let provider = Arc::new(CryptoProvider::default());
//! let report = sealkv_provider_check::round_trip(
//!     provider,
//!     EncryptionAlgorithm::ChaCha20Poly1305.id(),
//!     dir.path(),
//! )?;
//! assert!(report.steps.contains(&"backup and restore"));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use sealkv::crypto::{AlgorithmId, CryptoProvider, EncryptionAlgorithm, KeySource, MasterKey};
use sealkv::{Config, Db};
use sealkv_backup::archive::{self, ExportOptions, ImportOptions};
use sealkv_backup::physical::{RestoreOptions, restore};

/// Records the check writes, reads back and carries through every step.
const RECORDS: u32 = 300;

/// What went wrong, at which step.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {what}")]
pub struct CheckFailed {
    /// The step.
    pub step: &'static str,
    /// What happened.
    pub what: String,
}

/// The steps that passed, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One line per step.
    pub steps: Vec<&'static str>,
}

fn fail(step: &'static str) -> impl Fn(&dyn std::fmt::Display) -> CheckFailed {
    move |e| CheckFailed {
        step,
        what: e.to_string(),
    }
}

fn expect(step: &'static str, ok: bool, what: &str) -> Result<(), CheckFailed> {
    if ok {
        Ok(())
    } else {
        Err(CheckFailed {
            step,
            what: what.to_string(),
        })
    }
}

fn records() -> BTreeMap<Vec<u8>, Vec<u8>> {
    (0..RECORDS)
        .map(|i| {
            (
                format!("key-{i:05}").into_bytes(),
                format!("value {i} ")
                    .repeat(i as usize % 9 + 1)
                    .into_bytes(),
            )
        })
        .collect()
}

fn key(byte: u8) -> MasterKey {
    // Distinct fixed keys: the check needs no secrecy, only distinct keys.
    MasterKey::from_bytes(&[byte; 32]).unwrap_or_else(|_| unreachable!("32 bytes"))
}

fn config(dir: &Path, provider: &Arc<CryptoProvider>, key: MasterKey) -> Config {
    Config::new(dir)
        .encryption_key(key)
        .crypto_provider(provider.clone())
        .create_if_missing(false)
}

/// Every record of `db`, with the expected ones checked.
fn check_records(
    step: &'static str,
    db: &Db,
    expected: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), CheckFailed> {
    let mut got = BTreeMap::new();
    for item in db.range::<&[u8]>(..).map_err(|e| fail(step)(&e))? {
        let (k, v) = item.map_err(|e| fail(step)(&e))?;
        got.insert(k.to_vec(), v.to_vec());
    }
    expect(
        step,
        &got == expected,
        "the records differ from those written",
    )
}

fn check_algorithm(step: &'static str, db: &Db, algorithm: AlgorithmId) -> Result<(), CheckFailed> {
    let stats = db.stats().map_err(|e| fail(step)(&e))?;
    expect(
        step,
        stats.encryption.algorithm == Some(algorithm)
            && stats.encryption.algorithm_info.map(|i| i.id) == Some(algorithm),
        "stats do not show the plugin's algorithm",
    )
}

fn check_verify(step: &'static str, db: &Db) -> Result<(), CheckFailed> {
    let report = db.verify().map_err(|e| fail(step)(&e))?;
    expect(
        step,
        report.findings.is_empty() && report.entries > 0,
        "verify found problems or nothing",
    )
}

/// Runs a database sealed with `algorithm` of `provider` through every
/// operation, in directories under `dir`. `algorithm` must be an AEAD
/// algorithm the provider holds; the default provider must not hold it
/// for the "a provider without the plugin is refused" step to apply (it
/// is skipped for a built-in algorithm).
pub fn round_trip(
    provider: Arc<CryptoProvider>,
    algorithm: AlgorithmId,
    dir: &Path,
) -> Result<Report, CheckFailed> {
    let mut steps = Vec::new();
    let mut expected = records();
    let live = dir.join("live");

    let step = "create";
    let db = Db::open_with_config(
        config(&live, &provider, key(1))
            .create_if_missing(true)
            .encryption_algorithm(algorithm),
    )
    .map_err(|e| fail(step)(&e))?;
    for (k, v) in &expected {
        db.put(k, v).map_err(|e| fail(step)(&e))?;
    }
    let field_key = db.create_field_key().map_err(|e| fail(step)(&e))?;
    db.put_sealed(b"sealed-field", b"field value", field_key)
        .map_err(|e| fail(step)(&e))?;
    check_algorithm(step, &db, algorithm)?;
    db.close().map_err(|e| fail(step)(&e))?;
    steps.push(step);

    let step = "reopen";
    let db = Db::open_with_config(config(&live, &provider, key(1))).map_err(|e| fail(step)(&e))?;
    let field = db
        .get_sealed(b"sealed-field", None)
        .map_err(|e| fail(step)(&e))?;
    expect(
        step,
        field.as_deref() == Some(&b"field value"[..]),
        "the field value",
    )?;
    expected.insert(
        b"sealed-field".to_vec(),
        db.get(b"sealed-field")
            .map_err(|e| fail(step)(&e))?
            .unwrap_or_default(),
    );
    check_records(step, &db, &expected)?;
    check_algorithm(step, &db, algorithm)?;
    steps.push(step);

    let step = "verify";
    check_verify(step, &db)?;
    steps.push(step);

    let step = "a provider without the algorithm is refused";
    if EncryptionAlgorithm::from_id(algorithm).is_none() {
        db.flush().map_err(|e| fail(step)(&e))?;
        let copy = dir.join("copy-for-default-provider");
        db.backup_to(&copy, &mut |_| {})
            .map_err(|e| fail(step)(&e))?;
        let refused =
            Db::open_with_config(config(&copy, &Arc::new(CryptoProvider::default()), key(1)));
        expect(step, refused.is_err(), "the default provider opened it")?;
        steps.push(step);
    }

    let step = "rotate and re-encrypt";
    let old = db.rotate_data_key().map_err(|e| fail(step)(&e))?;
    db.put(b"after-rotation", b"x")
        .map_err(|e| fail(step)(&e))?;
    expected.insert(b"after-rotation".to_vec(), b"x".to_vec());
    let report = db
        .reencrypt(&mut |_| ControlFlow::Continue(()))
        .map_err(|e| fail(step)(&e))?;
    expect(
        step,
        report.complete && !report.retired.is_empty() && old.0 > 0,
        "re-encryption did not complete or retired nothing",
    )?;
    check_records(step, &db, &expected)?;
    check_algorithm(step, &db, algorithm)?;
    check_verify(step, &db)?;
    steps.push(step);

    let step = "rekey";
    db.rekey(KeySource::Key(key(2)))
        .map_err(|e| fail(step)(&e))?;
    db.close().map_err(|e| fail(step)(&e))?;
    expect(
        step,
        Db::open_with_config(config(&live, &provider, key(1))).is_err(),
        "the old key still opens it",
    )?;
    let db = Db::open_with_config(config(&live, &provider, key(2))).map_err(|e| fail(step)(&e))?;
    check_records(step, &db, &expected)?;
    steps.push(step);

    let step = "backup and restore";
    let backup = dir.join("backup");
    db.backup_to(&backup, &mut |_| {})
        .map_err(|e| fail(step)(&e))?;
    let restored = dir.join("restored");
    restore(
        &config(&backup, &provider, key(2)),
        &restored,
        &RestoreOptions::new(),
        &mut |_| {},
    )
    .map_err(|e| fail(step)(&e))?;
    let copy =
        Db::open_with_config(config(&restored, &provider, key(2))).map_err(|e| fail(step)(&e))?;
    check_records(step, &copy, &expected)?;
    check_algorithm(step, &copy, algorithm)?;
    check_verify(step, &copy)?;
    copy.close().map_err(|e| fail(step)(&e))?;
    steps.push(step);

    let step = "export and verify the archive";
    let archive_path = dir.join("export.skva");
    let archive_key = KeySource::Key(key(3));
    let summary = archive::export(
        &db,
        &archive_path,
        &ExportOptions::sealed(archive_key.clone())
            .algorithm(algorithm)
            .crypto_provider(provider.clone()),
        &mut |_| {},
    )
    .map_err(|e| fail(step)(&e))?;
    expect(
        step,
        summary.records == expected.len() as u64,
        "the archive holds another number of records",
    )?;
    let checked =
        archive::verify_archive_with(&archive_path, Some(&archive_key), &provider, &mut |_| {})
            .map_err(|e| fail(step)(&e))?;
    expect(
        step,
        checked.records == summary.records,
        "verify counted other records",
    )?;
    db.close().map_err(|e| fail(step)(&e))?;
    steps.push(step);

    for (step, target, into) in [
        (
            "import into a database of the plugin's algorithm",
            "imported-plugin",
            algorithm,
        ),
        (
            "import into a built-in algorithm's database",
            "imported-builtin",
            EncryptionAlgorithm::Aes256Gcm.id(),
        ),
    ] {
        let dest = dir.join(target);
        let p = provider.clone();
        archive::import(
            &archive_path,
            Some(&archive_key),
            &dest,
            &|d| {
                Config::new(d)
                    .encryption_key(key(4))
                    .encryption_algorithm(into)
                    .crypto_provider(p.clone())
            },
            &ImportOptions::new().crypto_provider(provider.clone()),
            &mut |_| {},
        )
        .map_err(|e| fail(step)(&e))?;
        let db =
            Db::open_with_config(config(&dest, &provider, key(4))).map_err(|e| fail(step)(&e))?;
        check_records(step, &db, &expected)?;
        check_algorithm(step, &db, into)?;
        db.close().map_err(|e| fail(step)(&e))?;
        steps.push(step);
    }

    Ok(Report { steps })
}
