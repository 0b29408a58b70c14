//! The attacker's tests for the document and the command line (issue 15, classes 3–8): each case
//! patches a valid fixture document (tests/fixtures/lab.json) or the flags, runs a release-like
//! build of one tool, and asserts the contract: the documented exit code, exactly one stderr line
//! that names where the bad value is, nothing on stdout, nothing written under a fresh `--dir`,
//! the victim file untouched, no program run (a marker file the hostile `command=` would create),
//! no TCP connection made (node-push), no route changed (route-sync, in a network namespace).
//!
//! The binaries come from `testkit::bin` (make test builds the workspace first). Every case here
//! broke the contract before issue 15's fixes: run this binary with CARGO_TARGET_DIR pointing at
//! an older build to see them fail.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};
use testkit::netns::Netns;

/// The most an error line may be: a 10 MB value must not come back whole.
const LINE_MAX: usize = 2100;

/// One hostile case: the JSON-patch (`replace`/`add` at a JSON pointer) applied to the fixture,
/// the tool and its arguments, the exit code, and what the error line must name.
struct Case {
    name: &'static str,
    patch: Vec<(&'static str, Value)>,
    tool: &'static str,
    args: &'static [&'static str],
    code: i32,
    names: &'static str,
}

fn case(
    name: &'static str,
    patch: Vec<(&'static str, Value)>,
    tool: &'static str,
    args: &'static [&'static str],
    code: i32,
    names: &'static str,
) -> Case {
    Case {
        name,
        patch,
        tool,
        args,
        code,
        names,
    }
}

const MKCERTS: &[&str] = &["--dir", "@OUT@", "-f", "@DOC@"];
const MKUNITS: &[&str] = &["--dir", "@OUT@", "-f", "@DOC@"];
const CIDR_ALLOC: &[&str] = &["-f", "@DOC@"];
const MKVM_STATUS: &[&str] = &["status", "-f", "@DOC@"];
const MKVM_DRY_RUN: &[&str] = &[
    "up",
    "--dry-run",
    "--image",
    "@IMG@",
    "--ssh-key",
    "@PUB@",
    "--pool-dir",
    "@OUT@",
    "-f",
    "@DOC@",
];
const NODE_PUSH: &[&str] = &[
    "-f",
    "@DOC@",
    "--dir",
    "@SRC@",
    "--identity",
    "@KEY@",
    "--known-hosts",
    "@KH@",
    "--address",
    "node-1=@ADDR@",
    "--only",
    "node-1",
    "--timeout",
    "3",
];

/// A file entry of node 1 whose `src` is `src`.
fn file_entry(src: &str) -> Value {
    json!([{"src": src, "dest": "/etc/hardway/x.pem", "mode": "0600", "owner": "root:root", "sha256": ""}])
}

/// Classes 3 (strings), 4 (URIs), 5 (node-push sources), 7 (panics) and 8 (one line).
fn cases() -> Vec<Case> {
    let nl = "\nExecStartPre=/bin/sh -c 'touch @MARKER@'";
    let huge = "a".repeat(10 << 20);
    vec![
        // 3. Every string from the document is validated before it lands anywhere.
        case(
            "newline in cluster.name (mkunits: ExecStartPre= injection)",
            vec![("/cluster/name", json!(format!("lab{nl}")))],
            "mkunits",
            MKUNITS,
            2,
            "cluster.name",
        ),
        case(
            "newline in cluster.name (mkcerts)",
            vec![("/cluster/name", json!(format!("lab{nl}")))],
            "mkcerts",
            MKCERTS,
            2,
            "cluster.name",
        ),
        case(
            "newline in an fqdn (mkunits: /etc/hosts and units)",
            vec![("/nodes/1/fqdn", json!(format!("node-2.example.com{nl}")))],
            "mkunits",
            MKUNITS,
            2,
            "nodes[1].fqdn",
        ),
        case(
            "newline in an fqdn (mkcerts: SANs)",
            vec![("/nodes/1/fqdn", json!("node-2.example.com\n10.0.0.1 evil"))],
            "mkcerts",
            MKCERTS,
            2,
            "nodes[1].fqdn",
        ),
        case(
            "CR in cluster.domain",
            vec![("/cluster/domain", json!("example.com\rExecStart=/x"))],
            "mkunits",
            MKUNITS,
            2,
            "cluster.domain",
        ),
        case(
            "NUL in cluster.cluster_domain",
            vec![("/cluster/cluster_domain", json!("cluster.local\u{0}x"))],
            "mkunits",
            MKUNITS,
            2,
            "cluster.cluster_domain",
        ),
        case(
            "U+2028 in cluster.name",
            vec![("/cluster/name", json!("lab\u{2028}x"))],
            "mkcerts",
            MKCERTS,
            2,
            "cluster.name",
        ),
        case(
            "U+2029 in an fqdn",
            vec![("/nodes/0/fqdn", json!("node-1\u{2029}.example.com"))],
            "mkunits",
            MKUNITS,
            2,
            "nodes[0].fqdn",
        ),
        case(
            "DEL in cluster.domain",
            vec![("/cluster/domain", json!("example.com\u{7f}"))],
            "mkcerts",
            MKCERTS,
            2,
            "cluster.domain",
        ),
        case(
            "newline in kubernetes_version",
            vec![("/cluster/kubernetes_version", json!(format!("v1.37.2{nl}")))],
            "mkunits",
            MKUNITS,
            2,
            "cluster.kubernetes_version",
        ),
        case(
            "space in cluster.name",
            vec![("/cluster/name", json!("lab x"))],
            "mkcerts",
            MKCERTS,
            2,
            "cluster.name",
        ),
        case(
            "userinfo in api.endpoint",
            vec![(
                "/cluster/api/endpoint",
                json!("https://u:secret@10.240.0.2:6443"),
            )],
            "mkcerts",
            MKCERTS,
            2,
            "cluster.api.endpoint",
        ),
        case(
            "newline in api.endpoint",
            vec![(
                "/cluster/api/endpoint",
                json!("https://10.240.0.2:6443\nserver: https://evil"),
            )],
            "mkcerts",
            MKCERTS,
            2,
            "cluster.api.endpoint",
        ),
        case(
            "XML in hypervisor.network",
            vec![(
                "/hypervisor/network",
                json!("lab'/><forward mode='bridge'/><x a='"),
            )],
            "mkvm",
            MKVM_STATUS,
            2,
            "hypervisor.network",
        ),
        case(
            "path in hypervisor.pool",
            vec![("/hypervisor/pool", json!("../../etc"))],
            "mkvm",
            MKVM_DRY_RUN,
            2,
            "hypervisor.pool",
        ),
        case(
            "XML in a MAC",
            vec![("/nodes/0/mac", json!("52:54:00:6c:54:0e'/><x a='"))],
            "mkvm",
            MKVM_DRY_RUN,
            2,
            "nodes[0].mac",
        ),
        case(
            "newline in a service name",
            vec![(
                "/nodes/0/services",
                json!(["etcd.service\nExecStartPre=/x"]),
            )],
            "node-push",
            NODE_PUSH,
            2,
            "nodes[0].services[0]",
        ),
        case(
            "newline in a file's dest",
            vec![(
                "/nodes/0/files",
                json!([{"src": "pki/ok.pem", "dest": "/etc/x\n/etc/y", "mode": "0644", "owner": "root:root", "sha256": ""}]),
            )],
            "node-push",
            NODE_PUSH,
            2,
            "nodes[0].files[0].dest",
        ),
        case(
            "control character in a cert subject",
            vec![(
                "/pki",
                json!({"dir": "pki", "algorithm": "ecdsa-p256", "certs": [{"name": "ca", "path": "pki/ca.pem", "subject": "CN=x\u{1b}[2J", "issuer": "CN=x", "not_after": "2030", "sha256": ""}]}),
            )],
            "mkcerts",
            MKCERTS,
            2,
            "pki.certs[0].subject",
        ),
        case(
            "relative pki.dir escaping --dir",
            vec![(
                "/pki",
                json!({"dir": "../../etc", "algorithm": "ecdsa-p256", "certs": []}),
            )],
            "mkcerts",
            MKCERTS,
            2,
            "pki.dir",
        ),
        case(
            "a 10 MB cluster.name is cut in the error",
            vec![("/cluster/name", json!(huge.clone()))],
            "mkcerts",
            MKCERTS,
            2,
            "cluster.name",
        ),
        case(
            "a 10 MB node name is cut in the error",
            vec![("/nodes/0/name", json!(huge))],
            "mkunits",
            MKUNITS,
            2,
            "nodes[0].name",
        ),
        // 4. No program run on the document's say-so, before libvirt is ever opened.
        case(
            "qemu+ext command= in hypervisor.uri (mkvm status)",
            vec![("/hypervisor/uri", json!("qemu+ext:///system?command=@CMD@"))],
            "mkvm",
            MKVM_STATUS,
            2,
            "hypervisor.uri",
        ),
        case(
            "qemu+ext command= in hypervisor.uri (mkvm up --dry-run)",
            vec![("/hypervisor/uri", json!("qemu+ext:///system?command=@CMD@"))],
            "mkvm",
            MKVM_DRY_RUN,
            2,
            "hypervisor.uri",
        ),
        case(
            "qemu+ext command= in a node's host",
            vec![("/nodes/2/host", json!("qemu+ext:///system?command=@CMD@"))],
            "mkvm",
            MKVM_STATUS,
            2,
            "nodes[2].host",
        ),
        case(
            "qemu+ext in hypervisor.uri is refused by every tool",
            vec![("/hypervisor/uri", json!("qemu+ext:///system?command=@CMD@"))],
            "mkcerts",
            MKCERTS,
            2,
            "hypervisor.uri",
        ),
        case(
            "command= on the test driver",
            vec![("/hypervisor/uri", json!("test:///default?command=@CMD@"))],
            "mkvm",
            MKVM_STATUS,
            2,
            "hypervisor.uri",
        ),
        case(
            "command= replacing ssh",
            vec![(
                "/hypervisor/uri",
                json!("qemu+ssh://h/system?command=@CMD@"),
            )],
            "mkvm",
            MKVM_DRY_RUN,
            2,
            "hypervisor.uri",
        ),
        case(
            "netcat= on the remote shell",
            vec![("/hypervisor/uri", json!("qemu+ssh://h/system?netcat=@CMD@"))],
            "mkvm",
            MKVM_STATUS,
            2,
            "hypervisor.uri",
        ),
        case(
            "an unknown URI parameter",
            vec![("/hypervisor/uri", json!("qemu+ssh://h/system?proxy=native"))],
            "mkvm",
            MKVM_STATUS,
            2,
            "hypervisor.uri",
        ),
        case(
            "the libssh2 transport",
            vec![(
                "/hypervisor/uri",
                json!("qemu+libssh2://h/system?known_hosts_verify=ignore"),
            )],
            "mkvm",
            MKVM_STATUS,
            2,
            "hypervisor.uri",
        ),
        case(
            "a password in the URI is never echoed",
            vec![("/hypervisor/uri", json!("qemu+ssh://u:secret@h/system"))],
            "mkvm",
            MKVM_STATUS,
            2,
            "hypervisor.uri",
        ),
        case(
            "--connect qemu+ext",
            vec![],
            "mkvm",
            &[
                "--connect",
                "qemu+ext:///system?command=@CMD@",
                "status",
                "-f",
                "@DOC@",
            ],
            2,
            "--connect",
        ),
        case(
            "--connect with a password is never echoed",
            vec![],
            "mkvm",
            &[
                "--connect",
                "qemu+ssh://u:secret@h/system",
                "status",
                "-f",
                "@DOC@",
            ],
            2,
            "--connect",
        ),
        case(
            "--connect test driver with command=",
            vec![],
            "mkvm",
            &[
                "--connect",
                "test:///default?command=@CMD@",
                "up",
                "--dry-run",
                "--image",
                "@IMG@",
                "--ssh-key",
                "@PUB@",
                "-f",
                "@DOC@",
            ],
            2,
            "--connect",
        ),
        // 5. node-push reads only plain files inside --dir, refused before connecting.
        case(
            "node-push src is a symlink to a root-only file",
            vec![("/nodes/0/files", file_entry("pki/link.pem"))],
            "node-push",
            NODE_PUSH,
            2,
            "nodes[0].files[0].src",
        ),
        case(
            "node-push src is a FIFO",
            vec![("/nodes/0/files", file_entry("pki/fifo"))],
            "node-push",
            NODE_PUSH,
            2,
            "nodes[0].files[0].src",
        ),
        case(
            "node-push src goes through a symlinked directory",
            vec![("/nodes/0/files", file_entry("alias/ok.pem"))],
            "node-push",
            NODE_PUSH,
            2,
            "nodes[0].files[0].src",
        ),
        case(
            "node-push src is a directory",
            vec![("/nodes/0/files", file_entry("pki"))],
            "node-push",
            NODE_PUSH,
            2,
            "nodes[0].files[0].src",
        ),
        case(
            "node-push src is a device",
            vec![("/nodes/0/files", file_entry("pki/null"))],
            "node-push",
            NODE_PUSH,
            2,
            "nodes[0].files[0].src",
        ),
        // 6. Pod CIDRs (route-sync's own cases run in a netns below); every tool refuses them.
        case(
            "default pod CIDR (cidr-alloc)",
            vec![("/nodes/0/pod_cidrs", json!(["0.0.0.0/0"]))],
            "cidr-alloc",
            CIDR_ALLOC,
            2,
            "nodes[0].pod_cidrs[0]",
        ),
        case(
            "loopback pod CIDR (mkunits)",
            vec![("/nodes/0/pod_cidrs", json!(["127.0.0.0/8"]))],
            "mkunits",
            MKUNITS,
            2,
            "nodes[0].pod_cidrs[0]",
        ),
        case(
            "a loopback pod network (cidr-alloc)",
            vec![
                ("/cluster/networks/pod", json!(["127.0.0.0/8"])),
                ("/nodes/0/pod_cidrs", json!([])),
                ("/nodes/1/pod_cidrs", json!([])),
                ("/nodes/2/pod_cidrs", json!([])),
            ],
            "cidr-alloc",
            CIDR_ALLOC,
            2,
            "cluster.networks.pod",
        ),
        // 7. No panic on any input.
        case(
            "mkcerts --days 999999999",
            vec![],
            "mkcerts",
            &["--days", "999999999", "--dir", "@OUT@", "-f", "@DOC@"],
            2,
            "--days",
        ),
        case(
            "mkcerts --ca-days 999999999",
            vec![],
            "mkcerts",
            &["--ca-days", "999999999", "--dir", "@OUT@", "-f", "@DOC@"],
            2,
            "--ca-days",
        ),
        case(
            "mkcerts check --warn-days 999999999",
            vec![],
            "mkcerts",
            &["check", "--dir", "@OUT@", "--warn-days", "999999999"],
            2,
            "--warn-days",
        ),
        // 8. One error line from every tool.
        case(
            "a bad flag to mkvm",
            vec![],
            "mkvm",
            &["--bogus", "status"],
            2,
            "--bogus",
        ),
        case(
            "a bad flag to route-sync",
            vec![],
            "route-sync",
            &["--bogus"],
            2,
            "--bogus",
        ),
        case(
            "a missing subcommand of mkvm",
            vec![],
            "mkvm",
            &["-f", "@DOC@"],
            2,
            "mkvm",
        ),
    ]
}

/// What every case runs in: a fresh --dir, a source dir for node-push, the victim (a root-only
/// file a symlink points at), the marker a hostile program would create.
struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let world = World {
            tmp: tempfile::tempdir().unwrap(),
        };
        let p = |rel: &str| world.path(rel);
        std::fs::create_dir_all(p("out")).unwrap();
        std::fs::create_dir_all(p("src/pki")).unwrap();
        std::fs::write(p("victim"), "ROOT-ONLY SECRET\n").unwrap();
        std::fs::set_permissions(p("victim"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(p("src/pki/ok.pem"), "a plain file\n").unwrap();
        std::os::unix::fs::symlink(p("victim"), p("src/pki/link.pem")).unwrap();
        std::os::unix::fs::symlink(p("src/pki"), p("src/alias")).unwrap();
        let null = Command::new("mknod")
            .arg(p("src/pki/null"))
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(null.success(), "mknod needs root (make test runs as root)");
        let fifo = Command::new("mkfifo")
            .arg(p("src/pki/fifo"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let script = format!("#!/bin/sh\ntouch {}\n", p("marker").display());
        std::fs::write(p("hostile.sh"), script).unwrap();
        std::fs::set_permissions(p("hostile.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(p("known_hosts"), "").unwrap();
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Replaces the placeholders of an argument or a patched document.
    fn fill(&self, text: &str, addr: &str) -> String {
        let shared = shared_inputs();
        text.replace("@DOC@", &self.path("doc.json").to_string_lossy())
            .replace("@OUT@", &self.path("out").to_string_lossy())
            .replace("@SRC@", &self.path("src").to_string_lossy())
            .replace("@CMD@", &self.path("hostile.sh").to_string_lossy())
            .replace("@MARKER@", &self.path("marker").to_string_lossy())
            .replace("@KH@", &self.path("known_hosts").to_string_lossy())
            .replace("@IMG@", &shared.join("base.qcow2").to_string_lossy())
            .replace("@PUB@", &shared.join("id_ed25519.pub").to_string_lossy())
            .replace("@KEY@", &shared.join("id_ed25519").to_string_lossy())
            .replace("@ADDR@", addr)
    }

    /// Asserts nothing was written under --dir, the victim is as it was, no program ran.
    fn assert_untouched(&self, name: &str) {
        let written: Vec<_> = walk(&self.path("out"));
        assert!(written.is_empty(), "{name}: wrote {written:?}");
        assert_eq!(
            std::fs::read_to_string(self.path("victim")).unwrap(),
            "ROOT-ONLY SECRET\n",
            "{name}: the victim changed"
        );
        assert!(
            !self.path("marker").exists(),
            "{name}: the hostile program ran"
        );
    }
}

/// Inputs every case shares and that take a moment to make: a qcow2 base image and an SSH key.
fn shared_inputs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        testkit::run_ok(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2"])
                .arg(dir.path().join("base.qcow2"))
                .arg("1G"),
        );
        testkit::sshd::keygen(&dir.path().join("id_ed25519"), "hostile");
        dir
    })
    .path()
}

/// Every file and directory under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// The fixture with a JSON-patch applied: each (pointer, value) replaces or adds that member.
fn patched(patch: &[(&str, Value)]) -> Value {
    let text =
        std::fs::read_to_string(testkit::workspace_root().join("tests/fixtures/lab.json")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    for (pointer, value) in patch {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = doc
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{pointer}: no parent"));
        match parent {
            Value::Object(map) => {
                map.insert(key.to_string(), value.clone());
            }
            Value::Array(items) => items[key.parse::<usize>().unwrap()] = value.clone(),
            _ => panic!("{pointer}: parent is not a container"),
        }
    }
    doc
}

/// Asserts the one-line error contract and the case's specifics; returns the line.
fn assert_refused(case: &Case, out: &Output) -> String {
    let line = testkit::assert_one_line_error(out, case.tool, case.code);
    assert!(
        line.contains(case.names),
        "{}: the error does not name {}: {line}",
        case.name,
        case.names
    );
    assert!(
        !line.contains("secret"),
        "{}: echoes a password: {line}",
        case.name
    );
    assert!(
        line.chars().count() <= LINE_MAX,
        "{}: a {}-character error line",
        case.name,
        line.chars().count()
    );
    line
}

fn run(world: &World, case: &Case, addr: &str) -> Output {
    let doc = world.fill(&serde_json::to_string(&patched(&case.patch)).unwrap(), addr);
    std::fs::write(world.path("doc.json"), doc).unwrap();
    let args: Vec<String> = case.args.iter().map(|a| world.fill(a, addr)).collect();
    let mut child = Command::new(testkit::bin(case.tool))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A guard, not a measurement: a tool that hangs (a FIFO read before issue 15) is killed so
    // the case fails instead of the whole suite stalling.
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let readers = [stdout_reader(stdout), stdout_reader(stderr)];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let [stdout, stderr] = readers.map(|r| r.join().unwrap());
    Output {
        status,
        stdout,
        stderr,
    }
}

fn stdout_reader(
    mut pipe: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

#[test]
fn every_hostile_input_is_refused_with_one_line_and_nothing_touched() {
    testkit::require_root();
    let cases = cases();
    assert!(cases.len() >= 45, "{} cases", cases.len());
    // Every case runs, and the failures are listed together (one broken class does not hide
    // the others).
    let failed: Vec<&str> = cases
        .iter()
        .filter(|case| std::panic::catch_unwind(|| check_case(case)).is_err())
        .map(|case| case.name)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases broke: {failed:#?}",
        failed.len(),
        cases.len()
    );
}

fn check_case(case: &Case) {
    let world = World::new();
    // node-push's "node": a listener that must never see a connection.
    let node = TcpListener::bind("127.0.0.1:0").unwrap();
    node.set_nonblocking(true).unwrap();
    let addr = node.local_addr().unwrap().to_string();
    let out = run(&world, case, &addr);
    assert_refused(case, &out);
    world.assert_untouched(case.name);
    match node.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!(
            "{}: node-push connected before refusing: {other:?}",
            case.name
        ),
    }
}

/// The positive control: the unpatched fixture goes through the same harness and is accepted,
/// and it writes where the harness looks (so "nothing written" above can fail).
#[test]
fn the_fixture_itself_passes_and_writes_under_dir() {
    let world = World::new();
    let control = case("control", vec![], "mkcerts", MKCERTS, 0, "");
    let out = run(&world, &control, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!walk(&world.path("out")).is_empty());
    let _: hardway::Document = serde_json::from_slice(&out.stdout).unwrap();
}

/// route-sync refuses every non-pod route at read time and the kernel's tables stay as they
/// were: `ip route` of both families in every table, before and after, in a namespace where the
/// node's gateway is reachable (so without the check the route would be installed).
#[test]
fn route_sync_installs_no_route_that_is_not_a_pod_route() {
    let ns = Netns::new("hi");
    ns.add_bridge("br0", &["10.240.0.1/24", "fd00:10:240::1/64"]);
    // Every route of both families in every table, but the kernel's own (`proto kernel`): those
    // come and go by themselves as the bridge's IPv6 link-local addresses appear.
    let dump = || {
        let all = format!(
            "{}{}",
            ns.ip(&["-4", "route", "show", "table", "all"]),
            ns.ip(&["-6", "route", "show", "table", "all"])
        );
        all.lines()
            .filter(|l| !l.contains("proto kernel"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let dual = |cidrs: Value| -> Vec<(&'static str, Value)> {
        vec![
            (
                "/cluster/networks/node",
                json!(["10.240.0.0/24", "fd00:10:240::/64"]),
            ),
            (
                "/cluster/networks/pod",
                json!(["10.200.0.0/16", "fd00:10:200::/56"]),
            ),
            ("/cluster/networks/pod_prefix", json!([24, 64])),
            (
                "/cluster/networks/service",
                json!(["10.32.0.0/24", "fd00:10:32::/112"]),
            ),
            ("/nodes/1/ips", json!(["10.240.0.12", "fd00:10:240::12"])),
            ("/nodes/1/pod_cidrs", cidrs),
        ]
    };
    let world = World::new();
    let before = dump();
    for cidr in [
        "0.0.0.0/0",
        "::/0",
        "10.240.0.128/25",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fe80::/64",
        "224.0.0.0/4",
        "ff00::/8",
        "10.32.0.0/24",
    ] {
        let v6 = cidr.contains(':');
        let cidrs = if v6 {
            json!(["10.200.1.0/24", cidr])
        } else {
            json!([cidr])
        };
        let names = if v6 {
            "nodes[1].pod_cidrs[1]"
        } else {
            "nodes[1].pod_cidrs[0]"
        };
        let doc = world.fill(&serde_json::to_string(&patched(&dual(cidrs))).unwrap(), "");
        std::fs::write(world.path("doc.json"), doc).unwrap();
        let file = world.path("doc.json");
        let out = ns.exec(
            testkit::bin("route-sync"),
            &["--host", "-f", &file.to_string_lossy()],
        );
        let case = case("route-sync", vec![], "route-sync", &[], 2, names);
        let line = assert_refused(&case, &out);
        assert_eq!(dump(), before, "{cidr}: the routes changed ({line})");
    }
    // Positive control: the same document with pod CIDRs is installed, so the dump can differ.
    let doc = world.fill(
        &serde_json::to_string(&patched(&dual(json!([
            "10.200.1.0/24",
            "fd00:10:200:1::/64"
        ]))))
        .unwrap(),
        "",
    );
    std::fs::write(world.path("doc.json"), doc).unwrap();
    let file = world.path("doc.json");
    let out = ns.exec(
        testkit::bin("route-sync"),
        &["--host", "-f", &file.to_string_lossy()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(dump(), before);
}

/// `tool | head -c1`: a reader that goes away is no error (exit 0, nothing on stderr), known by
/// the write's EPIPE, never by a message's text. The document printed (2,000 nodes) is far larger
/// than a pipe's buffer, so the write meets the closed pipe whatever the timing.
#[test]
fn a_closed_stdout_ends_quietly() {
    let world = World::new();
    let csv = world.path("nodes.csv");
    let rows: String = (1..=2000).map(|i| format!("worker-{i},worker\n")).collect();
    std::fs::write(&csv, format!("name,roles\n{rows}")).unwrap();
    let script = format!(
        "{} {} 2>{} | head -c1 >/dev/null; echo ${{PIPESTATUS[0]}} >{}",
        testkit::bin("mkcluster").display(),
        csv.display(),
        world.path("stderr").display(),
        world.path("status").display()
    );
    testkit::run_ok(Command::new("bash").args(["-c", &script]));
    let status = std::fs::read_to_string(world.path("status")).unwrap();
    assert_eq!(status.trim(), "0");
    assert_eq!(std::fs::read_to_string(world.path("stderr")).unwrap(), "");
    // The control: with a reader that stays, the whole document comes out.
    let out = Command::new(testkit::bin("mkcluster"))
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.len() > 1 << 16,
        "{} bytes: no bigger than a pipe",
        out.stdout.len()
    );
}
