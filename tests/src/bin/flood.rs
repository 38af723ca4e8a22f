//! `flood --bus ADDRESS --connections N --in-flight M --seconds S [--user NAME] [--count C]`:
//! what an unprivileged local user can throw at mfad over the bus; with `--socket PATH` instead
//! of `--bus`, at mfad's login socket, peer to peer. `--garbage N` (with `--socket`) first opens
//! N connections that send a line feed where the handshake should begin, and closes them.
//! Opens N connections and keeps M calls in flight on each for S seconds, or until C calls were
//! answered in all (a connection that mfad closes makes no more): on the login socket
//! Introspect, Login.Begin for NAME and Login.Answer of a session that does not exist, in turn;
//! on the bus Introspect, User.Status (the caller's own) and Admin.Status for NAME (refused: the
//! caller is no administrator), in turn. Run it as the user (the harness sets the uid). Prints
//! `calls ANSWERED errors ERRORS refused REFUSED` at the end, where REFUSED counts mfad's
//! TooManyRequests answers, and `flood: N connections open` on stderr once it has connected.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use pam_mfa_api::proxy::{AdminProxy, UserProxy};
use pam_mfa_api::{BUS_NAME, Error, OBJECT_PATH};
use pam_mfa_tests::login_proxy::LoginProxy;

struct Options {
    bus: String,
    socket: Option<String>,
    garbage: u64,
    connections: usize,
    in_flight: usize,
    seconds: u64,
    user: String,
    count: u64,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = Options {
        bus: String::new(),
        socket: None,
        garbage: 0,
        connections: 1,
        in_flight: 1,
        seconds: 10,
        user: "nobody".into(),
        count: u64::MAX,
    };
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            eprintln!("flood: {pair:?}: every option takes a value");
            std::process::exit(2);
        };
        let number = || {
            value.parse::<u64>().unwrap_or_else(|_| {
                eprintln!("flood: {flag} {value}: not a number");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--bus" => options.bus = value.clone(),
            "--socket" => options.socket = Some(value.clone()),
            "--garbage" => options.garbage = number(),
            "--connections" => options.connections = number() as usize,
            "--in-flight" => options.in_flight = number() as usize,
            "--seconds" => options.seconds = number(),
            "--user" => options.user = value.clone(),
            "--count" => options.count = number(),
            other => {
                eprintln!("flood: unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    options
}

#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
}

fn main() {
    let options = options();
    let tally = Tally::default();
    zbus::block_on(flood(&options, &tally));
    println!(
        "calls {} errors {} refused {}",
        tally.answered.load(Ordering::SeqCst),
        tally.errors.load(Ordering::SeqCst),
        tally.refused.load(Ordering::SeqCst)
    );
}

async fn flood(options: &Options, tally: &Tally) {
    if let Some(path) = &options.socket {
        use std::io::{Read, Write};
        for _ in 0..options.garbage {
            if let Ok(mut stream) = std::os::unix::net::UnixStream::connect(path) {
                let _ = stream.write_all(b"\n");
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                // Until mfad closes it.
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
    }
    let mut connections = Vec::new();
    for _ in 0..options.connections {
        let built = match &options.socket {
            Some(path) => match std::os::unix::net::UnixStream::connect(path) {
                Ok(stream) => {
                    zbus::connection::Builder::unix_stream(stream)
                        .p2p()
                        .build()
                        .await
                }
                Err(error) => Err(zbus::Error::InputOutput(std::sync::Arc::new(error))),
            },
            None => {
                zbus::connection::Builder::address(options.bus.as_str())
                    .build()
                    .await
            }
        };
        match built {
            Ok(connection) => connections.push(connection),
            Err(error) => eprintln!("flood: connection refused: {error}"),
        }
    }
    eprintln!("flood: {} connections open", connections.len());
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let loops = connections.iter().flat_map(|connection| {
        (0..options.in_flight).map(move |slot| caller(connection, slot, options, tally, deadline))
    });
    join_all(loops).await;
}

async fn caller(
    connection: &zbus::Connection,
    slot: usize,
    options: &Options,
    tally: &Tally,
    deadline: Instant,
) {
    let Ok(login) = LoginProxy::builder(connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
    else {
        return;
    };
    let Ok(user) = UserProxy::builder(connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
    else {
        return;
    };
    let Ok(admin) = AdminProxy::builder(connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
    else {
        return;
    };
    let on_socket = options.socket.is_some();
    let mut turn = slot;
    // A connection mfad closed makes no more calls.
    while Instant::now() < deadline
        && tally.answered.load(Ordering::SeqCst) < options.count
        && !connection.is_closed()
    {
        let outcome: Result<(), Error> = match turn % 3 {
            0 => connection
                .call_method(
                    Some(BUS_NAME),
                    OBJECT_PATH,
                    Some("org.freedesktop.DBus.Introspectable"),
                    "Introspect",
                    &(),
                )
                .await
                .map(drop)
                .map_err(Error::ZBus),
            1 if on_socket => login.begin(&options.user, HashMap::new()).await.map(drop),
            _ if on_socket => login.answer("no-such-session", "123456").await.map(drop),
            1 => user.status().await.map(drop),
            _ => admin.status(&options.user).await.map(drop),
        };
        turn += 1;
        tally.answered.fetch_add(1, Ordering::SeqCst);
        match outcome {
            Ok(()) | Err(Error::NoSuchSession(_)) => {}
            Err(Error::TooManyRequests(_)) => {
                tally.refused.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                tally.errors.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
