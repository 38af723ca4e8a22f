//! One module per mfactl command; each connects, does its work and returns its report.

pub mod audit;
pub mod contact;
pub mod disable;
pub mod enforce;
pub mod enroll;
pub mod explain;
pub mod health;
pub mod import;
pub mod recovery_codes;
pub mod reload;
pub mod reseal;
pub mod reset;
pub mod resync;
pub mod status;
pub mod unlock;
pub mod users;

use crate::cli::{Cli, Command};
use crate::failure::Failure;
use crate::report::AnyReport;

/// Runs the command `cli` names.
pub async fn run(cli: &Cli) -> Result<Box<dyn AnyReport>, Failure> {
    let bus = cli.bus.as_deref();
    Ok(match &cli.command {
        Command::Enroll {
            user,
            hotp,
            secret,
            qr_png,
            qr_background,
        } => {
            let display = enroll::Display {
                json: cli.json,
                background: qr_background.into(),
                png: qr_png.as_deref(),
            };
            let token = if *hotp {
                enroll::Token::Counter
            } else {
                enroll::Token::App
            };
            let target = (user.as_deref(), token);
            Box::new(enroll::run(bus, target, secret.as_deref(), display).await?)
        }
        Command::Contact { action } => contact::run(bus, action).await?,
        Command::RecoveryCodes => Box::new(recovery_codes::run(bus).await?),
        Command::Disable => Box::new(disable::run(bus).await?),
        Command::Import {
            google_authenticator,
            pam_oath,
            pskc,
            serials,
            pskc_key,
            skip_invalid,
            files,
        } => {
            if *google_authenticator {
                return Ok(Box::new(
                    import::run_google_authenticator(bus, files).await?,
                ));
            }
            let [file] = files.as_slice() else {
                return Err(Failure::usage(
                    "give one file (several only with --google-authenticator)",
                ));
            };
            let tokens = if *pam_oath {
                import::TokenFile::PamOath(file)
            } else if *pskc {
                import::TokenFile::Pskc {
                    file,
                    serials: serials
                        .as_deref()
                        .ok_or_else(|| Failure::usage("--pskc needs --serials FILE"))?,
                    key: pskc_key.as_deref(),
                }
            } else {
                return Ok(Box::new(import::run(bus, file).await?));
            };
            Box::new(import::run_tokens(bus, tokens, *skip_invalid).await?)
        }
        Command::Resync { user } => Box::new(resync::run(bus, user).await?),
        Command::Status { user } => Box::new(status::run(bus, user.as_deref()).await?),
        Command::Users => Box::new(users::run(bus).await?),
        Command::Reset { user, yes } => Box::new(reset::run(bus, user, *yes).await?),
        Command::Unlock { user } => Box::new(unlock::run(bus, user).await?),
        Command::Explain {
            user,
            service,
            rhost,
        } => Box::new(explain::run(bus, user, service, rhost).await?),
        Command::Reload => Box::new(reload::run(bus).await?),
        Command::Reseal => Box::new(reseal::run(bus).await?),
        Command::Health => Box::new(health::run(bus).await?),
        Command::Audit {
            user,
            since,
            event,
            limit,
        } => Box::new(
            audit::run(
                bus,
                user.as_deref(),
                since.as_deref(),
                event.as_deref(),
                *limit,
            )
            .await?,
        ),
        Command::Enforce { all, words } => Box::new(enforce::run(bus, *all, words).await?),
    })
}
