//! The cidr-alloc binary: every refusal exits 2 with exactly one `cidr-alloc: error:` line and
//! nothing on stdout; re-runs and --previous keep every value. The pipeline from mkcluster is
//! tests/e2e/inventory_to_addresses.rs.

use std::net::IpAddr;

use assert_cmd::Command;
use hardway::doc::{Api, Hypervisor};
use hardway::{Document, Role};
use ipnet::IpNet;
use serde_json::json;

fn cidr_alloc() -> Command {
    Command::cargo_bin("cidr-alloc").expect("the binary is built")
}

/// A document as mkcluster makes it: the lab's three nodes, nothing allocated.
fn unallocated() -> Document {
    let mut doc = testkit::fixture_document("lab.json");
    doc.cluster.api = Api {
        vip: None,
        port: 6443,
        endpoint: None,
        extra: Default::default(),
    };
    doc.cluster.service_ips = None;
    for node in &mut doc.nodes {
        node.ips.clear();
        node.pod_cidrs.clear();
        node.mac = None;
    }
    doc
}

fn text(doc: &Document) -> String {
    serde_json::to_string(doc).unwrap()
}

/// Runs cidr-alloc on a document and returns the output document, read by the tools' reader.
fn allocate(doc: &Document, args: &[&str]) -> Document {
    let out = cidr_alloc()
        .args(args)
        .write_stdin(text(doc))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    hardway::doc::parse(std::str::from_utf8(&out.stdout).unwrap(), "stdout").unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn ips(text: &[&str]) -> Vec<IpAddr> {
    text.iter().map(|t| t.parse().unwrap()).collect()
}

fn nets(text: &[&str]) -> Vec<IpNet> {
    text.iter().map(|t| t.parse().unwrap()).collect()
}

/// Runs cidr-alloc expecting a refusal; returns its one error line.
fn refuse(stdin: &str, args: &[&str]) -> String {
    let out = cidr_alloc().args(args).write_stdin(stdin).output().unwrap();
    testkit::assert_one_line_error(&out, "cidr-alloc", 2)
}

fn refuse_doc(doc: &Document, args: &[&str], expect: &str) {
    let line = refuse(&text(doc), args);
    assert!(line.contains(expect), "expected {expect:?} in {line}");
}

/// Refuses with `args` whatever the document: the subcommands that read no stdin.
fn refuse_args(args: &[&str], expect: &str) {
    let line = refuse("", args);
    assert!(line.contains(expect), "expected {expect:?} in {line}");
}

/// `doc` changed by `edit`.
fn with(mut doc: Document, edit: impl FnOnce(&mut Document)) -> Document {
    edit(&mut doc);
    doc
}

fn hypervisor(doc: &mut Document) -> &mut Hypervisor {
    doc.hypervisor.as_mut().expect("lab.json has a hypervisor")
}

#[test]
fn allocates_the_lowest_free_slots_and_derives_values() {
    let doc = allocate(&unallocated(), &[]);
    let nodes = &doc.nodes;
    // Three controllers: the VIP is the first free address, then the nodes.
    assert_eq!(doc.cluster.api.vip, Some("10.240.0.2".parse().unwrap()));
    assert_eq!(
        doc.cluster.api.endpoint.as_deref(),
        Some("https://10.240.0.2:6443")
    );
    assert_eq!(nodes[0].ips, ips(&["10.240.0.3"]));
    assert_eq!(nodes[2].ips, ips(&["10.240.0.5"]));
    assert_eq!(nodes[1].pod_cidrs, nets(&["10.200.1.0/24"]));
    assert!(nodes[0].mac.as_deref().unwrap().starts_with("52:54:00:"));
    assert_eq!(
        doc.hypervisor.unwrap().gateway,
        Some("10.240.0.1".parse().unwrap())
    );
}

#[test]
fn one_controller_is_the_api_vip() {
    let mut doc = unallocated();
    doc.nodes.truncate(1);
    doc.nodes[0].ips = ips(&["10.240.0.50"]);
    let out = allocate(&doc, &[]);
    assert_eq!(out.cluster.api.vip, Some("10.240.0.50".parse().unwrap()));
}

#[test]
fn ipv6_endpoint_is_bracketed_and_dual_stack_gets_both_families() {
    let mut doc = unallocated();
    let networks = &mut doc.cluster.networks;
    networks.node = nets(&["10.240.0.0/24", "fd00:10:240::/64"]);
    networks.pod = nets(&["10.200.0.0/16", "fd00:10:200::/56"]);
    networks.pod_prefix = vec![24, 64];
    networks.service = nets(&["10.32.0.0/24", "fd00:10:32::/112"]);
    doc.cluster.api.vip = Some(ip("fd00:10:240::100"));
    let out = allocate(&doc, &[]);
    assert_eq!(
        out.cluster.api.endpoint.as_deref(),
        Some("https://[fd00:10:240::100]:6443")
    );
    assert_eq!(out.nodes[0].ips, ips(&["10.240.0.2", "fd00:10:240::2"]));
    assert_eq!(
        out.nodes[2].pod_cidrs,
        nets(&["10.200.2.0/24", "fd00:10:200:2::/64"])
    );
    assert_eq!(
        out.cluster.service_ips.unwrap().dns,
        ips(&["10.32.0.10", "fd00:10:32::a"])
    );
}

#[test]
fn previous_output_keeps_values_and_a_missing_file_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let previous = dir.path().join("cluster.json");
    let prev_arg = previous.to_str().unwrap();
    let first = allocate(&unallocated(), &["--previous", prev_arg]);
    std::fs::write(&previous, hardway::doc::to_string(&first)).unwrap();
    // The inventory changes: node-1 goes, node-4 comes; the others keep everything.
    let mut doc = unallocated();
    let mut newcomer = doc.nodes.remove(0);
    newcomer.name = "node-4".into();
    doc.nodes.push(newcomer);
    let second = allocate(&doc, &["--previous", prev_arg]);
    for name in ["node-2", "node-3"] {
        assert_eq!(first.node(name), second.node(name), "{name} moved");
    }
    assert_eq!(second.cluster.api.vip, first.cluster.api.vip);
    // node-4 takes node-1's freed slots: the lowest free.
    assert_eq!(second.nodes[2].ips, first.nodes[0].ips);
    assert_eq!(second.nodes[2].pod_cidrs, first.nodes[0].pod_cidrs);
}

#[test]
fn rerun_on_own_output_is_identical_and_unknown_fields_survive() {
    let mut doc = unallocated();
    // Fields no hardway tool knows: each struct's `extra`, as any other tool's would land.
    doc.extra
        .insert("annotations".into(), json!({"team": "blue"}));
    doc.cluster.extra.insert("owner".into(), json!("ops"));
    doc.cluster.networks.extra.insert("mine".into(), json!(1));
    doc.cluster.api.extra.insert("note".into(), json!("x"));
    doc.nodes[0].extra.insert("rack".into(), json!(7));
    hypervisor(&mut doc).extra.insert("zone".into(), json!("a"));
    let once = cidr_alloc().write_stdin(text(&doc)).output().unwrap();
    let twice = cidr_alloc()
        .write_stdin(once.stdout.clone())
        .output()
        .unwrap();
    assert_eq!(once.stdout, twice.stdout);
    let out = hardway::doc::parse(std::str::from_utf8(&once.stdout).unwrap(), "stdout").unwrap();
    assert_eq!(out.extra["annotations"], json!({"team": "blue"}));
    assert_eq!(out.cluster.extra["owner"], "ops");
    assert_eq!(out.cluster.networks.extra["mine"], 1);
    assert_eq!(out.cluster.api.extra["note"], "x");
    assert_eq!(out.nodes[0].extra["rack"], 7);
    assert_eq!(out.hypervisor.unwrap().extra["zone"], "a");
}

#[test]
fn split_prints_subnets_as_json() {
    let out = cidr_alloc()
        .args(["split", "10.200.0.0/16", "--prefix", "24", "--count", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let split: Vec<IpNet> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        split,
        nets(&["10.200.0.0/24", "10.200.1.0/24", "10.200.2.0/24"])
    );
}

#[test]
fn table_lists_nodes() {
    let out = cidr_alloc()
        .args(["-o", "table"])
        .write_stdin(text(&unallocated()))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "ROLES", "IPS", "POD", "CIDRS", "MAC"]
    );
    let node_1 = testkit::table_row(&text, "node-1");
    assert_eq!(
        node_1[..4],
        [
            "node-1",
            "etcd,controller,worker",
            "10.240.0.3",
            "10.200.0.0/24"
        ]
    );
}

// ---- every refusal ----

#[test]
fn refuses_bad_input_documents() {
    let line = refuse("{\"version\": 1,", &[]);
    assert!(line.contains("<stdin>:1:"), "{line}");
    let line = refuse("", &["-f", "/nonexistent/cluster.json"]);
    assert!(line.contains("/nonexistent/cluster.json"), "{line}");
    let mut dup = unallocated();
    dup.nodes[1].name = "node-1".into();
    refuse_doc(&dup, &[], "duplicate node name");
    refuse_doc(&with(unallocated(), |d| d.version = 2), &[], "version 2");
}

#[test]
fn refuses_bad_flags() {
    refuse_doc(&unallocated(), &["--no-such-flag"], "--no-such-flag");
    refuse_doc(&unallocated(), &["--avoid", "10.0.0.0"], "--avoid");
    refuse_doc(&unallocated(), &["-o", "yaml"], "yaml");
}

#[test]
fn refuses_overlapping_ranges() {
    let doc = with(unallocated(), |d| {
        d.cluster.networks.pod = nets(&["10.240.0.0/16"])
    });
    refuse_doc(
        &doc,
        &[],
        "node network 10.240.0.0/24 overlaps pod network 10.240.0.0/16",
    );
    let doc = with(unallocated(), |d| {
        d.cluster.networks.service = nets(&["10.200.5.0/24"])
    });
    refuse_doc(
        &doc,
        &[],
        "pod network 10.200.0.0/16 overlaps service network 10.200.5.0/24",
    );
    let doc = with(unallocated(), |d| {
        d.cluster.networks.node = nets(&["192.168.0.0/16"])
    });
    refuse_doc(
        &doc,
        &[],
        "node network 192.168.0.0/16 overlaps libvirt's default network 192.168.122.0/24",
    );
    refuse_doc(
        &unallocated(),
        &["--avoid", "10.0.0.0/8"],
        "node network 10.240.0.0/24 overlaps --avoid 10.0.0.0/8",
    );
}

#[test]
fn refuses_ranges_that_overlap_the_hosts_routes() {
    // A real kernel routing table: a namespace with a bridge on 10.240.0.0/24 and a route.
    let ns = testkit::netns::Netns::new("ca");
    ns.add_bridge("br-ca", &["10.241.0.1/24", "fd00:99:241::1/64"]);
    ns.ip(&["route", "add", "10.200.128.0/20", "dev", "br-ca"]);
    let bin = assert_cmd::cargo::cargo_bin("cidr-alloc");
    let run = |doc: &Document| {
        let mut cmd = ns.command(&bin);
        cmd.arg("--avoid-host-routes");
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text(doc).as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&unallocated());
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "cidr-alloc: error: pod network 10.200.0.0/16 overlaps the host's route to 10.200.128.0/20 (dev br-ca): choose ranges that do not share addresses\n"
    );
    // IPv6 routes count too.
    let mut doc = with(unallocated(), |d| {
        d.cluster.networks.pod = nets(&["10.199.0.0/16", "fd00:99::/32"])
    });
    doc.cluster.networks.pod_prefix = vec![24, 64];
    doc.cluster.networks.service = nets(&["10.32.0.0/24", "fd00:32::/112"]);
    let out = run(&doc);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "pod network fd00:99::/32 overlaps the host's route to fd00:99:241::/64 (dev br-ca)"
        ),
        "{stderr}"
    );
    // The cluster's own node network on the host is no clash.
    let doc = with(unallocated(), |d| {
        d.cluster.networks.node = nets(&["10.241.0.0/24"])
    });
    let doc = with(doc, |d| hypervisor(d).gateway = Some(ip("10.241.0.1")));
    let doc = with(doc, |d| d.cluster.networks.pod = nets(&["10.202.0.0/16"]));
    let out = run(&doc);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn refuses_exhausted_ranges_with_how_many_fit() {
    let doc = with(unallocated(), |d| {
        d.cluster.networks.node = nets(&["10.240.0.0/29"])
    });
    let doc = with(doc, |d| hypervisor(d).gateway = Some(ip("10.240.0.1")));
    let mut big = doc.clone();
    for i in 4..=6 {
        let mut n = big.nodes[0].clone();
        n.name = format!("node-{i}");
        big.nodes.push(n);
    }
    refuse_doc(
        &big,
        &[],
        "node network 10.240.0.0/29 is exhausted: 5 addresses fit, 7 (6 nodes and 1 VIPs) needed",
    );
    let doc = with(unallocated(), |d| {
        d.cluster.networks.pod = nets(&["10.200.0.0/23"])
    });
    refuse_doc(
        &doc,
        &[],
        "pod network 10.200.0.0/23 is exhausted: 2 /24 pod CIDRs fit, 3 (one per node that runs pods) needed",
    );
    refuse_args(
        &["split", "10.200.0.0/16", "--prefix", "24", "--count", "257"],
        "256 /24 subnets fit",
    );
}

#[test]
fn refuses_bad_pod_prefixes_and_service_ranges() {
    let doc = with(unallocated(), |d| d.cluster.networks.pod_prefix = vec![16]);
    refuse_doc(
        &doc,
        &[],
        "a /16 pod CIDR per node does not split pod network 10.200.0.0/16",
    );
    let doc = with(unallocated(), |d| {
        d.cluster.networks.pod_prefix = vec![24, 64]
    });
    refuse_doc(&doc, &[], "2 prefixes for 1 pod networks");
    let doc = with(unallocated(), |d| {
        d.cluster.networks.service = nets(&["10.32.0.0/29"])
    });
    refuse_doc(&doc, &[], "service network 10.32.0.0/29 has 8 addresses");
    let doc = with(unallocated(), |d| {
        d.cluster.networks.service = nets(&["10.32.0.0/24", "fd00:32::/112"])
    });
    refuse_doc(
        &doc,
        &[],
        "the pod and service networks must have the same families",
    );
    let doc = with(unallocated(), |d| {
        d.cluster.networks.node = nets(&["10.240.0.5/24"])
    });
    refuse_doc(&doc, &[], "10.240.0.5/24 has host bits set");
    let doc = with(unallocated(), |d| {
        d.cluster.networks.node = nets(&["10.240.0.0/24", "10.241.0.0/24"])
    });
    refuse_doc(&doc, &[], "at most one IPv4 and one IPv6");
    refuse_args(
        &["split", "10.200.0.0/16", "--prefix", "16", "--count", "1"],
        "/16 does not split 10.200.0.0/16",
    );
    refuse_args(
        &["split", "10.200.0.1/16", "--prefix", "24", "--count", "1"],
        "host bits",
    );
    refuse_args(&["split", "10.200.0.0/16", "--prefix", "24"], "--count");
}

#[test]
fn refuses_pinned_addresses_outside_or_twice() {
    let doc = with(unallocated(), |d| d.nodes[0].ips = ips(&["10.9.0.5"]));
    refuse_doc(
        &doc,
        &[],
        "nodes[0].ips[0]: 10.9.0.5 of node node-1 is outside the node network (10.240.0.0/24)",
    );
    let doc = with(unallocated(), |d| d.nodes[0].ips = ips(&["10.240.0.7"]));
    let doc = with(doc, |d| d.nodes[2].ips = ips(&["10.240.0.7"]));
    refuse_doc(
        &doc,
        &[],
        "10.240.0.7 is the address of both node node-1 and node node-3",
    );
    let doc = with(unallocated(), |d| d.nodes[1].ips = ips(&["10.240.0.1"]));
    refuse_doc(
        &doc,
        &[],
        "10.240.0.1 of node node-2 is the gateway (the first host) of node network 10.240.0.0/24",
    );
    let doc = with(unallocated(), |d| d.nodes[1].ips = ips(&["10.240.0.255"]));
    refuse_doc(&doc, &[], "is the broadcast address");
    let doc = with(unallocated(), |d| {
        d.nodes[1].ips = ips(&["10.240.0.7", "10.240.0.8"])
    });
    refuse_doc(&doc, &[], "node node-2 has two IPv4 addresses");
}

#[test]
fn refuses_bad_or_duplicate_macs() {
    let doc = with(unallocated(), |d| {
        d.nodes[0].mac = Some("52:54:00:00:00:01".into())
    });
    let doc = with(doc, |d| d.nodes[1].mac = Some("52:54:00:00:00:01".into()));
    refuse_doc(
        &doc,
        &[],
        "52:54:00:00:00:01 is the MAC of both node node-1 and node node-2",
    );
    let doc = with(unallocated(), |d| {
        d.nodes[0].mac = Some("52:54:zz:00:00:01".into())
    });
    refuse_doc(
        &doc,
        &[],
        "nodes[0].mac: \"52:54:zz:00:00:01\" is not a MAC address",
    );
}

#[test]
fn refuses_bad_pinned_pod_cidrs() {
    let doc = with(unallocated(), |d| {
        d.nodes[0].pod_cidrs = nets(&["10.201.0.0/24"])
    });
    refuse_doc(
        &doc,
        &[],
        "10.201.0.0/24 of node node-1 is not a subnet of pod network 10.200.0.0/16",
    );
    let doc = with(unallocated(), |d| {
        d.nodes[0].pod_cidrs = nets(&["10.200.0.0/25"])
    });
    refuse_doc(&doc, &[], "is a /25, the cluster gives each node a /24");
    let doc = with(unallocated(), |d| {
        d.nodes[0].pod_cidrs = nets(&["10.200.7.0/24"])
    });
    let doc = with(doc, |d| d.nodes[1].pod_cidrs = nets(&["10.200.7.0/24"]));
    refuse_doc(
        &doc,
        &[],
        "10.200.7.0/24 is the pod CIDR of both node node-1 and node node-2",
    );
    let doc = with(unallocated(), |d| {
        d.nodes[0].pod_cidrs = nets(&["fd00::/64"])
    });
    refuse_doc(&doc, &[], "the cluster has no such pod network");
}

#[test]
fn refuses_bad_vips() {
    let doc = with(unallocated(), |d| d.cluster.api.vip = Some(ip("10.9.9.9")));
    refuse_doc(
        &doc,
        &[],
        "cluster.api.vip: 10.9.9.9 is outside the node network",
    );
    let doc = with(unallocated(), |d| {
        d.cluster.api.vip = Some(ip("10.240.0.1"))
    });
    refuse_doc(&doc, &[], "cluster.api.vip: 10.240.0.1 is the gateway");
    // A worker may not hold the VIP as its own address.
    let mut doc = unallocated();
    doc.nodes[0].roles = vec![Role::Worker];
    doc.nodes[0].ips = ips(&["10.240.0.9"]);
    doc.cluster.api.vip = Some(ip("10.240.0.9"));
    refuse_doc(
        &doc,
        &[],
        "10.240.0.9 of node node-1 is also cluster.api.vip",
    );
    let doc = with(unallocated(), |d| {
        d.cluster.api.vip = Some(ip("10.240.0.9"))
    });
    let doc = with(doc, |d| {
        // Not a typed field: cidr-alloc reads it from the cluster's other fields.
        d.cluster
            .extra
            .insert("controller_vip".into(), json!("10.240.0.9"));
    });
    refuse_doc(
        &doc,
        &[],
        "is both cluster.api.vip and cluster.controller_vip",
    );
    let doc = with(unallocated(), |d| {
        // Deliberately not an address; cidr-alloc reads the field from the cluster's others.
        d.cluster.extra.insert("controller_vip".into(), json!(5));
    });
    refuse_doc(&doc, &[], "cluster.controller_vip: expected an IP address");
    let doc = with(unallocated(), |d| {
        hypervisor(d).gateway = Some(ip("10.9.9.1"))
    });
    refuse_doc(
        &doc,
        &[],
        "hypervisor.gateway: 10.9.9.1 is outside the node network",
    );
}

#[test]
fn refuses_a_bad_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let previous = dir.path().join("prev.json");
    std::fs::write(&previous, "not json").unwrap();
    refuse_doc(
        &unallocated(),
        &["--previous", previous.to_str().unwrap()],
        "--previous",
    );
    // An earlier run in another node network: its values cannot be kept.
    let mut earlier = allocate(&unallocated(), &[]);
    earlier.cluster.networks.node = nets(&["10.250.0.0/24"]);
    earlier.nodes[0].ips = ips(&["10.250.0.3"]);
    std::fs::write(&previous, hardway::doc::to_string(&earlier)).unwrap();
    refuse_doc(
        &unallocated(),
        &["--previous", previous.to_str().unwrap()],
        "node node-1 in --previous",
    );
    // A directory is not a file.
    refuse_doc(
        &unallocated(),
        &["--previous", dir.path().to_str().unwrap()],
        "cannot read it",
    );
}

#[test]
fn pods_on_controllers_gives_controllers_a_pod_cidr() {
    let mut doc = unallocated();
    doc.nodes[0].roles = vec![Role::Etcd, Role::Controller];
    let plain = allocate(&doc, &[]);
    assert_eq!(plain.nodes[0].pod_cidrs, []);
    assert_eq!(plain.nodes[1].pod_cidrs, nets(&["10.200.0.0/24"]));
    let with = allocate(&doc, &["--pods-on-controllers"]);
    assert_eq!(with.nodes[0].pod_cidrs, nets(&["10.200.0.0/24"]));
    assert_eq!(with.nodes[1].pod_cidrs, nets(&["10.200.1.0/24"]));
}

#[test]
fn help_has_an_example() {
    let out = cidr_alloc().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("Examples:") && help.contains("cidr-alloc split"),
        "{help}"
    );
    let out = cidr_alloc().args(["split", "--help"]).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("Example:"));
}
