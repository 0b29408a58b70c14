//! mkcluster: turn a CSV or machines.txt inventory into a hardway cluster document.
//!
//! The inventory says which nodes exist and what they are; the flags say how the cluster is
//! addressed. Everything is checked here, where a line and column can still be named; addresses
//! the inventory leaves empty are left for cidr-alloc, the next tool in the pipeline.

pub mod cli;
pub mod error;
pub mod hosts;
pub mod inventory;
pub mod size;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use clap::parser::ValueSource;
use clap::ArgMatches;
use hardway::doc::{
    Api, Cluster, ContainerRuntime, Extra, Hypervisor, KubeProxyMode, Networks, PodNetwork,
};
use hardway::{validate, Document, Exit, Node, Role};
use ipnet::IpNet;

pub use error::Error;
pub use inventory::Entry;

/// The inventory's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Machines,
}

/// The cluster-wide settings the flags give; defaults are docs/sources.md#seed-003's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub format: Format,
    pub name: String,
    pub domain: String,
    /// False when --domain was not given: machines.txt's FQDNs then say the domain.
    pub domain_given: bool,
    pub cluster_domain: String,
    pub kubernetes_version: String,
    /// `--allow-unsupported-version`: recorded in the document for the tools after mkcluster.
    pub allow_unsupported_version: bool,
    pub container_runtime: ContainerRuntime,
    pub kube_proxy_mode: KubeProxyMode,
    pub node_networks: Vec<IpNet>,
    pub pod_networks: Vec<IpNet>,
    /// One per entry of `pod_networks`, same order.
    pub pod_prefix: Vec<u8>,
    pub service_networks: Vec<IpNet>,
    pub pod_routing: PodNetwork,
    pub api_vip: Option<IpAddr>,
    pub controller_vip: Option<IpAddr>,
    pub api_port: u16,
    /// `--hypervisor`, in order; empty for a cluster on one hypervisor.
    pub hypervisors: Vec<hardway::doc::HypervisorHost>,
}

impl Default for Options {
    fn default() -> Options {
        let net = |text: &str| text.parse::<IpNet>().expect("a valid default");
        Options {
            format: Format::Csv,
            name: "kubernetes".into(),
            domain: "example.com".into(),
            domain_given: false,
            cluster_domain: "cluster.local".into(),
            kubernetes_version: hardway::k8s::DEFAULT_VERSION.into(),
            allow_unsupported_version: false,
            container_runtime: ContainerRuntime::Containerd2,
            kube_proxy_mode: KubeProxyMode::Iptables,
            node_networks: vec![net("10.240.0.0/24")],
            pod_networks: vec![net("10.200.0.0/16")],
            pod_prefix: vec![24],
            service_networks: vec![net("10.32.0.0/24")],
            pod_routing: PodNetwork::Routes,
            api_vip: None,
            controller_vip: None,
            api_port: 6443,
            hypervisors: Vec::new(),
        }
    }
}

/// Default size of a node of one role: (vCPUs, MiB of memory, GiB of disk), from docs/sources.md#seed-003.
pub fn default_size(role: Role) -> (u32, u64, u64) {
    match role {
        Role::Worker => (1, 1536, 20),
        Role::Etcd | Role::Controller | Role::Lb => (1, 512, 4),
    }
}

impl Options {
    /// Reads and checks the flags.
    pub fn from_matches(matches: &ArgMatches) -> Result<Options, Error> {
        use cli::options::*;
        let text = |id: &str| matches.get_one::<String>(id).cloned().unwrap_or_default();
        let name = cluster_name(&text(NAME))?;
        let domain = dns_flag(DOMAIN, &text(DOMAIN))?;
        let cluster_domain = dns_flag(CLUSTER_DOMAIN, &text(CLUSTER_DOMAIN))?;
        let kubernetes_version = text(KUBERNETES_VERSION);
        let allow_unsupported_version = matches.get_flag(ALLOW_UNSUPPORTED_VERSION);
        let container_runtime = ContainerRuntime::parse(&text(CONTAINER_RUNTIME))
            .unwrap_or(ContainerRuntime::Containerd2);
        let kube_proxy_mode = match text(KUBE_PROXY_MODE).as_str() {
            "nftables" => KubeProxyMode::Nftables,
            _ => KubeProxyMode::Iptables,
        };
        check_release(
            &kubernetes_version,
            allow_unsupported_version,
            container_runtime,
            kube_proxy_mode,
        )?;
        // IPv4 first everywhere, so ips[0] and networks[0] agree on the family.
        let mut node_networks = network_flag(matches, NODE_NETWORK)?;
        let pod_given = network_flag(matches, POD_NETWORK)?;
        let mut service_networks = network_flag(matches, SERVICE_NETWORK)?;
        let mut pods = with_pod_prefixes(matches, pod_given)?;
        node_networks.sort_by_key(|n| matches!(n, IpNet::V6(_)));
        service_networks.sort_by_key(|n| matches!(n, IpNet::V6(_)));
        pods.sort_by_key(|(n, _)| matches!(n, IpNet::V6(_)));
        Ok(Options {
            format: match text(FORMAT).as_str() {
                "machines" => Format::Machines,
                _ => Format::Csv,
            },
            name,
            domain,
            domain_given: matches.value_source(DOMAIN) == Some(ValueSource::CommandLine),
            cluster_domain,
            kubernetes_version,
            allow_unsupported_version,
            container_runtime,
            kube_proxy_mode,
            node_networks,
            pod_networks: pods.iter().map(|p| p.0).collect(),
            pod_prefix: pods.iter().map(|p| p.1).collect(),
            service_networks,
            pod_routing: match text(POD_ROUTING).as_str() {
                "flannel" => PodNetwork::Flannel,
                _ => PodNetwork::Routes,
            },
            api_vip: ip_flag(matches, API_VIP)?,
            controller_vip: ip_flag(matches, CONTROLLER_VIP)?,
            api_port: *matches.get_one::<u16>(API_PORT).unwrap_or(&6443),
            hypervisors: hosts::from_matches(matches)?,
        })
    }
}

fn flag_error(flag: &'static str, message: String) -> Error {
    Error::Flag { flag, message }
}

/// The cluster name is a DNS label (it names the libvirt network and the CAs).
fn cluster_name(name: &str) -> Result<String, Error> {
    validate::node_name(name).map_err(|why| {
        flag_error(
            cli::options::NAME,
            format!(
                "the cluster name is a DNS label: {}",
                why.replace("node name", "name")
            ),
        )
    })?;
    Ok(name.to_string())
}

/// A DNS name flag, lowercase and without its final dot.
fn dns_flag(id: &'static str, text: &str) -> Result<String, Error> {
    let name = text.trim_end_matches('.').to_ascii_lowercase();
    validate::dns_name(&name).map_err(|why| flag_error(id, why))?;
    Ok(name)
}

/// A repeatable network flag: valid ranges, at most one per family.
fn network_flag(matches: &ArgMatches, id: &'static str) -> Result<Vec<IpNet>, Error> {
    let nets = matches
        .get_many::<String>(id)
        .into_iter()
        .flatten()
        .map(|t| validate::network(t).map_err(|why| flag_error(id, why)))
        .collect::<Result<Vec<_>, _>>()?;
    validate::one_per_family(&nets).map_err(|why| flag_error(id, why))?;
    Ok(nets)
}

/// Each --pod-network with its --pod-prefix (in the same order; /24 for IPv4 and /64 for IPv6
/// when not given), a prefix that splits the network.
fn with_pod_prefixes(matches: &ArgMatches, given: Vec<IpNet>) -> Result<Vec<(IpNet, u8)>, Error> {
    use cli::options::*;
    let prefixes: Vec<u8> = matches
        .get_many::<u8>(POD_PREFIX)
        .into_iter()
        .flatten()
        .copied()
        .collect();
    if prefixes.len() > given.len() {
        return Err(flag_error(
            POD_PREFIX,
            format!(
                "{} prefixes for {} pod networks: give one per --pod-network, in the same order",
                prefixes.len(),
                given.len()
            ),
        ));
    }
    let pods: Vec<(IpNet, u8)> = given
        .iter()
        .enumerate()
        .map(|(i, net)| {
            let default = if matches!(net, IpNet::V4(_)) { 24 } else { 64 };
            (*net, prefixes.get(i).copied().unwrap_or(default))
        })
        .collect();
    if let Some((net, prefix)) = pods
        .iter()
        .find(|(net, prefix)| *prefix <= net.prefix_len() || *prefix > net.max_prefix_len())
    {
        return Err(flag_error(
            POD_PREFIX,
            format!(
                "/{prefix} does not split pod network {net}: give a prefix between /{} and /{}",
                net.prefix_len() + 1,
                net.max_prefix_len()
            ),
        ));
    }
    Ok(pods)
}

fn ip_flag(matches: &ArgMatches, id: &'static str) -> Result<Option<IpAddr>, Error> {
    matches
        .get_one::<String>(id)
        .map(|t| validate::ip(t).map_err(|why| flag_error(id, why)))
        .transpose()
}

/// The version is a supported release (or, with the opt-out, at least well-formed) whose kubelet
/// works with the runtime and whose kube-proxy has the mode.
fn check_release(
    version: &str,
    allow_unsupported: bool,
    runtime: ContainerRuntime,
    mode: KubeProxyMode,
) -> Result<(), Error> {
    use cli::options::*;
    let flag = flag_error;
    hardway::k8s::Version::parse(version).map_err(|why| flag(KUBERNETES_VERSION, why))?;
    let release = match hardway::k8s::release(version) {
        Ok(release) => release,
        Err(why) if allow_unsupported => {
            hardway::k8s::nearest_release(version).map_err(|_| flag(KUBERNETES_VERSION, why))?
        }
        Err(why) => {
            return Err(flag(
                KUBERNETES_VERSION,
                format!("{why} (or --{ALLOW_UNSUPPORTED_VERSION})"),
            ))
        }
    };
    release
        .check_runtime(runtime)
        .map_err(|why| flag(CONTAINER_RUNTIME, why))?;
    release
        .check_proxy_mode(mode)
        .map_err(|why| flag(KUBE_PROXY_MODE, why))
}

/// Builds the document from an inventory's text; `source` names it in errors.
pub fn build(text: &str, source: &str, options: &Options) -> Result<Document, Error> {
    let entries = match options.format {
        Format::Csv => inventory::parse_csv(text, source)?,
        Format::Machines => inventory::parse_machines(text, source)?,
    };
    if entries.is_empty() {
        return Err(error::Position { line: 1, column: 1 }.error(
            source,
            "the inventory lists no node: add a row like `worker-1,worker` under the header",
        ));
    }
    let domain = domain(&entries, options);
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut nodes = Vec::with_capacity(entries.len());
    for entry in &entries {
        if let Some(line) = seen.insert(&entry.name, entry.at.line) {
            return Err(entry.at.error(
                source,
                format!(
                    "node name {:?} is already used on line {line}: names are unique",
                    entry.name
                ),
            ));
        }
        check_entry_ranges(entry, source, options)?;
        nodes.push(node(entry, &domain));
    }

    hosts::place(&mut nodes, &entries, &options.hypervisors, source)?;

    let document = Document {
        version: hardway::doc::VERSION,
        cluster: cluster(options, domain),
        hypervisor: Some(Hypervisor {
            // With several hypervisors, the first is the default one, never a local daemon.
            uri: options
                .hypervisors
                .first()
                .map_or_else(|| "qemu:///system".into(), |h| h.uri.clone()),
            network: options.name.clone(),
            gateway: options
                .node_networks
                .first()
                .and_then(|n| validate::nth_host(*n, 1)),
            pool: "hardway".into(),
            extra: Extra::new(),
        }),
        hypervisors: options.hypervisors.clone(),
        nodes,
        pki: None,
        extra: Extra::new(),
    };
    document.validate()?;
    Ok(document)
}

/// The cluster's domain: --domain, else (machines.txt) what the first FQDN says.
fn domain(entries: &[Entry], options: &Options) -> String {
    match (&options.format, options.domain_given) {
        (Format::Machines, false) => {
            let first = &entries[0];
            first
                .fqdn
                .as_deref()
                .and_then(|f| f.strip_prefix(&format!("{}.", first.name)))
                .unwrap_or(&options.domain)
                .to_string()
        }
        _ => options.domain.clone(),
    }
}

/// A pinned address is in a node network, a pinned pod CIDR in a pod network.
fn check_entry_ranges(entry: &Entry, source: &str, options: &Options) -> Result<(), Error> {
    let outside =
        |value: &dyn std::fmt::Display, at: error::Position, range: &str, change: &str| {
            let nets = match range {
                "node" => &options.node_networks,
                _ => &options.pod_networks,
            };
            at.error(
                source,
                format!(
                "{value} is outside the {range} network ({}): change {change} or --{range}-network",
                list(nets)
            ),
            )
        };
    let in_nodes = |ip: &&IpAddr| options.node_networks.iter().any(|n| n.contains(*ip));
    if let Some(ip) = entry.ips.iter().find(|ip| !in_nodes(ip)) {
        return Err(outside(ip, entry.ip_at, "node", "the address"));
    }
    let in_pods = |cidr: &&IpNet| options.pod_networks.iter().any(|n| n.contains(*cidr));
    if let Some(cidr) = entry.pod_cidrs.iter().find(|cidr| !in_pods(cidr)) {
        return Err(outside(cidr, entry.pod_cidr_at, "pod", "it"));
    }
    Ok(())
}

/// The node of an inventory entry; a size the inventory leaves out is the largest default of
/// its roles.
fn node(entry: &Entry, domain: &str) -> Node {
    let sizes = entry.roles.iter().map(|r| default_size(*r));
    let vcpus = sizes.clone().map(|s| s.0).max().unwrap_or(1);
    let memory = sizes.clone().map(|s| s.1).max().unwrap_or(512);
    let disk = sizes.map(|s| s.2).max().unwrap_or(4);
    Node {
        name: entry.name.clone(),
        fqdn: Some(
            entry
                .fqdn
                .clone()
                .unwrap_or_else(|| format!("{}.{domain}", entry.name)),
        ),
        roles: entry.roles.clone(),
        ips: entry.ips.clone(),
        pod_cidrs: entry.pod_cidrs.clone(),
        mac: None,
        vcpus: entry.vcpus.unwrap_or(vcpus),
        memory_mib: entry.memory_mib.unwrap_or(memory),
        disk_gib: entry.disk_gib.unwrap_or(disk),
        host: entry.host.clone(),
        files: Vec::new(),
        services: Vec::new(),
        vm: None,
        etcd: None,
        extra: Extra::new(),
    }
}

/// The cluster section: what the flags say, and in `extra` the opt-out and controller VIP.
fn cluster(options: &Options, domain: String) -> Cluster {
    let mut extra = Extra::new();
    if options.allow_unsupported_version {
        extra.insert(hardway::k8s::ALLOW_UNSUPPORTED.into(), true.into());
    }
    if let Some(vip) = options.controller_vip {
        extra.insert("controller_vip".into(), vip.to_string().into());
    }
    Cluster {
        name: options.name.clone(),
        domain,
        cluster_domain: options.cluster_domain.clone(),
        kubernetes_version: options.kubernetes_version.clone(),
        networks: Networks {
            node: options.node_networks.clone(),
            pod: options.pod_networks.clone(),
            pod_prefix: options.pod_prefix.clone(),
            service: options.service_networks.clone(),
            extra: Extra::new(),
        },
        api: Api {
            vip: options.api_vip,
            port: options.api_port,
            endpoint: None,
            extra: Extra::new(),
        },
        service_ips: None,
        pod_network: options.pod_routing,
        container_runtime: Some(options.container_runtime),
        kube_proxy_mode: Some(options.kube_proxy_mode),
        extra,
    }
}

fn list(nets: &[IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(matches: &ArgMatches) -> Result<Exit, Error> {
    let options = Options::from_matches(matches)?;
    let path = matches.get_one::<std::path::PathBuf>(cli::options::FILE);
    let (source, text) = hardway::io::read_input(path.map(|p| p as &Path))?;
    let document = build(&text, &source, &options)?;
    hardway::doc::write(&document, std::io::stdout().lock())?;
    Ok(Exit::Ok)
}
