//! `mkunits ports`: every port each node's components listen on and who must reach it (seed
//! 001's tables), derived from the same decisions as the units, so a firewall can be opened
//! instead of disabled.

use hardway::doc::{Document, PodNetwork};
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
        let ip = ctx.primary_ip(node)?.to_string();
        let mut add = |component: &str, protocol, port: String, address: &str, from: &str| {
            rows.push(Port {
                node: node.name.clone(),
                component: component.into(),
                protocol,
                port,
                address: address.into(),
                from: from.into(),
            })
        };
        if node.has_role(Role::Etcd) {
            let clients = if ctx.pod_network == PodNetwork::Flannel {
                "controllers (kube-apiserver), workers (flanneld), etcd-check"
            } else {
                "controllers (kube-apiserver), etcd-check"
            };
            add(
                "etcd",
                "tcp",
                etcd::CLIENT_PORT.to_string(),
                &format!("{ip},127.0.0.1"),
                clients,
            );
            add(
                "etcd",
                "tcp",
                etcd::PEER_PORT.to_string(),
                &ip,
                "other etcd members (peers)",
            );
            add(
                "etcd",
                "tcp",
                etcd::METRICS_PORT.to_string(),
                "127.0.0.1",
                "this node (metrics)",
            );
        }
        if node.has_role(Role::Controller) {
            let port = doc.cluster.api.port.to_string();
            add(
                "kube-apiserver",
                "tcp",
                port,
                "*",
                "everyone using the API: workers, load balancers, admins",
            );
            add(
                "kube-controller-manager",
                "tcp",
                control::CONTROLLER_MANAGER_PORT.to_string(),
                "*",
                "monitoring (HTTPS, authenticated)",
            );
            add(
                "kube-scheduler",
                "tcp",
                control::SCHEDULER_PORT.to_string(),
                "*",
                "monitoring (HTTPS, authenticated)",
            );
        }
        if node.has_role(Role::Worker) {
            add(
                "kubelet",
                "tcp",
                worker::KUBELET_PORT.to_string(),
                "*",
                "controllers (kube-apiserver)",
            );
            add(
                "kubelet",
                "tcp",
                worker::KUBELET_HEALTHZ_PORT.to_string(),
                "127.0.0.1",
                "this node (healthz)",
            );
            add(
                "kube-proxy",
                "tcp",
                worker::KUBE_PROXY_METRICS_PORT.to_string(),
                "127.0.0.1",
                "this node (metrics)",
            );
            add(
                "kube-proxy",
                "tcp",
                worker::KUBE_PROXY_HEALTHZ_PORT.to_string(),
                "*",
                "load balancers (healthz)",
            );
            add(
                "kube-proxy",
                "tcp",
                "30000-32767".into(),
                "*",
                "clients of NodePort services",
            );
            add(
                "kube-proxy",
                "udp",
                "30000-32767".into(),
                "*",
                "clients of NodePort services",
            );
            if ctx.pod_network == PodNetwork::Flannel {
                add(
                    "flanneld",
                    "udp",
                    flannel::VXLAN_PORT.to_string(),
                    &ip,
                    "other workers (vxlan)",
                );
            }
        }
        if ctx.holds_vip(node) {
            let vip = doc
                .cluster
                .api
                .vip
                .map(|v| v.to_string())
                .unwrap_or_default();
            if ctx.runs_haproxy(node) {
                add(
                    "haproxy",
                    "tcp",
                    doc.cluster.api.port.to_string(),
                    &vip,
                    "everyone using the API through the VIP",
                );
            }
            add(
                "keepalived",
                "vrrp",
                "-".into(),
                &ip,
                "the other VIP holders (multicast 224.0.0.18)",
            );
        }
    }
    Ok(rows)
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
