//! flannel with its vxlan backend (`--pod-network flannel`, seeds 001/002): the network config
//! stored in etcd once, flanneld on every worker with etcd TLS, and flannel's CNI config.

use hardway::doc::Node;
use hardway::paths;
use hardway::Error;
use ipnet::IpNet;
use serde_json::{json, Value};

use super::{json, Builder, Ctx};
use crate::layout;
use crate::unit::{ExecLine, Unit};

pub const VXLAN_PORT: u16 = 8472;

/// flannel's network config (seed 001's JSON): the pod range, the size of each node's subnet,
/// and vxlan; with dual-stack the IPv6 range too.
pub fn network_config(ctx: &Ctx) -> Value {
    let nets = &ctx.doc.cluster.networks;
    let mut config = json!({"Backend": {"Type": "vxlan", "VNI": 1}});
    for (i, pod) in nets.pod.iter().enumerate() {
        let prefix = nets.pod_prefix.get(i).copied();
        match pod {
            IpNet::V4(_) => {
                config["Network"] = json!(pod.to_string());
                config["SubnetLen"] = json!(prefix.unwrap_or(24));
            }
            IpNet::V6(_) => {
                config["EnableIPv6"] = json!(true);
                config["IPv6Network"] = json!(pod.to_string());
                config["IPv6SubnetLen"] = json!(prefix.unwrap_or(64));
            }
        }
    }
    config
}

/// On the first etcd member: the config file and a oneshot that puts it under flannel's prefix
/// after etcd is up (an unchanged value is a no-op for flannel).
pub fn store_config(ctx: &Ctx, b: &mut Builder) -> Result<(), Error> {
    b.file(layout::FLANNEL_NETWORK, json(&network_config(ctx)));
    let etcdctl = format!(
        "{} --endpoints=https://127.0.0.1:2379 --cacert={} --cert={} --key={} put {}/config < {}",
        layout::bin::ETCDCTL,
        paths::etcd::CA,
        paths::etcd::HEALTHCHECK_CERT,
        paths::etcd::HEALTHCHECK_KEY,
        layout::FLANNEL_PREFIX,
        layout::FLANNEL_NETWORK,
    );
    let unit = Unit::oneshot(
        "flannel-config.service",
        "Store flannel's network configuration in etcd",
        "https://github.com/flannel-io/flannel/blob/master/Documentation/configuration.md",
        vec![ExecLine::new(layout::bin::SH)
            .arg("-c")
            .arg(format!("'{etcdctl}'"))],
    )
    .after(&["etcd.service"])
    .requires(&["etcd.service"])
    .set("Environment", "ETCDCTL_API=3");
    b.service(&unit);
    Ok(())
}

/// flanneld on a worker, talking to etcd with flannel's client certificate.
pub fn render_node(ctx: &Ctx, node: &Node, b: &mut Builder) -> Result<(), Error> {
    let mut exec = ExecLine::new(layout::bin::FLANNELD)
        .flag("etcd-endpoints", ctx.etcd_client_urls()?)
        .flag("etcd-prefix", layout::FLANNEL_PREFIX)
        .flag("etcd-cafile", paths::flannel::ETCD_CA)
        .flag("etcd-certfile", paths::flannel::ETCD_CERT)
        .flag("etcd-keyfile", paths::flannel::ETCD_KEY)
        .flag("ip-masq", true);
    if let Some(v4) = node.ip_of_family(false) {
        exec = exec.flag("iface", v4).flag("public-ip", v4);
    }
    if let Some(v6) = node.ip_of_family(true) {
        if ctx.is_dual_stack() {
            exec = exec.flag("public-ipv6", v6).flag("auto-detect-ipv6", true);
        }
    }
    let unit = Unit::daemon(
        "flanneld.service",
        "flannel pod network (vxlan)",
        "https://github.com/flannel-io/flannel",
        exec,
    )
    .kind("notify")
    .wants(&["network-online.target"])
    .after(&["network-online.target"])
    .before(&["kubelet.service"]);
    b.service(&unit);
    Ok(())
}

/// flannel's CNI config: its plugin delegates to the bridge plugin with the subnet flanneld
/// leased (from /run/flannel/subnet.env).
pub fn cni_config() -> Value {
    json!({
        "cniVersion": "0.3.1",
        "name": "cbr0",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
}
