//! Secrets sealed at rest.
//!
//! Every TOTP secret in the store is encrypted with XChaCha20-Poly1305 under a key that is not
//! in the store: a systemd credential (`LoadCredentialEncrypted=`, sealed to the TPM2 or to the
//! host's key) or a file only root can read. The associated data binds each sealed secret to its
//! user and its enrollment, so a sealed secret moved to another row (another user's, or a newer
//! enrollment of the same user) does not open. The number of the key that sealed it is stored
//! beside it.
//!
//! A key set holds one key or several, each with its number: the last one seals, every one
//! opens what it sealed. A new key is added with `mfad --new-key`; mfad then seals every
//! secret again with it (at start, or at `mfactl reseal`), after which the older keys may be
//! removed.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// The name of the systemd credential that holds the key set (`LoadCredentialEncrypted=`).
pub const CREDENTIAL: &str = "sealing-key";

/// Bytes of a key.
const KEY_LEN: usize = 32;
/// Bytes of the nonce stored in front of each sealed secret.
const NONCE_LEN: usize = 24;
/// Bytes of the tag that follows the ciphertext.
const TAG_LEN: usize = 16;
/// Where the associated data of a sealed secret starts: its purpose and version.
const SECRET_CONTEXT: &[u8] = b"pam-mfa sealed secret 1\0";
/// The associated data of a key's check value.
const CHECK_CONTEXT: &[u8] = b"pam-mfa key check 1\0";

/// What a sealed secret belongs to; the seal opens only for the same.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub user: &'a str,
    pub enrollment: i64,
}

impl Binding<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut data = SECRET_CONTEXT.to_vec();
        data.extend_from_slice(&self.enrollment.to_be_bytes());
        data.extend_from_slice(self.user.as_bytes());
        data
    }
}

/// The associated data of what belongs to a contact (its address, a code sent there).
const CONTACT_CONTEXT: &[u8] = b"pam-mfa sealed contact 1\0";

/// What of a contact is sealed; each opens only as what it was sealed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactPart {
    Address,
    Code,
}

/// A contact's sealed part: its user, the contact's number (never reused) and which part.
#[derive(Debug, Clone, Copy)]
pub struct ContactBinding<'a> {
    pub user: &'a str,
    pub contact: i64,
    pub part: ContactPart,
}

impl ContactBinding<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut data = CONTACT_CONTEXT.to_vec();
        data.push(match self.part {
            ContactPart::Address => b'a',
            ContactPart::Code => b'c',
        });
        data.extend_from_slice(&self.contact.to_be_bytes());
        data.extend_from_slice(self.user.as_bytes());
        data
    }
}

/// A sealed secret: the nonce, the ciphertext and its tag, and the number of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key: u32,
    pub bytes: Vec<u8>,
}

/// One key and its number.
struct SealingKey {
    id: u32,
    cipher: XChaCha20Poly1305,
}

/// The keys mfad seals and opens secrets with, and where they came from (for messages).
pub struct KeySet {
    keys: Vec<SealingKey>,
    source: String,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|key| key.id).collect();
        write!(f, "KeySet({}: keys {ids:?})", self.source)
    }
}

/// Where the key set is read from: the systemd credential when systemd passes one, else the
/// file.
fn key_source(key_file: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let credential = Path::new(&dir).join(CREDENTIAL);
        if credential.exists() {
            return credential;
        }
    }
    key_file.to_path_buf()
}

impl KeySet {
    /// Reads the key set from the systemd credential `sealing-key` when systemd passes one,
    /// else from `key_file`, which must be a regular file of root's that no one else can read.
    pub fn load(key_file: &Path) -> Result<KeySet, String> {
        KeySet::load_from(&key_source(key_file))
    }

    /// Reads the key set in `path`, checked as [`KeySet::load`] says.
    fn load_from(path: &Path) -> Result<KeySet, String> {
        // No other user may move the file aside and put one of theirs in its place.
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            crate::dirs::check_trusted(
                dir,
                crate::dirs::Purpose {
                    what: "the sealing key file's directory",
                    setting: "sealing_key_file",
                },
            )?;
        }
        let text = read_private(path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => format!(
                "no sealing key: {} does not exist, and systemd passed no credential named \
                 {CREDENTIAL}; make one with `mfad --new-key {}` (see mfad(8))",
                path.display(),
                path.display()
            ),
            _ => format!("sealing key {}: {error}", path.display()),
        })?;
        let keys = KeySet::parse(&text, &path.display().to_string())?;
        if keys.keys.is_empty() {
            return Err(format!(
                "sealing key {}: holds no key; add one with `mfad --new-key {}`",
                path.display(),
                path.display()
            ));
        }
        Ok(keys)
    }

    /// Parses a key set: one key a line, `NUMBER HEX` (a number from 1 and 64 hexadecimal
    /// digits), numbers rising; blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str, source: &str) -> Result<KeySet, String> {
        let mut keys: Vec<SealingKey> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| format!("sealing key {source} line {}: {what}", index + 1);
            let mut words = line.split_whitespace();
            let (Some(id), Some(hex), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad(
                    "expected a key number and the key in 64 hexadecimal digits",
                ));
            };
            let id = match id.parse::<u32>() {
                Ok(id) if id > 0 => id,
                _ => return Err(bad("the key number must be a whole number from 1")),
            };
            if keys.last().is_some_and(|last| last.id >= id) {
                return Err(bad("key numbers must rise from one line to the next"));
            }
            let bytes = decode_hex(hex)
                .filter(|bytes| bytes.len() == KEY_LEN)
                .ok_or_else(|| bad("the key must be 64 hexadecimal digits (32 bytes)"))?;
            let key = Key::try_from(bytes.as_slice()).map_err(|_| bad("a key of a wrong size"))?;
            keys.push(SealingKey {
                id,
                cipher: XChaCha20Poly1305::new(&key),
            });
        }
        Ok(KeySet {
            keys,
            source: source.to_owned(),
        })
    }

    /// The keys as they are now where these came from (a file, or the credential), which
    /// another host's administrator may have given a new key since.
    pub fn read_again(&self) -> Result<KeySet, String> {
        KeySet::load_from(Path::new(&self.source))
    }

    /// Where the keys came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The number of the key that seals.
    pub fn current(&self) -> u32 {
        self.keys.last().map_or(0, |key| key.id)
    }

    /// The numbers of the keys.
    pub fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(|key| key.id).collect()
    }

    pub fn holds(&self, id: u32) -> bool {
        self.key(id).is_some()
    }

    fn key(&self, id: u32) -> Option<&XChaCha20Poly1305> {
        self.keys
            .iter()
            .find(|key| key.id == id)
            .map(|key| &key.cipher)
    }

    /// Seals `secret` for `binding` with the current key.
    pub fn seal(&self, binding: Binding<'_>, secret: &[u8]) -> Result<Sealed, String> {
        self.seal_bound(&binding.associated_data(), secret)
    }

    /// Opens what key `id` sealed for `binding`.
    pub fn open(
        &self,
        binding: Binding<'_>,
        id: u32,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let moved = "a secret moved from another enrollment";
        self.open_bound(&binding.associated_data(), (id, sealed), moved)
    }

    /// Seals a part of a contact with the current key.
    pub fn seal_contact(
        &self,
        binding: ContactBinding<'_>,
        value: &[u8],
    ) -> Result<Sealed, String> {
        self.seal_bound(&binding.associated_data(), value)
    }

    /// Opens a part of a contact that key `id` sealed.
    pub fn open_contact(
        &self,
        binding: ContactBinding<'_>,
        id: u32,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let moved = "a value moved from another row";
        self.open_bound(&binding.associated_data(), (id, sealed), moved)
            .map_err(|why| format!("a contact of {}: {why}", binding.user))
    }

    fn seal_bound(&self, associated: &[u8], value: &[u8]) -> Result<Sealed, String> {
        let id = self.current();
        let cipher = self.key(id).ok_or("no sealing key")?;
        let bytes = seal_with(cipher, associated, value)?;
        Ok(Sealed { key: id, bytes })
    }

    /// Opens what key `id` sealed with `associated` data; `moved` says what else than a wrong
    /// key keeps it shut.
    fn open_bound(
        &self,
        associated: &[u8],
        (id, sealed): (u32, &[u8]),
        moved: &str,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let cipher = self
            .key(id)
            .ok_or_else(|| format!("sealed with key {id}, which {} does not hold", self.source))?;
        open_with(cipher, associated, sealed).ok_or_else(|| {
            format!(
                "does not open with key {id} of {} (a wrong key, or {moved})",
                self.source
            )
        })
    }

    /// A value that only key `id` opens, kept in the store so that a host with another key
    /// under the same number is refused before it writes anything.
    pub fn check_value(&self, id: u32) -> Result<String, String> {
        let cipher = self.key(id).ok_or("no such key")?;
        let sealed = seal_with(cipher, &check_data(id), b"")?;
        Ok(encode_hex(&sealed))
    }

    /// Whether `value` is key `id`'s check value.
    pub fn checks(&self, id: u32, value: &str) -> bool {
        match (self.key(id), decode_hex(value)) {
            (Some(cipher), Some(sealed)) => open_with(cipher, &check_data(id), &sealed).is_some(),
            _ => false,
        }
    }
}

fn check_data(id: u32) -> Vec<u8> {
    let mut data = CHECK_CONTEXT.to_vec();
    data.extend_from_slice(&id.to_be_bytes());
    data
}

fn seal_with(cipher: &XChaCha20Poly1305, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, String> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|error| format!("no random nonce: {error}"))?;
    let nonce = XNonce::from(nonce);
    let sealed = cipher
        .encrypt(&nonce, Payload { msg: secret, aad })
        .map_err(|_| "a secret could not be sealed".to_owned())?;
    let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&sealed);
    Ok(bytes)
}

fn open_with(cipher: &XChaCha20Poly1305, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, msg) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).ok()?;
    cipher
        .decrypt(&nonce, Payload { msg, aad })
        .ok()
        .map(Zeroizing::new)
}

fn decode_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.as_bytes().chunks(2) {
        let pair = std::str::from_utf8(pair).ok()?;
        bytes.push(u8::from_str_radix(pair, 16).ok()?);
    }
    Some(bytes)
}

fn encode_hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Reads a file that may hold keys: a regular file, not a symlink, of root's (or mfad's own
/// user's), that no one else may read or write. Checked on the file opened.
fn read_private(path: &Path) -> io::Result<Zeroizing<String>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    let euid = nix::unistd::geteuid().as_raw();
    if !meta.is_file() {
        return Err(io::Error::other("is not a regular file"));
    }
    if (meta.uid() != 0 && meta.uid() != euid) || meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "holds keys, so it must belong to root and be readable by no one else \
             (chown root {0}; chmod 600 {0})",
            path.display()
        )));
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// A key set with a new, random key after those of `existing`, as text for a key file.
fn with_new_key(existing: &str, source: &str) -> Result<(Zeroizing<String>, u32), String> {
    let keys = KeySet::parse(existing, source)?;
    let id = keys
        .current()
        .checked_add(1)
        .ok_or("no key number is left")?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut()).map_err(|error| format!("no random key: {error}"))?;
    let mut text = Zeroizing::new(String::new());
    if existing.trim().is_empty() {
        text.push_str(
            "# pam-mfa sealing keys (mfad --new-key): the last one seals new secrets, each one\n\
             # opens what it sealed. Keep a copy somewhere safe: without it, no secret opens.\n",
        );
    } else {
        text.push_str(existing);
        if !existing.ends_with('\n') {
            text.push('\n');
        }
    }
    text.push_str(&format!("{id} {}\n", encode_hex(key.as_ref())));
    Ok((text, id))
}

/// `mfad --new-key PATH`: adds a new key to the key file at `path` (made, mode 0600, if it does
/// not exist), replacing the file whole; `-` reads a key set on standard input and writes it,
/// with the new key, to standard output (for `systemd-creds`). Returns what to tell the
/// administrator.
pub fn add_key(path: &Path) -> Result<String, String> {
    if path == Path::new("-") {
        let mut existing = Zeroizing::new(String::new());
        io::stdin()
            .read_to_string(&mut existing)
            .map_err(|error| format!("cannot read the key set on standard input: {error}"))?;
        let (text, id) = with_new_key(&existing, "on standard input")?;
        io::stdout()
            .write_all(text.as_bytes())
            .and_then(|()| io::stdout().flush())
            .map_err(|error| format!("cannot write the key set: {error}"))?;
        return Ok(format!("key {id} added"));
    }
    let existing = match read_private(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => Zeroizing::new(String::new()),
        Err(error) => return Err(format!("{}: {error}", path.display())),
    };
    let (text, id) = with_new_key(&existing, &path.display().to_string())?;
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = dir.join(format!(
        ".{}.new",
        path.file_name()
            .map_or("key".into(), |name| name.to_string_lossy())
    ));
    let failed = |error: io::Error| format!("cannot write {}: {error}", path.display());
    let _ = std::fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temporary)
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed)?;
    Ok(format!(
        "key {id} added to {}: it seals new secrets from mfad's next start (or mfactl reseal), \
         and mfad then seals every stored secret with it",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> KeySet {
        KeySet::parse(text, "test").unwrap()
    }

    const ONE: &str = "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

    #[test]
    fn a_seal_opens_only_for_its_user_and_enrollment() {
        let set = keys(ONE);
        let alice = Binding {
            user: "alice",
            enrollment: 7,
        };
        let sealed = set.seal(alice, b"12345678901234567890").unwrap();
        assert_eq!(sealed.key, 1);
        assert_eq!(sealed.bytes.len(), NONCE_LEN + 20 + TAG_LEN);
        assert!(
            !sealed
                .bytes
                .windows(20)
                .any(|window| window == b"12345678901234567890")
        );
        assert_eq!(
            set.open(alice, 1, &sealed.bytes).unwrap().as_slice(),
            b"12345678901234567890"
        );
        for other in [
            Binding {
                user: "bob",
                enrollment: 7,
            },
            Binding {
                user: "alice",
                enrollment: 8,
            },
        ] {
            let error = set.open(other, 1, &sealed.bytes).unwrap_err();
            assert!(
                error.contains("does not open with key 1 of test"),
                "{error}"
            );
        }
        let mut tampered = sealed.bytes.clone();
        tampered[30] ^= 1;
        assert!(set.open(alice, 1, &tampered).is_err());
        assert!(set.open(alice, 1, &sealed.bytes[..10]).is_err());
        let error = set.open(alice, 2, &sealed.bytes).unwrap_err();
        assert_eq!(error, "sealed with key 2, which test does not hold");
        // Two seals of one secret differ (a random nonce each).
        assert_ne!(
            set.seal(alice, b"x").unwrap(),
            set.seal(alice, b"x").unwrap()
        );
    }

    #[test]
    fn the_last_key_seals_and_every_key_opens() {
        let old = keys(ONE);
        let (text, id) = with_new_key(ONE, "test").unwrap();
        assert_eq!(id, 2);
        let both = keys(&text);
        assert_eq!(both.ids(), [1, 2]);
        let binding = Binding {
            user: "u",
            enrollment: 1,
        };
        let by_old = old.seal(binding, b"secret").unwrap();
        assert_eq!(
            both.open(binding, 1, &by_old.bytes).unwrap().as_slice(),
            b"secret"
        );
        let by_new = both.seal(binding, b"secret").unwrap();
        assert_eq!(by_new.key, 2);
        // Check values tell a key from another under the same number.
        let check = both.check_value(1).unwrap();
        assert!(old.checks(1, &check));
        let (other, _) = with_new_key("", "test").unwrap();
        assert!(!keys(&other).checks(1, &check));
        assert!(!both.checks(1, "zz"));
    }

    #[test]
    fn bad_key_sets_name_their_line() {
        for (text, line, what) in [
            ("1 abcd\n", 1, "64 hexadecimal digits"),
            ("# keys\n\n0 00\n", 3, "from 1"),
            ("x\n", 1, "a key number and the key"),
            (&format!("{ONE}{ONE}"), 2, "must rise"),
            (&ONE.replace("1f\n", "zz\n"), 1, "64 hexadecimal digits"),
            ("1 a b\n", 1, "a key number and the key"),
        ] {
            let error = KeySet::parse(text, "/k").unwrap_err();
            assert!(
                error.starts_with(&format!("sealing key /k line {line}: ")) && error.contains(what),
                "{text:?}: {error}"
            );
        }
        assert_eq!(keys("# nothing yet\n").current(), 0);
    }

    #[test]
    fn a_key_file_is_made_private_and_must_stay_so() {
        let dir = std::env::temp_dir().join(format!("pam-mfa-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sealing.key");
        let missing = KeySet::load(&path).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        assert!(missing.contains("mfad --new-key"), "{missing}");
        assert!(add_key(&path).unwrap().starts_with("key 1 added to "));
        assert!(add_key(&path).unwrap().starts_with("key 2 added to "));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(KeySet::load(&path).unwrap().ids(), [1, 2]);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        let open = KeySet::load(&path).unwrap_err();
        assert!(open.contains("readable by no one else"), "{open}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
