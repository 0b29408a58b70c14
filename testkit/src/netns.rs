//! Network namespaces for tests: real kernels, real routes, no traffic outside what the test made.
//!
//! A test builds its own little network — namespaces joined by veth pairs, bridges with addresses —
//! with `ip` (iproute2), runs tools inside it with `ip netns exec`, and everything it made is
//! removed in `Drop`, even when the test panics. Names are unique per process and per call, so
//! tests in one binary and other test binaries can run at the same time.
//!
//! Interface names live inside the namespaces (veth pairs are created directly in them), so two
//! tests never race for a name in the root namespace.
//!
//! ```no_run
//! use testkit::netns::Lab;
//! let lab = Lab::builder("rs")
//!     .host_bridge(&["10.240.0.1/24", "fd00:240::1/64"])
//!     .node("n1", &["10.240.0.21/24", "fd00:240::21/64"])
//!     .node("n2", &["10.240.0.22/24", "fd00:240::22/64"])
//!     .build();
//! lab.node("n1").add_bridge("pods0", &["10.200.1.1/24"]);
//! lab.host.run_ok("ping", &["-c1", "-W2", "10.240.0.21"]);
//! ```

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs a command to completion and returns its output; panics when it cannot start.
fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is iproute2 installed?)"))
}

/// Panics with the command, exit status and stderr unless it succeeded; returns stdout.
fn check(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip ARGS` in the current (root) namespace; panics on failure.
fn ip_root(args: &[&str]) -> String {
    check(
        &format!("ip {}", args.join(" ")),
        output(Command::new("ip").args(args)),
    )
}

/// A named network namespace (`ip netns add`), deleted with everything in it on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `PREFIX-PID-N` with its loopback up. Keep `prefix` short.
    /// Panics (after [`crate::require_root`]) when it cannot.
    pub fn new(prefix: &str) -> Netns {
        crate::require_root();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        ip_root(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name, as `ip netns` and `ip -n` know it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program` inside the namespace (`ip netns exec NAME program`); add
    /// arguments, stdin, env to it as usual.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `program ARGS` inside the namespace and returns its output, whatever its status.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
        output(self.command(program).args(args))
    }

    /// Runs `program ARGS` inside the namespace; panics with its stderr unless it succeeds.
    /// Returns stdout.
    pub fn run_ok(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
        let program = program.as_ref();
        let what = format!(
            "`{} {}` in netns {}",
            program.to_string_lossy(),
            args.join(" "),
            self.name
        );
        check(&what, self.exec(program, args))
    }

    /// Runs `ip ARGS` against this namespace (`ip -n NAME ARGS`); panics on failure, returns
    /// stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip_root(&all)
    }

    /// Sets a sysctl inside the namespace, e.g. `("net.ipv4.ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.run_ok("sysctl", &["-qw", &format!("{key}={value}")]);
    }

    /// Adds `addr` (CIDR notation) to `dev`; IPv6 addresses get `nodad` so they are usable at
    /// once instead of after duplicate address detection.
    pub fn add_addr(&self, dev: &str, addr: &str) {
        if addr.contains(':') {
            self.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
        } else {
            self.ip(&["addr", "add", addr, "dev", dev]);
        }
    }

    /// Creates a bridge holding `addrs`, and brings it up. A bridge without ports has no carrier,
    /// so a veth pair is plugged into it (`NAME-p` / `NAME-q`, both up inside this namespace) to
    /// make the addresses and their routes live: it stands in for a node's pod network, as the
    /// kernel here has no dummy module. Bridge names follow the 15-character limit of Linux.
    pub fn add_bridge(&self, name: &str, addrs: &[&str]) {
        assert!(
            name.len() <= 13,
            "bridge name {name:?} is too long (13 characters at most)"
        );
        self.ip(&["link", "add", name, "type", "bridge"]);
        let port = format!("{name}-p");
        let peer = format!("{name}-q");
        self.ip(&["link", "add", &port, "type", "veth", "peer", "name", &peer]);
        self.ip(&["link", "set", &port, "master", name]);
        for addr in addrs {
            self.add_addr(name, addr);
        }
        for dev in [&port, &peer, name] {
            self.ip(&["link", "set", dev, "up"]);
        }
    }

    /// Joins this namespace and `other` with a veth pair: `local` here, `remote` there, both up.
    pub fn veth_to(&self, local: &str, other: &Netns, remote: &str) {
        self.ip(&[
            "link",
            "add",
            local,
            "type",
            "veth",
            "peer",
            "name",
            remote,
            "netns",
            &other.name,
        ]);
        self.ip(&["link", "set", local, "up"]);
        other.ip(&["link", "set", remote, "up"]);
    }

    /// The PIDs of processes running inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        let out = output(Command::new("ip").args(["netns", "pids", &self.name]));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    /// Kills what still runs inside (it would keep the namespace and its routes alive) and
    /// deletes the namespace; its interfaces, veth peers included, go with it.
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// A "host" namespace with a bridge, and node namespaces plugged into it by veth pairs: the
/// shape of a libvirt NAT network with its VMs.
#[derive(Debug)]
pub struct Lab {
    /// The host (hypervisor) namespace; its bridge is [`Lab::BRIDGE`].
    pub host: Netns,
    /// The nodes, in the order they were added.
    pub nodes: Vec<LabNode>,
}

/// One node of a [`Lab`]: its namespace, its name, and the addresses on its [`Lab::NODE_DEV`].
#[derive(Debug)]
pub struct LabNode {
    pub name: String,
    pub addrs: Vec<String>,
    pub ns: Netns,
}

impl std::ops::Deref for LabNode {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.ns
    }
}

/// Builds a [`Lab`]; see [`Lab::builder`].
#[derive(Debug)]
pub struct LabBuilder {
    prefix: String,
    bridge_addrs: Vec<String>,
    nodes: Vec<(String, Vec<String>)>,
    forwarding: bool,
}

impl Lab {
    /// The bridge's name in the host namespace.
    pub const BRIDGE: &'static str = "br0";
    /// The node's end of its veth pair, inside the node's namespace.
    pub const NODE_DEV: &'static str = "eth0";

    /// Starts a lab whose namespaces are named `PREFIX-PID-N`.
    pub fn builder(prefix: &str) -> LabBuilder {
        LabBuilder {
            prefix: prefix.to_string(),
            bridge_addrs: Vec::new(),
            nodes: Vec::new(),
            forwarding: true,
        }
    }

    /// The node called `name`; panics when there is none.
    pub fn node(&self, name: &str) -> &LabNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name:?} in the lab"))
    }
}

impl LabBuilder {
    /// Addresses (CIDR notation) of the host's bridge, e.g. `10.240.0.1/24`.
    pub fn host_bridge(mut self, addrs: &[&str]) -> LabBuilder {
        self.bridge_addrs = addrs.iter().map(|a| a.to_string()).collect();
        self
    }

    /// A node namespace with `addrs` (CIDR notation) on its `eth0`, plugged into the host bridge.
    pub fn node(mut self, name: &str, addrs: &[&str]) -> LabBuilder {
        self.nodes.push((
            name.to_string(),
            addrs.iter().map(|a| a.to_string()).collect(),
        ));
        self
    }

    /// Whether IPv4 and IPv6 forwarding is on in every namespace (on by default: nodes and the
    /// host route for pods as real ones do).
    pub fn forwarding(mut self, on: bool) -> LabBuilder {
        self.forwarding = on;
        self
    }

    /// Creates the namespaces, the bridge and the veth pairs, and brings everything up.
    pub fn build(self) -> Lab {
        let host = Netns::new(&self.prefix);
        host.ip(&["link", "add", Lab::BRIDGE, "type", "bridge"]);
        for addr in &self.bridge_addrs {
            host.add_addr(Lab::BRIDGE, addr);
        }
        host.ip(&["link", "set", Lab::BRIDGE, "up"]);
        if self.forwarding {
            set_forwarding(&host);
        }
        let mut nodes = Vec::new();
        for (i, (name, addrs)) in self.nodes.into_iter().enumerate() {
            let ns = Netns::new(&self.prefix);
            let host_end = format!("veth{i}");
            host.veth_to(&host_end, &ns, Lab::NODE_DEV);
            host.ip(&["link", "set", &host_end, "master", Lab::BRIDGE]);
            for addr in &addrs {
                ns.add_addr(Lab::NODE_DEV, addr);
            }
            if self.forwarding {
                set_forwarding(&ns);
            }
            nodes.push(LabNode { name, addrs, ns });
        }
        Lab { host, nodes }
    }
}

/// A cluster across two hypervisors in namespaces, from a two-hypervisor document (e.g.
/// tests/fixtures/hypervisors/two.json): each hypervisor a [`Lab`] whose bridge holds its slice's
/// first address (the gateway mkvm gives it) with its nodes plugged in, each node's default
/// route via that gateway (as mkvm's seed gives it) and its pod gateway on a stand-in `cni0`
/// bridge, and the two hypervisors joined by a veth pair `hv0` holding their `address`es: the
/// network between the machines.
#[derive(Debug)]
pub struct TwoHypervisorLabs {
    pub a: Lab,
    pub b: Lab,
}

impl TwoHypervisorLabs {
    /// The device on each hypervisor that joins it to the other.
    pub const JOIN_DEV: &'static str = "hv0";

    pub fn build(doc: &hardway::Document) -> TwoHypervisorLabs {
        assert_eq!(doc.hypervisors.len(), 2, "a document of two hypervisors");
        let lab = |host: &hardway::doc::HypervisorHost| {
            let slice = host.node_slice[0];
            let gateway = hardway::validate::first_host(&slice).expect("a slice has hosts");
            let prefix = format!("tl{}", &host.name[host.name.len().saturating_sub(2)..]);
            let mut builder =
                Lab::builder(&prefix).host_bridge(&[&format!("{gateway}/{}", slice.prefix_len())]);
            for node in doc
                .nodes
                .iter()
                .filter(|n| n.host.as_deref() == Some(&host.uri))
            {
                builder = builder.node(
                    &node.name,
                    &[&format!("{}/{}", node.ips[0], slice.prefix_len())],
                );
            }
            let lab = builder.build();
            for node in &lab.nodes {
                node.ip(&["route", "add", "default", "via", &gateway.to_string()]);
                let cidr = doc.node(&node.name).unwrap().pod_cidrs[0];
                let pod_gateway = cidr.hosts().next().unwrap();
                node.add_bridge("cni0", &[&format!("{pod_gateway}/{}", cidr.prefix_len())]);
            }
            lab
        };
        let (ha, hb) = (&doc.hypervisors[0], &doc.hypervisors[1]);
        let (a, b) = (lab(ha), lab(hb));
        a.host.veth_to(Self::JOIN_DEV, &b.host, Self::JOIN_DEV);
        a.host
            .add_addr(Self::JOIN_DEV, &format!("{}/24", ha.address));
        b.host
            .add_addr(Self::JOIN_DEV, &format!("{}/24", hb.address));
        TwoHypervisorLabs { a, b }
    }

    /// Every node of both, a's first.
    pub fn nodes(&self) -> impl Iterator<Item = &LabNode> {
        self.a.nodes.iter().chain(&self.b.nodes)
    }

    /// The node called `name`, on either.
    pub fn node(&self, name: &str) -> &LabNode {
        self.nodes()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name:?}"))
    }
}

fn set_forwarding(ns: &Netns) {
    ns.sysctl("net.ipv4.ip_forward", "1");
    ns.sysctl("net.ipv6.conf.all.forwarding", "1");
}

/// Sockets made inside a namespace: a socket stays in the namespace it was created in, so a
/// test can bind one inside a "pod" and use it from its own thread (no program to install).
impl Netns {
    /// A UDP socket bound to `addr` inside this namespace.
    pub fn bind_udp(&self, addr: std::net::SocketAddr) -> std::net::UdpSocket {
        let path = format!("/var/run/netns/{}", self.name);
        // setns(2) changes the calling thread's namespace only: a thread of its own does it.
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            std::net::UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr} in {path}: {e}"))
        })
        .join()
        .expect("the socket thread")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_is_made_and_removed() {
        let name;
        {
            let ns = Netns::new("tk");
            name = ns.name().to_string();
            ns.add_bridge("pods0", &["10.200.9.1/24", "fd00:200:9::1/64"]);
            let addrs = ns.run_ok("ip", &["-brief", "addr", "show", "pods0"]);
            assert!(addrs.contains("10.200.9.1/24"), "{addrs}");
            ns.run_ok("ping", &["-c1", "-W2", "fd00:200:9::1"]);
        }
        let list = ip_root(&["netns", "list"]);
        assert!(
            !list.split_whitespace().any(|n| n == name),
            "{name} left behind: {list}"
        );
    }

    #[test]
    fn lab_nodes_reach_each_other_and_the_host() {
        let lab = Lab::builder("tk")
            .host_bridge(&["10.240.0.1/24", "fd00:240::1/64"])
            .node("a", &["10.240.0.21/24", "fd00:240::21/64"])
            .node("b", &["10.240.0.22/24", "fd00:240::22/64"])
            .build();
        lab.node("a").run_ok("ping", &["-c1", "-W2", "10.240.0.22"]);
        lab.node("b")
            .run_ok("ping", &["-c1", "-W2", "fd00:240::21"]);
        lab.host.run_ok("ping", &["-c1", "-W2", "10.240.0.21"]);
    }
}
