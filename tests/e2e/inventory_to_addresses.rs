//! mkcluster | cidr-alloc, both binaries, as a user runs them: the lab inventory gives the
//! committed fixture byte for byte, the 9-node ebook inventory gives docs/sources.md#seed-003's
//! plan, and every example runs as its header comment says. Outputs are read with the tools'
//! own document reader and checked as typed values.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use hardway::{Document, Role};
use ipnet::IpNet;

/// `mkcluster ARGS` from the repository root (examples' paths are relative to it).
fn mkcluster(args: &[String]) -> Vec<u8> {
    testkit::run_ok(
        Command::new(testkit::bin("mkcluster"))
            .args(args)
            .current_dir(testkit::workspace_root()),
    )
    .stdout
}

fn cidr_alloc(args: &[&str], document: &[u8]) -> Vec<u8> {
    testkit::run_piped(&testkit::bin("cidr-alloc"), args, document)
}

fn document(stdout: &[u8]) -> Document {
    hardway::doc::parse(std::str::from_utf8(stdout).unwrap(), "cidr-alloc's stdout").unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn ips(text: &[&str]) -> Vec<IpAddr> {
    text.iter().map(|t| t.parse().unwrap()).collect()
}

fn nets(text: &[&str]) -> Vec<IpNet> {
    text.iter().map(|t| t.parse().unwrap()).collect()
}

#[test]
fn the_lab_pipeline_reproduces_the_fixture() {
    let inventory = mkcluster(&strings(&["--name", "lab", "examples/lab.csv"]));
    let allocated = cidr_alloc(&[], &inventory);
    let fixture = std::fs::read(testkit::workspace_root().join("tests/fixtures/lab.json")).unwrap();
    assert_eq!(
        String::from_utf8(allocated).unwrap(),
        String::from_utf8(fixture).unwrap()
    );
}

#[test]
fn the_ebook_inventory_gives_seed_003s_plan() {
    let inventory = mkcluster(&strings(&[
        "examples/ebook-9node.csv",
        "--api-vip",
        "10.240.0.40",
        "--controller-vip",
        "10.240.0.20",
    ]));
    let doc = document(&cidr_alloc(&[], &inventory));
    let expected = [
        ("etcd1", Role::Etcd, "10.240.0.11", 512, 4),
        ("etcd2", Role::Etcd, "10.240.0.12", 512, 4),
        ("etcd3", Role::Etcd, "10.240.0.13", 512, 4),
        ("controller1", Role::Controller, "10.240.0.21", 512, 4),
        ("controller2", Role::Controller, "10.240.0.22", 512, 4),
        ("worker1", Role::Worker, "10.240.0.31", 1536, 20),
        ("worker2", Role::Worker, "10.240.0.32", 1536, 20),
        ("lb1", Role::Lb, "10.240.0.41", 512, 4),
        ("lb2", Role::Lb, "10.240.0.42", 512, 4),
    ];
    assert_eq!(doc.nodes.len(), expected.len());
    for (node, (name, role, ip, mib, gib)) in doc.nodes.iter().zip(expected) {
        assert_eq!(node.name, name);
        assert_eq!(
            node.fqdn.as_deref(),
            Some(format!("{name}.example.com").as_str())
        );
        assert_eq!(node.roles, [role]);
        assert_eq!(node.ips, ips(&[ip]));
        assert_eq!((node.memory_mib, node.disk_gib), (mib, gib), "{name}");
        let pods = usize::from(role == Role::Worker);
        assert_eq!(node.pod_cidrs.len(), pods, "{name}");
    }
    assert_eq!(doc.nodes[5].pod_cidrs, nets(&["10.200.0.0/24"]));
    assert_eq!(doc.nodes[6].pod_cidrs, nets(&["10.200.1.0/24"]));
    let cluster = &doc.cluster;
    assert_eq!(cluster.domain, "example.com");
    assert_eq!(cluster.networks.node, nets(&["10.240.0.0/24"]));
    assert_eq!(cluster.networks.pod, nets(&["10.200.0.0/16"]));
    assert_eq!(cluster.networks.service, nets(&["10.32.0.0/24"]));
    assert_eq!(cluster.api.vip, Some("10.240.0.40".parse().unwrap()));
    assert_eq!(
        cluster.api.endpoint.as_deref(),
        Some("https://10.240.0.40:6443")
    );
    assert_eq!(
        cluster.extra.get("controller_vip").and_then(|v| v.as_str()),
        Some("10.240.0.20")
    );
    let services = cluster.service_ips.as_ref().expect("service_ips");
    assert_eq!(services.kubernetes, ips(&["10.32.0.1"]));
    assert_eq!(services.dns, ips(&["10.32.0.10"]));

    // The table for people: a row per node, its columns in order.
    let table = String::from_utf8(cidr_alloc(&["-o", "table"], &inventory)).unwrap();
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(header, ["NAME", "ROLES", "IPS", "POD CIDRS", "MAC"]);
    let worker1 = testkit::table_row(&table, "worker1");
    assert_eq!(
        worker1[..4],
        ["worker1", "worker", "10.240.0.31", "10.200.0.0/24"]
    );
    assert_eq!(Some(worker1[4]), doc.nodes[5].mac.as_deref());
}

#[test]
fn every_example_runs_as_its_comment_says() {
    let examples = testkit::workspace_root().join("examples");
    let mut ran = 0;
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let (make, alloc) = testkit::example_pipeline(&path);
        let alloc: Vec<&str> = alloc.iter().map(String::as_str).collect();
        let doc = document(&cidr_alloc(&alloc, &mkcluster(&make)));
        every_node_is_addressed(&doc, &path);
        ran += 1;
    }
    assert!(ran >= 7, "only {ran} examples found");
}

/// Every node has an address in each node network; every worker a pod CIDR in each pod network.
fn every_node_is_addressed(doc: &Document, example: &Path) {
    let networks = &doc.cluster.networks;
    for node in &doc.nodes {
        let at = format!("{}: {}", example.display(), node.name);
        assert_eq!(node.ips.len(), networks.node.len(), "{at}");
        for (ip, net) in node.ips.iter().zip(&networks.node) {
            assert!(net.contains(ip), "{at}: {ip} outside {net}");
        }
        if node.has_role(Role::Worker) {
            assert_eq!(node.pod_cidrs.len(), networks.pod.len(), "{at}");
        }
    }
}
