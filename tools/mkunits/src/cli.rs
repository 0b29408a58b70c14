//! The `mkunits` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

pub const FILE: &str = "file";
pub const DIR: &str = "dir";
pub const DRY_RUN: &str = "dry-run";
pub const CONTAINER_RUNTIME: &str = "container-runtime";
pub const POD_NETWORK: &str = "pod-network";
pub const ETCD_PROFILE: &str = "etcd-profile";
pub const ETCD_HEARTBEAT: &str = "etcd-heartbeat";
pub const ETCD_ELECTION_TIMEOUT: &str = "etcd-election-timeout";
pub const ETCD_SNAPSHOT_COUNT: &str = "etcd-snapshot-count";
pub const BIN_DIR: &str = "bin-dir";
pub const KUBERNETES_BIN_DIR: &str = "kubernetes-bin-dir";
pub const CNI_BIN_DIR: &str = "cni-bin-dir";
pub const VRRP_INTERFACE: &str = "vrrp-interface";
pub const OUTPUT: &str = "output";
pub const PORTS: &str = "ports";
pub const PREVIOUS: &str = "previous";

const EXAMPLE: &str = "\
Examples:
  mkcluster nodes.csv | cidr-alloc | mkcerts --dir out | mkunits --dir out > cluster.json
  mkunits --dir out --etcd-profile slow -f cluster.json
  mkunits ports -o table -f cluster.json     # what to open in a firewall, per node
  mkunits --dir out --previous out/cluster.json -f cluster.json.new   # an upgrade, checked

Files land in OUT/nodes/<node>/<path on the node>; each is added to the node's `files` and the
units to enable, in start order, to its `services`. A second run writes nothing.

The Kubernetes version, container runtime, kube-proxy mode and pod network are the document's
(chosen with mkcluster, which mkcerts already followed); --container-runtime and --pod-network
only assert them.";

/// The choices that shape what a node runs: shared by rendering and `ports`, so the port table
/// always describes the files that were written with the same flags.
fn choice_args() -> Vec<Arg> {
    vec![
        Arg::new(FILE)
            .short('f')
            .long("file")
            .value_name("FILE")
            .value_parser(value_parser!(std::path::PathBuf))
            .help("Read the cluster document from FILE instead of stdin ('-' is stdin)"),
        Arg::new(CONTAINER_RUNTIME)
            .long(CONTAINER_RUNTIME)
            .value_name("RUNTIME")
            .value_parser(["containerd-2", "containerd-1", "cri-o"])
            .help(
                "Fail (exit 2) unless the document's cluster.container_runtime is RUNTIME; the \
                 runtime is chosen with mkcluster --container-runtime",
            ),
        Arg::new(POD_NETWORK)
            .long(POD_NETWORK)
            .value_name("KIND")
            .value_parser(["routes", "flannel"])
            .help(
                "Fail (exit 2) unless the document's cluster.pod_network is KIND; it is chosen \
                 with mkcluster --pod-routing, before mkcerts makes the certificates it needs",
            ),
        Arg::new(ETCD_PROFILE)
            .long(ETCD_PROFILE)
            .value_name("PROFILE")
            .value_parser(["default", "slow"])
            .default_value("default")
            .help(
                "etcd timing: default = heartbeat 100 ms, election 1000 ms, snapshot-count \
                 100000; slow (slow disks and CPUs) = 1000 / 5000 / 5000",
            ),
        Arg::new(ETCD_HEARTBEAT)
            .long(ETCD_HEARTBEAT)
            .value_name("MS")
            .value_parser(value_parser!(u32).range(1..))
            .help("etcd --heartbeat-interval in ms (overrides the profile)"),
        Arg::new(ETCD_ELECTION_TIMEOUT)
            .long(ETCD_ELECTION_TIMEOUT)
            .value_name("MS")
            .value_parser(value_parser!(u32).range(1..))
            .help("etcd --election-timeout in ms (overrides the profile; at least 5 heartbeats)"),
        Arg::new(ETCD_SNAPSHOT_COUNT)
            .long(ETCD_SNAPSHOT_COUNT)
            .value_name("N")
            .value_parser(value_parser!(u64).range(1..))
            .help("etcd --snapshot-count (overrides the profile)"),
        Arg::new(CNI_BIN_DIR)
            .long(CNI_BIN_DIR)
            .value_name("PATH")
            .default_value("/usr/lib/cni")
            .help("Where the CNI plugins are on the nodes (Debian's containernetworking-plugins)"),
        Arg::new(VRRP_INTERFACE)
            .long(VRRP_INTERFACE)
            .value_name("NAME")
            .default_value("eth0")
            .help("Interface on the nodes that holds the API VIP (keepalived)"),
    ]
}

pub fn command() -> Command {
    Command::new("mkunits")
        .about("Render every node's systemd units and configuration files")
        .long_about(
            "Render every node's systemd units and configuration files from the cluster \
             document (after mkcerts): etcd, the control plane, kubelet and kube-proxy with their \
             v1 configuration files, the container runtime, CNI, haproxy and keepalived, \
             /etc/hosts, kernel settings and route-sync. Reads the document on stdin, writes it \
             with every node's files and services on stdout.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(EXAMPLE)
        .subcommand_negates_reqs(true)
        .args(choice_args())
        .arg(
            Arg::new(DIR)
                .short('d')
                .long("dir")
                .value_name("OUT")
                .required(true)
                .value_parser(value_parser!(std::path::PathBuf))
                .help("Output directory (the same as mkcerts'); files go to OUT/nodes/<node>/"),
        )
        .arg(hardway::fsutil::lock_timeout_arg())
        .arg(
            Arg::new(BIN_DIR)
                .long(BIN_DIR)
                .value_name("DIR")
                .value_parser(value_parser!(std::path::PathBuf))
                .help(
                    "Where the hardway binaries nodes need (route-sync) are; default: the \
                     directory of this mkunits",
                ),
        )
        .arg(
            Arg::new(KUBERNETES_BIN_DIR)
                .long(KUBERNETES_BIN_DIR)
                .value_name("DIR")
                .value_parser(value_parser!(std::path::PathBuf))
                .help(
                    "Ship Kubernetes' server binaries from DIR (kube-apiserver, \
                     kube-controller-manager, kube-scheduler, kubelet, kube-proxy; with \
                     containerd-2 also containerd, containerd-shim-runc-v2 and runc) to \
                     /usr/local/bin on the nodes whose roles run them, as \
                     scripts/fetch-kubernetes.sh VERSION DIR lays them out; default: ship none",
                ),
        )
        .arg(
            Arg::new(PREVIOUS)
                .long(PREVIOUS)
                .value_name("FILE")
                .value_parser(value_parser!(std::path::PathBuf))
                .help(
                    "The document the running cluster was built from: refuse (exit 2) a \
                     kubernetes_version that skips a minor or goes back one from FILE's, as \
                     kubeadm upgrade does (patch releases and the next minor are fine), and \
                     remove from OUT the files FILE lists that no node gets any more (a removed \
                     node's). A missing FILE counts as none (the first build)",
                ),
        )
        .arg(
            Arg::new(DRY_RUN)
                .long(DRY_RUN)
                .action(ArgAction::SetTrue)
                .help(
                "Print which files would be created, updated or left as they are; write nothing",
            ),
        )
        .subcommand(
            Command::new(PORTS)
                .about("Per node, every port its components listen on and who must reach it")
                .after_help(
                    "Example:\n  mkunits ports -o table -f cluster.json\n\nOpen these in a \
                     firewall instead of disabling it.",
                )
                .args(choice_args())
                .arg(hardway::table::output_arg("json, or table for people")),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn ports_needs_no_dir() {
        let m = command()
            .try_get_matches_from(["mkunits", "ports", "-o", "table"])
            .unwrap();
        assert!(m.subcommand_matches(PORTS).is_some());
        assert!(command().try_get_matches_from(["mkunits"]).is_err());
    }
}
