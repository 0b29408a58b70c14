//! The kernel side: one dump each of routes, addresses and links through rtnetlink and of
//! nexthops on a plain socket ([`crate::nhmsg`]), and the plan's nexthop and route requests
//! built as netlink messages and sent many to a datagram on a plain netlink socket, answers
//! collected by sequence number.
//!
//! Everything here speaks the plain types of [`crate::plan`]; nothing else in route-sync knows
//! netlink.

use std::net::IpAddr;

use futures::stream::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::Handle;

use crate::error::Error;
use crate::nexthops::{KernelNexthop, Nexthop};
use crate::nhmsg::{Message, NexthopMessage};
use crate::plan::{Address, KernelRoute, Owner, Plan, Route, Snapshot};

/// Receive buffer asked for, so a dump of many routes and a window of acks fit.
const RECV_BUFFER: usize = 4 << 20;

/// Opens a netlink route socket and spawns its connection on the current tokio runtime.
pub fn connect() -> Result<Handle, Error> {
    let (mut connection, handle, _) =
        rtnetlink::new_connection().map_err(|source| Error::Netlink {
            what: "cannot open a netlink route socket".into(),
            source,
        })?;
    // Best effort: a smaller buffer only means fewer routes per read.
    let _ = connection
        .socket_mut()
        .socket_mut()
        .set_rx_buf_sz(RECV_BUFFER);
    tokio::spawn(connection);
    Ok(handle)
}

fn dump_error(what: &str) -> impl Fn(rtnetlink::Error) -> Error + '_ {
    move |e| Error::Netlink {
        what: format!("dumping {what}"),
        source: to_io(&e),
    }
}

/// The kernel's routes in `table` (both families, every protocol), its addresses and links.
pub async fn snapshot(handle: &Handle, table: u32) -> Result<Snapshot, Error> {
    // One dump at a time, each sent only when the last is done: the kernel refuses a second
    // dump on a socket while one runs (EBUSY), and `execute` sends its request at once.
    let mut request = RouteMessage::default();
    request.header.address_family = AddressFamily::Unspec;
    let all_routes = handle
        .route()
        .get(request)
        .execute()
        .try_filter_map(|m| async move { Ok(kernel_route(&m)) })
        .try_collect::<Vec<_>>()
        .await
        .map_err(dump_error("routes"))?;
    let (routes, elsewhere): (Vec<KernelRoute>, Vec<KernelRoute>) =
        all_routes.into_iter().partition(|r| r.table == table);
    let nexthops_used_elsewhere = elsewhere.iter().filter_map(|r| r.nhid).collect();
    // On route-sync's own socket: netlink-packet-route cannot parse nexthop messages.
    let nexthops = dump_nexthops()?;
    let addresses = handle
        .address()
        .get()
        .execute()
        .try_filter_map(|m| async move {
            let ip = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            Ok(ip
                .and_then(|ip| IpNet::new(ip, m.header.prefix_len).ok())
                .map(|net| Address {
                    ifindex: m.header.index,
                    net,
                }))
        })
        .try_collect::<Vec<_>>()
        .await
        .map_err(dump_error("addresses"))?;
    let links = handle
        .link()
        .get()
        .execute()
        .try_filter_map(|m| async move {
            Ok(m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(name) => Some((m.header.index, name.clone())),
                _ => None,
            }))
        })
        .try_collect()
        .await
        .map_err(dump_error("links"))?;
    Ok(Snapshot {
        routes,
        nexthops,
        nexthops_used_elsewhere,
        addresses,
        links,
    })
}

/// A dumped route in the plan's terms; `None` for families other than IPv4 and IPv6.
fn kernel_route(m: &RouteMessage) -> Option<KernelRoute> {
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    let mut priority = None;
    let mut table = u32::from(m.header.table);
    let mut multipath = false;
    let mut nhid = None;
    for attribute in &m.attributes {
        match attribute {
            RouteAttribute::Destination(a) => dst = ip_of(a),
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => priority = Some(*p),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::MultiPath(_) => multipath = true,
            RouteAttribute::NhId(id) => nhid = Some(*id),
            _ => {}
        }
    }
    let any: IpAddr = match m.header.address_family {
        AddressFamily::Inet => std::net::Ipv4Addr::UNSPECIFIED.into(),
        AddressFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
        _ => return None,
    };
    let dst = IpNet::new(dst.unwrap_or(any), m.header.destination_prefix_length).ok()?;
    Some(KernelRoute {
        dst,
        gateway,
        oif,
        proto: u8::from(m.header.protocol),
        table,
        priority,
        tos: m.header.tos,
        kind: u8::from(m.header.kind),
        multipath,
        nhid,
    })
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(a) => Some((*a).into()),
        RouteAddress::Inet6(a) => Some((*a).into()),
        _ => None,
    }
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

/// A delete that matches exactly the dumped route: its protocol, priority, gateway and device,
/// so it can never hit another protocol's route for the same prefix.
fn deletion(route: &KernelRoute) -> RouteMessage {
    let mut m = message(route.dst, route.table, route.proto);
    m.header.tos = route.tos;
    // Scope and type left unspecified: they match any.
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unspec;
    if let Some(priority) = route.priority {
        m.attributes.push(RouteAttribute::Priority(priority));
    }
    // A route naming a nexthop matches a delete by that id only: the kernel refuses to match
    // its gateway or device (fib_nh_match), which the dump shows for compatibility.
    if let Some(id) = route.nhid {
        m.attributes.push(RouteAttribute::NhId(id));
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

/// A request to send and how its failure is named.
type Request = (String, NetlinkMessage<Message>);

fn request(what: String, message: Message, flags: u16) -> Request {
    let mut m = NetlinkMessage::from(message);
    m.header.flags = NLM_F_REQUEST | flags;
    (what, m)
}

/// The plan's requests in the order the kernel must see them: nexthops first (routes name
/// them), then route adds and replaces, route deletes, and nexthop deletes last (deleting a
/// nexthop deletes the routes that still name it).
fn requests(plan: &Plan, owner: Owner) -> Vec<Request> {
    let nh = &plan.nexthops;
    let mut out: Vec<Request> = Vec::with_capacity(plan.changes());
    let (proto, table) = (owner.proto, owner.table);
    let new_nexthop = |n: &Nexthop| {
        Message::Nexthop(NexthopMessage::new(n.id, n.gateway, n.ifindex, owner.proto))
    };
    for n in &nh.added {
        let what = format!(
            "nexthop add id {} via {} dev {} proto {proto}",
            n.id, n.gateway, n.dev
        );
        out.push(request(what, new_nexthop(n), NLM_F_CREATE | NLM_F_EXCL));
    }
    for n in nh.replaced.iter().map(|r| &r.nexthop) {
        let what = format!(
            "nexthop replace id {} via {} dev {} proto {proto}",
            n.id, n.gateway, n.dev
        );
        out.push(request(what, new_nexthop(n), NLM_F_CREATE | NLM_F_REPLACE));
    }
    for r in &plan.added {
        let m = Message::Route(RouteNetlinkMessage::NewRoute(unicast(r, owner)));
        let what = format!("add {} proto {proto} table {table}", describe(r));
        out.push(request(what, m, NLM_F_CREATE | NLM_F_EXCL));
    }
    for r in plan.replaced.iter().map(|r| &r.route) {
        let m = Message::Route(RouteNetlinkMessage::NewRoute(unicast(r, owner)));
        let what = format!("replace {} proto {proto} table {table}", describe(r));
        out.push(request(what, m, NLM_F_CREATE | NLM_F_REPLACE));
    }
    for r in &plan.removed {
        let m = Message::Route(RouteNetlinkMessage::DelRoute(deletion(&r.route)));
        let what = format!(
            "delete {}{}{}{} proto {proto} table {table}",
            r.dst,
            r.hop
                .nexthop
                .map(|id| format!(" nhid {id}"))
                .unwrap_or_default(),
            r.hop
                .gateway
                .map(|g| format!(" via {g}"))
                .unwrap_or_default(),
            r.hop
                .dev
                .as_ref()
                .map(|d| format!(" dev {d}"))
                .unwrap_or_default()
        );
        out.push(request(what, m, 0));
    }
    for n in &nh.removed {
        let m = Message::Nexthop(NexthopMessage::delete(n.id));
        out.push(request(format!("nexthop delete id {}", n.id), m, 0));
    }
    out
}

fn socket_error(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Netlink {
        what: what.to_string(),
        source,
    }
}

/// A plain netlink route socket connected to the kernel, for batches and the nexthop dump.
fn raw_socket() -> Result<Socket, Error> {
    let mut socket =
        Socket::new(NETLINK_ROUTE).map_err(socket_error("cannot open a netlink route socket"))?;
    socket
        .bind_auto()
        .map_err(socket_error("cannot bind a netlink route socket"))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(socket_error("cannot connect to the kernel's netlink"))?;
    // Errors then carry only the failed request's header, not all of it.
    let _ = socket.set_cap_ack(true);
    let _ = socket.set_rx_buf_sz(RECV_BUFFER);
    Ok(socket)
}

/// Reads one datagram and calls `each` on its messages until it returns `true` (done).
fn read_answers(
    socket: &Socket,
    buf: &mut Vec<u8>,
    mut each: impl FnMut(NetlinkMessage<Message>) -> bool,
) -> Result<bool, Error> {
    buf.clear();
    let n = socket
        .recv(buf, 0)
        .map_err(socket_error("reading the kernel's answers"))?;
    let mut at = 0;
    while at + 16 <= n {
        let reply =
            NetlinkMessage::<Message>::deserialize(&buf[at..n]).map_err(|e| Error::Netlink {
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

/// Every nexthop object, or `None` when the kernel has none: before Linux 5.3 RTM_GETNEXTHOP
/// is an unknown message type (EOPNOTSUPP), and EINVAL is taken the same way.
fn dump_nexthops() -> Result<Option<Vec<KernelNexthop>>, Error> {
    let socket = raw_socket()?;
    let mut m = NetlinkMessage::from(Message::Nexthop(NexthopMessage::dump()));
    m.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    m.header.sequence_number = 1;
    m.finalize();
    let mut out = vec![0; m.buffer_len()];
    m.serialize(&mut out);
    socket
        .send(&out, 0)
        .map_err(socket_error("dumping nexthops"))?;
    let mut nexthops = Vec::new();
    let mut refused = None;
    let mut buf = Vec::with_capacity(64 * 1024);
    while !read_answers(&socket, &mut buf, |reply| match reply.payload {
        NetlinkPayload::InnerMessage(Message::Nexthop(n)) => {
            nexthops.extend(kernel_nexthop(&n));
            false
        }
        NetlinkPayload::Error(e) => {
            refused = e.code.map(|_| e.to_io());
            true
        }
        NetlinkPayload::Done(_) => true,
        _ => false,
    })? {}
    match refused {
        None => Ok(Some(nexthops)),
        Some(e) if matches!(e.raw_os_error(), Some(95 | 22)) => Ok(None),
        Some(source) => Err(Error::Netlink {
            what: "dumping nexthops".into(),
            source,
        }),
    }
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

/// Sends the plan's requests in batches and collects every answer; returns those that failed
/// (the rest are done).
///
/// Within a batch only the last request asks for an ack: the kernel answers a failing request
/// whatever its flags, in order, so when the last ack arrives every earlier request of the batch
/// has been handled, and each error names its request by sequence number. A batch of successes
/// thus costs one `sendmsg` and one `recvmsg`.
pub fn apply(plan: &Plan, owner: Owner) -> Result<Vec<Failed>, Error> {
    let mut requests = requests(plan, owner);
    let socket = raw_socket()?;
    let mut failed = Vec::new();
    let mut out = Vec::with_capacity(BATCH * 128);
    let mut buf = Vec::with_capacity(64 * 1024);
    for (b, batch) in requests.chunks_mut(BATCH).enumerate() {
        out.clear();
        let first_seq = (b * BATCH + 1) as u32;
        let last = batch.len() - 1;
        for (i, (_, m)) in batch.iter_mut().enumerate() {
            m.header.sequence_number = first_seq + i as u32;
            if i == last {
                m.header.flags |= NLM_F_ACK;
            }
            m.finalize();
            let at = out.len();
            out.resize(at + m.buffer_len(), 0);
            m.serialize(&mut out[at..]);
        }
        socket
            .send(&out, 0)
            .map_err(socket_error("sending route requests"))?;
        let last_seq = first_seq + last as u32;
        while !read_answers(&socket, &mut buf, |reply| {
            let seq = reply.header.sequence_number;
            let NetlinkPayload::Error(e) = &reply.payload else {
                return false;
            };
            if e.code.is_some() && (first_seq..=last_seq).contains(&seq) {
                let (what, _) = &batch[(seq - first_seq) as usize];
                failed.push(Failed {
                    what: what.clone(),
                    error: e.to_io(),
                });
            }
            seq == last_seq
        })? {}
    }
    Ok(failed)
}

/// The errno of a netlink error as an `io::Error` ("File exists (os error 17)").
fn to_io(e: &rtnetlink::Error) -> std::io::Error {
    match e {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => std::io::Error::other(other.to_string()),
    }
}
