//! The child: opens the database and writes batches until it is killed,
//! telling the parent on stdout what it is doing.
//!
//! One writer thread per stream, all at once (so group commit is under the
//! kill); stream 0's thread also flushes, rotates the data key, rekeys (to
//! the same key), creates and destroys a field key, re-encrypts, and fills
//! and drops the scratch keyspace at random. Streams 1 and 2 commit their
//! batches as transactions. Lines (each written whole under the stdout
//! lock, in one `write(2)`, well under the pipe's atomic size): `open`;
//! `begin write T B` (stream 0) or `begin txn T B` (streams 1 and 2)
//! before batch `B` of stream `T` is handed to the engine, `retried T B N`
//! if its transaction ran `N` more times after conflicts, and `ack T B`
//! only after `Db::write` or `Db::transaction` returned `Ok`; `begin
//! flush` / `end flush`, `begin rotate` / `end rotate`, `begin rekey` /
//! `end rekey`, `begin field key` / `end field key`, `begin reencrypt` /
//! `step` / `end reencrypt`, `begin fill G` / `end fill G` and `begin
//! drop` / `end drop` around the operations the parent aims at.
//!
//! In compaction mode (`--compact`) stream 0 makes no key operations and
//! drops no keyspace: it compacts (`begin compact` / `end compact MOVED`,
//! the pages moved) and clears the scratch keyspace with `delete_range`
//! (`begin clear` / `end clear`) instead, so the page file has free pages
//! among live ones for each compaction to move pages into, while the other
//! streams write and delete.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use sealkv::Db;
use sealkv_fileio::SplitMix64;

use crate::mode::Mode;
use crate::scratch;
use crate::workload::{STREAMS, batch, commit_txn, keyspace_of, transactional};

/// What the parent tells a child.
#[derive(Debug)]
pub(crate) struct ChildArgs {
    pub(crate) dir: PathBuf,
    pub(crate) mode: Mode,
    /// The first batch to write, per stream.
    pub(crate) next: Vec<u64>,
    pub(crate) seed: u64,
    /// Open with the freshness anchor beside the directory.
    pub(crate) anchored: bool,
    /// Compaction mode: stream 0 compacts and clears the scratch keyspace.
    pub(crate) compact: bool,
}

/// After this many batches a child stops by itself (the parent always
/// kills it long before; a child that stops is a finding).
const MAX_BATCHES: u64 = 200_000;

fn say(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// Runs until killed; returns only on an error (or after `MAX_BATCHES`).
pub(crate) fn run(args: &ChildArgs) -> Result<(), String> {
    if args.next.len() != STREAMS {
        return Err(format!("--next needs {STREAMS} batch numbers"));
    }
    let config = args.mode.config(&args.dir, args.anchored)?;
    let db = Db::open_with_config(config).map_err(|e| format!("open: {e}"))?;
    say("open")?;
    let threads: Vec<_> = (0..STREAMS)
        .map(|t| {
            let db = db.clone();
            let (next, seed, mode) = (args.next[t], args.seed ^ t as u64, args.mode);
            let ops = match (t, args.compact) {
                (0, true) => Ops::Compact,
                (0, false) if mode.sealed() => Ops::Keys,
                _ => Ops::None,
            };
            std::thread::spawn(move || writer(&db, t, next, seed, ops, mode))
        })
        .collect();
    for t in threads {
        // The first error ends the process: the parent reads it on stderr.
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a writer thread panicked".into()),
        }
    }
    std::mem::forget(db);
    Ok(())
}

/// What a writer does besides its batches (and stream 0's flushes and
/// scratch keyspace steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ops {
    None,
    /// Rotates, rekeys, makes field keys and re-encrypts.
    Keys,
    /// Compacts; the scratch keyspace is cleared, not dropped.
    Compact,
}

/// Stream `t`'s writer; stream 0 also flushes and fills the scratch
/// keyspace, and does `ops` (a rekey goes to `mode`'s key).
fn writer(
    db: &Db,
    t: usize,
    next: u64,
    seed: u64,
    ops: Ops,
    mode: crate::mode::Mode,
) -> Result<(), String> {
    let fail = |e: String| {
        let _ = writeln!(std::io::stderr(), "sealkv-crash child: {e}");
        std::process::exit(3)
    };
    let mut rng = SplitMix64::new(seed);
    let ks = match keyspace_of(t) {
        Some(name) => Some(
            db.keyspace(name)
                .map_err(|e| format!("keyspace {name:?}: {e}"))?,
        ),
        None => None,
    };
    // Whether the scratch keyspace exists (a kill may have left it); in
    // compaction mode, whether it holds keys.
    let mut scratch_live = t == 0
        && db
            .keyspaces()
            .map_err(|e| format!("keyspaces: {e}"))?
            .iter()
            .any(|n| n == scratch::SCRATCH);
    if ops == Ops::Compact && scratch_live {
        scratch_live = db
            .keyspace(scratch::SCRATCH)
            .and_then(|ks| ks.iter().map(|mut it| it.next().is_some()))
            .map_err(|e| format!("reading keyspace {:?}: {e}", scratch::SCRATCH))?;
    }
    let mut b = next;
    while b < next + MAX_BATCHES {
        let roll = rng.below(1000);
        let done = if t == 0 && roll < 25 {
            say("begin flush")
                .and_then(|()| db.flush().map_err(|e| format!("flush: {e}")))
                .and_then(|()| say("end flush"))
        } else if ops == Ops::Compact && roll < 75 {
            say("begin compact")
                .and_then(|()| db.compact().map_err(|e| format!("compact: {e}")))
                .and_then(|r| say(&format!("end compact {}", r.pages_moved)))
        } else if ops == Ops::Compact && roll >= 940 {
            clear_step(db, &mut scratch_live, &mut rng)
        } else if ops == Ops::Keys && roll < 40 {
            say("begin rotate")
                .and_then(|()| {
                    db.rotate_data_key()
                        .map(|_| ())
                        .map_err(|e| format!("rotate_data_key: {e}"))
                })
                .and_then(|()| say("end rotate"))
        } else if ops == Ops::Keys && roll < 50 {
            // To the same key: the registry changes (a new generation,
            // every key re-wrapped; under a key wrapper, a new root key
            // wrapped by it), the key the parent opens with does not.
            say("begin rekey")
                .and_then(|()| {
                    db.rekey(mode.key_source()?)
                        .map_err(|e| format!("rekey: {e}"))
                })
                .and_then(|()| say("end rekey"))
        } else if ops == Ops::Keys && roll < 60 {
            say("begin field key")
                .and_then(|()| {
                    let id = db
                        .create_field_key()
                        .map_err(|e| format!("create_field_key: {e}"))?;
                    db.destroy_field_key(id)
                        .map_err(|e| format!("destroy_field_key: {e}"))
                })
                .and_then(|()| say("end field key"))
        } else if ops == Ops::Keys && roll < 67 {
            let mut step = |_: &sealkv::ReencryptProgress| match say("step") {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            };
            say("begin reencrypt")
                .and_then(|()| {
                    db.reencrypt(&mut step)
                        .map(|_| ())
                        .map_err(|e| format!("reencrypt: {e}"))
                })
                .and_then(|()| say("end reencrypt"))
        } else if t == 0 && roll >= 970 {
            scratch_step(db, &mut scratch_live, &mut rng)
        } else if transactional(t) {
            let r = say(&format!("begin txn {t} {b}"))
                .and_then(|()| {
                    commit_txn(db, ks.as_ref(), t, b)
                        .map_err(|e| format!("transaction {b} of stream {t}: {e}"))
                })
                .and_then(|retries| match retries {
                    0 => Ok(()),
                    n => say(&format!("retried {t} {b} {n}")),
                })
                .and_then(|()| say(&format!("ack {t} {b}")));
            b += 1;
            r
        } else {
            let r = say(&format!("begin write {t} {b}"))
                .and_then(|()| {
                    db.write(&batch(t, b))
                        .map_err(|e| format!("write of batch {b} of stream {t}: {e}"))
                })
                .and_then(|()| say(&format!("ack {t} {b}")));
            b += 1;
            r
        };
        if let Err(e) = done {
            fail(e);
        }
    }
    Ok(())
}

/// Fills the scratch keyspace if it holds nothing, else clears it with
/// `delete_range`.
fn clear_step(db: &Db, full: &mut bool, rng: &mut SplitMix64) -> Result<(), String> {
    if *full {
        say("begin clear")?;
        scratch::clear(db)?;
        *full = false;
        say("end clear")
    } else {
        let g = rng.next_u64();
        say(&format!("begin fill {g}"))?;
        *full = true;
        scratch::create_and_fill(db, g)?;
        say(&format!("end fill {g}"))
    }
}

/// Fills a new scratch keyspace if none exists, else drops it.
fn scratch_step(db: &Db, live: &mut bool, rng: &mut SplitMix64) -> Result<(), String> {
    if *live {
        say("begin drop")?;
        let existed = db
            .drop_keyspace(scratch::SCRATCH)
            .map_err(|e| format!("drop_keyspace: {e}"))?;
        if !existed {
            return Err(format!(
                "keyspace {:?} vanished before its drop",
                scratch::SCRATCH
            ));
        }
        *live = false;
        say("end drop")
    } else {
        let g = rng.next_u64();
        say(&format!("begin fill {g}"))?;
        *live = true;
        scratch::create_and_fill(db, g)?;
        say(&format!("end fill {g}"))
    }
}
