//! `load FILE`: records from a file, checked whole before anything is
//! written, then written in batches under the engine's batch limit.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::json;

use sealkv::{Db, MAX_BATCH_LEN, MAX_VALUE_LEN, WriteBatch};

use crate::args::Global;
use crate::commands::close_after_writes;
use crate::exit::CliError;
use crate::keyspace::Target;
use crate::records::{Encoding, parse_line};
use crate::{open, output, progress};

/// Bytes of keys and values per batch unless `--batch-size` says otherwise:
/// large enough that the fsync per batch is amortized, small enough that a
/// failed batch is a small part of the file.
pub(crate) const DEFAULT_BATCH_BYTES: usize = 4 << 20;

/// The lines of `file`, numbered from 1, without their newline.
fn lines(file: &Path) -> Result<impl Iterator<Item = (u64, std::io::Result<Vec<u8>>)>, CliError> {
    let f = std::fs::File::open(file).map_err(|source| CliError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    Ok((1..).zip(BufReader::with_capacity(1 << 20, f).split(b'\n')))
}

/// One record of the file, or why the line is not one.
fn record(
    file: &Path,
    n: u64,
    line: std::io::Result<Vec<u8>>,
    enc: Encoding,
    max_key: usize,
) -> Result<(Vec<u8>, Vec<u8>), CliError> {
    let at = |what: String| CliError::Input(format!("{}:{n}: {what}", file.display()));
    let line = line.map_err(|source| CliError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let (k, v) = parse_line(&line, enc).map_err(at)?;
    if k.len() > max_key {
        return Err(at(format!(
            "a key of {} bytes; this database takes at most {max_key}",
            k.len()
        )));
    }
    if v.len() > MAX_VALUE_LEN {
        return Err(at(format!(
            "a value of {} bytes; the limit is {MAX_VALUE_LEN}",
            v.len()
        )));
    }
    Ok((k, v))
}

/// How far a load got: records and lines committed, the batch under way.
#[derive(Default)]
struct Progress {
    /// Lines in the file.
    lines: u64,
    records: u64,
    batches: u64,
    /// The last line of the last committed batch.
    committed_through: u64,
}

pub(crate) fn run(
    g: &Global,
    file: &Path,
    batch_size: Option<usize>,
    atomic: bool,
) -> Result<(), CliError> {
    let limit = batch_size.unwrap_or(DEFAULT_BATCH_BYTES);
    if limit == 0 || limit > MAX_BATCH_LEN {
        return Err(CliError::Usage(format!(
            "--batch-size must be from 1 to {MAX_BATCH_LEN} bytes"
        )));
    }
    let enc = Encoding::new(g.hex);
    let db = open::open(g)?;
    let max_key = db.max_key_len();

    // Every line checked before anything is written.
    let mut total_bytes = 0u64;
    let mut total_records = 0u64;
    for (n, line) in lines(file)? {
        let (k, v) = record(file, n, line, enc, max_key)?;
        total_bytes += (k.len() + v.len()) as u64;
        total_records += 1;
    }
    if atomic && total_bytes > MAX_BATCH_LEN as u64 {
        return Err(CliError::Input(format!(
            "--atomic: {} holds {total_bytes} bytes of keys and values, over the engine's batch limit of {MAX_BATCH_LEN}; load it without --atomic (in batches)",
            file.display()
        )));
    }

    // Created only once the file is known to be good.
    let target = Target::for_writes(g, &db)?;
    let bar = progress::count(total_records, "load", " records");
    let mut done = Progress {
        lines: total_records,
        ..Progress::default()
    };
    let mut batch = WriteBatch::new();
    let mut batch_first_line = 1;
    let mut last_line = 0;
    for (n, line) in lines(file)? {
        // The file was checked; an error now means it changed meanwhile.
        let (k, v) = record(file, n, line, enc, max_key).map_err(|e| stopped(e, &done, file))?;
        if !atomic && !batch.is_empty() && batch.size_in_bytes() + k.len() + v.len() > limit {
            write(&db, &batch, batch_first_line, n - 1, &mut done, file)?;
            bar.set_position(done.records);
            batch.clear();
            batch_first_line = n;
        }
        target.batch_put(&mut batch, &k, &v);
        last_line = n;
    }
    write(&db, &batch, batch_first_line, last_line, &mut done, file)?;
    bar.finish_and_clear();
    close_after_writes(db, &format!("all {} records", done.records))?;
    if g.json {
        return output::print_json(&json!({
            "file": file.display().to_string(),
            "records": done.records,
            "batches": done.batches,
        }));
    }
    output::println(&format!(
        "loaded {} records from {} in {} batch(es)",
        done.records,
        file.display(),
        done.batches
    ))
}

/// Writes the batch of lines `first..=last`, or says how far the load got.
fn write(
    db: &Db,
    batch: &WriteBatch,
    first: u64,
    last: u64,
    done: &mut Progress,
    file: &Path,
) -> Result<(), CliError> {
    if batch.is_empty() {
        return Ok(());
    }
    match db.write(batch) {
        Ok(()) => {
            done.records += batch.len() as u64;
            done.batches += 1;
            done.committed_through = last;
            Ok(())
        }
        Err(e) => {
            let unknown = matches!(
                e,
                sealkv::Error::Poisoned {
                    outcome_unknown: true,
                    ..
                }
            );
            let mut report = committed(done, file);
            if unknown {
                report.push_str(&format!(
                    "; lines {first}-{last} may or may not be applied (reopen the database and check them)"
                ));
                if last < done.lines {
                    report.push_str(&format!("; nothing after line {last} was written"));
                }
            } else {
                report.push_str(&format!("; nothing from line {first} on was written"));
            }
            Err(CliError::Stopped {
                source: Box::new(e.into()),
                report,
            })
        }
    }
}

fn committed(done: &Progress, file: &Path) -> String {
    if done.records == 0 {
        "no record of the file was committed".into()
    } else {
        format!(
            "load committed {} records (lines 1-{} of {})",
            done.records,
            done.committed_through,
            file.display()
        )
    }
}

/// `e`, with how far the load got.
fn stopped(e: CliError, done: &Progress, file: &Path) -> CliError {
    let mut report = committed(done, file);
    if done.records > 0 {
        report.push_str(&format!(
            "; nothing after line {} was written",
            done.committed_through
        ));
    }
    CliError::Stopped {
        source: Box::new(e),
        report,
    }
}
