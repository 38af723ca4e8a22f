//! Unfinished logins: each bound to the connection that began it, expiring, few per user and
//! few per unprivileged caller, and gone as soon as that connection is.

use std::collections::HashMap;

use pam_mfa_api::EnforcedBy;

use crate::audit::Context;
use crate::store::{Enrollment, EnrollmentId};
use crate::users::UserName;

/// Unfinished logins one unprivileged caller (a screen locker, say) may hold at once.
pub const MAX_PER_UNPRIVILEGED_CALLER: usize = 4;
/// Ended sessions begun by root kept for the audit trail between two sweeps.
const MAX_ENDED: usize = 10_000;
/// The same, begun by unprivileged callers.
const MAX_ENDED_UNPRIVILEGED: usize = 1_000;

/// Where a login stands: what the daemon waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A code from the authenticator of enrollment `enrollment`. `ahead`: the counter value
    /// of a counter-based token's code, beyond the look-ahead, that the last try matched; the
    /// code of the value right after it brings the token back in step.
    AwaitingCode {
        enrollment: EnrollmentId,
        tries_left: u32,
        ahead: Option<u64>,
        /// A code was sent to a contact of the user (by email or SMS) during this login.
        sent: bool,
    },
    /// A code from the app that is being set up with pending enrollment `enrollment`; with two
    /// codes to confirm, `first_step` is the step of the first one once it was given.
    Enrolling {
        enrollment: EnrollmentId,
        first_step: Option<u64>,
        tries_left: u32,
    },
    /// Before an enrollment at login, a contact of `kind` is set up: its address is awaited,
    /// or (`sent`) the code sent there.
    EnrollingContact {
        kind: pam_mfa_config::ContactKind,
        sent: bool,
        tries_left: u32,
    },
    /// The recovery codes of (now active) enrollment `enrollment` were shown; the user presses
    /// Enter once they are saved.
    SavingRecoveryCodes { enrollment: EnrollmentId },
}

/// One login waiting for an answer.
#[derive(Debug)]
pub struct Session {
    /// The connection that began it (a unique bus name); only it may answer.
    pub connection: String,
    /// The uid of that connection.
    pub caller_uid: u32,
    pub user: UserName,
    pub step: Step,
    /// A code may be sent to the user's verified contacts ("email", "sms" at the code
    /// question): `contacts.at_login` and its lists allow it for this login.
    pub contact_codes: bool,
    /// Unix time after which the session is gone.
    pub expires: u64,
    pub context: Context,
    /// For a login asked for a code: the rule that asked, and when (recorded with the
    /// login's outcome).
    pub challenge: Option<(EnforcedBy, u64)>,
    /// For a login asked for a code: the active enrollment it was decided on, as read when it
    /// began, so that the code is checked without reading it again (its secret is wiped when
    /// the session ends).
    pub enrollment: Option<Enrollment>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyForUser,
    TooManyForCaller,
}

#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
    /// Sessions that ended without an outcome (expired, or their connection went away), for
    /// the audit trail to say so; see [`Sessions::take_ended`].
    ended: Vec<Session>,
}

impl Sessions {
    fn purge_expired(&mut self, now: u64) {
        let expired: Vec<String> = (self.by_id.iter())
            .filter(|(_, session)| session.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(session) = self.by_id.remove(&id) {
                self.ended_push(session);
            }
        }
    }

    /// Keeps an ended session for [`Sessions::take_ended`]. Past [`MAX_ENDED`] waiting, more
    /// are dropped (a flood of abandoned logins between two sweeps), those begun by
    /// unprivileged callers first: such a flood cannot crowd out the logins root ran.
    fn ended_push(&mut self, session: Session) {
        let unprivileged = self.ended.iter().filter(|s| s.caller_uid != 0).count();
        let room = if session.caller_uid == 0 {
            self.ended.len() - unprivileged < MAX_ENDED
        } else {
            unprivileged < MAX_ENDED_UNPRIVILEGED
        };
        if room {
            self.ended.push(session);
        }
    }

    /// The sessions that ended without an outcome since the last call, expired ones at `now`
    /// included.
    pub fn take_ended(&mut self, now: u64) -> Vec<Session> {
        self.purge_expired(now);
        std::mem::take(&mut self.ended)
    }

    /// Adds `session` under `id` unless its user already has `max_per_user` sessions, or its
    /// caller is not root and has [`MAX_PER_UNPRIVILEGED_CALLER`].
    pub fn insert(
        &mut self,
        id: String,
        session: Session,
        max_per_user: u32,
        now: u64,
    ) -> Result<(), Refusal> {
        self.check(&session.user, session.caller_uid, max_per_user, now)?;
        self.by_id.insert(id, session);
        Ok(())
    }

    /// Whether a session of `user` begun by a caller of `caller_uid` would be refused now.
    pub fn check(
        &mut self,
        user: &UserName,
        caller_uid: u32,
        max_per_user: u32,
        now: u64,
    ) -> Result<(), Refusal> {
        self.purge_expired(now);
        let for_user = self.by_id.values().filter(|s| s.user == *user).count();
        if for_user >= max_per_user as usize {
            return Err(Refusal::TooManyForUser);
        }
        if caller_uid != 0
            && self
                .by_id
                .values()
                .filter(|s| s.caller_uid == caller_uid)
                .count()
                >= MAX_PER_UNPRIVILEGED_CALLER
        {
            return Err(Refusal::TooManyForCaller);
        }
        Ok(())
    }

    /// Takes the session out for its answer to be processed; [`Sessions::put_back`] returns it
    /// while tries remain. Taking it out means two concurrent answers cannot both use it.
    /// `None` if the id is unknown, expired, or belongs to another connection.
    pub fn take(&mut self, id: &str, connection: &str, now: u64) -> Option<Session> {
        self.purge_expired(now);
        match self.by_id.get(id) {
            Some(session) if session.connection == connection => self.by_id.remove(id),
            _ => None,
        }
    }

    pub fn put_back(&mut self, id: String, session: Session) {
        self.by_id.insert(id, session);
    }

    /// Ends every session of `user` (after a reset).
    pub fn end_user(&mut self, user: &UserName) {
        self.by_id.retain(|_, session| session.user != *user);
    }

    /// Ends every session begun by `connection` (it went away). Returns how many.
    pub fn end_connection(&mut self, connection: &str) -> usize {
        let gone: Vec<String> = (self.by_id.iter())
            .filter(|(_, session)| session.connection == connection)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            if let Some(session) = self.by_id.remove(id) {
                self.ended_push(session);
            }
        }
        gone.len()
    }

    /// Ends session `id` of `connection` (its client cancelled it), as one that ended
    /// without an outcome. Whether there was one.
    pub fn cancel(&mut self, id: &str, connection: &str, now: u64) -> bool {
        match self.take(id, connection, now) {
            Some(session) => {
                self.ended_push(session);
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(connection: &str, uid: u32, user: &str, expires: u64) -> Session {
        Session {
            connection: connection.into(),
            caller_uid: uid,
            user: UserName::parse(user).unwrap(),
            step: Step::AwaitingCode {
                enrollment: EnrollmentId(1),
                tries_left: 3,
                ahead: None,
                sent: false,
            },
            contact_codes: false,
            expires,
            context: Context::default(),
            challenge: None,
            enrollment: None,
        }
    }

    #[test]
    fn sessions_that_end_without_an_outcome_are_handed_over_once() {
        let mut sessions = Sessions::default();
        for (id, connection, expires) in [("a", ":1.5", 50), ("b", ":1.6", 100), ("c", ":1.7", 100)]
        {
            sessions
                .insert(id.into(), session(connection, 0, "alice", expires), 4, 0)
                .unwrap();
        }
        assert_eq!(sessions.end_connection(":1.6"), 1);
        assert!(sessions.cancel("c", ":1.7", 10));
        assert!(!sessions.cancel("c", ":1.7", 10));
        let ended: Vec<String> = sessions
            .take_ended(60)
            .into_iter()
            .map(|s| s.connection)
            .collect();
        assert_eq!(ended.len(), 3, "{ended:?}");
        assert!(sessions.take_ended(200).is_empty());
        assert!(sessions.is_empty());
    }

    #[test]
    fn only_the_connection_that_began_it_can_take_a_session() {
        let mut sessions = Sessions::default();
        sessions
            .insert("s1".into(), session(":1.5", 0, "alice", 100), 4, 0)
            .unwrap();
        assert!(sessions.take("s1", ":1.6", 1).is_none());
        assert_eq!(
            sessions.take("s1", ":1.5", 1).unwrap().user.as_str(),
            "alice"
        );
        assert!(sessions.take("s1", ":1.5", 1).is_none());
    }

    #[test]
    fn sessions_expire() {
        let mut sessions = Sessions::default();
        sessions
            .insert("s1".into(), session(":1.5", 0, "alice", 100), 4, 0)
            .unwrap();
        assert!(sessions.take("s1", ":1.5", 100).is_none());
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn users_and_unprivileged_callers_have_limits() {
        let mut sessions = Sessions::default();
        for id in ["a", "b"] {
            sessions
                .insert(id.into(), session(":1.5", 0, "alice", 100), 2, 0)
                .unwrap();
        }
        let refused = sessions.insert("c".into(), session(":1.5", 0, "alice", 100), 2, 0);
        assert_eq!(refused, Err(Refusal::TooManyForUser));
        sessions
            .insert("d".into(), session(":1.5", 0, "bob", 100), 2, 0)
            .unwrap();
        sessions.end_user(&UserName::parse("alice").unwrap());
        assert_eq!(sessions.len(), 1);
        for n in 0..MAX_PER_UNPRIVILEGED_CALLER {
            sessions
                .insert(format!("u{n}"), session(":1.9", 1000, "carol", 100), 32, 0)
                .unwrap();
        }
        let refused = sessions.insert("u9".into(), session(":1.9", 1000, "carol", 100), 32, 0);
        assert_eq!(refused, Err(Refusal::TooManyForCaller));
    }

    #[test]
    fn sessions_go_with_their_connection() {
        let mut sessions = Sessions::default();
        sessions
            .insert("a".into(), session(":1.5", 0, "alice", 100), 4, 0)
            .unwrap();
        sessions
            .insert("b".into(), session(":1.5", 0, "bob", 100), 4, 0)
            .unwrap();
        sessions
            .insert("c".into(), session(":1.6", 0, "alice", 100), 4, 0)
            .unwrap();
        assert_eq!(sessions.end_connection(":1.5"), 2);
        assert_eq!(sessions.len(), 1);
        assert!(sessions.take("c", ":1.6", 1).is_some());
    }
}
