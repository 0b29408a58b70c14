//! route-sync against real kernels: every test builds its own network namespaces with
//! `testkit::netns`, runs the binary inside them with `ip netns exec`, and checks the routes
//! with `ip route` and the traffic with `ping`. Needs root (CI runs it as root).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::net::IpAddr;

use hardway::{Document, Node};
use ipnet::IpNet;
use serde::Deserialize;
use testkit::netns::{Lab, Netns};

const BIN: &str = env!("CARGO_BIN_EXE_route-sync");

#[path = "netns/hypervisors.rs"]
mod hypervisors;

/// The report route-sync prints (`route_sync::plan::Plan`, which serializes only: it holds
/// kernel state and `&'static str`s), parsed strictly so a renamed, added or dropped key fails
/// the test. serde cannot deny unknown fields through `flatten`, so the flattened entries spell
/// their fields out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    added: Vec<RouteEntry>,
    replaced: Vec<ReplacedEntry>,
    removed: Vec<RemovedEntry>,
    unchanged: usize,
    conflicts: Vec<ConflictEntry>,
    nexthops: NexthopReport,
}

/// A route route-sync adds; `nexthop` is the id of the node's nexthop object it names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // every field is read by the shape check; not every one by an assert
struct RouteEntry {
    dst: IpNet,
    gateway: IpAddr,
    dev: String,
    /// `null` for a route to another hypervisor's node slice.
    node: Option<String>,
    /// The hypervisor the route goes through; absent when straight to the node.
    #[serde(default)]
    hypervisor: Option<String>,
    nexthop: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ReplacedEntry {
    dst: IpNet,
    gateway: IpAddr,
    dev: String,
    node: String,
    nexthop: Option<u32>,
    was: HopEntry,
}

/// Where a kernel route or nexthop pointed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct HopEntry {
    gateway: Option<IpAddr>,
    dev: Option<String>,
    nexthop: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RemovedEntry {
    dst: IpNet,
    gateway: Option<IpAddr>,
    dev: Option<String>,
    nexthop: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ConflictEntry {
    dst: IpNet,
    node: Option<String>,
    #[serde(default)]
    hypervisor: Option<String>,
    gateway: IpAddr,
    foreign: ForeignEntry,
}

/// The other protocol's route that holds a prefix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ForeignEntry {
    proto: u8,
    proto_name: Option<String>,
    gateway: Option<IpAddr>,
    dev: Option<String>,
    nexthop: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NexthopReport {
    added: Vec<NexthopEntry>,
    replaced: Vec<NexthopReplacedEntry>,
    removed: Vec<NexthopRemovedEntry>,
    unchanged: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NexthopEntry {
    id: u32,
    gateway: IpAddr,
    dev: String,
    node: Option<String>,
    #[serde(default)]
    hypervisor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NexthopReplacedEntry {
    id: u32,
    gateway: IpAddr,
    dev: String,
    node: Option<String>,
    #[serde(default)]
    hypervisor: Option<String>,
    was: HopEntry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NexthopRemovedEntry {
    id: u32,
    gateway: Option<IpAddr>,
    dev: Option<String>,
    nexthop: Option<u32>,
}

impl Report {
    /// Write requests: route and nexthop changes.
    fn changes(&self) -> usize {
        self.route_changes() + self.nexthop_changes()
    }

    fn route_changes(&self) -> usize {
        self.added.len() + self.replaced.len() + self.removed.len()
    }

    fn nexthop_changes(&self) -> usize {
        let n = &self.nexthops;
        n.added.len() + n.replaced.len() + n.removed.len()
    }
}

/// The first id of route-sync's default nexthop range (`--nexthop-ids`).
const FIRST_ID: u32 = 0xC800_0000;

/// A node of a test document: name, addresses, pod CIDRs.
struct N<'a>(&'a str, &'a [&'a str], &'a [&'a str]);

/// A cluster document in the shape of tests/fixtures/lab.json with these nodes.
fn document(nodes: &[N]) -> Document {
    let mut doc = testkit::fixture_document("lab.json");
    let template = doc.nodes[0].clone();
    doc.cluster.networks.pod = nets(&["10.200.0.0/16", "fd00:10:200::/56"]);
    doc.cluster.networks.pod_prefix = vec![24, 64];
    doc.nodes = nodes
        .iter()
        .map(|N(name, ips, cidrs)| Node {
            name: name.to_string(),
            fqdn: Some(format!("{name}.example.com")),
            ips: addrs(ips),
            pod_cidrs: nets(cidrs),
            ..template.clone()
        })
        .collect();
    doc
}

fn addrs(text: &[&str]) -> Vec<IpAddr> {
    text.iter().map(|t| t.parse().unwrap()).collect()
}

fn nets(text: &[&str]) -> Vec<IpNet> {
    text.iter().map(|t| t.parse().unwrap()).collect()
}

/// Writes a document into `dir` and returns its path.
fn write_doc(dir: &Path, name: &str, doc: &Document) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

/// Runs route-sync inside `ns`.
fn route_sync(ns: &Netns, args: &[&str]) -> Output {
    ns.exec(BIN, args)
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("route-sync ended by a signal")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses the report, or fails showing stderr.
fn report(out: &Output) -> Report {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); status {}, stderr: {}",
            out.status,
            stderr(out)
        )
    })
}

/// Runs route-sync and expects exit `want`; returns the report.
fn sync_expect(ns: &Netns, args: &[&str], want: i32) -> Report {
    let out = route_sync(ns, args);
    assert_eq!(code(&out), want, "route-sync {args:?}: {}", stderr(&out));
    report(&out)
}

/// The routes of one protocol, as `ip route` prints them, both families, in `table`.
fn routes(ns: &Netns, proto: &str, table: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for family in ["-4", "-6"] {
        let out = ns.exec(
            "ip",
            &[family, "route", "show", "table", table, "proto", proto],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        // A table without routes of a family does not exist for it.
        assert!(
            out.status.success() || err.contains("table does not exist"),
            "ip {family} route show table {table}: {err}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        all.extend(text.lines().map(without_nhid));
    }
    all
}

/// An `ip route` line without its `nhid N`, so routes via a nexthop object and plain routes
/// compare by where they lead; [`named_routes`] checks the ids.
fn without_nhid(line: &str) -> String {
    let mut words = line.split_whitespace();
    let mut out = Vec::new();
    while let Some(w) = words.next() {
        if w == "nhid" {
            words.next();
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}

/// One route of `ip -j route show`.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct IpRoute {
    dst: String,
    nhid: Option<u32>,
    gateway: Option<String>,
    dev: Option<String>,
}

/// One nexthop object of `ip -j nexthop show`.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct IpNexthop {
    id: u32,
    gateway: Option<String>,
    dev: Option<String>,
    protocol: Option<String>,
}

fn ip_json<T: serde::de::DeserializeOwned>(ns: &Netns, args: &[&str]) -> Vec<T> {
    let out = ns.exec("ip", args);
    assert!(out.status.success(), "ip {args:?}: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ip {args:?}: {e}: {text}"))
}

/// The routes of proto 200 in main, both families, as iproute2 reports them.
fn named_routes(ns: &Netns) -> Vec<IpRoute> {
    let mut all: Vec<IpRoute> = ip_json(ns, &["-4", "-j", "route", "show", "proto", "200"]);
    all.extend(ip_json::<IpRoute>(
        ns,
        &["-6", "-j", "route", "show", "proto", "200"],
    ));
    all.sort();
    all
}

/// The nexthop objects of one protocol ("200", "static"...).
fn nexthops(ns: &Netns, proto: &str) -> Vec<IpNexthop> {
    let mut all: Vec<IpNexthop> = ip_json(ns, &["-j", "nexthop", "show", "proto", proto]);
    all.sort();
    all
}

/// Every route of ours names a nexthop of ours (in the default range) that leads where the
/// route does, and every nexthop of ours is named by a route: none is orphaned.
fn assert_routes_name_their_nexthops(ns: &Netns) {
    let orphans = routes_name_their_nexthops(ns);
    assert!(orphans.is_empty(), "orphaned nexthops: {orphans:?}");
}

/// Checks that every route of proto 200 names a nexthop of proto 200 leading where the route
/// does; returns the nexthops of proto 200 that no such route names.
fn routes_name_their_nexthops(ns: &Netns) -> Vec<IpNexthop> {
    let routes = named_routes(ns);
    let nexthops = nexthops(ns, "200");
    let by_id: std::collections::BTreeMap<u32, &IpNexthop> =
        nexthops.iter().map(|n| (n.id, n)).collect();
    let mut named = BTreeSet::new();
    for r in &routes {
        let id = r.nhid.unwrap_or_else(|| panic!("{r:?} names no nexthop"));
        assert!(id >= FIRST_ID, "{r:?}: id outside route-sync's range");
        let n = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("{r:?}: no nexthop {id}"));
        assert_eq!((&n.gateway, &n.dev), (&r.gateway, &r.dev), "{r:?} vs {n:?}");
        named.insert(id);
    }
    nexthops
        .into_iter()
        .filter(|n| !named.contains(&n.id))
        .collect()
}

fn ping(ns: &Netns, target: &str) {
    let out = ns.exec("ping", &["-c1", "-W3", target]);
    assert!(
        out.status.success(),
        "ping {target} from {} failed: {}{}",
        ns.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip monitor nexthop route` inside a namespace: what nexthop and route changes happened while
/// it ran. Nexthop lines start with `id` (or `Deleted id`), route lines with the prefix.
struct Monitor {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Monitor {
    fn start(ns: &Netns) -> Monitor {
        let mut child = ns
            .command("ip")
            .args(["monitor", "nexthop", "route"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ip monitor");
        let lines = lines_of(child.stdout.take().unwrap());
        // Let it subscribe before anything happens.
        std::thread::sleep(Duration::from_millis(300));
        Monitor { child, lines }
    }

    /// Waits for things to settle, stops, and returns the changes seen to routes and nexthops
    /// of proto 200 (the kernel's own, such as IPv6 link-local addresses coming up, are left
    /// out).
    fn stop(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines
            .try_iter()
            .filter(|l| l.contains("proto 200"))
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lab's three nodes: each an IPv4 and an IPv6 address on the host bridge's subnets, and a
/// pod CIDR of each family.
const LAB_NODES: [N<'static>; 3] = [
    N(
        "n1",
        &["10.240.0.11", "fd00:240::11"],
        &["10.200.1.0/24", "fd00:10:200:1::/64"],
    ),
    N(
        "n2",
        &["10.240.0.12", "fd00:240::12"],
        &["10.200.2.0/24", "fd00:10:200:2::/64"],
    ),
    N(
        "n3",
        &["10.240.0.13", "fd00:240::13"],
        &["10.200.3.0/24", "fd00:10:200:3::/64"],
    ),
];

/// The three-node lab of the issue: a host bridge, three nodes with an IPv4 and an IPv6
/// address, each with a pod bridge holding the first address of its pod CIDRs.
fn three_node_lab() -> (Lab, Document) {
    let lab = Lab::builder("rs")
        .host_bridge(&["10.240.0.1/24", "fd00:240::1/64"])
        .node("n1", &["10.240.0.11/24", "fd00:240::11/64"])
        .node("n2", &["10.240.0.12/24", "fd00:240::12/64"])
        .node("n3", &["10.240.0.13/24", "fd00:240::13/64"])
        .build();
    for i in 1..=3 {
        lab.node(&format!("n{i}")).add_bridge(
            "pods0",
            &[
                &format!("10.200.{i}.1/24"),
                &format!("fd00:10:200:{i}::1/64"),
            ],
        );
    }
    let doc = document(&LAB_NODES);
    (lab, doc)
}

#[test]
fn pods_reach_each_other_and_the_host_reaches_all_both_families() {
    let (lab, doc) = three_node_lab();
    let dir = tempfile::tempdir().unwrap();
    let file = write_doc(dir.path(), "cluster.json", &doc);

    for node in &lab.nodes {
        let r = sync_expect(node, &["--node", &node.name, "-f", &file], 0);
        assert_eq!(r.added.len(), 4, "{r:?}");
        assert_eq!(
            (r.replaced.len(), r.removed.len(), r.conflicts.len()),
            (0, 0, 0)
        );
        let mine = routes(node, "200", "main");
        assert_eq!(mine.len(), 4, "{mine:?}");
        assert!(
            !mine
                .iter()
                .any(|r| r.contains(&format!("10.200.{}.0/24", &node.name[1..]))),
            "{} routes its own pod CIDR: {mine:?}",
            node.name
        );
        // One nexthop per other node and family.
        assert_eq!(r.nexthops.added.len(), 4, "{r:?}");
        assert_eq!(nexthops(node, "200").len(), 4);
        assert_routes_name_their_nexthops(node);
    }
    let r = sync_expect(&lab.host, &["--host", "-f", &file], 0);
    assert_eq!(r.added.len(), 6, "{r:?}");
    assert_eq!(r.nexthops.added.len(), 6, "{r:?}");
    assert_routes_name_their_nexthops(&lab.host);
    let host_routes = routes(&lab.host, "200", "main");
    assert!(
        host_routes.contains("10.200.2.0/24 via 10.240.0.12 dev br0"),
        "{host_routes:?}"
    );
    assert!(
        host_routes
            .iter()
            .any(|r| r.starts_with("fd00:10:200:3::/64 via fd00:240::13 dev br0")),
        "{host_routes:?}"
    );

    for from in &lab.nodes {
        for to in 1..=3 {
            if from.name != format!("n{to}") {
                ping(from, &format!("10.200.{to}.1"));
                ping(from, &format!("fd00:10:200:{to}::1"));
            }
        }
    }
    for to in 1..=3 {
        ping(&lab.host, &format!("10.200.{to}.1"));
        ping(&lab.host, &format!("fd00:10:200:{to}::1"));
    }

    // A second run changes nothing and sends no write request: the kernel announces none.
    let monitor = Monitor::start(&lab.host);
    let r = sync_expect(&lab.host, &["--host", "-f", &file], 0);
    assert_eq!((r.changes(), r.unchanged), (0, 6), "{r:?}");
    assert_eq!(r.nexthops.unchanged, 6, "{r:?}");
    for node in &lab.nodes {
        let r = sync_expect(node, &["--node", &node.name, "-f", &file], 0);
        assert_eq!((r.changes(), r.unchanged), (0, 4), "{r:?}");
    }
    let seen = monitor.stop();
    assert!(seen.is_empty(), "the second run changed routes: {seen:?}");

    // The monitor does see changes (so its silence above means something).
    let monitor = Monitor::start(&lab.host);
    lab.host
        .ip(&["route", "del", "10.200.1.0/24", "proto", "200"]);
    let r = sync_expect(&lab.host, &["--host", "-f", &file], 0);
    assert_eq!(r.added.len(), 1, "{r:?}");
    let seen = monitor.stop();
    assert!(
        seen.iter()
            .any(|l| l.contains("10.200.1.0/24") && l.contains("proto 200")),
        "{seen:?}"
    );

    move_n2_and_watch_its_routes_follow(&lab, &doc, dir.path());
}

/// n2 moves to new addresses. Wherever n2's pod CIDRs are routed, that is one nexthop replace
/// per family, and every route of n2's follows without a request of its own. The host runs with
/// net.ipv4.nexthop_compat_mode=0 (it covers IPv6 too), so the kernel does not re-announce the
/// routes that follow a replaced nexthop and `ip monitor` shows exactly what route-sync wrote.
fn move_n2_and_watch_its_routes_follow(lab: &Lab, doc: &Document, dir: &Path) {
    let n2 = lab.node("n2");
    // Old first: deleting a primary IPv4 address takes its secondaries with it.
    n2.ip(&["addr", "del", "10.240.0.12/24", "dev", Lab::NODE_DEV]);
    n2.ip(&["addr", "del", "fd00:240::12/64", "dev", Lab::NODE_DEV]);
    n2.add_addr(Lab::NODE_DEV, "10.240.0.22/24");
    n2.add_addr(Lab::NODE_DEV, "fd00:240::22/64");
    let mut moved = doc.clone();
    moved.nodes[1].ips = addrs(&["10.240.0.22", "fd00:240::22"]);
    let file = write_doc(dir, "moved.json", &moved);
    let before = named_routes(&lab.host);

    lab.host.sysctl("net.ipv4.nexthop_compat_mode", "0");
    let monitor = Monitor::start(&lab.host);
    let r = sync_expect(&lab.host, &["--host", "-f", &file], 0);
    let seen = monitor.stop();
    assert_eq!(r.route_changes(), 0, "{r:?}");
    assert_eq!(r.nexthops.replaced.len(), 2, "{r:?}");
    assert_eq!(
        r.nexthops.replaced[0].was.gateway,
        Some("10.240.0.12".parse().unwrap())
    );
    let nexthop_events = seen.iter().filter(|l| l.starts_with("id ")).count();
    let route_events: Vec<&String> = seen.iter().filter(|l| !l.starts_with("id ")).collect();
    assert_eq!(nexthop_events, 2, "one replace per family: {seen:?}");
    assert!(route_events.is_empty(), "routes were written: {seen:?}");
    // The routes are the same objects, naming the same ids, which now lead to n2's new address.
    assert_eq!(named_routes(&lab.host).len(), before.len());
    let gateways: BTreeSet<String> = nexthops(&lab.host, "200")
        .into_iter()
        .filter_map(|n| n.gateway)
        .collect();
    assert!(gateways.contains("10.240.0.22") && gateways.contains("fd00:240::22"));
    assert!(!gateways.contains("10.240.0.12"), "{gateways:?}");

    for node in &lab.nodes {
        let r = sync_expect(node, &["--node", &node.name, "-f", &file], 0);
        let want = if node.name == "n2" { 0 } else { 2 };
        assert_eq!(
            (r.route_changes(), r.nexthops.replaced.len()),
            (0, want),
            "{r:?}"
        );
    }
    for from in &lab.nodes {
        for to in 1..=3 {
            if from.name != format!("n{to}") {
                ping(from, &format!("10.200.{to}.1"));
                ping(from, &format!("fd00:10:200:{to}::1"));
            }
        }
    }
    for to in 1..=3 {
        ping(&lab.host, &format!("10.200.{to}.1"));
        ping(&lab.host, &format!("fd00:10:200:{to}::1"));
    }
}

#[test]
fn foreign_routes_survive_conflicts_exit_1_removed_and_moved_nodes_follow() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/24", "fd00:240::1/64"]);
    // Foreign routes: two on prefixes route-sync wants, two elsewhere.
    ns.ip(&[
        "route",
        "add",
        "10.200.3.0/24",
        "via",
        "10.240.0.50",
        "proto",
        "static",
    ]);
    ns.ip(&[
        "route",
        "add",
        "fd00:10:200:2::/64",
        "via",
        "fd00:240::52",
        "proto",
        "boot",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.200.99.0/24",
        "via",
        "10.240.0.51",
        "proto",
        "boot",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.99.0.0/16",
        "via",
        "10.240.0.53",
        "proto",
        "static",
    ]);
    let foreign = |ns: &Netns| {
        let mut all = routes(ns, "static", "main");
        all.extend(routes(ns, "boot", "main"));
        all
    };
    // Foreign nexthops: one of the kernel's ids, one of route-sync's protocol outside its range,
    // one inside its range with another protocol, one of route-sync's own that a static route
    // names (route-sync must not delete it: the kernel would take the route with it).
    ns.ip(&[
        "nexthop",
        "add",
        "id",
        "7",
        "via",
        "10.240.0.60",
        "dev",
        "br0",
    ]);
    ns.ip(&[
        "nexthop",
        "add",
        "id",
        "8",
        "via",
        "10.240.0.61",
        "dev",
        "br0",
        "proto",
        "200",
    ]);
    let in_range = (FIRST_ID + 100).to_string();
    let named = (FIRST_ID + 101).to_string();
    ns.ip(&[
        "nexthop",
        "add",
        "id",
        &in_range,
        "via",
        "10.240.0.62",
        "dev",
        "br0",
        "proto",
        "static",
    ]);
    ns.ip(&[
        "nexthop",
        "add",
        "id",
        &named,
        "via",
        "10.240.0.63",
        "dev",
        "br0",
        "proto",
        "200",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.98.0.0/16",
        "nhid",
        &named,
        "proto",
        "static",
    ]);
    let foreign_nexthops = |ns: &Netns| {
        let all: Vec<IpNexthop> = ip_json(ns, &["-j", "nexthop", "show"]);
        let ours = [7, 8, FIRST_ID + 100, FIRST_ID + 101];
        all.into_iter()
            .filter(|n| ours.contains(&n.id))
            .collect::<Vec<_>>()
    };
    let foreign_nexthops_before = foreign_nexthops(&ns);
    assert_eq!(foreign_nexthops_before.len(), 4);
    let before = foreign(&ns);
    assert_eq!(before.len(), 5, "{before:?}");

    let dir = tempfile::tempdir().unwrap();
    let doc = document(&LAB_NODES);
    let file = write_doc(dir.path(), "a.json", &doc);
    let out = route_sync(&ns, &["--host", "-f", &file]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r.added.len(), 4, "{r:?}");
    let conflicts: BTreeSet<IpNet> = r.conflicts.iter().map(|c| c.dst).collect();
    assert_eq!(
        conflicts,
        BTreeSet::from_iter(nets(&["10.200.3.0/24", "fd00:10:200:2::/64"]))
    );
    assert!(
        stderr(&out).contains("conflict: 10.200.3.0/24"),
        "{}",
        stderr(&out)
    );
    assert_eq!(foreign(&ns), before);
    assert_eq!(foreign_nexthops(&ns), foreign_nexthops_before);

    // Again: still the conflicts, nothing to change, foreign routes as they were.
    let r = sync_expect(&ns, &["--host", "-f", &file], 1);
    assert_eq!(
        (r.changes(), r.unchanged, r.conflicts.len()),
        (0, 4, 2),
        "{r:?}"
    );
    assert_eq!(foreign(&ns), before);

    // n1 leaves the cluster; n2 and n3 move to new addresses.
    let doc = document(&[
        N(
            "n2",
            &["10.240.0.22", "fd00:240::22"],
            &["10.200.2.0/24", "fd00:10:200:2::/64"],
        ),
        N(
            "n3",
            &["10.240.0.13", "fd00:240::23"],
            &["10.200.3.0/24", "fd00:10:200:3::/64"],
        ),
    ]);
    let file = write_doc(dir.path(), "b.json", &doc);
    let r = sync_expect(&ns, &["--host", "-f", &file], 1);
    let removed: BTreeSet<IpNet> = r.removed.iter().map(|c| c.dst).collect();
    assert_eq!(
        removed,
        BTreeSet::from_iter(nets(&["10.200.1.0/24", "fd00:10:200:1::/64"])),
        "{r:?}"
    );
    // A moved node is its nexthop replaced: the routes stay as they are and follow it.
    assert_eq!((r.added.len(), r.replaced.len()), (0, 0), "{r:?}");
    let moved: Vec<(IpAddr, Option<IpAddr>)> = r
        .nexthops
        .replaced
        .iter()
        .map(|n| (n.gateway, n.was.gateway))
        .collect();
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    assert_eq!(
        moved,
        [
            (ip("10.240.0.22"), Some(ip("10.240.0.12"))),
            (ip("fd00:240::23"), Some(ip("fd00:240::13")))
        ]
    );
    // n1's two nexthops go with its routes. (None was made for the prefixes the foreign routes
    // hold.)
    assert_eq!(r.nexthops.removed.len(), 2, "{r:?}");
    let mine = routes(&ns, "200", "main");
    let expected: BTreeSet<String> = [
        "10.200.2.0/24 via 10.240.0.22 dev br0",
        "fd00:10:200:3::/64 via fd00:240::23 dev br0 metric 1024 pref medium",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(mine, expected);
    assert_eq!(foreign(&ns), before);
    assert_eq!(foreign_nexthops(&ns), foreign_nexthops_before);
    // Of proto 200, only the nexthop outside the range and the one a static route names are
    // named by none of route-sync's routes.
    let unnamed: Vec<u32> = routes_name_their_nexthops(&ns)
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(unnamed, [8, FIRST_ID + 101]);

    // The administrator removes the static route: route-sync takes the prefix over.
    ns.ip(&["route", "del", "10.200.3.0/24", "proto", "static"]);
    let r = sync_expect(&ns, &["--host", "-f", &file], 1);
    assert_eq!(r.added.len(), 1);
    assert_eq!(r.added[0].dst, nets(&["10.200.3.0/24"])[0]);
    assert_eq!(r.nexthops.added.len(), 1, "{r:?}");
    assert_eq!(r.added[0].nexthop, Some(r.nexthops.added[0].id));
    assert_eq!(r.conflicts.len(), 1);
    assert_eq!(foreign_nexthops(&ns), foreign_nexthops_before);
}

/// Nodes leave: their routes go in one run with their nexthops, and the second run writes
/// nothing. A route alone among route-sync's on its prefix is deleted by prefix and protocol
/// (src/netlink.rs, `deletion`), and a static route the administrator prepended to the same
/// prefix, ahead of it in the kernel's list, survives; a prefix holding two routes of
/// route-sync's loses both, each deleted by its hop.
#[test]
fn stale_routes_go_by_prefix_beside_foreign_ones_and_by_hop_beside_their_own() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/24", "fd00:240::1/64"]);
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&LAB_NODES);
    let file = write_doc(dir.path(), "a.json", &doc);
    sync_expect(&ns, &["--host", "-f", &file], 0);
    let prepended = ["10.200.1.0/24", "via", "10.240.0.50", "proto", "static"];
    ns.ip(&[&["route", "prepend"][..], &prepended[..]].concat());
    let v6 = [
        "fd00:10:200:1::/64",
        "via",
        "fd00:240::50",
        "proto",
        "static",
    ];
    ns.ip(&[&["-6", "route", "add"][..], &v6[..], &["metric", "50"][..]].concat());
    let second = [
        "10.200.2.0/24",
        "via",
        "10.240.0.52",
        "proto",
        "200",
        "metric",
        "7",
    ];
    ns.ip(&[&["route", "add"][..], &second[..]].concat());
    let second_v6 = ["fd00:10:200:2::/64", "via", "fd00:240::52", "proto", "200"];
    ns.ip(&[
        &["-6", "route", "add"][..],
        &second_v6[..],
        &["metric", "7"][..],
    ]
    .concat());
    let statics = routes(&ns, "static", "main");
    assert_eq!(statics.len(), 2, "{statics:?}");
    let first = named_routes(&ns);
    assert_eq!(first.iter().filter(|r| r.nhid.is_some()).count(), 6);

    let file = write_doc(dir.path(), "b.json", &document(&LAB_NODES[2..]));
    let r = sync_expect(&ns, &["--host", "-f", &file], 0);
    assert_eq!((r.removed.len(), r.nexthops.removed.len()), (6, 4), "{r:?}");
    assert_eq!(routes(&ns, "static", "main"), statics);
    let left: Vec<String> = named_routes(&ns).into_iter().map(|r| r.dst).collect();
    assert_eq!(left, ["10.200.3.0/24", "fd00:10:200:3::/64"]);
    assert_eq!(nexthops(&ns, "200").len(), 2);
    assert_routes_name_their_nexthops(&ns);
    let again = sync_expect(&ns, &["--host", "-f", &file], 0);
    assert_eq!((again.changes(), again.unchanged), (0, 2), "{again:?}");
}

#[test]
fn dry_run_and_check_change_nothing() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/24"]);
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&[
        N("n1", &["10.240.0.11"], &["10.200.1.0/24"]),
        N("n2", &["10.240.0.12"], &["10.200.2.0/24"]),
    ]);
    let file = write_doc(dir.path(), "c.json", &doc);

    let r = sync_expect(&ns, &["--host", "--dry-run", "-f", &file], 0);
    assert_eq!(r.added.len(), 2);
    assert!(routes(&ns, "200", "main").is_empty());
    let r = sync_expect(&ns, &["--host", "--check", "-f", &file], 1);
    assert_eq!(r.added.len(), 2);
    assert_eq!(r.nexthops.added.len(), 2);
    assert!(routes(&ns, "200", "main").is_empty());
    assert!(nexthops(&ns, "200").is_empty());

    sync_expect(&ns, &["--host", "-f", &file], 0);
    let r = sync_expect(&ns, &["--host", "--check", "-f", &file], 0);
    assert_eq!((r.changes(), r.unchanged), (0, 2));

    // The table for people.
    ns.ip(&["route", "del", "10.200.1.0/24", "proto", "200"]);
    let out = route_sync(&ns, &["--host", "--check", "-o", "table", "-f", &file]);
    assert_eq!(code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ACTION"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("add") && l.contains("10.200.1.0/24")),
        "{text}"
    );
    assert!(
        text.contains("1 routes unchanged, 2 nexthops unchanged"),
        "{text}"
    );
    // The row names the nexthop the route will name: n1's, the first id of the range.
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..5]
                == ["add", "10.200.1.0/24", "10.240.0.11", "br0", "3355443200"]),
        "{text}"
    );
}

#[test]
fn stdin_document_and_own_table() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/24"]);
    let doc = document(&[N("n1", &["10.240.0.11"], &["10.200.1.0/24"])]);
    let mut child = ns
        .command(BIN)
        .args(["--host", "--table", "100", "--proto", "0xc9"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&doc).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(report(&out).added.len(), 1);
    assert_eq!(
        routes(&ns, "201", "100"),
        BTreeSet::from(["10.200.1.0/24 via 10.240.0.11 dev br0".to_string()])
    );
    assert!(routes(&ns, "201", "main").is_empty());
    assert!(routes(&ns, "200", "all").is_empty());
}

#[test]
fn unreachable_gateway_exits_3_naming_the_route_and_changes_nothing() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/24"]);
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&[
        N("n1", &["10.240.0.11"], &["10.200.1.0/24"]),
        N("n2", &["192.0.2.7"], &["10.200.2.0/24"]),
    ]);
    let file = write_doc(dir.path(), "d.json", &doc);
    let out = route_sync(&ns, &["--host", "-f", &file]);
    assert_eq!(code(&out), 3);
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("route-sync: error: route 10.200.2.0/24 via 192.0.2.7 (node \"n2\")"),
        "{err}"
    );
    assert!(err.contains("br0 10.240.0.0/24"), "{err}");
    assert!(routes(&ns, "200", "main").is_empty(), "a route was added");
}

#[test]
fn kernel_refusal_exits_3_with_errno_and_route() {
    // The bridge holds the address but is down: the kernel refuses a gateway on it.
    let ns = Netns::new("rs");
    ns.ip(&["link", "add", "br0", "type", "bridge"]);
    ns.add_addr("br0", "10.240.0.1/24");
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&[N("n1", &["10.240.0.11"], &["10.200.1.0/24"])]);
    let file = write_doc(dir.path(), "e.json", &doc);
    let out = route_sync(&ns, &["--host", "-f", &file]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert!(
        err.contains("nexthop add id 3355443200 via 10.240.0.11 dev br0 proto 200: ")
            && err.contains("os error")
            && err.contains("(and 1 more failed)"),
        "{err}"
    );
    // Plain routes: the route's own request is the one refused.
    let out = route_sync(&ns, &["--host", "--no-nexthops", "-f", &file]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert!(
        err.contains("add 10.200.1.0/24 via 10.240.0.11 dev br0 proto 200 table 254: ")
            && err.contains("os error"),
        "{err}"
    );
}

#[test]
fn input_errors_exit_2_before_touching_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&[N("n1", &["10.240.0.11"], &["10.200.1.0/24"])]);
    let file = write_doc(dir.path(), "f.json", &doc);
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();

    let out = run(&["--node", "nope", "-f", &file]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no node \"nope\""),
        "{}",
        stderr(&out)
    );

    let out = run(&["--host", "--proto", "static", "-f", &file]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));

    std::fs::write(dir.path().join("bad.json"), "{\"version\": 1,").unwrap();
    let out = run(&[
        "--host",
        "-f",
        &dir.path().join("bad.json").to_string_lossy(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(out.stdout.is_empty());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    let out = run(&["--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
}

/// A document of `n` nodes on 10.240.0.0/16, pod CIDRs 10.(100+i/256).(i%256).0/24.
fn big_document(n: usize) -> (Document, BTreeSet<String>) {
    let mut nodes = Vec::new();
    let mut expected = BTreeSet::new();
    for i in 0..n {
        let ip = format!("10.240.{}.{}", i / 250, i % 250 + 2);
        let cidr = format!("10.{}.{}.0/24", 100 + i / 256, i % 256);
        expected.insert(format!("{cidr} via {ip} dev br0"));
        nodes.push((format!("n{i}"), ip, cidr));
    }
    let refs: Vec<(String, [&str; 1], [&str; 1])> = nodes
        .iter()
        .map(|(name, ip, cidr)| (name.clone(), [ip.as_str()], [cidr.as_str()]))
        .collect();
    let ns: Vec<N> = refs
        .iter()
        .map(|(name, ip, cidr)| N(name, ip, cidr))
        .collect();
    (document(&ns), expected)
}

#[test]
fn kill_9_during_an_apply_of_10000_routes_then_a_run_converges_exactly() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/16"]);
    let dir = tempfile::tempdir().unwrap();
    let (doc, expected) = big_document(10_000);
    let file = write_doc(dir.path(), "big.json", &doc);
    // Stale routes of ours, and one pointing elsewhere, for the converging run to clean up.
    ns.ip(&[
        "route",
        "add",
        "10.99.0.0/24",
        "via",
        "10.240.0.9",
        "proto",
        "200",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.100.0.0/24",
        "via",
        "10.240.0.9",
        "proto",
        "200",
    ]);
    // And a nexthop of ours that no node has, named by a stale route of ours.
    let stale = (FIRST_ID + 50_000).to_string();
    ns.ip(&[
        "nexthop",
        "add",
        "id",
        &stale,
        "via",
        "10.240.0.9",
        "dev",
        "br0",
        "proto",
        "200",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.99.1.0/24",
        "nhid",
        &stale,
        "proto",
        "200",
    ]);

    let mut killed_at = None;
    for _attempt in 0..5 {
        let monitor = Monitor::start(&ns);
        let mut child = ns
            .command(BIN)
            .args(["--host", "-f", &file])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it as soon as the kernel announces its first new nexthop: its nexthops are then
        // partly made and its routes not yet.
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            match monitor.lines.recv_timeout(Duration::from_secs(1)) {
                Ok(line) if line.contains("proto 200") && line.starts_with("id ") => break,
                _ => {}
            }
        }
        // `ip netns exec` execs the binary, so the child's pid is route-sync's.
        Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        drop(monitor);
        let have = routes(&ns, "200", "main").len();
        let made = nexthops(&ns, "200").len();
        if status.code().is_none() && have < 10_000 && made > 1 && made < 10_001 {
            killed_at = Some((made, have));
            break;
        }
        // It finished (or had not started) before the kill: start over from nothing.
        ns.ip(&["route", "flush", "proto", "200"]);
        ns.ip(&["nexthop", "flush", "proto", "200"]);
    }
    let (made, have) = killed_at.expect("could not kill route-sync in the middle of an apply");
    eprintln!("killed with {made} nexthops and {have} routes of proto 200 in place");

    let r = sync_expect(&ns, &["--host", "-f", &file], 0);
    assert!(r.changes() > 0, "{:?}", (r.added.len(), r.removed.len()));
    let have = routes(&ns, "200", "main");
    assert_eq!(have.len(), expected.len());
    assert_eq!(have, expected);
    // One nexthop per node, each named by its node's route: none left over from the killed run.
    assert_eq!(nexthops(&ns, "200").len(), 10_000);
    assert_routes_name_their_nexthops(&ns);

    let r = sync_expect(&ns, &["--host", "-f", &file], 0);
    assert_eq!((r.changes(), r.unchanged), (0, 10_000));
    assert_eq!(r.nexthops.unchanged, 10_000);
}

#[test]
fn watch_repairs_routes_and_follows_the_document_until_sigterm() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/24"]);
    let dir = tempfile::tempdir().unwrap();
    let two = document(&[
        N("n1", &["10.240.0.11"], &["10.200.1.0/24"]),
        N("n2", &["10.240.0.12"], &["10.200.2.0/24"]),
    ]);
    let file = write_doc(dir.path(), "w.json", &two);
    let child = ns
        .command(BIN)
        .args(["--host", "--watch", "1", "-f", &file])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |what: &str, want: usize| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let have = routes(&ns, "200", "main").len();
            if have == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {have} routes, want {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("first pass", 2);
    ns.ip(&["route", "del", "10.200.1.0/24", "proto", "200"]);
    wait_for("repair", 2);
    let one = document(&[N("n2", &["10.240.0.12"], &["10.200.2.0/24"])]);
    // Replace the file atomically, as a pipeline's `mv` would.
    write_doc(dir.path(), "w.json.new", &one);
    std::fs::rename(dir.path().join("w.json.new"), &file).unwrap();
    wait_for("document change", 1);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn switching_between_plain_routes_and_nexthops_is_one_run_with_no_route_missing() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/24", "fd00:240::1/64"]);
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
    let ips: Vec<[String; 2]> = (0..100)
        .map(|i| {
            [
                format!("10.240.0.{}", i + 2),
                format!("fd00:240::{:x}", i + 2),
            ]
        })
        .collect();
    let cidrs: Vec<[String; 2]> = (0..100)
        .map(|i| {
            [
                format!("10.200.{i}.0/24"),
                format!("fd00:10:200:{i:x}::/64"),
            ]
        })
        .collect();
    let ip_refs: Vec<[&str; 2]> = ips.iter().map(|[a, b]| [a.as_str(), b.as_str()]).collect();
    let cidr_refs: Vec<[&str; 2]> = cidrs
        .iter()
        .map(|[a, b]| [a.as_str(), b.as_str()])
        .collect();
    let nodes: Vec<N> = (0..100)
        .map(|i| N(&names[i], &ip_refs[i], &cidr_refs[i]))
        .collect();
    let file = write_doc(dir.path(), "s.json", &document(&nodes));

    let r = sync_expect(&ns, &["--host", "--no-nexthops", "-f", &file], 0);
    assert_eq!((r.added.len(), r.nexthop_changes()), (200, 0), "{r:?}");
    let plain = routes(&ns, "200", "main");
    assert!(named_routes(&ns).iter().all(|r| r.nhid.is_none()));
    assert!(nexthops(&ns, "200").is_empty());

    // Plain to nexthops: 200 nexthops made, then each route replaced in place. A replace is
    // one new-route announcement; a route removed, even for a moment, would be a `Deleted` one.
    let monitor = Monitor::start(&ns);
    let r = sync_expect(&ns, &["--host", "-f", &file], 0);
    let seen = monitor.stop();
    assert_eq!(
        (r.replaced.len(), r.nexthops.added.len()),
        (200, 200),
        "{r:?}"
    );
    assert_eq!((r.added.len(), r.removed.len()), (0, 0), "{r:?}");
    let deleted: Vec<&String> = seen.iter().filter(|l| l.starts_with("Deleted")).collect();
    assert!(deleted.is_empty(), "{deleted:?}");
    let route_events = seen.iter().filter(|l| !l.starts_with("id ")).count();
    assert_eq!(route_events, 200, "{seen:?}");
    assert_eq!(routes(&ns, "200", "main"), plain);
    assert_routes_name_their_nexthops(&ns);
    assert_eq!(nexthops(&ns, "200").len(), 200);

    // And back: routes replaced by plain ones first, then the nexthops no route names removed.
    let monitor = Monitor::start(&ns);
    let r = sync_expect(&ns, &["--host", "--no-nexthops", "-f", &file], 0);
    let seen = monitor.stop();
    assert_eq!(
        (r.replaced.len(), r.nexthops.removed.len()),
        (200, 200),
        "{r:?}"
    );
    let deleted_routes: Vec<&String> = seen
        .iter()
        .filter(|l| l.starts_with("Deleted") && !l.starts_with("Deleted id "))
        .collect();
    assert!(deleted_routes.is_empty(), "{deleted_routes:?}");
    assert_eq!(routes(&ns, "200", "main"), plain);
    assert!(named_routes(&ns).iter().all(|r| r.nhid.is_none()));
    assert!(nexthops(&ns, "200").is_empty());
    let r = sync_expect(&ns, &["--host", "--no-nexthops", "-f", &file], 0);
    assert_eq!((r.changes(), r.unchanged), (0, 200));
}

/// A `--watch` route-sync whose stderr is read line by line, so a test can wait for its passes
/// (`ROUTE_SYNC_TIMING=1` makes each pass end with a `timing: pass` line).
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watcher {
    fn start(ns: &Netns, file: &str) -> Watcher {
        let mut child = ns
            .command(BIN)
            .args(["--host", "--watch", "3600", "-f", file])
            .env("ROUTE_SYNC_TIMING", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stderr.take().unwrap());
        Watcher { child, lines }
    }

    /// Waits for the next pass that read the document (not one the kernel's own changes, such
    /// as an address coming up, started); returns its stderr lines.
    fn next_pass(&mut self, what: &str) -> Vec<String> {
        loop {
            let pass = self.any_pass(what);
            if pass.iter().any(|l| l.contains("timing: document ")) {
                return pass;
            }
        }
    }

    /// Waits for the next pass to end; returns its stderr lines.
    fn any_pass(&mut self, what: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{what}: no pass ended ({e}); stderr: {seen:?}"));
            let done = line.contains("timing: pass ");
            seen.push(line);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Renames `name.new` over `name` in `dir`, as an editor or a pipeline's `mv` replaces a file.
fn rename_over(dir: &Path, name: &str, doc: &Document) -> String {
    let new = format!("{name}.new");
    write_doc(dir, &new, doc);
    std::fs::rename(dir.join(&new), dir.join(name)).unwrap();
    dir.join(name).to_string_lossy().into_owned()
}

/// A `--watch` route-sync sees a document renamed over its -f FILE at once (the timer is an
/// hour away), and a node's new address is one nexthop replace that both its routes follow,
/// without a dump: the kernel shows exactly one write. A document renamed over it again with
/// nothing changed makes a pass that writes nothing at all. The namespace runs with
/// net.ipv4.nexthop_compat_mode=0, so the kernel does not re-announce the routes that follow a
/// replaced nexthop and `ip monitor` shows exactly what route-sync wrote.
#[test]
fn watch_moves_a_node_on_a_rename_in_one_nexthop_replace_and_an_unchanged_pass_writes_nothing() {
    let ns = Netns::new("rs");
    ns.add_bridge("br0", &["10.240.0.1/24"]);
    ns.sysctl("net.ipv4.nexthop_compat_mode", "0");
    let dir = tempfile::tempdir().unwrap();
    let lab = |n2: &str| {
        document(&[
            N("n1", &["10.240.0.11"], &["10.200.1.0/24"]),
            N("n2", &[n2], &["10.200.2.0/24", "10.200.3.0/24"]),
        ])
    };
    let file = write_doc(dir.path(), "w.json", &lab("10.240.0.12"));
    let mut watcher = Watcher::start(&ns, &file);
    watcher.any_pass("first pass");
    assert_eq!(named_routes(&ns).len(), 3);
    let before = nexthops(&ns, "200");

    let monitor = Monitor::start(&ns);
    rename_over(dir.path(), "w.json", &lab("10.240.0.22"));
    let pass = watcher.next_pass("the move");
    let seen = monitor.stop();
    assert!(
        !pass.iter().any(|l| l.contains("timing: dump ")),
        "the move dumped the tables again: {pass:?}"
    );
    // One node's object changed: read as an edit of it, not parsed in full (edit.rs).
    assert!(
        !pass.iter().any(|l| l.contains("timing: parse ")),
        "the move was parsed in full: {pass:?}"
    );
    assert_eq!(seen.len(), 1, "one write: {seen:?}");
    assert!(seen[0].starts_with("id "), "a nexthop change: {seen:?}");
    let after = nexthops(&ns, "200");
    let n2_before = before
        .iter()
        .find(|n| n.gateway.as_deref() == Some("10.240.0.12"));
    let n2_after = after
        .iter()
        .find(|n| n.gateway.as_deref() == Some("10.240.0.22"));
    assert_eq!(
        n2_before.map(|n| n.id),
        n2_after.map(|n| n.id),
        "{before:?} → {after:?}"
    );
    // Its own replace's notification (and the kernel's for the routes that follow) carry its
    // port id: no pass dumps the tables after it. (Monitor::stop waited longer than the 200 ms
    // a foreign change is given to settle.)
    let later: Vec<String> = watcher.lines.try_iter().collect();
    assert!(
        !later.iter().any(|l| l.contains("timing: dump ")),
        "its own change made it dump again: {later:?}"
    );
    assert_eq!(after.len(), 2, "{after:?}");
    let n2_routes: Vec<IpRoute> = named_routes(&ns)
        .into_iter()
        .filter(|r| r.nhid == n2_after.map(|n| n.id))
        .collect();
    assert_eq!(n2_routes.len(), 2, "both of n2's routes name its nexthop");

    let monitor = Monitor::start(&ns);
    rename_over(dir.path(), "w.json", &lab("10.240.0.22"));
    let pass = watcher.next_pass("nothing changed");
    let seen = monitor.stop();
    assert!(seen.is_empty(), "a pass with nothing to do wrote {seen:?}");
    assert!(
        !pass.iter().any(|l| l.contains("timing: apply ")),
        "a pass with nothing to do sent requests: {pass:?}"
    );

    // n2 takes n1's pod CIDR: one node's object changed, but the edit must be refused, with the
    // full read's error at its JSON path, and the last good document kept: nothing is written.
    let monitor = Monitor::start(&ns);
    let mut clash = lab("10.240.0.22");
    clash.nodes[1].pod_cidrs = nets(&["10.200.1.0/24", "10.200.3.0/24"]);
    rename_over(dir.path(), "w.json", &clash);
    let pass = watcher.next_pass("a duplicate pod CIDR");
    let seen = monitor.stop();
    assert!(seen.is_empty(), "a refused document wrote {seen:?}");
    assert!(
        pass.iter().any(|l| l.contains(
            "keeping the last good document: nodes[1].pod_cidrs[0]: 10.200.1.0/24 is also node"
        )),
        "{pass:?}"
    );
    // The next edit is read against the last good document: n2 moves back, one write.
    let monitor = Monitor::start(&ns);
    rename_over(dir.path(), "w.json", &lab("10.240.0.12"));
    watcher.next_pass("the move back");
    let seen = monitor.stop();
    assert_eq!(seen.len(), 1, "one write: {seen:?}");
    let gateways: Vec<Option<String>> = nexthops(&ns, "200")
        .into_iter()
        .map(|n| n.gateway)
        .collect();
    assert!(
        gateways.contains(&Some("10.240.0.12".into())),
        "{gateways:?}"
    );
}

/// The lines `reader` gives, read on a thread of their own so that a test can wait for one with
/// a deadline (`recv_timeout`); the thread ends when the reader does or the receiver is dropped.
fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}
