//! The `sealkv` command-line tool.
//!
//! **Status: not built yet** (issue 9). It prints what exists and exits with
//! the usage-error code, so no script mistakes it for a working tool.

use std::process::ExitCode;

fn main() -> ExitCode {
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "sealkv {}: the command-line tool is not built yet (see the README's status)",
            env!("CARGO_PKG_VERSION")
        );
    }
    ExitCode::from(2)
}
