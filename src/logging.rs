//! Log output in nats-server's style: `[pid] 2006/01/02 15:04:05.000000 [INF] text`.
//!
//! Owns the line format and the level mapping of nats-server's flags (`-D` debug,
//! `-V` trace, `-T` timestamps). It must not be called on the message hot path
//! except behind a trace check.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sync::Mutex;
use std::time::SystemTime;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, Registry};

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open log file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a global logger is already installed")]
    AlreadySet,
}

/// Formats events as nats-server does.
pub struct NatsFormat {
    pid: u32,
    logtime: bool,
}

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(w, "[{}] ", self.pid)?;
        if self.logtime {
            write!(w, "{} ", crate::time::log_timestamp(SystemTime::now()))?;
        }
        let level = match *event.metadata().level() {
            Level::ERROR => "[ERR]",
            Level::WARN => "[WRN]",
            Level::INFO => "[INF]",
            Level::DEBUG => "[DBG]",
            Level::TRACE => "[TRC]",
        };
        write!(w, "{level} ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Where log lines go: stderr, or a file that can be reopened (log rotation).
#[derive(Clone)]
pub struct LogTarget {
    file: Option<Arc<Mutex<(PathBuf, File)>>>,
}

impl LogTarget {
    /// Reopens the log file under its path (after an external rotation).
    pub fn reopen(&self) -> Result<(), LogError> {
        if let Some(f) = &self.file {
            let mut g = f.lock();
            let file = open_append(&g.0)?;
            g.1 = file;
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// One log line's writer.
pub enum LineWriter {
    Stderr(std::io::Stderr),
    File(Arc<Mutex<(PathBuf, File)>>),
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            LineWriter::Stderr(s) => s.write(buf),
            LineWriter::File(f) => f.lock().1.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LineWriter::Stderr(s) => s.flush(),
            LineWriter::File(f) => f.lock().1.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for LogTarget {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        match &self.file {
            Some(f) => LineWriter::File(f.clone()),
            None => LineWriter::Stderr(std::io::stderr()),
        }
    }
}

/// The running logger: its output (reopenable) and its level (reloadable).
#[derive(Clone)]
pub struct LogHandle {
    pub target: LogTarget,
    level: reload::Handle<LevelFilter, Registry>,
}

impl LogHandle {
    /// Applies `-D`/`-V` style flags at run time (config reload).
    pub fn set_level(&self, debug: bool, trace: bool) -> Result<(), LogError> {
        self.level
            .modify(|f| *f = level_filter(debug, trace))
            .map_err(|_| LogError::AlreadySet)
    }
}

fn level_filter(debug: bool, trace: bool) -> LevelFilter {
    if trace {
        LevelFilter::TRACE
    } else if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    }
}

/// Installs the global logger. `debug`/`trace` follow `-D`/`-V`.
pub fn init(
    log_file: Option<&Path>,
    debug: bool,
    trace: bool,
    logtime: bool,
) -> Result<LogHandle, LogError> {
    let target = LogTarget {
        file: match log_file {
            Some(p) => Some(Arc::new(Mutex::new((p.to_path_buf(), open_append(p)?)))),
            None => None,
        },
    };
    let (filter, level) = reload::Layer::new(level_filter(debug, trace));
    let output = tracing_subscriber::fmt::layer()
        .with_writer(target.clone())
        .log_internal_errors(false)
        .event_format(NatsFormat {
            pid: std::process::id(),
            logtime,
        });
    let subscriber = Registry::default().with(filter).with(output);
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadySet)?;
    Ok(LogHandle { target, level })
}
