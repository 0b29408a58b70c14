//! The `node-push` command line: the clap `Command` that main, the man page and completions share.

use std::path::PathBuf;

use clap::{value_parser, Arg, ArgAction, Command};

pub const FILE: &str = "file";
pub const DIR: &str = "dir";
pub const USER: &str = "user";
pub const IDENTITY: &str = "identity";
pub const KNOWN_HOSTS: &str = "known-hosts";
pub const ACCEPT_NEW: &str = "accept-new";
pub const PORT: &str = "port";
pub const ADDRESS_FROM: &str = "address-from";
pub const ADDRESS: &str = "address";
pub const PARALLEL: &str = "parallel";
pub const TIMEOUT: &str = "timeout";
pub const BETWEEN: &str = "between";
pub const GATE_TIMEOUT: &str = "gate-timeout";
pub const BATCH: &str = "batch";
pub const NO_START: &str = "no-start";
pub const DRY_RUN: &str = "dry-run";
pub const ONLY: &str = "only";
pub const ROLES: &str = "roles";
pub const OUTPUT: &str = "output";
pub const REPORT: &str = "report";

const AFTER_HELP: &str = "\
Output:
  stdout carries the document, unchanged, so node-push sits in the pipeline
  (`... | node-push --dir out > out/cluster.json.new`); it is printed only when every
  node succeeded. The report (one entry per node: files changed and unchanged, services
  started and restarted, error) goes to stderr after the log lines, or to --report FILE;
  `--report -` prints the report on stdout instead of the document.

What it does on each node:
  Checks the host key against --known-hosts (a changed key is refused with both SHA256
  fingerprints and nothing is sent), logs in, hashes every destination with one
  `sha256sum`, uploads only the files whose content differs (over SFTP to
  `.NAME.node-push-tmp` in the same directory, created 0600, fsynced, then chown, chmod
  and `mv -f` over the target, so a reader never sees half a file), fixes mode and owner of
  the others, then `systemctl daemon-reload` when a unit changed and, for each service in
  order, `systemctl enable --now` or, when one of its files changed, `systemctl enable` and
  `systemctl restart`. A service's files are its unit, its drop-ins, the files the unit
  mentions by path (and the files those mention), and any file whose entry lists it in
  `restart: [\"unit\"]`.

Rolling restarts:
  Every node is first connected and compared (--parallel at once); then nodes are pushed
  in waves. Wave 1 holds every node that restarts no running service (nothing changed, or
  its services are not running yet, as on a first install, when all etcd members must start
  together): each is pushed as soon as it is compared, in the same connection. Then each etcd node whose running services restart goes alone,
  then each controller, then each load balancer (always one node at a time, with or without
  --between), then the workers, --batch at a time. After each of those waves --between runs
  (`sh -c COMMAND`, with NODE_PUSH_WAVE and NODE_PUSH_NODES set; its stdout and stderr go
  to stderr) every 2 s until it exits 0, at most --gate-timeout seconds (a run still going
  then is killed); it also runs once before the first restart, so a cluster already
  degraded is not pushed further. The first wave that fails its gate, or a node of a
  restarting wave that fails its push, stops the run: exit 3, that node named with the
  gate's last exit status; later waves are not contacted beyond the compare (no file
  pushed, no service restarted) and are reported `skipped`. A node of a later wave is
  connected again at its wave, and compared afresh before anything is sent. Each node's report gives its
  `wave` and the gate's verdict (passed, failed, not-needed, not-given, not-run).
  --timeout bounds each connection's work; the time a node waits for its wave does not
  count.

Addresses:
  A node's address is its first IP (`--address-from ip`) or `vm.address` written by mkvm
  (`--address-from vm`), on --port. `--address NODE=HOST[:PORT]` overrides one node (for
  tests and jump setups); IPv6 with a port as `[fd00::1]:2222`.

Exit status: 0 every node done, 2 bad input (nothing was contacted), 3 any node failed
(the others of its wave, and those of the first wave, are still done) or a gate failed.

Example:
  node-push --dir out --identity ~/.ssh/id_ed25519 --accept-new < out/cluster.json \\
    > out/cluster.json.new && mv out/cluster.json.new out/cluster.json
  node-push --dir out --between 'etcd-check -f out/cluster.json --dir out' \\
    --gate-timeout 120 < out/cluster.json > /dev/null
  node-push --dir out --dry-run --report - -o table < out/cluster.json
  node-push --dir out --only controller-1 --roles worker < out/cluster.json >/dev/null";

pub fn command() -> Command {
    Command::new("node-push")
        .about("Install each node's files and start its services over SSH")
        .long_about(
            "Install each node's files (atomic rename, mode, owner, skipped when the sha256 \
             matches) and enable and start its services in order, over SSH, nodes in parallel.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        // A later flag wins, so a script can append overrides to a common command line.
        .args_override_self(true)
        .arg(
            Arg::new(FILE)
                .short('f')
                .long("file")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("Read the document from FILE instead of stdin"),
        )
        .arg(
            Arg::new(DIR)
                .long("dir")
                .value_name("DIR")
                .default_value(".")
                .value_parser(value_parser!(PathBuf))
                .help("Output directory of mkcerts and mkunits: files[].src is relative to it"),
        )
        .arg(
            Arg::new(USER)
                .long("user")
                .short('u')
                .value_name("USER")
                .default_value("root")
                .help("Log in as USER (owners can only be set as root)"),
        )
        .arg(
            Arg::new(IDENTITY)
                .long("identity")
                .short('i')
                .value_name("KEY")
                .value_parser(value_parser!(PathBuf))
                .help(
                    "Private key to log in with (no passphrase); default: the SSH agent, \
                     then ~/.ssh/id_ed25519, id_ecdsa, id_rsa",
                ),
        )
        .arg(
            Arg::new(KNOWN_HOSTS)
                .long("known-hosts")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("known_hosts file to check host keys against [default: ~/.ssh/known_hosts]"),
        )
        .arg(
            Arg::new(ACCEPT_NEW)
                .long("accept-new")
                .action(ArgAction::SetTrue)
                .help("Record the key of a host not yet in known_hosts (a changed key is still refused)"),
        )
        .arg(
            Arg::new(PORT)
                .long("port")
                .short('p')
                .value_name("PORT")
                .default_value("22")
                .value_parser(value_parser!(u16).range(1..))
                .help("SSH port of every node"),
        )
        .arg(
            Arg::new(ADDRESS_FROM)
                .long("address-from")
                .value_name("SOURCE")
                .default_value("ip")
                .value_parser(["ip", "vm"])
                .help("Where a node's address comes from: its first IP, or vm.address (mkvm)"),
        )
        .arg(
            Arg::new(ADDRESS)
                .long("address")
                .value_name("NODE=HOST[:PORT]")
                .action(ArgAction::Append)
                .help("Connect to NODE at HOST[:PORT] instead (repeatable)"),
        )
        .arg(
            Arg::new(PARALLEL)
                .long("parallel")
                .short('j')
                .value_name("N")
                .default_value("8")
                .value_parser(value_parser!(u16).range(1..))
                .help("Push to at most N nodes at once"),
        )
        .arg(
            Arg::new(TIMEOUT)
                .long("timeout")
                .value_name("SECONDS")
                .default_value("120")
                .value_parser(value_parser!(u64).range(1..))
                .help(
                    "Give up on a node after SECONDS (connect, transfer and commands together; \
                     counted again when it reconnects at its wave)",
                ),
        )
        .arg(
            Arg::new(BETWEEN)
                .long("between")
                .value_name("COMMAND")
                .help(
                    "Health gate run with `sh -c` after each wave that restarted running \
                     services, until it exits 0 (its output goes to stderr)",
                ),
        )
        .arg(
            Arg::new(GATE_TIMEOUT)
                .long("gate-timeout")
                .value_name("SECONDS")
                .default_value("300")
                .value_parser(value_parser!(u64).range(1..))
                .help("Give up on the gate after SECONDS of retries: the rollout stops, exit 3"),
        )
        .arg(
            Arg::new(BATCH)
                .long("batch")
                .value_name("N")
                .default_value("10")
                .value_parser(value_parser!(u16).range(1..))
                .help("Restart at most N workers per wave (control-plane nodes go one at a time)"),
        )
        .arg(
            Arg::new(NO_START)
                .long("no-start")
                .action(ArgAction::SetTrue)
                .help("Install files only: no daemon-reload, enable, start or restart"),
        )
        .arg(
            Arg::new(DRY_RUN)
                .long("dry-run")
                .action(ArgAction::SetTrue)
                .help("Connect and compare hashes; report what would change, change nothing"),
        )
        .arg(
            Arg::new(ONLY)
                .long("only")
                .value_name("NODE")
                .action(ArgAction::Append)
                .help("Push to this node only (repeatable)"),
        )
        .arg(
            Arg::new(ROLES)
                .long("roles")
                .value_name("ROLE")
                .action(ArgAction::Append)
                .value_delimiter(',')
                .help("Push to nodes with one of these roles (etcd, controller, worker, lb)"),
        )
        .arg(
            hardway::table::output_arg("Report format"),
        )
        .arg(
            Arg::new(REPORT)
                .long("report")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("Write the report to FILE instead of stderr; `-` prints it on stdout instead of the document"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_typical_command_line() {
        let m = command()
            .try_get_matches_from([
                "node-push",
                "--dir",
                "out",
                "--only",
                "a",
                "--only",
                "b",
                "--roles",
                "etcd,worker",
                "--address",
                "a=127.0.0.1:2222",
                "-o",
                "table",
                "--dry-run",
            ])
            .unwrap();
        let only: Vec<&String> = m.get_many(ONLY).unwrap().collect();
        assert_eq!(only, ["a", "b"]);
        let roles: Vec<&String> = m.get_many(ROLES).unwrap().collect();
        assert_eq!(roles, ["etcd", "worker"]);
        assert_eq!(m.get_one::<u16>(PORT), Some(&22));
        assert!(m.get_flag(DRY_RUN));
    }

    #[test]
    fn rejects_zero_parallel_and_unknown_format() {
        assert!(command()
            .try_get_matches_from(["node-push", "-j", "0"])
            .is_err());
        assert!(command()
            .try_get_matches_from(["node-push", "-o", "xml"])
            .is_err());
    }

    #[test]
    fn the_gate_flags_have_their_defaults() {
        let m = command().try_get_matches_from(["node-push"]).unwrap();
        assert_eq!(m.get_one::<String>(BETWEEN), None);
        assert_eq!(m.get_one::<u64>(GATE_TIMEOUT), Some(&300));
        assert_eq!(m.get_one::<u16>(BATCH), Some(&10));
        let m = command()
            .try_get_matches_from([
                "node-push",
                "--between",
                "etcd-check -f out/cluster.json --dir out",
                "--gate-timeout",
                "60",
                "--batch",
                "3",
            ])
            .unwrap();
        assert_eq!(
            m.get_one::<String>(BETWEEN).map(String::as_str),
            Some("etcd-check -f out/cluster.json --dir out")
        );
        assert_eq!(m.get_one::<u64>(GATE_TIMEOUT), Some(&60));
        assert_eq!(m.get_one::<u16>(BATCH), Some(&3));
        for bad in [["--batch", "0"], ["--gate-timeout", "0"]] {
            assert!(command()
                .try_get_matches_from(["node-push", bad[0], bad[1]])
                .is_err());
        }
    }

    #[test]
    fn command_is_well_formed() {
        command().debug_assert();
    }
}
