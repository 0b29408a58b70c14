//! What the PKI holds for a document: the CAs, every leaf with its subject, SANs and usages, and
//! where each file goes locally (under `OUT/pki/`) and on which nodes (`hardway::paths`).
//!
//! Plain data from the document alone, no crypto and no disk, so it is unit-tested directly and
//! the same list drives issuing, `--dry-run` and the `files` entries.

use std::net::IpAddr;

use hardway::doc::{Document, PodNetwork, Role};
use hardway::paths::{self, cert};

use crate::error::MkcertsError;

/// The three certificate authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ca {
    Kubernetes,
    Etcd,
    FrontProxy,
}

impl Ca {
    pub const ALL: [Ca; 3] = [Ca::Kubernetes, Ca::Etcd, Ca::FrontProxy];

    pub fn name(self) -> &'static str {
        match self {
            Ca::Kubernetes => cert::KUBERNETES_CA,
            Ca::Etcd => cert::ETCD_CA,
            Ca::FrontProxy => cert::FRONT_PROXY_CA,
        }
    }

    pub fn cert_path(self) -> String {
        format!("pki/ca/{}.pem", self.name())
    }

    pub fn key_path(self) -> String {
        format!("pki/ca/{}-key.pem", self.name())
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Extended key usages of a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
    ServerAndClient,
}

impl Usage {
    pub fn server(self) -> bool {
        matches!(self, Usage::Server | Usage::ServerAndClient)
    }
    pub fn client(self) -> bool {
        matches!(self, Usage::Client | Usage::ServerAndClient)
    }
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    pub fn parse(text: &str) -> San {
        match text.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(text.to_ascii_lowercase()),
        }
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(name) => f.write_str(name),
            San::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// One leaf certificate to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The name in `pki.certs` (`hardway::paths::cert`).
    pub name: &'static str,
    /// The node for per-node leaves.
    pub node: Option<String>,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub sans: Vec<San>,
    pub usage: Usage,
    pub ca: Ca,
}

impl Leaf {
    pub fn cert_path(&self) -> String {
        match &self.node {
            Some(node) => format!("pki/nodes/{node}/{}.pem", self.name),
            None => format!("pki/cluster/{}.pem", self.name),
        }
    }

    pub fn key_path(&self) -> String {
        match &self.node {
            Some(node) => format!("pki/nodes/{node}/{}-key.pem", self.name),
            None => format!("pki/cluster/{}-key.pem", self.name),
        }
    }

    /// `name` or `name@node`, for logs and the dry-run plan.
    pub fn label(&self) -> String {
        match &self.node {
            Some(node) => format!("{}@{node}", self.name),
            None => self.name.to_string(),
        }
    }
}

/// A kubeconfig to write: who it is for, which leaf it embeds and the server it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    /// Local path under OUT.
    pub path: String,
    /// The leaf it embeds (its name and node).
    pub leaf: &'static str,
    pub node: Option<String>,
    pub user: String,
    pub server: String,
}

/// Where a local file goes on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub src: String,
    pub dest: &'static str,
    pub secret: bool,
}

/// The whole PKI of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub leaves: Vec<Leaf>,
    pub kubeconfigs: Vec<Kubeconfig>,
    /// Per node (same order as the document's nodes): what it gets.
    pub installs: Vec<(String, Vec<Install>)>,
    /// What the user should know about the plan (printed on stderr, never an error).
    pub warnings: Vec<String>,
}

/// The admin kubeconfig that reaches the API from outside the cluster, through
/// `cluster.api.endpoint` (else the VIP, else the first controller); the node-local one,
/// `pki/kubeconfigs/admin.kubeconfig`, goes to the controllers and points at 127.0.0.1.
pub const ADMIN_EXTERNAL_KUBECONFIG: &str = "pki/kubeconfigs/admin-external.kubeconfig";
pub const SA_KEY: &str = "pki/cluster/sa.key";
pub const SA_PUB: &str = "pki/cluster/sa.pub";
pub const ENCRYPTION_CONFIG: &str = "pki/cluster/encryption-config.yaml";

/// Options from the command line that shape the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub extra_sans: Vec<String>,
}

fn push_unique(sans: &mut Vec<San>, san: San) {
    if !sans.contains(&san) {
        sans.push(san);
    }
}

/// Builds the plan, checking what the certificates need from the document.
pub fn plan(doc: &Document, options: &PlanOptions) -> Result<Plan, MkcertsError> {
    check_addresses(doc)?;
    let endpoint = api_endpoint(doc)?;
    let controller_vip = controller_vip(doc)?;
    let mut leaves = etcd_leaves(doc);
    leaves.extend(control_plane_leaves(doc, &endpoint, &options.extra_sans)?);
    leaves.extend(worker_leaves(doc));
    let installs = doc
        .nodes
        .iter()
        .map(|node| (node.name.clone(), installs_for(doc, node)))
        .collect();
    Ok(Plan {
        leaves,
        kubeconfigs: kubeconfigs(doc, &endpoint),
        installs,
        warnings: unnamed_controller_vip(controller_vip, &options.extra_sans)
            .into_iter()
            .collect(),
    })
}

/// Certificates name a service IP and each node's addresses: both must be there.
fn check_addresses(doc: &Document) -> Result<(), MkcertsError> {
    if doc.cluster.networks.service.is_empty() {
        return Err(MkcertsError::bad(
            "cluster.networks.service",
            "no service range: the kube-apiserver certificate needs the `kubernetes` service IP; \
             set it (mkcluster --service-cidr) and run cidr-alloc",
        ));
    }
    for (i, node) in doc.nodes.iter().enumerate() {
        if node.ips.is_empty() {
            return Err(MkcertsError::bad(
                format!("nodes[{i}].ips"),
                format!(
                    "node {:?} has no IP address, which its certificates need: run cidr-alloc first",
                    node.name
                ),
            ));
        }
    }
    Ok(())
}

/// The `kubernetes` ClusterIP of each family: from cidr-alloc, else the first host of the range.
fn kubernetes_ips(doc: &Document) -> Vec<IpAddr> {
    let cluster = &doc.cluster;
    match &cluster.service_ips {
        Some(ips) if !ips.kubernetes.is_empty() => ips.kubernetes.clone(),
        _ => cluster
            .networks
            .service
            .iter()
            .filter_map(|net| net.hosts().next())
            .collect(),
    }
}

/// `cluster.controller_vip`, checked to be an address.
fn controller_vip(doc: &Document) -> Result<Option<IpAddr>, MkcertsError> {
    match doc.cluster.extra.get("controller_vip") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value
            .as_str()
            .and_then(|s| s.parse::<IpAddr>().ok())
            .map(Some)
            .ok_or_else(|| {
                MkcertsError::bad(
                    "cluster.controller_vip",
                    format!("{value} is not an IP address"),
                )
            }),
    }
}

fn dns(name: &str) -> San {
    San::Dns(name.to_ascii_lowercase())
}

/// A node's own names and addresses.
fn node_sans(node: &hardway::Node) -> Vec<San> {
    let mut sans = vec![dns(&node.name)];
    if let Some(fqdn) = &node.fqdn {
        push_unique(&mut sans, dns(fqdn));
    }
    for ip in &node.ips {
        push_unique(&mut sans, San::Ip(*ip));
    }
    sans
}

/// `localhost` and 127.0.0.1 (and ::1 with `v6`), for clients on the node itself.
fn push_loopback(sans: &mut Vec<San>, v6: bool) {
    push_unique(sans, dns("localhost"));
    push_unique(sans, San::Ip(IpAddr::from([127, 0, 0, 1])));
    if v6 {
        push_unique(sans, San::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)));
    }
}

/// A cluster-wide client certificate.
fn client(name: &'static str, cn: &str, orgs: &[&str], ca: Ca) -> Leaf {
    Leaf {
        name,
        node: None,
        common_name: cn.to_string(),
        organizations: orgs.iter().map(|o| o.to_string()).collect(),
        sans: Vec::new(),
        usage: Usage::Client,
        ca,
    }
}

/// etcd: a serving and a peer certificate per member; one health-check client (etcd-check,
/// etcdctl on a member) and the API server's client, as kubeadm names them; flannel's client.
fn etcd_leaves(doc: &Document) -> Vec<Leaf> {
    let mut leaves = Vec::new();
    for node in doc.nodes_with(Role::Etcd) {
        let mut sans = node_sans(node);
        push_loopback(&mut sans, true);
        for name in [cert::ETCD_SERVER, cert::ETCD_PEER] {
            leaves.push(Leaf {
                name,
                node: Some(node.name.clone()),
                common_name: node.name.clone(),
                organizations: Vec::new(),
                sans: sans.clone(),
                usage: Usage::ServerAndClient,
                ca: Ca::Etcd,
            });
        }
    }
    leaves.push(client(
        cert::ETCD_HEALTHCHECK_CLIENT,
        "kube-etcd-healthcheck-client",
        &[],
        Ca::Etcd,
    ));
    leaves.push(client(
        cert::APISERVER_ETCD_CLIENT,
        "kube-apiserver-etcd-client",
        &[],
        Ca::Etcd,
    ));
    if doc.cluster.pod_network == PodNetwork::Flannel {
        leaves.push(client(cert::FLANNEL_ETCD_CLIENT, "flannel", &[], Ca::Etcd));
    }
    leaves
}

/// The control plane: each controller's kube-apiserver serving certificate, then the clients
/// of the API server, the controller manager, the scheduler and the admin.
fn control_plane_leaves(
    doc: &Document,
    endpoint: &Endpoint,
    extra_sans: &[String],
) -> Result<Vec<Leaf>, MkcertsError> {
    let mut leaves = Vec::new();
    for node in doc.nodes_with(Role::Controller) {
        leaves.push(Leaf {
            name: cert::APISERVER,
            node: Some(node.name.clone()),
            common_name: "kube-apiserver".into(),
            organizations: Vec::new(),
            sans: apiserver_sans(doc, node, endpoint, extra_sans)?,
            usage: Usage::Server,
            ca: Ca::Kubernetes,
        });
    }
    leaves.extend([
        client(
            cert::APISERVER_KUBELET_CLIENT,
            cert::APISERVER_KUBELET_CLIENT_USER,
            &["system:masters"],
            Ca::Kubernetes,
        ),
        client(
            cert::FRONT_PROXY_CLIENT,
            "front-proxy-client",
            &[],
            Ca::FrontProxy,
        ),
        client(
            cert::CONTROLLER_MANAGER,
            "system:kube-controller-manager",
            &["system:kube-controller-manager"],
            Ca::Kubernetes,
        ),
        client(
            cert::SCHEDULER,
            "system:kube-scheduler",
            &["system:kube-scheduler"],
            Ca::Kubernetes,
        ),
        client(cert::ADMIN, "admin", &["system:masters"], Ca::Kubernetes),
    ]);
    Ok(leaves)
}

/// Every name a client may reach this controller's API server by: the `kubernetes` service
/// names and IPs, the node, the held VIP, the endpoint's host, the load balancers, loopback and
/// `--extra-san`.
fn apiserver_sans(
    doc: &Document,
    node: &hardway::Node,
    endpoint: &Endpoint,
    extra_sans: &[String],
) -> Result<Vec<San>, MkcertsError> {
    let cluster = &doc.cluster;
    let mut sans = vec![
        dns("kubernetes"),
        dns("kubernetes.default"),
        dns("kubernetes.default.svc"),
        dns(&format!(
            "kubernetes.default.svc.{}",
            cluster.cluster_domain
        )),
    ];
    for ip in kubernetes_ips(doc) {
        push_unique(&mut sans, San::Ip(ip));
    }
    for san in node_sans(node) {
        push_unique(&mut sans, san);
    }
    // The API VIP only when a node answers on it (hardway::vip, the decision mkunits'
    // keepalived follows): a name for an address nobody holds would let whoever takes that
    // address later pass as the API. `cluster.controller_vip` is never held (haproxy sends
    // to each controller's own address), so it is checked but never named; a user who puts
    // it on the controllers with their own keepalived adds it with --extra-san.
    if let Some(vip) = cluster
        .api
        .vip
        .filter(|_| hardway::vip::api_vip_is_held(doc))
    {
        push_unique(&mut sans, San::Ip(vip));
    }
    if let Some(host) = &endpoint.host_san {
        push_unique(&mut sans, host.clone());
    }
    for lb in doc.nodes_with(Role::Lb) {
        for san in node_sans(lb) {
            push_unique(&mut sans, san);
        }
    }
    push_loopback(&mut sans, false);
    for extra in extra_sans {
        let san = San::parse(extra);
        if let San::Dns(name) = &san {
            let bare = name.strip_prefix("*.").unwrap_or(name);
            hardway::validate::dns_name(bare)
                .map_err(|why| MkcertsError::bad("--extra-san", why))?;
        }
        push_unique(&mut sans, san);
    }
    Ok(sans)
}

/// Each worker's kubelet certificate (serving and client), then kube-proxy's client.
fn worker_leaves(doc: &Document) -> Vec<Leaf> {
    let mut leaves: Vec<Leaf> = doc
        .nodes_with(Role::Worker)
        .map(|node| Leaf {
            name: cert::KUBELET,
            node: Some(node.name.clone()),
            common_name: format!("system:node:{}", node.name),
            organizations: vec!["system:nodes".into()],
            sans: node_sans(node),
            usage: Usage::ServerAndClient,
            ca: Ca::Kubernetes,
        })
        .collect();
    leaves.push(client(
        cert::KUBE_PROXY,
        "system:kube-proxy",
        &["system:node-proxier"],
        Ca::Kubernetes,
    ));
    leaves
}

/// The kubeconfigs: node-local ones point at 127.0.0.1, the rest at the API endpoint.
fn kubeconfigs(doc: &Document, endpoint: &Endpoint) -> Vec<Kubeconfig> {
    let local = format!("https://127.0.0.1:{}", doc.cluster.api.port);
    let shared = |path: &str, leaf, user: &str, server: &str| Kubeconfig {
        path: path.into(),
        leaf,
        node: None,
        user: user.into(),
        server: server.to_string(),
    };
    let mut kubeconfigs = vec![
        shared(
            "pki/kubeconfigs/admin.kubeconfig",
            cert::ADMIN,
            "admin",
            &local,
        ),
        // The same credentials through the API endpoint, for kubectl on the hypervisor (or
        // any machine that reaches the VIP); installed on no node.
        shared(
            ADMIN_EXTERNAL_KUBECONFIG,
            cert::ADMIN,
            "admin",
            &endpoint.url,
        ),
        shared(
            "pki/kubeconfigs/kube-controller-manager.kubeconfig",
            cert::CONTROLLER_MANAGER,
            "system:kube-controller-manager",
            &local,
        ),
        shared(
            "pki/kubeconfigs/kube-scheduler.kubeconfig",
            cert::SCHEDULER,
            "system:kube-scheduler",
            &local,
        ),
        shared(
            "pki/kubeconfigs/kube-proxy.kubeconfig",
            cert::KUBE_PROXY,
            "system:kube-proxy",
            &endpoint.url,
        ),
    ];
    kubeconfigs.extend(doc.nodes_with(Role::Worker).map(|node| Kubeconfig {
        path: format!("pki/nodes/{}/kubelet.kubeconfig", node.name),
        leaf: cert::KUBELET,
        node: Some(node.name.clone()),
        user: format!("system:node:{}", node.name),
        server: endpoint.url.clone(),
    }));
    kubeconfigs
}

/// The warning for a `cluster.controller_vip` that no certificate names (unless --extra-san
/// names it).
fn unnamed_controller_vip(vip: Option<IpAddr>, extra_sans: &[String]) -> Option<String> {
    vip.filter(|vip| !extra_sans.iter().any(|s| San::parse(s) == San::Ip(*vip)))
        .map(|vip| {
            format!(
                "cluster.controller_vip {vip}: no node holds it (haproxy sends to each \
                 controller's own address), so the apiserver certificates do not name it; give \
                 --extra-san {vip} if keepalived of your own puts it on the controllers"
            )
        })
}

/// The API endpoint workers use, and the SAN its host adds to the serving certificate.
struct Endpoint {
    url: String,
    host_san: Option<San>,
}

fn api_endpoint(doc: &Document) -> Result<Endpoint, MkcertsError> {
    let api = &doc.cluster.api;
    if let Some(url) = &api.endpoint {
        let host = url
            .strip_prefix("https://")
            .map(|rest| rest.split('/').next().unwrap_or(rest))
            .ok_or_else(|| {
                MkcertsError::bad(
                    "cluster.api.endpoint",
                    format!("{} is not an https:// URL", hardway::error::quote(url)),
                )
            })?;
        // [v6]:port, v4:port, name:port, or no port.
        let host = if let Some(rest) = host.strip_prefix('[') {
            rest.split(']').next().unwrap_or(rest)
        } else {
            host.rsplit_once(':').map_or(host, |(h, _)| h)
        };
        return Ok(Endpoint {
            url: url.clone(),
            host_san: Some(San::parse(host)),
        });
    }
    let ip = match api.vip {
        Some(vip) => vip,
        None => doc
            .nodes_with(Role::Controller)
            .find_map(|n| n.primary_ip())
            .ok_or_else(|| {
                MkcertsError::bad(
                    "cluster.api",
                    "no API endpoint, VIP or controller with an IP: kubelet and kube-proxy \
                     kubeconfigs need one; set cluster.api.vip or add a controller",
                )
            })?,
    };
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    Ok(Endpoint {
        url: format!("https://{host}:{}", api.port),
        host_san: None,
    })
}

/// The files a node gets for its roles (local `src` under OUT, `dest` from `hardway::paths`).
fn installs_for(doc: &Document, node: &hardway::Node) -> Vec<Install> {
    let mut out = Vec::new();
    let mut add =
        |src: String, dest: &'static str, secret: bool| out.push(Install { src, dest, secret });
    let name = &node.name;
    let cluster_cert = |n: &str| format!("pki/cluster/{n}.pem");
    let cluster_key = |n: &str| format!("pki/cluster/{n}-key.pem");
    let node_cert = |n: &str| format!("pki/nodes/{name}/{n}.pem");
    let node_key = |n: &str| format!("pki/nodes/{name}/{n}-key.pem");
    if node.has_role(Role::Etcd) {
        use paths::etcd as e;
        add(Ca::Etcd.cert_path(), e::CA, false);
        add(node_cert(cert::ETCD_SERVER), e::SERVER_CERT, false);
        add(node_key(cert::ETCD_SERVER), e::SERVER_KEY, true);
        add(node_cert(cert::ETCD_PEER), e::PEER_CERT, false);
        add(node_key(cert::ETCD_PEER), e::PEER_KEY, true);
        add(
            cluster_cert(cert::ETCD_HEALTHCHECK_CLIENT),
            e::HEALTHCHECK_CERT,
            false,
        );
        add(
            cluster_key(cert::ETCD_HEALTHCHECK_CLIENT),
            e::HEALTHCHECK_KEY,
            true,
        );
    }
    if node.has_role(Role::Controller) {
        use paths::kubernetes as k;
        add(Ca::Kubernetes.cert_path(), k::CA, false);
        add(Ca::Kubernetes.key_path(), k::CA_KEY, true);
        add(node_cert(cert::APISERVER), k::APISERVER_CERT, false);
        add(node_key(cert::APISERVER), k::APISERVER_KEY, true);
        add(Ca::Etcd.cert_path(), k::ETCD_CA, false);
        add(
            cluster_cert(cert::APISERVER_ETCD_CLIENT),
            k::APISERVER_ETCD_CLIENT_CERT,
            false,
        );
        add(
            cluster_key(cert::APISERVER_ETCD_CLIENT),
            k::APISERVER_ETCD_CLIENT_KEY,
            true,
        );
        add(
            cluster_cert(cert::APISERVER_KUBELET_CLIENT),
            k::APISERVER_KUBELET_CLIENT_CERT,
            false,
        );
        add(
            cluster_key(cert::APISERVER_KUBELET_CLIENT),
            k::APISERVER_KUBELET_CLIENT_KEY,
            true,
        );
        add(Ca::FrontProxy.cert_path(), k::FRONT_PROXY_CA, false);
        add(
            cluster_cert(cert::FRONT_PROXY_CLIENT),
            k::FRONT_PROXY_CLIENT_CERT,
            false,
        );
        add(
            cluster_key(cert::FRONT_PROXY_CLIENT),
            k::FRONT_PROXY_CLIENT_KEY,
            true,
        );
        add(SA_KEY.into(), k::SA_KEY, true);
        add(SA_PUB.into(), k::SA_PUB, false);
        add(ENCRYPTION_CONFIG.into(), k::ENCRYPTION_CONFIG, true);
        add(
            "pki/kubeconfigs/kube-controller-manager.kubeconfig".into(),
            k::CONTROLLER_MANAGER_KUBECONFIG,
            true,
        );
        add(
            "pki/kubeconfigs/kube-scheduler.kubeconfig".into(),
            k::SCHEDULER_KUBECONFIG,
            true,
        );
        add(
            "pki/kubeconfigs/admin.kubeconfig".into(),
            k::ADMIN_KUBECONFIG,
            true,
        );
    }
    if node.has_role(Role::Worker) {
        use paths::kubelet as l;
        add(Ca::Kubernetes.cert_path(), l::CA, false);
        add(node_cert(cert::KUBELET), l::CERT, false);
        add(node_key(cert::KUBELET), l::KEY, true);
        add(
            format!("pki/nodes/{name}/kubelet.kubeconfig"),
            l::KUBECONFIG,
            true,
        );
        add(
            "pki/kubeconfigs/kube-proxy.kubeconfig".into(),
            paths::kube_proxy::KUBECONFIG,
            true,
        );
        if doc.cluster.pod_network == PodNetwork::Flannel {
            use paths::flannel as f;
            add(Ca::Etcd.cert_path(), f::ETCD_CA, false);
            add(cluster_cert(cert::FLANNEL_ETCD_CLIENT), f::ETCD_CERT, false);
            add(cluster_key(cert::FLANNEL_ETCD_CLIENT), f::ETCD_KEY, true);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Document {
        let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        hardway::doc::from_str(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
    }

    fn leaf<'a>(plan: &'a Plan, name: &str, node: Option<&str>) -> &'a Leaf {
        plan.leaves
            .iter()
            .find(|l| l.name == name && l.node.as_deref() == node)
            .unwrap_or_else(|| panic!("no {name} for {node:?}"))
    }

    #[test]
    fn apiserver_sans_cover_service_ips_vip_lbs_and_loopback() {
        let mut doc = fixture("ebook-dualstack.json");
        doc.cluster
            .extra
            .insert("controller_vip".into(), "10.240.0.20".into());
        let options = PlanOptions {
            extra_sans: vec!["api.example.com".into()],
        };
        let plan = plan(&doc, &options).unwrap();
        let sans: Vec<String> = leaf(&plan, cert::APISERVER, Some("controller1"))
            .sans
            .iter()
            .map(|s| s.to_string())
            .collect();
        for want in [
            "kubernetes.default.svc.cluster.local",
            "10.32.0.1",
            "fd00:10:32::1",
            "controller1.example.com",
            "10.240.0.21",
            "10.240.0.40",
            "lb1",
            "10.240.0.42",
            "localhost",
            "127.0.0.1",
            "api.example.com",
        ] {
            assert!(
                sans.contains(&want.to_string()),
                "{want} missing from {sans:?}"
            );
        }
        assert!(
            !sans.contains(&"10.240.0.22".to_string()),
            "other controller's IP"
        );
        // No node holds the controllers' VIP: haproxy sends to each controller's address.
        assert!(!sans.contains(&"10.240.0.20".to_string()), "{sans:?}");
    }

    #[test]
    fn separate_tiers_get_only_their_roles_files() {
        let doc = fixture("ebook-dualstack.json");
        let plan = plan(&doc, &PlanOptions::default()).unwrap();
        let dests = |node: &str| -> Vec<&str> {
            plan.installs
                .iter()
                .find(|(n, _)| n == node)
                .unwrap()
                .1
                .iter()
                .map(|i| i.dest)
                .collect()
        };
        assert!(dests("etcd1").contains(&paths::etcd::PEER_KEY));
        assert!(!dests("etcd1").contains(&paths::kubelet::CERT));
        assert!(dests("worker2").contains(&paths::kube_proxy::KUBECONFIG));
        assert!(dests("lb1").is_empty());
        let etcd_sans: Vec<String> = leaf(&plan, cert::ETCD_PEER, Some("etcd2"))
            .sans
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            etcd_sans,
            [
                "etcd2",
                "etcd2.example.com",
                "10.240.0.12",
                "fd00:10:240::c",
                "localhost",
                "127.0.0.1",
                "::1"
            ]
        );
    }

    #[test]
    fn flannel_adds_its_etcd_client_to_workers() {
        let mut doc = fixture("lab.json");
        doc.cluster.pod_network = PodNetwork::Flannel;
        let plan = plan(&doc, &PlanOptions::default()).unwrap();
        leaf(&plan, cert::FLANNEL_ETCD_CLIENT, None);
        assert!(plan.installs[0]
            .1
            .iter()
            .any(|i| i.dest == paths::flannel::ETCD_KEY && i.secret));
    }

    #[test]
    fn an_extra_san_must_be_a_dns_name_or_an_ip() {
        let doc = fixture("lab.json");
        let bad = PlanOptions {
            extra_sans: vec!["not a name".into()],
        };
        let err = plan(&doc, &bad).unwrap_err().to_string();
        assert!(err.starts_with("--extra-san:"), "{err}");
        let good = PlanOptions {
            extra_sans: vec!["*.api.example.com".into(), "fd00::1".into()],
        };
        plan(&doc, &good).unwrap();
    }

    #[test]
    fn a_node_without_ip_is_refused_with_its_path() {
        let mut doc = fixture("lab.json");
        doc.nodes[1].ips.clear();
        let err = plan(&doc, &PlanOptions::default()).unwrap_err().to_string();
        assert!(err.starts_with("nodes[1].ips:"), "{err}");
    }
}
