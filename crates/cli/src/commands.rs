//! The database commands: init, put, get, delete, scan, load, flush,
//! stats, verify, backup, restore, rotate-key, reencrypt and rekey (the
//! archive commands are in `archive.rs`, `keygen` in `keygen.rs`, `bench`
//! and `demo` in their own modules).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::json;

use sealkv::{Config, Db};

use crate::args::Global;
use crate::exit::CliError;
use crate::keyspace::Target;
use crate::open;
use crate::output::{self, Out};
use crate::progress;
use crate::records::Encoding;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A key or value argument, as `--hex` says.
fn arg(g: &Global, value: &OsStr, what: &str) -> Result<Vec<u8>, CliError> {
    Encoding::new(g.hex)
        .argument(value, what)
        .map_err(CliError::Usage)
}

/// Closes `db` after its writes were acknowledged: a failure to close
/// (the final flush) takes nothing back, and the error says so.
pub(crate) fn close_after_writes(db: Db, done: &str) -> Result<(), CliError> {
    db.close().map_err(|e| CliError::Stopped {
        source: Box::new(e.into()),
        report: format!("{done} committed before closing the database failed"),
    })
}

/// `init`: a new database, encrypted when a key is given, in a new or
/// empty directory.
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
    refuse_occupied(dir)?;
    let mut config = open::with_anchor(Config::new(dir).crypto_provider(open::provider()), g);
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

/// `init` creates only in a new or empty directory: an existing database
/// is refused as existing, and anything else as not ours to touch (the
/// engine would otherwise work around files it finds, such as a `KEYS`).
fn refuse_occupied(dir: &Path) -> Result<(), CliError> {
    if dir.join(sealkv::layout::DATA_FILE).exists() {
        return Err(CliError::Exists(dir.to_path_buf()));
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let shown = names.len().min(5);
    let mut list = names[..shown].join(", ");
    if names.len() > shown {
        list.push_str(&format!(" and {} more", names.len() - shown));
    }
    Err(CliError::NotEmpty {
        path: dir.to_path_buf(),
        entries: list,
    })
}

pub(crate) fn put(g: &Global, key: &OsStr, value: &OsStr) -> Result<(), CliError> {
    let key = arg(g, key, "key")?;
    let value = if value == "-" {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .map_err(io(Path::new("<stdin>")))?;
        v
    } else {
        arg(g, value, "value")?
    };
    let db = open::open(g)?;
    Target::for_writes(g, &db)?.put(&key, &value)?;
    close_after_writes(db, "the put")
}

pub(crate) fn get(g: &Global, key: &OsStr, raw: bool) -> Result<(), CliError> {
    let key = arg(g, key, "key")?;
    let db = open::open_read_only(g)?;
    let target = Target::for_reads(g, &db)?.ok_or(CliError::NotFound)?;
    let value = target.get(&key)?.ok_or(CliError::NotFound)?;
    let enc = Encoding::new(g.hex);
    let mut out = Out::new();
    if raw {
        out.bytes(&value)?;
    } else if g.json {
        out.json(&enc.json(&key, &value))?;
    } else {
        out.line(&enc.field(&value, false))?;
    }
    out.finish()
}

pub(crate) fn delete(g: &Global, key: &OsStr) -> Result<(), CliError> {
    let key = arg(g, key, "key")?;
    let db = open::open(g)?;
    if let Some(target) = Target::for_reads(g, &db)? {
        target.delete(&key)?;
    }
    close_after_writes(db, "the delete")
}

/// `delete --prefix P`: every key starting with P, in bounded batches;
/// prints how many were deleted.
pub(crate) fn delete_prefix(g: &Global, prefix: &OsStr) -> Result<(), CliError> {
    let prefix = arg(g, prefix, "prefix")?;
    let db = open::open(g)?;
    let deleted = match Target::for_reads(g, &db)? {
        Some(target) => target
            .delete_prefix(&prefix)
            .map_err(|e| CliError::Stopped {
                source: Box::new(e),
                report:
                    "the batches deleted before the failure stay deleted; run it again to finish"
                        .into(),
            })?,
        None => 0,
    };
    close_after_writes(db, "the deletes")?;
    if g.json {
        output::print_json(&json!({ "deleted": deleted }))
    } else {
        output::println(&format!("deleted {deleted}"))
    }
}

/// `compact`: the page file's free pages given back; prints its size
/// before and after.
pub(crate) fn compact(g: &Global) -> Result<(), CliError> {
    let db = open::open(g)?;
    let bar = progress::spinner("compact");
    let report = db.compact();
    bar.finish_and_clear();
    let report = report?;
    db.close()?;
    if g.json {
        return output::print_json(&json!({
            "bytes_before": report.bytes_before,
            "bytes_after": report.bytes_after,
            "pages_moved": report.pages_moved,
            "commits": report.commits,
        }));
    }
    let mut out = Out::new();
    out.line(&format!("{:<14}{}", "bytes_before", report.bytes_before))?;
    out.line(&format!("{:<14}{}", "bytes_after", report.bytes_after))?;
    out.line(&format!("{:<14}{}", "pages_moved", report.pages_moved))?;
    out.finish()
}

/// What `scan` selects.
pub(crate) struct ScanArgs<'a> {
    pub(crate) prefix: Option<&'a OsStr>,
    pub(crate) start: Option<&'a OsStr>,
    pub(crate) end: Option<&'a OsStr>,
    pub(crate) limit: Option<u64>,
}

pub(crate) fn scan(g: &Global, a: &ScanArgs<'_>) -> Result<(), CliError> {
    let decode = |v: Option<&OsStr>, what| v.map(|v| arg(g, v, what)).transpose();
    let (prefix, start, end) = (
        decode(a.prefix, "prefix")?,
        decode(a.start, "start key")?,
        decode(a.end, "end key")?,
    );
    if prefix.is_some() && (start.is_some() || end.is_some()) {
        return Err(CliError::Usage(
            "--prefix cannot be combined with --start/--end".into(),
        ));
    }
    let db = open::open_read_only(g)?;
    let Some(target) = Target::for_reads(g, &db)? else {
        // An absent keyspace holds no records.
        return Out::new().finish();
    };
    let iter = match &prefix {
        Some(p) => target.prefix(p)?,
        None => target.range(start.as_deref(), end.as_deref())?,
    };
    let enc = Encoding::new(g.hex);
    let mut out = Out::new();
    let limit = usize::try_from(a.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    for item in iter.take(limit) {
        let (k, v) = item?;
        if g.json {
            out.json(&enc.json(&k, &v))?;
        } else {
            out.line(&enc.line(&k, &v))?;
        }
    }
    out.finish()
}

pub(crate) fn flush(g: &Global) -> Result<(), CliError> {
    let db = open::open(g)?;
    db.flush()?;
    db.close()?;
    Ok(())
}

pub(crate) fn stats(g: &Global) -> Result<(), CliError> {
    let db = open::open_read_only(g)?;
    let s = db.stats()?;
    let coverage = db.key_coverage()?;
    let enc = &s.encryption;
    let algorithm = enc
        .algorithm_info
        .map(|a| a.name.to_string())
        .or_else(|| enc.algorithm.map(open::algorithm_name));
    if g.json {
        let keys: Vec<serde_json::Value> = coverage
            .keys
            .iter()
            .map(|k| {
                json!({
                    "id": k.id.0,
                    "active": k.active,
                    "pages": k.pages,
                    "wal_segments": k.wal_segments,
                })
            })
            .collect();
        let fields: Vec<_> = enc.field_keys.iter().map(|k| k.0).collect();
        return output::print_json(&json!({
            "path": db.path().display().to_string(),
            "encrypt_at_rest": enc.encrypt_at_rest,
            "algorithm": algorithm,
            "active_data_key": enc.active_key.map(|k| k.0),
            "data_keys": keys,
            "reencrypt_pending": coverage.reencrypt_pending,
            "field_keys": fields,
            "registry_generation": enc.registry_generation,
            "last_seq": s.last_seq,
            "applied_seq": s.applied_seq,
            "memtable_bytes": s.memtable_bytes,
            "wal_bytes": s.wal_bytes,
            "pages": s.pages,
            "file_bytes": s.file_bytes,
            "live_pages": s.live_pages,
            "free_pages": s.free_pages,
            "leaf_fill": s.leaf_fill(),
            "cache_hit_rate": s.cache_hit_rate(),
            "torn_tails_repaired": s.torn_tails_repaired,
        }));
    }
    let deks: Vec<String> = coverage
        .keys
        .iter()
        .map(|k| format!("{}({} pages, {} wal)", k.id.0, k.pages, k.wal_segments))
        .collect();
    let fields: Vec<String> = enc.field_keys.iter().map(|id| id.0.to_string()).collect();
    let rows: Vec<(&str, String)> = vec![
        ("path", db.path().display().to_string()),
        ("encrypt_at_rest", enc.encrypt_at_rest.to_string()),
        ("algorithm", algorithm.unwrap_or_else(|| "none".into())),
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
    let mut out = Out::new();
    for (k, v) in rows {
        out.line(&format!("{k:<22}{v}"))?;
    }
    out.finish()
}

/// `verify`: every file checked; any finding is printed and exits 4.
pub(crate) fn verify(g: &Global) -> Result<(), CliError> {
    let db = match open::open_read_only(g) {
        Ok(db) => db,
        Err(e) => {
            // No database, but perhaps what a killed run to it left.
            if let Ok(dir) = open::db_dir(g) {
                let mut out = Out::new();
                for l in sealkv::leftovers::leftovers(dir).unwrap_or_default() {
                    out.line(&leftover_note(&l, "backup, restore or import"))?;
                }
                out.finish()?;
            }
            return Err(e);
        }
    };
    let bar = progress::spinner("verify");
    let report = db.verify();
    bar.finish_and_clear();
    let report = report?;
    let leftovers = sealkv::leftovers::leftovers(db.path())?;
    let mut out = Out::new();
    if g.json {
        let findings: Vec<serde_json::Value> = report
            .findings
            .iter()
            .map(|f| json!({ "file": f.file.display().to_string(), "what": f.what }))
            .collect();
        out.json(&json!({
            "clean": report.is_clean(),
            "entries": report.entries,
            "pages_checked": report.pages_checked,
            "wal_records": report.wal_records,
            "findings": findings,
            "leftovers": leftovers_json(&leftovers),
        }))?;
    } else {
        for f in &report.findings {
            out.line(&format!("{}: {}", f.file.display(), f.what))?;
        }
        for l in &leftovers {
            out.line(&leftover_note(l, "backup, restore or import"))?;
        }
        if report.is_clean() {
            out.line(&format!(
                "ok: {} entries, {} pages, {} WAL records checked",
                report.entries, report.pages_checked, report.wal_records
            ))?;
        }
    }
    out.finish()?;
    if report.is_clean() {
        Ok(())
    } else {
        Err(CliError::CheckFailed(format!(
            "{} problem(s) found in {}",
            report.findings.len(),
            db.path().display()
        )))
    }
}

/// A scratch entry next to a destination, as `verify` mentions it (it is
/// no finding: the data checked is not affected).
pub(crate) fn leftover_note(l: &sealkv::leftovers::Leftover, runs: &str) -> String {
    let what = match l.kind {
        sealkv::leftovers::ScratchKind::Building => "being built",
        _ => "a replaced copy",
    };
    if l.in_use {
        format!(
            "note: {} ({what}) is in use by a running {runs}",
            l.path.display()
        )
    } else {
        format!(
            "note: {} ({what}) was left by an interrupted {runs}; the next one to the same destination removes it",
            l.path.display()
        )
    }
}

/// The scratch entries as JSON.
pub(crate) fn leftovers_json(list: &[sealkv::leftovers::Leftover]) -> serde_json::Value {
    list.iter()
        .map(|l| {
            json!({
                "path": l.path.display().to_string(),
                "kind": match l.kind {
                    sealkv::leftovers::ScratchKind::Building => "tmp",
                    _ => "old",
                },
                "in_use": l.in_use,
            })
        })
        .collect()
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
    if g.json {
        return output::print_json(&json!({
            "path": report.path.display().to_string(),
            "seq": report.seq,
            "pages": report.pages,
            "bytes": report.bytes,
            "pages_copied": report.pages_copied,
            "free_pages_zeroed": report.free_pages_zeroed,
            "encrypted": report.encrypted,
        }));
    }
    output::println(&format!(
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
    ))
}

/// `restore BACKUP DEST`: checks the backup with the key, then puts a copy
/// under a new data key in place.
///
/// With `--anchor-file PATH`, the anchor is pointed at the restored
/// database once it is in place. A note beside PATH (`PATH.restoring`,
/// naming DEST) lasts from before the restore until the anchor points at
/// DEST: a run stopped in between (a crash, a failed anchor write) leaves
/// DEST in place with the note, and the same command run again says so
/// and how to finish (remove DEST, restore again) instead of only
/// refusing the existing DEST.
pub(crate) fn restore(g: &Global, backup: &Path, dest: &Path) -> Result<(), CliError> {
    // Locked first: one import or restore at a time replaces the anchor.
    let pending = match &g.anchor_file {
        Some(anchor) => Some((
            RestorePending::new(anchor, dest)?,
            open::staged_anchor(anchor)?,
        )),
        None => None,
    };
    let pending = pending.as_ref();
    // A DEST the note names is what a stopped run left; nothing binds it
    // to the backup (it may have been replaced since), so it is never
    // anchored as it is: the operator removes it and restores again.
    if let Some((p, _)) = pending
        && dest.exists()
        && p.is_for_dest()?
    {
        return Err(CliError::RestoreStopped {
            dest: dest.to_path_buf(),
            anchor: p.anchor.to_path_buf(),
        });
    }
    if dest.exists() {
        return Err(sealkv::Error::DestinationExists {
            path: dest.to_path_buf(),
        }
        .into());
    }
    if let Some((p, _)) = pending {
        p.begin()?;
    }
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
    let report = report.map_err(|e| {
        // Nothing was put in place: nothing to finish.
        if let Some((p, _)) = pending
            && !dest.exists()
        {
            let _ = p.done();
        }
        match e {
            sealkv_backup::RestoreError::Db(e) => CliError::Db(e),
            damaged => CliError::CheckFailed(damaged.to_string()),
        }
    })?;
    if let Some((p, staged)) = pending {
        anchor_restored(g, dest, p.anchor, staged)?;
        p.done()?;
    }
    if g.json {
        return output::print_json(&json!({
            "backup": backup.display().to_string(),
            "path": report.path.display().to_string(),
            "seq": report.seq,
            "new_data_key": report.rotated_to.map(|k| k.0),
        }));
    }
    let rotated = report
        .rotated_to
        .map_or(String::new(), |k| format!("; new data key {}", k.0));
    output::println(&format!(
        "restored {} at sequence {} into {}{rotated}",
        backup.display(),
        report.seq,
        report.path.display()
    ))
}

/// The note of a `restore --anchor-file PATH` under way: `PATH.restoring`,
/// holding the absolute path of DEST.
struct RestorePending<'a> {
    anchor: &'a Path,
    note: PathBuf,
    dest: Vec<u8>,
}

impl<'a> RestorePending<'a> {
    fn new(anchor: &'a Path, dest: &Path) -> Result<Self, CliError> {
        let mut name = anchor.file_name().unwrap_or_default().to_os_string();
        name.push(".restoring");
        let dest = std::path::absolute(dest).map_err(|source| CliError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(RestorePending {
            anchor,
            note: anchor.with_file_name(name),
            dest: dest.as_os_str().as_encoded_bytes().to_vec(),
        })
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> CliError + '_ {
        |source| CliError::Io {
            path: self.note.clone(),
            source,
        }
    }

    /// Whether the note names this DEST: a restore into it stopped before
    /// its anchor step.
    fn is_for_dest(&self) -> Result<bool, CliError> {
        match std::fs::read(&self.note) {
            Ok(held) => Ok(held == self.dest),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io()(e)),
        }
    }

    /// Writes the note, durably, before anything is restored.
    fn begin(&self) -> Result<(), CliError> {
        let mut file = std::fs::File::create(&self.note).map_err(self.io())?;
        std::io::Write::write_all(&mut file, &self.dest).map_err(self.io())?;
        file.sync_all().map_err(self.io())?;
        open::sync_parent(&self.note)
    }

    /// Removes the note: the anchor points at DEST (or nothing was put in
    /// place).
    fn done(&self) -> Result<(), CliError> {
        std::fs::remove_file(&self.note).map_err(self.io())?;
        open::sync_parent(&self.note)
    }
}

/// After `restore --anchor-file PATH`: a restore puts an older state back
/// on purpose, as a database of its own (its own lineage), so the anchor is
/// pointed at the restored database. A new anchor is written beside PATH
/// (the restored database opened once with it), then put in place over
/// PATH.
fn anchor_restored(
    g: &Global,
    dest: &Path,
    anchor: &Path,
    staged: &open::StagedAnchor,
) -> Result<(), CliError> {
    let fresh = staged.cleared()?;
    let mut config = Config::new(dest)
        .create_if_missing(false)
        .crypto_provider(open::provider())
        .freshness_anchor(std::sync::Arc::new(sealkv::anchor::FileAnchor::new(fresh)));
    if let Some(source) = open::key_source(g)? {
        config = config.key_source(source);
    }
    let opened = Db::open_with_config(config).and_then(Db::close);
    if let Err(e) = opened {
        let _ = std::fs::remove_file(fresh);
        return Err(e.into());
    }
    open::put_anchor_in_place(fresh, anchor)
}

/// `rotate-key`: new writes are sealed under a new data key.
pub(crate) fn rotate_key(g: &Global) -> Result<(), CliError> {
    let db = open::open(g)?;
    let id = db.rotate_data_key()?;
    close_after_writes(db, &format!("the rotation to data key {}", id.0))?;
    if g.json {
        return output::print_json(&json!({ "active_data_key": id.0 }));
    }
    output::println(&format!("active data key: {}", id.0))
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
    close_after_writes(db, "the re-encryption")?;
    let kept: Vec<_> = report.coverage.keys.iter().filter(|k| !k.active).collect();
    if g.json {
        let kept: Vec<serde_json::Value> = kept
            .iter()
            .map(|k| json!({ "id": k.id.0, "pages": k.pages, "wal_segments": k.wal_segments }))
            .collect();
        let retired: Vec<_> = report.retired.iter().map(|k| k.0).collect();
        return output::print_json(&json!({
            "entries": report.entries,
            "pages_zeroed": report.pages_zeroed,
            "retired": retired,
            "kept": kept,
        }));
    }
    let retired: Vec<String> = report.retired.iter().map(|k| k.0.to_string()).collect();
    let mut out = Out::new();
    out.line(&format!(
        "reencrypted {} entries; {} free pages zeroed; retired data keys: {}",
        report.entries,
        report.pages_zeroed,
        if retired.is_empty() {
            "none".to_string()
        } else {
            retired.join(",")
        }
    ))?;
    for k in kept {
        out.line(&format!(
            "data key {} kept: still seals {} pages and {} WAL segments (a reader held them?)",
            k.id.0, k.pages, k.wal_segments
        ))?;
    }
    out.finish()
}

/// `rekey --new-key-file PATH` or `rekey --new-pkcs11-key LABEL`: re-wrap
/// the keys under a new master key (a key file, or a key in the token the
/// global PKCS#11 options name).
pub(crate) fn rekey(
    g: &Global,
    new_key_file: Option<&Path>,
    new_pkcs11_key: Option<&str>,
) -> Result<(), CliError> {
    let (new, described) = match (new_key_file, new_pkcs11_key) {
        (Some(path), None) => (
            sealkv::crypto::KeySource::Key(open::key_file(path)?),
            format!("the key in {}", path.display()),
        ),
        (None, Some(label)) => (
            sealkv::crypto::KeySource::Wrapper(std::sync::Arc::new(open::pkcs11_wrapper(
                g, label,
            )?)),
            format!("PKCS#11 key {label:?}"),
        ),
        _ => {
            return Err(CliError::Usage(
                "give one of --new-key-file, --new-pkcs11-key".into(),
            ));
        }
    };
    let db = open::open(g)?;
    db.rekey(new)?;
    let generation = db.stats()?.encryption.registry_generation;
    let path = db.path().to_path_buf();
    close_after_writes(db, "the rekey")?;
    if g.json {
        return output::print_json(&json!({
            "path": path.display().to_string(),
            "registry_generation": generation,
        }));
    }
    output::println(&format!(
        "rekeyed {}: its data keys are wrapped under {described}",
        path.display(),
    ))
}
