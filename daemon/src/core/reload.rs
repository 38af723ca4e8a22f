//! What a reload changed: the keys, and the rules about who must use MFA where, spelled out
//! for the audit trail.

use std::fmt::Debug;

use pam_mfa_api::Error;
use pam_mfa_config::Config;

use super::{Caller, Core, bounded};
use crate::audit::Event;
use crate::clock::Clock;
use crate::core::dialogue::Settings;
use crate::log;

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

impl<C: Clock> Core<C> {
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
                self.store.record(now, &event)?;
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
        let changed = crate::core::reload::changed_keys(&old.config, &new);
        let policy = crate::core::reload::policy_changes(&old.config, &new);
        let groups = new.clone();
        let unknown_groups = bounded(self.lookup_limit(), move || {
            crate::core::reload::unknown_groups(&groups)
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
            self.store.record(now, event)?;
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
