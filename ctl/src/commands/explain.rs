//! `mfactl explain USER [--service S] [--rhost H]`: what a login would do, and why.

use pam_mfa_api::{EnforcedBy, Explanation, NextLogin};

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::{Report, time_or_null, when};

pub struct Explain(Explanation);

pub async fn run(
    bus: Option<&str>,
    user: &str,
    service: &str,
    rhost: &str,
) -> Result<Explain, Failure> {
    Ok(Explain(
        connect(bus).await?.explain(user, service, rhost).await?,
    ))
}

/// Why the rule applies, as the end of a sentence.
fn because(rule: &EnforcedBy) -> String {
    match rule {
        EnforcedBy::ExemptUser => "the user is in exemptions.users".into(),
        EnforcedBy::ExemptGroup(group) => {
            format!("the user is a member of {group}, in exemptions.groups")
        }
        EnforcedBy::ExemptService(service) => {
            format!("logins through {service} are exempt (exemptions.services)")
        }
        EnforcedBy::ExemptNetwork(network) => {
            format!("logins from {network} are exempt (exemptions.networks)")
        }
        EnforcedBy::AllUsers => {
            "MFA is required of every user (mfactl enforce --all, or enforcement.all_users)".into()
        }
        EnforcedBy::Service(service) => {
            format!("MFA is required for logins through {service} (enforcement.services)")
        }
        EnforcedBy::User => "MFA is required of this user (mfactl enforce USER on)".into(),
        EnforcedBy::Group(group) => {
            format!("the user is a member of {group}, in enforcement.groups")
        }
        EnforcedBy::NotEnforced => "no rule requires MFA of this login".into(),
        EnforcedBy::Other(text) => text.clone(),
    }
}

impl Report for Explain {
    fn text(&self) -> String {
        let e = &self.0;
        let from = match (e.service.as_str(), e.rhost.as_str()) {
            ("", "") => "with no service and no remote host".to_owned(),
            ("", rhost) => format!("from {rhost}"),
            (service, "") => format!("through {service}, with no remote host"),
            (service, rhost) => format!("through {service} from {rhost}"),
        };
        let mut lines = vec![format!("login of {} {from}:", e.user)];
        let decision = match &e.next_login {
            NextLogin::Locked => format!("locked until {}", when(e.until)),
            NextLogin::Remembered => format!("remembered (no code) until {}", when(e.until)),
            other => other.as_str().to_owned(),
        };
        lines.push(format!("  decision: {decision}"));
        lines.push(format!("  the login {}", e.next_login.describe()));
        lines.push(format!(
            "  required: {}",
            if e.required { "yes" } else { "no" }
        ));
        lines.push(format!("  rule:     {}", e.rule));
        lines.push(format!("  why:      {}", because(&e.rule)));
        lines.push(format!(
            "  enrolled: {}",
            if e.enrolled { "yes" } else { "no" }
        ));
        if !e.groups.is_empty() {
            lines.push(format!("  groups named by rules: {}", e.groups.join(", ")));
        }
        lines.join("\n")
    }

    fn json(&self) -> serde_json::Value {
        let e = &self.0;
        serde_json::json!({
            "user": e.user,
            "service": e.service,
            "rhost": e.rhost,
            "decision": e.next_login,
            "required": e.required,
            "rule": e.rule,
            "until": time_or_null(e.until),
            "enrolled": e.enrolled,
            "groups": e.groups,
        })
    }
}
