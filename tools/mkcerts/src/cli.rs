//! The `mkcerts` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

use crate::algo::KeyAlgorithm;

/// Argument ids, shared by the parser and `options::Invocation::from_matches`.
pub mod options {
    pub const FILE: &str = "file";
    pub const DIR: &str = "dir";
    pub const LOCK_TIMEOUT: &str = hardway::fsutil::LOCK_TIMEOUT;
    pub const KEY_ALGORITHM: &str = "key-algorithm";
    pub const DAYS: &str = "days";
    pub const CA_DAYS: &str = "ca-days";
    pub const RENEW_BEFORE: &str = "renew-before";
    pub const EXTRA_SAN: &str = "extra-san";
    pub const CA_CERT: &str = "ca-cert";
    pub const CA_KEY: &str = "ca-key";
    pub const ETCD_CA_CERT: &str = "etcd-ca-cert";
    pub const ETCD_CA_KEY: &str = "etcd-ca-key";
    pub const FRONT_PROXY_CA_CERT: &str = "front-proxy-ca-cert";
    pub const FRONT_PROXY_CA_KEY: &str = "front-proxy-ca-key";
    pub const DRY_RUN: &str = "dry-run";
    pub const WARN_DAYS: &str = "warn-days";
    pub const OUTPUT: &str = "output";
    pub const CHECK: &str = "check";
    pub const RENEW: &str = "renew";
}

const AFTER_HELP: &str = "\
Examples:
  mkcluster nodes.csv | cidr-alloc | mkcerts --dir out > out/cluster.json
  mkcerts --dir out --dry-run < out/cluster.json          # what would be issued or reused
  mkcerts --dir out --ca-cert corp-ca.pem --ca-key corp-ca-key.pem < cluster.json
  mkcerts check --dir out -o table                        # exit 1 if anything expires in 30 days
  mkcerts renew --dir out < out/cluster.json > out/cluster.json.new

Writes OUT/pki/ (dirs 0700, keys and kubeconfigs 0600, certificates 0644): ca/ holds the
kubernetes-ca, etcd-ca and front-proxy-ca; cluster/ the shared client certificates, the
service-account key pair and encryption-config.yaml (secretbox, a random 32-byte key); nodes/NAME/
the per-node leaves; kubeconfigs/ the kubeconfigs (admin-external.kubeconfig reaches the API
endpoint from the hypervisor; the others go to nodes). Each node's `files` lists what it needs, with
its destination (/etc/etcd, /var/lib/kubernetes, /var/lib/kubelet, /var/lib/kube-proxy).

Idempotent: existing CAs and keys are never replaced; a leaf is re-issued only when its subject,
SANs, usages, issuer or key algorithm no longer match the document or it expires within
--renew-before. A second run writes no file and prints the same document. Private keys never
appear on stdout or in the document, only their paths and certificate fingerprints.

Secrets are encrypted with secretbox, which Kubernetes' docs rate strong, where they rate aescbc
weak; an existing config is kept as it is.";

/// The options that make the PKI (shared by the main command and `renew`).
fn pki_args(dir_required: bool) -> Vec<Arg> {
    use options::*;
    vec![
        Arg::new(FILE)
            .short('f')
            .long(FILE)
            .value_name("FILE")
            .value_parser(value_parser!(std::path::PathBuf))
            .help("Read the document from FILE instead of stdin ('-' is stdin)"),
        Arg::new(DIR)
            .long(DIR)
            .value_name("OUT")
            .required(dir_required)
            .value_parser(value_parser!(std::path::PathBuf))
            .help("Output directory: the PKI goes to OUT/pki/, files[].src is relative to OUT"),
        hardway::fsutil::lock_timeout_arg(),
        Arg::new(KEY_ALGORITHM)
            .long(KEY_ALGORITHM)
            .value_name("ALG")
            .value_parser(KeyAlgorithm::NAMES)
            .help("Algorithm of new keys [default: the document's pki.algorithm, else ecdsa-p256]"),
        Arg::new(DAYS)
            .long(DAYS)
            .value_name("DAYS")
            .default_value("365")
            .value_parser(value_parser!(u32).range(1..=MAX_DAYS))
            .help("Validity of leaf certificates, in days (at most 36500: 100 years)"),
        Arg::new(CA_DAYS)
            .long(CA_DAYS)
            .value_name("DAYS")
            .default_value("3650")
            .value_parser(value_parser!(u32).range(1..=MAX_DAYS))
            .help("Validity of new CA certificates, in days (at most 36500: 100 years)"),
        Arg::new(RENEW_BEFORE)
            .long(RENEW_BEFORE)
            .value_name("DURATION")
            .default_value("30d")
            .help(format!(
                "Re-issue a leaf that expires within DURATION: {}",
                hardway::duration::GRAMMAR
            )),
        Arg::new(EXTRA_SAN)
            .long(EXTRA_SAN)
            .value_name("NAME|IP")
            .action(ArgAction::Append)
            .value_delimiter(',')
            .help("Another SAN for the kube-apiserver certificate (repeatable, comma-separated)"),
        ca_arg(
            CA_CERT,
            CA_KEY,
            "Use this kubernetes CA certificate instead of making one",
        ),
        ca_arg(
            CA_KEY,
            CA_CERT,
            "The key of --ca-cert (unencrypted PKCS#8 PEM)",
        ),
        ca_arg(
            ETCD_CA_CERT,
            ETCD_CA_KEY,
            "Use this etcd CA certificate instead of making one",
        ),
        ca_arg(ETCD_CA_KEY, ETCD_CA_CERT, "The key of --etcd-ca-cert"),
        ca_arg(
            FRONT_PROXY_CA_CERT,
            FRONT_PROXY_CA_KEY,
            "Use this front-proxy CA certificate instead of making one",
        ),
        ca_arg(
            FRONT_PROXY_CA_KEY,
            FRONT_PROXY_CA_CERT,
            "The key of --front-proxy-ca-cert",
        ),
        Arg::new(DRY_RUN)
            .long(DRY_RUN)
            .action(ArgAction::SetTrue)
            .help("Print what would be created, reused or re-issued as JSON; write nothing"),
    ]
}

/// An external CA's certificate or key; each needs the other.
fn ca_arg(name: &'static str, pair: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("PEM")
        .value_parser(value_parser!(std::path::PathBuf))
        .requires(pair)
        .help(help)
}

/// The longest validity (and warning window) in days: 100 years. A certificate's notAfter is an
/// X.509 GeneralizedTime and the `time` crate's dates end at year 9999 (RFC 5280 4.1.2.5 uses
/// 99991231235959Z for "no expiry"); `--days 999999999` went past that and panicked. 100 years
/// from any date this code will run on stays far inside both.
pub const MAX_DAYS: i64 = 36_500;

pub fn command() -> Command {
    use options::*;
    Command::new("mkcerts")
        .about("Make the cluster's whole PKI and kubeconfigs")
        .long_about(
            "Reads the cluster document, makes its PKI with rcgen (three CAs, every etcd, control \
             plane and worker certificate, the service-account keys, the kubeconfigs and the \
             Secrets encryption config) under OUT/pki/, adds each file to the nodes that need it \
             and writes the document to stdout.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .args(pki_args(true))
        .subcommand_negates_reqs(true)
        .args_conflicts_with_subcommands(true)
        .subcommand(
            Command::new(CHECK)
                .about("Report every certificate and kubeconfig under OUT/pki: expiry, chain, key")
                .after_help(
                    "Example:\n  mkcerts check --dir out -o table --warn-days 60\n\n\
                     Exit 0 when all are fine; 1 when any is expired, expires within --warn-days, \
                     is not signed by a CA found in OUT/pki, or does not match its key.",
                )
                .arg(
                    Arg::new(DIR)
                        .long(DIR)
                        .value_name("OUT")
                        .default_value(".")
                        .value_parser(value_parser!(std::path::PathBuf))
                        .help("Output directory of an earlier mkcerts run"),
                )
                .arg(
                    Arg::new(WARN_DAYS)
                        .long(WARN_DAYS)
                        .value_name("DAYS")
                        .default_value("30")
                        .value_parser(value_parser!(u32).range(..=MAX_DAYS))
                        .help("Count a certificate expiring within DAYS as a problem"),
                )
                .arg(
                    hardway::table::output_arg("Report format"),
                ),
        )
        .subcommand(
            Command::new(RENEW)
                .about("Re-issue every leaf certificate and the kubeconfigs that embed them, keeping the CAs and keys")
                .after_help("Example:\n  mkcerts renew --dir out < out/cluster.json > out/cluster.json.new")
                .args(pki_args(true)),
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn a_ca_key_needs_its_certificate() {
        let err = super::command()
            .try_get_matches_from(["mkcerts", "--dir", "o", "--ca-key", "k.pem"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn check_needs_no_dir() {
        let m = super::command()
            .try_get_matches_from(["mkcerts", "check", "-o", "table"])
            .unwrap();
        assert!(m.subcommand_matches("check").is_some());
    }
}
