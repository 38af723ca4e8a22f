//! mfad's login socket as a local user reaches it: the bytes of a connection, read by the
//! server's own handshake and then framed, read and checked as the calls that follow it are.
#![no_main]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mfad::transport::login_socket::handshake;
use pam_mfa_login::marshal::{METHOD_CALL, read_message};
use pam_mfa_login::wire::Wire;

/// The uid the kernel reports for the peer.
const UID: u32 = 1000;
const GUID: &str = "0123456789abcdef0123456789abcdef";
/// More than a socket buffer would block the write below (the server reads only after it).
const MAX_INPUT: usize = 64 * 1024;
/// Calls read after the handshake, as the server reads them one after the other.
const MAX_CALLS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_INPUT)];
    let (mut client, server) = UnixStream::pair().expect("a socket pair");
    client
        .write_all(data)
        .expect("the input fits the socket's buffer");
    client.shutdown(Shutdown::Write).expect("shutdown");
    let mut wire = Wire::new(server);
    let mut out = Vec::new();
    let shaken = handshake(&mut wire, &mut out, UID, GUID);

    // What the server said: what it sent, then what it held back for the next write.
    let mut said = Vec::new();
    client.set_nonblocking(true).expect("non-blocking");
    let _ = client.read_to_end(&mut said);
    said.extend_from_slice(&out);
    let said = std::str::from_utf8(&said).expect("the server speaks ASCII");
    assert!(said.is_empty() || said.ends_with("\r\n"), "{said:?}");
    let ok = format!("OK {GUID}");
    let mut authenticated = false;
    for line in said.split_terminator("\r\n") {
        match line {
            "REJECTED EXTERNAL" => authenticated = false,
            "DATA" | "ERROR unknown command" | "ERROR file descriptors are not passed here" => {}
            line if line == ok => authenticated = true,
            line => panic!("the server said {line:?}"),
        }
    }
    if shaken.is_err() {
        return;
    }
    // A handshake ends only after the client was told it is authenticated, as itself.
    assert!(authenticated, "BEGIN accepted after {said:?}");
    assert!(
        data.windows(6).any(|w| w == b"\nBEGIN"),
        "authenticated without a BEGIN"
    );

    // The calls, as the server reads them: a message framed by its header, then read whole.
    let deadline = Instant::now() + Duration::from_secs(5);
    for _ in 0..MAX_CALLS {
        let Ok(bytes) = wire.message(deadline) else {
            return;
        };
        let Ok(message) = read_message(&bytes) else {
            return;
        };
        if message.kind == METHOD_CALL {
            pam_mfa_fuzz::check_call(&message);
        }
    }
});
