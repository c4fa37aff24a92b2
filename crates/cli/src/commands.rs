//! The database commands: init, put, get, delete, scan, load, flush,
//! stats, verify, backup, restore, rotate-key, reencrypt and rekey (the
//! archive commands are in `archive.rs`, `keygen` in `keygen.rs`, `bench`
//! and `demo` in their own modules).

use std::io::{BufRead, Read, Write};
use std::path::Path;

use sealkv::{Config, Db, WriteBatch};

use crate::args::Global;
use crate::exit::CliError;
use crate::open;
use crate::progress;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn stdout_err(source: std::io::Error) -> CliError {
    CliError::Io {
        path: "<stdout>".into(),
        source,
    }
}

/// `init`: a new database, encrypted when a key is given.
pub(crate) fn init(g: &Global, page_size: Option<u32>) -> Result<(), CliError> {
    let dir = open::db_dir(g)?;
    let key = open::key_source(g)?;
    match (&key, g.plaintext) {
        (Some(_), true) => {
            return Err(CliError::Usage(
                "a key and --plaintext contradict each other".into(),
            ));
        }
        (None, false) => {
            return Err(CliError::Usage(
                "give a key option for an encrypted database, or --plaintext".into(),
            ));
        }
        _ => {}
    }
    if dir.join(sealkv::layout::DATA_FILE).exists() {
        return Err(CliError::Exists(dir.to_path_buf()));
    }
    let mut config = Config::new(dir).crypto_provider(open::provider());
    if let Some(k) = key {
        config = config.key_source(k);
    }
    if let Some(alg) = open::algorithm(g)? {
        config = config.encryption_algorithm(alg);
    }
    if let Some(p) = page_size {
        config = config.page_size(p);
    }
    Db::open_with_config(config)?.close()?;
    Ok(())
}

pub(crate) fn put(g: &Global, key: &str, value: &str) -> Result<(), CliError> {
    let db = open::open(g)?;
    if value == "-" {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .map_err(io(Path::new("<stdin>")))?;
        db.put(key, v)?;
    } else {
        db.put(key, value)?;
    }
    db.close()?;
    Ok(())
}

pub(crate) fn get(g: &Global, key: &str) -> Result<(), CliError> {
    let db = open::open_read_only(g)?;
    let value = db.get(key)?.ok_or(CliError::NotFound)?;
    std::io::stdout().write_all(&value).map_err(stdout_err)?;
    Ok(())
}

pub(crate) fn delete(g: &Global, key: &str) -> Result<(), CliError> {
    let db = open::open(g)?;
    db.delete(key)?;
    db.close()?;
    Ok(())
}

/// What `scan` selects.
pub(crate) struct ScanArgs<'a> {
    pub(crate) prefix: Option<&'a str>,
    pub(crate) start: Option<&'a str>,
    pub(crate) end: Option<&'a str>,
    pub(crate) limit: Option<u64>,
    pub(crate) json: bool,
}

pub(crate) fn scan(g: &Global, a: &ScanArgs<'_>) -> Result<(), CliError> {
    use std::ops::Bound;
    let db = open::open_read_only(g)?;
    let iter = match (a.prefix, a.start, a.end) {
        (Some(p), None, None) => db.prefix(p)?,
        (Some(_), _, _) => {
            return Err(CliError::Usage(
                "--prefix cannot be combined with --start/--end".into(),
            ));
        }
        (None, s, e) => db.range::<&[u8]>((
            s.map_or(Bound::Unbounded, |s| Bound::Included(s.as_bytes())),
            e.map_or(Bound::Unbounded, |e| Bound::Excluded(e.as_bytes())),
        ))?,
    };
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let limit = a.limit.unwrap_or(u64::MAX);
    for item in iter.take(usize::try_from(limit).unwrap_or(usize::MAX)) {
        let (k, v) = item?;
        if a.json {
            let line = format!(
                "{{\"key\":{},\"value\":{}}}",
                json_string(&k),
                json_string(&v)
            );
            writeln!(out, "{line}").map_err(stdout_err)?;
        } else {
            out.write_all(&k).map_err(stdout_err)?;
            out.write_all(b"\t").map_err(stdout_err)?;
            out.write_all(&v).map_err(stdout_err)?;
            out.write_all(b"\n").map_err(stdout_err)?;
        }
    }
    out.flush().map_err(stdout_err)?;
    Ok(())
}

/// A JSON string of `bytes`, read as UTF-8 with invalid bytes replaced
/// (U+FFFD): JSON output is for text records; use the tab format for bytes.
pub(crate) fn json_string(bytes: &[u8]) -> String {
    serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()).to_string()
}

/// Parses one `load` line: `key<TAB>value`, or a JSON object with string
/// fields "key" and "value".
fn parse_line(line: &str) -> Option<(String, String)> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let k = v.get("key")?.as_str()?.to_string();
        let val = v.get("value")?.as_str()?.to_string();
        return Some((k, val));
    }
    let (k, v) = line.split_once('\t')?;
    Some((k.to_string(), v.to_string()))
}

pub(crate) fn load(g: &Global, file: &Path) -> Result<(), CliError> {
    let db = open::open(g)?;
    let f = std::fs::File::open(file).map_err(io(file))?;
    let total = f.metadata().map_err(io(file))?.len();
    let bar = progress::bytes(total, "load");
    let reader = std::io::BufReader::new(f);
    let mut batch = WriteBatch::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(io(file))?;
        bar.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = parse_line(&line).ok_or_else(|| {
            CliError::Input(format!(
                "{}:{}: expected key<TAB>value or a JSON object with \"key\" and \"value\"",
                file.display(),
                n + 1
            ))
        })?;
        batch.put(k, v);
        if batch.len() >= 1000 {
            db.write(&batch)?;
            batch.clear();
        }
    }
    db.write(&batch)?;
    bar.finish_and_clear();
    db.close()?;
    Ok(())
}

pub(crate) fn flush(g: &Global) -> Result<(), CliError> {
    let db = open::open(g)?;
    db.flush()?;
    db.close()?;
    Ok(())
}

pub(crate) fn stats(g: &Global, json: bool) -> Result<(), CliError> {
    let db = open::open_read_only(g)?;
    let s = db.stats()?;
    let enc = &s.encryption;
    let alg = enc
        .algorithm_info
        .map(|a| a.name.to_string())
        .or_else(|| enc.algorithm.map(open::algorithm_name))
        .unwrap_or_else(|| "none".into());
    let coverage = db.key_coverage()?;
    let deks: Vec<String> = coverage
        .keys
        .iter()
        .map(|k| format!("{}({} pages, {} wal)", k.id.0, k.pages, k.wal_segments))
        .collect();
    let fields: Vec<String> = enc.field_keys.iter().map(|id| id.0.to_string()).collect();
    let rows: Vec<(&str, String)> = vec![
        ("path", db.path().display().to_string()),
        ("encrypt_at_rest", enc.encrypt_at_rest.to_string()),
        ("algorithm", alg),
        (
            "active_data_key",
            enc.active_key.map_or("none".into(), |k| k.0.to_string()),
        ),
        ("data_keys", deks.join(",")),
        ("reencrypt_pending", coverage.reencrypt_pending.to_string()),
        ("field_keys", fields.join(",")),
        ("registry_generation", enc.registry_generation.to_string()),
        ("last_seq", s.last_seq.to_string()),
        ("applied_seq", s.applied_seq.to_string()),
        ("memtable_bytes", s.memtable_bytes.to_string()),
        ("wal_bytes", s.wal_bytes.to_string()),
        ("pages", s.pages.to_string()),
        ("file_bytes", s.file_bytes.to_string()),
        ("live_pages", s.live_pages.to_string()),
        ("free_pages", s.free_pages.to_string()),
        ("leaf_fill", format!("{:.3}", s.leaf_fill())),
        ("cache_hit_rate", format!("{:.3}", s.cache_hit_rate())),
        ("torn_tails_repaired", s.torn_tails_repaired.to_string()),
    ];
    let mut out = std::io::stdout().lock();
    if json {
        let body: Vec<String> = rows
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}:{}",
                    json_string(k.as_bytes()),
                    json_string(v.as_bytes())
                )
            })
            .collect();
        writeln!(out, "{{{}}}", body.join(",")).map_err(stdout_err)?;
    } else {
        for (k, v) in rows {
            writeln!(out, "{k:<22}{v}").map_err(stdout_err)?;
        }
    }
    Ok(())
}

/// `verify`: every file checked; any finding is printed and exits 4.
pub(crate) fn verify(g: &Global) -> Result<(), CliError> {
    let db = open::open_read_only(g)?;
    let bar = progress::spinner("verify");
    let report = db.verify();
    bar.finish_and_clear();
    let report = report?;
    let mut out = std::io::stdout().lock();
    for f in &report.findings {
        writeln!(out, "{}: {}", f.file.display(), f.what).map_err(stdout_err)?;
    }
    if report.is_clean() {
        writeln!(
            out,
            "ok: {} entries, {} pages, {} WAL records checked",
            report.entries, report.pages_checked, report.wal_records
        )
        .map_err(stdout_err)?;
        Ok(())
    } else {
        Err(CliError::CheckFailed(format!(
            "{} problem(s) found in {}",
            report.findings.len(),
            db.path().display()
        )))
    }
}

/// `backup DEST`: a hot physical backup, with a progress bar over the page
/// file's bytes.
pub(crate) fn backup(g: &Global, dest: &Path) -> Result<(), CliError> {
    let db = open::open(g)?;
    let bar = progress::bytes(0, "backup");
    let report = db.backup_to(dest, &mut |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
    });
    bar.finish_and_clear();
    let closed = db.close();
    let report = report?;
    closed?;
    writeln!(
        std::io::stdout(),
        "backup at sequence {}: {} pages ({} bytes, {} copied sealed, {} free pages zeroed), {} in {}",
        report.seq,
        report.pages,
        report.bytes,
        report.pages_copied,
        report.free_pages_zeroed,
        if report.encrypted {
            "encrypted"
        } else {
            "plaintext"
        },
        report.path.display()
    )
    .map_err(stdout_err)?;
    Ok(())
}

/// `restore BACKUP DEST`: checks the backup with the key, then puts a copy
/// under a new data key in place.
pub(crate) fn restore(g: &Global, backup: &Path, dest: &Path) -> Result<(), CliError> {
    let mut config = sealkv::Config::new(backup)
        .create_if_missing(false)
        .crypto_provider(open::provider());
    if let Some(source) = open::key_source(g)? {
        config = config.key_source(source);
    }
    let bar = progress::bytes(0, "restore");
    let report = sealkv_backup::restore(
        &config,
        dest,
        &sealkv_backup::RestoreOptions::new(),
        &mut |p| {
            bar.set_length(p.bytes_total);
            bar.set_position(p.bytes_done);
        },
    );
    bar.finish_and_clear();
    let report = report.map_err(|e| match e {
        sealkv_backup::RestoreError::Db(e) => CliError::Db(e),
        damaged => CliError::CheckFailed(damaged.to_string()),
    })?;
    let rotated = report
        .rotated_to
        .map_or(String::new(), |k| format!("; new data key {}", k.0));
    writeln!(
        std::io::stdout(),
        "restored {} at sequence {} into {}{rotated}",
        backup.display(),
        report.seq,
        report.path.display()
    )
    .map_err(stdout_err)?;
    Ok(())
}

/// `rotate-key`: new writes are sealed under a new data key.
pub(crate) fn rotate_key(g: &Global) -> Result<(), CliError> {
    let db = open::open(g)?;
    let id = db.rotate_data_key()?;
    db.close()?;
    writeln!(std::io::stdout(), "active data key: {}", id.0).map_err(stdout_err)?;
    Ok(())
}

/// `reencrypt`: everything rewritten under the active data key, old data
/// keys retired; a progress bar over the page file's pages.
pub(crate) fn reencrypt(g: &Global) -> Result<(), CliError> {
    let db = open::open(g)?;
    let bar = progress::count(0, "reencrypt", " pages");
    let report = db.reencrypt(&mut |p| {
        bar.set_length(p.pages_estimate.max(p.pages_written));
        bar.set_position(p.pages_written);
        std::ops::ControlFlow::Continue(())
    })?;
    bar.finish_and_clear();
    db.close()?;
    let retired: Vec<String> = report.retired.iter().map(|k| k.0.to_string()).collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "reencrypted {} entries; {} free pages zeroed; retired data keys: {}",
        report.entries,
        report.pages_zeroed,
        if retired.is_empty() {
            "none".to_string()
        } else {
            retired.join(",")
        }
    )
    .map_err(stdout_err)?;
    for k in report.coverage.keys.iter().filter(|k| !k.active) {
        writeln!(
            out,
            "data key {} kept: still seals {} pages and {} WAL segments (a reader held them?)",
            k.id.0, k.pages, k.wal_segments
        )
        .map_err(stdout_err)?;
    }
    Ok(())
}

/// `rekey --new-key-file PATH`: re-wrap the keys under a new master key.
pub(crate) fn rekey(g: &Global, new_key_file: &Path) -> Result<(), CliError> {
    let new = sealkv::crypto::MasterKey::from_file(new_key_file)
        .map_err(|e| CliError::Key(e.to_string()))?;
    let db = open::open(g)?;
    db.rekey(sealkv::crypto::KeySource::Key(new))?;
    db.close()?;
    Ok(())
}
