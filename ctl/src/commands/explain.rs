//! `mfactl explain USER [--service S] [--rhost H]`: what a login would do, and why.

use pam_mfa_api::{EnforcedBy, Explanation, NextLogin};

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::{Report, Time, yes_no};

/// What a login would do, and the rule that decided.
#[derive(serde::Serialize)]
pub struct Explain {
    pub user: String,
    pub service: String,
    pub rhost: String,
    pub decision: NextLogin,
    pub required: bool,
    pub rule: EnforcedBy,
    /// When a lock ends (`locked`) or a remembered code stops covering the login
    /// (`remembered`).
    pub until: Time,
    pub enrolled: bool,
    /// `totp` (an authenticator app) or `hotp` (a counter-based token); null when not enrolled.
    pub token: Option<String>,
    pub groups: Vec<String>,
    /// Verified contacts, masked.
    pub contacts: Vec<String>,
    /// Codes may be sent to them at this login.
    pub contact_codes: bool,
}

impl From<Explanation> for Explain {
    fn from(e: Explanation) -> Self {
        Explain {
            user: e.user,
            service: e.service,
            rhost: e.rhost,
            decision: e.next_login,
            required: e.required,
            rule: e.rule,
            until: Time(e.until),
            enrolled: e.enrolled,
            token: e.enrolled.then_some(e.token),
            groups: e.groups,
            contacts: e.contacts,
            contact_codes: e.contact_codes,
        }
    }
}

pub async fn run(
    bus: Option<&str>,
    user: &str,
    service: &str,
    rhost: &str,
) -> Result<Explain, Failure> {
    let explanation = connect(bus).await?.explain(user, service, rhost).await?;
    Ok(explanation.into())
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
        let from = match (self.service.as_str(), self.rhost.as_str()) {
            ("", "") => "with no service and no remote host".to_owned(),
            ("", rhost) => format!("from {rhost}"),
            (service, "") => format!("through {service}, with no remote host"),
            (service, rhost) => format!("through {service} from {rhost}"),
        };
        let mut lines = vec![format!("login of {} {from}:", self.user)];
        let decision = match &self.decision {
            NextLogin::Locked => format!("locked until {}", self.until),
            NextLogin::Remembered => format!("remembered (no code) until {}", self.until),
            other => other.as_str().to_owned(),
        };
        lines.push(format!("  decision: {decision}"));
        lines.push(format!("  the login {}", self.decision.describe()));
        lines.push(format!("  required: {}", yes_no(self.required)));
        lines.push(format!("  rule:     {}", self.rule));
        lines.push(format!("  why:      {}", because(&self.rule)));
        let kind = match self.token.as_deref() {
            Some("hotp") => " (a counter-based token)",
            Some(_) => " (an authenticator app)",
            None => "",
        };
        lines.push(format!("  enrolled: {}{kind}", yes_no(self.enrolled)));
        if !self.groups.is_empty() {
            lines.push(format!(
                "  groups named by rules: {}",
                self.groups.join(", ")
            ));
        }
        if !self.contacts.is_empty() {
            let codes = if self.contact_codes {
                "codes can be sent there at this login"
            } else {
                "no code is sent at this login (contacts.at_login)"
            };
            lines.push(format!(
                "  contacts: {} ({codes})",
                self.contacts.join(", ")
            ));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    fn explanation() -> Explanation {
        Explanation {
            user: "alice".into(),
            service: "sshd".into(),
            rhost: "192.0.2.7".into(),
            next_login: NextLogin::Locked,
            required: true,
            rule: EnforcedBy::Group("wheel".into()),
            until: 1_234_567_890,
            enrolled: true,
            token: "hotp".into(),
            groups: vec!["wheel".into()],
            contacts: vec!["+44 ••• ••• 123".into()],
            contact_codes: true,
        }
    }

    #[test]
    fn a_decision_reads_as_lines_and_as_a_document() {
        let report = Explain::from(explanation());
        assert_eq!(
            report.text(),
            "login of alice through sshd from 192.0.2.7:\n  decision: locked until 2009-02-13 \
             23:31 UTC\n  the login is refused until the lock ends (too many wrong codes; mfactl \
             unlock)\n  required: yes\n  rule:     group wheel\n  why:      the user is a member \
             of wheel, in enforcement.groups\n  enrolled: yes (a counter-based token)\n  groups named \
             by rules: wheel\n  contacts: +44 ••• ••• 123 (codes can be sent there at this login)"
        );
        assert_eq!(
            json(&report),
            serde_json::json!({
                "user": "alice",
                "service": "sshd",
                "rhost": "192.0.2.7",
                "decision": "locked",
                "required": true,
                "rule": "group wheel",
                "until": 1_234_567_890,
                "enrolled": true,
                "token": "hotp",
                "groups": ["wheel"],
                "contacts": ["+44 ••• ••• 123"],
                "contact_codes": true,
            })
        );
    }

    #[test]
    fn no_end_is_null() {
        let report = Explain::from(Explanation {
            next_login: NextLogin::Code,
            until: 0,
            groups: vec![],
            ..explanation()
        });
        assert_eq!(json(&report)["until"], serde_json::Value::Null);
        assert_eq!(json(&report)["groups"], serde_json::json!([]));
        assert!(report.text().contains("  decision: code\n"));
    }
}
