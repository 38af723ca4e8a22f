//! From how a login ended to what each party sees: the PAM code for the application, the log
//! line for the administrator, the notice for the user. One pure function, tested as a table.
#![forbid(unsafe_code)]

use pam_mfa_login::UNAVAILABLE_NOTICE;
use pamsm::PamError;

use crate::args::{FailMode, NotRequired};
use crate::relay::Outcome;

/// Syslog priority of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Alert,
    Error,
    Warning,
    Debug,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub code: PamError,
    pub log: Option<(Level, String)>,
    /// One line shown to the user as `PAM_ERROR_MSG`, even under `PAM_SILENT`: without it the
    /// user sees only "Permission denied" and cannot tell a wrong code from a broken service.
    pub notice: Option<&'static str>,
}

impl Verdict {
    fn quiet(code: PamError) -> Self {
        Verdict {
            code,
            log: None,
            notice: None,
        }
    }

    fn logged(code: PamError, level: Level, line: String) -> Self {
        Verdict {
            code,
            log: Some((level, line)),
            notice: None,
        }
    }

    /// The second factor could not be checked: the user is told so.
    fn unavailable(line: String) -> Self {
        Verdict {
            code: PamError::AUTHINFO_UNAVAIL,
            log: Some((Level::Error, line)),
            notice: Some(UNAVAILABLE_NOTICE),
        }
    }

    fn debug(code: PamError, debug: bool, line: String) -> Self {
        if debug {
            Verdict::logged(code, Level::Debug, line)
        } else {
            Verdict::quiet(code)
        }
    }
}

/// The verdict for `outcome`. `failmode=safe` allows only when the daemon is definitely absent
/// and had asked nothing; a time-out, a refusal, or a loss after the question always deny.
pub fn verdict(
    outcome: &Outcome,
    failmode: FailMode,
    not_required: NotRequired,
    debug: bool,
    user: &str,
) -> Verdict {
    match outcome {
        Outcome::Allow => Verdict::debug(
            PamError::SUCCESS,
            debug,
            format!("second factor accepted for {user}"),
        ),
        Outcome::Skip => Verdict::debug(
            match not_required {
                NotRequired::Ignore => PamError::IGNORE,
                NotRequired::Success => PamError::SUCCESS,
            },
            debug,
            format!("second factor not required for {user}"),
        ),
        Outcome::Deny(reason) => Verdict::debug(
            PamError::AUTH_ERR,
            debug,
            format!("second factor denied for {user}: {reason}"),
        ),
        Outcome::MaxTries => Verdict::debug(
            PamError::MAXTRIES,
            debug,
            format!("second factor denied for {user}: too many wrong codes"),
        ),
        Outcome::ConversationFailed => Verdict::debug(
            PamError::CONV_ERR,
            debug,
            format!("the application gave no answer for {user}; login abandoned"),
        ),
        Outcome::Refused(reason) => Verdict::logged(
            PamError::PERM_DENIED,
            Level::Warning,
            format!("mfad refused, or was refused, for {user}: {reason}; denying"),
        ),
        Outcome::Absent(reason) => match failmode {
            FailMode::Secure => Verdict::unavailable(format!(
                "mfad is not running ({reason}); denying {user} (failmode=secure)"
            )),
            FailMode::Safe => Verdict::logged(
                PamError::SUCCESS,
                Level::Alert,
                format!(
                    "mfad is not running ({reason}); ALLOWING {user} WITHOUT A SECOND FACTOR \
                     because failmode=safe"
                ),
            ),
        },
        Outcome::NoAnswer(reason) => Verdict::unavailable(format!(
            "no answer from mfad ({reason}); denying {user} (a time-out is not absence: \
             failmode=safe does not apply)"
        )),
        Outcome::LostAfterQuestion(reason) => Verdict::unavailable(format!(
            "mfad lost during the login of {user} ({reason}); denying"
        )),
        Outcome::DaemonFailed(reason) => Verdict::unavailable(format!(
            "mfad could not check the second factor of {user} ({reason}); denying"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_outcome() -> Vec<Outcome> {
        vec![
            Outcome::Allow,
            Outcome::Skip,
            Outcome::Deny("wrong code".into()),
            Outcome::MaxTries,
            Outcome::ConversationFailed,
            Outcome::Refused("uid 1000 owns the name".into()),
            Outcome::Absent("no socket".into()),
            Outcome::NoAnswer("timed out".into()),
            Outcome::LostAfterQuestion("timed out".into()),
            Outcome::DaemonFailed("disk full".into()),
        ]
    }

    /// outcome, fail mode -> PAM code, notice shown, log level (without `debug`).
    type Row = (
        Outcome,
        FailMode,
        PamError,
        Option<&'static str>,
        Option<Level>,
    );

    #[test]
    fn the_verdict_table() {
        use FailMode::{Safe, Secure};
        use Level::{Alert, Error, Warning};
        let unavailable = Some(UNAVAILABLE_NOTICE);
        #[rustfmt::skip]
        let table: [Row; 20] = [
            (Outcome::Allow, Secure, PamError::SUCCESS, None, None),
            (Outcome::Allow, Safe, PamError::SUCCESS, None, None),
            (Outcome::Skip, Secure, PamError::IGNORE, None, None),
            (Outcome::Skip, Safe, PamError::IGNORE, None, None),
            (Outcome::Deny("x".into()), Secure, PamError::AUTH_ERR, None, None),
            (Outcome::Deny("x".into()), Safe, PamError::AUTH_ERR, None, None),
            (Outcome::MaxTries, Secure, PamError::MAXTRIES, None, None),
            (Outcome::MaxTries, Safe, PamError::MAXTRIES, None, None),
            (Outcome::ConversationFailed, Secure, PamError::CONV_ERR, None, None),
            (Outcome::ConversationFailed, Safe, PamError::CONV_ERR, None, None),
            (Outcome::Refused("x".into()), Secure, PamError::PERM_DENIED, None, Some(Warning)),
            (Outcome::Refused("x".into()), Safe, PamError::PERM_DENIED, None, Some(Warning)),
            (Outcome::Absent("x".into()), Secure, PamError::AUTHINFO_UNAVAIL, unavailable, Some(Error)),
            (Outcome::Absent("x".into()), Safe, PamError::SUCCESS, None, Some(Alert)),
            (Outcome::NoAnswer("x".into()), Secure, PamError::AUTHINFO_UNAVAIL, unavailable, Some(Error)),
            (Outcome::NoAnswer("x".into()), Safe, PamError::AUTHINFO_UNAVAIL, unavailable, Some(Error)),
            (Outcome::LostAfterQuestion("x".into()), Secure, PamError::AUTHINFO_UNAVAIL, unavailable, Some(Error)),
            (Outcome::LostAfterQuestion("x".into()), Safe, PamError::AUTHINFO_UNAVAIL, unavailable, Some(Error)),
            (Outcome::DaemonFailed("x".into()), Secure, PamError::AUTHINFO_UNAVAIL, unavailable, Some(Error)),
            (Outcome::DaemonFailed("x".into()), Safe, PamError::AUTHINFO_UNAVAIL, unavailable, Some(Error)),
        ];
        // Every outcome appears under both fail modes.
        for outcome in every_outcome() {
            for failmode in [Secure, Safe] {
                let same_kind = |row: &&Row| {
                    std::mem::discriminant(&row.0) == std::mem::discriminant(&outcome)
                        && row.1 == failmode
                };
                assert_eq!(
                    table.iter().filter(same_kind).count(),
                    1,
                    "{outcome:?} {failmode:?}"
                );
            }
        }
        for (outcome, failmode, code, notice, level) in table {
            let verdict = verdict(&outcome, failmode, NotRequired::Ignore, false, "alice");
            let row = format!("{outcome:?} {failmode:?}");
            assert_eq!(verdict.code, code, "{row}");
            assert_eq!(verdict.notice, notice, "{row}");
            assert_eq!(
                verdict.log.as_ref().map(|(level, _)| *level),
                level,
                "{row}"
            );
        }
    }

    /// `notrequired=success` changes "not required" only; nothing else turns into a success.
    #[test]
    fn notrequired_success_changes_only_the_not_required_verdict() {
        for outcome in every_outcome() {
            for failmode in [FailMode::Secure, FailMode::Safe] {
                let ignore = verdict(&outcome, failmode, NotRequired::Ignore, false, "alice");
                let success = verdict(&outcome, failmode, NotRequired::Success, false, "alice");
                if matches!(outcome, Outcome::Skip) {
                    assert_eq!(ignore.code, PamError::IGNORE);
                    assert_eq!(success.code, PamError::SUCCESS);
                } else {
                    assert_eq!(ignore, success, "{outcome:?}");
                }
            }
        }
    }

    #[test]
    fn failmode_safe_allows_only_an_absent_daemon() {
        for outcome in every_outcome() {
            let secure = verdict(
                &outcome,
                FailMode::Secure,
                NotRequired::Ignore,
                false,
                "alice",
            );
            let safe = verdict(
                &outcome,
                FailMode::Safe,
                NotRequired::Ignore,
                false,
                "alice",
            );
            if matches!(outcome, Outcome::Absent(_)) {
                assert_eq!(safe.code, PamError::SUCCESS);
                let (_, line) = safe.log.unwrap();
                assert!(
                    line.contains("ALLOWING alice WITHOUT A SECOND FACTOR"),
                    "{line}"
                );
            } else {
                assert_eq!(safe, secure, "{outcome:?}");
            }
        }
    }

    #[test]
    fn log_lines_name_the_user_and_the_reason() {
        for outcome in every_outcome() {
            let verdict = verdict(
                &outcome,
                FailMode::Secure,
                NotRequired::Ignore,
                true,
                "alice",
            );
            let (_, line) = verdict.log.expect("with debug, every outcome is logged");
            assert!(line.contains("alice"), "{line}");
            if let Outcome::Refused(reason)
            | Outcome::Absent(reason)
            | Outcome::NoAnswer(reason)
            | Outcome::LostAfterQuestion(reason)
            | Outcome::DaemonFailed(reason)
            | Outcome::Deny(reason) = &outcome
            {
                assert!(line.contains(reason.as_str()), "{line}");
            }
        }
    }
}
