//! Where mkunits' own files and the programs its units run live on a node.
//!
//! Certificates, keys and kubeconfigs are mkcerts' and are named by `hardway::paths`; this table
//! holds only what mkunits itself writes or starts. Programs from Debian's packages are at their
//! Debian paths (the VM image is built from them); the Kubernetes binaries and hardway's own go to
//! `hardway::paths::hardway::BIN_DIR`.

pub const UNIT_DIR: &str = "/etc/systemd/system";
pub const HOSTS: &str = "/etc/hosts";
pub const MODULES_LOAD: &str = "/etc/modules-load.d/hardway.conf";
pub const SYSCTL: &str = "/etc/sysctl.d/90-hardway.conf";
pub const AUDIT_POLICY: &str = "/var/lib/kubernetes/audit-policy.yaml";
pub const AUDIT_LOG_DIR: &str = "/var/log/kubernetes";
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
pub const CONTAINERD_SOCKET: &str = "unix:///run/containerd/containerd.sock";
pub const CRIO_CONFIG: &str = "/etc/crio/crio.conf.d/10-hardway.conf";
pub const CRIO_SOCKET: &str = "unix:///run/crio/crio.sock";
pub const CNI_CONF_DIR: &str = "/etc/cni/net.d";
pub const CNI_BRIDGE: &str = "/etc/cni/net.d/10-bridge.conflist";
pub const CNI_FLANNEL: &str = "/etc/cni/net.d/10-flannel.conflist";
pub const CNI_LOOPBACK: &str = "/etc/cni/net.d/99-loopback.conf";
pub const HAPROXY_CONFIG: &str = "/etc/haproxy/haproxy.cfg";
pub const KEEPALIVED_CONFIG: &str = "/etc/keepalived/keepalived.conf";
pub const FLANNEL_NETWORK: &str = "/etc/flannel/network.json";
/// flannel's etcd v3 prefix (upstream's default); its config is `<prefix>/config`.
pub const FLANNEL_PREFIX: &str = "/coreos.com/network";

/// Programs the units run.
pub mod bin {
    pub const ETCD: &str = "/usr/bin/etcd";
    pub const ETCDCTL: &str = "/usr/bin/etcdctl";
    /// Debian's containerd 1.x.
    pub const CONTAINERD: &str = "/usr/bin/containerd";
    /// containerd 2 from its upstream release, shipped with the Kubernetes binaries.
    pub const CONTAINERD2: &str = "/usr/local/bin/containerd";
    pub const CRIO: &str = "/usr/bin/crio";
    pub const MODPROBE: &str = "/usr/sbin/modprobe";
    pub const SYSTEMD_SYSCTL: &str = "/usr/lib/systemd/systemd-sysctl";
    pub const SH: &str = "/bin/sh";
    pub const KUBE_APISERVER: &str = "/usr/local/bin/kube-apiserver";
    pub const KUBE_CONTROLLER_MANAGER: &str = "/usr/local/bin/kube-controller-manager";
    pub const KUBE_SCHEDULER: &str = "/usr/local/bin/kube-scheduler";
    pub const KUBELET: &str = "/usr/local/bin/kubelet";
    pub const KUBE_PROXY: &str = "/usr/local/bin/kube-proxy";
    pub const FLANNELD: &str = "/usr/local/bin/flanneld";
    pub const ROUTE_SYNC: &str = "/usr/local/bin/route-sync";
}

/// The path of a unit file on the node.
pub fn unit_path(name: &str) -> String {
    format!("{UNIT_DIR}/{name}")
}

/// The nftables table that masquerades pod traffic leaving the cluster (render/masquerade.rs).
pub mod masquerade {
    pub const RULES: &str = "/etc/hardway/masquerade.nft";
    pub const NFT: &str = "/usr/sbin/nft";
}

/// The cluster add-ons on the first controller (render/addons.rs).
pub mod addons {
    pub const DNS_MANIFEST: &str = "/etc/hardway/addons/coredns.yaml";
    pub const RBAC_MANIFEST: &str = "/etc/hardway/addons/apiserver-to-kubelet.yaml";
    /// Waits for the API and applies the manifests (hardway-addons.service).
    pub const APPLY_SCRIPT: &str = "/etc/hardway/addons/apply.sh";
    /// Sets the Nodes' podCIDRs (hardway-pod-cidrs.service, run by its timer).
    pub const POD_CIDRS_SCRIPT: &str = "/etc/hardway/addons/pod-cidrs.sh";
    /// kubectl, shipped with the controllers' Kubernetes binaries.
    pub const KUBECTL: &str = "/usr/local/bin/kubectl";
}
