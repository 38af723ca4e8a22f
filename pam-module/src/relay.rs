//! The relay: asks the daemon what to do, shows its notices and questions through the PAM
//! conversation, and turns its verdict into a PAM result. No policy lives here.

use std::collections::HashMap;

use pam_mfa_api::{Action, Error, Notice, Turn, WireTurn};
use zeroize::Zeroizing;

/// The application's side of the login: the PAM conversation.
pub trait Conversation {
    fn show(&mut self, notice: &Notice) -> Result<(), ConversationFailed>;
    fn ask(&mut self, prompt: &str, echo: bool) -> Result<Zeroizing<String>, ConversationFailed>;
}

/// The conversation function failed or the user gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationFailed;

/// The daemon's side of the login.
#[allow(async_fn_in_trait)]
pub trait Daemon {
    async fn begin(
        &mut self,
        user: &str,
        context: &HashMap<&str, &str>,
    ) -> Result<(String, WireTurn), Error>;
    async fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Error>;
}

/// How a login ended, before the fail mode turns it into a PAM code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny(String),
    MaxTries,
    Skip,
    /// The daemon refused the caller (a non-root process asking for another user).
    PermissionDenied(String),
    /// The daemon or bus could not be reached, or did not answer in time, before it asked
    /// anything: the fail mode decides.
    Unreachable(String),
    /// The daemon was lost after it had asked for a code: MFA is required for this login, so
    /// this denies whatever the fail mode.
    LostAfterQuestion(String),
    ConversationFailed,
}

/// Runs the dialogue for `user` to its end.
pub async fn run<D: Daemon, C: Conversation>(
    daemon: &mut D,
    conversation: &mut C,
    user: &str,
    context: &HashMap<&str, &str>,
    silent: bool,
) -> Outcome {
    let (session, mut wire) = match daemon.begin(user, context).await {
        Ok(started) => started,
        Err(error) => return failure(error),
    };
    loop {
        let turn = match Turn::try_from(wire) {
            Ok(turn) => turn,
            Err(unknown) => return Outcome::Deny(format!("daemon sent an {unknown}")),
        };
        for notice in &turn.notices {
            // PAM_SILENT: the application asked for no messages at all.
            let shown = if silent {
                Ok(())
            } else {
                conversation.show(notice)
            };
            if shown.is_err() {
                return Outcome::ConversationFailed;
            }
        }
        let reply = match &turn.action {
            Action::AskHidden(prompt) => conversation.ask(prompt, false),
            Action::AskVisible(prompt) => conversation.ask(prompt, true),
            Action::Allow => return Outcome::Allow,
            Action::Deny(reason) => return Outcome::Deny(reason.clone()),
            Action::MaxTries => return Outcome::MaxTries,
            Action::Skip => return Outcome::Skip,
        };
        let Ok(reply) = reply else {
            return Outcome::ConversationFailed;
        };
        wire = match daemon.answer(&session, &reply).await {
            Ok(wire) => wire,
            Err(error) if error.is_unreachable() => {
                return Outcome::LostAfterQuestion(error.to_string());
            }
            Err(error) => return failure(error),
        };
    }
}

fn failure(error: Error) -> Outcome {
    if error.is_unreachable() {
        return Outcome::Unreachable(error.to_string());
    }
    match error {
        Error::PermissionDenied(reason) => Outcome::PermissionDenied(reason),
        other => Outcome::Deny(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A conversation that expects an exact script of notices and prompts, and checks on drop
    /// that every expected exchange happened.
    #[derive(Default)]
    struct Script {
        expected: VecDeque<(String, Option<&'static str>)>,
    }

    impl Script {
        fn shows(mut self, text: &str) -> Self {
            self.expected.push_back((format!("show {text}"), None));
            self
        }
        fn asks(mut self, prompt: &str, reply: &'static str) -> Self {
            self.expected
                .push_back((format!("ask {prompt}"), Some(reply)));
            self
        }
    }

    impl Conversation for Script {
        fn show(&mut self, notice: &Notice) -> Result<(), ConversationFailed> {
            let text = match notice {
                Notice::Info(text) | Notice::Error(text) => text,
            };
            let (expected, _) = self.expected.pop_front().expect("unexpected notice");
            assert_eq!(expected, format!("show {text}"));
            Ok(())
        }
        fn ask(
            &mut self,
            prompt: &str,
            _echo: bool,
        ) -> Result<Zeroizing<String>, ConversationFailed> {
            let Some((expected, reply)) = self.expected.pop_front() else {
                return Err(ConversationFailed);
            };
            assert_eq!(expected, format!("ask {prompt}"));
            Ok(Zeroizing::new(reply.unwrap().to_owned()))
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                assert!(
                    self.expected.is_empty(),
                    "not shown or asked: {:?}",
                    self.expected
                );
            }
        }
    }

    /// A daemon that answers from a list of turns and records the replies it got.
    struct Scripted {
        turns: VecDeque<Result<WireTurn, Error>>,
        replies: Vec<String>,
    }

    impl Daemon for Scripted {
        async fn begin(
            &mut self,
            _user: &str,
            _context: &HashMap<&str, &str>,
        ) -> Result<(String, WireTurn), Error> {
            self.turns
                .pop_front()
                .unwrap()
                .map(|turn| ("s1".to_owned(), turn))
        }
        async fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Error> {
            assert_eq!(session, "s1");
            self.replies.push(reply.to_owned());
            self.turns.pop_front().unwrap()
        }
    }

    fn daemon(turns: Vec<Result<Turn, Error>>) -> Scripted {
        Scripted {
            turns: turns.into_iter().map(|t| t.map(WireTurn::from)).collect(),
            replies: Vec::new(),
        }
    }

    fn drive(daemon: &mut Scripted, script: Script) -> Outcome {
        let mut script = script;
        zbus::block_on(run(daemon, &mut script, "alice", &HashMap::new(), false))
    }

    #[test]
    fn a_right_code_after_a_wrong_one_is_allowed() {
        let mut daemon = daemon(vec![
            Ok(Turn::new(Action::AskHidden("Code: ".into()))),
            Ok(Turn::new(Action::AskHidden("Code: ".into()))
                .with_notice(Notice::Error("Wrong code.".into()))),
            Ok(Turn::new(Action::Allow)),
        ]);
        let script = Script::default()
            .asks("Code: ", "111111")
            .shows("Wrong code.")
            .asks("Code: ", "222222");
        assert_eq!(drive(&mut daemon, script), Outcome::Allow);
        assert_eq!(daemon.replies, ["111111", "222222"]);
    }

    #[test]
    fn verdicts_are_relayed() {
        for (action, outcome) in [
            (Action::Skip, Outcome::Skip),
            (Action::MaxTries, Outcome::MaxTries),
            (Action::Deny("no".into()), Outcome::Deny("no".into())),
        ] {
            let mut daemon = daemon(vec![Ok(Turn::new(action))]);
            assert_eq!(drive(&mut daemon, Script::default()), outcome);
        }
    }

    #[test]
    fn an_unknown_step_is_a_denial() {
        let mut daemon = Scripted {
            turns: VecDeque::from([Ok(WireTurn {
                notices: vec![],
                action: "allow-all".into(),
                text: String::new(),
            })]),
            replies: vec![],
        };
        let outcome = drive(&mut daemon, Script::default());
        assert!(matches!(outcome, Outcome::Deny(reason) if reason.contains("allow-all")));
    }

    #[test]
    fn a_failed_conversation_ends_the_login() {
        let mut daemon = daemon(vec![Ok(Turn::new(Action::AskHidden("Code: ".into())))]);
        assert_eq!(
            drive(&mut daemon, Script::default()),
            Outcome::ConversationFailed
        );
    }

    #[test]
    fn daemon_errors_map_to_outcomes() {
        let mut denied = daemon(vec![Err(Error::PermissionDenied("not yours".into()))]);
        assert_eq!(
            drive(&mut denied, Script::default()),
            Outcome::PermissionDenied("not yours".into())
        );
        let gone = zbus::Error::FDO(Box::new(zbus::fdo::Error::ServiceUnknown("gone".into())));
        let mut unreachable = daemon(vec![Err(Error::ZBus(gone))]);
        assert!(matches!(
            drive(&mut unreachable, Script::default()),
            Outcome::Unreachable(_)
        ));
        let lost = zbus::Error::FDO(Box::new(zbus::fdo::Error::NoReply("gone".into())));
        let mut lost_after_question = daemon(vec![
            Ok(Turn::new(Action::AskHidden("Code: ".into()))),
            Err(Error::ZBus(lost)),
        ]);
        let outcome = drive(
            &mut lost_after_question,
            Script::default().asks("Code: ", "1"),
        );
        assert!(
            matches!(outcome, Outcome::LostAfterQuestion(_)),
            "{outcome:?}"
        );
        let mut expired = daemon(vec![
            Ok(Turn::new(Action::AskHidden("Code: ".into()))),
            Err(Error::NoSuchSession("expired".into())),
        ]);
        let outcome = drive(&mut expired, Script::default().asks("Code: ", "1"));
        assert_eq!(outcome, Outcome::Deny("expired".into()));
    }
}
