//! What route-sync wants and what it will do, as plain data: the routes the document asks for,
//! the kernel's routes as dumped, and the diff between them. No syscalls here, so every rule
//! of ownership (never touch another protocol's route, a conflict is reported) is testable
//! without a kernel.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::document::{Document, Hypervisor, Node};
use crate::error::Error;
use crate::nexthops::{self, KernelNexthop, NexthopChanges, NexthopMode};

/// Where route-sync runs: on one node, or on a hypervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// On this node: every other node's pod CIDRs.
    Node(String),
    /// On the hypervisor: every node's pod CIDRs. On a cluster across several hypervisors,
    /// the one named (`--hypervisor`): also the other hypervisors' node slices.
    Host(Option<String>),
}

/// The routes route-sync owns: those with this protocol number in this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub proto: u8,
    pub table: u32,
}

/// A route the document asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub dst: IpNet,
    pub gateway: IpAddr,
    /// The node whose pod CIDR this is; `None` for another hypervisor's node slice.
    pub node: Option<String>,
    /// The hypervisor the route goes through (on a hypervisor: that one's address; on a node:
    /// its own hypervisor's gateway); `None` when it goes straight to the node.
    pub hypervisor: Option<String>,
    /// What the route leads through, as a small number: the node's index in the document when
    /// straight to it, the number of nodes plus the hypervisor's index when through one. Routes
    /// of one group and family share a nexthop; grouping by this number instead of by name
    /// spares a 10,000-entry hash table built afresh each pass (a third of a `--watch` move).
    pub group: u32,
}

impl Want {
    /// A route to `node` (node `index` of the document)'s pod CIDR `dst` straight via the
    /// node's address `gateway`.
    pub fn to_node(dst: IpNet, gateway: IpAddr, node: &str, index: usize) -> Want {
        Want {
            dst,
            gateway,
            node: Some(node.to_string()),
            hypervisor: None,
            group: group(index),
        }
    }

    /// What the route reaches, for messages: `node NAME` or `hypervisor NAME`.
    pub fn target(&self) -> String {
        match (&self.node, &self.hypervisor) {
            (Some(node), _) => format!("node {node:?}"),
            (None, Some(h)) => format!("hypervisor {h:?}'s node slice"),
            (None, None) => "nothing".into(),
        }
    }
}

/// A route as the kernel's dump shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelRoute {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub proto: u8,
    pub table: u32,
    pub priority: Option<u32>,
    pub tos: u8,
    /// RTN_* type; 1 is unicast.
    pub kind: u8,
    /// Several next hops (RTA_MULTIPATH): never what route-sync installs.
    pub multipath: bool,
    /// The nexthop object the route names (RTA_NH_ID), if any. The kernel's dump then also
    /// shows that nexthop's gateway and device (net.ipv4.nexthop_compat_mode, on by default).
    pub nhid: Option<u32>,
}

/// RTN_UNICAST: a gateway or direct route.
pub const RTN_UNICAST: u8 = 1;

impl KernelRoute {
    /// Whether the route has the priority route-sync installs with (none): 0 for IPv4, and the
    /// kernel's default metric 1024 for IPv6. A replace only ever hits a route with this key.
    fn has_default_priority(&self) -> bool {
        let default = if self.dst.addr().is_ipv6() { 1024 } else { 0 };
        self.priority.unwrap_or(default) == default && self.tos == 0
    }
}

/// One address of one interface, with its prefix length: a directly connected subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub net: IpNet,
}

/// What the kernel holds, from one dump each of routes (in the owner's table), nexthops,
/// addresses and links.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub routes: Vec<KernelRoute>,
    /// Every nexthop object, or `None` where the kernel has none (before 5.3: the dump is
    /// refused with EOPNOTSUPP or EINVAL).
    pub nexthops: Option<Vec<KernelNexthop>>,
    /// Nexthop ids that routes in other tables name: never swept, whoever made them.
    pub nexthops_used_elsewhere: BTreeSet<u32>,
    pub addresses: Vec<Address>,
    /// Interface index → name.
    pub links: BTreeMap<u32, String>,
}

impl Snapshot {
    pub(crate) fn dev(&self, ifindex: Option<u32>) -> Option<String> {
        ifindex.map(|i| {
            self.links
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("if{i}"))
        })
    }
}

impl Snapshot {
    /// Makes the snapshot what the kernel holds once `plan` has been applied in full, so a
    /// `--watch` pass that follows plans against it without dumping the tables again.
    pub fn record(&mut self, plan: &Plan, owner: Owner) {
        let removed: HashSet<&KernelRoute> = plan.removed.iter().map(|r| &r.route).collect();
        // A replace hits our route of that prefix with the default priority (see `plan`).
        let replaced: HashSet<IpNet> = plan.replaced.iter().map(|r| r.route.dst).collect();
        self.routes.retain(|r| {
            let ours = r.table == owner.table && r.proto == owner.proto;
            let replaced = ours && r.has_default_priority() && replaced.contains(&r.dst);
            !replaced && !removed.contains(r)
        });
        let installed = plan
            .added
            .iter()
            .chain(plan.replaced.iter().map(|r| &r.route));
        self.routes.extend(installed.map(|r| KernelRoute {
            dst: r.dst,
            gateway: Some(r.gateway),
            oif: Some(r.ifindex),
            proto: owner.proto,
            table: owner.table,
            priority: None,
            tos: 0,
            kind: RTN_UNICAST,
            multipath: false,
            nhid: r.nexthop,
        }));
        let Some(nexthops) = &mut self.nexthops else {
            return;
        };
        let changes = &plan.nexthops;
        let gone: HashSet<u32> = changes.removed.iter().map(|n| n.id).collect();
        let moved: BTreeMap<u32, &nexthops::Nexthop> = changes
            .replaced
            .iter()
            .map(|r| (r.nexthop.id, &r.nexthop))
            .collect();
        nexthops.retain(|n| n.proto != owner.proto || !gone.contains(&n.id));
        for n in nexthops.iter_mut().filter(|n| n.proto == owner.proto) {
            if let Some(new) = moved.get(&n.id) {
                (n.gateway, n.oif) = (Some(new.gateway), Some(new.ifindex));
            }
        }
        nexthops.extend(changes.added.iter().map(|n| KernelNexthop {
            id: n.id,
            proto: owner.proto,
            gateway: Some(n.gateway),
            oif: Some(n.ifindex),
            special: false,
        }));
    }
}

/// A route route-sync installs, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: IpAddr,
    pub dev: String,
    #[serde(skip)]
    pub ifindex: u32,
    /// The node whose pod CIDR it is; `null` for another hypervisor's node slice.
    pub node: Option<String>,
    /// The hypervisor the route goes through; absent when it goes straight to the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<String>,
    /// The id of the node's nexthop object the route names (`nhid`); `null` for a plain route
    /// via the gateway (`--no-nexthops`, or a kernel without nexthop objects).
    pub nexthop: Option<u32>,
}

/// A route of route-sync's that pointed elsewhere and is replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replaced {
    #[serde(flatten)]
    pub route: Route,
    pub was: Hop,
}

/// Where a kernel route points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    /// The nexthop object a route named, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nexthop: Option<u32>,
}

/// A route of route-sync's that the document no longer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub dst: IpNet,
    #[serde(flatten)]
    pub hop: Hop,
    #[serde(skip)]
    pub route: KernelRoute,
    /// Whether it is the only route of ours to its prefix in the table, and nothing is planned
    /// there: a delete by prefix and protocol can then only hit it (see `netlink::deletion`).
    #[serde(skip)]
    pub alone: bool,
}

/// A prefix the document wants that a route of another protocol already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub dst: IpNet,
    pub node: Option<String>,
    /// The hypervisor route-sync would route it through, if not straight to the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<String>,
    /// The gateway route-sync would use.
    pub gateway: IpAddr,
    pub foreign: Foreign,
}

/// The other protocol's route that holds a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Foreign {
    pub proto: u8,
    pub proto_name: Option<&'static str>,
    #[serde(flatten)]
    pub hop: Hop,
}

/// The diff: what to add, replace and remove, what is already right, and what conflicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub added: Vec<Route>,
    pub replaced: Vec<Replaced>,
    pub removed: Vec<Removed>,
    /// How many wanted routes are already in place.
    pub unchanged: usize,
    pub conflicts: Vec<Conflict>,
    /// The nodes' nexthop objects: made before the routes that name them, removed after.
    pub nexthops: NexthopChanges,
}

impl Plan {
    /// How many write requests applying the plan sends to the kernel.
    pub fn changes(&self) -> usize {
        self.added.len() + self.replaced.len() + self.removed.len() + self.nexthops.changes()
    }
}

/// The routes the document asks for in `scope`, sorted by destination. Checks that every pod
/// CIDR is a network address, appears once, and has an address of its family to route via: its
/// node's, or on a cluster across several machines, a hypervisor's (see [`Here`]).
pub fn wanted(doc: &Document, scope: &Scope) -> Result<Vec<Want>, Error> {
    let here = Here::of(doc, scope)?;
    let mut all: Vec<(IpNet, usize, usize)> = Vec::with_capacity(doc.nodes.len() * 2);
    let mut wants = Vec::with_capacity(doc.nodes.len());
    for (i, node) in doc.nodes.iter().enumerate() {
        all.extend(node.pod_cidrs.iter().enumerate().map(|(j, c)| (*c, i, j)));
        here.node_wants(doc, i, node, &mut wants)?;
    }
    // Each pod CIDR once; sorting finds duplicates without hashing 10,000 keys.
    all.sort_unstable();
    if let Some(pair) = all.windows(2).find(|p| p[0].0 == p[1].0) {
        let ((cidr, first, _), (_, i, j)) = (pair[0], pair[1]);
        return Err(Error::invalid(
            format!("nodes[{i}].pod_cidrs[{j}]"),
            format!(
                "{cidr} is also node {:?}'s pod CIDR; give each node its own (cidr-alloc does)",
                doc.nodes[first].name
            ),
        ));
    }
    here.slice_routes(doc, &mut wants)?;
    wants.sort_by_key(|w| w.dst);
    Ok(wants)
}

/// The routes to node `i`'s pod CIDRs on a cluster on one machine (a document that lists no
/// hypervisors, so no route goes through one), as [`wanted`] gives them for that node: the part
/// of it that needs no other node. A `--watch` pass that finds one node edited calls it for that
/// node only (see edit.rs); `frame` is the document's version and networks, with no nodes.
pub fn one_machine_node_wants(
    frame: &Document,
    scope: &Scope,
    i: usize,
    node: &Node,
    wants: &mut Vec<Want>,
) -> Result<(), Error> {
    debug_assert!(frame.hypervisors.is_empty() && frame.nodes.is_empty());
    let here = match scope {
        Scope::Node(name) => Here::Node {
            name,
            hypervisor: None,
        },
        Scope::Host(_) => Here::Host { hypervisor: None },
    };
    here.node_wants(frame, i, node, wants)
}

/// A [`Want::group`] from an index; documents hold far fewer than 2^32 nodes.
fn group(index: usize) -> u32 {
    u32::try_from(index).expect("fewer than 2^32 nodes and hypervisors")
}

/// Where `via`, one of the document's hypervisors, is in its list.
fn hypervisor_index(doc: &Document, via: &Hypervisor) -> usize {
    let k = doc.hypervisors.iter().position(|h| h.name == via.name);
    k.expect("a hypervisor of the document")
}

/// The [`Want::group`] of the routes through hypervisor `via`.
fn hypervisor_group(doc: &Document, via: &Hypervisor) -> u32 {
    group(doc.nodes.len() + hypervisor_index(doc, via))
}

/// Where route-sync runs, resolved against the document.
///
/// On a cluster across several hypervisors a node's address is on-link only on its own
/// hypervisor's network. So a node reaches a node on another hypervisor through its own
/// hypervisor's gateway (the first address of its slice, mkvm's bridge address), and a
/// hypervisor reaches another's nodes, their pod CIDRs and its whole node slice through that
/// hypervisor's `address` on the network that joins them: routed, so node and pod source
/// addresses are kept end to end.
enum Here<'d, 'a> {
    Node {
        name: &'d str,
        hypervisor: Option<&'d Hypervisor<'a>>,
    },
    Host {
        hypervisor: Option<&'d Hypervisor<'a>>,
    },
}

impl<'d, 'a> Here<'d, 'a> {
    fn of(doc: &'d Document<'a>, scope: &'d Scope) -> Result<Here<'d, 'a>, Error> {
        let names = |list: Vec<&str>| list.join(", ");
        match scope {
            Scope::Node(name) => {
                let node = doc.node(name).ok_or_else(|| {
                    let nodes = doc.nodes.iter().map(|n| n.name.as_ref()).collect();
                    Error::invalid(
                        "--node",
                        format!(
                            "no node {name:?} in the document (nodes: {}); pass one of them, or \
                             --host on the hypervisor",
                            names(nodes)
                        ),
                    )
                })?;
                let hypervisor = doc.hypervisor_of(node);
                Ok(Here::Node { name, hypervisor })
            }
            Scope::Host(chosen) => {
                let listed = || names(doc.hypervisors.iter().map(|h| h.name.as_ref()).collect());
                let hypervisor = match chosen {
                    None if doc.hypervisors.is_empty() => None,
                    None => {
                        return Err(Error::invalid(
                            "--hypervisor",
                            format!(
                                "the document lists several hypervisors ({}): name the one \
                                 this is, --hypervisor NAME",
                                listed()
                            ),
                        ))
                    }
                    Some(name) if doc.hypervisors.is_empty() => {
                        return Err(Error::invalid(
                            "--hypervisor",
                            format!(
                                "{name:?}: the document lists no hypervisors (the cluster is \
                                 on one machine): leave --hypervisor out"
                            ),
                        ))
                    }
                    Some(name) => Some(doc.hypervisor(name).ok_or_else(|| {
                        Error::invalid(
                            "--hypervisor",
                            format!("no hypervisor {name:?} in the document ({})", listed()),
                        )
                    })?),
                };
                Ok(Here::Host { hypervisor })
            }
        }
    }

    /// Whether `node` is where route-sync runs: its own pod CIDRs are its bridge's.
    fn is(&self, node: &Node) -> bool {
        matches!(self, Here::Node { name, .. } if *name == node.name)
    }

    fn mine(&self) -> Option<&'d Hypervisor<'a>> {
        match self {
            Here::Node { hypervisor, .. } | Here::Host { hypervisor } => *hypervisor,
        }
    }

    /// The routes to node `i`'s pod CIDRs, pushed onto `wants`: the checks and gateways of one
    /// node. Checks that each pod CIDR is a network address with an address of its family to
    /// route via.
    fn node_wants(
        &self,
        doc: &Document,
        i: usize,
        node: &Node,
        wants: &mut Vec<Want>,
    ) -> Result<(), Error> {
        for (j, cidr) in node.pod_cidrs.iter().enumerate() {
            if cidr.trunc() != *cidr {
                return Err(Error::invalid(
                    format!("nodes[{i}].pod_cidrs[{j}]"),
                    format!("{cidr} has host bits set; the network is {}", cidr.trunc()),
                ));
            }
            if !self.is(node) {
                wants.push(self.pod_route(doc, i, node, *cidr)?);
            }
        }
        Ok(())
    }

    /// The route to `cidr`, node `i`'s pod CIDR.
    fn pod_route(&self, doc: &Document, i: usize, node: &Node, cidr: IpNet) -> Result<Want, Error> {
        let v6 = cidr.addr().is_ipv6();
        let family = hardway::validate::family(v6);
        let theirs = doc.hypervisor_of(node);
        let remote = match (self.mine(), theirs) {
            (Some(mine), Some(theirs)) if mine.name != theirs.name => Some(theirs),
            _ => None,
        };
        let Some(remote) = remote else {
            let gateway = node.ip_of_family(v6).ok_or_else(|| {
                Error::invalid(
                    format!("nodes[{i}].ips"),
                    format!(
                        "node {:?} has no {family} address to route its pod CIDR {cidr} via",
                        node.name
                    ),
                )
            })?;
            return Ok(Want::to_node(cidr, gateway, &node.name, i));
        };
        let via = match self {
            // On a node: out through its own hypervisor, which routes on.
            Here::Node { .. } => self.mine().expect("remote implies mine"),
            Here::Host { .. } => remote,
        };
        let gateway = hop_to(doc, self, via, v6).map_err(|(at, why)| {
            Error::invalid(
                at,
                format!(
                    "node {:?}'s pod CIDR {cidr} cannot be routed: {why}",
                    node.name
                ),
            )
        })?;
        Ok(Want {
            dst: cidr,
            gateway,
            node: Some(node.name.to_string()),
            hypervisor: Some(via.name.to_string()),
            group: hypervisor_group(doc, via),
        })
    }

    /// On a hypervisor of several: every other hypervisor's node slice, via its address.
    fn slice_routes(&self, doc: &Document, wants: &mut Vec<Want>) -> Result<(), Error> {
        let Here::Host {
            hypervisor: Some(mine),
        } = self
        else {
            return Ok(());
        };
        for other in doc.hypervisors.iter().filter(|h| h.name != mine.name) {
            for slice in &other.node_slice {
                let v6 = slice.addr().is_ipv6();
                let gateway = hop_to(doc, self, other, v6).map_err(|(at, why)| {
                    Error::invalid(
                        at,
                        format!(
                            "hypervisor {:?}'s node slice {slice} cannot be routed: {why}",
                            other.name
                        ),
                    )
                })?;
                wants.push(Want {
                    dst: *slice,
                    gateway,
                    node: None,
                    hypervisor: Some(other.name.to_string()),
                    group: hypervisor_group(doc, other),
                });
            }
        }
        Ok(())
    }
}

/// The gateway of family `v6` through hypervisor `via`: on a node its own gateway, on a
/// hypervisor `via`'s address. The error is (JSON path, why).
fn hop_to(
    doc: &Document,
    here: &Here,
    via: &Hypervisor,
    v6: bool,
) -> Result<IpAddr, (String, String)> {
    // Its index, for the error's JSON path only.
    let k = || hypervisor_index(doc, via);
    let family = hardway::validate::family(v6);
    match here {
        Here::Node { .. } => via.gateway(v6).ok_or_else(|| {
            (
                format!("hypervisors[{}].node_slice", k()),
                format!(
                    "its nodes' hypervisor {:?} has no {family} node slice to be their gateway",
                    via.name
                ),
            )
        }),
        Here::Host { .. } if via.address.is_ipv6() == v6 => Ok(via.address),
        Here::Host { .. } => Err((
            format!("hypervisors[{}].address", k()),
            format!(
                "hypervisor {:?}'s address {} is not {family}, and Linux routes no {family} \
                 packet via a gateway of the other family; give the hypervisors {family} \
                 addresses, or leave {family} out of the cluster",
                via.name, via.address
            ),
        )),
    }
}

/// The interface whose connected subnet holds `gateway`: the longest matching prefix, then the
/// lowest interface index. `Err(Some(ifindex))` when the gateway is this machine's own address.
fn device_for(gateway: IpAddr, addresses: &[Address]) -> Result<u32, Option<u32>> {
    if let Some(own) = addresses.iter().find(|a| a.net.addr() == gateway) {
        return Err(Some(own.ifindex));
    }
    addresses
        .iter()
        .filter(|a| a.net.contains(&gateway) && a.net.prefix_len() < a.net.max_prefix_len())
        .max_by(|a, b| {
            (a.net.prefix_len(), std::cmp::Reverse(a.ifindex))
                .cmp(&(b.net.prefix_len(), std::cmp::Reverse(b.ifindex)))
        })
        .map(|a| a.ifindex)
        .ok_or(None)
}

/// The interface for a wanted route's gateway, or the error naming the route.
fn resolve(want: &Want, kernel: &Snapshot) -> Result<u32, Error> {
    device_for(want.gateway, &kernel.addresses).map_err(|own| match own {
        Some(ifindex) => Error::invalid(
            format!("route {} via {}", want.dst, want.gateway),
            format!(
                "the gateway, for {}, is this machine's own address (on {}); {}",
                want.target(),
                kernel.dev(Some(ifindex)).unwrap_or_default(),
                match (&want.hypervisor, &want.node) {
                    (None, Some(node)) => format!(
                        "run with --node {node} here, or fix the node's address in the document"
                    ),
                    (Some(h), _) =>
                        format!("this machine is hypervisor {h:?}: run with --hypervisor {h} here"),
                    (None, None) => String::new(),
                }
            ),
        ),
        None => Error::Unreachable {
            dst: want.dst.to_string(),
            gateway: want.gateway.to_string(),
            target: want.target(),
            connected: connected(kernel),
        },
    })
}

/// Diffs the wanted routes against the kernel's. Checks every gateway before anything is
/// planned, so a bad one changes nothing. In nexthop mode each route names its node's nexthop
/// ([`nexthops::assign`]); a route of ours of the other form (plain, or naming another id) is
/// replaced in place, so switching modes is one run with no route missing at any point.
///
/// Both sides are walked in destination order (a merge, no hashing): with 10,000 routes in
/// place a no-op run is mostly this and the dump.
pub fn plan(
    wants: &[Want],
    kernel: &Snapshot,
    owner: Owner,
    mode: NexthopMode,
) -> Result<Plan, Error> {
    let ifindexes = wants
        .iter()
        .map(|w| resolve(w, kernel))
        .collect::<Result<Vec<u32>, Error>>()?;
    let mut order: Vec<usize> = (0..wants.len()).collect();
    order.sort_by_key(|&i| wants[i].dst);
    let (table, held) = table_and_held(kernel, owner);
    let (via, nexthops) = nexthops::assign(wants, &ifindexes, &table, &held, kernel, owner, mode)?;
    // At least this many of the table's routes go when they are all ours: reserved up front,
    // a 10,000-route removal's growing list was most of its plan's page faults and copies.
    let removed = Vec::with_capacity(table.len().saturating_sub(wants.len()));
    let mut diff = Diff {
        kernel,
        owner,
        plan: Plan {
            nexthops,
            removed,
            ..Plan::default()
        },
    };
    let mut rest = table.as_slice();
    for i in order {
        let want = &wants[i];
        // Routes to prefixes nothing wants come first: stale if ours, none of our business if not.
        // Counted one by one, not searched: a step is one comparison, a binary search's each a
        // cache miss through the references.
        let before = rest.iter().take_while(|r| r.dst < want.dst).count();
        diff.remove_ours(&rest[..before], true);
        let same = rest[before..]
            .iter()
            .take_while(|r| r.dst == want.dst)
            .count();
        let (same, after) = rest[before..].split_at(same);
        rest = after;
        diff.want(want, ifindexes[i], via[i], same);
    }
    diff.remove_ours(rest, true);
    Ok(diff.plan)
}

/// The plan being made, and what it is made against.
struct Diff<'k> {
    kernel: &'k Snapshot,
    owner: Owner,
    plan: Plan,
}

impl Diff<'_> {
    fn hop(&self, r: &KernelRoute) -> Hop {
        Hop {
            gateway: r.gateway,
            dev: self.kernel.dev(r.oif),
            nexthop: r.nhid,
        }
    }

    /// Plans the removal of the routes among `routes` (sorted by prefix) that are route-sync's.
    /// `whole` says that `routes` holds every route of the table to each of its prefixes and
    /// that nothing is added there, so a route of ours alone on its prefix is known to be.
    fn remove_ours(&mut self, routes: &[&KernelRoute], whole: bool) {
        let proto = self.owner.proto;
        for same in routes.chunk_by(|a, b| a.dst == b.dst) {
            let alone = whole && same.iter().filter(|r| r.proto == proto).count() == 1;
            for r in same.iter().filter(|r| r.proto == proto) {
                let removed = Removed {
                    dst: r.dst,
                    hop: self.hop(r),
                    route: (*r).clone(),
                    alone,
                };
                self.plan.removed.push(removed);
            }
        }
    }

    /// One wanted route against the kernel's routes to its prefix (`same`): a conflict if
    /// another protocol holds it, else kept, replaced in place or added, and the rest of ours
    /// there removed. `nhid` is the nexthop the route names, `None` for a plain route.
    fn want(&mut self, want: &Want, ifindex: u32, nhid: Option<u32>, same: &[&KernelRoute]) {
        if let Some(first) = same.iter().find(|r| r.proto != self.owner.proto) {
            // Another protocol holds the prefix: leave it, and ours if any, alone.
            let foreign = Foreign {
                proto: first.proto,
                proto_name: proto_name(first.proto),
                hop: self.hop(first),
            };
            self.plan.conflicts.push(Conflict {
                dst: want.dst,
                node: want.node.clone(),
                hypervisor: want.hypervisor.clone(),
                gateway: want.gateway,
                foreign,
            });
            return;
        }
        let right_hop = |r: &KernelRoute| match nhid {
            Some(id) => r.nhid == Some(id),
            None => r.nhid.is_none() && r.gateway == Some(want.gateway) && r.oif == Some(ifindex),
        };
        let exact = same.iter().position(|r| {
            right_hop(r) && r.kind == RTN_UNICAST && !r.multipath && r.has_default_priority()
        });
        // A route to keep (exact) or to replace in place (same key, wrong hop).
        let keep = exact.or_else(|| same.iter().position(|r| r.has_default_priority()));
        for (k, r) in same.iter().enumerate() {
            if Some(k) != keep {
                self.remove_ours(std::slice::from_ref(r), false);
            }
        }
        if exact.is_some() {
            self.plan.unchanged += 1;
            return;
        }
        let route = Route {
            dst: want.dst,
            gateway: want.gateway,
            dev: self.kernel.dev(Some(ifindex)).unwrap_or_default(),
            ifindex,
            node: want.node.clone(),
            hypervisor: want.hypervisor.clone(),
            nexthop: nhid,
        };
        match keep {
            Some(k) => {
                let was = self.hop(same[k]);
                self.plan.replaced.push(Replaced { route, was });
            }
            None => self.plan.added.push(route),
        }
    }
}

/// The routes of the owner's table sorted by destination, and the prefixes other protocols'
/// routes hold there.
fn table_and_held(kernel: &Snapshot, owner: Owner) -> (Vec<&KernelRoute>, HashSet<IpNet>) {
    let mut table: Vec<&KernelRoute> = kernel
        .routes
        .iter()
        .filter(|r| r.table == owner.table)
        .collect();
    table.sort_by_key(|r| r.dst);
    let held = table
        .iter()
        .filter(|r| r.proto != owner.proto)
        .map(|r| r.dst)
        .collect();
    (table, held)
}

/// This machine's connected subnets, for an error message.
fn connected(kernel: &Snapshot) -> String {
    let nets: Vec<String> = kernel
        .addresses
        .iter()
        .filter(|a| !a.net.addr().is_loopback() && a.net.prefix_len() < a.net.max_prefix_len())
        .filter(|a| !matches!(a.net.addr(), IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .map(|a| {
            format!(
                "{} {}",
                kernel.dev(Some(a.ifindex)).unwrap_or_default(),
                a.net.trunc()
            )
        })
        .collect();
    if nets.is_empty() {
        "none".into()
    } else {
        nets.join(", ")
    }
}

/// The kernel's and iproute2's name of a well-known protocol number.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "mrouted",
        18 => "keepalived",
        42 => "babel",
        99 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        crate::cli::DEFAULT_PROTO => crate::cli::PROTO_NAME,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner = Owner {
        proto: 200,
        table: 254,
    };
    const PLAIN: NexthopMode = NexthopMode {
        ids: crate::nexthops::NexthopIds::DEFAULT,
        enabled: false,
    };

    fn lab_text() -> String {
        serde_json::to_string(&testkit::fixture_document("lab.json")).unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn snapshot(routes: Vec<KernelRoute>) -> Snapshot {
        Snapshot {
            routes,
            addresses: vec![
                Address {
                    ifindex: 1,
                    net: net("127.0.0.1/8"),
                },
                Address {
                    ifindex: 2,
                    net: net("10.240.0.1/24"),
                },
            ],
            links: [(1, "lo".to_string()), (2, "br0".to_string())].into(),
            ..Snapshot::default()
        }
    }

    fn kroute(dst: &str, gw: &str, proto: u8) -> KernelRoute {
        KernelRoute {
            dst: net(dst),
            gateway: Some(ip(gw)),
            oif: Some(2),
            proto,
            table: 254,
            priority: None,
            tos: 0,
            kind: RTN_UNICAST,
            multipath: false,
            nhid: None,
        }
    }

    #[test]
    fn node_skips_its_own_range_and_host_takes_all() {
        let text = lab_text();
        let doc = Document::parse(&text, "lab").unwrap();
        let host = wanted(&doc, &Scope::Host(None)).unwrap();
        assert_eq!(host.len(), doc.nodes.len());
        let node = wanted(&doc, &Scope::Node("node-1".into())).unwrap();
        assert_eq!(node.len(), doc.nodes.len() - 1);
        assert!(node.iter().all(|w| w.node.as_deref() != Some("node-1")));
        let n2 = doc.node("node-2").unwrap();
        let w = node
            .iter()
            .find(|w| w.node.as_deref() == Some("node-2"))
            .unwrap();
        assert_eq!((w.dst, w.gateway), (n2.pod_cidrs[0], n2.ips[0]));
    }

    fn fixture_text(name: &str) -> String {
        serde_json::to_string(&testkit::fixture_document(name)).unwrap()
    }

    /// (destination, gateway, node, hypervisor) of each want, in order.
    fn routes(wants: &[Want]) -> Vec<(String, String, Option<&str>, Option<&str>)> {
        wants
            .iter()
            .map(|w| {
                let (node, via) = (w.node.as_deref(), w.hypervisor.as_deref());
                (w.dst.to_string(), w.gateway.to_string(), node, via)
            })
            .collect()
    }

    #[test]
    fn a_hypervisor_routes_its_own_nodes_direct_and_the_others_through_their_hypervisor() {
        let text = fixture_text("hypervisors/two.json");
        let doc = Document::parse(&text, "two").unwrap();
        let on_a = wanted(&doc, &Scope::Host(Some("hv-a".into()))).unwrap();
        let (a, b) = (Some("hv-a"), Some("hv-b"));
        let s = |x: &str| x.to_string();
        assert_eq!(
            routes(&on_a),
            [
                (s("10.200.0.0/24"), s("10.240.0.2"), Some("node-a1"), None),
                (s("10.200.1.0/24"), s("10.240.0.3"), Some("node-a2"), None),
                (s("10.200.2.0/24"), s("192.168.50.2"), Some("node-b1"), b),
                (s("10.200.3.0/24"), s("192.168.50.2"), Some("node-b2"), b),
                (s("10.240.0.128/25"), s("192.168.50.2"), None, b),
            ]
        );
        let on_b = wanted(&doc, &Scope::Host(Some("hv-b".into()))).unwrap();
        assert_eq!(
            routes(&on_b),
            [
                (s("10.200.0.0/24"), s("192.168.50.1"), Some("node-a1"), a),
                (s("10.200.1.0/24"), s("192.168.50.1"), Some("node-a2"), a),
                (s("10.200.2.0/24"), s("10.240.0.130"), Some("node-b1"), None),
                (s("10.200.3.0/24"), s("10.240.0.131"), Some("node-b2"), None),
                (s("10.240.0.0/25"), s("192.168.50.1"), None, a),
            ]
        );
        // A node: its neighbours straight, the other hypervisor's nodes through its own
        // gateway (hv-a's slice's first address, mkvm's bridge), no slice routes.
        let on_a1 = wanted(&doc, &Scope::Node("node-a1".into())).unwrap();
        assert_eq!(
            routes(&on_a1),
            [
                (s("10.200.1.0/24"), s("10.240.0.3"), Some("node-a2"), None),
                (s("10.200.2.0/24"), s("10.240.0.1"), Some("node-b1"), a),
                (s("10.200.3.0/24"), s("10.240.0.1"), Some("node-b2"), a),
            ]
        );
        let on_b2 = wanted(&doc, &Scope::Node("node-b2".into())).unwrap();
        assert_eq!(on_b2[0].gateway, ip("10.240.0.129"));
    }

    #[test]
    fn routes_through_one_hypervisor_share_one_nexthop() {
        let text = fixture_text("hypervisors/two.json");
        let doc = Document::parse(&text, "two").unwrap();
        let wants = wanted(&doc, &Scope::Host(Some("hv-a".into()))).unwrap();
        let mut kernel = snapshot(vec![]);
        kernel.nexthops = Some(vec![]);
        kernel.addresses = vec![
            Address {
                ifindex: 2,
                net: net("10.240.0.1/25"),
            },
            Address {
                ifindex: 3,
                net: net("192.168.50.1/24"),
            },
        ];
        kernel.links.insert(3, "eth0".into());
        let on = NexthopMode {
            enabled: true,
            ..PLAIN
        };
        let p = plan(&wants, &kernel, OWNER, on).unwrap();
        // node-a1, node-a2, and hv-b for its two nodes and its slice.
        let made: Vec<(Option<&str>, Option<&str>, &str)> = p
            .nexthops
            .added
            .iter()
            .map(|n| (n.node.as_deref(), n.hypervisor.as_deref(), n.dev.as_str()))
            .collect();
        assert_eq!(
            made,
            [
                (Some("node-a1"), None, "br0"),
                (Some("node-a2"), None, "br0"),
                (None, Some("hv-b"), "eth0"),
            ]
        );
        let hv_b = p.nexthops.added[2].id;
        let through_b = p.added.iter().filter(|r| r.nexthop == Some(hv_b)).count();
        assert_eq!(through_b, 3);
    }

    #[test]
    fn which_hypervisor_is_asked_for_when_there_are_several_and_refused_when_none() {
        let two = fixture_text("hypervisors/two.json");
        let doc = Document::parse(&two, "two").unwrap();
        let e = wanted(&doc, &Scope::Host(None)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--hypervisor: the document lists several hypervisors (hv-a, hv-b)"),
            "{e}"
        );
        let e = wanted(&doc, &Scope::Host(Some("hv-c".into()))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--hypervisor: no hypervisor \"hv-c\""),
            "{e}"
        );
        let lab = lab_text();
        let one = Document::parse(&lab, "lab").unwrap();
        let e = wanted(&one, &Scope::Host(Some("hv-a".into()))).unwrap_err();
        assert!(e.to_string().contains("lists no hypervisors"), "{e}");
        assert_eq!(hardway::Failure::exit(&e), hardway::Exit::Usage);
    }

    #[test]
    fn ipv6_through_an_ipv4_hypervisor_address_is_refused_at_its_address() {
        let text = fixture_text("hypervisors/two-dualstack.json");
        let doc = Document::parse(&text, "two").unwrap();
        // On a node both families work: each goes through its own gateway of that family.
        let on_a1 = wanted(&doc, &Scope::Node("node-a1".into())).unwrap();
        let to_b1: Vec<String> = on_a1
            .iter()
            .filter(|w| w.node.as_deref() == Some("node-b1"))
            .map(|w| w.gateway.to_string())
            .collect();
        assert_eq!(to_b1, ["10.240.0.1", "fd00:240::"]);
        // On a hypervisor, node-b1's IPv6 pod CIDR would need an IPv6 address for hv-b.
        let e = wanted(&doc, &Scope::Host(Some("hv-a".into()))).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("hypervisors[1].address: node \"node-b1\"'s pod CIDR fd00:200:0:2::/64 cannot be routed"), "{text}");
        assert_eq!(hardway::Failure::exit(&e), hardway::Exit::Usage);
    }

    #[test]
    fn unknown_node_and_bad_cidrs_are_input_errors() {
        let text = lab_text();
        let mut doc = Document::parse(&text, "lab").unwrap();
        let e = wanted(&doc, &Scope::Node("nope".into())).unwrap_err();
        assert!(e.to_string().contains("no node \"nope\""), "{e}");
        doc.nodes[1].pod_cidrs = vec![net("10.200.1.7/24")];
        let e = wanted(&doc, &Scope::Host(None)).unwrap_err();
        assert!(e.to_string().starts_with("nodes[1].pod_cidrs[0]"), "{e}");
        doc.nodes[1].pod_cidrs = doc.nodes[0].pod_cidrs.clone();
        assert!(wanted(&doc, &Scope::Host(None)).is_err());
        doc.nodes[1].pod_cidrs = vec![net("fd00:200:1::/64")];
        let e = wanted(&doc, &Scope::Host(None)).unwrap_err();
        assert!(e.to_string().contains("no IPv6 address"), "{e}");
        assert_eq!(hardway::Failure::exit(&e), hardway::Exit::Usage);
    }

    #[test]
    fn diff_adds_replaces_removes_keeps_and_reports_conflicts() {
        let wants = vec![
            Want::to_node(net("10.200.0.0/24"), ip("10.240.0.11"), "a", 0),
            Want::to_node(net("10.200.1.0/24"), ip("10.240.0.12"), "b", 1),
            Want::to_node(net("10.200.2.0/24"), ip("10.240.0.13"), "c", 2),
            Want::to_node(net("10.200.3.0/24"), ip("10.240.0.14"), "d", 3),
        ];
        let kernel = snapshot(vec![
            kroute("10.200.0.0/24", "10.240.0.11", 200), // right: unchanged
            kroute("10.200.1.0/24", "10.240.0.99", 200), // wrong gateway: replaced
            kroute("10.200.2.0/24", "10.240.0.13", 4),   // static: conflict
            kroute("10.200.9.0/24", "10.240.0.19", 200), // stale: removed
            kroute("10.200.8.0/24", "10.240.0.18", 3),   // boot, unrelated: untouched
        ]);
        let plan = plan(&wants, &kernel, OWNER, PLAIN).unwrap();
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.replaced.len(), 1);
        assert_eq!(plan.replaced[0].was.gateway, Some(ip("10.240.0.99")));
        assert_eq!(plan.added.len(), 1);
        assert_eq!(plan.added[0].dst, net("10.200.3.0/24"));
        assert_eq!(plan.added[0].dev, "br0");
        assert_eq!(plan.removed.len(), 1);
        assert_eq!(plan.removed[0].dst, net("10.200.9.0/24"));
        assert_eq!(plan.conflicts.len(), 1);
        assert_eq!(plan.conflicts[0].foreign.proto_name, Some("static"));
    }

    #[test]
    fn other_tables_are_not_ours() {
        let mut elsewhere = kroute("10.200.9.0/24", "10.240.0.19", 200);
        elsewhere.table = 100;
        let plan = plan(&[], &snapshot(vec![elsewhere]), OWNER, PLAIN).unwrap();
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn unreachable_gateway_fails_before_any_change() {
        let wants = vec![Want::to_node(net("10.200.1.0/24"), ip("192.0.2.7"), "b", 1)];
        let e = plan(&wants, &snapshot(vec![]), OWNER, PLAIN).unwrap_err();
        assert_eq!(hardway::Failure::exit(&e), hardway::Exit::External);
        let text = e.to_string();
        assert!(text.contains("10.200.1.0/24 via 192.0.2.7"), "{text}");
        assert!(text.contains("br0 10.240.0.0/24"), "{text}");
    }

    #[test]
    fn own_address_as_gateway_is_an_input_error() {
        let wants = vec![Want::to_node(
            net("10.200.1.0/24"),
            ip("10.240.0.1"),
            "b",
            1,
        )];
        let e = plan(&wants, &snapshot(vec![]), OWNER, PLAIN).unwrap_err();
        assert_eq!(hardway::Failure::exit(&e), hardway::Exit::Usage);
    }

    /// Node b's one route: 10.200.1.0/24 via 10.240.0.12.
    fn b_wanted() -> Vec<Want> {
        vec![Want::to_node(
            net("10.200.1.0/24"),
            ip("10.240.0.12"),
            "b",
            1,
        )]
    }

    #[test]
    fn duplicate_and_odd_routes_of_ours_are_cleaned() {
        let wants = b_wanted();
        let mut metric = kroute("10.200.1.0/24", "10.240.0.12", 200);
        metric.priority = Some(50);
        let kernel = snapshot(vec![metric, kroute("10.200.1.0/24", "10.240.0.12", 200)]);
        let plan = plan(&wants, &kernel, OWNER, PLAIN).unwrap();
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.removed.len(), 1);
        assert_eq!(plan.removed[0].route.priority, Some(50));
        // The wanted route stays on that prefix: the stale one must be deleted by its hop.
        assert!(!plan.removed[0].alone);
    }

    #[test]
    fn a_stale_route_is_alone_only_as_the_one_route_of_ours_to_its_prefix() {
        let wants = b_wanted();
        let mut second = kroute("10.200.7.0/24", "10.240.0.17", 200);
        second.priority = Some(50);
        let kernel = snapshot(vec![
            kroute("10.200.1.0/24", "10.240.0.12", 200), // wanted: kept
            kroute("10.200.5.0/24", "10.240.0.15", 200), // stale, alone
            kroute("10.200.6.0/24", "10.240.0.50", 4),   // static first on the prefix
            kroute("10.200.6.0/24", "10.240.0.16", 200), // stale, alone among ours
            kroute("10.200.7.0/24", "10.240.0.17", 200), // stale, two of ours
            second,
        ]);
        let plan = plan(&wants, &kernel, OWNER, PLAIN).unwrap();
        let alone: Vec<(String, Option<u32>, bool)> = plan
            .removed
            .iter()
            .map(|r| (r.dst.to_string(), r.route.priority, r.alone))
            .collect();
        let s = |x: &str| x.to_string();
        assert_eq!(
            alone,
            [
                (s("10.200.5.0/24"), None, true),
                (s("10.200.6.0/24"), None, true),
                (s("10.200.7.0/24"), None, false),
                (s("10.200.7.0/24"), Some(50), false),
            ]
        );
    }
}
