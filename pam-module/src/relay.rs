//! The relay: asks the daemon what to do, shows its notices and questions through the PAM
//! conversation, and turns its verdict into a PAM result. No policy lives here.
#![forbid(unsafe_code)]

use pam_mfa_login::contract::Begun;
use pam_mfa_login::limits::MAX_REPLY_LEN;
use pam_mfa_login::{Action, Notice, Turn, WireTurn, split_joined};
use zeroize::Zeroizing;

use crate::failure::Failure;

/// The application's side of the login: the PAM conversation.
pub trait Conversation {
    fn show(&mut self, notice: &Notice) -> Result<(), ConversationFailed>;
    fn ask(&mut self, prompt: &str, echo: bool) -> Result<Zeroizing<String>, ConversationFailed>;
}

/// The conversation function failed or the user gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationFailed;

/// The daemon's side of the login. Failures come classified (see [`Failure`]).
pub trait Daemon {
    fn begin(&mut self, user: &str, context: &[(&str, &str)]) -> Result<Begun, Failure>;
    fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Failure>;
    /// Ends `session` at once; best effort, bounded like every call.
    fn cancel(&mut self, session: &str);
}

/// How a login ended, before the fail mode turns it into a PAM code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny(String),
    MaxTries,
    Skip,
    /// The daemon is definitely not there (no socket, connection refused, nobody owns the name),
    /// and nothing had been asked: the fail mode decides.
    Absent(String),
    /// The daemon or the bus did not answer before anything was asked. A time-out is not absence
    /// (any local user can cause one), so this denies whatever the fail mode.
    NoAnswer(String),
    /// The bus or the daemon refused us, or we refused to talk to an owner of the name that is
    /// not root: denies whatever the fail mode.
    Refused(String),
    /// The daemon was lost after it had asked for a code: MFA is required for this login, so
    /// this denies whatever the fail mode.
    LostAfterQuestion(String),
    /// The daemon answered that it could not do its work (storage failure).
    DaemonFailed(String),
    ConversationFailed,
}

/// Runs the dialogue for `user` to its end. The password of a joined answer
/// ([`Action::AskJoined`]) is left in `password`, to be handed on if the login is allowed.
pub fn run<D: Daemon, C: Conversation>(
    daemon: &mut D,
    conversation: &mut C,
    (user, context): (&str, &[(&str, &str)]),
    silent: bool,
    password: &mut Option<Zeroizing<String>>,
) -> Outcome {
    let (session, mut wire) = match daemon.begin(user, context) {
        Ok(Begun { session, turn }) => (session, turn),
        Err(failure) => return before_question(failure),
    };
    loop {
        let turn = match Turn::try_from(wire) {
            Ok(turn) => turn,
            Err(unknown) => {
                let outcome = Outcome::Deny(format!("daemon sent an {unknown}"));
                return abandon(daemon, &session, outcome);
            }
        };
        for notice in &turn.notices {
            // PAM_SILENT (sudo passes it by default) drops only information that comes with a
            // verdict. Text before a question belongs to it (a QR code before the code prompt,
            // recovery codes before "press Enter once saved"): the user cannot answer without
            // it. An error that comes with a verdict says why the login failed (a lock, the
            // last wrong code): without it, sudo's "Sorry, try again." reads as a wrong password.
            let informs = matches!(notice, Notice::Info(_));
            let shown = if silent && turn.action.is_verdict() && informs {
                Ok(())
            } else {
                conversation.show(notice)
            };
            if shown.is_err() {
                if turn.action.is_verdict() {
                    // The login has ended at mfad already (which closes the connection then):
                    // there is nothing left to cancel.
                    return Outcome::ConversationFailed;
                }
                return abandon(daemon, &session, Outcome::ConversationFailed);
            }
        }
        let reply = match &turn.action {
            Action::AskHidden(prompt) => conversation.ask(prompt, false),
            Action::AskVisible(prompt) => conversation.ask(prompt, true),
            Action::AskJoined { prompt, digits } => {
                conversation.ask(prompt, false).map(|answer| {
                    // Only the code goes to mfad; without one, an empty reply (a wrong try).
                    let (typed, code) = split_joined(&answer, *digits).unwrap_or(("", ""));
                    let mut kept = Zeroizing::new(String::with_capacity(typed.len()));
                    kept.push_str(typed);
                    *password = Some(kept);
                    let mut sent = Zeroizing::new(String::with_capacity(code.len()));
                    sent.push_str(code);
                    sent
                })
            }
            Action::Allow => return Outcome::Allow,
            Action::Deny(reason) => return Outcome::Deny(reason.clone()),
            Action::MaxTries => return Outcome::MaxTries,
            Action::Skip => return Outcome::Skip,
        };
        let Ok(reply) = reply else {
            return abandon(daemon, &session, Outcome::ConversationFailed);
        };
        // No code is this long: send an empty reply, which the daemon counts as a wrong try,
        // rather than put an arbitrary amount of the application's data on the bus.
        let sent: &str = if reply.len() > MAX_REPLY_LEN {
            ""
        } else {
            &reply
        };
        wire = match daemon.answer(&session, sent) {
            Ok(wire) => wire,
            Err(failure) => return after_question(failure),
        };
    }
}

/// Ends an unfinished login: the daemon drops the session now instead of keeping it (and the
/// user's session slot) until it expires.
fn abandon<D: Daemon>(daemon: &mut D, session: &str, outcome: Outcome) -> Outcome {
    if !session.is_empty() {
        daemon.cancel(session);
    }
    outcome
}

pub fn before_question(failure: Failure) -> Outcome {
    match failure {
        Failure::Absent(reason) => Outcome::Absent(reason),
        Failure::NoAnswer(reason) => Outcome::NoAnswer(reason),
        failure => answered(failure),
    }
}

fn after_question(failure: Failure) -> Outcome {
    match failure {
        Failure::Absent(reason) | Failure::NoAnswer(reason) => Outcome::LostAfterQuestion(reason),
        failure => answered(failure),
    }
}

fn answered(failure: Failure) -> Outcome {
    match failure {
        Failure::Refused(reason) => Outcome::Refused(reason),
        Failure::Daemon(error) if error.is_internal() => Outcome::DaemonFailed(error.text),
        other => Outcome::Deny(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A conversation that expects an exact script of notices and prompts, and checks on drop
    /// that every expected exchange happened.
    fn daemon_error(name: &str, text: &str) -> crate::failure::DaemonError {
        crate::failure::DaemonError {
            name: format!("org.pam_mfa.Mfad1.Error.{name}"),
            text: text.into(),
        }
    }

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

    /// A daemon that answers from a list of turns and records the replies and cancels it got.
    struct Scripted {
        session: &'static str,
        turns: VecDeque<Result<WireTurn, Failure>>,
        replies: Vec<String>,
        cancelled: Vec<String>,
    }

    impl Daemon for Scripted {
        fn begin(&mut self, _user: &str, _context: &[(&str, &str)]) -> Result<Begun, Failure> {
            let session = self.session.to_owned();
            self.turns
                .pop_front()
                .unwrap()
                .map(|turn| Begun { session, turn })
        }
        fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Failure> {
            assert_eq!(session, self.session);
            self.replies.push(reply.to_owned());
            self.turns.pop_front().unwrap()
        }
        fn cancel(&mut self, session: &str) {
            self.cancelled.push(session.to_owned());
        }
    }

    fn daemon(turns: Vec<Result<Turn, Failure>>) -> Scripted {
        Scripted {
            session: "s1",
            turns: turns.into_iter().map(|t| t.map(WireTurn::from)).collect(),
            replies: Vec::new(),
            cancelled: Vec::new(),
        }
    }

    #[test]
    fn under_pam_silent_text_before_a_question_is_still_shown() {
        let mut daemon = daemon(vec![
            ask().map(|turn| turn.with_notice(Notice::Info("QR".into()))),
            Ok(Turn::new(Action::Allow).with_notice(Notice::Info("welcome".into()))),
        ]);
        let mut script = Script::default().shows("QR").asks("Code: ", "123456");
        let outcome = run(&mut daemon, &mut script, ("alice", &[]), true, &mut None);
        assert!(matches!(outcome, Outcome::Allow));
        // "welcome" came with the verdict: not shown (the script fails on any unexpected text).
    }

    #[test]
    fn under_pam_silent_the_reason_for_a_denial_is_still_shown() {
        let mut daemon = daemon(vec![Ok(Turn::new(Action::Deny("locked".into()))
            .with_notice(Notice::Error("locked until 10:00 UTC".into())))]);
        let mut script = Script::default().shows("locked until 10:00 UTC");
        let outcome = run(&mut daemon, &mut script, ("alice", &[]), true, &mut None);
        assert!(matches!(outcome, Outcome::Deny(_)));
    }

    fn drive(daemon: &mut Scripted, script: Script) -> Outcome {
        let mut script = script;
        run(daemon, &mut script, ("alice", &[]), false, &mut None)
    }

    #[test]
    fn a_joined_answer_sends_only_its_code_and_keeps_the_password() {
        let joined = |digits| {
            Ok(Turn::new(Action::AskJoined {
                prompt: "Password and verification code: ".into(),
                digits,
            }))
        };
        let mut allowing = daemon(vec![joined(6), Ok(Turn::new(Action::Allow))]);
        let mut script =
            Script::default().asks("Password and verification code: ", "hunter2 123456");
        let mut password = None;
        let outcome = run(
            &mut allowing,
            &mut script,
            ("alice", &[]),
            false,
            &mut password,
        );
        assert!(matches!(outcome, Outcome::Allow));
        assert_eq!(allowing.replies, ["123456"]);
        assert_eq!(password.as_deref().map(String::as_str), Some("hunter2 "));
        // No code at the end: an empty reply, which mfad counts as a wrong try.
        let mut denying = daemon(vec![joined(8), Ok(Turn::new(Action::MaxTries))]);
        let mut script = Script::default().asks("Password and verification code: ", "hunter2");
        let outcome = run(&mut denying, &mut script, ("alice", &[]), false, &mut None);
        assert!(matches!(outcome, Outcome::MaxTries));
        assert_eq!(denying.replies, [""]);
    }

    fn ask() -> Result<Turn, Failure> {
        Ok(Turn::new(Action::AskHidden("Code: ".into())))
    }

    #[test]
    fn a_right_code_after_a_wrong_one_is_allowed() {
        let mut daemon = daemon(vec![
            ask(),
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
        assert!(daemon.cancelled.is_empty());
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
            assert!(daemon.cancelled.is_empty());
        }
    }

    #[test]
    fn an_unknown_step_is_a_denial_and_ends_the_session() {
        let mut daemon = Scripted {
            turns: VecDeque::from([Ok(WireTurn {
                notices: vec![],
                action: "allow-all".into(),
                text: String::new(),
            })]),
            ..daemon(vec![])
        };
        let outcome = drive(&mut daemon, Script::default());
        assert!(matches!(outcome, Outcome::Deny(reason) if reason.contains("allow-all")));
        assert_eq!(daemon.cancelled, ["s1"]);
    }

    #[test]
    fn a_failed_conversation_ends_the_login_and_cancels_the_session() {
        let mut daemon = daemon(vec![ask()]);
        assert_eq!(
            drive(&mut daemon, Script::default()),
            Outcome::ConversationFailed
        );
        assert!(daemon.replies.is_empty());
        assert_eq!(daemon.cancelled, ["s1"]);
    }

    #[test]
    fn a_conversation_failing_on_a_notice_cancels_an_unfinished_session() {
        struct Broken;
        impl Conversation for Broken {
            fn show(&mut self, _: &Notice) -> Result<(), ConversationFailed> {
                Err(ConversationFailed)
            }
            fn ask(&mut self, _: &str, _: bool) -> Result<Zeroizing<String>, ConversationFailed> {
                panic!("asked after a failed notice")
            }
        }
        let mut daemon = daemon(vec![
            ask().map(|turn| turn.with_notice(Notice::Info("QR".into()))),
        ]);
        let outcome = run(&mut daemon, &mut Broken, ("alice", &[]), false, &mut None);
        assert_eq!(outcome, Outcome::ConversationFailed);
        assert_eq!(daemon.cancelled, ["s1"]);
        // A verdict's notice: the login has ended at mfad, nothing is cancelled.
        let mut daemon =
            self::daemon(vec![Ok(Turn::new(Action::Deny("locked".into()))
                .with_notice(Notice::Error("Locked.".into())))]);
        let outcome = run(&mut daemon, &mut Broken, ("alice", &[]), false, &mut None);
        assert_eq!(outcome, Outcome::ConversationFailed);
        assert!(daemon.cancelled.is_empty(), "{:?}", daemon.cancelled);
    }

    #[test]
    fn without_a_session_there_is_nothing_to_cancel() {
        let mut daemon = Scripted {
            session: "",
            ..daemon(vec![ask()])
        };
        assert_eq!(
            drive(&mut daemon, Script::default()),
            Outcome::ConversationFailed
        );
        assert!(daemon.cancelled.is_empty());
    }

    #[test]
    fn an_overlong_reply_is_sent_empty() {
        let longest = "7".repeat(MAX_REPLY_LEN);
        let longer: &'static str = "7".repeat(MAX_REPLY_LEN + 1).leak();
        let mut daemon = daemon(vec![ask(), ask(), Ok(Turn::new(Action::MaxTries))]);
        let script = Script::default()
            .asks("Code: ", longest.clone().leak())
            .asks("Code: ", longer);
        assert_eq!(drive(&mut daemon, script), Outcome::MaxTries);
        assert_eq!(daemon.replies, [longest, String::new()]);
    }

    #[test]
    fn failures_before_the_question_keep_their_class() {
        for (failure, outcome) in [
            (
                Failure::Absent("gone".into()),
                Outcome::Absent("gone".into()),
            ),
            (
                Failure::NoAnswer("late".into()),
                Outcome::NoAnswer("late".into()),
            ),
            (
                Failure::Refused("not root".into()),
                Outcome::Refused("not root".into()),
            ),
            (
                Failure::Daemon(daemon_error("Internal", "disk")),
                Outcome::DaemonFailed("disk".into()),
            ),
            (
                Failure::Daemon(daemon_error("TooManyRequests", "slow down")),
                Outcome::Deny("slow down".into()),
            ),
        ] {
            let mut daemon = daemon(vec![Err(failure)]);
            assert_eq!(drive(&mut daemon, Script::default()), outcome);
            assert!(daemon.cancelled.is_empty());
        }
    }

    #[test]
    fn losing_the_daemon_after_the_question_is_never_absence() {
        for failure in [
            Failure::Absent("gone".into()),
            Failure::NoAnswer("late".into()),
        ] {
            let mut daemon = daemon(vec![ask(), Err(failure)]);
            let outcome = drive(&mut daemon, Script::default().asks("Code: ", "1"));
            assert!(
                matches!(outcome, Outcome::LostAfterQuestion(_)),
                "{outcome:?}"
            );
        }
        let mut expired = daemon(vec![
            ask(),
            Err(Failure::Daemon(daemon_error("NoSuchSession", "expired"))),
        ]);
        let outcome = drive(&mut expired, Script::default().asks("Code: ", "1"));
        assert_eq!(outcome, Outcome::Deny("expired".into()));
        let mut refused = daemon(vec![ask(), Err(Failure::Refused("not yours".into()))]);
        let outcome = drive(&mut refused, Script::default().asks("Code: ", "1"));
        assert_eq!(outcome, Outcome::Refused("not yours".into()));
    }
}
