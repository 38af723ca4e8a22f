//! Every call into libpam that pamsm does not wrap safely: the items pamsm lacks and the
//! conversation, whose replies are wiped and freed here (pamsm's `conv()` leaks them).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;

use pam_mfa_login::Notice;
use pamsm::Pam;
use zeroize::{Zeroize, Zeroizing};

use crate::relay::{Conversation, ConversationFailed};

const PAM_SUCCESS: c_int = 0;
const PAM_TTY: c_int = 3;
const PAM_CONV: c_int = 5;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;

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

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
}

/// The raw `pam_handle_t *` inside pamsm's handle.
fn raw_handle(pamh: &Pam) -> *const c_void {
    // SAFETY: `Pam` is `#[repr(transparent)]` over pamsm's `PamHandle`, which is
    // `*const c_void`, so reading the handle through a pointer of that type is exact.
    unsafe { *(pamh as *const Pam).cast::<*const c_void>() }
}

/// The `PAM_TTY` item, if the application set one.
pub fn tty(pamh: &Pam) -> Option<String> {
    let mut item: *const c_void = ptr::null();
    // SAFETY: `raw_handle` is the live handle libpam passed to this module call, and `item` is
    // a valid place for libpam to write one pointer.
    let status = unsafe { pam_get_item(raw_handle(pamh), PAM_TTY, &mut item) };
    if status != PAM_SUCCESS || item.is_null() {
        return None;
    }
    // SAFETY: libpam stores PAM_TTY as a NUL-terminated string that lives as long as the handle,
    // which outlives this call; we copy it out at once.
    let tty = unsafe { CStr::from_ptr(item.cast::<c_char>()) };
    Some(tty.to_string_lossy().into_owned())
}

/// The uid of the process at the other end of the connected Unix socket `fd`, as the kernel
/// recorded it when the connection was made (SO_PEERCRED).
pub fn peer_uid(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut length = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `fd` is a live descriptor for the duration of the call; `credentials` and
    // `length` are valid places of the size passed, which the kernel fills in.
    let status = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut length,
        )
    };
    if status != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(credentials.uid)
}

/// The effective uid of this process (the one the kernel reports to the daemon).
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Connects to the Unix stream socket at `path`, waiting at most until `deadline` when its
/// listen queue is full. The wait is the kernel's own (a blocking connect bounded by
/// SO_SNDTIMEO), in line with every other connection waiting for the same server, so a flood
/// of connections cannot keep taking the places that free up ahead of this one.
pub fn connect(
    path: &std::path::Path,
    deadline: std::time::Instant,
) -> std::io::Result<std::os::unix::net::UnixStream> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: a zeroed sockaddr_un is a valid value (family set below, path NUL-terminated by
    // the zeroes after the bytes copied in).
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= address.sun_path.len() || bytes.contains(&0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the socket path is too long or contains NUL",
        ));
    }
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, from) in address.sun_path.iter_mut().zip(bytes) {
        *to = *from as c_char;
    }
    // SAFETY: socket(2) with constant arguments; it returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let stream = std::os::unix::net::UnixStream::from(socket);
    loop {
        // A blocking connect to a Unix socket whose queue is full waits up to SO_SNDTIMEO.
        let left = pam_mfa_login::wire::time_left(deadline).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the socket accepts no connection (its queue stayed full)",
            )
        })?;
        stream.set_write_timeout(Some(left))?;
        // SAFETY: `stream` holds a live descriptor; `address` is a valid sockaddr_un of the
        // size passed.
        let status = unsafe {
            libc::connect(
                stream.as_raw_fd(),
                (&address as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if status == 0 {
            return Ok(stream);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            // Interrupted, or the wait ran out: the deadline decides.
            Some(libc::EINTR | libc::EAGAIN) => continue,
            _ => return Err(error),
        }
    }
}

/// The application's conversation function.
pub struct PamConversation {
    conv: *const PamConv,
}

impl PamConversation {
    pub fn new(pamh: &Pam) -> Option<Self> {
        let mut item: *const c_void = ptr::null();
        // SAFETY: as in `tty`: a live handle and a valid out-pointer.
        let status = unsafe { pam_get_item(raw_handle(pamh), PAM_CONV, &mut item) };
        if status != PAM_SUCCESS || item.is_null() {
            return None;
        }
        Some(PamConversation {
            conv: item.cast::<PamConv>(),
        })
    }

    /// Sends one message; returns the reply for prompts. Replies are copied into wiped memory,
    /// and the application's buffers are wiped and freed before this returns.
    fn converse(
        &mut self,
        style: c_int,
        text: &str,
    ) -> Result<Zeroizing<String>, ConversationFailed> {
        // Text from the daemon cannot hold a NUL in a C string: drop such characters.
        let text = CString::new(text.replace('\0', "")).map_err(|_| ConversationFailed)?;
        let message = PamMessage {
            msg_style: style,
            msg: text.as_ptr(),
        };
        let mut messages = [&message as *const PamMessage];
        let mut responses: *mut PamResponse = ptr::null_mut();
        // SAFETY: `self.conv` came from PAM_CONV of the live handle; libpam keeps the struct
        // alive for the whole module call.
        let conv = unsafe { &*self.conv };
        let function = conv.conv.ok_or(ConversationFailed)?;
        // SAFETY: one message, valid for the call; `responses` is a valid out-pointer. The
        // function follows the PAM conversation contract (Linux-PAM's pam_conv(3)).
        let status =
            unsafe { function(1, messages.as_mut_ptr(), &mut responses, conv.appdata_ptr) };
        let reply = take_reply(responses);
        if status != PAM_SUCCESS {
            return Err(ConversationFailed);
        }
        Ok(reply)
    }
}

/// Copies out, wipes and frees the response array of a one-message conversation.
fn take_reply(responses: *mut PamResponse) -> Zeroizing<String> {
    let mut reply = Zeroizing::new(String::new());
    if responses.is_null() {
        return reply;
    }
    // SAFETY: the application allocated an array of one `pam_response` with malloc and gave us
    // its ownership; we read it once, then free it below.
    let text = unsafe { (*responses).resp };
    if !text.is_null() {
        // SAFETY: `resp` is a malloc'd NUL-terminated string owned by us now.
        let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
        // One copy, which becomes the reply without being copied again. A reply that is not
        // UTF-8 cannot be a code: it is wiped and sent as an empty reply (a wrong try). (A lossy
        // conversion would grow a new string and leave unwiped copies behind in freed memory.)
        reply = match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Zeroizing::new(text),
            Err(error) => {
                error.into_bytes().zeroize();
                Zeroizing::new(String::new())
            }
        };
        // A reply may hold bytes after an embedded NUL: wipe the whole allocation.
        // SAFETY: `text` is a live malloc'd block; glibc reports its usable size, all ours.
        let size = unsafe { libc::malloc_usable_size(text.cast::<c_void>()) }.max(bytes.len());
        // SAFETY: the block is at least `size` bytes long and nothing else refers to it.
        unsafe { std::slice::from_raw_parts_mut(text.cast::<u8>(), size) }.zeroize();
        // SAFETY: malloc'd by the application, freed exactly once, never used again.
        unsafe { libc::free(text.cast::<c_void>()) };
    }
    // SAFETY: the array itself was malloc'd by the application; freed once.
    unsafe { libc::free(responses.cast::<c_void>()) };
    reply
}

impl Conversation for PamConversation {
    fn show(&mut self, notice: &Notice) -> Result<(), ConversationFailed> {
        let (style, text) = match notice {
            Notice::Info(text) => (PAM_TEXT_INFO, text),
            Notice::Error(text) => (PAM_ERROR_MSG, text),
        };
        self.converse(style, text).map(drop)
    }

    fn ask(&mut self, prompt: &str, echo: bool) -> Result<Zeroizing<String>, ConversationFailed> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        self.converse(style, prompt)
    }
}
