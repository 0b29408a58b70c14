//! A whole cluster across two hypervisors (issue 19 item 4): one TCG VM on each, both etcd
//! members, built by the pipeline a user runs and reaching each other through routes the tools
//! make.
//!
//! What it runs: two real libvirtd (testkit::hypervisors) and the workspace's tools as a user
//! would on two hosts: `mkcluster --hypervisor … | cidr-alloc | mkcerts | mkunits --bin-dir`
//! (v1.35 on Debian's containerd 1.x, as scripts/cluster.sh without K8S_BIN), `mkvm up` over
//! both URIs with the base image (testkit::libvirt::base_image: Debian 13 with etcd, containerd),
//! then in each hypervisor's namespace IP forwarding, `route-sync --host --hypervisor NAME` twice
//! (the second must change nothing) and the egress masquerade mkunits wrote for it; node-push
//! from hv-a's namespace to both nodes (files, then every service but the Kubernetes ones, host
//! keys recorded with --accept-new and checked after); a stand-in cni0 bridge holding each node's
//! pod gateway (no CNI runs without a kubelet), as scripts/cluster.sh does. Then it checks: every
//! started service active (etcd, containerd, each node's own route-sync.service, which routes the
//! other hypervisor's pod CIDRs via the node's gateway), each node reaching the other by node
//! address, by name and at its pod gateway (TCP to sshd: the image has no ping) with its own
//! source address kept, and `etcd-check` from hv-a's namespace reporting one healthy 2-member
//! cluster. `mkvm down` must leave no domain, volume, network or pool on either hypervisor.
//!
//! What it does not: no Kubernetes server binary runs (none installs here: their units are
//! pushed, not started) and no pod exists; traffic leaving the cluster for elsewhere is
//! masqueraded by the rule loaded here, but nothing outside answers, so that path is not
//! exercised. Problems found between `up` and `down` are collected and asserted after `down`, so
//! a failed check never leaves VMs behind.

use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hardway::Document;
use serde::Deserialize;
use testkit::hypervisors::{Hypervisor, TwoHypervisors};

use crate::guests::{said, Guests, HostKeys};
use crate::routes;

/// What the checks between `up` and `down` found wrong; asserted after `down` ran.
type Problems = Vec<String>;

/// How long the two members may take to form a cluster once their units started.
const ETCD_HEALTHY_WITHIN: Duration = Duration::from_secs(180);

/// etcd-check's JSON report (tools/etcd-check/src/report.rs `Report`), the parts read here.
#[derive(Debug, Deserialize)]
struct EtcdReport {
    verdict: String,
    members_total: usize,
    members_healthy: usize,
    leader: Option<String>,
    members: Vec<EtcdMember>,
}

#[derive(Debug, Deserialize)]
struct EtcdMember {
    name: Option<String>,
    linearizable_read: bool,
}

/// The cluster's files: OUT (the PKI, the units, known_hosts), the documents and the SSH key.
struct Cluster {
    work: tempfile::TempDir,
    /// mkunits' output: what `mkvm up` reads, and what `down` removes when `up` wrote nothing.
    planned: PathBuf,
    /// `mkvm up`'s output, the document everything after reads.
    doc: PathBuf,
}

/// A directory holding the workspace's route-sync without its debug information (63 MB → a
/// few): mkunits' `--bin-dir`, so node-push has far less to send to a TCG guest.
fn stripped_route_sync(work: &Path) -> PathBuf {
    let bin = work.join("bin");
    std::fs::create_dir(&bin).unwrap();
    testkit::run_ok(
        Command::new("strip")
            .arg("-o")
            .arg(bin.join("route-sync"))
            .arg(testkit::bin("route-sync")),
    );
    bin
}

impl Cluster {
    /// mkcluster | cidr-alloc | mkcerts --dir OUT | mkunits --dir OUT --bin-dir (the workspace's
    /// own route-sync), into `planned`; an SSH key for root on the nodes.
    fn make(hv: &TwoHypervisors) -> Cluster {
        let work = tempfile::tempdir().unwrap();
        let out = work.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let version = ["--kubernetes-version", "v1.35.0"];
        let runtime = ["--container-runtime", "containerd-1"];
        let flags = [version, runtime].concat();
        let inventory = crate::two_host_inventory(hv, crate::ONE_NODE_ON_EACH, &flags);
        let dir = out.to_str().unwrap();
        let bin = stripped_route_sync(work.path());
        let steps: [(&str, Vec<&str>); 3] = [
            ("cidr-alloc", vec![]),
            ("mkcerts", vec!["--dir", dir]),
            (
                "mkunits",
                vec!["--dir", dir, "--bin-dir", bin.to_str().unwrap()],
            ),
        ];
        let text = steps.iter().fold(inventory, |text, (tool, args)| {
            testkit::run_piped(&testkit::bin(tool), args, &text)
        });
        let doc = hardway::doc::from_str(&String::from_utf8(text).unwrap(), "mkunits").unwrap();
        crate::assert_each_hypervisor_has_its_half(&doc);
        let planned = work.path().join("planned.json");
        std::fs::write(&planned, hardway::doc::to_string(&doc)).unwrap();
        testkit::sshd::keygen(&work.path().join("id"), "two-hypervisors-cluster");
        Cluster {
            doc: work.path().join("cluster.json"),
            planned,
            work,
        }
    }

    fn out(&self) -> PathBuf {
        self.work.path().join("out")
    }

    fn key(&self) -> PathBuf {
        self.work.path().join("id")
    }

    fn known_hosts(&self) -> PathBuf {
        self.out().join("known_hosts")
    }

    /// `mkvm up` over both URIs; on success its document is in `doc`. It waits for the domains
    /// to run only: mkvm runs outside the namespaces, where the guests' addresses do not route,
    /// so the wait for SSH and cloud-init is the test's, from hv-a's namespace.
    fn mkvm_up(&self) -> Result<Document, String> {
        let out = Command::new(testkit::bin("mkvm"))
            .args(["up", "--domain-type", "qemu", "--wait", "running"])
            .args(["--overcommit", "--image"])
            .arg(testkit::libvirt::base_image())
            .arg("--ssh-key")
            .arg(self.key().with_extension("pub"))
            .arg("-f")
            .arg(&self.planned)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!("mkvm up: {}", said(&out)));
        }
        std::fs::write(&self.doc, &out.stdout).unwrap();
        hardway::doc::from_str(&String::from_utf8_lossy(&out.stdout), "mkvm")
            .map_err(|e| e.to_string())
    }

    /// `mkvm down` over what `up` wrote, or over the planned document when `up` wrote nothing.
    fn mkvm_down(&self) -> Output {
        let made = if self.doc.exists() {
            &self.doc
        } else {
            &self.planned
        };
        Command::new(testkit::bin("mkvm"))
            .args(["down", "-f"])
            .arg(made)
            .output()
            .unwrap()
    }
}

#[test]
fn a_cluster_spans_two_hypervisors_routed_with_one_etcd_and_down_leaves_nothing() {
    let _one_pair = crate::ONE_PAIR_AT_A_TIME.lock();
    let hv = TwoHypervisors::start();
    let cluster = Cluster::make(&hv);
    let mut problems = Problems::new();
    match cluster.mkvm_up() {
        Ok(doc) => {
            // A helper that panics (ssh not answering at all) ends the checks, not the test: its
            // message is a problem, and `down` still runs.
            let checked = std::panic::catch_unwind(AssertUnwindSafe(|| {
                check_cluster(&hv, &cluster, &doc, &mut problems)
            }));
            if let Err(panic) = checked {
                problems.push(format!("the checks stopped: {}", panic_message(&panic)));
            }
        }
        Err(why) => problems.push(why),
    }
    let down = cluster.mkvm_down();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(down.status.success(), "mkvm down: {}", said(&down));
    for one in [&hv.a, &hv.b] {
        for list in [
            ["list", "--all", "--name"],
            ["net-list", "--all", "--name"],
            ["pool-list", "--all", "--name"],
        ] {
            assert_eq!(one.virsh_ok(&list).trim(), "", "{}: {list:?}", one.name());
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic.downcast_ref::<String>().map(String::as_str);
    let text = text.or_else(|| panic.downcast_ref::<&str>().copied());
    text.unwrap_or("(no message)").to_string()
}

/// Everything between `up` and `down`, in the order a user on the two hosts runs it.
fn check_cluster(hv: &TwoHypervisors, cluster: &Cluster, doc: &Document, problems: &mut Problems) {
    // Where the time goes, for CI's log (nothing asserts it).
    let clock = Instant::now();
    let done =
        |phase: &str| eprintln!("two-hypervisor cluster: {phase} at {:.0?}", clock.elapsed());
    // Each node waited for from its own hypervisor, where it is on-link: route-sync runs once
    // the nodes are up, as a user runs it after `mkvm up` (right after `--wait running` the
    // bridge may have no carrier yet, and a nexthop on it is refused: "Network is down").
    let key = cluster.key();
    for one in [&hv.a, &hv.b] {
        let here = Guests {
            netns: one.netns(),
            key: key.clone(),
        };
        let on_it = doc
            .nodes
            .iter()
            .filter(|n| n.host.as_deref() == Some(&one.uri()));
        for node in on_it {
            if let Err(why) = here.wait_until_ready(&node_ip(doc, &node.name)) {
                return problems.push(why);
            }
        }
    }
    done("both nodes ready");
    for one in [&hv.a, &hv.b] {
        problems.extend(routes::route_hypervisor(one, &cluster.doc, doc));
        problems.extend(routes::check_kernel_routes(doc, one));
        load_egress_masquerade(one, &cluster.out(), problems);
    }
    done("routes");
    if let Err(why) = push(hv, cluster, doc) {
        problems.push(why);
        return;
    }
    done("node-push");
    // From here every ssh goes from hv-a's namespace, to node-b1 through the routes.
    let guests = Guests {
        netns: hv.a.netns(),
        key,
    };
    let known = cluster.known_hosts();
    let keys = HostKeys::Known(&known);
    stand_in_bridges(&guests, keys, doc);
    check_services(&guests, keys, &pushed(doc), problems);
    check_node_routes(&guests, keys, doc, problems);
    check_reachability(&guests, keys, doc, problems);
    done("reachability");
    check_etcd(hv, cluster, problems);
    done("etcd-check");
}

/// `nft -f OUT/hypervisors/NAME/hardway-egress.nft` in `one`'s namespace: what the hypervisor's
/// owner loads so traffic leaving the cluster is masqueraded, and nothing between the nodes is.
fn load_egress_masquerade(one: &Hypervisor, out: &Path, problems: &mut Problems) {
    let file = out.join(format!("hypervisors/{}/hardway-egress.nft", one.name()));
    let loaded = one
        .netns()
        .command("nft")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    if !loaded.status.success() {
        problems.push(format!(
            "{}: nft -f {}: {}",
            one.name(),
            file.display(),
            said(&loaded)
        ));
    }
}

/// The document node-push gets: every node's files, and its services but the Kubernetes ones,
/// whose programs do not install here (scripts/lib.sh KUBERNETES_UNITS: read from there, the
/// one list of them).
fn pushed(doc: &Document) -> Document {
    let lib = testkit::workspace_root().join("scripts/lib.sh");
    let list = testkit::run_ok(Command::new("bash").arg("-c").arg(format!(
        ". '{}'; printf '%s\\n' \"${{KUBERNETES_UNITS[@]}}\"",
        lib.display()
    )));
    let kubernetes: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert!(
        kubernetes.iter().any(|u| u == "kubelet.service"),
        "{kubernetes:?}"
    );
    let mut pushed = doc.clone();
    for node in &mut pushed.nodes {
        node.services.retain(|s| !kubernetes.contains(s));
    }
    pushed
}

/// node-push from hv-a's namespace to both nodes: files, then services in order; each node's
/// first host key recorded in OUT/known_hosts, which every later ssh checks against.
fn push(hv: &TwoHypervisors, cluster: &Cluster, doc: &Document) -> Result<(), String> {
    let file = cluster.work.path().join("pushed.json");
    std::fs::write(&file, hardway::doc::to_string(&pushed(doc))).unwrap();
    let out =
        hv.a.netns()
            .command(testkit::bin("node-push"))
            .arg("-f")
            .arg(&file)
            .arg("--dir")
            .arg(cluster.out())
            .arg("--identity")
            .arg(cluster.key())
            .arg("--known-hosts")
            .arg(cluster.known_hosts())
            .args(["--accept-new", "--timeout", "600"])
            .output()
            .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("node-push: {}", said(&out)))
    }
}

/// No CNI runs without a kubelet: a bridge holding each node's pod gateway (the first host of
/// its pod CIDR) stands in for cni0, as scripts/cluster.sh makes it.
fn stand_in_bridges(guests: &Guests, keys: HostKeys, doc: &Document) {
    for node in &doc.nodes {
        for cidr in node.pod_cidrs.iter().filter(|c| c.addr().is_ipv4()) {
            let gateway = routes::first_host(cidr);
            let make = format!(
                "ip link show cni0 >/dev/null 2>&1 || ip link add cni0 type bridge; \
                 ip addr replace {gateway}/{} dev cni0; ip link set cni0 up",
                cidr.prefix_len()
            );
            guests.run(keys, &node_ip(doc, &node.name), &make).unwrap();
        }
    }
}

/// Every service node-push started is `active` on its node; etcd, containerd and route-sync are
/// among them.
fn check_services(guests: &Guests, keys: HostKeys, pushed: &Document, problems: &mut Problems) {
    for node in &pushed.nodes {
        let services = &node.services;
        for needed in ["etcd.service", "route-sync.service", "containerd.service"] {
            if !services.iter().any(|s| s == needed) {
                problems.push(format!("{}: {needed} is not among {services:?}", node.name));
            }
        }
        // One state per unit, in order; the exit status is not 0 when one is not active.
        let command = format!("systemctl is-active {} || true", services.join(" "));
        let states = guests
            .run(keys, &node_ip(pushed, &node.name), &command)
            .unwrap();
        let states: Vec<&str> = states.lines().collect();
        if states.len() != services.len() || states.iter().any(|s| *s != "active") {
            problems.push(format!("{}: {services:?} are {states:?}", node.name));
            let not_active = services
                .iter()
                .zip(&states)
                .filter(|(_, s)| **s != "active");
            for (unit, _) in not_active {
                let log = format!("journalctl -u {unit} -n 5 --no-pager -o cat");
                let said = guests.run(keys, &node_ip(pushed, &node.name), &log);
                problems.push(format!("{}: {unit}'s last lines: {said:?}", node.name));
            }
        }
    }
}

/// One route of `ip -j route show`.
#[derive(Debug, Deserialize)]
struct NodeRoute {
    dst: String,
}

/// Each node's own route-sync.service routed the other node's pod CIDRs (protocol 200, route-
/// sync's) and the kernel sends them via the node's own gateway, the first address of its
/// hypervisor's slice: the other node is not on-link.
fn check_node_routes(guests: &Guests, keys: HostKeys, doc: &Document, problems: &mut Problems) {
    for node in &doc.nodes {
        let ip = node_ip(doc, &node.name);
        let slice = doc.hypervisor_of(node).unwrap().node_slice[0];
        let gateway = routes::first_host(&slice);
        let listed = guests.run(keys, &ip, "ip -j route show proto 200").unwrap();
        let listed: Vec<NodeRoute> = serde_json::from_str(&listed).expect("ip -j route show");
        let others = doc.nodes.iter().filter(|n| n.name != node.name);
        for cidr in others.flat_map(|n| n.pod_cidrs.iter().filter(|c| c.addr().is_ipv4())) {
            if !listed.iter().any(|r| r.dst == cidr.to_string()) {
                problems.push(format!(
                    "{}: no route-sync route to {cidr}: {listed:?}",
                    node.name
                ));
            }
            let probe = format!("ip -j route get {}", routes::first_host(cidr));
            let got: Vec<routes::RouteGet> =
                serde_json::from_str(&guests.run(keys, &ip, &probe).unwrap()).expect("ip -j");
            if got.first().and_then(|r| r.gateway) != Some(gateway) {
                problems.push(format!(
                    "{}: {cidr} goes {got:?}, not via {gateway}",
                    node.name
                ));
            }
        }
    }
}

/// Each node reaches the other's sshd by node address, by name (/etc/hosts lists every node)
/// and at the other's pod gateway (route-sync's routes on the node and both hypervisors), and
/// the other sees the connection come from the node's own address: nothing on the way
/// masquerades traffic between the nodes.
fn check_reachability(guests: &Guests, keys: HostKeys, doc: &Document, problems: &mut Problems) {
    let (a1, b1) = (node_ip(doc, "node-a1"), node_ip(doc, "node-b1"));
    for (from, to, other) in [(&a1, &b1, "node-b1"), (&b1, &a1, "node-a1")] {
        let pod_gateways = doc.nodes.iter().filter(|n| n.name == other).flat_map(|n| {
            n.pod_cidrs
                .iter()
                .filter(|c| c.addr().is_ipv4())
                .map(routes::first_host)
        });
        let targets: Vec<String> = [to.clone(), other.to_string()]
            .into_iter()
            .chain(pod_gateways.map(|g| g.to_string()))
            .collect();
        for target in targets {
            match guests.banner(keys, from, &target) {
                Ok(banner) if banner == "SSH-" => {}
                answer => problems.push(format!("{from} to {target}:22: {answer:?}")),
            }
        }
    }
    source_address_is_kept(guests, keys, &a1, &b1, problems);
}

/// node-b1 sees a connection from node-a1 as coming from node-a1's own address, not from hv-a's
/// or hv-b's (a masquerade on either would show one of theirs).
fn source_address_is_kept(
    guests: &Guests,
    keys: HostKeys,
    a1: &str,
    b1: &str,
    problems: &mut Problems,
) {
    let mut holder = guests.hold_connection(keys, a1, b1);
    let deadline = Instant::now() + Duration::from_secs(25);
    let peers = loop {
        let peers = guests.ssh_peers(keys, b1).unwrap();
        if peers.iter().any(|p| p == a1) || Instant::now() > deadline {
            break peers;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let _ = holder.kill();
    let _ = holder.wait();
    if !peers.iter().any(|p| p == a1) {
        problems.push(format!("peers on {b1}:22 are {peers:?}, without {a1}"));
    }
}

/// etcd-check from hv-a's namespace, outside both VMs, with the document's PKI: one healthy
/// cluster of the two members, one on each hypervisor. Retried while the members find each
/// other.
fn check_etcd(hv: &TwoHypervisors, cluster: &Cluster, problems: &mut Problems) {
    let deadline = Instant::now() + ETCD_HEALTHY_WITHIN;
    let out = loop {
        let out =
            hv.a.netns()
                .command(testkit::bin("etcd-check"))
                .arg("-f")
                .arg(&cluster.doc)
                .arg("--dir")
                .arg(cluster.out())
                .args(["--timeout", "5s"])
                .output()
                .unwrap();
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let report: EtcdReport = match serde_json::from_slice(&out.stdout) {
        Ok(report) => report,
        Err(e) => return problems.push(format!("etcd-check report ({e}): {}", said(&out))),
    };
    let mut names: Vec<&str> = report
        .members
        .iter()
        .filter_map(|m| m.name.as_deref())
        .collect();
    names.sort();
    let healthy = report.verdict == "healthy"
        && (report.members_total, report.members_healthy) == (2, 2)
        && report.leader.is_some()
        && names == ["node-a1", "node-b1"]
        && report.members.iter().all(|m| m.linearizable_read);
    if !healthy {
        problems.push(format!(
            "etcd is not one healthy 2-member cluster: {report:?}"
        ));
    }
}

fn node_ip(doc: &Document, name: &str) -> String {
    let node = doc.nodes.iter().find(|n| n.name == name).unwrap();
    let ip: IpAddr = node.primary_ip().unwrap();
    ip.to_string()
}
