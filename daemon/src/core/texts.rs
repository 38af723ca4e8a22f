//! What users are told at their logins, in one place. Each is one block of text for the PAM
//! conversation.

pub const CODE_PROMPT: &str = "Verification code: ";
pub const WRONG_CODE: &str = "Wrong code.";
pub const WRONG_CODE_AGAIN: &str = "Wrong code. Try again.";
pub const REPLAYED: &str = "This code was already used; wait for the next one.";
pub const REPLAYED_HOTP: &str = "This code was already used; press the token's button for the \
                                 next one.";
pub const TOKEN_AHEAD: &str = "That code is further ahead than logins look. Press the token's \
                               button again and type the next code: two codes in a row bring \
                               it back in step.";
pub const TOKEN_AHEAD_LAST: &str = "That code is further ahead than logins look: at the next \
                                    login, type two codes in a row, or ask an administrator \
                                    to run mfactl resync.";
pub const RECOVERY_CODE_USED: &str = "This recovery code was already used: each works once.";
pub const RECOVERY_CODE_USED_AGAIN: &str = "This recovery code was already used: each works \
                                            once. Type another one, or a code from the app.";
pub const JOINED_PROMPT: &str = "Password and verification code: ";
pub const JOINED_NO_ENROLLMENT: &str = "Two-factor authentication is required for this account, \
                                        and this service cannot set up an authenticator app: \
                                        set one up at an SSH login or with mfactl enroll, then \
                                        type your password followed by a code here.";
pub const TOO_MANY_LOGINS: &str =
    "Too many logins are in progress for this account. Try again later.";
// Lines of at most 76 columns: terminals and PuTTY wrap longer ones. The first line of a
// block is shown after OpenSSH's "(user@host) ", so it stays under 50.
pub const ENROLL_HEADING: &str = "Two-factor authentication is required for this\naccount, \
                                  and no authenticator app is set up for it yet.";
pub const ENROLL_RESUMED_HEADING: &str = "Two-factor authentication is required for this\n\
                                          account. Finish setting up your authenticator app\n\
                                          (this is the same code as last time).";
pub const ENROLL_PROMPT: &str = "Code shown by the app: ";
pub const ENROLL_NEXT_PROMPT: &str = "Wait for the app to show its next code, then type it: ";
pub const ENROLL_WRONG: &str = "That code does not match. Check that you scanned this QR \
                                code (or typed the secret) and that the phone sets its clock \
                                automatically, then try again.";
pub const ENROLL_WRONG_LAST: &str = "That code does not match. The app is not set up yet: \
                                     log in again to try once more.";
pub const ENROLL_NOT_LATER: &str = "That is the same code as before: wait until the app shows \
                                    the next one.";
pub const SAVED_PROMPT: &str = "Press Enter once you have saved these codes: ";
pub const ENROLLED_NO_RECOVERY: &str = "Your authenticator app is set up: from now on, \
                                        logins ask for a code from it.";

/// Why a user without an authenticator is denied when logins do not enroll.
pub fn not_enrolled(user: &str) -> String {
    format!(
        "Two-factor authentication is required for this account, but no authenticator app \
         is set up for it. Ask your system administrator to set one up (mfactl enroll \
         {user})."
    )
}

/// The recovery codes, shown once, right after an enrollment.
pub fn recovery_codes(codes: &[&str]) -> String {
    let mut block = String::from(
        "Your authenticator app is set up. These recovery codes let you log in\nif you \
         lose your phone:\n\n",
    );
    for code in codes {
        block.push_str("    ");
        block.push_str(code);
        block.push('\n');
    }
    block.push_str(
        "\nEach works once, in place of a code from the app. Keep them somewhere\nsafe, \
         away from the phone: they are not shown again.",
    );
    block
}

/// Why a locked account is refused, and until when.
pub fn locked(until: i64, now: i64) -> String {
    let minutes = ((until - now).max(1) as u64).div_ceil(60);
    let day = until.rem_euclid(86_400);
    format!(
        "Too many wrong codes: this account is locked until {:02}:{:02} UTC (in {minutes} \
         minute{}). Try again then, or ask an administrator to unlock it.",
        day / 3600,
        day % 3600 / 60,
        if minutes == 1 { "" } else { "s" }
    )
}

/// After a login with a recovery code.
pub fn recovery_code_used(left: usize) -> String {
    let mut text = match left {
        0 => "Recovery code accepted. It was your last one.".to_owned(),
        1 => "Recovery code accepted. 1 recovery code is left.".to_owned(),
        n => format!("Recovery code accepted. {n} recovery codes are left."),
    };
    if left <= crate::codes::recovery::FEW_LEFT {
        text.push_str(" Make new ones with `mfactl recovery-codes`.");
    }
    text
}

/// After a code was sent to a contact at a login.
pub fn contact_code_sent(to: &str, minutes: i64) -> String {
    format!(
        "A code was sent to {to}. Type it here (it is good for {minutes} minutes), or a \
         code from your app."
    )
}

/// When a code was sent too lately for another.
pub fn contact_code_too_soon(seconds: i64) -> String {
    format!(
        "A code was sent (or tried) a moment ago: type the last one you got, if you have not \
         used it, or ask for another in {seconds} s."
    )
}

pub const CONTACT_CODE_NOT_SENT: &str = "No code was sent: it could not be delivered. Type a \
                                         code from your app, or try again later.";

/// When the user has no verified contact of the kind asked for.
pub fn no_contact(word: &str) -> String {
    let what = if word == "email" {
        "email address"
    } else {
        "phone number"
    };
    format!(
        "There is no verified {what} to send a code to for this account (see mfactl \
         contact). Type a code from your app."
    )
}

/// The hint at the code question when codes may be sent to the user's contacts.
pub fn contact_hint(words: &[(&str, String)]) -> String {
    let offers: Vec<String> = words
        .iter()
        .map(|(word, to)| format!("type {word} for a code sent to {to}"))
        .collect();
    format!("No app at hand? {}.", offers.join(", or "))
}

pub const CONTACT_EMAIL_PROMPT: &str = "Email address: ";
pub const CONTACT_PHONE_PROMPT: &str = "Mobile number, with + and country code: ";
pub const CONTACT_CODE_PROMPT: &str = "Code sent to you: ";
pub const CONTACT_CODE_WRONG: &str = "That is not the code that was sent, or it expired. Try \
                                      again.";
pub const CONTACT_CODE_WRONG_LAST: &str = "That is not the code that was sent, or it expired. \
                                           Log in again to try once more.";
pub const CONTACT_CODE_NOT_SENT_ENROLLING: &str = "No code could be sent there: check the \
                                                   address, or try again later.";
pub const CONTACT_FULL: &str = "This account has as many contacts as it may: ask your \
                                administrator to remove one.";

/// The first question of an enrollment that sets up a contact first.
pub fn contact_heading(kind: pam_mfa_config::ContactKind) -> String {
    let what = match kind {
        pam_mfa_config::ContactKind::Email => "an email address",
        pam_mfa_config::ContactKind::Phone => "a mobile phone number",
    };
    format!(
        "Two-factor authentication is required for this\naccount. First, give {what} that \
         codes can be sent\nto: a code is sent there now, to check it is yours."
    )
}

/// After the code to verify a contact was sent.
pub fn contact_code_to_verify(to: &str, minutes: i64) -> String {
    format!(
        "A code was sent to {to} (good for {minutes} minutes): type it, or type\nanother \
         address to send one there instead."
    )
}

/// When a login that enrolls finds the code an earlier one sent.
pub fn contact_code_resumed(to: &str) -> String {
    format!(
        "Two-factor authentication is required for this\naccount. A code was sent to {to}\n\
         at your last login: type it to go on, or type another\naddress to send one there \
         instead."
    )
}

/// Once the contact is verified, before the app's QR code.
pub fn contact_verified(to: &str) -> String {
    format!("{to} is verified. Now set up your authenticator app.")
}
