//! `sealkv-crash`: the crash-kill harness.
//!
//! ```text
//! sealkv-crash [--cycles N] [--mode plaintext|aes|chacha|siv|hsm|all] [--seed S] [--dir D] [--anchor] [--compact] [--software-wrapper] [--verbose]
//! ```
//!
//! Each cycle starts a child process (this same binary, `child`
//! subcommand) that opens the database with `SyncMode::Always` and writes
//! batches from three threads at once (three streams of numbered batches:
//! stream 0 blind writes, streams 1 and 2 transactions that read their
//! stream's last batch and increment a shared counter, stream 1 in a named
//! keyspace), flushes, rotates the data key, rekeys, creates and destroys
//! field keys, re-encrypts, and creates, fills and drops a scratch
//! keyspace at random, printing `ack T B` on stdout only after batch `B`
//! of stream `T` was committed. The parent SIGKILLs it at a random instant
//! — a random delay after start or after open, or shortly after a chosen
//! `begin flush`, `begin rotate`, `begin rekey`, `begin field key`, `begin
//! reencrypt`, re-encryption `step`, `begin write`, `begin txn`, `begin
//! fill` or `begin drop` marker — then reopens the database itself and
//! checks that every acknowledged batch is present and whole, that no
//! batch or transaction is partly applied (the counter equals the
//! transactions committed), that nothing beyond the batches in flight
//! appeared, that the scratch keyspace is as its acknowledged fills and
//! drops left it, and that `Db::verify` finds nothing. After a cycle
//! whose key operations changed `KEYS` (sealed modes), a copy of the
//! directory with the older `KEYS` put back and the header-only newest WAL
//! segments removed must not open: `Rollback`, or, without an anchor,
//! `Corruption` when the older registry can open no meta page. The next
//! cycle continues on the same directory. Modes take turns, each in its own
//! directory. With `--anchor`, both processes open with a freshness anchor
//! file beside the directory, updated after every commit: a kill between
//! a commit and the anchor's update must not make the reopen a `Rollback`.
//!
//! With `--compact` (compaction mode), the child's stream 0 compacts the
//! page file (`Db::compact`) at random and clears the scratch keyspace with
//! `Keyspace::delete_range` instead of dropping it, and makes no key
//! operations; the parent also aims its kills at `begin compact` and
//! `begin clear`, and a clear cut short may leave a tail of the fill in key
//! order, never a hole. The same checks run after each kill.
//!
//! `--mode hsm` (not part of `all`) runs a database whose master key is a
//! key wrapper's: a SoftHSM2 token made in a temporary directory when
//! SoftHSM2 is installed (the run then goes on in a second process under
//! it, see `hsm.rs`), else — or with `--software-wrapper` — the in-process
//! test wrapper; the report's first line says which. Its rekeys draw a new
//! root key wrapped by the token, and the older-`KEYS` put-back runs as in
//! the other sealed modes. Its `PROOF` lines are named `crash-kill-hsm`.
//!
//! The child is a subcommand of the same binary rather than a binary of
//! its own so parent and child are always the same build, and so the
//! harness needs no dependency from a test-helper crate on the engine
//! (whose tests depend on the helpers).
//!
//! Prints the figures; exits 1 on any finding (and keeps the databases).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod child;
mod hsm;
mod mode;
mod parent;
mod scratch;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::child::ChildArgs;
use crate::mode::Mode;
use crate::parent::RunArgs;

const USAGE: &str = "usage: sealkv-crash [--cycles N] [--mode plaintext|aes|chacha|siv|hsm|all] [--seed S] [--dir D] [--anchor] [--compact] [--software-wrapper] [--verbose]";

fn number(v: Option<&String>, what: &str) -> Result<u64, String> {
    v.ok_or(format!("{what} needs a value"))?
        .parse()
        .map_err(|_| format!("{what} needs a number"))
}

fn parse_run(args: &[String]) -> Result<RunArgs, String> {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut run = RunArgs {
        cycles: 100,
        modes: Mode::all(),
        seed,
        dir: None,
        verbose: false,
        anchored: false,
        software_wrapper: false,
        compact: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cycles" => run.cycles = number(it.next(), "--cycles")?,
            "--seed" => run.seed = number(it.next(), "--seed")?,
            "--mode" => run.modes = Mode::parse_list(it.next().ok_or("--mode needs a value")?)?,
            "--dir" => run.dir = Some(PathBuf::from(it.next().ok_or("--dir needs a path")?)),
            "--verbose" => run.verbose = true,
            "--anchor" => run.anchored = true,
            "--software-wrapper" => run.software_wrapper = true,
            "--compact" => run.compact = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(run)
}

fn parse_child(args: &[String]) -> Result<ChildArgs, String> {
    let (mut dir, mut mode, mut next, mut seed) = (None, None, Vec::new(), 0);
    let (mut anchored, mut compact) = (false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => dir = it.next().map(PathBuf::from),
            "--mode" => mode = Some(Mode::parse(it.next().ok_or("--mode needs a value")?)?),
            "--next" => {
                next = it
                    .next()
                    .ok_or("--next needs a value")?
                    .split(',')
                    .map(|n| n.parse().map_err(|_| format!("--next: {n:?} is no number")))
                    .collect::<Result<_, String>>()?;
            }
            "--seed" => seed = number(it.next(), "--seed")?,
            "--anchor" => anchored = true,
            "--compact" => compact = true,
            other => return Err(format!("unknown child argument {other:?}")),
        }
    }
    Ok(ChildArgs {
        dir: dir.ok_or("child: --dir missing")?,
        mode: mode.ok_or("child: --mode missing")?,
        next,
        seed,
        anchored,
        compact,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return match parse_child(&args[1..]).and_then(|a| child::run(&a)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sealkv-crash child: {e}");
                ExitCode::from(3)
            }
        };
    }
    let run = match parse_run(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sealkv-crash: {e}");
            return ExitCode::from(2);
        }
    };
    if run.modes.contains(&Mode::Hsm) {
        if !run.software_wrapper
            && let Some(code) = hsm::reexec_with_token(&args)
        {
            return code.unwrap_or_else(|e| {
                eprintln!("sealkv-crash: {e}");
                ExitCode::from(2)
            });
        }
        if let Err(e) = hsm::ensure_key() {
            eprintln!("sealkv-crash: {e}");
            return ExitCode::from(2);
        }
        println!("hsm mode: the master key is {}", hsm::describe());
    }
    let started = Instant::now();
    match parent::run(&run) {
        Ok(summary) => {
            let proof = if run.anchored {
                println!(
                    "freshness anchor: a file beside each database, updated after every commit"
                );
                "crash-kill-anchor"
            } else if run.compact {
                println!("compaction mode: compactions and range deletes under the kill");
                "crash-kill-compact"
            } else if run.modes == [Mode::Hsm] {
                "crash-kill-hsm"
            } else {
                "crash-kill"
            };
            summary.print(run.seed, started.elapsed(), proof);
            if summary.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("sealkv-crash: {e}");
            ExitCode::from(2)
        }
    }
}
