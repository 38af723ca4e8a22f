//! Tokens read from other tools' files, as `Admin.ImportTokens` takes them: pam_oath's users
//! file (liboath's format) and token vendors' PSKC files (RFC 6030), plain or encrypted with
//! a pre-shared key. google-authenticator's files are read in `commands::import`.
//!
//! Each reader returns the tokens it could read and, for each entry it could not, where it is
//! (a line, a key package) and why; the caller decides whether to import anything then.

use std::collections::{BTreeMap, HashSet};

use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use pam_mfa_api::TokenImport;
use zeroize::Zeroizing;

/// What a file held: the tokens read, and the entries that could not be.
#[derive(Debug, Default)]
pub struct Read {
    pub tokens: Vec<TokenImport>,
    /// `FILE:LINE: why`, or `FILE: key package N (serial S): why`.
    pub invalid: Vec<String>,
    /// Notes for the person importing (tokens of a PSKC file that no user was given).
    pub notes: Vec<String>,
}

/// The last value used, as `Admin.ImportTokens` takes it, from a token's `counter`: the value
/// itself, or (`next`) the value before it, the counter naming the next code; -1 for none.
pub fn last_used(counter: u64, next: bool) -> Result<i64, String> {
    let value =
        i64::try_from(counter).map_err(|_| format!("the counter {counter} is too large"))?;
    Ok(if next { value - 1 } else { value })
}

/// RFC 4648 Base32, without padding, as mfad reads secrets.
pub fn base32(bytes: &[u8]) -> Zeroizing<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(5) * 8));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The bytes of a hexadecimal text (white space ignored).
fn from_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect::<Vec<u8>>(),
    );
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    let value = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut bytes = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    for pair in digits.chunks(2) {
        bytes.push(value(pair[0])? << 4 | value(pair[1])?);
    }
    Some(bytes)
}

/// The HOTP code (RFC 4226, HMAC-SHA1) of `counter`, with `digits` digits: to find the time
/// step of the last code a pam_oath user typed.
fn hotp_sha1(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret)
        .expect("HMAC takes a key of any length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0xf);
    let code = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    code % 10u32.pow(digits)
}

/// Time steps before now in which the last code of a pam_oath TOTP user is looked for: a code
/// older than this is outside any window a login accepts, used or not.
const TOTP_PAST_STEPS: u64 = 100;
/// Time steps after now in which it is looked for (a code a phone ahead of the clock gave).
const TOTP_FUTURE_STEPS: u64 = 10;

/// Reads pam_oath's users file (liboath's `usersfile=`): `TYPE USER PIN SECRET [COUNTER
/// [LAST_CODE [TIME]]]` lines, where TYPE is `HOTP`, `HOTP/E[/DIGITS]` (counter-based) or
/// `HOTP/T<SECONDS>[/DIGITS]` (time-based), PIN is `-` (none) or `+` (checked by another
/// module), and SECRET is hexadecimal. Lines of another TYPE (comments) are skipped, as liboath
/// skips them. A counter-based user's counter is the value of the last code used when the line
/// has that code (liboath writes both after a login), else the value to be used next; a
/// time-based user's last code is looked for around `now`, so that it stays used.
pub fn pam_oath(name: &str, text: &str, now: u64) -> Read {
    let mut read = Read::default();
    let mut users = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", index + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(kind) = fields.first().and_then(|word| oath_type(word)) else {
            continue;
        };
        match oath_line(kind, &fields, now) {
            Ok(token) if !users.insert(token.user.clone()) => read.invalid.push(format!(
                "{at}: {} appears on an earlier line too",
                token.user
            )),
            Ok(token) => read.tokens.push(token),
            Err(why) => read.invalid.push(format!("{at}: {why}")),
        }
    }
    read
}

/// What a users file's TYPE says: time-based with this period (`None`: counter-based), and the
/// digits, when it says so.
type OathType = (Option<u32>, Option<u32>);

/// The [`OathType`] of a users file's TYPE, or why it is not one pam-mfa takes. `None`: not a
/// type liboath knows (the line is skipped).
fn oath_type(word: &str) -> Option<Result<OathType, String>> {
    let rest = word.strip_prefix("HOTP")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let mut parts = rest.split('/').skip(1);
    let (period, digits) = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => (None, None),
        (Some("E"), digits, None) => (None, digits),
        (Some(step), digits, None) if step.starts_with('T') => {
            let Ok(seconds) = step[1..].parse::<u32>() else {
                return Some(Err(format!(
                    "type {word}: {step} is not T and a number of seconds"
                )));
            };
            (Some(seconds), digits)
        }
        _ => return None,
    };
    let digits = match digits.map(str::parse::<u32>) {
        None => None,
        Some(Ok(digits @ 6..=8)) => Some(digits),
        Some(_) => return Some(Err(format!("type {word}: codes of 6, 7 or 8 digits only"))),
    };
    Some(Ok((period, digits)))
}

fn oath_line(
    kind: Result<OathType, String>,
    fields: &[&str],
    now: u64,
) -> Result<TokenImport, String> {
    let (period, digits) = kind?;
    let [_, user, pin, secret, rest @ ..] = fields else {
        return Err(
            "expected TYPE USER PIN SECRET, then optionally COUNTER, LAST CODE and TIME".into(),
        );
    };
    if !matches!(*pin, "-" | "+") {
        return Err(format!(
            "{user} has a PIN in the file; pam-mfa keeps no PIN (the account's password \
             takes its place): remove it from the line (-) to import {user}"
        ));
    }
    let secret =
        from_hex(secret).ok_or_else(|| format!("{user}: the secret is not hexadecimal"))?;
    let counter = match rest.first() {
        None => 0,
        Some(counter) => counter
            .parse::<u64>()
            .map_err(|_| format!("{user}: the counter {counter:?} is not a number"))?,
    };
    let last_code = rest.get(1).copied();
    // liboath takes the length of the code typed; the type's digits, else 6.
    let digits = digits
        .or_else(|| last_code.map(|code| code.len() as u32))
        .unwrap_or(6);
    if !(6..=8).contains(&digits) {
        return Err(format!("{user}: codes of 6, 7 or 8 digits only"));
    }
    let last_used = match (period, last_code) {
        // Counter-based: liboath writes the counter of the code it accepted with that code.
        (None, Some(_)) => last_used(counter, false).map_err(|why| format!("{user}: {why}"))?,
        (None, None) => last_used(counter, true).map_err(|why| format!("{user}: {why}"))?,
        (Some(period), Some(code)) => {
            let code: u32 = code
                .parse()
                .map_err(|_| format!("{user}: the last code {code:?} is not a number"))?;
            let current = now / u64::from(period.max(1));
            let first = current.saturating_sub(TOTP_PAST_STEPS);
            (first..=current + TOTP_FUTURE_STEPS)
                .rev()
                .find(|step| hotp_sha1(&secret, *step, digits) == code)
                .map_or(-1, |step| step as i64)
        }
        (Some(_), None) => -1,
    };
    Ok(TokenImport {
        user: (*user).to_owned(),
        kind: if period.is_some() { "totp" } else { "hotp" }.to_owned(),
        secret: base32(&secret).to_string(),
        algorithm: "SHA1".into(),
        digits,
        period: period.unwrap_or(0),
        last_used,
        recovery_codes: Vec::new(),
    })
}

/// Reads a file of `SERIAL USER` lines (blank lines and `#` comments skipped): which user each
/// token of a PSKC file is for.
pub fn serials(name: &str, text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{name}:{}", index + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let [serial, user] = words[..] else {
            return Err(format!(
                "{at}: expected a token's serial number and a user name"
            ));
        };
        if map.insert(serial.to_owned(), user.to_owned()).is_some() {
            return Err(format!(
                "{at}: serial number {serial} appears on an earlier line too"
            ));
        }
    }
    Ok(map)
}

const PSKC: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
const XMLENC: &str = "http://www.w3.org/2001/04/xmlenc#";

/// Reads a PSKC file (RFC 6030) as token vendors ship them: each key package's token (its
/// serial number, `DeviceInfo/SerialNo`) becomes the enrollment of the user `users` gives for
/// it. Secrets are plain (`PlainValue`) or encrypted with the pre-shared `key` (AES-CBC, RFC
/// 6030 section 6.1, each checked with the file's HMAC-SHA1 MAC key). An error about the whole
/// file (not PSKC, a key that does not open it) is `Err`; one about a key package is in
/// [`Read::invalid`]. Tokens no user is given are left out, and said so in [`Read::notes`].
pub fn pskc(
    name: &str,
    text: &str,
    users: &BTreeMap<String, String>,
    key: Option<&[u8]>,
) -> Result<Read, String> {
    let document = roxmltree::Document::parse(text)
        .map_err(|error| format!("{name} is not an XML file: {error}"))?;
    let root = document.root_element();
    if !root.has_tag_name((PSKC, "KeyContainer")) {
        return Err(format!(
            "{name} is not a PSKC file: its root element is not a KeyContainer of {PSKC}"
        ));
    }
    if root.attribute("Version") != Some("1.0") {
        return Err(format!("{name}: a KeyContainer of version 1.0 is expected"));
    }
    let mac_key = match child(root, PSKC, "MACMethod") {
        None => None,
        Some(method) => {
            if method.attribute("Algorithm") != Some("http://www.w3.org/2000/09/xmldsig#hmac-sha1")
            {
                return Err(format!(
                    "{name}: MACMethod {:?}: only HMAC-SHA1 is read",
                    method.attribute("Algorithm").unwrap_or("")
                ));
            }
            let encrypted = child(method, PSKC, "MACKey")
                .ok_or_else(|| format!("{name}: MACMethod has no MACKey"))?;
            let key = key.ok_or_else(|| {
                format!("{name} is encrypted with a pre-shared key: give it with --pskc-key FILE")
            })?;
            Some(decrypt(encrypted, key).map_err(|why| {
                format!("{name}: the MAC key cannot be decrypted ({why}): is --pskc-key the key this file was made with?")
            })?)
        }
    };
    let mut read = Read::default();
    let mut found = HashSet::new();
    let mut unassigned = Vec::new();
    for (index, package) in children(root, PSKC, "KeyPackage").enumerate() {
        let serial = child(package, PSKC, "DeviceInfo")
            .and_then(|info| child(info, PSKC, "SerialNo"))
            .and_then(|serial| serial.text())
            .map(str::trim)
            .unwrap_or("");
        let at = if serial.is_empty() {
            format!("{name}: key package {}", index + 1)
        } else {
            format!("{name}: key package {} (serial {serial})", index + 1)
        };
        if serial.is_empty() {
            read.invalid
                .push(format!("{at}: no DeviceInfo/SerialNo to match a user"));
            continue;
        }
        if !found.insert(serial.to_owned()) {
            read.invalid.push(format!(
                "{at}: serial {serial} appears in an earlier key package too"
            ));
            continue;
        }
        let Some(user) = users.get(serial) else {
            unassigned.push(serial.to_owned());
            continue;
        };
        match pskc_key(package, user, key, mac_key.as_deref().map(Vec::as_slice)) {
            Ok(token) => read.tokens.push(token),
            Err(why) => read.invalid.push(format!("{at}: {why}")),
        }
    }
    for (serial, user) in users {
        if !found.contains(serial) {
            read.invalid.push(format!(
                "{name}: no token has serial {serial}, given for {user}"
            ));
        }
    }
    if !unassigned.is_empty() {
        read.notes.push(format!(
            "{name}: {} tokens given to no user were left out: {}",
            unassigned.len(),
            unassigned.join(", ")
        ));
    }
    Ok(read)
}

fn children<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    namespace: &'static str,
    tag: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'input>> {
    node.children()
        .filter(move |child| child.has_tag_name((namespace, tag)))
}

fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    namespace: &'static str,
    tag: &'static str,
) -> Option<roxmltree::Node<'a, 'input>> {
    children(node, namespace, tag).next()
}

/// The text of `PlainValue` under `node`'s child `tag`: `Ok(None)` when there is no such
/// child, an error when it holds no PlainValue (an encrypted counter, say, which is not read).
fn plain<'a>(node: roxmltree::Node<'a, '_>, tag: &'static str) -> Result<Option<&'a str>, String> {
    let Some(element) = child(node, PSKC, tag) else {
        return Ok(None);
    };
    child(element, PSKC, "PlainValue")
        .map(|value| Some(value.text().unwrap_or("").trim()))
        .ok_or_else(|| format!("Data/{tag} has no PlainValue (only values in the clear are read)"))
}

fn pskc_key(
    package: roxmltree::Node<'_, '_>,
    user: &str,
    psk: Option<&[u8]>,
    mac_key: Option<&[u8]>,
) -> Result<TokenImport, String> {
    let key = child(package, PSKC, "Key").ok_or("no Key")?;
    let algorithm = key.attribute("Algorithm").unwrap_or("");
    let kind = match algorithm.rsplit([':', '#']).next() {
        Some("hotp") if algorithm.starts_with(PSKC) => "hotp",
        Some("totp") if algorithm.starts_with(PSKC) => "totp",
        _ => {
            return Err(format!(
                "algorithm {algorithm:?}: only HOTP and TOTP tokens ({PSKC}:hotp, :totp) are read"
            ));
        }
    };
    let parameters = child(key, PSKC, "AlgorithmParameters");
    let format = parameters.and_then(|p| child(p, PSKC, "ResponseFormat"));
    let digits = match format {
        None => 6,
        Some(format) => {
            if format.attribute("Encoding").is_some_and(|e| e != "DECIMAL") {
                return Err("codes that are not DECIMAL are not read".into());
            }
            format
                .attribute("Length")
                .and_then(|length| length.parse::<u32>().ok())
                .filter(|length| (6..=8).contains(length))
                .ok_or("ResponseFormat Length: codes of 6, 7 or 8 digits only")?
        }
    };
    let hash = parameters
        .and_then(|p| child(p, PSKC, "Suite"))
        .and_then(|suite| suite.text())
        .map(|suite| suite.trim().to_ascii_uppercase().replace('-', ""));
    let algorithm = match hash.as_deref() {
        None | Some("HMACSHA1" | "SHA1") => "SHA1",
        Some("HMACSHA256" | "SHA256") => "SHA256",
        Some("HMACSHA512" | "SHA512") => "SHA512",
        Some(other) => return Err(format!("Suite {other:?}: only SHA1, SHA256 and SHA512")),
    };
    let data = child(key, PSKC, "Data").ok_or("no Data")?;
    let secret = child(data, PSKC, "Secret").ok_or("no Data/Secret")?;
    let (plain_value, encrypted) = (
        child(secret, PSKC, "PlainValue"),
        child(secret, PSKC, "EncryptedValue"),
    );
    if plain_value.is_some() && (encrypted.is_some() || mac_key.is_some()) {
        // A secret in the clear in an encrypted file is covered by no MAC: whoever changed
        // the file on its way may know it.
        return Err("a secret in the clear (PlainValue) in an encrypted file".into());
    }
    let bytes = if let Some(value) = plain_value {
        decode64(value.text().unwrap_or("")).ok_or("the secret's PlainValue is not Base64")?
    } else if let Some(value) = encrypted {
        let psk = psk.ok_or("the secret is encrypted: give the pre-shared key with --pskc-key")?;
        let mac_key = mac_key.ok_or("the secret is encrypted but the file has no MACMethod")?;
        let cipher = cipher_value(value)?;
        let mac = child(secret, PSKC, "ValueMAC")
            .and_then(|mac| mac.text())
            .and_then(decode64)
            .ok_or("the encrypted secret has no ValueMAC")?;
        let mut check = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(mac_key)
            .expect("HMAC takes a key of any length");
        check.update(&cipher);
        check
            .verify_slice(&mac)
            .map_err(|_| "the secret's ValueMAC does not match: the file was changed or damaged")?;
        decrypt(value, psk)?
    } else {
        return Err("the secret has neither PlainValue nor EncryptedValue".into());
    };
    let time = plain(data, "Time")?.unwrap_or("0");
    if time != "0" {
        return Err(format!(
            "Time {time}: only tokens counting from the Unix epoch are read"
        ));
    }
    let (period, last_used) = if kind == "hotp" {
        let counter = plain(data, "Counter")?.unwrap_or("0");
        let counter: u64 = counter
            .parse()
            .map_err(|_| format!("Counter {counter:?} is not a number"))?;
        // The token's next code is of this value.
        (0, last_used(counter, true)?)
    } else {
        let interval = plain(data, "TimeInterval")?.unwrap_or("30");
        let interval = interval
            .parse::<u32>()
            .map_err(|_| format!("TimeInterval {interval:?} is not a number of seconds"))?;
        (interval, -1)
    };
    Ok(TokenImport {
        user: user.to_owned(),
        kind: kind.to_owned(),
        secret: base32(&bytes).to_string(),
        algorithm: algorithm.to_owned(),
        digits,
        period,
        last_used,
        recovery_codes: Vec::new(),
    })
}

fn decode64(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut compact = Zeroizing::new(String::with_capacity(text.len()));
    compact.extend(text.chars().filter(|c| !c.is_whitespace()));
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
        .map(Zeroizing::new)
}

/// The `xenc:CipherData/xenc:CipherValue` under `node`: the IV, then the ciphertext.
fn cipher_value(node: roxmltree::Node<'_, '_>) -> Result<Zeroizing<Vec<u8>>, String> {
    child(node, XMLENC, "CipherData")
        .and_then(|data| child(data, XMLENC, "CipherValue"))
        .and_then(|value| value.text())
        .and_then(decode64)
        .ok_or_else(|| "no Base64 xenc:CipherData/xenc:CipherValue".to_owned())
}

/// Decrypts the `xenc` encrypted value under `node` (AES-128, -192 or -256 in CBC mode, the IV
/// first, PKCS#7 padding) with `key`.
fn decrypt(node: roxmltree::Node<'_, '_>, key: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let method = child(node, XMLENC, "EncryptionMethod")
        .and_then(|method| method.attribute("Algorithm"))
        .unwrap_or("");
    let bits = match method.strip_prefix(XMLENC) {
        Some("aes128-cbc") => 128,
        Some("aes192-cbc") => 192,
        Some("aes256-cbc") => 256,
        _ => return Err(format!("encryption {method:?}: only AES-CBC is read")),
    };
    if key.len() * 8 != bits {
        return Err(format!(
            "the pre-shared key has {} bits; the file's encryption takes {bits}",
            key.len() * 8
        ));
    }
    let data = cipher_value(node)?;
    if data.len() < 32 || data.len() % 16 != 0 {
        return Err("the encrypted value is not an IV and whole AES blocks".into());
    }
    let (iv, cipher) = data.split_at(16);
    let mut buffer = Zeroizing::new(cipher.to_vec());
    let wrong = |_| "the value does not decrypt (a wrong key?)".to_owned();
    let plain = match bits {
        128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| "bad key or IV length".to_owned())?
            .decrypt_padded::<Pkcs7>(&mut buffer)
            .map_err(wrong)?
            .to_vec(),
        192 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|_| "bad key or IV length".to_owned())?
            .decrypt_padded::<Pkcs7>(&mut buffer)
            .map_err(wrong)?
            .to_vec(),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| "bad key or IV length".to_owned())?
            .decrypt_padded::<Pkcs7>(&mut buffer)
            .map_err(wrong)?
            .to_vec(),
    };
    Ok(Zeroizing::new(plain))
}

/// Reads a pre-shared key file: the key in hexadecimal (white space ignored).
pub fn pre_shared_key(name: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    from_hex(text).ok_or_else(|| format!("{name}: expected the pre-shared key in hexadecimal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIGURE_3: &str = include_str!("../../tests/data/pskc/rfc6030-figure3.xml");
    const FIGURE_6: &str = include_str!("../../tests/data/pskc/rfc6030-figure6.xml");
    /// RFC 4226's secret, "12345678901234567890", in hexadecimal and in Base32.
    const RFC_HEX: &str = "3132333435363738393031323334353637383930";
    const RFC_BASE32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn users(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(serial, user)| (serial.to_string(), user.to_string()))
            .collect()
    }

    #[test]
    fn base32_is_rfc_4648s() {
        assert_eq!(base32(b"12345678901234567890").as_str(), RFC_BASE32);
        assert_eq!(base32(b"f").as_str(), "MY");
        assert_eq!(base32(b"foobar").as_str(), "MZXW6YTBOI");
    }

    #[test]
    fn hotp_codes_are_rfc_4226s() {
        let secret = b"12345678901234567890";
        assert_eq!(hotp_sha1(secret, 0, 6), 755_224);
        assert_eq!(hotp_sha1(secret, 9, 6), 520_489);
    }

    #[test]
    fn a_plain_pskc_file_gives_the_token_of_each_serial_its_user() {
        let read = pskc("f.xml", FIGURE_3, &users(&[("987654321", "lee")]), None).unwrap();
        assert!(read.invalid.is_empty(), "{:?}", read.invalid);
        let [token] = &read.tokens[..] else {
            panic!("one token: {:?}", read.tokens);
        };
        assert_eq!(token.user, "lee");
        assert_eq!((token.kind.as_str(), token.digits), ("hotp", 8));
        assert_eq!(token.secret, RFC_BASE32);
        assert_eq!((token.algorithm.as_str(), token.last_used), ("SHA1", -1));
        // A token given to nobody is left out, and said so; a serial not in the file is an
        // error.
        let read = pskc("f.xml", FIGURE_3, &users(&[]), None).unwrap();
        assert!(read.tokens.is_empty());
        assert_eq!(
            read.notes,
            ["f.xml: 1 tokens given to no user were left out: 987654321"]
        );
        let read = pskc("f.xml", FIGURE_3, &users(&[("11", "kim")]), None).unwrap();
        assert_eq!(
            read.invalid,
            ["f.xml: no token has serial 11, given for kim"]
        );
    }

    #[test]
    fn an_encrypted_pskc_file_is_opened_with_its_pre_shared_key_and_checked() {
        let key = pre_shared_key("k", "12345678901234567890123456789012\n").unwrap();
        let map = users(&[("987654321", "lee")]);
        let read = pskc("f.xml", FIGURE_6, &map, Some(&key)).unwrap();
        assert!(read.invalid.is_empty(), "{:?}", read.invalid);
        assert_eq!(read.tokens[0].secret, RFC_BASE32);
        // Without the key, or with another one: an error about the whole file.
        let error = pskc("f.xml", FIGURE_6, &map, None).unwrap_err();
        assert!(error.contains("--pskc-key"), "{error}");
        let wrong = pre_shared_key("k", "00112233445566778899aabbccddeeff").unwrap();
        let error = pskc("f.xml", FIGURE_6, &map, Some(&wrong)).unwrap_err();
        assert!(error.contains("MAC key cannot be decrypted"), "{error}");
        // A secret in the clear slipped into the encrypted file: refused, not imported.
        let slipped = FIGURE_6.replace(
            "<EncryptedValue>",
            "<PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue><EncryptedValue>",
        );
        let read = pskc("f.xml", &slipped, &map, Some(&key)).unwrap();
        assert!(read.tokens.is_empty());
        assert!(
            read.invalid[0].ends_with("a secret in the clear (PlainValue) in an encrypted file")
        );
        // An encrypted counter is not read: refused, rather than taken as 0.
        let hidden = FIGURE_6.replace(
            "<PlainValue>0</PlainValue>",
            "<EncryptedValue></EncryptedValue>",
        );
        let read = pskc("f.xml", &hidden, &map, Some(&key)).unwrap();
        assert!(
            read.invalid[0]
                .ends_with("Data/Counter has no PlainValue (only values in the clear are read)"),
            "{:?}",
            read.invalid
        );
        // A secret changed in the file: its MAC does not match.
        let changed = FIGURE_6.replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
        let read = pskc("f.xml", &changed, &map, Some(&key)).unwrap();
        assert!(read.tokens.is_empty());
        assert_eq!(read.invalid.len(), 1);
        assert!(
            read.invalid[0].starts_with(
                "f.xml: key package 1 (serial 987654321): the secret's \
                                         ValueMAC does not match"
            ),
            "{:?}",
            read.invalid
        );
    }

    #[test]
    fn files_that_are_not_pskc_are_refused_whole() {
        let none = users(&[]);
        assert!(
            pskc("f", "not xml", &none, None)
                .unwrap_err()
                .contains("not an XML file")
        );
        let other = "<KeyContainer Version=\"1.0\"/>";
        assert!(
            pskc("f", other, &none, None)
                .unwrap_err()
                .contains("not a PSKC file")
        );
    }

    #[test]
    fn pam_oath_lines_keep_their_counters_and_last_codes() {
        let now = 1_700_000_000;
        let step = now / 30;
        let used = hotp_sha1(b"12345678901234567890", step - 1, 6);
        let text = format!(
            "# users of pam_oath\n\
             HOTP\tann\t-\t{RFC_HEX}\t6\t287922\t2026-12-07T17:25:59L\n\
             HOTP/E/8 ben + {RFC_HEX} 4\n\
             HOTP/T30 cy - {RFC_HEX} 0 {used:06} 2026-12-07T17:26:07L\n\
             HOTP/T60/7 dee - {RFC_HEX}\n\
             HOTP eve 1234 {RFC_HEX}\n\
             HOTP fay - 31zz\n\
             HOTP/T30/9 gus - {RFC_HEX}\n\
             HOTP ann - {RFC_HEX}\n"
        );
        let read = pam_oath("users.oath", &text, now);
        let got: Vec<_> = read
            .tokens
            .iter()
            .map(|t| {
                (
                    t.user.as_str(),
                    t.kind.as_str(),
                    t.digits,
                    t.period,
                    t.last_used,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                // The counter liboath wrote with the code it accepted: that code's value.
                ("ann", "hotp", 6, 0, 6),
                // No code yet: the counter is the next value, so the one before is "used".
                ("ben", "hotp", 8, 0, 3),
                // The last code typed, found around now.
                ("cy", "totp", 6, 30, (step - 1) as i64),
                ("dee", "totp", 7, 60, -1),
            ]
        );
        assert!(read.tokens.iter().all(|t| t.secret == RFC_BASE32));
        assert_eq!(read.invalid.len(), 4, "{:?}", read.invalid);
        assert!(read.invalid[0].starts_with("users.oath:6: eve has a PIN"));
        assert_eq!(
            read.invalid[1],
            "users.oath:7: fay: the secret is not hexadecimal"
        );
        assert_eq!(
            read.invalid[2],
            "users.oath:8: type HOTP/T30/9: codes of 6, 7 or 8 digits only"
        );
        assert_eq!(
            read.invalid[3],
            "users.oath:9: ann appears on an earlier line too"
        );
    }

    #[test]
    fn serial_files_name_their_errors() {
        let map = serials("s", "# tokens\n987654321 lee\n\n11 kim\n").unwrap();
        assert_eq!(map, users(&[("987654321", "lee"), ("11", "kim")]));
        assert_eq!(
            serials("s", "11 kim\n12\n").unwrap_err(),
            "s:2: expected a token's serial number and a user name"
        );
        assert_eq!(
            serials("s", "11 kim\n11 lee\n").unwrap_err(),
            "s:2: serial number 11 appears on an earlier line too"
        );
    }
}
