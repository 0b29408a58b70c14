//! `mkunits ports`: every port each node's components listen on and who must reach it (seed
//! 001's tables), derived from the same decisions as the units, so a firewall can be opened
//! instead of disabled.

use hardway::doc::{Document, Node, PodNetwork};
use hardway::{Error, Role};
use serde::Serialize;

use crate::render::{self, control, etcd, flannel, worker, Ctx};
use crate::Options;

/// One listening socket (or protocol, for VRRP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub node: String,
    pub component: String,
    /// tcp, udp, or vrrp (IP protocol 112, no port).
    pub protocol: &'static str,
    /// A number, a range (`30000-32767`), or `-`.
    pub port: String,
    /// The address it listens on: an IP, `*` for every address, 127.0.0.1 for the node only.
    pub address: String,
    /// Who must reach it.
    pub from: String,
}

pub fn ports(doc: &Document, opts: &Options) -> Result<Vec<Port>, Error> {
    // The same checks as rendering: a table for a document mkunits would refuse says nothing.
    render::render(doc, opts)?;
    let ctx = Ctx::new(doc, opts)?;
    let mut rows = Vec::new();
    for node in &doc.nodes {
        let mut node_rows = NodeRows {
            node: &node.name,
            ip: ctx.primary_ip(node)?.to_string(),
            rows: &mut rows,
        };
        if node.has_role(Role::Etcd) {
            etcd_ports(&ctx, &mut node_rows);
        }
        if node.has_role(Role::Controller) {
            control_plane_ports(&ctx, &mut node_rows);
        }
        if node.has_role(Role::Worker) {
            worker_ports(&ctx, &mut node_rows);
        }
        if ctx.holds_vip(node) {
            vip_ports(&ctx, node, &mut node_rows);
        }
    }
    Ok(rows)
}

/// The rows of one node, as its roles add them.
struct NodeRows<'a> {
    node: &'a str,
    /// The node's primary address, where its node-facing sockets listen.
    ip: String,
    rows: &'a mut Vec<Port>,
}

impl NodeRows<'_> {
    fn add(
        &mut self,
        component: &str,
        protocol: &'static str,
        port: &str,
        address: &str,
        from: &str,
    ) {
        self.rows.push(Port {
            node: self.node.to_string(),
            component: component.into(),
            protocol,
            port: port.into(),
            address: address.into(),
            from: from.into(),
        })
    }
}

fn etcd_ports(ctx: &Ctx, rows: &mut NodeRows) {
    let clients = if ctx.pod_network == PodNetwork::Flannel {
        "controllers (kube-apiserver), workers (flanneld), etcd-check"
    } else {
        "controllers (kube-apiserver), etcd-check"
    };
    let ip = rows.ip.clone();
    let client = etcd::CLIENT_PORT.to_string();
    rows.add("etcd", "tcp", &client, &format!("{ip},127.0.0.1"), clients);
    let peer = etcd::PEER_PORT.to_string();
    rows.add("etcd", "tcp", &peer, &ip, "other etcd members (peers)");
    let metrics = etcd::METRICS_PORT.to_string();
    rows.add("etcd", "tcp", &metrics, "127.0.0.1", "this node (metrics)");
}

fn control_plane_ports(ctx: &Ctx, rows: &mut NodeRows) {
    rows.add(
        "kube-apiserver",
        "tcp",
        &ctx.doc.cluster.api.port.to_string(),
        "*",
        "everyone using the API: workers, load balancers, admins",
    );
    rows.add(
        "kube-controller-manager",
        "tcp",
        &control::CONTROLLER_MANAGER_PORT.to_string(),
        "*",
        "monitoring (HTTPS, authenticated)",
    );
    rows.add(
        "kube-scheduler",
        "tcp",
        &control::SCHEDULER_PORT.to_string(),
        "*",
        "monitoring (HTTPS, authenticated)",
    );
}

fn worker_ports(ctx: &Ctx, rows: &mut NodeRows) {
    let kubelet = worker::KUBELET_PORT.to_string();
    rows.add(
        "kubelet",
        "tcp",
        &kubelet,
        "*",
        "controllers (kube-apiserver)",
    );
    let healthz = worker::KUBELET_HEALTHZ_PORT.to_string();
    rows.add(
        "kubelet",
        "tcp",
        &healthz,
        "127.0.0.1",
        "this node (healthz)",
    );
    let metrics = worker::KUBE_PROXY_METRICS_PORT.to_string();
    rows.add(
        "kube-proxy",
        "tcp",
        &metrics,
        "127.0.0.1",
        "this node (metrics)",
    );
    let healthz = worker::KUBE_PROXY_HEALTHZ_PORT.to_string();
    rows.add(
        "kube-proxy",
        "tcp",
        &healthz,
        "*",
        "load balancers (healthz)",
    );
    for protocol in ["tcp", "udp"] {
        rows.add(
            "kube-proxy",
            protocol,
            NODE_PORTS,
            "*",
            "clients of NodePort services",
        );
    }
    if ctx.pod_network == PodNetwork::Flannel {
        let ip = rows.ip.clone();
        let vxlan = flannel::VXLAN_PORT.to_string();
        rows.add("flanneld", "udp", &vxlan, &ip, "other workers (vxlan)");
    }
}

/// The NodePort range kube-proxy serves (kube-apiserver's default --service-node-port-range).
const NODE_PORTS: &str = "30000-32767";

fn vip_ports(ctx: &Ctx, node: &Node, rows: &mut NodeRows) {
    let vip = ctx
        .doc
        .cluster
        .api
        .vip
        .map(|v| v.to_string())
        .unwrap_or_default();
    if ctx.runs_haproxy(node) {
        rows.add(
            "haproxy",
            "tcp",
            &ctx.doc.cluster.api.port.to_string(),
            &vip,
            "everyone using the API through the VIP",
        );
    }
    let ip = rows.ip.clone();
    rows.add(
        "keepalived",
        "vrrp",
        "-",
        &ip,
        "the other VIP holders (multicast 224.0.0.18)",
    );
}

/// The table for `-o table`.
pub fn table(rows: &[Port]) -> String {
    hardway::table::render(
        &["node", "component", "protocol", "port", "address", "from"],
        rows.iter().map(|p| {
            vec![
                p.node.clone(),
                p.component.clone(),
                p.protocol.to_string(),
                p.port.clone(),
                p.address.clone(),
                p.from.clone(),
            ]
        }),
    )
}
