//! Who is calling, from the bus's credentials for the connection (never from arguments), and
//! how much each uid may ask of mfad at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pam_mfa_api::Error;
use zbus::Connection;

use crate::core::Caller;
use zbus::message::Header;

/// Connections of one unprivileged uid that mfad serves at once.
pub const MAX_CONNECTIONS_PER_UID: usize = 16;
/// Calls of one unprivileged uid that mfad works on at once; more are refused at once.
pub const MAX_CALLS_PER_UID: usize = 8;
/// Calls of root that mfad works on at once (each login program's call is one).
pub const MAX_CALLS_FOR_ROOT: usize = 1024;

#[derive(Default)]
struct Known {
    /// Unique name -> uid, and whether the connection was admitted (within its uid's
    /// connection limit), for connections that are still there. Refused connections are kept
    /// too, so that their later calls are refused without another round trip to the bus.
    uids: HashMap<String, (u32, bool)>,
    connections_per_uid: HashMap<u32, usize>,
    calls_per_uid: HashMap<u32, usize>,
    /// Connections accepted on the login socket so far, for their names.
    direct: u64,
    /// Connections open on the login socket: root's, and every other uid's together.
    direct_open: (usize, usize),
    /// Connections open on the login socket per uid.
    direct_per_uid: HashMap<u32, usize>,
}

impl Known {
    /// Connections open on the login socket that count against `uid`'s limit: root's, or every
    /// other uid's together.
    fn direct_open(&mut self, uid: u32) -> &mut usize {
        if uid == 0 {
            &mut self.direct_open.0
        } else {
            &mut self.direct_open.1
        }
    }
}

/// Connections root may have open on the login socket (each login program's is one).
pub const MAX_DIRECT_FOR_ROOT: usize = 1024;
/// Connections all other uids together may have open on the login socket, so that many uids
/// (a user's subordinate uids, say) cannot use up mfad's descriptors.
pub const MAX_DIRECT_FOR_OTHERS: usize = 256;
/// Places of [`MAX_DIRECT_FOR_OTHERS`] kept for the first connections of each uid
/// ([`FIRST_DIRECT`]): a uid's later connections are admitted only while more places than
/// this are free. Uids that hold all they may (16 uids of 16 connections) leave room for
/// everyone else's logins; it takes 32 more uids to fill the rest, and each of their
/// connections is closed soon unless it keeps a login of its own account going (see
/// [`super::login_socket`]).
pub const DIRECT_RESERVE: usize = 64;
/// Connections of each uid on the login socket that may take a place of [`DIRECT_RESERVE`]:
/// a user's screen locker and a sudo at once.
pub const FIRST_DIRECT: usize = 2;

/// The identities of the connections mfad talks to, and the calls in flight per uid.
#[derive(Default)]
pub struct Identities {
    known: Mutex<Known>,
}

/// A call being worked on; dropping it ends the call.
pub struct InFlight {
    identities: Arc<Identities>,
    uid: u32,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut known = self.identities.lock();
        if let Some(count) = known.calls_per_uid.get_mut(&self.uid) {
            *count -= 1;
            if *count == 0 {
                known.calls_per_uid.remove(&self.uid);
            }
        }
    }
}

fn too_many(what: &str) -> Error {
    Error::TooManyRequests(format!(
        "too many {what} from this user; try again when the earlier ones have finished"
    ))
}

impl Identities {
    fn lock(&self) -> MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Identifies the sender of `header`: the cached uid of its connection, else the bus's
    /// credentials for it (one round trip per connection). This is the only place a caller's
    /// identity comes from.
    pub async fn caller(
        &self,
        connection: &Connection,
        header: &Header<'_>,
    ) -> Result<Caller, Error> {
        let sender = header
            .sender()
            .ok_or_else(|| Error::PermissionDenied("the request has no sender".into()))?
            .to_string();
        match self.lock().uids.get(&sender) {
            Some((uid, true)) => {
                return Ok(Caller {
                    uid: *uid,
                    connection: sender,
                });
            }
            Some((_, false)) => return Err(too_many("connections")),
            None => {}
        }
        let bus = zbus::fdo::DBusProxy::builder(connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let name = zbus::names::BusName::try_from(sender.as_str())
            .map_err(|error| Error::PermissionDenied(format!("bad sender name: {error}")))?;
        let credentials = bus
            .get_connection_credentials(name)
            .await
            .map_err(|error| {
                Error::PermissionDenied(format!("cannot identify the caller: {error}"))
            })?;
        let uid = credentials.unix_user_id().ok_or_else(|| {
            Error::PermissionDenied("the bus did not report the caller's uid".into())
        })?;
        let mut known = self.lock();
        let admitted = match known.uids.get(&sender) {
            // Identified meanwhile by a concurrent call of the same connection.
            Some((_, admitted)) => *admitted,
            None => {
                let count = known.connections_per_uid.entry(uid).or_default();
                let admitted = uid == 0 || *count < MAX_CONNECTIONS_PER_UID;
                if admitted {
                    *count += 1;
                }
                known.uids.insert(sender.clone(), (uid, admitted));
                admitted
            }
        };
        if !admitted {
            return Err(too_many("connections"));
        }
        Ok(Caller {
            uid,
            connection: sender,
        })
    }

    /// Starts a call of `caller`, unless its uid has as many in flight as it may.
    pub fn enter(self: &Arc<Self>, caller: &Caller) -> Result<InFlight, Error> {
        let limit = if caller.uid == 0 {
            MAX_CALLS_FOR_ROOT
        } else {
            MAX_CALLS_PER_UID
        };
        let mut known = self.lock();
        let count = known.calls_per_uid.entry(caller.uid).or_default();
        if *count >= limit {
            return Err(too_many("requests in flight"));
        }
        *count += 1;
        Ok(InFlight {
            identities: self.clone(),
            uid: caller.uid,
        })
    }

    /// Admits a connection accepted on mfad's login socket, whose peer is `uid` (the kernel's
    /// credentials for the socket, SO_PEERCRED): the caller all its calls are made as, under
    /// the name `direct:N`, which no bus name can be. Refused past the uid's connection limit,
    /// as on the bus, and past its share of the places all uids but root have together (its
    /// first [`FIRST_DIRECT`] connections may take any free place, later ones all but the last
    /// [`DIRECT_RESERVE`]); [`Identities::forget`] ends it.
    pub fn admit_direct(&self, uid: u32) -> Result<Caller, Error> {
        let mut known = self.lock();
        let count = known.connections_per_uid.get(&uid).copied().unwrap_or(0);
        let open = *known.direct_open(uid);
        let full = if uid == 0 {
            open >= MAX_DIRECT_FOR_ROOT
        } else {
            let free = MAX_DIRECT_FOR_OTHERS.saturating_sub(open);
            let first = known.direct_per_uid.get(&uid).copied().unwrap_or(0) < FIRST_DIRECT;
            let kept = if first { 0 } else { DIRECT_RESERVE };
            count >= MAX_CONNECTIONS_PER_UID || free <= kept
        };
        if full {
            return Err(too_many("connections"));
        }
        *known.direct_open(uid) += 1;
        *known.direct_per_uid.entry(uid).or_default() += 1;
        known.direct += 1;
        let connection = format!("direct:{}", known.direct);
        *known.connections_per_uid.entry(uid).or_default() += 1;
        known.uids.insert(connection.clone(), (uid, true));
        Ok(Caller { uid, connection })
    }

    /// Forgets a connection that went away.
    pub fn forget(&self, connection: &str) {
        let mut known = self.lock();
        let Some((uid, counted)) = known.uids.remove(connection) else {
            return;
        };
        if connection.starts_with("direct:") {
            let open = known.direct_open(uid);
            *open = open.saturating_sub(1);
            if let Some(count) = known.direct_per_uid.get_mut(&uid) {
                *count -= 1;
                if *count == 0 {
                    known.direct_per_uid.remove(&uid);
                }
            }
        }
        if counted && let Some(count) = known.connections_per_uid.get_mut(&uid) {
            *count -= 1;
            if *count == 0 {
                known.connections_per_uid.remove(&uid);
            }
        }
    }

    #[cfg(test)]
    fn remember(&self, connection: &str, uid: u32) {
        let mut known = self.lock();
        known.uids.insert(connection.into(), (uid, true));
        *known.connections_per_uid.entry(uid).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprivileged_uids_have_a_limit_of_calls_in_flight() {
        let identities = Arc::new(Identities::default());
        let nobody = Caller {
            uid: 65534,
            connection: ":1.7".into(),
        };
        let held: Vec<InFlight> = (0..MAX_CALLS_PER_UID)
            .map(|_| identities.enter(&nobody).unwrap())
            .collect();
        assert!(matches!(
            identities.enter(&nobody),
            Err(Error::TooManyRequests(_))
        ));
        let root = Caller {
            uid: 0,
            connection: ":1.8".into(),
        };
        let _root_calls: Vec<InFlight> = (0..MAX_CALLS_PER_UID * 2)
            .map(|_| identities.enter(&root).unwrap())
            .collect();
        drop(held);
        identities.enter(&nobody).unwrap();
    }

    #[test]
    fn direct_connections_count_towards_their_uid_and_are_named_apart() {
        let identities = Identities::default();
        let callers: Vec<Caller> = (0..MAX_CONNECTIONS_PER_UID)
            .map(|_| identities.admit_direct(1000).unwrap())
            .collect();
        assert!(callers.iter().all(|c| c.uid == 1000));
        assert!(callers.iter().all(|c| c.connection.starts_with("direct:")));
        assert!(matches!(
            identities.admit_direct(1000),
            Err(Error::TooManyRequests(_))
        ));
        for _ in 0..MAX_CONNECTIONS_PER_UID * 2 {
            identities.admit_direct(0).unwrap();
        }
        identities.forget(&callers[0].connection);
        let again = identities.admit_direct(1000).unwrap();
        assert_ne!(
            again.connection, callers[0].connection,
            "names are never reused"
        );
    }

    #[test]
    fn uids_that_hold_all_they_may_on_the_login_socket_leave_room_for_others() {
        let identities = Identities::default();
        // 16 uids, 16 connections each, as many as each is let have.
        let mut held = Vec::new();
        for uid in 2000..2016 {
            while let Ok(caller) = identities.admit_direct(uid) {
                held.push(caller);
            }
        }
        assert!(held.len() <= MAX_DIRECT_FOR_OTHERS - DIRECT_RESERVE + 16 * FIRST_DIRECT);
        // Another user's first connections still fit, and so do many more users' first ones.
        for uid in 3000..3000 + (DIRECT_RESERVE - 16 * FIRST_DIRECT) as u32 {
            held.push(identities.admit_direct(uid).unwrap());
        }
        // Root's are counted apart.
        identities.admit_direct(0).unwrap();
        // A uid with one connection gets its second, but no third while the reserve is short.
        let newcomer = identities.admit_direct(4000).unwrap();
        identities.admit_direct(4000).unwrap();
        assert!(matches!(
            identities.admit_direct(4000),
            Err(Error::TooManyRequests(_))
        ));
        // Its places come back when its connections go.
        identities.forget(&newcomer.connection);
        identities.admit_direct(4000).unwrap();
    }

    #[test]
    fn forgotten_connections_free_their_place() {
        let identities = Identities::default();
        identities.remember(":1.1", 1000);
        identities.remember(":1.2", 1000);
        identities.forget(":1.1");
        identities.forget(":1.1");
        let known = identities.lock();
        assert_eq!(known.connections_per_uid.get(&1000), Some(&1));
        assert!(!known.uids.contains_key(":1.1"));
    }
}
