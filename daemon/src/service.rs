//! The D-Bus interfaces of `mfad` and the policy behind them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pam_mfa_api::{
    Action, EnforcedBy, Error, NewEnrollment, Notice, Turn, UserStatus, WireTurn, context,
};
use pam_mfa_config::Config;
use zbus::message::Header;
use zbus::{Connection, interface};

use crate::clock::Clock;
use crate::log;
use crate::sessions::{Refusal, Session, Sessions};
use crate::store::{Enrollment, Store, StoreError};
use crate::totp::{self, Params, Secret};
use crate::users;

const CODE_PROMPT: &str = "Verification code: ";
/// Replies longer than this are not codes; they are refused without further work.
const MAX_REPLY_LEN: usize = 64;
/// Most enrollments one `ImportEnrollments` call takes.
pub const MAX_IMPORT: usize = 10_000;
/// Context values are cut to this length before they reach a log line.
const MAX_CONTEXT_LEN: usize = 128;

/// The state and policy shared by all interfaces.
pub struct Daemon {
    config: Config,
    store: Store,
    clock: Arc<dyn Clock>,
    sessions: Mutex<Sessions>,
    issuer: String,
}

/// Where a login's caller comes from, for the authorization of each request.
pub struct Caller {
    pub uid: u32,
    /// Unique bus name; sessions are bound to it.
    pub name: String,
}

/// Identifies the sender of `header` from the bus's credentials for it (never from arguments).
pub async fn caller(connection: &Connection, header: &Header<'_>) -> Result<Caller, Error> {
    let sender = header
        .sender()
        .ok_or_else(|| Error::PermissionDenied("the request has no sender".into()))?;
    let bus = zbus::fdo::DBusProxy::builder(connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let credentials = bus
        .get_connection_credentials(sender.clone().into())
        .await
        .map_err(|error| Error::PermissionDenied(format!("cannot identify the caller: {error}")))?;
    let uid = credentials
        .unix_user_id()
        .ok_or_else(|| Error::PermissionDenied("the bus did not report the caller's uid".into()))?;
    Ok(Caller {
        uid,
        name: sender.to_string(),
    })
}

fn internal(error: StoreError) -> Error {
    log::error(&error.to_string());
    Error::Internal(
        "mfad could not use its state database; nothing was changed (see mfad's log)".into(),
    )
}

/// Makes a context value safe for a log line: printable ASCII, bounded.
fn printable(value: &str) -> String {
    value
        .chars()
        .take(MAX_CONTEXT_LEN)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

fn new_session_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|error| Error::Internal(format!("no randomness for a session id: {error}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Daemon {
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> Self {
        let issuer = if config.totp.issuer.is_empty() {
            let host = nix::unistd::gethostname()
                .ok()
                .and_then(|name| name.into_string().ok())
                .unwrap_or_else(|| "localhost".into());
            format!("pam-mfa on {host}")
        } else {
            config.totp.issuer.clone()
        };
        Daemon {
            config,
            store,
            clock,
            sessions: Mutex::new(Sessions::default()),
            issuer,
        }
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Whether MFA is required of `user`, and why.
    fn enforcement(&self, user: &str) -> Result<(bool, EnforcedBy), StoreError> {
        let global = self
            .store
            .global_enforcement()?
            .unwrap_or(self.config.enforcement.all_users);
        if global {
            return Ok((true, EnforcedBy::AllUsers));
        }
        if self.store.user_enforcement(user)? == Some(true) {
            return Ok((true, EnforcedBy::User));
        }
        Ok((false, EnforcedBy::NotEnforced))
    }

    fn active_enrollment(&self, user: &str) -> Result<Option<Enrollment>, StoreError> {
        Ok(self
            .store
            .enrollment(user)?
            .filter(|enrollment| enrollment.active))
    }

    fn status(&self, user: &str) -> Result<UserStatus, StoreError> {
        let enrollment = self.active_enrollment(user)?;
        let (enforced, enforced_by) = self.enforcement(user)?;
        Ok(UserStatus {
            user: user.to_owned(),
            enrolled: enrollment.is_some(),
            enforced,
            enforced_by,
            algorithm: enrollment
                .as_ref()
                .map(|e| e.params.algorithm.name().to_owned())
                .unwrap_or_default(),
            digits: enrollment.as_ref().map_or(0, |e| e.params.digits),
            period: enrollment.as_ref().map_or(0, |e| e.params.period),
            enrolled_at: enrollment.as_ref().and_then(|e| e.confirmed).unwrap_or(0),
            last_used: enrollment.as_ref().and_then(|e| e.last_used).unwrap_or(0),
        })
    }

    /// May `caller` run a login for `user`? Root may act for anyone; others only for themselves.
    fn authorize_login(&self, caller: &Caller, user: &str, uid: Option<u32>) -> Result<(), Error> {
        if caller.uid == 0 || uid == Some(caller.uid) {
            return Ok(());
        }
        log::warning(&format!(
            "refused: uid {} asked to authenticate {user}, which is not its own account",
            caller.uid
        ));
        Err(Error::PermissionDenied(
            "only root may authenticate another user".into(),
        ))
    }

    fn begin(
        &self,
        caller: &Caller,
        user: &str,
        context: &HashMap<String, String>,
    ) -> Result<(String, Turn), Error> {
        let service = context.get(context::SERVICE).map_or("", String::as_str);
        let rhost = context.get(context::RHOST).map_or("", String::as_str);
        let described = format!("service={} rhost={}", printable(service), printable(rhost));
        if let Err(reason) = users::validate(user) {
            log::warning(&format!(
                "login denied: invalid user name ({reason}) {described}"
            ));
            return Ok((String::new(), Turn::new(Action::Deny(reason))));
        }
        let account = users::lookup(user);
        self.authorize_login(caller, user, account.as_ref().map(|(_, uid)| *uid))?;
        let user = account.as_ref().map_or(user, |(own, _)| own.as_str());
        let enrollment = self.active_enrollment(user).map_err(internal)?;
        let Some(_) = enrollment else {
            // Enforcement only matters without an enrollment: an enrolled user is always asked.
            let (enforced, _) = self.enforcement(user).map_err(internal)?;
            if enforced {
                log::warning(&format!(
                    "login denied: user={user} must use MFA but is not enrolled {described}"
                ));
                let turn = Turn::new(Action::Deny("enforced but not enrolled".into())).with_notice(
                    Notice::Error(
                        "Two-factor authentication is required for this account, but no \
                         authenticator is enrolled. Contact your system administrator."
                            .into(),
                    ),
                );
                return Ok((String::new(), turn));
            }
            log::info(&format!(
                "login skipped: user={user} is not enrolled and not enforced {described}"
            ));
            return Ok((String::new(), Turn::new(Action::Skip)));
        };
        let now = self.now();
        let id = new_session_id()?;
        let session = Session {
            owner: caller.name.clone(),
            user: user.to_owned(),
            tries_left: self.config.login.max_tries.get(),
            expires: now + u64::from(self.config.login.session_timeout.get()),
            context: described.clone(),
        };
        let limit = self.config.login.max_sessions_per_user.get();
        if self.sessions().insert(id.clone(), session, limit, now) == Err(Refusal::TooManyForUser) {
            log::warning(&format!(
                "login denied: user={user} has {limit} logins in progress {described}"
            ));
            let turn = Turn::new(Action::Deny("too many logins in progress".into())).with_notice(
                Notice::Error(
                    "Too many logins are in progress for this account. Try again later.".into(),
                ),
            );
            return Ok((String::new(), turn));
        }
        Ok((id, Turn::new(Action::AskHidden(CODE_PROMPT.into()))))
    }

    /// `sender` is the unique bus name of the caller: the session was authorized for the
    /// connection that began it, and the bus never gives that name to anyone else.
    fn answer(&self, sender: &str, id: &str, reply: &str) -> Result<Turn, Error> {
        let now = self.now();
        let mut session = self.sessions().take(id, sender, now).map_err(|_| {
            Error::NoSuchSession("this login does not exist or has expired; start again".into())
        })?;
        let user = session.user.clone();
        let Some(enrollment) = self.active_enrollment(&user).map_err(internal)? else {
            log::warning(&format!(
                "login denied: user={user} was reset during the login {}",
                session.context
            ));
            return Ok(Turn::new(Action::Deny(
                "enrollment removed during the login".into(),
            )));
        };
        let matched = if reply.len() > MAX_REPLY_LEN {
            None
        } else {
            totp::verify(
                &enrollment.secret,
                enrollment.params,
                reply,
                now,
                self.config.totp.window.get(),
                None,
            )
        };
        let replayed = match matched {
            Some(step) => {
                if self
                    .store
                    .consume_step(&user, &enrollment.secret, step, now as i64)
                    .map_err(internal)?
                {
                    log::info(&format!("login allowed: user={user} {}", session.context));
                    return Ok(Turn::new(Action::Allow));
                }
                true
            }
            None => false,
        };
        session.tries_left = session.tries_left.saturating_sub(1);
        let why = if replayed {
            "code already used"
        } else {
            "wrong code"
        };
        let notice = match (replayed, session.tries_left) {
            (true, _) => "This code was already used; wait for the next one.",
            (false, 0) => "Wrong code.",
            (false, _) => "Wrong code. Try again.",
        };
        if session.tries_left == 0 {
            log::warning(&format!(
                "login denied: user={user} {why}, no tries left {}",
                session.context
            ));
            return Ok(Turn::new(Action::MaxTries).with_notice(Notice::Error(notice.into())));
        }
        log::info(&format!(
            "login attempt failed: user={user} {why}, {} tries left {}",
            session.tries_left, session.context
        ));
        self.sessions().put_back(id.to_owned(), session);
        Ok(Turn::new(Action::AskHidden(CODE_PROMPT.into()))
            .with_notice(Notice::Error(notice.into())))
    }

    fn require_admin(&self, caller: &Caller) -> Result<(), Error> {
        if caller.uid == 0 {
            return Ok(());
        }
        log::warning(&format!(
            "refused: uid {} called an administrator method",
            caller.uid
        ));
        Err(Error::PermissionDenied(
            "only root may administer pam-mfa: run mfactl as root (for example with sudo)".into(),
        ))
    }

    /// Validates `user` for an administrative change: well-formed, and known to the system
    /// unless the store already has something for it (so a deleted account can be cleaned up).
    fn admin_user(&self, user: &str) -> Result<(), Error> {
        users::validate(user).map_err(Error::InvalidArgument)?;
        let known_here = self.store.enrollment(user).map_err(internal)?.is_some()
            || self
                .store
                .user_enforcement(user)
                .map_err(internal)?
                .is_some();
        if !known_here && users::lookup(user).is_none() {
            return Err(Error::InvalidArgument(format!(
                "no such user: {user} is not in the system user database"
            )));
        }
        Ok(())
    }

    fn begin_enrollment(&self, user: &str, secret: &str) -> Result<NewEnrollment, Error> {
        self.admin_user(user)?;
        let secret = if secret.is_empty() {
            Secret::generate()
                .map_err(|error| Error::Internal(format!("no randomness for a secret: {error}")))?
        } else {
            Secret::from_base32(secret).map_err(Error::InvalidArgument)?
        };
        let params = Params {
            algorithm: self.config.totp.algorithm,
            digits: self.config.totp.digits.get(),
            period: self.config.totp.period.get(),
        };
        let uri =
            totp::otpauth_uri(&secret, params, &self.issuer, user).map_err(Error::Internal)?;
        if !self
            .store
            .put_pending(user, &secret, params, self.now() as i64)
            .map_err(internal)?
        {
            return Err(Error::AlreadyEnrolled(format!(
                "{user} is already enrolled: run `mfactl reset {user}` first to replace the authenticator"
            )));
        }
        log::info(&format!("enrollment started: user={user}"));
        Ok(NewEnrollment {
            secret: secret.to_base32(),
            uri,
        })
    }

    fn import(&self, entries: &[(String, String)]) -> Result<u32, Error> {
        if entries.len() > MAX_IMPORT {
            return Err(Error::InvalidArgument(format!(
                "{} entries in one call; send at most {MAX_IMPORT} at a time",
                entries.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        let mut parsed = Vec::with_capacity(entries.len());
        for (user, secret) in entries {
            users::validate(user)
                .map_err(|reason| Error::InvalidArgument(format!("{user:.64?}: {reason}")))?;
            if !seen.insert(user.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "{user} appears twice in the import"
                )));
            }
            let secret = Secret::from_base32(secret)
                .map_err(|reason| Error::InvalidArgument(format!("{user}: {reason}")))?;
            parsed.push((user.clone(), secret));
        }
        let params = Params {
            algorithm: self.config.totp.algorithm,
            digits: self.config.totp.digits.get(),
            period: self.config.totp.period.get(),
        };
        match self
            .store
            .import(&parsed, params, self.now() as i64)
            .map_err(internal)?
        {
            Ok(count) => {
                log::info(&format!("imported {count} enrollments"));
                Ok(count as u32)
            }
            Err(user) => Err(Error::AlreadyEnrolled(format!(
                "{user} is already enrolled; nothing was imported: run `mfactl reset {user}` \
                 or leave {user} out of the import"
            ))),
        }
    }

    fn confirm_enrollment(&self, user: &str, code: &str) -> Result<(), Error> {
        users::validate(user).map_err(Error::InvalidArgument)?;
        let pending = self
            .store
            .enrollment(user)
            .map_err(internal)?
            .filter(|enrollment| !enrollment.active)
            .ok_or_else(|| {
                Error::NoPendingEnrollment(format!(
                    "{user} has no enrollment waiting for confirmation: run `mfactl enroll {user}`"
                ))
            })?;
        let now = self.now();
        let step = (code.len() <= MAX_REPLY_LEN)
            .then(|| {
                totp::verify(
                    &pending.secret,
                    pending.params,
                    code,
                    now,
                    self.config.totp.window.get(),
                    None,
                )
            })
            .flatten()
            .ok_or_else(|| {
                Error::WrongCode(
                    "the code does not match: type the code the app shows now, and check that \
                     the phone's clock is set automatically"
                        .into(),
                )
            })?;
        if !self
            .store
            .activate(user, &pending.secret, step, now as i64)
            .map_err(internal)?
        {
            return Err(Error::NoPendingEnrollment(format!(
                "the enrollment of {user} changed meanwhile: run `mfactl status {user}`"
            )));
        }
        log::info(&format!("enrollment confirmed: user={user}"));
        Ok(())
    }

    fn reset(&self, user: &str) -> Result<bool, Error> {
        users::validate(user).map_err(Error::InvalidArgument)?;
        let removed = self.store.remove_enrollment(user).map_err(internal)?;
        self.sessions().end_user(user);
        log::info(&format!("enrollment reset: user={user} removed={removed}"));
        Ok(removed)
    }
}

/// `org.pam_mfa.Mfad1.Login`: the login dialogue.
pub struct LoginInterface(pub Arc<Daemon>);

#[interface(name = "org.pam_mfa.Mfad1.Login")]
impl LoginInterface {
    async fn begin(
        &self,
        user: String,
        context: HashMap<String, String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(String, WireTurn), Error> {
        let caller = caller(connection, &header).await?;
        let (id, turn) = self.0.begin(&caller, &user, &context)?;
        Ok((id, turn.into()))
    }

    async fn answer(
        &self,
        session: String,
        reply: String,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<WireTurn, Error> {
        let reply = zeroize::Zeroizing::new(reply);
        let sender = header
            .sender()
            .ok_or_else(|| Error::PermissionDenied("the request has no sender".into()))?;
        Ok(self.0.answer(sender.as_str(), &session, &reply)?.into())
    }

    async fn cancel(
        &self,
        session: String,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        let sender = header
            .sender()
            .ok_or_else(|| Error::PermissionDenied("the request has no sender".into()))?;
        let _ = self
            .0
            .sessions()
            .take(&session, sender.as_str(), self.0.now());
        Ok(())
    }
}

/// `org.pam_mfa.Mfad1.Admin`: administration, for root only.
pub struct AdminInterface(pub Arc<Daemon>);

impl AdminInterface {
    async fn admin(&self, connection: &Connection, header: &Header<'_>) -> Result<&Daemon, Error> {
        let caller = caller(connection, header).await?;
        self.0.require_admin(&caller)?;
        Ok(&self.0)
    }
}

#[interface(name = "org.pam_mfa.Mfad1.Admin")]
impl AdminInterface {
    async fn begin_enrollment(
        &self,
        user: String,
        secret: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<NewEnrollment, Error> {
        let secret = zeroize::Zeroizing::new(secret);
        self.admin(connection, &header)
            .await?
            .begin_enrollment(&users::canonical(&user), &secret)
    }

    /// Adds active enrollments for `(user, Base32 secret)` pairs, all or none.
    async fn import_enrollments(
        &self,
        entries: Vec<(String, String)>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u32, Error> {
        let entries = zeroize::Zeroizing::new(entries);
        self.admin(connection, &header).await?.import(&entries)
    }

    async fn confirm_enrollment(
        &self,
        user: String,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let code = zeroize::Zeroizing::new(code);
        self.admin(connection, &header)
            .await?
            .confirm_enrollment(&users::canonical(&user), &code)
    }

    async fn reset(
        &self,
        user: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<bool, Error> {
        self.admin(connection, &header)
            .await?
            .reset(&users::canonical(&user))
    }

    async fn status(
        &self,
        user: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<UserStatus, Error> {
        let daemon = self.admin(connection, &header).await?;
        let user = users::canonical(&user);
        daemon.admin_user(&user)?;
        daemon.status(&user).map_err(internal)
    }

    async fn users(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<UserStatus>, Error> {
        let daemon = self.admin(connection, &header).await?;
        let names = daemon.store.users().map_err(internal)?;
        names
            .iter()
            .map(|user| daemon.status(user).map_err(internal))
            .collect()
    }

    async fn set_global_enforcement(
        &self,
        on: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let daemon = self.admin(connection, &header).await?;
        daemon.store.set_global_enforcement(on).map_err(internal)?;
        log::info(&format!(
            "enforcement for all users set to {}",
            if on { "on" } else { "off" }
        ));
        Ok(())
    }

    async fn global_enforcement(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<bool, Error> {
        let daemon = self.admin(connection, &header).await?;
        Ok(daemon
            .store
            .global_enforcement()
            .map_err(internal)?
            .unwrap_or(daemon.config.enforcement.all_users))
    }

    async fn set_user_enforcement(
        &self,
        user: String,
        on: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let daemon = self.admin(connection, &header).await?;
        let user = users::canonical(&user);
        daemon.admin_user(&user)?;
        daemon
            .store
            .set_user_enforcement(&user, on)
            .map_err(internal)?;
        log::info(&format!(
            "enforcement for user={user} set to {}",
            if on { "on" } else { "off" }
        ));
        Ok(())
    }
}
