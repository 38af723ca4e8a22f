//! `pam_mfa.so`: asks `mfad` for a second factor (a one-time code) at login.
//!
//! A thin relay. `pam_sm_authenticate` sends the user and the login's context to the daemon on
//! its login socket, shows its notices and questions through the PAM conversation, and returns
//! its verdict. Every exchange with the daemon is bounded by `timeout=`; when the second factor
//! cannot be checked the module fails closed (`PAM_AUTHINFO_UNAVAIL`) and tells the user so in
//! one line. `failmode=safe` lets a login through only when the daemon is definitely absent
//! (see [`failure`]) before it asked anything; never on a time-out, which any local user can
//! cause. The module runs no thread and no runtime: the login program's own thread does each
//! exchange with blocking, bounded I/O.
//!
//! The arguments are listed, with their meaning, in [`args::ARGUMENTS`] (and pam_mfa(8)).

pub mod args;
pub mod failure;
mod ffi;
pub mod mfad;
pub mod relay;
pub mod verdict;

use std::panic::{AssertUnwindSafe, catch_unwind};

use pam_mfa_login::{Notice, context};
use pamsm::{LogLvl, Pam, PamError, PamFlags, PamLibExt, PamServiceModule, pam_module};

use zeroize::Zeroize;

use crate::args::Args;
use crate::ffi::PamConversation;
use crate::relay::{Conversation, Outcome};
use crate::verdict::Level;

struct PamMfa;

impl PamServiceModule for PamMfa {
    fn authenticate(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        // No panic may unwind into the application: a panic is a system error, and denies.
        catch_unwind(AssertUnwindSafe(|| authenticate(&pamh, flags, &args))).unwrap_or_else(|_| {
            log(
                &pamh,
                LogLvl::CRIT,
                "internal error (panic); denying the login",
            );
            PamError::SYSTEM_ERR
        })
    }

    fn setcred(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::SUCCESS
    }
}

pam_module!(PamMfa);

fn log(pamh: &Pam, level: LogLvl, message: &str) {
    let _ = pamh.syslog(level, message);
}

fn item(value: pamsm::PamResult<Option<&std::ffi::CStr>>) -> String {
    value
        .ok()
        .flatten()
        .map(|text| text.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn authenticate(pamh: &Pam, flags: PamFlags, arguments: &[String]) -> PamError {
    let args = match Args::parse(arguments) {
        Ok(args) => args,
        Err(problem) => {
            log(
                pamh,
                LogLvl::ERR,
                &format!("bad module configuration: {problem}; denying"),
            );
            return PamError::SERVICE_ERR;
        }
    };
    if let Some(warning) = args.obsolete_warning() {
        log(pamh, LogLvl::WARNING, &warning);
    }
    let user = match pamh.get_user(None) {
        Ok(Some(user)) => user.to_string_lossy().into_owned(),
        _ => {
            log(pamh, LogLvl::ERR, "no user name for this login; denying");
            return PamError::USER_UNKNOWN;
        }
    };
    let Some(mut conversation) = PamConversation::new(pamh) else {
        log(
            pamh,
            LogLvl::ERR,
            "the application gave no conversation function; denying",
        );
        return PamError::CONV_ERR;
    };
    let service = item(pamh.get_service());
    let rhost = item(pamh.get_rhost());
    let ruser = item(pamh.get_ruser());
    let tty = ffi::tty(pamh).unwrap_or_default();
    let one_prompt = if args.forward_pass { "1" } else { "" };
    let context: Vec<(&str, &str)> = [
        (context::SERVICE, service.as_str()),
        (context::RHOST, rhost.as_str()),
        (context::RUSER, ruser.as_str()),
        (context::TTY, tty.as_str()),
        (context::ONE_PROMPT, one_prompt),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .collect();
    let silent = flags.contains(PamFlags::SILENT);
    let mut password = None;
    let outcome = match mfad::connect(&args.socket, args.timeout) {
        Ok(mut daemon) => relay::run(
            &mut daemon,
            &mut conversation,
            (&user, &context),
            silent,
            &mut password,
        ),
        Err(failure) => relay::before_question(failure),
    };
    // The password of a joined answer goes to the next module, once the code was accepted.
    if let (Outcome::Allow, Some(password)) = (&outcome, password.as_ref())
        && let Err(problem) = forward(pamh, password)
    {
        log(pamh, LogLvl::ERR, &problem);
        return PamError::AUTH_ERR;
    }
    let verdict = verdict::verdict(
        &outcome,
        args.failmode,
        args.not_required,
        args.debug,
        &user,
    );
    if let Some((level, line)) = &verdict.log {
        log(pamh, log_level(*level), line);
    }
    if let Some(notice) = verdict.notice {
        // Shown even under PAM_SILENT (sudo passes it by default): without this line the user
        // sees a bare denial and cannot tell a broken service from a wrong code.
        let _ = conversation.show(&Notice::Error(notice.to_owned()));
    }
    verdict.code
}

/// Hands `password` to the modules that follow, as `PAM_AUTHTOK`; libpam keeps its own copy,
/// and ours is wiped.
fn forward(pamh: &Pam, password: &str) -> Result<(), String> {
    let token = std::ffi::CString::new(password)
        .map_err(|_| "the password holds a NUL byte; denying".to_owned())?;
    let set = pamh.set_authtok(&token);
    let mut bytes = token.into_bytes_with_nul();
    bytes.zeroize();
    set.map_err(|error| format!("cannot hand the password on (PAM_AUTHTOK): {error:?}; denying"))
}

fn log_level(level: Level) -> LogLvl {
    match level {
        Level::Alert => LogLvl::ALERT,
        Level::Error => LogLvl::ERR,
        Level::Warning => LogLvl::WARNING,
        Level::Debug => LogLvl::DEBUG,
    }
}
