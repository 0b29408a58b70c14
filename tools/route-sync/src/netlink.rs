//! The kernel side, through rtnetlink: one dump each of routes, addresses and links, and the
//! plan's adds, replaces and deletes sent with many requests in flight on one socket.
//!
//! Everything here speaks the plain types of [`crate::plan`]; nothing else in route-sync knows
//! netlink.

use std::net::IpAddr;

use futures::stream::{self, StreamExt, TryStreamExt};
use futures::FutureExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::sys::AsyncSocket;
use rtnetlink::Handle;

use crate::error::Error;
use crate::plan::{Address, KernelRoute, Owner, Plan, Snapshot};

/// How many route requests are in flight at once. The kernel answers each with an ack on our
/// socket; far more than this and the acks could overrun its receive buffer.
const IN_FLIGHT: usize = 256;

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

/// Sends the plan's requests, up to [`IN_FLIGHT`] at once, and collects every ack. Returns the
/// requests that failed; the others are done.
pub async fn apply(handle: &Handle, plan: &Plan, owner: Owner) -> Vec<Failed> {
    let routes = handle.route();
    let adds = plan.added.iter().map(|r| {
        let request = routes.add(unicast(r.dst, r.gateway, r.ifindex, owner));
        let what = format!("add {} via {} dev {}", r.dst, r.gateway, r.dev);
        async move { (what, request.execute().await) }.boxed()
    });
    let replaces = plan.replaced.iter().map(|r| {
        let r = &r.route;
        let request = routes
            .add(unicast(r.dst, r.gateway, r.ifindex, owner))
            .replace();
        let what = format!("replace {} via {} dev {}", r.dst, r.gateway, r.dev);
        async move { (what, request.execute().await) }.boxed()
    });
    let deletes = plan.removed.iter().map(|r| {
        let request = routes.del(deletion(&r.route));
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
        async move { (what, request.execute().await) }.boxed()
    });
    stream::iter(adds.chain(replaces).chain(deletes))
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|(what, result)| async move {
            result.err().map(|e| Failed {
                what: format!("{what} proto {} table {}", owner.proto, owner.table),
                error: to_io(&e),
            })
        })
        .collect()
        .await
}

/// The errno of a netlink error as an `io::Error` ("File exists (os error 17)").
fn to_io(e: &rtnetlink::Error) -> std::io::Error {
    match e {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => std::io::Error::other(other.to_string()),
    }
}
