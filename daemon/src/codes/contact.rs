//! Contacts (email addresses and phone numbers): what is accepted, how they are shown masked,
//! and the codes sent to them.

use pam_mfa_config::ContactKind;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The longest email address (RFC 5321's path limit less its angle brackets).
const MAX_EMAIL: usize = 254;

/// A contact as typed, checked and written one way: an email address with its domain in
/// lowercase, or a phone number as `+` and its digits (E.164).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub kind: ContactKind,
    pub text: String,
}

impl Address {
    /// Reads `text` as a contact of `kind`; the error says what is wrong, for the user.
    pub fn parse(kind: ContactKind, text: &str) -> Result<Address, String> {
        let text = text.trim();
        let text = match kind {
            ContactKind::Email => email(text)?,
            ContactKind::Phone => phone(text)?,
        };
        Ok(Address { kind, text })
    }

    /// As logs, listings and the audit trail show it: `a***@example.org`,
    /// `+44 ••• ••• 123`.
    pub fn masked(&self) -> String {
        match self.kind {
            ContactKind::Email => {
                let (local, domain) = self.text.rsplit_once('@').unwrap_or(("", &self.text));
                let first = local.chars().next().unwrap_or('*');
                format!("{first}***@{domain}")
            }
            ContactKind::Phone => {
                let digits = &self.text[1..];
                let (head, tail) = (&digits[..2], &digits[digits.len() - 3..]);
                format!("+{head} ••• ••• {tail}")
            }
        }
    }
}

/// An email address: one `@`, a local part of printable ASCII without spaces or the
/// characters that mean something to a mail header, a domain of at least two labels of
/// letters, digits and hyphens.
fn email(text: &str) -> Result<String, String> {
    let refused = |why: &str| Err(format!("{text:?} is not an email address: {why}"));
    if text.len() > MAX_EMAIL {
        return refused("it is longer than 254 characters");
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return refused("it has no @");
    };
    if local.is_empty() || local.len() > 64 {
        return refused("the part before the @ must have 1 to 64 characters");
    }
    let special = |c: char| "\"(),:;<>@[\\]".contains(c);
    if !local.chars().all(|c| c.is_ascii_graphic() && !special(c))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return refused(
            "the part before the @ may hold letters, digits and !#$%&'*+-/=?^_`{|}~. only",
        );
    }
    let domain = domain.to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return refused("the part after the @ must be a domain name such as example.org");
    }
    Ok(format!("{local}@{domain}"))
}

/// A phone number in international form: `+`, then 8 to 15 digits; spaces, dots, hyphens
/// and brackets between them are dropped.
fn phone(text: &str) -> Result<String, String> {
    let refused = |why: &str| Err(format!("{text:?} is not a phone number: {why}"));
    let Some(rest) = text.strip_prefix('+') else {
        return refused("write it in international form, with + and the country code (+44 …)");
    };
    let mut digits = String::with_capacity(16);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return refused("it may hold only digits after the +"),
        }
    }
    if !(8..=15).contains(&digits.len()) {
        return refused("it must have 8 to 15 digits after the +");
    }
    if digits.starts_with('0') {
        return refused("a country code never starts with 0");
    }
    Ok(format!("+{digits}"))
}

/// A new code of `digits` decimal digits, every one equally likely.
pub fn new_code(digits: u32) -> Result<Zeroizing<String>, getrandom::Error> {
    let mut code = Zeroizing::new(String::with_capacity(digits as usize));
    while code.len() < digits as usize {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte)?;
        // Rejection sampling: 250 = 25 * 10.
        if byte[0] < 250 {
            code.push(char::from(b'0' + byte[0] % 10));
        }
    }
    Ok(code)
}

/// Whether `typed` (spaces and hyphens between digits dropped) is `sent`, in time that does
/// not depend on where they differ.
pub fn same_code(sent: &[u8], typed: &str) -> bool {
    let typed: Zeroizing<Vec<u8>> = Zeroizing::new(
        typed
            .bytes()
            .filter(|byte| !matches!(byte, b' ' | b'-'))
            .collect(),
    );
    typed.len() == sent.len() && bool::from(sent.ct_eq(&typed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_one_way_and_shown_masked() {
        let email = Address::parse(ContactKind::Email, " Alice.Smith@Example.ORG ").unwrap();
        assert_eq!(email.text, "Alice.Smith@example.org");
        assert_eq!(email.masked(), "A***@example.org");
        let phone = Address::parse(ContactKind::Phone, "+44 (7700) 900-123").unwrap();
        assert_eq!(phone.text, "+447700900123");
        assert_eq!(phone.masked(), "+44 ••• ••• 123");
        assert_eq!(
            Address::parse(ContactKind::Phone, "+1 555 010 9999")
                .unwrap()
                .masked(),
            "+15 ••• ••• 999"
        );
    }

    #[test]
    fn what_is_not_an_address_is_refused_with_the_reason() {
        let refused = |kind, text: &str, says: &str| {
            let error = Address::parse(kind, text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        };
        refused(ContactKind::Email, "alice", "no @");
        refused(ContactKind::Email, "@example.org", "1 to 64");
        refused(ContactKind::Email, "a b@example.org", "may hold");
        refused(ContactKind::Email, "a<b>@example.org", "may hold");
        refused(ContactKind::Email, "alice@localhost", "domain name");
        refused(ContactKind::Email, "alice@exa_mple.org", "domain name");
        refused(
            ContactKind::Email,
            "alice@example.org\nBcc: x@y.z",
            "may hold",
        );
        refused(
            ContactKind::Email,
            &format!("{}@example.org", "a".repeat(65)),
            "1 to 64",
        );
        refused(ContactKind::Phone, "07700 900123", "international form");
        refused(ContactKind::Phone, "+44 7700 9001x3", "only digits");
        refused(ContactKind::Phone, "+44 12", "8 to 15");
        refused(
            ContactKind::Phone,
            "+0044 7700 900123",
            "never starts with 0",
        );
    }

    #[test]
    fn codes_have_their_digits_and_match_only_themselves() {
        let code = new_code(8).unwrap();
        assert_eq!(code.len(), 8);
        assert!(code.chars().all(|c| c.is_ascii_digit()));
        assert!(same_code(code.as_bytes(), &code));
        assert!(same_code(b"123456", "123 456"));
        assert!(same_code(b"123456", "123-456"));
        assert!(!same_code(b"123456", "123457"));
        assert!(!same_code(b"123456", "12345"));
        assert!(!same_code(b"123456", "1234567"));
        assert!(!same_code(b"123456", ""));
    }
}
