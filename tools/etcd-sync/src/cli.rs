//! The `etcd-sync` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

/// Argument ids, shared by the parser and `Options::from_matches`.
pub mod options {
    pub const FILE: &str = hardway_etcd::cli::FILE;
    pub const DIR: &str = hardway_etcd::cli::DIR;
    pub const PREVIOUS: &str = "previous";
    pub const DRY_RUN: &str = "dry-run";
    pub const CHECK: &str = "check";
    pub const TIMEOUT: &str = "timeout";
    pub const RETRY_TIMEOUT: &str = "retry-timeout";
    pub const OUTPUT: &str = "output";
}

const AFTER_HELP: &str = "\
What it does, one change at a time, listing the members again after each:
  1. promotes a learner that has started (etcd 3.4 refuses until it has caught up: retried
     until --retry-timeout, as is a change refused while the leader has not been connected
     to every voter for 5 s);
  2. adds the first etcd node of the document that is not a member, as a learner
     (MemberAdd), and records its --initial-cluster (the current members plus itself) in
     nodes[].etcd, so mkunits writes its unit with --initial-cluster-state=existing; the run
     stops there: start its unit (node-push), then run etcd-sync again to promote it;
  3. removes members the document no longer lists, never the last one and never one whose
     removal would leave the remaining voting members without a healthy majority; a leader
     first hands leadership to another healthy voter (MoveLeader, as etcdctl move-leader),
     so the others never wait out an election timeout without one.
Every member is asked for its status before each change; a change that would lose quorum is
refused (exit 3) and nothing after it is done.

Output: the document with nodes[].etcd (member_id, state member|learner|joining, the
membership it first booted with) on stdout. --dry-run and --check print the plan or the
report instead (JSON, or -o table) and change nothing.

Exit status: 0 done or in sync, 1 (--check) out of sync, 2 bad input, 3 the cluster is
unavailable or a change was refused or failed.

Examples:
  etcd-sync -f out/cluster.json --dir out --check -o table
  mkcluster nodes.csv | cidr-alloc --previous out/cluster.json | mkcerts --dir out \\
    | etcd-sync --dir out --previous out/cluster.json | mkunits --dir out | …
  etcd-sync -f out/cluster.json --dir out > out/cluster.json.new && mv out/cluster.json.new out/cluster.json";

pub fn command() -> Command {
    use options::*;
    Command::new("etcd-sync")
        .about("Make etcd's member list match the cluster document's etcd nodes")
        .long_about(
            "Make etcd's member list match the cluster document's etcd nodes: add new ones as \
             learners and promote them once caught up, remove the ones the document dropped, \
             one change at a time and never one that loses quorum, and record each member's \
             ID and state in the document.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .arg(
            hardway_etcd::cli::file_arg("The cluster document; '-' or none reads stdin"),
        )
        .arg(
            hardway_etcd::cli::dir_arg("The output directory the document's certificate paths are relative to"),
        )
        .arg(
            Arg::new(PREVIOUS)
                .long(PREVIOUS)
                .value_name("FILE")
                .help(
                    "An earlier output: its nodes[].etcd records are kept for the same nodes (same \
                     name and address) when the input has none, as after rebuilding the document \
                     from the inventory; a missing FILE counts as none",
                )
                .value_parser(value_parser!(std::path::PathBuf)),
        )
        .arg(
            Arg::new(DRY_RUN)
                .long(DRY_RUN)
                .action(ArgAction::SetTrue)
                .conflicts_with(CHECK)
                .help("Print the plan (JSON, or -o table) and change nothing"),
        )
        .arg(
            Arg::new(CHECK)
                .long(CHECK)
                .action(ArgAction::SetTrue)
                .help("Print the report and exit 1 when the members do not match the document"),
        )
        .arg(
            Arg::new(TIMEOUT)
                .long(TIMEOUT)
                .value_name("DURATION")
                .default_value("5s")
                .help(format!(
                    "Bound on each call to a member; DURATION is {}",
                    hardway::duration::GRAMMAR
                )),
        )
        .arg(
            Arg::new(RETRY_TIMEOUT)
                .long(RETRY_TIMEOUT)
                .value_name("DURATION")
                .default_value("60s")
                .help("How long to retry a change etcd refuses for now: a learner not caught up yet, or (etcd 3.4's strict reconfiguration check) a leader not connected to every voter for 5 s; a DURATION as --timeout takes"),
        )
        .arg(hardway::table::output_arg(
            "Format of the plan (--dry-run) or report (--check)",
        ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn timeouts_are_durations_and_a_bare_number_is_refused() {
        let parse = |args: &[&str]| {
            let m = super::command()
                .try_get_matches_from(std::iter::once("etcd-sync").chain(args.iter().copied()))
                .unwrap();
            crate::Options::from_matches(&m)
        };
        let options = parse(&["--timeout", "1.5s", "--retry-timeout", "2m"]).unwrap();
        assert_eq!(options.timeout, std::time::Duration::from_millis(1500));
        assert_eq!(options.retry_timeout, std::time::Duration::from_secs(120));
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.timeout, std::time::Duration::from_secs(5));
        assert_eq!(defaults.retry_timeout, std::time::Duration::from_secs(60));
        let err = parse(&["--retry-timeout", "60"]).unwrap_err().to_string();
        assert!(
            err.starts_with("--retry-timeout: \"60\" has no unit: write 60s"),
            "{err}"
        );
    }

    #[test]
    fn dry_run_and_check_conflict() {
        assert!(super::command()
            .try_get_matches_from(["etcd-sync", "--dry-run", "--check"])
            .is_err());
    }
}
