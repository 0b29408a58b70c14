//! One node's push over SSH: verify the host key, log in, compare, upload, rename, start.
//!
//! Round trips are what cost time over SSH, so a node takes a fixed few of them however many
//! files it has: one `sha256sum`+`stat` for every destination (and `systemctl is-active` of the
//! services a change restarts), one `mkdir -p` when something is uploaded, the SFTP uploads, and
//! one script that installs every upload (chown, chmod, `mv -f` over the target: rename(2) in the
//! same directory, atomic) and runs systemctl. The script echoes a marker after each step so the
//! report says exactly what was done when it fails half-way. A node that restarts a running
//! service is compared once to find its wave ([`probe`]) and connected again at that wave
//! ([`apply`]), which compares again before it sends anything.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ssh2::{OpenFlags, OpenType, Session};

use crate::error::NodeError;
use crate::hostkey::{self, KnownHostsFile, Verdict};
use crate::plan::{LocalFile, NodePlan, Target};
use crate::report::NodeReport;

const CHUNK: usize = 256 * 1024;

/// How to log in.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A private key file (no passphrase).
    Key(PathBuf),
    /// The SSH agent, then these key files.
    Agent(Vec<PathBuf>),
    /// These key files, in order.
    Keys(Vec<PathBuf>),
}

/// What every node's push shares.
pub struct Context<'a> {
    pub user: &'a str,
    pub auth: &'a Auth,
    pub known_hosts: &'a KnownHostsFile,
    pub accept_new: bool,
    pub dry_run: bool,
    pub no_start: bool,
    pub timeout: Duration,
}

/// What a destination looks like on the node.
#[derive(Debug, Clone, Default, PartialEq)]
struct RemoteFile {
    sha256: Option<String>,
    kind: String,
    mode: u32,
    /// `user:group` by name and by number.
    owner_names: String,
    owner_ids: String,
}

/// What to do with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Upload,
    Attrs,
    Keep,
}

/// A node connected and compared. One that restarts no running service is pushed already, in
/// the same session (wave 1 goes first and all at once); one that does is left as it was, its
/// session closed (the `--parallel` bound holds), for [`apply`] at its wave.
pub struct Probed {
    /// The finished report, or what the compare saw of a node still to push.
    report: NodeReport,
    /// Time spent on the node so far (waiting for its wave does not count).
    spent: Duration,
    /// Pushed already, or failed: nothing left for [`apply`].
    done: bool,
}

struct Prepared {
    session: Session,
    actions: Vec<Action>,
    steps: Steps,
}

impl Probed {
    /// True when pushing it restarts a service that runs now: the node goes in a rolling wave.
    pub fn restarts_running(&self) -> bool {
        !self.done && !self.report.restarted_running.is_empty()
    }

    /// A node the rollout stopped before: compared, never changed, reported as not pushed.
    pub fn skip(self, why: &str) -> NodeReport {
        let mut report = self.report;
        report.skipped = true;
        report.ok = false;
        report.files_changed.clear();
        report.files_unchanged.clear();
        report.restarted_running.clear();
        report.gate.verdict = crate::report::Verdict::NotRun;
        if report.error.is_none() {
            report.error = Some(why.to_string());
        }
        report
    }
}

/// Connects, checks the host key, logs in, and compares every destination and the state of the
/// services a change would restart; a node that restarts no running service is then pushed in
/// the same session. A failure goes into the report.
pub fn probe(plan: &NodePlan, ctx: &Context) -> Probed {
    let started = Instant::now();
    let mut report = new_report(plan);
    let clock = Clock::starting(started, ctx.timeout);
    let pushed = prepare(plan, ctx, &clock, &mut report).and_then(|prepared| {
        if report.restarted_running.is_empty() {
            install(plan, &prepared, ctx, &clock, &mut report).map(|()| true)
        } else {
            let _ = prepared
                .session
                .disconnect(None, "node-push: back at its wave", None);
            Ok(false)
        }
    });
    let done = match pushed {
        Ok(pushed) => {
            report.ok = pushed;
            pushed
        }
        Err(e) => {
            report.error = Some(clock.explain(e));
            true
        }
    };
    Probed {
        report,
        spent: started.elapsed(),
        done,
    }
}

/// Pushes a probed node at its wave: connects again and compares afresh (the node may have
/// changed while it waited), then uploads, installs and runs systemctl, with `--timeout`
/// counted anew. A node [`probe`] finished is returned as it is. A failure goes into the report.
pub fn apply(plan: &NodePlan, probed: Probed, ctx: &Context) -> NodeReport {
    let Probed {
        report: probed,
        spent,
        done,
    } = probed;
    if done {
        return finish(probed, spent);
    }
    let started = Instant::now();
    let mut report = new_report(plan);
    let clock = Clock::starting(started, ctx.timeout);
    let pushed = prepare(plan, ctx, &clock, &mut report)
        .and_then(|prepared| install(plan, &prepared, ctx, &clock, &mut report));
    match pushed {
        Ok(()) => report.ok = true,
        Err(e) => report.error = Some(clock.explain(e)),
    }
    report.host_key_recorded |= probed.host_key_recorded;
    finish(report, spent + started.elapsed())
}

fn new_report(plan: &NodePlan) -> NodeReport {
    NodeReport {
        node: plan.name.clone(),
        address: plan.target.to_string(),
        ..Default::default()
    }
}

fn finish(mut report: NodeReport, spent: Duration) -> NodeReport {
    report.seconds = (spent.as_secs_f64() * 1000.0).round() / 1000.0;
    report
}

struct Clock {
    deadline: Instant,
    timeout: Duration,
}

impl Clock {
    fn starting(now: Instant, timeout: Duration) -> Clock {
        Clock {
            deadline: now + timeout,
            timeout,
        }
    }

    /// The one-line error for the report; a libssh2 timeout surfaces as a session error, so
    /// the real cause is named.
    fn explain(&self, e: NodeError) -> String {
        let e = if matches!(e, NodeError::ResolveTimeout { .. }) {
            e
        } else if e.is_timeout() || Instant::now() >= self.deadline {
            NodeError::Timeout(self.timeout.as_secs())
        } else {
            e
        };
        hardway::tool::one_line(&e.to_string())
    }

    /// The time left, or a timeout error.
    fn left(&self) -> Result<Duration, NodeError> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(NodeError::Timeout(self.timeout.as_secs()));
        }
        Ok(self.deadline - now)
    }

    /// Bounds the session's next blocking calls by the time left.
    fn arm(&self, session: &Session) -> Result<(), NodeError> {
        let left = self.left()?;
        session.set_timeout(left.as_millis().clamp(1, u32::MAX as u128) as u32);
        Ok(())
    }
}

fn prepare(
    plan: &NodePlan,
    ctx: &Context,
    clock: &Clock,
    report: &mut NodeReport,
) -> Result<Prepared, NodeError> {
    let session = connect(plan, ctx, clock, report)?;
    clock.arm(&session)?;
    let services: &[String] = if ctx.no_start { &[] } else { &plan.services };
    let remote = remote_state(&session, &plan.files, services)?;
    let actions: Vec<Action> = plan
        .files
        .iter()
        .map(|f| action_for(f, remote.files.get(&f.dest)))
        .collect::<Result<_, _>>()?;
    for (file, action) in plan.files.iter().zip(&actions) {
        match action {
            Action::Keep => report.files_unchanged.push(file.dest.clone()),
            _ => report.files_changed.push(file.dest.clone()),
        }
    }
    let steps = Steps::new(plan, &actions, ctx.no_start);
    report.restarted_running = steps
        .restart
        .iter()
        .filter(|s| remote.running.contains(*s))
        .cloned()
        .collect();
    Ok(Prepared {
        session,
        actions,
        steps,
    })
}

fn install(
    plan: &NodePlan,
    prepared: &Prepared,
    ctx: &Context,
    clock: &Clock,
    report: &mut NodeReport,
) -> Result<(), NodeError> {
    let Prepared {
        session,
        actions,
        steps,
    } = prepared;
    let uploads: Vec<&LocalFile> = plan
        .files
        .iter()
        .zip(actions)
        .filter(|(_, a)| **a == Action::Upload)
        .map(|(f, _)| f)
        .collect();
    if ctx.dry_run {
        report.bytes_uploaded = uploads.iter().map(|f| f.size).sum();
        report.daemon_reload = steps.daemon_reload;
        report.services_started = steps.start.clone();
        report.services_restarted = steps.restart.clone();
        return Ok(());
    }
    if !uploads.is_empty() {
        upload_all(session, &uploads, clock, report)?;
    }
    let script = steps.script(plan, actions);
    if script.is_empty() {
        return Ok(());
    }
    clock.arm(session)?;
    let (status, stdout, stderr) = exec(session, &script)?;
    for line in stdout.lines() {
        match line.split_once(' ') {
            Some(("#reload", _)) => report.daemon_reload = true,
            Some(("#started", unit)) => report.services_started.push(unit.to_string()),
            Some(("#restarted", unit)) => report.services_restarted.push(unit.to_string()),
            _ => {}
        }
    }
    if status != 0 {
        cleanup_temps(session, &uploads);
        return Err(NodeError::Remote {
            command: "install and systemctl script".into(),
            status,
            stderr: last_line(&stderr),
        });
    }
    let _ = session.disconnect(None, "node-push done", None);
    Ok(())
}

/// Makes the destination directories and uploads every file to its temporary name.
fn upload_all(
    session: &Session,
    uploads: &[&LocalFile],
    clock: &Clock,
    report: &mut NodeReport,
) -> Result<(), NodeError> {
    let mut dirs: Vec<&str> = uploads.iter().map(|f| parent_of(&f.dest)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    clock.arm(session)?;
    run_checked(
        session,
        &format!("umask 022 && mkdir -p -- {}", quote_all(&dirs)),
    )?;
    let sftp = {
        clock.arm(session)?;
        session
            .sftp()
            .map_err(NodeError::ssh("cannot start SFTP"))?
    };
    for file in uploads {
        match upload(session, &sftp, file, clock) {
            Ok(bytes) => report.bytes_uploaded += bytes,
            Err(e) => {
                cleanup_temps(session, uploads);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// TCP, handshake, host key check, login. Nothing is sent before the host key is accepted.
fn connect(
    plan: &NodePlan,
    ctx: &Context,
    clock: &Clock,
    report: &mut NodeReport,
) -> Result<Session, NodeError> {
    let target = &plan.target;
    let addrs = resolve(target, clock)?;
    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, clock.left()?) {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        NodeError::Connect(last.unwrap_or_else(|| std::io::Error::other("no address")))
    })?;
    let _ = tcp.set_nodelay(true);
    let mut session = Session::new().map_err(NodeError::ssh("cannot start libssh2"))?;
    session.set_tcp_stream(tcp);
    clock.arm(&session)?;
    let recorded = hostkey::prefer_recorded(&session, ctx.known_hosts, target)?;
    session
        .handshake()
        .map_err(NodeError::ssh("SSH handshake"))?;
    if let Some((blob, _)) = session.host_key() {
        report.host_key = Some(hostkey::fingerprint(blob));
    }
    match hostkey::verify(&session, ctx.known_hosts, target, &recorded, ctx.accept_new)? {
        Verdict::Known => {}
        Verdict::Recorded(_) => report.host_key_recorded = true,
    }
    clock.arm(&session)?;
    login(&session, ctx)?;
    Ok(session)
}

/// The addresses of `target`, the lookup bounded by the time left.
///
/// getaddrinfo(3) has no timeout of its own: with a resolver that does not answer, glibc waits
/// `timeout` × `attempts` of resolv.conf per server (5 s × 2 by default, up to 30 s × 5), past
/// `--timeout`. So the lookup runs on a thread of its own and is waited for only as long as the
/// node has left; a lookup still running then is abandoned (its thread ends when glibc gives
/// up, and its answer goes nowhere). An IP address needs no lookup and no thread.
fn resolve(target: &Target, clock: &Clock) -> Result<Vec<SocketAddr>, NodeError> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let left = clock.left()?;
    let (tx, rx) = mpsc::channel();
    let name = (target.host.clone(), target.port);
    std::thread::Builder::new()
        .name(format!("resolve {}", target.host))
        .spawn(move || {
            let answer = name.to_socket_addrs().map(Iterator::collect);
            let _ = tx.send(answer);
        })
        .map_err(NodeError::Connect)?;
    match rx.recv_timeout(left) {
        Ok(answer) => answer.map_err(NodeError::Connect),
        Err(_) => Err(NodeError::ResolveTimeout {
            host: target.host.clone(),
            seconds: clock.timeout.as_secs(),
        }),
    }
}

fn login(session: &Session, ctx: &Context) -> Result<(), NodeError> {
    let user = ctx.user;
    let fail = |why: String| NodeError::Auth {
        user: user.to_string(),
        why,
    };
    let mut tried = Vec::new();
    let keys: &[PathBuf] = match ctx.auth {
        Auth::Key(key) => std::slice::from_ref(key),
        Auth::Agent(keys) => {
            match session.userauth_agent(user) {
                Ok(()) if session.authenticated() => return Ok(()),
                Ok(()) => tried.push("agent: not accepted".to_string()),
                Err(e) => tried.push(format!("agent: {}", e.message())),
            }
            keys
        }
        Auth::Keys(keys) => keys,
    };
    for key in keys {
        match session.userauth_pubkey_file(user, None, key, None) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => tried.push(format!("{}: not accepted", key.display())),
            Err(e) => tried.push(format!("{}: {}", key.display(), e.message())),
        }
    }
    Err(fail(tried.join("; ")))
}

/// What the node has now: its destinations, and which of the services a change could restart
/// are running.
#[derive(Debug, Default)]
struct Remote {
    files: BTreeMap<String, RemoteFile>,
    running: BTreeSet<String>,
}

/// One round trip: a `stat` and a `sha256sum` of every destination, and `systemctl is-active`
/// of each service one of the node's files restarts (`services` empty: none asked).
fn remote_state(
    session: &Session,
    files: &[LocalFile],
    services: &[String],
) -> Result<Remote, NodeError> {
    let candidates: Vec<&str> = services
        .iter()
        .filter(|s| files.iter().any(|f| f.restarts.contains(*s)))
        .map(String::as_str)
        .collect();
    if files.is_empty() && candidates.is_empty() {
        return Ok(Remote::default());
    }
    let dests: Vec<&str> = files.iter().map(|f| f.dest.as_str()).collect();
    let list = quote_all(&dests);
    // Without files, no stat or sha256sum at all: sha256sum with no file would read stdin.
    let mut command = if dests.is_empty() {
        "echo '#hashes'; echo '#active'; ".to_string()
    } else {
        format!(
            "stat -L --printf '%F\\t%a\\t%U:%G\\t%u:%g\\t%n\\n' -- {list} 2>/dev/null; \
             echo '#hashes'; sha256sum -- {list} 2>/dev/null; echo '#active'; "
        )
    };
    if !candidates.is_empty() {
        // systemctl(1), is-active: "Check whether any of the specified units are active", and
        // print each one's ActiveState, one line per unit in order (active, reloading, inactive,
        // failed, activating, deactivating); the exit status only says "any" (systemd 253
        // manual, freedesktop.org/software/systemd/man/253/systemctl.html).
        command.push_str(&format!(
            "systemctl is-active -- {} 2>/dev/null; ",
            quote_all(&candidates)
        ));
    }
    command.push_str("true");
    let (status, stdout, stderr) = exec(session, &command)?;
    let sections = stdout
        .split_once("#hashes\n")
        .and_then(|(stats, rest)| Some((stats, rest.split_once("#active\n")?)));
    let Some((stats, (hashes, states))) = sections.filter(|_| status == 0) else {
        return Err(NodeError::Remote {
            command: "stat/sha256sum of the destinations".into(),
            status,
            stderr: last_line(&stderr),
        });
    };
    Ok(Remote {
        files: parse_files(stats, hashes),
        running: candidates
            .iter()
            .zip(states.lines())
            .filter(|(_, state)| is_running(state))
            .map(|(unit, _)| unit.to_string())
            .collect(),
    })
}

/// A unit in one of these states is serving or about to: restarting it takes it down.
fn is_running(state: &str) -> bool {
    matches!(
        state.trim(),
        "active" | "activating" | "reloading" | "deactivating" | "refreshing"
    )
}

fn parse_files(stats: &str, hashes: &str) -> BTreeMap<String, RemoteFile> {
    let mut state = BTreeMap::new();
    for line in stats.lines() {
        let fields: Vec<&str> = line.splitn(5, '\t').collect();
        if let [kind, mode, names, ids, path] = fields[..] {
            state.insert(
                path.to_string(),
                RemoteFile {
                    sha256: None,
                    kind: kind.to_string(),
                    mode: u32::from_str_radix(mode, 8).unwrap_or(u32::MAX),
                    owner_names: names.to_string(),
                    owner_ids: ids.to_string(),
                },
            );
        }
    }
    for line in hashes.lines() {
        if let Some((hash, path)) = line.split_once("  ") {
            if let Some(file) = state.get_mut(path) {
                file.sha256 = Some(hash.to_string());
            }
        }
    }
    state
}

fn action_for(file: &LocalFile, remote: Option<&RemoteFile>) -> Result<Action, NodeError> {
    let Some(remote) = remote else {
        return Ok(Action::Upload);
    };
    if remote.kind == "directory" {
        return Err(NodeError::Protocol(format!(
            "{} is a directory on the node; remove it or fix the destination",
            file.dest
        )));
    }
    if remote.sha256.as_deref() != Some(file.sha256.as_str()) {
        return Ok(Action::Upload);
    }
    let owner_matches = |actual: &str| match file.owner.split_once(':') {
        Some(_) => actual == file.owner,
        None => actual.split(':').next() == Some(file.owner.as_str()),
    };
    if remote.mode != file.mode
        || !(owner_matches(&remote.owner_names) || owner_matches(&remote.owner_ids))
    {
        return Ok(Action::Attrs);
    }
    Ok(Action::Keep)
}

/// Uploads one file to its temporary name, created 0600, checking the bytes sent against the
/// planned sha256 (the local file may have changed since), then fsyncs it.
fn upload(
    session: &Session,
    sftp: &ssh2::Sftp,
    file: &LocalFile,
    clock: &Clock,
) -> Result<u64, NodeError> {
    let temp = temp_name(&file.dest);
    let temp_path = Path::new(&temp);
    clock.arm(session)?;
    let _ = sftp.unlink(temp_path);
    let mut remote = sftp
        .open_mode(
            temp_path,
            OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
            0o600,
            OpenType::File,
        )
        .map_err(NodeError::ssh(&format!("cannot create {temp}")))?;
    let local_error = |source| NodeError::Local {
        what: format!("cannot read {}", file.path.display()),
        source,
    };
    let mut local = crate::local::open_plain(&file.path).map_err(local_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        let n = local.read(&mut buf).map_err(local_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        clock.arm(session)?;
        remote.write_all(&buf[..n]).map_err(|e| NodeError::Local {
            what: format!("upload of {} to {temp} failed", file.dest),
            source: e,
        })?;
        sent += n as u64;
    }
    if hex::encode(hasher.finalize()) != file.sha256 {
        return Err(NodeError::Protocol(format!(
            "{} changed while node-push ran; re-run the tool that wrote it, then node-push",
            file.path.display()
        )));
    }
    clock.arm(session)?;
    remote
        .fsync()
        .map_err(NodeError::ssh(&format!("cannot fsync {temp}")))?;
    remote
        .close()
        .map_err(NodeError::ssh(&format!("cannot close {temp}")))?;
    Ok(sent)
}

/// Removes temporary files after a failure (best effort: the connection may be gone).
fn cleanup_temps(session: &Session, uploads: &[&LocalFile]) {
    if uploads.is_empty() {
        return;
    }
    let temps: Vec<String> = uploads.iter().map(|f| temp_name(&f.dest)).collect();
    let temps: Vec<&str> = temps.iter().map(String::as_str).collect();
    session.set_timeout(5000);
    let _ = exec(session, &format!("rm -f -- {}", quote_all(&temps)));
}

/// The service steps, decided from the plan and the file actions.
struct Steps {
    daemon_reload: bool,
    start: Vec<String>,
    restart: Vec<String>,
}

impl Steps {
    fn new(plan: &NodePlan, actions: &[Action], no_start: bool) -> Steps {
        if no_start {
            return Steps {
                daemon_reload: false,
                start: vec![],
                restart: vec![],
            };
        }
        let uploaded = || {
            plan.files
                .iter()
                .zip(actions)
                .filter(|(_, a)| **a == Action::Upload)
                .map(|(f, _)| f)
        };
        let daemon_reload = uploaded().any(|f| f.is_unit);
        let restart: Vec<String> = plan
            .services
            .iter()
            .filter(|s| uploaded().any(|f| f.restarts.contains(s)))
            .cloned()
            .collect();
        let start = plan
            .services
            .iter()
            .filter(|s| !restart.contains(s))
            .cloned()
            .collect();
        Steps {
            daemon_reload,
            start,
            restart,
        }
    }

    /// The install-and-start script, `set -e`, a marker echoed after each step.
    fn script(&self, plan: &NodePlan, actions: &[Action]) -> String {
        let mut lines = Vec::new();
        for (file, action) in plan.files.iter().zip(actions) {
            let dest = quote(&file.dest);
            let owner = quote(&file.owner);
            let mode = format!("{:04o}", file.mode);
            match action {
                Action::Upload => {
                    let temp = quote(&temp_name(&file.dest));
                    // chown first: it clears set-id bits that chmod then sets.
                    lines.push(format!(
                        "chown {owner} {temp} && chmod {mode} {temp} && mv -f {temp} {dest}"
                    ));
                }
                Action::Attrs => lines.push(format!("chown {owner} {dest} && chmod {mode} {dest}")),
                Action::Keep => {}
            }
        }
        if self.daemon_reload {
            lines.push("systemctl daemon-reload && echo '#reload -'".into());
        }
        for service in &plan.services {
            let unit = quote(service);
            if self.restart.contains(service) {
                lines.push(format!(
                    "systemctl enable {unit} && systemctl restart {unit} && echo '#restarted {service}'"
                ));
            } else if self.start.contains(service) {
                lines.push(format!(
                    "systemctl enable --now {unit} && echo '#started {service}'"
                ));
            }
        }
        if lines.is_empty() {
            return String::new();
        }
        format!("set -e\n{}\n", lines.join("\n"))
    }
}

/// Runs a command; returns its exit status, stdout and stderr.
fn exec(session: &Session, command: &str) -> Result<(i32, String, String), NodeError> {
    let what = first_word(command);
    let mut channel = session
        .channel_session()
        .map_err(NodeError::ssh("cannot open a session channel"))?;
    channel
        .exec(command)
        .map_err(NodeError::ssh(&format!("cannot run {what}")))?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    channel
        .read_to_string(&mut stdout)
        .map_err(|e| NodeError::Local {
            what: format!("reading the output of {what}"),
            source: e,
        })?;
    channel
        .stderr()
        .read_to_string(&mut stderr)
        .map_err(|e| NodeError::Local {
            what: format!("reading the errors of {what}"),
            source: e,
        })?;
    channel
        .wait_close()
        .map_err(NodeError::ssh(&format!("{what} did not finish")))?;
    let status = channel
        .exit_status()
        .map_err(NodeError::ssh(&format!("{what} exit status")))?;
    Ok((status, stdout, stderr))
}

fn run_checked(session: &Session, command: &str) -> Result<(), NodeError> {
    let (status, _, stderr) = exec(session, command)?;
    if status != 0 {
        return Err(NodeError::Remote {
            command: command.chars().take(80).collect(),
            status,
            stderr: last_line(&stderr),
        });
    }
    Ok(())
}

/// `.NAME.node-push-tmp` beside the destination: same directory, so `mv` is a rename(2); a
/// fixed name, so an interrupted run's leftover is replaced by the next run, not piled up.
pub fn temp_name(dest: &str) -> String {
    let (dir, name) = dest.rsplit_once('/').unwrap_or(("", dest));
    format!("{dir}/.{name}.node-push-tmp")
}

fn parent_of(dest: &str) -> &str {
    match dest.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

/// Single-quotes a word for the remote POSIX shell.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

fn quote_all(words: &[&str]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn first_word(command: &str) -> &str {
    command.split_whitespace().next().unwrap_or(command)
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dest: &str, restarts: &[&str]) -> LocalFile {
        LocalFile {
            path: "x".into(),
            dest: dest.into(),
            mode: 0o640,
            owner: "root:etcd".into(),
            sha256: "ab".into(),
            size: 1,
            restarts: restarts.iter().map(|s| s.to_string()).collect(),
            is_unit: crate::plan::is_unit(dest),
        }
    }

    #[test]
    fn temp_names_stay_in_the_same_directory() {
        assert_eq!(
            temp_name("/etc/etcd/ca.pem"),
            "/etc/etcd/.ca.pem.node-push-tmp"
        );
        assert_eq!(parent_of("/etc/etcd/ca.pem"), "/etc/etcd");
        assert_eq!(parent_of("/hosts"), "/");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn actions_compare_content_then_mode_and_owner() {
        let f = file("/a", &[]);
        let same = RemoteFile {
            sha256: Some("ab".into()),
            kind: "regular file".into(),
            mode: 0o640,
            owner_names: "root:etcd".into(),
            owner_ids: "0:996".into(),
        };
        assert_eq!(action_for(&f, Some(&same)).unwrap(), Action::Keep);
        assert_eq!(action_for(&f, None).unwrap(), Action::Upload);
        let other = RemoteFile {
            sha256: Some("cd".into()),
            ..same.clone()
        };
        assert_eq!(action_for(&f, Some(&other)).unwrap(), Action::Upload);
        let mode = RemoteFile {
            mode: 0o644,
            ..same.clone()
        };
        assert_eq!(action_for(&f, Some(&mode)).unwrap(), Action::Attrs);
        let dir = RemoteFile {
            kind: "directory".into(),
            ..same
        };
        assert!(action_for(&f, Some(&dir)).is_err());
    }

    #[test]
    fn the_script_installs_then_reloads_then_starts_in_order() {
        let plan = NodePlan {
            name: "n".into(),
            target: Target::parse("127.0.0.1", 22).unwrap(),
            files: vec![
                file("/etc/systemd/system/etcd.service", &["etcd.service"]),
                file("/etc/hosts", &[]),
            ],
            services: vec!["etcd.service".into(), "kubelet.service".into()],
            tier: crate::waves::Tier::Etcd,
        };
        let actions = [Action::Upload, Action::Attrs];
        let steps = Steps::new(&plan, &actions, false);
        assert!(steps.daemon_reload);
        assert_eq!(steps.restart, ["etcd.service"]);
        assert_eq!(steps.start, ["kubelet.service"]);
        let script = steps.script(&plan, &actions);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], "set -e");
        assert!(lines[1].contains("mv -f '/etc/systemd/system/.etcd.service.node-push-tmp'"));
        assert!(lines[2].starts_with("chown 'root:etcd' '/etc/hosts' && chmod 0640"));
        assert!(lines[3].starts_with("systemctl daemon-reload"));
        assert!(lines[4].contains("systemctl restart 'etcd.service'"));
        assert!(lines[5].contains("systemctl enable --now 'kubelet.service'"));
        // Nothing to do: no script, no round trip.
        let keep = [Action::Keep, Action::Keep];
        let steps = Steps::new(&plan, &keep, true);
        assert!(steps.script(&plan, &keep).is_empty());
    }
}
