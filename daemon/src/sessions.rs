//! Unfinished logins: each bound to the connection that began it, expiring, few per user and
//! few per unprivileged caller, and gone as soon as that connection is.

use std::collections::HashMap;

use crate::audit::Context;
use crate::store::EnrollmentId;
use crate::users::UserName;

/// Unfinished logins one unprivileged caller (a screen locker, say) may hold at once.
pub const MAX_PER_UNPRIVILEGED_CALLER: usize = 4;

/// Where a login stands: what the daemon waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A code from the authenticator of enrollment `enrollment`.
    AwaitingCode {
        enrollment: EnrollmentId,
        tries_left: u32,
    },
    /// A code from the app that is being set up with pending enrollment `enrollment`; with two
    /// codes to confirm, `first_step` is the step of the first one once it was given.
    Enrolling {
        enrollment: EnrollmentId,
        first_step: Option<u64>,
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
    /// Unix time after which the session is gone.
    pub expires: u64,
    pub context: Context,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyForUser,
    TooManyForCaller,
}

#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    fn purge_expired(&mut self, now: u64) {
        self.by_id.retain(|_, session| session.expires > now);
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
        let before = self.by_id.len();
        self.by_id
            .retain(|_, session| session.connection != connection);
        before - self.by_id.len()
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
            },
            expires,
            context: Context::default(),
        }
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
