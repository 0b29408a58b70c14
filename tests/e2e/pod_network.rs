//! Pods talk without NAT: mkunits' bridge conflist and nftables table, Debian's CNI plugins and
//! route-sync's routes, in network namespaces shaped like the VMs.
//!
//! Two worker "nodes" (ebook-dualstack.json's worker1 and worker2, both families) hang off a
//! "hypervisor" bridge, their default routes pointing at it; behind the hypervisor a third
//! namespace stands for the internet (documentation addresses, routes back only to the node
//! network, as the internet knows only a NAT's public address). On each node the generated
//! conflist's plugins make a pod, `route-sync --node` installs the routes from the node's copy of
//! the document, and hardway-masquerade.service's ExecStart (`nft -f` on the generated file) loads
//! the table. UDP datagrams say who sent them: from pod A, pod B and node B must see pod A's
//! address, the internet the node's. A positive control first: before the table is loaded, the
//! internet sees pod A's address (so the masquerade seen afterwards is the table's, and an
//! `ipMasq` in the conflist fails the test); the unit's ExecStop removes the table again.
//! What this does not run: containerd, kubelet and kube-proxy (the pods are made by the CNI
//! plugins directly, as the runtime would make them).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use hardway::Document;
use serde_json::Value;
use testkit::netns::{Lab, Netns};

/// The internet: documentation prefixes (RFC 5737, RFC 3849), inside the test's namespaces only.
const INTERNET_V4: &str = "203.0.113.1";
const INTERNET_V6: &str = "2001:db8:ffff::1";

/// The file a node gets at `dest`, as mkunits wrote it under OUT.
fn node_file(out: &Path, doc: &Document, node: &str, dest: &str) -> std::path::PathBuf {
    testkit::node_file(out, doc.node(node).unwrap(), dest)
}

/// A unit's `KEY=` command line (ExecStart, ExecStop) as words, each node path among the node's
/// files mapped to the file mkunits wrote under OUT: the command the node would run.
fn unit_command(out: &Path, doc: &Document, node: &str, unit: &str, key: &str) -> Vec<String> {
    let path = node_file(out, doc, node, &format!("/etc/systemd/system/{unit}"));
    let text = std::fs::read_to_string(path).unwrap().replace("\\\n", " ");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{unit} has no {key}"));
    let files = &doc.nodes.iter().find(|n| n.name == node).unwrap().files;
    line.split_whitespace()
        .map(|word| match files.iter().find(|f| f.dest == word) {
            Some(f) => out.join(&f.src).display().to_string(),
            None => word.to_string(),
        })
        .collect()
}

fn run_unit_command(ns: &Netns, command: &[String]) -> String {
    let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
    ns.run_ok(&command[0], &args)
}

/// One pod on a node: its namespace and the addresses the conflist gave it.
struct Pod {
    ns: Netns,
    ips: Vec<IpAddr>,
}

impl Pod {
    fn ip(&self, v6: bool) -> IpAddr {
        *self.ips.iter().find(|ip| ip.is_ipv6() == v6).unwrap()
    }
}

fn make_pod(node: &Netns, out: &Path, doc: &Document, name: &str, data: &Path) -> Pod {
    let list: Value = serde_json::from_slice(
        &std::fs::read(node_file(
            out,
            doc,
            name,
            "/etc/cni/net.d/10-bridge.conflist",
        ))
        .unwrap(),
    )
    .unwrap();
    let ns = Netns::new("pnpod");
    let path = format!("/var/run/netns/{}", ns.name());
    let id = format!("{}-{name}", ns.name());
    let result = testkit::cni::conflist(node, "ADD", &list, &path, &id, data, None);
    let ips = result["ips"]
        .as_array()
        .unwrap_or_else(|| panic!("no ips in {result}"))
        .iter()
        .map(|ip| {
            let cidr: ipnet::IpNet = ip["address"].as_str().unwrap().parse().unwrap();
            cidr.addr()
        })
        .collect();
    Pod { ns, ips }
}

/// Sends one datagram from a socket bound in `from` to `to`, and returns the source address
/// the receiver (a socket bound in `at`) saw.
pub(crate) fn source_seen(from: &Netns, at: &Netns, to: IpAddr) -> IpAddr {
    let any: IpAddr = if to.is_ipv6() {
        "::".parse().unwrap()
    } else {
        "0.0.0.0".parse().unwrap()
    };
    let receiver: UdpSocket = at.bind_udp(SocketAddr::new(any, 0));
    let port = receiver.local_addr().unwrap().port();
    // A bound on the wait, not an assertion on time: a lost datagram fails the test below.
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sender = from.bind_udp(SocketAddr::new(any, 0));
    sender
        .send_to(b"who am i", SocketAddr::new(to, port))
        .unwrap_or_else(|e| panic!("send to {to}: {e}"));
    let mut buf = [0u8; 16];
    let (_, peer) = receiver
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("nothing from {} reached {to}: {e}", from.name()));
    peer.ip()
}

#[test]
fn pod_to_pod_keeps_the_source_and_traffic_leaving_the_cluster_is_masqueraded() {
    testkit::require_root();
    let nft = Path::new("/usr/sbin/nft");
    assert!(nft.exists(), "nft is missing: install Debian's nftables");
    let fixture = testkit::workspace_root().join("tests/fixtures/ebook-dualstack.json");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out_arg = out.to_str().unwrap();
    let bin_dir = testkit::target_dir();
    let rendered = testkit::run_piped(
        &testkit::bin("mkunits"),
        &["--dir", out_arg, "--bin-dir", bin_dir.to_str().unwrap()],
        &std::fs::read(&fixture).unwrap(),
    );
    let doc: Document = serde_json::from_slice(&rendered).unwrap();
    let workers = ["worker1", "worker2"];
    let node_of = |name: &str| doc.nodes.iter().find(|n| n.name == name).unwrap();

    // The hypervisor: the node network's gateway, both families, and a link to the internet.
    let mut lab = Lab::builder("pn").host_bridge(&["10.240.0.1/24", "fd00:10:240::1/64"]);
    for name in workers {
        let addrs: Vec<String> = node_of(name)
            .ips
            .iter()
            .map(|ip| format!("{ip}/{}", if ip.is_ipv6() { 64 } else { 24 }))
            .collect();
        let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        lab = lab.node(name, &addrs);
    }
    let lab = lab.build();
    let internet = Netns::new("pnnet");
    lab.host.veth_to("inet0", &internet, "eth0");
    lab.host.add_addr("inet0", "203.0.113.254/24");
    lab.host.add_addr("inet0", "2001:db8:ffff::fe/64");
    internet.add_addr("eth0", &format!("{INTERNET_V4}/24"));
    internet.add_addr("eth0", &format!("{INTERNET_V6}/64"));
    internet.ip(&["route", "add", "10.240.0.0/24", "via", "203.0.113.254"]);
    internet.ip(&[
        "-6",
        "route",
        "add",
        "fd00:10:240::/64",
        "via",
        "2001:db8:ffff::fe",
    ]);

    let data = tempfile::tempdir().unwrap();
    let mut pods = Vec::new();
    for name in workers {
        let node = lab.node(name);
        node.ip(&["route", "add", "default", "via", "10.240.0.1"]);
        node.ip(&["-6", "route", "add", "default", "via", "fd00:10:240::1"]);
        pods.push(make_pod(node, &out, &doc, name, data.path()));
        // The node's copy of the document, as route-sync.service reads it at boot.
        let copy = node_file(&out, &doc, name, hardway::paths::hardway::DOCUMENT);
        node.run_ok(
            testkit::bin("route-sync"),
            &["--node", name, "-f", copy.to_str().unwrap()],
        );
    }
    let (a, b) = (&pods[0], &pods[1]);
    let node_b = lab.node("worker2");

    for v6 in [false, true] {
        let internet_ip: IpAddr = if v6 { INTERNET_V6 } else { INTERNET_V4 }.parse().unwrap();
        // Positive control: no table, no masquerade (and the conflist itself masquerades nothing).
        assert_eq!(
            source_seen(&a.ns, &internet, internet_ip),
            a.ip(v6),
            "before the table is loaded the internet sees the pod"
        );
        assert_eq!(source_seen(&a.ns, &b.ns, b.ip(v6)), a.ip(v6));
    }

    let unit = "hardway-masquerade.service";
    for name in workers {
        let start = unit_command(&out, &doc, name, unit, "ExecStart");
        assert_eq!(start[0], nft.display().to_string(), "{start:?}");
        let node = lab.node(name);
        // Twice, as a restarted unit would: the file replaces the table, it does not add to it.
        run_unit_command(node, &start);
        run_unit_command(node, &start);
        let tables = node.run_ok(nft, &["list", "tables"]);
        assert_eq!(
            tables
                .lines()
                .filter(|l| l.trim() == "table inet hardway")
                .count(),
            1,
            "{tables}"
        );
    }

    for v6 in [false, true] {
        let family = if v6 { "IPv6" } else { "IPv4" };
        let internet_ip: IpAddr = if v6 { INTERNET_V6 } else { INTERNET_V4 }.parse().unwrap();
        assert_eq!(
            source_seen(&a.ns, &b.ns, b.ip(v6)),
            a.ip(v6),
            "{family}: pod B must see pod A's own address"
        );
        let node_b_ip = node_of("worker2").ip_of_family(v6).unwrap();
        assert_eq!(
            source_seen(&a.ns, node_b, node_b_ip),
            a.ip(v6),
            "{family}: node B must see pod A's own address"
        );
        assert_eq!(
            source_seen(&a.ns, &internet, internet_ip),
            node_of("worker1").ip_of_family(v6).unwrap(),
            "{family}: the internet must see node A's address"
        );
        // And back: pod B reaches pod A unmasqueraded through node A's table too.
        assert_eq!(source_seen(&b.ns, &a.ns, a.ip(v6)), b.ip(v6), "{family}");
    }

    // Stopping the unit removes the table: pods leave unmasqueraded again.
    let node_a = lab.node("worker1");
    run_unit_command(
        node_a,
        &unit_command(&out, &doc, "worker1", unit, "ExecStop"),
    );
    let tables = node_a.run_ok(nft, &["list", "tables"]);
    assert!(!tables.contains("hardway"), "{tables}");
    let internet_v4: IpAddr = INTERNET_V4.parse().unwrap();
    assert_eq!(source_seen(&a.ns, &internet, internet_v4), a.ip(false));
}
