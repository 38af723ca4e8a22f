//! An SMS gateway's API for one test: an HTTPS server on a loopback port, with a certificate
//! from a test authority for "localhost", that keeps every request it gets (no text message can
//! be sent from here) and answers each with the status the test sets.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};

/// One request, as the gateway got it.
#[derive(Debug, Clone)]
pub struct Request {
    /// "POST /v1/messages HTTP/1.1".
    pub line: String,
    /// Header lines, as sent.
    pub headers: Vec<String>,
    pub body: String,
}

pub struct Gateway {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    status: Arc<AtomicU16>,
    /// The authority that signed its certificate (for `sms.ca_file`).
    pub authority: PathBuf,
}

impl Gateway {
    /// Starts the gateway with its certificates in `dir` (made here); it answers 200.
    pub fn start(dir: &Path) -> Gateway {
        std::fs::create_dir_all(dir).unwrap();
        let (authority, certificate, key) = crate::postgres::certificates(dir, "DNS:localhost");
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acceptor
            .set_private_key_file(&key, SslFiletype::PEM)
            .unwrap();
        acceptor.set_certificate_chain_file(&certificate).unwrap();
        let acceptor = Arc::new(acceptor.build());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (kept, answer) = (requests.clone(), status.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (acceptor, kept, answer) = (acceptor.clone(), kept.clone(), answer.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                    let Ok(mut tls) = acceptor.accept(stream) else {
                        return;
                    };
                    let Some(request) = read_request(&mut tls) else {
                        return;
                    };
                    kept.lock().unwrap().push(request);
                    let status = answer.load(Ordering::SeqCst);
                    let _ = write!(
                        tls,
                        "HTTP/1.1 {status} Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = tls.shutdown();
                });
            }
        });
        Gateway {
            port,
            requests,
            status,
            authority,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The requests so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Answers every request from now on with `status`.
    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

/// Reads one request: its head, then as many bytes of body as Content-Length says.
fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 || bytes.len() > 65_536 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n").map(str::to_owned);
    let line = lines.next()?;
    let headers: Vec<String> = lines.collect();
    let length: usize = headers
        .iter()
        .find_map(|header| {
            let (name, value) = header.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = bytes[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Request {
        line,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
