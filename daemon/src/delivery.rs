//! Codes sent to contacts: by email through the local sendmail program or straight to an
//! SMTP server (lettre, always over checked TLS), by SMS through a command of the
//! administrator's or an HTTPS request to a gateway's API. Every delivery is bounded by
//! `contacts.delivery_timeout`: a program past it is killed with its process group (it runs
//! without a shell, with an empty environment but PATH), a connection past it is left to its
//! own socket time-outs; either way its code is withdrawn. A delivery waits only for itself,
//! on the thread of the call that asked for it; at most [`MAX_AT_ONCE`] run at once, so that
//! no set of users can make mfad start programs or connections without end.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pam_mfa_config::{Config, ContactKind, Email, EmailVia, HttpMethod, Sms, SmsVia, SmtpTls};
use zeroize::Zeroizing;

use crate::codes::contact::Address;

/// Deliveries running at once; another one fails at once.
pub const MAX_AT_ONCE: usize = 8;

/// Characters of why a delivery failed that mfad's log gets.
const MAX_DIAGNOSTICS: usize = 400;

/// The PATH a delivery program runs with.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a message says: the code, where it is for, how long it is good.
pub struct Message<'a> {
    pub code: &'a str,
    /// Who asks (`totp.issuer`, or "pam-mfa on HOSTNAME").
    pub issuer: &'a str,
    pub minutes: i64,
}

impl Message<'_> {
    fn text(&self) -> String {
        format!(
            "Your code for {}: {} (good for {} minutes, once).",
            self.issuer, self.code, self.minutes
        )
    }

    fn subject(&self) -> String {
        format!("Your code for {}", self.issuer.replace(['\r', '\n'], " "))
    }

    /// The email's text.
    fn email_text(&self) -> String {
        format!(
            "{}\n\nIf you did not ask for a code, someone may know your password: tell your \
             administrator.\n",
            self.text()
        )
    }

    /// The email: headers the mail system completes (Date, Message-ID), and the text.
    fn email(&self, to: &str, from: &str) -> String {
        let mut mail = String::new();
        if !from.is_empty() {
            mail.push_str(&format!("From: {from}\n"));
        }
        mail.push_str(&format!(
            "To: {to}\nSubject: {}\nMIME-Version: 1.0\n\
             Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\
             Auto-Submitted: auto-generated\n\n{}",
            self.subject(),
            self.email_text()
        ));
        mail
    }
}

/// The deliveries under way.
#[derive(Default)]
pub struct Deliveries {
    running: Arc<AtomicUsize>,
}

/// Counts a delivery while it runs: held by the thread that does it, so that one its caller
/// stopped waiting for still counts until it ends.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Deliveries {
    /// Sends `message` to `to` as `config` says, within `contacts.delivery_timeout`. The
    /// error says why nothing was sent, for mfad's log (never with the code in it).
    pub fn send(&self, config: &Config, to: &Address, message: &Message<'_>) -> Result<(), String> {
        if self.running.fetch_add(1, Ordering::SeqCst) >= MAX_AT_ONCE {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err(format!("{MAX_AT_ONCE} deliveries were under way already"));
        }
        let running = Running(self.running.clone());
        let address = to;
        let limit = Duration::from_secs(config.contacts.delivery_timeout.get().into());
        let (argv, input) = match to.kind {
            ContactKind::Email if *config.email.via.get_ref() == EmailVia::Smtp => {
                let email = config.email.clone();
                let (to, text) = (to.text.clone(), message.email_text());
                let subject = message.subject();
                return bounded(limit, move || {
                    let _running = running;
                    smtp(&email, &to, &subject, &text, limit)
                })
                .map_err(|why| redacted(&why, message.code, address));
            }
            ContactKind::Phone if *config.sms.via.get_ref() == SmsVia::Http => {
                let sms = config.sms.clone();
                let (to, text, code) = (to.text.clone(), message.text(), message.code.to_owned());
                let code = Zeroizing::new(code);
                return bounded(limit, move || {
                    let _running = running;
                    https(&sms, (&to, &code, &text), limit)
                })
                .map_err(|why| redacted(&why, message.code, address));
            }
            ContactKind::Email => {
                let email = &config.email;
                let mut argv = vec![email.sendmail.display().to_string(), "-i".into()];
                if !email.from.is_empty() {
                    argv.extend(["-f".into(), email.from.clone()]);
                }
                argv.extend(["--".into(), to.text.clone()]);
                (argv, Some(message.email(&to.text, &email.from)))
            }
            ContactKind::Phone => {
                let text = message.text();
                let argv = (config.sms.command.get_ref().iter())
                    .map(|arg| {
                        arg.replace("{phone}", &to.text)
                            .replace("{code}", message.code)
                            .replace("{message}", &text)
                    })
                    .collect();
                (argv, None)
            }
        };
        let sent = run(&argv, input.as_deref(), limit);
        drop(running);
        sent.map_err(|why| redacted(&why, message.code, to))
    }
}

/// Runs `argv` with `input` on its standard input; succeeds when it exits with status 0
/// within `limit`.
fn run(argv: &[String], input: Option<&str>, limit: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no program is configured".into());
    };
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .current_dir("/")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A message is far smaller than a pipe's buffer: the write does not wait for the
        // program to read it.
        if let Err(error) = stdin.write_all(input.as_bytes()) {
            kill(&mut child);
            return Err(format!("{program} did not take the message: {error}"));
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limit => {
                kill(&mut child);
                return Err(format!(
                    "{program} did not finish within {} s (contacts.delivery_timeout); it was \
                     stopped",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(error) => {
                kill(&mut child);
                return Err(format!("cannot wait for {program}: {error}"));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let said = diagnostics(&mut child);
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "a signal".into(),
    };
    Err(if said.is_empty() {
        format!("{program} ended with {how}")
    } else {
        format!("{program} ended with {how}: {said}")
    })
}

/// `why` a delivery failed, for mfad's log: without the code, the address masked, on one line
/// of at most [`MAX_DIAGNOSTICS`] characters.
fn redacted(why: &str, code: &str, to: &Address) -> String {
    let mut text = why.replace(code, "[code]");
    for form in [to.text.clone(), to.text.to_lowercase()] {
        text = text.replace(&form, &to.masked());
    }
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(MAX_DIAGNOSTICS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// Runs `work` on a thread of its own and waits for it at most `limit`; past it, the thread is
/// left to end by its own time-outs.
fn bounded(
    limit: Duration,
    work: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("delivery".into())
        .spawn(move || {
            let _ = sender.send(work());
        })
        .map_err(|error| format!("cannot start a delivery: {error}"))?;
    receiver.recv_timeout(limit).unwrap_or_else(|_| {
        Err(format!(
            "no answer within {} s (contacts.delivery_timeout)",
            limit.as_secs()
        ))
    })
}

/// A file that may hold a password or a key: root's, readable by no one else; `key` names the
/// setting, for the error.
fn private_file(path: &std::path::Path, key: &str) -> Result<Zeroizing<String>, String> {
    use std::os::unix::fs::MetadataExt;
    let failed = |error: std::io::Error| format!("{key} {}: {error}", path.display());
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{key} {0} holds a secret, so it must belong to root and be readable by no one \
             else (chown root {0}; chmod 600 {0})",
            path.display()
        ));
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(failed)?;
    Ok(text)
}

/// Sends the email straight to the SMTP server `email` names, over TLS checked against its
/// authorities and host name.
fn smtp(email: &Email, to: &str, subject: &str, text: &str, limit: Duration) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
    use lettre::{SmtpTransport, Transport};
    let server = &email.server;
    let mut parameters = TlsParameters::builder(server.clone());
    if let Some(ca) = &email.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|error| format!("email.ca_file {}: {error}", ca.display()))?;
        let authority = Certificate::from_pem(&pem)
            .map_err(|error| format!("email.ca_file {}: {error}", ca.display()))?;
        parameters = parameters
            .certificate_store(CertificateStore::None)
            .add_root_certificate(authority);
    }
    let parameters = parameters
        .build()
        .map_err(|error| format!("TLS to {server}: {error}"))?;
    let (port, tls) = match email.tls {
        SmtpTls::Starttls => (587, Tls::Required(parameters)),
        SmtpTls::Tls => (465, Tls::Wrapper(parameters)),
    };
    let port = if email.port == 0 { port } else { email.port };
    let mut transport = SmtpTransport::builder_dangerous(server.as_str())
        .port(port)
        .tls(tls)
        .timeout(Some(limit));
    if let Some(file) = &email.credentials_file {
        let text = private_file(file, "email.credentials_file")?;
        let mut lines = text.lines();
        let (Some(user), Some(password)) = (lines.next(), lines.next()) else {
            return Err(format!(
                "email.credentials_file {} must hold two lines: the user name, then the \
                 password",
                file.display()
            ));
        };
        transport = transport.credentials(Credentials::new(user.into(), password.into()));
    }
    let from =
        (email.from.parse()).map_err(|error| format!("email.from {:?}: {error}", email.from))?;
    let to = to.parse().map_err(|error| format!("{to}: {error}"))?;
    let message = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_owned())
        .map_err(|error| format!("cannot write the message: {error}"))?;
    transport.build().send(&message).map(drop).map_err(|error| {
        let mut text = error.to_string();
        let mut cause = std::error::Error::source(&error);
        while let Some(inner) = cause {
            text.push_str(&format!(": {inner}"));
            cause = inner.source();
        }
        format!("the SMTP server {server}:{port}: {text}")
    })
}

/// `value` written into a URL or a form: unreserved characters as they are, the others
/// percent-encoded.
fn percent_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `value` as the content of a JSON string.
fn json_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `template` with `{phone}`, `{code}` and `{message}` replaced, each escaped by `escape`.
fn filled(
    template: &str,
    (phone, code, text): (&str, &str, &str),
    escape: fn(&str) -> String,
) -> String {
    template
        .replace("{phone}", &escape(phone))
        .replace("{code}", &escape(code))
        .replace("{message}", &escape(text))
}

/// The bytes of an answer read to know its status.
const MAX_ANSWER: usize = 4096;

/// Sends one request to the SMS gateway's API over HTTPS (its certificate checked against
/// its authorities and host name); a 2xx status means sent.
fn https(sms: &Sms, values: (&str, &str, &str), limit: Duration) -> Result<(), String> {
    use openssl::ssl::{SslConnector, SslMethod};
    use std::net::{TcpStream, ToSocketAddrs};
    let started = Instant::now();
    let url = filled(sms.url.get_ref(), values, percent_encoded);
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| "sms.url must start with https://".to_owned())?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("sms.url: {port:?} is not a port"))?,
        ),
        None => (authority, 443),
    };
    let body = if sms.method == HttpMethod::Get {
        String::new()
    } else if sms.content_type.contains("json") {
        filled(&sms.body, values, json_escaped)
    } else {
        filled(&sms.body, values, percent_encoded)
    };
    let mut headers = String::new();
    if let Some(file) = &sms.headers_file {
        for line in private_file(file, "sms.headers_file")?.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !line.contains(':') || line.chars().any(|c| c.is_control()) {
                return Err(format!(
                    "sms.headers_file {} has a line that is not \"Name: value\"",
                    file.display()
                ));
            }
            headers.push_str(line);
            headers.push_str("\r\n");
        }
    }
    let left = || {
        limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1))
    };
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|error| format!("sms.url: cannot find {host}: {error}"))?
        .next()
        .ok_or_else(|| format!("sms.url: {host} has no address"))?;
    let stream = TcpStream::connect_timeout(&address, left())
        .map_err(|error| format!("cannot connect to {host}:{port}: {error}"))?;
    let failed = |error: std::io::Error| format!("{host}:{port}: {error}");
    stream.set_read_timeout(Some(left())).map_err(failed)?;
    stream.set_write_timeout(Some(left())).map_err(failed)?;
    let mut connector =
        SslConnector::builder(SslMethod::tls_client()).map_err(|error| format!("TLS: {error}"))?;
    if let Some(ca) = &sms.ca_file {
        connector
            .set_verify_cert_store(authorities(ca)?)
            .map_err(|error| format!("TLS: {error}"))?;
    }
    let mut tls = connector
        .build()
        .connect(host, stream)
        .map_err(|error| format!("TLS to {host}:{port}: {error}"))?;
    let request = format!(
        "{} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: mfad\r\nConnection: close\r\n\
         Content-Type: {}\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        sms.method.name(),
        sms.content_type,
        body.len()
    );
    tls.write_all(request.as_bytes()).map_err(failed)?;
    let mut answer = Vec::with_capacity(MAX_ANSWER);
    let mut chunk = [0u8; 1024];
    while answer.len() < MAX_ANSWER && !answer.windows(2).any(|pair| pair == b"\r\n") {
        if started.elapsed() >= limit {
            return Err(format!(
                "{host}:{port} did not answer within {} s",
                limit.as_secs()
            ));
        }
        tls.get_ref()
            .set_read_timeout(Some(left()))
            .map_err(failed)?;
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => answer.extend_from_slice(&chunk[..read]),
            Err(error) => return Err(failed(error)),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or("");
    let code = status.split(' ').nth(1).unwrap_or("");
    if code.len() == 3 && code.starts_with('2') {
        return Ok(());
    }
    Err(format!(
        "the gateway {host}:{port} answered {:?}",
        status.chars().take(120).collect::<String>()
    ))
}

/// Only the authorities in `path` (PEM).
fn authorities(path: &std::path::Path) -> Result<openssl::x509::store::X509Store, String> {
    let failed = |error: String| format!("sms.ca_file {}: {error}", path.display());
    let pem = std::fs::read(path).map_err(|error| failed(error.to_string()))?;
    let certificates =
        openssl::x509::X509::stack_from_pem(&pem).map_err(|error| failed(error.to_string()))?;
    let mut store =
        openssl::x509::store::X509StoreBuilder::new().map_err(|error| failed(error.to_string()))?;
    for certificate in certificates {
        store
            .add_cert(certificate)
            .map_err(|error| failed(error.to_string()))?;
    }
    Ok(store.build())
}

/// Stops the program and everything it started.
fn kill(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What a program that failed wrote on its standard error, on one line: only what is there
/// already (a program it started may hold the pipe open).
fn diagnostics(child: &mut Child) -> String {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let Some(mut stderr) = child.stderr.take() else {
        return String::new();
    };
    if fcntl(&stderr, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_err() {
        return String::new();
    }
    // Whole lines (the caller takes out the code and the address, then shortens them).
    let mut bytes = vec![0u8; 4096];
    let read = stderr.read(&mut bytes).unwrap_or(0);
    let text = String::from_utf8_lossy(&bytes[..read]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> String {
        let path = dir.join("deliver");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn configured(command: Vec<String>, timeout: u32) -> Config {
        let command = command
            .iter()
            .map(|arg| format!("{arg:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Config::parse(&format!(
            "[contacts]\nkinds = [\"phone\"]\ndelivery_timeout = {timeout}\n\
             [sms]\ncommand = [{command}]\n"
        ))
        .unwrap()
    }

    fn phone() -> Address {
        Address::parse(ContactKind::Phone, "+447700900123").unwrap()
    }

    const MESSAGE: Message<'static> = Message {
        code: "493817",
        issuer: "pam-mfa on web1",
        minutes: 10,
    };

    #[test]
    fn the_command_gets_the_number_and_the_text_without_a_shell() {
        let dir = crate::store::sqlite::tests::temp_dir("delivery");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let program = script(
            &dir,
            &format!(
                "printf '%s|%s|%s|%s' \"$1\" \"$2\" \"$PATH\" \"$HOME\" > {}",
                out.display()
            ),
        );
        let config = configured(
            vec![program, "{phone}".into(), "{message}; $(id)".into()],
            4,
        );
        Deliveries::default()
            .send(&config, &phone(), &MESSAGE)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!(
                "+447700900123|Your code for pam-mfa on web1: 493817 (good for 10 minutes, \
                 once).; $(id)|{PATH}|"
            )
        );
    }

    #[test]
    fn a_failed_or_slow_command_sends_nothing_and_says_why_without_the_code() {
        let dir = crate::store::sqlite::tests::temp_dir("delivery");
        std::fs::create_dir_all(&dir).unwrap();
        let program = script(&dir, "echo \"gateway refused code $2 for $1\" >&2; exit 3");
        let config = configured(vec![program, "{phone}".into(), "{code}".into()], 4);
        let error = Deliveries::default()
            .send(&config, &phone(), &MESSAGE)
            .unwrap_err();
        assert!(
            error.contains("exit status 3: gateway refused code [code] for +44 ••• ••• 123"),
            "{error}"
        );
        assert!(!error.contains("493817"), "{error}");
        assert!(!error.contains("7700900123"), "{error}");

        let program = script(&dir, "sleep 30 & sleep 30");
        let config = configured(vec![program], 1);
        let error = Deliveries::default()
            .send(&config, &phone(), &MESSAGE)
            .unwrap_err();
        assert!(error.contains("did not finish within 1 s"), "{error}");

        let config = configured(vec!["/nonexistent/send-sms".into()], 1);
        let error = Deliveries::default()
            .send(&config, &phone(), &MESSAGE)
            .unwrap_err();
        assert!(
            error.contains("cannot run /nonexistent/send-sms"),
            "{error}"
        );
    }

    #[test]
    fn an_email_names_the_recipient_and_the_code_and_nothing_else_of_the_user() {
        let mail = MESSAGE.email("alice@example.org", "mfa@example.org");
        assert!(
            mail.starts_with("From: mfa@example.org\nTo: alice@example.org\n"),
            "{mail}"
        );
        assert!(
            mail.contains("\n\nYour code for pam-mfa on web1: 493817 (good"),
            "{mail}"
        );
        assert!(!MESSAGE.email("alice@example.org", "").contains("From:"));
    }
}
