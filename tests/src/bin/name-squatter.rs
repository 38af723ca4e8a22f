//! `name-squatter --bus ADDRESS`: owns `org.pam_mfa.Mfad1` on a bus, as a user's process could
//! on a bus that user started, and records every method call it receives.
//!
//! Prints `owns org.pam_mfa.Mfad1` once it has the name, then one line
//! `call INTERFACE.MEMBER PATH` per method call (answered with an error), on stdout, flushed
//! at once. Runs until killed.
#![forbid(unsafe_code)]

use std::io::Write;

use futures_util::StreamExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let address = match args.as_slice() {
        [_, flag, address] if flag == "--bus" => address.clone(),
        _ => {
            eprintln!("usage: name-squatter --bus ADDRESS");
            std::process::exit(2);
        }
    };
    if let Err(error) = zbus::block_on(squat(&address)) {
        eprintln!("name-squatter: {error}");
        std::process::exit(1);
    }
}

async fn squat(address: &str) -> zbus::Result<()> {
    let connection = zbus::connection::Builder::address(address).build().await?;
    let mut calls = zbus::MessageStream::from(&connection);
    connection.request_name(pam_mfa_api::BUS_NAME).await?;
    record(&format!("owns {}", pam_mfa_api::BUS_NAME));
    while let Some(message) = calls.next().await {
        let message = message?;
        let header = message.header();
        if header.message_type() != zbus::message::Type::MethodCall {
            continue;
        }
        let interface = header
            .interface()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let member = header.member().map(|m| m.to_string()).unwrap_or_default();
        let path = header.path().map(|p| p.to_string()).unwrap_or_default();
        record(&format!("call {interface}.{member} {path}"));
        let reply = zbus::Message::error(&header, "org.freedesktop.DBus.Error.Failed")
            .build(&("a squatter, not mfad",))?;
        connection.send(&reply).await?;
    }
    Ok(())
}

fn record(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
