//! etcd-snapshot against a real etcd 3.4 cluster (Debian's etcd-server) with mkcerts'
//! certificates: save, write more, then restore through the very script restore hands each
//! node, run here with the data-dir and snapshot paths pointed at the test's (what the node's
//! hardway-etcd-restore.service would run; systemd and node-push do not run here), and start the
//! members again from the restored data: the keys from before the snapshot are back, the later
//! ones gone. `etcdctl snapshot status` (etcd's own reader) checks the saved file too.

use std::process::{Command, Output};
use std::time::Duration;

use hardway::doc::Document;
use testkit::etcd::{Cluster, ETCDCTL};
use testkit::etcd_lab::{describe, pipe, Lab};

const UP: Duration = Duration::from_secs(60);

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    file: std::path::PathBuf,
    revision: i64,
    size: u64,
    sha256: String,
    member: String,
    member_id: String,
    endpoint: String,
    time: String,
}

fn snapshot(lab: &Lab, doc: &Document, args: &[&str]) -> Output {
    pipe(
        Command::new(testkit::bin("etcd-snapshot"))
            .args(args)
            .arg("--dir")
            .arg(lab.dir.path()),
        &hardway::doc::to_string(doc),
    )
}

fn put(cluster: &Cluster, key: &str) {
    let out = cluster.etcdctl(0).args(["put", key, "v"]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

fn keys(cluster: &Cluster) -> Vec<String> {
    let out = cluster
        .etcdctl(0)
        .args(["get", "/t/", "--prefix", "--keys-only"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn save_then_write_then_restore_brings_back_the_snapshot_only() {
    let lab = Lab::new(3, 80);
    let mut cluster = lab.start(&[0, 1, 2]);
    let doc = lab.doc_with(&[0, 1, 2]);
    put(&cluster, "/t/before-1");
    put(&cluster, "/t/before-2");

    let out = snapshot(&lab, &doc, &["save"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let saved: Saved = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(saved.member, "node-1");
    assert_eq!(saved.endpoint, cluster.endpoints()[0]);
    assert!(saved.member_id.len() == 16 && saved.member_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        saved.time.ends_with('Z') && saved.time.len() == 20,
        "{}",
        saved.time
    );
    assert!(saved.revision >= 3, "{saved:?}");
    let meta = std::fs::metadata(&saved.file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let parent = std::fs::metadata(saved.file.parent().unwrap()).unwrap();
    assert_eq!(parent.permissions().mode() & 0o777, 0o700);
    assert_eq!(meta.len(), saved.size);
    let bytes = std::fs::read(&saved.file).unwrap();
    assert_eq!(hardway::fsutil::sha256_hex(&bytes), saved.sha256);
    let name = saved
        .file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.ends_with(&format!("-rev{}.db", saved.revision)),
        "{name}"
    );
    // etcd's own reader agrees it is a whole snapshot.
    let status = Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(&saved.file)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", describe(&status));
    /// `etcdctl snapshot status -w json`: only the revision is read.
    #[derive(Debug, serde::Deserialize)]
    struct SnapshotStatus {
        revision: i64,
    }
    let status: SnapshotStatus = serde_json::from_slice(&status.stdout).unwrap();
    assert!(status.revision >= saved.revision, "{status:?}");

    put(&cluster, "/t/after");
    assert_eq!(keys(&cluster), ["/t/after", "/t/before-1", "/t/before-2"]);

    // Restoring while etcd answers is refused; nothing is written.
    let snap = saved.file.to_str().unwrap();
    let out = snapshot(&lab, &doc, &["restore", "--snapshot", snap]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    assert!(!lab.path("restore").exists());

    for i in 0..3 {
        cluster.kill(i);
    }
    let out = snapshot(&lab, &doc, &["restore", "--snapshot", snap]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let restored =
        hardway::doc::from_str(&String::from_utf8_lossy(&out.stdout), "restore").unwrap();
    for (i, node) in restored.nodes.iter().enumerate() {
        assert_eq!(
            node.services.first().map(String::as_str),
            Some("hardway-etcd-restore.service")
        );
        let file = |dest: &str| {
            let entry = node.files.iter().find(|f| f.dest == dest).unwrap();
            lab.path(&entry.src)
        };
        let script = file("/usr/local/sbin/hardway-etcd-restore");
        let copy = file("/var/lib/hardway-etcd-restore/snapshot.db");
        assert_eq!(std::fs::read(&copy).unwrap(), bytes);
        // What the node's unit runs, on this host's data directory for the member.
        let run = Command::new("sh")
            .arg(&script)
            .env("SNAPSHOT", &copy)
            .env("ETCD_DATA_DIR", cluster.data_dir(i))
            .env("ETCDCTL", ETCDCTL)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}: {}", node.name, describe(&run));
        // Run twice: the second is a no-op (the unit's condition and the script's marker).
        let again = Command::new("sh")
            .arg(&script)
            .env("SNAPSHOT", &copy)
            .env("ETCD_DATA_DIR", cluster.data_dir(i))
            .env("ETCDCTL", "/bin/false")
            .output()
            .unwrap();
        assert!(again.status.success(), "{}", describe(&again));
    }
    for i in 0..3 {
        cluster.restart(i);
    }
    cluster.wait_healthy(UP).unwrap();
    assert_eq!(keys(&cluster), ["/t/before-1", "/t/before-2"]);
}

#[test]
fn a_corrupt_snapshot_is_refused_before_anything_is_written() {
    testkit::require_root();
    let lab = Lab::new(1, 81);
    let doc = lab.doc_with(&[0]);
    let bad = lab.path("bad.db");
    let mut bytes = vec![0u8; 4096];
    bytes.extend_from_slice(&[1u8; 32]);
    std::fs::write(&bad, &bytes).unwrap();
    let out = snapshot(
        &lab,
        &doc,
        &["restore", "--force", "--snapshot", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    assert!(!lab.path("restore").exists());
}

/// The unit restore writes, checked by systemd-analyze under a root holding systemd's own units
/// and the node's restore files at their destinations (systemd does not run here; the unit is
/// only verified). Any output on stderr is a failure: systemd reports unknown keys as warnings.
#[test]
fn the_restore_unit_passes_systemd_analyze() {
    testkit::require_root();
    let lab = Lab::new(1, 82);
    let doc = lab.doc_with(&[0]);
    // A snapshot-shaped file: a page of zeros and its sha256 (no cluster runs in this test).
    let mut db = vec![0u8; 4096];
    use sha2::Digest;
    let hash = sha2::Sha256::digest(&db);
    db.extend_from_slice(&hash);
    let file = lab.path("s.db");
    std::fs::write(&file, &db).unwrap();
    let out = snapshot(
        &lab,
        &doc,
        &["restore", "--snapshot", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let restored =
        hardway::doc::from_str(&String::from_utf8_lossy(&out.stdout), "restore").unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("usr/lib/systemd")).unwrap();
    let copied = Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(root.path().join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(copied.success());
    let mut unit = None;
    for entry in &restored.nodes[0].files {
        let target = root.path().join(entry.dest.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(lab.path(&entry.src), &target).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = u32::from_str_radix(&entry.mode, 8).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
        if entry.dest.ends_with(".service") {
            unit = Some(target);
        }
    }
    testkit::assert_units_verify(
        root.path(),
        [unit.expect("a unit")],
        "the restored etcd unit",
    );
}
