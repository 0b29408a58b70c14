//! node-push against real OpenSSH servers (testkit::sshd) on loopback ports: every "node" is an
//! sshd of its own, and its destinations live under the test's own directory on this machine,
//! so the test reads what landed directly. The stub systemctl on the sessions' PATH records the
//! calls in order. Needs root (CI runs `make test` as root).

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hardway::doc::FileEntry;
use hardway::{Document, Node, Role};
use node_push::report::{NodeReport, Report, Verdict};
use sha2::{Digest, Sha256};
use testkit::sshd::{self, Sshd, SshdOptions};

const BIN: &str = env!("CARGO_BIN_EXE_node-push");

/// One test's world: an output dir with the files to push, a known_hosts, a client key shared by
/// every sshd, and a destination root per node.
struct World {
    tmp: tempfile::TempDir,
    doc: Document,
}

impl World {
    fn new(nodes: &[&str]) -> World {
        testkit::require_root();
        let tmp = tempfile::Builder::new()
            .prefix("node-push-test-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(tmp.path().join("out")).unwrap();
        sshd::keygen(&tmp.path().join("id_ed25519"), "node-push-test");
        let mut doc = testkit::fixture_document("lab.json");
        let template = doc.nodes[0].clone();
        doc.nodes = nodes
            .iter()
            .map(|name| Node {
                name: name.to_string(),
                ..template.clone()
            })
            .collect();
        World { tmp, doc }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn known_hosts(&self) -> PathBuf {
        self.path("known_hosts")
    }

    /// A destination under this node's root.
    fn dest(&self, node: &str, rel: &str) -> PathBuf {
        self.path(&format!("nodes/{node}/{rel}"))
    }

    /// Starts an sshd that accepts this world's client key.
    fn sshd(&self) -> Sshd {
        Sshd::start_with(SshdOptions {
            authorized_key: Some(self.path("id_ed25519.pub")),
            ..Default::default()
        })
    }

    /// Writes `out/<src>` and adds it to the node's files (sha256 of the content).
    fn file(&mut self, node: &str, src: &str, dest: &str, mode: &str, owner: &str, content: &[u8]) {
        let local = self.path(&format!("out/{src}"));
        fs::create_dir_all(local.parent().unwrap()).unwrap();
        fs::write(&local, content).unwrap();
        let dest = self.dest(node, dest).display().to_string();
        let sha = hex::encode(Sha256::digest(content));
        let files = &mut self.node_mut(node).files;
        files.retain(|f| f.src != src);
        files.push(FileEntry {
            src: src.into(),
            dest,
            mode: mode.into(),
            owner: owner.into(),
            sha256: sha,
            extra: Default::default(),
        });
    }

    fn services(&mut self, node: &str, services: &[&str]) {
        self.node_mut(node).services = services.iter().map(|s| s.to_string()).collect();
    }

    fn node_mut(&mut self, node: &str) -> &mut Node {
        self.doc.nodes.iter_mut().find(|n| n.name == node).unwrap()
    }

    fn doc_text(&self) -> String {
        serde_json::to_string_pretty(&self.doc).unwrap() + "\n"
    }

    /// The common flags: this world's dir, key and known_hosts, and each node's sshd.
    fn args(&self, nodes: &[(&str, &Sshd)]) -> Vec<String> {
        let mut args = vec![
            "--dir".to_string(),
            self.path("out").display().to_string(),
            "--identity".into(),
            self.path("id_ed25519").display().to_string(),
            "--known-hosts".into(),
            self.known_hosts().display().to_string(),
            "--timeout".into(),
            "60".into(),
        ];
        for (node, sshd) in nodes {
            args.push("--address".into());
            args.push(format!("{node}={}", sshd.address()));
        }
        args
    }

    fn spawn(&self, args: &[String]) -> std::process::Child {
        self.spawn_env(args, &[])
    }

    /// Runs node-push with no agent unless `env` gives one.
    fn spawn_env(&self, args: &[String], env: &[(&str, PathBuf)]) -> std::process::Child {
        self.spawn_command(Command::new(BIN), args, env)
    }

    /// Runs `command` (node-push, perhaps behind `ip netns exec`) with the document on stdin.
    fn spawn_command(
        &self,
        mut command: Command,
        args: &[String],
        env: &[(&str, PathBuf)],
    ) -> std::process::Child {
        let mut child = command
            .args(args)
            .env_remove("SSH_AUTH_SOCK")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node-push");
        use std::io::Write;
        // A bad flag ends node-push before it reads stdin: a closed pipe is then no test failure.
        let written = child
            .stdin
            .take()
            .unwrap()
            .write_all(self.doc_text().as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child
    }

    fn run(&self, args: &[String]) -> Output {
        self.spawn(args).wait_with_output().unwrap()
    }

    /// Runs with `--report FILE` and returns the output and the parsed report.
    fn run_report(&self, args: &[String]) -> (Output, Report) {
        let report = self.path("report.json");
        let _ = fs::remove_file(&report);
        let mut args = args.to_vec();
        args.extend(["--report".into(), report.display().to_string()]);
        let out = self.run(&args);
        let text = fs::read_to_string(&report).unwrap_or_else(|_| {
            panic!(
                "no report; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out, parse_report(&text))
    }
}

/// The report as node-push's own type reads it: `deny_unknown_fields` makes its shape the
/// contract.
fn parse_report(text: &str) -> Report {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a report ({e}): {text}"))
}

/// stdout as the document the next tool reads.
fn printed_document(out: &Output) -> Document {
    let text = std::str::from_utf8(&out.stdout).expect("stdout is UTF-8");
    hardway::doc::parse(text, "node-push's stdout").unwrap_or_else(|e| panic!("{e}"))
}

fn node<'a>(report: &'a Report, name: &str) -> &'a NodeReport {
    report
        .nodes
        .iter()
        .find(|n| n.node == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

/// The stub systemctl's calls that change something: without the `is-active` queries of the
/// compare (the stub answers them with nothing, so no service counts as running).
fn changes(sshd: &Sshd) -> Vec<String> {
    sshd.systemctl_calls()
        .into_iter()
        .filter(|c| !c.starts_with("is-active"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const UNIT: &str = "[Service]\nExecStart=/usr/bin/etcd --cert-file=CERT\n";

/// The document's files land with their content, mode and owner; units reload, services start in
/// order and the one whose files changed restarts; a second run uploads nothing and restarts
/// nothing; a changed file is the only one uploaded; `--dry-run` changes nothing.
#[test]
fn installs_files_then_a_second_run_changes_nothing() {
    let mut w = World::new(&["node-1"]);
    let sshd = w.sshd();
    let cert_dest = w.dest("node-1", "etc/etcd/etcd.pem").display().to_string();
    w.file(
        "node-1",
        "pki/etcd.pem",
        "etc/etcd/etcd.pem",
        "0644",
        "root:root",
        b"CERT v1\n",
    );
    w.file(
        "node-1",
        "pki/etcd-key.pem",
        "etc/etcd/private/etcd-key.pem",
        "0600",
        "nobody:nogroup",
        b"KEY\n",
    );
    w.file(
        "node-1",
        "nodes/node-1/etcd.service",
        "etc/systemd/system/etcd.service",
        "0644",
        "root:root",
        UNIT.replace("CERT", &cert_dest).as_bytes(),
    );
    w.services("node-1", &["etcd.service", "kubelet.service"]);
    let mut args = w.args(&[("node-1", &sshd)]);
    args.push("--accept-new".into());

    let (out, report) = w.run_report(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        sshd.log()
    );
    // stdout is the document, untouched, for the pipeline.
    assert_eq!(printed_document(&out), w.doc);
    let n = node(&report, "node-1");
    assert!(n.ok);
    assert_eq!(n.files_changed.len(), 3);
    assert_eq!(n.host_key, Some(sshd.host_fingerprint()));
    assert!(n.host_key_recorded);

    let cert = w.dest("node-1", "etc/etcd/etcd.pem");
    let key = w.dest("node-1", "etc/etcd/private/etcd-key.pem");
    assert_eq!(fs::read(&cert).unwrap(), b"CERT v1\n");
    assert_eq!(fs::read(&key).unwrap(), b"KEY\n");
    let meta = fs::metadata(&key).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "nobody:nogroup");
    let meta = fs::metadata(&cert).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    // No temporary file is left beside the targets.
    let leftovers: Vec<_> = fs::read_dir(cert.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("node-push-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A unit changed: daemon-reload first. etcd's unit changed and mentions the cert: etcd
    // restarts; kubelet just starts.
    assert_eq!(
        changes(&sshd),
        [
            "daemon-reload",
            "enable etcd.service",
            "restart etcd.service",
            "enable --now kubelet.service"
        ]
    );
    assert!(n.daemon_reload);
    assert_eq!(n.services_restarted, ["etcd.service"]);
    assert_eq!(n.services_started, ["kubelet.service"]);
    // --accept-new recorded exactly the line OpenSSH would have.
    assert_eq!(
        fs::read_to_string(w.known_hosts()).unwrap().trim(),
        sshd.known_hosts_line()
    );

    // Second run: nothing uploaded, nothing restarted, files untouched (same inode and mtime).
    let before = fs::metadata(&cert).unwrap();
    let calls_before = changes(&sshd).len();
    let mut again = w.args(&[("node-1", &sshd)]);
    again.push("--no-start".into());
    let (out, report) = w.run_report(&again);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let n = node(&report, "node-1");
    assert!(n.files_changed.is_empty(), "{n:?}");
    assert_eq!(n.files_unchanged.len(), 3);
    assert_eq!(n.bytes_uploaded, 0);
    assert!(!n.host_key_recorded);
    let after = fs::metadata(&cert).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    assert_eq!(
        changes(&sshd).len(),
        calls_before,
        "--no-start calls nothing"
    );

    // Without --no-start a clean run only re-asserts enable --now (a no-op in systemd).
    let (out, report) = w.run_report(&w.args(&[("node-1", &sshd)]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(node(&report, "node-1").services_restarted.is_empty());
    assert_eq!(
        changes(&sshd)[calls_before..],
        ["enable --now etcd.service", "enable --now kubelet.service"]
    );

    // A changed cert: --dry-run reports it and touches nothing.
    w.file(
        "node-1",
        "pki/etcd.pem",
        "etc/etcd/etcd.pem",
        "0644",
        "root:root",
        b"CERT v2\n",
    );
    let calls_before = changes(&sshd).len();
    let mut dry = w.args(&[("node-1", &sshd)]);
    dry.push("--dry-run".into());
    let (out, report) = w.run_report(&dry);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(report.dry_run);
    let n = node(&report, "node-1");
    assert_eq!(n.files_changed, [cert.display().to_string()]);
    assert_eq!(n.services_restarted, ["etcd.service"]);
    assert_eq!(fs::read(&cert).unwrap(), b"CERT v1\n");
    assert_eq!(changes(&sshd).len(), calls_before);

    // The real run uploads only the cert and restarts etcd, whose unit mentions it.
    let (out, report) = w.run_report(&w.args(&[("node-1", &sshd)]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let n = node(&report, "node-1");
    assert_eq!(n.files_changed, [cert.display().to_string()]);
    assert_eq!(n.bytes_uploaded, 8);
    assert_eq!(fs::read(&cert).unwrap(), b"CERT v2\n");
    assert_eq!(
        changes(&sshd)[calls_before..],
        [
            "enable etcd.service",
            "restart etcd.service",
            "enable --now kubelet.service"
        ]
    );

    // A mode changed on the node is put back without an upload.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let (out, report) = w.run_report(&w.args(&[("node-1", &sshd)]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let n = node(&report, "node-1");
    assert_eq!(n.files_changed, [key.display().to_string()]);
    assert_eq!(n.bytes_uploaded, 0);
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o7777,
        0o600
    );
}

/// Units in systemd's directory trigger one daemon-reload before the services start, in order.
#[test]
fn a_changed_unit_reloads_systemd_before_starting_in_order() {
    let mut w = World::new(&["node-1"]);
    let sshd = w.sshd();
    let name = "hardway-test.service";
    w.file(
        "node-1",
        "unit",
        &format!("usr/lib/systemd/system/{name}"),
        "0644",
        "root:root",
        b"[Service]\nExecStart=/bin/true\n",
    );
    w.file(
        "node-1",
        "dropin",
        "etc/systemd/system/b.service.d/10-x.conf",
        "0644",
        "root:root",
        b"[Service]\n",
    );
    w.services("node-1", &["a.service", name, "b.service"]);
    let mut args = w.args(&[("node-1", &sshd)]);
    args.push("--accept-new".into());
    let (out, report) = w.run_report(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(node(&report, "node-1").daemon_reload);
    assert_eq!(
        changes(&sshd),
        [
            "daemon-reload".to_string(),
            "enable --now a.service".into(),
            format!("enable {name}"),
            format!("restart {name}"),
            "enable b.service".into(),
            "restart b.service".into(),
        ]
    );
}

/// A host whose key differs from known_hosts is refused with both fingerprints, and nothing is
/// written to it; an unknown host without --accept-new is refused too.
#[test]
fn a_changed_host_key_is_refused_and_nothing_is_written() {
    let mut w = World::new(&["node-1"]);
    let sshd = w.sshd();
    w.file("node-1", "a.txt", "etc/a.txt", "0644", "root:root", b"A\n");
    w.services("node-1", &["etcd.service"]);
    // Record another key for this host:port.
    let other = w.path("other_host_key");
    sshd::keygen(&other, "other");
    let other_pub = fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut fields = other_pub.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}",
        sshd.port,
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    sshd::append_line(&w.known_hosts(), &line);
    let mut args = w.args(&[("node-1", &sshd)]);
    args.push("--accept-new".into());
    let (out, report) = w.run_report(&args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "no document on failure");
    let error = node(&report, "node-1")
        .error
        .clone()
        .expect("the node failed with an error");
    assert!(error.contains("HOST KEY CHANGED"), "{error}");
    assert!(error.contains(&sshd.host_fingerprint()), "{error}");
    assert!(
        error.contains(&sshd::fingerprint(&other.with_extension("pub"))),
        "{error}"
    );
    assert!(stderr(&out).contains("node-1"), "{}", stderr(&out));
    assert!(!w.dest("node-1", "etc").exists(), "nothing was written");
    assert!(changes(&sshd).is_empty());
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "never logged in: {}",
        sshd.log()
    );
    // known_hosts was not touched by --accept-new.
    assert_eq!(fs::read_to_string(w.known_hosts()).unwrap().trim(), line);

    // Unknown host, no --accept-new: refused, known_hosts unchanged.
    fs::write(w.known_hosts(), "").unwrap();
    let (out, report) = w.run_report(&w.args(&[("node-1", &sshd)]));
    assert_eq!(out.status.code(), Some(3));
    let error = node(&report, "node-1")
        .error
        .clone()
        .expect("the node failed with an error");
    assert!(error.contains("unknown host key"), "{error}");
    assert!(error.contains(&sshd.host_fingerprint()), "{error}");
    assert_eq!(fs::read_to_string(w.known_hosts()).unwrap(), "");
    assert!(!w.dest("node-1", "etc").exists());
}

/// Hashed entries (`ssh-keygen -H`, Debian's default HashKnownHosts) are matched too.
#[test]
fn a_hashed_known_hosts_entry_is_accepted() {
    let mut w = World::new(&["node-1"]);
    let sshd = w.sshd();
    w.file("node-1", "a.txt", "etc/a.txt", "0640", "root:root", b"A\n");
    fs::write(
        w.known_hosts(),
        format!("# comment\n@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIW7ql9FxDQKuUWVzDuA/RWyjW4jCQpo4RvQgV5eGY69\n{}\n", sshd.known_hosts_line()),
    )
    .unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(w.known_hosts())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = fs::read_to_string(w.known_hosts()).unwrap();
    assert!(
        text.contains("|1|") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let (out, report) = w.run_report(&w.args(&[("node-1", &sshd)]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!node(&report, "node-1").host_key_recorded);
    assert_eq!(fs::read(w.dest("node-1", "etc/a.txt")).unwrap(), b"A\n");
}

/// A closed port and a server that never answers fail alone; the other nodes are done; exit 3.
#[test]
fn an_unreachable_node_fails_alone() {
    let mut w = World::new(&["node-1", "node-2", "node-3", "node-4"]);
    let one = w.sshd();
    let two = w.sshd();
    let closed = sshd::free_port();
    // Accepts TCP but never speaks SSH: only --timeout ends it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for n in ["node-1", "node-2", "node-3", "node-4"] {
        w.file(
            n,
            &format!("{n}.txt"),
            "etc/hosts",
            "0644",
            "root:root",
            n.as_bytes(),
        );
    }
    let mut args = w.args(&[("node-1", &one), ("node-2", &two)]);
    args.extend([
        "--address".into(),
        format!("node-3=127.0.0.1:{closed}"),
        "--address".into(),
        format!("node-4=127.0.0.1:{silent_port}"),
        "--accept-new".into(),
        "--timeout".into(),
        "3".into(),
        "-o".into(),
        "table".into(),
    ]);
    let started = Instant::now();
    let out = w.run(&args);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("NODE") && err.contains("STATUS"),
        "table on stderr: {err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("node-3") && l.contains("failed")),
        "{err}"
    );
    assert!(err.contains("cannot connect"), "{err}");
    assert!(err.contains("timed out after 3 s"), "{err}");
    for n in ["node-1", "node-2"] {
        assert_eq!(fs::read(w.dest(n, "etc/hosts")).unwrap(), n.as_bytes());
    }
    assert!(!w.dest("node-3", "etc/hosts").exists());
    drop(silent);
}

/// Killing the connection in the middle of a large upload leaves the old file whole; the next
/// run completes it.
#[test]
fn an_interrupted_upload_leaves_the_old_file_and_the_next_run_completes_it() {
    let mut w = World::new(&["node-1"]);
    let sshd = w.sshd();
    w.file(
        "node-1",
        "big.bin",
        "var/lib/big.bin",
        "0644",
        "root:root",
        b"old\n",
    );
    let mut args = w.args(&[("node-1", &sshd)]);
    args.push("--accept-new".into());
    let out = w.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dest = w.dest("node-1", "var/lib/big.bin");
    assert_eq!(fs::read(&dest).unwrap(), b"old\n");

    // 16 MiB that is not all zeros: 64 chunks of 256 KiB; the cut comes after the first few.
    let big: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect();
    w.file(
        "node-1",
        "big.bin",
        "var/lib/big.bin",
        "0644",
        "root:root",
        &big,
    );
    let temp = w.dest("node-1", "var/lib/.big.bin.node-push-tmp");
    let child = w.spawn(&w.args(&[("node-1", &sshd)]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let size = fs::metadata(&temp).map(|m| m.len()).unwrap_or(0);
        if size > 256 << 10 {
            sshd.kill_connections();
            break;
        }
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "killed mid-transfer: {}",
        stderr(&out)
    );
    assert_eq!(fs::read(&dest).unwrap(), b"old\n", "the old file is intact");

    let (out, report) = w.run_report(&w.args(&[("node-1", &sshd)]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(node(&report, "node-1").bytes_uploaded, big.len() as u64);
    assert!(fs::read(&dest).unwrap() == big, "the new file landed whole");
    assert!(!temp.exists());
}

/// `--only` and `--roles` push to a subset; the others are not contacted.
#[test]
fn only_and_roles_select_nodes() {
    let mut w = World::new(&["node-1", "node-2", "node-3"]);
    w.node_mut("node-3").roles = vec![Role::Lb];
    let sshd = w.sshd();
    for n in ["node-1", "node-2", "node-3"] {
        w.file(
            n,
            &format!("{n}.txt"),
            "etc/motd",
            "0644",
            "root:root",
            n.as_bytes(),
        );
    }
    let mut args = w.args(&[("node-1", &sshd), ("node-2", &sshd), ("node-3", &sshd)]);
    args.push("--accept-new".into());
    let mut only = args.clone();
    only.extend(["--only".into(), "node-2".into()]);
    let (out, report) = w.run_report(&only);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pushed: Vec<&str> = report.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(pushed, ["node-2"]);
    assert!(w.dest("node-2", "etc/motd").exists());
    assert!(!w.dest("node-1", "etc/motd").exists());

    let mut roles = args.clone();
    roles.extend(["--roles".into(), "lb".into()]);
    let (out, report) = w.run_report(&roles);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pushed: Vec<&str> = report.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(pushed, ["node-3"]);
    assert!(!w.dest("node-1", "etc/motd").exists());

    // Three nodes behind one sshd, pushed at once to an empty known_hosts: its key is
    // recorded once.
    fs::remove_file(w.known_hosts()).unwrap();
    let out = w.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(w.known_hosts()).unwrap(),
        format!("{}\n", sshd.known_hosts_line())
    );

    // A report path that is not a regular file (a FIFO here, /dev/null for users) is written
    // into, never renamed over.
    let fifo = w.path("report.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
    };
    let mut to_fifo = args.clone();
    to_fifo.extend(["--report".into(), fifo.display().to_string()]);
    let out = w.run(&to_fifo);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = parse_report(&reader.join().unwrap());
    assert_eq!(report.nodes.len(), 3);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    // `--report -` puts the report on stdout instead of the document.
    let mut to_stdout = args.clone();
    to_stdout.extend(["--report".into(), "-".into()]);
    let out = w.run(&to_stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = parse_report(std::str::from_utf8(&out.stdout).unwrap());
    assert_eq!(report.nodes.len(), 3);
}

/// Bad input exits 2 with one line on stderr, nothing on stdout, and contacts no host.
#[test]
fn bad_input_exits_2_before_any_connection() {
    let mut w = World::new(&["node-1"]);
    w.file("node-1", "a.txt", "etc/a", "0644", "root:root", b"A\n");
    type Setup = Box<dyn Fn(&mut World)>;
    let cases: Vec<(Vec<String>, Setup, &str)> = vec![
        (
            vec!["--only".into(), "nope".into()],
            Box::new(|_| {}),
            "no node named \"nope\"",
        ),
        (
            vec![],
            Box::new(|w| fs::remove_file(w.path("out/a.txt")).unwrap()),
            "out/a.txt",
        ),
        (
            vec![],
            Box::new(|w| fs::write(w.path("out/a.txt"), "changed").unwrap()),
            "nodes[0].files[0].sha256",
        ),
        (
            vec![],
            Box::new(|w| w.node_mut("node-1").files[0].dest = "relative/path".into()),
            "nodes[0].files[0].dest",
        ),
        (
            vec!["--roles".into(), "boss".into()],
            Box::new(|_| {}),
            "unknown role",
        ),
        (
            vec!["--address".into(), "node-1".into()],
            Box::new(|_| {}),
            "--address",
        ),
    ];
    for (extra, setup, expect) in cases {
        let mut world = World::new(&["node-1"]);
        world.doc = w.doc.clone();
        fs::create_dir_all(world.path("out")).unwrap();
        fs::write(world.path("out/a.txt"), "A\n").unwrap();
        setup(&mut world);
        let mut args = world.args(&[]);
        args.extend(extra);
        let out = world.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{expect}: {err}");
        assert!(out.stdout.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("node-push: error: "), "{err}");
        assert!(err.contains(expect), "{expect}: {err}");
    }
}

/// Without --identity and --address: the SSH agent logs in, and the node's first IP on --port is
/// where it connects. Without an agent or a default key, it is bad input (exit 2).
#[test]
fn logs_in_with_the_agent_at_the_first_ip_on_port() {
    let mut w = World::new(&["node-1"]);
    let sshd = w.sshd();
    w.node_mut("node-1").ips = vec!["127.0.0.1".parse().unwrap()];
    w.file("node-1", "a.txt", "etc/a.txt", "0600", "root:root", b"A\n");
    let home = w.path("home");
    fs::create_dir_all(&home).unwrap();
    let args = vec![
        "--dir".to_string(),
        w.path("out").display().to_string(),
        "--known-hosts".into(),
        w.known_hosts().display().to_string(),
        "--port".into(),
        sshd.port.to_string(),
        "--accept-new".into(),
    ];

    let out = w
        .spawn_env(&args, &[("HOME", home.clone())])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no SSH identity"), "{}", stderr(&out));

    struct Agent(std::process::Child);
    impl Drop for Agent {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let sock = w.path("agent.sock");
    let _agent = Agent(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .expect("run ssh-agent (openssh-client)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "ssh-agent did not make its socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let added = Command::new("ssh-add")
        .arg(w.path("id_ed25519"))
        .env("SSH_AUTH_SOCK", &sock)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success());
    let out = w
        .spawn_env(&args, &[("HOME", home), ("SSH_AUTH_SOCK", sock)])
        .wait_with_output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        sshd.log()
    );
    assert_eq!(fs::read(w.dest("node-1", "etc/a.txt")).unwrap(), b"A\n");
    assert!(stderr(&out).contains(&format!("127.0.0.1:{}", sshd.port)));
}

/// A name lookup that never gets an answer is bounded by --timeout: inside a network namespace
/// whose resolv.conf names a nameserver that nft drops queries to on arrival, answering nothing (glibc alone would
/// wait 30 s × 5 attempts), the node fails after --timeout with the lookup named as the cause.
#[test]
fn a_name_lookup_that_never_answers_is_bounded_by_timeout() {
    let mut w = World::new(&["node-1"]);
    w.file("node-1", "a.txt", "etc/a.txt", "0644", "root:root", b"A\n");
    let ns = testkit::netns::Netns::new("np-dns");
    ns.add_addr("lo", "10.253.0.53/32");
    // `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf.
    struct EtcNetns(PathBuf);
    impl Drop for EtcNetns {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let etc = EtcNetns(PathBuf::from("/etc/netns").join(ns.name()));
    fs::create_dir_all(&etc.0).unwrap();
    fs::write(
        etc.0.join("resolv.conf"),
        "nameserver 10.253.0.53\noptions timeout:30 attempts:5\n",
    )
    .unwrap();
    ns.run_ok("nft", &["add table inet nodepush"]);
    ns.run_ok(
        "nft",
        &["add chain inet nodepush in { type filter hook input priority 0 ; }"],
    );
    ns.run_ok(
        "nft",
        &["add rule inet nodepush in meta l4proto { tcp, udp } th dport 53 drop"],
    );
    let mut args = w.args(&[]);
    args.extend([
        "--address".into(),
        "node-1=never-answered.example.test:22".into(),
        "--timeout".into(),
        "2".into(),
        "--accept-new".into(),
    ]);
    let report = w.path("report.json");
    args.extend(["--report".into(), report.display().to_string()]);
    let out = w
        .spawn_command(ns.command(BIN), &args, &[])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report: node_push::report::Report =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let error = report.nodes[0].error.clone().unwrap_or_default();
    assert!(
        error.starts_with("cannot resolve never-answered.example.test: no answer within 2 s"),
        "{error}"
    );
}

/// A "node" whose services all run: the sshd's stub systemctl answers `active` to the compare's
/// `is-active` (and still records every call), so each changed unit is a restart of a running
/// service.
fn all_running(sshd: &Sshd) {
    let stub = sshd.dir().join("bin/systemctl");
    let log = sshd.dir().join("systemctl.log");
    fs::write(
        &stub,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nif [ \"$1\" = is-active ]; then shift; [ \"$1\" = -- ] && shift; \
             for u; do echo active; done; fi\nexit 0\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Control-plane nodes restart one at a time, then workers --batch at a time; a node that
/// restarts nothing goes first, with no gate. The gate runs once before the first restart and
/// after each wave, with the wave's nodes in its environment, and its stdout goes to stderr:
/// stdout stays the document. `--dry-run` shows the waves and runs no gate; without --between
/// the order is the same and the verdict is not-given.
#[test]
fn workers_restart_in_batches_after_the_control_plane_one_node_at_a_time() {
    let names = ["w-1", "cp-1", "w-2", "cp-2", "w-3", "quiet"];
    let mut w = World::new(&names);
    let sshd = w.sshd();
    all_running(&sshd);
    let write_units = |w: &mut World, version: &str| {
        for name in names {
            let role = if name.starts_with("cp") {
                Role::Controller
            } else {
                Role::Worker
            };
            w.node_mut(name).roles = vec![role];
            let unit = format!("[Service]\nExecStart=/bin/true {version}\n");
            w.file(
                name,
                &format!("{name}.service"),
                "etc/systemd/system/svc.service",
                "0644",
                "root:root",
                unit.as_bytes(),
            );
            w.services(name, &["svc.service"]);
        }
        // Its file restarts no service: nothing for the gate to check.
        w.services("quiet", &[]);
    };
    write_units(&mut w, "v1");
    let gate_log = w.path("gate.log");
    let gate = format!(
        "echo \"$NODE_PUSH_WAVE $NODE_PUSH_NODES\" >> '{}'; echo GATE-STDOUT",
        gate_log.display()
    );
    let all: Vec<(&str, &Sshd)> = names.iter().map(|n| (*n, &sshd)).collect();
    let mut args = w.args(&all);
    args.extend(["--accept-new".into(), "--batch".into(), "2".into()]);
    let mut gated = args.clone();
    gated.extend(["--between".into(), gate.clone()]);

    let (out, report) = w.run_report(&gated);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(printed_document(&out), w.doc);
    assert!(stderr(&out).contains("GATE-STDOUT"), "{}", stderr(&out));
    let waves = |report: &Report| -> Vec<(String, usize, Verdict)> {
        report
            .nodes
            .iter()
            .map(|n| (n.node.clone(), n.wave, n.gate.verdict))
            .collect()
    };
    let expect = |verdict: Verdict| -> Vec<(String, usize, Verdict)> {
        [
            ("w-1", 4),
            ("cp-1", 2),
            ("w-2", 4),
            ("cp-2", 3),
            ("w-3", 5),
            ("quiet", 1),
        ]
        .iter()
        .map(|(n, wave)| {
            let v = if *wave == 1 {
                Verdict::NotNeeded
            } else {
                verdict
            };
            (n.to_string(), *wave, v)
        })
        .collect()
    };
    assert_eq!(waves(&report), expect(Verdict::Passed));
    assert_eq!(
        fs::read_to_string(&gate_log)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        ["2 cp-1", "2 cp-1", "3 cp-2", "4 w-1 w-2", "5 w-3"],
        "once before the first restart, then after each rolling wave"
    );
    let restarts = changes(&sshd)
        .iter()
        .filter(|c| c.starts_with("restart"))
        .count();
    assert_eq!(restarts, 5);

    // --dry-run: the same waves, no gate, nothing restarted.
    write_units(&mut w, "v2");
    let mut dry = gated.clone();
    dry.push("--dry-run".into());
    let (out, report) = w.run_report(&dry);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(waves(&report), expect(Verdict::NotRun));
    assert_eq!(fs::read_to_string(&gate_log).unwrap().lines().count(), 5);
    let restarts_now = changes(&sshd)
        .iter()
        .filter(|c| c.starts_with("restart"))
        .count();
    assert_eq!(restarts_now, 5);

    // No --between: the same order, the verdict says no gate was given.
    let (out, report) = w.run_report(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(waves(&report), expect(Verdict::NotGiven));
    assert_eq!(fs::read_to_string(&gate_log).unwrap().lines().count(), 5);
}
