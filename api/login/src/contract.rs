//! The Login contract, stated once: each method's name, arguments and reply, with how they are
//! written and read. The module calls [`call`] and reads [`reply`]; mfad reads [`Call`] and
//! writes [`method_return`]: both use these types, so a change to a method does not compile
//! until both ends agree.

use zeroize::Zeroizing;

use crate::dialogue::WireTurn;
use crate::marshal::{
    ERROR, Head, METHOD_CALL, METHOD_RETURN, Malformed, Message, Reader, Unwritable, Writer,
    write_message,
};
use crate::{LOGIN_INTERFACE, OBJECT_PATH};

/// One method of the Login interface.
pub trait Method {
    /// Its name on the wire.
    const MEMBER: &'static str;
    /// The D-Bus signature of its arguments.
    const SIGNATURE: &'static str;
    /// The D-Bus signature of its reply.
    const REPLY_SIGNATURE: &'static str;
    /// Its arguments, borrowed from the caller (or from the bytes mfad read).
    type Args<'a>;
    /// Its reply.
    type Reply;
    fn write_args(args: &Self::Args<'_>, writer: &mut Writer);
    fn read_args<'a>(reader: &mut Reader<'a>) -> Result<Self::Args<'a>, Malformed>;
    fn write_reply(reply: &Self::Reply, writer: &mut Writer);
    fn read_reply(reader: &mut Reader<'_>) -> Result<Self::Reply, Malformed>;
}

/// `Begin(user, context) -> (session, turn)`: starts a login.
pub struct Begin;
/// `Answer(session, reply) -> turn`: the user's reply to the last question.
pub struct Answer;
/// `Cancel(session)`: ends a login at once.
pub struct Cancel;

pub struct BeginArgs<'a> {
    pub user: &'a str,
    /// The login's context ([`crate::context`] keys); mfad ignores other keys.
    pub context: Vec<(&'a str, &'a str)>,
}

pub struct AnswerArgs<'a> {
    pub session: &'a str,
    /// What the user typed (a code): never logged.
    pub reply: &'a str,
}

pub struct CancelArgs<'a> {
    pub session: &'a str,
}

/// What `Begin` answers: the session that carries the login, and its first turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begun {
    pub session: String,
    pub turn: WireTurn,
}

fn write_turn(turn: &WireTurn, writer: &mut Writer) {
    writer.open_struct();
    writer.array(8, |notices| {
        for (kind, text) in &turn.notices {
            notices.open_struct();
            notices.str(kind);
            notices.str(text);
        }
    });
    writer.str(&turn.action);
    writer.str(&turn.text);
}

fn read_turn(reader: &mut Reader<'_>) -> Result<WireTurn, Malformed> {
    reader.open_struct()?;
    let end = reader.array(8)?;
    let mut notices = Vec::new();
    while reader.before(end)? {
        reader.open_struct()?;
        notices.push((reader.str()?.to_owned(), reader.str()?.to_owned()));
    }
    Ok(WireTurn {
        notices,
        action: reader.str()?.to_owned(),
        text: reader.str()?.to_owned(),
    })
}

impl Method for Begin {
    const MEMBER: &'static str = "Begin";
    const SIGNATURE: &'static str = "sa{ss}";
    const REPLY_SIGNATURE: &'static str = "s(a(ss)ss)";
    type Args<'a> = BeginArgs<'a>;
    type Reply = Begun;

    fn write_args(args: &BeginArgs<'_>, writer: &mut Writer) {
        writer.str(args.user);
        writer.array(8, |entries| {
            for (key, value) in &args.context {
                entries.open_struct();
                entries.str(key);
                entries.str(value);
            }
        });
    }

    fn read_args<'a>(reader: &mut Reader<'a>) -> Result<BeginArgs<'a>, Malformed> {
        let user = reader.str()?;
        let end = reader.array(8)?;
        let mut context = Vec::new();
        while reader.before(end)? {
            reader.open_struct()?;
            context.push((reader.str()?, reader.str()?));
        }
        Ok(BeginArgs { user, context })
    }

    fn write_reply(reply: &Begun, writer: &mut Writer) {
        writer.str(&reply.session);
        write_turn(&reply.turn, writer);
    }

    fn read_reply(reader: &mut Reader<'_>) -> Result<Begun, Malformed> {
        Ok(Begun {
            session: reader.str()?.to_owned(),
            turn: read_turn(reader)?,
        })
    }
}

impl Method for Answer {
    const MEMBER: &'static str = "Answer";
    const SIGNATURE: &'static str = "ss";
    const REPLY_SIGNATURE: &'static str = "(a(ss)ss)";
    type Args<'a> = AnswerArgs<'a>;
    type Reply = WireTurn;

    fn write_args(args: &AnswerArgs<'_>, writer: &mut Writer) {
        writer.str(args.session);
        writer.str(args.reply);
    }

    fn read_args<'a>(reader: &mut Reader<'a>) -> Result<AnswerArgs<'a>, Malformed> {
        Ok(AnswerArgs {
            session: reader.str()?,
            reply: reader.str()?,
        })
    }

    fn write_reply(reply: &WireTurn, writer: &mut Writer) {
        write_turn(reply, writer);
    }

    fn read_reply(reader: &mut Reader<'_>) -> Result<WireTurn, Malformed> {
        read_turn(reader)
    }
}

impl Method for Cancel {
    const MEMBER: &'static str = "Cancel";
    const SIGNATURE: &'static str = "s";
    const REPLY_SIGNATURE: &'static str = "";
    type Args<'a> = CancelArgs<'a>;
    type Reply = ();

    fn write_args(args: &CancelArgs<'_>, writer: &mut Writer) {
        writer.str(args.session);
    }

    fn read_args<'a>(reader: &mut Reader<'a>) -> Result<CancelArgs<'a>, Malformed> {
        Ok(CancelArgs {
            session: reader.str()?,
        })
    }

    fn write_reply(_: &(), _: &mut Writer) {}

    fn read_reply(_: &mut Reader<'_>) -> Result<(), Malformed> {
        Ok(())
    }
}

/// The error names a reply on the login socket may carry.
pub mod errors {
    /// The caller may not do this (another uid's login, say).
    pub const PERMISSION_DENIED: &str = "org.pam_mfa.Mfad1.Error.PermissionDenied";
    /// mfad could not do its work (its store failed); nothing was changed.
    pub const INTERNAL: &str = "org.pam_mfa.Mfad1.Error.Internal";
    /// The call is not one of the contract's, or not on its object and interface.
    pub const UNKNOWN_METHOD: &str = "org.freedesktop.DBus.Error.UnknownMethod";
    pub const UNKNOWN_OBJECT: &str = "org.freedesktop.DBus.Error.UnknownObject";
    pub const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
    /// The arguments are not the method's.
    pub const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
    /// The call is longer than mfad takes; the connection is closed after this answer.
    pub const LIMITS_EXCEEDED: &str = "org.freedesktop.DBus.Error.LimitsExceeded";
}

/// Room for a call or reply beyond its strings.
const OVERHEAD: usize = 192;

/// The bytes of a call of `M` with serial `serial`.
pub fn call<M: Method>(
    serial: u32,
    args: &M::Args<'_>,
    room: usize,
) -> Result<Zeroizing<Vec<u8>>, Unwritable> {
    let head = Head {
        kind: METHOD_CALL,
        flags: 0,
        serial,
        call: Some((OBJECT_PATH, LOGIN_INTERFACE, M::MEMBER)),
        error_name: None,
        reply_serial: None,
        signature: M::SIGNATURE,
    };
    write_message(&head, OVERHEAD + room, |writer| M::write_args(args, writer))
}

/// The bytes of `M`'s reply to the call with serial `to`.
pub fn method_return<M: Method>(
    serial: u32,
    to: u32,
    reply: &M::Reply,
    room: usize,
) -> Result<Zeroizing<Vec<u8>>, Unwritable> {
    let head = Head {
        kind: METHOD_RETURN,
        flags: 0,
        serial,
        call: None,
        error_name: None,
        reply_serial: Some(to),
        signature: M::REPLY_SIGNATURE,
    };
    write_message(&head, OVERHEAD + room, |writer| {
        M::write_reply(reply, writer)
    })
}

/// The bytes of an error reply `name` with `text` to the call with serial `to`.
pub fn error(
    serial: u32,
    to: u32,
    name: &str,
    text: &str,
) -> Result<Zeroizing<Vec<u8>>, Unwritable> {
    let head = Head {
        kind: ERROR,
        flags: 0,
        serial,
        call: None,
        error_name: Some(name),
        reply_serial: Some(to),
        signature: "s",
    };
    write_message(&head, OVERHEAD + name.len() + text.len(), |writer| {
        writer.str(text)
    })
}

/// A call as mfad reads it.
pub enum Call<'a> {
    Begin(BeginArgs<'a>),
    Answer(AnswerArgs<'a>),
    Cancel(CancelArgs<'a>),
}

/// Why a method call is not one of the contract's: the error reply's name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACall {
    pub name: &'static str,
    pub text: String,
}

/// Reads the Login call `message` carries (a method call).
pub fn read_call<'a>(message: &Message<'a>) -> Result<Call<'a>, NotACall> {
    let refuse = |name, text: String| Err(NotACall { name, text });
    if message.interface != Some(LOGIN_INTERFACE) {
        return refuse(
            errors::ACCESS_DENIED,
            format!("only {LOGIN_INTERFACE} is served on this socket"),
        );
    }
    if message.path != Some(OBJECT_PATH) {
        return refuse(
            errors::UNKNOWN_OBJECT,
            format!("only {OBJECT_PATH} is served here"),
        );
    }
    fn args<'a, M: Method>(message: &Message<'a>) -> Result<M::Args<'a>, NotACall> {
        let invalid = || NotACall {
            name: errors::INVALID_ARGS,
            text: format!(
                "{} takes ({}), not ({})",
                M::MEMBER,
                M::SIGNATURE,
                message.signature
            ),
        };
        if message.signature != M::SIGNATURE {
            return Err(invalid());
        }
        let mut body = message.body();
        let args = M::read_args(&mut body).map_err(|_| invalid())?;
        body.end().map_err(|_| invalid())?;
        Ok(args)
    }
    match message.member.unwrap_or("") {
        Begin::MEMBER => args::<Begin>(message).map(Call::Begin),
        Answer::MEMBER => args::<Answer>(message).map(Call::Answer),
        Cancel::MEMBER => args::<Cancel>(message).map(Call::Cancel),
        other => refuse(
            errors::UNKNOWN_METHOD,
            format!("{LOGIN_INTERFACE} has no {other:.64}"),
        ),
    }
}

/// What came back for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// An error reply: its name and text.
    Error { name: String, text: String },
    /// Not a reply of the contract's shape.
    Malformed(String),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Error { name, text } => write!(f, "{text} ({name})"),
            ReplyError::Malformed(text) => f.write_str(text),
        }
    }
}

/// Reads `M`'s reply from `message` (a method return or an error that answers our call).
pub fn reply<M: Method>(message: &Message<'_>) -> Result<M::Reply, ReplyError> {
    let mut body = message.body();
    if message.kind == ERROR {
        let text = match message.signature {
            "s" => body.str().unwrap_or("").to_owned(),
            _ => String::new(),
        };
        return Err(ReplyError::Error {
            name: message.error_name.unwrap_or("").to_owned(),
            text,
        });
    }
    let malformed =
        |what: String| ReplyError::Malformed(format!("mfad's reply to {}: {what}", M::MEMBER));
    if message.kind != METHOD_RETURN {
        return Err(malformed("not a reply".into()));
    }
    if message.signature != M::REPLY_SIGNATURE {
        return Err(malformed(format!(
            "of type ({}), not ({})",
            message.signature,
            M::REPLY_SIGNATURE
        )));
    }
    let reply = M::read_reply(&mut body).map_err(|error| malformed(error.to_string()))?;
    body.end().map_err(|error| malformed(error.to_string()))?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marshal::read_message;

    fn turn() -> WireTurn {
        WireTurn {
            notices: vec![
                ("info".into(), "██ QR ██\nline two".into()),
                ("error".into(), "Wrong code.".into()),
            ],
            action: "ask-hidden".into(),
            text: "Verification code: ".into(),
        }
    }

    #[test]
    fn each_method_reads_what_it_writes() {
        let context = vec![("service", "sshd"), ("rhost", "192.0.2.7")];
        let bytes = call::<Begin>(
            3,
            &BeginArgs {
                user: "alice",
                context: context.clone(),
            },
            0,
        )
        .unwrap();
        let message = read_message(&bytes).unwrap();
        assert_eq!(message.serial, 3);
        let Ok(Call::Begin(args)) = read_call(&message) else {
            panic!("not a Begin");
        };
        assert_eq!((args.user, args.context), ("alice", context));

        let bytes = call::<Answer>(
            4,
            &AnswerArgs {
                session: "s1",
                reply: "123456",
            },
            0,
        )
        .unwrap();
        let message = read_message(&bytes).unwrap();
        let Ok(Call::Answer(args)) = read_call(&message) else {
            panic!("not an Answer");
        };
        assert_eq!((args.session, args.reply), ("s1", "123456"));

        let begun = Begun {
            session: "s1".into(),
            turn: turn(),
        };
        let bytes = method_return::<Begin>(9, 3, &begun, 0).unwrap();
        let message = read_message(&bytes).unwrap();
        assert_eq!(message.reply_serial, Some(3));
        assert_eq!(reply::<Begin>(&message).unwrap(), begun);
        // A reply read as another method's is refused by its type.
        assert!(matches!(
            reply::<Answer>(&message),
            Err(ReplyError::Malformed(_))
        ));

        let bytes = error(10, 4, errors::INTERNAL, "the store failed").unwrap();
        let message = read_message(&bytes).unwrap();
        assert_eq!(
            reply::<Answer>(&message),
            Err(ReplyError::Error {
                name: errors::INTERNAL.into(),
                text: "the store failed".into()
            })
        );
    }

    #[test]
    fn calls_outside_the_contract_are_named() {
        let head = |interface, member, signature| Head {
            kind: METHOD_CALL,
            flags: 0,
            serial: 1,
            call: Some((OBJECT_PATH, interface, member)),
            error_name: None,
            reply_serial: None,
            signature,
        };
        let refused = |head: Head<'_>, body: &dyn Fn(&mut Writer)| {
            let bytes = write_message(&head, 0, body).unwrap();
            let message = read_message(&bytes).unwrap();
            read_call(&message).err().unwrap()
        };
        let not = refused(
            head("org.freedesktop.DBus.Introspectable", "Introspect", ""),
            &|_| {},
        );
        assert_eq!(not.name, errors::ACCESS_DENIED);
        let not = refused(head(LOGIN_INTERFACE, "Unlock", ""), &|_| {});
        assert_eq!(not.name, errors::UNKNOWN_METHOD);
        let not = refused(head(LOGIN_INTERFACE, "Answer", "s"), &|w| w.str("s1"));
        assert_eq!(not.name, errors::INVALID_ARGS);
        assert!(
            not.text.contains("Answer takes (ss), not (s)"),
            "{}",
            not.text
        );
        // The signature right, the body short.
        let not = refused(head(LOGIN_INTERFACE, "Answer", "ss"), &|w| w.str("s1"));
        assert_eq!(not.name, errors::INVALID_ARGS);
    }
}
