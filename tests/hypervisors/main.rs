//! Issue 19's harness: two libvirtd, each in its own network and mount namespace, joined by a
//! veth pair standing for the hypervisors' network (testkit::hypervisors). This test proves the
//! harness is two separate hypervisors, and that the tools reach each one through the URI the
//! document gives: `mkcluster --hypervisor … | cidr-alloc` makes a two-hypervisor document and
//! `mkvm status` asks each node's own daemon for its domain.
//!
//! What it runs: libvirtd and virtlogd (Debian's), virsh, ping across the veth pair, and the
//! workspace's mkcluster, cidr-alloc and mkvm binaries. What it does not: no VM is booted and no
//! domain started (domains are only defined). The other modules build on the harness: mkvm_up
//! (up, down and rollback across the two, nothing booted) and cluster (a whole cluster, one TCG
//! VM on each hypervisor).

mod cluster;
mod guests;
mod mkvm_up;
mod routes;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use hardway::Document;
use serde::Deserialize;
use testkit::hypervisors::{Hypervisor, TwoHypervisors};

/// One row of `mkvm status` (tools/mkvm/src/lib.rs `StatusRow`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRow {
    node: String,
    uri: String,
    owned: bool,
    state: String,
    #[allow(dead_code)]
    uuid: Option<String>,
    #[allow(dead_code)]
    ip: Option<String>,
    ssh: bool,
}

/// Two pairs of daemons cannot run at once (their namespaces and addresses are fixed): the
/// tests of this binary take turns.
static ONE_PAIR_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn two_hypervisors_are_two_daemons_and_mkvm_reaches_each_by_its_uri() {
    let _one_pair = ONE_PAIR_AT_A_TIME.lock();
    let hv = TwoHypervisors::start();
    for one in [&hv.a, &hv.b] {
        hardway::uri::libvirt(&one.uri()).unwrap_or_else(|why| panic!("{why}"));
    }
    each_daemon_is_in_its_own_namespaces(&hv);
    the_hosts_network_joins_them(&hv);
    a_network_on_one_is_not_on_the_other(&hv);
    mkvm_status_asks_each_nodes_own_hypervisor(&hv);
}

fn namespace_of(pid: &str, kind: &str) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

fn each_daemon_is_in_its_own_namespaces(hv: &TwoHypervisors) {
    let (a, b) = (
        hv.a.libvirtd_pid().to_string(),
        hv.b.libvirtd_pid().to_string(),
    );
    assert_ne!(a, b);
    for (pid, one) in [(&a, &hv.a), (&b, &hv.b)] {
        let out = testkit::run_ok(Command::new("ip").args(["netns", "identify", pid]));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            one.netns().name()
        );
    }
    for kind in ["net", "mnt"] {
        let ours = namespace_of("self", kind);
        let (ns_a, ns_b) = (namespace_of(&a, kind), namespace_of(&b, kind));
        assert_ne!(ns_a, ns_b, "{kind}");
        assert_ne!(ns_a, ours, "{kind}");
        assert_ne!(ns_b, ours, "{kind}");
    }
    // Each daemon's socket is at the host path its URI names (the source of its bind mount).
    for one in [&hv.a, &hv.b] {
        assert!(one.socket().exists(), "{}", one.socket().display());
    }
}

fn the_hosts_network_joins_them(hv: &TwoHypervisors) {
    hv.a.netns().run_ok("ping", &["-c1", "-W2", hv.b.address()]);
    hv.b.netns().run_ok("ping", &["-c1", "-W2", hv.a.address()]);
}

fn networks(one: &Hypervisor) -> Vec<String> {
    one.virsh_ok(&["net-list", "--all", "--name"])
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn has_link(ns: &str, dev: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns, "link", "show", dev])
        .output()
        .unwrap()
        .status
        .success()
}

fn a_network_on_one_is_not_on_the_other(hv: &TwoHypervisors) {
    // Neither daemon starts with a network: the copies of /etc/libvirt autostart none.
    assert_eq!(networks(&hv.a), Vec::<String>::new());
    assert_eq!(networks(&hv.b), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("net.xml");
    std::fs::write(
        &xml,
        "<network><name>only-on-a</name><bridge name='onlya0'/>\
         <ip address='10.77.0.1' prefix='24'/></network>",
    )
    .unwrap();
    let path = xml.to_str().unwrap();
    hv.a.virsh_ok(&["net-define", path]);
    hv.a.virsh_ok(&["net-start", "only-on-a"]);
    assert_eq!(networks(&hv.a), ["only-on-a"]);
    assert_eq!(networks(&hv.b), Vec::<String>::new());
    // Its bridge is in a's network namespace only.
    assert!(has_link(hv.a.netns().name(), "onlya0"));
    assert!(!has_link(hv.b.netns().name(), "onlya0"));
    assert!(!Path::new("/sys/class/net/onlya0").exists());
    hv.a.virsh_ok(&["net-destroy", "only-on-a"]);
    hv.a.virsh_ok(&["net-undefine", "only-on-a"]);
}

/// Defines (never starts) a domain named `name` on a hypervisor.
fn define_domain(one: &Hypervisor, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("domain.xml");
    std::fs::write(
        &xml,
        format!(
            "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64'>hvm</type></os></domain>"
        ),
    )
    .unwrap();
    one.virsh_ok(&["define", xml.to_str().unwrap()]);
}

/// One node on each hypervisor; both run etcd, so the two form one cluster across the hosts.
/// One vCPU and 768 MiB each: two TCG guests share the machine's two cores with the test.
pub const ONE_NODE_ON_EACH: &str = "name,roles,host,vcpus,memory\n\
    node-a1,controller+etcd+worker,hv-a,1,768\n\
    node-b1,etcd+worker,hv-b,1,768\n";

/// `mkcluster --hypervisor` for both (each one's URI and address) over `csv`, with `flags`:
/// the inventory, before cidr-alloc.
pub fn two_host_inventory(hv: &TwoHypervisors, csv: &str, flags: &[&str]) -> Vec<u8> {
    let flag = |one: &Hypervisor| format!("{}={},{}", one.name(), one.uri(), one.address());
    let (flag_a, flag_b) = (flag(&hv.a), flag(&hv.b));
    let mut args = vec![
        "--name",
        "two",
        "--hypervisor",
        &flag_a,
        "--hypervisor",
        &flag_b,
    ];
    args.extend(flags);
    testkit::run_piped(&testkit::bin("mkcluster"), &args, csv.as_bytes())
}

/// [`ONE_NODE_ON_EACH`] through mkcluster and cidr-alloc; checks each hypervisor got its half
/// of the node network and each node an address in its own hypervisor's half.
pub fn two_host_document(hv: &TwoHypervisors) -> Document {
    let inventory = two_host_inventory(hv, ONE_NODE_ON_EACH, &[]);
    let text = testkit::run_piped(&testkit::bin("cidr-alloc"), &[], &inventory);
    let doc = hardway::doc::from_str(&String::from_utf8(text).unwrap(), "cidr-alloc").unwrap();
    doc.validate().unwrap();
    assert_each_hypervisor_has_its_half(&doc);
    doc
}

/// cidr-alloc gave hv-a and hv-b one half each of the node network, and each node an address in
/// its own hypervisor's half.
pub fn assert_each_hypervisor_has_its_half(doc: &Document) {
    let slices: Vec<String> = doc
        .hypervisors
        .iter()
        .map(|h| h.node_slice[0].to_string())
        .collect();
    assert_eq!(slices, ["10.240.0.0/25", "10.240.0.128/25"]);
    for node in &doc.nodes {
        let host = doc.hypervisor_of(node).unwrap();
        assert!(host.node_slice[0].contains(&node.ips[0]), "{node:?}");
    }
}

fn mkvm_status(doc_path: &Path) -> Vec<StatusRow> {
    let out = Command::new(testkit::bin("mkvm"))
        .args(["status", "-f"])
        .arg(doc_path)
        .output()
        .unwrap();
    // Exit 1: no domain is running (none is started here); 3 would mean a daemon did not answer.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mkvm_status_asks_each_nodes_own_hypervisor(hv: &TwoHypervisors) {
    let doc = two_host_document(hv);
    let dir = tempfile::tempdir().unwrap();
    let doc_path = dir.path().join("two.json");
    std::fs::write(&doc_path, hardway::doc::to_string(&doc)).unwrap();
    // node-a1's domain on a; a domain named node-b1 on a too, where node-b1 does not run: status
    // must ask b for it and find nothing there.
    define_domain(&hv.a, "node-a1");
    define_domain(&hv.a, "node-b1");
    let rows = mkvm_status(&doc_path);
    let row = |name: &str| rows.iter().find(|r| r.node == name).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(row("node-a1").uri, hv.a.uri());
    assert_eq!(row("node-a1").state, "shut-off");
    assert!(!row("node-a1").owned, "defined by the test, not by mkvm");
    assert_eq!(row("node-b1").uri, hv.b.uri());
    assert_eq!(row("node-b1").state, "missing");
    // Once b has node-b1's domain, status finds it there.
    define_domain(&hv.b, "node-b1");
    let rows = mkvm_status(&doc_path);
    let b1 = rows.iter().find(|r| r.node == "node-b1").unwrap();
    assert_eq!(
        (b1.uri.as_str(), b1.state.as_str()),
        (hv.b.uri().as_str(), "shut-off")
    );
    assert!(rows.iter().all(|r| !r.ssh));
    for (one, name) in [(&hv.a, "node-a1"), (&hv.a, "node-b1"), (&hv.b, "node-b1")] {
        one.virsh_ok(&["undefine", name]);
    }
    one_hypervisor_down_is_exit_3_naming_it(hv, &doc_path);
}

/// With b's daemon stopped, status fails with exit 3 and one line naming b's URI, not a's.
fn one_hypervisor_down_is_exit_3_naming_it(hv: &TwoHypervisors, doc_path: &Path) {
    hv.b.stop_libvirtd();
    let out = Command::new(testkit::bin("mkvm"))
        .args(["status", "-f"])
        .arg(doc_path)
        .output()
        .unwrap();
    let line = testkit::assert_one_line_error(&out, "mkvm", 3);
    assert!(line.contains(&hv.b.uri()), "{line}");
    assert!(!line.contains(&hv.a.uri()), "{line}");
}
