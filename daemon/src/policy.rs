//! Who must use MFA for a login, and why; and what the login then does. Pure functions over
//! the configuration's rules, the switches kept in the store and what is known of the user, so
//! that a login and `mfactl explain` decide through the same code.
//!
//! The precedence rule is stated once, in [`pam_mfa_config::PRECEDENCE`], and implemented by
//! [`requirement`].

use pam_mfa_api::{EnforcedBy, NextLogin};
use pam_mfa_config::Config;

use crate::users::UserName;

/// The enforcement switches that apply to one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Switches {
    /// The global switch as stored (`mfactl enforce --all`); `None` until first set.
    pub global: Option<bool>,
    /// The configuration's `enforcement.all_users`, used while `global` was never set.
    pub config_all_users: bool,
    /// The user's own switch (`mfactl enforce USER`); `None` when never set.
    pub user: Option<bool>,
}

/// Where a login comes from. `None` where it is not known (`mfactl status`, which is about no
/// one login): rules about services and networks then do not apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    pub service: Option<&'a str>,
    /// PAM_RHOST; empty for a login that names no remote host.
    pub rhost: Option<&'a str>,
}

/// What the rules need to know of the user.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub switches: Switches,
    /// The groups named in the configuration (exempt or required) the user is a member of.
    pub member_of: Vec<String>,
}

/// Whether MFA is required of the user, and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub required: bool,
    pub by: EnforcedBy,
}

impl Requirement {
    /// An exemption decided: no code is asked, enrolled or not.
    pub fn exempt(&self) -> bool {
        self.by.is_exemption()
    }
}

/// Every group the rules name, exempt ones first: the only groups whose membership matters.
pub fn named_groups(config: &Config) -> Vec<String> {
    let exempt = config.exemptions.groups.iter();
    let required = config.enforcement.groups.iter();
    // Members of these may have codes sent at a login.
    let sent = config.contacts.at_login_groups.iter();
    exempt
        .chain(required)
        .chain(sent)
        .map(|group| group.get_ref().to_string())
        .collect()
}

/// The rule that decides for `user` logging in at `place`; see [`pam_mfa_config::PRECEDENCE`].
/// Exemptions come first (users, groups, services, networks), then the reasons MFA is
/// required (every user, the service, the user's switch, a group), else it is not required.
pub fn requirement(config: &Config, user: &UserName, facts: &Facts, place: Place) -> Requirement {
    let exempt = &config.exemptions;
    let required = &config.enforcement;
    let member = |group: &str| facts.member_of.iter().any(|g| g == group);
    let decided = |required, by| Requirement { required, by };
    if exempt
        .users
        .iter()
        .any(|u| u.get_ref().as_str() == user.as_str())
    {
        return decided(false, EnforcedBy::ExemptUser);
    }
    if let Some(group) = exempt.groups.iter().find(|g| member(g.get_ref().as_str())) {
        return decided(false, EnforcedBy::ExemptGroup(group.get_ref().to_string()));
    }
    if let Some(service) = place.service
        && exempt
            .services
            .iter()
            .any(|s| s.get_ref().as_str() == service)
    {
        return decided(false, EnforcedBy::ExemptService(service.to_owned()));
    }
    if let Some(rhost) = place.rhost
        && let Some(network) = exempt.networks.iter().find(|n| n.get_ref().contains(rhost))
    {
        return decided(
            false,
            EnforcedBy::ExemptNetwork(network.get_ref().to_string()),
        );
    }
    if facts
        .switches
        .global
        .unwrap_or(facts.switches.config_all_users)
    {
        return decided(true, EnforcedBy::AllUsers);
    }
    if let Some(service) = place.service
        && required
            .services
            .iter()
            .any(|s| s.get_ref().as_str() == service)
    {
        return decided(true, EnforcedBy::Service(service.to_owned()));
    }
    if facts.switches.user == Some(true) {
        return decided(true, EnforcedBy::User);
    }
    if let Some(group) = required
        .groups
        .iter()
        .find(|g| member(g.get_ref().as_str()))
    {
        return decided(true, EnforcedBy::Group(group.get_ref().to_string()));
    }
    decided(false, EnforcedBy::NotEnforced)
}

/// The state of the user's second factor that a login depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct State {
    /// The user has an active (confirmed) enrollment.
    pub enrolled: bool,
    /// Until when the account is locked, if it is.
    pub locked_until: Option<i64>,
    /// Until when an earlier right code from this place covers this login, if one does.
    pub remembered_until: Option<i64>,
    /// The system's user database knows the user (only such users enroll at login).
    pub known: bool,
    /// `login.enroll_at_login`.
    pub enroll_at_login: bool,
}

/// What a login does, given the requirement and the user's state. A login and `mfactl
/// explain` both decide here.
pub fn next_login(requirement: &Requirement, state: State) -> NextLogin {
    if requirement.exempt() {
        return NextLogin::Exempt;
    }
    if state.enrolled {
        if state.locked_until.is_some() {
            return NextLogin::Locked;
        }
        if state.remembered_until.is_some() {
            return NextLogin::Remembered;
        }
        return NextLogin::Code;
    }
    match requirement.required {
        false => NextLogin::NoSecondFactor,
        true if state.known && state.enroll_at_login => NextLogin::Enroll,
        true => NextLogin::Denied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> UserName {
        UserName::parse(text).unwrap()
    }

    #[test]
    fn the_switches_decide_in_order() {
        use EnforcedBy::*;
        let config = Config::default();
        // (stored global, config all_users, user switch) -> (required, by)
        let table = [
            ((None, false, None), (false, NotEnforced)),
            ((None, false, Some(false)), (false, NotEnforced)),
            ((None, false, Some(true)), (true, User)),
            ((None, true, None), (true, AllUsers)),
            ((None, true, Some(false)), (true, AllUsers)),
            ((Some(false), true, None), (false, NotEnforced)),
            ((Some(false), true, Some(true)), (true, User)),
            ((Some(true), false, None), (true, AllUsers)),
            ((Some(true), false, Some(false)), (true, AllUsers)),
            ((Some(false), false, Some(true)), (true, User)),
        ];
        for ((global, config_all_users, user), (required, by)) in table {
            let switches = Switches {
                global,
                config_all_users,
                user,
            };
            let facts = Facts {
                switches,
                member_of: Vec::new(),
            };
            assert_eq!(
                requirement(&config, &name("alice"), &facts, Place::default()),
                Requirement { required, by },
                "{switches:?}"
            );
        }
    }

    /// Every step of the precedence rule, each case differing from a neighbour by one fact.
    #[test]
    fn exemptions_win_then_the_first_requirement_names_itself() {
        use EnforcedBy::*;
        let config = Config::parse(
            "[enforcement]\ngroups = [\"wheel\", \"sudo\"]\nservices = [\"sshd\"]\n\
             [exemptions]\nusers = [\"rescue\"]\ngroups = [\"breakglass\"]\n\
             services = [\"login\"]\nnetworks = [\"local\", \"10.1.0.0/16\"]\n",
        )
        .unwrap();
        let on = Switches {
            global: Some(true),
            ..Switches::default()
        };
        let user_on = Switches {
            user: Some(true),
            ..Switches::default()
        };
        let off = Switches::default();
        // (user, groups, switches, service, rhost) -> by
        type Case<'a> = (
            &'a str,
            &'a [&'a str],
            Switches,
            &'a str,
            &'a str,
            EnforcedBy,
        );
        let table: &[Case] = &[
            ("rescue", &["wheel"], on, "sshd", "192.0.2.1", ExemptUser),
            (
                "alice",
                &["wheel", "breakglass"],
                on,
                "sshd",
                "192.0.2.1",
                ExemptGroup("breakglass".into()),
            ),
            (
                "alice",
                &["wheel"],
                on,
                "login",
                "192.0.2.1",
                ExemptService("login".into()),
            ),
            (
                "alice",
                &["wheel"],
                on,
                "sudo",
                "",
                ExemptNetwork("local".into()),
            ),
            (
                "alice",
                &["wheel"],
                on,
                "sshd",
                "10.1.2.3",
                ExemptNetwork("10.1.0.0/16".into()),
            ),
            (
                "alice",
                &["wheel"],
                on,
                "sshd",
                "::ffff:10.1.2.3",
                ExemptNetwork("10.1.0.0/16".into()),
            ),
            ("alice", &["wheel"], on, "sshd", "10.2.0.1", AllUsers),
            (
                "alice",
                &["wheel"],
                off,
                "sshd",
                "10.2.0.1",
                Service("sshd".into()),
            ),
            ("alice", &["wheel"], user_on, "su", "10.2.0.1", User),
            (
                "alice",
                &["sudo", "wheel"],
                off,
                "su",
                "10.2.0.1",
                Group("wheel".into()),
            ),
            ("alice", &["users"], off, "su", "10.2.0.1", NotEnforced),
            ("alice", &[], off, "su", "host.example", NotEnforced),
        ];
        for (user, groups, switches, service, rhost, by) in table {
            let facts = Facts {
                switches: *switches,
                member_of: groups.iter().map(|g| g.to_string()).collect(),
            };
            let place = Place {
                service: Some(service),
                rhost: Some(rhost),
            };
            let decided = requirement(&config, &name(user), &facts, place);
            assert_eq!(&decided.by, by, "{user} {groups:?} {service} {rhost}");
            let required = matches!(by, AllUsers | Service(_) | User | Group(_));
            assert_eq!(decided.required, required, "{by}");
        }
    }

    #[test]
    fn without_a_place_only_user_and_group_rules_apply() {
        let config = Config::parse(
            "[enforcement]\nservices = [\"sshd\"]\n[exemptions]\nnetworks = [\"local\"]\n",
        )
        .unwrap();
        let decided = requirement(&config, &name("alice"), &Facts::default(), Place::default());
        assert_eq!(decided.by, EnforcedBy::NotEnforced);
    }

    #[test]
    fn what_the_login_does() {
        let required = Requirement {
            required: true,
            by: EnforcedBy::User,
        };
        let not = Requirement {
            required: false,
            by: EnforcedBy::NotEnforced,
        };
        let exempt = Requirement {
            required: false,
            by: EnforcedBy::ExemptUser,
        };
        let state = State {
            known: true,
            enroll_at_login: true,
            ..State::default()
        };
        let enrolled = State {
            enrolled: true,
            ..state
        };
        let cases = [
            (&exempt, enrolled, NextLogin::Exempt),
            (
                &exempt,
                State {
                    locked_until: Some(9),
                    ..enrolled
                },
                NextLogin::Exempt,
            ),
            (&not, enrolled, NextLogin::Code),
            (&required, enrolled, NextLogin::Code),
            (
                &required,
                State {
                    locked_until: Some(9),
                    remembered_until: Some(9),
                    ..enrolled
                },
                NextLogin::Locked,
            ),
            (
                &required,
                State {
                    remembered_until: Some(9),
                    ..enrolled
                },
                NextLogin::Remembered,
            ),
            (&required, state, NextLogin::Enroll),
            (
                &required,
                State {
                    enroll_at_login: false,
                    ..state
                },
                NextLogin::Denied,
            ),
            (
                &required,
                State {
                    known: false,
                    ..state
                },
                NextLogin::Denied,
            ),
            (&not, state, NextLogin::NoSecondFactor),
        ];
        for (requirement, state, expected) in cases {
            assert_eq!(next_login(requirement, state), expected, "{state:?}");
        }
    }
}
