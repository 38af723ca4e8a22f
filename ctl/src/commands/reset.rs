//! `mfactl reset USER [--yes]`: remove an enrollment (a lost or replaced phone), once confirmed.

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

pub async fn run(bus: Option<&str>, user: &str, yes: bool) -> Result<Reset, Failure> {
    if !yes {
        confirm(user)?;
    }
    let admin = connect(bus).await?;
    let outcome = admin.reset(user).await?;
    Ok(Reset {
        user: user.to_owned(),
        removed: outcome.removed,
        next_login: outcome.next_login,
    })
}

/// Asks the person at the terminal to confirm; without a terminal (a script), refuses: a reset
/// cannot be undone, so a script says so with --yes.
fn confirm(user: &str) -> Result<(), Failure> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "reset removes the authenticator app and recovery codes of {user} for good: confirm \
             with mfactl reset --yes {user} (there is no terminal to ask on)"
        )));
    }
    let question = format!(
        "Remove the authenticator app and recovery codes of {user}? This cannot be undone. \
         [y/N] "
    );
    let answer = crate::prompt::read_line(&question)?;
    if is_yes(answer.as_deref()) {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "nothing done: {user} keeps their app"
        )))
    }
}

fn is_yes(answer: Option<&str>) -> bool {
    matches!(
        answer.map(str::to_ascii_lowercase).as_deref(),
        Some("y" | "yes")
    )
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
    fn only_yes_confirms() {
        assert!(is_yes(Some("y")));
        assert!(is_yes(Some("YES")));
        for no in [None, Some(""), Some("n"), Some("yess"), Some("no")] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

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
