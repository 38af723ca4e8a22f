//! An accepted code is on disk before its login succeeds. mfad is killed (SIGKILL, no chance to
//! flush anything) right after logins succeed, one alone or many at once sharing commits; back
//! up, it refuses every one of those codes as used.

use pam_mfa_tests::{Env, random_secret};

const REPLAYED: &str = "ERROR_MSG This code was already used; wait for the next one.";

#[test]
fn a_code_accepted_just_before_mfad_is_killed_stays_used() {
    let env = Env::new().config("[login]\nmax_tries = 1\n").start();
    env.enroll("alice");
    let code = env.fresh_code("alice");
    env.login("alice").answer(&code).run().expect("PAM_SUCCESS");
    env.stop_daemon();
    env.start_daemon();
    env.login("alice")
        .answer(&code)
        .run()
        .expect("PAM_MAXTRIES")
        .shows(REPLAYED);
}

#[test]
fn codes_accepted_together_before_mfad_is_killed_all_stay_used() {
    let env = Env::new()
        .config("[login]\nmax_tries = 1\n[lockout]\nfailures = 100\n")
        .start();
    // Enrolled elsewhere and imported (the system's user database knows only a few names).
    let users: Vec<String> = (0..12).map(|index| format!("user{index}")).collect();
    let secrets: Vec<String> = users.iter().map(|_| random_secret()).collect();
    let list = env.dir().join("import.txt");
    let lines: Vec<String> = users
        .iter()
        .zip(&secrets)
        .map(|(user, secret)| format!("{user} {secret}\n"))
        .collect();
    std::fs::write(&list, lines.concat()).unwrap();
    let imported = env.ctl(&["import", list.to_str().unwrap()], "");
    assert!(imported.success, "{}", imported.stderr);
    for (user, secret) in users.iter().zip(&secrets) {
        env.learn_secret(user, secret, 0);
    }
    let codes: Vec<String> = users.iter().map(|user| env.fresh_code(user)).collect();
    // All at once: their accepted codes share commits.
    let running: Vec<_> = users
        .iter()
        .zip(&codes)
        .map(|(user, code)| env.login(user).answer(code).spawn())
        .collect();
    for login in running {
        login.finish().expect("PAM_SUCCESS");
    }
    env.stop_daemon();
    env.start_daemon();
    for (user, code) in users.iter().zip(&codes) {
        env.login(user)
            .answer(code)
            .run()
            .expect("PAM_MAXTRIES")
            .shows(REPLAYED);
    }
}
