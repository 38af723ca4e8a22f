//! `pamtest`: drives a PAM service through the real libpam, as a login program would.
//!
//! Loads the stack from a directory with `pam_start_confdir`, runs `pam_authenticate`, answers
//! each prompt with the next `--answer`, and prints the conversation and the result:
//!
//! ```text
//! PROMPT_ECHO_OFF Verification code:
//! ERROR_MSG Wrong code. Try again.
//! RESULT PAM_SUCCESS
//! ```
//!
//! Options: `--confdir DIR --service NAME --user USER [--answer TEXT]... [--interactive]
//! [--as-uid UID] [--repeat N] [--resources] [--silent] [--answers-from-stdin] [--hold]`.
//! `--answers-from-stdin` reads a line from stdin for each prompt once the `--answer`s are used
//! up (a test that answers what it was shown). `--interactive` asks the person at the terminal
//! instead, as a login prompt does (without echo for hidden prompts). `--as-uid` drops to that
//! uid (and gid) before `pam_start`. `--resources` prints the open descriptors and threads
//! before the first and after the last login (with the connection to syslog already open, as
//! in a login program). An answer may embed a NUL as `\0`; the
//! application's reply buffer then holds it. `--silent` passes `PAM_SILENT`, as sudo does.
//! `--hold` prints `HELD` after the last login (after `pam_end`) and waits until stdin closes
//! before it exits, so that a test can read what the logins left in its memory; answers read
//! from stdin are read without a buffer and wiped once handed to libpam, so that the only
//! copies of them left are those libpam and the modules left.

use std::collections::VecDeque;
use std::ffi::CString;
use std::io::Write;

use pam_mfa_tests::pam::{self, Style};

/// Reads one line from the terminal, with echo off when `hidden`.
fn read_reply(prompt: &str, hidden: bool) -> Option<Vec<u8>> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    // SAFETY: termios is plain data; tcgetattr fills it or fails, and we restore what we read.
    let saved = unsafe {
        let mut termios: libc::termios = std::mem::zeroed();
        (hidden && libc::tcgetattr(0, &mut termios) == 0).then_some(termios)
    };
    if let Some(mut quiet) = saved {
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: sets the attributes of our own stdin.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if let Some(termios) = saved {
        // SAFETY: restores the attributes read above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &termios) };
        println!();
    }
    match read {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec()),
    }
}

/// One line from stdin, without its `\n`, read a byte at a time (no buffer keeps a copy);
/// `None` at the end of the input.
fn read_stdin_line() -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let mut line = zeroize::Zeroizing::new(Vec::with_capacity(256));
    loop {
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into a local.
        let read = unsafe { libc::read(0, (&raw mut byte).cast(), 1) };
        match read {
            1 if byte == b'\n' => return Some(line),
            1 if line.len() < line.capacity() => line.push(byte),
            // Longer than any answer: cut (the buffer never grows, leaving no copy behind).
            1 => {}
            0 if line.is_empty() => return None,
            0 => return Some(line),
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.count())
        .unwrap_or(0)
}

fn drop_to(uid: u32) {
    let gid = uid;
    // SAFETY: plain syscalls; each result is checked.
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(gid) == 0
            && libc::setuid(uid) == 0
    };
    if !ok {
        eprintln!("pamtest: cannot become uid {uid} (run as root)");
        std::process::exit(2);
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "pamtest: {problem}\nusage: pamtest --confdir DIR --service NAME --user USER \
         [--answer TEXT]... [--interactive] [--as-uid UID] [--repeat N] [--resources] [--silent] \
         [--answers-from-stdin] [--hold]"
    );
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut confdir, mut service, mut user) = (None, None, None);
    let mut answers = Vec::new();
    let (mut repeat, mut resources, mut as_uid, mut interactive) = (1usize, false, None, false);
    let (mut from_stdin, mut hold) = (false, false);
    let mut items: Vec<(std::ffi::c_int, CString)> = Vec::new();
    let mut flags = 0;
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--confdir" => confdir = Some(value()),
            "--service" => service = Some(value()),
            "--user" => user = Some(value()),
            "--answer" => answers.push(value().replace("\\0", "\0").into_bytes()),
            "--as-uid" => as_uid = Some(value().parse().unwrap_or_else(|_| usage("bad uid"))),
            "--repeat" => repeat = value().parse().unwrap_or_else(|_| usage("bad count")),
            "--resources" => resources = true,
            "--interactive" => interactive = true,
            "--silent" => flags |= pam::PAM_SILENT,
            "--answers-from-stdin" => from_stdin = true,
            "--hold" => hold = true,
            "--rhost" => items.push((pam::PAM_RHOST, CString::new(value()).unwrap())),
            "--tty" => items.push((pam::PAM_TTY, CString::new(value()).unwrap())),
            other => usage(&format!("unknown option {other}")),
        }
    }
    let cstring = |name: &str, value: Option<String>| {
        CString::new(value.unwrap_or_else(|| usage(&format!("{name} is required"))))
            .unwrap_or_else(|_| usage(&format!("{name} contains a NUL")))
    };
    let confdir = cstring("--confdir", confdir);
    let service = cstring("--service", service);
    let user = cstring("--user", user);
    if let Some(uid) = as_uid {
        drop_to(uid);
    }
    if resources {
        // Where a syslog daemon listens, the first line any module logs opens a connection to
        // it that the process keeps, as every login program's does: open it before counting,
        // so that only what the logins leave open is counted.
        // SAFETY: the identity is a static C string that lives as long as the process;
        // openlog has no other requirement.
        unsafe { libc::openlog(c"pamtest".as_ptr(), libc::LOG_NDELAY, libc::LOG_AUTHPRIV) };
    }
    let before = (
        count_entries("/proc/self/fd"),
        count_entries("/proc/self/task"),
    );
    for _ in 0..repeat {
        let mut scripted: VecDeque<Vec<u8>> = answers.iter().cloned().collect();
        let mut respond = |style: Style, text: &str| {
            if interactive {
                if style.is_prompt() {
                    return read_reply(text, style == Style::PromptHidden);
                }
                println!("{text}");
                return None;
            }
            println!("{} {text}", style.name());
            if !style.is_prompt() {
                return None;
            }
            let answer = scripted.pop_front().or_else(|| {
                // Moved out of the wiping buffer, not copied: libpam's caller wipes it.
                read_stdin_line()
                    .filter(|_| from_stdin)
                    .map(|mut line| std::mem::take(&mut *line))
            });
            if answer.is_none() {
                println!("NO_ANSWER_LEFT");
            }
            answer
        };
        let items: Vec<_> = items
            .iter()
            .map(|(item, value)| (*item, value.as_c_str()))
            .collect();
        let result =
            pam::login_with_items(&confdir, &service, &user, &mut respond, true, flags, &items);
        if interactive {
            let meaning = if result == 0 {
                "logged in"
            } else {
                "login refused"
            };
            println!("Result: {} ({meaning})", pam::result_name(result));
        } else {
            println!("RESULT {}", pam::result_name(result));
        }
    }
    if hold {
        println!("HELD");
        let _ = std::io::stdout().flush();
        while read_stdin_line().is_some() {}
    }
    if resources {
        let after = (
            count_entries("/proc/self/fd"),
            count_entries("/proc/self/task"),
        );
        println!("FDS {} {}", before.0, after.0);
        println!("THREADS {} {}", before.1, after.1);
        if after.0 != before.0 {
            for entry in std::fs::read_dir("/proc/self/fd")
                .into_iter()
                .flatten()
                .flatten()
            {
                let target = std::fs::read_link(entry.path()).unwrap_or_default();
                println!(
                    "FD {} {}",
                    entry.file_name().to_string_lossy(),
                    target.display()
                );
            }
        }
    }
}
