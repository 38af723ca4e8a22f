//! `mfactl audit [--user USER] [--since TIME] [--event KIND] [--limit N]`: read the audit
//! trail. Administrators read anyone's; other users read their own.

use pam_mfa_api::limits::MAX_AUDIT_PAGE;
use pam_mfa_api::{AuditEntry, AuditQuery};

use crate::connect::connect_user;
use crate::failure::Failure;
use crate::report::{Report, when};

/// The entries, oldest first: lines as text, an array in JSON.
#[derive(serde::Serialize)]
pub struct Audit(pub Vec<Entry>);

/// One entry of the trail.
#[derive(serde::Serialize)]
pub struct Entry {
    /// Unix time.
    pub time: i64,
    /// Its kind: `login-allowed`, `locked-out`...
    pub event: String,
    /// The user it is about; `None` for events about no one user.
    pub user: Option<String>,
    /// The line mfad wrote to syslog.
    pub line: String,
    /// The host whose mfad recorded it, where several share one store (fleet mode).
    pub host: Option<String>,
}

impl From<AuditEntry> for Entry {
    fn from(entry: AuditEntry) -> Self {
        let given = |text: String| if text.is_empty() { None } else { Some(text) };
        Entry {
            time: entry.time,
            event: entry.kind,
            user: given(entry.user),
            line: entry.line,
            host: given(entry.host),
        }
    }
}

pub async fn run(
    bus: Option<&str>,
    user: Option<&str>,
    since: Option<&str>,
    event: Option<&str>,
    limit: u32,
) -> Result<Audit, Failure> {
    let since = match since {
        Some(text) => parse_since(text, now())?,
        None => 0,
    };
    let proxy = connect_user(bus).await?;
    // mfad answers in pages that look at MAX_AUDIT_PAGE entries at most, newest first; the
    // older pages are asked for until `limit` entries are found or the trail ends.
    let mut pages = Vec::new();
    let (mut found, mut before) = (0, 0);
    loop {
        let page = proxy
            .audit(&AuditQuery {
                user: user.unwrap_or_default().to_owned(),
                since,
                kind: event.unwrap_or_default().to_owned(),
                limit: (limit as usize).min(MAX_AUDIT_PAGE) as u32,
                before,
            })
            .await?;
        found += page.entries.len();
        pages.push(page.entries);
        if page.next == 0 || found >= limit as usize {
            break;
        }
        before = page.next;
    }
    // The newest `limit` of what was found, oldest first.
    let entries: Vec<AuditEntry> = pages.into_iter().rev().flatten().collect();
    let skip = entries.len().saturating_sub(limit as usize);
    Ok(Audit(
        entries.into_iter().skip(skip).map(Entry::from).collect(),
    ))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// `--since`: Unix seconds, a day `YYYY-MM-DD` (UTC), or a time ago (`30m`, `12h`, `7d`).
fn parse_since(text: &str, now: i64) -> Result<i64, Failure> {
    let bad = || {
        Failure::usage(format!(
            "--since {text}: expected Unix seconds, YYYY-MM-DD, or a time ago such as 30m, 12h, 7d"
        ))
    };
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    if let Some((number, unit)) = text.split_at_checked(text.len().saturating_sub(1)) {
        let scale = match unit {
            "m" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            _ => None,
        };
        if let (Some(scale), Ok(count)) = (scale, number.parse::<i64>()) {
            return Ok(now - count * scale);
        }
    }
    let parts: Vec<&str> = text.split('-').collect();
    if let [year, month, day] = parts[..]
        && let (Ok(y), Ok(m), Ok(d)) = (
            year.parse::<i64>(),
            month.parse::<i64>(),
            day.parse::<i64>(),
        )
        && (1..=12).contains(&m)
        && (1..=31).contains(&d)
    {
        // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return Ok((era * 146_097 + doe - 719_468) * 86_400);
    }
    Err(bad())
}

impl Report for Audit {
    fn text(&self) -> String {
        if self.0.is_empty() {
            return "no audit entries".into();
        }
        self.0
            .iter()
            .map(|entry| match &entry.host {
                // A store of one host: every entry is this host's.
                None => format!("{}  {}", when(entry.time), entry.line),
                Some(host) => format!("{}  {host}  {}", when(entry.time), entry.line),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Kind;
    use crate::report::json;

    #[test]
    fn since_takes_seconds_days_and_times_ago() {
        assert_eq!(parse_since("1700000000", 0).unwrap(), 1_700_000_000);
        assert_eq!(parse_since("2009-02-13", 0).unwrap(), 1_234_483_200);
        assert_eq!(parse_since("1970-01-01", 0).unwrap(), 0);
        assert_eq!(parse_since("2h", 10_000).unwrap(), 10_000 - 7200);
        assert_eq!(
            parse_since("7d", 1_000_000).unwrap(),
            1_000_000 - 7 * 86_400
        );
        let failure = parse_since("yesterday", 0).unwrap_err();
        assert_eq!(failure.kind(), &Kind::Usage);
        assert!(failure.message().contains("--since yesterday"));
    }

    #[test]
    fn entries_read_as_lines_and_as_an_array() {
        let entry = |user: &str, host: &str| {
            Entry::from(AuditEntry {
                time: 1_234_567_890,
                kind: "login-allowed".into(),
                user: user.into(),
                line: "login allowed".into(),
                host: host.into(),
            })
        };
        let report = Audit(vec![entry("", ""), entry("alice", "h1")]);
        assert_eq!(
            report.text(),
            "2009-02-13 23:31 UTC  login allowed\n2009-02-13 23:31 UTC  h1  login allowed"
        );
        assert_eq!(
            json(&report),
            serde_json::json!([
                { "time": 1_234_567_890, "event": "login-allowed", "user": null,
                  "line": "login allowed", "host": null },
                { "time": 1_234_567_890, "event": "login-allowed", "user": "alice",
                  "line": "login allowed", "host": "h1" },
            ])
        );
        assert_eq!(Audit(vec![]).text(), "no audit entries");
        assert_eq!(json(&Audit(vec![])), serde_json::json!([]));
    }
}
