//! The `mkvm` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

/// The argument and subcommand ids; `Options::from_matches` (lib.rs) reads them once.
pub mod options {
    pub const FILE: &str = "file";
    pub const CONNECT: &str = "connect";
    pub const POOL: &str = "pool";
    pub const UP: &str = "up";
    pub const DOWN: &str = "down";
    pub const STATUS: &str = "status";
    pub const IMAGE: &str = "image";
    pub const SSH_KEY: &str = "ssh-key";
    pub const WAIT: &str = "wait";
    pub const TIMEOUT: &str = "timeout";
    pub const DOMAIN_TYPE: &str = "domain-type";
    pub const POOL_DIR: &str = "pool-dir";
    pub const NO_START: &str = "no-start";
    pub const RECREATE: &str = "recreate";
    pub const PRUNE: &str = "prune";
    pub const OVERCOMMIT: &str = "overcommit";
    pub const DRY_RUN: &str = "dry-run";
    pub const FAIL_AFTER_NODE: &str = "fail-after-node";
    /// `hardway::table::output_arg`'s id.
    pub const OUTPUT: &str = "output";
}

use options as o;

const AFTER_HELP: &str = "\
Examples:
  mkcluster nodes.csv | cidr-alloc | mkvm up --image debian-12.qcow2 --ssh-key ~/.ssh/id_ed25519.pub > cluster.json
  mkvm up --image base.qcow2 --ssh-key key.pub --dry-run < cluster.json    # print the XML, touch nothing
  mkvm up --image base.qcow2 --ssh-key key.pub --prune < cluster.json  # + removed nodes' VMs
  mkvm status -o table < cluster.json
  mkvm down < cluster.json        # removes only what mkvm made for this cluster

Everything mkvm creates carries its mark (a <metadata> element in the namespace
https://example.invalid/hardway/mkvm/1 on the network and each domain; volumes are named
CLUSTER-NODE.qcow2 / CLUSTER-NODE-seed.iso and recorded in their domain's metadata), so `down`
never removes a same-named object it did not make.

Exit codes: 0 done; 1 a node or the network differs from the document (use --recreate);
2 bad input or refused preflight (image, key, memory, network overlap, foreign objects);
3 libvirt or a wait failed, or a hypervisor did not answer (what this run created has been
rolled back on every hypervisor; what existed before it is left as it was).

With several `hypervisors` in the document each gets its own network on its node slice
(forward mode open: routed, no NAT; see README \"Two hypervisors\"), pool and domains; every
hypervisor is opened before any is changed, and each is worked on in parallel.";

pub fn command() -> Command {
    Command::new("mkvm")
        .about("Create, start, wait for and remove the cluster's libvirt VMs")
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new(o::FILE)
                .short('f')
                .long("file")
                .global(true)
                .value_name("FILE")
                .value_parser(value_parser!(std::path::PathBuf))
                .help("Read the cluster document from FILE instead of stdin"),
        )
        .arg(
            Arg::new(o::CONNECT)
                .short('c')
                .long("connect")
                .global(true)
                .value_name("URI")
                .value_parser(libvirt_uri)
                .help("libvirt URI [default: hypervisor.uri, else qemu:///system]; a node's `host` overrides it"),
        )
        .arg(
            Arg::new(o::POOL)
                .long("pool")
                .global(true)
                .value_name("POOL")
                .help("Storage pool for the volumes [default: hypervisor.pool, else hardway]; made as a dir pool if missing"),
        )
        .subcommand(
            Command::new(o::UP)
                .about("Create the network, volumes and domains, start them, wait, and print the document")
                .arg(
                    Arg::new(o::IMAGE)
                        .long("image")
                        .required(true)
                        .value_name("BASE")
                        .value_parser(value_parser!(std::path::PathBuf))
                        .help("Base image (qcow2 or raw) each node's overlay is backed by"),
                )
                .arg(
                    Arg::new(o::SSH_KEY)
                        .long("ssh-key")
                        .required(true)
                        .value_name("PUB")
                        .value_parser(value_parser!(std::path::PathBuf))
                        .help("SSH public key root may log in with; its private key (PUB without .pub) is used for --wait cloud-init"),
                )
                .arg(
                    Arg::new(o::WAIT)
                        .long("wait")
                        .value_name("STAGE")
                        .default_value("ssh")
                        .value_parser(["none", "running", "address", "ssh", "cloud-init"])
                        .help("Last stage to wait for on every node"),
                )
                .arg(
                    Arg::new(o::TIMEOUT)
                        .long("timeout")
                        .value_name("SECONDS")
                        .default_value("600")
                        .value_parser(value_parser!(u64).range(1..))
                        .help("Time each node may take to reach the --wait stage"),
                )
                .arg(
                    Arg::new(o::DOMAIN_TYPE)
                        .long("domain-type")
                        .value_name("TYPE")
                        .default_value("auto")
                        .value_parser(["auto", "kvm", "qemu"])
                        .help("auto: kvm when the host offers it, else qemu (TCG)"),
                )
                .arg(
                    Arg::new(o::POOL_DIR)
                        .long("pool-dir")
                        .value_name("DIR")
                        .help("Directory of the pool when mkvm creates it [default: /var/lib/libvirt/images/POOL]"),
                )
                .arg(
                    Arg::new(o::NO_START)
                        .long("no-start")
                        .action(ArgAction::SetTrue)
                        .help("Define everything but start no domain (and wait for nothing)"),
                )
                .arg(
                    Arg::new(o::RECREATE)
                        .long("recreate")
                        .action(ArgAction::SetTrue)
                        .help("Replace nodes (and the network) whose size or seed changed"),
                )
                .arg(
                    Arg::new(o::PRUNE)
                        .long("prune")
                        .action(ArgAction::SetTrue)
                        .help("Remove the domains of nodes the document no longer lists, with their overlay and seed volumes, on the hypervisors the document's nodes use; only domains carrying mkvm's mark for this cluster (and the volumes that mark names), never a same-named domain or volume of anyone else's. Without it they are reported on stderr and kept"),
                )
                .arg(
                    Arg::new(o::OVERCOMMIT)
                        .long("overcommit")
                        .action(ArgAction::SetTrue)
                        .help("Allow more guest memory than the host has available: on this machine MemAvailable (free memory plus the page cache the kernel can reclaim), on a remote hypervisor libvirt's free memory"),
                )
                .arg(
                    Arg::new(o::DRY_RUN)
                        .long("dry-run")
                        .action(ArgAction::SetTrue)
                        .help("Print the network, pool, volume and domain XML as JSON; change nothing"),
                )
                .arg(
                    Arg::new(o::FAIL_AFTER_NODE)
                        .long("fail-after-node")
                        .value_name("K")
                        .hide(true)
                        .value_parser(value_parser!(usize))
                        .help("Tests only: fail after creating the K-th node on each hypervisor, to prove the rollback"),
                ),
        )
        .subcommand(
            Command::new(o::DOWN)
                .about("Stop and remove the domains, volumes, network (and pool) mkvm made for this cluster")
                .arg(
                    Arg::new(o::DRY_RUN)
                        .long("dry-run")
                        .action(ArgAction::SetTrue)
                        .help("Print what would be removed; change nothing"),
                ),
        )
        .subcommand(
            Command::new(o::STATUS)
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
        assert_eq!(up.get_one::<String>(super::options::WAIT).unwrap(), "ssh");
    }
}
