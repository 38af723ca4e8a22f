//! The login dialogue as callers reach it: begin, answer, cancel, and what a login would do
//! (explain), after the caller was authorized.

use std::collections::HashMap;

use super::{Caller, Core, by_name};

use pam_mfa_api::{Action, Error, Explanation, Turn, context};

use crate::audit::{Context, Denial, Event};
use crate::clock::Clock;
use crate::log;
use crate::users::{Lookup, UserName};

impl<C: Clock> Core<C> {
    pub fn begin(
        &self,
        caller: &Caller,
        user: &str,
        context_values: &HashMap<String, String>,
    ) -> Result<(String, Turn), Error> {
        let value = |key| context_values.get(key).map_or("", String::as_str);
        let context = Context::new(value(context::SERVICE), value(context::RHOST))
            .joined(value(context::ONE_PROMPT) == "1");
        let user = match UserName::parse(user) {
            Ok(user) => user,
            Err(reason) => {
                let reason = reason.to_string();
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
        let enrolled = self.enrolled_without_lookup(caller, &user, &context)?;
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
            .begin(caller, user, known, context, member_of, enrolled)?;
        self.emit(caller, &reply.events);
        Ok((reply.session, reply.turn))
    }

    pub fn answer(&self, caller: &Caller, session: &str, reply: &str) -> Result<Turn, Error> {
        let reply = self
            .dialogue
            .answer(caller, session, reply)?
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

    /// Records the logins that ended without an outcome; see
    /// [`Dialogue::sweep`](crate::core::dialogue::Dialogue::sweep).
    pub fn sweep(&self) {
        for (event, caller_uid) in self.dialogue.sweep() {
            log::event(&event, caller_uid);
        }
    }

    /// What a login of `user` through `service` from `rhost` would do, and the rule that
    /// decided, as a root-run login would see it; nothing is changed or recorded.
    pub fn explain(&self, user: &str, service: &str, rhost: &str) -> Result<Explanation, Error> {
        let user = UserName::parse(user)?;
        let (user, known) = match by_name(self.lookup_limit(), &user)? {
            Lookup::Found(account) => (account.name, true),
            Lookup::Unknown => {
                self.not_a_case_variant(&user)?;
                (user, false)
            }
        };
        let member_of = self.memberships(&user, known, false)?;
        // As Linux-PAM gives it to the module.
        let context = Context::new(&service.to_lowercase(), rhost);
        let settings = self.config();
        let facts = self.dialogue.facts(&settings, &user, &context, true)?;
        let decision = self.dialogue.decide(
            &settings,
            &user,
            known,
            &context,
            member_of.clone(),
            true,
            facts,
        )?;
        let contact_codes = (settings.config.contacts).at_login_for(&context.service, &member_of);
        Ok(Explanation {
            user: user.to_string(),
            service: context.service,
            rhost: context.rhost,
            next_login: decision.next,
            required: decision.requirement.required,
            rule: decision.requirement.by,
            until: decision.until.unwrap_or(0),
            enrolled: decision.enrollments.active.is_some(),
            token: (decision.enrollments.active.as_ref())
                .map(|active| active.params.kind.name().to_owned())
                .unwrap_or_default(),
            contact_codes,
            groups: member_of,
            contacts: self.verified_contacts(&user)?,
        })
    }
}
