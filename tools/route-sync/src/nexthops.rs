//! One nexthop object per node and family, as plain data: which id each node's routes name,
//! which nexthops to make, repoint or sweep. No syscalls here.
//!
//! Why nexthop objects: a route that names a nexthop by id (`nhid`) skips the kernel's
//! comparison of its gateway with every route through the same device (fib_create_info), which
//! makes installing 10,000 per-node routes several times cheaper, and a node whose address
//! changes is one nexthop replace that every route of the node follows.
//!
//! route-sync owns the nexthops that carry its protocol number *and* an id in its range
//! (`--nexthop-ids`); it never changes or deletes any other, and never deletes one of its own
//! that a route it does not own still names (the kernel would delete that route with it).
//!
//! A node's nexthop is found again from the kernel alone, with no state file: first the id its
//! routes already name, then (after a run was killed between making nexthops and routes) an
//! unclaimed one of ours with the same gateway and device, and only then a fresh id.

use foldhash::{HashMap, HashMapExt, HashSet};
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use serde::Serialize;

use crate::error::Error;
use crate::plan::{Hop, KernelRoute, Owner, Snapshot, Want};

/// A nexthop object as the kernel's dump shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelNexthop {
    pub id: u32,
    pub proto: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// A group, blackhole, encap or FDB nexthop: never what route-sync makes.
    pub special: bool,
}

/// The ids route-sync gives its nexthops, inclusive.
///
/// The default, 0xC8000000–0xC8FFFFFF (3355443200–3372220415), is protocol 200 in the top byte,
/// so route-sync's ids read as its own in `ip nexthop`, and it is clear of the ids others use:
/// the kernel numbers nexthops added without an id upward from 1 (`ip nexthop add` users pick
/// small ids by hand), and FRR's zebra keeps its own and its daemons' ids below 250,000,000 and
/// its EVPN ones in the top 4 bits, 0xF0000000 and up (FRRouting/frr lib/zclient.h,
/// ZEBRA_NHG_PROTO_UPPER). 16.7 million ids: two per node, for any cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NexthopIds {
    pub first: u32,
    pub last: u32,
}

impl NexthopIds {
    pub const DEFAULT: NexthopIds = NexthopIds {
        first: 0xC800_0000,
        last: 0xC8FF_FFFF,
    };

    pub fn contains(&self, id: u32) -> bool {
        (self.first..=self.last).contains(&id)
    }
}

/// How route-sync routes: through nexthop objects with ids in `ids`, or (when `enabled` is
/// false: `--no-nexthops`, or a kernel without them) plain routes via the gateway, sweeping
/// its nexthops once no route names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NexthopMode {
    pub ids: NexthopIds,
    pub enabled: bool,
}

/// A nexthop route-sync makes or keeps: one node's address of one family, or (on a cluster
/// across several machines) one hypervisor's, which every route through it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nexthop {
    pub id: u32,
    pub gateway: IpAddr,
    pub dev: String,
    #[serde(skip)]
    pub ifindex: u32,
    /// The node it leads to; `null` for a hypervisor's.
    pub node: Option<String>,
    /// The hypervisor it leads through; absent for a node's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<String>,
}

/// A nexthop of route-sync's repointed in place (the node's address moved): its routes follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NexthopReplaced {
    #[serde(flatten)]
    pub nexthop: Nexthop,
    pub was: Hop,
}

/// A nexthop of route-sync's that no node needs any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NexthopRemoved {
    pub id: u32,
    #[serde(flatten)]
    pub hop: Hop,
}

/// What happens to route-sync's nexthops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NexthopChanges {
    pub added: Vec<Nexthop>,
    pub replaced: Vec<NexthopReplaced>,
    pub removed: Vec<NexthopRemoved>,
    pub unchanged: usize,
}

impl NexthopChanges {
    pub fn changes(&self) -> usize {
        self.added.len() + self.replaced.len() + self.removed.len()
    }
}

/// route-sync's nexthops (its protocol, ids in its range), sorted by id and found by binary
/// search in a list of their ids alone. With 10,000 nodes, hash tables built afresh on every
/// run cost more than searching (each probe a cache miss into new memory), and a no-op run is
/// mostly such lookups.
struct Ours<'k> {
    nexthops: Vec<&'k KernelNexthop>,
    ids: Vec<u32>,
}

impl<'k> Ours<'k> {
    fn new(all: &'k [KernelNexthop], owner: Owner, ids: NexthopIds) -> Ours<'k> {
        let mut nexthops: Vec<&KernelNexthop> = all
            .iter()
            .filter(|n| n.proto == owner.proto && ids.contains(n.id))
            .collect();
        nexthops.sort_unstable_by_key(|n| n.id);
        let ids = nexthops.iter().map(|n| n.id).collect();
        Ours { nexthops, ids }
    }

    /// Where nexthop `id` is in the list, if it is ours.
    fn position(&self, id: u32) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }
}

/// The wanted routes of one node and family, or of one hypervisor and family: they share a
/// gateway and so a nexthop.
struct Group<'a> {
    /// The node or hypervisor the routes lead to (the hypervisor's name when there is one).
    via: Via<'a>,
    gateway: IpAddr,
    ifindex: u32,
    /// Where its wants' indexes are in [`Groups::members`].
    members: Range<usize>,
}

/// The groups, and every group's wants' indexes in one list, a group's together.
struct Groups<'a> {
    groups: Vec<Group<'a>>,
    members: Vec<usize>,
}

impl Groups<'_> {
    /// The indexes of the wants of `group`, in order.
    fn of(&self, group: &Group) -> &[usize] {
        &self.members[group.members.clone()]
    }
}

/// What a group of routes leads through: a node straight, or a hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Via<'a> {
    Node(&'a str),
    Hypervisor(&'a str),
}

impl<'a> Via<'a> {
    fn of(want: &'a Want) -> Via<'a> {
        match (&want.hypervisor, &want.node) {
            (Some(h), _) => Via::Hypervisor(h),
            (None, node) => Via::Node(node.as_deref().unwrap_or_default()),
        }
    }
}

/// Groups the wants that route-sync will install (not those on a prefix another protocol holds)
/// by node or hypervisor and by family, in the order of their first want.
fn groups<'a>(wants: &'a [Want], ifindexes: &[u32], held: &HashSet<IpNet>) -> Groups<'a> {
    // Each (group, family)'s index in `groups`, NONE until its first want.
    const NONE: u32 = u32::MAX;
    let slots = wants
        .iter()
        .map(|w| w.group as usize + 1)
        .max()
        .unwrap_or(0)
        * 2;
    let mut index: Vec<u32> = vec![NONE; slots];
    let mut groups: Vec<Group> = Vec::with_capacity(wants.len());
    // Each want's group, NONE if held; the groups' `members` count them for now.
    let mut group_of: Vec<u32> = vec![NONE; wants.len()];
    for (i, w) in wants.iter().enumerate() {
        if !held.is_empty() && held.contains(&w.dst) {
            continue;
        }
        let slot = &mut index[w.group as usize * 2 + usize::from(w.gateway.is_ipv6())];
        if *slot == NONE {
            groups.push(Group {
                via: Via::of(w),
                gateway: w.gateway,
                ifindex: ifindexes[i],
                members: 0..0,
            });
            *slot = (groups.len() - 1) as u32;
        }
        let g = *slot as usize;
        debug_assert_eq!(
            groups[g].via,
            Via::of(w),
            "one group, one node or hypervisor"
        );
        groups[g].members.end += 1;
        group_of[i] = g as u32;
    }
    let mut start = 0;
    for g in &mut groups {
        let count = g.members.end;
        g.members = start..start;
        start += count;
    }
    let mut members = vec![0; start];
    for (i, g) in group_of.into_iter().enumerate().filter(|(_, g)| *g != NONE) {
        let range = &mut groups[g as usize].members;
        members[range.end] = i;
        range.end += 1;
    }
    Groups { groups, members }
}

/// Picks each node's nexthop and plans the nexthop changes. Returns, for each want, the id its
/// route names (`None`: a plain route, or a want another protocol's route holds), and the
/// changes. `table` is the owner's table; `held` the prefixes other protocols' routes hold.
pub fn assign(
    wants: &[Want],
    ifindexes: &[u32],
    table: &[&KernelRoute],
    held: &HashSet<IpNet>,
    kernel: &Snapshot,
    owner: Owner,
    mode: NexthopMode,
) -> Result<(Vec<Option<u32>>, NexthopChanges), Error> {
    let all = kernel.nexthops.as_deref().unwrap_or_default();
    let ours = Ours::new(all, owner, mode.ids);
    let mut via = vec![None; wants.len()];
    let mut changes = NexthopChanges::default();
    // Which of ours a group claimed.
    let mut claimed = vec![false; ours.nexthops.len()];
    if mode.enabled && kernel.nexthops.is_some() {
        let groups = groups(wants, ifindexes, held);
        let ids = claim(&groups, wants, table, &ours, mode.ids, all)?;
        for (g, id) in groups.groups.iter().zip(ids) {
            let position = ours.position(id);
            if let Some(p) = position {
                claimed[p] = true;
            }
            for &m in groups.of(g) {
                via[m] = Some(id);
            }
            // Built only for a change: a no-op run over 10,000 nodes makes no strings.
            let nexthop = || Nexthop {
                id,
                gateway: g.gateway,
                dev: kernel.dev(Some(g.ifindex)).unwrap_or_default(),
                ifindex: g.ifindex,
                node: match g.via {
                    Via::Node(n) => Some(n.to_string()),
                    Via::Hypervisor(_) => None,
                },
                hypervisor: match g.via {
                    Via::Hypervisor(h) => Some(h.to_string()),
                    Via::Node(_) => None,
                },
            };
            match position.map(|p| ours.nexthops[p]) {
                None => changes.added.push(nexthop()),
                Some(k) if k.gateway == Some(g.gateway) && k.oif == Some(g.ifindex) => {
                    changes.unchanged += 1
                }
                Some(k) => changes.replaced.push(NexthopReplaced {
                    nexthop: nexthop(),
                    was: hop(k, kernel),
                }),
            }
        }
    }
    // Ids that routes route-sync leaves alone name — another protocol's, another table's, or
    // its own on a wanted prefix another protocol holds (a conflict): deleting those nexthops
    // would take the routes with them. Its own on a prefix nothing wants go, foreign route
    // beside them or not, and so may their nexthops: kept, a second run would delete them.
    let conflicts: HashSet<IpNet> = wants
        .iter()
        .map(|w| w.dst)
        .filter(|dst| held.contains(dst))
        .collect();
    let named_by_others: HashSet<u32> = table
        .iter()
        .filter(|r| r.proto != owner.proto || conflicts.contains(&r.dst))
        .filter_map(|r| r.nhid)
        .chain(kernel.nexthops_used_elsewhere.iter().copied())
        .collect();
    changes
        .removed
        .reserve(claimed.iter().filter(|claimed| !**claimed).count());
    for (k, _) in ours
        .nexthops
        .iter()
        .zip(claimed)
        .filter(|(_, claimed)| !claimed)
    {
        if !named_by_others.contains(&k.id) {
            changes.removed.push(NexthopRemoved {
                id: k.id,
                hop: hop(k, kernel),
            });
        }
    }
    Ok((via, changes))
}

fn hop(k: &KernelNexthop, kernel: &Snapshot) -> Hop {
    Hop {
        gateway: k.gateway,
        dev: kernel.dev(k.oif),
        nexthop: None,
    }
}

/// For each want, which of ours the route to its prefix in `table` (sorted by destination)
/// names, if one does (of several, the last): both walked in destination order.
fn named_by_routes(wants: &[Want], table: &[&KernelRoute], ours: &Ours) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..wants.len()).collect();
    order.sort_by_key(|&i| wants[i].dst);
    let mut named = vec![None; wants.len()];
    let mut rest = table;
    for i in order {
        let dst = wants[i].dst;
        rest = &rest[rest.iter().take_while(|r| r.dst < dst).count()..];
        let same = rest.iter().take_while(|r| r.dst == dst);
        named[i] = same.filter_map(|r| ours.position(r.nhid?)).last();
    }
    named
}

/// The id of each group's nexthop: the one its routes name, else an unclaimed one of ours with
/// the same gateway and device, else the lowest id of the range nobody uses.
fn claim(
    groups: &Groups,
    wants: &[Want],
    table: &[&KernelRoute],
    ours: &Ours,
    range: NexthopIds,
    all: &[KernelNexthop],
) -> Result<Vec<u32>, Error> {
    let usable = |p: usize, v6: bool| {
        let n = ours.nexthops[p];
        !n.special && n.gateway.is_some_and(|g| g.is_ipv6() == v6) && n.oif.is_some()
    };
    let named = named_by_routes(wants, table, ours);
    let mut taken = vec![false; ours.nexthops.len()];
    let mut claimed: Vec<Option<usize>> = groups
        .groups
        .iter()
        .map(|g| {
            let v6 = g.gateway.is_ipv6();
            let p = groups
                .of(g)
                .iter()
                .filter_map(|&m| named[m])
                .find(|&p| usable(p, v6) && !taken[p])?;
            taken[p] = true;
            Some(p)
        })
        .collect();
    if claimed.iter().any(Option::is_none) {
        // Left by a killed run before its routes were made: same gateway and device.
        let mut by_hop: HashMap<(IpAddr, u32), Vec<usize>> = HashMap::new();
        for (p, n) in ours.nexthops.iter().enumerate().rev() {
            if let (Some(g), Some(o), false) = (n.gateway, n.oif, n.special || taken[p]) {
                by_hop.entry((g, o)).or_default().push(p);
            }
        }
        let unclaimed = groups.groups.iter().zip(claimed.iter_mut());
        for (g, p) in unclaimed.filter(|(_, p)| p.is_none()) {
            *p = by_hop.get_mut(&(g.gateway, g.ifindex)).and_then(Vec::pop);
        }
    }
    let mut fresh = fresh_ids(range, all);
    claimed
        .into_iter()
        .map(|p| {
            p.map(|p| ours.nexthops[p].id)
                .or_else(&mut fresh)
                .ok_or_else(|| {
                    Error::invalid(
                        "--nexthop-ids",
                        format!(
                            "{}-{} has no free id left for {} nexthops (one per node or hypervisor and family); \
                         give a larger range",
                            range.first,
                            range.last,
                            groups.groups.len()
                        ),
                    )
                })
        })
        .collect()
}

/// The ids of `range` no nexthop in `all` has (whoever made it), lowest first, one per call;
/// `None` once there are no more. Sorts the ids in use at the first call only.
fn fresh_ids(range: NexthopIds, all: &[KernelNexthop]) -> impl FnMut() -> Option<u32> + '_ {
    let mut used: Option<Vec<u32>> = None;
    let mut next = Some(range.first);
    move || {
        let used = used.get_or_insert_with(|| {
            let mut ids: Vec<u32> = all.iter().map(|n| n.id).collect();
            ids.sort_unstable();
            ids
        });
        let mut id = next?;
        while used.binary_search(&id).is_ok() {
            if id == range.last {
                next = None;
                return None;
            }
            id += 1;
        }
        next = (id < range.last).then(|| id + 1);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, Address, RTN_UNICAST};

    const OWNER: Owner = Owner {
        proto: 200,
        table: 254,
    };
    const ON: NexthopMode = NexthopMode {
        ids: NexthopIds::DEFAULT,
        enabled: true,
    };
    const FIRST: u32 = NexthopIds::DEFAULT.first;

    fn want(dst: &str, gw: &str, node: &str) -> Want {
        // The tests' nodes are named by one letter: its place in the alphabet is its index.
        let index = usize::from(node.as_bytes()[0] - b'a');
        Want::to_node(dst.parse().unwrap(), gw.parse().unwrap(), node, index)
    }

    fn nexthop(id: u32, gw: &str, proto: u8) -> KernelNexthop {
        KernelNexthop {
            id,
            proto,
            gateway: Some(gw.parse().unwrap()),
            oif: Some(2),
            special: false,
        }
    }

    fn route(dst: &str, nhid: Option<u32>, gw: &str, proto: u8) -> KernelRoute {
        KernelRoute {
            dst: dst.parse().unwrap(),
            gateway: Some(gw.parse().unwrap()),
            oif: Some(2),
            proto,
            table: 254,
            priority: None,
            tos: 0,
            kind: RTN_UNICAST,
            multipath: false,
            nhid,
        }
    }

    fn kernel(routes: Vec<KernelRoute>, nexthops: Vec<KernelNexthop>) -> Snapshot {
        Snapshot {
            routes,
            nexthops: Some(nexthops),
            addresses: vec![
                Address {
                    ifindex: 2,
                    net: "10.240.0.1/24".parse().unwrap(),
                },
                Address {
                    ifindex: 2,
                    net: "fd00::1/64".parse().unwrap(),
                },
            ],
            links: [(2, "br0".to_string())].into(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn one_nexthop_per_node_and_family_and_routes_name_it() {
        let wants = vec![
            want("10.200.1.0/24", "10.240.0.11", "a"),
            want("10.201.1.0/24", "10.240.0.11", "a"),
            want("fd00:200:1::/64", "fd00::11", "a"),
            want("10.200.2.0/24", "10.240.0.12", "b"),
        ];
        // A foreign nexthop holds the first id of the range: it is skipped, never touched.
        let k = kernel(vec![], vec![nexthop(FIRST, "10.240.0.99", 4)]);
        let p = plan(&wants, &k, OWNER, ON).unwrap();
        let ids: Vec<u32> = p.nexthops.added.iter().map(|n| n.id).collect();
        assert_eq!(ids, [FIRST + 1, FIRST + 2, FIRST + 3]);
        assert_eq!(p.nexthops.added[0].node.as_deref(), Some("a"));
        let named: Vec<Option<u32>> = p.added.iter().map(|r| r.nexthop).collect();
        assert_eq!(
            named,
            [
                Some(FIRST + 1),
                Some(FIRST + 3),
                Some(FIRST + 1),
                Some(FIRST + 2)
            ]
        );
        assert!(p.nexthops.removed.is_empty());
    }

    #[test]
    fn a_moved_node_is_one_nexthop_replace_and_its_routes_stay() {
        let wants = vec![
            want("10.200.1.0/24", "10.240.0.21", "a"),
            want("10.201.1.0/24", "10.240.0.21", "a"),
        ];
        let k = kernel(
            vec![
                route("10.200.1.0/24", Some(FIRST + 5), "10.240.0.11", 200),
                route("10.201.1.0/24", Some(FIRST + 5), "10.240.0.11", 200),
            ],
            vec![nexthop(FIRST + 5, "10.240.0.11", 200)],
        );
        let p = plan(&wants, &k, OWNER, ON).unwrap();
        assert_eq!(p.changes(), 1, "{p:?}");
        assert_eq!(p.nexthops.replaced[0].nexthop.id, FIRST + 5);
        assert_eq!(
            p.nexthops.replaced[0].was.gateway,
            Some("10.240.0.11".parse().unwrap())
        );
        assert_eq!(p.unchanged, 2);
    }

    #[test]
    fn a_recorded_plan_leaves_nothing_to_do() {
        let wants = vec![
            want("10.200.1.0/24", "10.240.0.21", "a"),
            want("10.201.1.0/24", "10.240.0.21", "a"),
            want("10.200.2.0/24", "10.240.0.12", "b"),
            want("fd00:200:2::/64", "fd00::12", "b"),
        ];
        let mut k = kernel(
            vec![
                route("10.200.1.0/24", Some(FIRST + 5), "10.240.0.11", 200),
                route("10.200.2.0/24", None, "10.240.0.12", 200),
                route("10.200.9.0/24", Some(FIRST + 9), "10.240.0.9", 200),
            ],
            vec![
                nexthop(FIRST + 5, "10.240.0.11", 200),
                nexthop(FIRST + 9, "10.240.0.9", 200),
            ],
        );
        for mode in [
            ON,
            NexthopMode {
                enabled: false,
                ..ON
            },
            ON,
        ] {
            let p = plan(&wants, &k, OWNER, mode).unwrap();
            assert!(p.changes() > 0, "{p:?}");
            k.record(&p, OWNER);
            let again = plan(&wants, &k, OWNER, mode).unwrap();
            assert_eq!((again.changes(), again.unchanged), (0, 4), "{again:?}");
        }
    }

    #[test]
    fn orphans_of_a_killed_run_are_reused_or_swept_and_foreign_ones_kept() {
        let wants = vec![
            want("10.200.1.0/24", "10.240.0.11", "a"),
            want("10.200.4.0/24", "10.240.0.14", "d"),
        ];
        let k = kernel(
            vec![
                route("10.99.0.0/24", Some(FIRST + 9), "10.240.0.9", 4),
                // A conflict: a static route holds d's prefix, and ours there is left alone.
                route("10.200.4.0/24", None, "10.240.0.44", 4),
                route("10.200.4.0/24", Some(FIRST + 4), "10.240.0.14", 200),
            ],
            vec![
                nexthop(FIRST + 4, "10.240.0.14", 200), // our conflicting route names it: kept
                nexthop(FIRST + 7, "10.240.0.11", 200), // made, route not yet: reused
                nexthop(FIRST + 8, "10.240.0.8", 200),  // node gone: swept
                nexthop(FIRST + 9, "10.240.0.9", 200),  // a static route names it: kept
                nexthop(5, "10.240.0.5", 200),          // outside the range: not ours
                nexthop(FIRST + 6, "10.240.0.6", 16),   // another protocol: not ours
            ],
        );
        let p = plan(&wants, &k, OWNER, ON).unwrap();
        assert_eq!(p.added[0].nexthop, Some(FIRST + 7));
        assert_eq!((p.conflicts.len(), p.removed.len()), (1, 0), "{p:?}");
        assert_eq!(p.nexthops.unchanged, 1);
        let removed: Vec<u32> = p.nexthops.removed.iter().map(|n| n.id).collect();
        assert_eq!(removed, [FIRST + 8]);
    }

    #[test]
    fn a_stale_route_beside_a_foreign_one_goes_with_its_nexthop_in_one_run() {
        let k = kernel(
            vec![
                route("10.200.4.0/24", None, "10.240.0.44", 4),
                route("10.200.4.0/24", Some(FIRST + 4), "10.240.0.14", 200),
            ],
            vec![nexthop(FIRST + 4, "10.240.0.14", 200)],
        );
        let p = plan(&[], &k, OWNER, ON).unwrap();
        assert_eq!(p.removed.len(), 1, "{p:?}");
        assert!(p.removed[0].alone);
        let removed: Vec<u32> = p.nexthops.removed.iter().map(|n| n.id).collect();
        assert_eq!(removed, [FIRST + 4]);
    }

    #[test]
    fn switching_forms_replaces_routes_in_place() {
        let wants = vec![want("10.200.1.0/24", "10.240.0.11", "a")];
        let plain = kernel(
            vec![route("10.200.1.0/24", None, "10.240.0.11", 200)],
            vec![],
        );
        let p = plan(&wants, &plain, OWNER, ON).unwrap();
        assert_eq!((p.nexthops.added.len(), p.replaced.len()), (1, 1));
        assert!(p.removed.is_empty() && p.added.is_empty());

        let named = kernel(
            vec![route("10.200.1.0/24", Some(FIRST), "10.240.0.11", 200)],
            vec![nexthop(FIRST, "10.240.0.11", 200)],
        );
        let off = NexthopMode {
            enabled: false,
            ..ON
        };
        let p = plan(&wants, &named, OWNER, off).unwrap();
        assert_eq!(p.replaced.len(), 1);
        assert_eq!(p.replaced[0].route.nexthop, None);
        assert_eq!(p.replaced[0].was.nexthop, Some(FIRST));
        assert_eq!(p.nexthops.removed.len(), 1);
        // A kernel without nexthop objects: plain routes, nothing to sweep.
        let old = Snapshot {
            nexthops: None,
            ..plain
        };
        let p = plan(&wants, &old, OWNER, ON).unwrap();
        assert_eq!((p.changes(), p.unchanged), (0, 1));
    }

    #[test]
    fn a_full_range_is_an_input_error() {
        let wants = vec![want("10.200.1.0/24", "10.240.0.11", "a")];
        let tiny = NexthopMode {
            ids: NexthopIds {
                first: 10,
                last: 10,
            },
            enabled: true,
        };
        let k = kernel(vec![], vec![nexthop(10, "10.240.0.99", 4)]);
        let e = plan(&wants, &k, OWNER, tiny).unwrap_err();
        assert_eq!(hardway::Failure::exit(&e), hardway::Exit::Usage);
        assert!(e.to_string().starts_with("--nexthop-ids"), "{e}");
    }
}
