//! `listen PATH OUT`: listens on the Unix socket PATH and, for each connection, appends to OUT
//! the number of bytes the client sent before it closed (or within a second). Run as another
//! user by the tests, to stand for a login socket that root does not serve.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, out] = args.as_slice() else {
        eprintln!("usage: listen PATH OUT");
        std::process::exit(2);
    };
    let listener = UnixListener::bind(path).unwrap_or_else(|error| {
        eprintln!("listen: cannot bind {path}: {error}");
        std::process::exit(1)
    });
    for stream in listener.incoming().flatten() {
        let mut stream = stream;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .expect("the output file");
        let _ = writeln!(log, "{}", received.len());
    }
}
