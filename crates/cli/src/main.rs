//! The `sealkv` command-line tool.
//!
//! The command names, flags, output formats and exit codes are a contract
//! (see `--help` and the README): scripts depend on them.

mod archive;
mod args;
mod bench;
mod commands;
mod demo;
mod exit;
mod keygen;
mod keyspace;
mod load;
mod log;
mod open;
mod output;
mod progress;
mod records;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::CliError;

fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    match &cli.command {
        Command::Keygen { path, pkcs11 } => match (path, pkcs11) {
            (_, true) => keygen::pkcs11(g),
            (Some(path), false) => keygen::run(path),
            (None, false) => Err(exit::CliError::Usage(
                "keygen needs a PATH, or --pkcs11".into(),
            )),
        },
        Command::Init { page_size } => commands::init(g, *page_size),
        Command::Put { key, value } => commands::put(g, key, value),
        Command::Get { key, raw } => commands::get(g, key, *raw),
        Command::Delete { key: Some(key), .. } => commands::delete(g, key),
        Command::Delete {
            key: None,
            prefix: Some(prefix),
        } => commands::delete_prefix(g, prefix),
        Command::Delete {
            key: None,
            prefix: None,
        } => Err(CliError::Usage("give a KEY or --prefix P".into())),
        Command::Scan {
            prefix,
            start,
            end,
            limit,
        } => commands::scan(
            g,
            &commands::ScanArgs {
                prefix: prefix.as_deref(),
                start: start.as_deref(),
                end: end.as_deref(),
                limit: *limit,
            },
        ),
        Command::Load {
            file,
            batch_size,
            atomic,
        } => load::run(g, file, *batch_size, *atomic),
        Command::Keyspaces { drop: None } => keyspace::list(g),
        Command::Keyspaces { drop: Some(name) } => keyspace::drop(g, name),
        Command::Flush => commands::flush(g),
        Command::Compact => commands::compact(g),
        Command::Stats => commands::stats(g),
        Command::Verify => commands::verify(g),
        Command::Backup { dest } => commands::backup(g, dest),
        Command::Restore { backup, dest } => commands::restore(g, backup, dest),
        Command::RotateKey => commands::rotate_key(g),
        Command::Reencrypt => commands::reencrypt(g),
        Command::Rekey {
            new_key_file,
            new_pkcs11_key,
        } => commands::rekey(g, new_key_file.as_deref(), new_pkcs11_key.as_deref()),
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
            rounds,
            value_size,
            only,
            peers,
            cache_mib,
            suite,
        } => bench::run(
            g.db.as_deref(),
            &bench::Options {
                records: n.unwrap_or(bench::DEFAULT_RECORDS),
                rounds: rounds.unwrap_or(bench::DEFAULT_ROUNDS),
                value_len: *value_size,
                only: only.clone(),
                json: g.json,
                peers: *peers,
                cache_mib: *cache_mib,
                suite: match suite {
                    args::BenchSuite::All => bench::Suite::All,
                    args::BenchSuite::KeyValue => bench::Suite::KeyValue,
                    args::BenchSuite::Collections => bench::Suite::Collections,
                },
            },
        ),
    }
}

/// Help, version and usage errors, written as checked as any output: help
/// and version on standard output (exit 0, or 5 if lost), a usage error
/// on standard error (exit 2).
fn parse_failed(e: &clap::Error) -> ExitCode {
    let text = e.render().to_string();
    if e.use_stderr() {
        output::write_stderr(text.as_bytes());
        return ExitCode::from(exit::USAGE);
    }
    match output::print_str(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(lost) => {
            output::error_line(&lost.to_string());
            lost.exit_code()
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_failed(&e),
    };
    log::init(log::level(cli.global.verbose, cli.global.quiet));
    open::warn_if_plugin_refused();
    progress::set_hidden(cli.global.quiet);
    let result = run(cli);
    // A command that did its work but whose output (a warning, a line on
    // standard error) was lost does not claim success.
    let result = match result {
        Ok(()) if output::stderr_failed() => Err(CliError::Output {
            stream: "standard error",
            source: std::io::Error::other("a write failed"),
        }),
        other => other,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // If this line is lost too, the exit code still tells.
            output::error_line(&e.to_string());
            e.exit_code()
        }
    }
}
