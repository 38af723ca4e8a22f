//! What a reload changed: the keys, and the rules about who must use MFA where, spelled out
//! for the audit trail.

use std::fmt::Debug;

use pam_mfa_config::Config;

/// The keys whose values differ, as `section.key`.
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    let mut compare = |key: &str, old: &dyn Debug, new: &dyn Debug| {
        if format!("{old:?}") != format!("{new:?}") {
            changed.push(key.to_owned());
        }
    };
    compare("state_dir", &old.state_dir, &new.state_dir);
    compare("admin_group", &old.admin_group, &new.admin_group);
    compare("lookup_timeout", &old.lookup_timeout, &new.lookup_timeout);
    compare("totp", &old.totp, &new.totp);
    compare("login", &old.login, &new.login);
    compare("lockout", &old.lockout, &new.lockout);
    compare("audit", &old.audit, &new.audit);
    for (key, old, new) in policy_keys(old, new) {
        compare(key, &old, &new);
    }
    changed
}

/// The rules that decide who must use MFA where, each as text: (key, old, new).
fn policy_keys(old: &Config, new: &Config) -> Vec<(&'static str, String, String)> {
    fn names<T: std::fmt::Display>(list: &[pam_mfa_config::Spanned<T>]) -> String {
        let names: Vec<String> = list
            .iter()
            .map(|n| format!("{:?}", n.get_ref().to_string()))
            .collect();
        format!("[{}]", names.join(", "))
    }
    fn remembered(config: &Config) -> String {
        let services: Vec<String> = (config.remember.services.iter())
            .map(|(service, seconds)| format!("{}={}", service.get_ref(), seconds.get()))
            .collect();
        format!("{{{}}}", services.join(", "))
    }
    let pair = |f: &dyn Fn(&Config) -> String| (f(old), f(new));
    let keys: [(&str, (String, String)); 10] = [
        (
            "enforcement.all_users",
            pair(&|c| c.enforcement.all_users.to_string()),
        ),
        (
            "enforcement.groups",
            pair(&|c| names(&c.enforcement.groups)),
        ),
        (
            "enforcement.services",
            pair(&|c| names(&c.enforcement.services)),
        ),
        ("exemptions.users", pair(&|c| names(&c.exemptions.users))),
        ("exemptions.groups", pair(&|c| names(&c.exemptions.groups))),
        (
            "exemptions.services",
            pair(&|c| names(&c.exemptions.services)),
        ),
        (
            "exemptions.networks",
            pair(&|c| names(&c.exemptions.networks)),
        ),
        (
            "remember.duration",
            pair(&|c| c.remember.duration.get().to_string()),
        ),
        ("remember.services", pair(&remembered)),
        ("remember.limit", pair(&|c| c.remember.limit().to_string())),
    ];
    keys.into_iter()
        .map(|(key, (old, new))| (key, old, new))
        .collect()
}

/// The rules a reload changed, as `key: old -> new`.
pub fn policy_changes(old: &Config, new: &Config) -> Vec<String> {
    policy_keys(old, new)
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(key, old, new)| format!("{key}: {old} -> {new}"))
        .collect()
}

/// Groups the rules name that the system's group database does not know right now.
/// Blocking, as [`crate::users::by_name`].
pub fn unknown_groups(config: &Config) -> Result<Vec<String>, crate::users::LookupError> {
    let mut unknown = Vec::new();
    for group in crate::policy::named_groups(config) {
        if crate::users::group_by_name(&group)?.is_none() {
            unknown.push(group);
        }
    }
    Ok(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_what_changed() {
        let old = Config::parse("[exemptions]\ngroups = [\"breakglass\"]\n").unwrap();
        let new = Config::parse(
            "[login]\nmax_tries = 5\n[enforcement]\ngroups = [\"wheel\"]\n\
             [exemptions]\ngroups = [\"breakglass\"]\n[remember.services]\nsshd = 3600\n",
        )
        .unwrap();
        assert_eq!(
            changed_keys(&old, &new),
            ["login", "enforcement.groups", "remember.services"]
        );
        assert_eq!(
            policy_changes(&old, &new),
            [
                "enforcement.groups: [] -> [\"wheel\"]",
                "remember.services: {} -> {sshd=3600}"
            ]
        );
        assert!(changed_keys(&new, &new.clone()).is_empty());
    }
}
