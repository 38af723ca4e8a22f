//! What a user types where a recovery code may go: normalized as mfad does, idempotently,
//! whatever the case and the dashes and spaces, and found among stored codes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfad::codes::recovery::{find, hash, normalize};

/// The normalized code, as a plain string to compare.
fn normal(typed: &str) -> Option<String> {
    normalize(typed).map(|code| code.as_str().to_owned())
}

fuzz_target!(|data: &[u8]| {
    let Ok(typed) = std::str::from_utf8(data) else {
        return;
    };
    let normalized = normal(typed);
    // Case does not matter (ASCII case: the codes are ASCII).
    assert_eq!(normal(&typed.to_ascii_uppercase()), normalized);
    let Some(code) = normalized else {
        return;
    };
    assert!(code.len() == 15 || code.len() == 8, "{code:?}");
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    // Normalizing is idempotent, and a code grouped as shown reads as itself.
    assert_eq!(normal(&code).as_ref(), Some(&code));
    let grouped = code
        .as_bytes()
        .chunks(5)
        .map(|group| std::str::from_utf8(group).expect("ASCII"))
        .collect::<Vec<_>>()
        .join("-");
    assert_eq!(normal(&grouped).as_ref(), Some(&code));
    // A code stored is found by what normalizes to it, and only by that.
    const OTHER: &str = "k7pqm3xd9ahrt2w";
    let stored = [
        (0, hash(OTHER).expect("a salt")),
        (1, hash(&code).expect("a salt")),
    ];
    assert_eq!(find(&code, &stored), Some(&1));
    assert_eq!(find(&code, &stored[..1]).is_none(), code != OTHER);
});
