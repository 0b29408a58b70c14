//! A real libvirtd (with virtlogd) started inside a network namespace the test makes, so the VMs'
//! NAT network, its bridge, dnsmasq and every packet to the guests stay in that namespace
//! (docs/ARCHITECTURE.md). libvirtd gets its own qemu.conf, bind-mounted in a private mount namespace (the
//! system's file is untouched), that turns off the per-domain /dev namespace, which fails in
//! containers ("Unable to move … mount to /dev/null"). /dev/kvm gets mode 0660 root:kvm first:
//! with 0600 libvirtd's capability probe takes ~56 s.
//!
//! Only one libvirtd can run on a machine (its sockets are in /run, shared by every network
//! namespace), so starting one fails when another is running.

use std::path::Path;
use std::process::Command;

use crate::run_ok as run;
use std::time::{Duration, Instant};

/// libvirtd and virtlogd in a network namespace of their own; every process in it is killed and
/// the namespace removed in Drop.
pub struct Libvirtd {
    netns: String,
    dir: tempfile::TempDir,
}

impl Libvirtd {
    /// Starts virtlogd and libvirtd in a new network namespace `netns` and waits until
    /// `qemu:///system` answers.
    pub fn start(netns: &str) -> Libvirtd {
        crate::require_root();
        let running = Command::new("pgrep")
            .args(["-x", "libvirtd"])
            .output()
            .expect("pgrep");
        // A zombie (an earlier test's daemon, killed, whose parent has not reaped it yet: PID 1
        // here is no init that reaps promptly) holds no socket.
        let running: Vec<String> = String::from_utf8_lossy(&running.stdout)
            .split_whitespace()
            .filter(|pid| alive(pid))
            .map(String::from)
            .collect();
        assert!(
            running.is_empty(),
            "a libvirtd is already running (pid {}): stop it; this test starts its own inside a network namespace",
            running.join(" ")
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = Command::new("ip").args(["netns", "del", netns]).output();
        run(Command::new("ip").args(["netns", "add", netns]));
        let daemon = Libvirtd {
            netns: netns.to_string(),
            dir,
        };
        run(daemon.exec("ip").args(["link", "set", "lo", "up"]));
        if Path::new("/dev/kvm").exists() {
            run(Command::new("chown").args(["root:kvm", "/dev/kvm"]));
            run(Command::new("chmod").args(["0660", "/dev/kvm"]));
        }
        let conf = daemon.dir.path().join("qemu.conf");
        let mut text = std::fs::read_to_string("/etc/libvirt/qemu.conf").unwrap_or_default();
        text.push_str("\n# hardway test: no per-domain /dev namespace (fails in containers)\nnamespaces = []\n");
        std::fs::write(&conf, text).expect("write qemu.conf");
        let virtlogd_pid = daemon.dir.path().join("virtlogd.pid");
        run(daemon
            .exec("virtlogd")
            .arg("-d")
            .arg("-p")
            .arg(&virtlogd_pid));
        let libvirtd_pid = daemon.dir.path().join("libvirtd.pid");
        run(daemon
            .exec("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /etc/libvirt/qemu.conf && exec libvirtd -d -p {}",
                conf.display(),
                libvirtd_pid.display()
            )));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let answered = Command::new("virsh")
                .args(["-c", "qemu:///system", "list", "--all", "--name"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if answered {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "libvirtd did not answer within 120 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        daemon
    }

    /// The namespace's name.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// A command that runs `program` inside the namespace.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).arg(program);
        cmd
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        // Every process in the namespace is this test's: libvirtd, virtlogd, dnsmasq, qemu.
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").arg(pid).status();
        }
        std::thread::sleep(Duration::from_secs(1));
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
        // SIGKILL is delivered at once but a process takes a moment to exit; the next test's
        // libvirtd (another test file runs right after) must not find this one still there.
        let deadline = Instant::now() + Duration::from_secs(30);
        while pids.split_whitespace().any(alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// True while `pid` is a process that has not exited (gone, or a zombie: state `Z` in
/// /proc/PID/stat, proc(5)).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// The base image VM tests boot: scripts/image.sh's default (Debian 13 with every role's
/// packages, the image `make cluster` boots), built outside any namespace — mmdebstrap needs
/// Debian's mirror — and cached by content, so every VM test shares one build.
pub fn base_image() -> std::path::PathBuf {
    let out = run(Command::new("bash")
        .arg(crate::workspace_root().join("scripts/image.sh"))
        .env_remove("HARDWAY_IMAGE_EXTRA")
        .env_remove("HARDWAY_IMAGE_DEBIAN"));
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A blank qcow2 image of `gib` GiB in `dir`, made with qemu-img: a base image a guest boots
/// into nothing from (no OS, so no DHCP, no SSH), for tests of what happens when a wait fails.
pub fn blank_image(dir: &Path, gib: u64) -> std::path::PathBuf {
    let image = dir.join("blank.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&image)
        .arg(format!("{gib}G")));
    image
}
