//! User names: one validated type, and the system user database (NSS) behind a time limit.

use std::fmt;
use std::time::Duration;

use nix::unistd::{Uid, User};
use pam_mfa_api::limits::MAX_USER_LEN;

/// A well-formed user name: 1 to 255 bytes of ASCII letters, digits and `. _ - @ $ \`, not
/// starting with `-`. Names from LDAP or AD (`user@domain`, `DOMAIN\user`) and machine accounts
/// (`host$`) fit. Every entry point (login, import, enforce, reset, status) makes one of these
/// before anything else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

impl UserName {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_USER_LEN {
            return Err(NameError::TooLong(name.len()));
        }
        if name.starts_with('-') {
            return Err(NameError::LeadingDash);
        }
        if let Some(bad) = name.chars().find(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '$' | '\\'))
        }) {
            return Err(NameError::Forbidden(bad));
        }
        Ok(UserName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a text is not a user name pam-mfa accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// Longer than [`MAX_USER_LEN`] bytes: this many.
    TooLong(usize),
    LeadingDash,
    /// A character user names cannot contain.
    Forbidden(char),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("the user name is empty"),
            NameError::TooLong(length) => write!(
                f,
                "the user name is {length} bytes long; at most {MAX_USER_LEN} are allowed"
            ),
            NameError::LeadingDash => f.write_str("a user name cannot start with '-'"),
            NameError::Forbidden(bad) => write!(
                f,
                "the user name contains {bad:?}, which user names cannot contain"
            ),
        }
    }
}

impl std::error::Error for NameError {}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account of the system user database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The database's own spelling of the name: state is kept under it, so no other spelling
    /// (a case variant in a case-insensitive directory, an alias) escapes enforcement.
    pub name: UserName,
    pub uid: u32,
}

/// What the system user database says about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Account),
    Unknown,
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The name service did not answer within the configured `lookup_timeout`.
    TimedOut(Duration),
    /// The name service reported an error other than "no such user".
    Failed(String),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::TimedOut(limit) => write!(
                f,
                "the system user database did not answer within {} s (is LDAP/SSSD reachable?)",
                limit.as_secs()
            ),
            LookupError::Failed(error) => write!(f, "the system user database failed: {error}"),
        }
    }
}

/// How long the answers of the name service to root-run logins are kept ([`Recent`]).
pub const RECENT_FOR: Duration = Duration::from_secs(5);
/// Answers kept at most; past it, expired ones go, and if that is not enough, all.
const RECENT_MAX: usize = 4096;

/// Recent answers of the name service, each kept for [`RECENT_FOR`]: a burst of logins of the
/// same user (a fleet's automation reconnecting, a script running sudo in a loop) asks it once.
/// Only answers are kept, never failures or time-outs. Kept only for logins run by root, whose
/// names the login program chose, and never for the caller's own identity: a stale answer can
/// at worst deny a login (a user created in the last seconds, a group newly joined for MFA) or
/// let a group's exemption outlive the group's change by [`RECENT_FOR`], far less than the
/// system's own caches (nscd, sssd) keep them.
pub struct Recent<K, V> {
    entries: std::sync::Mutex<std::collections::HashMap<K, (std::time::Instant, V)>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Recent<K, V> {
    /// The answer for `key` if one younger than [`RECENT_FOR`] is kept at `now`, else `ask`'s,
    /// kept when it is one.
    pub fn get_or<E>(
        &self,
        key: K,
        now: std::time::Instant,
        ask: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let fresh = |at: std::time::Instant| now.saturating_duration_since(at) < RECENT_FOR;
        {
            let entries = self.lock();
            if let Some((at, value)) = entries.get(&key)
                && fresh(*at)
            {
                return Ok(value.clone());
            }
        }
        let value = ask()?;
        let mut entries = self.lock();
        if entries.len() >= RECENT_MAX {
            entries.retain(|_, (at, _)| fresh(*at));
            if entries.len() >= RECENT_MAX {
                entries.clear();
            }
        }
        entries.insert(key, (now, value.clone()));
        Ok(value)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<K, (std::time::Instant, V)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Looks `name` up by name. Blocking: call it off the bus executor (see
/// [`crate::transport::off_executor`]).
pub fn by_name(name: &UserName) -> Result<Lookup, LookupError> {
    answer(User::from_name(name.as_str()))
}

/// Looks `uid` up. Blocking, as [`by_name`].
pub fn by_uid(uid: u32) -> Result<Lookup, LookupError> {
    answer(User::from_uid(Uid::from_raw(uid)))
}

fn answer(result: nix::Result<Option<User>>) -> Result<Lookup, LookupError> {
    use nix::errno::Errno;
    match result {
        Ok(Some(user)) => own(user),
        // getpwnam_r(3): these errors also mean "not found", depending on the NSS module.
        Ok(None) | Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => {
            Ok(Lookup::Unknown)
        }
        Err(error) => Err(LookupError::Failed(error.to_string())),
    }
}

/// Looks the group `name` up; `None` when the group database does not know it. Blocking, as
/// [`by_name`].
pub fn group_by_name(name: &str) -> Result<Option<nix::unistd::Group>, LookupError> {
    use nix::errno::Errno;
    match nix::unistd::Group::from_name(name) {
        Ok(found) => Ok(found),
        // getgrnam_r(3): these errors also mean "not found", depending on the NSS module.
        Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => Ok(None),
        Err(error) => Err(LookupError::Failed(error.to_string())),
    }
}

fn own(user: User) -> Result<Lookup, LookupError> {
    let name = UserName::parse(&user.name).map_err(|reason| {
        LookupError::Failed(format!(
            "the database holds an account name pam-mfa cannot use ({reason})"
        ))
    })?;
    Ok(Lookup::Found(Account {
        name,
        uid: user.uid.as_raw(),
    }))
}

/// Whether the account of `uid` belongs to the group `group`, as its primary group or a
/// supplementary one. Blocking, as [`by_name`].
pub fn in_group(uid: u32, group: &str) -> Result<bool, LookupError> {
    let user = match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user,
        Ok(None) => return Ok(false),
        Err(error) => return Err(LookupError::Failed(error.to_string())),
    };
    let Some(group) = group_by_name(group)? else {
        return Ok(false);
    };
    if user.gid == group.gid {
        return Ok(true);
    }
    let name = std::ffi::CString::new(user.name.as_bytes())
        .map_err(|_| LookupError::Failed("a user name with a NUL".into()))?;
    let groups = nix::unistd::getgrouplist(&name, user.gid)
        .map_err(|error| LookupError::Failed(error.to_string()))?;
    Ok(groups.contains(&group.gid))
}

/// Which of `groups` the account `name` belongs to, as its primary group or a supplementary
/// one (getgrouplist: LDAP and SSSD groups count). A name or a group the system does not know
/// belongs to nothing. Blocking, as [`by_name`].
pub fn memberships(name: &UserName, groups: &[String]) -> Result<Vec<String>, LookupError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let user = match User::from_name(name.as_str()) {
        Ok(Some(user)) => user,
        Ok(None) => return Ok(Vec::new()),
        Err(error) => return Err(LookupError::Failed(error.to_string())),
    };
    let c_name = std::ffi::CString::new(user.name.as_bytes())
        .map_err(|_| LookupError::Failed("a user name with a NUL".into()))?;
    let gids = nix::unistd::getgrouplist(&c_name, user.gid)
        .map_err(|error| LookupError::Failed(error.to_string()))?;
    let mut member_of = Vec::new();
    for group in groups {
        if group_by_name(group)?.is_some_and(|found| gids.contains(&found.gid)) {
            member_of.push(group.clone());
        }
    }
    Ok(member_of)
}

/// The spelling of `name` that the system user database knows, if it knows `name` only in
/// another case (`Alice` when the account is `alice`, in a case-sensitive database). An
/// administrator who typed the wrong case must be told, not given a second, unused entry.
pub fn case_variant(name: &UserName) -> Result<Option<UserName>, LookupError> {
    let lower = name.as_str().to_ascii_lowercase();
    if lower == name.as_str() {
        return Ok(None);
    }
    let lower = UserName::parse(&lower).map_err(|error| LookupError::Failed(error.to_string()))?;
    match by_name(&lower)? {
        Lookup::Found(account) if account.name != *name => Ok(Some(account.name)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_answers_are_kept_for_a_few_seconds_and_failures_never() {
        let recent: Recent<&str, u32> = Recent::default();
        let start = std::time::Instant::now();
        let mut asked = 0;
        let mut ask = |value: u32| {
            asked += 1;
            Ok::<u32, String>(value)
        };
        assert_eq!(recent.get_or("alice", start, || ask(1)), Ok(1));
        let later = start + RECENT_FOR - Duration::from_millis(1);
        assert_eq!(recent.get_or("alice", later, || ask(2)), Ok(1));
        assert_eq!(recent.get_or("alice", start + RECENT_FOR, || ask(3)), Ok(3));
        assert_eq!(asked, 3 - 1);
        // A failure is not kept: the next login asks again.
        let failed = recent.get_or("bob", start, || Err::<u32, _>("timed out".to_owned()));
        assert!(failed.is_err());
        assert_eq!(recent.get_or("bob", start, || Ok::<_, String>(7)), Ok(7));
        // Full: the expired go first, then everything.
        for index in 0..RECENT_MAX as u32 {
            let key: &'static str = Box::leak(index.to_string().into_boxed_str());
            recent
                .get_or(key, start, || Ok::<_, String>(index))
                .unwrap();
        }
        assert!(recent.lock().len() <= RECENT_MAX);
    }

    #[test]
    fn ordinary_and_directory_names_pass() {
        for name in [
            "alice",
            "a.b-c_d",
            "svc$",
            "bob@example.org",
            "CORP\\carol",
            "x",
        ] {
            assert_eq!(UserName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn malformed_names_are_refused_with_the_reason() {
        let refused = |name: &str| UserName::parse(name).unwrap_err().to_string();
        assert!(refused("").contains("empty"));
        assert!(refused(&"a".repeat(256)).contains("256 bytes"));
        assert!(refused("-rf").contains("start with '-'"));
        assert!(refused("al ice").contains("' '"));
        assert!(refused("al\0ice").contains("\\0"));
        assert!(refused("älice").contains("'ä'"));
        assert!(refused("a/b").contains("'/'"));
        assert!(refused("a:b").contains("':'"));
    }

    #[test]
    fn root_is_uid_zero_both_ways() {
        let root = UserName::parse("root").unwrap();
        let account = Account {
            name: root.clone(),
            uid: 0,
        };
        assert_eq!(by_name(&root), Ok(Lookup::Found(account.clone())));
        assert_eq!(by_uid(0), Ok(Lookup::Found(account)));
        let unknown = UserName::parse("no-such-user-here").unwrap();
        assert_eq!(by_name(&unknown), Ok(Lookup::Unknown));
    }

    #[test]
    fn a_case_variant_of_a_known_account_is_found() {
        let shouted = UserName::parse("ROOT").unwrap();
        assert_eq!(
            case_variant(&shouted),
            Ok(Some(UserName::parse("root").unwrap()))
        );
        assert_eq!(case_variant(&UserName::parse("root").unwrap()), Ok(None));
        assert_eq!(
            case_variant(&UserName::parse("NoSuchUserHere").unwrap()),
            Ok(None)
        );
    }
}
