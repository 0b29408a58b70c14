//! The `mkcerts` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

use crate::algo::KeyAlgorithm;

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

Kubeconfigs and the encryption config are YAML written with serde_yaml_ng, the maintained fork of
serde_yaml (archived by its author in 2024). Secrets are encrypted with secretbox, which
Kubernetes' docs rate strong, where they rate aescbc weak; an existing config is kept as it is.";

/// The options that make the PKI (shared by the main command and `renew`).
fn pki_args(dir_required: bool) -> Vec<Arg> {
    vec![
        Arg::new("file")
            .short('f')
            .long("file")
            .value_name("FILE")
            .value_parser(value_parser!(std::path::PathBuf))
            .help("Read the document from FILE instead of stdin ('-' is stdin)"),
        Arg::new("dir")
            .long("dir")
            .value_name("OUT")
            .required(dir_required)
            .value_parser(value_parser!(std::path::PathBuf))
            .help("Output directory: the PKI goes to OUT/pki/, files[].src is relative to OUT"),
        hardway::fsutil::lock_timeout_arg(),
        Arg::new("key-algorithm")
            .long("key-algorithm")
            .value_name("ALG")
            .value_parser(KeyAlgorithm::NAMES)
            .help("Algorithm of new keys [default: the document's pki.algorithm, else ecdsa-p256]"),
        Arg::new("days")
            .long("days")
            .value_name("DAYS")
            .default_value("365")
            .value_parser(value_parser!(u32).range(1..))
            .help("Validity of leaf certificates"),
        Arg::new("ca-days")
            .long("ca-days")
            .value_name("DAYS")
            .default_value("3650")
            .value_parser(value_parser!(u32).range(1..))
            .help("Validity of new CA certificates"),
        Arg::new("renew-before")
            .long("renew-before")
            .value_name("DURATION")
            .default_value("30d")
            .help("Re-issue a leaf that expires within DURATION (e.g. 30d, 72h)"),
        Arg::new("extra-san")
            .long("extra-san")
            .value_name("NAME|IP")
            .action(ArgAction::Append)
            .value_delimiter(',')
            .help("Another SAN for the kube-apiserver certificate (repeatable, comma-separated)"),
        ca_arg(
            "ca-cert",
            "Use this kubernetes CA certificate instead of making one",
        ),
        ca_arg("ca-key", "The key of --ca-cert (unencrypted PKCS#8 PEM)").requires("ca-cert"),
        ca_arg(
            "etcd-ca-cert",
            "Use this etcd CA certificate instead of making one",
        ),
        ca_arg("etcd-ca-key", "The key of --etcd-ca-cert").requires("etcd-ca-cert"),
        ca_arg(
            "front-proxy-ca-cert",
            "Use this front-proxy CA certificate instead of making one",
        ),
        ca_arg("front-proxy-ca-key", "The key of --front-proxy-ca-cert")
            .requires("front-proxy-ca-cert"),
        Arg::new("dry-run")
            .long("dry-run")
            .action(ArgAction::SetTrue)
            .help("Print what would be created, reused or re-issued as JSON; write nothing"),
    ]
}

fn ca_arg(name: &'static str, help: &'static str) -> Arg {
    let pair = match name.strip_suffix("-cert") {
        Some(stem) => format!("{stem}-key"),
        None => format!("{}-cert", name.trim_end_matches("-key")),
    };
    Arg::new(name)
        .long(name)
        .value_name("PEM")
        .value_parser(value_parser!(std::path::PathBuf))
        .requires(pair)
        .help(help)
}

pub fn command() -> Command {
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
            Command::new("check")
                .about("Report every certificate and kubeconfig under OUT/pki: expiry, chain, key")
                .after_help(
                    "Example:\n  mkcerts check --dir out -o table --warn-days 60\n\n\
                     Exit 0 when all are fine; 1 when any is expired, expires within --warn-days, \
                     is not signed by a CA found in OUT/pki, or does not match its key.",
                )
                .arg(
                    Arg::new("dir")
                        .long("dir")
                        .value_name("OUT")
                        .default_value(".")
                        .value_parser(value_parser!(std::path::PathBuf))
                        .help("Output directory of an earlier mkcerts run"),
                )
                .arg(
                    Arg::new("warn-days")
                        .long("warn-days")
                        .value_name("DAYS")
                        .default_value("30")
                        .value_parser(value_parser!(u32))
                        .help("Count a certificate expiring within DAYS as a problem"),
                )
                .arg(
                    hardway::table::output_arg("Report format"),
                ),
        )
        .subcommand(
            Command::new("renew")
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
