//! A network namespace joined to the test's by a veth pair, for an mfad the test can cut off
//! from the database as a failed switch or cable would: `ip netns` and `ip link`, as root.
//! Removed, with its link, when dropped.
//!
//! ```no_run
//! let island = pam_mfa_tests::netns::NetNamespace::new();
//! // The database listens on island.host_address(); mfad runs with
//! // Env::new().in_network_namespace(island.name()).
//! island.cut(); // packets between the two are lost, both ways
//! island.mend();
//! ```

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::run_bounded;

pub struct NetNamespace {
    name: String,
    /// The end of the link in the test's namespace.
    outside: String,
    /// 10.231.X.Y/29: `.Y` is the test's end, `.Y+1` the namespace's, `.Y+2` nobody's.
    prefix: String,
    first: u32,
}

fn ip(args: &[&str]) {
    let out = run_bounded(Command::new("ip").args(args), "ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNamespace {
    /// A namespace with its loopback up and a link to the test's namespace, each end
    /// addressed (see [`NetNamespace::host_address`]).
    pub fn new() -> NetNamespace {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let index = NEXT.fetch_add(1, Ordering::Relaxed) % 30;
        let pid = std::process::id();
        let name = format!("mfa{}n{index}", pid % 100_000);
        let outside = format!("mfa{}o{index}", pid % 100_000);
        let inside = format!("mfa{}i{index}", pid % 100_000);
        // Another test process uses another third octet (most of the time: pids modulo 250).
        let prefix = format!("10.231.{}", pid % 250);
        let first = index * 8 + 1;
        let _ = run_bounded(Command::new("ip").args(["netns", "del", &name]), "ip");
        ip(&["netns", "add", &name]);
        let namespace = NetNamespace {
            name,
            outside,
            prefix,
            first,
        };
        ip(&[
            "link",
            "add",
            &namespace.outside,
            "type",
            "veth",
            "peer",
            "name",
            &inside,
        ]);
        ip(&["link", "set", &inside, "netns", &namespace.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/29", namespace.host_address()),
            "dev",
            &namespace.outside,
        ]);
        ip(&["link", "set", &namespace.outside, "up"]);
        let inner = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &namespace.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inner(&["link", "set", "lo", "up"]);
        inner(&[
            "addr",
            "add",
            &format!("{}.{}/29", namespace.prefix, namespace.first + 1),
            "dev",
            &inside,
        ]);
        inner(&["link", "set", &inside, "up"]);
        namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The test's end of the link: where a server reachable from the namespace listens.
    pub fn host_address(&self) -> String {
        format!("{}.{}", self.prefix, self.first)
    }

    /// The link's network (CIDR), for a server's list of clients.
    pub fn network(&self) -> String {
        format!("{}.{}/29", self.prefix, self.first - 1)
    }

    /// An address on the link that nobody has: what is sent to it from the namespace goes
    /// unanswered (its neighbour is never found) until the kernel gives up, after about 3 s,
    /// as for a server whose machine is gone.
    pub fn silent_address(&self) -> String {
        format!("{}.{}", self.prefix, self.first + 2)
    }

    /// Cuts the link: what either side sends is lost, nothing is refused.
    pub fn cut(&self) {
        ip(&["link", "set", &self.outside, "down"]);
    }

    /// Joins it again.
    pub fn mend(&self) {
        ip(&["link", "set", &self.outside, "up"]);
    }
}

impl Default for NetNamespace {
    fn default() -> Self {
        NetNamespace::new()
    }
}

impl Drop for NetNamespace {
    fn drop(&mut self) {
        let _ = run_bounded(Command::new("ip").args(["netns", "del", &self.name]), "ip");
        let _ = run_bounded(
            Command::new("ip").args(["link", "del", &self.outside]),
            "ip",
        );
    }
}
