//! The `cidr-alloc` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

/// Argument ids, shared by the parser and `Invocation::from_matches`.
pub mod options {
    pub const FILE: &str = "file";
    pub const PREVIOUS: &str = "previous";
    pub const AVOID: &str = "avoid";
    pub const AVOID_HOST_ROUTES: &str = "avoid-host-routes";
    pub const PODS_ON_CONTROLLERS: &str = "pods-on-controllers";
    pub const OUTPUT: &str = "output";
    pub const SPLIT: &str = "split";
    pub const RANGE: &str = "range";
    pub const PREFIX: &str = "prefix";
    pub const COUNT: &str = "count";
    /// `-o` values beyond json and table: the two pictures of the plan.
    pub const DOT: &str = "dot";
    pub const DOT_ROUTES: &str = "dot-routes";
}

const AFTER_HELP: &str = "\
What it decides, for what the input leaves empty:
  node IPs     the lowest free host of each node network (the network address, the gateway
               (first host) and the broadcast address are never given out)
  MACs         52:54:00 + the first 3 bytes of sha256(\"CLUSTER/NODE\"); on a collision
               sha256(\"CLUSTER/NODE/1\"), /2, … in document order
  pod CIDRs    one per pod network for every worker (and controller with --pods-on-controllers):
               the lowest free /pod_prefix subnet
  service IPs  kubernetes = first host, dns = tenth host of each service network
  API VIP      when none is given: with one controller its IP, with several the first free
               address of the node network; api.endpoint = https://VIP:PORT
Values already in the input, or for the same node in --previous FILE, are kept and checked.
A missing --previous FILE counts as none, so the first run needs no special case.

Refused with exit 2: node, pod and service networks that overlap each other, libvirt's default
network 192.168.122.0/24, an --avoid range, or (--avoid-host-routes) a route of this host (except
the cluster's own: its node network and routes to its nodes' pod CIDRs); exhausted ranges; a pod
prefix not longer than the pod network; pinned values outside their range or used twice.

Examples:
  mkcluster examples/lab.csv --name lab | cidr-alloc
  mkcluster nodes.csv | cidr-alloc --previous out/cluster.json > out/cluster.json.new
  mkcluster examples/ebook-9node.csv --api-vip 10.240.0.40 --controller-vip 10.240.0.20 \\
    | cidr-alloc -o table
  cidr-alloc split 10.200.0.0/16 --prefix 24 --count 3

Pictures (Graphviz DOT on stdout, for `dot -Tsvg`; the same document draws the same bytes):
  -o dot          the infrastructure: each hypervisor (nodes grouped by `host`) with its libvirt
                  network, gateway and range; every node with its roles, addresses, MAC, size
                  and pod CIDRs; the API VIP and who holds it; the service range with the
                  kubernetes and dns IPs
  -o dot-routes   the pod routes: each node's pod CIDRs behind it and one arrow per route that
                  route-sync installs, on the hypervisor (--host) and on each node (--node),
                  labelled `CIDR via NODE-IP`
  Roles are coloured cells atop each node, IPv4 is blue, IPv6 red and dashed; see the
  legend. For example:
  mkcluster examples/ebook-9node.csv | cidr-alloc -o dot | dot -Tsvg > cluster.svg
  mkcluster examples/ebook-9node.csv | cidr-alloc -o dot-routes | dot -Tsvg > routes.svg";

pub fn command() -> Command {
    use options::*;
    Command::new("cidr-alloc")
        .about("Decide every address of the cluster, once, up front")
        .long_about(
            "Decide every address of the cluster, once, up front: node IPs, MACs, pod CIDRs, \
             service IPs and the API VIP. Reads a cluster document (from mkcluster) and prints \
             it with every address filled in.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .args_conflicts_with_subcommands(true)
        .arg(
            Arg::new(FILE)
                .short('f')
                .long("file")
                .value_name("FILE")
                .value_parser(value_parser!(std::path::PathBuf))
                .help("The cluster document; '-' or none reads stdin"),
        )
        .arg(
            Arg::new(PREVIOUS)
                .long(PREVIOUS)
                .value_name("FILE")
                .value_parser(value_parser!(std::path::PathBuf))
                .help("An earlier output whose nodes keep their values (missing file: none)"),
        )
        .arg(
            Arg::new(AVOID)
                .long(AVOID)
                .value_name("CIDR")
                .action(ArgAction::Append)
                .help("A range the cluster must not overlap (repeatable)"),
        )
        .arg(
            Arg::new(AVOID_HOST_ROUTES)
                .long(AVOID_HOST_ROUTES)
                .action(ArgAction::SetTrue)
                .help(
                    "Refuse ranges that overlap this host's routes (/proc/net/route, ipv6_route)",
                ),
        )
        .arg(
            Arg::new(PODS_ON_CONTROLLERS)
                .long(PODS_ON_CONTROLLERS)
                .action(ArgAction::SetTrue)
                .help("Give controllers a pod CIDR too, not only workers"),
        )
        .arg(hardway::table::output_arg_with(
            "json: the document; table: nodes, roles, IPs, pod CIDRs, MACs for people; \
             dot: the infrastructure picture (Graphviz); dot-routes: the pod routes picture",
            &[DOT, DOT_ROUTES],
        ))
        .subcommand(
            Command::new(SPLIT)
                .about("Print the first COUNT subnets of RANGE as a JSON list")
                .after_help("Example:\n  cidr-alloc split 10.200.0.0/16 --prefix 24 --count 3")
                .arg(
                    Arg::new(RANGE)
                        .value_name("RANGE")
                        .required(true)
                        .help("The range to split, like 10.200.0.0/16"),
                )
                .arg(
                    Arg::new(PREFIX)
                        .long(PREFIX)
                        .value_name("LEN")
                        .required(true)
                        .value_parser(value_parser!(u8))
                        .help("Prefix length of each subnet"),
                )
                .arg(
                    Arg::new(COUNT)
                        .long(COUNT)
                        .value_name("K")
                        .required(true)
                        .value_parser(value_parser!(u64).range(1..=1_000_000))
                        .help("How many subnets"),
                ),
        )
}
