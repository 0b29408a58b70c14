//! The `route-sync` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, ArgGroup, Command};

/// The protocol number route-sync marks its routes with unless `--proto` says otherwise.
///
/// 200 (0xc8) is free: the kernel and iproute2 name 0–4, 8–18, 42, 99 and 186–192
/// (`/etc/iproute2/rt_protos`); FRR's zebra uses 186–198 for its daemons; Calico's felix marks
/// its routes 80, BIRD 12, keepalived 18, DHCP and RA clients 16 and 9.
pub const DEFAULT_PROTO: u8 = 200;
/// The name route-sync gives [`DEFAULT_PROTO`]; `--proto hardway` means it.
pub const PROTO_NAME: &str = "hardway";
/// `-o dot`: the picture of the routes `--dry-run` would keep (see `hardway::dot`).
pub const DOT: &str = "dot";

pub mod options {
    pub const FILE: &str = "file";
    pub const NODE: &str = "node";
    pub const HOST: &str = "host";
    pub const HYPERVISOR: &str = "hypervisor";
    pub const PROTO: &str = "proto";
    pub const TABLE: &str = "table";
    pub const OUTPUT: &str = "output";
    pub const DRY_RUN: &str = "dry-run";
    pub const CHECK: &str = "check";
    pub const WATCH: &str = "watch";
    pub const NEXTHOP_IDS: &str = "nexthop-ids";
    pub const NO_NEXTHOPS: &str = "no-nexthops";
}

pub fn command() -> Command {
    Command::new("route-sync")
        .about("Make the kernel's pod routes match the cluster document, via netlink")
        .long_about(
            "Make the kernel's routes to the nodes' pod CIDRs match the cluster document, via \
             netlink.\n\n\
             On a node (--node NAME) it routes every other node's pod CIDRs via that node's \
             address of the same family; on the hypervisor (--host) it routes every node's pod \
             CIDRs. Each node gets one nexthop object per family (ip nexthop), and each pod \
             CIDR's route names it (nhid), so a node's new address is one nexthop replace; \
             --no-nexthops, or a kernel without nexthop objects, gives plain routes. It reads \
             the kernel's routes, nexthops, addresses and links, one dump each on one socket, \
             diffs them against the document, \
             and adds, replaces (wrong nexthop, gateway or device) and deletes (stale) routes \
             and nexthops, up to 256 requests to a datagram. It owns only the routes that carry its protocol number \
             (--proto) in its table (--table): routes of any other protocol are never changed, \
             and one for a prefix it wants is reported as a conflict (exit 1).\n\n\
             The device of each route is the one whose directly connected subnet holds the \
             gateway; a gateway on no connected subnet is an error (exit 3) and nothing is \
             changed.\n\n\
             Prints a JSON report {added, replaced, removed, unchanged, conflicts, nexthops} \
             (unchanged is a count), or a table with -o table.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .arg(
            Arg::new(options::FILE)
                .short('f')
                .long("file")
                .value_name("FILE")
                .value_parser(value_parser!(std::path::PathBuf))
                .help("Read the cluster document from FILE instead of stdin ('-' is stdin)"),
        )
        .arg(
            Arg::new(options::NODE)
                .long("node")
                .value_name("NAME")
                .help("Run on node NAME: route the other nodes' pod CIDRs, never its own"),
        )
        .arg(
            Arg::new(options::HOST)
                .long("host")
                .action(ArgAction::SetTrue)
                .help("Run on the hypervisor: route every node's pod CIDRs via the node"),
        )
        .arg(
            Arg::new(options::HYPERVISOR)
                .long("hypervisor")
                .value_name("NAME")
                .requires(options::HOST)
                .help(
                    "With --host, on a cluster across several hypervisors: this machine is \
                     hypervisor NAME (its `hypervisors[].name`)",
                )
                .long_help(
                    "With --host, on a cluster across several hypervisors (the document's \
                     `hypervisors`): this machine is hypervisor NAME. Its own nodes' pod CIDRs \
                     are routed via each node, as on one machine; every other hypervisor's node \
                     slice and its nodes' pod CIDRs via that hypervisor's `address`, through one \
                     nexthop per hypervisor and family. Required when the document lists \
                     hypervisors; refused when it lists none. On a node (--node) nothing more is \
                     needed: a node on another hypervisor is routed via the node's own \
                     gateway, the first address of its hypervisor's slice.",
                ),
        )
        .group(
            ArgGroup::new("scope")
                .args([options::NODE, options::HOST])
                .required(true),
        )
        .arg(
            Arg::new(options::PROTO)
                .long("proto")
                .value_name("PROTO")
                .default_value(PROTO_NAME)
                .help(format!(
                    "Protocol number that marks the routes route-sync owns: 5-255, or a name from \
                     /etc/iproute2/rt_protos{{,.d/*.conf}}; '{PROTO_NAME}' is {DEFAULT_PROTO} \
                     (0xc8), used by no common routing daemon. Add \
                     '{DEFAULT_PROTO} {PROTO_NAME}' to /etc/iproute2/rt_protos.d/hardway.conf \
                     for `ip route` to show the name"
                )),
        )
        .arg(
            Arg::new(options::TABLE)
                .long("table")
                .value_name("TABLE")
                .default_value("main")
                .help(
                    "Routing table of the routes: 1-4294967295, 'main' (254) or 'default' \
                     (253). A table other than main needs an `ip rule` to be used",
                ),
        )
        .arg(hardway::table::output_arg_with(
            "Report format: json, or table for people; with --dry-run also dot: the routes of \
             this viewpoint as a Graphviz picture (`| dot -Tsvg`), drawn from the document \
             alone (the kernel is not read)",
            &[DOT],
        ))
        .arg(
            Arg::new(options::DRY_RUN)
                .long("dry-run")
                .action(ArgAction::SetTrue)
                .help("Print the plan and change nothing"),
        )
        .arg(
            Arg::new(options::CHECK)
                .long("check")
                .action(ArgAction::SetTrue)
                .conflicts_with(options::WATCH)
                .help("Change nothing; exit 1 when anything would change or conflicts"),
        )
        .arg(
            Arg::new(options::WATCH)
                .long("watch")
                .value_name("SECONDS")
                .value_parser(value_parser!(u64).range(1..))
                .help(
                    "Keep running: a pass as soon as -f FILE is written or renamed over \
                     (inotify), 200 ms after another process changes links, addresses, routes \
                     or nexthops, and every SECONDS. The kernel's tables are kept between passes \
                     and dumped again only after such a change or every SECONDS, so a node's new \
                     address is one parse and one nexthop replace. Reports print when a pass \
                     changed something; errors are logged and retried; a FILE that does not \
                     parse keeps the last good one. Stops on SIGINT or SIGTERM",
                ),
        )
        .arg(
            Arg::new(options::NEXTHOP_IDS)
                .long("nexthop-ids")
                .value_name("START-END")
                .help(
                    "Ids of the nexthop objects route-sync makes, one per node and family, and \
                     owns (with its --proto); default 0xc8000000-0xc8ffffff, clear of the \
                     kernel's own ids (from 1 up) and FRR's (below 250000000 and from \
                     0xf0000000). Give each route-sync on one machine its own range",
                ),
        )
        .arg(
            Arg::new(options::NO_NEXTHOPS)
                .long("no-nexthops")
                .action(ArgAction::SetTrue)
                .help(
                    "Plain routes via the gateway instead of routes naming a nexthop object \
                     (what a kernel before 5.3 gets anyway); routes of the other form are \
                     replaced in place and route-sync's nexthops removed",
                ),
        )
        .after_help(
            "Examples:\n  \
             route-sync --host -f out/cluster.json                 # on the hypervisor\n  \
             route-sync --node worker-1 < /etc/hardway/cluster.json # on a node\n  \
             route-sync --host --check -o table < out/cluster.json # exit 1 when out of sync\n  \
             ip route show proto 200                               # what route-sync owns\n  \
             ip nexthop show proto 200                             # its nexthops, one per node\n\n\
             Environment: ROUTE_SYNC_TIMING=1 logs each step's time on stderr \
             (`route-sync: timing: STEP MS`), one line per step and per --watch pass.\n\n\
             Exit status: 0 in sync (or synced), 1 conflicts or --check found changes, 2 bad \
             input, 3 netlink failed or a gateway is on no connected subnet.",
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
    fn node_or_host_is_required() {
        assert!(command().try_get_matches_from(["route-sync"]).is_err());
        assert!(command()
            .try_get_matches_from(["route-sync", "--host", "--node", "a"])
            .is_err());
        let m = command()
            .try_get_matches_from(["route-sync", "--node", "a"])
            .unwrap();
        assert_eq!(m.get_one::<String>(options::NODE).unwrap(), "a");
        assert_eq!(m.get_one::<String>(options::PROTO).unwrap(), PROTO_NAME);
    }

    #[test]
    fn watch_needs_positive_seconds() {
        assert!(command()
            .try_get_matches_from(["route-sync", "--host", "--watch", "0"])
            .is_err());
        assert!(command()
            .try_get_matches_from(["route-sync", "--host", "--watch", "5", "--check"])
            .is_err());
    }
}
