//! The `etcd-check` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

/// Argument ids, shared by the parser and `Options::from_matches`.
pub mod options {
    pub const FILE: &str = hardway_etcd::cli::FILE;
    pub const DIR: &str = hardway_etcd::cli::DIR;
    pub const ENDPOINTS: &str = "endpoints";
    pub const CACERT: &str = "cacert";
    pub const CERT: &str = "cert";
    pub const KEY: &str = "key";
    pub const TIMEOUT: &str = "timeout";
    pub const CONNECT_TIMEOUT: &str = "connect-timeout";
    pub const MAX_LAG: &str = "max-lag";
    pub const WARN_DAYS: &str = "warn-days";
    pub const OUTPUT: &str = "output";
    pub const WATCH: &str = "watch";
}

const AFTER_HELP: &str = "\
Verdict and exit status:
  healthy      0  every member answers a quorum read, one leader that all agree on, no alarm,
                  raft index lag within --max-lag, no server certificate expiring within
                  --warn-days
  degraded     1  quorum holds, but a member is down, lagging, alarmed (NOSPACE, CORRUPT) or
                  its certificate expires soon
  unavailable  3  no quorum read succeeds anywhere, no leader, or no endpoint answers
  bad input    2  a malformed endpoint URL, an unreadable certificate, a bad document

Every member is checked at the same time, each over its own connection (never a load-balanced
client): TCP connect, TLS handshake (the server certificate is read for its expiry, the client
certificate must be accepted), then status, a serializable and a linearizable read of the key
\"health\", the alarm list and the member list. --timeout bounds the whole command however many
members are black-holed; a member that does not answer is reported with the steps tried.

Input: the cluster document (stdin or -f): the client URLs https://IP:2379 of the nodes with role
etcd, the CA (pki cert etcd-ca) and the client certificate (etcd-healthcheck-client), their paths
resolved against --dir. Or, without a document, etcdctl's flags --endpoints --cacert --cert --key.
--cacert, --cert and --key also override the document's.

Examples:
  etcd-check -f out/cluster.json --dir out
  etcd-check --endpoints https://10.240.0.11:2379,https://10.240.0.12:2379,https://10.240.0.13:2379 \\
    --cacert /etc/etcd/ca.pem --cert /etc/etcd/healthcheck-client.pem \\
    --key /etc/etcd/healthcheck-client-key.pem -o table
  etcd-check -f out/cluster.json --dir out --watch 5 -o table";

pub fn command() -> Command {
    use options::*;
    Command::new("etcd-check")
        .about("Say whether an etcd cluster is healthy, degraded or unavailable")
        .long_about(
            "Say whether an etcd cluster is healthy, degraded or unavailable, with each member's \
             state (reachable, TLS, quorum read, version, member ID, leader, raft term and index, \
             DB size, alarms, certificate expiry, round-trip time), in bounded time.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .arg(
            hardway_etcd::cli::file_arg("The cluster document; '-' or none reads stdin (unless --endpoints is given)"),
        )
        .arg(
            hardway_etcd::cli::dir_arg("The output directory the document's certificate paths are relative to"),
        )
        .arg(
            Arg::new(ENDPOINTS)
                .long(ENDPOINTS)
                .value_name("URLS")
                .value_delimiter(',')
                .action(ArgAction::Append)
                .conflicts_with(FILE)
                .help(
                    "Client URLs, comma-separated (https://HOST:PORT; a bare HOST:PORT is \
                     https with --cacert, as etcdctl takes it); no document is read",
                ),
        )
        .arg(
            Arg::new(CACERT)
                .long(CACERT)
                .value_name("FILE")
                .help("The CA that signed the members' server certificates (PEM)")
                .value_parser(value_parser!(std::path::PathBuf)),
        )
        .arg(
            Arg::new(CERT)
                .long(CERT)
                .value_name("FILE")
                .requires(KEY)
                .help("Client certificate (PEM)")
                .value_parser(value_parser!(std::path::PathBuf)),
        )
        .arg(
            Arg::new(KEY)
                .long(KEY)
                .value_name("FILE")
                .requires(CERT)
                .help("Client certificate's private key (PEM)")
                .value_parser(value_parser!(std::path::PathBuf)),
        )
        .arg(
            Arg::new(TIMEOUT)
                .long(TIMEOUT)
                .value_name("DURATION")
                .default_value("5s")
                .help(format!("Bound on the whole check; DURATION is {}", hardway::duration::GRAMMAR)),
        )
        .arg(
            Arg::new(CONNECT_TIMEOUT)
                .long(CONNECT_TIMEOUT)
                .value_name("DURATION")
                .default_value("2s")
                .help(
                    "Bound on each member's TCP connect and TLS handshake (at most --timeout), \
                     as etcdctl's --dial-timeout; a DURATION as --timeout takes",
                ),
        )
        .arg(
            Arg::new(MAX_LAG)
                .long(MAX_LAG)
                .value_name("ENTRIES")
                .default_value("100")
                .help("Largest raft index lag (behind the most advanced member, or applied behind committed) still healthy")
                .value_parser(value_parser!(u64)),
        )
        .arg(
            Arg::new(WARN_DAYS)
                .long(WARN_DAYS)
                .value_name("DAYS")
                .default_value("30")
                .help("A server certificate expiring within this many days makes the cluster degraded")
                .value_parser(value_parser!(u64)),
        )
        .arg(
            hardway::table::output_arg("Report format"),
        )
        .arg(
            Arg::new(WATCH)
                .long(WATCH)
                .value_name("SECONDS")
                .help("Check again every SECONDS and print what changed, until interrupted")
                .value_parser(value_parser!(u64).range(1..)),
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn endpoints_split_on_commas() {
        let m = super::command()
            .try_get_matches_from(["etcd-check", "--endpoints", "https://a:1,https://b:2"])
            .unwrap();
        let v: Vec<&String> = m.get_many(super::options::ENDPOINTS).unwrap().collect();
        assert_eq!(v, ["https://a:1", "https://b:2"]);
    }

    #[test]
    fn document_and_endpoints_conflict() {
        assert!(super::command()
            .try_get_matches_from(["etcd-check", "-f", "x.json", "--endpoints", "https://a:1"])
            .is_err());
    }
}
