//! The allocator: every address decision of the cluster, made once, deterministically.
//!
//! Values already decided are kept — those in the input document (pinned in the inventory or set
//! by an earlier run) and, for what the input leaves empty, those of the same node in the previous
//! output — and checked: inside their range, not taken twice. Only then do the nodes still
//! missing a value get the lowest free slot, in document order. So re-running on its own output
//! changes nothing, adding a node never moves another, and removing one frees its slot.

use std::collections::HashMap;
use std::net::IpAddr;

use hardway::doc::ServiceIps;
use hardway::{validate, Document, Node, Role};
use ipnet::IpNet;
use serde_json::Value;

use crate::error::Error;
use crate::mac;
use crate::pool::{Owner, Pool};
use crate::routes::HostRoute;

/// libvirt's `default` NAT network: a cluster range inside it would clash on most hosts.
pub const LIBVIRT_DEFAULT: &str = "192.168.122.0/24";

/// Where the controllers' own VIP sits in `cluster` when load balancers hold `api.vip`.
pub const CONTROLLER_VIP: &str = "controller_vip";

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Ranges the cluster must not overlap (--avoid).
    pub avoid: Vec<IpNet>,
    /// The host's routes, when --avoid-host-routes asks to stay clear of them.
    pub host_routes: Option<Vec<HostRoute>>,
    /// Controllers get a pod CIDR too (they run pods, kubelet on every node).
    pub pods_on_controllers: bool,
}

/// An earlier output and the path it came from.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub path: &'a str,
    pub document: &'a Document,
}

/// Where a kept value came from, for messages.
enum Source<'a> {
    Input(usize),
    Previous(&'a str),
}

/// Allocates every missing address of `document`.
pub fn allocate(
    mut document: Document,
    previous: Option<Previous<'_>>,
    options: &Options,
) -> Result<Document, Error> {
    check_ranges(&document, previous, options)?;
    let previous_nodes: HashMap<&str, &Node> = previous
        .map(|p| {
            p.document
                .nodes
                .iter()
                .map(|n| (n.name.as_str(), n))
                .collect()
        })
        .unwrap_or_default();
    let previous_path = previous.map_or("", |p| p.path);
    let earlier = |name: &str| previous_nodes.get(name).copied();

    let controller_vip = controller_vip(&document)?;
    let mut api_vip = document
        .cluster
        .api
        .vip
        .or_else(|| previous.and_then(|p| p.document.cluster.api.vip));
    // Several hypervisors: slices, and each node's address from its own (no-op without them).
    crate::hosts::allocate(&mut document, previous, &mut api_vip, controller_vip)?;
    allocate_ips(
        &mut document,
        &earlier,
        previous_path,
        &mut api_vip,
        controller_vip,
    )?;
    if api_vip.is_none() {
        let mut controllers = document.nodes_with(Role::Controller);
        if let (Some(only), None) = (controllers.next(), controllers.next()) {
            api_vip = only.primary_ip();
        }
    }
    allocate_macs(&mut document, &earlier, previous_path)?;
    allocate_pod_cidrs(&mut document, &earlier, previous_path, options)?;

    let cluster = &mut document.cluster;
    let service = &cluster.networks.service;
    let nth = |n: u128| -> Vec<IpAddr> {
        service
            .iter()
            .filter_map(|net| validate::nth_host(*net, n))
            .collect()
    };
    let extra = cluster
        .service_ips
        .take()
        .map(|s| s.extra)
        .unwrap_or_default();
    cluster.service_ips = Some(ServiceIps {
        kubernetes: nth(1),
        dns: nth(10),
        extra,
    });
    cluster.api.vip = api_vip;
    cluster.api.endpoint = api_vip.map(|vip| match vip {
        IpAddr::V4(v4) => format!("https://{v4}:{}", cluster.api.port),
        IpAddr::V6(v6) => format!("https://[{v6}]:{}", cluster.api.port),
    });
    let first_node_net = cluster.networks.node[0];
    if let Some(hypervisor) = document.hypervisor.as_mut() {
        if hypervisor.gateway.is_none() {
            hypervisor.gateway = validate::nth_host(first_node_net, 1);
        }
    }
    Ok(document)
}

/// A labelled range, for overlap messages.
struct Named {
    label: String,
    net: IpNet,
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    validate::overlaps(a, b)
}

/// Checks the ranges themselves: well-formed, big enough, and clear of each other, of libvirt's
/// default network, of --avoid and of the host's routes.
fn check_ranges(
    document: &Document,
    previous: Option<Previous<'_>>,
    options: &Options,
) -> Result<(), Error> {
    let networks = &document.cluster.networks;
    let own = own_ranges(networks)?;
    check_pod_and_service_shape(networks)?;
    if let Some((a, b)) = overlap_among(&own) {
        return Err(Error::Overlap {
            first: a.label.clone(),
            second: b.label.clone(),
        });
    }
    // The rule every tool applies to a pod CIDR when it reads a document (so route-sync never
    // installs a default, loopback, link-local or multicast route): each CIDR cidr-alloc hands out
    // is inside a pod network, so checking the networks checks every CIDR it can decide.
    for net in &networks.pod {
        validate::pod_range(net, &networks.node, &networks.service)
            .map_err(|why| Error::invalid("cluster.networks.pod", why))?;
    }
    let avoid = ranges_to_avoid(document, previous, options, &own);
    if let Some((a, b)) = overlap_between(&own, &avoid) {
        return Err(Error::Overlap {
            first: a.label.clone(),
            second: b.label.clone(),
        });
    }
    Ok(())
}

/// The node, pod and service networks, labelled: each given, one per family, no host bits.
fn own_ranges(networks: &hardway::doc::Networks) -> Result<Vec<Named>, Error> {
    let mut own: Vec<Named> = Vec::new();
    for (kind, nets) in [
        ("node", &networks.node),
        ("pod", &networks.pod),
        ("service", &networks.service),
    ] {
        let at = format!("cluster.networks.{kind}");
        if nets.is_empty() {
            return Err(Error::invalid(
                at,
                format!("no {kind} network: give one (mkcluster --{kind}-network)"),
            ));
        }
        validate::one_per_family(nets).map_err(|why| Error::invalid(&at, why))?;
        for net in nets.iter() {
            if net.trunc() != *net {
                return Err(Error::invalid(
                    &at,
                    format!("{net} has host bits set: the range is {}", net.trunc()),
                ));
            }
            own.push(Named {
                label: format!("{kind} network {net}"),
                net: *net,
            });
        }
    }
    Ok(own)
}

/// Pods and services in the same families, one per-node prefix per pod network that splits it,
/// and service networks that hold the DNS service IP (their tenth host).
fn check_pod_and_service_shape(networks: &hardway::doc::Networks) -> Result<(), Error> {
    let families = |nets: &[IpNet]| {
        let mut f: Vec<bool> = nets.iter().map(family_of).collect();
        f.sort();
        f
    };
    if families(&networks.pod) != families(&networks.service) {
        return Err(Error::invalid(
            "cluster.networks",
            "the pod and service networks must have the same families (both IPv4, both IPv6, or both dual-stack)",
        ));
    }
    if networks.pod_prefix.len() != networks.pod.len() {
        return Err(Error::invalid(
            "cluster.networks.pod_prefix",
            format!(
                "{} prefixes for {} pod networks: give one per pod network, in the same order",
                networks.pod_prefix.len(),
                networks.pod.len()
            ),
        ));
    }
    for (net, prefix) in networks.pod.iter().zip(&networks.pod_prefix) {
        if *prefix <= net.prefix_len() || *prefix > net.max_prefix_len() {
            return Err(Error::invalid(
                "cluster.networks.pod_prefix",
                format!(
                    "a /{prefix} pod CIDR per node does not split pod network {net}: the prefix must be longer than /{} (at most /{})",
                    net.prefix_len(),
                    net.max_prefix_len()
                ),
            ));
        }
    }
    for net in &networks.service {
        let size_bits = net.max_prefix_len() - net.prefix_len();
        if size_bits < 4 {
            return Err(Error::invalid(
                "cluster.networks.service",
                format!(
                    "service network {net} has {} addresses: the DNS service IP is its tenth host, use a /{} or larger",
                    1u32 << size_bits,
                    net.max_prefix_len() - 4
                ),
            ));
        }
    }
    Ok(())
}

/// The first two ranges of `ranges` that overlap, in list order.
fn overlap_among(ranges: &[Named]) -> Option<(&Named, &Named)> {
    ranges
        .iter()
        .enumerate()
        .find_map(|(i, a)| overlap_between(std::slice::from_ref(a), &ranges[i + 1..]))
}

/// The first range of `ours` that overlaps one of `theirs`, and that one.
fn overlap_between<'n>(ours: &'n [Named], theirs: &'n [Named]) -> Option<(&'n Named, &'n Named)> {
    ours.iter().find_map(|a| {
        theirs
            .iter()
            .find(|b| overlaps(&a.net, &b.net))
            .map(|b| (a, b))
    })
}

/// What the cluster must stay clear of: libvirt's default network, --avoid, and with
/// --avoid-host-routes the host's routes that are not the cluster's own.
fn ranges_to_avoid(
    document: &Document,
    previous: Option<Previous<'_>>,
    options: &Options,
    own: &[Named],
) -> Vec<Named> {
    let mut avoid: Vec<Named> = vec![Named {
        label: format!("libvirt's default network {LIBVIRT_DEFAULT}"),
        net: LIBVIRT_DEFAULT.parse().expect("valid"),
    }];
    avoid.extend(options.avoid.iter().map(|net| Named {
        label: format!("--avoid {net}"),
        net: *net,
    }));
    if let Some(routes) = &options.host_routes {
        // The cluster's own routes are no clash: the node network's bridge (mkvm) and the
        // routes to nodes' pod CIDRs (route-sync), from this document or the previous one.
        let mut ours: Vec<IpNet> = own.iter().map(|n| n.net).collect();
        for doc in std::iter::once(document).chain(previous.map(|p| p.document)) {
            ours.extend(doc.nodes.iter().flat_map(|n| n.pod_cidrs.iter().copied()));
        }
        avoid.extend(
            routes
                .iter()
                .filter(|r| !ours.contains(&r.dest))
                .map(|r| Named {
                    label: format!("the host's route to {} (dev {})", r.dest, r.dev),
                    net: r.dest,
                }),
        );
    }
    avoid
}

/// `cluster.controller_vip`, when the inventory gave one (mkcluster --controller-vip).
fn controller_vip(document: &Document) -> Result<Option<IpAddr>, Error> {
    match document.cluster.extra.get(CONTROLLER_VIP) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => validate::ip(text)
            .map(Some)
            .map_err(|why| Error::invalid("cluster.controller_vip", why)),
        Some(_) => Err(Error::invalid(
            "cluster.controller_vip",
            "expected an IP address as a string",
        )),
    }
}

fn family_of(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(_))
}

/// Node addresses: the pinned and previous ones kept and checked, then the lowest free host of
/// each node network for the rest. With several controllers and no VIP, the API VIP is chosen
/// here too, before any new node address.
fn allocate_ips<'p>(
    document: &mut Document,
    earlier: &dyn Fn(&str) -> Option<&'p Node>,
    previous_path: &str,
    api_vip: &mut Option<IpAddr>,
    controller_vip: Option<IpAddr>,
) -> Result<(), Error> {
    let nets = document.cluster.networks.node.clone();
    let nodes = &document.nodes;
    check_pinned_ips(nodes, &nets)?;
    let gateway = document.hypervisor.as_ref().and_then(|h| h.gateway);
    check_inside_node_network(&nets, gateway, *api_vip, controller_vip)?;
    let controllers = nodes
        .iter()
        .filter(|n| n.has_role(Role::Controller))
        .count();
    let mut chosen: Vec<Vec<IpAddr>> = vec![Vec::with_capacity(nets.len()); nodes.len()];
    for (k, net) in nets.iter().enumerate() {
        let v6 = family_of(net);
        let mut pool = node_pool(*net, gateway, *api_vip, controller_vip)?;
        // Kept values first, so nothing new can take them.
        let mut missing = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let kept = match node.ip_of_family(v6) {
                Some(ip) => Some((ip, Source::Input(i))),
                None => earlier(&node.name)
                    .and_then(|p| p.ip_of_family(v6))
                    .map(|ip| (ip, Source::Previous(previous_path))),
            };
            match kept {
                Some((ip, source)) => {
                    keep_ip(&mut pool, nodes, i, ip, &source, *net)?;
                    chosen[i].push(ip);
                }
                None => missing.push(i),
            }
        }
        if k == 0 && api_vip.is_none() && controllers > 1 {
            let slot = pool
                .next_free(Owner::Vip("cluster.api.vip"))
                .ok_or_else(|| node_network_exhausted(&pool, *net, nodes.len(), 1))?;
            *api_vip = Some(pool.ip_at(slot));
        }
        let vips_here = [*api_vip, controller_vip]
            .iter()
            .flatten()
            .filter(|v| v.is_ipv6() == v6)
            .count();
        for i in missing {
            let slot = pool
                .next_free(Owner::Node(i))
                .ok_or_else(|| node_network_exhausted(&pool, *net, nodes.len(), vips_here))?;
            chosen[i].push(pool.ip_at(slot));
        }
    }
    for (node, mut ips) in document.nodes.iter_mut().zip(chosen) {
        // In the order of the node networks (IPv4 first), whatever order the input had.
        ips.sort_by_key(|ip| nets.iter().position(|n| n.contains(ip)));
        node.ips = ips;
    }
    Ok(())
}

/// Every pinned address sits in the node network of its family, once per family.
fn check_pinned_ips(nodes: &[Node], nets: &[IpNet]) -> Result<(), Error> {
    for (i, node) in nodes.iter().enumerate() {
        for (j, ip) in node.ips.iter().enumerate() {
            if !nets.iter().any(|n| n.contains(ip)) {
                return Err(Error::invalid(
                    format!("nodes[{i}].ips[{j}]"),
                    format!(
                        "{ip} of node {} is outside the node network ({}): change it or the node network",
                        node.name,
                        list(nets)
                    ),
                ));
            }
            if node.ips[..j].iter().any(|o| o.is_ipv6() == ip.is_ipv6()) {
                return Err(Error::invalid(
                    format!("nodes[{i}].ips[{j}]"),
                    format!(
                        "node {} has two {} addresses: give one per family",
                        node.name,
                        validate::family(ip.is_ipv6())
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The hypervisor's gateway and the VIPs are addresses on the nodes' network.
fn check_inside_node_network(
    nets: &[IpNet],
    gateway: Option<IpAddr>,
    api_vip: Option<IpAddr>,
    controller_vip: Option<IpAddr>,
) -> Result<(), Error> {
    let inside = |ip: &IpAddr| nets.iter().any(|n| n.contains(ip));
    if let Some(gw) = gateway.filter(|gw| !inside(gw)) {
        return Err(Error::invalid(
            "hypervisor.gateway",
            format!("{gw} is outside the node network ({})", list(nets)),
        ));
    }
    for (path, vip) in [
        ("cluster.api.vip", api_vip),
        ("cluster.controller_vip", controller_vip),
    ] {
        if let Some(vip) = vip.filter(|vip| !inside(vip)) {
            return Err(Error::invalid(
                path,
                format!("{vip} is outside the node network ({}): a VIP is an address on the nodes' network", list(nets)),
            ));
        }
    }
    Ok(())
}

/// The hosts of one node network with the gateway reserved and this family's VIPs taken.
fn node_pool(
    net: IpNet,
    gateway: Option<IpAddr>,
    api_vip: Option<IpAddr>,
    controller_vip: Option<IpAddr>,
) -> Result<Pool, Error> {
    let v6 = family_of(&net);
    let mut pool = Pool::hosts(net);
    if let Some(slot) = gateway.and_then(|gw| pool.slot_of(gw)) {
        pool.reserve(slot, "the hypervisor's gateway");
    }
    for (path, vip) in [
        ("cluster.api.vip", api_vip),
        ("cluster.controller_vip", controller_vip),
    ] {
        let Some(vip) = vip.filter(|v| v.is_ipv6() == v6) else {
            continue;
        };
        let slot = pool.slot_of(vip).expect("checked inside the node network");
        match pool.take(slot, Owner::Vip(path)) {
            Ok(()) => {}
            Err(Owner::Reserved(what)) => {
                return Err(Error::invalid(
                    path,
                    format!("{vip} is {what} of node network {net}: choose another address"),
                ))
            }
            Err(_) => {
                return Err(Error::invalid(
                    path,
                    format!("{vip} is both cluster.api.vip and cluster.controller_vip: give each its own address"),
                ))
            }
        }
    }
    Ok(pool)
}

/// Takes a kept address of node `i` in the pool, or says what already holds it. One controller
/// (or load balancer) may hold a VIP as its own address.
fn keep_ip(
    pool: &mut Pool,
    nodes: &[Node],
    i: usize,
    ip: IpAddr,
    source: &Source<'_>,
    net: IpNet,
) -> Result<(), Error> {
    let node = &nodes[i];
    let at = || match source {
        Source::Input(i) => format!("nodes[{i}].ips"),
        Source::Previous(path) => format!("node {} in --previous {path}", node.name),
    };
    let Some(slot) = pool.slot_of(ip) else {
        return Err(Error::invalid(
            at(),
            format!(
                "{ip} of node {} is outside node network {net}: the network changed since that run; drop --previous to re-address every node",
                node.name
            ),
        ));
    };
    let message = match pool.take(slot, Owner::Node(i)) {
        Ok(()) => return Ok(()),
        Err(Owner::Vip(_)) if node.has_role(Role::Controller) || node.has_role(Role::Lb) => {
            pool.hand_over(slot, Owner::Node(i));
            return Ok(());
        }
        Err(Owner::Reserved(what)) => format!(
            "{ip} of node {} is {what} of node network {net}: choose another address",
            node.name
        ),
        Err(Owner::Vip(path)) => format!(
            "{ip} of node {} is also {path}: give the node or the VIP another address",
            node.name
        ),
        Err(Owner::Node(j)) => format!(
            "{ip} is the address of both node {} and node {}: give each node its own",
            nodes[j].name, node.name
        ),
    };
    Err(Error::invalid(at(), message))
}

fn node_network_exhausted(pool: &Pool, net: IpNet, nodes: usize, vips: usize) -> Error {
    Error::Exhausted {
        range: format!("node network {net}"),
        fit: format!("{} addresses", pool.room()),
        need: format!(
            "{} ({nodes} nodes{})",
            nodes + vips,
            if vips > 0 {
                format!(" and {vips} VIPs")
            } else {
                String::new()
            }
        ),
        hint: "use a larger --node-network or fewer nodes",
    }
}

fn allocate_macs<'p>(
    document: &mut Document,
    earlier: &dyn Fn(&str) -> Option<&'p Node>,
    previous_path: &str,
) -> Result<(), Error> {
    let cluster = document.cluster.name.clone();
    let nodes = &document.nodes;
    let mut taken: HashMap<u64, usize> = HashMap::with_capacity(nodes.len());
    let mut chosen: Vec<Option<u64>> = vec![None; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        let (text, from_input) = match (&node.mac, earlier(&node.name).and_then(|p| p.mac.as_ref()))
        {
            (Some(mac), _) => (mac, true),
            (None, Some(mac)) => (mac, false),
            (None, None) => continue,
        };
        let at = || {
            if from_input {
                format!("nodes[{i}].mac")
            } else {
                format!("node {} in --previous {previous_path}", node.name)
            }
        };
        let value = mac::parse(text).map_err(|why| Error::invalid(at(), why))?;
        if let Some(j) = taken.insert(value, i) {
            return Err(Error::invalid(
                at(),
                format!(
                    "{} is the MAC of both node {} and node {}: give each node its own, or leave it empty to derive one",
                    mac::format(value),
                    nodes[j].name,
                    node.name
                ),
            ));
        }
        chosen[i] = Some(value);
    }
    for (i, node) in nodes.iter().enumerate() {
        if chosen[i].is_some() {
            continue;
        }
        // A collision (about 1 in 16 million per pair) retries with the next attempt number:
        // deterministic, and the first node in document order keeps the plain derivation.
        let value = (0..)
            .map(|attempt| mac::derive(&cluster, &node.name, attempt))
            .find(|m| !taken.contains_key(m))
            .expect("the 24-bit space outnumbers any node list");
        taken.insert(value, i);
        chosen[i] = Some(value);
    }
    for (node, value) in document.nodes.iter_mut().zip(chosen) {
        node.mac = value.map(mac::format);
    }
    Ok(())
}

/// Pod CIDRs of the nodes that run pods: the pinned and previous ones kept and checked, then the
/// lowest free subnet of each pod network for the rest.
fn allocate_pod_cidrs<'p>(
    document: &mut Document,
    earlier: &dyn Fn(&str) -> Option<&'p Node>,
    previous_path: &str,
    options: &Options,
) -> Result<(), Error> {
    let networks = &document.cluster.networks;
    let pods: Vec<(IpNet, u8)> = networks
        .pod
        .iter()
        .copied()
        .zip(networks.pod_prefix.iter().copied())
        .collect();
    let nodes = &document.nodes;
    let runs_pods = |node: &Node| {
        node.has_role(Role::Worker)
            || (options.pods_on_controllers && node.has_role(Role::Controller))
    };
    check_pinned_pod_cidrs(nodes, &pods)?;
    let mut chosen: Vec<Vec<IpNet>> = vec![Vec::new(); nodes.len()];
    for (net, prefix) in &pods {
        let v6 = family_of(net);
        let of_family = |cidrs: &[IpNet]| cidrs.iter().find(|c| family_of(c) == v6).copied();
        let mut pool = Pool::subnets(*net, *prefix);
        let mut missing = Vec::new();
        let mut need = 0usize;
        for (i, node) in nodes.iter().enumerate() {
            let previous_at = || format!("node {} in --previous {previous_path}", node.name);
            let (cidr, from_input) = match of_family(&node.pod_cidrs) {
                Some(cidr) => (cidr, true),
                None if runs_pods(node) => {
                    match earlier(&node.name).and_then(|p| of_family(&p.pod_cidrs)) {
                        Some(cidr) => {
                            check_pod_cidr(&cidr, &previous_at, &node.name, &pods)?;
                            (cidr, false)
                        }
                        None => {
                            missing.push(i);
                            need += 1;
                            continue;
                        }
                    }
                }
                None => continue,
            };
            need += 1;
            let slot = pool.slot_of(cidr.network()).expect("checked inside");
            if let Err(Owner::Node(j)) = pool.take(slot, Owner::Node(i)) {
                return Err(Error::invalid(
                    if from_input {
                        format!("nodes[{i}].pod_cidrs")
                    } else {
                        previous_at()
                    },
                    format!(
                        "{cidr} is the pod CIDR of both node {} and node {}: give each node its own",
                        nodes[j].name, node.name
                    ),
                ));
            }
            chosen[i].push(cidr);
        }
        for i in missing {
            let slot = pool
                .next_free(Owner::Node(i))
                .ok_or_else(|| Error::Exhausted {
                    range: format!("pod network {net}"),
                    fit: format!("{} /{prefix} pod CIDRs", pool.room()),
                    need: format!("{need} (one per node that runs pods)"),
                    hint: "use a larger --pod-network or a longer --pod-prefix",
                })?;
            chosen[i].push(pool.net_at(slot));
        }
    }
    for (node, cidrs) in document.nodes.iter_mut().zip(chosen) {
        node.pod_cidrs = cidrs;
    }
    Ok(())
}

/// Every pinned pod CIDR fits its pod network, once per family.
fn check_pinned_pod_cidrs(nodes: &[Node], pods: &[(IpNet, u8)]) -> Result<(), Error> {
    for (i, node) in nodes.iter().enumerate() {
        for (j, cidr) in node.pod_cidrs.iter().enumerate() {
            let at = || format!("nodes[{i}].pod_cidrs[{j}]");
            check_pod_cidr(cidr, &at, &node.name, pods)?;
            if node.pod_cidrs[..j]
                .iter()
                .any(|o| family_of(o) == family_of(cidr))
            {
                return Err(Error::invalid(
                    at(),
                    format!(
                        "node {} has two {} pod CIDRs: give one per family",
                        node.name,
                        validate::family(family_of(cidr))
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A pod CIDR is inside a pod network of its family and has that network's per-node prefix.
fn check_pod_cidr(
    cidr: &IpNet,
    at: &dyn Fn() -> String,
    name: &str,
    pods: &[(IpNet, u8)],
) -> Result<(), Error> {
    let Some((net, prefix)) = pods.iter().find(|(n, _)| family_of(n) == family_of(cidr)) else {
        return Err(Error::invalid(
            at(),
            format!(
                "{cidr} of node {name} is {}, the cluster has no such pod network",
                validate::family(family_of(cidr))
            ),
        ));
    };
    if !net.contains(cidr) || cidr.trunc() != *cidr {
        return Err(Error::invalid(
            at(),
            format!("{cidr} of node {name} is not a subnet of pod network {net}: change it or the pod network"),
        ));
    }
    if cidr.prefix_len() != *prefix {
        return Err(Error::invalid(
            at(),
            format!("{cidr} of node {name} is a /{}, the cluster gives each node a /{prefix} (cluster.networks.pod_prefix)", cidr.prefix_len()),
        ));
    }
    Ok(())
}

fn list(nets: &[IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
