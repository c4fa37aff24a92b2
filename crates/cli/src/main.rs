//! The `sealkv` command-line tool.
//!
//! The command names, flags and exit codes are a contract (see `--help` and
//! the README): scripts depend on them.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod archive;
mod args;
mod bench;
mod commands;
mod demo;
mod exit;
mod keygen;
mod open;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::CliError;

fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    match &cli.command {
        Command::Keygen { path } => keygen::run(path),
        Command::Init { page_size } => commands::init(g, *page_size),
        Command::Put { key, value } => commands::put(g, key, value),
        Command::Get { key } => commands::get(g, key),
        Command::Delete { key } => commands::delete(g, key),
        Command::Scan {
            prefix,
            start,
            end,
            limit,
            json,
        } => commands::scan(
            g,
            &commands::ScanArgs {
                prefix: prefix.as_deref(),
                start: start.as_deref(),
                end: end.as_deref(),
                limit: *limit,
                json: *json,
            },
        ),
        Command::Load { file } => commands::load(g, file),
        Command::Flush => commands::flush(g),
        Command::Stats { json } => commands::stats(g, *json),
        Command::Verify => commands::verify(g),
        Command::Backup { dest } => commands::backup(g, dest),
        Command::Restore { backup, dest } => commands::restore(g, backup, dest),
        Command::RotateKey => commands::rotate_key(g),
        Command::Reencrypt => commands::reencrypt(g),
        Command::Rekey { new_key_file } => commands::rekey(g, new_key_file),
        Command::Export {
            file,
            archive_key_file,
            plaintext_export,
        } => archive::export(g, file, archive_key_file.as_deref(), *plaintext_export),
        Command::Import {
            file,
            archive_key_file,
            plaintext_archive,
        } => archive::import(g, file, archive_key_file.as_deref(), *plaintext_archive),
        Command::VerifyArchive {
            file,
            archive_key_file,
            plaintext_archive,
        } => archive::verify(g, file, archive_key_file.as_deref(), *plaintext_archive),
        Command::Demo => demo::run(),
        Command::Bench {
            n,
            json,
            rounds,
            value_size,
            only,
            peers,
            cache_mib,
        } => bench::run(
            g.db.as_deref(),
            &bench::Options {
                records: n.unwrap_or(bench::DEFAULT_RECORDS),
                rounds: rounds.unwrap_or(bench::DEFAULT_ROUNDS),
                value_len: *value_size,
                only: only.clone(),
                json: *json,
                peers: *peers,
                cache_mib: *cache_mib,
            },
        ),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealkv: {e}");
            e.exit_code()
        }
    }
}
