//! `mfactl status [USER]`: one user's enrollment and enforcement; without USER, the caller's.

use pam_mfa_api::{EnforcedBy, NextLogin, UserStatus};

use crate::connect::{connect, connect_user};
use crate::failure::Failure;
use crate::report::{Report, Time, yes_no};

/// One user, as `status`, `users` and `enforce USER` report them. The app's parameters are
/// `None` (null in JSON) when the user has none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub user: String,
    pub enrolled: bool,
    pub enforced: bool,
    pub enforced_by: EnforcedBy,
    /// `totp` (an authenticator app) or `hotp` (a counter-based token).
    pub token: Option<String>,
    /// A counter-based token's counter: the value of the last code used.
    pub counter: Option<u64>,
    pub algorithm: Option<String>,
    pub digits: Option<u32>,
    pub period: Option<u32>,
    pub enrolled_at: Time,
    pub last_used: Time,
    pub pending: bool,
    pub recovery_codes_left: Option<u32>,
    pub locked_until: Time,
    pub next_login: NextLogin,
    /// Verified contacts, masked.
    pub contacts: Vec<String>,
}

impl From<UserStatus> for Status {
    fn from(status: UserStatus) -> Self {
        let enrolled = status.enrolled;
        Status {
            user: status.user,
            enrolled,
            enforced: status.enforced,
            enforced_by: status.enforced_by,
            token: enrolled.then_some(status.token),
            counter: u64::try_from(status.counter).ok(),
            algorithm: enrolled.then_some(status.algorithm),
            digits: enrolled.then_some(status.digits),
            period: enrolled.then_some(status.period),
            enrolled_at: Time(status.enrolled_at),
            last_used: Time(status.last_used),
            pending: status.pending,
            recovery_codes_left: enrolled.then_some(status.recovery_codes_left),
            locked_until: Time(status.locked_until),
            next_login: status.next_login,
            contacts: status.contacts,
        }
    }
}

pub async fn run(bus: Option<&str>, user: Option<&str>) -> Result<Status, Failure> {
    let status = match user {
        Some(user) => connect(bus).await?.status(user).await?,
        None => connect_user(bus).await?.status().await?,
    };
    Ok(status.into())
}

impl Report for Status {
    fn text(&self) -> String {
        let mut lines = vec![
            format!("user:      {}", self.user),
            format!("enrolled:  {}", yes_no(self.enrolled)),
        ];
        if let (Some(algorithm), Some(digits), Some(period)) =
            (&self.algorithm, self.digits, self.period)
        {
            let moves = match (self.token.as_deref(), self.counter) {
                (Some("hotp"), Some(counter)) => {
                    format!("counter-based token, last code used: #{counter}")
                }
                (Some("hotp"), None) => "counter-based token, no code used yet".to_owned(),
                _ => format!("{period} s"),
            };
            lines.push(format!(
                "           {digits} digits, {moves}, {algorithm}, since {}",
                self.enrolled_at
            ));
        }
        let enforced_by = if self.enforced {
            format!(" (enforced for {})", self.enforced_by)
        } else {
            String::new()
        };
        lines.push(format!("enforced:  {}{enforced_by}", yes_no(self.enforced)));
        lines.push(format!("last used: {}", self.last_used));
        if let Some(left) = self.recovery_codes_left {
            lines.push(format!("recovery codes left: {left}"));
        }
        if !self.locked_until.is_never() {
            lines.push(format!(
                "locked:    until {} (too many wrong codes; mfactl unlock {})",
                self.locked_until, self.user
            ));
        }
        if self.pending {
            // A first enrollment cut off at a login resumes at the next one; a new phone is
            // set up with mfactl enroll while the old one keeps working.
            let finish = if self.enrolled {
                "mfactl enroll finishes it; the app in use works until then"
            } else {
                "the next login shows it again, or mfactl enroll finishes it"
            };
            lines.push(format!(
                "pending:   a new enrollment waits for its first code ({finish})"
            ));
        }
        if !self.contacts.is_empty() {
            lines.push(format!("contacts:  {}", self.contacts.join(", ")));
        }
        lines.push(format!("next login: {}", self.next_login.describe()));
        lines.join("\n")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::json;

    /// Enrolled, enforced for everyone, never used.
    pub fn alice() -> Status {
        Status::from(UserStatus {
            user: "alice".into(),
            token: "totp".into(),
            counter: -1,
            enrolled: true,
            enforced: true,
            enforced_by: EnforcedBy::AllUsers,
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            enrolled_at: 1_234_567_890,
            last_used: 0,
            pending: false,
            recovery_codes_left: 10,
            locked_until: 0,
            next_login: NextLogin::Code,
            contacts: vec!["a***@example.org".into()],
        })
    }

    /// `alice()` as `--json` shows her.
    pub fn alice_json() -> serde_json::Value {
        serde_json::json!({
            "user": "alice",
            "enrolled": true,
            "enforced": true,
            "enforced_by": "all users",
            "token": "totp",
            "counter": null,
            "algorithm": "SHA1",
            "digits": 6,
            "period": 30,
            "enrolled_at": 1_234_567_890,
            "last_used": null,
            "pending": false,
            "recovery_codes_left": 10,
            "locked_until": null,
            "next_login": "code",
            "contacts": ["a***@example.org"],
        })
    }

    #[test]
    fn status_reads_as_text_and_as_json() {
        let report = alice();
        assert_eq!(
            report.text(),
            "user:      alice\nenrolled:  yes\n           6 digits, 30 s, SHA1, since \
             2009-02-13 23:31 UTC\nenforced:  yes (enforced for all users)\nlast used: never\n\
             recovery codes left: 10\ncontacts:  a***@example.org\nnext login: asks for a code \
             from the authenticator app"
        );
        assert_eq!(json(&report)["next_login"], "code");
        let json = json(&report);
        assert_eq!(json["enforced_by"], "all users");
        assert_eq!(json["last_used"], serde_json::Value::Null);
        assert_eq!(json["digits"], 6);
        assert_eq!(json, alice_json());
    }

    #[test]
    fn a_user_without_enrollment_has_no_parameters() {
        let status = Status::from(UserStatus {
            user: "alice".into(),
            token: "totp".into(),
            counter: -1,
            enrolled: false,
            enforced: true,
            enforced_by: EnforcedBy::AllUsers,
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            enrolled_at: 0,
            last_used: 0,
            pending: false,
            recovery_codes_left: 10,
            locked_until: 0,
            next_login: NextLogin::Enroll,
            contacts: Vec::new(),
        });
        assert_eq!(json(&status)["algorithm"], serde_json::Value::Null);
        assert_eq!(
            json(&status)["recovery_codes_left"],
            serde_json::Value::Null
        );
        assert!(!status.text().contains("digits"));
    }

    #[test]
    fn a_locked_user_without_an_app_is_all_nulls_but_the_lock() {
        let status = UserStatus {
            user: "bob".into(),
            token: "totp".into(),
            counter: -1,
            enrolled: false,
            enforced: true,
            enforced_by: EnforcedBy::Group("wheel".into()),
            algorithm: String::new(),
            digits: 0,
            period: 0,
            enrolled_at: 0,
            last_used: 1_234_567_890,
            pending: true,
            recovery_codes_left: 0,
            locked_until: 1_234_567_950,
            next_login: NextLogin::Locked,
            contacts: Vec::new(),
        };
        let report = Status::from(status);
        assert_eq!(
            json(&report),
            serde_json::json!({
                "user": "bob",
                "enrolled": false,
                "enforced": true,
                "enforced_by": "group wheel",
                "token": null,
                "counter": null,
                "algorithm": null,
                "digits": null,
                "period": null,
                "enrolled_at": null,
                "last_used": 1_234_567_890,
                "pending": true,
                "recovery_codes_left": null,
                "locked_until": 1_234_567_950,
                "next_login": "locked",
                "contacts": [],
            })
        );
        assert_eq!(
            report.text(),
            "user:      bob\nenrolled:  no\nenforced:  yes (enforced for group wheel)\n\
             last used: 2009-02-13 23:31 UTC\nlocked:    until 2009-02-13 23:32 UTC (too many \
             wrong codes; mfactl unlock bob)\npending:   a new enrollment waits for its first \
             code (the next login shows it again, or mfactl enroll finishes it)\nnext login: is \
             refused until the lock ends (too many wrong codes; mfactl unlock)"
        );
    }
}
