//! Workers: the container runtime ([`runtime`]), kubelet and kube-proxy with their
//! configuration files, and the CNI configuration (a bridge over the node's pod CIDRs, or
//! flannel's).
//!
//! Every kubelet flag and KubeletConfiguration / KubeProxyConfiguration field written here exists,
//! undeprecated, in Kubernetes v1.35 to v1.37; the apiVersions come from the version table
//! (`hardway::k8s`). Both components take the node's name from the document, as its
//! certificate does (`system:node:<name>`, mkcerts), whatever the machine's hostname: the kubelet
//! through `--hostname-override` (a kubelet flag, not a KubeletConfiguration field:
//! cmd/kubelet/app/options/options.go), kube-proxy through `hostnameOverride`
//! (staging/src/k8s.io/kube-proxy/config/v1alpha1/types.go).

use hardway::doc::{Node, PodNetwork};
use hardway::paths::{kube_proxy, kubelet};
use hardway::Error;
use serde_json::{json, Value};

use super::{flannel, join, json, preflight, runtime, yaml, Builder, Ctx};
use crate::layout;
use crate::unit::{ExecLine, Unit};

pub const KUBELET_PORT: u16 = 10250;
pub const KUBELET_HEALTHZ_PORT: u16 = 10248;
pub const KUBE_PROXY_METRICS_PORT: u16 = 10249;
pub const KUBE_PROXY_HEALTHZ_PORT: u16 = 10256;

pub fn render(ctx: &Ctx, node: &Node, b: &mut Builder) -> Result<(), Error> {
    let runtime_unit = runtime::render(ctx, b);
    if ctx.pod_network == PodNetwork::Flannel {
        flannel::render_node(ctx, node, b)?;
        b.file(layout::CNI_FLANNEL, json(&flannel::cni_config()));
    } else {
        b.file(layout::CNI_BRIDGE, json(&bridge_conflist(node)));
    }
    b.file(layout::CNI_LOOPBACK, json(&loopback_conf()));

    b.file(kubelet::CONFIG, yaml(&kubelet_config(ctx, node)));
    let node_ips = join(&node.ips);
    let kubelet_exec = ExecLine::new(layout::bin::KUBELET)
        .flag("config", kubelet::CONFIG)
        .flag("hostname-override", &node.name)
        .flag("kubeconfig", kubelet::KUBECONFIG)
        .flag("node-ip", node_ips)
        .flag("v", 2);
    let kubelet_unit = Unit::daemon(
        "kubelet.service",
        "Kubernetes Kubelet",
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/",
        kubelet_exec,
    )
    .after(&[runtime_unit, preflight::UNIT])
    .requires(&[runtime_unit, preflight::UNIT]);
    b.service(&kubelet_unit);

    b.file(kube_proxy::CONFIG, yaml(&kube_proxy_config(ctx, node)));
    let proxy = Unit::daemon(
        "kube-proxy.service",
        "Kubernetes Kube Proxy",
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/",
        ExecLine::new(layout::bin::KUBE_PROXY)
            .flag("config", kube_proxy::CONFIG)
            .flag("v", 2),
    )
    .wants(&["network-online.target"])
    .after(&["network-online.target"]);
    b.service(&proxy);
    Ok(())
}

/// kube-proxy in the document's mode (iptables or nftables; nftables is GA since v1.33, IPVS is
/// deprecated and not offered).
fn kube_proxy_config(ctx: &Ctx, node: &Node) -> Value {
    json!({
        "apiVersion": ctx.release.kube_proxy_config_api,
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": kube_proxy::KUBECONFIG},
        "hostnameOverride": node.name,
        "mode": ctx.proxy_mode.name(),
        "clusterCIDR": join(&ctx.doc.cluster.networks.pod),
    })
}

fn kubelet_config(ctx: &Ctx, node: &Node) -> Value {
    let cluster = &ctx.doc.cluster;
    let dns: Vec<String> = cluster
        .service_ips
        .as_ref()
        .map(|s| s.dns.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let mut config = json!({
        "apiVersion": ctx.release.kubelet_config_api,
        "kind": "KubeletConfiguration",
        "address": "0.0.0.0",
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": kubelet::CA},
        },
        "authorization": {"mode": "Webhook"},
        // The runtime's driver too (SystemdCgroup, cgroup_manager: render/runtime.rs).
        "cgroupDriver": "systemd",
        "containerRuntimeEndpoint": runtime::socket(ctx.runtime),
        "clusterDomain": cluster.cluster_domain,
        "clusterDNS": dns,
        // The default from v1.35 on, written anyway: the node's preflight refuses cgroup v1 for
        // the same reason, and a by-hand edit to false should be a visible choice.
        "failCgroupV1": true,
        "runtimeRequestTimeout": "15m",
        "tlsCertFile": kubelet::CERT,
        "tlsPrivateKeyFile": kubelet::KEY,
    });
    if !node.pod_cidrs.is_empty() {
        // The controller manager does not allocate CIDRs (docs/sources.md#seed-000): the node's range is the
        // one cidr-alloc decided, the same the CNI bridge hands out.
        config["podCIDR"] = Value::String(join(&node.pod_cidrs));
    }
    config
}

/// The bridge plugin with host-local IPAM over the node's pod CIDRs (one range set per family),
/// then portmap for hostPort: Kubernetes the Hard Way's 10-bridge.conf as a current conflist,
/// without its `ipMasq`: the plugin would masquerade everything a pod sends beyond its own CIDR,
/// other nodes' pods included, and pods would see node addresses instead of each other's. Only
/// traffic leaving the cluster is masqueraded, by mkunits' nftables table (render/masquerade.rs).
pub fn bridge_conflist(node: &Node) -> Value {
    let ranges: Vec<Value> = node
        .pod_cidrs
        .iter()
        .map(|cidr| json!([{"subnet": cidr.to_string()}]))
        .collect();
    let routes: Vec<Value> = node
        .pod_cidrs
        .iter()
        .map(|cidr| json!({"dst": if cidr.addr().is_ipv6() { "::/0" } else { "0.0.0.0/0" }}))
        .collect();
    json!({
        "cniVersion": "1.0.0",
        "name": "bridge",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": ranges,
                    "routes": routes,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
}

pub fn loopback_conf() -> Value {
    json!({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"})
}
