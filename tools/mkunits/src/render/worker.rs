//! Workers: the container runtime, kubelet and kube-proxy with their configuration files, and
//! the CNI configuration (a bridge over the node's pod CIDRs, or flannel's).

use hardway::doc::{Node, PodNetwork};
use hardway::paths::{kube_proxy, kubelet};
use hardway::Error;
use serde_json::{json, Value};

use super::{flannel, join, json, yaml, Builder, Ctx};
use crate::layout;
use crate::unit::{ExecLine, Unit};
use crate::Runtime;

pub const KUBELET_PORT: u16 = 10250;
pub const KUBELET_HEALTHZ_PORT: u16 = 10248;
pub const KUBE_PROXY_METRICS_PORT: u16 = 10249;
pub const KUBE_PROXY_HEALTHZ_PORT: u16 = 10256;

pub fn render(ctx: &Ctx, node: &Node, b: &mut Builder) -> Result<(), Error> {
    let runtime_unit = runtime(ctx, b);
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
        .flag("kubeconfig", kubelet::KUBECONFIG)
        .flag("node-ip", node_ips)
        .flag("v", 2);
    let kubelet_unit = Unit::daemon(
        "kubelet.service",
        "Kubernetes Kubelet",
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/",
        kubelet_exec,
    )
    .after(&[runtime_unit])
    .requires(&[runtime_unit]);
    b.service(&kubelet_unit);

    b.file(
        kube_proxy::CONFIG,
        yaml(&json!({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": kube_proxy::KUBECONFIG},
            "mode": "iptables",
            "clusterCIDR": join(&ctx.doc.cluster.networks.pod),
        })),
    );
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

/// The runtime's config and unit; returns the unit's name for kubelet's dependencies.
fn runtime(ctx: &Ctx, b: &mut Builder) -> &'static str {
    let cni_bin = &ctx.opts.cni_bin_dir;
    match ctx.opts.runtime {
        Runtime::Containerd => {
            b.file(
                layout::CONTAINERD_CONFIG,
                containerd_config(cni_bin).into_bytes(),
            );
            let unit = Unit::daemon(
                "containerd.service",
                "containerd container runtime",
                "https://containerd.io",
                ExecLine::new(layout::bin::CONTAINERD).flag("config", layout::CONTAINERD_CONFIG),
            )
            .kind("notify")
            .after(&["network.target", "local-fs.target"])
            .pre(ExecLine::new(&format!("-{}", layout::bin::MODPROBE)).arg("overlay"))
            .set("Delegate", "yes")
            .set("KillMode", "process")
            .set("LimitNPROC", "infinity")
            .set("LimitCORE", "infinity")
            .set("TasksMax", "infinity")
            .set("OOMScoreAdjust", "-999");
            b.service(&unit);
            "containerd.service"
        }
        Runtime::CriO => {
            b.file(layout::CRIO_CONFIG, crio_config(cni_bin).into_bytes());
            let unit = Unit::daemon(
                "crio.service",
                "CRI-O container runtime",
                "https://github.com/cri-o/cri-o",
                ExecLine::new(layout::bin::CRIO),
            )
            .kind("notify")
            .wants(&["network-online.target"])
            .after(&["network-online.target"])
            .set("Delegate", "yes")
            .set("KillMode", "process")
            .set("LimitNOFILE", "1048576")
            .set("LimitNPROC", "1048576")
            .set("TasksMax", "infinity")
            .set("OOMScoreAdjust", "-999");
            b.service(&unit);
            "crio.service"
        }
    }
}

/// containerd's config, version 2 (containerd 1.6, Debian 12's): runc through the systemd cgroup
/// driver, as kubelet's `cgroupDriver: systemd` requires, and CNI from Debian's plugin directory.
fn containerd_config(cni_bin_dir: &str) -> String {
    format!(
        r#"# Written by mkunits from the cluster document.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{conf_dir}"
"#,
        conf_dir = layout::CNI_CONF_DIR,
    )
}

/// A CRI-O drop-in: the systemd cgroup manager and the same CNI directories.
fn crio_config(cni_bin_dir: &str) -> String {
    format!(
        r#"# Written by mkunits from the cluster document.
[crio.runtime]
cgroup_manager = "systemd"
conmon_cgroup = "pod"

[crio.image]
pause_image = "registry.k8s.io/pause:3.10"

[crio.network]
network_dir = "{conf_dir}"
plugin_dirs = ["{cni_bin_dir}"]
"#,
        conf_dir = layout::CNI_CONF_DIR,
    )
}

fn kubelet_config(ctx: &Ctx, node: &Node) -> Value {
    let cluster = &ctx.doc.cluster;
    let dns: Vec<String> = cluster
        .service_ips
        .as_ref()
        .map(|s| s.dns.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let endpoint = match ctx.opts.runtime {
        Runtime::Containerd => layout::CONTAINERD_SOCKET,
        Runtime::CriO => layout::CRIO_SOCKET,
    };
    let mut config = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "0.0.0.0",
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": kubelet::CA},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "containerRuntimeEndpoint": endpoint,
        "clusterDomain": cluster.cluster_domain,
        "clusterDNS": dns,
        "runtimeRequestTimeout": "15m",
        "tlsCertFile": kubelet::CERT,
        "tlsPrivateKeyFile": kubelet::KEY,
    });
    if !node.pod_cidrs.is_empty() {
        // The controller manager does not allocate CIDRs (seed 000): the node's range is the
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
