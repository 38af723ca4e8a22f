//! `mfactl import`'s files: `USER SECRET` lines, google-authenticator's files, pam_oath's users
//! file and PSKC files (with a pre-shared key), parsed as mfactl parses them and then checked as
//! mfad checks what mfactl sends it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfactl::commands::import::{parse, parse_google_authenticator};
use mfactl::tokens;
use mfad::codes::recovery;
use mfad::codes::totp::{Secret, SecretError};
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
        if let Ok(token) = file.token("alice") {
            assert!(token.last_used >= -1);
        }
        for code in &file.scratch_codes {
            // Every scratch code the file parser takes, mfad takes as a recovery code.
            let normalized = recovery::normalize(code).expect("a scratch code is a recovery code");
            assert_eq!(normalized.as_str(), code.as_str());
        }
    }
    // pam_oath's users file, at any time.
    let read = tokens::pam_oath("f", text, u64::from(data.len() as u32) * 1_000_003);
    for token in &read.tokens {
        // Base32 as mfad reads it: too short or too long are mfad's to refuse, by name.
        assert!(!matches!(
            Secret::from_base32_imported(&token.secret),
            Err(SecretError::NotBase32)
        ));
        assert!(token.last_used >= -1);
    }
    // A PSKC file, with and without RFC 6030's pre-shared key.
    let users = std::collections::BTreeMap::from([("987654321".to_owned(), "alice".to_owned())]);
    let key = [
        0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90,
        0x12,
    ];
    for key in [None, Some(&key[..])] {
        if let Ok(read) = tokens::pskc("f", text, &users, key) {
            for token in &read.tokens {
                assert_eq!(token.user, "alice");
                assert!(token.last_used >= -1);
            }
        }
    }
});
