//! Audit and diagnostic lines: to syslog (facility AUTHPRIV) and to stderr.
//!
//! Callers build lines from credential-free values only: user names, services, verdicts. No code,
//! secret or reply ever reaches this module.

use std::sync::{Mutex, OnceLock};

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

static SYSLOG: OnceLock<Mutex<Option<Logger<LoggerBackend, Formatter3164>>>> = OnceLock::new();

/// Connects to the local syslog socket; without one, lines go to stderr only.
pub fn init() {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "mfad".into(),
        pid: std::process::id(),
    };
    let logger = syslog::unix(formatter).ok();
    let _ = SYSLOG.set(Mutex::new(logger));
}

#[derive(Clone, Copy)]
pub enum Level {
    Info,
    Warning,
    Error,
}

pub fn line(level: Level, message: &str) {
    let tag = match level {
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Error => "error",
    };
    eprintln!("mfad: {tag}: {message}");
    if let Some(mut guard) = SYSLOG.get().and_then(|lock| lock.lock().ok())
        && let Some(logger) = guard.as_mut()
    {
        let _ = match level {
            Level::Info => logger.info(message),
            Level::Warning => logger.warning(message),
            Level::Error => logger.err(message),
        };
    }
}

pub fn info(message: &str) {
    line(Level::Info, message);
}

pub fn warning(message: &str) {
    line(Level::Warning, message);
}

pub fn error(message: &str) {
    line(Level::Error, message);
}
