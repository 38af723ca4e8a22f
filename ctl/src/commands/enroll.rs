//! `mfactl enroll [USER]`: show a QR code, then activate the enrollment with a code from the
//! app, then show the recovery codes once. Without USER, for the caller's own account.
//!
//! If the account already has an app, this sets up its replacement: the old app keeps working
//! until the new one is confirmed, then stops.
//!
//! The QR code, the secret, the URI and the prompt are for the person enrolling: in text mode
//! they go to stdout (the prompt to stderr); with `--json` all of them go to stderr, and stdout
//! gets only the final report (or the error).

use std::io::Write;
use std::path::Path;

use pam_mfa_api::proxy::{AdminProxy, UserProxy};
use pam_mfa_api::{Error, NewEnrollment};
use pam_mfa_config::QrBackground;
use zeroize::Zeroizing;

use crate::connect::{connect, connect_user};
use crate::failure::Failure;
use crate::prompt::read_code;
use crate::report::{Report, True};

/// Codes the user may try before the enrollment is given up.
const TRIES: u32 = 3;

/// Whose enrollment: the caller's own (self-service) or a named user's (administration).
enum Target {
    Own(UserProxy<'static>),
    Other(AdminProxy<'static>, String),
}

impl Target {
    /// An enrollment of `kind`; `secret` for an administrator's, `proof` for the caller's own
    /// replacement.
    async fn begin(&self, kind: &str, secret: &str, proof: &str) -> Result<NewEnrollment, Error> {
        match self {
            Target::Own(user) => user.begin_enrollment(kind, proof).await,
            Target::Other(admin, name) => admin.begin_enrollment(name, kind, secret).await,
        }
    }

    async fn confirm(&self, code: &str) -> Result<Vec<String>, Error> {
        match self {
            Target::Own(user) => user.confirm_enrollment(code).await,
            Target::Other(admin, name) => admin.confirm_enrollment(name, code).await,
        }
    }

    /// The account's name, as mfad knows it.
    /// The account's name as mfad knows it, and whether it replaces an app the caller must
    /// prove they hold (self-service only).
    async fn name(&self) -> Result<(String, bool), Error> {
        match self {
            Target::Own(user) => {
                let status = user.status().await?;
                Ok((status.user, status.enrolled))
            }
            Target::Other(_, name) => Ok((name.clone(), false)),
        }
    }
}

/// What is set up: an authenticator app (time-based codes), or a counter-based token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Token {
    App,
    /// HOTP: an app set up for counter-based codes, or a hardware token (its secret given).
    Counter,
}

impl Token {
    fn kind(self) -> &'static str {
        match self {
            Token::App => "totp",
            Token::Counter => "hotp",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Token::App => "an authenticator app",
            Token::Counter => "a counter-based (HOTP) token",
        }
    }

    fn prompt(self) -> &'static str {
        match self {
            Token::App => "Code shown by the app, to confirm: ",
            Token::Counter => "Code the token shows (press its button), to confirm: ",
        }
    }
}

/// How `enroll` shows the QR code.
pub struct Display<'a> {
    pub json: bool,
    pub background: QrBackground,
    /// Also write the QR code as a PNG image here (mode 0600: it holds the secret).
    pub png: Option<&'a Path>,
}

/// A confirmed enrollment.
#[derive(serde::Serialize)]
pub struct Enrolled {
    pub user: String,
    /// `totp` or `hotp`.
    pub token: &'static str,
    pub secret: Zeroizing<String>,
    pub uri: Zeroizing<String>,
    pub enrolled: True,
    /// Shown once: mfad keeps only their hashes.
    pub recovery_codes: Vec<Zeroizing<String>>,
}

pub async fn run(
    bus: Option<&str>,
    (user, token): (Option<&str>, Token),
    secret: Option<&str>,
    display: Display<'_>,
) -> Result<Enrolled, Failure> {
    let target = match user {
        Some(user) => Target::Other(connect(bus).await?, user.to_owned()),
        None if secret.is_some() => {
            return Err(Failure::usage(
                "--secret needs a USER: only an administrator chooses a secret",
            ));
        }
        None => Target::Own(connect_user(bus).await?),
    };
    // The image file first: a path that cannot be used stops everything before mfad does
    // anything.
    let png = display.png.map(create_png).transpose()?;
    let (name, replacing) = target.name().await?;
    let proof = if replacing {
        read_code(
            "You have an authenticator app: a code from it (or a recovery code if the phone \
             is lost), to replace it: ",
        )?
        .ok_or_else(|| Failure::input("no code given: nothing was changed"))?
    } else {
        Zeroizing::new(String::new())
    };
    let secret = Zeroizing::new(secret.unwrap_or_default().to_owned());
    let enrollment = target.begin(token.kind(), &secret, &proof).await?;
    let mut enrolled = Enrolled {
        user: name,
        token: token.kind(),
        secret: Zeroizing::new(enrollment.secret),
        uri: Zeroizing::new(enrollment.uri),
        enrolled: True,
        recovery_codes: Vec::new(),
    };
    if let (Some(file), Some(path)) = (png, display.png) {
        write_png(file, path, &enrolled.uri)?;
    }
    let mut human: Box<dyn Write> = if display.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    show(&mut human, &enrolled, token, display.background)
        .map_err(|error| Failure::input(format!("cannot show the enrollment: {error}")))?;
    drop(human);
    enrolled.recovery_codes = confirm(&target, &enrolled.user, token)
        .await?
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    Ok(enrolled)
}

/// Creates the image file, readable by its owner only; never an existing one.
fn create_png(path: &Path) -> Result<std::fs::File, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| {
            Failure::input(format!(
                "cannot create {}: {error} (it must not exist yet)",
                path.display()
            ))
        })
}

/// Writes the QR code of `uri` as a PNG image into `file`.
fn write_png(mut file: std::fs::File, path: &Path, uri: &str) -> Result<(), Failure> {
    let image = pam_mfa_qr::png(uri, 8).ok_or_else(|| {
        Failure::input("the otpauth URI is too long for a QR code; use the secret shown")
    })?;
    file.write_all(&image)
        .map_err(|error| Failure::input(format!("cannot write {}: {error}", path.display())))
}

/// Writes the QR code, the secret and the URI.
fn show(
    out: &mut dyn Write,
    enrolled: &Enrolled,
    token: Token,
    background: QrBackground,
) -> std::io::Result<()> {
    let heading = format!("Set up {} for {}.", token.what(), enrolled.user);
    let block = pam_mfa_qr::enrollment_block(&heading, &enrolled.uri, &enrolled.secret, background);
    writeln!(out, "{block}\n")?;
    out.flush()
}

/// Asks for codes on stderr and stdin until one activates the enrollment; returns the new
/// recovery codes.
async fn confirm(target: &Target, user: &str, token: Token) -> Result<Vec<String>, Failure> {
    for attempt in 1..=TRIES {
        let Some(code) = read_code(token.prompt())? else {
            return Err(Failure::input(format!(
                "no code given: the new app of {user} is not active; run mfactl enroll again"
            )));
        };
        match target.confirm(&code).await {
            Ok(codes) => return Ok(codes),
            Err(Error::WrongCode(text)) if attempt < TRIES => eprintln!("mfactl: {text}"),
            Err(error) => {
                return Err(
                    Failure::from(error).and(&format!("; the new app of {user} is not active"))
                );
            }
        }
    }
    unreachable!("the last attempt returns")
}

impl Report for Enrolled {
    fn text(&self) -> String {
        let from = if self.token == "hotp" {
            "this token"
        } else {
            "this app"
        };
        let mut text = format!(
            "{} is enrolled: logins now ask for a code from {from}",
            self.user
        );
        if !self.recovery_codes.is_empty() {
            text.push_str(&recovery_codes_text(&self.recovery_codes));
        }
        text
    }
}

/// The recovery codes as shown once, after an enrollment or a renewal.
pub fn recovery_codes_text(codes: &[Zeroizing<String>]) -> String {
    let mut text = String::from(
        "\n\nRecovery codes, each good for one login in place of a code from the app. They are \
         shown only now: keep them somewhere safe, away from the phone.\n",
    );
    for code in codes {
        text.push_str("\n    ");
        text.push_str(code);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn the_qr_code_secret_and_uri_are_shown_for_a_person() {
        let enrolled = Enrolled {
            user: "alice".into(),
            token: "totp",
            secret: Zeroizing::new("GEZDGNBVGY3TQOJQ".into()),
            uri: Zeroizing::new("otpauth://totp/x:alice?secret=GEZDGNBVGY3TQOJQ".into()),
            enrolled: True,
            recovery_codes: vec![Zeroizing::new("k7pqm-3xd9a-hrt2w".into())],
        };
        let mut shown = Vec::new();
        show(&mut shown, &enrolled, Token::App, QrBackground::Dark).unwrap();
        let shown = String::from_utf8(shown).unwrap();
        assert!(
            shown.starts_with("Set up an authenticator app for alice.\n"),
            "{shown}"
        );
        assert!(shown.contains('▀') || shown.contains('▄'), "{shown}");
        assert!(shown.contains("by hand: GEZD GNBV GY3T QOJQ"));
        assert!(shown.contains("URI: otpauth://totp/x:alice?secret=GEZDGNBVGY3TQOJQ"));
        assert_eq!(json(&enrolled)["enrolled"], true);
        assert_eq!(json(&enrolled)["secret"], "GEZDGNBVGY3TQOJQ");
        assert_eq!(json(&enrolled)["recovery_codes"][0], "k7pqm-3xd9a-hrt2w");
        assert!(enrolled.text().contains("\n    k7pqm-3xd9a-hrt2w"));
    }

    #[test]
    fn the_report_holds_the_secret_uri_and_recovery_codes() {
        let enrolled = Enrolled {
            user: "alice".into(),
            token: "totp",
            secret: Zeroizing::new("GEZDGNBVGY3TQOJQ".into()),
            uri: Zeroizing::new("otpauth://totp/x:alice?secret=GEZDGNBVGY3TQOJQ".into()),
            enrolled: True,
            recovery_codes: vec![
                Zeroizing::new("k7pqm-3xd9a-hrt2w".into()),
                Zeroizing::new("a2b3c-d4e5f-g6h7j".into()),
            ],
        };
        assert_eq!(
            json(&enrolled),
            serde_json::json!({
                "user": "alice",
                "token": "totp",
                "secret": "GEZDGNBVGY3TQOJQ",
                "uri": "otpauth://totp/x:alice?secret=GEZDGNBVGY3TQOJQ",
                "enrolled": true,
                "recovery_codes": ["k7pqm-3xd9a-hrt2w", "a2b3c-d4e5f-g6h7j"],
            })
        );
    }
}
