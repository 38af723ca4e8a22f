//! User names: validation and the system user database.

use nix::unistd::User;

/// Longest user name accepted (glibc allows 256 bytes with the terminating NUL).
pub const MAX_USER_LEN: usize = 255;

/// Checks that `name` could be a user name: 1 to 255 bytes of ASCII letters, digits and
/// `. _ - @ $ \`, not starting with `-`. Names from LDAP or AD (`user@domain`, `DOMAIN\user`)
/// and machine accounts (`host$`) fit.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the user name is empty".into());
    }
    if name.len() > MAX_USER_LEN {
        return Err(format!(
            "the user name is {} bytes long; at most {MAX_USER_LEN} are allowed",
            name.len()
        ));
    }
    if name.starts_with('-') {
        return Err("a user name cannot start with '-'".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '$' | '\\')))
    {
        return Err(format!(
            "the user name contains {bad:?}, which user names cannot contain"
        ));
    }
    Ok(())
}

/// The account `name` refers to in the system user database (NSS): its own spelling of the
/// name and its uid. A case-insensitive directory or an alias may accept other spellings;
/// state is always kept under the account's own name, so no spelling escapes enforcement.
pub fn lookup(name: &str) -> Option<(String, u32)> {
    User::from_name(name)
        .ok()
        .flatten()
        .map(|user| (user.name, user.uid.as_raw()))
}

/// The name state is kept under: the account's own name if the system knows `name`, else
/// `name` as given.
pub fn canonical(name: &str) -> String {
    lookup(name).map_or_else(|| name.to_owned(), |(own, _)| own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_and_directory_names_pass() {
        for name in [
            "alice",
            "a.b-c_d",
            "svc$",
            "bob@example.org",
            "CORP\\carol",
            "x",
        ] {
            assert_eq!(validate(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn malformed_names_are_refused_with_the_reason() {
        assert!(validate("").unwrap_err().contains("empty"));
        assert!(
            validate(&"a".repeat(256))
                .unwrap_err()
                .contains("256 bytes")
        );
        assert!(validate("-rf").unwrap_err().contains("start with '-'"));
        assert!(validate("al ice").unwrap_err().contains("' '"));
        assert!(validate("al\0ice").unwrap_err().contains("\\0"));
        assert!(validate("älice").unwrap_err().contains("'ä'"));
        assert!(validate("a/b").unwrap_err().contains("'/'"));
        assert!(validate("a:b").unwrap_err().contains("':'"));
    }

    #[test]
    fn root_is_uid_zero() {
        assert_eq!(lookup("root"), Some(("root".to_owned(), 0)));
        assert_eq!(canonical("no-such-user-here"), "no-such-user-here");
    }
}
