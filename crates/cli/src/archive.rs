//! The archive commands: export, import, verify-archive.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use sealkv::Config;
use sealkv::anchor::FileAnchor;
use sealkv::crypto::KeySource;
use sealkv_backup::ArchiveError;
use sealkv_backup::archive::{
    self, ArchiveSummary, ExportOptions, ImportOptions, KeyKind, Protection,
};

use crate::args::Global;
use crate::exit::CliError;
use crate::{open, output, progress};

/// The archive key: `--archive-key-file`, else the key options.
fn archive_key(
    g: &Global,
    file: Option<&Path>,
    plaintext_archive: bool,
) -> Result<Option<KeySource>, CliError> {
    if plaintext_archive {
        return Ok(None);
    }
    match file {
        Some(path) => Ok(Some(KeySource::Key(open::key_file(path)?))),
        None => open::key_source(g),
    }
}

fn describe(s: &ArchiveSummary) -> String {
    let protection = match s.header.protection {
        Protection::PlaintextUnencrypted => "PLAINTEXT (unencrypted, checksummed)".to_string(),
        Protection::Sealed {
            algorithm,
            ref kind,
        } => {
            let under = match kind {
                KeyKind::Raw => "a raw key".to_string(),
                KeyKind::Passphrase { .. } => "a passphrase (Argon2id)".to_string(),
                KeyKind::Wrapped(w) => format!(
                    "its own archive key, wrapped by the {} wrapper's key {}",
                    w.wrapper_kind.escape_debug(),
                    w.key_id.escape_debug()
                ),
            };
            format!(
                "sealed with {} under {under}",
                open::algorithm_name(algorithm)
            )
        }
    };
    format!(
        "{} records, {} bytes of keys and values, {} chunks, {} archive bytes, {protection}; source database {}, snapshot {}",
        s.records,
        s.data_bytes,
        s.chunks,
        s.archive_bytes,
        s.header.source_db,
        s.header.snapshot_seq
    )
}

/// An archive's summary as JSON.
fn summary_json(s: &ArchiveSummary) -> serde_json::Value {
    let (protection, algorithm, key) = match &s.header.protection {
        Protection::PlaintextUnencrypted => ("plaintext", None, json!(null)),
        Protection::Sealed { algorithm, kind } => (
            "sealed",
            Some(open::algorithm_name(*algorithm)),
            match kind {
                KeyKind::Raw => json!({ "kind": "raw" }),
                KeyKind::Passphrase { .. } => json!({ "kind": "passphrase" }),
                KeyKind::Wrapped(w) => json!({
                    "kind": "wrapped",
                    "wrapper": w.wrapper_kind,
                    "wrapping_key_id": w.key_id,
                }),
            },
        ),
    };
    json!({
        "records": s.records,
        "data_bytes": s.data_bytes,
        "chunks": s.chunks,
        "archive_bytes": s.archive_bytes,
        "protection": protection,
        "algorithm": algorithm,
        "key": key,
        "source_db": s.header.source_db.to_string(),
        "snapshot_seq": s.header.snapshot_seq,
    })
}

/// `export FILE [--archive-key-file K | --plaintext-export]`.
pub(crate) fn export(
    g: &Global,
    file: &Path,
    archive_key_file: Option<&Path>,
    plaintext_export: bool,
) -> Result<(), CliError> {
    let options = if plaintext_export {
        ExportOptions::plaintext_unencrypted().crypto_provider(open::provider())
    } else {
        let key = archive_key(g, archive_key_file, false)?.ok_or_else(|| {
            CliError::Key(
                "exports are sealed: give a key (--key-file, --key-env, --passphrase-env, --passphrase or --archive-key-file), or --plaintext-export for an UNENCRYPTED archive".into(),
            )
        })?;
        ExportOptions::sealed(key).crypto_provider(open::provider())
    };
    let options = match &g.keyspace {
        Some(name) => options.keyspace(name),
        None => options,
    };
    let db = open::open_read_only(g)?;
    let bar = progress::bytes(0, "export");
    let summary = archive::export(&db, file, &options, &mut |p| {
        bar.set_length(p.bytes_total.unwrap_or(p.bytes_done));
        bar.set_position(p.bytes_done);
    })?;
    bar.finish_and_clear();
    db.close()?;
    if plaintext_export {
        tracing::warn!(
            "{} is NOT encrypted: anyone who can read it can read every record",
            file.display()
        );
    }
    if g.json {
        return output::print_json(&summary_json(&summary));
    }
    output::println(&format!("exported {}", describe(&summary)))
}

/// `--db NEWDIR [key] [--algorithm A] [--plaintext] import FILE
/// [--archive-key-file K]`: the key options are the new database's key
/// (unless `--plaintext`) and, without `--archive-key-file`, the archive's.
pub(crate) fn import(
    g: &Global,
    file: &Path,
    archive_key_file: Option<&Path>,
    plaintext_archive: bool,
) -> Result<(), CliError> {
    let dest = open::db_dir(g)?;
    let db_key = open::key_source(g)?;
    let algorithm = open::algorithm(g)?;
    if !g.plaintext && db_key.is_none() {
        return Err(CliError::Usage(
            "import needs a key for the new database, or --plaintext for an unencrypted one".into(),
        ));
    }
    let archive_key = archive_key(g, archive_key_file, plaintext_archive)?;
    // The new database is anchored from its creation, as with `init`, in
    // an anchor beside `--anchor-file` that is put in place only once the
    // database is: a failed import leaves no anchor naming a database it
    // did not create. An anchor that records a database already is
    // refused first, as `init` refuses it.
    let staged = match &g.anchor_file {
        Some(anchor) => {
            // Locked first: no other import or restore replaces the
            // anchor between this check and the rename.
            let staged = open::staged_anchor(anchor)?;
            staged.cleared()?;
            sealkv::anchor::ensure_no_database_recorded(&FileAnchor::new(anchor), dest)?;
            Some(staged)
        }
        None => None,
    };
    let make = |dir: &Path| {
        let mut c = Config::new(dir).crypto_provider(open::provider());
        if let Some(staged) = &staged {
            c = c.freshness_anchor(Arc::new(FileAnchor::new(&staged.path)));
        }
        if !g.plaintext {
            if let Some(k) = &db_key {
                c = c.encrypt_at_rest(true).key_source(k.clone());
            }
            if let Some(a) = algorithm {
                c = c.encryption_algorithm(a);
            }
        }
        c
    };
    let bar = progress::bytes(0, "import");
    let imported = archive::import(
        file,
        archive_key.as_ref(),
        dest,
        &make,
        &ImportOptions::new().crypto_provider(open::provider()),
        &mut |p| {
            bar.set_length(p.bytes_total.unwrap_or(p.bytes_done));
            bar.set_position(p.bytes_done);
        },
    );
    bar.finish_and_clear();
    let summary = match (imported, &staged, &g.anchor_file) {
        (Ok(summary), Some(staged), Some(anchor)) => {
            open::put_anchor_in_place(&staged.path, anchor)?;
            summary
        }
        (Ok(summary), _, _) => summary,
        (Err(e), staged, _) => {
            if let Some(staged) = staged {
                let _ = std::fs::remove_file(&staged.path);
            }
            return Err(nothing_imported(e, dest));
        }
    };
    if g.json {
        return output::print_json(&json!({
            "path": dest.display().to_string(),
            "records": summary.records,
            "data_bytes": summary.data_bytes,
            "encrypted": !g.plaintext,
        }));
    }
    output::println(&format!(
        "imported {} records ({} bytes) into {} ({})",
        summary.records,
        summary.data_bytes,
        dest.display(),
        if g.plaintext {
            "plaintext"
        } else {
            "encrypted"
        }
    ))
}

/// A failed import, saying that it left nothing: the database was built
/// in a scratch directory that the failure removed, so unlike a failed
/// write to an open database there is nothing to reopen and check.
fn nothing_imported(e: ArchiveError, dest: &Path) -> CliError {
    let source = match e {
        // The destination is someone else's: not ours to describe.
        ArchiveError::Exists { .. } => return e.into(),
        ArchiveError::Db(sealkv::Error::Poisoned { cause, .. }) => CliError::WriteFailed(cause),
        other => other.into(),
    };
    CliError::Stopped {
        source: Box::new(source),
        report: format!("nothing was imported: {} was not created", dest.display()),
    }
}

/// `verify-archive FILE [--archive-key-file K]`.
pub(crate) fn verify(
    g: &Global,
    file: &Path,
    archive_key_file: Option<&Path>,
    plaintext_archive: bool,
) -> Result<(), CliError> {
    let key = archive_key(g, archive_key_file, plaintext_archive)?;
    let bar = progress::bytes(0, "verify");
    let provider = open::provider();
    let summary = archive::verify_archive_with(file, key.as_ref(), &provider, &mut |p| {
        bar.set_length(p.bytes_total.unwrap_or(p.bytes_done));
        bar.set_position(p.bytes_done);
    })?;
    bar.finish_and_clear();
    let leftovers = sealkv::leftovers::leftovers(file)?;
    if g.json {
        let mut v = summary_json(&summary);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "leftovers".into(),
                crate::commands::leftovers_json(&leftovers),
            );
        }
        return output::print_json(&v);
    }
    let mut out = output::Out::new();
    for l in &leftovers {
        out.line(&crate::commands::leftover_note(l, "export"))?;
    }
    out.line(&format!("ok: {}", describe(&summary)))?;
    out.finish()
}
