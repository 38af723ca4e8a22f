//! The daemon-driven login dialogue.
//!
//! A client calls `Begin(user, context)` and gets a session id and a [`Turn`]; while the turn's
//! action is a question it shows the notices, asks, and calls `Answer(session, reply)` for the
//! next turn, until the action is a verdict. The set of actions is closed: a client that receives
//! anything else must deny.

/// Text shown to the user before the turn's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Shown as `PAM_TEXT_INFO` (QR codes, hints).
    Info(String),
    /// Shown as `PAM_ERROR_MSG` (a wrong code, why a login is denied).
    Error(String),
}

/// What the client must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask without echo (`PAM_PROMPT_ECHO_OFF`) and send the reply back.
    AskHidden(String),
    /// Ask with echo (`PAM_PROMPT_ECHO_ON`) and send the reply back.
    AskVisible(String),
    /// Ask without echo for the password followed by a code of `digits` digits (or a recovery
    /// code), in one answer, for a service that sends one password ([`split_joined`]): send
    /// the code back, and hand the password to the next module (`PAM_AUTHTOK`) once allowed.
    AskJoined { prompt: String, digits: u32 },
    /// The second factor succeeded: `PAM_SUCCESS`.
    Allow,
    /// Denied: `PAM_AUTH_ERR`. The text is for logs, never shown to the user.
    Deny(String),
    /// Denied after the last allowed try: `PAM_MAXTRIES`.
    MaxTries,
    /// MFA is not required for this login: `PAM_IGNORE`.
    Skip,
}

impl Action {
    /// Whether the dialogue ends with this action.
    pub fn is_verdict(&self) -> bool {
        !matches!(
            self,
            Action::AskHidden(_) | Action::AskVisible(_) | Action::AskJoined { .. }
        )
    }
}

/// One turn of the dialogue: notices to show, then one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub notices: Vec<Notice>,
    pub action: Action,
}

impl Turn {
    pub fn new(action: Action) -> Self {
        Turn {
            notices: Vec::new(),
            action,
        }
    }

    pub fn with_notice(mut self, notice: Notice) -> Self {
        self.notices.push(notice);
        self
    }
}

/// A [`Turn`] as it travels on the login socket, D-Bus signature `(a(ss)ss)`: notices as
/// `(kind, text)` pairs, then the action's kind and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireTurn {
    pub notices: Vec<(String, String)>,
    pub action: String,
    pub text: String,
}

const INFO: &str = "info";
const ERROR: &str = "error";
const ASK_HIDDEN: &str = "ask-hidden";
const ASK_VISIBLE: &str = "ask-visible";
/// Followed by the code's digits: `ask-joined-6`.
const ASK_JOINED: &str = "ask-joined-";
/// The digits a joined answer's code may have.
const JOINED_DIGITS: std::ops::RangeInclusive<u32> = 6..=8;
const ALLOW: &str = "allow";
const DENY: &str = "deny";
const MAX_TRIES: &str = "max-tries";
const SKIP: &str = "skip";

/// A wire turn that names a notice or action outside the closed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStep(pub String);

impl std::fmt::Display for UnknownStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown dialogue step {:?}", self.0)
    }
}

impl std::error::Error for UnknownStep {}

impl From<Turn> for WireTurn {
    fn from(turn: Turn) -> Self {
        let notices = turn
            .notices
            .into_iter()
            .map(|notice| match notice {
                Notice::Info(text) => (INFO.to_owned(), text),
                Notice::Error(text) => (ERROR.to_owned(), text),
            })
            .collect();
        let (action, text) = match turn.action {
            Action::AskHidden(prompt) => (ASK_HIDDEN.to_owned(), prompt),
            Action::AskVisible(prompt) => (ASK_VISIBLE.to_owned(), prompt),
            Action::AskJoined { prompt, digits } => (format!("{ASK_JOINED}{digits}"), prompt),
            Action::Allow => (ALLOW.to_owned(), String::new()),
            Action::Deny(reason) => (DENY.to_owned(), reason),
            Action::MaxTries => (MAX_TRIES.to_owned(), String::new()),
            Action::Skip => (SKIP.to_owned(), String::new()),
        };
        WireTurn {
            notices,
            action,
            text,
        }
    }
}

impl TryFrom<WireTurn> for Turn {
    type Error = UnknownStep;

    fn try_from(wire: WireTurn) -> Result<Self, UnknownStep> {
        let notices = wire
            .notices
            .into_iter()
            .map(|(kind, text)| match kind.as_str() {
                INFO => Ok(Notice::Info(text)),
                ERROR => Ok(Notice::Error(text)),
                _ => Err(UnknownStep(kind)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let action = match wire.action.as_str() {
            ASK_HIDDEN => Action::AskHidden(wire.text),
            ASK_VISIBLE => Action::AskVisible(wire.text),
            ALLOW => Action::Allow,
            DENY => Action::Deny(wire.text),
            MAX_TRIES => Action::MaxTries,
            SKIP => Action::Skip,
            other => match other
                .strip_prefix(ASK_JOINED)
                .and_then(|digits| digits.parse::<u32>().ok())
                .filter(|digits| JOINED_DIGITS.contains(digits))
            {
                Some(digits) => Action::AskJoined {
                    prompt: wire.text,
                    digits,
                },
                None => return Err(UnknownStep(wire.action)),
            },
        };
        Ok(Turn { notices, action })
    }
}

/// Splits a joined answer (see [`Action::AskJoined`]) into the password and the code that
/// ends it: a recovery code as it is shown, three groups of five letters or digits joined by
/// dashes; else the last `digits` characters, when they are digits. `None` when it ends in
/// neither (no code was typed).
pub fn split_joined(answer: &str, digits: u32) -> Option<(&str, &str)> {
    let bytes = answer.as_bytes();
    const RECOVERY: usize = 17;
    if bytes.len() >= RECOVERY {
        let tail = &bytes[bytes.len() - RECOVERY..];
        let shaped = tail.iter().enumerate().all(|(index, byte)| match index {
            5 | 11 => *byte == b'-',
            _ => byte.is_ascii_alphanumeric(),
        });
        if shaped {
            // The tail is ASCII, so this is a character boundary.
            return Some(answer.split_at(bytes.len() - RECOVERY));
        }
    }
    let digits = digits as usize;
    if bytes.len() >= digits && bytes[bytes.len() - digits..].iter().all(u8::is_ascii_digit) {
        return Some(answer.split_at(bytes.len() - digits));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_answer_ends_in_its_code() {
        assert_eq!(
            split_joined("hunter2123456", 6),
            Some(("hunter2", "123456"))
        );
        assert_eq!(split_joined("123456", 6), Some(("", "123456")));
        assert_eq!(
            split_joined("pässwörd12345678", 8),
            Some(("pässwörd", "12345678"))
        );
        assert_eq!(
            split_joined("s3cret k7pqm-3xd9a-hrt2w", 6),
            Some(("s3cret ", "k7pqm-3xd9a-hrt2w"))
        );
        assert_eq!(split_joined("hunter2", 6), None);
        assert_eq!(split_joined("12345", 6), None);
        assert_eq!(split_joined("password12345é", 6), None);
        assert_eq!(split_joined("", 6), None);
    }

    #[test]
    fn every_turn_survives_the_wire() {
        let actions = [
            Action::AskHidden("Verification code: ".into()),
            Action::AskVisible("Answer: ".into()),
            Action::AskJoined {
                prompt: "Password and verification code: ".into(),
                digits: 8,
            },
            Action::Allow,
            Action::Deny("wrong code".into()),
            Action::MaxTries,
            Action::Skip,
        ];
        for action in actions {
            let turn = Turn::new(action)
                .with_notice(Notice::Info("hello".into()))
                .with_notice(Notice::Error("oops".into()));
            let back = Turn::try_from(WireTurn::from(turn.clone())).unwrap();
            assert_eq!(back, turn);
        }
    }

    #[test]
    fn unknown_steps_are_refused() {
        let wire = WireTurn {
            notices: vec![],
            action: "allow-everyone".into(),
            text: String::new(),
        };
        assert_eq!(
            Turn::try_from(wire),
            Err(UnknownStep("allow-everyone".into()))
        );
        let wire = WireTurn {
            notices: vec![("blink".into(), "x".into())],
            action: ALLOW.into(),
            text: String::new(),
        };
        assert_eq!(Turn::try_from(wire), Err(UnknownStep("blink".into())));
        for action in [
            "ask-joined-9",
            "ask-joined-",
            "ask-joined-x",
            "ask-joined-06",
        ] {
            let wire = WireTurn {
                notices: vec![],
                action: action.into(),
                text: "Password: ".into(),
            };
            let refused = Turn::try_from(wire);
            if action == "ask-joined-06" {
                // Read as a number, as the daemon never writes it: still 6 digits.
                assert!(refused.is_ok(), "{action}");
            } else {
                assert_eq!(refused, Err(UnknownStep(action.into())));
            }
        }
    }
}
