//! Where mfad's lines go: syslog (facility AUTHPRIV), and a copy on stderr when mfad runs in
//! the foreground by hand or in a container (not when stderr is the journal, which receives
//! syslog already).
//!
//! Two kinds of line: audit events ([`event`], built from [`crate::audit::Event`], which holds
//! no secret) and diagnostics ([`info`], [`warning`], [`error`]). Lines caused by an
//! unprivileged caller are rate-limited per uid, so no local user can flood the log.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use crate::audit::{Event, Severity};

/// Lines one unprivileged uid may cause in a burst, and then one per [`REFILL`].
pub const BURST: u32 = 20;
pub const REFILL: Duration = Duration::from_secs(1);
/// How often to try to reach syslog again after it went away.
const RECONNECT: Duration = Duration::from_secs(1);

struct Bucket {
    tokens: u32,
    refilled: Instant,
    suppressed: u64,
}

/// A per-uid token bucket: [`BURST`] lines, one more each [`REFILL`].
#[derive(Default)]
pub struct RateLimit {
    buckets: HashMap<u32, Bucket>,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it; before it, say how many lines of this uid were left out.
    Write {
        suppressed: u64,
    },
    Suppress,
}

impl RateLimit {
    pub fn admit(&mut self, uid: u32, now: Instant) -> Admit {
        if self.buckets.len() > 4096 {
            self.buckets
                .retain(|_, bucket| now.duration_since(bucket.refilled) < REFILL * BURST);
        }
        let bucket = self.buckets.entry(uid).or_insert(Bucket {
            tokens: BURST,
            refilled: now,
            suppressed: 0,
        });
        let earned = (now.duration_since(bucket.refilled).as_millis() / REFILL.as_millis()) as u32;
        if earned > 0 {
            bucket.tokens = (bucket.tokens + earned).min(BURST);
            bucket.refilled = now;
        }
        if bucket.tokens == 0 {
            bucket.suppressed += 1;
            return Admit::Suppress;
        }
        bucket.tokens -= 1;
        Admit::Write {
            suppressed: std::mem::take(&mut bucket.suppressed),
        }
    }
}

struct Sink {
    syslog: Option<Logger<LoggerBackend, Formatter3164>>,
    last_attempt: Option<Instant>,
    stderr: bool,
    limits: RateLimit,
}

static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();

fn connect() -> Option<Logger<LoggerBackend, Formatter3164>> {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "mfad".into(),
        pid: std::process::id(),
    };
    syslog::unix(formatter).ok()
}

/// Connects to the local syslog socket. Without one, lines go to stderr only until it appears.
pub fn init() {
    let stderr = std::env::var_os("JOURNAL_STREAM").is_none();
    let _ = SINK.set(Mutex::new(Sink {
        syslog: connect(),
        last_attempt: Some(Instant::now()),
        stderr,
        limits: RateLimit::default(),
    }));
}

fn sink() -> Option<MutexGuard<'static, Sink>> {
    SINK.get()
        .map(|lock| lock.lock().unwrap_or_else(|p| p.into_inner()))
}

#[derive(Clone, Copy)]
enum Level {
    Info,
    Warning,
    Error,
}

fn write(sink: &mut Sink, level: Level, message: &str) {
    let tag = match level {
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Error => "error",
    };
    if sink.stderr {
        eprintln!("mfad: {tag}: {message}");
    }
    if sink.syslog.is_none() && sink.last_attempt.is_none_or(|at| at.elapsed() >= RECONNECT) {
        sink.syslog = connect();
        sink.last_attempt = Some(Instant::now());
    }
    let failed = sink
        .syslog
        .as_mut()
        .is_some_and(|logger| send(logger, level, message).is_err());
    if failed {
        // syslog went away or was restarted: try a new connection at once, else again later.
        sink.syslog = connect();
        sink.last_attempt = Some(Instant::now());
        if let Some(logger) = sink.syslog.as_mut()
            && send(logger, level, message).is_err()
        {
            sink.syslog = None;
        }
    }
}

fn send(
    logger: &mut Logger<LoggerBackend, Formatter3164>,
    level: Level,
    message: &str,
) -> syslog::Result<()> {
    match level {
        Level::Info => logger.info(message),
        Level::Warning => logger.warning(message),
        Level::Error => logger.err(message),
    }
}

fn line(level: Level, message: &str) {
    match sink() {
        Some(mut sink) => write(&mut sink, level, message),
        None => eprintln!("mfad: {message}"),
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

/// Writes an audit event caused by a caller of uid `caused_by`; rate-limited unless root.
pub fn event(event: &Event, caused_by: u32) {
    let level = match event.severity() {
        Severity::Info => Level::Info,
        Severity::Warning => Level::Warning,
    };
    let Some(mut sink) = sink() else {
        eprintln!("mfad: {event}");
        return;
    };
    if caused_by != 0 {
        match sink.limits.admit(caused_by, Instant::now()) {
            Admit::Suppress => return,
            Admit::Write { suppressed: 0 } => {}
            Admit::Write { suppressed } => write(
                &mut sink,
                Level::Warning,
                &format!("{suppressed} lines caused by uid {caused_by} were left out (rate limit)"),
            ),
        }
    }
    write(&mut sink, level, &event.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_uid_is_cut_and_counted() {
        let mut limits = RateLimit::default();
        let start = Instant::now();
        for _ in 0..BURST {
            assert_eq!(limits.admit(1000, start), Admit::Write { suppressed: 0 });
        }
        for _ in 0..500 {
            assert_eq!(limits.admit(1000, start), Admit::Suppress);
        }
        // Another uid is not affected.
        assert_eq!(limits.admit(1001, start), Admit::Write { suppressed: 0 });
        // A second later one line is due, with the count of those left out.
        assert_eq!(
            limits.admit(1000, start + REFILL),
            Admit::Write { suppressed: 500 }
        );
        assert_eq!(limits.admit(1000, start + REFILL), Admit::Suppress);
    }
}
