//! `mfactl reset USER`: remove an enrollment at once (a lost or replaced phone).

use pam_mfa_api::UserStatus;

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

pub struct Reset {
    pub user: String,
    pub removed: bool,
    /// The user as the reset left them.
    pub status: UserStatus,
}

pub async fn run(bus: Option<&str>, user: &str) -> Result<Reset, Failure> {
    let admin = connect(bus).await?;
    let removed = admin.reset(user).await?;
    let status = admin.status(user).await?;
    Ok(Reset {
        user: user.to_owned(),
        removed,
        status,
    })
}

impl Report for Reset {
    fn text(&self) -> String {
        let user = &self.user;
        let next = self.status.next_login.describe();
        if self.removed {
            format!(
                "{user}: authenticator app, recovery codes and any unfinished enrollment \
                 removed; the next login {next}"
            )
        } else {
            format!("{user}: was not enrolled; nothing to remove; the next login {next}")
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "user": self.user,
            "removed": self.removed,
            "next_login": self.status.next_login,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_says_what_the_next_login_does() {
        let report = Reset {
            user: "alice".into(),
            removed: true,
            status: UserStatus {
                enrolled: false,
                next_login: pam_mfa_api::NextLogin::Enroll,
                ..crate::commands::status::tests::alice()
            },
        };
        assert_eq!(
            report.text(),
            "alice: authenticator app, recovery codes and any unfinished enrollment removed; \
             the next login sets up an authenticator app (QR code, then a code)"
        );
        assert_eq!(
            report.json(),
            serde_json::json!({ "user": "alice", "removed": true, "next_login": "enroll" })
        );
    }
}
