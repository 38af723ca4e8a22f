//! What the fuzz targets check of the login socket's messages, shared by the targets that read
//! them (as bytes, and through the server's wire).
//!
//! Each check reads a message the way one end of the socket does and then asserts what must
//! hold of anything read: what was read can be written again and reads back the same, and
//! every refusal can be answered.

use pam_mfa_login::contract::{
    self, Answer, AnswerArgs, Begin, Begun, Call, Cancel, CancelArgs, ReplyError,
};
use pam_mfa_login::marshal::{self, Message};
use pam_mfa_login::{Turn, WireTurn};

/// Checks what mfad does with `message`, a method call: reads it as a Login call, writes the
/// call it read again and reads that back the same, and writes a reply made of what it read
/// (a refusal's error reply included).
pub fn check_call(message: &Message<'_>) {
    let to = message.serial;
    match contract::read_call(message) {
        Ok(Call::Begin(args)) => {
            let bytes = contract::call::<Begin>(to, &args, 0).expect("a Begin read is writable");
            let again = marshal::read_message(&bytes).expect("a Begin written reads");
            let Ok(Call::Begin(back)) = contract::read_call(&again) else {
                panic!("a Begin written reads as another call");
            };
            assert_eq!(back.user, args.user);
            assert_eq!(back.context, args.context);
            // A reply that carries what the caller sent.
            let begun = Begun {
                session: args.user.to_owned(),
                turn: WireTurn {
                    notices: args
                        .context
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    action: args.user.to_owned(),
                    text: String::new(),
                },
            };
            check_reply_round_trip::<Begin>(to, &begun);
        }
        Ok(Call::Answer(args)) => {
            let bytes = contract::call::<Answer>(to, &args, 0).expect("an Answer read is writable");
            let again = marshal::read_message(&bytes).expect("an Answer written reads");
            let Ok(Call::Answer(AnswerArgs { session, reply })) = contract::read_call(&again)
            else {
                panic!("an Answer written reads as another call");
            };
            assert_eq!((session, reply), (args.session, args.reply));
            let turn = WireTurn {
                notices: vec![("error".to_owned(), args.reply.to_owned())],
                action: "ask-hidden".to_owned(),
                text: args.session.to_owned(),
            };
            check_reply_round_trip::<Answer>(to, &turn);
        }
        Ok(Call::Cancel(args)) => {
            let bytes = contract::call::<Cancel>(to, &args, 0).expect("a Cancel read is writable");
            let again = marshal::read_message(&bytes).expect("a Cancel written reads");
            let Ok(Call::Cancel(CancelArgs { session })) = contract::read_call(&again) else {
                panic!("a Cancel written reads as another call");
            };
            assert_eq!(session, args.session);
            check_reply_round_trip::<Cancel>(to, &());
        }
        Err(not) => {
            // mfad answers every refused call; its answer must always be writable.
            let bytes = contract::error(1, to, not.name, &not.text)
                .expect("the error reply to a refused call is writable");
            let again = marshal::read_message(&bytes).expect("an error reply reads");
            assert_eq!(
                contract::reply::<Begin>(&again),
                Err(ReplyError::Error {
                    name: not.name.to_owned(),
                    text: not.text
                })
            );
        }
    }
}

/// Writes `reply` as `M`'s reply to the call with serial `to` and checks that it reads back
/// the same.
pub fn check_reply_round_trip<M>(to: u32, reply: &M::Reply)
where
    M: contract::Method,
    M::Reply: PartialEq + std::fmt::Debug,
{
    let bytes = contract::method_return::<M>(1, to, reply, 0).expect("a reply is writable");
    let message = marshal::read_message(&bytes).expect("a reply written reads");
    assert_eq!(message.reply_serial, Some(to));
    assert_eq!(contract::reply::<M>(&message).as_ref(), Ok(reply));
}

/// Checks what the module does with `message` as the reply to each of its calls: whatever it
/// reads back is what mfad would have written, and a turn it reads survives the wire.
pub fn check_replies(message: &Message<'_>) {
    let to = message.reply_serial.unwrap_or(1);
    match contract::reply::<Begin>(message) {
        Ok(begun) => {
            check_reply_round_trip::<Begin>(to, &begun);
            check_turn(begun.turn);
        }
        Err(error) => check_error(message, error),
    }
    match contract::reply::<Answer>(message) {
        Ok(turn) => {
            check_reply_round_trip::<Answer>(to, &turn);
            check_turn(turn);
        }
        Err(error) => check_error(message, error),
    }
    match contract::reply::<Cancel>(message) {
        Ok(()) => check_reply_round_trip::<Cancel>(to, &()),
        Err(error) => check_error(message, error),
    }
}

/// An error reply read is one mfad could have written: writing it again reads back the same.
fn check_error(message: &Message<'_>, error: ReplyError) {
    let ReplyError::Error { name, text } = error else {
        return;
    };
    let to = message.reply_serial.expect("an error reply answers a call");
    let bytes = contract::error(1, to, &name, &text).expect("an error reply read is writable");
    let again = marshal::read_message(&bytes).expect("an error reply written reads");
    assert_eq!(
        contract::reply::<Answer>(&again),
        Err(ReplyError::Error { name, text })
    );
}

/// A turn the module understands is the one mfad meant: as a [`Turn`], it survives the wire.
fn check_turn(wire: WireTurn) {
    if let Ok(turn) = Turn::try_from(wire) {
        let back = Turn::try_from(WireTurn::from(turn.clone())).expect("a turn written reads");
        assert_eq!(back, turn);
    }
}
