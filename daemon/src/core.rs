//! The daemon's core: authorization, the login dialogue and the administrator's operations,
//! over a store and a clock. The bus adapters ([`crate::bus`]) translate D-Bus calls into calls
//! of this type, off the bus executor; nothing here knows D-Bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pam_mfa_api::limits::MAX_IMPORT;
use pam_mfa_api::{
    Action, AuditEntry, Error, Explanation, NewEnrollment, Turn, UserStatus, context,
};
use pam_mfa_config::Config;

use crate::audit::{Context, Denial, Event, Scope};
use crate::clock::Clock;
use crate::dialogue::{Dialogue, Settings};
use crate::identity::Caller;
use crate::log;
use crate::policy;
use crate::recovery;
use crate::store::{
    Attempt, AuditFilter, Enrollment, Enrollments, Imported, Proof, Store, StoreError,
    UserEnrollment,
};
use crate::totp::{self, Params, Secret};
use crate::users::{self, Account, Lookup, LookupError, UserName};

pub struct Core<C: Clock> {
    /// Where the configuration is read again on reload; `None`: never (tests).
    config_path: Option<std::path::PathBuf>,
    /// Reloads one at a time, so two cannot interleave their reading and putting in use.
    reloading: std::sync::Mutex<()>,
    store: Arc<Store>,
    dialogue: Dialogue<C>,
    /// Wrong codes given to self-service commands, per user: (count, since).
    wrong_codes: std::sync::Mutex<HashMap<UserName, (u32, u64)>>,
    /// The name service's recent answers about the users of root-run logins.
    names: users::Recent<UserName, Lookup>,
    /// ... and about their membership of the groups the rules name.
    groups: users::Recent<(UserName, Vec<String>), Vec<String>>,
}

/// Wrong codes a user may give to self-service commands in [`WRONG_CODES_WINDOW`] seconds.
const WRONG_CODES_ALLOWED: u32 = 5;
const WRONG_CODES_WINDOW: u64 = 15 * 60;

fn internal(error: StoreError) -> Error {
    log::error(&error.to_string());
    Error::Internal(
        "mfad could not use its state database; nothing was changed (see mfad's log)".into(),
    )
}

fn directory(error: LookupError) -> Error {
    log::error(&error.to_string());
    Error::Internal(format!("{error}; try again later"))
}

/// Runs a name-service lookup on another thread of the blocking pool and waits at most `limit`
/// for it, so a hung LDAP or SSSD holds up only the request that needed it. (The pool starts
/// the work when it is handed over; the future is not needed to run it.)
fn bounded<T: Send + 'static>(
    limit: Duration,
    lookup: impl FnOnce() -> Result<T, LookupError> + Send + 'static,
) -> Result<T, LookupError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    drop(zruntime::unblock(move || {
        let _ = sender.send(lookup());
    }));
    receiver
        .recv_timeout(limit)
        .map_err(|_| LookupError::TimedOut(limit))?
}

fn new_secret() -> Result<Secret, Error> {
    Secret::generate()
        .map_err(|error| Error::Internal(format!("no randomness for a secret: {error}")))
}

fn by_name(limit: Duration, name: &UserName) -> Result<Lookup, LookupError> {
    let name = name.clone();
    bounded(limit, move || users::by_name(&name))
}

impl<C: Clock> Core<C> {
    pub fn new(config: Config, store: Arc<Store>, clock: C) -> Self {
        Core::with_settings(Settings::new(config), store, clock)
    }

    pub fn with_settings(settings: Settings, store: Arc<Store>, clock: C) -> Self {
        let dialogue = Dialogue::new(store.clone(), clock, settings);
        Core {
            config_path: None,
            reloading: std::sync::Mutex::new(()),
            store,
            dialogue,
            wrong_codes: std::sync::Mutex::new(HashMap::new()),
            names: users::Recent::default(),
            groups: users::Recent::default(),
        }
    }

    /// Reads the configuration again from `path` on [`Core::reload`].
    pub fn reloading_from(mut self, path: std::path::PathBuf) -> Self {
        self.config_path = Some(path);
        self
    }

    /// The configuration in use.
    fn config(&self) -> Arc<Settings> {
        self.dialogue.settings()
    }

    /// How long a name-service lookup may take (`lookup_timeout`).
    fn lookup_limit(&self) -> Duration {
        Duration::from_secs(u64::from(self.config().config.lookup_timeout.get()))
    }

    fn emit(&self, caller: &Caller, events: &[Event]) {
        for event in events {
            log::event(event, caller.uid);
        }
    }

    /// The account a login of `user` is for, once `caller` may run it: root may act for anyone;
    /// another uid only for its own account, which is looked up by uid, so that an unprivileged
    /// caller never chooses which name the system's name service is asked about. `None` for a
    /// name the system does not know (root's login of a mistyped or invented name).
    fn login_account(&self, caller: &Caller, user: &UserName) -> Result<Option<UserName>, Error> {
        if caller.uid == 0 {
            let now = std::time::Instant::now();
            let found = self
                .names
                .get_or(user.clone(), now, || by_name(self.lookup_limit(), user));
            return match found.map_err(directory)? {
                Lookup::Found(Account { name, .. }) => Ok(Some(name)),
                Lookup::Unknown => Ok(None),
            };
        }
        let uid = caller.uid;
        let own = bounded(self.lookup_limit(), move || users::by_uid(uid)).map_err(directory)?;
        match own {
            Lookup::Found(account) if account.name == *user => Ok(Some(account.name)),
            _ => {
                let event = Event::LoginRefused {
                    uid: caller.uid,
                    user: user.to_string(),
                };
                self.emit(caller, &[event]);
                Err(Error::PermissionDenied(
                    "only root may authenticate another user".into(),
                ))
            }
        }
    }

    /// The enrollments of `user` when a root-run login can go without asking the name service:
    /// the name, spelled exactly so, has an active enrollment (stored under the system's own
    /// spelling when it was made), and no rule names a group. Then nothing the name service
    /// could say changes the login: an enrolled user is asked for a code whether the system
    /// knows the name or not, and there are no memberships to find. Every other login looks the
    /// name up (another spelling, a user not enrolled, group rules), as do unprivileged callers,
    /// whose own account is what they may log in.
    fn enrolled_without_lookup(
        &self,
        caller: &Caller,
        user: &UserName,
    ) -> Result<Option<Enrollments>, Error> {
        if caller.uid != 0 || !policy::named_groups(&self.config().config).is_empty() {
            return Ok(None);
        }
        let enrollments = self.store.enrollments(user).map_err(internal)?;
        Ok(enrollments.active.is_some().then_some(enrollments))
    }

    pub fn begin(
        &self,
        caller: &Caller,
        user: &str,
        context_values: &HashMap<String, String>,
    ) -> Result<(String, Turn), Error> {
        let value = |key| context_values.get(key).map_or("", String::as_str);
        let context = Context::new(value(context::SERVICE), value(context::RHOST));
        let user = match UserName::parse(user) {
            Ok(user) => user,
            Err(reason) => {
                let event = Event::LoginDenied {
                    user: String::new(),
                    context,
                    why: Denial::InvalidName(reason.clone()),
                };
                self.emit(caller, &[event]);
                return Ok((String::new(), Turn::new(Action::Deny(reason))));
            }
        };
        // Not looked up, so not "known": the login is decided on the enrollments read here,
        // which hold an active one, and a name nobody checked is never enrolled at login.
        let enrolled = self.enrolled_without_lookup(caller, &user)?;
        let (user, known) = match enrolled {
            Some(_) => (user, false),
            None => match self.login_account(caller, &user)? {
                Some(account) => (account, true),
                None => (user, false),
            },
        };
        let member_of = self.memberships(&user, known, caller.uid == 0)?;
        let reply = self
            .dialogue
            .begin(caller, user, known, context, member_of, enrolled)
            .map_err(internal)?;
        self.emit(caller, &reply.events);
        Ok((reply.session, reply.turn))
    }

    /// The groups named by the rules that `user` is a member of; none for a name the system
    /// does not know, and no lookup when the rules name no group.
    /// `recent`: a recent answer will do (a root-run login; see [`users::Recent`]).
    fn memberships(
        &self,
        user: &UserName,
        known: bool,
        recent: bool,
    ) -> Result<Vec<String>, Error> {
        let groups = policy::named_groups(&self.config().config);
        if !known || groups.is_empty() {
            return Ok(Vec::new());
        }
        let limit = self.lookup_limit();
        let ask = |name: UserName, groups: Vec<String>| {
            bounded(limit, move || users::memberships(&name, &groups))
        };
        if !recent {
            return ask(user.clone(), groups).map_err(directory);
        }
        let key = (user.clone(), groups.clone());
        self.groups
            .get_or(key, std::time::Instant::now(), || ask(user.clone(), groups))
            .map_err(directory)
    }

    /// What a login of `user` through `service` from `rhost` would do, and the rule that
    /// decided, as a root-run login would see it; nothing is changed or recorded.
    pub fn explain(&self, user: &str, service: &str, rhost: &str) -> Result<Explanation, Error> {
        let user = UserName::parse(user).map_err(Error::InvalidArgument)?;
        let (user, known) = match by_name(self.lookup_limit(), &user).map_err(directory)? {
            Lookup::Found(account) => (account.name, true),
            Lookup::Unknown => {
                self.not_a_case_variant(&user)?;
                (user, false)
            }
        };
        let member_of = self.memberships(&user, known, false)?;
        // As Linux-PAM gives it to the module.
        let context = Context::new(&service.to_lowercase(), rhost);
        let enrollments = self.store.enrollments(&user).map_err(internal)?;
        let decision = self
            .dialogue
            .decide(
                &self.config(),
                &user,
                known,
                &context,
                member_of.clone(),
                true,
                enrollments,
            )
            .map_err(internal)?;
        Ok(Explanation {
            user: user.to_string(),
            service: context.service,
            rhost: context.rhost,
            next_login: decision.next,
            required: decision.requirement.required,
            rule: decision.requirement.by,
            until: decision.until.unwrap_or(0),
            enrolled: decision.enrollments.active.is_some(),
            groups: member_of,
        })
    }

    /// How long an unfinished login waits for its next answer, as configured now.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.config().config.login.session_timeout.get()))
    }

    /// Days audit entries are kept, as configured now.
    pub fn retention_days(&self) -> u32 {
        self.config().config.audit.retention_days.get()
    }

    /// Seconds after which no remembered code covers a login, as configured now.
    pub fn remember_limit(&self) -> u32 {
        self.config().config.remember.limit()
    }

    /// Records the logins that ended without an outcome; see [`Dialogue::sweep`].
    pub fn sweep(&self) {
        for (event, caller_uid) in self.dialogue.sweep() {
            log::event(&event, caller_uid);
        }
    }

    /// Reads the configuration file again and puts it in use; an invalid one is refused, and
    /// the one in use stays. `caller` is `None` for SIGHUP. Returns what changed, as one line.
    pub fn reload(&self, caller: Option<&Caller>) -> Result<String, Error> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let uid = caller.map_or(0, |caller| caller.uid);
        let by = |event: Event| match caller {
            Some(caller) => event.by(caller.uid),
            None => event,
        };
        let Some(path) = &self.config_path else {
            return Err(Error::Internal(
                "this mfad has no configuration file".into(),
            ));
        };
        let now = self.now();
        let new = match Config::load_existing(path) {
            Ok(new) => new,
            Err(error) => {
                let reason = error.to_string();
                let event = by(Event::ConfigRefused {
                    reason: reason.clone(),
                });
                self.store.record(now, &event).map_err(internal)?;
                log::event(&event, uid);
                return Err(Error::InvalidArgument(format!(
                    "{reason}\nthe configuration in use stays"
                )));
            }
        };
        let old = self.config();
        let mut new = new;
        let mut notes = Vec::new();
        if new.state_dir != old.config.state_dir {
            notes.push(format!(
                "state_dir stays {} until mfad restarts",
                old.config.state_dir.display()
            ));
            new.state_dir = old.config.state_dir.clone();
        }
        if new.login_socket != old.config.login_socket {
            notes.push("login_socket stays as it is until mfad restarts".to_owned());
            new.login_socket = old.config.login_socket.clone();
        }
        if new.store != old.config.store {
            notes.push("[store] stays as it is until mfad restarts".to_owned());
            new.store = old.config.store.clone();
        }
        let changed = crate::reload::changed_keys(&old.config, &new);
        let policy = crate::reload::policy_changes(&old.config, &new);
        let groups = new.clone();
        let unknown_groups = bounded(self.lookup_limit(), move || {
            crate::reload::unknown_groups(&groups)
        })
        .unwrap_or_else(|error| {
            log::warning(&format!("cannot check the groups the rules name: {error}"));
            Vec::new()
        });
        let mut events = vec![by(Event::ConfigReloaded {
            changed: if changed.is_empty() {
                "nothing".into()
            } else {
                changed.join(", ")
            },
        })];
        if !policy.is_empty() {
            events.push(by(Event::PolicyChanged {
                changes: policy.join("; "),
            }));
        }
        for event in &events {
            self.store.record(now, event).map_err(internal)?;
        }
        self.dialogue.replace_settings(Settings::new(new));
        for event in &events {
            log::event(event, uid);
        }
        for group in &unknown_groups {
            notes.push(format!(
                "group {group} is not in the system's group database (yet): it matches no one"
            ));
        }
        for note in &notes {
            log::warning(note);
        }
        let mut summary = if changed.is_empty() {
            "configuration reloaded; nothing changed".to_owned()
        } else {
            format!("configuration reloaded; changed: {}", changed.join(", "))
        };
        for note in notes {
            summary.push_str("\nnote: ");
            summary.push_str(&note);
        }
        Ok(summary)
    }

    pub fn answer(&self, caller: &Caller, session: &str, reply: &str) -> Result<Turn, Error> {
        let reply = self
            .dialogue
            .answer(caller, session, reply)
            .map_err(internal)?
            .ok_or_else(|| {
                Error::NoSuchSession("this login does not exist or has expired; start again".into())
            })?;
        self.emit(caller, &reply.events);
        Ok(reply.turn)
    }

    pub fn cancel(&self, caller: &Caller, session: &str) {
        self.dialogue.cancel(caller, session);
    }

    /// A connection went away: its logins end.
    pub fn connection_closed(&self, connection: &str) {
        self.dialogue.end_connection(connection);
    }

    pub fn require_admin(&self, caller: &Caller) -> Result<(), Error> {
        if caller.uid == 0 || self.in_admin_group(caller.uid)? {
            return Ok(());
        }
        self.emit(caller, &[Event::AdminRefused { uid: caller.uid }]);
        let group = self.config().config.admin_group.clone();
        let how = if group.is_empty() {
            "only root may administer pam-mfa: run mfactl as root (for example with sudo)".into()
        } else {
            format!("only root and members of the group {group} may administer pam-mfa")
        };
        Err(Error::PermissionDenied(how))
    }

    /// Whether the account of `uid` is a member of the configured admin group, as the system's
    /// group database says (supplementary groups through getgrouplist, so LDAP and SSSD groups
    /// count).
    fn in_admin_group(&self, uid: u32) -> Result<bool, Error> {
        let group = self.config().config.admin_group.clone();
        if group.is_empty() {
            return Ok(false);
        }
        bounded(self.lookup_limit(), move || users::in_group(uid, &group)).map_err(directory)
    }

    /// The caller's own account: looked up by uid, never named by the caller.
    fn own_account(&self, caller: &Caller) -> Result<UserName, Error> {
        let uid = caller.uid;
        match bounded(self.lookup_limit(), move || users::by_uid(uid)).map_err(directory)? {
            Lookup::Found(account) => Ok(account.name),
            Lookup::Unknown => Err(Error::PermissionDenied(format!(
                "uid {uid} has no account in the system user database"
            ))),
        }
    }

    /// Counts a wrong code given by `user` to a self-service command; refuses once there were
    /// too many lately, so a session left open cannot be used to guess codes.
    fn check_throttle(&self, user: &UserName, wrong: bool) -> Result<(), Error> {
        let now = self.now() as u64;
        let mut counts = self.wrong_codes.lock().unwrap_or_else(|p| p.into_inner());
        counts.retain(|_, (_, since)| now < *since + WRONG_CODES_WINDOW);
        let entry = counts.entry(user.clone()).or_insert((0, now));
        if wrong {
            entry.0 += 1;
        }
        if entry.0 >= WRONG_CODES_ALLOWED {
            let minutes = (entry.1 + WRONG_CODES_WINDOW)
                .saturating_sub(now)
                .div_ceil(60);
            return Err(Error::TooManyRequests(format!(
                "too many wrong codes; try again in {minutes} minutes"
            )));
        }
        Ok(())
    }

    /// What the user typed, as proof for a change of their own active enrollment: a current
    /// code from the app, or, when `recovery` allows, a recovery code. The try counts towards
    /// the lockout; the caller spends the proof in its change (see [`Core::spent`]).
    fn proof(
        &self,
        user: &UserName,
        active: &Enrollment,
        code: &str,
        recovery: bool,
    ) -> Result<Proof, Error> {
        let now = self.now();
        // Recorded when this try locks the account; the store sets the lock's end.
        let locking = Event::LockedOut {
            user: user.clone(),
            context: Context::new("mfactl", ""),
            until: 0,
        };
        let attempt = self
            .store
            .begin_attempt(user, now, self.dialogue.lockout(), &locking)
            .map_err(internal)?;
        if let Attempt::Locked { until, .. } = attempt {
            return Err(Error::TooManyRequests(crate::dialogue::texts::locked(
                until, now,
            )));
        }
        if recovery && let Some(typed) = recovery::normalize(code) {
            let stored = self
                .store
                .recovery_codes(UserEnrollment {
                    user,
                    id: active.id,
                })
                .map_err(internal)?;
            if let Some(id) = recovery::find(&typed, &stored) {
                return Ok(Proof::RecoveryCode(*id));
            }
        }
        let step = self.dialogue.verify(active, code);
        match step {
            Some(step) => Ok(Proof::Step(step)),
            None => Err(Error::WrongCode(
                "the code does not match: type the code the app shows now".into(),
            )),
        }
    }

    /// After a change: a proof that could not be spent (used meanwhile) is a wrong code. (A
    /// spent one cleared the count of tries in the change's transaction.)
    fn spent(spent: bool) -> Result<(), Error> {
        if spent {
            return Ok(());
        }
        Err(Error::WrongCode(
            "that code was already used; wait for the next one".into(),
        ))
    }

    /// The user's active enrollment, or the error that says there is none.
    fn active(&self, user: &UserName) -> Result<Enrollment, Error> {
        self.store
            .enrollments(user)
            .map_err(internal)?
            .active
            .ok_or_else(|| Error::NotEnrolled(format!("{user} has no authenticator app set up")))
    }

    /// Audit entries. Administrators read anyone's (`user` empty: everyone's); any other
    /// caller reads only their own, whatever `user` says.
    pub fn audit(
        &self,
        caller: &Caller,
        user: &str,
        since: i64,
        kind: &str,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, Error> {
        let admin = caller.uid == 0 || self.in_admin_group(caller.uid)?;
        let user = if admin {
            (!user.is_empty())
                .then(|| UserName::parse(user).map_err(Error::InvalidArgument))
                .transpose()?
        } else {
            Some(self.own_account(caller)?)
        };
        if limit == 0 || limit > MAX_IMPORT as u32 {
            return Err(Error::InvalidArgument(format!(
                "limit {limit}: ask for 1 to {MAX_IMPORT} entries"
            )));
        }
        let filter = AuditFilter {
            user,
            since,
            kind: (!kind.is_empty()).then(|| kind.to_owned()),
            limit: limit as usize,
        };
        let rows = self.store.audit(&filter).map_err(internal)?;
        Ok(rows
            .into_iter()
            .map(|row| AuditEntry {
                time: row.time,
                kind: row.kind,
                user: row.user.unwrap_or_default(),
                host: row.host,
                line: row.line,
            })
            .collect())
    }

    pub fn own_status(&self, caller: &Caller) -> Result<UserStatus, Error> {
        let user = self.own_account(caller)?;
        self.status_of(&user)
    }

    /// Starts an enrollment of the caller's own account. With an app in use, this is its
    /// replacement, which needs a proof from that app (a current code) or a recovery code (the
    /// phone is lost): whoever has only the user's session must not swap the second factor.
    /// Without one, an unfinished enrollment made within `enroll_resume_minutes` is handed back
    /// as it is, so calls in a loop write nothing.
    pub fn own_begin_enrollment(
        &self,
        caller: &Caller,
        proof: &str,
    ) -> Result<NewEnrollment, Error> {
        let user = self.own_account(caller)?;
        let enrollments = self.store.enrollments(&user).map_err(internal)?;
        let Some(active) = enrollments.active else {
            let resume = i64::from(self.config().config.login.enroll_resume_minutes.get()) * 60;
            if let Some(pending) = enrollments
                .pending
                .filter(|pending| pending.created + resume > self.now())
            {
                return self.shown(&user, &pending.secret, pending.params);
            }
            return self.start_enrollment(caller, user, "");
        };
        if proof.is_empty() {
            return Err(Error::WrongCode(format!(
                "{user} already has an authenticator app: replacing it needs a current code \
                 from it, or a recovery code if the phone is lost"
            )));
        }
        let proof = self.proof(&user, &active, proof, true)?;
        let secret = new_secret()?;
        let params = self.params();
        let event = Event::EnrollmentStarted { user: user.clone() }.by(caller.uid);
        let stored = self
            .store
            .put_replacement(
                (
                    UserEnrollment {
                        user: &user,
                        id: active.id,
                    },
                    proof,
                ),
                &secret,
                params,
                self.now(),
                &event,
            )
            .map_err(internal)?;
        Self::spent(stored.is_some())?;
        self.emit(caller, &[event]);
        self.shown(&user, &secret, params)
    }

    pub fn own_confirm_enrollment(
        &self,
        caller: &Caller,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let user = self.own_account(caller)?;
        self.check_throttle(&user, false)?;
        let confirmed = self.finish_enrollment(caller, user.clone(), code);
        if matches!(confirmed, Err(Error::WrongCode(_))) {
            self.check_throttle(&user, true)?;
        }
        confirmed
    }

    pub fn renew_recovery_codes(&self, caller: &Caller, code: &str) -> Result<Vec<String>, Error> {
        let user = self.own_account(caller)?;
        let active = self.active(&user)?;
        let proof = self.proof(&user, &active, code, false)?;
        let issued = self.dialogue.issue_recovery_codes().map_err(internal)?;
        let hashes: Vec<_> = issued.iter().map(|(_, hashed)| hashed.clone()).collect();
        let event = Event::RecoveryCodesRenewed { user: user.clone() }.by(caller.uid);
        let spent = self
            .store
            .replace_recovery_codes(
                UserEnrollment {
                    user: &user,
                    id: active.id,
                },
                proof,
                &hashes,
                self.now(),
                &event,
            )
            .map_err(internal)?;
        Self::spent(spent)?;
        self.emit(caller, &[event]);
        Ok(issued
            .into_iter()
            .map(|(code, _)| code.to_string())
            .collect())
    }

    pub fn disable(&self, caller: &Caller, code: &str) -> Result<(), Error> {
        let user = self.own_account(caller)?;
        let requirement = self.requirement(&user, true)?;
        if requirement.required {
            return Err(Error::Required(format!(
                "MFA is required of {user} (enforced for {}): only an administrator can remove \
                 your app (mfactl reset {user})",
                requirement.by
            )));
        }
        if let Some(service) = self.config().config.enforcement.services.first() {
            return Err(Error::Required(format!(
                "MFA is required for logins through {service} (enforcement.services): only an \
                 administrator can remove your app (mfactl reset {user})"
            )));
        }
        let active = self.active(&user)?;
        let proof = self.proof(&user, &active, code, true)?;
        let event = Event::EnrollmentDisabled { user: user.clone() }.by(caller.uid);
        let spent = self
            .store
            .disable(
                UserEnrollment {
                    user: &user,
                    id: active.id,
                },
                proof,
                self.now(),
                &event,
            )
            .map_err(internal)?;
        Self::spent(spent)?;
        self.dialogue.end_user(&user);
        self.emit(caller, &[event]);
        Ok(())
    }

    /// The name an administrator's `user` refers to: the system's own spelling of an account
    /// it knows. A name it does not know is accepted only if the store already has something
    /// for it (so a deleted account can be cleaned up); a name that differs only in case from
    /// a known account or a stored user is refused with the right spelling.
    fn admin_user(&self, user: &str) -> Result<UserName, Error> {
        let user = UserName::parse(user).map_err(Error::InvalidArgument)?;
        if let Lookup::Found(account) = by_name(self.lookup_limit(), &user).map_err(directory)? {
            return Ok(account.name);
        }
        self.not_a_case_variant(&user)?;
        let stored = !self.store.enrollments(&user).map_err(internal)?.is_empty()
            || self
                .store
                .switches(Some(&user))
                .map_err(internal)?
                .user
                .is_some();
        if !stored {
            return Err(Error::InvalidArgument(format!(
                "no such user: {user} is not in the system user database"
            )));
        }
        Ok(user)
    }

    /// Refuses `user` if it is a case variant of a known account or of a stored user.
    fn not_a_case_variant(&self, user: &UserName) -> Result<(), Error> {
        let name = user.clone();
        let known =
            bounded(self.lookup_limit(), move || users::case_variant(&name)).map_err(directory)?;
        let stored = match known {
            Some(other) => Some(other),
            None => self.store.spelled_otherwise(user).map_err(internal)?,
        };
        match stored {
            Some(other) => Err(Error::InvalidArgument(format!(
                "{user} is not a user here, but {other} is: user names are case-sensitive; \
                 use {other}"
            ))),
            None => Ok(()),
        }
    }

    /// The parameters of new enrollments.
    fn params(&self) -> Params {
        self.dialogue.new_enrollments().params
    }

    /// What a person is shown to set up `secret` for `user`: the secret and its URI.
    fn shown(
        &self,
        user: &UserName,
        secret: &Secret,
        params: Params,
    ) -> Result<NewEnrollment, Error> {
        let issuer = self.dialogue.new_enrollments().issuer;
        let uri =
            totp::otpauth_uri(secret, params, &issuer, user.as_str()).map_err(Error::Internal)?;
        Ok(NewEnrollment {
            secret: secret.to_base32(),
            uri,
        })
    }

    fn now(&self) -> i64 {
        self.dialogue.now() as i64
    }

    pub fn status(&self, user: &str) -> Result<UserStatus, Error> {
        let user = self.admin_user(user)?;
        self.status_of(&user)
    }

    /// Whether MFA is required of `user` wherever they log in from: the rules about users and
    /// groups (a login adds those about its service and remote host).
    fn requirement(&self, user: &UserName, known: bool) -> Result<policy::Requirement, Error> {
        let facts = policy::Facts {
            switches: self.dialogue.switches(user).map_err(internal)?,
            member_of: self.memberships(user, known, false)?,
        };
        let settings = self.config();
        Ok(policy::requirement(
            &settings.config,
            user,
            &facts,
            policy::Place::default(),
        ))
    }

    fn status_of(&self, user: &UserName) -> Result<UserStatus, Error> {
        let requirement = self.requirement(user, true)?;
        self.status_with(user, requirement).map_err(internal)
    }

    fn status_with(
        &self,
        user: &UserName,
        requirement: policy::Requirement,
    ) -> Result<UserStatus, StoreError> {
        let enrollments = self.store.enrollments(user)?;
        let recovery_codes_left = match &enrollments.active {
            Some(active) => {
                let active = UserEnrollment {
                    user,
                    id: active.id,
                };
                self.store.recovery_codes(active)?.len() as u32
            }
            None => 0,
        };
        let locked_until = self.store.locked_until(user, self.now())?.unwrap_or(0);
        let state = policy::State {
            enrolled: enrollments.active.is_some(),
            locked_until: (locked_until > 0).then_some(locked_until),
            remembered_until: None,
            known: true,
            enroll_at_login: self.config().config.login.enroll_at_login,
        };
        let next_login = policy::next_login(&requirement, state);
        let enrollment = enrollments.active;
        Ok(UserStatus {
            user: user.to_string(),
            enrolled: enrollment.is_some(),
            enforced: requirement.required,
            enforced_by: requirement.by,
            algorithm: enrollment
                .as_ref()
                .map(|e| e.params.algorithm.name().to_owned())
                .unwrap_or_default(),
            digits: enrollment.as_ref().map_or(0, |e| e.params.digits),
            period: enrollment.as_ref().map_or(0, |e| e.params.period),
            enrolled_at: enrollment.as_ref().and_then(|e| e.confirmed).unwrap_or(0),
            last_used: enrollment.as_ref().and_then(|e| e.last_used).unwrap_or(0),
            pending: enrollments.pending.is_some(),
            recovery_codes_left,
            locked_until,
            next_login,
        })
    }

    pub fn users(&self) -> Result<Vec<UserStatus>, Error> {
        let names = self.store.users().map_err(internal)?;
        names.iter().map(|user| self.status_of(user)).collect()
    }

    pub fn begin_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        secret: &str,
    ) -> Result<NewEnrollment, Error> {
        let user = self.admin_user(user)?;
        self.start_enrollment(caller, user, secret)
    }

    /// A pending enrollment of `user` with `secret` (Base32), or a new secret when empty.
    fn start_enrollment(
        &self,
        caller: &Caller,
        user: UserName,
        secret: &str,
    ) -> Result<NewEnrollment, Error> {
        let secret = if secret.is_empty() {
            new_secret()?
        } else {
            Secret::from_base32(secret).map_err(Error::InvalidArgument)?
        };
        let params = self.params();
        let event = Event::EnrollmentStarted { user: user.clone() }.by(caller.uid);
        self.store
            .put_pending(&user, &secret, params, self.now(), &event)
            .map_err(internal)?;
        self.emit(caller, &[event]);
        self.shown(&user, &secret, params)
    }

    pub fn import(&self, caller: &Caller, entries: &[(String, String)]) -> Result<u32, Error> {
        self.check_import_size(entries.len())?;
        let params = self.params();
        let mut parsed = Vec::with_capacity(entries.len());
        for (user, secret) in entries {
            let user = UserName::parse(user)
                .map_err(|reason| Error::InvalidArgument(format!("{user:.64?}: {reason}")))?;
            let secret = Secret::from_base32(secret)
                .map_err(|reason| Error::InvalidArgument(format!("{user}: {reason}")))?;
            parsed.push(Imported {
                user,
                secret,
                params,
                recovery: Vec::new(),
            });
        }
        self.store_imported(caller, parsed)
    }

    /// Imports what google-authenticator's files hold: `(user, Base32 secret, period, scratch
    /// codes)`. Secrets of 80 bits and more are accepted (its classic ones are 80); codes are
    /// 6 digits, SHA1, as google-authenticator makes them; scratch codes become recovery codes.
    pub fn import_google_authenticator(
        &self,
        caller: &Caller,
        entries: &[(String, String, u32, Vec<String>)],
    ) -> Result<u32, Error> {
        self.check_import_size(entries.len())?;
        let mut parsed = Vec::with_capacity(entries.len());
        for (user, secret, period, scratch) in entries {
            let user = UserName::parse(user)
                .map_err(|reason| Error::InvalidArgument(format!("{user:.64?}: {reason}")))?;
            let secret = Secret::from_base32_imported(secret)
                .map_err(|reason| Error::InvalidArgument(format!("{user}: {reason}")))?;
            let period = pam_mfa_config::Period::try_from(i64::from(*period))
                .map_err(|reason| Error::InvalidArgument(format!("{user}: {reason}")))?;
            let mut recovery = Vec::with_capacity(scratch.len());
            for code in scratch {
                let typed = recovery::normalize(code).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{user}: a scratch code is not 8 digits (nothing was imported)"
                    ))
                })?;
                recovery.push(recovery::hash(&typed).map_err(|error| {
                    Error::Internal(format!("no randomness for a salt: {error}"))
                })?);
            }
            parsed.push(Imported {
                user,
                secret,
                params: Params {
                    algorithm: pam_mfa_config::Algorithm::Sha1,
                    digits: 6,
                    period: period.get(),
                },
                recovery,
            });
        }
        self.store_imported(caller, parsed)
    }

    fn check_import_size(&self, count: usize) -> Result<(), Error> {
        if count > MAX_IMPORT {
            return Err(Error::InvalidArgument(format!(
                "{count} entries in one call; send at most {MAX_IMPORT} at a time"
            )));
        }
        Ok(())
    }

    /// Stores imported enrollments under the system's own spelling of each name; names the
    /// system does not know are kept as given (directory users not visible on this host),
    /// unless they are case variants.
    fn store_imported(&self, caller: &Caller, mut parsed: Vec<Imported>) -> Result<u32, Error> {
        let mut seen = std::collections::HashSet::new();
        let names: Vec<UserName> = parsed.iter().map(|entry| entry.user.clone()).collect();
        let limit = self.lookup_limit() + Duration::from_millis(names.len() as u64);
        let found = bounded(limit, move || {
            names
                .iter()
                .map(|name| {
                    Ok(match users::by_name(name)? {
                        Lookup::Found(account) => (Some(account.name), None),
                        Lookup::Unknown => (None, users::case_variant(name)?),
                    })
                })
                .collect::<Result<Vec<_>, LookupError>>()
        })
        .map_err(directory)?;
        for (entry, (own, variant)) in parsed.iter_mut().zip(found) {
            let user = &mut entry.user;
            if let Some(other) = variant {
                return Err(Error::InvalidArgument(format!(
                    "{user} is not a user here, but {other} is: user names are case-sensitive; \
                     nothing was imported"
                )));
            }
            if let Some(own) = own {
                *user = own;
            }
            if !seen.insert(user.clone()) {
                return Err(Error::InvalidArgument(format!(
                    "{user} appears twice in the import"
                )));
            }
        }
        let event = Event::EnrollmentsImported {
            count: parsed.len(),
        }
        .by(caller.uid);
        match self
            .store
            .import(&parsed, self.now(), &event)
            .map_err(internal)?
        {
            Ok(count) => {
                self.emit(caller, &[event]);
                Ok(count as u32)
            }
            Err(user) => match self.store.spelled_otherwise(&user).map_err(internal)? {
                Some(other) => Err(Error::InvalidArgument(format!(
                    "{user} differs only in case from {other}, who is already known here; \
                     nothing was imported: user names are case-sensitive, use {other}"
                ))),
                None => Err(Error::AlreadyEnrolled(format!(
                    "{user} is already enrolled; nothing was imported: run `mfactl reset \
                     {user}` or leave {user} out of the import"
                ))),
            },
        }
    }

    pub fn confirm_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let user = self.admin_user(user)?;
        self.finish_enrollment(caller, user, code)
    }

    /// Activates the pending enrollment of `user` with a current `code` from its app.
    fn finish_enrollment(
        &self,
        caller: &Caller,
        user: UserName,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let pending = self
            .store
            .enrollments(&user)
            .map_err(internal)?
            .pending
            .ok_or_else(|| {
                Error::NoPendingEnrollment(format!(
                    "{user} has no enrollment waiting for confirmation: run `mfactl enroll {user}`"
                ))
            })?;
        let now = self.now();
        let step = self.dialogue.verify(&pending, code).ok_or_else(|| {
            Error::WrongCode(
                "the code does not match: type the code the app shows now, and check that \
                     the phone's clock is set automatically"
                    .into(),
            )
        })?;
        let issued = self.dialogue.issue_recovery_codes().map_err(internal)?;
        let hashes: Vec<_> = issued.iter().map(|(_, hashed)| hashed.clone()).collect();
        let event = Event::EnrollmentConfirmed { user: user.clone() }.by(caller.uid);
        if !self
            .store
            .activate(
                UserEnrollment {
                    user: &user,
                    id: pending.id,
                },
                step,
                &hashes,
                now,
                &event,
            )
            .map_err(internal)?
        {
            return Err(Error::NoPendingEnrollment(format!(
                "the enrollment of {user} changed meanwhile: run `mfactl status {user}`"
            )));
        }
        self.emit(caller, &[event]);
        Ok(issued
            .into_iter()
            .map(|(code, _)| code.to_string())
            .collect())
    }

    pub fn unlock(&self, caller: &Caller, user: &str) -> Result<bool, Error> {
        let user = self.admin_user(user)?;
        let event = Event::Unlocked { user: user.clone() }.by(caller.uid);
        let unlocked = self
            .store
            .unlock(&user, self.now(), &event)
            .map_err(internal)?;
        if unlocked {
            self.emit(caller, &[event]);
        }
        Ok(unlocked)
    }

    pub fn reset(&self, caller: &Caller, user: &str) -> Result<bool, Error> {
        let user = self.admin_user(user)?;
        let event = Event::EnrollmentReset {
            user: user.clone(),
            removed: true,
        }
        .by(caller.uid);
        let removed = self
            .store
            .remove_enrollment(&user, self.now(), &event)
            .map_err(internal)?;
        self.dialogue.end_user(&user);
        self.emit(
            caller,
            &[Event::EnrollmentReset { user, removed }.by(caller.uid)],
        );
        Ok(removed)
    }

    pub fn set_global_enforcement(&self, caller: &Caller, on: bool) -> Result<(), Error> {
        let event = Event::EnforcementSet {
            scope: Scope::AllUsers,
            on,
        }
        .by(caller.uid);
        self.store
            .set_global_enforcement(on, self.now(), &event)
            .map_err(internal)?;
        self.emit(caller, &[event]);
        Ok(())
    }

    pub fn global_enforcement(&self) -> Result<bool, Error> {
        let stored = self.store.switches(None).map_err(internal)?;
        Ok(stored
            .global
            .unwrap_or(self.config().config.enforcement.all_users))
    }

    pub fn set_user_enforcement(&self, caller: &Caller, user: &str, on: bool) -> Result<(), Error> {
        let user = self.admin_user(user)?;
        let event = Event::EnforcementSet {
            scope: Scope::User(user.clone()),
            on,
        }
        .by(caller.uid);
        self.store
            .set_user_enforcement(&user, on, self.now(), &event)
            .map_err(internal)?;
        self.emit(caller, &[event]);
        Ok(())
    }
}
