//! A real OpenSSH `sshd` for tests that push files over SSH.
//!
//! Each [`Sshd`] runs Debian's `/usr/sbin/sshd` in the foreground (`-D -e -f config`) on a free
//! loopback port (or inside a network namespace, through a command prefix such as
//! `ip netns exec NAME`), with its own generated ed25519 host key, its own authorized key for
//! root and its own config, all in a temporary directory. The session's `PATH` starts with a
//! directory holding a stub `systemctl` that appends its arguments to a log, since no systemd
//! runs here. `Drop` kills the listener and every connection process it forked, then removes the
//! directory, so a panicking test leaves nothing behind.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";
const SSH_KEYGEN: &str = "ssh-keygen";

/// How to start an [`Sshd`]; `Default` gives a loopback sshd with a fresh host key and client key.
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Prepended to the sshd command line, e.g. `["ip", "netns", "exec", "ns1"]`.
    pub prefix: Vec<String>,
    /// Address sshd listens on.
    pub listen: String,
    /// Port; `None` picks a free one (and retries when another process takes it first).
    pub port: Option<u16>,
    /// Reuse this private host key (to restart a "node" with the same or a known key).
    pub host_key: Option<PathBuf>,
    /// Authorize this client public key (`.pub` path) instead of generating a client key pair.
    pub authorized_key: Option<PathBuf>,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            prefix: Vec::new(),
            listen: "127.0.0.1".into(),
            port: None,
            host_key: None,
            authorized_key: None,
        }
    }
}

/// A running sshd; killed and cleaned up on drop.
pub struct Sshd {
    /// The address it listens on.
    pub listen: String,
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts a loopback sshd with fresh keys.
    pub fn start() -> Sshd {
        Sshd::start_with(SshdOptions::default())
    }

    /// Starts an sshd as `options` say; panics with sshd's log when it does not come up.
    pub fn start_with(options: SshdOptions) -> Sshd {
        crate::require_root();
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: apt-get install openssh-server (scripts/deps.sh)"
        );
        // sshd's privilege separation directory; Debian's unit normally makes it.
        fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755))
            .expect("chmod /run/sshd");

        let dir = tempfile::Builder::new()
            .prefix("hardway-sshd-")
            .tempdir()
            .expect("temp dir for sshd");
        let root_buf = dir.path().to_path_buf();
        let root = root_buf.as_path();

        let host_key = root.join("ssh_host_ed25519_key");
        match &options.host_key {
            Some(key) => {
                fs::copy(key, &host_key).expect("copy host key");
                fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600))
                    .expect("chmod host key");
                let public = public_key_of(key);
                fs::write(root.join("ssh_host_ed25519_key.pub"), public).expect("write host pub");
            }
            None => keygen(&host_key, "hardway-test-host"),
        }
        let authorized = match &options.authorized_key {
            Some(public) => fs::read_to_string(public).expect("read authorized key"),
            None => {
                keygen(&root.join("client_key"), "hardway-test-client");
                fs::read_to_string(root.join("client_key.pub")).expect("read client key")
            }
        };
        fs::write(root.join("authorized_keys"), authorized).expect("write authorized_keys");

        let bin = root.join("bin");
        fs::create_dir(&bin).expect("create stub bin dir");
        let stub = bin.join("systemctl");
        fs::write(
            &stub,
            format!(
                "#!/bin/sh\n# Stub systemctl: records its arguments, one call a line.\necho \"$*\" >> '{}'\n",
                root.join("systemctl.log").display()
            ),
        )
        .expect("write stub systemctl");
        fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).expect("chmod stub");

        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = options.port.unwrap_or_else(free_port);
            let config = root.join("sshd_config");
            fs::write(&config, config_text(root, &options.listen, port)).expect("write config");
            let log = root.join("sshd.log");
            let log_file = fs::File::create(&log).expect("create sshd log");
            let mut argv: Vec<String> = options.prefix.clone();
            argv.extend([SSHD.into(), "-D".into(), "-e".into(), "-f".into()]);
            argv.push(config.display().to_string());
            let mut child = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                // Its own process group, so the terminal's signals do not reach it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", argv.join(" ")));
            match wait_listening(&mut child, &log) {
                Ok(()) => {
                    return Sshd {
                        listen: options.listen.clone(),
                        port,
                        child,
                        dir,
                    }
                }
                Err(text) if text.contains("Address already in use") && attempts < 5 => {
                    // Another test took the port between our probe and sshd's bind.
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(text) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("sshd did not start: {text}")
                }
            }
        }
    }

    /// `HOST:PORT` to connect to.
    pub fn address(&self) -> String {
        format!("{}:{}", self.listen, self.port)
    }

    /// The test's working directory (config, keys, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The private key authorized for root (when the options did not bring their own).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The host's private key file (to restart a node with the same key).
    pub fn host_key(&self) -> PathBuf {
        self.dir.path().join("ssh_host_ed25519_key")
    }

    /// The host's public key line, `ssh-ed25519 AAAA… comment`.
    pub fn host_public_key(&self) -> String {
        fs::read_to_string(self.dir.path().join("ssh_host_ed25519_key.pub"))
            .expect("read host public key")
            .trim()
            .to_string()
    }

    /// A known_hosts line for this server, as OpenSSH writes it for a non-22 port.
    pub fn known_hosts_line(&self) -> String {
        let mut fields = self.host_public_key();
        if let Some(at) = fields
            .rfind(' ')
            .filter(|_| fields.matches(' ').count() > 1)
        {
            fields.truncate(at);
        }
        format!("[{}]:{} {}", self.listen, self.port, fields)
    }

    /// The host key's fingerprint as `ssh-keygen -l` prints it: `SHA256:…`.
    pub fn host_fingerprint(&self) -> String {
        fingerprint(&self.dir.path().join("ssh_host_ed25519_key.pub"))
    }

    /// The stub `systemctl`'s calls so far, one string of arguments per call.
    pub fn systemctl_calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("systemctl.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// sshd's log so far (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Kills every connection this sshd serves (their sshd processes and the commands under
    /// them), leaving the listener up: a connection cut mid-transfer.
    pub fn kill_connections(&self) {
        kill(&descendants(self.child.id()));
    }

    fn kill_all(&mut self) {
        // Connection processes call setsid(), so a process-group kill would miss them: find them
        // by parentage before the listener dies and they are re-parented.
        let mut pids = descendants(self.child.id());
        pids.push(self.child.id());
        kill(&pids);
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Waits for sshd's "Server listening on" line; on failure returns its log.
fn wait_listening(child: &mut Child, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains("Server listening on") {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("sshd exited ({status}): {text}"));
        }
        if Instant::now() > deadline {
            return Err(format!("sshd not listening after 10 s: {text}"));
        }
        sleep(Duration::from_millis(20));
    }
}

/// Generates an ed25519 key pair at `path` and `path.pub`, no passphrase.
pub fn keygen(path: &Path, comment: &str) {
    let status = Command::new(SSH_KEYGEN)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen (apt-get install openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// The public key line of a private key file.
pub fn public_key_of(private: &Path) -> String {
    let out = Command::new(SSH_KEYGEN)
        .arg("-y")
        .arg("-f")
        .arg(private)
        .output()
        .expect("run ssh-keygen -y");
    assert!(out.status.success(), "ssh-keygen -y failed");
    String::from_utf8(out.stdout).expect("utf-8 key")
}

/// `SHA256:…` of a public key file, from `ssh-keygen -l`.
pub fn fingerprint(public: &Path) -> String {
    let out = Command::new(SSH_KEYGEN)
        .arg("-l")
        .arg("-f")
        .arg(public)
        .output()
        .expect("run ssh-keygen -l");
    assert!(out.status.success(), "ssh-keygen -l failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_string()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

fn config_text(root: &Path, listen: &str, port: u16) -> String {
    let r = root.display();
    format!(
        "# Written by testkit::sshd for one test.
Port {port}
ListenAddress {listen}
HostKey {r}/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile {r}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The key files sit under /tmp, which is world-writable.
StrictModes no
Subsystem sftp internal-sftp
# The stub systemctl comes first on the session's PATH.
SetEnv PATH={r}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
"
    )
}

/// Every process below `pid`, children before grandchildren.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: fields follow the last ')'.
            let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((child, ppid));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(child, ppid) in &parents {
            if ppid == parent && !found.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

fn kill(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// Appends a line to a file (a known_hosts in tests), creating it.
pub fn append_line(path: &Path, line: &str) {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    writeln!(file, "{line}").expect("append line");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenSSH's own client logs in with the generated key and finds the stub systemctl.
    #[test]
    fn ssh_client_logs_in_and_runs_the_stub_systemctl() {
        let sshd = Sshd::start();
        let known = sshd.dir().join("client_known_hosts");
        append_line(&known, &sshd.known_hosts_line());
        let out = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .arg("-i")
            .arg(sshd.client_key())
            .args(["-p", &sshd.port.to_string(), "root@127.0.0.1"])
            .arg("systemctl daemon-reload && echo ok")
            .output()
            .expect("run ssh");
        assert!(
            out.status.success(),
            "ssh failed: {}\nsshd log: {}",
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
        assert_eq!(sshd.systemctl_calls(), ["daemon-reload"]);
        assert!(sshd.host_fingerprint().starts_with("SHA256:"));
    }
}
