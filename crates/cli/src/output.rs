//! Standard output and standard error, with every write checked: a command
//! whose output is lost (a full disk, `/dev/full`, a closed pipe) fails
//! with exit 5 instead of claiming success.

use std::io::{BufWriter, StdoutLock, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit::CliError;

/// Set when a write to standard error failed (a log line or a warning).
static STDERR_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether some write to standard error failed since the start.
pub(crate) fn stderr_failed() -> bool {
    STDERR_FAILED.load(Ordering::Relaxed)
}

/// Writes `bytes` to standard error, remembering a failure (the exit code
/// turns to 5 if the command otherwise succeeds).
pub(crate) fn write_stderr(bytes: &[u8]) {
    let mut err = std::io::stderr().lock();
    if err.write_all(bytes).and_then(|()| err.flush()).is_err() {
        STDERR_FAILED.store(true, Ordering::Relaxed);
    }
}

/// One line on standard error, `sealkv: ` first.
pub(crate) fn error_line(message: &str) {
    write_stderr(format!("sealkv: {message}\n").as_bytes());
}

/// A `tracing` writer to standard error that remembers failures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stderr(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Buffered standard output for one command; [`Out::finish`] flushes it
/// and reports whether everything written got out.
pub(crate) struct Out {
    w: BufWriter<StdoutLock<'static>>,
}

fn failed(source: std::io::Error) -> CliError {
    CliError::Output {
        stream: "standard output",
        source,
    }
}

impl Out {
    /// Standard output, buffered.
    pub(crate) fn new() -> Self {
        Out {
            w: BufWriter::with_capacity(64 << 10, std::io::stdout().lock()),
        }
    }

    /// Writes `bytes` as they are.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.w.write_all(bytes).map_err(failed)
    }

    /// Writes `text` and a newline.
    pub(crate) fn line(&mut self, text: &str) -> Result<(), CliError> {
        self.bytes(text.as_bytes())?;
        self.bytes(b"\n")
    }

    /// Writes one JSON value on a line.
    pub(crate) fn json(&mut self, value: &serde_json::Value) -> Result<(), CliError> {
        self.line(&value.to_string())
    }

    /// Flushes: the output is complete only once this succeeded.
    pub(crate) fn finish(mut self) -> Result<(), CliError> {
        self.w.flush().map_err(failed)
    }
}

/// One line on standard output, checked.
pub(crate) fn println(text: &str) -> Result<(), CliError> {
    let mut out = Out::new();
    out.line(text)?;
    out.finish()
}

/// `text` as it is on standard output, checked.
pub(crate) fn print_str(text: &str) -> Result<(), CliError> {
    let mut out = Out::new();
    out.bytes(text.as_bytes())?;
    out.finish()
}

/// One JSON value on standard output, checked.
pub(crate) fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let mut out = Out::new();
    out.json(value)?;
    out.finish()
}
