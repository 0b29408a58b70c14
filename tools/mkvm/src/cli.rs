//! The `mkvm` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

const AFTER_HELP: &str = "\
Examples:
  mkcluster nodes.csv | cidr-alloc | mkvm up --image debian-12.qcow2 --ssh-key ~/.ssh/id_ed25519.pub > cluster.json
  mkvm up --image base.qcow2 --ssh-key key.pub --dry-run < cluster.json    # print the XML, touch nothing
  mkvm status -o table < cluster.json
  mkvm down < cluster.json        # removes only what mkvm made for this cluster

Everything mkvm creates carries its mark (a <metadata> element in the namespace
https://example.invalid/hardway/mkvm/1 on the network and each domain; volumes are named
CLUSTER-NODE.qcow2 / CLUSTER-NODE-seed.iso and recorded in their domain's metadata), so `down`
never removes a same-named object it did not make.

Exit codes: 0 done; 1 a node or the network differs from the document (use --recreate);
2 bad input or refused preflight (image, key, memory, network overlap, foreign objects);
3 libvirt or a wait failed (what this run created has been rolled back).";

pub fn command() -> Command {
    Command::new("mkvm")
        .about("Create, start, wait for and remove the cluster's libvirt VMs")
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("file")
                .short('f')
                .long("file")
                .global(true)
                .value_name("FILE")
                .value_parser(value_parser!(std::path::PathBuf))
                .help("Read the cluster document from FILE instead of stdin"),
        )
        .arg(
            Arg::new("connect")
                .short('c')
                .long("connect")
                .global(true)
                .value_name("URI")
                .value_parser(libvirt_uri)
                .help("libvirt URI [default: hypervisor.uri, else qemu:///system]; a node's `host` overrides it"),
        )
        .arg(
            Arg::new("pool")
                .long("pool")
                .global(true)
                .value_name("POOL")
                .help("Storage pool for the volumes [default: hypervisor.pool, else hardway]; made as a dir pool if missing"),
        )
        .subcommand(
            Command::new("up")
                .about("Create the network, volumes and domains, start them, wait, and print the document")
                .arg(
                    Arg::new("image")
                        .long("image")
                        .required(true)
                        .value_name("BASE")
                        .value_parser(value_parser!(std::path::PathBuf))
                        .help("Base image (qcow2 or raw) each node's overlay is backed by"),
                )
                .arg(
                    Arg::new("ssh-key")
                        .long("ssh-key")
                        .required(true)
                        .value_name("PUB")
                        .value_parser(value_parser!(std::path::PathBuf))
                        .help("SSH public key root may log in with; its private key (PUB without .pub) is used for --wait cloud-init"),
                )
                .arg(
                    Arg::new("wait")
                        .long("wait")
                        .value_name("STAGE")
                        .default_value("ssh")
                        .value_parser(["none", "running", "address", "ssh", "cloud-init"])
                        .help("Last stage to wait for on every node"),
                )
                .arg(
                    Arg::new("timeout")
                        .long("timeout")
                        .value_name("SECONDS")
                        .default_value("600")
                        .value_parser(value_parser!(u64).range(1..))
                        .help("Time each node may take to reach the --wait stage"),
                )
                .arg(
                    Arg::new("domain-type")
                        .long("domain-type")
                        .value_name("TYPE")
                        .default_value("auto")
                        .value_parser(["auto", "kvm", "qemu"])
                        .help("auto: kvm when the host offers it, else qemu (TCG)"),
                )
                .arg(
                    Arg::new("pool-dir")
                        .long("pool-dir")
                        .value_name("DIR")
                        .help("Directory of the pool when mkvm creates it [default: /var/lib/libvirt/images/POOL]"),
                )
                .arg(
                    Arg::new("no-start")
                        .long("no-start")
                        .action(ArgAction::SetTrue)
                        .help("Define everything but start no domain (and wait for nothing)"),
                )
                .arg(
                    Arg::new("recreate")
                        .long("recreate")
                        .action(ArgAction::SetTrue)
                        .help("Replace nodes (and the network) whose size or seed changed"),
                )
                .arg(
                    Arg::new("overcommit")
                        .long("overcommit")
                        .action(ArgAction::SetTrue)
                        .help("Allow more guest memory than the host has free"),
                )
                .arg(
                    Arg::new("dry-run")
                        .long("dry-run")
                        .action(ArgAction::SetTrue)
                        .help("Print the network, pool, volume and domain XML as JSON; change nothing"),
                )
                .arg(
                    Arg::new("fail-after-node")
                        .long("fail-after-node")
                        .value_name("K")
                        .hide(true)
                        .value_parser(value_parser!(usize))
                        .help("Tests only: fail after creating the K-th node, to prove the rollback"),
                ),
        )
        .subcommand(
            Command::new("down")
                .about("Stop and remove the domains, volumes, network (and pool) mkvm made for this cluster")
                .arg(
                    Arg::new("dry-run")
                        .long("dry-run")
                        .action(ArgAction::SetTrue)
                        .help("Print what would be removed; change nothing"),
                ),
        )
        .subcommand(
            Command::new("status")
                .about("Report each node's domain, state and address")
                .arg(
                    hardway::table::output_arg("Report format"),
                ),
        )
}

/// `--connect`: only the URIs `hardway::uri::libvirt` accepts (no transport or parameter that
/// runs a program), refused before libvirt is opened.
fn libvirt_uri(text: &str) -> Result<String, String> {
    hardway::uri::libvirt(text).map(|()| text.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn up_needs_an_image_and_a_key() {
        assert!(super::command()
            .try_get_matches_from(["mkvm", "up", "--image", "x"])
            .is_err());
        let m = super::command()
            .try_get_matches_from(["mkvm", "up", "--image", "x", "--ssh-key", "k.pub"])
            .unwrap();
        let (_, up) = m.subcommand().unwrap();
        assert_eq!(up.get_one::<String>("wait").unwrap(), "ssh");
    }
}
