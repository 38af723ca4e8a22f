//! Recovery codes: single-use codes a user types in place of a code from the app when the phone
//! is lost. Shown once, when issued; stored only as salted hashes.
//!
//! A code is 15 characters from a 31-letter alphabet without look-alikes (no `0 1 i l o`),
//! about 74 bits, written in three groups of five (`k7pqm-3xd9a-hrt2w`). What the user types is
//! read case-insensitively, with or without the dashes and spaces.
//!
//! Scratch codes imported from google-authenticator (8 digits) are recovery codes too.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The letters of a recovery code.
const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
const GROUPS: usize = 3;
const GROUP_LEN: usize = 5;
const LEN: usize = GROUPS * GROUP_LEN;

/// Remaining codes at or below which a user is told to make new ones.
pub const FEW_LEFT: usize = 3;

/// A recovery code as stored: a random salt and SHA-256(salt || code). The code has 74 bits of
/// entropy, so a fast hash leaves nothing to guess from the database; the salt makes each hash
/// its own.
#[derive(Clone, PartialEq, Eq)]
pub struct Hashed {
    pub salt: [u8; 16],
    pub hash: [u8; 32],
}

impl std::fmt::Debug for Hashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hashed(..)")
    }
}

/// SHA-256(salt || code). The hasher holds the code in its block buffer until it is dropped,
/// which wipes it (sha2's `zeroize` feature).
fn digest(salt: &[u8; 16], code: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(code.as_bytes());
    hasher.finalize().into()
}

/// `count` new codes, as shown to the user (grouped), with what is stored of each.
pub fn generate(count: usize) -> Result<Vec<(Zeroizing<String>, Hashed)>, getrandom::Error> {
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        let mut letters = Zeroizing::new(String::with_capacity(LEN));
        while letters.len() < LEN {
            let mut byte = [0u8; 1];
            getrandom::fill(&mut byte)?;
            // Rejection sampling: 248 = 8 * 31, so every letter is equally likely.
            if byte[0] < 248 {
                letters.push(ALPHABET[usize::from(byte[0] % 31)] as char);
            }
        }
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)?;
        let hash = digest(&salt, &letters);
        let shown = Zeroizing::new(
            letters
                .as_bytes()
                .chunks(GROUP_LEN)
                .map(|group| std::str::from_utf8(group).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("-"),
        );
        codes.push((shown, Hashed { salt, hash }));
    }
    Ok(codes)
}

/// Digits of an imported google-authenticator scratch code.
const SCRATCH_LEN: usize = 8;

/// What the user typed, as a recovery code: lower case, without dashes and spaces. `None` if
/// it cannot be one (then it may be a code from the app).
pub fn normalize(typed: &str) -> Option<Zeroizing<String>> {
    // Made large enough at once: a string that grows leaves copies in freed memory.
    let mut letters = Zeroizing::new(String::with_capacity(typed.len()));
    letters.extend(
        typed
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase()),
    );
    let ours = letters.len() == LEN && letters.bytes().all(|b| ALPHABET.contains(&b));
    let scratch = letters.len() == SCRATCH_LEN && letters.bytes().all(|b| b.is_ascii_digit());
    (ours || scratch).then_some(letters)
}

/// What is stored of a (normalized) code made elsewhere, a google-authenticator scratch code.
pub fn hash(code: &str) -> Result<Hashed, getrandom::Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    Ok(Hashed {
        salt,
        hash: digest(&salt, code),
    })
}

/// Which of `stored` the normalized code `code` is, comparing every hash in constant time.
pub fn find<'a, T>(code: &str, stored: &'a [(T, Hashed)]) -> Option<&'a T> {
    let mut found = None;
    for (id, hashed) in stored {
        if bool::from(digest(&hashed.salt, code).ct_eq(&hashed.hash)) {
            found = Some(id);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_typeable_and_distinct() {
        let codes = generate(10).unwrap();
        assert_eq!(codes.len(), 10);
        for (shown, _) in &codes {
            assert_eq!(shown.len(), 17, "{}", shown.as_str());
            assert_eq!(shown.matches('-').count(), 2);
            for bad in ['0', '1', 'i', 'l', 'o'] {
                assert!(!shown.contains(bad));
            }
        }
        let mut seen: Vec<&str> = codes.iter().map(|(shown, _)| shown.as_str()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn a_code_is_found_however_it_is_typed() {
        let codes = generate(3).unwrap();
        let stored: Vec<(usize, Hashed)> = codes
            .iter()
            .enumerate()
            .map(|(n, (_, hashed))| (n, hashed.clone()))
            .collect();
        let shown = codes[1].0.as_str();
        for typed in [
            shown.to_owned(),
            shown.to_uppercase(),
            shown.replace('-', ""),
            shown.replace('-', " "),
        ] {
            let code = normalize(&typed).unwrap();
            assert_eq!(find(&code, &stored), Some(&1), "{typed}");
        }
        let other = generate(1).unwrap();
        let code = normalize(&other[0].0).unwrap();
        assert_eq!(find(&code, &stored), None);
    }

    #[test]
    fn app_codes_and_garbage_are_not_recovery_codes() {
        for typed in [
            "123456",
            "1234567",
            "",
            "k7pqm-3xd9a-hrt2",
            "k7pqm-3xd9a-hrt2w0",
        ] {
            assert!(normalize(typed).is_none(), "{typed}");
        }
        assert!(normalize("k7pqm-3xd9a-hrt2w").is_some());
        // google-authenticator's scratch codes, imported.
        assert!(normalize("30805532").is_some());
        // `0`, `1`, `i`, `l`, `o` are never in a code.
        assert!(normalize("k7pqm-3xd9a-hrt2o").is_none());
    }

    #[test]
    fn the_same_code_hashes_differently_under_each_salt() {
        let a = digest(&[1; 16], "k7pqm3xd9ahrt2w");
        let b = digest(&[2; 16], "k7pqm3xd9ahrt2w");
        assert_ne!(a, b);
    }
}
