//! Two hypervisors on one machine (issue 19): two libvirtd, each in a network namespace and a
//! mount namespace of its own, the two network namespaces joined by a veth pair that stands for
//! the network between the hypervisors.
//!
//! One libvirtd per machine is the rule [`crate::libvirt::Libvirtd`] enforces because its state
//! is in shared paths: sockets and pid files in /run/libvirt, objects in /etc/libvirt and
//! /var/lib/libvirt, logs and caches in /var/log and /var/cache. Here each daemon (and its
//! virtlogd) runs in a private mount namespace where those five directories are bind mounts of
//! its own temp directories, so the two never see each other's sockets, networks, pools or
//! domains, and nothing of the machine's own libvirt is read or changed. The host still reaches
//! each daemon by path, the bind mount's source: `DIR/run/libvirt-sock`.
//!
//! Each is reached as `qemu+unix:///system?socket=DIR/run/libvirt-sock`: libvirt's remote driver,
//! the one `qemu+ssh` and `qemu+tls` use, over a stream that runs no program, needs no key and no
//! sshd per namespace, and cannot reach anything but the daemon the test made. `qemu+ssh` would
//! add only OpenSSH's part, which node-push's tests already cover against a real sshd; its
//! remote end would also need sshd inside each mount namespace to find that daemon's socket.
//!
//! The network namespaces keep each daemon's bridges, dnsmasq and (later) guests apart, as a
//! second machine's would be; the veth pair between them carries the hypervisors' own
//! addresses ([`Hypervisor::address`]). Tests need root and panic without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::run_ok;

/// The directories a libvirtd keeps state in, each replaced by a private one per daemon.
const STATE_DIRS: [(&str, &str); 5] = [
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("etc", "/etc/libvirt"),
    ("log", "/var/log/libvirt"),
    ("cache", "/var/cache/libvirt"),
];

/// How long a daemon may take to answer: its first start probes qemu's capabilities.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// One libvirtd (and its virtlogd) with private state, in its own network namespace.
pub struct Hypervisor {
    name: String,
    address: String,
    // Fields drop in order: the namespace (and whatever still runs in it) before the directory.
    netns: Netns,
    dir: tempfile::TempDir,
}

/// Two hypervisors, `hv-a` and `hv-b`, joined by a veth pair on 192.168.250.0/24 (a range
/// no cluster default uses): `hv-a` is 192.168.250.1, `hv-b` 192.168.250.2.
pub struct TwoHypervisors {
    pub a: Hypervisor,
    pub b: Hypervisor,
}

/// The network joining the two hypervisors, and each one's address on it.
pub const HOSTS_NETWORK: &str = "192.168.250.0/24";

impl TwoHypervisors {
    /// Starts both daemons and joins their namespaces; waits until each answers on its URI.
    pub fn start() -> TwoHypervisors {
        crate::require_root();
        open_kvm_to_its_group();
        let a = Hypervisor::new("hv-a", "192.168.250.1");
        let b = Hypervisor::new("hv-b", "192.168.250.2");
        a.netns.veth_to("hosts0", &b.netns, "hosts0");
        a.netns.add_addr("hosts0", &format!("{}/24", a.address));
        b.netns.add_addr("hosts0", &format!("{}/24", b.address));
        a.start_daemons();
        b.start_daemons();
        a.wait_until_it_answers();
        b.wait_until_it_answers();
        TwoHypervisors { a, b }
    }
}

/// With /dev/kvm 0600 root:root, libvirtd's capability probe takes ~56 s (docs/ARCHITECTURE.md);
/// the machine's own libvirt package gives it 0660 root:kvm, as here.
fn open_kvm_to_its_group() {
    if Path::new("/dev/kvm").exists() {
        run_ok(Command::new("chown").args(["root:kvm", "/dev/kvm"]));
        run_ok(Command::new("chmod").args(["0660", "/dev/kvm"]));
    }
}

impl Hypervisor {
    fn new(name: &str, address: &str) -> Hypervisor {
        let netns = Netns::new(name);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
            .expect("tempdir");
        let hypervisor = Hypervisor {
            name: name.to_string(),
            address: address.to_string(),
            netns,
            dir,
        };
        hypervisor.make_state_dirs();
        hypervisor
    }

    /// The private state: empty run, lib, log and cache directories, and an /etc/libvirt holding
    /// the machine's configuration files but none of its objects (so no `default` network or a
    /// test's leftover is defined or autostarted), with no per-domain /dev namespace, which fails
    /// in containers ("Unable to move … mount to /dev/null").
    fn make_state_dirs(&self) {
        for (local, system) in STATE_DIRS {
            std::fs::create_dir_all(self.dir.path().join(local)).expect("state dir");
            // The mount point must exist; creating an empty system directory changes nothing.
            std::fs::create_dir_all(system).expect("mount point");
        }
        let etc = self.dir.path().join("etc");
        for entry in std::fs::read_dir("/etc/libvirt").expect("libvirt is installed") {
            let entry = entry.expect("read /etc/libvirt");
            let path = entry.path();
            let is_config = entry.file_type().is_ok_and(|t| t.is_file());
            // The daemons' settings and the package's nwfilter rules, never the machine's own
            // objects (qemu/ domains and networks, storage/ pools, secrets/).
            if is_config || entry.file_name() == "nwfilter" {
                run_ok(Command::new("cp").arg("-a").arg(&path).arg(&etc));
            }
        }
        let conf = etc.join("qemu.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
        text.push_str("\n# hardway test: no per-domain /dev namespace (fails in containers)\nnamespaces = []\n");
        std::fs::write(&conf, text).expect("write qemu.conf");
    }

    /// virtlogd then libvirtd, both daemonized inside one private mount namespace (so libvirtd
    /// finds this virtlogd's socket) inside the network namespace.
    fn start_daemons(&self) {
        self.run_in_private_mounts(&format!(
            "virtlogd -d -p {}; exec libvirtd -d -p {}",
            self.pid_file("virtlogd").display(),
            self.pid_file("libvirtd").display()
        ));
    }

    /// Runs `command` (shell) in a new private mount namespace of this daemon's bind mounts,
    /// inside its network namespace: a daemon started there sees this hypervisor's state only.
    fn run_in_private_mounts(&self, command: &str) {
        let mounts: Vec<String> = STATE_DIRS
            .iter()
            .map(|(local, system)| {
                format!(
                    "mount --bind {} {system}",
                    self.dir.path().join(local).display()
                )
            })
            .collect();
        let script = format!("set -e; {}; {command}", mounts.join("; "));
        run_ok(self.netns.command("unshare").args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ]));
    }

    fn pid_file(&self, daemon: &str) -> PathBuf {
        self.dir.path().join(format!("{daemon}.pid"))
    }

    fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            let out = self.virsh(&["list", "--all", "--name"]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "libvirtd of {} did not answer on {} within {ANSWER_WITHIN:?}: {}",
                self.name,
                self.uri(),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The hypervisor's name, as a document's `hypervisors[].name` gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address on the network joining the hypervisors.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The path of the daemon's socket as the host sees it.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/libvirt-sock")
    }

    /// Where the host sees a path of this daemon's private state (`/var/lib/libvirt/images/x`
    /// → `DIR/lib/images/x`), for a test that plants a file the daemon finds there.
    pub fn host_path(&self, system_path: &str) -> PathBuf {
        let (local, rest) = STATE_DIRS
            .iter()
            .find_map(|(local, system)| {
                system_path
                    .strip_prefix(system)
                    .map(|rest| (local, rest.trim_start_matches('/')))
            })
            .unwrap_or_else(|| panic!("{system_path} is not under a libvirt state directory"));
        self.dir.path().join(local).join(rest)
    }

    /// The libvirt URI that reaches this daemon from the host.
    pub fn uri(&self) -> String {
        format!("qemu+unix:///system?socket={}", self.socket().display())
    }

    /// The network namespace the daemon runs in (its bridges and dnsmasq live there).
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The pid of this libvirtd.
    pub fn libvirtd_pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.pid_file("libvirtd")).expect("libvirtd pid file");
        text.trim().parse().expect("a pid")
    }

    /// Stops this libvirtd (its virtlogd stays), as a hypervisor that went away; returns once
    /// its socket no longer answers.
    pub fn stop_libvirtd(&self) {
        run_ok(Command::new("kill").arg(self.libvirtd_pid().to_string()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.virsh(&["list", "--name"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "libvirtd of {} did not stop",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts this libvirtd again after [`Hypervisor::stop_libvirtd`], as the machine coming
    /// back, over the same state (its virtlogd kept running); returns once it answers.
    pub fn restart_libvirtd(&self) {
        self.run_in_private_mounts(&format!(
            "exec libvirtd -d -p {}",
            self.pid_file("libvirtd").display()
        ));
        self.wait_until_it_answers();
    }

    /// Runs `virsh -c URI ARGS` from the host; returns its output whatever its status.
    pub fn virsh(&self, args: &[&str]) -> Output {
        Command::new("virsh")
            .arg("-c")
            .arg(self.uri())
            .args(args)
            .output()
            .expect("virsh (libvirt-clients) is installed")
    }

    /// Runs `virsh -c URI ARGS`; panics with its stderr unless it succeeds; returns stdout.
    pub fn virsh_ok(&self, args: &[&str]) -> String {
        let out = self.virsh(args);
        assert!(
            out.status.success(),
            "virsh {args:?} on {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Hypervisor {
    /// Asks the daemons to stop, then [`Netns`]'s Drop kills what is left in the namespace and
    /// deletes it; the private mount namespace ends with its last process, and the temp
    /// directory goes after.
    fn drop(&mut self) {
        for daemon in ["libvirtd", "virtlogd"] {
            if let Ok(pid) = std::fs::read_to_string(self.pid_file(daemon)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.netns.pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
