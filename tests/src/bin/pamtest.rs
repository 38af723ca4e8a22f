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
//! [--as-uid UID] [--repeat N] [--resources]`. `--interactive` asks the person at the terminal
//! instead, as a login prompt does (without echo for hidden prompts). `--as-uid` drops to that uid (and gid) before `pam_start`.
//! `--resources` prints the open descriptors and threads before the first and after the last
//! login. An answer may embed a NUL as `\0`; the application's reply buffer then holds it.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io::Write;
use std::ptr;

const PAM_SUCCESS: c_int = 0;
const PAM_CONV_ERR: c_int = 19;
const PAM_BUF_ERR: c_int = 5;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: unsafe extern "C" fn(
        c_int,
        *mut *const PamMessage,
        *mut *mut PamResponse,
        *mut c_void,
    ) -> c_int,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

fn result_name(code: c_int) -> String {
    const NAMES: [&str; 32] = [
        "PAM_SUCCESS",
        "PAM_OPEN_ERR",
        "PAM_SYMBOL_ERR",
        "PAM_SERVICE_ERR",
        "PAM_SYSTEM_ERR",
        "PAM_BUF_ERR",
        "PAM_PERM_DENIED",
        "PAM_AUTH_ERR",
        "PAM_CRED_INSUFFICIENT",
        "PAM_AUTHINFO_UNAVAIL",
        "PAM_USER_UNKNOWN",
        "PAM_MAXTRIES",
        "PAM_NEW_AUTHTOK_REQD",
        "PAM_ACCT_EXPIRED",
        "PAM_SESSION_ERR",
        "PAM_CRED_UNAVAIL",
        "PAM_CRED_EXPIRED",
        "PAM_CRED_ERR",
        "PAM_NO_MODULE_DATA",
        "PAM_CONV_ERR",
        "PAM_AUTHTOK_ERR",
        "PAM_AUTHTOK_RECOVERY_ERR",
        "PAM_AUTHTOK_LOCK_BUSY",
        "PAM_AUTHTOK_DISABLE_AGING",
        "PAM_TRY_AGAIN",
        "PAM_IGNORE",
        "PAM_ABORT",
        "PAM_AUTHTOK_EXPIRED",
        "PAM_MODULE_UNKNOWN",
        "PAM_BAD_ITEM",
        "PAM_CONV_AGAIN",
        "PAM_INCOMPLETE",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|index| NAMES.get(index))
        .map_or_else(|| format!("PAM_UNKNOWN_{code}"), |name| (*name).to_owned())
}

struct Answers {
    scripted: VecDeque<Vec<u8>>,
    interactive: bool,
}

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

/// Copies `bytes` into a malloc'd NUL-terminated buffer, as libpam expects replies.
fn malloc_reply(bytes: &[u8]) -> *mut c_char {
    // SAFETY: plain allocation; checked for null below.
    let buffer = unsafe { libc::malloc(bytes.len() + 1) }.cast::<u8>();
    if buffer.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `buffer` has room for the bytes and the terminator.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), buffer, bytes.len());
        *buffer.add(bytes.len()) = 0;
    }
    buffer.cast()
}

unsafe extern "C" fn converse(
    count: c_int,
    messages: *mut *const PamMessage,
    responses: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let count = usize::try_from(count).unwrap_or(0);
    // SAFETY: `appdata` is the `Answers` that `login` passed to pam_start_confdir, alive for
    // the whole transaction, and libpam calls us from the same thread.
    let answers = unsafe { &mut *appdata.cast::<Answers>() };
    // SAFETY: calloc of `count` responses, owned by libpam after we return.
    let replies =
        unsafe { libc::calloc(count.max(1), size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    let mut stdout = std::io::stdout().lock();
    for index in 0..count {
        // SAFETY: Linux-PAM passes an array of `count` message pointers.
        let message = unsafe { &**messages.add(index) };
        // SAFETY: each message's text is a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(message.msg) }.to_string_lossy();
        let style = match message.msg_style {
            1 => "PROMPT_ECHO_OFF",
            2 => "PROMPT_ECHO_ON",
            3 => "ERROR_MSG",
            4 => "TEXT_INFO",
            _ => "UNKNOWN",
        };
        if answers.interactive {
            match message.msg_style {
                1 | 2 => {}
                _ => {
                    let _ = writeln!(stdout, "{text}");
                }
            }
        } else {
            let _ = writeln!(stdout, "{style} {text}");
        }
        if matches!(message.msg_style, 1 | 2) {
            let answer = if answers.interactive {
                drop(stdout);
                let reply = read_reply(&text, message.msg_style == 1);
                stdout = std::io::stdout().lock();
                reply
            } else {
                answers.scripted.pop_front()
            };
            let Some(answer) = answer else {
                let _ = writeln!(stdout, "NO_ANSWER_LEFT");
                // SAFETY: frees what we allocated above; earlier replies are freed with it.
                unsafe { free_replies(replies, index) };
                return PAM_CONV_ERR;
            };
            // SAFETY: `replies` has `count` entries.
            unsafe { (*replies.add(index)).resp = malloc_reply(&answer) };
        }
    }
    let _ = stdout.flush();
    // SAFETY: `responses` is libpam's out-pointer.
    unsafe { *responses = replies };
    PAM_SUCCESS
}

/// Frees the first `filled` replies and the array.
unsafe fn free_replies(replies: *mut PamResponse, filled: usize) {
    for index in 0..filled {
        // SAFETY: entries below `filled` hold a malloc'd string or null.
        unsafe { libc::free((*replies.add(index)).resp.cast()) };
    }
    // SAFETY: allocated by calloc in `converse`.
    unsafe { libc::free(replies.cast()) };
}

fn login(
    confdir: &CStr,
    service: &CStr,
    user: &CStr,
    answers: &[Vec<u8>],
    interactive: bool,
) -> c_int {
    let mut answers = Answers {
        scripted: answers.iter().cloned().collect(),
        interactive,
    };
    let conv = PamConv {
        conv: converse,
        appdata_ptr: (&mut answers as *mut Answers).cast(),
    };
    let mut pamh: *mut c_void = ptr::null_mut();
    // SAFETY: all strings are NUL-terminated and outlive the transaction; `conv` and `answers`
    // live until pam_end below.
    let status = unsafe {
        pam_start_confdir(
            service.as_ptr(),
            user.as_ptr(),
            &conv,
            confdir.as_ptr(),
            &mut pamh,
        )
    };
    if status != PAM_SUCCESS {
        return status;
    }
    // SAFETY: `pamh` is the handle pam_start_confdir returned.
    let result = unsafe { pam_authenticate(pamh, 0) };
    // SAFETY: ends the transaction started above, once.
    unsafe { pam_end(pamh, result) };
    result
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
        libc::setgroups(0, ptr::null()) == 0 && libc::setgid(gid) == 0 && libc::setuid(uid) == 0
    };
    if !ok {
        eprintln!("pamtest: cannot become uid {uid} (run as root)");
        std::process::exit(2);
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "pamtest: {problem}\nusage: pamtest --confdir DIR --service NAME --user USER \
         [--answer TEXT]... [--interactive] [--as-uid UID] [--repeat N] [--resources]"
    );
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut confdir, mut service, mut user) = (None, None, None);
    let mut answers = Vec::new();
    let (mut repeat, mut resources, mut as_uid, mut interactive) = (1usize, false, None, false);
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
    let before = (
        count_entries("/proc/self/fd"),
        count_entries("/proc/self/task"),
    );
    for _ in 0..repeat {
        let result = login(&confdir, &service, &user, &answers, interactive);
        println!("RESULT {}", result_name(result));
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
