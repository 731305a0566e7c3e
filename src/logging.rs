//! Structured logging with slog: JSON lines for machines (default) or text for people.
//!
//! Records go through an asynchronous drain; keep the returned guard alive until the end of
//! `main` so buffered records are flushed on exit.

use slog::{o, Drain, Level, Logger};

use crate::config::{LogConfig, LogFormat};

/// Flushes buffered records when dropped.
pub type LogGuard = slog_async::AsyncGuard;

fn level(name: &str) -> Level {
    match name {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "warning" => Level::Warning,
        "error" => Level::Error,
        "critical" => Level::Critical,
        _ => Level::Info,
    }
}

/// Builds the root logger writing to standard error.
pub fn init(config: &LogConfig) -> (Logger, LogGuard) {
    let min = level(&config.level);
    let (drain, guard) = match config.format {
        LogFormat::Json => {
            let json = slog_json::Json::new(std::io::stderr())
                .add_default_keys()
                .build()
                .fuse();
            slog_async::Async::new(json.filter_level(min).fuse())
                .chan_size(4096)
                .build_with_guard()
        }
        LogFormat::Text => {
            let decorator = slog_term::PlainDecorator::new(std::io::stderr());
            let text = slog_term::FullFormat::new(decorator).build().fuse();
            slog_async::Async::new(text.filter_level(min).fuse())
                .chan_size(4096)
                .build_with_guard()
        }
    };
    let log = Logger::root(drain.fuse(), o!("service" => "gdelt-lake"));
    (log, guard)
}

/// A logger that drops everything (tests that do not look at logs).
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}
