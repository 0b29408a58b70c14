//! The API VIP: keepalived (VRRP) on every node that may hold it, and haproxy in front of every
//! controller's apiserver on those that are not controllers themselves (docs/sources.md#seed-003's two ways).
//! haproxy.service and keepalived.service are Debian's; mkunits writes their configs.

use std::net::IpAddr;

use hardway::doc::Node;
use hardway::{Error, Role};

use super::{Builder, Ctx};
use crate::layout;

/// Debian's units, which read their configuration at a fixed path they do not name: each config
/// carries a `restart` entry, or node-push would install a new one and leave the old running.
const HAPROXY_UNIT: &str = "haproxy.service";
const KEEPALIVED_UNIT: &str = "keepalived.service";

pub fn render(ctx: &Ctx, node: &Node, b: &mut Builder) -> Result<(), Error> {
    let vip = ctx
        .doc
        .cluster
        .api
        .vip
        .expect("only nodes holding a VIP get here");
    let tracked = if ctx.runs_haproxy(node) {
        b.config_of(
            HAPROXY_UNIT,
            layout::HAPROXY_CONFIG,
            haproxy_config(ctx, vip)?.into_bytes(),
        );
        b.services.push(HAPROXY_UNIT.into());
        "haproxy"
    } else {
        "kube-apiserver"
    };
    b.config_of(
        KEEPALIVED_UNIT,
        layout::KEEPALIVED_CONFIG,
        keepalived_config(ctx, node, vip, tracked).into_bytes(),
    );
    b.services.push(KEEPALIVED_UNIT.into());
    Ok(())
}

fn socket(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// TCP passthrough on the API port to every controller, each checked with a TLS GET /healthz
/// (readable without credentials), so a dead apiserver leaves the rotation within seconds.
fn haproxy_config(ctx: &Ctx, vip: IpAddr) -> Result<String, Error> {
    let port = ctx.doc.cluster.api.port;
    let mut text = format!(
        "# Written by mkunits from the cluster document.\n\
         global\n\
         \x20 log /dev/log local0\n\
         \x20 chroot /var/lib/haproxy\n\
         \x20 user haproxy\n\
         \x20 group haproxy\n\
         \x20 daemon\n\
         \x20 maxconn 4000\n\
         \n\
         defaults\n\
         \x20 log global\n\
         \x20 mode tcp\n\
         \x20 option tcplog\n\
         \x20 option dontlognull\n\
         \x20 timeout connect 5s\n\
         \x20 timeout client 1h\n\
         \x20 timeout server 1h\n\
         \n\
         frontend kube-apiserver\n\
         \x20 bind {}\n\
         \x20 default_backend kube-apiserver\n\
         \n\
         backend kube-apiserver\n\
         \x20 balance roundrobin\n\
         \x20 option httpchk GET /healthz\n\
         \x20 http-check expect status 200\n\
         \x20 default-server check check-ssl verify none inter 2s fall 3 rise 2\n",
        socket(vip, port)
    );
    for controller in ctx.doc.nodes_with(Role::Controller) {
        text.push_str(&format!(
            "  server {} {}\n",
            controller.name,
            socket(ctx.primary_ip(controller)?, port)
        ));
    }
    Ok(text)
}

/// One VRRP instance for the VIP; the first holder in document order has the highest priority.
/// The holder loses the VIP when the process that answers on it (haproxy or the apiserver) dies.
fn keepalived_config(ctx: &Ctx, node: &Node, vip: IpAddr, tracked: &str) -> String {
    let position = ctx
        .vip_holders
        .iter()
        .position(|n| n.name == node.name)
        .unwrap_or(0);
    let priority = 200u32.saturating_sub(10 * position as u32).max(1);
    let prefix = ctx
        .doc
        .cluster
        .networks
        .node
        .iter()
        .find(|n| n.contains(&vip))
        .map(|n| n.prefix_len())
        .unwrap_or(if vip.is_ipv6() { 128 } else { 32 });
    format!(
        "# Written by mkunits from the cluster document.\n\
         global_defs {{\n\
         \x20 router_id {name}\n\
         \x20 max_auto_priority\n\
         }}\n\
         \n\
         vrrp_track_process track_{tracked_id} {{\n\
         \x20 process {tracked}\n\
         \x20 weight -100\n\
         \x20 delay 2\n\
         }}\n\
         \n\
         vrrp_instance {cluster_id}_api {{\n\
         \x20 state BACKUP\n\
         \x20 interface {iface}\n\
         \x20 virtual_router_id {vrid}\n\
         \x20 priority {priority}\n\
         \x20 advert_int 1\n\
         \x20 virtual_ipaddress {{\n\
         \x20   {vip}/{prefix}\n\
         \x20 }}\n\
         \x20 track_process {{\n\
         \x20   track_{tracked_id}\n\
         \x20 }}\n\
         }}\n",
        name = node.name,
        tracked_id = tracked.replace('-', "_"),
        cluster_id = ctx.doc.cluster.name.replace('-', "_"),
        iface = ctx.opts.vrrp_interface,
        vrid = virtual_router_id(&ctx.doc.cluster.name),
        vip = vip,
    )
}

/// 1–255 from the cluster's name, so two clusters on one network do not share a VRRP group.
fn virtual_router_id(cluster: &str) -> u8 {
    let digest = hardway::fsutil::sha256_hex(cluster.as_bytes());
    let byte = u8::from_str_radix(&digest[..2], 16).expect("hex");
    byte.max(1)
}
