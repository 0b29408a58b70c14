//! The hypervisors' side of the routed network between them: IP forwarding (the hypervisors'
//! own configuration, README "## Two hypervisors"), `route-sync --host --hypervisor NAME` run
//! twice in each one's namespace, and the routes it leaves in that namespace's kernel.

use std::net::IpAddr;
use std::path::Path;

use hardway::Document;
use ipnet::IpNet;
use serde::Deserialize;
use testkit::hypervisors::Hypervisor;

use crate::guests::said;

/// route-sync's JSON report (tools/route-sync/src/plan.rs `Plan`), the parts read here.
#[derive(Debug, Deserialize)]
pub struct RouteReport {
    pub added: Vec<RouteChange>,
    pub replaced: Vec<RouteChange>,
    pub removed: Vec<RouteChange>,
    pub unchanged: usize,
    pub conflicts: Vec<RouteChange>,
    pub nexthops: NexthopReport,
}

/// One route of the report: where it goes.
#[derive(Debug, Deserialize)]
pub struct RouteChange {
    pub dst: IpNet,
}

/// route-sync's nexthop objects (tools/route-sync/src/nexthops.rs `NexthopChanges`).
#[derive(Debug, Deserialize)]
pub struct NexthopReport {
    pub added: Vec<serde_json::Value>,
    pub replaced: Vec<serde_json::Value>,
    pub removed: Vec<serde_json::Value>,
}

impl RouteReport {
    /// How many routes and nexthops the run added, replaced or removed.
    pub fn changes(&self) -> usize {
        let nexthops = &self.nexthops;
        self.added.len()
            + self.replaced.len()
            + self.removed.len()
            + nexthops.added.len()
            + nexthops.replaced.len()
            + nexthops.removed.len()
    }
}

/// `route-sync --host --hypervisor NAME -f DOC` in `one`'s namespace: its report, or what it
/// said when it failed.
pub fn route_sync(one: &Hypervisor, doc: &Path) -> Result<RouteReport, String> {
    let out = one
        .netns()
        .command(testkit::bin("route-sync"))
        .args(["--host", "--hypervisor", one.name(), "-f"])
        .arg(doc)
        .output()
        .expect("run route-sync");
    if !out.status.success() {
        return Err(format!("route-sync on {}: {}", one.name(), said(&out)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("route-sync report: {e}"))
}

/// Forwarding on, then route-sync twice: the first run installs the routes, the second must
/// find every one in place and change nothing. Returns what was wrong.
pub fn route_hypervisor(one: &Hypervisor, doc: &Path, typed: &Document) -> Vec<String> {
    let mut wanted: Vec<IpNet> = wanted_routes(typed, one)
        .iter()
        .map(|(dst, _)| *dst)
        .collect();
    wanted.sort();
    one.netns().sysctl("net.ipv4.ip_forward", "1");
    let (first, again) = match (route_sync(one, doc), route_sync(one, doc)) {
        (Ok(first), Ok(again)) => (first, again),
        (first, again) => {
            return [first.err(), again.err()].into_iter().flatten().collect();
        }
    };
    let mut problems = Vec::new();
    let mut added: Vec<IpNet> = first.added.iter().map(|r| r.dst).collect();
    added.sort();
    if added != wanted || !first.conflicts.is_empty() {
        problems.push(format!(
            "{}: first route-sync did not add {wanted:?}: {first:?}",
            one.name()
        ));
    }
    if again.changes() != 0 || !again.conflicts.is_empty() || again.unchanged != first.added.len() {
        problems.push(format!(
            "{}: second route-sync was not a no-op after {first:?}: {again:?}",
            one.name()
        ));
    }
    problems
}

/// The routes `one` must have: the other hypervisor's node slice and its nodes' pod CIDRs via
/// that hypervisor's address, its own nodes' pod CIDRs via the node. As (destination, gateway).
pub fn wanted_routes(doc: &Document, one: &Hypervisor) -> Vec<(IpNet, IpAddr)> {
    let mut wanted = Vec::new();
    for host in &doc.hypervisors {
        let local = host.name == one.name();
        if !local {
            wanted.extend(host.node_slice.iter().map(|slice| (*slice, host.address)));
        }
        for node in doc
            .nodes
            .iter()
            .filter(|n| n.host.as_ref() == Some(&host.uri))
        {
            let via = if local { node.ips[0] } else { host.address };
            let v4 = node.pod_cidrs.iter().filter(|cidr| cidr.addr().is_ipv4());
            wanted.extend(v4.map(|cidr| (*cidr, via)));
        }
    }
    wanted
}

/// One kernel answer of `ip -j route get` (on a hypervisor or a node).
#[derive(Debug, Deserialize)]
pub struct RouteGet {
    pub gateway: Option<IpAddr>,
}

/// Each wanted route, as the kernel in `one`'s namespace resolves the destination's first host
/// (whatever the route's form: plain, or naming a nexthop object). Returns what was wrong.
pub fn check_kernel_routes(doc: &Document, one: &Hypervisor) -> Vec<String> {
    let mut problems = Vec::new();
    for (dst, via) in wanted_routes(doc, one) {
        let probe = first_host(&dst).to_string();
        let answer = one.netns().exec("ip", &["-j", "route", "get", &probe]);
        let got: Vec<RouteGet> = serde_json::from_slice(&answer.stdout).unwrap_or_default();
        let gateway = got.first().and_then(|r| r.gateway);
        if gateway != Some(via) {
            problems.push(format!(
                "{}: {dst} goes via {gateway:?}, not {via} ({})",
                one.name(),
                said(&answer)
            ));
        }
    }
    problems
}

/// The first host of a range (hardway::validate::first_host, the one mkvm and route-sync use):
/// a pod CIDR's gateway (the stand-in cni0 holds it), a slice's libvirt gateway.
pub fn first_host(range: &IpNet) -> IpAddr {
    hardway::validate::first_host(range).expect("a range with hosts")
}
