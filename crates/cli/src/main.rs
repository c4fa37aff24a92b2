//! The `sealkv` command-line tool.
//!
//! The command names, flags and exit codes are a contract (see `--help` and
//! the README): scripts depend on them. Today `keygen` works; the commands
//! that need the storage engine answer with a clear "not available yet" and
//! exit code 5 until the engine lands.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod exit;
mod keygen;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::CliError;

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Keygen { path } => keygen::run(&path),
        other => Err(CliError::NotYet(other.name())),
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
