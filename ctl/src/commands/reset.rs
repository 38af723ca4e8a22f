//! `mfactl reset USER`: remove an enrollment at once (a lost or replaced phone).

use pam_mfa_api::NextLogin;

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

#[derive(serde::Serialize)]
pub struct Reset {
    pub user: String,
    pub removed: bool,
    /// What the user's next login does, now.
    pub next_login: NextLogin,
}

pub async fn run(bus: Option<&str>, user: &str) -> Result<Reset, Failure> {
    let admin = connect(bus).await?;
    let outcome = admin.reset(user).await?;
    Ok(Reset {
        user: user.to_owned(),
        removed: outcome.removed,
        next_login: outcome.next_login,
    })
}

impl Report for Reset {
    fn text(&self) -> String {
        let user = &self.user;
        let next = self.next_login.describe();
        if self.removed {
            format!(
                "{user}: authenticator app, recovery codes and any unfinished enrollment \
                 removed; the next login {next}"
            )
        } else {
            format!("{user}: was not enrolled; nothing to remove; the next login {next}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn a_reset_says_what_the_next_login_does() {
        let report = Reset {
            user: "alice".into(),
            removed: true,
            next_login: NextLogin::Enroll,
        };
        assert_eq!(
            report.text(),
            "alice: authenticator app, recovery codes and any unfinished enrollment removed; \
             the next login sets up an authenticator app (QR code, then a code)"
        );
        assert_eq!(
            json(&report),
            serde_json::json!({ "user": "alice", "removed": true, "next_login": "enroll" })
        );
    }
}
