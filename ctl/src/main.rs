//! `mfactl`: administer pam-mfa through `mfad` over D-Bus.
#![forbid(unsafe_code)]

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use mfactl::cli::{Cli, Command};
use pam_mfa_api::proxy::AdminProxy;
use pam_mfa_api::{Error, UserStatus};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use zeroize::Zeroizing;

/// Reads `on` or `off`.
fn switch(word: &str) -> Result<bool, Failure> {
    match word {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(Failure(format!("expected on or off, not {other:?}"))),
    }
}

/// The target and state of `enforce`: `(None, on)` for --all.
fn enforce_words(all: bool, words: &[String]) -> Result<(Option<&str>, bool), Failure> {
    match (all, words) {
        (true, [state]) => Ok((None, switch(state)?)),
        (false, [user, state]) => Ok((Some(user), switch(state)?)),
        (true, _) => Err(Failure("usage: mfactl enforce --all on|off".into())),
        (false, _) => Err(Failure(
            "usage: mfactl enforce USER on|off (or --all on|off)".into(),
        )),
    }
}

/// An error for the person at the terminal: what went wrong and what to do.
struct Failure(String);

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure(describe(&error))
    }
}

fn describe(error: &Error) -> String {
    if error.is_unreachable() {
        return format!(
            "mfad is not running on this bus ({error}): start mfad (systemctl start mfad.service)"
        );
    }
    match error {
        Error::ZBus(zbus::Error::MethodError(name, text, _))
            if name.as_str() == "org.freedesktop.DBus.Error.AccessDenied" =>
        {
            let text = text.as_deref().unwrap_or_default();
            format!("permission denied by the bus policy: run mfactl as root ({text})")
        }
        Error::ZBus(zbus::Error::FDO(fdo))
            if matches!(**fdo, zbus::fdo::Error::AccessDenied(_)) =>
        {
            format!("permission denied by the bus policy: run mfactl as root ({fdo})")
        }
        Error::PermissionDenied(text) => format!("permission denied: {text}"),
        other => other.to_string(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match zbus::block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("mfactl: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(cli: &Cli) -> Result<AdminProxy<'static>, Failure> {
    let address = pam_mfa_api::bus_address(cli.bus.as_deref());
    let connection = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .map_err(|error| {
            Failure(format!(
                "cannot connect to the D-Bus bus at {address}: {error} (is dbus running?)"
            ))
        })?;
    AdminProxy::builder(&connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|error| Failure(error.to_string()))
}

async fn run(cli: &Cli) -> Result<(), Failure> {
    let admin = connect(cli).await?;
    match &cli.command {
        Command::Enroll { user, secret } => enroll(cli, &admin, user, secret.as_deref()).await,
        Command::Import { file } => import(cli, &admin, file).await,
        Command::Status { user } => {
            let status = admin.status(user).await?;
            if cli.json {
                print_json(&status_json(&status));
            } else {
                print_status(&status);
            }
            Ok(())
        }
        Command::Users => {
            let users = admin.users().await?;
            if cli.json {
                print_json(&serde_json::Value::Array(
                    users.iter().map(status_json).collect(),
                ));
            } else {
                print_table(&users);
            }
            Ok(())
        }
        Command::Reset { user } => {
            let removed = admin.reset(user).await?;
            if cli.json {
                print_json(&serde_json::json!({ "user": user, "removed": removed }));
            } else if removed {
                println!("{user}: enrollment removed; the next login needs a new enrollment");
            } else {
                println!("{user}: was not enrolled; nothing to remove");
            }
            Ok(())
        }
        Command::Enforce { all, words } => match enforce_words(*all, words)? {
            (None, on) => enforce_all(cli, &admin, on).await,
            (Some(user), on) => enforce_user(cli, &admin, user, on).await,
        },
    }
}

async fn enforce_all(cli: &Cli, admin: &AdminProxy<'_>, on: bool) -> Result<(), Failure> {
    admin.set_global_enforcement(on).await?;
    if cli.json {
        print_json(&serde_json::json!({ "all_users": on }));
    } else if on {
        println!("MFA is now required of every user from their next login");
    } else {
        println!("MFA is now required only of users enforced one by one");
    }
    Ok(())
}

async fn enforce_user(
    cli: &Cli,
    admin: &AdminProxy<'_>,
    user: &str,
    on: bool,
) -> Result<(), Failure> {
    admin.set_user_enforcement(user, on).await?;
    let status = admin.status(user).await?;
    if cli.json {
        print_json(&status_json(&status));
        return Ok(());
    }
    match (on, status.enforced) {
        (true, _) if !status.enrolled => println!(
            "{user}: MFA is now required; {user} is not enrolled and cannot log in \
                     through pam_mfa until enrolled (mfactl enroll {user})"
        ),
        (true, _) => println!("{user}: MFA is now required from the next login"),
        (false, true) => println!(
            "{user}: per-user enforcement is off, but MFA stays required because it is \
                     enforced for {}",
            status.enforced_by
        ),
        (false, false) => println!("{user}: MFA is no longer required"),
    }
    Ok(())
}

async fn enroll(
    cli: &Cli,
    admin: &AdminProxy<'_>,
    user: &str,
    secret: Option<&str>,
) -> Result<(), Failure> {
    let secret = Zeroizing::new(secret.unwrap_or_default().to_owned());
    let enrollment = admin.begin_enrollment(user, &secret).await?;
    let shown_secret = Zeroizing::new(enrollment.secret);
    let uri = Zeroizing::new(enrollment.uri);
    if cli.json {
        print_json(&serde_json::json!({ "user": user, "secret": *shown_secret, "uri": *uri }));
    } else {
        let qr = QrCode::new(uri.as_bytes())
            .map_err(|error| Failure(format!("cannot draw the QR code: {error}")))?;
        let image = qr
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build();
        println!("Scan this QR code with an authenticator app for {user}:\n");
        println!("{image}\n");
        println!("Or enter this secret by hand: {}", group(&shown_secret));
        println!("URI: {}\n", *uri);
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    for attempt in 1..=3 {
        if !cli.json || interactive {
            eprint!("Code shown by the app, to confirm: ");
            let _ = std::io::stderr().flush();
        }
        let mut line = Zeroizing::new(String::new());
        let read = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|error| Failure(format!("cannot read the code: {error}")))?;
        if read == 0 {
            return Err(Failure(format!(
                "no code given: the enrollment of {user} is not active; run mfactl enroll {user} again"
            )));
        }
        match admin.confirm_enrollment(user, line.trim()).await {
            Ok(()) => {
                if cli.json {
                    print_json(&serde_json::json!({ "user": user, "enrolled": true }));
                } else {
                    println!("{user} is enrolled: logins now ask for a code from this app");
                }
                return Ok(());
            }
            Err(Error::WrongCode(text)) if attempt < 3 => eprintln!("mfactl: {text}"),
            Err(error) => {
                return Err(Failure(format!(
                    "{}; the enrollment of {user} is not active",
                    describe(&error)
                )));
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// Enrollments `mfad` takes in one call.
const IMPORT_BATCH: usize = 10_000;

/// Parses `USER SECRET` lines; errors name the line.
fn parse_import(name: &str, text: &str) -> Result<Vec<(String, String)>, Failure> {
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
                return Err(Failure(format!(
                    "{name}:{}: expected a user name and a Base32 secret",
                    index + 1
                )));
            }
        }
    }
    Ok(entries)
}

async fn import(cli: &Cli, admin: &AdminProxy<'_>, file: &std::path::Path) -> Result<(), Failure> {
    let name = file.display().to_string();
    let mut text = Zeroizing::new(String::new());
    let read = if name == "-" {
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
    } else {
        std::fs::File::open(file).and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut text))
    };
    read.map_err(|error| Failure(format!("cannot read {name}: {error}")))?;
    let entries = Zeroizing::new(parse_import(&name, &text)?);
    let mut imported = 0usize;
    for batch in entries.chunks(IMPORT_BATCH) {
        let pairs: Vec<(&str, &str)> = batch
            .iter()
            .map(|(u, s)| (u.as_str(), s.as_str()))
            .collect();
        match admin.import_enrollments(&pairs).await {
            Ok(count) => imported += count as usize,
            Err(error) => {
                return Err(Failure(format!(
                    "{} ({imported} of {} enrollments were imported before this batch)",
                    describe(&error),
                    entries.len()
                )));
            }
        }
    }
    if cli.json {
        print_json(&serde_json::json!({ "imported": imported }));
    } else {
        let plural = if imported == 1 { "" } else { "s" };
        println!("imported {imported} enrollment{plural} from {name}");
    }
    Ok(())
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

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn time_or_null(time: i64) -> serde_json::Value {
    if time == 0 {
        serde_json::Value::Null
    } else {
        time.into()
    }
}

fn status_json(status: &UserStatus) -> serde_json::Value {
    serde_json::json!({
        "user": status.user,
        "enrolled": status.enrolled,
        "enforced": status.enforced,
        "enforced_by": status.enforced_by,
        "algorithm": if status.enrolled { Some(&status.algorithm) } else { None },
        "digits": if status.enrolled { Some(status.digits) } else { None },
        "period": if status.enrolled { Some(status.period) } else { None },
        "enrolled_at": time_or_null(status.enrolled_at),
        "last_used": time_or_null(status.last_used),
    })
}

/// A Unix time as UTC `YYYY-MM-DD HH:MM`, or "never".
fn when(time: i64) -> String {
    if time == 0 {
        return "never".into();
    }
    let days = time.div_euclid(86_400);
    let seconds = time.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        seconds / 3600,
        seconds % 3600 / 60
    )
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn print_status(status: &UserStatus) {
    println!("user:      {}", status.user);
    println!("enrolled:  {}", yes_no(status.enrolled));
    if status.enrolled {
        println!(
            "           {} digits, {} s, {}, since {}",
            status.digits,
            status.period,
            status.algorithm,
            when(status.enrolled_at)
        );
    }
    let enforced_by = if status.enforced {
        format!(" (enforced for {})", status.enforced_by)
    } else {
        String::new()
    };
    println!("enforced:  {}{enforced_by}", yes_no(status.enforced));
    println!("last used: {}", when(status.last_used));
}

fn print_table(users: &[UserStatus]) {
    if users.is_empty() {
        println!("no user is enrolled or enforced");
        return;
    }
    let width = users.iter().map(|u| u.user.len()).max().unwrap_or(0).max(4);
    println!(
        "{:width$}  {:8}  {:8}  LAST USE",
        "USER", "ENROLLED", "ENFORCED"
    );
    for status in users {
        println!(
            "{:width$}  {:8}  {:8}  {}",
            status.user,
            yes_no(status.enrolled),
            yes_no(status.enforced),
            when(status.last_used)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_in_utc() {
        assert_eq!(when(0), "never");
        assert_eq!(when(1), "1970-01-01 00:00 UTC");
        assert_eq!(when(1_234_567_890), "2009-02-13 23:31 UTC");
        assert_eq!(when(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn import_files_are_parsed_with_line_numbers() {
        let text = "# users\nalice GEZDGNBV\n\n  bob\tJBSWY3DP  \n";
        let entries = parse_import("f", text).ok().unwrap();
        assert_eq!(entries[0], ("alice".to_owned(), "GEZDGNBV".to_owned()));
        assert_eq!(entries[1], ("bob".to_owned(), "JBSWY3DP".to_owned()));
        let Err(Failure(message)) = parse_import("f", "alice S\nbob\n") else {
            panic!("a line without a secret is an error");
        };
        assert_eq!(message, "f:2: expected a user name and a Base32 secret");
    }

    #[test]
    fn secrets_are_grouped_for_typing() {
        assert_eq!(group("GEZDGNBVGY"), "GEZD GNBV GY");
    }

    #[test]
    fn enforce_takes_a_user_or_all() {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            enforce_words(true, &words(&["on"])).ok(),
            Some((None, true))
        );
        assert_eq!(
            enforce_words(false, &words(&["alice", "off"])).ok(),
            Some((Some("alice"), false))
        );
        assert!(enforce_words(false, &words(&["on"])).is_err());
        assert!(enforce_words(true, &words(&["alice", "on"])).is_err());
        let Err(Failure(message)) = enforce_words(false, &words(&["alice", "yes"])) else {
            panic!("yes is not a switch");
        };
        assert_eq!(message, "expected on or off, not \"yes\"");
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
