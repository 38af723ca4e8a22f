//! `mfactl enroll USER`: show a QR code, then activate the enrollment with a code from the app.
//!
//! The QR code, the secret, the URI and the prompt are for the person enrolling: in text mode
//! they go to stdout (the prompt to stderr); with `--json` all of them go to stderr, and stdout
//! gets only the final report (or the error).

use std::io::{BufRead, Write};

use pam_mfa_api::Error;
use pam_mfa_api::proxy::AdminProxy;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use zeroize::Zeroizing;

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

/// Codes the user may try before the enrollment is given up.
const TRIES: u32 = 3;

/// A confirmed enrollment.
pub struct Enrolled {
    pub user: String,
    pub secret: Zeroizing<String>,
    pub uri: Zeroizing<String>,
    /// Shown once: mfad keeps only their hashes.
    pub recovery_codes: Vec<Zeroizing<String>>,
}

pub async fn run(
    bus: Option<&str>,
    user: &str,
    secret: Option<&str>,
    json: bool,
) -> Result<Enrolled, Failure> {
    let admin = connect(bus).await?;
    let secret = Zeroizing::new(secret.unwrap_or_default().to_owned());
    let enrollment = admin.begin_enrollment(user, &secret).await?;
    let mut enrolled = Enrolled {
        user: user.to_owned(),
        secret: Zeroizing::new(enrollment.secret),
        uri: Zeroizing::new(enrollment.uri),
        recovery_codes: Vec::new(),
    };
    let mut human: Box<dyn Write> = if json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    show(&mut human, &enrolled)
        .map_err(|error| Failure::input(format!("cannot show the enrollment: {error}")))?;
    drop(human);
    enrolled.recovery_codes = confirm(&admin, user)
        .await?
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    Ok(enrolled)
}

/// Writes the QR code, the secret and the URI.
fn show(out: &mut dyn Write, enrolled: &Enrolled) -> std::io::Result<()> {
    let qr = QrCode::new(enrolled.uri.as_bytes()).map_err(std::io::Error::other)?;
    let image = qr
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    writeln!(
        out,
        "Scan this QR code with an authenticator app for {}:\n",
        enrolled.user
    )?;
    writeln!(out, "{image}\n")?;
    writeln!(
        out,
        "Or enter this secret by hand: {}",
        group(&enrolled.secret)
    )?;
    writeln!(out, "URI: {}\n", *enrolled.uri)?;
    out.flush()
}

/// Asks for codes on stderr and stdin until one activates the enrollment; returns the new
/// recovery codes.
async fn confirm(admin: &AdminProxy<'_>, user: &str) -> Result<Vec<String>, Failure> {
    let stdin = std::io::stdin();
    for attempt in 1..=TRIES {
        eprint!("Code shown by the app, to confirm: ");
        let _ = std::io::stderr().flush();
        let mut line = Zeroizing::new(String::new());
        let read = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|error| Failure::input(format!("cannot read the code: {error}")))?;
        if read == 0 {
            eprintln!();
            return Err(Failure::input(format!(
                "no code given: the enrollment of {user} is not active; run mfactl enroll {user} again"
            )));
        }
        match admin.confirm_enrollment(user, line.trim()).await {
            Ok(codes) => return Ok(codes),
            Err(Error::WrongCode(text)) if attempt < TRIES => eprintln!("mfactl: {text}"),
            Err(error) => {
                return Err(
                    Failure::from(error).and(&format!("; the enrollment of {user} is not active"))
                );
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// Base32 in groups of four, easier to type.
fn group(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Report for Enrolled {
    fn text(&self) -> String {
        let mut text = format!(
            "{} is enrolled: logins now ask for a code from this app",
            self.user
        );
        if !self.recovery_codes.is_empty() {
            text.push_str(
                "\n\nRecovery codes, each good for one login in place of a code from the app. \
                 They are shown only now: keep them somewhere safe, away from the phone.\n",
            );
            for code in &self.recovery_codes {
                text.push_str("\n    ");
                text.push_str(code);
            }
        }
        text
    }

    fn json(&self) -> serde_json::Value {
        let codes: Vec<&str> = self
            .recovery_codes
            .iter()
            .map(|code| code.as_str())
            .collect();
        serde_json::json!({
            "user": self.user,
            "secret": *self.secret,
            "uri": *self.uri,
            "enrolled": true,
            "recovery_codes": codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_grouped_for_typing() {
        assert_eq!(group("GEZDGNBVGY"), "GEZD GNBV GY");
    }

    #[test]
    fn the_qr_code_secret_and_uri_are_shown_for_a_person() {
        let enrolled = Enrolled {
            user: "alice".into(),
            secret: Zeroizing::new("GEZDGNBVGY3TQOJQ".into()),
            uri: Zeroizing::new("otpauth://totp/x:alice?secret=GEZDGNBVGY3TQOJQ".into()),
            recovery_codes: vec![Zeroizing::new("k7pqm-3xd9a-hrt2w".into())],
        };
        let mut shown = Vec::new();
        show(&mut shown, &enrolled).unwrap();
        let shown = String::from_utf8(shown).unwrap();
        assert!(shown.contains("for alice:"), "{shown}");
        assert!(shown.contains('▀') || shown.contains('▄'), "{shown}");
        assert!(shown.contains("Or enter this secret by hand: GEZD GNBV GY3T QOJQ"));
        assert!(shown.contains("URI: otpauth://totp/x:alice?secret=GEZDGNBVGY3TQOJQ"));
        assert_eq!(enrolled.json()["enrolled"], true);
        assert_eq!(enrolled.json()["secret"], "GEZDGNBVGY3TQOJQ");
        assert_eq!(enrolled.json()["recovery_codes"][0], "k7pqm-3xd9a-hrt2w");
        assert!(enrolled.text().contains("\n    k7pqm-3xd9a-hrt2w"));
    }
}
