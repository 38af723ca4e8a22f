//! A PAM application: starts a transaction with `pam_start_confdir`, so a stack can be loaded
//! from any directory, and answers the conversation through a Rust closure. Used by `pamtest`
//! and by the benchmark driver.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

pub const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;

/// The style of a conversation message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    PromptHidden,
    PromptVisible,
    Error,
    Info,
    Other(c_int),
}

impl Style {
    fn from_raw(style: c_int) -> Style {
        match style {
            1 => Style::PromptHidden,
            2 => Style::PromptVisible,
            3 => Style::Error,
            4 => Style::Info,
            other => Style::Other(other),
        }
    }

    pub fn is_prompt(self) -> bool {
        matches!(self, Style::PromptHidden | Style::PromptVisible)
    }

    pub fn name(self) -> &'static str {
        match self {
            Style::PromptHidden => "PROMPT_ECHO_OFF",
            Style::PromptVisible => "PROMPT_ECHO_ON",
            Style::Error => "ERROR_MSG",
            Style::Info => "TEXT_INFO",
            Style::Other(_) => "UNKNOWN",
        }
    }
}

/// Answers one message: the reply for a prompt (`None` fails the conversation), ignored for
/// other messages.
pub type Responder<'a> = dyn FnMut(Style, &str) -> Option<Vec<u8>> + 'a;

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
    fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

/// The `PAM_*` name of a result code.
pub fn result_name(code: c_int) -> String {
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

/// Frees the first `filled` replies and the array.
unsafe fn free_replies(replies: *mut PamResponse, filled: usize) {
    for index in 0..filled {
        // SAFETY: entries below `filled` hold a malloc'd string or null.
        unsafe { libc::free((*replies.add(index)).resp.cast()) };
    }
    // SAFETY: allocated by calloc in `converse`.
    unsafe { libc::free(replies.cast()) };
}

unsafe extern "C" fn converse(
    count: c_int,
    messages: *mut *const PamMessage,
    responses: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let count = usize::try_from(count).unwrap_or(0);
    // SAFETY: `appdata` is the `&mut &mut Responder` that `Transaction` passed to
    // pam_start_confdir, alive for the whole transaction; libpam calls back on our thread.
    let responder = unsafe { &mut **appdata.cast::<&mut Responder<'_>>() };
    // SAFETY: calloc of `count` responses, owned by libpam after we return.
    let replies =
        unsafe { libc::calloc(count.max(1), size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for index in 0..count {
        // SAFETY: Linux-PAM passes an array of `count` message pointers.
        let message = unsafe { &**messages.add(index) };
        // SAFETY: each message's text is a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(message.msg) }.to_string_lossy();
        let style = Style::from_raw(message.msg_style);
        // A panic must not unwind into libpam: it fails the conversation instead.
        let reply =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| responder(style, &text)));
        let Ok(reply) = reply else {
            // SAFETY: frees what we allocated above; earlier replies are freed with it.
            unsafe { free_replies(replies, index) };
            return PAM_CONV_ERR;
        };
        if style.is_prompt() {
            let Some(reply) = reply else {
                // SAFETY: frees what we allocated above; earlier replies are freed with it.
                unsafe { free_replies(replies, index) };
                return PAM_CONV_ERR;
            };
            let mut reply = reply;
            // SAFETY: `replies` has `count` entries.
            unsafe { (*replies.add(index)).resp = malloc_reply(&reply) };
            // The application's own copy goes: what stays is libpam's and the modules'.
            zeroize::Zeroize::zeroize(&mut reply);
        }
    }
    // SAFETY: `responses` is libpam's out-pointer.
    unsafe { *responses = replies };
    PAM_SUCCESS
}

/// Runs `pam_authenticate` for `user` with the stack `service` from `confdir`, answering the
/// conversation with `responder`. With `authenticate` false, only `pam_start_confdir` and
/// `pam_end` run (the cost of loading the stack).
pub fn login(
    confdir: &CStr,
    service: &CStr,
    user: &CStr,
    responder: &mut Responder<'_>,
    authenticate: bool,
) -> c_int {
    login_with_flags(confdir, service, user, responder, authenticate, 0)
}

/// `PAM_SILENT`: the application asks for no informational messages (sudo's default).
pub const PAM_SILENT: c_int = 0x8000;

/// `PAM_TTY`, as login and sudo set it.
pub const PAM_TTY: c_int = 3;
/// `PAM_RHOST`, as sshd sets it.
pub const PAM_RHOST: c_int = 4;

/// [`login`] with `flags` (such as [`PAM_SILENT`]) for `pam_authenticate`.
pub fn login_with_flags(
    confdir: &CStr,
    service: &CStr,
    user: &CStr,
    responder: &mut Responder<'_>,
    authenticate: bool,
    flags: c_int,
) -> c_int {
    login_with_items(confdir, service, user, responder, authenticate, flags, &[])
}

/// [`login_with_flags`], with PAM items (such as [`PAM_RHOST`]) set before authenticating, as
/// the application would.
pub fn login_with_items(
    confdir: &CStr,
    service: &CStr,
    user: &CStr,
    responder: &mut Responder<'_>,
    authenticate: bool,
    flags: c_int,
    items: &[(c_int, &CStr)],
) -> c_int {
    let mut responder: &mut Responder<'_> = responder;
    let conv = PamConv {
        conv: converse,
        appdata_ptr: (&mut responder as *mut &mut Responder<'_>).cast(),
    };
    let mut pamh: *mut c_void = ptr::null_mut();
    // SAFETY: all strings are NUL-terminated and outlive the transaction; `conv` and the
    // responder it points to live until pam_end below.
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
    for (item, value) in items {
        // SAFETY: `pamh` is the handle pam_start_confdir returned; libpam copies the string.
        let status = unsafe { pam_set_item(pamh, *item, value.as_ptr().cast()) };
        if status != PAM_SUCCESS {
            // SAFETY: ends the transaction started above, once.
            unsafe { pam_end(pamh, status) };
            return status;
        }
    }
    let result = if authenticate {
        // SAFETY: `pamh` is the handle pam_start_confdir returned.
        unsafe { pam_authenticate(pamh, flags) }
    } else {
        PAM_SUCCESS
    };
    // SAFETY: ends the transaction started above, once.
    unsafe { pam_end(pamh, result) };
    result
}
