//! A real etcd cluster for tests: N members of Debian's etcd 3.4 with TLS and client and peer
//! certificate authentication, on loopback ports or on given URLs (a member can run inside a
//! network namespace through a command prefix such as `ip netns exec NS`).
//!
//! Certificates are plain paths, so mkcerts' PKI and [`TestPki`] (a small rcgen PKI for tests
//! that must not depend on mkcerts) both fit. Each member is started under `setsid`: a member
//! SIGSTOPped while still in the test's process group would get SIGHUP and SIGCONT from the
//! kernel when that group is orphaned (docs/ARCHITECTURE.md). Data directories live in a temporary
//! directory; [`Cluster`]'s `Drop` kills every member (even a stopped one) and removes the data,
//! also when the test panics.
//!
//! ```no_run
//! use std::time::Duration;
//! use testkit::etcd::{Cluster, MemberSpec, TestPki};
//! let pki = TestPki::generate(&["etcd-1", "etcd-2", "etcd-3"]);
//! let members = pki.member_names().iter().map(|n| MemberSpec::loopback(n, pki.member_certs(n))).collect();
//! let cluster = Cluster::start(pki.tls(), members);
//! cluster.wait_healthy(Duration::from_secs(30)).unwrap();
//! cluster.stop(0); // SIGSTOP: black-holed
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// The etcd server binary (Debian package `etcd-server`).
pub const ETCD: &str = "/usr/bin/etcd";
/// The etcd client binary (Debian package `etcd-client`).
pub const ETCDCTL: &str = "/usr/bin/etcdctl";

/// The cluster-wide TLS inputs: the CA every member trusts (for clients and peers), and a client
/// certificate the launcher uses to ask members whether they are healthy.
#[derive(Debug, Clone)]
pub struct Tls {
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// One member's serving and peer certificates.
#[derive(Debug, Clone)]
pub struct MemberCerts {
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub peer_cert: PathBuf,
    pub peer_key: PathBuf,
}

/// How to run one member.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// The member name (`--name`), also the key in `--initial-cluster`.
    pub name: String,
    /// `https://ADDR:PORT` clients use; the member listens on it and advertises it.
    pub client_url: String,
    /// `https://ADDR:PORT` peers use; the member listens on it and advertises it.
    pub peer_url: String,
    /// Words run before `etcd` (and before `etcdctl` in health checks), e.g.
    /// `["ip", "netns", "exec", "ns1"]`; empty on the host.
    pub prefix: Vec<String>,
    pub certs: MemberCerts,
    /// More etcd flags, e.g. `--quota-backend-bytes=…` or a shorter `--election-timeout`.
    pub extra_args: Vec<String>,
}

impl MemberSpec {
    /// A member on 127.0.0.1 with a free client port and a free peer port.
    pub fn loopback(name: &str, certs: MemberCerts) -> MemberSpec {
        let ports = free_ports(2);
        MemberSpec::at(
            name,
            &format!("https://127.0.0.1:{}", ports[0]),
            &format!("https://127.0.0.1:{}", ports[1]),
            certs,
        )
    }

    /// A member on the given URLs (an address inside a network namespace, say).
    pub fn at(name: &str, client_url: &str, peer_url: &str, certs: MemberCerts) -> MemberSpec {
        MemberSpec {
            name: name.to_string(),
            client_url: client_url.to_string(),
            peer_url: peer_url.to_string(),
            prefix: Vec::new(),
            certs,
            extra_args: Vec::new(),
        }
    }

    /// Runs this member (and its health checks) behind a command prefix like `ip netns exec NS`.
    pub fn with_prefix(mut self, prefix: &[&str]) -> MemberSpec {
        self.prefix = prefix.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn with_args(mut self, args: &[&str]) -> MemberSpec {
        self.extra_args.extend(args.iter().map(|s| s.to_string()));
        self
    }
}

/// Returns `count` distinct TCP ports free on 127.0.0.1, picked below the kernel's ephemeral
/// range (so no outgoing connection of a parallel test takes them) and spread by a per-process
/// counter and the clock (so tests running at the same time rarely pick the same ones). A port
/// is never handed out twice in one process: each member calls this for its own two, and once
/// gave two members the same peer port (etcd: "initial cluster ... has duplicate url").
pub fn free_ports(count: usize) -> Vec<u16> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 20);
    while ports.len() < count {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // A multiplicative hash spreads consecutive attempts over 20000..32000.
        let port = 20000 + ((seed.wrapping_add(n).wrapping_mul(2654435761)) % 12000) as u16;
        if given.contains(&port) {
            continue;
        }
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        if let Ok(listener) = TcpListener::bind(addr) {
            // Held until every port is chosen, so the list has no duplicates.
            held.push(listener);
            ports.push(port);
            given.push(port);
        }
    }
    ports
}

struct Running {
    spec: MemberSpec,
    child: Option<Child>,
    data_dir: PathBuf,
    log: PathBuf,
}

/// A running etcd cluster. Dropping it kills every member and removes their data.
pub struct Cluster {
    tls: Tls,
    members: Vec<Running>,
    dir: TempDir,
}

impl Cluster {
    /// Starts every member (not waiting for them: see [`Cluster::wait_healthy`]). Panics with
    /// what to do when etcd is not installed or a member cannot be spawned.
    pub fn start(tls: Tls, members: Vec<MemberSpec>) -> Cluster {
        assert!(
            Path::new(ETCD).exists() && Path::new(ETCDCTL).exists(),
            "{ETCD} or {ETCDCTL} is missing: apt-get install etcd-server etcd-client (scripts/deps.sh)"
        );
        assert!(
            !members.is_empty(),
            "an etcd cluster needs at least one member"
        );
        let names: BTreeSet<_> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names.len(),
            members.len(),
            "etcd member names must be unique"
        );
        let dir = tempfile::Builder::new()
            .prefix("testkit-etcd-")
            .tempdir()
            .expect("create a temporary directory for etcd data");
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        // A token unique to this cluster, so members of two tests never join each other.
        let token = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "testkit".into());
        let mut cluster = Cluster {
            tls,
            members: Vec::new(),
            dir,
        };
        for spec in members {
            let data_dir = cluster.dir.path().join(format!("{}.etcd", spec.name));
            let log = cluster.dir.path().join(format!("{}.log", spec.name));
            let mut running = Running {
                spec,
                child: None,
                data_dir,
                log,
            };
            running.child = Some(cluster.spawn(&running, &initial_cluster, "new", &token));
            cluster.members.push(running);
        }
        cluster
    }

    /// Starts the cluster and waits until every member is healthy; panics with the members'
    /// log tails otherwise.
    pub fn start_healthy(tls: Tls, members: Vec<MemberSpec>, timeout: Duration) -> Cluster {
        let cluster = Cluster::start(tls, members);
        if let Err(why) = cluster.wait_healthy(timeout) {
            panic!("{why}");
        }
        cluster
    }

    /// Starts one more member that joins the running cluster (`--initial-cluster-state=existing`)
    /// with the given `--initial-cluster` — after a MemberAdd, as etcd-sync does. Returns its
    /// index.
    pub fn join(&mut self, spec: MemberSpec, initial_cluster: &str) -> usize {
        let data_dir = self.dir.path().join(format!("{}.etcd", spec.name));
        let log = self.dir.path().join(format!("{}.log", spec.name));
        let mut running = Running {
            spec,
            child: None,
            data_dir,
            log,
        };
        running.child = Some(self.spawn(&running, initial_cluster, "existing", "testkit-join"));
        self.members.push(running);
        self.members.len() - 1
    }

    /// Starts member `index` again (after [`Cluster::kill`]) on its data directory, e.g. one
    /// rebuilt by `etcdctl snapshot restore`; its `--initial-cluster` is ignored by etcd then.
    pub fn restart(&mut self, index: usize) {
        let names: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.spec.name, m.spec.peer_url))
            .collect();
        let child = self.spawn(&self.members[index], &names.join(","), "new", "testkit");
        self.members[index].child = Some(child);
    }

    /// Member `index`'s data directory (`--data-dir`).
    pub fn data_dir(&self, index: usize) -> &Path {
        &self.members[index].data_dir
    }

    fn spawn(&self, member: &Running, initial_cluster: &str, state: &str, token: &str) -> Child {
        let spec = &member.spec;
        let log = fs::File::create(&member.log).expect("create the member's log file");
        let mut command = Command::new("setsid");
        command.args(&spec.prefix).arg(ETCD);
        command
            .arg(format!("--name={}", spec.name))
            .arg(format!("--data-dir={}", member.data_dir.display()))
            .arg(format!("--listen-client-urls={}", spec.client_url))
            .arg(format!("--advertise-client-urls={}", spec.client_url))
            .arg(format!("--listen-peer-urls={}", spec.peer_url))
            .arg(format!("--initial-advertise-peer-urls={}", spec.peer_url))
            .arg(format!("--initial-cluster={initial_cluster}"))
            .arg(format!("--initial-cluster-state={state}"))
            .arg(format!("--initial-cluster-token={token}"))
            .arg(format!("--cert-file={}", spec.certs.server_cert.display()))
            .arg(format!("--key-file={}", spec.certs.server_key.display()))
            .arg("--client-cert-auth")
            .arg(format!("--trusted-ca-file={}", self.tls.ca.display()))
            .arg(format!(
                "--peer-cert-file={}",
                spec.certs.peer_cert.display()
            ))
            .arg(format!("--peer-key-file={}", spec.certs.peer_key.display()))
            .arg("--peer-client-cert-auth")
            .arg(format!("--peer-trusted-ca-file={}", self.tls.ca.display()))
            .arg("--logger=zap")
            .args(&spec.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log);
        command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd member {}: {e}", spec.name))
    }

    /// Each member's client URL, in order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| m.spec.client_url.clone())
            .collect()
    }

    /// The client URLs joined with commas, as `--endpoints` takes them.
    pub fn endpoints_arg(&self) -> String {
        self.endpoints().join(",")
    }

    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn member(&self, index: usize) -> &MemberSpec {
        &self.members[index].spec
    }

    /// The temporary directory holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of member `index` (its session and process-group id too, by `setsid`).
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.members[index].child.as_ref().map(Child::id)
    }

    /// The member's log so far (etcd's zap JSON lines).
    pub fn log(&self, index: usize) -> String {
        fs::read_to_string(&self.members[index].log).unwrap_or_default()
    }

    /// An `etcdctl` command (API v3) against member `index`, with the cluster's CA and client
    /// certificate, behind the member's command prefix.
    pub fn etcdctl(&self, index: usize) -> Command {
        let spec = &self.members[index].spec;
        let (program, prefix_rest) = match spec.prefix.split_first() {
            Some((first, rest)) => (first.as_str(), rest.to_vec()),
            None => (ETCDCTL, Vec::new()),
        };
        let mut command = Command::new(program);
        if !spec.prefix.is_empty() {
            command.args(prefix_rest).arg(ETCDCTL);
        }
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", spec.client_url))
            .arg(format!("--cacert={}", self.tls.ca.display()))
            .arg(format!("--cert={}", self.tls.client_cert.display()))
            .arg(format!("--key={}", self.tls.client_key.display()));
        command
    }

    /// True when member `index` answers `etcdctl endpoint health` (a quorum read) in time.
    pub fn is_healthy(&self, index: usize) -> bool {
        self.etcdctl(index)
            .args([
                "--command-timeout=2s",
                "--dial-timeout=1s",
                "endpoint",
                "health",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Waits until every running member answers a quorum read; on timeout, says which members
    /// are not healthy with the tail of their logs.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), String> {
        let indexes: Vec<usize> = (0..self.members.len()).collect();
        self.wait_members_healthy(&indexes, timeout)
    }

    /// Like [`Cluster::wait_healthy`], for some members only (the others may be stopped).
    pub fn wait_members_healthy(&self, indexes: &[usize], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<usize> = indexes.to_vec();
        loop {
            for &i in &pending.clone() {
                if let Some(status) = self.exited(i) {
                    return Err(format!(
                        "etcd member {} exited ({status}) before it was healthy; log tail:\n{}",
                        self.members[i].spec.name,
                        self.log_tail(i, 15)
                    ));
                }
            }
            pending.retain(|&i| !self.is_healthy(i));
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let report: Vec<String> = pending
                    .iter()
                    .map(|&i| {
                        format!(
                            "member {} ({}) is not healthy; log tail:\n{}",
                            self.members[i].spec.name,
                            self.members[i].spec.client_url,
                            self.log_tail(i, 15)
                        )
                    })
                    .collect();
                return Err(format!(
                    "etcd cluster not healthy after {timeout:?}:\n{}",
                    report.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until member `index` has exited by itself — as a member does once it learns it was
    /// removed from the cluster — and reaps it; on timeout, the tail of its log.
    pub fn wait_exited(&mut self, index: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while self.exited(index).is_none() {
            if self.pid(index).is_none() {
                return Err(format!(
                    "etcd member {} has no process to wait for",
                    self.members[index].spec.name
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "etcd member {} still runs after {timeout:?}; log tail:\n{}",
                    self.members[index].spec.name,
                    self.log_tail(index, 15)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.wait();
        }
        Ok(())
    }

    /// The last `lines` lines of member `index`'s log.
    pub fn log_tail(&self, index: usize, lines: usize) -> String {
        let file = match fs::File::open(&self.members[index].log) {
            Ok(f) => f,
            Err(e) => return format!("(no log: {e})"),
        };
        let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The exit status when member `index` has exited (it is reaped), None while it runs.
    fn exited(&self, index: usize) -> Option<String> {
        let pid = self.pid(index)?;
        // Not `try_wait` (it needs `&mut`): a reaped or zombie process has no live stat.
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        match stat.as_deref().and_then(process_state) {
            None | Some('Z') | Some('X') => Some("not running".into()),
            Some(_) => None,
        }
    }

    /// SIGSTOP: the member stays up but answers nothing (black-holed). Returns once the kernel
    /// reports it stopped. Panics when the member has no process (never started, or killed).
    pub fn stop(&self, index: usize) {
        self.signal_running(index, "STOP");
        self.wait_state(index, |s| s == 'T' || s == 't', "stopped");
    }

    /// SIGCONT: resumes a stopped member. Panics when the member has no process.
    pub fn cont(&self, index: usize) {
        self.signal_running(index, "CONT");
        self.wait_state(index, |s| s != 'T' && s != 't', "running");
    }

    /// SIGKILL: the member is gone and its port closed. Waits for it to be reaped. Panics when
    /// the member has no process: a test that kills a member twice has lost track of it.
    pub fn kill(&mut self, index: usize) {
        self.signal_running(index, "KILL");
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.wait();
        }
    }

    /// [`Cluster::signal`] to a member that must have a live process.
    fn signal_running(&self, index: usize, signal: &str) {
        let name = &self.members[index].spec.name;
        let Some(pid) = self.pid(index) else {
            panic!(
                "SIG{signal} to etcd member {name}: it has no process (never started, or killed)"
            );
        };
        if let Some(why) = self.exited(index) {
            panic!("SIG{signal} to etcd member {name} (pid {pid}): it is {why}");
        }
        assert!(
            self.signal(index, signal),
            "SIG{signal} to etcd member {name} (pid {pid}): kill failed"
        );
    }

    /// Sends a signal to the member's whole session (a command prefix may sit between `setsid`
    /// and etcd). `/bin/kill` rather than libc: the workspace forbids unsafe code. False when
    /// the member has no process or kill failed.
    fn signal(&self, index: usize, signal: &str) -> bool {
        let Some(pid) = self.pid(index) else {
            return false;
        };
        Command::new("kill")
            .args(["-s", signal, "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn wait_state(&self, index: usize, wanted: impl Fn(char) -> bool, what: &str) {
        let Some(pid) = self.pid(index) else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            match process_state(&stat) {
                Some(s) if wanted(s) => return,
                None | Some('Z') | Some('X') => panic!(
                    "etcd member {} (pid {pid}) exited instead of becoming {what}",
                    self.members[index].spec.name
                ),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        panic!(
            "etcd member {} (pid {pid}) did not become {what}",
            self.members[index].spec.name
        );
    }
}

/// The state letter of a `/proc/PID/stat` line (after the parenthesised command name).
fn process_state(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            // Quietly: a member a test killed has no process left.
            let _ = self.signal(index, "KILL");
            if let Some(mut child) = self.members[index].child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // The TempDir removes the data directories and logs after this.
    }
}

/// A small PKI for tests that must not depend on mkcerts: an etcd CA, per member a server
/// certificate (serverAuth and clientAuth, SANs 127.0.0.1, ::1, localhost and the member name)
/// and a peer certificate, and a client certificate. ECDSA P-256, written into a temporary
/// directory (keys 0600) that lives as long as this value.
pub struct TestPki {
    dir: TempDir,
    members: Vec<String>,
}

/// What [`TestPki::generate_with`] varies.
#[derive(Debug, Clone)]
pub struct TestPkiOptions {
    /// Extra SANs (IP addresses or DNS names) on every member's server and peer certificate,
    /// e.g. addresses inside a network namespace.
    pub extra_sans: Vec<String>,
    /// Days until the server certificates expire (the default is 365).
    pub server_days: i64,
    /// The CA's common name (two PKIs with different names make "a certificate from another CA").
    pub ca_name: String,
}

impl Default for TestPkiOptions {
    fn default() -> Self {
        TestPkiOptions {
            extra_sans: Vec::new(),
            server_days: 365,
            ca_name: "etcd-ca".into(),
        }
    }
}

impl TestPki {
    pub fn generate(members: &[&str]) -> TestPki {
        TestPki::generate_with(members, &TestPkiOptions::default())
    }

    pub fn generate_with(members: &[&str], options: &TestPkiOptions) -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::Builder::new()
            .prefix("testkit-pki-")
            .tempdir()
            .expect("create a temporary directory for the test PKI");
        let now = time::OffsetDateTime::now_utc();
        let write = |name: &str, pem: &str, secret: bool| {
            let path = dir.path().join(name);
            fs::write(&path, pem).expect("write a test certificate");
            if secret {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .expect("chmod a test key");
            }
        };

        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, options.ca_name.as_str());
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = now - time::Duration::days(1);
        ca_params.not_after = now + time::Duration::days(3650);
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        write("ca.pem", &ca_cert.pem(), false);
        write("ca-key.pem", &ca_key.serialize_pem(), true);
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |file: &str, cn: &str, sans: Vec<String>, days: i64, server: bool| {
            let key = KeyPair::generate().expect("generate a leaf key");
            let mut params = CertificateParams::new(sans).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = if server {
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ]
            } else {
                vec![ExtendedKeyUsagePurpose::ClientAuth]
            };
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(days);
            let cert = params.signed_by(&key, &issuer).expect("sign a leaf");
            write(&format!("{file}.pem"), &cert.pem(), false);
            write(&format!("{file}-key.pem"), &key.serialize_pem(), true);
        };

        for member in members {
            let mut sans: Vec<String> = vec![
                "127.0.0.1".into(),
                "::1".into(),
                "localhost".into(),
                member.to_string(),
            ];
            sans.extend(options.extra_sans.iter().cloned());
            leaf(
                &format!("{member}-server"),
                member,
                sans.clone(),
                options.server_days,
                true,
            );
            leaf(&format!("{member}-peer"), member, sans, 365, true);
        }
        leaf("client", "etcd-healthcheck-client", Vec::new(), 365, false);

        TestPki {
            dir,
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn member_names(&self) -> &[String] {
        &self.members
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
    }

    pub fn tls(&self) -> Tls {
        Tls {
            ca: self.ca(),
            client_cert: self.client_cert(),
            client_key: self.client_key(),
        }
    }

    pub fn member_certs(&self, member: &str) -> MemberCerts {
        let p = |suffix: &str| self.dir.path().join(format!("{member}-{suffix}"));
        MemberCerts {
            server_cert: p("server.pem"),
            server_key: p("server-key.pem"),
            peer_cert: p("peer.pem"),
            peer_key: p("peer-key.pem"),
        }
    }

    /// Loopback specs for every member of this PKI.
    pub fn loopback_members(&self) -> Vec<MemberSpec> {
        self.members
            .iter()
            .map(|m| MemberSpec::loopback(m, self.member_certs(m)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(6);
        let unique: BTreeSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), 6, "{ports:?}");
        assert!(ports.iter().all(|p| (20000..32000).contains(p)));
    }

    #[test]
    fn process_state_reads_past_the_name() {
        assert_eq!(process_state("12 (etcd) S 1 2"), Some('S'));
        assert_eq!(process_state("12 (a) b) T 1"), Some('T'));
    }

    /// A signal to a member that has no process is a test's mistake: it panics, never passes.
    #[test]
    fn signals_to_a_killed_member_fail_loudly() {
        crate::require_root();
        let pki = TestPki::generate(&["a"]);
        let mut cluster =
            Cluster::start_healthy(pki.tls(), pki.loopback_members(), Duration::from_secs(30));
        cluster.kill(0);
        for (what, signal) in [
            (
                "stop",
                &(|c: &mut Cluster| c.stop(0)) as &dyn Fn(&mut Cluster),
            ),
            ("cont", &|c: &mut Cluster| c.cont(0)),
            ("kill", &|c: &mut Cluster| c.kill(0)),
        ] {
            let panic =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| signal(&mut cluster)))
                    .expect_err(what);
            let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(message.contains("has no process"), "{what}: {message}");
        }
    }

    /// A real 3-member TLS cluster comes up, a stopped member stops answering, and Drop cleans up.
    #[test]
    fn three_members_start_stop_and_clean_up() {
        crate::require_root();
        let pki = TestPki::generate(&["a", "b", "c"]);
        let cluster =
            Cluster::start_healthy(pki.tls(), pki.loopback_members(), Duration::from_secs(30));
        let dir = cluster.dir().to_path_buf();
        let pid = cluster.pid(1).unwrap();
        cluster.stop(1);
        assert!(!cluster.is_healthy(1));
        cluster.cont(1);
        cluster.wait_healthy(Duration::from_secs(30)).unwrap();
        drop(cluster);
        assert!(!dir.exists(), "data directory left behind");
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            process_state(&stat).is_none(),
            "member left running: {stat}"
        );
    }
}
