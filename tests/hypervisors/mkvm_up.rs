//! `mkvm up` and `mkvm down` over a two-hypervisor document (issue 19 item 3): each hypervisor
//! gets its own network on its own slice and only its own nodes' domains; a second `up` changes
//! nothing; a failure on one host rolls back what the run made on the other; one host down is
//! exit 3 naming it with nothing made (`up`) or removed (`down`) on the other; `down` leaves
//! nothing on either.
//!
//! What it runs: two real libvirtd (testkit::hypervisors), the workspace's mkcluster, cidr-alloc
//! and mkvm, virsh to read back what exists. What it does not: no domain is started
//! (`--no-start`, a blank qcow2 base image), so no guest boots and nothing crosses the
//! hypervisors' network; the masquerade rule for traffic leaving the cluster is not installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hardway::Document;
use testkit::hypervisors::{Hypervisor, TwoHypervisors};

/// The document's files and the flags every `mkvm up` here takes.
struct Run {
    dir: tempfile::TempDir,
    doc: PathBuf,
    image: PathBuf,
    key: PathBuf,
}

impl Run {
    fn new(doc: &Document) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.json");
        std::fs::write(&path, hardway::doc::to_string(doc)).unwrap();
        let image = testkit::libvirt::blank_image(dir.path(), 1);
        let key = dir.path().join("id");
        testkit::sshd::keygen(&key, "two-hypervisors");
        Run {
            doc: path,
            image,
            key: key.with_extension("pub"),
            dir,
        }
    }

    fn mkvm(&self, args: &[&str]) -> Output {
        Command::new(testkit::bin("mkvm"))
            .args(args)
            .arg("-f")
            .arg(&self.doc)
            .output()
            .unwrap()
    }

    /// `mkvm up`, defining everything and starting nothing.
    fn up(&self) -> Output {
        let (image, key) = (self.image.to_str().unwrap(), self.key.to_str().unwrap());
        let args = [
            "up",
            "--no-start",
            "--wait",
            "none",
            "--overcommit",
            "--image",
            image,
        ];
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--ssh-key", key]);
        self.mkvm(&all)
    }
}

fn ok(out: &Output) -> Document {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    hardway::doc::from_str(&String::from_utf8_lossy(&out.stdout), "mkvm").unwrap()
}

fn names(one: &Hypervisor, args: &[&str]) -> Vec<String> {
    let mut list: Vec<String> = one
        .virsh_ok(args)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    list.sort();
    list
}

/// The volumes of a pool: the first column of `virsh vol-list` (it has no `--name`).
fn volume_names(one: &Hypervisor, pool: &str) -> Vec<String> {
    let table = one.virsh_ok(&["vol-list", pool]);
    let mut list: Vec<String> = table
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    list.sort();
    list
}

/// Domains, networks and pools on a hypervisor, and each domain's and network's UUID: what a
/// run that changes nothing leaves exactly as it was.
#[derive(Debug, PartialEq, Eq)]
struct Objects {
    domains: Vec<String>,
    networks: Vec<String>,
    pools: Vec<String>,
    uuids: Vec<String>,
}

fn objects(one: &Hypervisor) -> Objects {
    let domains = names(one, &["list", "--all", "--name"]);
    let networks = names(one, &["net-list", "--all", "--name"]);
    let mut uuids: Vec<String> = domains
        .iter()
        .map(|d| one.virsh_ok(&["domuuid", d]).trim().to_string())
        .collect();
    uuids.extend(
        networks
            .iter()
            .map(|n| one.virsh_ok(&["net-uuid", n]).trim().to_string()),
    );
    Objects {
        domains,
        networks,
        pools: names(one, &["pool-list", "--all", "--name"]),
        uuids,
    }
}

fn nothing() -> Objects {
    Objects {
        domains: vec![],
        networks: vec![],
        pools: vec![],
        uuids: vec![],
    }
}

/// The `<forward mode>` and `<ip address prefix>` of a network as libvirt has it.
fn forward_and_ip(one: &Hypervisor, network: &str) -> (String, String) {
    let xml = one.virsh_ok(&["net-dumpxml", network]);
    let parsed = roxmltree::Document::parse(&xml).unwrap();
    let find = |tag: &str| parsed.descendants().find(|n| n.has_tag_name(tag)).unwrap();
    let ip = find("ip");
    (
        find("forward").attribute("mode").unwrap().to_string(),
        format!(
            "{}/{}",
            ip.attribute("address").unwrap(),
            ip.attribute("prefix").unwrap()
        ),
    )
}

#[test]
fn mkvm_up_and_down_over_two_hypervisors() {
    let _one_pair = crate::ONE_PAIR_AT_A_TIME.lock();
    let hv = TwoHypervisors::start();
    let doc = crate::two_host_document(&hv);
    let run = Run::new(&doc);
    each_host_gets_its_network_and_only_its_nodes(&hv, &run, &doc);
    down_leaves_nothing_on_either(&hv, &run);
    a_failure_on_b_rolls_back_a(&hv, &run);
    one_host_down_is_exit_3_and_nothing_is_made(&hv, &run);
    down_with_one_host_down_changes_nothing(&hv, &run);
    drop(run.dir);
}

fn each_host_gets_its_network_and_only_its_nodes(hv: &TwoHypervisors, run: &Run, doc: &Document) {
    let up = ok(&run.up());
    for (one, node, gateway) in [
        (&hv.a, "node-a1", "10.240.0.1/25"),
        (&hv.b, "node-b1", "10.240.0.129/25"),
    ] {
        let found = objects(one);
        assert_eq!(found.domains, [node], "{}", one.name());
        assert_eq!(
            found.networks,
            [doc.cluster.name.as_str()],
            "{}",
            one.name()
        );
        assert_eq!(found.pools, ["hardway"], "{}", one.name());
        assert_eq!(
            forward_and_ip(one, &doc.cluster.name),
            ("open".to_string(), gateway.to_string()),
            "{}",
            one.name()
        );
        let volumes = volume_names(one, "hardway");
        assert_eq!(
            volumes,
            [format!("two-{node}-seed.iso"), format!("two-{node}.qcow2")]
        );
        let vm = up.nodes.iter().find(|n| n.name == node).unwrap().vm.clone();
        assert_eq!(vm.unwrap().extra["uri"], one.uri());
    }
    let before = (objects(&hv.a), objects(&hv.b));
    ok(&run.up());
    assert_eq!(
        (objects(&hv.a), objects(&hv.b)),
        before,
        "a second up changed something"
    );
}

fn down_leaves_nothing_on_either(hv: &TwoHypervisors, run: &Run) {
    let doc = ok(&run.mkvm(&["down"]));
    assert!(doc.nodes.iter().all(|n| n.vm.is_none()));
    for one in [&hv.a, &hv.b] {
        assert_eq!(objects(one), nothing(), "{}", one.name());
    }
}

/// A file under b's pool directory named as node-b1's overlay: preflight cannot see it (the
/// pool does not exist yet), so creating the volume fails on b, whatever a has made by then.
fn a_failure_on_b_rolls_back_a(hv: &TwoHypervisors, run: &Run) {
    let pool_dir = hv.b.host_path("/var/lib/libvirt/images/hardway");
    std::fs::create_dir_all(&pool_dir).unwrap();
    let foreign = pool_dir.join("two-node-b1.qcow2");
    std::fs::write(&foreign, b"someone else's").unwrap();
    let line = error_line(&run.up(), 3);
    assert!(line.contains(&hv.b.uri()), "{line}");
    assert!(line.contains("rolled back"), "{line}");
    for one in [&hv.a, &hv.b] {
        assert_eq!(objects(one), nothing(), "{}: {line}", one.name());
    }
    assert_eq!(std::fs::read(&foreign).unwrap(), b"someone else's");
    std::fs::remove_file(&foreign).unwrap();
    remove_dir(&pool_dir);
}

/// A failed run: exit `code`, nothing on stdout, and one error line, the last on stderr (the
/// lines before it are mkvm's progress log: what it made and rolled back).
fn error_line(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(out.stdout.is_empty());
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("mkvm: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{stderr}");
    errors[0].to_string()
}

fn remove_dir(dir: &Path) {
    if dir.exists() {
        std::fs::remove_dir(dir).unwrap();
    }
}

fn one_host_down_is_exit_3_and_nothing_is_made(hv: &TwoHypervisors, run: &Run) {
    hv.b.stop_libvirtd();
    let line = error_line(&run.up(), 3);
    assert!(line.contains(&hv.b.uri()), "{line}");
    assert!(!line.contains(&hv.a.uri()), "{line}");
    assert_eq!(objects(&hv.a), nothing());
}

/// With everything made on both, b's daemon stopped: `down` is exit 3 naming b and removes
/// nothing from a; b back, `down` empties both.
fn down_with_one_host_down_changes_nothing(hv: &TwoHypervisors, run: &Run) {
    hv.b.restart_libvirtd();
    ok(&run.up());
    let on_a = objects(&hv.a);
    assert_eq!(on_a.domains, ["node-a1"]);
    hv.b.stop_libvirtd();
    let line = error_line(&run.mkvm(&["down"]), 3);
    assert!(line.contains(&hv.b.uri()), "{line}");
    assert!(!line.contains(&hv.a.uri()), "{line}");
    assert_eq!(objects(&hv.a), on_a);
    hv.b.restart_libvirtd();
    down_leaves_nothing_on_either(hv, run);
}
