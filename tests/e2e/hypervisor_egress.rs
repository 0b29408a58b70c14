//! A cluster across two hypervisors routes between them with every source address kept, and
//! masquerades only what leaves the cluster (issue 19 item 2), in network namespaces shaped like
//! two machines (`testkit::netns::TwoHypervisorLabs`) from the real-pipeline fixture
//! tests/fixtures/hypervisors/two.json, with a third namespace behind hv-a standing for the
//! internet (documentation addresses; it has no route back into the cluster, as the internet
//! knows only a NAT's public address).
//!
//! What it runs: mkunits (its `hypervisors/NAME/hardway-egress.nft`, loaded with Debian's
//! `nft -f` on each hypervisor, twice), route-sync `--host --hypervisor` on each hypervisor and
//! `--node` on each node, and UDP datagrams that say who sent them. A positive control first:
//! before the tables are loaded the internet sees the node's own address, so the hypervisor's
//! address seen afterwards is the table's doing. What it does not: libvirt, VMs, Kubernetes.

use std::net::IpAddr;
use std::path::Path;

use hardway::Document;
use testkit::netns::{Netns, TwoHypervisorLabs};

use crate::pod_network::source_seen;

const INTERNET: &str = "203.0.113.1";
/// hv-a's address towards the internet: what a masqueraded packet leaves with.
const HV_A_UPLINK: &str = "203.0.113.254";

#[test]
fn between_hypervisors_sources_are_kept_and_only_traffic_leaving_the_cluster_is_masqueraded() {
    testkit::require_root();
    let nft = Path::new("/usr/sbin/nft");
    assert!(nft.exists(), "nft is missing: install Debian's nftables");
    let fixture = testkit::workspace_root().join("tests/fixtures/hypervisors/two.json");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let bin_dir = testkit::target_dir();
    let rendered = testkit::run_piped(
        &testkit::bin("mkunits"),
        &[
            "--dir",
            out.to_str().unwrap(),
            "--bin-dir",
            bin_dir.to_str().unwrap(),
        ],
        &std::fs::read(&fixture).unwrap(),
    );
    let doc: Document = serde_json::from_slice(&rendered).unwrap();
    let doc_path = tmp.path().join("two.json");
    std::fs::write(&doc_path, &rendered).unwrap();
    let doc_arg = doc_path.to_str().unwrap();

    let m = TwoHypervisorLabs::build(&doc);
    let internet = Netns::new("egnet");
    m.a.host.veth_to("inet0", &internet, "eth0");
    m.a.host.add_addr("inet0", &format!("{HV_A_UPLINK}/24"));
    internet.add_addr("eth0", &format!("{INTERNET}/24"));
    m.a.host.ip(&["route", "add", "default", "via", INTERNET]);
    for (lab, name) in [(&m.a, "hv-a"), (&m.b, "hv-b")] {
        let args = ["--host", "--hypervisor", name, "-f", doc_arg];
        lab.host.run_ok(testkit::bin("route-sync"), &args);
    }
    for node in m.nodes() {
        node.run_ok(
            testkit::bin("route-sync"),
            &["--node", &node.name, "-f", doc_arg],
        );
    }
    let (a1, b1) = (m.node("node-a1"), m.node("node-b1"));
    let ip_of = |name: &str| doc.node(name).unwrap().ips[0];
    let internet_ip: IpAddr = INTERNET.parse().unwrap();

    // Positive control: no table yet, nothing rewrites the node's address.
    assert_eq!(source_seen(a1, &internet, internet_ip), ip_of("node-a1"));

    for (lab, name) in [(&m.a, "hv-a"), (&m.b, "hv-b")] {
        let file = out.join(format!("hypervisors/{name}/hardway-egress.nft"));
        let file = file.to_str().unwrap();
        // Twice, as after a re-run: the file replaces its table, it does not add a second.
        lab.host.run_ok(nft, &["-f", file]);
        let once = lab
            .host
            .run_ok(nft, &["list", "table", "inet", "hardway-egress"]);
        lab.host.run_ok(nft, &["-f", file]);
        let twice = lab
            .host
            .run_ok(nft, &["list", "table", "inet", "hardway-egress"]);
        assert_eq!(once, twice, "{name}");
    }

    assert_eq!(
        source_seen(a1, &internet, internet_ip),
        HV_A_UPLINK.parse::<IpAddr>().unwrap(),
        "the internet must see hv-a's address"
    );
    // Across the hypervisors, node to node both ways: the node's own address.
    assert_eq!(source_seen(a1, b1, ip_of("node-b1")), ip_of("node-a1"));
    assert_eq!(source_seen(b1, a1, ip_of("node-a1")), ip_of("node-b1"));
    // From a pod on node-a1: to node-b1 it keeps its own address; to the internet it leaves as
    // hv-a (node-a1's own masquerade table is not loaded here: the hypervisor's covers its
    // nodes' pod CIDRs too).
    let (pod, pod_ip) = pod_on(a1, &doc);
    assert_eq!(source_seen(&pod, b1, ip_of("node-b1")), pod_ip);
    assert_eq!(
        source_seen(&pod, &internet, internet_ip),
        HV_A_UPLINK.parse::<IpAddr>().unwrap()
    );
}

/// A pod on `node`: a namespace holding the far end of the node's stand-in cni0 (the veth
/// `cni0-q` testkit plugged into it) with the pod CIDR's second address, routed via the first.
fn pod_on(node: &testkit::netns::LabNode, doc: &Document) -> (Netns, IpAddr) {
    let cidr = doc.node(&node.name).unwrap().pod_cidrs[0];
    let mut hosts = cidr.hosts();
    let (gateway, ip) = (hosts.next().unwrap(), hosts.next().unwrap());
    let pod = Netns::new("egpod");
    node.ip(&["link", "set", "cni0-q", "netns", pod.name()]);
    pod.add_addr("cni0-q", &format!("{ip}/{}", cidr.prefix_len()));
    pod.ip(&["link", "set", "cni0-q", "up"]);
    pod.ip(&["route", "add", "default", "via", &gateway.to_string()]);
    (pod, ip)
}
