//! Unfinished logins: each bound to the bus connection that began it, expiring, few per user.

use std::collections::HashMap;

/// One login waiting for an answer.
#[derive(Debug)]
pub struct Session {
    /// Unique bus name of the connection that began it; only it may answer.
    pub owner: String,
    pub user: String,
    pub tries_left: u32,
    /// Unix time after which the session is gone.
    pub expires: u64,
    /// Credential-free description for audit lines (service, remote host).
    pub context: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The id is unknown, expired, or belongs to another connection.
    NoSuchSession,
    TooManyForUser,
}

#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    fn purge_expired(&mut self, now: u64) {
        self.by_id.retain(|_, session| session.expires > now);
    }

    /// Adds `session` under a new id unless its user already has `max_per_user` sessions.
    pub fn insert(
        &mut self,
        id: String,
        session: Session,
        max_per_user: u32,
        now: u64,
    ) -> Result<(), Refusal> {
        self.purge_expired(now);
        let open = self
            .by_id
            .values()
            .filter(|other| other.user == session.user)
            .count();
        if open >= max_per_user as usize {
            return Err(Refusal::TooManyForUser);
        }
        self.by_id.insert(id, session);
        Ok(())
    }

    /// Takes the session out for its answer to be processed; [`Sessions::put_back`] returns it
    /// while tries remain. Taking it out means two concurrent answers cannot both use it.
    pub fn take(&mut self, id: &str, caller: &str, now: u64) -> Result<Session, Refusal> {
        self.purge_expired(now);
        match self.by_id.get(id) {
            Some(session) if session.owner == caller => {
                self.by_id.remove(id).ok_or(Refusal::NoSuchSession)
            }
            _ => Err(Refusal::NoSuchSession),
        }
    }

    pub fn put_back(&mut self, id: String, session: Session) {
        self.by_id.insert(id, session);
    }

    /// Ends every session of `user` (after a reset).
    pub fn end_user(&mut self, user: &str) {
        self.by_id.retain(|_, session| session.user != user);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(owner: &str, user: &str, expires: u64) -> Session {
        Session {
            owner: owner.into(),
            user: user.into(),
            tries_left: 3,
            expires,
            context: String::new(),
        }
    }

    #[test]
    fn only_the_owner_can_take_a_session() {
        let mut sessions = Sessions::default();
        sessions
            .insert("s1".into(), session(":1.5", "alice", 100), 4, 0)
            .unwrap();
        assert_eq!(
            sessions.take("s1", ":1.6", 1).unwrap_err(),
            Refusal::NoSuchSession
        );
        assert_eq!(sessions.take("s1", ":1.5", 1).unwrap().user, "alice");
        assert_eq!(
            sessions.take("s1", ":1.5", 1).unwrap_err(),
            Refusal::NoSuchSession
        );
    }

    #[test]
    fn sessions_expire() {
        let mut sessions = Sessions::default();
        sessions
            .insert("s1".into(), session(":1.5", "alice", 100), 4, 0)
            .unwrap();
        assert_eq!(
            sessions.take("s1", ":1.5", 100).unwrap_err(),
            Refusal::NoSuchSession
        );
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn users_have_a_session_limit() {
        let mut sessions = Sessions::default();
        for id in ["a", "b"] {
            sessions
                .insert(id.into(), session(":1.5", "alice", 100), 2, 0)
                .unwrap();
        }
        let refused = sessions.insert("c".into(), session(":1.5", "alice", 100), 2, 0);
        assert_eq!(refused, Err(Refusal::TooManyForUser));
        sessions
            .insert("d".into(), session(":1.5", "bob", 100), 2, 0)
            .unwrap();
        sessions.end_user("alice");
        assert_eq!(sessions.len(), 1);
        sessions
            .insert("e".into(), session(":1.5", "alice", 100), 2, 0)
            .unwrap();
    }
}
