//! Day two for mkunits: an upgrade one minor at a time rewrites only what the version table
//! changes, `--previous` refuses a skipped minor or a downgrade before anything is written, and a
//! configuration read by a unit that does not name it carries the `restart` entry node-push
//! follows. Nothing here runs Kubernetes (not installable here): the files are compared as bytes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use common::bin_dir;
use hardway::Document;
use mkunits::Report;

fn write_doc(path: &Path, doc: &Document) {
    std::fs::write(path, hardway::doc::to_string(doc)).unwrap();
}

fn with_version(mut doc: Document, version: &str) -> Document {
    doc.cluster.kubernetes_version = version.into();
    doc
}

fn mkunits(input: &Path, out: &Path, args: &[&str]) -> Output {
    let bin = bin_dir();
    let output = Command::cargo_bin("mkunits")
        .unwrap()
        .arg("--dir")
        .arg(out)
        .arg("--bin-dir")
        .arg(bin.path())
        .arg("-f")
        .arg(input)
        .args(args)
        .output()
        .unwrap();
    output
}

fn ok(output: Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "mkunits failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A run's document kept at `running` (as the pipeline keeps cluster.json for the next run's
/// --previous) and read back.
fn kept_at(output: Output, running: &Path) -> Document {
    std::fs::write(running, ok(output)).unwrap();
    hardway::doc::read(Some(running)).unwrap()
}

/// A scratch dir holding in.json (the lab fixture), and OUT inside it, not made yet.
fn lab_scratch() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let input = tmp.path().join("in.json");
    write_doc(&input, &testkit::fixture_document("lab.json"));
    (tmp, out, input)
}

/// Every file under `dir` with its bytes and modification time: "nothing was written" is this
/// map staying equal.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                let bytes = std::fs::read(e.path()).unwrap();
                all.insert(e.path(), (bytes, meta.modified().unwrap()));
            }
        }
    }
    all
}

/// `(src, sha256)` of every file the document lists, over all nodes.
fn checksums(doc: &Document) -> BTreeMap<String, String> {
    doc.nodes
        .iter()
        .flat_map(|n| &n.files)
        .map(|f| (f.src.clone(), f.sha256.clone()))
        .collect()
}

/// The fields mkunits renders from differ between v1.36 and v1.37 in the CoreDNS image only; if
/// the table gains a difference, the expected list in the test below grows with it.
#[test]
fn v1_36_and_v1_37_differ_in_the_coredns_image_only() {
    let (old, new) = (
        hardway::k8s::release("v1.36.0").unwrap(),
        hardway::k8s::release("v1.37.2").unwrap(),
    );
    assert_ne!(old.coredns_image, new.coredns_image);
    assert_eq!(old.pause_image, new.pause_image);
    assert_eq!(old.containerd_majors, new.containerd_majors);
    assert_eq!(old.kubelet_config_api, new.kubelet_config_api);
    assert_eq!(old.kube_proxy_config_api, new.kube_proxy_config_api);
    assert_eq!(old.scheduler_config_api, new.scheduler_config_api);
    assert_eq!(old.proxy_modes, new.proxy_modes);
}

/// v1.36.0 → v1.37.2 on separate tiers (3 etcd, 2 controllers, 2 workers, 2 lb): the CoreDNS
/// manifest on the add-on controller, the Kubernetes binaries, and each node's copy of the
/// document (route-sync's, which carries the version) are rewritten; no unit, no configuration,
/// no certificate path, nothing of the etcd or lb nodes but their document copy.
#[test]
fn one_minor_upgrade_rewrites_exactly_what_the_version_table_implies() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let fixture = testkit::fixture_document("ebook-dualstack.json");
    let old_input = tmp.path().join("v1.36.json");
    write_doc(&old_input, &with_version(fixture, "v1.36.0"));
    let old_bins = testkit::kubernetes_stand_ins(tmp.path(), "v1.36.0");
    let running = tmp.path().join("cluster.json");
    let old_args = ["--kubernetes-bin-dir", old_bins.to_str().unwrap()];
    let old: Document = kept_at(mkunits(&old_input, &out, &old_args), &running);

    let new_input = tmp.path().join("v1.37.json");
    write_doc(&new_input, &with_version(old.clone(), "v1.37.2"));
    let new_bins = testkit::kubernetes_stand_ins(tmp.path(), "v1.37.2");
    let args = [
        "--previous",
        running.to_str().unwrap(),
        "--kubernetes-bin-dir",
        new_bins.to_str().unwrap(),
    ];
    let dry: Report = serde_json::from_slice(&ok(mkunits(
        &new_input,
        &out,
        &[&args[..], &["--dry-run"]].concat(),
    )))
    .unwrap();
    let mut expected: Vec<String> = [
        "bin/kube-apiserver",
        "bin/kube-controller-manager",
        "bin/kube-proxy",
        "bin/kube-scheduler",
        "bin/kubectl",
        "bin/kubelet",
        "nodes/controller1/etc/hardway/addons/coredns.yaml",
    ]
    .into_iter()
    .map(String::from)
    .chain(
        old.nodes
            .iter()
            .map(|n| format!("nodes/{}/etc/hardway/cluster.json", n.name)),
    )
    .collect();
    expected.sort();
    let mut updated = dry.updated.clone();
    updated.sort();
    assert_eq!(updated, expected);
    assert!(dry.created.is_empty() && dry.removed.is_empty(), "{dry:?}");

    // The real run writes what the dry run said, and the document records exactly those.
    let new: Document = serde_json::from_slice(&ok(mkunits(&new_input, &out, &args))).unwrap();
    let (before, after) = (checksums(&old), checksums(&new));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(src, sha)| before[*src] != **sha)
        .map(|(src, _)| src.clone())
        .collect();
    changed.sort();
    assert_eq!(changed, expected);
    let coredns = std::fs::read_to_string(out.join(&expected[6])).unwrap();
    assert!(coredns.contains(hardway::k8s::release("v1.37.2").unwrap().coredns_image));
}

fn assert_refused(previous: &str, next: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let lab = testkit::fixture_document("lab.json");
    let running = tmp.path().join("cluster.json");
    let input = tmp.path().join("previous.json");
    write_doc(&input, &with_version(lab, previous));
    let built = kept_at(mkunits(&input, &out, &[]), &running);
    let next_input = tmp.path().join("next.json");
    write_doc(&next_input, &with_version(built, next));
    let before = tree(&out);
    let prev_arg = ["--previous", running.to_str().unwrap()];
    for args in [&prev_arg[..], &[&prev_arg[..], &["--dry-run"]].concat()] {
        let output = mkunits(&next_input, &out, args);
        let line = testkit::assert_one_line_error(&output, "mkunits", 2);
        assert!(
            line.contains("cluster.kubernetes_version")
                && line.contains(previous)
                && line.contains(next),
            "{line}"
        );
    }
    assert_eq!(tree(&out), before, "{previous} -> {next} wrote something");
}

#[test]
fn skipping_a_minor_is_refused_and_writes_nothing() {
    assert_refused("v1.35.4", "v1.37.2");
}

#[test]
fn going_back_a_minor_is_refused_and_writes_nothing() {
    assert_refused("v1.37.2", "v1.36.0");
}

/// Patch releases move both ways, the next minor is allowed, and a --previous FILE that does not
/// exist yet (the first build) checks nothing.
#[test]
fn patches_the_next_minor_and_a_first_build_are_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let lab = testkit::fixture_document("lab.json");
    let running = tmp.path().join("cluster.json");
    let none = tmp.path().join("missing.json");
    let input = tmp.path().join("in.json");
    write_doc(&input, &with_version(lab, "v1.36.0"));
    let first = ["--previous", none.to_str().unwrap()];
    let mut previous = kept_at(mkunits(&input, &out, &first), &running);
    for next in ["v1.36.0", "v1.36.4", "v1.36.1", "v1.37.2"] {
        write_doc(&input, &with_version(previous.clone(), next));
        let args = ["--previous", running.to_str().unwrap()];
        let doc = ok(mkunits(&input, &out, &args));
        std::fs::write(&running, &doc).unwrap();
        previous = hardway::doc::read(Some(&running)).unwrap();
        assert_eq!(previous.cluster.kubernetes_version, next);
    }
}

/// Debian's haproxy.service and keepalived.service read fixed paths their units do not name, and
/// crio reads its drop-in directory: each of those files lists the service in `restart`, and that
/// service is one the node starts (node-push restarts only those).
#[test]
fn lb_and_crio_configs_restart_their_services() {
    let tmp = tempfile::tempdir().unwrap();
    let check = |fixture_doc: Document, expected: &[(&str, &str)]| {
        let input = tmp.path().join("in.json");
        write_doc(&input, &fixture_doc);
        let out = tmp.path().join(format!("out-{}", expected[0].1));
        let doc: Document = serde_json::from_slice(&ok(mkunits(&input, &out, &[]))).unwrap();
        let mut seen = 0;
        for node in &doc.nodes {
            for file in &node.files {
                let restart: Vec<String> = file
                    .extra
                    .get(mkunits::RESTART_KEY)
                    .map(|v| serde_json::from_value(v.clone()).unwrap())
                    .unwrap_or_default();
                let wanted = expected.iter().find(|(dest, _)| *dest == file.dest);
                match wanted {
                    Some((_, service)) => {
                        assert_eq!(restart, [*service], "{} {}", node.name, file.dest);
                        assert!(node.services.iter().any(|s| s == service));
                        seen += 1;
                    }
                    None => assert!(restart.is_empty(), "{} {}", node.name, file.dest),
                }
            }
        }
        assert!(seen >= expected.len(), "{expected:?}: seen {seen}");
    };
    check(
        testkit::fixture_document("ebook-dualstack.json"),
        &[
            ("/etc/haproxy/haproxy.cfg", "haproxy.service"),
            ("/etc/keepalived/keepalived.conf", "keepalived.service"),
        ],
    );
    let mut crio = testkit::fixture_document("lab.json");
    crio.cluster.container_runtime = Some(hardway::doc::ContainerRuntime::CriO);
    check(
        crio,
        &[
            ("/etc/crio/crio.conf.d/10-hardway.conf", "crio.service"),
            ("/etc/keepalived/keepalived.conf", "keepalived.service"),
        ],
    );
}

/// A --previous FILE that is not a document is bad input naming the file, and writes nothing.
#[test]
fn a_broken_previous_document_is_one_line_naming_it() {
    let (tmp, out, input) = lab_scratch();
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{\"version\": 1,\n \"cluster\": 7}\n").unwrap();
    let output = mkunits(&input, &out, &["--previous", broken.to_str().unwrap()]);
    let line = testkit::assert_one_line_error(&output, "mkunits", 2);
    assert!(line.contains("broken.json"), "{line}");
    assert!(!out.exists(), "OUT was made");
}

/// In the pipeline mkunits' input is rebuilt from the inventory and lists no file of theirs:
/// with --previous, the files of a node that left (and only those) are removed from OUT.
#[test]
fn previous_files_of_a_removed_node_are_removed() {
    let (tmp, out, input) = lab_scratch();
    let running = tmp.path().join("cluster.json");
    let built = kept_at(mkunits(&input, &out, &[]), &running);
    let gone: Vec<String> = built
        .node("node-3")
        .unwrap()
        .files
        .iter()
        .map(|f| f.src.clone())
        .collect();
    let mut rebuilt = built.clone();
    rebuilt.nodes.retain(|n| n.name != "node-3");
    for node in &mut rebuilt.nodes {
        node.files.clear();
    }
    write_doc(&input, &rebuilt);

    let previous = ["--previous", running.to_str().unwrap()];
    let dry: Report = serde_json::from_slice(&ok(mkunits(
        &input,
        &out,
        &[&previous[..], &["--dry-run"]].concat(),
    )))
    .unwrap();
    let mut expected: Vec<String> = gone
        .iter()
        .filter(|s| s.starts_with("nodes/node-3/"))
        .cloned()
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(dry.removed, expected);
    assert!(
        expected.iter().all(|src| out.join(src).exists()),
        "--dry-run removed something"
    );

    let doc: Document = serde_json::from_slice(&ok(mkunits(&input, &out, &previous))).unwrap();
    assert!(expected.iter().all(|src| !out.join(src).exists()));
    for node in &doc.nodes {
        for file in &node.files {
            assert!(
                out.join(&file.src).exists(),
                "{} lost {}",
                node.name,
                file.src
            );
        }
    }
}
