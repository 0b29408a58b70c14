//! The `mkcerts` command line: the clap `Command` that main, the man page and completions share.

use clap::Command;

pub fn command() -> Command {
    Command::new("mkcerts")
        .about("Make the cluster's whole PKI and kubeconfigs")
        .version(env!("CARGO_PKG_VERSION"))
}
