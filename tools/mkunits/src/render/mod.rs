//! From the document to each node's files and services: pure functions, no I/O.
//!
//! [`render`] checks the whole document first (every address a unit will name must exist) and
//! only then builds the files, so a bad document fails before anything is written. Each role has
//! its own module; this one holds what every node gets (hosts, kernel settings, route-sync) and
//! the helpers the roles share.

pub(crate) mod addons;
pub(crate) mod control;
pub mod egress;
pub(crate) mod etcd;
pub(crate) mod flannel;
pub(crate) mod lb;
pub(crate) mod masquerade;
pub(crate) mod preflight;
pub(crate) mod runtime;
pub(crate) mod worker;

use std::net::IpAddr;

use hardway::doc::{ContainerRuntime, Document, KubeProxyMode, Node, PodNetwork};
use hardway::k8s::Release;
use hardway::{Error, Role};
use serde_json::Value;

use crate::layout;
use crate::unit::{ExecLine, Unit};
use crate::Options;

pub use etcd::EtcdTuning;

/// One file a node gets: where it goes on the node, its bytes and its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    pub dest: String,
    pub contents: Vec<u8>,
    /// Octal string, as in the document: "0644".
    pub mode: &'static str,
    /// Services to restart when this file changes, for a unit that does not name the file
    /// itself (Debian's haproxy.service and keepalived.service read fixed paths; crio reads its
    /// drop-in directory). Recorded as the entry's `restart` list, which node-push follows.
    pub restart: Vec<String>,
}

/// Everything one node gets from mkunits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub name: String,
    pub files: Vec<NodeFile>,
    /// The units to enable and start, in order.
    pub services: Vec<String>,
    /// Programs the node needs that are not in Debian's packages, by file name, each to go to
    /// `hardway::paths::hardway::BIN_DIR`: route-sync (hardway's) and the Kubernetes binaries
    /// its roles run.
    pub binaries: Vec<&'static str>,
}

/// What every renderer needs: the document, the options, and decisions made once for all nodes.
pub(crate) struct Ctx<'a> {
    pub doc: &'a Document,
    pub opts: &'a Options,
    pub pod_network: PodNetwork,
    /// The version table entry of the document's Kubernetes version: every per-release flag,
    /// field and image comes from it.
    pub release: &'static Release,
    /// The document's `cluster.container_runtime`.
    pub runtime: ContainerRuntime,
    /// The document's `cluster.kube_proxy_mode` (iptables when absent).
    pub proxy_mode: KubeProxyMode,
    /// Nodes that hold the API VIP with keepalived (the lb nodes, or the controllers when
    /// there is no lb node and the VIP is not a node's own address).
    pub vip_holders: Vec<&'a Node>,
}

impl<'a> Ctx<'a> {
    /// Fails, with the JSON path, on what every renderer relies on: a supported Kubernetes
    /// version and a container runtime it runs with, both chosen by mkcluster.
    pub fn new(doc: &'a Document, opts: &'a Options) -> Result<Ctx<'a>, Error> {
        let cluster = &doc.cluster;
        let (release, _warning) = hardway::k8s::release_for(cluster)
            .map_err(|why| Error::invalid("cluster.kubernetes_version", why))?;
        let runtime = cluster.container_runtime.ok_or_else(|| {
            Error::invalid(
                "cluster.container_runtime",
                "not set: choose the nodes' runtime with mkcluster --container-runtime \
                 containerd-2|containerd-1|cri-o (mkunits never guesses it)",
            )
        })?;
        release
            .check_runtime(runtime)
            .map_err(|why| Error::invalid("cluster.container_runtime", why))?;
        let proxy_mode = cluster.kube_proxy_mode.unwrap_or(KubeProxyMode::Iptables);
        release
            .check_proxy_mode(proxy_mode)
            .map_err(|why| Error::invalid("cluster.kube_proxy_mode", why))?;
        check_assertions(doc, opts, runtime)?;
        let vip_holders = hardway::vip::api_vip_holders(doc);
        Ok(Ctx {
            doc,
            opts,
            pod_network: cluster.pod_network,
            release,
            runtime,
            proxy_mode,
            vip_holders,
        })
    }

    pub fn holds_vip(&self, node: &Node) -> bool {
        self.vip_holders.iter().any(|n| n.name == node.name)
    }

    /// A node holding the VIP runs haproxy unless it is a controller: then its own apiserver
    /// answers on the VIP (haproxy could not bind the API port next to it).
    pub fn runs_haproxy(&self, node: &Node) -> bool {
        self.holds_vip(node) && !node.has_role(Role::Controller)
    }

    pub fn index_of(&self, node: &Node) -> usize {
        self.doc
            .nodes
            .iter()
            .position(|n| n.name == node.name)
            .expect("the node is in the document")
    }

    /// The node's first address, which etcd, the API and SSH use.
    pub fn primary_ip(&self, node: &Node) -> Result<IpAddr, Error> {
        node.primary_ip().ok_or_else(|| {
            Error::invalid(
                format!("nodes[{}].ips", self.index_of(node)),
                format!(
                    "node {:?} has no address: run cidr-alloc before mkunits",
                    node.name
                ),
            )
        })
    }

    pub fn etcd_nodes(&self) -> Vec<&'a Node> {
        self.doc.nodes_with(Role::Etcd).collect()
    }

    /// `https://IP:2379,…` of every etcd member.
    pub fn etcd_client_urls(&self) -> Result<String, Error> {
        let urls = self
            .etcd_nodes()
            .into_iter()
            .map(|n| Ok(url("https", self.primary_ip(n)?, etcd::CLIENT_PORT)))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(urls.join(","))
    }

    pub fn is_dual_stack(&self) -> bool {
        let nets = &self.doc.cluster.networks;
        let has = |v6: bool| {
            nets.pod
                .iter()
                .any(|n| matches!(n, ipnet::IpNet::V6(_)) == v6)
        };
        has(true) && has(false)
    }

    pub fn has_ipv6(&self) -> bool {
        let nets = &self.doc.cluster.networks;
        nets.pod
            .iter()
            .chain(&nets.node)
            .chain(&nets.service)
            .any(|n| matches!(n, ipnet::IpNet::V6(_)))
    }

    /// The fully qualified name of a node: its `fqdn`, else `name.domain`.
    pub fn fqdn(&self, node: &Node) -> String {
        node.fqdn
            .clone()
            .unwrap_or_else(|| format!("{}.{}", node.name, self.doc.cluster.domain))
    }

    /// The API URL every component outside the controllers uses: `cluster.api.endpoint`, else the
    /// VIP, else the first controller.
    pub fn api_endpoint(&self) -> Result<String, Error> {
        let api = &self.doc.cluster.api;
        if let Some(endpoint) = &api.endpoint {
            return Ok(endpoint.clone());
        }
        if let Some(vip) = api.vip {
            return Ok(url("https", vip, api.port));
        }
        let first = self
            .doc
            .nodes_with(Role::Controller)
            .next()
            .ok_or_else(|| {
                Error::invalid(
                    "cluster.api",
                    "no API endpoint, VIP or controller node: add a node with role controller",
                )
            })?;
        Ok(url("https", self.primary_ip(first)?, api.port))
    }
}

/// mkunits' `--container-runtime` and `--pod-network` only assert the document's choices:
/// mkcluster makes them, and mkcerts has already issued the certificates for them (flanneld's
/// etcd client certificate exists only when the document said flannel before mkcerts).
fn check_assertions(
    doc: &Document,
    opts: &Options,
    runtime: ContainerRuntime,
) -> Result<(), Error> {
    if let Some(expected) = opts.expect_runtime.filter(|r| *r != runtime) {
        return Err(Error::invalid(
            "cluster.container_runtime",
            format!(
                "the document says {:?} but --container-runtime says {:?}: the runtime is \
                 chosen with mkcluster --container-runtime; rerun the pipeline from there",
                runtime.name(),
                expected.name()
            ),
        ));
    }
    let network = doc.cluster.pod_network;
    if let Some(expected) = opts.expect_pod_network.filter(|p| *p != network) {
        let name = |p: PodNetwork| match p {
            PodNetwork::Routes => "routes",
            PodNetwork::Flannel => "flannel",
        };
        return Err(Error::invalid(
            "cluster.pod_network",
            format!(
                "the document says {:?} but --pod-network says {:?}: the pod network is chosen \
                 with mkcluster --pod-routing, before mkcerts issues its certificates; rerun the \
                 pipeline from there",
                name(network),
                name(expected)
            ),
        ));
    }
    Ok(())
}

/// `scheme://host:port`, with IPv6 hosts in brackets.
pub fn url(scheme: &str, ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}"),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}"),
    }
}

/// Joins displayable things with commas: CIDR lists and address lists as flags take them.
pub fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A YAML file from a JSON value (key order kept), with a header comment.
pub fn yaml(value: &Value) -> Vec<u8> {
    let body = serde_yaml_ng::to_string(value).expect("a JSON value always serializes to YAML");
    format!("# Written by mkunits from the cluster document.\n{body}").into_bytes()
}

/// A TOML file from a JSON value (objects become tables, key order kept), with a header comment
/// naming where its layout comes from. Written with the `toml` crate, so every value is escaped
/// as TOML requires.
pub fn toml(value: &Value, about: &str) -> Vec<u8> {
    let body = ::toml::to_string(value).expect("a JSON value without nulls serializes to TOML");
    format!("# Written by mkunits from the cluster document.\n# {about}\n{body}").into_bytes()
}

/// Pretty JSON with a final newline.
pub fn json(value: &Value) -> Vec<u8> {
    hardway::json::to_string_pretty(value).into_bytes()
}

/// Collects one node's files and services as the roles add them.
pub(crate) struct Builder {
    pub files: Vec<NodeFile>,
    pub services: Vec<String>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            files: Vec::new(),
            services: Vec::new(),
        }
    }

    pub fn file(&mut self, dest: &str, contents: Vec<u8>) {
        self.file_mode(dest, contents, hardway::paths::mode::PUBLIC);
    }

    pub fn file_mode(&mut self, dest: &str, contents: Vec<u8>, mode: &'static str) {
        self.files.push(NodeFile {
            dest: dest.to_string(),
            contents,
            mode,
            restart: Vec::new(),
        });
    }

    /// Adds a configuration file that `service` reads at start without its unit naming the path:
    /// a change to it restarts `service`.
    pub fn config_of(&mut self, service: &str, dest: &str, contents: Vec<u8>) {
        self.file(dest, contents);
        if let Some(file) = self.files.last_mut() {
            file.restart.push(service.to_string());
        }
    }

    /// Adds a unit file and enables it, after the ones added before.
    pub fn service(&mut self, unit: &Unit) {
        self.file(&layout::unit_path(&unit.name), unit.render().into_bytes());
        self.services.push(unit.name.clone());
    }
}

/// Every node's files and services, in document order. Fails, before building anything, on the
/// first thing the document lacks.
pub fn render(doc: &Document, opts: &Options) -> Result<Vec<NodePlan>, Error> {
    let ctx = Ctx::new(doc, opts)?;
    check(&ctx)?;
    let node_doc = node_document(doc);
    doc.nodes
        .iter()
        .map(|node| render_node(&ctx, node, &node_doc))
        .collect()
}

/// What the renderers rely on, checked once with JSON paths in the errors.
fn check(ctx: &Ctx) -> Result<(), Error> {
    let doc = ctx.doc;
    let nets = &doc.cluster.networks;
    if nets.pod.is_empty() {
        return Err(Error::invalid(
            "cluster.networks.pod",
            "no pod network: give mkcluster a pod range",
        ));
    }
    if nets.service.is_empty() {
        return Err(Error::invalid(
            "cluster.networks.service",
            "no service network: give mkcluster a service range",
        ));
    }
    for (i, node) in doc.nodes.iter().enumerate() {
        ctx.primary_ip(node)?;
        if node.has_role(Role::Worker) {
            if ctx.pod_network == PodNetwork::Routes && node.pod_cidrs.is_empty() {
                return Err(Error::invalid(
                    format!("nodes[{i}].pod_cidrs"),
                    format!(
                        "worker {:?} has no pod CIDR: run cidr-alloc before mkunits",
                        node.name
                    ),
                ));
            }
            if doc
                .cluster
                .service_ips
                .as_ref()
                .is_none_or(|s| s.dns.is_empty())
            {
                return Err(Error::invalid(
                    "cluster.service_ips.dns",
                    "no cluster DNS address for kubelet: run cidr-alloc before mkunits",
                ));
            }
        }
        if node.has_role(Role::Controller) && ctx.etcd_nodes().is_empty() {
            return Err(Error::invalid(
                "nodes",
                "controllers need etcd: give at least one node the role etcd",
            ));
        }
    }
    if ctx.pod_network == PodNetwork::Flannel && ctx.etcd_nodes().is_empty() {
        return Err(Error::invalid(
            "cluster.pod_network",
            "flannel keeps its configuration in etcd: give at least one node the role etcd",
        ));
    }
    if !ctx.vip_holders.is_empty() && doc.nodes_with(Role::Controller).next().is_none() {
        return Err(Error::invalid(
            "nodes",
            "load balancers need controllers to send the API to: add a controller node",
        ));
    }
    etcd::check_tuning(&ctx.opts.etcd)?;
    Ok(())
}

fn render_node(ctx: &Ctx, node: &Node, node_doc: &[u8]) -> Result<NodePlan, Error> {
    let mut b = Builder::new();
    if preflight::needed(node) {
        // First, so node-push (which starts services in order and stops a node at the first
        // failure) never starts the runtime or the kubelet on a cgroup v1 host.
        preflight::render(&mut b);
    }
    common(ctx, node, node_doc, &mut b)?;
    if node.has_role(Role::Etcd) {
        etcd::render(ctx, node, &mut b)?;
        if ctx.pod_network == PodNetwork::Flannel
            && ctx.etcd_nodes().first().map(|n| &n.name) == Some(&node.name)
        {
            flannel::store_config(ctx, &mut b)?;
        }
    }
    if node.has_role(Role::Controller) {
        control::render(ctx, node, &mut b)?;
        if addons::applier(ctx).map(|n| &n.name) == Some(&node.name) {
            addons::render(ctx, &mut b)?;
        }
    }
    if node.has_role(Role::Worker) {
        // Before the runtime and kubelet, as its unit orders it: no pod leaves unmasqueraded.
        if ctx.pod_network == PodNetwork::Routes {
            masquerade::render(ctx, node, &mut b)?;
        }
        worker::render(ctx, node, &mut b)?;
    }
    if ctx.holds_vip(node) {
        lb::render(ctx, node, &mut b)?;
    }
    Ok(NodePlan {
        name: node.name.clone(),
        files: b.files,
        services: b.services,
        binaries: binaries(ctx, node),
    })
}

/// Kubernetes' own binaries by role, and route-sync with routed pod networks.
pub const ROUTE_SYNC: &str = "route-sync";
/// kubectl applies the add-ons (render/addons.rs) and is at hand for the user on every controller.
pub const CONTROLLER_BINARIES: [&str; 4] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
];
pub const WORKER_BINARIES: [&str; 2] = ["kubelet", "kube-proxy"];
/// containerd 2 and the runc it runs: not in Debian, so shipped like the Kubernetes binaries
/// (scripts/fetch-kubernetes.sh puts them in the same directory).
pub const CONTAINERD2_BINARIES: [&str; 3] = ["containerd", "containerd-shim-runc-v2", "runc"];

fn binaries(ctx: &Ctx, node: &Node) -> Vec<&'static str> {
    let mut names = Vec::new();
    if ctx.pod_network == PodNetwork::Routes {
        names.push(ROUTE_SYNC);
    }
    if node.has_role(Role::Controller) {
        names.extend(CONTROLLER_BINARIES);
    }
    if node.has_role(Role::Worker) {
        names.extend(WORKER_BINARIES);
        if ctx.runtime == ContainerRuntime::Containerd2 {
            names.extend(CONTAINERD2_BINARIES);
        }
    }
    names
}

/// What every node gets: /etc/hosts, kernel modules and sysctls (and a unit applying them now,
/// not only at the next boot), and with routed pod networks the document and route-sync.service.
fn common(ctx: &Ctx, node: &Node, node_doc: &[u8], b: &mut Builder) -> Result<(), Error> {
    b.file(layout::HOSTS, hosts(ctx).into_bytes());
    b.file(
        layout::MODULES_LOAD,
        b"# Written by mkunits.\noverlay\nbr_netfilter\n".to_vec(),
    );
    b.file(layout::SYSCTL, sysctl(ctx, node).into_bytes());
    let kernel = Unit::oneshot(
        "hardway-kernel.service",
        "Kernel modules and sysctls for Kubernetes, applied now as at boot",
        "man:modules-load.d(5) man:sysctl.d(5)",
        vec![
            ExecLine::new(layout::bin::MODPROBE)
                .arg("-a")
                .arg("overlay")
                .arg("br_netfilter"),
            ExecLine::new(layout::bin::SYSTEMD_SYSCTL).arg(layout::SYSCTL),
        ],
    )
    .after(&["systemd-modules-load.service", "systemd-sysctl.service"])
    .before(&[
        "etcd.service",
        "containerd.service",
        "crio.service",
        "kubelet.service",
        "kube-proxy.service",
        "haproxy.service",
        "keepalived.service",
    ]);
    b.service(&kernel);
    if ctx.pod_network == PodNetwork::Routes {
        b.file(hardway::paths::hardway::DOCUMENT, node_doc.to_vec());
        let route_sync = Unit::oneshot(
            "route-sync.service",
            "Routes to the other nodes' pod CIDRs (hardway route-sync)",
            "man:route-sync(1)",
            vec![ExecLine::new(layout::bin::ROUTE_SYNC)
                .arg("--node")
                .arg(node.name.as_str())
                .arg("-f")
                .arg(hardway::paths::hardway::DOCUMENT)],
        )
        .wants(&["network-online.target"])
        .after(&["network-online.target"]);
        b.service(&route_sync);
    }
    Ok(())
}

/// One /etc/hosts for every node (docs/sources.md#seed-003): localhost, then every node's addresses with its FQDN
/// and short name.
fn hosts(ctx: &Ctx) -> String {
    let mut text = String::from(
        "# Written by mkunits from the cluster document.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n\n",
    );
    text.push_str(&format!("# cluster {}\n", ctx.doc.cluster.name));
    for node in &ctx.doc.nodes {
        for ip in &node.ips {
            text.push_str(&format!("{ip}\t{} {}\n", ctx.fqdn(node), node.name));
        }
    }
    text
}

fn sysctl(ctx: &Ctx, node: &Node) -> String {
    let mut text = String::from(
        "# Written by mkunits: forwarding for pods and services, bridged traffic through iptables.\n\
         net.ipv4.ip_forward = 1\n\
         net.bridge.bridge-nf-call-iptables = 1\n\
         net.bridge.bridge-nf-call-ip6tables = 1\n",
    );
    if ctx.has_ipv6() {
        text.push_str("net.ipv6.conf.all.forwarding = 1\n");
    }
    if ctx.runs_haproxy(node) {
        // haproxy binds the VIP on every lb node, also where keepalived has not put it (yet).
        text.push_str("net.ipv4.ip_nonlocal_bind = 1\n");
        if ctx.has_ipv6() {
            text.push_str("net.ipv6.ip_nonlocal_bind = 1\n");
        }
    }
    text
}

/// The node's copy of the document: the cluster section and each node's name, roles, addresses
/// and pod CIDRs — what `route-sync --node` reads. No files, services, PKI or VM state, so it does
/// not change when they do (and cannot contain its own checksum).
///
/// On a cluster across several hypervisors it also keeps `hypervisors` and each node's `host`:
/// route-sync reaches a node on another hypervisor via this node's own gateway, which it finds
/// from them (without them it routes via the other node's address, on-link only on that node's
/// hypervisor, and route-sync.service fails: found by tests/hypervisors cluster). On one machine
/// the copy is what it was, byte for byte.
pub fn node_document(doc: &Document) -> Vec<u8> {
    let cluster = doc.cluster.clone();
    let several = !doc.hypervisors.is_empty();
    let hypervisors = doc
        .hypervisors
        .iter()
        .map(|h| hardway::doc::HypervisorHost {
            extra: Default::default(),
            ..h.clone()
        })
        .collect();
    let nodes = doc
        .nodes
        .iter()
        .map(|n| Node {
            name: n.name.clone(),
            fqdn: n.fqdn.clone(),
            roles: n.roles.clone(),
            ips: n.ips.clone(),
            pod_cidrs: n.pod_cidrs.clone(),
            mac: None,
            vcpus: n.vcpus,
            memory_mib: n.memory_mib,
            disk_gib: n.disk_gib,
            host: if several { n.host.clone() } else { None },
            files: Vec::new(),
            services: Vec::new(),
            vm: None,
            etcd: None,
            extra: Default::default(),
        })
        .collect();
    let trimmed = Document {
        version: doc.version,
        cluster,
        hypervisor: None,
        hypervisors,
        nodes,
        pki: None,
        extra: Default::default(),
    };
    hardway::doc::to_string(&trimmed).into_bytes()
}

#[cfg(test)]
mod node_document_tests {
    use super::*;

    /// Found by the mkunits_render fuzzer: an unknown key under `cluster` (kept in `extra`, which
    /// the read-time checks leave alone) holding DEL reached the node's /etc/hardway/cluster.json
    /// raw. The copy escapes it and still reads back as the same document.
    #[test]
    fn a_hostile_character_in_an_extra_key_is_escaped_in_the_node_copy() {
        let mut doc = testkit::fixture_document("lab.json");
        doc.cluster
            .extra
            .insert("kube_proxy\u{7f}mode".into(), "iptables\u{2028}".into());
        let copy = String::from_utf8(node_document(&doc)).unwrap();
        assert!(
            !copy.chars().any(|c| c == '\u{7f}' || c == '\u{2028}'),
            "{copy}"
        );
        assert!(
            copy.contains(r#""kube_proxy\u007fmode": "iptables\u2028""#),
            "{copy}"
        );
        let back = hardway::doc::parse(&copy, "copy").unwrap();
        assert_eq!(back.cluster.extra, doc.cluster.extra);
    }

    fn copy_of(doc: &Document) -> Document {
        let copy = String::from_utf8(node_document(doc)).unwrap();
        hardway::doc::parse(&copy, "copy").unwrap()
    }

    /// route-sync --node finds a node's hypervisor, and so its gateway, from the copy alone.
    #[test]
    fn the_copy_keeps_each_nodes_hypervisor_on_a_cluster_across_several() {
        let doc = testkit::fixture_document("hypervisors/two.json");
        let copy = copy_of(&doc);
        assert_eq!(copy.hypervisors.len(), 2);
        for (node, original) in copy.nodes.iter().zip(&doc.nodes) {
            let name = |d: &Document, n| d.hypervisor_of(n).map(|h| h.name.clone());
            assert!(name(&copy, node).is_some(), "{node:?}");
            assert_eq!(name(&copy, node), name(&doc, original));
        }
    }

    /// On one machine the copy names no host, as before, even where the document does.
    #[test]
    fn the_copy_on_one_machine_names_no_host() {
        let mut doc = testkit::fixture_document("lab.json");
        doc.nodes[0].host = Some("qemu:///system".into());
        let copy = copy_of(&doc);
        assert!(copy.hypervisors.is_empty());
        assert!(copy.nodes.iter().all(|n| n.host.is_none()));
    }
}
