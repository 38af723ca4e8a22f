//! The configuration as the dialogue uses it: the parsed file, how new enrollments are made,
//! and how long right codes cover later logins.

use pam_mfa_config::Config;

use crate::audit::Context;
use crate::codes::totp::{Kind, Params};
use crate::store::{LockoutRule, RememberTerms};

/// How new enrollments are made: their TOTP parameters and the issuer apps show.
#[derive(Debug, Clone)]
pub struct NewEnrollments {
    pub params: Params,
    pub issuer: String,
}

impl NewEnrollments {
    /// The parameters of a new enrollment of `kind`: a counter-based one has the configured
    /// algorithm and digits, and no period.
    pub fn params_of(&self, kind: Kind) -> Params {
        match kind {
            Kind::Totp => self.params,
            Kind::Hotp => Params::hotp(self.params.algorithm, self.params.digits),
        }
    }
}

/// The configuration in use and what follows from it; a reload replaces it whole, so a call
/// sees one configuration from start to end.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub lockout: LockoutRule,
    pub new_enrollments: NewEnrollments,
}

impl Settings {
    /// Derives the lockout rule and how new enrollments are made; an empty `totp.issuer` is
    /// "pam-mfa on HOSTNAME".
    pub fn new(config: Config) -> Settings {
        let issuer = if config.totp.issuer.is_empty() {
            let host = nix::unistd::gethostname()
                .ok()
                .and_then(|name| name.into_string().ok())
                .unwrap_or_else(|| "localhost".into());
            format!("pam-mfa on {host}")
        } else {
            config.totp.issuer.clone()
        };
        Settings::with_issuer(config, issuer)
    }

    pub fn with_issuer(config: Config, issuer: String) -> Settings {
        let new_enrollments = NewEnrollments {
            params: Params {
                kind: Kind::Totp,
                algorithm: config.totp.algorithm,
                digits: config.totp.digits.get(),
                period: config.totp.period.get(),
            },
            issuer,
        };
        let lockout = LockoutRule {
            failures: config.lockout.failures.get(),
            window: i64::from(config.lockout.window.get()),
            duration: i64::from(config.lockout.duration.get()),
            max_duration: i64::from(config.lockout.max_duration.get()),
        };
        Settings {
            config,
            lockout,
            new_enrollments,
        }
    }

    /// How long right codes given at a login from `context` cover later logins from there;
    /// `None`: not at all. Only logins from a remote host are remembered: without one (su,
    /// sudo, the console) every terminal and every invoking user would look like one place.
    pub fn remember_terms(&self, context: &Context) -> Option<RememberTerms> {
        if context.rhost.is_empty() {
            return None;
        }
        let remember = &self.config.remember;
        let duration = remember.duration_for(&context.service);
        (duration > 0).then(|| RememberTerms {
            duration: i64::from(duration),
            limit: i64::from(remember.limit()),
        })
    }
}
