//! `mfactl import FILE`: enroll many users at once from `USER SECRET` lines;
//! `mfactl import --google-authenticator FILE...` from google-authenticator's files;
//! `mfactl import --pam-oath FILE` and `--pskc FILE` from pam_oath's users file and token
//! vendors' PSKC files (read in [`crate::tokens`]).

use std::io::Read;
use std::path::Path;

use pam_mfa_api::limits::MAX_IMPORT;
use pam_mfa_api::proxy::AdminProxy;
use pam_mfa_api::{TokenImport, TokenImports};
use zeroize::Zeroizing;

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;
use crate::tokens;

#[derive(serde::Serialize)]
pub struct Import {
    pub imported: usize,
    /// The file as named on the command line (`-` for stdin); for the text only.
    #[serde(skip)]
    pub from: String,
}

pub async fn run(bus: Option<&str>, file: &Path) -> Result<Import, Failure> {
    let admin = connect(bus).await?;
    let name = file.display().to_string();
    let mut text = Zeroizing::new(String::new());
    let read = if name == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|error| Failure::input(format!("cannot read {name}: {error}")))?;
    let entries = Zeroizing::new(parse(&name, &text)?);
    let imported = in_batches(&entries, |batch| {
        let pairs: Vec<(&str, &str)> = batch
            .iter()
            .map(|(u, s)| (u.as_str(), s.as_str()))
            .collect();
        let admin = &admin;
        async move { admin.import_enrollments(&pairs).await }
    })
    .await?;
    Ok(Import {
        imported,
        from: name,
    })
}

/// What one google-authenticator file holds that mfad uses.
#[derive(Debug, PartialEq, Eq)]
pub struct GoogleAuthenticator {
    pub secret: Zeroizing<String>,
    pub period: u32,
    /// A counter-based file's counter: the value of the next code it accepts (HOTP_COUNTER).
    pub counter: Option<u64>,
    /// The newest time step whose code was used (DISALLOW_REUSE).
    pub used: Option<u64>,
    pub scratch_codes: Vec<Zeroizing<String>>,
}

impl GoogleAuthenticator {
    /// The token as mfad imports it: 6 digits, SHA1, as google-authenticator makes them.
    pub fn token(&self, user: &str) -> Result<TokenImport, String> {
        let (kind, period, last_used) = match self.counter {
            Some(counter) => ("hotp", 0, tokens::last_used(counter, true)?),
            None => match self.used {
                Some(step) => ("totp", self.period, tokens::last_used(step, false)?),
                None => ("totp", self.period, -1),
            },
        };
        Ok(TokenImport {
            user: user.to_owned(),
            kind: kind.to_owned(),
            secret: self.secret.to_string(),
            algorithm: "SHA1".into(),
            digits: 6,
            period,
            last_used,
            recovery_codes: self.scratch_codes.iter().map(|c| c.to_string()).collect(),
        })
    }
}

/// Parses a ~/.google_authenticator file: the Base32 secret on the first line, `" OPTION`
/// lines, then 8-digit scratch codes. Errors name the file and line.
pub fn parse_google_authenticator(name: &str, text: &str) -> Result<GoogleAuthenticator, Failure> {
    let mut lines = text.lines().enumerate();
    let secret = match lines.next() {
        Some((_, line)) if !line.trim().is_empty() && !line.starts_with('"') => line.trim(),
        _ => {
            return Err(Failure::input(format!(
                "{name}:1: expected the Base32 secret"
            )));
        }
    };
    let mut period = 30;
    let (mut counter, mut used) = (None, None);
    let mut scratch_codes = Vec::new();
    for (index, line) in lines {
        let line = line.trim();
        let at = || format!("{name}:{}", index + 1);
        if let Some(option) = line.strip_prefix('"') {
            let mut words = option.split_whitespace();
            match words.next() {
                Some("STEP_SIZE") => {
                    period = words.next().and_then(|n| n.parse().ok()).ok_or_else(|| {
                        Failure::input(format!("{}: STEP_SIZE needs a number", at()))
                    })?;
                }
                Some("HOTP_COUNTER") => {
                    let value = words.next().and_then(|n| n.parse().ok()).ok_or_else(|| {
                        Failure::input(format!("{}: HOTP_COUNTER needs a number", at()))
                    })?;
                    counter = Some(value);
                }
                Some("DISALLOW_REUSE") => {
                    for step in words {
                        let step: u64 = step.parse().map_err(|_| {
                            Failure::input(format!(
                                "{}: DISALLOW_REUSE lists time steps, not {step:?}",
                                at()
                            ))
                        })?;
                        used = used.max(Some(step));
                    }
                }
                _ => {}
            }
        } else if line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()) {
            scratch_codes.push(Zeroizing::new(line.to_owned()));
        } else if !line.is_empty() {
            return Err(Failure::input(format!(
                "{}: expected an option line or an 8-digit scratch code",
                at()
            )));
        }
    }
    Ok(GoogleAuthenticator {
        secret: Zeroizing::new(secret.to_owned()),
        period,
        counter,
        used,
        scratch_codes,
    })
}

/// Reads a user's google-authenticator file and says whose it is, the way
/// pam_google_authenticator trusts such a file: opened once without following a symbolic link,
/// and then, on that open file, a regular file with one name, readable and writable by its
/// owner only. Its owner is the user. So nobody can point their file at another user's, or
/// swap it between the check and the read.
fn read_owned(file: &Path) -> Result<(String, Zeroizing<String>), Failure> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let name = file.display();
    let mut opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow())
        .open(file)
        .map_err(|error| {
            Failure::input(format!(
                "cannot open {name}: {error} (a symbolic link is not followed)"
            ))
        })?;
    let metadata = opened
        .metadata()
        .map_err(|error| Failure::input(format!("cannot read {name}: {error}")))?;
    if !metadata.is_file() || metadata.nlink() != 1 {
        return Err(Failure::input(format!(
            "{name} is not a regular file with one name: nothing was imported"
        )));
    }
    if metadata.mode() & 0o077 != 0 {
        return Err(Failure::input(format!(
            "{name} can be read or written by others (mode {:o}); \
             google-authenticator itself refuses such a file: nothing was imported",
            metadata.mode() & 0o777
        )));
    }
    let owner = match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(metadata.uid())) {
        Ok(Some(user)) => user.name,
        _ => {
            return Err(Failure::input(format!(
                "{name}: its owner, uid {}, has no account name",
                metadata.uid()
            )));
        }
    };
    let mut text = Zeroizing::new(String::new());
    opened
        .read_to_string(&mut text)
        .map_err(|error| Failure::input(format!("cannot read {name}: {error}")))?;
    Ok((owner, text))
}

/// `O_NOFOLLOW`, from nix (mfactl has no unsafe code and no libc of its own).
fn libc_o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

pub async fn run_google_authenticator(
    bus: Option<&str>,
    files: &[std::path::PathBuf],
) -> Result<Import, Failure> {
    let admin = connect(bus).await?;
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let (user, text) = read_owned(file)?;
        let parsed = parse_google_authenticator(&file.display().to_string(), &text)?;
        let bits = parsed.secret.trim_end_matches('=').len() * 5;
        if (80..128).contains(&bits) {
            eprintln!(
                "mfactl: warning: {user}: the secret has {bits} bits (google-authenticator's \
                 classic length); it is imported, and `mfactl enroll {user}` would replace it \
                 with a 160-bit one"
            );
        }
        entries.push((user, parsed));
    }
    let mut tokens = TokenImports(Vec::with_capacity(entries.len()));
    for ((user, parsed), file) in entries.iter().zip(files) {
        let token = parsed.token(user).map_err(|why| {
            Failure::input(format!("{}: {why}: nothing was imported", file.display()))
        })?;
        tokens.0.push(token);
    }
    let imported = send_tokens(&admin, &tokens.0).await?;
    Ok(Import {
        imported,
        from: format!("{} google-authenticator files", files.len()),
    })
}

async fn send_tokens(admin: &AdminProxy<'_>, tokens: &[TokenImport]) -> Result<usize, Failure> {
    in_batches(
        tokens,
        |batch| async move { admin.import_tokens(batch).await },
    )
    .await
}

/// What `mfactl import --pam-oath` and `--pskc` read, and from where.
pub enum TokenFile<'a> {
    PamOath(&'a Path),
    Pskc {
        file: &'a Path,
        serials: &'a Path,
        key: Option<&'a Path>,
    },
}

/// Imports the tokens of a pam_oath users file or a PSKC file. An entry that cannot be read
/// stops the import before anything is sent, unless `skip_invalid`: then each is named on
/// stderr and the others are imported.
pub async fn run_tokens(
    bus: Option<&str>,
    file: TokenFile<'_>,
    skip_invalid: bool,
) -> Result<Import, Failure> {
    let (read, from) = match file {
        TokenFile::PamOath(path) => {
            let (name, text) = read_private(path)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            (
                tokens::pam_oath(&name, &text, now),
                format!("pam_oath's {name}"),
            )
        }
        TokenFile::Pskc { file, serials, key } => {
            let (name, text) = read_private(file)?;
            let (serials_name, serials_text) = read_text(serials)?;
            let users = tokens::serials(&serials_name, &serials_text).map_err(Failure::input)?;
            let key = match key {
                Some(path) => {
                    let (key_name, key_text) = read_private(path)?;
                    Some(tokens::pre_shared_key(&key_name, &key_text).map_err(Failure::input)?)
                }
                None => None,
            };
            let read = tokens::pskc(&name, &text, &users, key.as_deref().map(Vec::as_slice))
                .map_err(|why| Failure::input(format!("{why}: nothing was imported")))?;
            (read, format!("the PSKC file {name}"))
        }
    };
    let tokens::Read {
        tokens,
        invalid,
        notes,
    } = read;
    let tokens = TokenImports(tokens);
    for note in &notes {
        eprintln!("mfactl: {note}");
    }
    if !invalid.is_empty() {
        let listed = invalid.join("\n");
        if !skip_invalid {
            return Err(Failure::input(format!(
                "{listed}\nnothing was imported ({} entries cannot be; --skip-invalid imports \
                 the {} others)",
                invalid.len(),
                tokens.0.len()
            )));
        }
        eprintln!("mfactl: {listed}");
        eprintln!(
            "mfactl: warning: {} entries were left out (--skip-invalid)",
            invalid.len()
        );
    }
    let imported = send_tokens(&connect(bus).await?, &tokens.0).await?;
    Ok(Import { imported, from })
}

/// Reads a file that holds secrets, refusing one that others may read or write.
fn read_private(path: &Path) -> Result<(String, Zeroizing<String>), Failure> {
    use std::os::unix::fs::MetadataExt;
    let name = path.display().to_string();
    let mut opened = std::fs::File::open(path)
        .map_err(|error| Failure::input(format!("cannot read {name}: {error}")))?;
    let metadata = opened
        .metadata()
        .map_err(|error| Failure::input(format!("cannot read {name}: {error}")))?;
    if metadata.mode() & 0o077 != 0 {
        return Err(Failure::input(format!(
            "{name} holds secrets but others may read or write it (mode {:o}): make it \
             readable by its owner only (chmod 600); nothing was imported",
            metadata.mode() & 0o777
        )));
    }
    let mut text = Zeroizing::new(String::new());
    opened
        .read_to_string(&mut text)
        .map_err(|error| Failure::input(format!("cannot read {name}: {error}")))?;
    Ok((name, text))
}

/// Reads a file that holds no secret.
fn read_text(path: &Path) -> Result<(String, String), Failure> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::input(format!("cannot read {name}: {error}")))?;
    Ok((name, text))
}

/// Sends `entries` to mfad in batches of [`MAX_IMPORT`], each all or nothing; returns how many
/// were imported, or the error with how many batches went in before it.
async fn in_batches<'e, T, F, Fut>(entries: &'e [T], mut send: F) -> Result<usize, Failure>
where
    F: FnMut(&'e [T]) -> Fut,
    Fut: std::future::Future<Output = Result<u32, pam_mfa_api::Error>>,
{
    let mut imported = 0usize;
    for batch in entries.chunks(MAX_IMPORT) {
        match send(batch).await {
            Ok(count) => imported += count as usize,
            Err(error) => {
                return Err(Failure::from(error).and(&format!(
                    " ({imported} of {} enrollments were imported before this batch)",
                    entries.len()
                )));
            }
        }
    }
    Ok(imported)
}

/// Parses `USER SECRET` lines; errors name the line. Public for the fuzz targets only.
#[doc(hidden)]
pub fn parse(name: &str, text: &str) -> Result<Vec<(String, String)>, Failure> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(user), Some(secret), None) => entries.push((user.to_owned(), secret.to_owned())),
            _ => {
                return Err(Failure::input(format!(
                    "{name}:{}: expected a user name and a Base32 secret",
                    index + 1
                )));
            }
        }
    }
    Ok(entries)
}

impl Report for Import {
    fn text(&self) -> String {
        let plural = if self.imported == 1 { "" } else { "s" };
        format!(
            "imported {} enrollment{plural} from {}",
            self.imported, self.from
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn import_files_are_parsed_with_line_numbers() {
        let text = "# users\nalice GEZDGNBV\n\n  bob\tJBSWY3DP  \n";
        let entries = parse("f", text).ok().unwrap();
        assert_eq!(entries[0], ("alice".to_owned(), "GEZDGNBV".to_owned()));
        assert_eq!(entries[1], ("bob".to_owned(), "JBSWY3DP".to_owned()));
        let Err(failure) = parse("f", "alice S\nbob\n") else {
            panic!("a line without a secret is an error");
        };
        assert_eq!(
            failure.message(),
            "f:2: expected a user name and a Base32 secret"
        );
    }

    #[test]
    fn google_authenticator_files_are_read() {
        let text = "U6GPUQ2LGLU6O5WESPZMZ3UPMI\n\" RATE_LIMIT 3 30\n\" STEP_SIZE 60\n\
                    \" TOTP_AUTH\n30805532\n68689313\n";
        let parsed = parse_google_authenticator("f", text).unwrap();
        assert_eq!(parsed.secret.as_str(), "U6GPUQ2LGLU6O5WESPZMZ3UPMI");
        assert_eq!(parsed.period, 60);
        assert_eq!(parsed.scratch_codes.len(), 2);
        let hotp = "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 4\n\" WINDOW_SIZE 3\n";
        let token = parse_google_authenticator("g", hotp)
            .unwrap()
            .token("lee")
            .unwrap();
        assert_eq!((token.kind.as_str(), token.period), ("hotp", 0));
        assert_eq!(
            token.last_used, 3,
            "the counter is the next value to be used"
        );
        let fresh = parse_google_authenticator("g", "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 0\n");
        assert_eq!(fresh.unwrap().token("lee").unwrap().last_used, -1);
        let huge = "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 9223372036854775808\n";
        let error = parse_google_authenticator("g", huge)
            .unwrap()
            .token("lee")
            .unwrap_err();
        assert_eq!(error, "the counter 9223372036854775808 is too large");
        let reused = "JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE 56 58 57\n\" TOTP_AUTH\n";
        let token = parse_google_authenticator("g", reused)
            .unwrap()
            .token("lee")
            .unwrap();
        assert_eq!((token.kind.as_str(), token.last_used), ("totp", 58));
        let Err(failure) = parse_google_authenticator("g", "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER x\n")
        else {
            panic!("a counter that is not a number is refused");
        };
        assert_eq!(failure.message(), "g:2: HOTP_COUNTER needs a number");
        let Err(failure) = parse_google_authenticator("h", "JBSWY3DPEHPK3PXP\nhello\n") else {
            panic!("junk is refused");
        };
        assert!(
            failure.message().starts_with("h:2:"),
            "{}",
            failure.message()
        );
    }

    #[test]
    fn one_enrollment_is_singular() {
        let report = Import {
            imported: 1,
            from: "-".into(),
        };
        assert_eq!(report.text(), "imported 1 enrollment from -");
        assert_eq!(json(&report), serde_json::json!({ "imported": 1 }));
    }
}
