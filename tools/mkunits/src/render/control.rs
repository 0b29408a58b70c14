//! The control plane: kube-apiserver, kube-controller-manager and kube-scheduler, with flags
//! current for Kubernetes v1.35 to v1.37: every flag written here is a long-standing one that
//! those releases neither remove nor deprecate (kubernetes/kubernetes CHANGELOG/CHANGELOG-1.36.md,
//! v1.36.0 "Urgent Upgrade Notes" and "Deprecation", and CHANGELOG-1.37.md, v1.37.0-alpha.1, name
//! none of them; the flags the hard way's older editions used and later releases dropped are
//! refused by mkunits' `no_removed_or_deprecated_flags` test); the scheduler through its
//! configuration file, whose apiVersion comes from the version table.

use hardway::doc::{Node, PodNetwork};
use hardway::paths::kubernetes as k8s;
use hardway::{Error, Role};
use serde_json::json;

use super::{join, yaml, Builder, Ctx};
use crate::layout;
use crate::unit::{ExecLine, Unit};

pub const CONTROLLER_MANAGER_PORT: u16 = 10257;
pub const SCHEDULER_PORT: u16 = 10259;

pub fn render(ctx: &Ctx, node: &Node, b: &mut Builder) -> Result<(), Error> {
    let cluster = &ctx.doc.cluster;
    let nets = &cluster.networks;
    let ip = ctx.primary_ip(node)?;
    let service_ranges = join(&nets.service);

    b.file(layout::AUDIT_POLICY, audit_policy());
    let mut apiserver = ExecLine::new(layout::bin::KUBE_APISERVER)
        .flag("advertise-address", ip)
        .flag("allow-privileged", true)
        .flag("audit-log-maxage", 30)
        .flag("audit-log-maxbackup", 3)
        .flag("audit-log-maxsize", 100)
        .flag("audit-log-path", k8s::AUDIT_LOG)
        .flag("audit-policy-file", layout::AUDIT_POLICY)
        .flag("authorization-mode", "Node,RBAC")
        .flag("bind-address", "0.0.0.0")
        .flag("client-ca-file", k8s::CA)
        .flag("enable-admission-plugins", "NodeRestriction")
        .flag("encryption-provider-config", k8s::ENCRYPTION_CONFIG)
        .flag("etcd-cafile", k8s::ETCD_CA)
        .flag("etcd-certfile", k8s::APISERVER_ETCD_CLIENT_CERT)
        .flag("etcd-keyfile", k8s::APISERVER_ETCD_CLIENT_KEY)
        .flag("etcd-servers", ctx.etcd_client_urls()?)
        .flag("event-ttl", "1h")
        .flag("kubelet-certificate-authority", k8s::CA)
        .flag(
            "kubelet-client-certificate",
            k8s::APISERVER_KUBELET_CLIENT_CERT,
        )
        .flag("kubelet-client-key", k8s::APISERVER_KUBELET_CLIENT_KEY)
        .flag("kubelet-preferred-address-types", "InternalIP,Hostname")
        .flag("proxy-client-cert-file", k8s::FRONT_PROXY_CLIENT_CERT)
        .flag("proxy-client-key-file", k8s::FRONT_PROXY_CLIENT_KEY)
        .flag("requestheader-allowed-names", "front-proxy-client")
        .flag("requestheader-client-ca-file", k8s::FRONT_PROXY_CA)
        .flag("requestheader-extra-headers-prefix", "X-Remote-Extra-")
        .flag("requestheader-group-headers", "X-Remote-Group")
        .flag("requestheader-username-headers", "X-Remote-User")
        .flag("secure-port", cluster.api.port)
        .flag("service-account-issuer", ctx.api_endpoint()?)
        .flag("service-account-key-file", k8s::SA_PUB)
        .flag("service-account-signing-key-file", k8s::SA_KEY)
        .flag("service-cluster-ip-range", &service_ranges)
        .flag("service-node-port-range", "30000-32767")
        .flag("tls-cert-file", k8s::APISERVER_CERT)
        .flag("tls-private-key-file", k8s::APISERVER_KEY);
    if aggregator_routing(ctx, node) {
        apiserver = apiserver.flag("enable-aggregator-routing", true);
    }
    let apiserver = Unit::daemon(
        "kube-apiserver.service",
        "Kubernetes API Server",
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/",
        apiserver.flag("v", 2),
    )
    .wants(&["network-online.target"])
    .after(&["network-online.target", "etcd.service"])
    .set("LogsDirectory", "kubernetes");
    b.service(&apiserver);

    let controller_manager = ExecLine::new(layout::bin::KUBE_CONTROLLER_MANAGER)
        // Pod CIDRs are decided up front by cidr-alloc and given to each kubelet (docs/sources.md#seed-000).
        .flag("allocate-node-cidrs", false)
        .flag(
            "authentication-kubeconfig",
            k8s::CONTROLLER_MANAGER_KUBECONFIG,
        )
        .flag(
            "authorization-kubeconfig",
            k8s::CONTROLLER_MANAGER_KUBECONFIG,
        )
        .flag("bind-address", "0.0.0.0")
        .flag("client-ca-file", k8s::CA)
        .flag("cluster-cidr", join(&nets.pod))
        .flag("cluster-name", &cluster.name)
        .flag("cluster-signing-cert-file", k8s::CA)
        .flag("cluster-signing-key-file", k8s::CA_KEY)
        .flag("kubeconfig", k8s::CONTROLLER_MANAGER_KUBECONFIG)
        .flag("leader-elect", true)
        .flag("requestheader-client-ca-file", k8s::FRONT_PROXY_CA)
        .flag("root-ca-file", k8s::CA)
        .flag("service-account-private-key-file", k8s::SA_KEY)
        .flag("service-cluster-ip-range", &service_ranges)
        .flag("use-service-account-credentials", true)
        .flag("v", 2);
    let controller_manager = Unit::daemon(
        "kube-controller-manager.service",
        "Kubernetes Controller Manager",
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
        controller_manager,
    )
    .after(&["kube-apiserver.service"]);
    b.service(&controller_manager);

    b.file(
        k8s::SCHEDULER_CONFIG,
        yaml(&json!({
            "apiVersion": ctx.release.scheduler_config_api,
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": k8s::SCHEDULER_KUBECONFIG},
            "leaderElection": {"leaderElect": true},
        })),
    );
    let scheduler = ExecLine::new(layout::bin::KUBE_SCHEDULER)
        .flag("authentication-kubeconfig", k8s::SCHEDULER_KUBECONFIG)
        .flag("authorization-kubeconfig", k8s::SCHEDULER_KUBECONFIG)
        .flag("bind-address", "0.0.0.0")
        .flag("config", k8s::SCHEDULER_CONFIG)
        .flag("v", 2);
    let scheduler = Unit::daemon(
        "kube-scheduler.service",
        "Kubernetes Scheduler",
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/",
        scheduler,
    )
    .after(&["kube-apiserver.service"]);
    b.service(&scheduler);
    Ok(())
}

/// Whether the apiserver sends aggregated API and webhook calls to endpoint (pod) addresses
/// instead of Service IPs. Needed where no kube-proxy runs (a controller that is not a worker
/// cannot reach Service IPs), and only possible where the node reaches pod addresses: with
/// routed pod networks every node runs route-sync, which routes every other node's pod CIDR to
/// it. A flannel controller that is not a worker runs no flanneld and reaches no pod: the flag
/// would only make webhooks and metrics-server time out there, so it is left off (and such a
/// control plane cannot reach aggregated APIs at all: make the controllers workers too).
/// A worker controller has kube-proxy and keeps the default, Service IPs.
fn aggregator_routing(ctx: &Ctx, node: &Node) -> bool {
    !node.has_role(Role::Worker) && ctx.pod_network == PodNetwork::Routes
}

/// Request metadata for everything, bodies for nothing: who did what, without Secrets in the log.
fn audit_policy() -> Vec<u8> {
    yaml(&json!({
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata"}],
    }))
}
