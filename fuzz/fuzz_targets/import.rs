//! `mfactl import`'s files: `USER SECRET` lines and google-authenticator's files, parsed as
//! mfactl parses them and then checked as mfad checks what mfactl sends it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfactl::commands::import::{parse, parse_google_authenticator};
use mfad::codes::recovery;
use mfad::codes::totp::Secret;
use mfad::users::UserName;
use pam_mfa_config::Period;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(entries) = parse("f", text) {
        for (user, secret) in &entries {
            assert!(!user.is_empty() && !secret.is_empty());
            let _ = UserName::parse(user);
            if let Ok(parsed) = Secret::from_base32(secret) {
                // What an import stores is what reading its Base32 gives back.
                let again = Secret::from_base32(&parsed.to_base32()).expect("Base32 written reads");
                assert_eq!(again.as_bytes(), parsed.as_bytes());
            }
        }
    }
    if let Ok(file) = parse_google_authenticator("f", text) {
        let _ = Secret::from_base32_imported(&file.secret);
        let _ = Period::try_from(i64::from(file.period));
        // mfactl's warning about the secret's length.
        let _ = file.secret.trim_end_matches('=').len() * 5;
        for code in &file.scratch_codes {
            // Every scratch code the file parser takes, mfad takes as a recovery code.
            let normalized = recovery::normalize(code).expect("a scratch code is a recovery code");
            assert_eq!(normalized.as_str(), code.as_str());
        }
    }
});
