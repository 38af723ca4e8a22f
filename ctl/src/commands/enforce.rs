//! `mfactl enforce [--all | USER] on|off`: require MFA of everyone or of one user.

use super::status::Status;
use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

/// In JSON, `{"all_users": on}` for `--all`, or the user's [`Status`] after the change.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Enforce {
    /// `--all on|off`.
    All {
        #[serde(rename = "all_users")]
        on: bool,
    },
    /// One user, with their status after the change.
    User {
        #[serde(skip)]
        on: bool,
        #[serde(flatten)]
        status: Box<Status>,
    },
}

pub async fn run(bus: Option<&str>, all: bool, words: &[String]) -> Result<Enforce, Failure> {
    let (user, on) = parse_words(all, words)?;
    let admin = connect(bus).await?;
    match user {
        None => {
            admin.set_global_enforcement(on).await?;
            Ok(Enforce::All { on })
        }
        Some(user) => {
            admin.set_user_enforcement(user, on).await?;
            let status = Box::new(admin.status(user).await?.into());
            Ok(Enforce::User { on, status })
        }
    }
}

/// Reads `on` or `off`.
fn switch(word: &str) -> Result<bool, Failure> {
    match word {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(Failure::usage(format!("expected on or off, not {other:?}"))),
    }
}

/// The target and state of `enforce`: `(None, on)` for --all.
fn parse_words(all: bool, words: &[String]) -> Result<(Option<&str>, bool), Failure> {
    match (all, words) {
        (true, [state]) => Ok((None, switch(state)?)),
        (false, [user, state]) => Ok((Some(user), switch(state)?)),
        (true, _) => Err(Failure::usage("usage: mfactl enforce --all on|off")),
        (false, _) => Err(Failure::usage(
            "usage: mfactl enforce USER on|off (or --all on|off)",
        )),
    }
}

impl Report for Enforce {
    fn text(&self) -> String {
        match self {
            Enforce::All { on: true } => {
                "MFA is now required of every user from their next login".into()
            }
            Enforce::All { on: false } => {
                "MFA is now required only of users enforced one by one".into()
            }
            Enforce::User { on, status } => {
                let user = &status.user;
                match (on, status.enforced) {
                    (true, false) if status.enforced_by.is_exemption() => format!(
                        "{user}: per-user enforcement is on, but an exemption applies first \
                         ({}): no second factor is asked",
                        status.enforced_by
                    ),
                    (true, _) if !status.enrolled => format!(
                        "{user}: MFA is now required; {user} is not enrolled: the next login {}",
                        status.next_login.describe()
                    ),
                    (true, _) => format!("{user}: MFA is now required from the next login"),
                    (false, true) => format!(
                        "{user}: per-user enforcement is off, but MFA stays required because it \
                         is enforced for {}",
                        status.enforced_by
                    ),
                    (false, false) => format!(
                        "{user}: MFA is no longer required of {user} as such (rules for services \
                         and remote hosts may still require it: mfactl explain {user} --service \
                         S)"
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Kind;
    use crate::report::json;

    #[test]
    fn enforce_takes_a_user_or_all() {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_words(true, &words(&["on"])).ok(), Some((None, true)));
        assert_eq!(
            parse_words(false, &words(&["alice", "off"])).ok(),
            Some((Some("alice"), false))
        );
        assert!(parse_words(false, &words(&["on"])).is_err());
        assert!(parse_words(true, &words(&["alice", "on"])).is_err());
        let Err(failure) = parse_words(false, &words(&["alice", "yes"])) else {
            panic!("yes is not a switch");
        };
        assert_eq!(failure.message(), "expected on or off, not \"yes\"");
        assert_eq!(failure.kind(), &Kind::Usage);
    }

    #[test]
    fn everyone_is_a_switch_and_one_user_a_status() {
        assert_eq!(
            json(&Enforce::All { on: true }),
            serde_json::json!({ "all_users": true })
        );
        assert_eq!(
            Enforce::All { on: false }.text(),
            "MFA is now required only of users enforced one by one"
        );
        let report = Enforce::User {
            on: true,
            status: Box::new(crate::commands::status::tests::alice()),
        };
        assert_eq!(
            report.text(),
            "alice: MFA is now required from the next login"
        );
        assert_eq!(json(&report), crate::commands::status::tests::alice_json());
    }
}
