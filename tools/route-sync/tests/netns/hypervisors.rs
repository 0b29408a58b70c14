//! A cluster across two hypervisors, in network namespaces: each hypervisor a [`Lab`] (its
//! bridge on its node slice, its nodes plugged in), the two hypervisors joined by a veth pair on
//! 192.168.50.0/24 standing for the network between the machines. The document is
//! tests/fixtures/hypervisors/two.json, a real `mkcluster --hypervisor … | cidr-alloc` output:
//! node-a1 and node-a2 on hv-a (10.240.0.0/25), node-b1 and node-b2 on hv-b (10.240.0.128/25).
//!
//! What it runs: route-sync `--host --hypervisor` in each hypervisor's namespace and `--node` in
//! each node's, and ping between them. What it does not: no libvirt, no VM (tests/hypervisors
//! boots those), and no masquerade (nothing here leaves the cluster).

use super::*;
use testkit::netns::LabNode;

/// The two hypervisors of the fixture, each with its two nodes, and every node's pod gateway on
/// a stand-in cni0 bridge (the address a CNI bridge would hold).
struct TwoMachines {
    a: Lab,
    b: Lab,
}

impl TwoMachines {
    fn build(doc: &Document) -> TwoMachines {
        let lab = |prefix: &str, gateway: &str, nodes: [&str; 2]| {
            let mut builder = Lab::builder(prefix).host_bridge(&[gateway]);
            for name in nodes {
                let ip = doc.nodes.iter().find(|n| n.name == name).unwrap().ips[0];
                builder = builder.node(name, &[&format!("{ip}/25")]);
            }
            builder.build()
        };
        let a = lab("rs-hva", "10.240.0.1/25", ["node-a1", "node-a2"]);
        let b = lab("rs-hvb", "10.240.0.129/25", ["node-b1", "node-b2"]);
        a.host.veth_to("hv0", &b.host, "hv0");
        a.host.add_addr("hv0", "192.168.50.1/24");
        b.host.add_addr("hv0", "192.168.50.2/24");
        for (lab, gateway) in [(&a, "10.240.0.1"), (&b, "10.240.0.129")] {
            for node in &lab.nodes {
                // mkvm's seed gives each node this default route.
                node.ip(&["route", "add", "default", "via", gateway]);
                let pod = doc.nodes.iter().find(|n| n.name == node.name).unwrap();
                let cidr = pod.pod_cidrs[0];
                let pod_gateway = format!("{}/{}", pod_gateway(&cidr), cidr.prefix_len());
                node.add_bridge("cni0", &[&pod_gateway]);
            }
        }
        TwoMachines { a, b }
    }

    fn nodes(&self) -> impl Iterator<Item = &LabNode> {
        self.a.nodes.iter().chain(&self.b.nodes)
    }
}

fn pod_gateway(cidr: &IpNet) -> IpAddr {
    cidr.hosts().next().unwrap()
}

#[test]
fn two_hypervisors_route_between_their_slices_and_pod_cidrs_with_addresses_kept() {
    testkit::require_root();
    let doc = testkit::fixture_document("hypervisors/two.json");
    let machines = TwoMachines::build(&doc);
    let dir = tempfile::tempdir().unwrap();
    let file = write_doc(dir.path(), "two.json", &doc);

    // Without --hypervisor, a hypervisor of several cannot know which routes are its own.
    let out = route_sync(&machines.a.host, &["--host", "-f", &file]);
    let line = testkit::assert_one_line_error(&out, "route-sync", 2);
    assert!(line.contains("--hypervisor"), "{line}");
    assert!(routes(&machines.a.host, "200", "main").is_empty());

    for (lab, name, other) in [
        (&machines.a, "hv-a", "192.168.50.2"),
        (&machines.b, "hv-b", "192.168.50.1"),
    ] {
        let r = sync_expect(&lab.host, &["--host", "--hypervisor", name, "-f", &file], 0);
        // Its two nodes' pod CIDRs straight, the other's two and its slice through it.
        assert_eq!(r.added.len(), 5, "{r:?}");
        let through: Vec<&RouteEntry> = r
            .added
            .iter()
            .filter(|e| e.gateway.to_string() == other)
            .collect();
        assert_eq!(through.len(), 3, "{r:?}");
        assert!(
            through
                .iter()
                .all(|e| e.dev == "hv0" && e.hypervisor.is_some()),
            "{r:?}"
        );
        assert_eq!(
            through.iter().filter(|e| e.node.is_none()).count(),
            1,
            "{r:?}"
        );
        // One nexthop per local node, one for the other hypervisor, named by all three.
        assert_eq!(r.nexthops.added.len(), 3, "{r:?}");
        let ids: BTreeSet<Option<u32>> = through.iter().map(|e| e.nexthop).collect();
        assert_eq!(ids.len(), 1, "{r:?}");
        assert_routes_name_their_nexthops(&lab.host);
    }
    for node in machines.nodes() {
        let r = sync_expect(node, &["--node", &node.name, "-f", &file], 0);
        // The neighbour straight, the other hypervisor's two nodes through this one's gateway.
        assert_eq!(r.added.len(), 3, "{}: {r:?}", node.name);
        assert_eq!(r.nexthops.added.len(), 2, "{}: {r:?}", node.name);
        assert_routes_name_their_nexthops(node);
    }
    every_node_reaches_every_pod_gateway_from_its_own_pod_address(&machines, &doc);

    // Second runs change nothing and send no write request.
    for (lab, name) in [(&machines.a, "hv-a"), (&machines.b, "hv-b")] {
        let monitor = Monitor::start(&lab.host);
        let r = sync_expect(&lab.host, &["--host", "--hypervisor", name, "-f", &file], 0);
        assert_eq!(monitor.stop(), Vec::<String>::new(), "{name}");
        assert_nothing_changed(&r, 5, 3);
    }
    for node in machines.nodes() {
        let r = sync_expect(node, &["--node", &node.name, "-f", &file], 0);
        assert_nothing_changed(&r, 3, 2);
    }
}

fn assert_nothing_changed(r: &Report, routes: usize, nexthops: usize) {
    assert!(
        r.added.is_empty() && r.replaced.is_empty() && r.removed.is_empty(),
        "{r:?}"
    );
    assert!(
        r.nexthops.added.is_empty() && r.nexthops.replaced.is_empty(),
        "{r:?}"
    );
    assert!(
        r.nexthops.removed.is_empty() && r.conflicts.is_empty(),
        "{r:?}"
    );
    assert_eq!(
        (r.unchanged, r.nexthops.unchanged),
        (routes, nexthops),
        "{r:?}"
    );
}

/// From each node's pod gateway to every other node's pod gateway and node address: the reply
/// finds its way back to the sender's pod CIDR only if every hop routes it, with the pod
/// address kept (no hop here rewrites a source).
fn every_node_reaches_every_pod_gateway_from_its_own_pod_address(m: &TwoMachines, doc: &Document) {
    let node_of = |name: &str| doc.nodes.iter().find(|n| n.name == name).unwrap();
    for from in m.nodes() {
        let source = pod_gateway(&node_of(&from.name).pod_cidrs[0]).to_string();
        for to in m.nodes().filter(|n| n.name != from.name) {
            let target = node_of(&to.name);
            for address in [pod_gateway(&target.pod_cidrs[0]), target.ips[0]] {
                let out = from.exec("ping", &["-c1", "-W3", "-I", &source, &address.to_string()]);
                assert!(
                    out.status.success(),
                    "{} ({source}) -> {} {address}: {}",
                    from.name,
                    to.name,
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
    }
}
