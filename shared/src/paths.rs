//! Where things live on a node, and what the PKI's certificates are called.
//!
//! mkcerts puts each certificate at these paths (in the node's `files`); mkunits writes units that
//! name them; etcd-check finds its CA and client certificate by these names in the `pki` section.
//! One table, so the three cannot disagree.

/// Names of the certificates in `pki.certs` (kubeadm's names).
pub mod cert {
    pub const KUBERNETES_CA: &str = "kubernetes-ca";
    pub const ETCD_CA: &str = "etcd-ca";
    pub const FRONT_PROXY_CA: &str = "front-proxy-ca";
    pub const ETCD_SERVER: &str = "etcd-server";
    pub const ETCD_PEER: &str = "etcd-peer";
    pub const ETCD_HEALTHCHECK_CLIENT: &str = "etcd-healthcheck-client";
    pub const APISERVER_ETCD_CLIENT: &str = "apiserver-etcd-client";
    pub const APISERVER: &str = "kube-apiserver";
    pub const APISERVER_KUBELET_CLIENT: &str = "apiserver-kubelet-client";
    pub const FRONT_PROXY_CLIENT: &str = "front-proxy-client";
    pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";
    pub const SCHEDULER: &str = "kube-scheduler";
    pub const KUBELET: &str = "kubelet";
    pub const KUBE_PROXY: &str = "kube-proxy";
    pub const ADMIN: &str = "admin";
    pub const FLANNEL_ETCD_CLIENT: &str = "flannel-etcd-client";
    /// The user the apiserver is when it calls kubelets (the CN of its kubelet client
    /// certificate): mkcerts issues it, mkunits' add-ons bind it to
    /// `system:kube-apiserver-to-kubelet`.
    pub const APISERVER_KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
}

/// etcd members (role `etcd`).
pub mod etcd {
    pub const DIR: &str = "/etc/etcd";
    pub const CA: &str = "/etc/etcd/ca.pem";
    pub const SERVER_CERT: &str = "/etc/etcd/server.pem";
    pub const SERVER_KEY: &str = "/etc/etcd/server-key.pem";
    pub const PEER_CERT: &str = "/etc/etcd/peer.pem";
    pub const PEER_KEY: &str = "/etc/etcd/peer-key.pem";
    /// For `etcdctl` and health checks run on the member itself.
    pub const HEALTHCHECK_CERT: &str = "/etc/etcd/healthcheck-client.pem";
    pub const HEALTHCHECK_KEY: &str = "/etc/etcd/healthcheck-client-key.pem";
    pub const DATA_DIR: &str = "/var/lib/etcd";
    /// The document records addresses, not ports: mkunits makes etcd listen here and etcd-check
    /// connects here.
    pub const CLIENT_PORT: u16 = 2379;
    pub const PEER_PORT: u16 = 2380;
}

/// The control plane (role `controller`).
pub mod kubernetes {
    pub const DIR: &str = "/var/lib/kubernetes";
    pub const CA: &str = "/var/lib/kubernetes/ca.pem";
    /// The controller manager signs kubelet serving and client CSRs with it.
    pub const CA_KEY: &str = "/var/lib/kubernetes/ca-key.pem";
    pub const APISERVER_CERT: &str = "/var/lib/kubernetes/kube-apiserver.pem";
    pub const APISERVER_KEY: &str = "/var/lib/kubernetes/kube-apiserver-key.pem";
    pub const ETCD_CA: &str = "/var/lib/kubernetes/etcd-ca.pem";
    pub const APISERVER_ETCD_CLIENT_CERT: &str = "/var/lib/kubernetes/apiserver-etcd-client.pem";
    pub const APISERVER_ETCD_CLIENT_KEY: &str = "/var/lib/kubernetes/apiserver-etcd-client-key.pem";
    pub const APISERVER_KUBELET_CLIENT_CERT: &str =
        "/var/lib/kubernetes/apiserver-kubelet-client.pem";
    pub const APISERVER_KUBELET_CLIENT_KEY: &str =
        "/var/lib/kubernetes/apiserver-kubelet-client-key.pem";
    pub const FRONT_PROXY_CA: &str = "/var/lib/kubernetes/front-proxy-ca.pem";
    pub const FRONT_PROXY_CLIENT_CERT: &str = "/var/lib/kubernetes/front-proxy-client.pem";
    pub const FRONT_PROXY_CLIENT_KEY: &str = "/var/lib/kubernetes/front-proxy-client-key.pem";
    /// Service-account token signing key pair.
    pub const SA_KEY: &str = "/var/lib/kubernetes/sa.key";
    pub const SA_PUB: &str = "/var/lib/kubernetes/sa.pub";
    pub const ENCRYPTION_CONFIG: &str = "/var/lib/kubernetes/encryption-config.yaml";
    pub const CONTROLLER_MANAGER_KUBECONFIG: &str =
        "/var/lib/kubernetes/kube-controller-manager.kubeconfig";
    pub const SCHEDULER_KUBECONFIG: &str = "/var/lib/kubernetes/kube-scheduler.kubeconfig";
    pub const SCHEDULER_CONFIG: &str = "/var/lib/kubernetes/kube-scheduler.yaml";
    pub const ADMIN_KUBECONFIG: &str = "/var/lib/kubernetes/admin.kubeconfig";
    pub const AUDIT_LOG: &str = "/var/log/kubernetes/audit.log";
}

/// Workers (role `worker`).
pub mod kubelet {
    pub const DIR: &str = "/var/lib/kubelet";
    pub const CA: &str = "/var/lib/kubelet/ca.pem";
    pub const CERT: &str = "/var/lib/kubelet/kubelet.pem";
    pub const KEY: &str = "/var/lib/kubelet/kubelet-key.pem";
    pub const KUBECONFIG: &str = "/var/lib/kubelet/kubeconfig";
    pub const CONFIG: &str = "/var/lib/kubelet/kubelet-config.yaml";
}

pub mod kube_proxy {
    pub const DIR: &str = "/var/lib/kube-proxy";
    pub const KUBECONFIG: &str = "/var/lib/kube-proxy/kubeconfig";
    pub const CONFIG: &str = "/var/lib/kube-proxy/kube-proxy-config.yaml";
}

/// flannel's etcd client credentials, on every node that runs flanneld (`--pod-network flannel`).
pub mod flannel {
    pub const ETCD_CA: &str = "/etc/flannel/etcd-ca.pem";
    pub const ETCD_CERT: &str = "/etc/flannel/etcd-client.pem";
    pub const ETCD_KEY: &str = "/etc/flannel/etcd-client-key.pem";
}

/// hardway's own files on a node.
pub mod hardway {
    /// The node's copy of the cluster document, read by `route-sync --node` at boot.
    pub const DOCUMENT: &str = "/etc/hardway/cluster.json";
    pub const BIN_DIR: &str = "/usr/local/bin";
}

/// Mode and owner of every file mkcerts and mkunits install, as octal strings for `files[].mode`.
pub mod mode {
    pub const PUBLIC: &str = "0644";
    pub const SECRET: &str = "0600";
    pub const EXECUTABLE: &str = "0755";
    pub const ROOT: &str = "root:root";
}
