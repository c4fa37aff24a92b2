//! `sealkv demo`: the guided tour on a temporary encrypted database.

use std::path::Path;
use std::time::Instant;

use sealkv::crypto::{KeySource, MasterKey, SecretKey};
use sealkv::{Config, Db, Error, WriteBatch};

use crate::exit::CliError;
use crate::progress;

const RECORDS: u32 = 5000;

fn say(line: impl AsRef<str>) -> Result<(), CliError> {
    crate::output::println(line.as_ref())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn email(i: u32) -> String {
    format!("person{i:05}@example.org")
}

fn record(i: u32) -> String {
    format!(
        "{{\"id\":{i},\"name\":\"Person {i:05}\",\"email\":\"{}\",\"note\":\"confidential-{i:05}\"}}",
        email(i)
    )
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Result<Vec<std::path::PathBuf>, CliError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.is_dir() {
            out.extend(files(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

pub(crate) fn run() -> Result<(), CliError> {
    let tmp = tempfile::tempdir().map_err(io(Path::new("<temp dir>")))?;
    let dir = tmp.path().join("demo-db");
    let key_bytes = SecretKey::random().map_err(|e| CliError::Key(e.to_string()))?;
    let key =
        MasterKey::from_bytes(key_bytes.expose()).map_err(|e| CliError::Key(e.to_string()))?;
    say("sealkv demo: an encrypted database in a temporary directory")?;
    say(format!("  database   {}", dir.display()))?;
    say("  key        a fresh random 256-bit master key (never written anywhere)")?;

    let config = || Config::new(&dir).encryption_key(key.clone());
    let db = Db::open_with_config(config())?;
    let started = Instant::now();
    let bar = progress::bytes(u64::from(RECORDS), "load");
    let mut batch = WriteBatch::new();
    for i in 0..RECORDS {
        batch.put(format!("user/{i:05}"), record(i));
        if batch.len() == 500 {
            db.write(&batch)?;
            batch.clear();
        }
        bar.inc(1);
    }
    db.write(&batch)?;
    bar.finish_and_clear();
    db.flush()?;
    say(format!(
        "1. loaded {RECORDS} records (batches of 500, fsynced) and flushed them in {:.0?}",
        started.elapsed()
    ))?;

    // Look for the plaintext in every byte on disk.
    let mut bytes_on_disk = 0usize;
    let mut found = 0usize;
    let all = files(&dir)?;
    for path in &all {
        let data = std::fs::read(path).map_err(io(path))?;
        bytes_on_disk += data.len();
        for i in (0..RECORDS).step_by(50) {
            let needle = format!("confidential-{i:05}");
            if data.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found += 1;
            }
        }
    }
    say(format!(
        "2. searched {} files ({bytes_on_disk} bytes) for 100 of the records' texts: {found} found",
        all.len()
    ))?;
    if found > 0 {
        return Err(CliError::CheckFailed(
            "plaintext found on disk in an encrypted database".into(),
        ));
    }

    let stats = db.stats()?;
    say(format!(
        "3. stats: encrypt_at_rest={} algorithm={} data keys={:?} pages={} WAL bytes={}",
        stats.encryption.encrypt_at_rest,
        stats
            .encryption
            .algorithm
            .and_then(sealkv::crypto::EncryptionAlgorithm::from_id)
            .map_or_else(|| "none".to_string(), |a| a.to_string()),
        stats
            .encryption
            .data_keys
            .iter()
            .map(|k| k.0)
            .collect::<Vec<_>>(),
        stats.pages,
        stats.wal_bytes
    ))?;

    let report = db.verify()?;
    say(format!(
        "4. verify: {} entries, {} pages and {} WAL records authenticated, {} problems",
        report.entries,
        report.pages_checked,
        report.wal_records,
        report.findings.len()
    ))?;

    let tenant = db.create_field_key()?;
    db.put_sealed(b"tenant/42/ssn", b"078-05-1120", tenant)?;
    let before = db.get_sealed(b"tenant/42/ssn", None)?;
    db.destroy_field_key(tenant)?;
    let after = db.get_sealed(b"tenant/42/ssn", None);
    say(format!(
        "5. field-level encryption: sealed value read back ({}), field key destroyed, now: {}",
        if before.is_some() { "ok" } else { "missing" },
        match after {
            Err(Error::KeyDestroyed(_)) => "unreadable for good (crypto-shredding)",
            _ => "STILL READABLE",
        }
    ))?;

    let backup_dir = tmp.path().join("demo-backup");
    let backup = db.backup_to(&backup_dir, &mut |_| {})?;
    let copy = Db::open_with_config(
        Config::new(&backup_dir)
            .encryption_key(key.clone())
            .read_only(true),
    )?;
    let checked = copy.verify()?;
    let same = copy.get(b"user/04242")? == db.get(b"user/04242")?;
    drop(copy);
    say(format!(
        "6. hot backup: pages copied still sealed up to sequence {}; the copy verifies with {} problems and reads the same ({})",
        backup.seq,
        checked.findings.len(),
        if same { "ok" } else { "DIFFERENT" }
    ))?;

    let old_key = db.stats()?.encryption.active_key.map_or(0, |k| k.0);
    let rotated = db.rotate_data_key()?;
    db.put(b"after-rotation", b"sealed under the new data key")?;
    let re = db.reencrypt(&mut |_| std::ops::ControlFlow::Continue(()))?;
    say(format!(
        "7. data-key rotation and re-encryption: everything rewritten under data key {} ({} entries), retired data keys {:?} (key {old_key} erased)",
        rotated.0,
        re.entries,
        re.retired.iter().map(|k| k.0).collect::<Vec<_>>()
    ))?;

    let new_key = MasterKey::from_bytes(
        SecretKey::random()
            .map_err(|e| CliError::Key(e.to_string()))?
            .expose(),
    )
    .map_err(|e| CliError::Key(e.to_string()))?;
    db.rekey(KeySource::Key(new_key.clone()))?;
    db.close()?;
    let old = Db::open_with_config(config());
    let reopened = Db::open_with_config(Config::new(&dir).encryption_key(new_key))?;
    let sample = reopened.get(b"user/04242")?;
    say(format!(
        "8. rekey: the old master key now gets {}; the new one reads user/04242 = {}",
        match old {
            Err(Error::WrongKey) => "WrongKey".to_string(),
            Err(e) => e.to_string(),
            Ok(_) => "IN (wrong!)".to_string(),
        },
        sample.map_or_else(
            || "<missing>".into(),
            |v| String::from_utf8_lossy(&v).into_owned()
        )
    ))?;
    reopened.close()?;
    say("done: every byte written was sealed; the temporary directory is removed now.")?;
    Ok(())
}
