//! `mfactl status [USER]`: one user's enrollment and enforcement; without USER, the caller's.

use pam_mfa_api::UserStatus;

use crate::connect::{connect, connect_user};
use crate::failure::Failure;
use crate::report::{Report, time_or_null, when, yes_no};

pub struct Status(pub UserStatus);

pub async fn run(bus: Option<&str>, user: Option<&str>) -> Result<Status, Failure> {
    Ok(Status(match user {
        Some(user) => connect(bus).await?.status(user).await?,
        None => connect_user(bus).await?.status().await?,
    }))
}

/// One user as JSON, shared with `users` and `enforce`.
pub fn json(status: &UserStatus) -> serde_json::Value {
    serde_json::json!({
        "user": status.user,
        "enrolled": status.enrolled,
        "enforced": status.enforced,
        "enforced_by": status.enforced_by,
        "algorithm": if status.enrolled { Some(&status.algorithm) } else { None },
        "digits": if status.enrolled { Some(status.digits) } else { None },
        "period": if status.enrolled { Some(status.period) } else { None },
        "enrolled_at": time_or_null(status.enrolled_at),
        "last_used": time_or_null(status.last_used),
        "pending": status.pending,
        "recovery_codes_left": if status.enrolled { Some(status.recovery_codes_left) } else { None },
        "locked_until": time_or_null(status.locked_until),
        "next_login": status.next_login,
    })
}

impl Report for Status {
    fn text(&self) -> String {
        let status = &self.0;
        let mut lines = vec![
            format!("user:      {}", status.user),
            format!("enrolled:  {}", yes_no(status.enrolled)),
        ];
        if status.enrolled {
            lines.push(format!(
                "           {} digits, {} s, {}, since {}",
                status.digits,
                status.period,
                status.algorithm,
                when(status.enrolled_at)
            ));
        }
        let enforced_by = if status.enforced {
            format!(" (enforced for {})", status.enforced_by)
        } else {
            String::new()
        };
        lines.push(format!(
            "enforced:  {}{enforced_by}",
            yes_no(status.enforced)
        ));
        lines.push(format!("last used: {}", when(status.last_used)));
        if status.enrolled {
            lines.push(format!(
                "recovery codes left: {}",
                status.recovery_codes_left
            ));
        }
        if status.locked_until > 0 {
            lines.push(format!(
                "locked:    until {} (too many wrong codes; mfactl unlock {})",
                when(status.locked_until),
                status.user
            ));
        }
        if status.pending {
            lines.push(
                "pending:   a new enrollment waits for its first code (mfactl enroll)".to_owned(),
            );
        }
        lines.push(format!("next login: {}", status.next_login.describe()));
        lines.join("\n")
    }

    fn json(&self) -> serde_json::Value {
        json(&self.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pam_mfa_api::{EnforcedBy, NextLogin};

    pub fn alice() -> UserStatus {
        UserStatus {
            user: "alice".into(),
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
        }
    }

    /// `alice()` as `--json` shows her.
    pub fn alice_json() -> serde_json::Value {
        serde_json::json!({
            "user": "alice",
            "enrolled": true,
            "enforced": true,
            "enforced_by": "all users",
            "algorithm": "SHA1",
            "digits": 6,
            "period": 30,
            "enrolled_at": 1_234_567_890,
            "last_used": null,
            "pending": false,
            "recovery_codes_left": 10,
            "locked_until": null,
            "next_login": "code",
        })
    }

    #[test]
    fn status_reads_as_text_and_as_json() {
        let report = Status(alice());
        assert_eq!(
            report.text(),
            "user:      alice\nenrolled:  yes\n           6 digits, 30 s, SHA1, since \
             2009-02-13 23:31 UTC\nenforced:  yes (enforced for all users)\nlast used: never\n\
             recovery codes left: 10\nnext login: asks for a code from the authenticator app"
        );
        assert_eq!(report.json()["next_login"], "code");
        let json = report.json();
        assert_eq!(json["enforced_by"], "all users");
        assert_eq!(json["last_used"], serde_json::Value::Null);
        assert_eq!(json["digits"], 6);
        assert_eq!(json, alice_json());
    }

    #[test]
    fn a_user_without_enrollment_has_no_parameters() {
        let status = UserStatus {
            enrolled: false,
            enrolled_at: 0,
            ..alice()
        };
        let json = json(&status);
        assert_eq!(json["algorithm"], serde_json::Value::Null);
        assert!(!Status(status).text().contains("digits"));
    }

    #[test]
    fn a_locked_user_without_an_app_is_all_nulls_but_the_lock() {
        let status = UserStatus {
            user: "bob".into(),
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
        };
        let report = Status(status);
        assert_eq!(
            report.json(),
            serde_json::json!({
                "user": "bob",
                "enrolled": false,
                "enforced": true,
                "enforced_by": "group wheel",
                "algorithm": null,
                "digits": null,
                "period": null,
                "enrolled_at": null,
                "last_used": 1_234_567_890,
                "pending": true,
                "recovery_codes_left": null,
                "locked_until": 1_234_567_950,
                "next_login": "locked",
            })
        );
        assert_eq!(
            report.text(),
            "user:      bob\nenrolled:  no\nenforced:  yes (enforced for group wheel)\n\
             last used: 2009-02-13 23:31 UTC\nlocked:    until 2009-02-13 23:32 UTC (too many \
             wrong codes; mfactl unlock bob)\npending:   a new enrollment waits for its first \
             code (mfactl enroll)\nnext login: is refused until the lock ends (too many wrong \
             codes; mfactl unlock)"
        );
    }
}
