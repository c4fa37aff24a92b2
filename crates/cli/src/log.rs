//! The engine's log on standard error: warnings by default (a torn WAL
//! tail cut, an interrupted key registry set aside, an unusable meta page),
//! more with `-v`, errors only with `-q`. One line per event:
//! `sealkv: warning: MESSAGE field=value ...`.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::output::Stderr;

/// The most detailed level shown for `-v` given `verbose` times, or `-q`.
pub(crate) fn level(verbose: u8, quiet: bool) -> LevelFilter {
    if quiet {
        return LevelFilter::ERROR;
    }
    match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Installs the subscriber for the whole process.
pub(crate) fn init(level: LevelFilter) {
    // Only fails if a subscriber is already installed, which nothing else
    // in this program does.
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| Stderr)
        .event_format(Line)
        .try_init();
}

/// `sealkv: LEVEL: message field=value ...`.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "sealkv: {level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
