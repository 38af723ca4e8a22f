//! Who may act on which account: the caller of a login, of self-service and of
//! administration, and the name-service lookups that decide it (bounded in time, and cached
//! for root-run logins).

use super::{Caller, Core, bounded, by_name};

use pam_mfa_api::Error;

use crate::audit::Context;
use crate::audit::Event;
use crate::clock::Clock;
use crate::policy;
use crate::store::LoginFacts;
use crate::users::{self, Account, Lookup, UserName};

impl<C: Clock> Core<C> {
    /// The account a login of `user` is for, once `caller` may run it: root may act for anyone;
    /// another uid only for its own account, which is looked up by uid, so that an unprivileged
    /// caller never chooses which name the system's name service is asked about. `None` for a
    /// name the system does not know (root's login of a mistyped or invented name).
    pub(super) fn login_account(
        &self,
        caller: &Caller,
        user: &UserName,
    ) -> Result<Option<UserName>, Error> {
        if caller.uid == 0 {
            let now = std::time::Instant::now();
            let found = self
                .names
                .get_or(user.clone(), now, || by_name(self.lookup_limit(), user));
            return match found? {
                Lookup::Found(Account { name, .. }) => Ok(Some(name)),
                Lookup::Unknown => Ok(None),
            };
        }
        let uid = caller.uid;
        let own = bounded(self.lookup_limit(), move || users::by_uid(uid))?;
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
    /// What is returned is all the login is decided on ([`crate::store::LoginFacts`]), read once.
    pub(super) fn enrolled_without_lookup(
        &self,
        caller: &Caller,
        user: &UserName,
        context: &Context,
    ) -> Result<Option<LoginFacts>, Error> {
        let settings = self.config();
        if caller.uid != 0 || !policy::named_groups(&settings.config).is_empty() {
            return Ok(None);
        }
        let facts = self.dialogue.facts(&settings, user, context, true)?;
        Ok(facts.enrollments.active.is_some().then_some(facts))
    }

    /// The groups named by the rules that `user` is a member of; none for a name the system
    /// does not know, and no lookup when the rules name no group.
    /// `recent`: a recent answer will do (a root-run login; see [`users::Recent`]).
    pub(super) fn memberships(
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
            return ask(user.clone(), groups).map_err(Error::from);
        }
        let key = (user.clone(), groups.clone());
        self.groups
            .get_or(key, std::time::Instant::now(), || ask(user.clone(), groups))
            .map_err(Error::from)
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
    pub(super) fn in_admin_group(&self, uid: u32) -> Result<bool, Error> {
        let group = self.config().config.admin_group.clone();
        if group.is_empty() {
            return Ok(false);
        }
        bounded(self.lookup_limit(), move || users::in_group(uid, &group)).map_err(Error::from)
    }

    /// The caller's own account: looked up by uid, never named by the caller.
    pub(super) fn own_account(&self, caller: &Caller) -> Result<UserName, Error> {
        let uid = caller.uid;
        match bounded(self.lookup_limit(), move || users::by_uid(uid))? {
            Lookup::Found(account) => Ok(account.name),
            Lookup::Unknown => Err(Error::PermissionDenied(format!(
                "uid {uid} has no account in the system user database"
            ))),
        }
    }

    /// The name an administrator's `user` refers to: the system's own spelling of an account
    /// it knows. A name it does not know is accepted only if the store already has something
    /// for it (so a deleted account can be cleaned up); a name that differs only in case from
    /// a known account or a stored user is refused with the right spelling.
    pub(super) fn admin_user(&self, user: &str) -> Result<UserName, Error> {
        let user = UserName::parse(user)?;
        if let Lookup::Found(account) = by_name(self.lookup_limit(), &user)? {
            return Ok(account.name);
        }
        self.not_a_case_variant(&user)?;
        let stored = !self.store.enrollments(&user)?.is_empty()
            || self.store.switches(Some(&user))?.user.is_some();
        if !stored {
            return Err(Error::InvalidArgument(format!(
                "no such user: {user} is not in the system user database"
            )));
        }
        Ok(user)
    }

    /// Refuses `user` if it is a case variant of a known account or of a stored user.
    pub(super) fn not_a_case_variant(&self, user: &UserName) -> Result<(), Error> {
        let name = user.clone();
        let known = bounded(self.lookup_limit(), move || users::case_variant(&name))?;
        let stored = match known {
            Some(other) => Some(other),
            None => self.store.spelled_otherwise(user)?,
        };
        match stored {
            Some(other) => Err(Error::InvalidArgument(format!(
                "{user} is not a user here, but {other} is: user names are case-sensitive; \
                 use {other}"
            ))),
            None => Ok(()),
        }
    }
}
