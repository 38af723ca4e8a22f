//! A real mail system (Debian's Postfix) for one test: it accepts mail for `example.org` on a
//! loopback port of its own, over STARTTLS with a certificate from a test authority (and only
//! over TLS), and delivers every message to one Maildir the test reads. It runs in a mount
//! namespace of its own, with the test's configuration, queue and data directories mounted over
//! /etc/postfix, /var/spool/postfix and /var/lib/postfix: the host's files are not touched.
//! [`Postfix::sendmail`] is a program that runs Postfix's own sendmail in that namespace, for
//! mfad's `email.sendmail`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{run_bounded, wait_until};

/// Whether Postfix is installed (scripts/install-deps.sh installs it).
pub fn available() -> bool {
    Path::new("/usr/sbin/postfix").exists()
}

pub struct Postfix {
    child: Child,
    dir: PathBuf,
    port: u16,
    /// The port that speaks TLS from the start (SMTPS).
    tls_port: u16,
    /// Postfix's master process (in the namespace).
    master: u32,
    /// The authority that signed the server's certificate (for `email.ca_file`).
    pub authority: PathBuf,
}

/// The services of Postfix's master.cf this test needs, none chrooted.
const MASTER: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

impl Postfix {
    /// Starts Postfix with its files in `dir` (made here).
    pub fn start(dir: &Path) -> Postfix {
        Postfix::start_with_login(dir, None)
    }

    /// [`Postfix::start`], taking mail only from a client that logs in (SASL PLAIN or LOGIN,
    /// over TLS) as `login` (user name and password, kept in a Cyrus SASL database).
    pub fn start_with_login(dir: &Path, login: Option<(&str, &str)>) -> Postfix {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).unwrap();
        let copied = run_bounded(
            Command::new("cp")
                .arg("-a")
                .arg("/etc/postfix")
                .arg(dir.join("etc")),
            "cp /etc/postfix",
        );
        assert!(copied.status.success(), "cannot copy /etc/postfix");
        for sub in ["spool", "lib", "mail"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // Postfix's own user keeps its data; the mailbox belongs to nobody.
        let chown = |owner: &str, path: &Path| {
            let out = run_bounded(Command::new("chown").arg(owner).arg(path), "chown");
            assert!(out.status.success(), "chown {owner} {}", path.display());
        };
        chown("postfix", &dir.join("lib"));
        chown("65534:65534", &dir.join("mail"));
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        let tls = dir.join("tls");
        fs::create_dir_all(&tls).unwrap();
        let (authority, certificate, key) = crate::postgres::certificates(&tls, "DNS:localhost");
        let port = free_tcp_port();
        let tls_port = free_tcp_port();
        let mut logins = String::new();
        if let Some((user, password)) = login {
            let database = dir.join("sasldb2");
            let mut saslpasswd = Command::new("saslpasswd2")
                .args(["-p", "-c", "-u", "mx.example.test", "-f"])
                .arg(&database)
                .arg(user)
                .stdin(Stdio::piped())
                .spawn()
                .expect("run saslpasswd2");
            use std::io::Write;
            write!(saslpasswd.stdin.take().unwrap(), "{password}").unwrap();
            assert!(saslpasswd.wait().unwrap().success(), "saslpasswd2 failed");
            chown("root:postfix", &database);
            fs::set_permissions(&database, fs::Permissions::from_mode(0o640)).unwrap();
            fs::create_dir_all(dir.join("etc/sasl")).unwrap();
            fs::write(
                dir.join("etc/sasl/smtpd.conf"),
                format!(
                    "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n\
                     sasldb_path: {}\n",
                    database.display()
                ),
            )
            .unwrap();
            logins = "smtpd_sasl_auth_enable = yes\n\
                      smtpd_sasl_type = cyrus\n\
                      smtpd_sasl_path = smtpd\n\
                      smtpd_sasl_local_domain = mx.example.test\n\
                      smtpd_tls_auth_only = yes\n\
                      smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n"
                .to_owned();
        }
        fs::write(
            dir.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 mail_owner = postfix\n\
                 setgid_group = postdrop\n\
                 myhostname = mx.example.test\n\
                 mydomain = example.test\n\
                 myorigin = $myhostname\n\
                 inet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\n\
                 mydestination =\n\
                 relayhost =\n\
                 mynetworks = 127.0.0.0/8\n\
                 virtual_mailbox_domains = example.org\n\
                 virtual_mailbox_base = {mail}\n\
                 virtual_mailbox_maps = static:inbox/\n\
                 virtual_uid_maps = static:65534\n\
                 virtual_gid_maps = static:65534\n\
                 virtual_minimum_uid = 100\n\
                 alias_maps =\n\
                 alias_database =\n\
                 maillog_file = /dev/stdout\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                 smtpd_tls_cert_file = {certificate}\n\
                 smtpd_tls_key_file = {key}\n\
                 smtpd_tls_security_level = encrypt\n\
                 smtpd_tls_loglevel = 1\n{logins}",
                mail = dir.join("mail").display(),
                certificate = certificate.display(),
                key = key.display(),
            ),
        )
        .unwrap();
        fs::write(
            dir.join("etc/master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd\n\
                 127.0.0.1:{tls_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes\n\
                 {MASTER}"
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("maillog")).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount --bind \"$1/etc\" /etc/postfix && \
                 mount --bind \"$1/spool\" /var/spool/postfix && \
                 mount --bind \"$1/lib\" /var/lib/postfix && \
                 postfix check && exec postfix start-fg",
            )
            .arg("sh")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postfix");
        wait_until("Postfix to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let master = fs::read_to_string(dir.join("spool/pid/master.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse().ok())
            .expect("Postfix's master.pid");
        let postfix = Postfix {
            child,
            dir: dir.to_owned(),
            port,
            tls_port,
            master,
            authority,
        };
        // The sendmail of the namespace, for mfad.
        let sendmail = postfix.sendmail();
        fs::write(
            &sendmail,
            format!(
                "#!/bin/sh\nexec nsenter --mount=/proc/{}/ns/mnt /usr/sbin/sendmail \"$@\"\n",
                postfix.master
            ),
        )
        .unwrap();
        fs::set_permissions(&sendmail, fs::Permissions::from_mode(0o755)).unwrap();
        postfix
    }

    /// The SMTP port, on 127.0.0.1 ("localhost", as its certificate names it).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port that speaks TLS from the start, on 127.0.0.1.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// A program that runs this Postfix's sendmail.
    pub fn sendmail(&self) -> PathBuf {
        self.dir.join("sendmail")
    }

    /// The messages delivered so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> =
            fs::read_dir(self.dir.join("mail/inbox/new"))
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|entry| {
                            let modified = entry.metadata().and_then(|m| m.modified());
                            (modified.unwrap_or(std::time::UNIX_EPOCH), entry.path())
                        })
                        .collect()
                })
                .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| fs::read_to_string(path).unwrap_or_default())
            .collect()
    }

    /// Waits for a message to `to` after the first `seen`; returns it.
    pub fn wait_for_message(&self, to: &str, seen: usize) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let found = (self.messages().into_iter().skip(seen))
                .find(|message| message.contains(&format!("To: {to}")));
            if let Some(message) = found {
                return message;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no message to {to} was delivered; Postfix's log:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// What Postfix logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Stops the mail system (the port then refuses connections).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.master.to_string())
            .status();
        wait_until("Postfix to stop", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        });
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port nothing listens on now.
fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.master.to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
