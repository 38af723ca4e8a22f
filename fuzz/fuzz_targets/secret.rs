//! TOTP secrets as users and files write them (Base32, any case, spaced, padded), the
//! otpauth:// URI made of one, and codes typed against it.
//!
//! The input is lines: a secret, an issuer, an account, a typed code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfad::codes::totp::{
    Kind, LEGACY_SECRET_BYTES, MAX_SECRET_BYTES, MIN_SECRET_BYTES, Params, Secret, beyond_window,
    otpauth_uri, resync_hotp, step_of, used_hotp, verify, verify_hotp,
};
use pam_mfa_config::Algorithm;

/// A time of the 2020s.
const NOW: u64 = 1_700_000_000;

/// `text` with its %XX escapes decoded, if they are all well formed.
fn percent_decoded(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(after.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &after[2..];
        } else {
            bytes.push(byte);
            rest = after;
        }
    }
    String::from_utf8(bytes).ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let mut line = || lines.next().unwrap_or("");
    let (written, issuer, account, code) = (line(), line(), line(), line());

    let strict = Secret::from_base32(written);
    let imported = Secret::from_base32_imported(written);
    if let Ok(secret) = &strict {
        assert!((MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.as_bytes().len()));
        // Anything taken at enrollment is taken on import too, as the same bytes.
        let imported = imported.as_ref().expect("an enrollment's secret imports");
        assert_eq!(imported.as_bytes(), secret.as_bytes());
    }
    let secret = match imported {
        Ok(secret) => {
            assert!((LEGACY_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.as_bytes().len()));
            // What is shown reads back as the same secret.
            let again = Secret::from_base32_imported(&secret.to_base32()).expect("Base32 reads");
            assert_eq!(again.as_bytes(), secret.as_bytes());
            secret
        }
        Err(_) => Secret::from_bytes(b"12345678901234567890".to_vec()),
    };

    let params = Params {
        kind: Kind::Totp,
        algorithm: [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][data.len() % 3],
        digits: [6, 7, 8][code.len() % 3],
        period: [15, 30, 60, 120][issuer.len() % 4],
    };
    match otpauth_uri(&secret, params, issuer, account) {
        Ok(uri) => {
            assert!(!issuer.is_empty() && !account.is_empty());
            let rest = uri.strip_prefix("otpauth://totp/").expect("an otpauth URI");
            let (label, query) = rest.split_once('?').expect("a query");
            let (encoded_issuer, encoded_account) = label.split_once(':').expect("issuer:account");
            // Only unreserved characters and escapes: the label reads back as it was given
            // (a colon, which would end the issuer, made a space).
            for part in [encoded_issuer, encoded_account, query] {
                assert!(
                    part.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~%&=".contains(&b)),
                    "{uri}"
                );
            }
            assert_eq!(
                percent_decoded(encoded_issuer).as_deref(),
                Some(issuer.replace(':', " ").as_str())
            );
            assert_eq!(
                percent_decoded(encoded_account).as_deref(),
                Some(account.replace(':', " ").as_str())
            );
            let secret_field = format!("secret={}&", secret.to_base32());
            assert!(query.starts_with(&secret_field), "{uri}");
        }
        Err(_) => assert!(issuer.is_empty() || account.is_empty()),
    }

    let window = (account.len() % 11) as u32;
    let current = step_of(NOW, params);
    let after = (written.len() % 2 == 0).then(|| current - 1);
    if let Some(step) = verify(&secret, params, code, NOW, window, after) {
        assert!(step.abs_diff(current) <= u64::from(window));
        assert!(after.is_none_or(|after| step > after));
    }

    // The same code against a counter-based token, near the start and near the end of its
    // counter.
    let hotp = Params::hotp(params.algorithm, params.digits);
    let look_ahead = 1 + (issuer.len() % 100) as u32;
    for last in [None, Some(window.into()), Some(u64::MAX - 3)] {
        if let Some(counter) = verify_hotp(&secret, hotp, code, last, look_ahead) {
            assert!(last.is_none_or(|last| counter > last));
        }
        if let Some(counter) = used_hotp(&secret, hotp, code, last, look_ahead) {
            assert!(last.is_some_and(|last| counter <= last));
        }
        let _ = beyond_window(&secret, hotp, code, last, (look_ahead, 1000));
        let _ = resync_hotp(&secret, hotp, (code, account), last, (look_ahead, 1000));
    }
});
