//! Several hypervisors (issue 19): each listed hypervisor gets its slice of the node network, and
//! each node's address comes from the slice of the hypervisor it runs on, so a hypervisor's
//! libvirt network holds exactly its own nodes and the others reach them with one route per
//! slice.
//!
//! The same rules as every other address: a slice or an address already decided (in the input,
//! or for the same hypervisor or node in `--previous`) is kept; only what is still missing is
//! decided, lowest free first, in document order. So re-running changes nothing and adding a
//! node on one hypervisor moves nothing on another. The slices are equal, aligned parts of each
//! node network, as many as the next power of two at or above the number of hypervisors (two
//! hypervisors on a /24 get a /25 each); a hypervisor added later gets the lowest part still free
//! at that size, and when none is left the message says to pin one (`node_slice`) or widen the
//! node network. A node whose hypervisor changed since `--previous` is re-addressed in its new
//! slice: it is a new VM on another machine anyway.
//!
//! A document that lists no hypervisor is left to `plan::allocate_ips` alone, exactly as before.
//! With one hypervisor its slice is the whole node network, and the addresses this module hands
//! out are the ones `allocate_ips` would (a property test checks it). This module runs before
//! `allocate_ips`, which then finds every address pinned and checks them as it checks pins.

use std::collections::HashMap;
use std::net::IpAddr;

use hardway::doc::HypervisorHost;
use hardway::{Document, Role};
use ipnet::IpNet;

use crate::error::Error;
use crate::plan::Previous;
use crate::pool::{Owner, Pool};

/// Decides every hypervisor's slice and the address of every node still missing one; a no-op
/// when the document lists no hypervisor. `api_vip` is set here (to the first free address of
/// the slice of the first controller's hypervisor) when several controllers need one and none
/// was given, so the VIP sits where a node of that hypervisor could hold it.
pub fn allocate(
    document: &mut Document,
    previous: Option<Previous<'_>>,
    api_vip: &mut Option<IpAddr>,
    controller_vip: Option<IpAddr>,
) -> Result<(), Error> {
    if document.hypervisors.is_empty() {
        return Ok(());
    }
    decide_slices(document, previous)?;
    // Where each node ran in the previous output: its `host`, else that document's default
    // hypervisor, so a cluster growing from one hypervisor (no list, `host` null) to several
    // keeps the addresses of the nodes that stay on the first machine.
    let earlier: HashMap<&str, (Option<&str>, &[IpAddr])> = previous
        .map(|p| {
            let default = p.document.hypervisor.as_ref().map(|h| h.uri.as_str());
            p.document
                .nodes
                .iter()
                .map(|n| {
                    (
                        n.name.as_str(),
                        (n.host.as_deref().or(default), n.ips.as_slice()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // A node keeps its previous address only if it is still on the same hypervisor.
    let kept_earlier: Vec<Vec<IpAddr>> = document
        .nodes
        .iter()
        .map(|node| match earlier.get(node.name.as_str()) {
            Some((host, ips)) if *host == node.host.as_deref() => ips.to_vec(),
            _ => Vec::new(),
        })
        .collect();
    let families: Vec<bool> = document
        .cluster
        .networks
        .node
        .iter()
        .map(|n| matches!(n, IpNet::V6(_)))
        .collect();
    for (k, v6) in families.into_iter().enumerate() {
        let vips = Vips {
            api: api_vip,
            controller: controller_vip,
            pick_api: k == 0,
        };
        address_family(document, k, v6, &kept_earlier, vips)?;
    }
    Ok(())
}

/// The VIPs a slice must not hand to a node, and whether this family picks the API VIP.
struct Vips<'a> {
    api: &'a mut Option<IpAddr>,
    controller: Option<IpAddr>,
    pick_api: bool,
}

/// Fills `node_slice` of every hypervisor, one node network (family) at a time.
fn decide_slices(document: &mut Document, previous: Option<Previous<'_>>) -> Result<(), Error> {
    let previous_slices: HashMap<&str, &[IpNet]> = previous
        .map(|p| {
            p.document
                .hypervisors
                .iter()
                .map(|h| (h.name.as_str(), h.node_slice.as_slice()))
                .collect()
        })
        .unwrap_or_default();
    let mut chosen: Vec<Vec<IpNet>> = vec![Vec::new(); document.hypervisors.len()];
    for net in &document.cluster.networks.node {
        let slices = slices_of(*net, &document.hypervisors, &previous_slices)?;
        for (list, slice) in chosen.iter_mut().zip(slices) {
            list.push(slice);
        }
    }
    for (host, slices) in document.hypervisors.iter_mut().zip(chosen) {
        host.node_slice = slices;
    }
    Ok(())
}

/// Each hypervisor's slice of one node network, in `hosts` order: kept ones first (its own in
/// the input, else its previous one by name while still inside `net`), then the lowest free
/// aligned part for the others.
fn slices_of(
    net: IpNet,
    hosts: &[HypervisorHost],
    previous_slices: &HashMap<&str, &[IpNet]>,
) -> Result<Vec<IpNet>, Error> {
    let v6 = matches!(net, IpNet::V6(_));
    let of_family = |slices: &[IpNet]| {
        slices
            .iter()
            .copied()
            .find(|s| matches!(s, IpNet::V6(_)) == v6)
    };
    let mut taken: Vec<(usize, IpNet)> = Vec::new();
    let mut missing = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let earlier = previous_slices
            .get(host.name.as_str())
            .and_then(|s| of_family(s))
            .filter(|s| net.contains(s));
        let Some(slice) = of_family(&host.node_slice).or(earlier) else {
            missing.push(i);
            continue;
        };
        if let Some((j, other)) = taken.iter().find(|(_, o)| overlap(o, &slice)) {
            return Err(Error::invalid(
                format!("hypervisors[{i}].node_slice"),
                format!(
                    "{slice} of hypervisor {} overlaps {other} of hypervisor {}: give each its own part of {net}",
                    host.name, hosts[*j].name
                ),
            ));
        }
        taken.push((i, slice));
    }
    for i in missing {
        let slice = free_slice(net, hosts.len(), &taken)
            .ok_or_else(|| no_free_slice(net, hosts, i, taken.len()))?;
        taken.push((i, slice));
    }
    taken.sort_by_key(|(i, _)| *i);
    Ok(taken.into_iter().map(|(_, slice)| slice).collect())
}

fn no_free_slice(net: IpNet, hosts: &[HypervisorHost], i: usize, taken: usize) -> Error {
    let count = hosts.len();
    let why = match slice_prefix(net, count) {
        Some(prefix) => format!(
            "no free /{prefix} is left in node network {net} for hypervisor {} ({count} hypervisors, {taken} slices taken)",
            hosts[i].name
        ),
        None => format!(
            "node network {net} cannot be split into {count} slices that each hold a node"
        ),
    };
    Error::invalid(
        format!("hypervisors[{i}].node_slice"),
        format!("{why}: pin a smaller node_slice or use a larger --node-network"),
    )
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    hardway::validate::overlaps(a, b)
}

/// The prefix of a slice when `count` hypervisors share `net`: `count` rounded up to a power of
/// two equal parts. `None` when a part would hold fewer than two node addresses (a /30 for IPv4:
/// network, gateway, broadcast and one node).
pub fn slice_prefix(net: IpNet, count: usize) -> Option<u8> {
    let bits = count.max(1).next_power_of_two().trailing_zeros();
    let prefix = u32::from(net.prefix_len()) + bits;
    let longest = u32::from(net.max_prefix_len()) - 2;
    u8::try_from(prefix).ok().filter(|_| prefix <= longest)
}

/// The lowest part of `net` at the slice prefix for `count` hypervisors that overlaps none taken.
fn free_slice(net: IpNet, count: usize, taken: &[(usize, IpNet)]) -> Option<IpNet> {
    let prefix = slice_prefix(net, count)?;
    net.subnets(prefix)
        .ok()?
        .find(|candidate| !taken.iter().any(|(_, t)| overlap(t, candidate)))
}

/// Addresses of one family (`k`, the index in `cluster.networks.node`): per hypervisor, a pool
/// over its slice holds the VIPs and the kept addresses, then gives the missing ones out.
fn address_family(
    document: &mut Document,
    k: usize,
    v6: bool,
    kept_earlier: &[Vec<IpAddr>],
    vips: Vips<'_>,
) -> Result<(), Error> {
    let gateway = document.hypervisor.as_ref().and_then(|h| h.gateway);
    let mut pools: Vec<Pool> = document
        .hypervisors
        .iter()
        .map(|h| Pool::hosts(h.node_slice[k]))
        .collect();
    for pool in pools.iter_mut() {
        reserve_vips(pool, [*vips.api, vips.controller], gateway);
    }
    let host_of = host_index(document);
    let missing = keep_decided(document, &host_of, &mut pools, v6, kept_earlier)?;
    if vips.pick_api && vips.api.is_none() {
        pick_api_vip(document, &host_of, &mut pools, vips.api)?;
    }
    for i in missing {
        let h = host_of[i];
        let slot = pools[h]
            .next_free(Owner::Node(i))
            .ok_or_else(|| slice_full(document, h, k, &pools[h]))?;
        let ip = pools[h].ip_at(slot);
        document.nodes[i].ips.push(ip);
    }
    Ok(())
}

/// Takes the addresses already decided in each node's slice (its own, else its previous one
/// while free) and returns the nodes still missing one, in document order.
fn keep_decided(
    document: &mut Document,
    host_of: &[usize],
    pools: &mut [Pool],
    v6: bool,
    kept_earlier: &[Vec<IpAddr>],
) -> Result<Vec<usize>, Error> {
    let mut missing = Vec::new();
    let mut kept: Vec<(usize, IpAddr)> = Vec::new();
    for (i, node) in document.nodes.iter().enumerate() {
        let h = host_of[i];
        let pool = &mut pools[h];
        let family = |ip: &&IpAddr| ip.is_ipv6() == v6;
        if let Some((j, ip)) = node.ips.iter().enumerate().find(|(_, ip)| family(ip)) {
            keep_pinned(pool, &document.hypervisors[h], i, node, j, *ip)?;
            continue;
        }
        // The previous address, when it is in this slice and still free; else a new one.
        let earlier = kept_earlier[i].iter().find(family).copied();
        let slot = earlier.and_then(|ip| pool.slot_of(ip));
        // A controller or load balancer may hold a VIP as its own address, as in allocate_ips.
        let holds_vip = node.has_role(Role::Controller) || node.has_role(Role::Lb);
        let free = |owner: Option<&Owner>| match owner {
            None => true,
            Some(Owner::Vip(_)) => holds_vip,
            Some(_) => false,
        };
        match (earlier, slot) {
            (Some(ip), Some(slot)) if free(pool.owner(slot)) => {
                pool.hand_over(slot, Owner::Node(i));
                kept.push((i, ip));
            }
            _ => missing.push(i),
        }
    }
    for (i, ip) in kept {
        document.nodes[i].ips.push(ip);
    }
    Ok(missing)
}

/// The VIPs and the top-level gateway are no node's address, in whichever slice they sit.
fn reserve_vips(pool: &mut Pool, [api, controller]: [Option<IpAddr>; 2], gateway: Option<IpAddr>) {
    for (path, vip) in [
        ("cluster.api.vip", api),
        ("cluster.controller_vip", controller),
    ] {
        if let Some(slot) = vip.and_then(|vip| pool.slot_of(vip)) {
            // Taken twice (both VIPs one address) is plan::allocate_ips' refusal to make.
            let _ = pool.take(slot, Owner::Vip(path));
        }
    }
    if let Some(slot) = gateway.and_then(|gw| pool.slot_of(gw)) {
        pool.reserve(slot, "the hypervisor's gateway");
    }
}

/// Each node's hypervisor, by index in `hypervisors` (read-time validation put every node on one).
fn host_index(document: &Document) -> Vec<usize> {
    let by_uri: HashMap<&str, usize> = document
        .hypervisors
        .iter()
        .enumerate()
        .map(|(h, host)| (host.uri.as_str(), h))
        .collect();
    document
        .nodes
        .iter()
        .map(|node| {
            node.host
                .as_deref()
                .and_then(|uri| by_uri.get(uri).copied())
                .expect("read-time validation puts every node on a listed hypervisor")
        })
        .collect()
}

/// A node's own address must sit in its hypervisor's slice, on no reserved slot.
fn keep_pinned(
    pool: &mut Pool,
    host: &HypervisorHost,
    i: usize,
    node: &hardway::Node,
    j: usize,
    ip: IpAddr,
) -> Result<(), Error> {
    let at = || format!("nodes[{i}].ips[{j}]");
    let Some(slot) = pool.slot_of(ip) else {
        return Err(Error::invalid(
            at(),
            format!(
                "{ip} of node {} is outside node slice {} of its hypervisor {}: give an address in that slice, or leave it empty",
                node.name, pool.net, host.name
            ),
        ));
    };
    match pool.take(slot, Owner::Node(i)) {
        Err(Owner::Reserved(what)) => Err(Error::invalid(
            at(),
            format!(
                "{ip} of node {} is {what} of node slice {} (hypervisor {}): choose another address",
                node.name, pool.net, host.name
            ),
        )),
        // A second node with the same address, or a node holding a VIP: plan::allocate_ips
        // names both (or allows a controller to hold it) as it does without hypervisors.
        _ => Ok(()),
    }
}

/// The API VIP for several controllers: the first free address of the slice of the first
/// controller's hypervisor, taken before the missing nodes as `allocate_ips` does.
fn pick_api_vip(
    document: &Document,
    host_of: &[usize],
    pools: &mut [Pool],
    api_vip: &mut Option<IpAddr>,
) -> Result<(), Error> {
    let controllers: Vec<usize> = (0..document.nodes.len())
        .filter(|&i| document.nodes[i].has_role(Role::Controller))
        .collect();
    if controllers.len() < 2 {
        return Ok(());
    }
    let h = host_of[controllers[0]];
    let pool = &mut pools[h];
    let slot = pool
        .next_free(Owner::Vip("cluster.api.vip"))
        .ok_or_else(|| {
            Error::invalid(
                "cluster.api.vip",
                format!(
                    "node slice {} of hypervisor {} has no free address for the API VIP: give --api-vip",
                    pool.net, document.hypervisors[h].name
                ),
            )
        })?;
    *api_vip = Some(pool.ip_at(slot));
    Ok(())
}

fn slice_full(document: &Document, h: usize, k: usize, pool: &Pool) -> Error {
    let host = &document.hypervisors[h];
    let on_host = document
        .nodes
        .iter()
        .filter(|n| n.host.as_deref() == Some(host.uri.as_str()))
        .count();
    Error::invalid(
        format!("hypervisors[{h}].node_slice[{k}]"),
        format!(
            "node slice {} of hypervisor {} is exhausted: {} addresses fit, {on_host} nodes run on it; pin a larger node_slice or use a larger --node-network",
            pool.net,
            host.name,
            pool.room()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_halve_per_power_of_two() {
        let net: IpNet = "10.240.0.0/24".parse().unwrap();
        assert_eq!(slice_prefix(net, 1), Some(24));
        assert_eq!(slice_prefix(net, 2), Some(25));
        assert_eq!(slice_prefix(net, 3), Some(26));
        assert_eq!(slice_prefix(net, 4), Some(26));
        assert_eq!(slice_prefix(net, 64), Some(30));
        assert_eq!(slice_prefix(net, 65), None);
        let v6: IpNet = "fd00:10:240::/64".parse().unwrap();
        assert_eq!(slice_prefix(v6, 2), Some(65));
    }

    #[test]
    fn a_free_slice_skips_the_taken_ones() {
        let net: IpNet = "10.240.0.0/24".parse().unwrap();
        let taken = [(0, "10.240.0.0/26".parse().unwrap())];
        assert_eq!(
            free_slice(net, 3, &taken),
            Some("10.240.0.64/26".parse().unwrap())
        );
        let full = [(0, net)];
        assert_eq!(free_slice(net, 2, &full), None);
    }
}
