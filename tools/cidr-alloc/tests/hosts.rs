//! Several hypervisors (issue 19) over random inventories: each hypervisor gets its own part of
//! every node network, each node's address is in its hypervisor's part, the same input gives the
//! same output, adding or removing nodes on one hypervisor moves nothing on another, and one
//! listed hypervisor gives exactly the addresses of a document that lists none. Then the binary's
//! refusals: one line naming the JSON path, exit 2, nothing on stdout.

use std::collections::HashSet;
use std::net::IpAddr;

use assert_cmd::Command;
use hardway::{Document, Role};
use ipnet::IpNet;
use proptest::prelude::*;
use serde_json::{json, Value};

mod common;
use common::{check_stable, networks, role_names, run, survivors};

/// One generated node: roles as a bit mask and the index of its hypervisor.
#[derive(Debug, Clone)]
struct Spec {
    roles: u8,
    host: usize,
}

fn uri(h: usize) -> String {
    format!("qemu+ssh://root@hv-{h}/system")
}

fn hypervisors(count: usize) -> Value {
    (0..count)
        .map(|h| json!({"name": format!("hv-{h}"), "uri": uri(h), "address": format!("192.168.50.{}", h + 1)}))
        .collect()
}

/// A worker (roles mask 0b0100) on hypervisor `host`.
fn worker(host: usize) -> Spec {
    Spec {
        roles: 0b0100,
        host,
    }
}

/// Workers w0, w1, … on the hypervisors `host` gives them.
fn workers(count: usize, host: impl Fn(usize) -> usize) -> Vec<(String, Spec)> {
    (0..count)
        .map(|i| (format!("w{i}"), worker(host(i))))
        .collect()
}

/// The document mkcluster makes: nothing allocated; `count` hypervisors (0: none listed).
fn document(specs: &[(String, Spec)], count: usize, dual: bool) -> Value {
    let nodes: Vec<Value> = specs
        .iter()
        .map(|(name, s)| {
            let roles = role_names(s.roles);
            let host = (count > 0).then(|| uri(s.host % count));
            json!({"name": name, "roles": roles, "vcpus": 1, "memory_mib": 512, "disk_gib": 4,
                   "host": host})
        })
        .collect();
    let mut doc = json!({
        "version": 1,
        "cluster": {"name": "hosts", "domain": "example.com", "cluster_domain": "cluster.local",
                    "kubernetes_version": "v1.37.2",
                    "networks": networks(dual),
                    "api": {"port": 6443}, "pod_network": "routes"},
        "hypervisor": {"uri": "qemu:///system", "network": "hosts", "gateway": "10.240.0.1",
                       "pool": "hardway"},
        "nodes": nodes
    });
    if count > 0 {
        doc["hypervisors"] = hypervisors(count);
    }
    doc
}

fn parse(doc: &Value) -> Document {
    let doc = hardway::doc::from_str(&doc.to_string(), "generated").unwrap();
    doc.validate().unwrap();
    doc
}

fn inventory() -> impl Strategy<Value = (Vec<(String, Spec)>, usize, bool)> {
    let spec = (1u8..16, 0usize..4).prop_map(|(roles, host)| Spec { roles, host });
    (
        proptest::collection::vec(spec, 1..40),
        1usize..=4,
        any::<bool>(),
    )
        .prop_map(|(specs, count, dual)| {
            let named = specs
                .into_iter()
                .enumerate()
                .map(|(i, s)| (format!("n{i}"), s))
                .collect();
            (named, count, dual)
        })
}

fn check_slices_and_addresses(doc: &Document) {
    let nets = &doc.cluster.networks.node;
    let mut slices: Vec<IpNet> = Vec::new();
    for host in &doc.hypervisors {
        assert_eq!(host.node_slice.len(), nets.len(), "{host:?}");
        for (slice, net) in host.node_slice.iter().zip(nets) {
            assert!(net.contains(slice), "{slice} outside {net}");
            assert!(
                !slices.iter().any(|s| hardway::validate::overlaps(s, slice)),
                "{slice} shared"
            );
            slices.push(*slice);
        }
    }
    let mut seen: HashSet<IpAddr> = HashSet::new();
    for node in &doc.nodes {
        let host = doc.hypervisor_of(node).expect("every node on a listed one");
        assert_eq!(node.ips.len(), nets.len(), "{node:?}");
        for (ip, slice) in node.ips.iter().zip(&host.node_slice) {
            assert!(
                slice.contains(ip),
                "{} at {ip} outside {slice} of {}",
                node.name,
                host.name
            );
            // Not the slice's network address, not its gateway (the first host).
            for n in [0, 1] {
                assert_ne!(Some(*ip), hardway::validate::nth_host(*slice, n), "{slice}");
            }
            if let IpNet::V4(v4) = slice {
                assert_ne!(*ip, IpAddr::V4(v4.broadcast()));
            }
            assert!(seen.insert(*ip), "{ip} twice");
        }
    }
    if let Some(vip) = doc.cluster.api.vip {
        if let Some(holder) = doc.nodes.iter().find(|n| n.ips.contains(&vip)) {
            assert!(holder.has_role(Role::Controller) || holder.has_role(Role::Lb));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn each_node_is_addressed_in_its_hypervisors_own_slice((specs, count, dual) in inventory()) {
        let out = run(&parse(&document(&specs, count, dual)), None);
        check_slices_and_addresses(&out);
    }

    #[test]
    fn same_input_same_output_and_rerun_changes_nothing((specs, count, dual) in inventory()) {
        check_stable(&parse(&document(&specs, count, dual)))?;
    }

    #[test]
    fn nodes_added_or_removed_on_one_hypervisor_move_nothing_elsewhere(
        (specs, count, dual) in inventory(),
        remove in proptest::collection::vec(any::<bool>(), 40),
        added in proptest::collection::vec((0usize..4, 0usize..40), 0..10),
    ) {
        let first = run(&parse(&document(&specs, count, dual)), None);
        let mut changed = survivors(&specs, &remove);
        for (i, (host, at)) in added.into_iter().enumerate() {
            let at = at.min(changed.len());
            changed.insert(at, (format!("new{i}"), worker(host)));
        }
        if changed.is_empty() {
            return Ok(());
        }
        let second = run(&parse(&document(&changed, count, dual)), Some(&first));
        check_slices_and_addresses(&second);
        prop_assert_eq!(&second.hypervisors, &first.hypervisors);
        for node in &second.nodes {
            if let Some(before) = first.node(&node.name) {
                prop_assert_eq!(&node.ips, &before.ips);
            }
        }
    }

    /// A document listing one hypervisor is addressed exactly as one listing none (today's).
    #[test]
    fn one_listed_hypervisor_addresses_as_none_listed((specs, _count, dual) in inventory()) {
        let one = run(&parse(&document(&specs, 1, dual)), None);
        let none = run(&parse(&document(&specs, 0, dual)), None);
        prop_assert_eq!(&one.hypervisors[0].node_slice, &one.cluster.networks.node);
        prop_assert_eq!(one.cluster.api.vip, none.cluster.api.vip);
        for (a, b) in one.nodes.iter().zip(&none.nodes) {
            prop_assert_eq!(&a.ips, &b.ips);
            prop_assert_eq!(&a.pod_cidrs, &b.pod_cidrs);
        }
    }
}

#[test]
fn a_pinned_slice_is_kept_and_the_other_takes_the_rest() {
    let specs = workers(4, |i| i % 2);
    let mut doc = document(&specs, 2, false);
    doc["hypervisors"][0]["node_slice"] = json!(["10.240.0.128/25"]);
    let out = run(&parse(&doc), None);
    let slices: Vec<String> = out
        .hypervisors
        .iter()
        .map(|h| h.node_slice[0].to_string())
        .collect();
    assert_eq!(slices, ["10.240.0.128/25", "10.240.0.0/25"]);
    let ips: Vec<String> = out.nodes.iter().map(|n| n.ips[0].to_string()).collect();
    // hv-0's nodes after its gateway .129; hv-1's after the top-level gateway .1.
    assert_eq!(
        ips,
        ["10.240.0.130", "10.240.0.2", "10.240.0.131", "10.240.0.3"]
    );
    check_slices_and_addresses(&out);
}

#[test]
fn a_node_moved_to_another_hypervisor_is_readdressed_there() {
    let specs = workers(3, |_| 0);
    let first = run(&parse(&document(&specs, 2, false)), None);
    let mut moved = specs.clone();
    moved[1].1.host = 1;
    let second = run(&parse(&document(&moved, 2, false)), Some(&first));
    check_slices_and_addresses(&second);
    assert_eq!(second.nodes[0].ips, first.nodes[0].ips);
    assert_eq!(second.nodes[2].ips, first.nodes[2].ips);
    assert!(second.hypervisors[1].node_slice[0].contains(&second.nodes[1].ips[0]));
}

#[test]
fn growing_from_one_hypervisor_to_two_keeps_the_nodes_that_stay() {
    let specs = workers(4, |_| 0);
    let before = run(&parse(&document(&specs, 0, false)), None);
    // The machine it ran on becomes hv-0 (same URI); w0 goes (so a re-addressed w1 would move
    // down into its address), and a new node goes on hv-1.
    let mut grown = specs[1..].to_vec();
    grown.push(("w4".into(), worker(1)));
    let text = document(&grown, 2, false)
        .to_string()
        .replace(&uri(0), "qemu:///system");
    let after = run(&parse(&serde_json::from_str(&text).unwrap()), Some(&before));
    check_slices_and_addresses(&after);
    for node in &before.nodes[1..] {
        assert_eq!(
            after.node(&node.name).unwrap().ips,
            node.ips,
            "{}",
            node.name
        );
    }
    assert_eq!(after.node("w4").unwrap().ips[0].to_string(), "10.240.0.130");
}

/// Runs the binary expecting a refusal; returns its one error line.
fn refuse(doc: &Value) -> String {
    let out = Command::cargo_bin("cidr-alloc")
        .unwrap()
        .write_stdin(doc.to_string())
        .output()
        .unwrap();
    testkit::assert_one_line_error(&out, "cidr-alloc", 2)
}

/// One refusal: `workers` workers, on hypervisor `i` each when `spread` (else all on hv-0), with
/// `hypervisors` listed; `edits` set at JSON pointers (the last key may be new); the error line
/// it must start with.
struct Refusal {
    workers: usize,
    spread: bool,
    hypervisors: usize,
    edits: &'static [(&'static str, &'static str)],
    starts: &'static str,
}

const REFUSALS: &[Refusal] = &[
    // Two hypervisors pinned to both halves leave no part for a third.
    Refusal {
        workers: 3,
        spread: true,
        hypervisors: 3,
        edits: &[
            ("/hypervisors/0/node_slice", r#"["10.240.0.0/25"]"#),
            ("/hypervisors/1/node_slice", r#"["10.240.0.128/25"]"#),
        ],
        starts: "cidr-alloc: error: hypervisors[2].node_slice: no free /26",
    },
    // A /28 shared by two: a /29 each holds five nodes, not six.
    Refusal {
        workers: 6,
        spread: false,
        hypervisors: 2,
        edits: &[("/cluster/networks/node", r#"["10.240.0.0/28"]"#)],
        starts: "cidr-alloc: error: hypervisors[0].node_slice[0]: node slice 10.240.0.0/29 of hypervisor hv-0 is exhausted",
    },
    // Five hypervisors cannot share a /28: a /31 each would hold no node.
    Refusal {
        workers: 5,
        spread: true,
        hypervisors: 5,
        edits: &[("/cluster/networks/node", r#"["10.240.0.0/28"]"#)],
        starts: "cidr-alloc: error: hypervisors[0].node_slice: node network 10.240.0.0/28 cannot be split into 5 slices",
    },
    // A node on a hypervisor the document does not list.
    Refusal {
        workers: 2,
        spread: false,
        hypervisors: 2,
        edits: &[("/nodes/1/host", r#""qemu+ssh://hv-9/system""#)],
        starts: "cidr-alloc: error: nodes[1].host: ",
    },
    // A pinned address in another hypervisor's slice, and one on a slice's gateway.
    Refusal {
        workers: 2,
        spread: true,
        hypervisors: 2,
        edits: &[("/nodes/1/ips", r#"["10.240.0.5"]"#)],
        starts: "cidr-alloc: error: nodes[1].ips[0]: 10.240.0.5 of node w1 is outside node slice 10.240.0.128/25",
    },
    Refusal {
        workers: 2,
        spread: true,
        hypervisors: 2,
        edits: &[("/nodes/1/ips", r#"["10.240.0.129"]"#)],
        starts: "cidr-alloc: error: nodes[1].ips[0]: 10.240.0.129 of node w1 is the gateway",
    },
    // Slices of two hypervisors that overlap, one from the input and one kept: refused at read.
    Refusal {
        workers: 2,
        spread: true,
        hypervisors: 2,
        edits: &[
            ("/hypervisors/0/node_slice", r#"["10.240.0.0/25"]"#),
            ("/hypervisors/1/node_slice", r#"["10.240.0.64/26"]"#),
        ],
        starts: "cidr-alloc: error: hypervisors[1].node_slice[0]: ",
    },
];

#[test]
fn refusals_name_the_json_path() {
    for case in REFUSALS {
        let host = |i| if case.spread { i } else { 0 };
        let mut doc = document(&workers(case.workers, host), case.hypervisors, false);
        for (pointer, value) in case.edits {
            // Indexing by the last key sets a field the document may not have yet.
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let parent = doc.pointer_mut(parent).expect(pointer);
            parent[key] = serde_json::from_str(value).unwrap();
        }
        let line = refuse(&doc);
        assert!(line.starts_with(case.starts), "{line}");
    }
}
