//! The `mkcluster` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

/// Argument ids, shared by the parser and `Options::from_matches`.
pub mod options {
    pub const FILE: &str = "file";
    pub const FORMAT: &str = "format";
    pub const NAME: &str = "name";
    pub const DOMAIN: &str = "domain";
    pub const CLUSTER_DOMAIN: &str = "cluster-domain";
    pub const KUBERNETES_VERSION: &str = "kubernetes-version";
    pub const ALLOW_UNSUPPORTED_VERSION: &str = "allow-unsupported-version";
    pub const CONTAINER_RUNTIME: &str = "container-runtime";
    pub const KUBE_PROXY_MODE: &str = "kube-proxy-mode";
    pub const NODE_NETWORK: &str = "node-network";
    pub const POD_NETWORK: &str = "pod-network";
    pub const SERVICE_NETWORK: &str = "service-network";
    pub const POD_PREFIX: &str = "pod-prefix";
    pub const POD_ROUTING: &str = "pod-routing";
    pub const API_VIP: &str = "api-vip";
    pub const CONTROLLER_VIP: &str = "controller-vip";
    pub const API_PORT: &str = "api-port";
    pub const HYPERVISOR: &str = "hypervisor";
}

const AFTER_HELP: &str = "\
Inventory (CSV, the default format):
  A header row names the columns, in any order: name,roles,ip,vcpus,memory,disk,pod_cidr,host.
  Only name and roles are required. Lines starting with # are comments.
  roles     etcd, controller (alias master), worker, lb, joined by '+' or ';'
  ip        an address, or an IPv4 and an IPv6 one joined by '+' or ';' (empty: cidr-alloc picks)
  memory    512M, 1.5G, 4G, 2GiB; a bare number is MiB
  disk      20G, 512G, 1T; a bare number is GiB
  pod_cidr  a range, or an IPv4 and an IPv6 one joined by '+' or ';' (empty: cidr-alloc picks)
  host      the hypervisor the node runs on: a --hypervisor NAME (empty: the first one); without
            --hypervisor, a libvirt URI (empty: hypervisor.uri)

Sizes a row leaves empty default per role (the ebook's plan, docs/sources.md#seed-003), the largest
of the node's roles:
  etcd, controller, lb  1 vCPU,  512 MiB,  4 GiB
  worker                1 vCPU, 1536 MiB, 20 GiB

machines.txt (--format machines), as in Kubernetes the Hard Way: IP FQDN HOST [POD_SUBNET], one
node a line. A HOST named server*, controller* or master* is controller+etcd, etcd* is etcd, lb*
is lb, any other host is a worker. Without --domain the domain is the first FQDN minus its HOST.

The document's hypervisor section: uri qemu:///system, network = the cluster name, gateway = the
first host of the IPv4 node network (else the IPv6 one), pool \"hardway\".

Several hypervisors: declare each once with --hypervisor NAME=URI,ADDRESS (as kcli declares its
clients), and name it in each row's host column. URI is how mkvm reaches its libvirtd
(qemu+ssh://root@hv-a/system, qemu+tls://hv-a/system); ADDRESS is the machine's own address on
the network that joins the hypervisors, which routes between them go through. The document lists
them in `hypervisors` and gives each node the URI of its own as `host`; cidr-alloc then gives
each hypervisor its slice of the node network (README: Two hypervisors).

VIPs: --api-vip is the address clients reach the API at (cluster.api.vip; keepalived holds it).
With load balancers in front of the controllers, as in the ebook (docs/sources.md#seed-003),
give the LB VIP as --api-vip and the controllers' own VIP as --controller-vip (kept as
cluster.controller_vip). Without --api-vip, cidr-alloc picks one.

Examples:
  mkcluster examples/lab.csv --name lab | cidr-alloc
  mkcluster --format machines machines.txt --name kubernetes | cidr-alloc -o table
  mkcluster examples/ebook-9node.csv --api-vip 10.240.0.40 --controller-vip 10.240.0.20 \\
    | cidr-alloc -o table
  mkcluster nodes.csv --hypervisor hv-a=qemu+ssh://root@192.168.50.1/system,192.168.50.1 \\
    --hypervisor hv-b=qemu+ssh://root@192.168.50.2/system,192.168.50.2 | cidr-alloc
  mkcluster nodes.csv --node-network 10.240.0.0/24 --node-network fd00:10:240::/64 \\
    --pod-network 10.200.0.0/16 --pod-network fd00:10:200::/56 \\
    --service-network 10.32.0.0/24 --service-network fd00:10:32::/112";

pub fn command() -> Command {
    use options::*;
    Command::new("mkcluster")
        .about("Turn a CSV or machines.txt inventory into a hardway cluster document")
        .long_about(
            "Turn a CSV or machines.txt inventory into a hardway cluster document, printed on \
             stdout. Addresses the inventory leaves empty are decided by cidr-alloc, next in the \
             pipeline.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .arg(
            Arg::new(FILE)
                .value_name("FILE")
                .help("The inventory; '-' or none reads stdin")
                .value_parser(value_parser!(std::path::PathBuf)),
        )
        .arg(
            Arg::new(FORMAT)
                .long(FORMAT)
                .value_name("FORMAT")
                .value_parser(["csv", "machines"])
                .default_value("csv")
                .help("Inventory layout: csv, or machines (KTHW's machines.txt)"),
        )
        .arg(
            Arg::new(NAME)
                .long(NAME)
                .value_name("NAME")
                .default_value("kubernetes")
                .help("Cluster name (a DNS label; also the libvirt network's name)"),
        )
        .arg(
            Arg::new(DOMAIN)
                .long(DOMAIN)
                .value_name("DOMAIN")
                .default_value("example.com")
                .help("DNS domain of the nodes: fqdn = name.domain"),
        )
        .arg(
            Arg::new(CLUSTER_DOMAIN)
                .long(CLUSTER_DOMAIN)
                .value_name("DOMAIN")
                .default_value("cluster.local")
                .help("Kubernetes' cluster DNS domain"),
        )
        .arg(
            Arg::new(KUBERNETES_VERSION)
                .long(KUBERNETES_VERSION)
                .value_name("VERSION")
                .default_value(hardway::k8s::DEFAULT_VERSION)
                .help(format!(
                    "Kubernetes version, like {}; supported minors: {}",
                    hardway::k8s::DEFAULT_VERSION,
                    hardway::k8s::supported_list()
                )),
        )
        .arg(
            Arg::new(ALLOW_UNSUPPORTED_VERSION)
                .long(ALLOW_UNSUPPORTED_VERSION)
                .action(ArgAction::SetTrue)
                .help(
                    "Accept an end-of-life or unknown --kubernetes-version; recorded in the \
                     document (cluster.allow_unsupported_version), so later tools render it with \
                     the nearest supported release's flags and say so",
                ),
        )
        .arg(
            Arg::new(CONTAINER_RUNTIME)
                .long(CONTAINER_RUNTIME)
                .value_name("RUNTIME")
                .value_parser(["containerd-2", "containerd-1", "cri-o"])
                .default_value("containerd-2")
                .help(
                    "Container runtime on the nodes that run pods: containerd-2 (upstream's 2.x, \
                     scripts/fetch-kubernetes.sh), containerd-1 (Debian's 1.6/1.7; Kubernetes \
                     v1.35 only) or cri-o",
                ),
        )
        .arg(
            Arg::new(KUBE_PROXY_MODE)
                .long(KUBE_PROXY_MODE)
                .value_name("MODE")
                .value_parser(["iptables", "nftables"])
                .default_value("iptables")
                .help("kube-proxy's mode (IPVS is deprecated upstream and not offered)"),
        )
        .arg(network_arg(NODE_NETWORK, "10.240.0.0/24", "Node network"))
        .arg(network_arg(
            POD_NETWORK,
            "10.200.0.0/16",
            "Pod network (cluster CIDR)",
        ))
        .arg(network_arg(
            SERVICE_NETWORK,
            "10.32.0.0/24",
            "Service network (cluster IPs)",
        ))
        .arg(
            Arg::new(POD_PREFIX)
                .long(POD_PREFIX)
                .value_name("LEN")
                .action(ArgAction::Append)
                .value_parser(value_parser!(u8))
                .help(
                    "Prefix length of each node's pod CIDR, one per --pod-network in the same \
                     order [default: 24 for IPv4, 64 for IPv6]",
                ),
        )
        .arg(
            Arg::new(POD_ROUTING)
                .long(POD_ROUTING)
                .value_name("HOW")
                .value_parser(["routes", "flannel"])
                .default_value("routes")
                .help("How pods reach other nodes' pods: static routes, or flannel (vxlan)"),
        )
        .arg(
            Arg::new(API_VIP)
                .long(API_VIP)
                .value_name("IP")
                .help("Address the API is reached at [default: cidr-alloc picks one]"),
        )
        .arg(
            Arg::new(CONTROLLER_VIP)
                .long(CONTROLLER_VIP)
                .value_name("IP")
                .help("The controllers' own VIP when --api-vip is a load balancer's"),
        )
        .arg(
            Arg::new(API_PORT)
                .long(API_PORT)
                .value_name("PORT")
                .value_parser(value_parser!(u16).range(1..))
                .default_value("6443")
                .help("Port of the API server"),
        )
        .arg(
            Arg::new(HYPERVISOR)
                .long(HYPERVISOR)
                .value_name("NAME=URI,ADDRESS")
                .action(ArgAction::Append)
                .help(
                    "A hypervisor of several: its name (the inventory's host column), its libvirt \
                     URI, and its address on the network joining the hypervisors; repeat per \
                     machine",
                ),
        )
}

fn network_arg(id: &'static str, default: &'static str, what: &str) -> Arg {
    Arg::new(id)
        .long(id)
        .value_name("CIDR")
        .action(ArgAction::Append)
        .default_value(default)
        .help(format!(
            "{what}; repeat with an IPv4 and an IPv6 range for dual-stack"
        ))
}
