//! Programs on a pseudo-terminal, driven as a person at a terminal would drive them: `ssh`,
//! `su`, `sudo` and `login` read their answers from their controlling terminal, never from a
//! pipe.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HANG_LIMIT;

/// What a terminal showed, and how its program ended.
pub struct Session {
    /// Everything the terminal showed: prompts, messages, the program's output.
    pub screen: String,
    /// The program's exit status (ssh: the remote command's, or 255 when ssh itself failed).
    pub status: i32,
}

/// A program running on a pseudo-terminal of its own (its controlling terminal); killed when
/// dropped unfinished.
pub struct Terminal {
    child: Child,
    master: fs::File,
    screen: Vec<u8>,
    /// How much of `screen` has been looked at by `expect` or answered by `converse`.
    seen: usize,
    what: String,
}

impl Terminal {
    /// Starts `command` with a new pseudo-terminal as its standard input, output, error and
    /// controlling terminal.
    pub fn spawn(command: &mut Command) -> Terminal {
        let what = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let (master, slave) = open_pty();
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        command
            .stdin(io(&slave))
            .stdout(io(&slave))
            .stderr(io(&slave));
        // SAFETY: between fork and exec the child only calls setsid and ioctl, both
        // async-signal-safe, to make the pseudo-terminal its controlling terminal.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {what}: {error}"));
        drop(slave);
        Terminal {
            child,
            master: fs::File::from(master),
            screen: Vec::new(),
            seen: 0,
            what,
        }
    }

    /// Reads what the program shows within `wait`. False once the program has closed the
    /// terminal (it ended).
    fn pump(&mut self, wait: Duration) -> bool {
        if !readable(&self.master, wait) {
            return true;
        }
        let mut chunk = [0u8; 4096];
        match self.master.read(&mut chunk) {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => true,
            Ok(0) | Err(_) => false,
            Ok(read) => {
                // Line ends arrive as "\r\n"; kept as "\n" only.
                self.screen
                    .extend(chunk[..read].iter().filter(|&&byte| byte != b'\r'));
                true
            }
        }
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "{} {why}; the terminal showed:\n{}",
            self.what,
            text(&self.screen)
        )
    }

    /// Waits until the terminal shows `wanted` after what was already expected, and returns
    /// the text up to and including it.
    pub fn expect(&mut self, wanted: &str) -> String {
        assert!(!wanted.is_empty(), "expect needs a text to wait for");
        let start = Instant::now();
        loop {
            let fresh = &self.screen[self.seen..];
            if let Some(at) = fresh
                .windows(wanted.len())
                .position(|window| window == wanted.as_bytes())
            {
                let shown = text(&fresh[..at + wanted.len()]);
                self.seen += at + wanted.len();
                return shown;
            }
            if start.elapsed() > HANG_LIMIT {
                self.fail(&format!("did not show {wanted:?}"));
            }
            if !self.pump(Duration::from_millis(50)) {
                self.fail(&format!("ended without showing {wanted:?}"));
            }
        }
    }

    /// Types `line` and Enter.
    pub fn send(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Answers each question the program asks (text ending in ": " that stays on the screen)
    /// with what `respond` makes of the text shown since the last answer, the question last,
    /// until the program ends; `None` gives up (the program is killed).
    pub fn converse(mut self, respond: &mut dyn FnMut(&str) -> Option<String>) -> Session {
        let start = Instant::now();
        loop {
            if start.elapsed() > HANG_LIMIT {
                self.fail("hung");
            }
            if !readable(&self.master, Duration::from_millis(100)) {
                let fresh = text(&self.screen[self.seen..]);
                if is_prompt(&fresh) {
                    self.seen = self.screen.len();
                    match respond(&fresh) {
                        Some(answer) => self.send(&answer),
                        None => {
                            let _ = self.child.kill();
                        }
                    }
                }
                if let Ok(Some(_)) = self.child.try_wait() {
                    return self.finish();
                }
                continue;
            }
            if !self.pump(Duration::ZERO) {
                return self.finish();
            }
        }
    }

    /// Waits for the program to end, and returns everything it showed.
    pub fn finish(mut self) -> Session {
        let start = Instant::now();
        while self.pump(Duration::from_millis(50)) {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Whatever is left is read at once; the terminal may stay open in a
                // grandchild, so stop at the first quiet moment.
                while readable(&self.master, Duration::from_millis(50)) && self.pump(Duration::ZERO)
                {
                }
                break;
            }
            if start.elapsed() > HANG_LIMIT {
                let _ = self.child.kill();
                self.fail("did not end");
            }
        }
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > HANG_LIMIT {
                let _ = self.child.kill();
                self.fail("did not end");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Session {
            screen: text(&self.screen),
            status: status.code().unwrap_or(-1),
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether the terminal shows a question waiting for its answer.
fn is_prompt(fresh: &str) -> bool {
    let last = fresh.rsplit('\n').next().unwrap_or("");
    last.trim_end().ends_with(':') && last.ends_with(' ')
}

fn readable(file: &fs::File, wait: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the length of the call.
    let ready = unsafe { libc::poll(&mut poll, 1, wait.as_millis() as libc::c_int) };
    ready > 0
}

fn open_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the places given; the name, termios and
    // window size pointers may be null.
    let status = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(status, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
    let pair = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // Not inherited by the programs other tests start meanwhile (the child gets copies).
    for fd in [&pair.0, &pair.1] {
        // SAFETY: fcntl on a descriptor this function owns, with an integer argument.
        let set = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(set, 0, "fcntl: {}", std::io::Error::last_os_error());
    }
    pair
}
