//! Reaching the guests of the two-hypervisor cluster: ssh as root from one hypervisor's network
//! namespace with the key mkvm installed, first without host key checks (while cloud-init makes
//! the keys), then against the known_hosts node-push recorded; TCP probes from inside a guest.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use testkit::netns::Netns;

/// How long a guest may take to boot and finish cloud-init under TCG on a busy machine.
const READY_WITHIN: Duration = Duration::from_secs(1500);

/// How the guests' host keys are checked.
#[derive(Clone, Copy)]
pub enum HostKeys<'a> {
    /// Not at all: before node-push, whose `--accept-new` records each node's first key.
    Unchecked,
    /// Strictly, against this known_hosts file.
    Known(&'a Path),
}

/// ssh to the guests from `netns` with `key` (root's authorized key, from mkvm's seed).
pub struct Guests<'a> {
    pub netns: &'a Netns,
    pub key: PathBuf,
}

impl Guests<'_> {
    pub fn command(&self, keys: HostKeys, ip: &str, command: &str) -> Command {
        let mut cmd = self.netns.command("ssh");
        cmd.arg("-i").arg(&self.key);
        cmd.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
        cmd.args(["-o", "LogLevel=ERROR"]);
        match keys {
            HostKeys::Unchecked => cmd.args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ]),
            HostKeys::Known(file) => cmd
                .args(["-o", "StrictHostKeyChecking=yes", "-o"])
                .arg(format!("UserKnownHostsFile={}", file.display())),
        };
        cmd.arg(format!("root@{ip}")).arg(command);
        cmd
    }

    /// Runs `command` on the guest at `ip`; `Err` names the guest, the command and what it said.
    pub fn run(&self, keys: HostKeys, ip: &str, command: &str) -> Result<String, String> {
        let out = self.command(keys, ip, command).output().expect("run ssh");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("`{command}` on {ip}: {}", said(&out)))
        }
    }

    /// Waits until the guest at `ip` answers SSH and cloud-init is done with it: cloud-init's
    /// set-passwords module restarts sshd after its banner first shows, and a push in that
    /// window is refused (scripts/cluster.sh). `cloud-init status --wait` exits 0 when done, 2
    /// when done with recoverable warnings (the codes mkvm's own wait accepts).
    pub fn wait_until_ready(&self, ip: &str) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let out = self
                .command(HostKeys::Unchecked, ip, "cloud-init status --wait")
                .output()
                .expect("run ssh");
            if matches!(out.status.code(), Some(0 | 2)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{ip} was not ready (SSH and cloud-init) within {READY_WITHIN:?}: {}",
                    said(&out)
                ));
            }
            std::thread::sleep(Duration::from_secs(5));
        }
    }

    /// The first four bytes the guest at `from` reads from port 22 of `to` (an address or a
    /// name): "SSH-" when sshd there answered. The image has no ping; bash's /dev/tcp opens
    /// the connection.
    pub fn banner(&self, keys: HostKeys, from: &str, to: &str) -> Result<String, String> {
        let probe = format!("timeout 20 bash -c 'exec 3<>/dev/tcp/{to}/22 && head -c 4 <&3'");
        self.run(keys, from, &probe)
    }

    /// Holds a TCP connection from the guest at `from` to port 22 of `to` open for 30 s.
    pub fn hold_connection(&self, keys: HostKeys, from: &str, to: &str) -> Child {
        let held = format!("exec 3<>/dev/tcp/{to}/22; sleep 30");
        self.command(keys, from, &held).spawn().expect("run ssh")
    }

    /// The peer addresses of the established connections to port 22 of the guest at `ip`.
    pub fn ssh_peers(&self, keys: HostKeys, ip: &str) -> Result<Vec<String>, String> {
        let table = self.run(keys, ip, "ss -tnH state established '( sport = :22 )'")?;
        Ok(table
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .filter_map(|peer| peer.rsplit_once(':').map(|(ip, _)| ip.to_string()))
            .collect())
    }
}

/// What a failed command printed, stdout then stderr, on one line.
pub fn said(out: &Output) -> String {
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    format!(
        "exit {:?}: {}",
        out.status.code(),
        text.trim().replace('\n', " | ")
    )
}
