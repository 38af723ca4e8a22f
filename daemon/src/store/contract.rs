//! The contract every store backend must pass. A backend's tests call [`run_all`] with a
//! function that makes an empty store (and a clean-up to run after).

use std::sync::Arc;

use pam_mfa_config::Algorithm;

use super::sql::values;
use super::{
    Attempt, AuditFilter, CodeTry, EnrollmentId, LockoutRule, Origin, Proof, RememberTerms,
    Remembered, Store, StoreError, StoredSwitches, Tried, TryRecords, UserEnrollment,
};
use crate::audit::{Context, Event, Scope};
use crate::codes::recovery::{self, Hashed};
use crate::codes::totp::{Params, Secret};
use crate::users::UserName;

fn name(text: &str) -> UserName {
    UserName::parse(text).unwrap()
}

fn params() -> Params {
    Params {
        kind: crate::codes::totp::Kind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
    }
}

/// Enrollments to import, made with the test parameters (SHA1, 6 digits, 30 s) and no
/// recovery codes.
pub fn imports(pairs: &[(UserName, Secret)]) -> Vec<crate::store::Imported> {
    pairs
        .iter()
        .map(|(user, secret)| crate::store::Imported {
            user: user.clone(),
            last_step: None,
            secret: secret.clone(),
            params: params(),
            recovery: Vec::new(),
        })
        .collect()
}

fn secret(byte: u8) -> Secret {
    Secret::from_bytes(vec![byte; 20])
}

fn allowed(user: &str) -> Event {
    Event::LoginAllowed {
        user: name(user),
        context: Context::new("sshd", "10.0.0.1"),
    }
}

fn started(user: &str) -> Event {
    Event::EnrollmentStarted { user: name(user) }
}

/// Runs every check of the contract, each on a new store.
pub fn run_all<C: FnOnce()>(make: impl Fn() -> (Store, C)) {
    type Check = fn(Arc<Store>);
    let checks: [(&str, Check); 22] = [
        ("lifecycle and replay", lifecycle_and_replay),
        (
            "counter-based tokens keep their kind and counter",
            counter_tokens,
        ),
        ("one of many concurrent consumes wins", concurrent_consume),
        (
            "a replaced enrollment is never touched",
            replaced_enrollment,
        ),
        ("import is all or none", import_all_or_none),
        ("removal and re-enrollment", removal),
        ("secrets are sealed, each for its own row", sealed_secrets),
        ("switches", switches),
        ("audit rows go with their change", audit_rows),
        ("the audit trail is read in bounded pages", audit_pages),
        ("a login's read never waits for a listing", listing_lane),
        (
            "a login's read never waits for a change nor sees it uncommitted",
            change_in_progress,
        ),
        ("names differing only in case", case_variants),
        ("recovery codes are used once", recovery_codes),
        ("a user's own changes spend their proof", self_service),
        ("tries are counted and locks back off", lockout),
        ("parallel tries get no more than one", lockout_in_parallel),
        ("remembered logins", remembered_logins),
        ("a challenge is kept with its outcome", challenge_rows),
        ("a try is counted and spent in one", tries_of_codes),
        (
            "one of many parallel tries spends a step",
            tries_in_parallel,
        ),
        (
            "contacts are sealed and their codes used once",
            contact_codes,
        ),
    ];
    for (what, check) in checks {
        let (store, clean_up) = make();
        let store: Arc<Store> = Arc::new(store);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(store)));
        clean_up();
        if let Err(panic) = outcome {
            eprintln!("store contract failed: {what}");
            std::panic::resume_unwind(panic);
        }
    }
}

fn counter_tokens(store: Arc<Store>) {
    let hotp = Params::hotp(Algorithm::Sha1, 8);
    let (ann, ben) = (name("ann"), name("ben"));
    let id = store
        .put_pending(&ann, &secret(7), hotp, 100, &started("ann"))
        .unwrap();
    let pending = store.enrollments(&ann).unwrap().pending.unwrap();
    assert_eq!((pending.params, pending.last_step), (hotp, None));
    let confirmed = Event::EnrollmentConfirmed { user: name("ann") };
    assert!(
        store
            .activate(of(&ann, id), 3, &[], 101, &confirmed)
            .unwrap()
    );
    let active = store.enrollments(&ann).unwrap().active.unwrap();
    assert_eq!((active.params, active.last_step), (hotp, Some(3)));
    // Counter values are spent as time steps are: once, and never one at or before the last.
    for (counter, spent) in [(3, false), (2, false), (9, true), (9, false), (5, false)] {
        let used = store
            .consume_step(of(&ann, id), counter, 102, None, &allowed("ann"))
            .unwrap();
        assert_eq!(used, spent, "counter {counter}");
    }
    assert_eq!(
        store.enrollments(&ann).unwrap().active.unwrap().last_step,
        Some(9)
    );
    // Imported with the counter of the last code used where it came from.
    let mut imported = imports(&[(ben.clone(), secret(8))]);
    imported[0].params = Params::hotp(Algorithm::Sha256, 6);
    imported[0].last_step = Some(41);
    assert_eq!(
        store.import(&imported, 103, &started("ben")).unwrap(),
        Ok(1)
    );
    let active = store.enrollments(&ben).unwrap().active.unwrap();
    assert_eq!(active.params, Params::hotp(Algorithm::Sha256, 6));
    assert_eq!(active.last_step, Some(41));
    assert_eq!(active.secret.as_bytes(), secret(8).as_bytes());
    assert!(
        !store
            .consume_step(of(&ben, active.id), 41, 104, None, &allowed("ben"))
            .unwrap(),
        "the code used before the import stays used"
    );
    assert!(
        store
            .consume_step(of(&ben, active.id), 42, 104, None, &allowed("ben"))
            .unwrap()
    );
}

fn lifecycle_and_replay(store: Arc<Store>) {
    let alice = name("alice");
    assert!(store.enrollments(&alice).unwrap().is_empty());
    let id = store
        .put_pending(&alice, &secret(1), params(), 100, &started("alice"))
        .unwrap();
    let found = store.enrollments(&alice).unwrap();
    assert!(found.active.is_none());
    let pending = found.pending.unwrap();
    assert_eq!(pending.id, id);
    assert!(!pending.active);
    assert!(
        !store
            .consume_step(of(&alice, id), 5, 100, None, &allowed("alice"))
            .unwrap(),
        "a pending enrollment cannot log in"
    );
    let confirmed = Event::EnrollmentConfirmed {
        user: name("alice"),
    };
    assert!(
        store
            .activate(of(&alice, id), 5, &[], 101, &confirmed)
            .unwrap()
    );
    assert!(
        !store
            .activate(of(&alice, id), 6, &[], 101, &confirmed)
            .unwrap(),
        "activates once"
    );
    // A new phone, pending: the active enrollment keeps working until it is confirmed.
    let replacement = store
        .put_pending(&alice, &secret(2), params(), 102, &started("alice"))
        .unwrap();
    assert_ne!(replacement, id);
    assert!(
        !store
            .consume_step(of(&alice, id), 5, 103, None, &allowed("alice"))
            .unwrap(),
        "the confirmation code's step is spent"
    );
    assert!(
        store
            .consume_step(of(&alice, id), 6, 104, None, &allowed("alice"))
            .unwrap()
    );
    assert!(
        !store
            .consume_step(of(&alice, id), 6, 105, None, &allowed("alice"))
            .unwrap()
    );
    assert!(
        !store
            .consume_step(of(&alice, id), 4, 106, None, &allowed("alice"))
            .unwrap(),
        "older steps stay spent"
    );
    let found = store.enrollments(&alice).unwrap();
    assert_eq!(found.pending.unwrap().id, replacement);
    let active = found.active.unwrap();
    assert!(active.active);
    assert_eq!(active.secret.as_bytes(), secret(1).as_bytes());
    assert_eq!(active.params, params());
    assert_eq!(active.confirmed, Some(101));
    assert_eq!(active.last_used, Some(104));
}

fn concurrent_consume(store: Arc<Store>) {
    let bob = name("bob");
    let id = imported(&store, &bob, 3);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let bob = bob.clone();
            std::thread::spawn(move || {
                store
                    .consume_step(of(&bob, id), 42, 2, None, &allowed("bob"))
                    .unwrap()
            })
        })
        .collect();
    let wins = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .filter(|won| *won)
        .count();
    assert_eq!(wins, 1);
}

fn replaced_enrollment(store: Arc<Store>) {
    let carol = name("carol");
    let first = store
        .put_pending(&carol, &secret(4), params(), 1, &started("carol"))
        .unwrap();
    let second = store
        .put_pending(&carol, &secret(5), params(), 2, &started("carol"))
        .unwrap();
    assert_ne!(first, second, "a replacement has a new id");
    let confirmed = Event::EnrollmentConfirmed {
        user: name("carol"),
    };
    assert!(
        !store
            .activate(of(&carol, first), 1, &[], 3, &confirmed)
            .unwrap(),
        "the replaced enrollment cannot be activated"
    );
    assert!(
        store
            .activate(of(&carol, second), 1, &[], 3, &confirmed)
            .unwrap()
    );
    assert_eq!(
        store
            .enrollments(&carol)
            .unwrap()
            .active
            .unwrap()
            .secret
            .as_bytes(),
        secret(5).as_bytes()
    );
    // A new phone for carol, confirmed: the old one stops at that moment, with its codes.
    let issued = recovery::generate(2).unwrap();
    let hashes: Vec<Hashed> = issued.iter().map(|(_, hashed)| hashed.clone()).collect();
    let third = store
        .put_pending(&carol, &secret(6), params(), 5, &started("carol"))
        .unwrap();
    assert!(
        store
            .consume_step(of(&carol, second), 2, 6, None, &allowed("carol"))
            .unwrap(),
        "the phone in use works while the new one waits"
    );
    assert!(
        store
            .activate(of(&carol, third), 3, &hashes, 7, &confirmed)
            .unwrap()
    );
    assert!(
        !store
            .consume_step(of(&carol, second), 4, 8, None, &allowed("carol"))
            .unwrap(),
        "the replaced phone no longer works"
    );
    let found = store.enrollments(&carol).unwrap();
    assert!(found.pending.is_none());
    assert_eq!(found.active.unwrap().id, third);
    assert_eq!(store.recovery_codes(of(&carol, third)).unwrap().len(), 2);
    assert!(
        !store
            .consume_step(
                of(&carol, EnrollmentId(second.0 + 1000)),
                9,
                4,
                None,
                &allowed("carol")
            )
            .unwrap(),
        "an id that is not the user's does nothing"
    );
}

fn import_all_or_none(store: Arc<Store>) {
    let imported = Event::EnrollmentsImported { count: 2 };
    store
        .put_pending(&name("dave"), &secret(6), params(), 1, &started("dave"))
        .unwrap();
    let batch = |names: &[&str]| -> Vec<(UserName, Secret)> {
        names.iter().map(|n| (name(n), secret(7))).collect()
    };
    assert_eq!(
        store
            .import(&imports(&batch(&["erin", "dave"])), 2, &imported)
            .unwrap(),
        Ok(2)
    );
    let dave = store.enrollments(&name("dave")).unwrap();
    assert!(dave.active.is_some(), "imported");
    assert!(dave.pending.is_none(), "a pending enrollment is replaced");
    assert_eq!(
        store
            .import(&imports(&batch(&["frank", "erin"])), 3, &imported)
            .unwrap(),
        Err(name("erin"))
    );
    assert!(
        store.enrollments(&name("frank")).unwrap().is_empty(),
        "nothing of a refused import stays"
    );
}

fn sealed_secrets(store: Arc<Store>) {
    let (ann, bea) = (name("ann"), name("bea"));
    let ann_id = store
        .put_pending(&ann, &secret(7), params(), 1, &started("ann"))
        .unwrap();
    let bea_id = imported(&store, &bea, 8);
    // As stored: sealed with key 1, the secret nowhere in the row.
    let stored = |id: EnrollmentId| -> (Vec<u8>, i64) {
        let mut row = store
            .read(|tx| {
                tx.query_one(
                    "SELECT secret, sealed_with FROM enrollments WHERE id = $1",
                    super::sql::values![id.0],
                )
            })
            .unwrap();
        (row.bytes(0).unwrap(), row.int(1).unwrap())
    };
    for (id, byte) in [(ann_id, 7), (bea_id, 8)] {
        let (sealed, key) = stored(id);
        assert_eq!(key, 1);
        assert!(!sealed.windows(20).any(|window| window == [byte; 20]));
    }
    assert_eq!(
        store
            .enrollments(&ann)
            .unwrap()
            .pending
            .unwrap()
            .secret
            .as_bytes(),
        [7; 20]
    );
    // Bea's sealed secret put in Ann's row does not open there: a login of Ann's fails.
    let (beas, _) = stored(bea_id);
    store
        .write(super::sql::Bound::Call, |tx| {
            tx.execute(
                "UPDATE enrollments SET secret = $1 WHERE id = $2",
                super::sql::values![beas.as_slice(), ann_id.0],
            )?;
            Ok(((), true))
        })
        .unwrap();
    let error = store.enrollments(&ann).unwrap_err();
    assert!(
        matches!(&error, StoreError::Damaged(why) if why.contains("does not open with key 1")),
        "{error:?}"
    );
    assert_eq!(
        store
            .enrollments(&bea)
            .unwrap()
            .active
            .unwrap()
            .secret
            .as_bytes(),
        [8; 20]
    );
}

fn removal(store: Arc<Store>) {
    let gina = name("gina");
    let reset = Event::EnrollmentReset {
        user: gina.clone(),
        removed: true,
    };
    assert!(!store.remove_enrollment(&gina, 1, &reset).unwrap());
    let imported = Event::EnrollmentsImported { count: 1 };
    store
        .import(&imports(&[(gina.clone(), secret(8))]), 1, &imported)
        .unwrap()
        .unwrap();
    let old = store.enrollments(&gina).unwrap().active.unwrap().id;
    assert!(store.remove_enrollment(&gina, 2, &reset).unwrap());
    assert!(store.enrollments(&gina).unwrap().is_empty());
    let new = store
        .put_pending(&gina, &secret(9), params(), 3, &started("gina"))
        .unwrap();
    assert_ne!(old, new, "ids are never reused");
    let confirmed = Event::EnrollmentConfirmed { user: gina.clone() };
    assert!(
        store
            .activate(of(&gina, new), 10, &[], 4, &confirmed)
            .unwrap()
    );
    assert!(
        !store
            .consume_step(of(&gina, old), 11, 5, None, &allowed("gina"))
            .unwrap(),
        "a login that read the removed enrollment cannot use the new one"
    );
    // An active enrollment and a pending one (a new phone not confirmed yet): a reset removes
    // both.
    store
        .put_pending(&gina, &secret(10), params(), 6, &started("gina"))
        .unwrap();
    assert!(store.remove_enrollment(&gina, 7, &reset).unwrap());
    assert!(store.enrollments(&gina).unwrap().is_empty());
}

fn switches(store: Arc<Store>) {
    let hank = name("hank");
    assert_eq!(
        store.switches(Some(&hank)).unwrap(),
        StoredSwitches::default()
    );
    let all = Event::EnforcementSet {
        scope: Scope::AllUsers,
        on: true,
    };
    store.set_global_enforcement(true, 1, &all).unwrap();
    let one = Event::EnforcementSet {
        scope: Scope::User(hank.clone()),
        on: true,
    };
    store.set_user_enforcement(&hank, true, 2, &one).unwrap();
    assert_eq!(
        store.switches(Some(&hank)).unwrap(),
        StoredSwitches {
            global: Some(true),
            user: Some(true)
        }
    );
    store.set_user_enforcement(&hank, false, 3, &one).unwrap();
    store.set_global_enforcement(false, 4, &all).unwrap();
    assert_eq!(
        store.switches(Some(&hank)).unwrap(),
        StoredSwitches {
            global: Some(false),
            user: Some(false)
        }
    );
    assert_eq!(
        store.switches(None).unwrap(),
        StoredSwitches {
            global: Some(false),
            user: None
        }
    );
    assert_eq!(
        store.switches(Some(&name("ivy"))).unwrap(),
        StoredSwitches {
            global: Some(false),
            user: None
        }
    );
    let imported = Event::EnrollmentsImported { count: 1 };
    store
        .import(&imports(&[(name("abe"), secret(1))]), 5, &imported)
        .unwrap()
        .unwrap();
    assert_eq!(store.users().unwrap(), [name("abe"), hank]);
}

fn audit_rows(store: Arc<Store>) {
    let jack = name("jack");
    let id = store
        .put_pending(&jack, &secret(1), params(), 10, &started("jack"))
        .unwrap();
    let confirmed = Event::EnrollmentConfirmed { user: jack.clone() };
    store
        .activate(of(&jack, id), 1, &[], 11, &confirmed)
        .unwrap();
    // Changes that do not happen leave no row.
    assert!(
        !store
            .activate(of(&jack, id), 2, &[], 12, &confirmed)
            .unwrap()
    );
    assert!(
        !store
            .consume_step(of(&jack, id), 1, 13, None, &allowed("jack"))
            .unwrap()
    );
    assert!(
        store
            .consume_step(of(&jack, id), 2, 14, None, &allowed("jack"))
            .unwrap()
    );
    // Events that are not kept leave no row either.
    let skipped = Event::LoginSkipped {
        user: jack.clone(),
        context: Context::default(),
    };
    store.record(15, &skipped).unwrap();
    let rows = store.audit_tail(10).unwrap();
    let kinds: Vec<(i64, &str)> = rows.iter().map(|r| (r.time, r.kind.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (10, "enrollment-started"),
            (11, "enrollment-confirmed"),
            (14, "login-allowed")
        ]
    );
    assert_eq!(rows[2].user.as_deref(), Some("jack"));
    assert_eq!(rows[2].line, allowed("jack").to_string());
    assert_eq!(store.audit_tail(1).unwrap().len(), 1);
}

fn audit_pages(store: Arc<Store>) {
    // 30 rows of amy's, 20 of bob's, interleaved; every third of amy's is an enrollment.
    let mut time = 0;
    for round in 0..10 {
        for event in [
            allowed("amy"),
            allowed("bob"),
            started("amy"),
            allowed("bob"),
        ] {
            time += 1;
            store.record(time, &event).unwrap();
        }
        time += 1;
        store.record(time, &allowed("amy")).unwrap();
        assert_eq!(time, (round + 1) * 5);
    }
    let page = |user: Option<&str>, kind: Option<&str>, since, before| {
        store
            .audit(&AuditFilter {
                user: user.map(name),
                since,
                kind: kind.map(str::to_owned),
                limit: 4,
                before,
            })
            .unwrap()
    };
    // Pages read back, newest first, until none is left: each looks at 4 rows at most, and
    // together they hold the trail, in order.
    let all = |user, kind, since| {
        let (mut pages, mut before, mut rows) = (0, None, Vec::new());
        loop {
            let found = page(user, kind, since, before);
            assert!(found.rows.len() <= 4);
            pages += 1;
            let mut older: Vec<(i64, String)> = (found.rows.into_iter())
                .map(|row| (row.time, row.kind))
                .collect();
            older.append(&mut rows);
            rows = older;
            match found.next {
                Some(next) => before = Some(next),
                None => return (pages, rows),
            }
        }
    };
    let (pages, rows) = all(Some("amy"), None, 0);
    assert_eq!(rows.len(), 30);
    assert!(
        rows.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "{rows:?}"
    );
    assert_eq!(pages, 8, "30 rows in pages of 4");
    let (_, rows) = all(Some("amy"), Some("enrollment-started"), 0);
    let times: Vec<i64> = rows.iter().map(|row| row.0).collect();
    assert_eq!(
        times,
        (0..10).map(|round| round * 5 + 3).collect::<Vec<_>>()
    );
    let (_, rows) = all(None, None, 41);
    assert_eq!(rows.len(), 10);
    // A kind no row has: every page is looked at, none holds a row, and none looks at more
    // than 4 rows.
    let (pages, rows) = all(None, Some("locked-out"), 0);
    assert!(rows.is_empty());
    assert_eq!(pages, 13);
    // Nobody's rows: one empty page.
    let nobody = page(Some("carol"), None, 0, None);
    assert!(nobody.rows.is_empty() && nobody.next.is_none());
}

fn listing_lane(store: Arc<Store>) {
    // A listing that is still reading (as one of many rows would be) holds up no login's read.
    let switches = read_while_held(&store, "a listing", |store, started, finished| {
        store
            .read_on(super::sql::Lane::Listing, |tx| {
                tx.query("SELECT id FROM audit", &[])?;
                started.send(()).unwrap();
                finished.recv().ok();
                Ok(())
            })
            .unwrap();
    });
    assert_eq!(switches, StoredSwitches::default());
}

fn change_in_progress(store: Arc<Store>) {
    // A change that is still being made (its transaction open, its row written) holds up no
    // login's read, which sees what is committed only.
    let switches = read_while_held(&store, "a change", |store, started, finished| {
        store
            .write(super::sql::Bound::Call, |tx| {
                tx.execute(
                    "INSERT INTO user_settings (username, enforced) VALUES ($1, $2)",
                    values!["amy", true],
                )?;
                started.send(()).unwrap();
                finished.recv().ok();
                Ok(((), true))
            })
            .unwrap();
    });
    assert_eq!(
        switches,
        StoredSwitches::default(),
        "a login's read saw a change before it was committed"
    );
    // Once committed, the next read sees it.
    assert_eq!(store.switches(Some(&name("amy"))).unwrap().user, Some(true));
}

/// Reads amy's switches (a login's read) while `hold` runs on another thread, from the moment
/// it says it `started` until it is told to `finish`; fails when the read waited for it.
fn read_while_held(
    store: &Arc<Store>,
    what: &str,
    hold: impl FnOnce(Arc<Store>, std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)
    + Send
    + 'static,
) -> StoredSwitches {
    let (started, start) = std::sync::mpsc::channel();
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    let holder = store.clone();
    let held = std::thread::spawn(move || hold(holder, started, finished));
    start.recv().unwrap();
    let (read, reads) = std::sync::mpsc::channel();
    let reader = store.clone();
    std::thread::spawn(move || read.send(reader.switches(Some(&name("amy")))));
    let switches = reads.recv_timeout(std::time::Duration::from_secs(20));
    finish.send(()).unwrap();
    held.join().unwrap();
    let switches =
        switches.unwrap_or_else(|_| panic!("a login's read waited for {what} in progress"));
    switches.unwrap()
}

fn case_variants(store: Arc<Store>) {
    let imported = Event::EnrollmentsImported { count: 1 };
    store
        .import(&imports(&[(name("kim"), secret(1))]), 1, &imported)
        .unwrap()
        .unwrap();
    assert_eq!(
        store.spelled_otherwise(&name("Kim")).unwrap(),
        Some(name("kim"))
    );
    assert_eq!(store.spelled_otherwise(&name("kim")).unwrap(), None);
    assert_eq!(
        store
            .import(&imports(&[(name("KIM"), secret(2))]), 2, &imported)
            .unwrap(),
        Err(name("KIM")),
        "a case variant of an enrolled user is refused"
    );
    assert!(store.enrollments(&name("KIM")).unwrap().is_empty());
}

fn recovery_codes(store: Arc<Store>) {
    let kim = name("kim");
    let issued = recovery::generate(3).unwrap();
    let hashes: Vec<Hashed> = issued.iter().map(|(_, hashed)| hashed.clone()).collect();
    let id = store
        .put_pending(&kim, &secret(11), params(), 1, &started("kim"))
        .unwrap();
    let confirmed = Event::EnrollmentConfirmed { user: kim.clone() };
    assert!(
        store.recovery_codes(of(&kim, id)).unwrap().is_empty(),
        "a pending enrollment has no usable codes"
    );
    assert!(
        store
            .activate(of(&kim, id), 1, &hashes, 2, &confirmed)
            .unwrap()
    );
    let stored = store.recovery_codes(of(&kim, id)).unwrap();
    assert_eq!(stored.len(), 3);
    let typed = recovery::normalize(&issued[1].0).unwrap();
    let which = *recovery::find(&typed, &stored).unwrap();
    let used = Event::RecoveryCodeUsed {
        user: kim.clone(),
        context: Context::new("sshd", ""),
        left: 2,
    };
    // Many logins with the same code at once: exactly one succeeds.
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let kim = kim.clone();
            let used = used.clone();
            std::thread::spawn(move || {
                store.consume_recovery_code(of(&kim, id), which, 3, None, &used)
            })
        })
        .collect();
    let wins: Vec<usize> = threads
        .into_iter()
        .filter_map(|thread| thread.join().unwrap().unwrap())
        .collect();
    assert_eq!(wins, vec![2]);
    let stored = store.recovery_codes(of(&kim, id)).unwrap();
    assert_eq!(stored.len(), 2);
    assert!(
        recovery::find(&typed, &stored).is_none(),
        "a used code is gone"
    );
    // A reset removes the codes with the enrollment; a new enrollment does not inherit them.
    let reset = Event::EnrollmentReset {
        user: kim.clone(),
        removed: true,
    };
    assert!(store.remove_enrollment(&kim, 4, &reset).unwrap());
    let other = recovery::normalize(&issued[2].0).unwrap();
    let stale = stored
        .iter()
        .find(|(_, hashed)| recovery::find(&other, &[((), hashed.clone())]).is_some());
    let (stale, _) = stale.unwrap();
    assert_eq!(
        store
            .consume_recovery_code(of(&kim, id), *stale, 5, None, &used)
            .unwrap(),
        None
    );
    let new = store
        .put_pending(&kim, &secret(12), params(), 6, &started("kim"))
        .unwrap();
    assert!(
        store
            .activate(of(&kim, new), 1, &[], 7, &confirmed)
            .unwrap()
    );
    assert!(store.recovery_codes(of(&kim, new)).unwrap().is_empty());
    assert_eq!(
        store
            .consume_recovery_code(of(&kim, new), *stale, 8, None, &used)
            .unwrap(),
        None,
        "a code of the old enrollment does not work for the new one"
    );
}

fn self_service(store: Arc<Store>) {
    let lee = name("lee");
    let id = store
        .put_pending(&lee, &secret(13), params(), 1, &started("lee"))
        .unwrap();
    let confirmed = Event::EnrollmentConfirmed { user: lee.clone() };
    let first = recovery::generate(2).unwrap();
    let hashes = |codes: &[(zeroize::Zeroizing<String>, Hashed)]| -> Vec<Hashed> {
        codes.iter().map(|(_, hashed)| hashed.clone()).collect()
    };
    assert!(
        store
            .activate(of(&lee, id), 4, &hashes(&first), 2, &confirmed)
            .unwrap()
    );
    let renewed = Event::RecoveryCodesRenewed { user: lee.clone() };
    let second = recovery::generate(3).unwrap();
    assert!(
        !store
            .replace_recovery_codes(of(&lee, id), Proof::Step(4), &hashes(&second), 3, &renewed)
            .unwrap(),
        "the confirmation's step is spent"
    );
    assert!(
        store
            .replace_recovery_codes(of(&lee, id), Proof::Step(5), &hashes(&second), 3, &renewed)
            .unwrap()
    );
    assert!(
        !store
            .replace_recovery_codes(of(&lee, id), Proof::Step(5), &hashes(&first), 4, &renewed)
            .unwrap(),
        "one code, one change"
    );
    let stored = store.recovery_codes(of(&lee, id)).unwrap();
    assert_eq!(stored.len(), 3, "the old codes are gone");
    let typed = recovery::normalize(&second[0].0).unwrap();
    let code = *recovery::find(&typed, &stored).unwrap();
    let disabled = Event::EnrollmentDisabled { user: lee.clone() };
    assert!(
        store
            .disable(of(&lee, id), Proof::RecoveryCode(code), 5, &disabled)
            .unwrap()
    );
    assert!(store.enrollments(&lee).unwrap().is_empty());
    assert!(
        !store
            .disable(of(&lee, id), Proof::Step(9), 6, &disabled)
            .unwrap()
    );
}

const RULE: LockoutRule = LockoutRule {
    failures: 3,
    window: 100,
    duration: 60,
    max_duration: 200,
};

/// What a try records when it locks the account (the store sets the lock's end).
fn locked_out(user: &str) -> Event {
    Event::LockedOut {
        user: name(user),
        context: Context::default(),
        until: 0,
    }
}

/// One enrollment of one user.
fn of(user: &UserName, id: EnrollmentId) -> UserEnrollment<'_> {
    UserEnrollment { user, id }
}

fn lockout(store: Arc<Store>) {
    let max = name("max");
    let event = locked_out("max");
    let attempt = |now| store.begin_attempt(&max, now, RULE, &event).unwrap();
    for now in [1, 2, 3] {
        assert_eq!(attempt(now), Attempt::Allowed);
    }
    assert_eq!(
        attempt(4),
        Attempt::Locked {
            until: 64,
            new: true
        }
    );
    assert_eq!(
        attempt(5),
        Attempt::Locked {
            until: 64,
            new: false
        }
    );
    assert_eq!(store.locked_until(&max, 63).unwrap(), Some(64));
    assert_eq!(store.locked_until(&max, 64).unwrap(), None);
    // The second lock in a row lasts twice as long, the third hits the maximum.
    for now in [64, 65, 66] {
        assert_eq!(attempt(now), Attempt::Allowed);
    }
    assert_eq!(
        attempt(67),
        Attempt::Locked {
            until: 187,
            new: true
        }
    );
    for now in [187, 188, 189] {
        assert_eq!(attempt(now), Attempt::Allowed);
    }
    assert_eq!(
        attempt(190),
        Attempt::Locked {
            until: 390,
            new: true
        }
    );
    let kinds: Vec<String> = store
        .audit_tail(10)
        .unwrap()
        .into_iter()
        .map(|row| row.kind)
        .collect();
    assert_eq!(kinds, ["locked-out", "locked-out", "locked-out"]);
    // An administrator unlocks; a right code clears the count and the backoff.
    let unlocked = Event::Unlocked { user: max.clone() };
    assert!(store.unlock(&max, 200, &unlocked).unwrap());
    assert!(!store.unlock(&max, 200, &unlocked).unwrap());
    assert_eq!(attempt(201), Attempt::Allowed);
    let imported = Event::EnrollmentsImported { count: 1 };
    store
        .import(&imports(&[(max.clone(), secret(14))]), 201, &imported)
        .unwrap()
        .unwrap();
    let id = store.enrollments(&max).unwrap().active.unwrap().id;
    assert!(
        store
            .consume_step(of(&max, id), 7, 201, None, &allowed("max"))
            .unwrap()
    );
    for now in [202, 203, 204] {
        assert_eq!(attempt(now), Attempt::Allowed);
    }
    assert_eq!(
        attempt(205),
        Attempt::Locked {
            until: 265,
            new: true
        }
    );
    // Tries older than the window no longer count.
    let ned = name("ned");
    let try_ned = |now| store.begin_attempt(&ned, now, RULE, &event).unwrap();
    for now in [1, 2, 3, 101, 102, 103] {
        assert_eq!(try_ned(now), Attempt::Allowed, "at {now}");
    }
}

fn lockout_in_parallel(store: Arc<Store>) {
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                store
                    .begin_attempt(&name("oz"), 10, RULE, &locked_out("oz"))
                    .unwrap()
            })
        })
        .collect();
    let allowed = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .filter(|attempt| *attempt == Attempt::Allowed)
        .count();
    assert_eq!(allowed, RULE.failures as usize);
}

fn remembered_logins(store: Arc<Store>) {
    let (ola, pia) = (name("ola"), name("pia"));
    let imported = Event::EnrollmentsImported { count: 2 };
    store
        .import(
            &imports(&[(ola.clone(), secret(20)), (pia.clone(), secret(21))]),
            1,
            &imported,
        )
        .unwrap()
        .unwrap();
    let id = store.enrollments(&ola).unwrap().active.unwrap().id;
    let pia_id = store.enrollments(&pia).unwrap().active.unwrap().id;
    let ssh = Origin {
        service: "sshd",
        rhost: "10.0.0.1",
    };
    let terms = RememberTerms {
        duration: 100,
        limit: 250,
    };
    let used = |user: &UserName, id, origin, now| {
        let event = Event::RememberedLogin {
            user: user.clone(),
            context: Context::new(origin_service(origin), ""),
            verified: 0,
        };
        store
            .use_remembered(of(user, id), origin, now, terms, &event)
            .unwrap()
    };
    assert!(!used(&ola, id, ssh, 5), "nothing remembered yet");
    assert!(
        store
            .consume_step(of(&ola, id), 1, 10, Some(ssh), &allowed("ola"))
            .unwrap()
    );
    assert_eq!(
        store.remembered(of(&ola, id), ssh).unwrap(),
        Some(Remembered {
            verified: 10,
            last_seen: 10
        })
    );
    let other_host = Origin {
        rhost: "10.0.0.2",
        ..ssh
    };
    let other_service = Origin {
        service: "sudo",
        ..ssh
    };
    assert!(!used(&ola, id, other_host, 20), "another host");
    assert!(!used(&ola, id, other_service, 20), "another service");
    assert!(!used(&pia, pia_id, ssh, 20), "another user");
    assert!(
        !used(&pia, id, ssh, 20),
        "another user with ola's enrollment id"
    );
    assert!(used(&ola, id, ssh, 100), "within the duration");
    assert!(used(&ola, id, ssh, 199), "a use renews the duration");
    assert!(
        !used(&ola, id, ssh, 299),
        "unused for the duration: expired"
    );
    // A right code again, then uses every 90 s: the limit ends it whatever the duration says.
    assert!(
        store
            .consume_step(of(&ola, id), 2, 300, Some(ssh), &allowed("ola"))
            .unwrap()
    );
    for now in [390, 480, 549] {
        assert!(used(&ola, id, ssh, now), "at {now}");
    }
    assert!(!used(&ola, id, ssh, 550), "past the limit");
    // A reset forgets it.
    assert!(
        store
            .consume_step(of(&ola, id), 3, 600, Some(ssh), &allowed("ola"))
            .unwrap()
    );
    let reset = Event::EnrollmentReset {
        user: ola.clone(),
        removed: true,
    };
    assert!(store.remove_enrollment(&ola, 601, &reset).unwrap());
    assert_eq!(store.remembered(of(&ola, id), ssh).unwrap(), None);
    // A new phone forgets what the old one proved.
    assert!(
        store
            .consume_step(of(&pia, pia_id), 1, 700, Some(ssh), &allowed("pia"))
            .unwrap()
    );
    assert!(used(&pia, pia_id, ssh, 701));
    let new = store
        .put_pending(&pia, &secret(22), params(), 702, &started("pia"))
        .unwrap();
    assert!(
        used(&pia, pia_id, ssh, 703),
        "a pending phone changes nothing"
    );
    let confirmed = Event::EnrollmentConfirmed { user: pia.clone() };
    assert!(
        store
            .activate(of(&pia, new), 5, &[], 704, &confirmed)
            .unwrap()
    );
    assert!(!used(&pia, pia_id, ssh, 705));
    assert!(!used(&pia, new, ssh, 705));
    // So does a disable.
    assert!(
        store
            .consume_step(of(&pia, new), 6, 710, Some(ssh), &allowed("pia"))
            .unwrap()
    );
    let disabled = Event::EnrollmentDisabled { user: pia.clone() };
    assert!(
        store
            .disable(of(&pia, new), Proof::Step(7), 711, &disabled)
            .unwrap()
    );
    assert_eq!(store.remembered(of(&pia, new), ssh).unwrap(), None);
}

fn origin_service(origin: Origin<'_>) -> &str {
    origin.service
}

fn challenge_rows(store: Arc<Store>) {
    let quinn = name("quinn");
    let imported = Event::EnrollmentsImported { count: 1 };
    store
        .import(&imports(&[(quinn.clone(), secret(23))]), 1, &imported)
        .unwrap()
        .unwrap();
    let id = store.enrollments(&quinn).unwrap().active.unwrap().id;
    let challenged = Event::Challenged {
        user: quinn.clone(),
        context: Context::new("sshd", ""),
        rule: pam_mfa_api::EnforcedBy::User,
        at: 40,
    };
    let pair = Event::Pair(Box::new(challenged), Box::new(allowed("quinn")));
    assert!(
        store
            .consume_step(of(&quinn, id), 1, 45, None, &pair)
            .unwrap()
    );
    let rows: Vec<(i64, String)> = store
        .audit_tail(2)
        .unwrap()
        .into_iter()
        .map(|row| (row.time, row.kind))
        .collect();
    assert_eq!(
        rows,
        [
            (40, "challenged".to_owned()),
            (45, "login-allowed".to_owned())
        ]
    );
}

/// Imports an active enrollment for `user` (secret `byte`) and returns its id.
fn imported(store: &Arc<Store>, user: &UserName, byte: u8) -> EnrollmentId {
    let event = Event::EnrollmentsImported { count: 1 };
    let entries = [(user.clone(), secret(byte))];
    assert_eq!(store.import(&imports(&entries), 1, &event).unwrap(), Ok(1));
    store.enrollments(user).unwrap().active.unwrap().id
}

/// What a try of `user`'s code records: a lock, a login allowed, a denial for a wrong or a
/// replayed code.
fn records(user: &str) -> TryRecords {
    let denied = |why| {
        Some(Event::LoginDenied {
            user: user.to_owned(),
            context: Context::default(),
            why: crate::audit::Denial::NoTriesLeft(why),
        })
    };
    TryRecords {
        locked: locked_out(user),
        spent: allowed(user),
        wrong: denied(crate::audit::Rejection::Wrong),
        replayed: denied(crate::audit::Rejection::Replayed),
    }
}

/// A try of a code of `active` at `now`, matching `step` if any.
fn code(active: UserEnrollment<'_>, now: i64, step: Option<u64>) -> CodeTry<'_> {
    CodeTry {
        active,
        step,
        origin: None,
        now,
        rule: RULE,
    }
}

fn tries_of_codes(store: Arc<Store>) {
    let tia = name("tia");
    let id = imported(&store, &tia, 9);
    let (recorded, spent) = (records("tia"), allowed("tia"));
    let try_step = |now, step| {
        store
            .try_step(&code(of(&tia, id), now, step), &recorded)
            .unwrap()
    };
    let kinds = |store: &Arc<Store>| -> Vec<String> {
        let filter = AuditFilter {
            user: Some(name("tia")),
            since: 0,
            kind: None,
            limit: 100,
            before: None,
        };
        let mut rows: Vec<String> = store
            .audit(&filter)
            .unwrap()
            .rows
            .into_iter()
            .map(|row| row.kind)
            .collect();
        rows.reverse();
        rows
    };
    // A wrong code counts (and its denial is kept); a right one spends its step and clears
    // the count; the same step again is a replay.
    assert_eq!(try_step(2, None), Tried::NotSpent);
    assert_eq!(try_step(3, Some(100)), Tried::Spent);
    assert_eq!(try_step(4, Some(100)), Tried::NotSpent);
    assert_eq!(
        kinds(&store),
        ["login-denied", "login-allowed", "login-denied"]
    );
    assert!(
        !store
            .consume_step(of(&tia, id), 100, 5, None, &spent)
            .unwrap()
    );
    // The count was cleared by the right code: two more tries, then the lock.
    assert_eq!(try_step(6, None), Tried::NotSpent);
    assert_eq!(try_step(7, None), Tried::NotSpent);
    assert_eq!(
        try_step(8, None),
        Tried::Locked {
            until: 68,
            new: true
        }
    );
    // Locked: even a right code is no try, and its step stays unspent.
    assert_eq!(
        try_step(9, Some(200)),
        Tried::Locked {
            until: 68,
            new: false
        }
    );
    assert_eq!(store.locked_until(&tia, 9).unwrap(), Some(68));
    assert_eq!(try_step(70, Some(200)), Tried::Spent);
    assert_eq!(store.locked_until(&tia, 70).unwrap(), None);
    // The enrollment was removed since the login began: a try of its code, right or wrong,
    // counts nothing and records nothing.
    let removed = Event::EnrollmentsImported { count: 0 };
    assert!(store.remove_enrollment(&tia, 71, &removed).unwrap());
    let rows = kinds(&store).len();
    assert_eq!(try_step(72, Some(300)), Tried::Vanished);
    assert_eq!(try_step(73, None), Tried::Vanished);
    assert_eq!(kinds(&store).len(), rows);
    assert_eq!(
        store.login_facts(&tia, None).unwrap().locked_until,
        None,
        "no try was counted"
    );
}

fn tries_in_parallel(store: Arc<Store>) {
    let ty = name("ty");
    let id = imported(&store, &ty, 10);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (store, ty) = (store.clone(), ty.clone());
            std::thread::spawn(move || {
                store
                    .try_step(&code(of(&ty, id), 10, Some(300)), &records("ty"))
                    .unwrap()
            })
        })
        .collect();
    let tried: Vec<Tried> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    let spent = tried.iter().filter(|tried| **tried == Tried::Spent).count();
    assert_eq!(spent, 1, "{tried:?}");
    // After the spend cleared the count, the replays count as tries: the lock comes after
    // as many as the rule allows.
    let not_spent = tried
        .iter()
        .filter(|tried| **tried == Tried::NotSpent)
        .count();
    assert_eq!(not_spent, RULE.failures as usize, "{tried:?}");
}

fn contact_codes(store: Arc<Store>) {
    use super::contacts::{ContactTried, Purpose, Reserved, SendTerms};
    use crate::codes::contact::Address;
    use pam_mfa_config::ContactKind;
    let uma = name("uma");
    let email = Address::parse(ContactKind::Email, "uma@example.org").unwrap();
    let other = Address::parse(ContactKind::Email, "u.m@example.net").unwrap();
    let terms = |now| SendTerms {
        now,
        lifetime: 600,
        resend_after: 60,
        max_contacts: 2,
    };
    let reserve = |purpose, address: &Address, code: &str, now| {
        store
            .reserve_code(&uma, purpose, address, code, terms(now))
            .unwrap()
    };
    let sent = |to: &Address, login| Event::ContactCodeSent {
        user: uma.clone(),
        to: to.masked(),
        login,
    };
    let verify_event = |to: &Address| Event::ContactVerified {
        user: uma.clone(),
        to: to.masked(),
    };
    let verified = super::contacts::ContactRecords {
        locked: locked_out("uma"),
        spent: &verify_event,
        wrong: None,
        remember: None,
    };
    let try_code = |purpose, typed: &str, now, records: &super::contacts::ContactRecords<'_>| {
        store
            .try_contact_code(&uma, purpose, typed, (now, RULE), records)
            .unwrap()
    };

    // A new contact waits for its code; a second send waits the resend time.
    let Reserved::Ready(sending) = reserve(Purpose::Verify, &email, "111111", 100) else {
        panic!("no code reserved");
    };
    assert!(sending.created);
    store.record(100, &sent(&email, None)).unwrap();
    assert!(matches!(
        reserve(Purpose::Verify, &email, "222222", 130),
        Reserved::TooSoon(30)
    ));
    let contacts = store.contacts(&uma).unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].address, email);
    assert_eq!(contacts[0].verified, None);
    // Only its code verifies it, once; a wrong one counts towards the lockout.
    assert_eq!(
        try_code(Purpose::Verify, "111112", 140, &verified),
        ContactTried::NotSpent
    );
    assert_eq!(
        try_code(Purpose::Login, "111111", 141, &verified),
        ContactTried::NotSpent,
        "a code to verify a contact is no login code"
    );
    assert_eq!(
        try_code(Purpose::Verify, "111 111", 142, &verified),
        ContactTried::Spent(email.clone())
    );
    assert_eq!(store.locked_until(&uma, 142).unwrap(), None);
    assert_eq!(
        try_code(Purpose::Verify, "111111", 143, &verified),
        ContactTried::NotSpent
    );
    assert_eq!(store.contacts(&uma).unwrap()[0].verified, Some(142));
    assert!(matches!(
        reserve(Purpose::Verify, &email, "333333", 300),
        Reserved::Known
    ));

    // A login code goes to the verified contact, expires, and a newer one replaces it.
    let login_event = |_: &Address| allowed("uma");
    let login = super::contacts::ContactRecords {
        locked: locked_out("uma"),
        spent: &login_event,
        wrong: None,
        remember: None,
    };
    let Reserved::Ready(sending) = reserve(Purpose::Login, &other, "444444", 300) else {
        panic!("no login code reserved");
    };
    assert_eq!(sending.address, email, "the verified contact of that kind");
    assert!(!sending.created);
    assert_eq!(
        try_code(Purpose::Login, "444444", 901, &login),
        ContactTried::NotSpent,
        "expired"
    );
    let Reserved::Ready(_) = reserve(Purpose::Login, &email, "555555", 1000) else {
        panic!("no login code reserved");
    };
    // A delivery that failed takes its code back, but not the wait: a send tried counts.
    let Reserved::Ready(failed) = reserve(Purpose::Login, &email, "666666", 1100) else {
        panic!("no login code reserved");
    };
    store.withdraw_code(&uma, &failed).unwrap();
    assert_eq!(
        try_code(Purpose::Login, "666666", 1101, &login),
        ContactTried::NotSpent
    );
    assert!(matches!(
        reserve(Purpose::Login, &email, "777777", 1102),
        Reserved::TooSoon(58)
    ));
    assert!(matches!(
        reserve(Purpose::Login, &email, "777777", 1102 + 58),
        Reserved::Ready(_)
    ));
    assert_eq!(
        try_code(Purpose::Login, "777777", 1161, &login),
        ContactTried::Spent(email.clone())
    );
    // Wrong codes lock the account like any code; a locked account gets no try.
    for now in 1104..1107 {
        assert_eq!(
            try_code(Purpose::Login, "000000", now, &login),
            ContactTried::NotSpent
        );
    }
    assert!(matches!(
        try_code(Purpose::Login, "000000", 1107, &login),
        ContactTried::Locked { new: true, .. }
    ));

    // At most max_contacts; an unverified contact gives way to the next one added.
    let third = Address::parse(ContactKind::Phone, "+447700900123").unwrap();
    let Reserved::Ready(pending) = reserve(Purpose::Verify, &other, "888888", 2000) else {
        panic!("no code reserved");
    };
    store.withdraw_code(&uma, &pending).unwrap();
    assert_eq!(
        store.contacts(&uma).unwrap().len(),
        1,
        "a failed add leaves nothing"
    );
    let Reserved::Ready(_) = reserve(Purpose::Verify, &other, "888888", 2060) else {
        panic!("no code reserved");
    };
    // Removing a contact does not lift the wait.
    let removed = Event::ContactRemoved {
        user: uma.clone(),
        to: other.masked(),
    };
    assert!(store.remove_contact(&uma, &other, 2061, &removed).unwrap());
    assert!(matches!(
        reserve(Purpose::Verify, &other, "888888", 2062),
        Reserved::TooSoon(58)
    ));
    let Reserved::Ready(_) = reserve(Purpose::Verify, &other, "888888", 2120) else {
        panic!("no code reserved");
    };
    let Reserved::Ready(_) = reserve(Purpose::Verify, &third, "999999", 2200) else {
        panic!("no code reserved");
    };
    let kept: Vec<Address> = (store.contacts(&uma).unwrap().into_iter())
        .map(|contact| contact.address)
        .collect();
    assert_eq!(kept, [email.clone(), third.clone()]);
    let vouched = Event::ContactVerified {
        user: uma.clone(),
        to: other.masked(),
    };
    assert_eq!(
        store
            .add_verified_contact(&uma, &third, 2200, 2, &vouched)
            .unwrap(),
        Some(true)
    );
    assert_eq!(
        store
            .add_verified_contact(&uma, &other, 2200, 2, &vouched)
            .unwrap(),
        None,
        "two verified contacts are the most"
    );
    assert!(matches!(
        reserve(Purpose::Verify, &other, "123123", 3000),
        Reserved::Full
    ));
    // Removal, recorded.
    let removed = Event::ContactRemoved {
        user: uma.clone(),
        to: email.masked(),
    };
    assert!(store.remove_contact(&uma, &email, 3000, &removed).unwrap());
    assert!(!store.remove_contact(&uma, &email, 3001, &removed).unwrap());
    assert_eq!(store.contacts(&uma).unwrap().len(), 1);
    let filter = AuditFilter {
        user: Some(uma.clone()),
        since: 0,
        kind: None,
        limit: 100,
        before: None,
    };
    let kinds: Vec<String> = (store.audit(&filter).unwrap().rows.into_iter())
        .map(|row| row.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "contact-code-sent",
            "contact-verified",
            "login-allowed",
            "locked-out",
            "contact-removed",
            "contact-verified",
            "contact-removed"
        ]
    );
    // A new key seals every address again; they still open.
    let text = "1 5f3c0e1d2b4a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\n\
                2 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    let keys = Arc::new(crate::sealing::KeySet::parse(text, "two test keys").unwrap());
    let resealed = store.use_keys(keys).unwrap();
    assert_eq!((resealed.key, resealed.count), (2, 1));
    assert_eq!(store.contacts(&uma).unwrap()[0].address, third);
    // Nothing of an address is stored in the clear.
    assert!(
        (store.audit(&filter).unwrap().rows.iter())
            .all(|row| !row.line.contains("uma@example.org"))
    );
}
