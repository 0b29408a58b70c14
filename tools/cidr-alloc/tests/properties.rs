//! Properties of the allocator over random inventories: no two nodes share an IP, MAC or pod
//! CIDR; every value is inside its range; the same input gives the same output; a re-run on its
//! own output changes nothing; adding and removing nodes never moves the others (--previous).

use std::collections::HashSet;

use hardway::{Document, Role};
use ipnet::IpNet;
use proptest::prelude::*;
use serde_json::json;

mod common;
use common::{check_stable, networks, role_names, run, survivors};

/// One generated node: roles as a bit mask, and optional pinned values (offsets into the ranges).
#[derive(Debug, Clone)]
struct Spec {
    roles: u8,
    ip: Option<u8>,
    pod: Option<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        1u8..16,
        proptest::option::of(2u8..=254),
        proptest::option::of(0u8..=255),
    )
        .prop_map(|(roles, ip, pod)| Spec { roles, ip, pod })
}

fn document(specs: &[(String, Spec)], dual: bool) -> Document {
    let nodes: Vec<_> = specs
        .iter()
        .map(|(name, s)| {
            let roles = role_names(s.roles);
            // Pins stay unique: a duplicate pin is a refusal, tested elsewhere.
            let ips: Vec<String> = s.ip.map(|o| format!("10.240.0.{o}")).into_iter().collect();
            let pods: Vec<String> = s
                .pod
                .map(|o| format!("10.200.{o}.0/24"))
                .into_iter()
                .collect();
            json!({"name": name, "roles": roles, "ips": ips, "pod_cidrs": pods,
                   "vcpus": 1, "memory_mib": 512, "disk_gib": 4, "host": null})
        })
        .collect();
    let doc = json!({
        "version": 1,
        "cluster": {"name": "prop", "domain": "example.com", "cluster_domain": "cluster.local",
                    "kubernetes_version": "v1.32.3",
                    "networks": networks(dual),
                    "api": {"port": 6443}, "pod_network": "routes"},
        "hypervisor": {"uri": "qemu:///system", "network": "prop", "pool": "hardway"},
        "nodes": nodes
    });
    hardway::doc::from_str(&doc.to_string(), "generated").unwrap()
}

fn inventory() -> impl Strategy<Value = (Vec<(String, Spec)>, bool)> {
    (proptest::collection::vec(spec(), 1..40), any::<bool>()).prop_map(|(specs, dual)| {
        // Pins are unique from the start (a duplicate pin is a refusal, tested elsewhere), so
        // removing a node never un-hides another node's pin.
        let mut ips = HashSet::new();
        let mut pods = HashSet::new();
        let named = specs
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                s.ip = s.ip.filter(|o| ips.insert(*o));
                s.pod = s.pod.filter(|o| s.roles & 0b0100 != 0 && pods.insert(*o));
                (format!("n{i}"), s)
            })
            .collect();
        (named, dual)
    })
}

fn check_invariants(doc: &Document) {
    let nets = &doc.cluster.networks;
    let mut ips = HashSet::new();
    let mut macs = HashSet::new();
    let mut pods: HashSet<IpNet> = HashSet::new();
    for node in &doc.nodes {
        assert_eq!(node.ips.len(), nets.node.len(), "{node:?}");
        for (ip, net) in node.ips.iter().zip(&nets.node) {
            assert!(net.contains(ip), "{ip} outside {net}");
            assert_ne!(Some(*ip), hardway::validate::nth_host(*net, 0));
            assert_ne!(
                Some(*ip),
                hardway::validate::nth_host(*net, 1),
                "gateway given out"
            );
            assert!(ips.insert(*ip), "{ip} twice");
        }
        let mac = node.mac.clone().expect("every node has a MAC");
        assert!(mac.starts_with("52:54:00:"), "{mac}");
        assert!(macs.insert(mac.clone()), "{mac} twice");
        if node.has_role(Role::Worker) {
            assert_eq!(node.pod_cidrs.len(), nets.pod.len(), "{node:?}");
        }
        for cidr in &node.pod_cidrs {
            let (net, prefix) = nets
                .pod
                .iter()
                .zip(&nets.pod_prefix)
                .find(|(n, _)| n.contains(cidr))
                .expect("pod CIDR inside a pod network");
            assert_eq!(cidr.prefix_len(), *prefix, "{cidr} in {net}");
            assert!(pods.insert(*cidr), "{cidr} twice");
        }
    }
    let controllers = doc.nodes_with(Role::Controller).count();
    match doc.cluster.api.vip {
        Some(vip) => {
            assert!(nets.node.iter().any(|n| n.contains(&vip)));
            if let Some(holder) = doc.nodes.iter().find(|n| n.ips.contains(&vip)) {
                assert!(holder.has_role(Role::Controller) || holder.has_role(Role::Lb));
            }
        }
        None => assert_eq!(controllers, 0),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn values_are_unique_and_inside_their_ranges((specs, dual) in inventory()) {
        let out = run(&document(&specs, dual), None);
        check_invariants(&out);
    }

    #[test]
    fn same_input_same_output_and_rerun_changes_nothing((specs, dual) in inventory()) {
        check_stable(&document(&specs, dual))?;
    }

    #[test]
    fn adding_and_removing_nodes_moves_no_other(
        (specs, dual) in inventory(),
        remove in proptest::collection::vec(any::<bool>(), 40),
        added in proptest::collection::vec((spec(), 0usize..40), 0..10),
    ) {
        let first = run(&document(&specs, dual), None);
        let mut changed = survivors(&specs, &remove);
        for (i, (mut s, at)) in added.into_iter().enumerate() {
            // A newcomer pins nothing: pins could clash with survivors by construction.
            s.ip = None;
            s.pod = None;
            let at = at.min(changed.len());
            changed.insert(at, (format!("new{i}"), s));
        }
        if changed.is_empty() {
            return Ok(());
        }
        let second = run(&document(&changed, dual), Some(&first));
        check_invariants(&second);
        for node in &second.nodes {
            if let Some(before) = first.node(&node.name) {
                prop_assert_eq!(&node.ips, &before.ips);
                prop_assert_eq!(&node.mac, &before.mac);
                prop_assert_eq!(&node.pod_cidrs, &before.pod_cidrs);
            }
        }
        if first.cluster.api.vip.is_some() && second.nodes_with(Role::Controller).count() > 1 {
            prop_assert_eq!(second.cluster.api.vip, first.cluster.api.vip);
        }
    }
}

#[test]
fn mac_collisions_resolve_deterministically_for_many_nodes() {
    // 20,000 nodes in a 24-bit space collide a dozen times: every MAC still unique and stable.
    let specs: Vec<(String, Spec)> = (0..20_000)
        .map(|i| {
            (
                format!("node-{i}"),
                Spec {
                    roles: 0b0100,
                    ip: None,
                    pod: None,
                },
            )
        })
        .collect();
    let mut doc = document(&specs[..1], false);
    let template = doc.nodes[0].clone();
    doc.nodes = specs
        .iter()
        .map(|(name, _)| hardway::Node {
            name: name.clone(),
            ..template.clone()
        })
        .collect();
    doc.cluster.networks.node = vec!["10.0.0.0/16".parse().unwrap()];
    doc.cluster.networks.pod = vec!["10.128.0.0/9".parse().unwrap()];
    doc.hypervisor = None;
    let out = run(&doc, None);
    let macs: HashSet<_> = out.nodes.iter().map(|n| n.mac.clone()).collect();
    assert_eq!(macs.len(), 20_000);
    assert_eq!(out, run(&doc, None));
}
