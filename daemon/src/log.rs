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

use std::io::Write as _;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use crate::audit::{Event, Severity};
use crate::clock::{Clock, SystemClock};

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
    /// The syslog line being sent, kept so that its memory is reused line after line.
    line: Vec<u8>,
    /// The RFC 3164 timestamp of the second the last line was sent in, and that second.
    stamp: (u64, [u8; STAMP_LEN]),
    /// What follows the timestamp: ` mfad[PID]: ` (the pid asked once, not per line).
    tag: String,
}

/// `Mmm dd hh:mm:ss`, the timestamp of an RFC 3164 line.
const STAMP_LEN: usize = 15;

/// The RFC 3164 timestamp (UTC, as the syslog crate writes it) of Unix time `now`.
fn stamp(now: u64) -> [u8; STAMP_LEN] {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let (days, seconds) = (now / 86_400, now % 86_400);
    // The civil date of a day count (Howard Hinnant's `civil_from_days`), for the month and day.
    let z = days + 719_468;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let mut out = [b' '; STAMP_LEN];
    out[..3].copy_from_slice(MONTHS[(month - 1) as usize]);
    let two = |out: &mut [u8], at: usize, value: u64| {
        out[at] = b'0' + (value / 10) as u8;
        out[at + 1] = b'0' + (value % 10) as u8;
    };
    two(&mut out, 4, day);
    two(&mut out, 7, seconds / 3600);
    out[9] = b':';
    two(&mut out, 10, seconds / 60 % 60);
    out[12] = b':';
    two(&mut out, 13, seconds % 60);
    out
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
        line: Vec::new(),
        stamp: (0, stamp(0)),
        tag: format!(" mfad[{}]: ", std::process::id()),
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
        // One write for the whole line (eprintln! writes each piece apart, unbuffered).
        let line = &mut sink.line;
        line.clear();
        for piece in ["mfad: ", tag, ": ", message, "\n"] {
            line.extend_from_slice(piece.as_bytes());
        }
        let _ = std::io::stderr().write_all(line);
    }
    if sink.syslog.is_none() && sink.last_attempt.is_none_or(|at| at.elapsed() >= RECONNECT) {
        sink.syslog = connect();
        sink.last_attempt = Some(Instant::now());
    }
    if sink.syslog.is_none() {
        return;
    }
    compose(sink, level, message);
    let Sink { syslog, line, .. } = sink;
    let failed = syslog
        .as_mut()
        .is_some_and(|logger| send(&mut logger.backend, line).is_err());
    if failed {
        // syslog went away or was restarted: try a new connection at once, else again later.
        sink.syslog = connect();
        sink.last_attempt = Some(Instant::now());
        let Sink { syslog, line, .. } = sink;
        if let Some(logger) = syslog.as_mut()
            && send(&mut logger.backend, line).is_err()
        {
            sink.syslog = None;
        }
    }
}

/// Sends one composed line, as the syslog crate sends one: a datagram, or on a stream the line
/// and a NUL.
fn send(backend: &mut LoggerBackend, line: &[u8]) -> std::io::Result<()> {
    match backend {
        LoggerBackend::Unix(socket) => socket.send(line).map(drop),
        LoggerBackend::UnixStream(socket) => {
            socket.write_all(line)?;
            socket.write_all(&[0])?;
            socket.flush()
        }
        other => other.write_all(line),
    }
}

/// Puts `message` in `sink.line` as the RFC 3164 line the syslog crate's `Formatter3164` makes
/// (`<priority>Mmm dd hh:mm:ss mfad[pid]: message`, UTC), without parsing a format description
/// and allocating per line as it does.
fn compose(sink: &mut Sink, level: Level, message: &str) {
    let severity = match level {
        Level::Info => syslog::Severity::LOG_INFO,
        Level::Warning => syslog::Severity::LOG_WARNING,
        Level::Error => syslog::Severity::LOG_ERR,
    };
    let now = SystemClock.now();
    if sink.stamp.0 != now {
        sink.stamp = (now, stamp(now));
    }
    let line = &mut sink.line;
    line.clear();
    // Writing to a Vec cannot fail.
    let _ = write!(line, "<{}>", Facility::LOG_AUTHPRIV as u8 | severity as u8);
    line.extend_from_slice(&sink.stamp.1);
    line.extend_from_slice(sink.tag.as_bytes());
    line.extend_from_slice(message.as_bytes());
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
    fn timestamps_are_as_rfc_3164_writes_them() {
        assert_eq!(&stamp(0), b"Jan 01 00:00:00");
        // 2024-02-29 23:59:59 UTC, a leap day.
        assert_eq!(&stamp(1_709_251_199), b"Feb 29 23:59:59");
        // 2025-12-07 09:05:03 UTC.
        assert_eq!(&stamp(1_765_098_303), b"Dec 07 09:05:03");
    }

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
