//! Who must use MFA for a login, and why. One pure function over the switches; the store holds
//! the switches, the configuration the starting value of the global one.

use pam_mfa_api::EnforcedBy;

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

/// Whether MFA is required of the user, and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub required: bool,
    pub by: EnforcedBy,
}

/// Precedence: the global switch (stored, else from the configuration) requires MFA of every
/// user; otherwise the user's own switch does; otherwise MFA is not required. Switching a user
/// off does not exempt that user from a global requirement.
pub fn requirement(switches: Switches) -> Requirement {
    let global = switches.global.unwrap_or(switches.config_all_users);
    if global {
        return Requirement {
            required: true,
            by: EnforcedBy::AllUsers,
        };
    }
    if switches.user == Some(true) {
        return Requirement {
            required: true,
            by: EnforcedBy::User,
        };
    }
    Requirement {
        required: false,
        by: EnforcedBy::NotEnforced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switches_decide_in_order() {
        use EnforcedBy::*;
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
            assert_eq!(
                requirement(switches),
                Requirement { required, by },
                "{switches:?}"
            );
        }
    }
}
