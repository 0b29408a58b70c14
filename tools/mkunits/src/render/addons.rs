//! Cluster add-ons, applied once the API answers: cluster DNS (CoreDNS as `kube-dns`), the RBAC
//! that lets the apiserver call kubelets, and each Node's `spec.podCIDRs` from the document.
//!
//! All of it goes to one controller, the first by name, and is applied there with kubectl and
//! the node-local admin kubeconfig:
//!
//! - `hardway-addons.service` (oneshot) waits for the API (`/readyz`, at most 5 minutes) and runs
//!   `kubectl apply --server-side` on the manifests: idempotent, a changed manifest is updated in
//!   place, and the field manager `hardway-addons` owns only the fields written here.
//! - `hardway-pod-cidrs.timer` runs `hardway-pod-cidrs.service` 10 s after it starts and a minute
//!   after each run. A Node object exists only once its kubelet registered, which may be long
//!   after the controller is up (and on a node that is also a worker, only after this controller's
//!   own services started), so waiting inside a unit would stall the boot and node-push. Each run
//!   sets `spec.podCIDR(s)` of every registered Node whose CIDRs are still empty (immutable once
//!   set; `--allocate-node-cidrs=false` leaves them to us), skips Nodes not registered yet, and
//!   exits 1 with a journal line for any Node whose CIDRs differ from the document: reported,
//!   never overwritten. Routed pod networks only: flannel leases subnets of its own.
//!
//! Images come from the version table (`hardway::k8s`), so a Kubernetes release pins its CoreDNS.
//! The manifests follow kubeadm's CoreDNS add-on (kubernetes/kubernetes
//! cmd/kubeadm/app/phases/addons/dns/manifests.go) and Kubernetes the Hard Way's
//! `system:kube-apiserver-to-kubelet` role; each validates against the schemas of every
//! supported release (tools/mkunits/tests/real.rs, kubernetes-validate).

use hardway::doc::{Node, PodNetwork};
use hardway::paths::{cert, kubernetes as k8s};
use hardway::{Error, Role};
use serde_json::{json, Value};

use super::{Builder, Ctx};
use crate::layout::{self, addons as files};
use crate::unit::{ExecLine, Unit};

/// kubectl's field manager for everything applied here.
pub const FIELD_MANAGER: &str = "hardway-addons";

/// The controller that applies the add-ons: the first by name.
pub fn applier<'a>(ctx: &Ctx<'a>) -> Option<&'a Node> {
    ctx.doc
        .nodes_with(Role::Controller)
        .min_by(|a, b| a.name.cmp(&b.name))
}

pub fn render(ctx: &Ctx, b: &mut Builder) -> Result<(), Error> {
    // The release Ctx resolved: the document's, or the nearest one under --allow-unsupported-version.
    b.file(
        files::DNS_MANIFEST,
        documents(&coredns(ctx, ctx.release.coredns_image)?),
    );
    b.file(files::RBAC_MANIFEST, documents(&apiserver_to_kubelet()));
    b.file_mode(
        files::APPLY_SCRIPT,
        apply_script().into_bytes(),
        hardway::paths::mode::EXECUTABLE,
    );
    let apply = Unit::oneshot(
        "hardway-addons.service",
        "Cluster add-ons: CoreDNS and the apiserver's kubelet RBAC (kubectl apply --server-side)",
        "https://kubernetes.io/docs/tasks/administer-cluster/coredns/",
        vec![ExecLine::new(files::APPLY_SCRIPT)],
    )
    .wants(&["kube-apiserver.service"])
    .after(&["kube-apiserver.service"])
    .set("TimeoutStartSec", "10min");
    b.service(&apply);
    pod_cidrs(ctx, b);
    Ok(())
}

/// The podCIDR script, its service and the timer that runs it, when some worker has CIDRs in
/// the document. With flannel the subnets are flannel's leases, not the document's: the Nodes
/// are left alone (flannel's etcd mode reads no Node object).
fn pod_cidrs(ctx: &Ctx, b: &mut Builder) {
    let nodes: Vec<&Node> = ctx
        .doc
        .nodes
        .iter()
        .filter(|n| n.has_role(Role::Worker) && !n.pod_cidrs.is_empty())
        .filter(|_| ctx.pod_network == PodNetwork::Routes)
        .collect();
    if !nodes.is_empty() {
        b.file_mode(
            files::POD_CIDRS_SCRIPT,
            pod_cidrs_script(&nodes).into_bytes(),
            hardway::paths::mode::EXECUTABLE,
        );
        let mut check = Unit::oneshot(
            "hardway-pod-cidrs.service",
            "Set each registered Node's spec.podCIDRs from the cluster document",
            "https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/",
            vec![ExecLine::new(files::POD_CIDRS_SCRIPT)],
        )
        .after(&["kube-apiserver.service", "hardway-addons.service"]);
        // Run again and again by its timer: it must go inactive after each run.
        check.service.retain(|(key, _)| key != "RemainAfterExit");
        b.file(&layout::unit_path(&check.name), check.render().into_bytes());
        b.file(
            &layout::unit_path("hardway-pod-cidrs.timer"),
            pod_cidrs_timer().into_bytes(),
        );
        b.services.push("hardway-pod-cidrs.timer".into());
    }
}

/// Several objects in one YAML file, `---` between them.
fn documents(objects: &[Value]) -> Vec<u8> {
    let mut text = String::from("# Written by mkunits from the cluster document.\n");
    for object in objects {
        text.push_str("---\n");
        text.push_str(
            &serde_yaml_ng::to_string(object).expect("a JSON value always serializes to YAML"),
        );
    }
    text.into_bytes()
}

/// KTHW's ClusterRole for the apiserver's calls to kubelets (logs, exec, port-forward, metrics)
/// and its binding to the user the apiserver is on those calls: the CN of the kubelet client
/// certificate mkcerts issues (KTHW binds `kubernetes`, the CN of its apiserver certificate,
/// which it reuses as the client; hardway issues a certificate of its own, as kubeadm does).
fn apiserver_to_kubelet() -> Vec<Value> {
    let role = "system:kube-apiserver-to-kubelet";
    vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": role,
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
                "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            },
            "rules": [{
                "apiGroups": [""],
                "resources": ["nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"],
                "verbs": ["*"],
            }],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:kube-apiserver"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": cert::APISERVER_KUBELET_CLIENT_USER,
            }],
        }),
    ]
}

/// CoreDNS's Corefile as kubeadm writes it, for the document's cluster domain.
fn corefile(cluster_domain: &str) -> String {
    format!(
        ".:53 {{\n    errors\n    health {{\n       lameduck 5s\n    }}\n    ready\n    \
         kubernetes {cluster_domain} in-addr.arpa ip6.arpa {{\n       pods insecure\n       \
         fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }}\n    prometheus :9153\n    \
         forward . /etc/resolv.conf {{\n       max_concurrent 1000\n    }}\n    cache 30 {{\n       \
         disable success {cluster_domain}\n       disable denial {cluster_domain}\n    }}\n    \
         loop\n    reload\n    loadbalance\n}}\n"
    )
}

/// The `kube-dns` Service at the document's DNS addresses: the kubelets' `clusterDNS`, one per
/// family, in the document's order (the first is the primary family, as in the service ranges).
fn dns_service(ctx: &Ctx) -> Result<Value, Error> {
    let ips: Vec<String> = ctx
        .doc
        .cluster
        .service_ips
        .as_ref()
        .map(|s| s.dns.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let Some(first) = ips.first() else {
        return Err(Error::invalid(
            "cluster.service_ips.dns",
            "no cluster DNS address for the kube-dns Service: run cidr-alloc before mkunits",
        ));
    };
    let families: Vec<&str> = ctx
        .doc
        .cluster
        .service_ips
        .iter()
        .flat_map(|s| &s.dns)
        .map(|ip| if ip.is_ipv6() { "IPv6" } else { "IPv4" })
        .collect();
    // Both addresses given: both required. One address in a dual-stack cluster: the apiserver
    // adds the other family's from the second service range.
    let policy = if ips.len() > 1 {
        "RequireDualStack"
    } else if ctx.is_dual_stack() {
        "PreferDualStack"
    } else {
        "SingleStack"
    };
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "selector": {"k8s-app": "kube-dns"},
            "clusterIP": first,
            "clusterIPs": ips,
            "ipFamilyPolicy": policy,
            "ipFamilies": families,
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
        },
    }))
}

/// The CoreDNS add-on: ServiceAccount, RBAC, Corefile, two replicas, the kube-dns Service.
fn coredns(ctx: &Ctx, image: &str) -> Result<Vec<Value>, Error> {
    let meta = |name: &str| json!({"name": name, "namespace": "kube-system"});
    Ok(vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("coredns")}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("coredns"),
            "data": {"Corefile": corefile(&ctx.doc.cluster.cluster_domain)},
        }),
        coredns_deployment(image),
        dns_service(ctx)?,
    ])
}

fn coredns_deployment(image: &str) -> Value {
    let labels = json!({"k8s-app": "kube-dns"});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                    ],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }]}},
                    "containers": [{
                        "name": "coredns",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true}],
                        "ports": [
                            {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                            {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                            {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "readOnlyRootFilesystem": true,
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                            "initialDelaySeconds": 60, "timeoutSeconds": 5,
                            "successThreshold": 1, "failureThreshold": 5,
                        },
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}},
                    }],
                    "dnsPolicy": "Default",
                    "volumes": [{
                        "name": "config-volume",
                        "configMap": {"name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]},
                    }],
                },
            },
        },
    })
}

/// Waits for the API (bounded), then applies both manifests server-side.
fn apply_script() -> String {
    format!(
        r#"#!/bin/sh
# Written by mkunits from the cluster document: applies the cluster add-ons once the API answers.
set -eu
export KUBECONFIG={kubeconfig}
kubectl={kubectl}
tries=0
until "$kubectl" --request-timeout=5s get --raw=/readyz >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "hardway-addons: error: the API did not answer /readyz within 5 minutes: check kube-apiserver.service" >&2
    exit 1
  fi
  sleep 5
done
"$kubectl" apply --server-side --force-conflicts --field-manager={manager} \
  -f {rbac} -f {dns}
"#,
        kubeconfig = k8s::ADMIN_KUBECONFIG,
        kubectl = files::KUBECTL,
        manager = FIELD_MANAGER,
        rbac = files::RBAC_MANIFEST,
        dns = files::DNS_MANIFEST,
    )
}

/// One line per node: name and the CIDRs the document gives it, space-separated in the order
/// the Node's `spec.podCIDRs` lists them.
fn pod_cidrs_script(nodes: &[&Node]) -> String {
    let mut table = String::new();
    for node in nodes {
        let cidrs: Vec<String> = node.pod_cidrs.iter().map(ToString::to_string).collect();
        table.push_str(&format!("{} {}\n", node.name, cidrs.join(" ")));
    }
    format!(
        r#"#!/bin/sh
# Written by mkunits from the cluster document: each Node's spec.podCIDRs, set once.
# A Node not registered yet is skipped (the timer runs this again); a Node whose CIDRs differ
# from the document is reported and left as it is (podCIDRs are immutable).
set -u
export KUBECONFIG={kubeconfig}
kubectl={kubectl}
status=0
while read -r node cidrs; do
  [ -n "$node" ] || continue
  if ! have=$("$kubectl" --request-timeout=10s get node "$node" --ignore-not-found \
      -o 'jsonpath={{.metadata.name}}|{{.spec.podCIDRs[*]}}'); then
    echo "hardway-pod-cidrs: cannot read node $node: the API is not answering yet" >&2
    status=1
    continue
  fi
  [ -n "$have" ] || continue
  have=${{have#*|}}
  if [ -z "$have" ]; then
    first=${{cidrs%% *}}
    list=$(printf '"%s",' $cidrs)
    patch="{{\"spec\":{{\"podCIDR\":\"$first\",\"podCIDRs\":[${{list%,}}]}}}}"
    if "$kubectl" patch node "$node" --type=merge -p "$patch" >/dev/null; then
      echo "hardway-pod-cidrs: node $node: podCIDRs set to $cidrs" >&2
    else
      status=1
    fi
  elif [ "$have" != "$cidrs" ]; then
    echo "hardway-pod-cidrs: error: node $node has podCIDRs $have but the document says $cidrs: not changed (immutable); fix the document or re-register the node" >&2
    status=1
  fi
done <<'EOF'
{table}EOF
exit "$status"
"#,
        kubeconfig = k8s::ADMIN_KUBECONFIG,
        kubectl = files::KUBECTL,
    )
}

fn pod_cidrs_timer() -> String {
    "# Written by mkunits from the cluster document: edit that, not this.\n\
     [Unit]\n\
     Description=Set each Node's spec.podCIDRs once its kubelet registered\n\
     Documentation=https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/\n\
     \n\
     [Timer]\n\
     OnActiveSec=10s\n\
     OnUnitInactiveSec=1min\n\
     \n\
     [Install]\n\
     WantedBy=timers.target\n"
        .to_string()
}
