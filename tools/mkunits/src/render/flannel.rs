//! flannel with its vxlan backend (`--pod-network flannel`, docs/sources.md#seed-001 and #seed-002): the network config
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

/// Every flag flanneld defines: flannel-io/flannel main.go, `func init()` of the v0.2x release
/// line (the one with `--persistent-mac` and `--use-multi-cluster-cidr`), plus the klog flags it
/// copies (`copyFlag("v")`, `vmodule`, `log_backtrace_at`).
/// There is no `--auto-detect-ipv6` (the dual-stack PR, flannel-io/flannel#1398, described one):
/// flanneld takes the address families from the network config's `EnableIPv4`/`EnableIPv6` and
/// the IPv6 address from `--public-ipv6` or the interface, and its flag set is
/// `flag.ExitOnError`, so an unknown flag makes it exit at start.
#[cfg(test)]
pub const FLANNELD_FLAGS: &[&str] = &[
    "etcd-endpoints",
    "etcd-prefix",
    "etcd-keyfile",
    "etcd-certfile",
    "etcd-cafile",
    "etcd-username",
    "etcd-password",
    "iface",
    "iface-regex",
    "iface-can-reach",
    "subnet-file",
    "public-ip",
    "public-ipv6",
    "subnet-lease-renew-margin",
    "ip-masq",
    "kube-subnet-mgr",
    "kube-api-url",
    "kube-annotation-prefix",
    "kubeconfig-file",
    "version",
    "healthz-ip",
    "healthz-port",
    "iptables-resync",
    "iptables-forward-rules",
    "net-config-path",
    "set-node-network-unavailable",
    "use-multi-cluster-cidr",
    "persistent-mac",
    "v",
    "vmodule",
    "log_backtrace_at",
];

/// flannel's network config (docs/sources.md#seed-001's JSON): the pod range, the size of each node's subnet,
/// and vxlan; with an IPv6 pod range `EnableIPv6` and `IPv6Network`, and without an IPv4 one
/// `EnableIPv4: false` (flannel-io/flannel Documentation/configuration.md: `Network` is
/// mandatory while `EnableIPv4` is true, its default; `IPv6Network` when `EnableIPv6` is).
pub fn network_config(ctx: &Ctx) -> Value {
    let nets = &ctx.doc.cluster.networks;
    let mut config = json!({"Backend": {"Type": "vxlan", "VNI": 1}});
    if !nets.pod.iter().any(|n| matches!(n, IpNet::V4(_))) {
        config["EnableIPv4"] = json!(false);
    }
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

/// flanneld on a worker, talking to etcd with flannel's client certificate. `--iface` names the
/// interface by the node's first address; `--public-ip`/`--public-ipv6` give the address of each
/// family the pod network has (flanneld takes the families from the network config and, for the
/// second family, the address of the same interface unless `--public-ipv6` says otherwise).
pub fn render_node(ctx: &Ctx, node: &Node, b: &mut Builder) -> Result<(), Error> {
    let exec = flanneld_exec(ctx, node)?;
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

fn flanneld_exec(ctx: &Ctx, node: &Node) -> Result<ExecLine, Error> {
    let pod_has = |v6: bool| {
        ctx.doc
            .cluster
            .networks
            .pod
            .iter()
            .any(|n| n.addr().is_ipv6() == v6)
    };
    let mut exec = ExecLine::new(layout::bin::FLANNELD)
        .flag("etcd-endpoints", ctx.etcd_client_urls()?)
        .flag("etcd-prefix", layout::FLANNEL_PREFIX)
        .flag("etcd-cafile", paths::flannel::ETCD_CA)
        .flag("etcd-certfile", paths::flannel::ETCD_CERT)
        .flag("etcd-keyfile", paths::flannel::ETCD_KEY)
        .flag("ip-masq", true);
    exec = exec.flag("iface", ctx.primary_ip(node)?);
    if let Some(v4) = node.ip_of_family(false).filter(|_| pod_has(false)) {
        exec = exec.flag("public-ip", v4);
    }
    if let Some(v6) = node.ip_of_family(true).filter(|_| pod_has(true)) {
        exec = exec.flag("public-ipv6", v6);
    }
    Ok(exec)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use hardway::doc::{Document, PodNetwork};
    use hardway::Role;

    fn flannel_doc(fixture: &str) -> Document {
        let path = fixture_path(fixture);
        let mut doc: Document =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        doc.cluster.pod_network = PodNetwork::Flannel;
        doc
    }

    fn fixture_path(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name)
    }

    /// The same document with only its IPv6 ranges and addresses.
    fn ipv6_only(mut doc: Document) -> Document {
        let nets = &mut doc.cluster.networks;
        let keep: Vec<usize> = (0..nets.pod.len())
            .filter(|&i| nets.pod[i].addr().is_ipv6())
            .collect();
        nets.pod_prefix = keep.iter().map(|&i| nets.pod_prefix[i]).collect();
        nets.pod.retain(|n| n.addr().is_ipv6());
        nets.node.retain(|n| n.addr().is_ipv6());
        nets.service.retain(|n| n.addr().is_ipv6());
        for node in &mut doc.nodes {
            node.ips.retain(|ip| ip.is_ipv6());
            node.pod_cidrs.retain(|c| c.addr().is_ipv6());
        }
        doc
    }

    /// (flag name, value) of every `--flag=value` flanneld gets on each worker.
    fn flags(doc: &Document) -> Vec<Vec<(String, String)>> {
        let opts = Options::default();
        let ctx = Ctx::new(doc, &opts).unwrap();
        doc.nodes_with(Role::Worker)
            .map(|node| {
                let exec = flanneld_exec(&ctx, node).unwrap();
                exec.args
                    .iter()
                    .map(|a| {
                        let (name, value) = a
                            .strip_prefix("--")
                            .and_then(|f| f.split_once('='))
                            .unwrap_or_else(|| panic!("{a:?} is not --name=value"));
                        (name.to_string(), value.to_string())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_flanneld_flag_is_one_flannel_defines_in_every_address_family_mix() {
        let dual = flannel_doc("ebook-dualstack.json");
        let cases = [
            ("IPv4", flannel_doc("lab.json")),
            ("IPv6", ipv6_only(dual.clone())),
            ("dual-stack", dual),
        ];
        for (label, doc) in &cases {
            let per_worker = flags(doc);
            assert!(!per_worker.is_empty(), "{label}: no worker");
            for flags in &per_worker {
                for (name, _) in flags {
                    assert!(
                        FLANNELD_FLAGS.contains(&name.as_str()),
                        "{label}: flanneld has no --{name} (flannel-io/flannel main.go)"
                    );
                }
                let has = |f: &str| flags.iter().any(|(n, _)| n == f);
                let v4 = doc.cluster.networks.pod.iter().any(|n| n.addr().is_ipv4());
                let v6 = doc.cluster.networks.pod.iter().any(|n| n.addr().is_ipv6());
                assert_eq!(has("public-ip"), v4, "{label}: {flags:?}");
                assert_eq!(has("public-ipv6"), v6, "{label}: {flags:?}");
                assert!(has("iface"), "{label}: {flags:?}");
            }
            let opts = Options::default();
            let config = network_config(&Ctx::new(doc, &opts).unwrap());
            let v4 = doc.cluster.networks.pod.iter().any(|n| n.addr().is_ipv4());
            let v6 = doc.cluster.networks.pod.iter().any(|n| n.addr().is_ipv6());
            assert_eq!(config.get("Network").is_some(), v4, "{label}: {config}");
            assert_eq!(
                config["EnableIPv4"].as_bool().unwrap_or(true),
                v4,
                "{label}"
            );
            assert_eq!(
                config["EnableIPv6"].as_bool().unwrap_or(false),
                v6,
                "{label}"
            );
            assert_eq!(config.get("IPv6Network").is_some(), v6, "{label}: {config}");
        }
    }
}
