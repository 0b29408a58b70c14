//! Support for tests that use real components: they start etcd, sshd, libvirtd and network
//! namespaces themselves, clean up in `Drop`, and fail (never skip) when they cannot run.
//!
//! Each module starts what one kind of test needs; tests across tools use [`bin`] to find the
//! workspace's binaries (`make test` builds them first).

pub mod cni;
pub mod netns;

pub mod etcd;
pub mod etcd_lab;
pub mod hypervisors;
pub mod libvirt;
pub mod sshd;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Panics unless running as root: real-component tests need it, and a silent skip would count
/// as a pass.
pub fn require_root() {
    // SAFETY-free check: /proc/self/status holds the effective uid.
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "this test needs root (make test runs as root in CI)"
    );
}

/// The directory cargo puts the workspace's debug binaries in.
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("debug");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .join("target/debug")
}

/// The path of a workspace binary; panics with what to do when it is not built.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` (make test does)",
        path.display()
    );
    path
}

/// The workspace's root directory (for fixtures and examples).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .to_path_buf()
}

/// A fixture document from tests/fixtures (e.g. `lab.json`), read through the tools' own reader.
pub fn fixture_document(name: &str) -> hardway::Document {
    let path = workspace_root().join("tests/fixtures").join(name);
    hardway::doc::read(Some(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The mkcluster arguments an example's header comment gives (`#   mkcluster ARGS | cidr-alloc`,
/// possibly continued with `\`), so tests render what the README tells a user to run.
pub fn example_args(csv: &std::path::Path) -> Vec<String> {
    example_pipeline(csv).0
}

/// The arguments of both commands of an example's header comment,
/// `mkcluster ARGS | cidr-alloc ARGS`.
pub fn example_pipeline(csv: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(csv).unwrap();
    let comment: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect();
    let start = comment
        .iter()
        .position(|l| l.starts_with("mkcluster "))
        .unwrap_or_else(|| panic!("{}: no `mkcluster ...` line in its comment", csv.display()));
    let mut command = String::new();
    for line in &comment[start..] {
        command.push_str(line.trim_end_matches('\\'));
        command.push(' ');
        if !line.ends_with('\\') {
            break;
        }
    }
    let (make, alloc) = command.split_once('|').unwrap_or_else(|| {
        panic!(
            "{}: no `mkcluster ... | cidr-alloc` in its comment",
            csv.display()
        )
    });
    let words = |text: &str| -> Vec<String> {
        text.split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    (words(make), words(alloc))
}

/// Where the file a node gets at `dest` sits under `out`, as the tools wrote it (from the node's
/// `files`); panics when the node gets no such file.
pub fn node_file(out: &std::path::Path, node: &hardway::Node, dest: &str) -> PathBuf {
    let entry = node
        .files
        .iter()
        .find(|f| f.dest == dest)
        .unwrap_or_else(|| panic!("node {} has no file at {dest}", node.name));
    out.join(&entry.src)
}

/// The columns of the row of a table (`-o table`) whose first column is `first`, split on
/// blanks; panics when there is no such row.
pub fn table_row<'t>(table: &'t str, first: &str) -> Vec<&'t str> {
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first:?} in the table:\n{table}"))
}

/// Runs a command; panics with its stdout and stderr unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/deps.sh installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `command` with `input` on its standard input and returns its output, whatever its exit:
/// how a test feeds a document to a tool (or to a shell around one). A tool that refuses its
/// flags exits before reading, so a closed pipe is not an error here: its output tells.
pub fn pipe(command: &mut Command, input: &(impl AsRef<[u8]> + ?Sized)) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    match child.stdin.take().unwrap().write_all(input.as_ref()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    child.wait_with_output().unwrap()
}

/// Runs `program args` with `stdin` on its standard input; panics with its stderr unless it exits
/// 0. Returns its stdout: how a pipeline stage is run in the cross-tool tests.
pub fn run_piped(program: &std::path::Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = pipe(Command::new(program).args(args), stdin);
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts `systemd-analyze verify` accepts `units` laid out under `root` (its `--root`): exit 0
/// and nothing on stderr. `what` says which units they are in the failure message.
pub fn assert_units_verify<U: AsRef<std::ffi::OsStr>>(
    root: &std::path::Path,
    units: impl IntoIterator<Item = U>,
    what: &str,
) {
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .args(units)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze: {e} (scripts/deps.sh installs it)"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify on {what}: {}\n{stderr}",
        output.status
    );
}

/// Asserts a tool failed the way every hardway tool must (docs/ARCHITECTURE.md): exit `code`, nothing on
/// stdout, exactly one line on stderr that starts `tool: error: `. Returns that line.
pub fn assert_one_line_error(out: &Output, tool: &str, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("{tool}: error: ")), "{stderr}");
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    stderr
}

/// Stand-ins for one Kubernetes release's binaries, laid out as `scripts/fetch-kubernetes.sh
/// VERSION DIR` lays them out, in `root/kubernetes-VERSION`: the Kubernetes ones name the
/// release in their bytes (an upgrade rewrites them), containerd's and runc's do not (they are
/// pinned apart from Kubernetes). They are copied to nodes, never run: the real ones cannot be
/// downloaded here.
pub fn kubernetes_stand_ins(root: &std::path::Path, version: &str) -> PathBuf {
    let dir = root.join(format!("kubernetes-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let kubernetes = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "kubelet",
        "kube-proxy",
    ];
    for name in kubernetes {
        std::fs::write(
            dir.join(name),
            format!("#!/bin/sh\necho {name} {version}\n"),
        )
        .unwrap();
    }
    for name in ["containerd", "containerd-shim-runc-v2", "runc"] {
        std::fs::write(dir.join(name), format!("#!/bin/sh\necho {name} 2.1\n")).unwrap();
    }
    dir
}
