//! `fake-mfad`: stands where mfad would, recording what clients send it.
//!
//! `fake-mfad --bus ADDRESS --record FILE` owns `org.pam_mfa.Mfad1` on a bus and records every
//! method call it receives (`call INTERFACE.MEMBER`), so tests can check what a client sent to
//! whoever owns the name (nothing, when that owner is not root).
//!
//! `fake-mfad --socket PATH --record FILE` serves the Login interface on a login socket at PATH
//! and records `begin USER`, `answer LENGTH` (the reply's length in bytes, never its text) and
//! `cancel SESSION`. `Begin` opens the session `fake-session` and asks for a code; `Answer`
//! denies.
//!
//! Both append `ready` to FILE once they serve.
#![forbid(unsafe_code)]

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use pam_mfa_api::contract::{self, Answer, Begin, Begun, Call, Cancel};
use pam_mfa_api::marshal::{METHOD_CALL, read_message};
use pam_mfa_api::wire::Wire;
use pam_mfa_api::{Action, BUS_NAME, Turn, WireTurn};
use zbus::export::futures_core::Stream;
use zbus::message::Type;

const SESSION: &str = "fake-session";

struct Recorder(PathBuf);

impl Recorder {
    fn record(&self, line: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .expect("open the record file");
        writeln!(file, "{line}").expect("write the record file");
    }
}

/// An interface with nothing in it: with an object at mfad's path, zbus answers the standard
/// interfaces there (Peer.Ping, the probe of `FakeBus::calls_after_probe`).
struct Nothing;

#[zbus::interface(name = "org.pam_mfa.Mfad1.Fake")]
impl Nothing {}

/// Serves the Login interface on `path`, one connection at a time.
fn serve_socket(path: &PathBuf, recorder: &Recorder) {
    let listener = UnixListener::bind(path).expect("bind the login socket");
    recorder.record("ready");
    for stream in listener.incoming().flatten() {
        let mut wire = Wire::new(stream);
        let deadline = || Instant::now() + Duration::from_secs(30);
        if wire.byte(deadline()).is_err() {
            continue;
        }
        // The module's handshake: AUTH, then BEGIN.
        let shaken = (0..4).any(|_| wire.line(deadline()).is_ok_and(|line| line == "BEGIN"));
        if !shaken {
            continue;
        }
        let mut out = b"OK 0123456789abcdef0123456789abcdef\r\n".to_vec();
        let mut serial = 0;
        while let Ok(bytes) = wire.message(deadline()) {
            let Ok(message) = read_message(&bytes) else {
                break;
            };
            if message.kind != METHOD_CALL {
                continue;
            }
            serial += 1;
            let to = message.serial;
            let reply = match contract::read_call(&message) {
                Ok(Call::Begin(args)) => {
                    recorder.record(&format!("begin {}", args.user));
                    let turn = Turn::new(Action::AskHidden("Verification code: ".into()));
                    let begun = Begun {
                        session: SESSION.into(),
                        turn: WireTurn::from(turn),
                    };
                    contract::method_return::<Begin>(serial, to, &begun, 0)
                }
                Ok(Call::Answer(args)) => {
                    recorder.record(&format!("answer {}", args.reply.len()));
                    let turn = WireTurn::from(Turn::new(Action::Deny("fake".into())));
                    contract::method_return::<Answer>(serial, to, &turn, 0)
                }
                Ok(Call::Cancel(args)) => {
                    recorder.record(&format!("cancel {}", args.session));
                    contract::method_return::<Cancel>(serial, to, &(), 0)
                }
                Err(not) => contract::error(serial, to, not.name, &not.text),
            };
            out.extend_from_slice(&reply.expect("write a reply"));
            if wire.send(&out, deadline()).is_err() {
                break;
            }
            out.clear();
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut bus, mut socket, mut record) = (None, None, None);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--bus" => bus = args.next(),
            "--socket" => socket = args.next().map(PathBuf::from),
            "--record" => record = args.next().map(PathBuf::from),
            other => {
                eprintln!("fake-mfad: unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    let Some(record) = record else {
        eprintln!("usage: fake-mfad --bus ADDRESS|--socket PATH --record FILE");
        std::process::exit(2);
    };
    let recorder = Recorder(record);
    let bus = match (bus, socket) {
        (Some(bus), None) => bus,
        (None, Some(socket)) => return serve_socket(&socket, &recorder),
        _ => {
            eprintln!("usage: fake-mfad --bus ADDRESS|--socket PATH --record FILE");
            std::process::exit(2);
        }
    };
    zbus::block_on(async {
        let connection = zbus::connection::Builder::address(bus.as_str())
            .serve_at(pam_mfa_api::OBJECT_PATH, Nothing)
            .build()
            .await
            .expect("connect to the bus");
        // Every message from now on, whatever object or interface it is for.
        let mut stream = zbus::MessageStream::from(&connection);
        connection
            .request_name(BUS_NAME)
            .await
            .expect("own org.pam_mfa.Mfad1");
        recorder.record("ready");
        loop {
            let next = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await;
            let Some(Ok(message)) = next else { break };
            let header = message.header();
            if header.message_type() == Type::MethodCall {
                let interface = header.interface().map(|i| i.to_string());
                let member = header.member().map(|m| m.to_string());
                recorder.record(&format!(
                    "call {}.{}",
                    interface.unwrap_or_default(),
                    member.unwrap_or_default()
                ));
            }
        }
    });
}
