//! The kernel side: one dump each of routes, addresses and links through rtnetlink, and the
//! plan's adds, replaces and deletes built as netlink-packet-route messages and sent many to a
//! datagram on a plain netlink socket, answers collected by sequence number.
//!
//! Everything here speaks the plain types of [`crate::plan`]; nothing else in route-sync knows
//! netlink.

use std::net::IpAddr;

use futures::stream::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
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
use crate::plan::{Address, KernelRoute, Owner, Plan, Snapshot};

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
    let routes = handle
        .route()
        .get(request)
        .execute()
        .try_filter_map(|m| async move { Ok(kernel_route(&m).filter(|r| r.table == table)) })
        .try_collect::<Vec<_>>()
        .await
        .map_err(dump_error("routes"))?;
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
    for attribute in &m.attributes {
        match attribute {
            RouteAttribute::Destination(a) => dst = ip_of(a),
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => priority = Some(*p),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::MultiPath(_) => multipath = true,
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

fn unicast(dst: IpNet, gateway: IpAddr, ifindex: u32, owner: Owner) -> RouteMessage {
    let mut m = message(dst, owner.table, owner.proto);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::Gateway(gateway.into()));
    m.attributes.push(RouteAttribute::Oif(ifindex));
    m
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

/// Route requests per datagram. The kernel handles a datagram's messages one after the other
/// under one lock, so a batch costs one `sendmsg` instead of one round trip per route.
const BATCH: usize = 256;

/// Sends the plan's requests in batches and collects every answer; returns those that failed
/// (the rest are done).
///
/// Within a batch only the last request asks for an ack: the kernel answers a failing request
/// whatever its flags, in order, so when the last ack arrives every earlier request of the batch
/// has been handled, and each error names its request by sequence number. A batch of successes
/// thus costs one `sendmsg` and one `recvmsg`.
pub fn apply(plan: &Plan, owner: Owner) -> Result<Vec<Failed>, Error> {
    let mut requests: Vec<(String, NetlinkMessage<RouteNetlinkMessage>)> =
        Vec::with_capacity(plan.changes());
    for r in &plan.added {
        let mut m = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(unicast(
            r.dst, r.gateway, r.ifindex, owner,
        )));
        m.header.flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
        requests.push((format!("add {} via {} dev {}", r.dst, r.gateway, r.dev), m));
    }
    for r in plan.replaced.iter().map(|r| &r.route) {
        let mut m = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(unicast(
            r.dst, r.gateway, r.ifindex, owner,
        )));
        m.header.flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
        requests.push((
            format!("replace {} via {} dev {}", r.dst, r.gateway, r.dev),
            m,
        ));
    }
    for r in &plan.removed {
        let mut m = NetlinkMessage::from(RouteNetlinkMessage::DelRoute(deletion(&r.route)));
        m.header.flags = NLM_F_REQUEST;
        let what = format!(
            "delete {}{}{}",
            r.dst,
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
        requests.push((what, m));
    }

    let socket_error = |what: &str| {
        let what = what.to_string();
        move |source| Error::Netlink {
            what: what.clone(),
            source,
        }
    };
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
        'batch: loop {
            buf.clear();
            let n = socket
                .recv(&mut buf, 0)
                .map_err(socket_error("reading the kernel's answers"))?;
            let mut at = 0;
            while at + 16 <= n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[at..n])
                    .map_err(|e| Error::Netlink {
                        what: "reading the kernel's answers".into(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                at += (reply.header.length as usize).max(16).next_multiple_of(4);
                let seq = reply.header.sequence_number;
                if let NetlinkPayload::Error(e) = &reply.payload {
                    if e.code.is_some() && (first_seq..=last_seq).contains(&seq) {
                        let (what, _) = &batch[(seq - first_seq) as usize];
                        failed.push(Failed {
                            what: format!("{what} proto {} table {}", owner.proto, owner.table),
                            error: e.to_io(),
                        });
                    }
                    if seq == last_seq {
                        break 'batch;
                    }
                }
            }
        }
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
