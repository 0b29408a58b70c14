//! A cluster across two hypervisors, in network namespaces (`testkit::netns::TwoHypervisorLabs`:
//! each hypervisor a bridge on its node slice with its nodes plugged in, the two joined by a
//! veth pair standing for the network between the machines). The document is
//! tests/fixtures/hypervisors/two.json, a real `mkcluster --hypervisor … | cidr-alloc` output:
//! node-a1 and node-a2 on hv-a (10.240.0.0/25), node-b1 and node-b2 on hv-b (10.240.0.128/25).
//!
//! What it runs: route-sync `--host --hypervisor` in each hypervisor's namespace and `--node` in
//! each node's, and ping between them. What it does not: no libvirt, no VM (tests/hypervisors
//! boots those), no masquerade (tests/e2e hypervisor_egress loads mkunits' egress table).

use super::*;
use testkit::netns::TwoHypervisorLabs;

#[test]
fn two_hypervisors_route_between_their_slices_and_pod_cidrs_with_addresses_kept() {
    testkit::require_root();
    let doc = testkit::fixture_document("hypervisors/two.json");
    let machines = TwoHypervisorLabs::build(&doc);
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
        let join = TwoHypervisorLabs::JOIN_DEV;
        assert!(
            through
                .iter()
                .all(|e| e.dev == join && e.hypervisor.is_some()),
            "{r:?}"
        );
        assert_eq!(through.iter().filter(|e| e.node.is_none()).count(), 1);
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
    let untouched = r.added.is_empty() && r.replaced.is_empty() && r.removed.is_empty();
    assert!(untouched && r.conflicts.is_empty(), "{r:?}");
    let n = &r.nexthops;
    assert!(
        n.added.is_empty() && n.replaced.is_empty() && n.removed.is_empty(),
        "{r:?}"
    );
    assert_eq!((r.unchanged, n.unchanged), (routes, nexthops), "{r:?}");
}

/// From each node's pod gateway to every other node's pod gateway and node address: the reply
/// finds its way back to the sender's pod CIDR only if every hop routes it, with the pod
/// address kept (no hop here rewrites a source).
fn every_node_reaches_every_pod_gateway_from_its_own_pod_address(
    m: &TwoHypervisorLabs,
    doc: &Document,
) {
    let pod_gateway = |name: &str| doc.node(name).unwrap().pod_cidrs[0].hosts().next().unwrap();
    for from in m.nodes() {
        let source = pod_gateway(&from.name).to_string();
        for to in m.nodes().filter(|n| n.name != from.name) {
            for address in [pod_gateway(&to.name), doc.node(&to.name).unwrap().ips[0]] {
                let target = address.to_string();
                let out = from.exec("ping", &["-c1", "-W3", "-I", &source, &target]);
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
