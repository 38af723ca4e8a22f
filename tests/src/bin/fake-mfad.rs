//! `fake-mfad`: owns `org.pam_mfa.Mfad1` on a bus and serves the Login interface, recording
//! every method call it receives, so tests can check what a client sent to whoever owns the
//! name (nothing, when that owner is not root).
//!
//! `fake-mfad --bus ADDRESS --record FILE`. Appends to FILE: `ready` once it owns the name, then
//! one line per method call received (`call INTERFACE.MEMBER`), plus `begin USER`,
//! `answer LENGTH` (the reply's length in bytes, never its text) and `cancel SESSION`. `Begin`
//! opens the session `fake-session` and asks for a code; `Answer` denies.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;

use pam_mfa_api::{Action, BUS_NAME, OBJECT_PATH, Turn, WireTurn};
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

struct FakeLogin(std::sync::Arc<Recorder>);

#[zbus::interface(name = "org.pam_mfa.Mfad1.Login")]
impl FakeLogin {
    fn begin(&self, user: String, _context: HashMap<String, String>) -> (String, WireTurn) {
        self.0.record(&format!("begin {user}"));
        let turn = Turn::new(Action::AskHidden("Verification code: ".into()));
        (SESSION.to_owned(), turn.into())
    }

    fn answer(&self, _session: String, reply: String) -> WireTurn {
        self.0.record(&format!("answer {}", reply.len()));
        Turn::new(Action::Deny("fake".into())).into()
    }

    fn cancel(&self, session: String) {
        self.0.record(&format!("cancel {session}"));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut bus, mut record) = (None, None);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--bus" => bus = args.next(),
            "--record" => record = args.next().map(PathBuf::from),
            other => {
                eprintln!("fake-mfad: unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    let (Some(bus), Some(record)) = (bus, record) else {
        eprintln!("usage: fake-mfad --bus ADDRESS --record FILE");
        std::process::exit(2);
    };
    let recorder = std::sync::Arc::new(Recorder(record));
    zbus::block_on(async {
        let connection = zbus::connection::Builder::address(bus.as_str())
            .serve_at(OBJECT_PATH, FakeLogin(recorder.clone()))
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
