//! The attacker's tests for files under `--dir` (issue 15, items 1, 2 and the files half of 9):
//! symlinks, FIFOs, hard links and foreign directories planted where mkcerts and mkunits write,
//! concurrent runs on one directory, and an unprivileged user (`nobody`) racing a root mkcerts in
//! a shared sticky directory.
//!
//! Every case runs the real release-path binaries (`target/debug/mkcerts`, `mkunits`) as root on
//! the lab fixture, and asserts the exit code, one stderr line and an empty stdout for a refusal,
//! and that nothing outside `--dir` changed: every entry under the test's base directory but
//! `--dir` is snapshotted (inode, mode, owner, contents) before and compared after, which covers
//! the victim files. Run: `cargo build -p mkcerts -p mkunits && cargo test -p e2e --test
//! hostile_files`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hardway::fsutil::sha256_hex;
use hardway::Document;

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;
/// A run that takes longer than this hangs (a FIFO opened for reading blocks forever): fail
/// instead of waiting for the harness.
const HANG: Duration = Duration::from_secs(120);

/// One test's world: `base/` (0755, so `nobody` can reach what it is given), `base/out` (the
/// `--dir`, 0700), `base/elsewhere/` (the victim's files) and `base/bin/route-sync` for mkunits.
struct Scene {
    tmp: tempfile::TempDir,
}

/// What an entry looked like: kind and mode bits, owner, inode, link count, contents' sha256.
type Entry = (u32, u32, u64, u64, String);

impl Scene {
    fn new() -> Scene {
        testkit::require_root();
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o755);
        let scene = Scene { tmp };
        std::fs::create_dir(scene.out()).unwrap();
        chmod(&scene.out(), 0o700);
        std::fs::create_dir_all(scene.elsewhere()).unwrap();
        std::fs::write(scene.victim(), "the victim's data\n").unwrap();
        chmod(&scene.victim(), 0o640);
        std::fs::create_dir(scene.base().join("bin")).unwrap();
        std::fs::write(scene.base().join("bin/route-sync"), "#!/bin/sh\n").unwrap();
        scene
    }

    fn base(&self) -> &Path {
        self.tmp.path()
    }

    fn out(&self) -> PathBuf {
        self.base().join("out")
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.out().join(rel)
    }

    fn elsewhere(&self) -> PathBuf {
        self.base().join("elsewhere")
    }

    fn victim(&self) -> PathBuf {
        self.elsewhere().join("victim")
    }

    /// Every entry under base but `--dir`, not following links.
    fn outside(&self) -> BTreeMap<PathBuf, Entry> {
        let mut all = BTreeMap::new();
        snapshot(self.base(), &self.out(), &mut all);
        all
    }

    /// Every entry under `--dir` but the lock file, which every writing run leaves (empty, 0600).
    fn inside(&self) -> BTreeMap<PathBuf, Entry> {
        let mut all = BTreeMap::new();
        snapshot(&self.out(), &self.at(".hardway.lock"), &mut all);
        all
    }

    fn mkcerts(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(testkit::bin("mkcerts"));
        cmd.arg("--dir").arg(self.out()).args(args);
        run(cmd, &lab())
    }

    fn mkunits(&self, doc: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(testkit::bin("mkunits"));
        cmd.arg("--dir")
            .arg(self.out())
            .arg("--bin-dir")
            .arg(self.base().join("bin"))
            .args(args);
        run(cmd, doc)
    }

    /// A complete PKI of another cluster in `base/elsewhere/other`: the victim's keys.
    fn other_pki(&self) -> PathBuf {
        let other = self.elsewhere().join("other");
        let mut cmd = Command::new(testkit::bin("mkcerts"));
        cmd.arg("--dir").arg(&other);
        ok(&run(cmd, &lab()));
        other
    }
}

fn snapshot(dir: &Path, skip: &Path, all: &mut BTreeMap<PathBuf, Entry>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path == skip {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let contents = if meta.file_type().is_file() {
            sha256_hex(&std::fs::read(&path).unwrap())
        } else if meta.file_type().is_symlink() {
            std::fs::read_link(&path).unwrap().display().to_string()
        } else {
            String::new()
        };
        all.insert(
            path.clone(),
            (meta.mode(), meta.uid(), meta.ino(), meta.nlink(), contents),
        );
        if meta.file_type().is_dir() {
            snapshot(&path, skip, all);
        }
    }
}

fn lab() -> String {
    std::fs::read_to_string(testkit::workspace_root().join("tests/fixtures/lab.json")).unwrap()
}

/// Runs `cmd` with `stdin`; panics if it runs past [`HANG`].
fn run(cmd: Command, stdin: &str) -> Output {
    wait(spawn(cmd, stdin))
}

/// Starts `cmd` with `stdin` fed to it from a thread, its output piped.
fn spawn(mut cmd: Command, stdin: &str) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    feed(&mut child, stdin);
    child
}

fn feed(child: &mut Child, stdin: &str) {
    let mut pipe = child.stdin.take().unwrap();
    let text = stdin.to_string();
    std::thread::spawn(move || {
        let _ = pipe.write_all(text.as_bytes());
    });
}

fn wait(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > HANG {
            child.kill().unwrap();
            panic!("the run hung: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A run that succeeded; returns its document.
fn ok(out: &Output) -> Document {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    hardway::doc::from_str(std::str::from_utf8(&out.stdout).unwrap(), "stdout").unwrap()
}

/// A refusal: exit 2, one `tool: error:` line naming `names`, nothing on stdout.
fn refused(out: &Output, tool: &str, names: &str) {
    let line = testkit::assert_one_line_error(out, tool, 2);
    assert!(line.contains(names), "{line}");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOGROUP)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_symlink()
}

fn mkdirs(scene: &Scene, rel: &str) {
    std::fs::create_dir_all(scene.at(rel)).unwrap();
}

// ---- symlinks under --dir ----

/// A refused mkcerts run with `plant` done under `--dir`: nothing outside changes.
fn mkcerts_refuses(scene: &Scene, names: &str) {
    let before = scene.outside();
    refused(&scene.mkcerts(&[]), "mkcerts", names);
    assert_eq!(scene.outside(), before);
}

#[test]
fn symlink_at_the_old_guessable_temp_name_is_never_written_through() {
    let scene = Scene::new();
    mkdirs(&scene, "pki/ca");
    // Before hardway 0.2 the temp name was `.NAME.tmp.PID`: learn the pid while mkcerts waits
    // for its document, then plant links there for every CA key.
    let mut child = Command::new(testkit::bin("mkcerts"))
        .arg("--dir")
        .arg(scene.out())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut planted = Vec::new();
    for ca in ["kubernetes-ca", "etcd-ca", "front-proxy-ca"] {
        let link = scene.at(&format!("pki/ca/.{ca}-key.pem.tmp.{pid}"));
        symlink(scene.victim(), &link).unwrap();
        planted.push(link);
    }
    let before = scene.outside();
    feed(&mut child, &lab());
    ok(&wait(child));
    assert_eq!(scene.outside(), before);
    let key = scene.at("pki/ca/kubernetes-ca-key.pem");
    assert!(!is_symlink(&key));
    assert_eq!(mode(&key), 0o600);
    // Orphans of the old naming are cleaned up too (the links, never their target).
    for link in planted {
        assert!(std::fs::symlink_metadata(link).is_err());
    }
}

#[test]
fn symlinked_ca_key_and_cert_of_another_cluster_are_refused_not_adopted() {
    let scene = Scene::new();
    let other = scene.other_pki();
    mkdirs(&scene, "pki/ca");
    for name in ["kubernetes-ca.pem", "kubernetes-ca-key.pem"] {
        symlink(
            other.join("pki/ca").join(name),
            scene.at(&format!("pki/ca/{name}")),
        )
        .unwrap();
    }
    mkcerts_refuses(&scene, "kubernetes-ca");
}

#[test]
fn dry_run_through_a_symlinked_pki_is_refused_and_creates_nothing() {
    let scene = Scene::new();
    let other = scene.other_pki();
    symlink(other.join("pki"), scene.at("pki")).unwrap();
    let before = scene.outside();
    let inside = scene.inside();
    refused(
        &scene.mkcerts(&["--dry-run"]),
        "mkcerts",
        "out/pki: is a symlink",
    );
    assert_eq!(scene.outside(), before);
    assert_eq!(scene.inside(), inside);
}

/// A refused mkunits run: nothing outside changes.
fn mkunits_refuses(scene: &Scene, doc: &str, names: &str) {
    let before = scene.outside();
    refused(&scene.mkunits(doc, &[]), "mkunits", names);
    assert_eq!(scene.outside(), before);
}

/// A link where a tool writes under `--dir` — a directory it makes, a file it writes, the lock —
/// pointing at a directory elsewhere or at the victim file: refused, by its path, with nothing
/// outside changed. (tool, where the link is, whether it points at the victim, the refusal.)
const PLANTED_LINKS: &[(&str, &str, bool, &str)] = &[
    ("mkcerts", "pki", false, "out/pki: is a symlink"),
    ("mkcerts", "pki/ca", false, "out/pki/ca: is a symlink"),
    ("mkcerts", "pki/nodes", false, "out/pki/nodes: is a symlink"),
    (
        "mkcerts",
        "pki/nodes/node-2",
        false,
        "out/pki/nodes/node-2: is a symlink",
    ),
    (
        "mkcerts",
        "pki/kubeconfigs/admin.kubeconfig",
        true,
        "admin.kubeconfig: is a symlink",
    ),
    (
        "mkcerts",
        ".hardway.lock",
        true,
        ".hardway.lock: is a symlink",
    ),
    ("mkunits", "nodes", false, "out/nodes: is a symlink"),
    (
        "mkunits",
        "nodes/node-1",
        false,
        "out/nodes/node-1: is a symlink",
    ),
    ("mkunits", "bin", false, "out/bin: is a symlink"),
    (
        "mkunits",
        "nodes/node-1/etc/hosts",
        true,
        "nodes/node-1/etc/hosts: is a symlink",
    ),
];

#[test]
fn a_symlink_where_a_tool_writes_is_refused() {
    for &(tool, link, at_victim, refusal) in PLANTED_LINKS {
        let scene = Scene::new();
        if let Some(parent) = Path::new(link).parent().and_then(Path::to_str) {
            mkdirs(&scene, parent);
        }
        let target = if at_victim {
            scene.victim()
        } else {
            scene.elsewhere()
        };
        symlink(target, scene.at(link)).unwrap();
        tool_refuses(&scene, tool, refusal);
    }
}

/// [`mkcerts_refuses`] or [`mkunits_refuses`] (on the lab document), by the tool's name.
fn tool_refuses(scene: &Scene, tool: &str, names: &str) {
    match tool {
        "mkcerts" => mkcerts_refuses(scene, names),
        "mkunits" => mkunits_refuses(scene, &lab(), names),
        other => panic!("no such tool here: {other}"),
    }
}

#[test]
fn check_never_reads_through_a_symlinked_key() {
    let scene = Scene::new();
    let other = scene.other_pki();
    ok(&scene.mkcerts(&[]));
    let key = scene.at("pki/ca/etcd-ca-key.pem");
    std::fs::remove_file(&key).unwrap();
    symlink(other.join("pki/ca/etcd-ca-key.pem"), &key).unwrap();
    let before = scene.outside();
    let mut cmd = Command::new(testkit::bin("mkcerts"));
    cmd.args(["check", "--dir"]).arg(scene.out());
    refused(&run(cmd, ""), "mkcerts", "etcd-ca-key.pem: is a symlink");
    assert_eq!(scene.outside(), before);
}

// ---- FIFOs, foreign owners, modes ----

fn mkfifo(path: &Path) {
    testkit::run_ok(Command::new("mkfifo").arg(path));
}

/// A FIFO where a tool reads or writes a file: refused without hanging on it.
#[test]
fn a_fifo_where_a_tool_writes_is_refused_without_hanging() {
    for (tool, fifo, refusal) in [
        (
            "mkcerts",
            "pki/ca/kubernetes-ca-key.pem",
            "kubernetes-ca-key.pem: is a FIFO",
        ),
        ("mkunits", "nodes/node-1/etc/hosts", "hosts: is a FIFO"),
    ] {
        let scene = Scene::new();
        mkdirs(
            &scene,
            Path::new(fifo).parent().and_then(Path::to_str).unwrap(),
        );
        mkfifo(&scene.at(fifo));
        tool_refuses(&scene, tool, refusal);
    }
}

#[test]
fn dir_owned_by_another_user_is_refused() {
    let scene = Scene::new();
    chown_nobody(&scene.out());
    mkcerts_refuses(&scene, "is owned by uid 65534");
    assert!(scene.inside().is_empty());
}

#[test]
fn dir_others_can_write_is_refused() {
    let scene = Scene::new();
    chmod(&scene.out(), 0o777);
    mkcerts_refuses(&scene, "is writable by other users (mode 0777)");
    assert!(scene.inside().is_empty());
}

#[test]
fn world_writable_parent_without_sticky_bit_is_refused() {
    let scene = Scene::new();
    let shared = scene.base().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let before = scene.outside();
    let mut cmd = Command::new(testkit::bin("mkcerts"));
    cmd.arg("--dir").arg(shared.join("out"));
    refused(
        &run(cmd, &lab()),
        "mkcerts",
        "shared: is writable by other users",
    );
    assert_eq!(scene.outside(), before);
}

#[test]
fn in_a_sticky_dir_only_links_you_or_root_made_are_followed() {
    let scene = Scene::new();
    let shared = scene.base().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let theirs = scene.base().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chmod(&theirs, 0o700);
    // nobody's link in /tmp-like dir pointing at a directory of root's: refused.
    let link = shared.join("out");
    symlink(&theirs, &link).unwrap();
    chown_nobody(&link);
    let before = scene.outside();
    let mut cmd = Command::new(testkit::bin("mkcerts"));
    cmd.arg("--dir").arg(&link);
    refused(
        &run(cmd, &lab()),
        "mkcerts",
        "is a symlink owned by uid 65534",
    );
    assert_eq!(scene.outside(), before);
    // root's own link there is the user's choice: followed.
    std::fs::remove_file(&link).unwrap();
    symlink(&theirs, &link).unwrap();
    let mut cmd = Command::new(testkit::bin("mkcerts"));
    cmd.arg("--dir").arg(&link);
    ok(&run(cmd, &lab()));
    assert_eq!(mode(&theirs.join("pki/ca/kubernetes-ca-key.pem")), 0o600);
}

#[test]
fn key_directories_others_can_enter_are_brought_to_0700() {
    let scene = Scene::new();
    mkdirs(&scene, "pki/ca");
    mkdirs(&scene, "pki/nodes/node-1");
    for rel in ["pki", "pki/ca", "pki/nodes", "pki/nodes/node-1"] {
        chmod(&scene.at(rel), 0o777);
    }
    let before = scene.outside();
    ok(&scene.mkcerts(&[]));
    assert_eq!(scene.outside(), before);
    for rel in ["pki", "pki/ca", "pki/nodes", "pki/nodes/node-1"] {
        assert_eq!(mode(&scene.at(rel)), 0o700, "{rel}");
    }
    // Opened up again after the fact: a run that changes no file closes them all the same.
    for rel in ["pki/ca", "pki/nodes/node-1"] {
        chmod(&scene.at(rel), 0o755);
    }
    ok(&scene.mkcerts(&[]));
    for rel in ["pki/ca", "pki/nodes/node-1"] {
        assert_eq!(mode(&scene.at(rel)), 0o700, "{rel}");
    }
}

#[test]
fn world_writable_nodes_dir_of_mkunits_is_brought_to_0755() {
    let scene = Scene::new();
    mkdirs(&scene, "nodes/node-1/etc");
    for rel in ["nodes", "nodes/node-1", "nodes/node-1/etc"] {
        chmod(&scene.at(rel), 0o777);
    }
    ok(&scene.mkunits(&lab(), &[]));
    for rel in ["nodes", "nodes/node-1", "nodes/node-1/etc"] {
        assert_eq!(mode(&scene.at(rel)), 0o755, "{rel}");
    }
}

#[test]
fn a_pki_dir_owned_by_another_user_is_refused() {
    for dir in ["pki", "pki/ca"] {
        let scene = Scene::new();
        mkdirs(&scene, dir);
        chmod(&scene.at(dir), 0o700);
        chown_nobody(&scene.at(dir));
        mkcerts_refuses(&scene, &format!("out/{dir}: is owned by uid 65534"));
    }
}

#[test]
fn existing_key_owned_by_another_user_is_refused() {
    let scene = Scene::new();
    ok(&scene.mkcerts(&[]));
    let key = scene.at("pki/ca/etcd-ca-key.pem");
    chown_nobody(&key);
    let inside = scene.inside();
    mkcerts_refuses(&scene, "etcd-ca-key.pem: is owned by uid 65534");
    assert_eq!(scene.inside(), inside);
}

#[test]
fn a_file_where_a_directory_goes_is_refused() {
    let scene = Scene::new();
    mkdirs(&scene, "pki");
    std::fs::write(scene.at("pki/ca"), "not a directory\n").unwrap();
    mkcerts_refuses(&scene, "out/pki/ca: is not a directory");
}

// ---- hard links ----

#[test]
fn hard_linked_ca_of_another_cluster_is_refused_not_adopted() {
    let scene = Scene::new();
    let other = scene.other_pki();
    mkdirs(&scene, "pki/ca");
    for name in ["kubernetes-ca.pem", "kubernetes-ca-key.pem"] {
        std::fs::hard_link(
            other.join("pki/ca").join(name),
            scene.at(&format!("pki/ca/{name}")),
        )
        .unwrap();
    }
    let inside = scene.inside();
    mkcerts_refuses(&scene, "has 2 hard links");
    assert_eq!(scene.inside(), inside);
}

#[test]
fn hard_link_at_a_unit_is_replaced_and_the_victim_stays_as_it_was() {
    let scene = Scene::new();
    // The victim holds exactly what mkunits writes there, with the same mode: a tool that only
    // compares bytes would leave the shared inode in place.
    ok(&scene.mkunits(&lab(), &[]));
    let hosts = scene.at("nodes/node-1/etc/hosts");
    std::fs::copy(&hosts, scene.victim()).unwrap();
    chmod(&scene.victim(), mode(&hosts));
    std::fs::remove_file(&hosts).unwrap();
    std::fs::hard_link(scene.victim(), &hosts).unwrap();
    let victim_before = std::fs::metadata(scene.victim()).unwrap();
    ok(&scene.mkunits(&lab(), &[]));
    let victim_after = std::fs::metadata(scene.victim()).unwrap();
    assert_eq!(victim_after.ino(), victim_before.ino());
    assert_eq!(
        victim_after.nlink(),
        1,
        "the output still shares the victim's inode"
    );
    assert_ne!(std::fs::metadata(&hosts).unwrap().ino(), victim_after.ino());
    assert_eq!(
        std::fs::read(&hosts).unwrap(),
        std::fs::read(scene.victim()).unwrap()
    );
}

// ---- stale files and orphans ----

/// The lab document with a stale file entry of mkunits' on node-1 at `src`.
fn with_stale(src: &str) -> String {
    let mut doc = hardway::doc::from_str(&lab(), "lab.json").unwrap();
    doc.nodes[0].files.push(hardway::doc::FileEntry {
        src: src.to_string(),
        dest: "/etc/old.conf".into(),
        mode: "0644".into(),
        owner: "root:root".into(),
        sha256: String::new(),
        extra: Default::default(),
    });
    serde_json::to_string(&doc).unwrap()
}

#[test]
fn stale_removal_never_goes_through_a_symlinked_directory() {
    let scene = Scene::new();
    std::fs::create_dir(scene.elsewhere().join("etc")).unwrap();
    std::fs::write(scene.elsewhere().join("etc/old.conf"), "keep me\n").unwrap();
    mkdirs(&scene, "nodes");
    symlink(scene.elsewhere(), scene.at("nodes/gone")).unwrap();
    let inside = scene.inside();
    mkunits_refuses(
        &scene,
        &with_stale("nodes/gone/etc/old.conf"),
        "out/nodes/gone: is a symlink",
    );
    // Refused before anything was written.
    assert_eq!(scene.inside(), inside);
}

#[test]
fn stale_symlink_is_removed_itself_and_its_target_stays() {
    let scene = Scene::new();
    mkdirs(&scene, "nodes/node-1/etc");
    let link = scene.at("nodes/node-1/etc/old.conf");
    symlink(scene.victim(), &link).unwrap();
    // A second name of the victim: removing the stale entry must drop the link only.
    let before = scene.outside();
    let dry = scene.mkunits(&with_stale("nodes/node-1/etc/old.conf"), &["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(is_symlink(&link), "--dry-run removed something");
    ok(&scene.mkunits(&with_stale("nodes/node-1/etc/old.conf"), &[]));
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert_eq!(scene.outside(), before);
}

#[test]
fn orphan_temp_files_of_a_killed_run_are_removed() {
    let scene = Scene::new();
    ok(&scene.mkcerts(&[]));
    let orphan = scene.at("pki/ca/.kubernetes-ca-key.pem.hardway-tmp.Zx81kQ2mA0pL");
    std::fs::write(&orphan, "half a key").unwrap();
    let linked = scene.at("pki/nodes/node-1/.kubelet-key.pem.hardway-tmp.a1b2c3d4e5f6");
    symlink(scene.victim(), &linked).unwrap();
    let before = scene.outside();
    ok(&scene.mkcerts(&[]));
    assert!(std::fs::symlink_metadata(&orphan).is_err());
    assert!(std::fs::symlink_metadata(&linked).is_err());
    assert_eq!(scene.outside(), before);
}

// ---- concurrent runs and the lock ----

/// Every `pki/` file a document lists has the sha256 it says, and every certificate record
/// verifies (openssl) against the CA record that issued it.
fn pki_agrees(scene: &Scene, doc: &Document) {
    let mut listed = 0;
    for file in doc.nodes.iter().flat_map(|n| &n.files) {
        let bytes = std::fs::read(scene.at(&file.src)).unwrap();
        assert_eq!(sha256_hex(&bytes), file.sha256, "{}", file.src);
        listed += 1;
    }
    assert!(listed > 20, "the document lists only {listed} files");
    let certs = &doc.pki.as_ref().expect("a pki section").certs;
    for record in certs {
        let ca = certs
            .iter()
            .find(|c| c.subject == record.issuer && c.node.is_none() && c.name.ends_with("-ca"))
            .unwrap_or_else(|| panic!("no CA record for {}", record.issuer));
        let verified = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(scene.at(&ca.path))
            .arg(scene.at(&record.path))
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}: {}",
            record.path,
            String::from_utf8_lossy(&verified.stdout)
        );
    }
}

#[test]
fn three_mkcerts_at_once_leave_one_pki_that_every_document_describes() {
    let scene = Scene::new();
    let runs: Vec<Child> = (0..3)
        .map(|_| {
            let mut cmd = Command::new(testkit::bin("mkcerts"));
            cmd.arg("--dir").arg(scene.out());
            spawn(cmd, &lab())
        })
        .collect();
    let docs: Vec<Document> = runs.into_iter().map(|c| ok(&wait(c))).collect();
    for doc in &docs {
        pki_agrees(&scene, doc);
    }
    assert_eq!(docs[0].pki, docs[2].pki);
}

#[test]
fn two_mkunits_and_a_mkcerts_at_once_agree_with_the_files() {
    let scene = Scene::new();
    let units: Vec<Child> = (0..2)
        .map(|_| {
            let mut cmd = Command::new(testkit::bin("mkunits"));
            cmd.arg("--dir")
                .arg(scene.out())
                .arg("--bin-dir")
                .arg(scene.base().join("bin"));
            spawn(cmd, &lab())
        })
        .collect();
    let mut cmd = Command::new(testkit::bin("mkcerts"));
    cmd.arg("--dir").arg(scene.out());
    let certs = ok(&wait(spawn(cmd, &lab())));
    pki_agrees(&scene, &certs);
    for doc in units.into_iter().map(|c| ok(&wait(c))) {
        for file in doc.nodes.iter().flat_map(|n| &n.files) {
            let bytes = std::fs::read(scene.at(&file.src)).unwrap();
            assert_eq!(sha256_hex(&bytes), file.sha256, "{}", file.src);
        }
    }
}

#[test]
fn a_run_that_cannot_get_the_lock_in_time_fails_in_one_line_and_writes_nothing() {
    let scene = Scene::new();
    std::fs::write(scene.at(".hardway.lock"), "").unwrap();
    chmod(&scene.at(".hardway.lock"), 0o600);
    // flock(1) holds the lock until we kill it (our own child, by its pid).
    let holder = KillOnDrop(
        Command::new("flock")
            .arg("--no-fork")
            .arg(scene.at(".hardway.lock"))
            .args(["sleep", "600"])
            .spawn()
            .unwrap(),
    );
    // Wait until the holder has it: flock -n fails while it does.
    while Command::new("flock")
        .args(["-n"])
        .arg(scene.at(".hardway.lock"))
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let inside = scene.inside();
    let mkcerts = scene.mkcerts(&["--lock-timeout", "0"]);
    let mkunits = scene.mkunits(&lab(), &["--lock-timeout", "1"]);
    drop(holder);
    for (out, tool) in [(mkcerts, "mkcerts"), (mkunits, "mkunits")] {
        let line = testkit::assert_one_line_error(&out, tool, 3);
        assert!(line.contains("still holds the lock"), "{line}");
    }
    assert_eq!(scene.inside(), inside);
}

// ---- the real attacker: nobody racing root in a shared sticky directory ----

/// nobody's side, in perl (perl-base is on every Debian): keep making `shared/out` a directory
/// of its own or a link to one, keep its key directories 0777, and plant links at every temp
/// name a pid-named scheme would use next, pointing at files nobody owns and can read.
const ATTACKER: &str = r#"
my ($shared, $loot, $stop) = @ARGV;
my @dirs = ("pki", "pki/ca", "pki/nodes", "pki/nodes/node-1", "pki/cluster", "pki/kubeconfigs");
my @keys = ("kubernetes-ca-key.pem", "etcd-ca-key.pem", "front-proxy-ca-key.pem");
my $round = 0;
until (-e $stop) {
    $round++;
    if ($round % 2) {
        mkdir "$shared/out";
    } else {
        mkdir "$loot/out";
        symlink "$loot/out", "$shared/out";
    }
    for my $d (@dirs) { mkdir "$shared/out/$d"; chmod 0777, "$shared/out/$d"; }
    chmod 0777, "$shared/out";
    open(my $f, "<", "/proc/sys/kernel/ns_last_pid") or next;
    my $last = <$f>;
    close $f;
    for my $pid ($last .. $last + 60) {
        for my $k (@keys) {
            my $bait = "$loot/$k.$pid";
            open(my $b, ">>", $bait) and close $b;
            chmod 0666, $bait;
            symlink $bait, "$shared/out/pki/ca/.$k.tmp.$pid";
        }
    }
}
"#;

/// A helper process (the attacker, a lock holder): killed (our own child, by its pid) however the
/// test ends, so a failed assertion never leaves it running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn as_nobody(program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--",
        program,
    ]);
    cmd
}

/// The files under `dirs` that nobody can read and that hold a private key.
fn keys_nobody_reads(dirs: &[&Path]) -> Vec<String> {
    let out = as_nobody("grep")
        .args(["-rl", "--no-messages", "PRIVATE KEY"])
        .args(dirs)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn nobody_racing_root_in_a_sticky_dir_never_gets_a_key() {
    let scene = Scene::new();
    let shared = scene.base().join("shared");
    let loot = scene.base().join("loot");
    let stop = scene.base().join("stop");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    std::fs::create_dir(&loot).unwrap();
    chown_nobody(&loot);
    // Positive control: the detector sees a key nobody can read.
    let control = loot.join("control");
    std::fs::write(&control, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    chmod(&control, 0o644);
    assert_eq!(keys_nobody_reads(&[&loot]), [control.display().to_string()]);
    std::fs::remove_file(&control).unwrap();

    let attacker = KillOnDrop(
        as_nobody("perl")
            .args(["-e", ATTACKER])
            .arg(&shared)
            .arg(&loot)
            .arg(&stop)
            .spawn()
            .unwrap(),
    );
    let out = shared.join("out");
    let mut exits = Vec::new();
    for round in 0..16 {
        // Even rounds: root makes --dir first (mode 0700), so the run must succeed. Odd rounds:
        // whoever is first wins the name.
        if round % 2 == 0 {
            let _ = std::fs::DirBuilder::new().create(&out);
        }
        let mut cmd = Command::new(testkit::bin("mkcerts"));
        cmd.arg("--dir").arg(&out);
        let run = run(cmd, &lab());
        match run.status.code() {
            Some(0) => assert!(!run.stdout.is_empty()),
            _ => {
                testkit::assert_one_line_error(&run, "mkcerts", 2);
            }
        }
        exits.push(run.status.code());
        assert_eq!(keys_nobody_reads(&[&shared, &loot]), Vec::<String>::new());
        // Start over: remove what is there (remove_dir_all never follows a link); nobody may be
        // adding entries to a directory of its own meanwhile, so a failure is only retried later.
        match std::fs::symlink_metadata(&out) {
            Ok(meta) if meta.file_type().is_dir() => drop(std::fs::remove_dir_all(&out)),
            Ok(_) => drop(std::fs::remove_file(&out)),
            Err(_) => {}
        }
    }
    std::fs::write(&stop, "").unwrap();
    drop(attacker);
    eprintln!("mkcerts exit codes, round by round: {exits:?}");
    assert!(exits.contains(&Some(0)), "{exits:?}");
    assert_eq!(keys_nobody_reads(&[&shared, &loot]), Vec::<String>::new());
}
