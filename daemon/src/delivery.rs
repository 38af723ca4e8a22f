//! Codes sent to contacts: by email through the local sendmail program, by SMS through a
//! command of the administrator's. Each delivery is one program run without a shell, with an
//! empty environment but PATH, in a process group of its own, bounded by
//! `contacts.delivery_timeout` (past it the group is killed and nothing counts as sent).
//! A delivery waits only for itself, on the thread of the call that asked for it; at most
//! [`MAX_AT_ONCE`] run at once, so that no set of users can make mfad start programs without
//! end.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pam_mfa_config::{Config, ContactKind};

use crate::codes::contact::Address;

/// Deliveries running at once; another one fails at once.
pub const MAX_AT_ONCE: usize = 8;

/// What a program's diagnostics may add to mfad's log.
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

    /// The email: headers the mail system completes (Date, Message-ID), and the text.
    fn email(&self, to: &str, from: &str) -> String {
        let mut mail = String::new();
        if !from.is_empty() {
            mail.push_str(&format!("From: {from}\n"));
        }
        mail.push_str(&format!(
            "To: {to}\nSubject: Your code for {}\nMIME-Version: 1.0\n\
             Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\
             Auto-Submitted: auto-generated\n\n{}\n\nIf you did not ask for a code, someone \
             may know your password: tell your administrator.\n",
            self.issuer.replace(['\r', '\n'], " "),
            self.text()
        ));
        mail
    }
}

/// The deliveries under way.
#[derive(Default)]
pub struct Deliveries {
    running: AtomicUsize,
}

/// Counts a delivery while it runs.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
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
        let _running = Running(&self.running);
        let limit = Duration::from_secs(config.contacts.delivery_timeout.get().into());
        let (argv, input) = match to.kind {
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
        run(&argv, input.as_deref(), limit).map_err(|why| why.replace(message.code, "[code]"))
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
    let mut bytes = vec![0u8; MAX_DIAGNOSTICS];
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
        let program = script(&dir, "echo \"gateway refused code $2\" >&2; exit 3");
        let config = configured(vec![program, "{phone}".into(), "{code}".into()], 4);
        let error = Deliveries::default()
            .send(&config, &phone(), &MESSAGE)
            .unwrap_err();
        assert!(
            error.contains("exit status 3: gateway refused code [code]"),
            "{error}"
        );
        assert!(!error.contains("493817"), "{error}");

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
