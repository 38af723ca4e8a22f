//! TOTP (RFC 6238) and HOTP (RFC 4226) codes and their verification, on top of totp-rs.

use std::fmt;

use pam_mfa_config::Algorithm;
use subtle::ConstantTimeEq;
use totp_rs::Builder;
use zeroize::Zeroizing;

/// Shortest secret accepted at enrollment (RFC 4226 asks for at least 128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
/// The shortest secret accepted on import: google-authenticator's classic 16 Base32 letters.
pub const LEGACY_SECRET_BYTES: usize = 10;
/// Length of a generated secret (160 bits, as RFC 4226 recommends).
pub const NEW_SECRET_BYTES: usize = 20;
/// Longest secret accepted at enrollment.
pub const MAX_SECRET_BYTES: usize = 128;

/// A TOTP shared secret: wiped on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = Zeroizing::new(vec![0u8; NEW_SECRET_BYTES]);
        getrandom::fill(&mut bytes)?;
        Ok(Secret(bytes))
    }

    /// Parses Base32 as users and apps write it: any case, spaces and padding allowed.
    pub fn from_base32(text: &str) -> Result<Self, SecretError> {
        Self::from_base32_at_least(text, MIN_SECRET_BYTES)
    }

    /// As [`Secret::from_base32`], accepting secrets down to 80 bits: the classic 16-letter
    /// secrets of google-authenticator, imported as they are rather than forcing everyone to
    /// enroll again.
    pub fn from_base32_imported(text: &str) -> Result<Self, SecretError> {
        Self::from_base32_at_least(text, LEGACY_SECRET_BYTES)
    }

    fn from_base32_at_least(text: &str, min_bytes: usize) -> Result<Self, SecretError> {
        let cleaned: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let secret = totp_rs::Secret::try_from_base32(cleaned.as_str())
            .map_err(|_| SecretError::NotBase32)?;
        let bytes = secret.as_bytes().to_vec();
        if bytes.len() < min_bytes {
            return Err(SecretError::TooShort {
                bits: bytes.len() * 8,
                min: min_bytes * 8,
            });
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLong {
                bits: bytes.len() * 8,
                max: MAX_SECRET_BYTES * 8,
            });
        }
        Ok(Secret(Zeroizing::new(bytes)))
    }

    pub fn to_base32(&self) -> String {
        totp_rs::Secret::from(self.0.to_vec()).to_base32()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Why a text is not a secret pam-mfa accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    NotBase32,
    TooShort { bits: usize, min: usize },
    TooLong { bits: usize, max: usize },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NotBase32 => {
                f.write_str("the secret is not valid Base32 (letters A-Z and digits 2-7)")
            }
            SecretError::TooShort { bits, min } => write!(
                f,
                "the secret is {bits} bits long; at least {min} bits are required"
            ),
            SecretError::TooLong { bits, max } => write!(
                f,
                "the secret is {bits} bits long; at most {max} bits are accepted"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

/// The otpauth:// URI cannot be made: its label would have no issuer or no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmptyLabel;

impl fmt::Display for EmptyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot build the otpauth URI: empty issuer or account")
    }
}

impl std::error::Error for EmptyLabel {}

/// What moves a token's codes on: the time (an authenticator app), or a counter that each
/// press of a button advances (a hardware token, or an app set up for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// RFC 6238: the code of the current time step.
    Totp,
    /// RFC 4226: the code of the next counter value.
    Hotp,
}

impl Kind {
    /// The name stored, shown, and given on mfactl's command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Totp => "totp",
            Kind::Hotp => "hotp",
        }
    }

    /// The kind `name` names, in any case (read for every enrollment a login reads: no
    /// allocation).
    pub fn from_name(name: &str) -> Option<Kind> {
        [Kind::Totp, Kind::Hotp]
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(name))
    }
}

/// The parameters an enrollment was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub kind: Kind,
    pub algorithm: Algorithm,
    pub digits: u32,
    /// Seconds per time step (TOTP); 0 for HOTP, whose codes do not move with the time.
    pub period: u32,
}

impl Params {
    /// The parameters of a counter-based token (its `period` is 0).
    pub fn hotp(algorithm: Algorithm, digits: u32) -> Params {
        Params {
            kind: Kind::Hotp,
            algorithm,
            digits,
            period: 0,
        }
    }
}

fn generator(secret: &Secret, params: Params) -> totp_rs::Totp {
    let algorithm = match params.algorithm {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
    };
    Builder::new()
        .with_algorithm(algorithm)
        .with_digits(params.digits as u8)
        // HOTP's counter is a "time step" of one second (see [`code_of`]).
        .with_step_duration(u64::from(params.period.max(1)))
        .with_secret(secret.as_bytes().to_vec())
        .build_noncompliant()
}

/// The code for time step `step`.
#[cfg(test)]
pub fn code_at_step(secret: &Secret, params: Params, step: u64) -> Zeroizing<String> {
    code_of(&generator(secret, params), params, step)
}

/// The code of `totp` for time step `step`, written into a string that is wiped when dropped
/// and made large enough at once (growing it would leave copies in freed memory).
fn code_of(totp: &totp_rs::Totp, params: Params, step: u64) -> Zeroizing<String> {
    use std::fmt::Write;
    let mut code = Zeroizing::new(String::with_capacity(16));
    let _ = write!(
        code,
        "{}",
        totp.generate(step * u64::from(params.period.max(1)))
    );
    code
}

/// The time step `now` falls in.
pub fn step_of(now: u64, params: Params) -> u64 {
    now / u64::from(params.period.max(1))
}

/// The code typed, without spaces, if it has the enrollment's number of digits and nothing
/// else; in a string wiped when dropped, made large enough at once (a string that grows
/// leaves copies in freed memory).
fn typed_digits(code: &str, params: Params) -> Option<Zeroizing<String>> {
    let mut spaceless = Zeroizing::new(String::with_capacity(code.len()));
    spaceless.extend(code.chars().filter(|c| *c != ' '));
    (spaceless.len() == params.digits as usize && spaceless.bytes().all(|b| b.is_ascii_digit()))
        .then_some(spaceless)
}

/// The first of the counter values `counters` whose code is `code` (see [`typed_digits`]).
/// Every value is compared in constant time, and all of them whether or not one matched.
fn first_match(
    secret: &Secret,
    params: Params,
    code: &str,
    counters: std::ops::RangeInclusive<u64>,
) -> Option<u64> {
    let code = typed_digits(code, params)?;
    let generator = generator(secret, params);
    let mut matched = None;
    for counter in counters {
        let expected = code_of(&generator, params, counter);
        let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if equal && matched.is_none() {
            matched = Some(counter);
        }
    }
    matched
}

/// The counter values a HOTP code is looked for in: the `look_ahead` values after `last` (the
/// counter of the last code accepted; `None`: none yet, so from 0).
pub fn hotp_window(last: Option<u64>, look_ahead: u32) -> std::ops::RangeInclusive<u64> {
    let first = last.map_or(0, |last| last.saturating_add(1));
    first..=first.saturating_add(u64::from(look_ahead.max(1)) - 1)
}

/// Checks a HOTP `code` against the counter values after `last`, `look_ahead` of them;
/// returns the counter it matched. Values at or before `last` are never looked at: their
/// codes were used (or skipped).
pub fn verify_hotp(
    secret: &Secret,
    params: Params,
    code: &str,
    last: Option<u64>,
    look_ahead: u32,
) -> Option<u64> {
    first_match(secret, params, code, hotp_window(last, look_ahead))
}

/// A HOTP `code` that is one of the `look_back` codes up to `last` (the counter of the last code
/// accepted), those used or skipped most recently: its counter, so that the user is told the
/// code was used rather than wrong. Spending it fails, as for any counter at or before `last`.
pub fn used_hotp(
    secret: &Secret,
    params: Params,
    code: &str,
    last: Option<u64>,
    look_back: u32,
) -> Option<u64> {
    let last = last?;
    let first = (last + 1).saturating_sub(u64::from(look_back.max(1)));
    first_match(secret, params, code, first..=last)
}

/// A token that was pressed many times without a login (its counter ran past the look-ahead
/// window) is brought back in step by two codes in a row (RFC 4226's resynchronisation):
/// `first` is looked for among the `look_ahead` and `range` values after `last`, and `second`
/// must be the code of the value right after one that `first` matched (each match is tried: a
/// six-digit code recurs among a thousand values now and then). Returns the counter of
/// `second`.
pub fn resync_hotp(
    secret: &Secret,
    params: Params,
    (first, second): (&str, &str),
    last: Option<u64>,
    (look_ahead, range): (u32, u32),
) -> Option<u64> {
    let start = last.map_or(0, |last| last.saturating_add(1));
    let end = start.saturating_add(u64::from(look_ahead) + u64::from(range));
    let mut found = None;
    for counter in all_matches(secret, params, first, start..=end) {
        let Some(next) = counter.checked_add(1) else {
            continue;
        };
        if first_match(secret, params, second, next..=next).is_some() && found.is_none() {
            found = Some(next);
        }
    }
    found
}

/// Every counter value of `counters` whose code is `code`, each compared in constant time.
fn all_matches(
    secret: &Secret,
    params: Params,
    code: &str,
    counters: std::ops::RangeInclusive<u64>,
) -> Vec<u64> {
    let Some(code) = typed_digits(code, params) else {
        return Vec::new();
    };
    let generator = generator(secret, params);
    let mut matched = Vec::new();
    for counter in counters {
        let expected = code_of(&generator, params, counter);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            matched.push(counter);
        }
    }
    matched
}

/// A code beyond the look-ahead window, to begin an automatic resynchronisation at a login (the
/// first of [`resync_hotp`]'s two codes): looked for among the `range` values after the window;
/// its counter value.
pub fn beyond_window(
    secret: &Secret,
    params: Params,
    code: &str,
    last: Option<u64>,
    (look_ahead, range): (u32, u32),
) -> Option<u64> {
    let window = hotp_window(last, look_ahead);
    let first = window.end().saturating_add(1);
    let last = first.saturating_add(u64::from(range).saturating_sub(1));
    first_match(secret, params, code, first..=last)
}

/// Checks `code` against the steps within `window` of `now`, newer than `after_step` (the last
/// step already accepted, for replay prevention). Returns the matching step.
///
/// Spaces in the code are ignored. Every candidate step is compared in constant time, and all of
/// them are compared whether or not one matched.
pub fn verify(
    secret: &Secret,
    params: Params,
    code: &str,
    now: u64,
    window: u32,
    after_step: Option<u64>,
) -> Option<u64> {
    let code = typed_digits(code, params)?;
    let totp = generator(secret, params);
    let current = step_of(now, params);
    let first = current.saturating_sub(u64::from(window));
    let last = current + u64::from(window);
    let mut matched = None;
    for step in first..=last {
        let expected = code_of(&totp, params, step);
        let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        let fresh = after_step.is_none_or(|after| step > after);
        if equal && fresh && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `otpauth://` URI an authenticator app scans, in the Key Uri Format that Google
/// Authenticator, FreeOTP, Aegis and others read: the label `issuer:account`, then the secret,
/// the issuer again, and the algorithm, digits and period (a counter-based token: its first
/// counter value), always written out (apps that ignore them assume SHA1, 6 and 30, so a
/// setting they cannot honour shows up at enrollment, as a wrong code, and not later).
pub fn otpauth_uri(
    secret: &Secret,
    params: Params,
    issuer: &str,
    account: &str,
) -> Result<String, EmptyLabel> {
    // A colon would end the issuer part of the label.
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    if issuer.is_empty() || account.is_empty() {
        return Err(EmptyLabel);
    }
    let moves = match params.kind {
        Kind::Totp => format!("period={}", params.period),
        // The app starts at the counter value after which codes are looked for first.
        Kind::Hotp => "counter=0".to_owned(),
    };
    Ok(format!(
        "otpauth://{}/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&{moves}",
        params.kind.name(),
        encode(&issuer),
        encode(&account),
        secret.to_base32(),
        encode(&issuer),
        params.algorithm.name(),
        params.digits,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(algorithm: Algorithm) -> Params {
        Params {
            kind: Kind::Totp,
            algorithm,
            digits: 8,
            period: 30,
        }
    }

    /// RFC 6238, appendix B.
    const VECTORS: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];

    fn rfc_secrets() -> [(Algorithm, Secret); 3] {
        [
            (
                Algorithm::Sha1,
                Secret::from_bytes(b"12345678901234567890".to_vec()),
            ),
            (
                Algorithm::Sha256,
                Secret::from_bytes(b"12345678901234567890123456789012".to_vec()),
            ),
            (
                Algorithm::Sha512,
                Secret::from_bytes(
                    b"1234567890123456789012345678901234567890123456789012345678901234".to_vec(),
                ),
            ),
        ]
    }

    #[test]
    fn rfc6238_appendix_b_vectors_generate_and_verify() {
        for (time, sha1, sha256, sha512) in VECTORS {
            for ((algorithm, secret), expected) in rfc_secrets().iter().zip([sha1, sha256, sha512])
            {
                let params = params(*algorithm);
                let step = step_of(time, params);
                assert_eq!(code_at_step(secret, params, step).as_str(), expected);
                assert_eq!(verify(secret, params, expected, time, 0, None), Some(step));
            }
        }
    }

    #[test]
    fn window_accepts_neighbours_only() {
        let (algorithm, secret) = &rfc_secrets()[0];
        let params = Params {
            kind: Kind::Totp,
            algorithm: *algorithm,
            digits: 6,
            period: 30,
        };
        let now = 1_700_000_000;
        let current = step_of(now, params);
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let step = current.checked_add_signed(offset).unwrap();
            let code = code_at_step(secret, params, step);
            let expected = accepted.then_some(step);
            assert_eq!(
                verify(secret, params, &code, now, 1, None),
                expected,
                "offset {offset}"
            );
        }
        let code = code_at_step(secret, params, current + 1);
        assert_eq!(verify(secret, params, &code, now, 0, None), None);
    }

    #[test]
    fn steps_at_or_before_the_last_accepted_are_refused() {
        let (_, secret) = &rfc_secrets()[0];
        let params = Params {
            kind: Kind::Totp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        };
        let now = 1_700_000_000;
        let current = step_of(now, params);
        let code = code_at_step(secret, params, current);
        assert_eq!(
            verify(secret, params, &code, now, 1, Some(current - 1)),
            Some(current)
        );
        assert_eq!(verify(secret, params, &code, now, 1, Some(current)), None);
        assert_eq!(
            verify(secret, params, &code, now, 1, Some(current + 1)),
            None
        );
    }

    #[test]
    fn malformed_codes_are_refused() {
        let (_, secret) = &rfc_secrets()[0];
        let params = Params {
            kind: Kind::Totp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        };
        for code in [
            "",
            "12345",
            "1234567",
            "12345a",
            "+12345",
            "١٢٣٤٥٦",
            "123\u{0}56",
        ] {
            assert_eq!(
                verify(secret, params, code, 1_700_000_000, 10, None),
                None,
                "{code:?}"
            );
        }
        let current = step_of(1_700_000_000, params);
        let code = code_at_step(secret, params, current);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(
            verify(secret, params, &spaced, 1_700_000_000, 0, None),
            Some(current)
        );
    }

    /// RFC 4226, appendix D: the codes of counter values 0 to 9 of its secret.
    const HOTP_VECTORS: [&str; 10] = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];

    fn hotp() -> (Secret, Params) {
        (
            Secret::from_bytes(b"12345678901234567890".to_vec()),
            Params::hotp(Algorithm::Sha1, 6),
        )
    }

    #[test]
    fn rfc4226_appendix_d_vectors_generate_and_verify() {
        let (secret, params) = hotp();
        for (counter, expected) in HOTP_VECTORS.iter().enumerate() {
            let counter = counter as u64;
            assert_eq!(code_at_step(&secret, params, counter).as_str(), *expected);
            let last = counter.checked_sub(1);
            assert_eq!(
                verify_hotp(&secret, params, expected, last, 1),
                Some(counter)
            );
        }
    }

    #[test]
    fn hotp_codes_are_looked_for_after_the_last_counter_within_the_look_ahead() {
        let (secret, params) = hotp();
        // Counter 4's code: found from none used (0..=4 with a look-ahead of 5), not with 4.
        assert_eq!(
            verify_hotp(&secret, params, HOTP_VECTORS[4], None, 5),
            Some(4)
        );
        assert_eq!(verify_hotp(&secret, params, HOTP_VECTORS[4], None, 4), None);
        // Used (or skipped) values never come back.
        assert_eq!(
            verify_hotp(&secret, params, HOTP_VECTORS[4], Some(4), 10),
            None
        );
        assert_eq!(
            verify_hotp(&secret, params, HOTP_VECTORS[3], Some(4), 10),
            None
        );
        assert_eq!(
            verify_hotp(&secret, params, HOTP_VECTORS[5], Some(4), 1),
            Some(5)
        );
        assert_eq!(hotp_window(Some(9), 3), 10..=12);
        // Used lately: found among the last look-back values, to be told "used", not "wrong".
        assert_eq!(
            used_hotp(&secret, params, HOTP_VECTORS[4], Some(4), 3),
            Some(4)
        );
        assert_eq!(
            used_hotp(&secret, params, HOTP_VECTORS[2], Some(4), 3),
            Some(2)
        );
        assert_eq!(
            used_hotp(&secret, params, HOTP_VECTORS[1], Some(4), 3),
            None
        );
        assert_eq!(
            used_hotp(&secret, params, HOTP_VECTORS[5], Some(4), 3),
            None
        );
        assert_eq!(used_hotp(&secret, params, HOTP_VECTORS[0], None, 3), None);
        assert_eq!(hotp_window(None, 0), 0..=0);
    }

    #[test]
    fn hotp_resynchronises_on_two_codes_in_a_row_beyond_the_window() {
        let (secret, params) = hotp();
        let code = |counter| code_at_step(&secret, params, counter);
        let (c40, c41, c42) = (code(40), code(41), code(42));
        // Beyond a look-ahead of 10 after counter 5: not accepted, but found further on.
        assert_eq!(verify_hotp(&secret, params, &c40, Some(5), 10), None);
        assert_eq!(
            beyond_window(&secret, params, &c40, Some(5), (10, 100)),
            Some(40)
        );
        assert_eq!(
            beyond_window(&secret, params, &c40, Some(5), (10, 20)),
            None
        );
        // Two in a row: the counter of the second, looked for as far as a login looks.
        let ranges = (10, 100);
        assert_eq!(
            resync_hotp(&secret, params, (&c40, &c41), Some(5), ranges),
            Some(41)
        );
        assert_eq!(
            resync_hotp(&secret, params, (&c40, &c41), Some(5), (10, 25)),
            Some(41),
            "6 + 10 + 25 reaches 40"
        );
        // Not in a row, or in the wrong order: nothing.
        assert_eq!(
            resync_hotp(&secret, params, (&c40, &c42), Some(5), ranges),
            None
        );
        assert_eq!(
            resync_hotp(&secret, params, (&c41, &c40), Some(5), ranges),
            None
        );
        // Beyond the range given: nothing.
        assert_eq!(
            resync_hotp(&secret, params, (&c40, &c41), Some(5), (10, 20)),
            None
        );
        // Of two values whose code is the first, the one followed by the second.
        let seen: Vec<String> = (0..100_000u64).map(|n| code(n).to_string()).collect();
        let (a, b) = (0..seen.len())
            .find_map(|i| {
                let later = (i + 1..(i + 2000).min(seen.len())).find(|j| seen[*j] == seen[i]);
                later.map(|j| (i as u64, j as u64))
            })
            .expect("a six-digit code recurs within 2000 values");
        let pair = (code(a), code(b + 1));
        assert_eq!(
            resync_hotp(
                &secret,
                params,
                (&pair.0, &pair.1),
                a.checked_sub(1),
                (0, 2000)
            ),
            Some(b + 1)
        );
    }

    #[test]
    fn hotp_uris_name_the_counter_and_no_period() {
        let (secret, params) = hotp();
        let uri = otpauth_uri(&secret, params, "Example", "lee").unwrap();
        assert!(
            uri.starts_with("otpauth://hotp/Example:lee?secret="),
            "{uri}"
        );
        assert!(uri.ends_with("&digits=6&counter=0"), "{uri}");
        assert!(!uri.contains("period"), "{uri}");
        assert_eq!(Kind::from_name("HOTP"), Some(Kind::Hotp));
        assert_eq!(Kind::from_name("motp"), None);
    }

    #[test]
    fn base32_secrets_are_read_leniently_and_checked() {
        let secret = Secret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(secret.as_bytes(), b"12345678901234567890");
        assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let short = Secret::from_base32("GEZDGNBV").unwrap_err();
        assert_eq!(short, SecretError::TooShort { bits: 40, min: 128 });
        assert!(short.to_string().contains("at least 128 bits"), "{short}");
        let garbled = Secret::from_base32("not base32!").unwrap_err();
        assert!(garbled.to_string().contains("Base32"), "{garbled}");
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn otpauth_uri_names_issuer_account_and_parameters() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        let uri = otpauth_uri(
            &secret,
            params(Algorithm::Sha256),
            "pam-mfa on host",
            "alice",
        )
        .unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert_eq!(
            uri,
            "otpauth://totp/pam-mfa%20on%20host:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=pam-mfa%20on%20host&algorithm=SHA256&digits=8&period=30"
        );
        // The defaults are written out too.
        let uri = otpauth_uri(
            &secret,
            Params {
                kind: Kind::Totp,
                algorithm: Algorithm::Sha1,
                digits: 6,
                period: 30,
            },
            "a:b",
            "DOMAIN\\bob@x",
        )
        .unwrap();
        assert!(
            uri.starts_with("otpauth://totp/a%20b:DOMAIN%5Cbob%40x?"),
            "{uri}"
        );
        assert!(uri.ends_with("&algorithm=SHA1&digits=6&period=30"), "{uri}");
    }
}
