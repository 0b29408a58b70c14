//! Staged waits, per node, each bounded by the node's deadline: the domain running, its address
//! seen by libvirt (DHCP lease or the host's ARP table), the SSH banner on port 22, and
//! optionally `cloud-init status --wait` over SSH. Progress goes to stderr: a bar per node on a
//! terminal, plain lines otherwise.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::sys;

use crate::error::MkvmError;
use crate::hypervisor::Host;
use crate::plan::Plan;
use crate::UpOptions;

/// The stages, in order; `--wait` names the last one to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Defined,
    Running,
    Address,
    Ssh,
    CloudInit,
}

impl Stage {
    pub fn parse(name: &str) -> Stage {
        match name {
            "running" => Stage::Running,
            "address" => Stage::Address,
            "ssh" => Stage::Ssh,
            "cloud-init" => Stage::CloudInit,
            _ => Stage::Defined,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Defined => "defined",
            Stage::Running => "running",
            Stage::Address => "address",
            Stage::Ssh => "ssh",
            Stage::CloudInit => "cloud-init",
        }
    }
}

/// Where a node got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub stage: Stage,
    /// The address libvirt reported for the node's MAC, when the address stage ran.
    pub seen: Option<IpAddr>,
}

/// Progress on stderr, shared by the nodes' threads.
pub struct Progress {
    bars: Option<MultiProgress>,
}

pub struct NodeProgress {
    name: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
        Progress { bars }
    }

    pub fn node(&self, name: &str, stages: u64) -> NodeProgress {
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(stages));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>14} [{bar:12}] {elapsed:>4} {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        NodeProgress {
            name: name.to_string(),
            bar,
            started: Instant::now(),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl NodeProgress {
    pub fn say(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => hardway::tool::log(
                "mkvm",
                format!(
                    "{}: {message} ({:.1}s)",
                    self.name,
                    self.started.elapsed().as_secs_f64()
                ),
            ),
        }
    }

    pub fn reached(&self, stage: Stage, detail: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.say(&format!("{}{detail}", stage.as_str()));
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// How to reach a node for the SSH stages.
pub struct Target<'a> {
    pub name: &'a str,
    pub ip: IpAddr,
    pub mac: &'a str,
    pub identity: Option<&'a Path>,
}

fn poll_until<T>(
    deadline: Instant,
    node: &str,
    what: &str,
    mut attempt: impl FnMut() -> Result<Option<T>, MkvmError>,
) -> Result<T, MkvmError> {
    loop {
        if let Some(value) = attempt()? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(MkvmError::Wait {
                node: node.to_string(),
                message: format!(
                    "timed out waiting for {what} (raise --timeout, or look at the console)"
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits for every node of the plan in parallel, each up to `--wait` (or only `defined` with
/// `--no-start`) within `--timeout`; the first node's error once all have finished.
pub fn every_node(
    plan: &Plan,
    hosts: &BTreeMap<String, Host>,
    options: &UpOptions,
) -> Result<Vec<Reached>, MkvmError> {
    let progress = Progress::new();
    let identity = identity_for(&options.ssh_key);
    let deadline = Instant::now() + options.timeout;
    let until = if options.start {
        options.wait
    } else {
        Stage::Defined
    };
    let results: Vec<Result<Reached, MkvmError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plan
            .nodes
            .iter()
            .map(|node| {
                let host = &hosts[&node.uri];
                let progress = progress.node(&node.name, until as u64);
                let identity = identity.as_deref();
                scope.spawn(move || {
                    let domain = host.domain(&node.name)?.ok_or_else(|| MkvmError::Wait {
                        node: node.name.clone(),
                        message: "the domain disappeared".into(),
                    })?;
                    let target = Target {
                        name: &node.name,
                        ip: node.ip,
                        mac: &node.mac,
                        identity,
                    };
                    wait_node(host, &domain, &target, until, deadline, &progress)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a wait thread panicked"))
            .collect()
    });
    results.into_iter().collect()
}

/// Runs the stages up to `until` for one node.
pub fn wait_node(
    host: &Host,
    domain: &Domain,
    target: &Target,
    until: Stage,
    deadline: Instant,
    progress: &NodeProgress,
) -> Result<Reached, MkvmError> {
    let mut reached = Reached {
        stage: Stage::Defined,
        seen: None,
    };
    if until >= Stage::Running {
        progress.say("waiting for the domain to run");
        poll_until(deadline, target.name, "the domain to run", || {
            let (state, _) = domain
                .state()
                .map_err(|e| host.err(format!("reading the state of {}", target.name), &e))?;
            Ok(matches!(state, Enum::Known(DomainState::Running)).then_some(()))
        })?;
        reached.stage = Stage::Running;
        progress.reached(Stage::Running, "");
    }
    if until >= Stage::Address {
        progress.say("waiting for an address (DHCP lease or ARP)");
        let seen = poll_until(deadline, target.name, "an address (lease or ARP)", || {
            if let Some(ip) = seen_address(host, domain, target.mac) {
                return Ok(Some(ip));
            }
            // The guest has a static address: a connection attempt makes the host ARP for it.
            let _ = TcpStream::connect_timeout(
                &SocketAddr::new(target.ip, 22),
                Duration::from_millis(300),
            );
            Ok(seen_address(host, domain, target.mac))
        })?;
        reached.stage = Stage::Address;
        reached.seen = Some(seen);
        let note = if seen == target.ip {
            format!(" {seen}")
        } else {
            format!(" {seen} (expected {})", target.ip)
        };
        progress.reached(Stage::Address, &note);
    }
    if until >= Stage::Ssh {
        progress.say("waiting for the SSH banner");
        let banner = poll_until(deadline, target.name, "the SSH banner on port 22", || {
            Ok(ssh_banner(target.ip))
        })?;
        reached.stage = Stage::Ssh;
        progress.reached(Stage::Ssh, &format!(" {banner}"));
    }
    if until >= Stage::CloudInit {
        progress.say("waiting for cloud-init");
        let identity = target.identity.ok_or_else(|| MkvmError::Wait {
            node: target.name.to_string(),
            message: "--wait cloud-init needs the private key beside --ssh-key (PUB without .pub)"
                .into(),
        })?;
        cloud_init_done(target, identity, deadline)?;
        reached.stage = Stage::CloudInit;
        progress.reached(Stage::CloudInit, " done");
    }
    progress.finish();
    Ok(reached)
}

/// The address seen for this MAC: libvirt's DHCP lease, libvirt's ARP source, then (for a
/// hypervisor on this machine) the kernel's neighbour table directly — libvirt 9.0's ARP source
/// fails on newer kernels ("wrong nlmsg len"), and a static address has no lease.
fn seen_address(host: &Host, domain: &Domain, mac: &str) -> Option<IpAddr> {
    if let Some(ip) = libvirt_address(domain, mac) {
        return Some(ip);
    }
    if host.is_local() {
        return neighbour_address(&std::fs::read_to_string("/proc/net/arp").ok()?, mac);
    }
    None
}

/// The complete entry for `mac` in /proc/net/arp's text.
fn neighbour_address(table: &str, mac: &str) -> Option<IpAddr> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // IP address, HW type, Flags (0x2: complete), HW address, Mask, Device
        (fields.len() >= 4 && fields[2] == "0x2" && fields[3].eq_ignore_ascii_case(mac))
            .then(|| fields[0].parse().ok())
            .flatten()
    })
}

/// The address libvirt reports for this MAC: the DHCP lease first, then its ARP source.
fn libvirt_address(domain: &Domain, mac: &str) -> Option<IpAddr> {
    for source in [
        sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
    ] {
        let Ok(interfaces) = domain.interface_addresses(source, 0) else {
            continue;
        };
        for interface in interfaces {
            if interface
                .hwaddr
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
                != Some(mac)
            {
                continue;
            }
            if let Some(ip) = interface.addrs.iter().find_map(|a| a.addr.parse().ok()) {
                return Some(ip);
            }
        }
    }
    None
}

/// The first line sshd sends (`SSH-2.0-OpenSSH_9.2p1 …`), if it answers.
pub fn ssh_banner(ip: IpAddr) -> Option<String> {
    let stream =
        TcpStream::connect_timeout(&SocketAddr::new(ip, 22), Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut line = String::new();
    BufReader::new(stream.take(256)).read_line(&mut line).ok()?;
    line.starts_with("SSH-").then(|| line.trim().to_string())
}

/// The private key beside a public key: `id.pub` → `id`, if it exists.
pub fn identity_for(public: &Path) -> Option<PathBuf> {
    let text = public.to_str()?;
    let private = PathBuf::from(text.strip_suffix(".pub")?);
    private.exists().then_some(private)
}

/// Why `ssh_run` failed, by the stage that failed: a guest still booting refuses the first
/// stages (sshd not up, restarted by cloud-init, key not installed yet), never the later ones.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("connect {ip}:22: {source}")]
    Connect { ip: IpAddr, source: std::io::Error },
    #[error("SSH handshake with {ip}: {source}")]
    Handshake { ip: IpAddr, source: ssh2::Error },
    #[error("SSH login as root@{ip} with {identity}: {source}")]
    Login {
        ip: IpAddr,
        identity: String,
        source: ssh2::Error,
    },
    #[error("SSH command on {ip}: {message}")]
    Command { ip: IpAddr, message: String },
}

impl SshError {
    /// A guest that is still booting fails this way; retry until the deadline.
    fn not_ready_yet(&self) -> bool {
        matches!(
            self,
            SshError::Connect { .. } | SshError::Handshake { .. } | SshError::Login { .. }
        )
    }
}

/// Runs a command as root over SSH with the key; returns its exit status and stdout.
pub fn ssh_run(
    ip: IpAddr,
    identity: &Path,
    command: &str,
    timeout: Duration,
) -> Result<(i32, String), SshError> {
    let tcp = TcpStream::connect_timeout(&SocketAddr::new(ip, 22), Duration::from_secs(5))
        .map_err(|source| SshError::Connect { ip, source })?;
    let failed = |e: &dyn std::fmt::Display| SshError::Command {
        ip,
        message: e.to_string(),
    };
    let mut session = ssh2::Session::new().map_err(|e| failed(&e))?;
    session.set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
    session.set_tcp_stream(tcp);
    session
        .handshake()
        .map_err(|source| SshError::Handshake { ip, source })?;
    session
        .userauth_pubkey_file("root", None, identity, None)
        .map_err(|source| SshError::Login {
            ip,
            identity: identity.display().to_string(),
            source,
        })?;
    let mut channel = session.channel_session().map_err(|e| failed(&e))?;
    channel.exec(command).map_err(|e| failed(&e))?;
    let mut out = String::new();
    channel.read_to_string(&mut out).map_err(|e| failed(&e))?;
    channel.wait_close().map_err(|e| failed(&e))?;
    let status = channel.exit_status().map_err(|e| failed(&e))?;
    Ok((status, out))
}

/// `cloud-init status --wait` over SSH: 0 done, 2 done with recoverable warnings; else failed.
fn cloud_init_done(target: &Target, identity: &Path, deadline: Instant) -> Result<(), MkvmError> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(5));
    // sshd may answer before cloud-init has installed the key, and cloud-init's set-passwords
    // module restarts sshd (ssh_pwauth) after its banner first shows, which can cut a connection
    // mid-handshake (seen on Debian 13 guests): retry those until the deadline. The last refusal
    // goes into the timeout's message: a key that is refused to the end (a guest whose
    // cloud-init never read the seed) reads differently from an sshd that never answered.
    let mut last_refusal = None;
    let outcome = poll_until(
        deadline,
        target.name,
        "an SSH login for cloud-init",
        || match ssh_run(target.ip, identity, "cloud-init status --wait --long", left) {
            Ok(result) => Ok(Some(Ok(result))),
            Err(e) if e.not_ready_yet() => {
                last_refusal = Some(e);
                Ok(None)
            }
            Err(e) => Ok(Some(Err(e))),
        },
    )
    .map_err(|timeout| naming_last_refusal(timeout, last_refusal.as_ref()))?;
    match outcome {
        Ok((0 | 2, _)) => Ok(()),
        Ok((status, out)) => Err(MkvmError::Wait {
            node: target.name.to_string(),
            message: format!(
                "cloud-init failed (status {status}): {}",
                hardway::tool::one_line(&out)
            ),
        }),
        Err(e) => Err(MkvmError::Wait {
            node: target.name.to_string(),
            message: e.to_string(),
        }),
    }
}

/// A wait's timeout with the last refusal that kept it waiting, if there was one.
fn naming_last_refusal(timeout: MkvmError, refusal: Option<&SshError>) -> MkvmError {
    match (timeout, refusal) {
        (MkvmError::Wait { node, message }, Some(refusal)) => MkvmError::Wait {
            node,
            message: format!("{message}; the last attempt: {refusal}"),
        },
        (timeout, _) => timeout,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_login_timeout_names_the_last_refusal() {
        let timeout = || super::MkvmError::Wait {
            node: "node-1".into(),
            message: "timed out waiting for an SSH login for cloud-init".into(),
        };
        let refusal = super::SshError::Connect {
            ip: "10.240.0.11".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let named = super::naming_last_refusal(timeout(), Some(&refusal)).to_string();
        assert!(
            named.ends_with(
                "cloud-init; the last attempt: connect 10.240.0.11:22: connection refused"
            ),
            "{named}"
        );
        assert_eq!(
            super::naming_last_refusal(timeout(), None).to_string(),
            timeout().to_string()
        );
    }

    #[test]
    fn finds_complete_neighbour_entries_only() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device
10.240.0.12      0x1         0x0         52:54:00:9e:20:5b     *        virbr1
10.240.0.11      0x1         0x2         52:54:00:6c:54:0e     *        virbr1
";
        assert_eq!(
            super::neighbour_address(table, "52:54:00:6C:54:0E"),
            Some("10.240.0.11".parse().unwrap())
        );
        assert_eq!(super::neighbour_address(table, "52:54:00:9e:20:5b"), None);
    }
}
