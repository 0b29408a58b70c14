//! The kernel side, on plain netlink route sockets ([`Kernel`]): one dump each of routes,
//! nexthops, addresses and links (the routes on one socket, the rest on a second in parallel),
//! read and parsed as they come with no async machinery between the socket and the parse, and the plan's nexthop and route requests built as netlink
//! messages and sent many to a datagram, answers collected by sequence number. Nexthop messages
//! are [`crate::nhmsg`]'s (netlink-packet-route has none); the rest are netlink-packet-route's.
//!
//! Everything here speaks the plain types of [`crate::plan`]; nothing else in route-sync knows
//! netlink.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_core::{
    DecodeError, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NlasIterator, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::Error;
use crate::nexthops::{KernelNexthop, Nexthop};
use crate::nhmsg::{Message, NexthopMessage};
use crate::plan::{Address, KernelRoute, Owner, Plan, Removed, Route, Snapshot};

/// What [`Kernel::dump_all_but_routes`] dumps: the snapshot's nexthops, addresses and links.
type NexthopsAddressesLinks = (
    Option<Vec<KernelNexthop>>,
    Vec<Address>,
    BTreeMap<u32, String>,
);

/// Receive buffer asked for, so a window of acks, or the notifications of a large apply, fit.
const RECV_BUFFER: usize = 4 << 20;

/// What one `recv` reads at most. The kernel fills a dump's datagrams up to the largest read
/// it has seen, capped near 32 KiB (net/netlink/af_netlink.c, `max_recvmsg_len`): reading 64 KiB
/// from the first lets it send full ones, a third as many as at its 16 KiB default.
const READ_SIZE: usize = 64 * 1024;

fn socket_error(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Netlink {
        what: what.to_string(),
        source,
    }
}

/// A netlink route socket connected to the kernel. route-sync sends every request through one,
/// so the kernel names route-sync's own changes by its port id in the notifications a
/// `--watch` listens to; [`Kernel::snapshot`] opens a second one to dump on in parallel.
pub struct Kernel {
    socket: Socket,
    /// The last sequence number used.
    seq: u32,
    buf: Vec<u8>,
}

impl Kernel {
    pub fn open() -> Result<Kernel, Error> {
        let mut socket = Socket::new(NETLINK_ROUTE)
            .map_err(socket_error("cannot open a netlink route socket"))?;
        socket
            .bind_auto()
            .map_err(socket_error("cannot bind a netlink route socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(socket_error("cannot connect to the kernel's netlink"))?;
        // Errors then carry only the failed request's header, not all of it.
        let _ = socket.set_cap_ack(true);
        // Best effort: a smaller buffer only means fewer acks in flight.
        let _ = socket.set_rx_buf_sz(RECV_BUFFER);
        Ok(Kernel {
            socket,
            seq: 0,
            buf: Vec::with_capacity(READ_SIZE),
        })
    }

    /// The port id the kernel gave this socket: notifications of its changes carry it.
    pub fn port_id(&self) -> u32 {
        let mut address = SocketAddr::new(0, 0);
        match self.socket.get_address(&mut address) {
            Ok(()) => address.port_number(),
            Err(_) => 0,
        }
    }

    /// The kernel's routes in `table` (both families, every protocol), its nexthops, addresses
    /// and links. The kernel runs one dump at a time per socket, so the nexthops, addresses and
    /// links are dumped on a second socket, on a second thread, while this one dumps the routes:
    /// with 10,000 nodes the routes take about three times as long as the rest, and each dump
    /// is mostly the kernel's own work.
    pub fn snapshot(&mut self, table: u32) -> Result<Snapshot, Error> {
        let (routes, rest) = std::thread::scope(|scope| {
            let rest = scope.spawn(|| Kernel::open()?.dump_all_but_routes());
            let routes = self.dump_routes(table);
            (routes, rest.join().expect("the second dump does not panic"))
        });
        let (routes, nexthops_used_elsewhere) = routes?;
        let (nexthops, addresses, links) = rest?;
        Ok(Snapshot {
            routes,
            nexthops,
            nexthops_used_elsewhere,
            addresses,
            links,
        })
    }

    /// The routes in `table`, and the nexthop ids that routes of other tables name.
    ///
    /// One dump per family, not one of AF_UNSPEC: the kernel answers AF_UNSPEC through
    /// rtnl_dump_all, holding the RTNL lock (the one lock of all network configuration) for each
    /// datagram, which the nexthop dump on the second socket then waits for, spinning. Since
    /// Linux 6.9 IPv4's and IPv6's own route dumps run under RCU, without that lock
    /// (net/ipv4/fib_frontend.c and net/ipv6/ip6_fib.c register them RTNL_FLAG_DUMP_UNLOCKED).
    fn dump_routes(&mut self, table: u32) -> Result<(Vec<KernelRoute>, BTreeSet<u32>), Error> {
        let mut routes = Vec::new();
        let mut nexthops_used_elsewhere = BTreeSet::new();
        let _span = crate::timing::span("dump routes");
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut request = RouteMessage::default();
            request.header.address_family = family;
            let request = RouteNetlinkMessage::GetRoute(request);
            self.dump_all("routes", request, |DumpedRoute(route)| match route {
                Some(r) if r.table == table => routes.push(r),
                Some(r) => nexthops_used_elsewhere.extend(r.nhid),
                None => {}
            })?;
        }
        Ok((routes, nexthops_used_elsewhere))
    }

    /// The nexthops, addresses and links, one dump after the other.
    fn dump_all_but_routes(&mut self) -> Result<NexthopsAddressesLinks, Error> {
        let span = crate::timing::span("dump nexthops");
        let nexthops = self.dump_nexthops()?;
        drop(span);
        let _span = crate::timing::span("dump addresses and links");
        let mut addresses = Vec::new();
        let request = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        self.dump_all("addresses", request, |m: Message| {
            if let Message::Route(RouteNetlinkMessage::NewAddress(m)) = m {
                addresses.extend(address(&m));
            }
        })?;
        let mut links = BTreeMap::new();
        let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
        self.dump_all("links", request, |m: Message| {
            if let Message::Route(RouteNetlinkMessage::NewLink(m)) = m {
                links.extend(link_name(&m));
            }
        })?;
        Ok((nexthops, addresses, links))
    }

    /// Every nexthop object, or `None` when the kernel has none: before Linux 5.3
    /// RTM_GETNEXTHOP is an unknown message type (EOPNOTSUPP), and EINVAL is taken the same way.
    fn dump_nexthops(&mut self) -> Result<Option<Vec<KernelNexthop>>, Error> {
        let mut nexthops = Vec::new();
        let refused = self.dump(Message::Nexthop(NexthopMessage::dump()), |m: Message| {
            if let Message::Nexthop(n) = m {
                nexthops.extend(kernel_nexthop(&n));
            }
        })?;
        match refused {
            None => Ok(Some(nexthops)),
            Some(e) if matches!(e.raw_os_error(), Some(95 | 22)) => Ok(None),
            Some(source) => Err(Error::Netlink {
                what: "dumping nexthops".into(),
                source,
            }),
        }
    }

    /// A dump the kernel must answer: its refusal is an error.
    fn dump_all<I: NetlinkDeserializable>(
        &mut self,
        what: &str,
        request: RouteNetlinkMessage,
        each: impl FnMut(I),
    ) -> Result<(), Error> {
        match self.dump(Message::Route(request), each)? {
            None => Ok(()),
            Some(source) => Err(Error::Netlink {
                what: format!("dumping {what}"),
                source,
            }),
        }
    }

    /// Sends a dump request and calls `each` on every answer, parsed as `I`, until the dump is
    /// done. Returns the kernel's refusal, if it refused.
    fn dump<I: NetlinkDeserializable>(
        &mut self,
        request: Message,
        mut each: impl FnMut(I),
    ) -> Result<Option<std::io::Error>, Error> {
        let mut m = NetlinkMessage::from(request);
        m.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        self.seq += 1;
        m.header.sequence_number = self.seq;
        let seq = self.seq;
        m.finalize();
        let mut out = vec![0; m.buffer_len()];
        m.serialize(&mut out);
        self.socket
            .send(&out, 0)
            .map_err(socket_error("sending a dump request"))?;
        let mut refused = None;
        while !self.read_answers(|reply| {
            if reply.header.sequence_number != seq {
                return false;
            }
            match reply.payload {
                NetlinkPayload::InnerMessage(m) => {
                    each(m);
                    false
                }
                NetlinkPayload::Error(e) => {
                    refused = e.code.map(|_| e.to_io());
                    true
                }
                NetlinkPayload::Done(_) => true,
                _ => false,
            }
        })? {}
        Ok(refused)
    }

    /// Reads one datagram and calls `each` on its messages until it returns `true` (done).
    fn read_answers<I: NetlinkDeserializable>(
        &mut self,
        mut each: impl FnMut(NetlinkMessage<I>) -> bool,
    ) -> Result<bool, Error> {
        self.buf.clear();
        let n = self
            .socket
            .recv(&mut self.buf, 0)
            .map_err(socket_error("reading the kernel's answers"))?;
        let mut at = 0;
        while at + 16 <= n {
            let reply =
                NetlinkMessage::<I>::deserialize(&self.buf[at..n]).map_err(|e| Error::Netlink {
                    what: "reading the kernel's answers".into(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            at += (reply.header.length as usize).max(16).next_multiple_of(4);
            if each(reply) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A dumped address as a connected subnet; `None` without an address attribute.
fn address(m: &AddressMessage) -> Option<Address> {
    let ip = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    })?;
    let net = IpNet::new(ip, m.header.prefix_len).ok()?;
    Some(Address {
        ifindex: m.header.index,
        net,
    })
}

fn link_name(m: &LinkMessage) -> Option<(u32, String)> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some((m.header.index, name.clone())),
        _ => None,
    })
}

/// `sizeof(struct rtmsg)`, where a route message's attributes begin.
const RTMSG_LEN: usize = 12;
/// RTM_NEWROUTE, and the RTA_* attributes [`DumpedRoute`] reads (include/uapi/linux/rtnetlink.h).
const RTM_NEWROUTE: u16 = 24;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_NH_ID: u16 = 30;

/// A dumped route parsed for the plan only: its header with netlink-packet-route's parser, then
/// the seven attributes the plan reads straight from their bytes (an address, or a u32 in host
/// order; RTA_MULTIPATH only noted), every other one (cache info, metrics, preferred source…)
/// skipped. A `RouteMessage` with a vector of parsed attributes for each of 10,000 routes cost
/// about 1 ms of the route dump. `None` for other messages and families.
struct DumpedRoute(Option<KernelRoute>);

impl NetlinkDeserializable for DumpedRoute {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        if header.message_type != RTM_NEWROUTE {
            return Ok(DumpedRoute(None));
        }
        let h = RouteHeader::parse(payload)?;
        let any: IpAddr = match h.address_family {
            AddressFamily::Inet => std::net::Ipv4Addr::UNSPECIFIED.into(),
            AddressFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
            _ => return Ok(DumpedRoute(None)),
        };
        let (mut dst, mut gateway, mut oif, mut priority, mut nhid) =
            (None, None, None, None, None);
        let (mut table, mut multipath) = (u32::from(h.table), false);
        for nla in NlasIterator::new(&payload[RTMSG_LEN..]) {
            let nla = nla?;
            let value = nla.value();
            match nla.kind() {
                RTA_DST => dst = address_of(value),
                RTA_GATEWAY => gateway = address_of(value),
                RTA_OIF => oif = Some(u32_of(value)?),
                RTA_PRIORITY => priority = Some(u32_of(value)?),
                RTA_TABLE => table = u32_of(value)?,
                RTA_MULTIPATH => multipath = true,
                RTA_NH_ID => nhid = Some(u32_of(value)?),
                _ => {}
            }
        }
        let Ok(dst) = IpNet::new(dst.unwrap_or(any), h.destination_prefix_length) else {
            return Ok(DumpedRoute(None));
        };
        Ok(DumpedRoute(Some(KernelRoute {
            dst,
            gateway,
            oif,
            proto: u8::from(h.protocol),
            table,
            priority,
            tos: h.tos,
            kind: u8::from(h.kind),
            multipath,
            nhid,
        })))
    }
}

/// An address attribute's value: 4 bytes IPv4, 16 IPv6 (as netlink-packet-route reads them).
fn address_of(value: &[u8]) -> Option<IpAddr> {
    match value.len() {
        4 => Some(<[u8; 4]>::try_from(value).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(value).ok()?.into()),
        _ => None,
    }
}

/// A u32 attribute's value, in host byte order.
fn u32_of(value: &[u8]) -> Result<u32, DecodeError> {
    let bytes = <[u8; 4]>::try_from(value)
        .map_err(|_| DecodeError::from(format!("a u32 attribute of {} bytes", value.len())))?;
    Ok(u32::from_ne_bytes(bytes))
}

/// The header and destination every request of ours carries.
fn message(dst: IpNet, table: u32, proto: u8) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = match dst {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    m.header.destination_prefix_length = dst.prefix_len();
    m.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.header.protocol = RouteProtocol::from(proto);
    m.attributes.push(RouteAttribute::Table(table));
    m.attributes
        .push(RouteAttribute::Destination(dst.network().into()));
    m
}

/// A route of route-sync's: naming its node's nexthop object, or plain via the gateway.
fn unicast(r: &Route, owner: Owner) -> RouteMessage {
    let mut m = message(r.dst, owner.table, owner.proto);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    match r.nexthop {
        Some(id) => m.attributes.push(RouteAttribute::NhId(id)),
        None => {
            m.attributes.push(RouteAttribute::Gateway(r.gateway.into()));
            m.attributes.push(RouteAttribute::Oif(r.ifindex));
        }
    }
    m
}

/// How a route is named in an error line.
fn describe(r: &Route) -> String {
    match r.nexthop {
        Some(id) => format!("{} nhid {id} (via {} dev {})", r.dst, r.gateway, r.dev),
        None => format!("{} via {} dev {}", r.dst, r.gateway, r.dev),
    }
}

/// A delete of the dumped route, by its table, prefix, protocol, tos and priority, so it can
/// never hit another protocol's route to the prefix, and by its hop unless `by_prefix`.
///
/// A route naming a nexthop is matched by that id only: the kernel refuses to match its
/// gateway or device (fib_nh_match), which the dump shows for compatibility. Naming the id
/// makes the kernel look it up first (inet_rtm_delroute, `nexthop_find_by_id`, a walk of its
/// tree of every nexthop); with deletes spread over the table those lookups miss the cache
/// and were the largest single cost of a 10,000-route removal, 8% of its samples. So a route
/// that is the only one of ours to its prefix ([`Removed::alone`]) is deleted by prefix alone.
/// Kernels 5.3 to 6.1-rc5 refused those with ESRCH (fixed by "ipv4: Fix route deletion when
/// nexthop info is not specified"): [`Kernel::apply`] then sends the delete again by id.
fn deletion(route: &KernelRoute, by_prefix: bool) -> RouteMessage {
    let mut m = message(route.dst, route.table, route.proto);
    m.header.tos = route.tos;
    // Scope and type left unspecified: they match any.
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unspec;
    if let Some(priority) = route.priority {
        m.attributes.push(RouteAttribute::Priority(priority));
    }
    if let Some(id) = route.nhid {
        if !by_prefix {
            m.attributes.push(RouteAttribute::NhId(id));
        }
        return m;
    }
    if let Some(gateway) = route.gateway {
        m.attributes.push(RouteAttribute::Gateway(gateway.into()));
    }
    if let Some(oif) = route.oif {
        m.attributes.push(RouteAttribute::Oif(oif));
    }
    m
}

/// One request's failure, described for the error line.
#[derive(Debug)]
pub struct Failed {
    pub what: String,
    pub error: std::io::Error,
}

/// What a request asks, kept by reference so its error line is written only if it fails:
/// formatting 20,000 descriptions up front took more of a 10,000-node removal than sending.
#[derive(Clone, Copy)]
enum Subject<'p> {
    NexthopWrite(&'static str, &'p Nexthop),
    RouteWrite(&'static str, &'p Route),
    /// A stale route's delete, by prefix alone or by its hop too (see [`deletion`]).
    RouteDelete {
        removed: &'p Removed,
        by_prefix: bool,
    },
    NexthopDelete(u32),
}

impl Subject<'_> {
    /// How the request is named in an error line.
    fn describe(self, owner: Owner) -> String {
        let Owner { proto, table } = owner;
        match self {
            Subject::NexthopWrite(verb, n) => format!(
                "nexthop {verb} id {} via {} dev {} proto {proto}",
                n.id, n.gateway, n.dev
            ),
            Subject::RouteWrite(verb, r) => {
                format!("{verb} {} proto {proto} table {table}", describe(r))
            }
            Subject::RouteDelete { removed: r, .. } => {
                let mut what = format!("delete {}", r.dst);
                if let Some(id) = r.hop.nexthop {
                    what.push_str(&format!(" nhid {id}"));
                }
                if let Some(g) = r.hop.gateway {
                    what.push_str(&format!(" via {g}"));
                }
                if let Some(d) = &r.hop.dev {
                    what.push_str(&format!(" dev {d}"));
                }
                what.push_str(&format!(" proto {proto} table {table}"));
                what
            }
            Subject::NexthopDelete(id) => format!("nexthop delete id {id}"),
        }
    }
}

/// A request to send and what it asks.
type Request<'p> = (Subject<'p>, NetlinkMessage<Message>);

fn request(subject: Subject<'_>, message: Message, flags: u16) -> Request<'_> {
    let mut m = NetlinkMessage::from(message);
    m.header.flags = NLM_F_REQUEST | flags;
    (subject, m)
}

/// The plan's requests but its nexthop deletes, in the order the kernel must see them:
/// nexthops first (routes name them), then route adds and replaces, then route deletes. The
/// nexthop deletes go last ([`nexthop_deletes`]): deleting a nexthop deletes the routes that
/// still name it. Made a batch at a time as they are sent, so 20,000 of them never sit in
/// memory at once (their first touch was a page fault per 4 KiB).
fn writes_and_route_deletes(plan: &Plan, owner: Owner) -> impl Iterator<Item = Request<'_>> {
    let nh = &plan.nexthops;
    let (create, replace) = (NLM_F_CREATE | NLM_F_EXCL, NLM_F_CREATE | NLM_F_REPLACE);
    let nexthops_added = nh.added.iter();
    let nexthops_added = nexthops_added.map(move |n| nexthop_write("add", n, create, owner));
    let nexthops_replaced = nh.replaced.iter();
    let nexthops_replaced =
        nexthops_replaced.map(move |r| nexthop_write("replace", &r.nexthop, replace, owner));
    let routes_added = plan.added.iter();
    let routes_added = routes_added.map(move |r| route_write("add", r, create, owner));
    let routes_replaced = plan.replaced.iter();
    let routes_replaced =
        routes_replaced.map(move |r| route_write("replace", &r.route, replace, owner));
    // Only a route naming a nexthop has an id lookup to spare; a plain one is named by its hop.
    let by_prefix = |r: &Removed| r.alone && r.route.nhid.is_some();
    let route_deletes = spread(&plan.removed).map(move |r| route_delete(r, by_prefix(r)));
    nexthops_added
        .chain(nexthops_replaced)
        .chain(routes_added)
        .chain(routes_replaced)
        .chain(route_deletes)
}

fn route_delete(removed: &Removed, by_prefix: bool) -> Request<'_> {
    let m = Message::Route(RouteNetlinkMessage::DelRoute(deletion(
        &removed.route,
        by_prefix,
    )));
    request(Subject::RouteDelete { removed, by_prefix }, m, 0)
}

fn nexthop_deletes(plan: &Plan) -> impl Iterator<Item = Request<'_>> {
    plan.nexthops.removed.iter().map(|n| {
        let m = Message::Nexthop(NexthopMessage::delete(n.id));
        request(Subject::NexthopDelete(n.id), m, 0)
    })
}

/// A request the kernel refused, and why.
type Refused<'p> = (Subject<'p>, std::io::Error);

/// ESRCH: no such route.
const ESRCH: i32 = 3;

/// Takes out of `refused` the deletes by prefix refused with ESRCH, to be sent again by hop:
/// the kernels that cannot delete a nexthop's route by prefix say so that way.
fn refused_by_prefix<'p>(refused: &mut Vec<Refused<'p>>) -> Vec<&'p Removed> {
    let mut again = Vec::new();
    refused.retain(|(subject, error)| match subject {
        Subject::RouteDelete {
            removed,
            by_prefix: true,
        } if error.raw_os_error() == Some(ESRCH) => {
            again.push(*removed);
            false
        }
        _ => true,
    });
    again
}

/// `items` in the bit-reversed order of their places (for eight: 0, 4, 2, 6, 1, 5, 3, 7), so
/// that at every moment the ones taken are spread evenly over the list.
///
/// Route deletes go in this order over the plan's stale routes, which are in the table's order
/// (by prefix). Deleted in that order, each node of the kernel's IPv4 trie empties in turn and
/// is halved again and again as it does, each halving resizing every child again
/// (net/ipv4/fib_trie.c, `resize`, `halve`, `replace`), and the freed nodes make it wait for
/// RCU grace periods (`sysctl_fib_sync_mem`): `resize` was 17–24% of the kernel's samples of
/// a 10,000-route removal. Spread, it was 1%, and the removal took 78 ms instead of 89 (means
/// of 40 runs side by side).
fn spread<T>(items: &[T]) -> impl Iterator<Item = &T> {
    let mut places: Vec<u32> = (0..items.len() as u32).collect();
    places.sort_unstable_by_key(|place| place.reverse_bits());
    places.into_iter().map(|place| &items[place as usize])
}

fn nexthop_write<'p>(verb: &'static str, n: &'p Nexthop, flags: u16, owner: Owner) -> Request<'p> {
    let m = Message::Nexthop(NexthopMessage::new(n.id, n.gateway, n.ifindex, owner.proto));
    request(Subject::NexthopWrite(verb, n), m, flags)
}

fn route_write<'p>(verb: &'static str, r: &'p Route, flags: u16, owner: Owner) -> Request<'p> {
    let m = Message::Route(RouteNetlinkMessage::NewRoute(unicast(r, owner)));
    request(Subject::RouteWrite(verb, r), m, flags)
}

fn kernel_nexthop(m: &NexthopMessage) -> Option<KernelNexthop> {
    Some(KernelNexthop {
        id: m.id?,
        proto: m.protocol,
        gateway: m.gateway,
        oif: m.oif,
        special: m.special,
    })
}

/// Requests per datagram. The kernel handles a datagram's messages one after the other under
/// one lock, so a batch costs one `sendmsg` instead of one round trip per request.
const BATCH: usize = 256;

impl Kernel {
    /// Applies the plan: its writes and route deletes, again by hop the route deletes by prefix
    /// the kernel could not do that way, then its nexthop deletes. Returns the requests that
    /// failed (the rest are done).
    pub fn apply(&mut self, plan: &Plan, owner: Owner) -> Result<Vec<Failed>, Error> {
        let mut refused = Vec::new();
        self.send_all(writes_and_route_deletes(plan, owner), &mut refused)?;
        let again = refused_by_prefix(&mut refused);
        self.send_all(
            again.into_iter().map(|r| route_delete(r, false)),
            &mut refused,
        )?;
        self.send_all(nexthop_deletes(plan), &mut refused)?;
        Ok(refused
            .into_iter()
            .map(|(subject, error)| Failed {
                what: subject.describe(owner),
                error,
            })
            .collect())
    }

    /// Sends `requests` in batches of [`BATCH`], collecting every refusal into `refused`.
    fn send_all<'p>(
        &mut self,
        mut requests: impl Iterator<Item = Request<'p>>,
        refused: &mut Vec<Refused<'p>>,
    ) -> Result<(), Error> {
        let mut out = Vec::with_capacity(BATCH * 128);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            batch.clear();
            batch.extend(requests.by_ref().take(BATCH));
            if batch.is_empty() {
                return Ok(());
            }
            let first_seq = self.seq + 1;
            self.seq += batch.len() as u32;
            number_batch(&mut batch, first_seq);
            self.send_batch(&batch, &mut out)?;
            self.collect_refusals(&batch, first_seq, refused)?;
        }
    }

    /// Serializes a numbered batch into one datagram and sends it.
    fn send_batch(&mut self, batch: &[Request], out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        for (_, m) in batch {
            let at = out.len();
            out.resize(at + m.buffer_len(), 0);
            m.serialize(&mut out[at..]);
        }
        self.socket
            .send(out, 0)
            .map_err(socket_error("sending route requests"))?;
        Ok(())
    }

    /// Reads the answers to a batch up to its last request's ack, keeping each error with the
    /// request it names by sequence number.
    ///
    /// Only the last request asks for an ack: the kernel answers a failing request whatever its
    /// flags, in order, so when the last ack arrives every earlier request of the batch has
    /// been handled. A batch of successes thus costs one `sendmsg` and one `recvmsg`.
    fn collect_refusals<'p>(
        &mut self,
        batch: &[Request<'p>],
        first_seq: u32,
        refused: &mut Vec<Refused<'p>>,
    ) -> Result<(), Error> {
        let last_seq = first_seq + batch.len() as u32 - 1;
        while !self.read_answers(|reply: NetlinkMessage<Message>| {
            let seq = reply.header.sequence_number;
            let NetlinkPayload::Error(e) = &reply.payload else {
                return false;
            };
            if e.code.is_some() && (first_seq..=last_seq).contains(&seq) {
                let (subject, _) = &batch[(seq - first_seq) as usize];
                refused.push((*subject, e.to_io()));
            }
            seq == last_seq
        })? {}
        Ok(())
    }
}

/// Gives a batch's requests consecutive sequence numbers from `first_seq`, the last one asking
/// for an ack, and fixes their lengths.
fn number_batch(batch: &mut [Request], first_seq: u32) {
    let last = batch.len() - 1;
    for (i, (_, m)) in batch.iter_mut().enumerate() {
        m.header.sequence_number = first_seq + i as u32;
        if i == last {
            m.header.flags |= NLM_F_ACK;
        }
        m.finalize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_every_item_once_evenly_over_the_list() {
        let items: Vec<u32> = (0..8).collect();
        let order: Vec<u32> = spread(&items).copied().collect();
        assert_eq!(order, [0, 4, 2, 6, 1, 5, 3, 7]);
        for n in [0, 1, 2, 3, 1000, 10_001] {
            let items: Vec<u32> = (0..n).collect();
            let mut order: Vec<u32> = spread(&items).copied().collect();
            // The first half taken holds no two neighbours; every item comes once.
            let first: Vec<u32> = order[..(n as usize) / 2].to_vec();
            assert!(first.iter().all(|i| !first.contains(&(i + 1))), "{n}");
            order.sort_unstable();
            assert_eq!(order, items, "{n}");
        }
    }
    use rtnetlink::packet_core::NetlinkSerializable;
    use rtnetlink::packet_route::route::{RouteAddress, RouteNextHop, RouteVia};

    /// `m` as the kernel's dump sends it, read back by [`DumpedRoute`].
    fn dumped(m: RouteMessage) -> Option<KernelRoute> {
        let message = RouteNetlinkMessage::NewRoute(m);
        let mut payload = vec![0; message.buffer_len()];
        message.serialize(&mut payload);
        let mut header = NetlinkHeader::default();
        header.message_type = message.message_type();
        DumpedRoute::deserialize(&header, &payload).unwrap().0
    }

    #[test]
    fn dumped_routes_read_as_netlink_packet_route_writes_them() {
        let dst: IpNet = "10.200.7.0/24".parse().unwrap();
        let mut m = message(dst, 1000, 200);
        m.header.kind = RouteType::Unicast;
        m.attributes.extend([
            RouteAttribute::Gateway(RouteAddress::Inet("10.240.0.7".parse().unwrap())),
            RouteAttribute::Oif(3),
            RouteAttribute::Priority(50),
            RouteAttribute::NhId(0xC800_0007),
        ]);
        let r = dumped(m).unwrap();
        assert_eq!(
            r,
            KernelRoute {
                dst,
                gateway: Some("10.240.0.7".parse().unwrap()),
                oif: Some(3),
                proto: 200,
                table: 1000,
                priority: Some(50),
                tos: 0,
                kind: crate::plan::RTN_UNICAST,
                multipath: false,
                nhid: Some(0xC800_0007),
            }
        );
        let v6: IpNet = "fd00:10:200:7::/64".parse().unwrap();
        let mut m = message(v6, 254, 3);
        let mut hop = RouteNextHop::default();
        hop.attributes.push(RouteAttribute::Via(RouteVia::Inet(
            "10.240.0.8".parse().unwrap(),
        )));
        m.attributes.push(RouteAttribute::MultiPath(vec![hop]));
        let r = dumped(m).unwrap();
        assert_eq!((r.dst, r.table, r.proto, r.multipath), (v6, 254, 3, true));
        assert_eq!((r.gateway, r.oif, r.nhid), (None, None, None));
    }

    fn removed(dst: &str, nhid: Option<u32>) -> Removed {
        let dst: IpNet = dst.parse().unwrap();
        let route = KernelRoute {
            dst,
            gateway: Some("10.240.0.7".parse().unwrap()),
            oif: Some(3),
            proto: 200,
            table: 254,
            priority: Some(50),
            tos: 0,
            kind: crate::plan::RTN_UNICAST,
            multipath: false,
            nhid,
        };
        let hop = crate::plan::Hop {
            gateway: route.gateway,
            dev: Some("br0".into()),
            nexthop: nhid,
        };
        Removed {
            dst,
            hop,
            route,
            alone: true,
        }
    }

    #[test]
    fn a_delete_names_table_prefix_protocol_and_priority_and_its_hop_unless_by_prefix() {
        let r = removed("10.200.7.0/24", Some(0xC800_0007)).route;
        let common = [
            RouteAttribute::Table(254),
            RouteAttribute::Destination(RouteAddress::Inet("10.200.7.0".parse().unwrap())),
            RouteAttribute::Priority(50),
        ];
        let by_id = deletion(&r, false);
        assert_eq!(
            (by_id.header.protocol, by_id.header.table),
            (200.into(), 254)
        );
        let mut with_id = common.to_vec();
        with_id.push(RouteAttribute::NhId(0xC800_0007));
        assert_eq!(by_id.attributes, with_id);
        assert_eq!(deletion(&r, true).attributes, common);
        // A plain route is matched by its gateway and device either way.
        let plain = removed("10.200.8.0/24", None).route;
        let hop = [
            RouteAttribute::Gateway(RouteAddress::Inet("10.240.0.7".parse().unwrap())),
            RouteAttribute::Oif(3),
        ];
        assert_eq!(deletion(&plain, true).attributes[3..], hop);
    }

    #[test]
    fn only_deletes_by_prefix_refused_with_esrch_are_sent_again() {
        let (a, b) = (
            removed("10.200.1.0/24", Some(1)),
            removed("10.200.2.0/24", Some(2)),
        );
        let error = |code| std::io::Error::from_raw_os_error(code);
        let by_prefix = |removed| Subject::RouteDelete {
            removed,
            by_prefix: true,
        };
        let by_id = Subject::RouteDelete {
            removed: &b,
            by_prefix: false,
        };
        let mut refused = vec![
            (by_prefix(&a), error(ESRCH)),
            (by_prefix(&b), error(1)),
            (by_id, error(ESRCH)),
            (Subject::NexthopDelete(9), error(ESRCH)),
        ];
        let again = refused_by_prefix(&mut refused);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].dst, a.dst);
        let left: Vec<Option<i32>> = refused.iter().map(|(_, e)| e.raw_os_error()).collect();
        assert_eq!(left, [Some(1), Some(ESRCH), Some(ESRCH)]);
    }
}
