//! Socket activation: mfad started by the first connection to its login socket, which it is
//! passed (LISTEN_FDS) instead of binding it, as systemd does with mfad.socket. Here
//! `systemd-socket-activate` (systemd's own implementation of the protocol, for tests) holds
//! the socket; the login is the real module through real libpam.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use pam_mfa_tests::{Env, built, run_bounded, wait_bounded, wait_until};

/// The socket file's inode: the same one as long as nobody binds the path again.
fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// mfad stopped, its socket held by systemd-socket-activate: the next login starts mfad, waits
/// for it, and gets in with the code. mfad serves the socket it was passed, leaves the file as
/// it found it, and leaves it there when it stops.
#[test]
fn the_first_login_on_the_socket_starts_mfad_and_gets_in() {
    let env = Env::new().start();
    env.enroll("alice");
    env.stop_daemon();
    let socket = env.login_socket().to_owned();
    env.start_daemon_on_demand(&socket);
    let file = inode(&socket);
    let serving = |log: &str| log.matches("serving org.pam_mfa.Mfad1").count();
    assert_eq!(serving(&env.daemon_log()), 1, "{}", env.daemon_log());

    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS")
        .shows("PROMPT_ECHO_OFF Verification code:");
    let log = env.daemon_log();
    assert_eq!(serving(&log), 2, "{log}");
    assert!(
        log.contains(&format!(
            "serving logins on {} (passed by systemd)",
            socket.display()
        )),
        "{log}"
    );
    assert_eq!(inode(&socket), file, "mfad bound the socket again");
    // mfad runs now: the next login is answered at once, by the same mfad.
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    assert_eq!(serving(&env.daemon_log()), 2);

    // Stopped as systemd stops it: the socket file stays, for systemd's next start.
    let pid = env.daemon_pid().unwrap().to_string();
    let killed = run_bounded(Command::new("kill").args(["-TERM", &pid]), "kill");
    assert!(killed.status.success());
    env.daemon_exit();
    assert_eq!(inode(&socket), file, "the socket file went away with mfad");
}

/// Runs `mfad --config CONFIG` started by systemd-socket-activate listening at `listen`,
/// connects there to start it, and returns what mfad said, which must be its refusal to start.
fn refused_at_start(env: &Env, config: &Path, listen: &Path) -> String {
    let child = Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(listen)
        .arg(built("mfad"))
        .arg("--bus")
        .arg(&env.address)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate is missing: install systemd (see README, test command)");
    // The connection that starts mfad, kept open until mfad is done.
    let mut client = None;
    wait_until("systemd-socket-activate to listen", || {
        client = std::os::unix::net::UnixStream::connect(listen).ok();
        client.is_some()
    });
    let out = wait_bounded(child, "mfad started by systemd-socket-activate");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(!said.contains("serving"), "{said}");
    said
}

/// A socket passed for another path than login_socket is refused at start, with a message
/// that names both; so is a descriptor that is not a socket at all.
#[test]
fn a_socket_that_is_not_the_login_socket_is_refused_at_start() {
    let env = Env::new().start();
    let expected = env.dir().join("run/expected.socket");
    let config = env.dir().join("activated.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\nlogin_socket = \"{}\"\n{}",
            env.dir().join("activated-state").display(),
            expected.display(),
            pam_mfa_tests::sealing_setting(&env.sealing_key_file())
        ),
    )
    .unwrap();

    let other = env.dir().join("other.socket");
    let said = refused_at_start(&env, &config, &other);
    assert!(
        said.contains(&format!(
            "systemd passed descriptor 3, a Unix stream socket bound to {}, where mfad expected \
             its login socket, a listening Unix stream socket bound to {}",
            other.display(),
            expected.display()
        )),
        "{said}"
    );
    assert!(
        said.contains("ListenStream= in mfad.socket and login_socket in mfad.toml"),
        "{said}"
    );
    assert!(!expected.exists(), "mfad bound its socket anyway");

    // A file as descriptor 3, named for this very process.
    let file = env.dir().join("not-a-socket");
    std::fs::write(&file, "").unwrap();
    let out = run_bounded(
        Command::new("sh")
            .arg("-c")
            .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --bus \"$1\" --config \"$2\" 3<\"$3\"")
            .arg(built("mfad"))
            .arg(&env.address)
            .arg(&config)
            .arg(&file),
        "mfad",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "systemd passed descriptor 3, a regular file ({}), not a socket, where mfad \
             expected its login socket",
            file.display()
        )),
        "{said}"
    );
}
