//! Contacts and the codes sent to them, through real mfactl processes running as their users,
//! real logins through libpam, on SQLite and on a real PostgreSQL server. No text message can
//! be sent from here: the SMS gateway is the command gateway (`[sms] command`) running a
//! script that keeps each message in an outbox, where the test reads the code as the phone
//! would show it.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pam_mfa_tests::{CtlOutput, Env, Store, wait_until};

const ALICE: u32 = 1000;
const BOB: u32 = 1001;
const CAROL: u32 = 1002;
const DAVE: u32 = 1003;

/// A number the gateway refuses, and one it never answers for.
const REFUSED: &str = "+447700900999";
const SILENT: &str = "+447700900888";

/// The command gateway: a script that appends "NUMBER MESSAGE" lines to its outbox.
struct Gateway {
    dir: PathBuf,
}

impl Gateway {
    fn new(name: &str) -> Gateway {
        let dir =
            std::env::temp_dir().join(format!("pam-mfa-test-sms-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "#!/bin/sh\n\
             case \"$1\" in\n\
             {REFUSED}) echo \"gateway: number $1 is barred\" >&2; exit 1;;\n\
             {SILENT}) touch {dir}/silent-started; sleep 30; touch {dir}/silent-ended;;\n\
             esac\n\
             printf '%s %s\\n' \"$1\" \"$2\" >> {dir}/outbox\n",
            dir = dir.display()
        );
        let path = dir.join("send-sms");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Gateway { dir }
    }

    fn config(&self, more: &str) -> String {
        format!(
            "[contacts]\nkinds = [\"phone\"]\ndelivery_timeout = 2\n{more}\n\
             [sms]\ncommand = [\"{}\", \"{{phone}}\", \"{{message}}\"]\n",
            self.dir.join("send-sms").display()
        )
    }

    fn messages(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("outbox"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The code of the last message to `number`, as the phone shows it.
    fn last_code_to(&self, number: &str) -> String {
        let messages = self.messages();
        let message = (messages.iter().rev())
            .find_map(|line| line.strip_prefix(&format!("{number} ")))
            .unwrap_or_else(|| panic!("no message to {number}: {messages:?}"));
        let code = message
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no code in {message:?}"));
        assert!(code.chars().all(|c| c.is_ascii_digit()), "{message}");
        code.to_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An administrator adds `phone` to `user`'s contacts, verified; returns what mfactl said.
fn vouch(env: &Env, user: &str, phone: &str) -> String {
    ok(env.ctl(
        &[
            "contact",
            "add",
            "--user",
            user,
            "--phone",
            phone,
            "--verified",
        ],
        "",
    ))
}

fn ok(out: CtlOutput) -> String {
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    out.stdout
}

fn refused(out: CtlOutput, says: &str) {
    assert!(!out.success, "{}", out.stdout);
    assert!(out.stderr.contains(says), "{}", out.stderr);
}

/// A code of `digits` digits other than `code`.
fn other_than(code: &str) -> String {
    if code == "000000" {
        "111111".into()
    } else {
        "000000".into()
    }
}

#[test]
fn a_phone_counts_once_its_code_is_typed_and_is_only_ever_shown_masked() {
    for store in Store::both() {
        eprintln!("store: {}", store.name());
        let gateway = Gateway::new(&format!("verify-{}", store.name()));
        let env = store.env("contacts", &gateway.config("")).start();

        // A user adds a phone: a code goes there at once, and nothing counts yet.
        let added = ok(env.ctl_as(
            Some(ALICE),
            &["contact", "add", "--phone", "+44 7700 900123"],
            "",
        ));
        assert!(
            added
                .contains("A code was sent to +44 ••• ••• 123: type it with mfactl contact verify"),
            "{added}"
        );
        let code = gateway.last_code_to("+447700900123");
        assert!(
            gateway.messages()[0].contains(&format!(": {code} (good for 10 minutes, once).")),
            "{:?}",
            gateway.messages()
        );
        refused(
            env.ctl_as(
                Some(ALICE),
                &["contact", "add", "--phone", "+447700900123"],
                "",
            ),
            "ask again in",
        );
        let listed = ok(env.ctl_as(Some(ALICE), &["contact", "list"], ""));
        assert!(
            listed.contains("phone  +44 ••• ••• 123  (not verified: waiting for its code)"),
            "{listed}"
        );
        // Only its code verifies it, once.
        refused(
            env.ctl_as(Some(ALICE), &["contact", "verify", &other_than(&code)], ""),
            "that is not the code sent to +44 ••• ••• 123",
        );
        let verified = ok(env.ctl_as(Some(ALICE), &["contact", "verify"], &format!("{code}\n")));
        assert!(
            verified.contains("+44 ••• ••• 123 is verified"),
            "{verified}"
        );
        refused(
            env.ctl_as(Some(ALICE), &["contact", "verify", &code], ""),
            "has no contact waiting for its code",
        );
        let listed = ok(env.ctl_as(Some(ALICE), &["contact", "list", "--json"], ""));
        let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed["user"], "alice");
        assert_eq!(listed["contacts"][0]["masked"], "+44 ••• ••• 123");
        assert!(listed["contacts"][0]["verified_at"].as_i64().unwrap() > 0);
        let status = ok(env.ctl_as(Some(ALICE), &["status"], ""));
        assert!(status.contains("contacts:  +44 ••• ••• 123"), "{status}");

        // Others' contacts are administrators' business.
        refused(
            env.ctl_as(Some(BOB), &["contact", "list", "--user", "alice"], ""),
            "",
        );
        let vouched = vouch(&env, "bob", "+447700900456");
        assert!(
            vouched.contains("bob: +44 ••• ••• 456 added, verified"),
            "{vouched}"
        );
        assert!(
            !gateway
                .messages()
                .iter()
                .any(|m| m.starts_with("+447700900456"))
        );
        let listed = ok(env.ctl(&["contact", "list", "--user", "bob"], ""));
        assert!(listed.contains("+44 ••• ••• 456  (verified "), "{listed}");

        // What cannot be a phone number, or cannot be sent, adds nothing.
        refused(
            env.ctl_as(
                Some(CAROL),
                &["contact", "add", "--phone", "07700 900123"],
                "",
            ),
            "international form",
        );
        refused(
            env.ctl_as(
                Some(CAROL),
                &["contact", "add", "--email", "carol@example.org"],
                "",
            ),
            "this host takes no email contacts",
        );
        refused(
            env.ctl_as(Some(CAROL), &["contact", "add", "--phone", REFUSED], ""),
            "no code was sent to +44 ••• ••• 999: it could not be delivered",
        );
        assert!(
            ok(env.ctl_as(Some(CAROL), &["contact", "list"], "")).contains("carol: no contacts")
        );
        let log = env.daemon_log();
        assert!(
            log.contains("contact code not sent: user=carol to +44 ••• ••• 999: ")
                && log.contains("exit status 1: gateway: number +44 ")
                && log.contains(" 999 is barred")
                && !log.contains("7700900999"),
            "{log}"
        );
        // A failed delivery still counts as a send tried: no flood of retries.
        refused(
            env.ctl_as(
                Some(CAROL),
                &["contact", "add", "--phone", "+447700900777"],
                "",
            ),
            "ask again in",
        );

        // With an app in use, a contact (which can stand in for it) needs a code from it.
        env.enroll("dave");
        refused(
            env.ctl_as(
                Some(DAVE),
                &["contact", "add", "--phone", "+447700900321"],
                "",
            ),
            "no code given",
        );
        refused(
            env.ctl_as(
                Some(DAVE),
                &["contact", "add", "--phone", "+447700900321"],
                &format!("{}\n", env.wrong_code("dave")),
            ),
            "does not match",
        );
        assert!(
            !gateway
                .messages()
                .iter()
                .any(|m| m.starts_with("+447700900321"))
        );
        let proof = env.fresh_code("dave");
        ok(env.ctl_as(
            Some(DAVE),
            &["contact", "add", "--phone", "+447700900321"],
            &format!("{proof}\n"),
        ));
        gateway.last_code_to("+447700900321");
        // The same code from the app again (spent now) adds nothing and sends nothing.
        refused(
            env.ctl_as(
                Some(DAVE),
                &["contact", "add", "--phone", "+447700900654"],
                &format!("{proof}\n"),
            ),
            "already used",
        );
        assert!(
            !gateway
                .messages()
                .iter()
                .any(|m| m.starts_with("+447700900654"))
        );

        // Removal.
        let removed = ok(env.ctl_as(
            Some(ALICE),
            &["contact", "remove", "--phone", "+44 7700 900123"],
            "",
        ));
        assert!(removed.contains("removed"), "{removed}");
        assert!(
            ok(env.ctl_as(Some(ALICE), &["contact", "list"], "")).contains("alice: no contacts")
        );
        // An administrator sees contacts masked, and removes one as shown.
        ok(env.ctl(
            &[
                "contact",
                "remove",
                "--user",
                "bob",
                "--phone",
                "+44 ••• ••• 456",
            ],
            "",
        ));
        assert!(
            ok(env.ctl(&["contact", "list", "--user", "bob"], "")).contains("bob: no contacts")
        );

        // The audit trail has each step, masked; no full number is in it or in mfad's log.
        let audit = ok(env.ctl(&["audit", "--user", "alice"], ""));
        for line in [
            "contact code sent: user=alice to +44 ••• ••• 123, to verify it by uid 1000",
            "contact verified: user=alice +44 ••• ••• 123 by uid 1000",
            "contact removed: user=alice +44 ••• ••• 123 by uid 1000",
        ] {
            assert!(audit.contains(line), "{line}\n{audit}");
        }
        let everything = ok(env.ctl(&["audit", "--limit", "1000"], ""));
        for number in ["7700900123", "7700900456", "7700900321", "7700900777"] {
            assert!(!everything.contains(number), "{everything}");
            assert!(!env.daemon_log().contains(number), "{}", env.daemon_log());
        }
        // The store keeps the numbers sealed.
        if store.name() == "sqlite" {
            let file = std::fs::read(env.state_dir().join("mfad.sqlite3")).unwrap();
            let text = String::from_utf8_lossy(&file);
            assert!(!text.contains("7700900456"));
        }
    }
}

/// Answers the app's part of an enrollment at login: the code of the secret shown with the
/// QR code, then Enter once the recovery codes are shown; `None` for anything else.
fn set_up_app(fresh: &str) -> Option<String> {
    use pam_mfa_tests::{away_from_step_end, code_at, current_step};
    if fresh.ends_with("Code shown by the app: ") {
        let secret = pam_mfa_tests::secret_shown(fresh)
            .unwrap_or_else(|| panic!("no secret with the prompt:\n{fresh}"));
        away_from_step_end(3);
        return Some(code_at(&secret, current_step()));
    }
    fresh
        .ends_with("Press Enter once you have saved these codes: ")
        .then(String::new)
}

/// Starts a login of `user` and reads its first question; returns the login and what it
/// showed.
fn begin(env: &Env, user: &str) -> (pam_mfa_tests::Driven, Vec<String>) {
    let mut login = env.login(user).rhost("192.0.2.7").service("sshd").drive();
    let shown = login.prompt();
    (login, shown)
}

/// Asks for a code by SMS at the code question of `login`, answers with the one sent to
/// `phone`, and expects the login to succeed.
fn gets_in_by_sms(mut login: pam_mfa_tests::Driven, gateway: &Gateway, phone: &str) {
    login.reply("sms");
    login.prompt();
    login.reply(&gateway.last_code_to(phone));
    login.finish().expect("PAM_SUCCESS");
}

fn shown_text(lines: &[String]) -> String {
    lines.join("\n")
}

#[test]
fn a_login_gets_in_once_with_a_code_sent_by_sms_and_wrong_ones_count() {
    for store in Store::both() {
        eprintln!("store: {}", store.name());
        let gateway = Gateway::new(&format!("login-{}", store.name()));
        let config =
            gateway.config("at_login = true\n[lockout]\nfailures = 3\n[remember]\nduration = 600");
        let env = store.env("contact_logins", &config).start();
        env.enroll("bob");
        vouch(&env, "bob", "+447700900456");

        let explained = ok(env.ctl(&["explain", "bob", "--service", "sshd"], ""));
        assert!(
            explained.contains("contacts: +44 ••• ••• 456 (codes can be sent there at this login)"),
            "{explained}"
        );
        // The code question says what to type; the word sends a code and asks again.
        let (mut login, shown) = begin(&env, "bob");
        let text = shown_text(&shown);
        assert!(
            text.contains("No app at hand? type sms for a code sent to +44 ••• ••• 456."),
            "{text}"
        );
        assert_eq!(shown.last().unwrap(), "PROMPT_ECHO_OFF Verification code: ");
        login.reply("sms");
        let text = shown_text(&login.prompt());
        assert!(
            text.contains(
                "A code was sent to +44 ••• ••• 456. Type it here (it is good for 10 minutes)"
            ),
            "{text}"
        );
        let code = gateway.last_code_to("+447700900456");
        // Asking again at once sends nothing.
        login.reply("sms");
        let text = shown_text(&login.prompt());
        assert!(text.contains("a moment ago"), "{text}");
        assert_eq!(gateway.messages().len(), 1);
        login.reply(&code);
        login.finish().expect("PAM_SUCCESS");

        // Used once; not remembered (the next login from the same place asks again); the
        // code still counts as a wrong one, as do others, towards the lockout.
        let (mut login, shown) = begin(&env, "bob");
        assert_eq!(shown.last().unwrap(), "PROMPT_ECHO_OFF Verification code: ");
        login.reply("sms");
        let text = shown_text(&login.prompt());
        assert!(text.contains("a moment ago"), "{text}");
        login.reply(&code);
        let text = shown_text(&login.prompt());
        assert!(text.contains("Wrong code. Try again."), "{text}");
        login.reply(&other_than(&code));
        login.prompt();
        login.reply(&other_than(&code));
        login.finish().expect("PAM_MAXTRIES");
        let (mut login, _) = begin(&env, "bob");
        login.reply(&other_than(&code));
        login
            .finish()
            .expect("PAM_AUTH_ERR")
            .shows("Too many wrong codes");

        let audit = ok(env.ctl(&["audit", "--user", "bob"], ""));
        for line in [
            "contact code sent: user=bob to +44 ••• ••• 456, for a login service=sshd rhost=192.0.2.7",
            "login allowed with a code sent to +44 ••• ••• 456: user=bob service=sshd rhost=192.0.2.7",
            "locked out: user=bob",
        ] {
            assert!(audit.contains(line), "{line}\n{audit}");
        }
    }
}

#[test]
fn a_gateway_that_hangs_tells_its_user_and_holds_up_no_one_else() {
    let gateway = Gateway::new("hangs");
    let env = Store::Sqlite
        .env("contact_hangs", &gateway.config("at_login = true"))
        .start();
    env.enroll("alice");
    env.enroll("carol");
    vouch(&env, "carol", SILENT);
    vouch(&env, "alice", REFUSED);

    // Carol's code is being sent, and does not come.
    let (mut carol, _) = begin(&env, "carol");
    carol.reply("sms");
    wait_until("the gateway to start carol's message", || {
        gateway.path("silent-started").exists()
    });
    // Meanwhile alice logs in with her app.
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    assert!(
        !gateway.path("silent-ended").exists(),
        "carol's delivery ended before alice's login did"
    );
    let text = shown_text(&carol.prompt());
    assert!(
        text.contains("No code was sent: it could not be delivered. Type a code from your app, or try again later."),
        "{text}"
    );
    // No try was spent: the app's code still gets in.
    carol.reply(&env.fresh_code("carol"));
    carol.finish().expect("PAM_SUCCESS");
    assert!(
        env.daemon_log()
            .contains("did not finish within 2 s (contacts.delivery_timeout); it was stopped"),
        "{}",
        env.daemon_log()
    );

    // A gateway that refuses says so in one line, and the login goes on.
    let (mut alice, _) = begin(&env, "alice");
    alice.reply("sms");
    let text = shown_text(&alice.prompt());
    assert!(
        text.contains("No code was sent: it could not be delivered."),
        "{text}"
    );
    alice.reply(&env.fresh_code("alice"));
    alice.finish().expect("PAM_SUCCESS");
}

/// The code in a message: the digits after "Your code for ...: ".
fn code_in(message: &str) -> String {
    let after = message
        .split("): ")
        .nth(1)
        .or_else(|| {
            message
                .split(": ")
                .find(|part| part.starts_with(|c: char| c.is_ascii_digit()))
        })
        .unwrap_or_else(|| panic!("no code in {message}"));
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert!(code.len() >= 6, "{message}");
    code
}

/// A line of the message's text with the code: "Your code for pam-mfa on HOST: 123456 (…".
fn code_of_email(message: &str) -> String {
    let line = message
        .lines()
        .find(|line| line.starts_with("Your code for "))
        .unwrap_or_else(|| panic!("no code line in {message}"));
    code_in(line.rsplit_once(": ").map_or(line, |(_, rest)| rest))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pam-mfa-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn email_codes_go_through_a_real_postfix_over_starttls_and_through_its_sendmail() {
    use pam_mfa_tests::postfix::{self, Postfix};
    assert!(
        postfix::available(),
        "Postfix is not installed: run scripts/install-deps.sh"
    );
    for store in Store::both() {
        eprintln!("store: {}", store.name());
        let mut mta = Postfix::start(&scratch(&format!("postfix-{}", store.name())));
        let smtp = |ca: &std::path::Path| {
            format!(
                "[contacts]\nkinds = [\"email\"]\nat_login = true\n\
                 [lockout]\nfailures = 3\n\
                 [email]\nvia = \"smtp\"\nserver = \"localhost\"\nport = {}\ntls = \"starttls\"\n\
                 ca_file = \"{}\"\nfrom = \"mfa@example.test\"\n",
                mta.port(),
                ca.display()
            )
        };
        let env = store.env("contact_email", &smtp(&mta.authority)).start();

        // Validation of a new address, by SMTP with STARTTLS.
        ok(env.ctl_as(
            Some(ALICE),
            &["contact", "add", "--email", "Alice@Example.ORG"],
            "",
        ));
        let message = mta.wait_for_message("Alice@example.org", 0);
        assert!(message.contains("From: mfa@example.test"), "{message}");
        assert!(
            message.contains("Subject: Your code for pam-mfa on "),
            "{message}"
        );
        let code = code_of_email(&message);
        assert!(
            mta.log()
                .contains("TLS connection established from localhost[127.0.0.1]"),
            "{}",
            mta.log()
        );
        let verified = ok(env.ctl_as(Some(ALICE), &["contact", "verify", &code], ""));
        assert!(
            verified.contains("A***@example.org is verified"),
            "{verified}"
        );

        // A login with an emailed code: once, and a wrong one counts.
        env.enroll("alice");
        let (mut login, shown) = begin(&env, "alice");
        assert!(
            shown_text(&shown).contains("type email for a code sent to A***@example.org"),
            "{shown:?}"
        );
        login.reply("email");
        let text = shown_text(&login.prompt());
        assert!(
            text.contains("A code was sent to A***@example.org."),
            "{text}"
        );
        let message = mta.wait_for_message("Alice@example.org", 1);
        let code = code_of_email(&message);
        login.reply(&other_than(&code));
        let text = shown_text(&login.prompt());
        assert!(text.contains("Wrong code. Try again."), "{text}");
        login.reply(&code);
        login.finish().expect("PAM_SUCCESS");
        let (mut login, _) = begin(&env, "alice");
        login.reply("email");
        assert!(shown_text(&login.prompt()).contains("ask for another in"));
        login.reply(&code);
        assert!(shown_text(&login.prompt()).contains("Wrong code. Try again."));
        login.reply(&env.fresh_code("alice"));
        login.finish().expect("PAM_SUCCESS");

        // TLS from the start (SMTPS) as well.
        env.write_config(&format!(
            "[contacts]\nkinds = [\"email\"]\n\
             [email]\nvia = \"smtp\"\nserver = \"localhost\"\nport = {}\ntls = \"tls\"\n\
             ca_file = \"{}\"\nfrom = \"mfa@example.test\"\n",
            mta.tls_port(),
            mta.authority.display()
        ));
        ok(env.ctl(&["reload"], ""));
        ok(env.ctl_as(
            Some(DAVE),
            &["contact", "add", "--email", "dave@example.org"],
            "",
        ));
        mta.wait_for_message("dave@example.org", 0);
        env.write_config(&smtp(&mta.authority));
        ok(env.ctl(&["reload"], ""));

        // A server whose certificate the configured authority did not sign gets nothing.
        let other = scratch(&format!("other-ca-{}", store.name()));
        std::fs::create_dir_all(&other).unwrap();
        let (wrong_authority, _, _) =
            pam_mfa_tests::postgres::certificates(&other, "DNS:localhost");
        env.write_config(&smtp(&wrong_authority));
        ok(env.ctl(&["reload"], ""));
        let seen = mta.messages().len();
        refused(
            env.ctl_as(
                Some(BOB),
                &["contact", "add", "--email", "bob@example.org"],
                "",
            ),
            "no code was sent to b***@example.org",
        );
        assert_eq!(mta.messages().len(), seen);
        assert!(
            env.daemon_log().contains(
                "contact code not sent: user=bob to b***@example.org: the SMTP server localhost:"
            ),
            "{}",
            env.daemon_log()
        );

        // Through the mail system's own sendmail.
        env.write_config(&format!(
            "[contacts]\nkinds = [\"email\"]\nat_login = true\n\
             [email]\nsendmail = \"{}\"\nfrom = \"mfa@example.test\"\n",
            mta.sendmail().display()
        ));
        ok(env.ctl(&["reload"], ""));
        // (Bob waits after his failed send: carol adds hers.)
        ok(env.ctl_as(
            Some(CAROL),
            &["contact", "add", "--email", "carol@example.org"],
            "",
        ));
        let message = mta.wait_for_message("carol@example.org", seen);
        ok(env.ctl_as(
            Some(CAROL),
            &["contact", "verify", &code_of_email(&message)],
            "",
        ));
        assert!(mta.log().contains("postfix/pickup"), "{}", mta.log());

        // The mail system stopped: the user is told in one line, and logins go on.
        env.enroll("carol");
        env.write_config(&smtp(&mta.authority));
        ok(env.ctl(&["reload"], ""));
        mta.stop();
        let (mut login, _) = begin(&env, "carol");
        login.reply("email");
        let text = shown_text(&login.prompt());
        assert!(
            text.contains("No code was sent: it could not be delivered. Type a code from your app, or try again later."),
            "{text}"
        );
        login.reply(&env.fresh_code("carol"));
        login.finish().expect("PAM_SUCCESS");
        env.login("alice")
            .answer(&env.fresh_code("alice"))
            .run()
            .expect("PAM_SUCCESS");
        let _ = std::fs::remove_dir_all(&other);
    }
}

#[test]
fn sms_codes_go_to_an_https_gateway_with_its_headers_and_a_checked_certificate() {
    use pam_mfa_tests::https::Gateway as Api;
    for store in Store::both() {
        eprintln!("store: {}", store.name());
        let dir = scratch(&format!("sms-api-{}", store.name()));
        let api = Api::start(&dir.join("api"));
        let headers = dir.join("headers");
        std::fs::write(
            &headers,
            "Authorization: Bearer test-token\nX-Sender: pam-mfa\n",
        )
        .unwrap();
        std::fs::set_permissions(&headers, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = format!(
            "[contacts]\nkinds = [\"phone\"]\nat_login = true\n\
             [sms]\nvia = \"http\"\nurl = \"https://localhost:{}/v1/messages?to={{phone}}\"\n\
             content_type = \"application/json\"\n\
             body = '{{\"to\": \"{{phone}}\", \"text\": \"{{message}}\"}}'\n\
             headers_file = \"{}\"\nca_file = \"{}\"\n",
            api.port(),
            headers.display(),
            api.authority.display()
        );
        let env = store.env("contact_sms_api", &config).start();
        env.enroll("bob");
        vouch(&env, "bob", "+447700900456");
        let (mut login, _) = begin(&env, "bob");
        login.reply("sms");
        let text = shown_text(&login.prompt());
        assert!(
            text.contains("A code was sent to +44 ••• ••• 456."),
            "{text}"
        );
        let requests = api.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let request = &requests[0];
        assert_eq!(
            request.line,
            "POST /v1/messages?to=%2B447700900456 HTTP/1.1"
        );
        for header in [
            "Authorization: Bearer test-token",
            "X-Sender: pam-mfa",
            "Content-Type: application/json",
        ] {
            assert!(request.headers.iter().any(|h| h == header), "{request:?}");
        }
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body["to"], "+447700900456");
        let code = code_in(body["text"].as_str().unwrap());
        login.reply(&code);
        login.finish().expect("PAM_SUCCESS");

        // A gateway that answers with an error, or a headers file others may read: nothing
        // is sent, and the user is told.
        vouch(&env, "carol", "+447700900789");
        env.enroll("carol");
        api.answer_with(503);
        let (mut login, _) = begin(&env, "carol");
        login.reply("sms");
        assert!(shown_text(&login.prompt()).contains("No code was sent"));
        login.reply(&env.fresh_code("carol"));
        login.finish().expect("PAM_SUCCESS");
        assert!(
            env.daemon_log().contains("the gateway localhost:") && env.daemon_log().contains("503"),
            "{}",
            env.daemon_log()
        );
        // Carol waits before she may try again; dave tries with a headers file others read.
        let (mut login, _) = begin(&env, "carol");
        login.reply("sms");
        assert!(shown_text(&login.prompt()).contains("ask for another in"));
        login.reply(&env.fresh_code("carol"));
        login.finish().expect("PAM_SUCCESS");
        vouch(&env, "dave", "+447700900321");
        env.enroll("dave");
        api.answer_with(200);
        std::fs::set_permissions(&headers, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (mut login, _) = begin(&env, "dave");
        login.reply("sms");
        assert!(shown_text(&login.prompt()).contains("No code was sent"));
        login.reply(&env.fresh_code("dave"));
        login.finish().expect("PAM_SUCCESS");
        assert!(
            env.daemon_log()
                .contains("must belong to root and be readable by no one else"),
            "{}",
            env.daemon_log()
        );
        assert_eq!(api.requests().len(), 2, "the 503 and nothing since");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_first_login_over_ssh_verifies_an_email_address_before_the_app_and_resumes_there() {
    use pam_mfa_tests::postfix::Postfix;
    use pam_mfa_tests::sshd::{self, CODE_ONLY, KBD, KBD_ONLY, Sshd};
    assert!(
        sshd::available(),
        "OpenSSH is not installed: run scripts/install-deps.sh"
    );
    for store in Store::both() {
        eprintln!("store: {}", store.name());
        let mta = Postfix::start(&scratch(&format!("postfix-ssh-{}", store.name())));
        let config = format!(
            "[contacts]\nkinds = [\"email\"]\nat_enrollment = \"email\"\nat_login = true\n\
             [email]\nvia = \"smtp\"\nserver = \"localhost\"\nport = {}\n\
             ca_file = \"{}\"\nfrom = \"mfa@example.test\"\n",
            mta.port(),
            mta.authority.display()
        );
        let env = store.env("contact_enrollment", &config).start();
        ok(env.ctl(&["enforce", "--all", "on"], ""));
        let sshd = Sshd::start(&env, CODE_ONLY, KBD);

        // The address first, then its code, then the app, then the recovery codes.
        let mut asked = Vec::new();
        let mut respond = |fresh: &str| {
            let prompt = fresh.lines().last().unwrap_or("").to_owned();
            asked.push(prompt.clone());
            if fresh.ends_with("Email address: ") {
                assert!(
                    fresh.contains("First, give an email address that codes can be sent"),
                    "{fresh}"
                );
                return Some("bob@example.org".to_owned());
            }
            if fresh.ends_with("Code sent to you: ") {
                assert!(
                    fresh.contains("A code was sent to b***@example.org"),
                    "{fresh}"
                );
                return Some(code_of_email(&mta.wait_for_message("bob@example.org", 0)));
            }
            if fresh.ends_with("Code shown by the app: ") {
                assert!(fresh.contains("b***@example.org is verified."), "{fresh}");
            }
            set_up_app(fresh)
        };
        let session = sshd::ssh_with(
            sshd.port,
            "bob",
            "echo remote-$((6*7))",
            KBD_ONLY,
            &mut respond,
        );
        assert!(session.screen.contains("remote-42"), "{}", session.screen);
        assert_eq!(
            asked,
            [
                "Email address: ",
                "Code sent to you: ",
                "Code shown by the app: ",
                "Press Enter once you have saved these codes: "
            ]
        );
        let listed = ok(env.ctl(&["contact", "list", "--user", "bob"], ""));
        assert!(
            listed.contains("email  b***@example.org  (verified "),
            "{listed}"
        );

        // The next login over SSH, without the app: "email" at the code question, then the
        // code from the mailbox.
        let mut questions = 0;
        let mut respond = |fresh: &str| {
            if !fresh.ends_with("Verification code: ") {
                return None;
            }
            questions += 1;
            match questions {
                1 => {
                    assert!(
                        fresh.contains("type email for a code sent to b***@example.org"),
                        "{fresh}"
                    );
                    Some("email".to_owned())
                }
                2 => {
                    assert!(
                        fresh.contains("A code was sent to b***@example.org."),
                        "{fresh}"
                    );
                    Some(code_of_email(&mta.wait_for_message("bob@example.org", 1)))
                }
                _ => None,
            }
        };
        let session = sshd::ssh_with(
            sshd.port,
            "bob",
            "echo mail-$((6*7))",
            KBD_ONLY,
            &mut respond,
        );
        assert!(session.screen.contains("mail-42"), "{}", session.screen);

        // A login cut off after the code was sent resumes at the code.
        let gave_up = sshd::ssh(sshd.port, "carol", "true", KBD_ONLY, &["carol@example.org"]);
        assert_ne!(gave_up.status, 0, "{}", gave_up.screen);
        let message = mta.wait_for_message("carol@example.org", 0);
        let mut resumed = None;
        let mut respond = |fresh: &str| {
            if fresh.ends_with("Code sent to you: ") && resumed.is_none() {
                resumed = Some(fresh.to_owned());
                return Some(code_of_email(&message));
            }
            set_up_app(fresh)
        };
        let session = sshd::ssh_with(
            sshd.port,
            "carol",
            "echo in-$((6*7))",
            KBD_ONLY,
            &mut respond,
        );
        assert!(session.screen.contains("in-42"), "{}", session.screen);
        let resumed = resumed.expect("the code was asked first");
        assert!(
            resumed.contains("A code was sent to c***@example.org")
                && resumed.contains("at your last login"),
            "{resumed}"
        );
        assert_eq!(mta.messages().len(), 3, "no second code was sent to carol");
    }
}

#[test]
fn codes_by_sms_at_login_can_be_for_members_of_a_group_only() {
    let gateway = Gateway::new("group");
    let env = Store::Sqlite
        .env(
            "contact_group",
            &gateway.config("at_login_groups = [\"field\"]"),
        )
        .group("field", 2000, &["bob"])
        .start();
    for (user, phone) in [("alice", "+447700900111"), ("bob", "+447700900222")] {
        env.enroll(user);
        vouch(&env, user, phone);
    }
    // A member is offered the word, and gets in with the code sent.
    let (login, shown) = begin(&env, "bob");
    assert!(shown_text(&shown).contains("type sms for a code sent to +44 ••• ••• 222"));
    gets_in_by_sms(login, &gateway, "+447700900222");
    // Anyone else is not: the word is a wrong code, and nothing is sent.
    let (mut login, shown) = begin(&env, "alice");
    assert!(!shown_text(&shown).contains("No app at hand"), "{shown:?}");
    login.reply("sms");
    assert!(shown_text(&login.prompt()).contains("Wrong code. Try again."));
    login.reply(&env.fresh_code("alice"));
    login.finish().expect("PAM_SUCCESS");
    assert!(
        !gateway
            .messages()
            .iter()
            .any(|m| m.starts_with("+447700900111"))
    );
    // Phones taken out of contacts.kinds: no code goes to one at a login any more.
    env.write_config("[contacts]\nkinds = [\"email\"]\nat_login = true\n");
    ok(env.ctl(&["reload"], ""));
    let (mut login, shown) = begin(&env, "bob");
    assert!(!shown_text(&shown).contains("No app at hand"), "{shown:?}");
    login.reply("sms");
    assert!(shown_text(&login.prompt()).contains("Wrong code. Try again."));
    login.reply(&env.fresh_code("bob"));
    login.finish().expect("PAM_SUCCESS");
    assert_eq!(gateway.messages().len(), 1);
}

#[test]
fn a_login_with_a_code_sent_is_remembered_only_where_configured() {
    let gateway = Gateway::new("remember");
    let env = Store::Sqlite
        .env(
            "contact_remember",
            &gateway.config("at_login = true\nremember = true\n[remember]\nduration = 600"),
        )
        .start();
    env.enroll("bob");
    vouch(&env, "bob", "+447700900456");
    let (login, _) = begin(&env, "bob");
    gets_in_by_sms(login, &gateway, "+447700900456");
    // From the same place, through the same service: no question.
    env.login("bob")
        .rhost("192.0.2.7")
        .service("sshd")
        .run()
        .expect("PAM_SUCCESS");
    let audit = ok(env.ctl(&["audit", "--user", "bob"], ""));
    assert!(audit.contains("remembered from a right code"), "{audit}");
}

#[test]
fn the_smtp_login_comes_from_a_root_only_file_and_a_wrong_one_sends_nothing() {
    use pam_mfa_tests::postfix::Postfix;
    let mta = Postfix::start_with_login(&scratch("postfix-login"), Some(("web1", "s3cret pass")));
    let credentials = scratch("smtp-credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    let file = credentials.join("credentials");
    let write = |text: &str, mode: u32| {
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write("web1\ns3cret pass\n", 0o600);
    let config = format!(
        "[contacts]\nkinds = [\"email\"]\n\
         [email]\nvia = \"smtp\"\nserver = \"localhost\"\nport = {}\nca_file = \"{}\"\n\
         from = \"mfa@example.test\"\ncredentials_file = \"{}\"\n",
        mta.port(),
        mta.authority.display(),
        file.display()
    );
    let env = Store::Sqlite.env("contact_smtp_login", &config).start();
    ok(env.ctl_as(
        Some(ALICE),
        &["contact", "add", "--email", "alice@example.org"],
        "",
    ));
    let message = mta.wait_for_message("alice@example.org", 0);
    ok(env.ctl_as(
        Some(ALICE),
        &["contact", "verify", &code_of_email(&message)],
        "",
    ));
    assert!(
        mta.log().contains("sasl_method=PLAIN") || mta.log().contains("sasl_method=LOGIN"),
        "{}",
        mta.log()
    );

    // A wrong password, or a file others may read: nothing is sent, and mfad says why.
    write("web1\nwrong\n", 0o600);
    refused(
        env.ctl_as(
            Some(BOB),
            &["contact", "add", "--email", "bob@example.org"],
            "",
        ),
        "no code was sent to b***@example.org",
    );
    assert!(env.daemon_log().contains("535"), "{}", env.daemon_log());
    write("web1\ns3cret pass\n", 0o644);
    refused(
        env.ctl_as(
            Some(CAROL),
            &["contact", "add", "--email", "carol@example.org"],
            "",
        ),
        "no code was sent to c***@example.org",
    );
    assert!(
        env.daemon_log()
            .contains("must belong to root and be readable by no one else"),
        "{}",
        env.daemon_log()
    );
    assert_eq!(mta.messages().len(), 1);
    assert!(!env.daemon_log().contains("s3cret"), "{}", env.daemon_log());
    let _ = std::fs::remove_dir_all(&credentials);
}

#[test]
fn codes_by_sms_at_login_can_be_for_some_services_only() {
    let gateway = Gateway::new("services");
    let env = Store::Sqlite
        .env(
            "contact_services",
            &gateway.config("at_login_services = [\"sshd\"]"),
        )
        .start();
    env.enroll("bob");
    vouch(&env, "bob", "+447700900222");
    // Through sshd: offered, and the code sent gets in.
    let (login, shown) = begin(&env, "bob");
    assert!(shown_text(&shown).contains("type sms for a code sent to +44 ••• ••• 222"));
    gets_in_by_sms(login, &gateway, "+447700900222");
    // Through another service: the word is a wrong code, and nothing is sent.
    let mut login = env.login("bob").service("sudo").drive();
    assert!(!shown_text(&login.prompt()).contains("No app at hand"));
    login.reply("sms");
    assert!(shown_text(&login.prompt()).contains("Wrong code. Try again."));
    login.reply(&env.fresh_code("bob"));
    login.finish().expect("PAM_SUCCESS");
    assert_eq!(gateway.messages().len(), 1);
    let explained = ok(env.ctl(&["explain", "bob", "--service", "sudo"], ""));
    assert!(
        explained.contains("no code is sent at this login (contacts.at_login)"),
        "{explained}"
    );
}
